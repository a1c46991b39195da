//! The elector: client-go's leader election algorithm as a state machine over one Lease.
//!
//! ```text
//!             acquired                       lease renewed within the renew deadline
//! campaigning ─────────► leading ◄─────────┐ (every retry period)
//!      │                   │  └────────────┘
//!      │ shutdown          ├─ work ended (shutdown) ──► release ──► Ok(Some(output))
//!      ▼                   └─ not renewed by the deadline, or another holder seen
//!   Ok(None)                    ──► stop the work ──► release ──► Err(lost)
//! ```
//!
//! This module owns the transitions and their timing: when to try, when the lease observed
//! is expired, when the leader must give up, and what is logged and published on each
//! transition. The Lease's fields are the [lock](super::lock)'s business.
//!
//! # Clocks
//!
//! Expiry is judged only by this process's monotonic clock (`tokio::time::Instant`): a
//! candidate takes the lease over once the record it observed has not changed for the
//! record's `leaseDurationSeconds` *since it observed it*. `renewTime` is written for people
//! and never compared with a local clock, so replicas whose wall clocks disagree by any amount
//! elect correctly. What the algorithm does rely on is that clocks *run* at about the same
//! rate: the leader gives up (and drops its work) at most `renew deadline` after it sent its
//! last successful renewal, while a candidate waits `lease duration` after it saw that
//! renewal, which was later. A candidate whose clock runs faster than the leader's by a factor
//! below `lease duration / renew deadline` (1.5 with the defaults) can never take over while
//! the leader still leads; the same margin lets requests the leader sent just before the
//! deadline land before anyone else leads.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::config::{
    JITTER_FACTOR, LeaderElectionConfig, default_identity, resolve_namespace,
    service_account_namespace_file,
};
use super::error::LeaderElectionError;
use super::events;
use super::lock::{LeaseLock, Record, UpdateError, now_micros};
use super::{LeadershipHandle, LeadershipStatus};

/// A record and when this process first saw it (by its monotonic clock).
#[derive(Debug, Clone)]
struct Observed {
    record: Record,
    at: Instant,
}

/// What one attempt to acquire or renew came to.
#[derive(Debug)]
enum Tried {
    /// This replica holds the lease (it acquired, created or renewed it).
    Holding,
    /// Another replica holds it and, as far as this one can tell, still leads.
    HeldBy(String),
    /// The API failed or a write conflicted; nothing is known to have changed.
    Failed(Failure),
}

/// Why an attempt failed.
#[derive(Debug)]
struct Failure {
    message: String,
    /// Another replica wrote first (409): the algorithm working, not a fault.
    conflict: bool,
}

impl Failure {
    fn new(doing: &str, error: &dyn std::fmt::Display, conflict: bool) -> Self {
        Self {
            message: format!("{doing}: {error}"),
            conflict,
        }
    }

    fn of_api(doing: &str, error: &kube::Error) -> Self {
        let conflict = matches!(error, kube::Error::Api(status) if status.code == 409);
        Self::new(doing, error, conflict)
    }

    /// Logs the failure of an attempt to `what` (acquire, renew).
    fn log(&self, what: &str) {
        if self.conflict {
            tracing::debug!(error = %self.message, "could not {what}: the lease changed since it was read; retrying");
        } else {
            tracing::warn!(error = %self.message, "could not {what}; retrying");
        }
    }
}

/// How leadership ended, seen from the leading state.
enum Ended<T> {
    /// The work returned (after a shutdown, or on its own).
    Done(T),
    /// The lease was lost.
    Lost(LeaderElectionError),
}

