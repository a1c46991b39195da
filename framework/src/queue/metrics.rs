//! The hooks through which a workqueue reports its metrics.
//!
//! This file owns the [`QueueMetrics`] trait and its no-op implementation. It does not own any
//! metrics backend: a Prometheus implementation (with the queue's
//! [`name`](super::WorkQueue::name) as the `name` label, as client-go's
//! `workqueue_*` metrics have) lives with the rest of windlass's metrics.

use std::any::Any;

use super::priority::Priority;

/// Receives a workqueue's measurements, with client-go's workqueue metrics semantics.
///
/// One implementation serves one queue. The count and depth hooks are called with the queue's
/// lock held (so that depth changes arrive in the order they happened), the two durations just
/// after it is released; every method must be quick (an atomic update, as Prometheus counters
/// and gauges are) and must not call back into the queue. (A queue given windlass's own
/// [`WorkqueueMetrics`](crate::metrics::WorkqueueMetrics) records into them without these
/// hooks, for the adds, depths and durations: see there.)
///
/// What counts as an *add* follows client-go: an item counts when it becomes dirty, that is when
/// it enters the ready queue, or when it is marked to be queued again while a worker processes
/// it. Adding an item that is already dirty counts nothing, so an item added five times while
/// it is processed counts one add and a depth of one. An item delayed by
/// [`add_after`](super::WorkQueue::add_after) counts when its ready time comes.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use windlass::queue::{Priority, QueueMetrics, WorkQueue};
///
/// #[derive(Debug, Default)]
/// struct CountAdds(AtomicU64);
///
/// impl QueueMetrics for CountAdds {
///     fn add(&self) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
///     fn depth_inc(&self, _: Priority) {}
///     fn depth_dec(&self, _: Priority) {}
///     fn queue_latency(&self, _: f64) {}
///     fn work_duration(&self, _: f64) {}
///     fn unfinished_work(&self, _: f64) {}
///     fn longest_running_processor(&self, _: f64) {}
///     fn retry(&self) {}
/// }
///
/// let metrics = std::sync::Arc::new(CountAdds::default());
/// let queue = WorkQueue::builder().name("pods").metrics(metrics.clone()).build();
/// queue.add("default/a");
/// queue.add("default/a");
/// assert_eq!(metrics.0.load(Ordering::Relaxed), 1);
/// ```
pub trait QueueMetrics: Any + Send + Sync {
    /// An item was added (client-go's `workqueue_adds_total`).
    fn add(&self);

    /// The queue's depth at `priority` grew by one (client-go's `workqueue_depth`, with a
    /// priority label as controller-runtime's priority queue has).
    fn depth_inc(&self, priority: Priority);

    /// The queue's depth at `priority` shrank by one.
    fn depth_dec(&self, priority: Priority);

    /// An item waited this many seconds between its add and the `get` that handed it out
    /// (client-go's `workqueue_queue_duration_seconds`).
    ///
    /// Durations are measured on the CPU's counter, or on Tokio's clock if it was paused when
    /// the queue was built (so that a test advancing the paused clock sees what it advanced).
    fn queue_latency(&self, seconds: f64);

    /// An item took this many seconds between `get` and `done`
    /// (client-go's `workqueue_work_duration_seconds`).
    fn work_duration(&self, seconds: f64);

    /// The items in flight have been processed for this many seconds in total
    /// (client-go's `workqueue_unfinished_work_seconds`). Reported by
    /// [`update_unfinished_work`](super::WorkQueue::update_unfinished_work) (and, for
    /// windlass's own series, at each scrape).
    fn unfinished_work(&self, seconds: f64);

    /// The longest-running item in flight has been processed for this many seconds
    /// (client-go's `workqueue_longest_running_processor_seconds`). Reported by
    /// [`update_unfinished_work`](super::WorkQueue::update_unfinished_work) (and, for
    /// windlass's own series, at each scrape).
    fn longest_running_processor(&self, seconds: f64);

    /// An item was re-added by [`add_rate_limited`](super::WorkQueue::add_rate_limited)
    /// (client-go's `workqueue_retries_total`).
    fn retry(&self);
}

/// Metrics that go nowhere: what a queue reports to when none are configured.
///
/// A queue built without metrics does not even call these, nor read the clock for them.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopMetrics;

impl QueueMetrics for NoopMetrics {
    fn add(&self) {}
    fn depth_inc(&self, _: Priority) {}
    fn depth_dec(&self, _: Priority) {}
    fn queue_latency(&self, _: f64) {}
    fn work_duration(&self, _: f64) {}
    fn unfinished_work(&self, _: f64) {}
    fn longest_running_processor(&self, _: f64) {}
    fn retry(&self) {}
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use parking_lot::Mutex;
    use tokio::time::advance;

