//! Running a controller: informers registered and synced before any reconcile, a bounded pool
//! of workers taking keys from the workqueue, each reconcile guarded against panics and (when
//! configured) timeouts, and its outcome turned into the next step for the key.

use std::error::Error as StdError;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::builder::{Controller, PrimaryHandler};
use super::context::{Context, ReconcileReason, Shared};
use super::enqueue::Enqueuer;
use super::reconciler::{Action, Next, Reconciler, chain, is_conflict, is_terminal};
use crate::informer::{Cache, Informer, ObjectKey, panic_message};
use crate::metrics::{ControllerMetrics, Failure, Metrics, ReconcileResult};
use crate::queue::{Priority, Stamp, WorkQueue, default_controller_rate_limiter};

/// How one reconcile ended.
enum Outcome<E> {
    Done(Action),
    Failed(E),
    Panicked(String),
    TimedOut(Duration),
}

/// The error chain of `error` on one line: `a: b: c`. A source whose text its error already
/// printed is left out: kube's errors print their source in their own message *and* return
/// it from `source()`, which would otherwise show every API failure twice.
pub(crate) fn display_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in chain(error) {
        let text = e.to_string();
        if parts
            .last()
            .is_some_and(|previous| previous.contains(&text))
        {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

struct Worker<R: Reconciler> {
    reconciler: Arc<R>,
    shared: Arc<Shared>,
    enqueuer: Arc<Enqueuer>,
    primary: Arc<Informer<R::Object>>,
    timeout: Option<Duration>,
    metrics: Option<ControllerMetrics>,
    /// The controller's shutdown: once cancelled, a worker takes no next item with its `done`,
    /// and stops instead of waiting for one.
    shutdown: CancellationToken,
}

impl<R: Reconciler> Worker<R> {
    /// Reconciles `key` and marks it done, taking the next ready item with it unless the
    /// controller is shutting down; returns that item and the queue's stopwatch reading the
    /// work ended at (with metrics on), for the worker's next
    /// [`get_at`](crate::queue::WorkQueue::get_at) if there was none.
    async fn process(&self, key: ObjectKey) -> (Option<Stamp>, Option<(ObjectKey, Priority)>) {
        let queue = &self.enqueuer.queue;
        let (reason, failures) = self.enqueuer.take(&key);
        let Some(obj) = self.primary.store().get(&key) else {
            // Deleted before its turn: nothing to reconcile.
            queue.forget(&key);
            if failures > 0 {
                self.enqueuer.reset_failures(&key);
            }
            let (worked, next) = queue.done_and_next(&key, None, self.takes_next());
            return (worked.map(|w| w.at), next);
        };
        // Only this worker counts `key`'s failures while it holds `key`, so `failures` stays
        // true until the reconcile ends.
        let attempt = failures + 1;
        let ctx = Context::new(self.shared.clone(), reason, attempt);
        let span = tracing::info_span!(
            "reconcile",
            controller = %self.shared.controller,
            object = %key,
            reason = %ctx.reason(),
            attempt,
            outcome = tracing::field::Empty,
        );
        let outcome = async {
            let run = AssertUnwindSafe(self.reconciler.reconcile(obj.clone(), &ctx)).catch_unwind();
            let result = match self.timeout {
                Some(t) => match tokio::time::timeout(t, run).await {
                    Ok(r) => r,
                    Err(_) => return Outcome::TimedOut(t),
                },
                None => run.await,
            };
            match result {
                Ok(Ok(action)) => Outcome::Done(action),
                Ok(Err(e)) => Outcome::Failed(e),
                Err(payload) => Outcome::Panicked(panic_message(payload.as_ref())),
            }
        }
        .instrument(span.clone())
        .await;
        // The reconcile's end on the queue's stopwatch, read here, away from any lock (see
        // `done_and_next`).
        let finished_at = queue.stamp();
        let _enter = span.enter();
        // Each failure is logged exactly once, here, with its whole source chain; the
        // outcome goes on the span so every line of this reconcile can be found by it.
        let (result, failure) = match outcome {
            Outcome::Done(action) => {
                let result = match action.0 {
                    Next::AwaitChange => ReconcileResult::Success,
                    Next::RequeueAfter(_) => ReconcileResult::RequeueAfter,
                    Next::RequeueWithBackoff => ReconcileResult::Requeue,
                };
                span.record("outcome", result.label());
                tracing::debug!("reconciled");
                if failures > 0 {
                    self.enqueuer.reset_failures(&key);
                }
                self.apply(&key, action);
                (result, Failure::None)
            }
            Outcome::Failed(error) => {
                let terminal = is_terminal(&error);
                let failure = if terminal {
                    Failure::Terminal
                } else {
                    Failure::Error
                };
                match self.reconciler.on_error(&obj, &error, attempt, &ctx) {
                    Some(action) => {
                        span.record("outcome", "error");
                        tracing::debug!(error = %display_chain(&error), "reconcile failed; the error hook chose the next step");
                        self.apply_after_failure(&key, attempt, action);
                    }
                    None if terminal => {
                        span.record("outcome", "terminal_error");
                        tracing::error!(error = %display_chain(&error), "reconcile failed with a terminal error; not retrying until the object changes");
                        self.give_up(&key);
                    }
                    None if is_conflict(&error) => {
                        span.record("outcome", "conflict");
                        tracing::debug!(error = %display_chain(&error), "conflict: the object changed meanwhile; retrying");
                        self.retry(&key, attempt);
                    }
                    None => {
                        span.record("outcome", "error");
                        tracing::error!(error = %display_chain(&error), "reconcile failed; retrying with backoff");
                        self.retry(&key, attempt);
                    }
                }
                (ReconcileResult::Error, failure)
            }
            Outcome::Panicked(message) => {
                span.record("outcome", "panic");
                tracing::error!(panic = %message, "reconcile panicked; retrying with backoff");
                self.retry(&key, attempt);
                (ReconcileResult::Error, Failure::Panic)
            }
            Outcome::TimedOut(after) => {
                span.record("outcome", "timeout");
                tracing::error!(timeout = ?after, "reconcile timed out; retrying with backoff");
                self.retry(&key, attempt);
                (ReconcileResult::Error, Failure::Timeout)
            }
        };
        // The reconcile time is the queue's work duration (from `get` to the end read above),
        // which brackets the reconcile by a few hundred nanoseconds: reading the clock twice
        // more for it would cost more than the rest of the metrics together.
        let (worked, next) = queue.done_and_next(&key, finished_at, self.takes_next());
        if let Some(metrics) = &self.metrics {
            metrics.finish(worked.map_or(0, |w| w.nanos), result, failure);
        }
        (worked.map(|w| w.at), next)
    }

    /// Whether the worker takes its next item as it marks one done: not once the controller
    /// is shutting down, when a waiting worker stops too, and not once the task has spent its
    /// share of Tokio's cooperative budget: the worker then goes through `get_at`, which
    /// yields before taking anything.
    fn takes_next(&self) -> bool {
        !self.shutdown.is_cancelled() && tokio::task::coop::has_budget_remaining()
    }

    /// Retries a failed reconcile after the object's next backoff step.
    fn retry(&self, key: &ObjectKey, attempt: u32) {
        self.enqueuer.count_failure(key);
        self.enqueuer.enqueue_rate_limited(
            key.clone(),
            ReconcileReason::Retry {
                attempt: attempt + 1,
            },
        );
    }

    /// Waits for a change: the failures so far no longer count.
    fn give_up(&self, key: &ObjectKey) {
        self.enqueuer.queue.forget(key);
        self.enqueuer.reset_failures(key);
    }

    /// Does what the error hook chose. A retry it schedules is still a retry: the failure
    /// counts towards the next attempt number (and is reported as `Retry`), so a hook that
    /// paces retries by `attempt` sees it grow.
    fn apply_after_failure(&self, key: &ObjectKey, attempt: u32, action: Action) {
        let retry = ReconcileReason::Retry {
            attempt: attempt + 1,
        };
        match action.0 {
            Next::AwaitChange => self.give_up(key),
            Next::RequeueAfter(after) => {
                self.enqueuer.count_failure(key);
                self.enqueuer.enqueue_after(key.clone(), retry, after);
            }
            Next::RequeueWithBackoff => {
                self.enqueuer.count_failure(key);
                self.enqueuer.enqueue_rate_limited(key.clone(), retry);
            }
        }
    }

    /// Does what a successful reconcile asked for.
    fn apply(&self, key: &ObjectKey, action: Action) {
        let queue = &self.enqueuer.queue;
        match action.0 {
            Next::AwaitChange => queue.forget(key),
            Next::RequeueAfter(after) => {
                queue.forget(key);
                self.enqueuer
                    .enqueue_after(key.clone(), ReconcileReason::Requeue, after);
            }
            Next::RequeueWithBackoff => {
                self.enqueuer
                    .enqueue_rate_limited(key.clone(), ReconcileReason::Requeue);
            }
        }
    }
}

/// A duration within ±10 % of `period`.
fn jittered(period: Duration) -> Duration {
    let factor = 0.9 + fastrand::f64() * 0.2;
    // A period near `Duration::MAX` would overflow `mul_f64`; it means "practically never".
    Duration::try_from_secs_f64(period.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

impl<R: Reconciler> Controller<R>
where
    <R::Object as kube::Resource>::DynamicType: Default,
{
    /// Runs the controller until `shutdown` is cancelled; in-flight reconciles finish first.
    /// With `metrics`, its series (and its queue's) are created at zero now and recorded
    /// from then on.
    pub(crate) async fn run(
        self,
        client: kube::Client,
        cache: Cache,
        shutdown: CancellationToken,
        metrics: Option<Metrics>,
    ) {
        let mut queue = WorkQueue::builder()
            .name(self.name.clone())
            .rate_limiter(default_controller_rate_limiter());
        if let Some(metrics) = &metrics {
            queue = queue.metrics(metrics.workqueue(&self.name));
        }
        let queue: WorkQueue<ObjectKey> = queue.build();
        let controller_metrics = metrics
            .as_ref()
            .map(|m| m.controller(&self.name, self.max_concurrent, queue.scraped()));
        let enqueuer = Arc::new(Enqueuer::new(queue.clone()));
        let primary = cache.informer::<R::Object>(self.informer.clone());
        let waiters: Vec<_> = self
            .sources
            .iter()
            .map(|s| s.register(&cache, enqueuer.clone()))
            .collect();
        primary.add_handler(Arc::new(PrimaryHandler {
            enqueuer: enqueuer.clone(),
            predicates: self.predicates.clone(),
        }));

        // No reconcile before every cache this controller reads has its first list: that is
        // what makes the start-up pass see each object exactly once.
        let synced = async {
            primary.wait_synced().await;
            for wait in &waiters {
                wait().await;
            }
        };
        tokio::select! {
            _ = synced => {}
            _ = shutdown.cancelled() => {
                queue.shut_down();
                return;
            }
        }
        tracing::info!(controller = %self.name, workers = self.max_concurrent, "caches synced; starting workers");

        let recorder = if self.record_events {
            crate::events::Recorder::new(client.clone(), &self.name)
        } else {
            crate::events::Recorder::disabled(&self.name)
        };
        let shared = Shared {
            client,
            cache,
            controller: self.name.clone(),
            recorder,
        };
        let mut tasks = JoinSet::new();
        for _ in 0..self.max_concurrent {
            // Each worker its own `Shared`: every reconcile's context counts a reference to
            // it, and one count shared by workers on several threads would move between
            // their caches at every reconcile.
            let worker = Worker {
                reconciler: self.reconciler.clone(),
                shared: Arc::new(shared.clone()),
                enqueuer: enqueuer.clone(),
                primary: primary.clone(),
                timeout: self.timeout,
                metrics: controller_metrics.clone(),
                shutdown: shutdown.clone(),
            };
            let queue = queue.clone();
            tasks.spawn(async move {
                // When the worker's last item was done, if the queue measured it: the next
                // item taken at once is taken at that instant (one clock read fewer).
                let mut finished_at = None;
                // The item the last `done` handed over, if one was ready.
                let mut next = None;
                loop {
                    let key = match next.take() {
                        // One unit of Tokio's cooperative budget per item, as `get_at`
                        // spends: a reconcile that never waits (all it needs is in the cache)
                        // with an item always ready would otherwise keep this task running
                        // for the whole drain, and the tasks sharing its thread (watches,
                        // probes, the leader's renewals) would not run until the queue is
                        // empty. A next item is handed over only while budget remains
                        // (`takes_next`), so this never yields: the yield comes in `get_at`,
                        // with no item held, and a shutdown begun during it stops the worker
                        // below.
                        Some(key) => {
                            tokio::task::consume_budget().await;
                            Some(key)
                        }
                        None => tokio::select! {
                            biased;
                            _ = worker.shutdown.cancelled() => break,
                            key = queue.get_at(finished_at.take()) => key,
                        },
                    };
                    match key {
                        Some((key, _)) => (finished_at, next) = worker.process(key).await,
                        None => break,
                    }
                }
            });
        }
        if let Some(period) = self.resync {
            let primary = primary.clone();
            let enqueuer = enqueuer.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(jittered(period)) => {}
                    }
                    for obj in primary.store().list() {
                        enqueuer.enqueue(
                            ObjectKey::of(obj.as_ref()),
                            ReconcileReason::Resync,
                            Priority::LOW,
                        );
                    }
                }
            });
        }
        shutdown.cancelled().await;
        queue.shut_down();
        while tasks.join_next().await.is_some() {}
        tracing::info!(controller = %self.name, "stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resync_period_too_long_to_jitter_means_practically_never() {
        assert!(jittered(Duration::MAX) >= Duration::from_secs(u64::MAX / 2));
    }

    #[test]
    fn resync_jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(100));
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
    }

    #[test]
    fn error_chains_print_on_one_line() {
        #[derive(Debug, thiserror::Error)]
        #[error("updating status")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("connection reset"));
        assert_eq!(display_chain(&e), "updating status: connection reset");
    }

    /// Found by the chaos soak's report: every API failure was logged twice over, e.g.
    /// `ServiceError: connection refused: connection refused`.
    #[test]
    fn chaos_soak_error_lines_do_not_repeat_a_source_their_error_already_prints() {
        #[derive(Debug, thiserror::Error)]
        #[error("reading Deployment web")]
        struct Reading(#[source] kube::Error);
        let refused: Box<dyn StdError + Send + Sync> =
            Box::new(std::io::Error::other("connection refused"));
        let e = Reading(kube::Error::Service(refused));
        assert_eq!(
            display_chain(&e),
            "reading Deployment web: ServiceError: connection refused"
        );
    }
}
