//! Leader election: of several replicas of an operator, exactly one runs its controllers at a
//! time, and another takes over when it goes.
//!
//! This module owns the election: client-go's algorithm over a `coordination.k8s.io/v1`
//! Lease ([`LeaderElector`]), its settings ([`LeaderElectionConfig`]), the Events it writes on
//! the Lease, and a [`LeadershipHandle`] that tells whether this replica leads. Starting and
//! stopping runnables as leadership comes and goes is the
//! [manager](crate::manager)'s job; most operators only set
//! [`Config::leader_election`](crate::manager::Config::leader_election).
//!
//! # How it works
//!
//! Every replica competes for one Lease. The holder renews it every retry period (2 s by
//! default), writing its identity and the time; the others watch it and poll it. A candidate
//! takes the lease over when the holder releases it (at once: a graceful shutdown writes an
//! expired record, which candidates see through their watch), or when the Lease has not changed
//! for the lease duration (15 s) since the candidate last saw it change (the holder died).
//! Every write carries the resourceVersion last read, so of two candidates writing at once one
//! fails with a conflict: there is never more than one holder.
//!
//! A leader that cannot renew within the renew deadline (10 s, counted from the start of its
//! last successful renewal) stops leading: at that instant its controllers are stopped,
//! reconciles in flight abandoned, so nothing leader-only runs past the deadline. The margin
//! until the lease duration (5 s) lets requests already sent land before anyone else can take
//! over. A manager then returns an error from [`run`](crate::manager::Manager::run), as
//! controller-runtime exits: the process restarts and campaigns again as a candidate.
//!
//! # Clock skew
//!
//! Expiry is judged by each candidate's own monotonic clock, from the moment it saw the Lease
//! change; `renewTime` is never compared with a local clock. So the replicas' wall clocks may
//! disagree by any amount. What must hold is that their clocks *run* at about the same rate:
//! a candidate whose clock runs faster than the leader's by a factor of `lease duration /
//! renew deadline` (1.5 with the defaults) could take over while the leader still leads.
//! Real clocks differ by parts per million.
//!
//! # Example
//!
//! ```no_run
//! use windlass::leader::LeaderElectionConfig;
//! use windlass::manager::{Config, Manager};
//!
//! # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
//! let client = kube::Client::try_default().await?;
//! let config = Config::default().leader_election(LeaderElectionConfig::new("my-operator"));
//! let manager = Manager::with_config(client, config); // .add(controller) ...
//! let leadership = manager.leadership().expect("leader election is configured");
//! tokio::spawn(async move {
//!     leadership.wait_leading().await;
//!     println!("{} leads", leadership.identity());
//! });
//! manager.run().await?;
//! # Ok(())
//! # }
//! ```

mod config;
mod elector;
mod error;
mod events;
mod lock;

use std::sync::Arc;

use tokio::sync::watch;

pub use config::{
    DEFAULT_LEASE_DURATION, DEFAULT_RENEW_DEADLINE, DEFAULT_RETRY_PERIOD, JITTER_FACTOR,
    LeaderElectionConfig,
};
pub use elector::LeaderElector;
pub use error::LeaderElectionError;

/// Where an election stands, as a replica sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeadershipStatus {
    /// Whether this replica leads: it holds the lease and its leader-only work may run.
    pub leading: bool,
    /// The holder this replica last observed in the Lease (`None` while the lease is free or
    /// has not been read yet). A replica that lost the lease may still see itself here.
    pub leader: Option<String>,
}

/// Tells whether a replica leads. Cheap to clone; every clone sees the same election.
///
/// For metrics (`leader_election_master_status`), readiness, or tests: read
/// [`is_leader`](Self::is_leader) when asked, or [`subscribe`](Self::subscribe) to changes.
#[derive(Debug, Clone)]
pub struct LeadershipHandle {
    identity: Arc<str>,
    namespace: Arc<str>,
    lease_name: Arc<str>,
    status: watch::Receiver<LeadershipStatus>,
}

impl LeadershipHandle {
    /// Whether this replica leads now. An elector that is gone (its task ended or was
    /// aborted) does not lead.
    pub fn is_leader(&self) -> bool {
        self.status().leading
    }

    /// The holder last observed in the Lease.
    pub fn leader(&self) -> Option<String> {
        self.status.borrow().leader.clone()
    }

    /// The whole status now.
    pub fn status(&self) -> LeadershipStatus {
        let mut status = self.status.borrow().clone();
        // A closed channel: the elector was dropped, perhaps mid-term (an aborted task).
        status.leading &= self.status.has_changed().is_ok();
        status
    }

    /// This replica's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The Lease's name (the `name` label of client-go's leader election metrics).
    pub fn lease_name(&self) -> &str {
        &self.lease_name
    }

    /// The Lease's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// A receiver that sees every change of the status.
    pub fn subscribe(&self) -> watch::Receiver<LeadershipStatus> {
        self.status.clone()
    }

    /// Waits until this replica leads (returns at once if it does). Never returns if the
    /// election ends without it leading.
    pub async fn wait_leading(&self) {
        self.wait_for(true).await;
    }

    /// Waits until this replica does not lead (returns at once if it does not).
    pub async fn wait_not_leading(&self) {
        self.wait_for(false).await;
    }

    async fn wait_for(&self, leading: bool) {
        let mut rx = self.status.clone();
        if rx.wait_for(|s| s.leading == leading).await.is_err() && leading {
            // The elector is gone, so it does not lead, and never will.
            std::future::pending::<()>().await;
        }
    }
}
