//! How a replica takes part in leader election: the Lease it competes for, who it is, and the
//! three durations of client-go's algorithm, with their defaults and the rules that relate them.
//!
//! This module owns the settings, their validation and the resolution of the two defaults that
//! come from the environment (the identity from the host name, the namespace from the pod's
//! service account). It does not talk to the API server.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::error::LeaderElectionError;

/// How long a lease is valid without renewal unless told otherwise (client-go's default).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// How long the leader keeps trying to renew before it stops leading (client-go's default).
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often the leader renews and candidates retry (client-go's default).
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);

/// The renew deadline must exceed this multiple of the retry period (client-go's
/// `JitterFactor`), so a leader whose renewal failed always gets another try before it gives up.
pub const JITTER_FACTOR: f64 = 1.2;

/// Where a pod's service account namespace is mounted.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// How a replica takes part in leader election.
///
/// Only the Lease's name is required; everything else has client-go's defaults:
///
/// ```
/// use std::time::Duration;
/// use windlass::leader::LeaderElectionConfig;
///
/// let config = LeaderElectionConfig::new("my-operator")
///     .namespace("operators")
///     .lease_duration(Duration::from_secs(30))
///     .renew_deadline(Duration::from_secs(20))
///     .retry_period(Duration::from_secs(4));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone)]
pub struct LeaderElectionConfig {
    pub(crate) lease_name: String,
    pub(crate) namespace: Option<String>,
    pub(crate) identity: Option<String>,
    pub(crate) lease_duration: Duration,
    pub(crate) renew_deadline: Duration,
    pub(crate) retry_period: Duration,
    pub(crate) release_on_cancel: bool,
    pub(crate) watch: bool,
    pub(crate) hot_standby: bool,
    pub(crate) events: bool,
    pub(crate) client: Option<kube::Client>,
}

impl fmt::Debug for LeaderElectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaderElectionConfig")
            .field("lease_name", &self.lease_name)
            .field("namespace", &self.namespace)
            .field("identity", &self.identity)
            .field("lease_duration", &self.lease_duration)
            .field("renew_deadline", &self.renew_deadline)
            .field("retry_period", &self.retry_period)
            .field("release_on_cancel", &self.release_on_cancel)
            .field("watch", &self.watch)
            .field("hot_standby", &self.hot_standby)
            .field("events", &self.events)
            .field("own_client", &self.client.is_some())
            .finish()
    }
}

impl LeaderElectionConfig {
    /// Leader election over the `coordination.k8s.io/v1` Lease named `lease_name` (required:
    /// every replica of one operator must name the same Lease, and no other operator may).
    pub fn new(lease_name: impl Into<String>) -> Self {
        Self {
            lease_name: lease_name.into(),
            namespace: None,
            identity: None,
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
            release_on_cancel: true,
            watch: true,
            hot_standby: true,
            events: true,
            client: None,
        }
    }