/// Competes for a Lease and, while it holds it, runs the work only the leader may do.
///
/// A faithful implementation of client-go's `leaderelection` over a `coordination.k8s.io/v1`
/// Lease (`holderIdentity`, `leaseDurationSeconds`, `acquireTime`, `renewTime`,
/// `leaseTransitions`, resourceVersion-guarded updates), so windlass replicas and client-go
/// replicas can share one Lease. Two additions make handovers faster without changing what is
/// written: candidates watch the Lease, so a release is noticed one round trip after it
/// happens, and they retry exactly when the lease they observed expires rather than at their
/// next poll.
///
/// Most operators use it through [`Manager`](crate::manager::Manager) and
/// [`Config::leader_election`](crate::manager::Config::leader_election); on its own it runs
/// any future as the leader's work:
///
/// ```no_run
/// use tokio_util::sync::CancellationToken;
/// use windlass::leader::{LeaderElectionConfig, LeaderElector};
///
/// # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
/// let client = kube::Client::try_default().await?;
/// let elector = LeaderElector::new(client, LeaderElectionConfig::new("my-operator"))?;
/// let shutdown = CancellationToken::new();
/// let outcome = elector
///     .run(shutdown.clone(), |stop: CancellationToken| async move {
///         // Only the leader gets here; `stop` is cancelled on shutdown or when the lease
///         // is lost, and the work should then return promptly.
///         stop.cancelled().await;
///     })
///     .await;
/// # let _ = outcome;
/// # Ok(())
/// # }
/// ```
pub struct LeaderElector {
    identity: Arc<str>,
    lease_duration: Duration,
    renew_deadline: Duration,
    retry_period: Duration,
    release_on_cancel: bool,
    watch: bool,
    events: bool,
    hot_standby: bool,
    client: kube::Client,
    lock: LeaseLock,
    observed: Option<Observed>,
    status: Arc<watch::Sender<LeadershipStatus>>,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("lease", &self.lock.describe())
            .field("identity", &self.identity)
            .field("lease_duration", &self.lease_duration)
            .field("renew_deadline", &self.renew_deadline)
            .field("retry_period", &self.retry_period)
            .field("leading", &self.status.borrow().leading)
            .finish_non_exhaustive()
    }
}

/// A duration between `period` and `JITTER_FACTOR × period`, so candidates spread out.
fn jittered(period: Duration) -> Duration {
    period.mul_f64(1.0 + fastrand::f64() * (JITTER_FACTOR - 1.0))
}

impl LeaderElector {
    /// An elector for `config`, reading and writing the Lease with `config`'s client if it
    /// has one, else with `client`. Resolves the identity and the namespace defaults.
    ///
    /// # Errors
    ///
    /// [`LeaderElectionError::InvalidConfig`] when the configuration breaks a rule of
    /// [`LeaderElectionConfig::validate`].
    pub fn new(
        client: kube::Client,
        config: LeaderElectionConfig,
    ) -> Result<Self, LeaderElectionError> {
        config.validate()?;
        let client = config.client.unwrap_or(client);
        let namespace = resolve_namespace(
            config.namespace.as_deref(),
            service_account_namespace_file(),
            client.default_namespace(),
        );
        let identity: Arc<str> = config.identity.unwrap_or_else(default_identity).into();
        Ok(Self {
            lock: LeaseLock::new(client.clone(), &namespace, &config.lease_name),
            identity,
            lease_duration: config.lease_duration,
            renew_deadline: config.renew_deadline,
            retry_period: config.retry_period,
            release_on_cancel: config.release_on_cancel,
            watch: config.watch,
            events: config.events,
            hot_standby: config.hot_standby,
            client,
            observed: None,
            status: Arc::new(watch::Sender::new(LeadershipStatus::default())),
        })
    }

    /// This replica's identity, as written in `holderIdentity`.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// A handle that tells whether this replica leads, from anywhere.
    pub fn handle(&self) -> LeadershipHandle {
        LeadershipHandle {
            identity: self.identity.clone(),
            namespace: self.lock.namespace().into(),
            lease_name: self.lock.name().into(),
            status: self.status.subscribe(),
        }
    }

    /// Whether the manager should start its caches before leading.
    pub(crate) fn hot_standby(&self) -> bool {
        self.hot_standby
    }