    use super::*;
    use crate::queue::stopwatch::real_time;
    use crate::queue::{MaxOfRateLimiter, WorkQueue};

    /// Records every call, as a Prometheus implementation would see them.
    #[derive(Debug, Default)]
    struct Recorder(Mutex<Recorded>);

    #[derive(Debug, Default)]
    struct Recorded {
        adds: u64,
        depth: BTreeMap<i32, i64>,
        latencies: Vec<f64>,
        work: Vec<f64>,
        unfinished: Option<f64>,
        longest: Option<f64>,
        retries: u64,
    }

    impl QueueMetrics for Recorder {
        fn add(&self) {
            self.0.lock().adds += 1;
        }
        fn depth_inc(&self, priority: Priority) {
            *self.0.lock().depth.entry(priority.get()).or_default() += 1;
        }
        fn depth_dec(&self, priority: Priority) {
            *self.0.lock().depth.entry(priority.get()).or_default() -= 1;
        }
        fn queue_latency(&self, seconds: f64) {
            self.0.lock().latencies.push(seconds);
        }
        fn work_duration(&self, seconds: f64) {
            self.0.lock().work.push(seconds);
        }
        fn unfinished_work(&self, seconds: f64) {
            self.0.lock().unfinished = Some(seconds);
        }
        fn longest_running_processor(&self, seconds: f64) {
            self.0.lock().longest = Some(seconds);
        }
        fn retry(&self) {
            self.0.lock().retries += 1;
        }
    }

    fn recorded_queue() -> (WorkQueue<&'static str>, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        let queue = WorkQueue::builder()
            .name("recorded")
            .metrics(recorder.clone())
            .build();
        (queue, recorder)
    }

    fn depth(recorder: &Recorder, priority: Priority) -> i64 {
        recorder
            .0
            .lock()
            .depth
            .get(&priority.get())
            .copied()
            .unwrap_or(0)
    }

    fn adds_and_depth(recorder: &Recorder) -> (u64, i64) {
        let adds = recorder.0.lock().adds;
        (adds, depth(recorder, Priority::NORMAL))
    }