    /// The namespace of the Lease. Default: the pod's own namespace (from its service
    /// account), or else the client's default namespace (the kubeconfig context's, or
    /// `default`).
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// This replica's identity, written as the Lease's `holderIdentity`. It must be unique
    /// among the replicas: two replicas with one identity both believe they hold the lease.
    /// Default: the host name (the pod name, in a cluster) and a random suffix, as
    /// controller-runtime does.
    #[must_use]
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = Some(identity.into());
        self
    }

    /// How long a candidate waits, after it last saw the Lease change, before it takes the
    /// lease over (default 15 s). A whole number of seconds, since the Lease records it so.
    ///
    /// This is the longest an operator goes without a leader when the leader dies without
    /// releasing the lease.
    #[must_use]
    pub fn lease_duration(mut self, duration: Duration) -> Self {
        self.lease_duration = duration;
        self
    }

    /// How long the leader keeps trying to renew, counted from the start of its last successful
    /// renewal, before it stops leading (default 10 s). Shorter than the lease duration: the
    /// difference is the margin for requests still in flight when the leader stops, and for
    /// clocks that run at different rates.
    #[must_use]
    pub fn renew_deadline(mut self, deadline: Duration) -> Self {
        self.renew_deadline = deadline;
        self
    }

    /// How often the leader renews, and how often candidates retry (default 2 s; candidates
    /// add up to 20 % jitter so they do not retry in lockstep).
    #[must_use]
    pub fn retry_period(mut self, period: Duration) -> Self {
        self.retry_period = period;
        self
    }

    /// Whether the leader releases the lease when it stops because of a shutdown, after its
    /// runnables have stopped (default: true). The release writes an expired record (empty
    /// holder, `leaseDurationSeconds: 1`), so a candidate takes over at once instead of after
    /// the lease duration.
    #[must_use]
    pub fn release_on_cancel(mut self, on: bool) -> Self {
        self.release_on_cancel = on;
        self
    }

    /// Whether candidates watch the Lease as well as polling it (default: true), so a release
    /// or a change is noticed one API round trip after it happens rather than at the next
    /// retry. Turn it off only when the replicas may not `watch` Leases (RBAC): candidates then
    /// poll, as client-go's do.
    #[must_use]
    pub fn watch(mut self, on: bool) -> Self {
        self.watch = on;
        self
    }

    /// Whether a [`Manager`](crate::manager::Manager) starts its caches while it is still a
    /// candidate (default: true), so that when it wins, its controllers reconcile at once
    /// instead of listing everything first. An informer whose watch is failing when the
    /// replica wins (waiting out a backoff after an outage, its cache possibly stale) lists
    /// again before the controllers start, so a new leader never acts on what it missed. Off,
    /// a standby replica keeps no cache (less memory and API traffic), and is not
    /// [ready](crate::manager::Readiness) until it leads.
    #[must_use]
    pub fn hot_standby(mut self, on: bool) -> Self {
        self.hot_standby = on;
        self
    }

    /// Whether `became leader` and `stopped leading` Events are written on the Lease
    /// (default: true; the replica then needs permission to create Events).
    #[must_use]
    pub fn events(mut self, on: bool) -> Self {
        self.events = on;
        self
    }

    /// The client to read and write the Lease with.
    ///
    /// Default: the client the elector (or the manager) was given. Renewals are few and must
    /// never wait behind a busy controller's requests, so if the client controllers use has a
    /// client-side rate limit, give the lease a client without one.
    #[must_use]
    pub fn client(mut self, client: kube::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The Lease's name.
    pub fn lease_name(&self) -> &str {
        &self.lease_name
    }

    /// Checks the rules between the settings: a lease name; a lease duration of whole seconds,
    /// at least one; lease duration > renew deadline > 1.2 × retry period; a retry period of
    /// at least a millisecond; a non-empty identity when one is given.
    ///
    /// # Errors
    ///
    /// The first rule broken, saying how to fix it.
    pub fn validate(&self) -> Result<(), LeaderElectionError> {
        let invalid = |reason: String| Err(LeaderElectionError::InvalidConfig(reason));
        if self.lease_name.is_empty() {
            return invalid("the lease name is empty; name the Lease the replicas share".into());
        }
        if self.identity.as_deref() == Some("") {
            return invalid("the identity is empty; leave it unset for hostname_<random>".into());
        }
        if self.namespace.as_deref() == Some("") {
            return invalid("the namespace is empty; leave it unset for the pod's own".into());
        }
        let ld = self.lease_duration;
        if ld < Duration::from_secs(1) || ld.subsec_nanos() != 0 {
            return invalid(format!(
                "the lease duration {ld:?} must be a whole number of seconds, at least 1 (the Lease records it in seconds)"
            ));
        }
        if self.retry_period < Duration::from_millis(1) {
            return invalid(format!(
                "the retry period {:?} must be at least 1ms",
                self.retry_period
            ));
        }
        if ld <= self.renew_deadline {
            return invalid(format!(
                "the lease duration {ld:?} must be longer than the renew deadline {:?}",
                self.renew_deadline
            ));
        }
        if self.renew_deadline <= self.retry_period.mul_f64(JITTER_FACTOR) {
            return invalid(format!(
                "the renew deadline {:?} must be longer than {JITTER_FACTOR} × the retry period {:?}",
                self.renew_deadline, self.retry_period
            ));
        }
        Ok(())
    }
}