    /// Campaigns for the lease until it is acquired or `shutdown` is cancelled; while leading,
    /// runs `lead` and renews the lease every retry period.
    ///
    /// `lead` gets a token (a child of `shutdown`) that is cancelled when `shutdown` is, or
    /// when the lease is lost.
    ///
    /// - Shutdown before leading: returns `Ok(None)` at once.
    /// - The work returns (after a shutdown, or on its own): the lease is kept renewed until
    ///   it does, then released (unless configured not to), and its output returned.
    /// - The lease is not renewed within the renew deadline, or another holder shows up: at
    ///   that instant the token is cancelled and the work dropped (whatever it was doing is
    ///   abandoned, as when a process is killed: controller-runtime exits), so nothing of it
    ///   runs past the renew deadline. Then the lease is released if this replica still holds
    ///   it, and the error says why leadership was lost. Anything the work spawned must itself
    ///   stop when the token is cancelled.
    ///
    /// Candidates retry for as long as it takes: API errors never end a campaign.
    ///
    /// # Errors
    ///
    /// [`LeaderElectionError::RenewDeadlineExceeded`] or [`LeaderElectionError::LeaseTaken`]
    /// when leadership is lost.
    pub async fn run<F, Fut>(
        mut self,
        shutdown: CancellationToken,
        lead: F,
    ) -> Result<Option<Fut::Output>, LeaderElectionError>
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future,
    {
        let span = tracing::info_span!(
            "leader_election",
            lease = %self.lock.describe(),
            identity = %self.identity,
        );
        async move {
            let Some(acquired_at) = self.campaign(&shutdown).await else {
                tracing::info!("shut down while campaigning");
                return Ok(None);
            };
            tracing::info!("acquired the lease; leading");
            self.set_status(true);
            if self.events
                && let Some(lease) = self.lock.lease.clone()
            {
                // Not awaited: the work starts without waiting for an event to be written.
                let (client, identity) = (self.client.clone(), self.identity.clone());
                tokio::spawn(
                    async move { events::publish(client, &lease, &identity, "became leader").await }
                        .in_current_span(),
                );
            }

            let stop = shutdown.child_token();
            let mut work = Box::pin(lead(stop.clone()));
            let ended = tokio::select! {
                out = &mut work => Ended::Done(out),
                lost = self.renew_until_lost(acquired_at) => Ended::Lost(lost),
            };
            match ended {
                Ended::Done(out) => {
                    drop(work);
                    tracing::info!("the leader's work has stopped; stepping down");
                    self.set_status(false);
                    self.step_down(self.renew_deadline).await;
                    Ok(Some(out))
                }
                Ended::Lost(error) => {
                    // First of all, and at once: nothing leader-only may go on.
                    stop.cancel();
                    drop(work);
                    self.set_status(false);
                    tracing::error!(%error, "stopped leading");
                    self.step_down(self.retry_period).await;
                    Err(error)
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Tries until this replica holds the lease; returns when the successful attempt started,
    /// or `None` on shutdown.
    async fn campaign(&mut self, shutdown: &CancellationToken) -> Option<Instant> {
        tracing::info!("attempting to acquire the leader lease");
        let mut watch: Option<BoxStream<'static, Result<Event<Lease>, watcher::Error>>> =
            self.watch.then(|| {
                let config = watcher::Config::default()
                    .fields(&format!("metadata.name={}", self.lock.name()));
                watcher::watcher(self.lock.api().clone(), config)
                    .default_backoff()
                    .map_err(|e| e)
                    .boxed()
            });
        loop {
            if shutdown.is_cancelled() {
                return None;
            }
            let start = Instant::now();
            match self.try_acquire_or_renew(false).await {
                Tried::Holding => return Some(start),
                Tried::HeldBy(holder) => {
                    tracing::debug!(%holder, "the lease is held by another replica and has not expired");
                }
                Tried::Failed(failure) => failure.log("acquire the lease"),
            }
            let next = Instant::now() + jittered(self.retry_period);
            // Between attempts: wait for the next poll, the moment the observed lease expires,
            // or the watch showing the lease free.
            loop {
                // Only an expiry still ahead: once expired, a failing attempt waits for the
                // next poll like any other (no busy loop during an outage).
                let wake = match self.expiry() {
                    Some(expiry) if expiry > Instant::now() => expiry.min(next),
                    _ => next,
                };
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => return None,
                    event = async { watch.as_mut().expect("guarded").next().await }, if watch.is_some() => {
                        match event {
                            Some(Ok(Event::Apply(lease) | Event::InitApply(lease))) => {
                                self.observe(lease);
                                if self.acquirable(Instant::now()) {
                                    tracing::debug!("the watch shows the lease free; trying now");
                                    break;
                                }
                            }
                            Some(Ok(Event::Delete(_))) => {
                                tracing::debug!("the lease was deleted; trying to create it");
                                self.lock.lease = None;
                                self.observed = None;
                                break;
                            }
                            Some(Ok(Event::Init | Event::InitDone)) => {}
                            Some(Err(error)) => {
                                tracing::debug!(%error, "watching the lease failed; retrying with backoff");
                            }
                            None => watch = None,
                        }
                    }
                    _ = sleep_until(wake) => break,
                }
            }
        }
    }

    /// Renews every retry period until it cannot; returns why leadership is lost.
    async fn renew_until_lost(&mut self, acquired_at: Instant) -> LeaderElectionError {
        let mut last = acquired_at;
        let mut next = last + self.retry_period;
        let mut last_error = String::from("no renewal attempt finished");
        loop {
            let deadline = last + self.renew_deadline;
            tokio::select! {
                biased;
                _ = sleep_until(deadline) => return self.deadline_exceeded(last_error),
                _ = sleep_until(next) => {}
            }
            let start = Instant::now();
            // Bounded by the deadline: a renewal still in flight then does not count.
            match timeout_at(deadline, self.try_acquire_or_renew(true)).await {
                Ok(Tried::Holding) => {
                    tracing::trace!("renewed the lease");
                    last = start;
                    next = start + self.retry_period;
                }
                Ok(Tried::HeldBy(holder)) => {
                    return LeaderElectionError::LeaseTaken {
                        lease: self.lock.describe(),
                        holder,
                    };
                }
                Ok(Tried::Failed(failure)) => {
                    failure.log("renew the lease (until the renew deadline)");
                    last_error = failure.message;
                    next = start + self.retry_period;
                }
                Err(_) => {
                    return self
                        .deadline_exceeded("a renewal was still in flight at the deadline".into());
                }
            }
        }
    }

    fn deadline_exceeded(&self, last_error: String) -> LeaderElectionError {
        LeaderElectionError::RenewDeadlineExceeded {
            lease: self.lock.describe(),
            renew_deadline: self.renew_deadline,
            last_error,
        }
    }

    /// client-go's `tryAcquireOrRenew`: a write based on what was last seen when that can
    /// succeed (the leader renewing, or a candidate taking a lease it saw free or expired),
    /// else a read, then a write if the lease is this replica's, free, or expired.
    async fn try_acquire_or_renew(&mut self, leading: bool) -> Tried {
        // 1. The fast path: one round trip. A conflict just means the view was stale.
        if let (Some(observed), Some(_)) = (self.observed.clone(), self.lock.lease.as_ref()) {
            let now = Instant::now();
            let mine = observed.record.holder == *self.identity;
            let fast = if mine {
                leading && !self.expired(&observed, now)
            } else {
                !leading && (!observed.record.is_held() || self.expired(&observed, now))
            };
            if fast {
                let record = self.desired(&observed.record);
                match self.lock.update(&record).await {
                    Ok(lease) => {
                        self.observe(lease);
                        return Tried::Holding;
                    }
                    Err(error) => {
                        tracing::debug!(%error, "optimistic write of the lease failed; reading it");
                    }
                }
            }
        }

        // 2. Read the lease, or create it.
        let lease = match self.lock.get().await {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                let record = self.desired(&Record::default());
                return match self.lock.create(&record).await {
                    Ok(lease) => {
                        self.observe(lease);
                        Tried::Holding
                    }
                    Err(error) => Tried::Failed(Failure::of_api("creating the lease", &error)),
                };
            }
            Err(error) => return Tried::Failed(Failure::of_api("reading the lease", &error)),
        };

        // 3. Whose is it, and has it expired (by this process's clock)?
        self.observe(lease);
        let observed = self.observed.clone().expect("just observed");
        let mine = observed.record.holder == *self.identity;
        if observed.record.is_held() && !mine {
            // A leader seeing another holder has lost, expired or not: the other replica
            // may already be running its controllers.
            if leading || !self.expired(&observed, Instant::now()) {
                return Tried::HeldBy(observed.record.holder);
            }
        }

        // 4. Write: renew, or take over.
        let record = self.desired(&observed.record);
        match self.lock.update(&record).await {
            Ok(lease) => {
                self.observe(lease);
                Tried::Holding
            }
            Err(UpdateError::Api(error)) => {
                Tried::Failed(Failure::of_api("writing the lease", &error))
            }
            Err(error) => Tried::Failed(Failure::new("writing the lease", &error, false)),
        }
    }

    /// The record to write over `current`: a renewal keeps `acquireTime` and the transition
    /// count; a takeover counts one more transition and starts a new `acquireTime`.
    fn desired(&self, current: &Record) -> Record {
        let now = now_micros();
        let mine = current.holder == *self.identity;
        Record {
            holder: self.identity.to_string(),
            lease_duration_seconds: self.lease_duration.as_secs() as i32,
            acquire_time: if mine {
                current.acquire_time
            } else {
                Some(now)
            },
            renew_time: Some(now),
            transitions: if mine {
                current.transitions
            } else if current == &Record::default() {
                // A new Lease starts at zero, as client-go's create does.
                0
            } else {
                current.transitions + 1
            },
            strategy: current.strategy.clone(),
            preferred_holder: current.preferred_holder.clone(),
        }
    }

    /// Takes note of the Lease as just read, written or watched: its record is observed
    /// *now* if it differs from the one observed before.
    fn observe(&mut self, lease: Lease) {
        let record = Record::from_lease(&lease);
        let changed = self.observed.as_ref().is_none_or(|o| o.record != record);
        if changed {
            let previous = self.observed.as_ref().map(|o| o.record.holder.clone());
            if previous.as_deref() != Some(record.holder.as_str()) {
                if record.is_held() {
                    tracing::info!(leader = %record.holder, "new leader observed");
                } else {
                    tracing::info!("the lease is free");
                }
            }
            self.observed = Some(Observed {
                record,
                at: Instant::now(),
            });
            self.publish_leader();
        }
        self.lock.lease = Some(lease);
    }

    /// Whether `observed` has gone unchanged for its lease duration, by this clock.
    fn expired(&self, observed: &Observed, now: Instant) -> bool {
        now >= Self::expires_at(observed)
    }

    fn expires_at(observed: &Observed) -> Instant {
        let secs = u64::try_from(observed.record.lease_duration_seconds).unwrap_or(0);
        observed.at + Duration::from_secs(secs)
    }

    /// When the lease another replica holds expires, if it is held by another.
    fn expiry(&self) -> Option<Instant> {
        self.observed
            .as_ref()
            .filter(|o| o.record.is_held() && o.record.holder != *self.identity)
            .map(Self::expires_at)
    }

    /// Whether a candidate could take the lease now, by what it observed.
    fn acquirable(&self, now: Instant) -> bool {
        self.observed
            .as_ref()
            .is_some_and(|o| !o.record.is_held() || self.expired(o, now))
    }

    /// Releases the lease if this replica still holds it and is configured to, then writes
    /// the `stopped leading` event; each bounded by `bound`.
    async fn step_down(&mut self, bound: Duration) {
        if self.release_on_cancel {
            match timeout(bound, self.release()).await {
                Ok(Ok(true)) => tracing::info!("released the lease"),
                Ok(Ok(false)) => {}
                Ok(Err(error)) => tracing::warn!(%error, "failed to release the lease"),
                Err(_) => tracing::warn!(?bound, "releasing the lease timed out"),
            }
        }
        if self.events
            && let Some(lease) = self.lock.lease.clone()
        {
            let publish = events::publish(
                self.client.clone(),
                &lease,
                &self.identity,
                "stopped leading",
            );
            let _ = timeout(bound, publish).await;
        }
    }

    /// client-go's `release`: if the record last seen is this replica's, writes an expired
    /// one (empty holder, `leaseDurationSeconds: 1`, the transition count kept) over it.
    /// Returns whether it wrote.
    async fn release(&mut self) -> Result<bool, String> {
        let Some(observed) = self.observed.clone() else {
            return Ok(false);
        };
        if observed.record.holder != *self.identity {
            return Ok(false);
        }
        let now = now_micros();
        let record = Record {
            holder: String::new(),
            lease_duration_seconds: 1,
            acquire_time: Some(now),
            renew_time: Some(now),
            transitions: observed.record.transitions,
            strategy: observed.record.strategy.clone(),
            preferred_holder: observed.record.preferred_holder.clone(),
        };
        let lease = self.lock.update(&record).await.map_err(|e| e.to_string())?;
        self.observe(lease);
        Ok(true)
    }

    fn set_status(&self, leading: bool) {
        self.status.send_if_modified(|s| {
            let changed = s.leading != leading;
            s.leading = leading;
            changed
        });
    }

    fn publish_leader(&self) {
        let leader = self
            .observed
            .as_ref()
            .map(|o| o.record.holder.clone())
            .filter(|h| !h.is_empty());
        self.status.send_if_modified(|s| {
            let changed = s.leader != leader;
            s.leader = leader;
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_retry_within_the_jitter_factor_of_the_retry_period() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(2));
            assert!(
                d >= Duration::from_secs(2) && d < Duration::from_millis(2400),
                "{d:?}"
            );
        }
    }
}
