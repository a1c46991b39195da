//! Why leader election failed or ended.

use std::time::Duration;

/// Why leader election could not start, or why a replica stopped leading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaderElectionError {
    /// The configuration breaks one of the rules of
    /// [`LeaderElectionConfig::validate`](super::LeaderElectionConfig::validate).
    #[error("invalid leader election configuration: {0}")]
    InvalidConfig(String),

    /// The leader could not renew its lease within the renew deadline (the API server was
    /// unreachable or kept failing); it stopped leading. The process should exit and start
    /// again as a candidate, as controller-runtime's do.
    #[error(
        "lost the leader lease {lease}: not renewed within the renew deadline of {renew_deadline:?} ({last_error}); restart to campaign again"
    )]
    RenewDeadlineExceeded {
        /// The Lease, as `namespace/name`.
        lease: String,
        /// The renew deadline.
        renew_deadline: Duration,
        /// What the last renewal attempt failed with.
        last_error: String,
    },

    /// The leader found another holder in the Lease (its renewals had not been seen in time,
    /// for instance because the process was paused); it stopped leading at once.
    #[error(
        "lost the leader lease {lease}: it is now held by {holder:?}; restart to campaign again"
    )]
    LeaseTaken {
        /// The Lease, as `namespace/name`.
        lease: String,
        /// The identity that holds it now.
        holder: String,
    },
}

impl LeaderElectionError {
    /// Whether this replica was leading and lost the lease (rather than never starting).
    pub fn is_lost(&self) -> bool {
        matches!(
            self,
            Self::RenewDeadlineExceeded { .. } | Self::LeaseTaken { .. }
        )
    }
}
