//! The [`WorkQueue`] handle, its builder, and how `get` and shutdown wait.
//!
//! This file owns the public queue API and the waiting protocol around the state's one mutex.
//! It does not own item bookkeeping (`state.rs`) nor ordering (`priority.rs`, `delay.rs`).
//!
//! Waiting: a `get` that finds nothing registers with the `ready` [`Notify`] while still holding
//! the lock (so no wakeup between its check and its wait is lost) and counts itself in
//! `waiters`; adds wake one waiter only when that count is non-zero. When items are waiting
//! for a ready time, exactly one waiting `get` (the timer holder) also sleeps until the earliest
//! ready time; the others sleep on the notification alone, so a delayed item wakes one worker,
//! not all of them. A `get` that leaves (with an item, or cancelled) while items are still
//! ready, or while the timer is left unheld, wakes another waiter to take over.

use std::fmt;
use std::hash::Hash;
use std::pin::pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};

use super::metrics::QueueMetrics;
use super::priority::Priority;
use super::rate_limiter::{RateLimiter, default_controller_rate_limiter};
use super::state::{AfterTake, Record, State, Worked, ready_time};
use super::stopwatch::{Stamp, Stopwatch};

/// A deduplicating, fair, prioritised workqueue with delays and rate limiting: client-go's
/// `workqueue` with controller-runtime's priorities.
///
/// A `WorkQueue` is a cheap handle: clones share one queue. See the [module
/// documentation](super) for the semantics, and [`WorkQueue::builder`] to choose a name, a rate
/// limiter and metrics.
///
/// A worker loops on [`get`](Self::get), processes the item, then calls [`done`](Self::done):
///
/// ```
/// use windlass::queue::WorkQueue;
///
/// async fn worker(queue: WorkQueue<String>) {
///     while let Some(key) = queue.get().await {
///         let ok = reconcile(&key).await;
///         if ok {
///             queue.forget(&key);
///         } else {
///             queue.add_rate_limited(key.clone());
///         }
///         queue.done(&key);
///     }
/// }
/// # async fn reconcile(_: &str) -> bool { true }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let queue = WorkQueue::new("q");
/// # queue.add("ns/a".to_owned());
/// # queue.shut_down();
/// # worker(queue).await;
/// # }
/// ```
pub struct WorkQueue<K> {
    shared: Arc<Shared<K>>,
}

struct Shared<K> {
    name: String,
    state: Mutex<State<K>>,
    /// Wakes `get` calls waiting for an item.
    ready: Notify,
    /// Wakes `shut_down_with_drain` calls waiting for in-flight items.
    drained: Notify,
    rate_limiter: Arc<dyn RateLimiter<K>>,
    metrics: Option<Arc<dyn QueueMetrics>>,
    /// What the metrics' durations are read on, when there are metrics. Read before taking the
    /// lock, not under it: the lock is held for less, which is what matters when workers on
    /// several cores contend for it.
    stopwatch: Option<Stopwatch>,
}

impl<K> Shared<K> {
    /// The stopwatch's reading now, if the queue has metrics (no clock read otherwise).
    fn stamp(&self) -> Option<Stamp> {
        self.stopwatch.as_ref().map(Stopwatch::now)
    }

    /// What the taker of an item does once the lock is released: the queue latency to the
    /// hooks (only the depth and count hooks, whose order matters, run under the lock), and
    /// another waiting `get` woken if items are left for it.
    #[inline]
    fn after_take(&self, after: AfterTake) {
        if let (Some(m), Some(latency)) = (&self.metrics, after.latency) {
            m.queue_latency(latency);
        }
        if after.wake_another {
            self.ready.notify_one();
        }
    }
}

/// What the metrics read from a queue when they are scraped, whatever its key type.
pub(crate) trait Scraped: Send + Sync {
    /// Items handed out by `get` and not yet `done`.
    fn in_flight(&self) -> usize;
    /// Moves what the queue tallied into its series, and reports its work in flight now to
    /// them, if it keeps a tally.
    fn hand_over_tally(&self);
}

impl<K: Send + Sync> Scraped for Shared<K> {
    fn in_flight(&self) -> usize {
        self.state.lock().processing()
    }
    fn hand_over_tally(&self) {
        let now = self.stamp();
        self.state.lock().hand_over_tally(now);
    }
}