/// The identity a replica gets unless told otherwise: `<hostname>_<16 random hex digits>`,
/// controller-runtime's shape (the host name is the pod name in a cluster).
pub(crate) fn default_identity() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "windlass".to_string());
    format!("{host}_{:016x}", fastrand::u64(..))
}

/// The namespace of the Lease: configured, else the pod's own (read from `sa_file`), else the
/// client's default.
pub(crate) fn resolve_namespace(
    configured: Option<&str>,
    sa_file: &Path,
    client_default: &str,
) -> String {
    if let Some(ns) = configured {
        return ns.to_string();
    }
    std::fs::read_to_string(sa_file)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| client_default.to_string())
}

/// The service account namespace file of a pod.
pub(crate) fn service_account_namespace_file() -> &'static Path {
    Path::new(SERVICE_ACCOUNT_NAMESPACE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(config: &LeaderElectionConfig) -> String {
        match config.validate() {
            Err(LeaderElectionError::InvalidConfig(r)) => r,
            other => panic!("expected an invalid config, got {other:?}"),
        }
    }

    #[test]
    fn the_defaults_are_client_gos_and_valid() {
        let c = LeaderElectionConfig::new("op");
        assert_eq!(c.lease_duration, Duration::from_secs(15));
        assert_eq!(c.renew_deadline, Duration::from_secs(10));
        assert_eq!(c.retry_period, Duration::from_secs(2));
        assert!(c.release_on_cancel && c.watch && c.hot_standby && c.events);
        c.validate().unwrap();
    }

    #[test]
    fn the_lease_must_outlast_the_renew_deadline() {
        let c = LeaderElectionConfig::new("op").renew_deadline(Duration::from_secs(15));
        assert!(reason(&c).contains("must be longer than the renew deadline"));
    }

    #[test]
    fn the_renew_deadline_must_exceed_one_point_two_retry_periods() {
        let c = LeaderElectionConfig::new("op")
            .renew_deadline(Duration::from_millis(2400))
            .retry_period(Duration::from_secs(2));
        assert!(
            reason(&c).contains("1.2 × the retry period"),
            "{}",
            reason(&c)
        );
        LeaderElectionConfig::new("op")
            .renew_deadline(Duration::from_millis(2401))
            .retry_period(Duration::from_secs(2))
            .validate()
            .unwrap();
    }

    #[test]
    fn the_lease_duration_is_whole_seconds() {
        for bad in [Duration::from_millis(1500), Duration::from_millis(500)] {
            let c = LeaderElectionConfig::new("op")
                .lease_duration(bad)
                .renew_deadline(Duration::from_millis(400))
                .retry_period(Duration::from_millis(100));
            assert!(reason(&c).contains("whole number of seconds"));
        }
    }

    #[test]
    fn names_must_not_be_empty() {
        assert!(reason(&LeaderElectionConfig::new("")).contains("lease name"));
        assert!(reason(&LeaderElectionConfig::new("op").identity("")).contains("identity"));
        assert!(reason(&LeaderElectionConfig::new("op").namespace("")).contains("namespace"));
    }

    #[test]
    fn the_default_identity_is_the_host_name_and_a_random_suffix() {
        let a = default_identity();
        let b = default_identity();
        assert_ne!(a, b);
        let (host, suffix) = a.rsplit_once('_').unwrap();
        assert!(!host.is_empty());
        assert_eq!(suffix.len(), 16);
        assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn the_namespace_comes_from_config_then_the_service_account_then_the_client() {
        let dir = std::env::temp_dir().join(format!("windlass-ns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("namespace");
        std::fs::write(&file, "operators\n").unwrap();
        assert_eq!(resolve_namespace(Some("mine"), &file, "default"), "mine");
        assert_eq!(resolve_namespace(None, &file, "default"), "operators");
        let missing = dir.join("missing");
        assert_eq!(resolve_namespace(None, &missing, "dev"), "dev");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