    #[tokio::test(start_paused = true)]
    async fn re_adding_five_times_while_processing_counts_one_add_and_depth_one() {
        let (queue, recorder) = recorded_queue();
        queue.add("a");
        let a = queue.get().await.unwrap();
        assert_eq!(adds_and_depth(&recorder), (1, 0));
        for _ in 0..5 {
            queue.add("a");
        }
        assert_eq!(adds_and_depth(&recorder), (2, 1));
        queue.done(&a);
        assert_eq!(queue.get().await, Some("a"));
        assert_eq!(adds_and_depth(&recorder), (2, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn queue_latency_is_the_time_from_add_to_get() {
        let (queue, recorder) = recorded_queue();
        queue.add("a");
        advance(Duration::from_millis(250)).await;
        let a = queue.get().await.unwrap();
        queue.done(&a);
        assert_eq!(recorder.0.lock().latencies, [0.25]);
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_item_counts_as_added_when_its_ready_time_comes() {
        let (queue, recorder) = recorded_queue();
        queue.add_after("a", Duration::from_secs(2));
        assert_eq!(recorder.0.lock().adds, 0);
        advance(Duration::from_secs(3)).await;
        assert_eq!(queue.get().await, Some("a"));
        let recorded = recorder.0.lock();
        assert_eq!(recorded.adds, 1);
        // Latency runs from the ready time, not from when a `get` noticed it.
        assert_eq!(recorded.latencies, [1.0]);
    }

    #[tokio::test(start_paused = true)]
    async fn work_duration_is_the_time_from_get_to_done() {
        let (queue, recorder) = recorded_queue();
        queue.add("a");
        let a = queue.get().await.unwrap();
        advance(Duration::from_millis(1500)).await;
        queue.done(&a);
        assert_eq!(recorder.0.lock().work, [1.5]);
    }

    /// Where Tokio's clock runs, the durations come from the CPU's counter: they follow
    /// real time.
    #[tokio::test]
    async fn on_a_running_clock_work_duration_is_the_real_time_from_get_to_done() {
        let (queue, recorder) = recorded_queue();
        queue.add("a");
        let a = queue.get().await.unwrap();
        let real = real_time::busy_for(Duration::from_millis(2));
        queue.done(&a);
        let work = recorder.0.lock().work.clone();
        assert_eq!(work.len(), 1);
        real_time::assert_measured(work[0], real);
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_taking_its_next_item_at_once_takes_it_when_the_last_was_done() {
        let (queue, recorder) = recorded_queue();
        queue.add("a");
        queue.add("b");
        let (a, _) = queue.get_at(None).await.unwrap();
        advance(Duration::from_secs(2)).await;
        let worked = queue
            .done_and_next(&a, None, false)
            .0
            .expect("measured, with metrics");
        assert_eq!(worked.nanos, 2_000_000_000);
        // The clock moves on between `done` and the next `get` (here by a whole second, so
        // that the test can tell the readings apart): the item is taken at the `done`.
        advance(Duration::from_secs(1)).await;
        let (b, _) = queue.get_at(Some(worked.at)).await.unwrap();
        advance(Duration::from_secs(4)).await;
        queue.done(&b);
        let recorded = recorder.0.lock();
        assert_eq!(recorded.latencies, [0.0, 2.0]);
        assert_eq!(recorded.work, [2.0, 5.0]);
    }

    #[tokio::test(start_paused = true)]
    async fn work_ends_at_the_reading_the_worker_took_when_it_finished() {
        let (queue, recorder) = recorded_queue();
        queue.add("a");
        let (a, _) = queue.get_at(None).await.unwrap();
        advance(Duration::from_secs(2)).await;
        let finished_at = queue.stamp();
        // What the worker does between its work's end and `done` is not work.
        advance(Duration::from_secs(1)).await;
        let worked = queue.done_and_next(&a, finished_at, false).0.unwrap();
        assert_eq!(worked.nanos, 2_000_000_000);
        assert_eq!(Some(worked.at), finished_at);
        assert_eq!(recorder.0.lock().work, [2.0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_that_waits_for_its_next_item_takes_it_when_it_comes() {
        let (queue, recorder) = recorded_queue();
        queue.add("a");
        let (a, _) = queue.get_at(None).await.unwrap();
        advance(Duration::from_secs(2)).await;
        let worked = queue.done_and_next(&a, None, false).0.unwrap();
        let next = tokio::spawn({
            let queue = queue.clone();
            async move { queue.get_at(Some(worked.at)).await }
        });
        tokio::task::yield_now().await;
        advance(Duration::from_secs(3)).await;
        queue.add("b");
        let (b, _) = next.await.unwrap().unwrap();
        advance(Duration::from_secs(1)).await;
        queue.done(&b);
        let recorded = recorder.0.lock();
        // Taken when it came (at 5 s), not at the last `done` (2 s).
        assert_eq!(recorded.latencies, [0.0, 0.0]);
        assert_eq!(recorded.work, [2.0, 1.0]);
    }

    #[tokio::test(start_paused = true)]
    async fn depth_is_kept_per_priority_and_follows_raises() {
        let (queue, recorder) = recorded_queue();
        queue.add_with_priority("a", Priority::LOW);
        queue.add_with_priority("b", Priority::LOW);
        assert_eq!(depth(&recorder, Priority::LOW), 2);
        queue.add("a");
        assert_eq!(depth(&recorder, Priority::LOW), 1);
        assert_eq!(depth(&recorder, Priority::NORMAL), 1);
        assert_eq!(queue.get().await, Some("a"));
        assert_eq!(depth(&recorder, Priority::NORMAL), 0);
        assert_eq!(recorder.0.lock().adds, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn update_unfinished_work_reports_the_sum_and_the_longest_in_flight() {
        let (queue, recorder) = recorded_queue();
        queue.add("a");
        queue.add("b");
        queue.add("c");
        let a = queue.get().await.unwrap();
        advance(Duration::from_secs(3)).await;
        let b = queue.get().await.unwrap();
        let c = queue.get().await.unwrap();
        advance(Duration::from_secs(1)).await;
        queue.done(&b);
        queue.update_unfinished_work();
        assert_eq!(recorder.0.lock().unfinished, Some(5.0));
        assert_eq!(recorder.0.lock().longest, Some(4.0));
        queue.done(&a);
        queue.done(&c);
        queue.update_unfinished_work();
        assert_eq!(recorder.0.lock().unfinished, Some(0.0));
        assert_eq!(recorder.0.lock().longest, Some(0.0));
    }

    #[tokio::test(start_paused = true)]
    async fn add_rate_limited_counts_a_retry() {
        let recorder = Arc::new(Recorder::default());
        let queue = WorkQueue::builder()
            .rate_limiter(MaxOfRateLimiter::new(Vec::new()))
            .metrics(recorder.clone())
            .build();
        queue.add_rate_limited("a");
        queue.add_rate_limited("a");
        assert_eq!(recorder.0.lock().retries, 2);
        assert_eq!(queue.get().await, Some("a"));
    }
}