impl<K> Drop for Shared<K> {
    /// What the queue tallied since the last scrape still counts.
    fn drop(&mut self) {
        let now = self.stamp();
        self.state.get_mut().hand_over_tally(now);
    }
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> fmt::Debug for WorkQueue<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkQueue")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl<K> WorkQueue<K>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
{
    /// A queue named `name` with the default rate limiter and no metrics.
    pub fn new(name: impl Into<String>) -> Self {
        Self::builder().name(name).build()
    }

    /// A builder to choose the queue's name, rate limiter and metrics.
    pub fn builder() -> WorkQueueBuilder<K> {
        WorkQueueBuilder::default()
    }

    /// The queue's name, the `name` label of its metrics.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Adds an item at [`Priority::NORMAL`]. Adds after [`shut_down`](Self::shut_down) are
    /// ignored.
    pub fn add(&self, item: K) {
        self.add_with_priority(item, Priority::NORMAL);
    }

    /// Adds an item at `priority`, or raises the priority of an item already queued (never
    /// lowers it). An item being processed is queued again when it is done.
    pub fn add_with_priority(&self, item: K, priority: Priority) {
        let shared = &*self.shared;
        let stamp = shared.stamp();
        let wake = {
            let mut state = shared.state.lock();
            state.add(item, priority, stamp) && state.waiters > 0
        };
        if wake {
            shared.ready.notify_one();
        }
    }

    /// Adds an item at [`Priority::NORMAL`] once `delay` has passed; see
    /// [`add_after_with_priority`](Self::add_after_with_priority).
    pub fn add_after(&self, item: K, delay: Duration) {
        self.add_after_with_priority(item, delay, Priority::NORMAL);
    }

    /// Adds an item at `priority` once `delay` has passed.
    ///
    /// A zero delay is a plain add. An item already waiting keeps the earlier of its two ready
    /// times; an item already queued stays queued (its priority may rise). Items waiting at
    /// shutdown are dropped.
    pub fn add_after_with_priority(&self, item: K, delay: Duration, priority: Priority) {
        if delay.is_zero() {
            return self.add_with_priority(item, priority);
        }
        let shared = &*self.shared;
        let ready_at = ready_time(Instant::now(), delay);
        let wake = {
            let mut state = shared.state.lock();
            state.add_after(item, ready_at, priority) && state.waiters > 0
        };
        if wake {
            shared.ready.notify_one();
        }
    }

    /// Adds an item at [`Priority::NORMAL`] after the delay the queue's rate limiter gives it
    /// (which counts a failure of the item): the way to retry an item that failed.
    pub fn add_rate_limited(&self, item: K) {
        self.add_rate_limited_with_priority(item, Priority::NORMAL);
    }

    /// Adds an item at `priority` after the delay the queue's rate limiter gives it. A worker
    /// that took the item with [`get_with_priority`](Self::get_with_priority) can retry it at
    /// the priority it had.
    pub fn add_rate_limited_with_priority(&self, item: K, priority: Priority) {
        let delay = self.shared.rate_limiter.when(&item);
        if let Some(metrics) = &self.shared.metrics
            && !self.is_shutting_down()
        {
            metrics.retry();
        }
        self.add_after_with_priority(item, delay, priority);
    }

    /// Resets the rate limiter's failure count for an item, once it has been processed
    /// successfully. It does not remove the item from the queue.
    pub fn forget(&self, item: &K) {
        self.shared.rate_limiter.forget(item);
    }

    /// How many times the item has been rate limited since it was last forgotten.
    pub fn num_requeues(&self, item: &K) -> u32 {
        self.shared.rate_limiter.num_requeues(item)
    }

    /// Waits for an item and hands it out; the caller must call [`done`](Self::done) with it
    /// when it has finished processing it.
    ///
    /// Returns `None` once the queue is shut down and no item is left to hand out. Items
    /// queued before [`shut_down`](Self::shut_down) are still handed out.
    ///
    /// Cancel safe: dropping the future before it completes loses no item and no wakeup.
    ///
    /// Like Tokio's channels, it takes part in Tokio's cooperative scheduling: each call spends
    /// a unit of the task's budget, and once the budget is spent it yields before handing an
    /// item out. So a worker loop whose processing never waits, over a queue that always has
    /// an item ready, still lets the other tasks on its thread run.
    ///
    /// # Panics
    ///
    /// If it has to wait for a delayed item outside a Tokio runtime with the time driver
    /// enabled.
    pub async fn get(&self) -> Option<K> {
        self.get_with_priority().await.map(|(item, _)| item)
    }

    /// Like [`get`](Self::get), also returning the priority the item was queued at.
    ///
    /// # Panics
    ///
    /// If it has to wait for a delayed item outside a Tokio runtime with the time driver
    /// enabled.
    pub async fn get_with_priority(&self) -> Option<(K, Priority)> {
        self.get_at(None).await
    }

    /// [`get_with_priority`](Self::get_with_priority) for a worker that has just finished an
    /// item: `finished_at` is the reading its last item's work ended at, as
    /// [`done_and_next`](Self::done_and_next) returned it. If an item is ready at once, that
    /// reading serves as the time it was taken (for the queue and work duration metrics)
    /// instead of a second one a few hundred nanoseconds later; an item the worker has to wait
    /// for reads the stopwatch when it comes.
    pub(crate) async fn get_at(&self, finished_at: Option<Stamp>) -> Option<(K, Priority)> {
        tokio::task::consume_budget().await;
        let shared = &*self.shared;
        let mut finished_at = finished_at;
        let mut waiter = Waiter {
            shared,
            registered: false,
            timer: None,
        };
        loop {
            let mut notified = pin!(shared.ready.notified());
            // The stopwatch is read before taking the lock, unless the worker's last `done`
            // reading serves; Tokio's clock under it, only if an item waits for a ready time.
            let stamp = finished_at.take().or_else(|| shared.stamp());
            let deadline = {
                let mut state = shared.state.lock();
                waiter.unregister(&mut state);
                if let Some(item) = state.pop(Instant::now, stamp) {
                    let after = state.after_take();
                    drop(state);
                    shared.after_take(after);
                    return Some(item);
                }
                if state.shutting_down {
                    return None;
                }
                notified.as_mut().enable();
                state.waiters += 1;
                waiter.registered = true;
                waiter.timer = state.claim_timer();
                waiter.timer
            };
            match deadline {
                Some(deadline) => {
                    tokio::select! {
                        biased;
                        () = notified => {}
                        () = sleep_until(deadline) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Marks an item as done processing. If it was added again meanwhile, it is queued again
    /// now. Calling it for an item that is not being processed does nothing.
    pub fn done(&self, item: &K) {
        self.done_and_next(item, None, false);
    }

    /// The metrics' stopwatch reading now, if the queue has metrics: a controller's worker
    /// takes it as its reconcile returns and hands it to [`done_and_next`](Self::done_and_next).
    pub(crate) fn stamp(&self) -> Option<Stamp> {
        self.shared.stamp()
    }

    /// [`done`](Self::done) for a controller's worker, which then takes its next item, if
    /// `take_next` and one is ready, under the same turn at the queue's lock, as
    /// [`get_at`](Self::get_at) would hand it out (an item is still handed out after
    /// [`shut_down`](Self::shut_down), as `get` does): where workers on two threads contend
    /// for the queue, one turn at its lock per item instead of two. If none is ready, the
    /// worker waits in `get_at`.
    ///
    /// Also returns how long the item was processed since `get` and when that was measured
    /// (when the queue has metrics): a controller reports it as its reconcile time and passes
    /// the reading to `get_at`, so a reconcile reads the stopwatch once. `finished_at` is the
    /// reading the worker took when its work ended ([`stamp`](Self::stamp)); without it, the
    /// stopwatch is read here. A next item taken here is taken at that reading.
    ///
    /// A worker that reads it as its reconcile returns reads it away from every lock: measured
    /// with workers on two threads contending for the queue, reading it here, just before
    /// taking the queue's lock, cost a no-op reconcile about 5 % more than reading it there.
    pub(crate) fn done_and_next(
        &self,
        item: &K,
        finished_at: Option<Stamp>,
        take_next: bool,
    ) -> (Option<Worked>, Option<(K, Priority)>) {
        let shared = &*self.shared;
        let stamp = finished_at.or_else(|| shared.stamp());
        let (wake, drained, worked, unreported, next, latency) = {
            let mut state = shared.state.lock();
            let requeued = state.done(item, stamp);
            let worked = state.last_work.take();
            let unreported = state.unreported_work.take();
            let next = if take_next {
                state.pop(Instant::now, stamp)
            } else {
                None
            };
            let (wake, latency) = match next {
                // Taking an item decides by itself whether another `get` is woken (for the
                // item queued again here, say).
                Some(_) => {
                    let after = state.after_take();
                    (after.wake_another, after.latency)
                }
                None => (requeued && state.waiters > 0, None),
            };
            (
                wake,
                state.draining && state.processing() == 0,
                worked,
                unreported,
                next,
                latency,
            )
        };
        if let Some(m) = &shared.metrics {
            if let Some(seconds) = unreported {
                m.work_duration(seconds);
            }
            if let Some(seconds) = latency {
                m.queue_latency(seconds);
            }
        }
        if wake {
            shared.ready.notify_one();
        }
        if drained {
            shared.drained.notify_waiters();
        }
        (worked, next)
    }

    /// Items ready to be handed out; items being processed or waiting for a ready time are not
    /// counted.
    pub fn len(&self) -> usize {
        let stamp = self.shared.stamp();
        self.shared.state.lock().ready_len(Instant::now, stamp)
    }

    /// Whether no item is ready to be handed out.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shuts the queue down: later adds are ignored, items waiting for a ready time are
    /// dropped, and [`get`](Self::get) returns `None` once the items already queued are handed
    /// out. Also ends the wait of a [`shut_down_with_drain`](Self::shut_down_with_drain).
    pub fn shut_down(&self) {
        {
            let mut state = self.shared.state.lock();
            state.shut_down();
            state.draining = false;
        }
        self.shared.ready.notify_waiters();
        self.shared.drained.notify_waiters();
    }

    /// Shuts the queue down like [`shut_down`](Self::shut_down), then waits until every item
    /// handed out has been [`done`](Self::done), including items handed out during the wait.
    /// A later `shut_down` stops the wait.
    pub async fn shut_down_with_drain(&self) {
        let shared = &*self.shared;
        {
            let mut state = shared.state.lock();
            state.shut_down();
            state.draining = true;
        }
        shared.ready.notify_waiters();
        loop {
            let mut drained = pin!(shared.drained.notified());
            drained.as_mut().enable();
            {
                let state = shared.state.lock();
                if !state.draining || state.processing() == 0 {
                    return;
                }
            }
            drained.await;
        }
    }

    /// Whether [`shut_down`](Self::shut_down) or
    /// [`shut_down_with_drain`](Self::shut_down_with_drain) has been called.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.state.lock().shutting_down
    }

    /// What the metrics read from this queue at a scrape, for as long as the queue lives.
    pub(crate) fn scraped(&self) -> Weak<dyn Scraped> {
        Arc::downgrade(&self.shared) as Weak<Shared<K>>
    }

    /// Reports the unfinished work and longest-running processor metrics, computed from the
    /// items in flight now; it does nothing for a queue without metrics.
    ///
    /// A queue built with windlass's own series
    /// ([`Metrics::workqueue`](crate::metrics::Metrics::workqueue), as every controller's queue
    /// is) reports them at each scrape by itself. A queue with [`QueueMetrics`] of your own
    /// needs this called periodically: client-go's queues do it every 500 ms.
    ///
    /// An item's start is kept with the item, so that taking and finishing it touch nothing
    /// else; this reads the queue's items under its lock until it has found those in flight,
    /// at worst every item, queued ones too: about 3 µs per thousand items up to 100 000,
    /// 8 ms for a million (measured on the book's performance chapter's machine). On a queue
    /// of hundreds of thousands of items, call it seconds apart rather than every 500 ms.
    pub fn update_unfinished_work(&self) {
        let (Some(metrics), Some(now)) = (&self.shared.metrics, self.shared.stamp()) else {
            return;
        };
        let state = self.shared.state.lock();
        let (total, longest) = state.unfinished_work(now);
        metrics.unfinished_work(total);
        metrics.longest_running_processor(longest);
    }

    /// `get` without waiting.
    #[cfg(test)]
    pub(crate) fn try_get_for_test(&self) -> Option<K> {
        let stamp = self.shared.stamp();
        let mut state = self.shared.state.lock();
        let taken = state
            .pop(Instant::now, stamp)
            .map(|(item, _)| (item, state.after_take()));
        drop(state);
        taken.map(|(item, after)| {
            self.shared.after_take(after);
            item
        })
    }

    /// Entries in the deadline heap, live or stale.
    #[cfg(test)]
    pub(crate) fn delay_entries_for_test(&self) -> usize {
        self.shared.state.lock().delay_entries()
    }
}

/// A `get`'s registration as a waiter; unregisters on drop if the `get` is cancelled.
struct Waiter<'a, K> {
    shared: &'a Shared<K>,
    registered: bool,
    /// The ready time this waiter sleeps until as the timer holder.
    timer: Option<Instant>,
}

impl<K> Waiter<'_, K> {
    fn unregister(&mut self, state: &mut State<K>) {
        if !self.registered {
            return;
        }
        self.registered = false;
        state.waiters -= 1;
        if self
            .timer
            .take()
            .is_some_and(|timer| state.timer == Some(timer))
        {
            state.timer = None;
        }
    }
}

impl<K> Drop for Waiter<'_, K> {
    fn drop(&mut self) {
        if !self.registered {
            return;
        }
        let wake = {
            let mut state = self.shared.state.lock();
            self.unregister(&mut state);
            state.should_wake_another()
        };
        if wake {
            self.shared.ready.notify_one();
        }
    }
}

/// Builds a [`WorkQueue`]: its name, rate limiter and metrics.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use windlass::queue::{ExponentialFailureRateLimiter, NoopMetrics, WorkQueue};
///
/// let queue: WorkQueue<String> = WorkQueue::builder()
///     .name("deployments")
///     .rate_limiter(ExponentialFailureRateLimiter::new(
///         Duration::from_millis(100),
///         Duration::from_secs(60),
///     ))
///     .metrics(Arc::new(NoopMetrics))
///     .build();
/// assert_eq!(queue.name(), "deployments");
/// ```
#[must_use]
pub struct WorkQueueBuilder<K> {
    name: String,
    rate_limiter: Option<Arc<dyn RateLimiter<K>>>,
    metrics: Option<Arc<dyn QueueMetrics>>,
}

impl<K> Default for WorkQueueBuilder<K> {
    fn default() -> Self {
        Self {
            name: String::new(),
            rate_limiter: None,
            metrics: None,
        }
    }
}

impl<K> fmt::Debug for WorkQueueBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkQueueBuilder")
            .field("name", &self.name)
            .field(
                "rate_limiter",
                &self.rate_limiter.as_ref().map(|_| "custom"),
            )
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl<K> WorkQueueBuilder<K>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
{
    /// The queue's name, used as the `name` label of its metrics. Defaults to empty.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The rate limiter behind [`WorkQueue::add_rate_limited`]. Defaults to
    /// [`default_controller_rate_limiter`], client-go's controller default.
    pub fn rate_limiter(mut self, rate_limiter: impl RateLimiter<K> + 'static) -> Self {
        self.rate_limiter = Some(Arc::new(rate_limiter));
        self
    }

    /// Where the queue reports its metrics. Defaults to none: the queue then does not even read
    /// the clock for them.
    ///
    /// Given windlass's own [`WorkqueueMetrics`](crate::metrics::WorkqueueMetrics), the queue
    /// keeps its adds, depths and durations itself and hands them to those series when they
    /// are scraped, instead of calling the hooks for each item.
    ///
    /// The durations are read on the CPU's counter (through `quanta`: no fence, so it does not
    /// wait for the loads before it as `Instant::now` does), or on Tokio's clock if that is
    /// paused when the queue is built: a test that starts paused and advances time sees the
    /// durations it advanced. Pausing the clock after the queue is built does not switch it.
    pub fn metrics(mut self, metrics: Arc<dyn QueueMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Builds the queue.
    pub fn build(self) -> WorkQueue<K> {
        let rate_limiter = self
            .rate_limiter
            .unwrap_or_else(|| Arc::new(default_controller_rate_limiter()));
        let record = Record::to(self.metrics.as_ref());
        let series = match &record {
            Record::Tally { series, .. } => Some(series.clone()),
            _ => None,
        };
        let shared = Arc::new(Shared {
            name: self.name,
            state: Mutex::new(State::recording(record)),
            ready: Notify::new(),
            drained: Notify::new(),
            rate_limiter,
            stopwatch: self.metrics.as_ref().map(|_| Stopwatch::new()),
            metrics: self.metrics,
        });
        if let Some(series) = series {
            series.track(Arc::downgrade(&shared) as Weak<Shared<K>>);
        }
        WorkQueue { shared }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use tokio::task::yield_now;
    use tokio::time::advance;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn queue() -> WorkQueue<&'static str> {
        WorkQueue::new("test")
    }

    async fn take(queue: &WorkQueue<&'static str>) -> &'static str {
        let item = queue.get().await.expect("an item is queued");
        queue.done(&item);
        item
    }

    /// Whether `future` is still pending after every other task has had a chance to run.
    async fn still_pending<T>(handle: &tokio::task::JoinHandle<T>) -> bool {
        for _ in 0..10 {
            yield_now().await;
        }
        !handle.is_finished()
    }

    #[tokio::test]
    async fn items_are_handed_out_first_in_first_out_within_a_priority_level() {
        let queue = queue();
        for item in ["a", "b", "c", "d"] {
            queue.add(item);
        }
        queue.add("a");
        for expected in ["a", "b", "c", "d"] {
            assert_eq!(take(&queue).await, expected);
        }
    }

    #[tokio::test]
    async fn item_added_many_times_before_it_is_taken_is_processed_once() {
        let queue = queue();
        for _ in 0..10 {
            queue.add("a");
        }
        assert_eq!(queue.len(), 1);
        assert_eq!(take(&queue).await, "a");
        assert_eq!(queue.try_get_for_test(), None);
    }

    #[tokio::test]
    async fn item_is_never_handed_to_two_workers_at_once() {
        let queue = queue();
        queue.add("a");
        let a = queue.get().await.unwrap();
        queue.add("a");
        let second = tokio::spawn({
            let queue = queue.clone();
            async move { queue.get().await }
        });
        assert!(
            still_pending(&second).await,
            "a second worker got an item in flight"
        );
        queue.done(&a);
        assert_eq!(second.await.unwrap(), Some("a"));
    }

    #[tokio::test]
    async fn item_added_while_processing_is_requeued_once_after_done() {
        let queue = queue();
        queue.add("a");
        let a = queue.get().await.unwrap();
        queue.add("a");
        queue.add("a");
        assert_eq!(queue.len(), 0, "not queued while it is processed");
        queue.done(&a);
        assert_eq!(queue.len(), 1);
        assert_eq!(take(&queue).await, "a");
        assert_eq!(queue.try_get_for_test(), None);
    }

    /// On a one-thread runtime, a task spawned while a worker loop takes and finishes items
    /// without ever waiting runs before the loop has emptied the queue.
    #[tokio::test]
    async fn a_worker_loop_that_never_waits_still_lets_other_tasks_run() {
        const ITEMS: u32 = 1000;
        let queue = WorkQueue::new("test");
        for i in 0..ITEMS {
            queue.add(i);
        }
        let ran = Arc::new(AtomicBool::new(false));
        tokio::spawn({
            let ran = ran.clone();
            async move { ran.store(true, Ordering::SeqCst) }
        });
        let mut taken = 0;
        while !ran.load(Ordering::SeqCst) && taken < ITEMS {
            let item = queue.get().await.expect("items are queued");
            queue.done(&item);
            taken += 1;
        }
        assert!(
            taken < ITEMS,
            "the other task ran only after all {ITEMS} items: get never yielded"
        );
    }

    #[tokio::test]
    async fn done_for_an_item_not_being_processed_does_nothing() {
        let queue = queue();
        queue.done(&"unknown");
        queue.add("a");
        queue.done(&"a");
        assert_eq!(queue.len(), 1);
        assert_eq!(take(&queue).await, "a");
        assert!(queue.is_empty());
    }

    #[tokio::test]
    async fn done_and_next_hands_out_the_next_ready_item_as_get_would() {
        let queue = WorkQueue::new("test");
        queue.add("a");
        queue.add_with_priority("low", Priority::LOW);
        queue.add("b");
        let a = queue.get().await.unwrap();
        // By priority, then in order: "b" before "low".
        let (_, next) = queue.done_and_next(&a, None, true);
        assert_eq!(next, Some(("b", Priority::NORMAL)));
        // "b" is being processed now: added again, it is not ready until it is done, and
        // then it goes before "low" again.
        queue.add("b");
        assert_eq!(queue.len(), 1);
        let (_, next) = queue.done_and_next(&"b", None, true);
        assert_eq!(next, Some(("b", Priority::NORMAL)));
        // Taking nothing leaves "low" for `get`.
        assert_eq!(queue.done_and_next(&"b", None, false).1, None);
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.get().await, Some("low"));
        assert_eq!(queue.done_and_next(&"low", None, true).1, None);
        assert_eq!(queue.len(), 0);
    }

    #[tokio::test]
    async fn an_item_added_while_processed_comes_back_with_its_own_done_and_next() {
        let queue = WorkQueue::new("test");
        queue.add("a");
        let a = queue.get().await.unwrap();
        queue.add("a");
        assert_eq!(
            queue.done_and_next(&a, None, true).1,
            Some(("a", Priority::NORMAL))
        );
        assert_eq!(queue.len(), 0);
        assert_eq!(queue.done_and_next(&a, None, true).1, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_get_gets_what_done_and_next_leaves_and_nothing_it_took() {
        let queue = WorkQueue::new("test");
        queue.add("a");
        let a = queue.get().await.unwrap();
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { queue.get().await }
        });
        tokio::task::yield_now().await;
        // Queued again while processed: its own `done_and_next` takes it back, so the
        // waiting `get` must not get it too.
        queue.add("a");
        assert_eq!(
            queue.done_and_next(&a, None, true).1,
            Some(("a", Priority::NORMAL))
        );
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        // Left to the queue (taking nothing), it goes to the waiting `get`.
        queue.add("a");
        assert_eq!(queue.done_and_next(&a, None, false).1, None);
        assert_eq!(waiting.await.unwrap(), Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn done_and_next_still_hands_out_after_shut_down_and_lets_a_drain_finish() {
        let queue = WorkQueue::new("test");
        queue.add("a");
        queue.add("b");
        let a = queue.get().await.unwrap();
        queue.shut_down();
        // Like `get`, it hands out what was queued before the shut-down.
        let (_, next) = queue.done_and_next(&a, None, true);
        assert_eq!(next, Some(("b", Priority::NORMAL)));
        let drained = tokio::spawn({
            let queue = queue.clone();
            async move { queue.shut_down_with_drain().await }
        });
        tokio::task::yield_now().await;
        assert!(!drained.is_finished(), "\"b\" is still being processed");
        assert_eq!(queue.done_and_next(&"b", None, true).1, None);
        drained.await.unwrap();
        assert_eq!(queue.get().await, None);
    }

    #[tokio::test]
    async fn get_waits_for_an_item() {
        let queue = queue();
        let getter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.get().await }
        });
        assert!(still_pending(&getter).await);
        queue.add("a");
        assert_eq!(getter.await.unwrap(), Some("a"));
    }

    #[tokio::test]
    async fn concurrent_getters_each_receive_a_distinct_item() {
        let queue = queue();
        let getters: Vec<_> = (0..8)
            .map(|_| {
                let queue = queue.clone();
                tokio::spawn(async move { queue.get().await })
            })
            .collect();
        yield_now().await;
        let items = ["a", "b", "c", "d", "e", "f", "g", "h"];
        for item in items {
            queue.add(item);
        }
        let mut got = Vec::new();
        for getter in getters {
            got.push(getter.await.unwrap().unwrap());
        }
        got.sort_unstable();
        assert_eq!(got, items);
    }

    #[tokio::test]
    async fn get_keeps_handing_out_queued_items_after_shut_down_then_returns_none() {
        let queue = queue();
        queue.add("a");
        queue.add("b");
        queue.shut_down();
        assert!(queue.is_shutting_down());
        assert_eq!(take(&queue).await, "a");
        assert_eq!(take(&queue).await, "b");
        assert_eq!(queue.get().await, None);
    }

    #[tokio::test]
    async fn shut_down_wakes_every_waiting_get_with_none() {
        let queue = queue();
        let getters: Vec<_> = (0..3)
            .map(|_| {
                let queue = queue.clone();
                tokio::spawn(async move { queue.get().await })
            })
            .collect();
        yield_now().await;
        queue.shut_down();
        for getter in getters {
            assert_eq!(getter.await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn adds_after_shut_down_are_ignored() {
        let queue = queue();
        queue.shut_down();
        queue.add("a");
        queue.add_with_priority("b", Priority::LOW);
        queue.add_after("c", MS);
        queue.add_rate_limited("d");
        assert_eq!(queue.len(), 0);
        assert_eq!(queue.get().await, None);
    }

    #[tokio::test]
    async fn item_added_while_processing_before_shut_down_is_still_handed_out_after_done() {
        let queue = queue();
        queue.add("a");
        let a = queue.get().await.unwrap();
        queue.add("a");
        queue.shut_down();
        queue.done(&a);
        assert_eq!(take(&queue).await, "a");
        assert_eq!(queue.get().await, None);
    }

    #[tokio::test]
    async fn shut_down_with_drain_waits_until_every_handed_out_item_is_done() {
        let queue = queue();
        queue.add("a");
        queue.add("b");
        let a = queue.get().await.unwrap();
        let drain = tokio::spawn({
            let queue = queue.clone();
            async move { queue.shut_down_with_drain().await }
        });
        assert!(still_pending(&drain).await);
        // Queued items are still handed out, and waited for too.
        let b = queue.get().await.unwrap();
        queue.done(&a);
        assert!(still_pending(&drain).await, "b is still in flight");
        queue.done(&b);
        drain.await.unwrap();
        assert_eq!(queue.get().await, None);
    }

    #[tokio::test]
    async fn shut_down_with_drain_returns_at_once_when_nothing_is_in_flight() {
        let queue = queue();
        queue.shut_down_with_drain().await;
        assert!(queue.is_shutting_down());
    }

    #[tokio::test]
    async fn later_shut_down_stops_a_drain_wait() {
        let queue = queue();
        queue.add("a");
        let _a = queue.get().await.unwrap();
        let drain = tokio::spawn({
            let queue = queue.clone();
            async move { queue.shut_down_with_drain().await }
        });
        assert!(still_pending(&drain).await);
        queue.shut_down();
        drain.await.unwrap();
    }

    #[tokio::test]
    async fn len_counts_queued_items_not_in_flight_ones() {
        let queue = queue();
        assert!(queue.is_empty());
        queue.add("a");
        queue.add("b");
        assert_eq!(queue.len(), 2);
        let a = queue.get().await.unwrap();
        assert_eq!(queue.len(), 1);
        queue.add("a");
        assert_eq!(queue.len(), 1, "a dirty item in flight is not queued yet");
        queue.done(&a);
        assert_eq!(queue.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_get_loses_no_wakeup() {
        let queue = queue();
        let cancelled = tokio::spawn({
            let queue = queue.clone();
            async move { queue.get().await }
        });
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { queue.get().await }
        });
        yield_now().await;
        // The first registered waiter is woken by this add, but is cancelled before it runs.
        queue.add("a");
        cancelled.abort();
        assert_eq!(waiting.await.unwrap(), Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_timer_holder_hands_the_timer_to_another_waiter() {
        let queue = queue();
        queue.add_after("later", 10 * MS);
        let holder = tokio::spawn({
            let queue = queue.clone();
            async move { queue.get().await }
        });
        yield_now().await;
        let other = tokio::spawn({
            let queue = queue.clone();
            async move { queue.get().await }
        });
        yield_now().await;
        holder.abort();
        let got = tokio::time::timeout(Duration::from_secs(3600), other).await;
        assert_eq!(
            got.expect("the timer was not handed over").unwrap(),
            Some("later")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn add_rate_limited_delays_by_the_rate_limiters_answer() {
        let queue = queue();
        let start = Instant::now();
        queue.add_rate_limited("a");
        assert_eq!(take(&queue).await, "a");
        assert_eq!(start.elapsed(), 5 * MS);
        queue.add_rate_limited("a");
        assert_eq!(take(&queue).await, "a");
        assert_eq!(start.elapsed(), 15 * MS);
        assert_eq!(queue.num_requeues(&"a"), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn forget_resets_failures_without_dequeuing() {
        let queue = queue();
        queue.add_rate_limited("a");
        queue.add_rate_limited("a");
        advance(100 * MS).await;
        queue.forget(&"a");
        assert_eq!(queue.num_requeues(&"a"), 0);
        assert_eq!(queue.len(), 1);
        assert_eq!(take(&queue).await, "a");
    }

    /// Many producers and consumers over a few keys, with plain, prioritised and delayed adds.
    ///
    /// Every add records a global sequence number as its key's latest; every processing
    /// records the latest sequence number of its key it saw when it started. An add that came
    /// after the last processing began would be lost; so at the end, each key's last processing
    /// must have seen its last add.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_producers_and_consumers_lose_nothing_and_never_overlap() {
        const KEYS: usize = 64;
        const PRODUCERS: usize = 4;
        const ADDS: usize = 20_000;
        const CONSUMERS: usize = 8;

        struct Books {
            last_added: Vec<AtomicU64>,
            last_seen: Vec<AtomicU64>,
            sequence: AtomicU64,
            in_flight: parking_lot::Mutex<HashSet<usize>>,
            processed: AtomicU64,
        }
        let books = Arc::new(Books {
            last_added: (0..KEYS).map(|_| AtomicU64::new(0)).collect(),
            last_seen: (0..KEYS).map(|_| AtomicU64::new(0)).collect(),
            sequence: AtomicU64::new(0),
            in_flight: parking_lot::Mutex::new(HashSet::new()),
            processed: AtomicU64::new(0),
        });
        let queue: WorkQueue<usize> = WorkQueue::new("stress");

        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|c| {
                let (queue, books) = (queue.clone(), books.clone());
                // Half the consumers take their next item with `done`, as controllers do.
                let takes_next = c % 2 == 1;
                tokio::spawn(async move {
                    let mut next = None;
                    loop {
                        let key = match next.take() {
                            Some(key) => key,
                            None => match queue.get().await {
                                Some(key) => key,
                                None => break,
                            },
                        };
                        let seen = books.last_added[key].load(Ordering::SeqCst);
                        assert!(
                            books.in_flight.lock().insert(key),
                            "{key} processed twice at once"
                        );
                        books.last_seen[key].fetch_max(seen, Ordering::SeqCst);
                        books.processed.fetch_add(1, Ordering::Relaxed);
                        if key % 3 == 0 {
                            yield_now().await;
                        }
                        assert!(books.in_flight.lock().remove(&key));
                        if takes_next {
                            next = queue.done_and_next(&key, None, true).1.map(|(key, _)| key);
                        } else {
                            queue.done(&key);
                        }
                    }
                })
            })
            .collect();

        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let (queue, books) = (queue.clone(), books.clone());
                tokio::spawn(async move {
                    let mut rng = 0x9e37_79b9_7f4a_7c15_u64 ^ p as u64;
                    let add = |key: usize, how: u64| {
                        let seq = books.sequence.fetch_add(1, Ordering::SeqCst) + 1;
                        books.last_added[key].fetch_max(seq, Ordering::SeqCst);
                        match how % 8 {
                            0 => queue.add_with_priority(key, Priority::LOW),
                            1 => queue.add_after(key, Duration::from_micros(how % 300)),
                            2 => queue.add_with_priority(key, Priority::new(5)),
                            _ => queue.add(key),
                        }
                    };
                    for i in 0..ADDS {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        add(rng as usize % KEYS, rng >> 32);
                        if i % 64 == 0 {
                            yield_now().await;
                        }
                    }
                    // A final plain add of every key, so none is left waiting for a ready time
                    // when the queue shuts down (which would drop it).
                    for key in 0..KEYS {
                        add(key, 3);
                    }
                })
            })
            .collect();

        let run = async {
            for producer in producers {
                producer.await.unwrap();
            }
            queue.shut_down();
            for consumer in consumers {
                consumer.await.unwrap();
            }
        };
        // A guard against a hang, not a timing assertion: the run takes well under a second.
        tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("the stress run hung");

        for key in 0..KEYS {
            let added = books.last_added[key].load(Ordering::SeqCst);
            let seen = books.last_seen[key].load(Ordering::SeqCst);
            assert_eq!(seen, added, "key {key}: its last add was never processed");
        }
        let processed = books.processed.load(Ordering::Relaxed);
        assert!(processed >= KEYS as u64);
        assert!(processed <= (PRODUCERS * (ADDS + KEYS)) as u64);
        assert!(queue.is_empty());
    }
}
