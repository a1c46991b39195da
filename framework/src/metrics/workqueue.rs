//! The `workqueue_*` series: controller-runtime's workqueue metrics provider, as a
//! [`QueueMetrics`] implementation, and the tally through which a queue records into them
//! without calling its hooks.
//!
//! controller-runtime labels every workqueue series with `name` and `controller` (both the
//! controller's name) and `workqueue_depth` also with `priority`; its histograms use
//! `prometheus.ExponentialBuckets(10e-9, 10, 12)`: 10 ns to 1000 s.
//!
//! A queue built with a [`WorkqueueMetrics`] does not call its per-item hooks: it keeps a
//! [`Tally`] of its adds, depths and durations with its own state, under the lock it holds
//! anyway, and hands the tally over to the series when they are scraped and when the queue is
//! dropped. Recording an item is then a few additions to memory the queue is touching already,
//! instead of five calls into the series' per-thread shards.

use std::any::Any;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, GaugeVec, IntCounter, IntCounterVec, Opts, Registry};

use super::register;
use super::sharded::{self, ShardedVec};
use crate::queue::{Priority, QueueMetrics, Scraped};

/// `prometheus.ExponentialBuckets(10e-9, 10, 12)`, computed as Go computes it (each bound the
/// previous one times ten), so the bounds are the same floating-point numbers.
pub(crate) const BUCKETS: [f64; 12] = {
    let mut bounds = [0.0; 12];
    let mut bound = 10e-9;
    let mut i = 0;
    while i < bounds.len() {
        bounds[i] = bound;
        bound *= 10.0;
        i += 1;
    }
    bounds
};

/// [`BUCKETS`] in whole nanoseconds, for the tally's integer comparisons: a duration of `n`
/// nanoseconds is at or below `BUCKETS[i]` exactly when `n <= BUCKET_NANOS[i]`. (Not all
/// powers of ten: Go's products put two bounds a hair below 10 µs and 100 µs.) The last entry,
/// `u64::MAX`, is the `+Inf` bucket's: every duration is at or below it.
const BUCKET_NANOS: [u64; BUCKETS.len() + 1] = {
    let mut nanos = [u64::MAX; BUCKETS.len() + 1];
    let mut i = 0;
    while i < BUCKETS.len() {
        nanos[i] = sharded::nanos_at_or_below(BUCKETS[i]);
        i += 1;
    }
    nanos
};

/// For each bit length of a duration in nanoseconds (0 to 64), the first bucket it can fall
/// in: how many of [`BUCKET_NANOS`] are below the smallest number of that length. The bounds
/// are decades, which a doubling crosses at most once, so the duration's bucket is that one or
/// the next (checked here, at compile time).
const FIRST_BUCKET: [u8; 65] = {
    let mut first = [0; 65];
    let mut bits = 1;
    while bits <= 64 {
        let smallest = 1u64 << (bits - 1);
        let mut below = 0;
        while BUCKET_NANOS[below] < smallest {
            below += 1;
        }
        let largest = smallest - 1 + smallest;
        assert!(
            below == BUCKETS.len() || BUCKET_NANOS[below + 1] >= largest,
            "at most one bound between two powers of two"
        );
        first[bits] = below as u8;
        bits += 1;
    }
    first
};

/// The bucket of a duration of `nanos` nanoseconds: the first bound not below it
/// (`BUCKETS.len()` past the last).
#[inline]
fn bucket_of(nanos: u64) -> usize {
    let first = usize::from(FIRST_BUCKET[(u64::BITS - nanos.leading_zeros()) as usize]);
    first + usize::from(nanos > BUCKET_NANOS[first])
}

/// The queues that keep a tally for the series of one [`Metrics`](super::Metrics).
type Tallies = Arc<Mutex<Vec<Weak<dyn Scraped>>>>;

/// Every queue's series, registered as one collector that has the queues keeping a tally hand
/// it over before it reads them.
///
/// The series recorded on every add, get and done are [sharded](super::sharded); the others
/// are the `prometheus` crate's.
#[derive(Clone)]
pub(crate) struct Families {
    depth: ShardedVec<sharded::Gauge>,
    adds: ShardedVec<sharded::Counter>,
    queue_duration: ShardedVec<sharded::Histogram>,
    work_duration: ShardedVec<sharded::Histogram>,
    unfinished: GaugeVec,
    longest: GaugeVec,
    retries: IntCounterVec,
    tallies: Tallies,
}

const LABELS: &[&str] = &["name", "controller"];

fn histogram(name: &str, help: &str) -> ShardedVec<sharded::Histogram> {
    ShardedVec::histograms(name, help, LABELS, &BUCKETS)
}

impl Families {
    pub(crate) fn new() -> Self {
        Self {
            depth: ShardedVec::gauges(
                "workqueue_depth",
                "Current depth of workqueue by workqueue and priority",
                &["name", "controller", "priority"],
            ),
            adds: ShardedVec::counters(
                "workqueue_adds_total",
                "Total number of adds handled by workqueue",
                LABELS,
            ),
            queue_duration: histogram(
                "workqueue_queue_duration_seconds",
                "How long in seconds an item stays in workqueue before being requested",
            ),
            work_duration: histogram(
                "workqueue_work_duration_seconds",
                "How long in seconds processing an item from workqueue takes.",
            ),
            unfinished: GaugeVec::new(
                Opts::new(
                    "workqueue_unfinished_work_seconds",
                    "How many seconds of work has been done that is in progress and hasn't been \
                     observed by work_duration. Large values indicate stuck threads. One can \
                     deduce the number of stuck threads by observing the rate at which this \
                     increases.",
                ),
                LABELS,
            )
            .expect("a valid gauge"),
            longest: GaugeVec::new(
                Opts::new(
                    "workqueue_longest_running_processor_seconds",
                    "How many seconds has the longest running processor for workqueue been \
                     running.",
                ),
                LABELS,
            )
            .expect("a valid gauge"),
            retries: IntCounterVec::new(
                Opts::new(
                    "workqueue_retries_total",
                    "Total number of retries handled by workqueue",
                ),
                LABELS,
            )
            .expect("a valid counter"),
            tallies: Tallies::default(),
        }
    }

    pub(crate) fn register(&self, registry: &Registry) {
        register(registry, self.clone());
    }

    /// Has every live queue that keeps a tally hand it over.
    fn hand_over_tallies(&self) {
        let queues: Vec<_> = {
            let mut tallies = self.tallies.lock();
            tallies.retain(|queue| queue.strong_count() > 0);
            tallies.iter().filter_map(Weak::upgrade).collect()
        };
        for queue in queues {
            queue.hand_over_tally();
        }
    }

    fn parts(&self) -> [&dyn Collector; 7] {
        [
            &self.depth,
            &self.adds,
            &self.queue_duration,
            &self.work_duration,
            &self.unfinished,
            &self.longest,
            &self.retries,
        ]
    }
}

impl Collector for Families {
    fn desc(&self) -> Vec<&Desc> {
        self.parts().into_iter().flat_map(|c| c.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.hand_over_tallies();
        self.parts().into_iter().flat_map(|c| c.collect()).collect()
    }
}

/// One histogram's share of a [`Tally`]: counts per bucket of [`BUCKETS`] (the last one above
/// them all) and the sum of what was observed, in nanoseconds.
#[derive(Debug, Default)]
struct Counts {
    buckets: [u64; BUCKETS.len() + 1],
    sum_nanos: u128,
}

impl Counts {
    #[inline]
    fn observe(&mut self, nanos: u64) {
        self.buckets[bucket_of(nanos)] += 1;
        self.sum_nanos += u128::from(nanos);
    }

    /// Moves the counts into `series`, leaving them at zero.
    fn hand_over(&mut self, series: &sharded::Histogram) {
        if self.buckets.iter().any(|&n| n > 0) {
            series.add_counted(&self.buckets, self.sum_nanos);
            *self = Self::default();
        }
    }
}

/// What a queue recording into a [`WorkqueueMetrics`] measured since the series last took it:
/// its adds, the change of its depth per priority and its two durations, counted as
/// [`QueueMetrics`] describes. Kept with the queue's state, under its lock; see the
/// [module](self) docs.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    adds: u64,
    /// Depth change at the two priorities controllers use.
    depth_normal: i64,
    depth_low: i64,
    /// Depth change at any other priority used.
    depth_other: Vec<(Priority, i64)>,
    queue_duration: Counts,
    work_duration: Counts,
}

impl Tally {
    /// An item was added at `priority`.
    #[inline]
    pub(crate) fn add(&mut self, priority: Priority) {
        self.adds += 1;
        self.depth(priority, 1);
    }

    /// The depth at `priority` changed by `delta`.
    #[inline]
    pub(crate) fn depth(&mut self, priority: Priority, delta: i64) {
        match priority {
            Priority::NORMAL => self.depth_normal += delta,
            Priority::LOW => self.depth_low += delta,
            other => match self.depth_other.iter_mut().find(|(p, _)| *p == other) {
                Some((_, depth)) => *depth += delta,
                None => self.depth_other.push((other, delta)),
            },
        }
    }

    /// An item waited `nanos` nanoseconds between its add and the `get` that handed it out.
    #[inline]
    pub(crate) fn queue_latency(&mut self, nanos: u64) {
        self.queue_duration.observe(nanos);
    }

    /// An item was processed for `nanos` nanoseconds.
    #[inline]
    pub(crate) fn work_duration(&mut self, nanos: u64) {
        self.work_duration.observe(nanos);
    }
}

/// One workqueue's series, recording through [`QueueMetrics`] with client-go's semantics.
///
/// Made by [`Metrics::workqueue`](super::Metrics::workqueue). The series of the queue's name
/// exist at zero from the moment this is made, `workqueue_depth` for the two priorities
/// controllers use ([`Priority::NORMAL`] and [`Priority::LOW`]); other priorities appear when
/// first used.
///
/// A [`WorkQueue`](crate::queue::WorkQueue) built with these series records into them through
/// a tally of its own, handed over at each scrape, rather than through the hooks: the values
/// scraped are the same, and recording them costs the queue less.
pub struct WorkqueueMetrics {
    name: String,
    depth_vec: ShardedVec<sharded::Gauge>,
    depth_normal: Arc<sharded::Gauge>,
    depth_low: Arc<sharded::Gauge>,
    adds: Arc<sharded::Counter>,
    queue_duration: Arc<sharded::Histogram>,
    work_duration: Arc<sharded::Histogram>,
    unfinished: Gauge,
    longest: Gauge,
    retries: IntCounter,
    tallies: Tallies,
}

impl std::fmt::Debug for WorkqueueMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkqueueMetrics")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl WorkqueueMetrics {
    pub(crate) fn new(families: &Families, name: &str) -> Self {
        let labels = [name, name];
        let depth = |p: Priority| {
            families
                .depth
                .with_label_values(&[name, name, &p.get().to_string()])
        };
        Self {
            name: name.to_string(),
            depth_vec: families.depth.clone(),
            depth_normal: depth(Priority::NORMAL),
            depth_low: depth(Priority::LOW),
            adds: families.adds.with_label_values(&labels),
            queue_duration: families.queue_duration.with_label_values(&labels),
            work_duration: families.work_duration.with_label_values(&labels),
            unfinished: families.unfinished.with_label_values(&labels),
            longest: families.longest.with_label_values(&labels),
            retries: families.retries.with_label_values(&labels),
            tallies: families.tallies.clone(),
        }
    }

    /// `metrics` as these series, if they are: a queue built with them keeps a [`Tally`].
    pub(crate) fn downcast(metrics: &Arc<dyn QueueMetrics>) -> Option<Arc<Self>> {
        let any: Arc<dyn Any + Send + Sync> = metrics.clone();
        any.downcast().ok()
    }

    /// Has `queue` hand over its tally before each scrape, for as long as it lives.
    pub(crate) fn track(&self, queue: Weak<dyn Scraped>) {
        let mut tallies = self.tallies.lock();
        // Dropped queues handed their tallies over already; without scrapes they would pile up.
        tallies.retain(|queue| queue.strong_count() > 0);
        tallies.push(queue);
    }

    /// Moves what `tally` counted into these series, leaving it at zero.
    pub(crate) fn take(&self, tally: &mut Tally) {
        if tally.adds > 0 {
            self.adds.add_counted(std::mem::take(&mut tally.adds));
        }
        for (series, depth) in [
            (&self.depth_normal, &mut tally.depth_normal),
            (&self.depth_low, &mut tally.depth_low),
        ] {
            if *depth != 0 {
                series.add_counted(std::mem::take(depth));
            }
        }
        for (priority, depth) in &mut tally.depth_other {
            // The series of a priority exists once used, as with the hooks, even at zero.
            let series = self.depth_series(*priority);
            if *depth != 0 {
                series.add_counted(std::mem::take(depth));
            }
        }
        tally.queue_duration.hand_over(&self.queue_duration);
        tally.work_duration.hand_over(&self.work_duration);
    }

    fn depth_series(&self, priority: Priority) -> Arc<sharded::Gauge> {
        match priority {
            Priority::NORMAL => self.depth_normal.clone(),
            Priority::LOW => self.depth_low.clone(),
            other => self.depth_vec.with_label_values(&[
                &self.name,
                &self.name,
                &other.get().to_string(),
            ]),
        }
    }

    fn depth(&self, priority: Priority, delta: i64) {
        match priority {
            Priority::NORMAL => self.depth_normal.add(delta),
            Priority::LOW => self.depth_low.add(delta),
            other => self.depth_series(other).add(delta),
        }
    }
}

impl QueueMetrics for WorkqueueMetrics {
    fn add(&self) {
        self.adds.inc();
    }
    fn depth_inc(&self, priority: Priority) {
        self.depth(priority, 1);
    }
    fn depth_dec(&self, priority: Priority) {
        self.depth(priority, -1);
    }
    fn queue_latency(&self, seconds: f64) {
        self.queue_duration.observe(seconds);
    }
    fn work_duration(&self, seconds: f64) {
        self.work_duration.observe(seconds);
    }
    fn unfinished_work(&self, seconds: f64) {
        self.unfinished.set(seconds);
    }
    fn longest_running_processor(&self, seconds: f64) {
        self.longest.set(seconds);
    }
    fn retry(&self) {
        self.retries.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_run_from_ten_nanoseconds_to_a_thousand_seconds() {
        let b = BUCKETS;
        assert_eq!(b.len(), 12);
        assert_eq!(b[0], 1e-8);
        assert!((b[11] - 1e3).abs() < 1e-9);
    }

    /// Starting at the bucket its bit length allows gives every duration the bucket a scan of
    /// all bounds from the first would: at each bound and power of two, either side of them,
    /// and at both ends.
    #[test]
    fn a_durations_bucket_is_the_first_bound_not_below_it() {
        let scanned = |nanos: u64| {
            BUCKET_NANOS[..BUCKETS.len()]
                .iter()
                .position(|&bound| nanos <= bound)
                .unwrap_or(BUCKETS.len())
        };
        let powers = (0..64).map(|bits| 1u64 << bits);
        for edge in BUCKET_NANOS[..BUCKETS.len()].iter().copied().chain(powers) {
            for nanos in [edge.saturating_sub(1), edge, edge.saturating_add(1)] {
                assert_eq!(bucket_of(nanos), scanned(nanos), "{nanos} ns");
            }
        }
        for nanos in [0, u64::MAX] {
            assert_eq!(bucket_of(nanos), scanned(nanos), "{nanos} ns");
        }
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(u64::MAX), BUCKETS.len());
    }

    /// The tally compares whole nanoseconds with `BUCKET_NANOS`; each is the last duration
    /// its bound admits.
    #[test]
    fn the_tallys_bounds_are_the_buckets_in_nanoseconds() {
        for (nanos, bound) in BUCKET_NANOS.into_iter().zip(BUCKETS) {
            let seconds = |n: u64| n as f64 / 1e9;
            assert!(
                seconds(nanos) <= bound && seconds(nanos + 1) > bound,
                "{bound}"
            );
        }
        let mut counts = Counts::default();
        for nanos in [10, 11, 9_999, 10_000, 1_000_000_000_001] {
            counts.observe(nanos);
        }
        // 10 µs exactly is above Go's fourth bound (9.999999999999999e-06), as in Go.
        assert_eq!(counts.buckets, [1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(counts.sum_nanos, 1_000_000_020_021);
    }

    #[test]
    fn depth_of_an_unusual_priority_gets_its_own_series() {
        let families = Families::new();
        let m = WorkqueueMetrics::new(&families, "q");
        m.depth_inc(Priority::new(5));
        m.depth_inc(Priority::NORMAL);
        m.depth_inc(Priority::NORMAL);
        assert_eq!(families.depth.with_label_values(&["q", "q", "5"]).get(), 1);
        assert_eq!(families.depth.with_label_values(&["q", "q", "0"]).get(), 2);
        assert_eq!(
            families.depth.with_label_values(&["q", "q", "-100"]).get(),
            0
        );
    }
}

#[cfg(test)]
mod tally_tests {
    use std::time::Duration;

    use tokio::time::advance;

    use super::*;
    use crate::metrics::Metrics;
    use crate::queue::WorkQueue;

    /// Windlass's series behind another type, so that a queue given it calls their hooks.
    struct ViaHooks(Arc<WorkqueueMetrics>);

    impl QueueMetrics for ViaHooks {
        fn add(&self) {
            self.0.add();
        }
        fn depth_inc(&self, priority: Priority) {
            self.0.depth_inc(priority);
        }
        fn depth_dec(&self, priority: Priority) {
            self.0.depth_dec(priority);
        }
        fn queue_latency(&self, seconds: f64) {
            self.0.queue_latency(seconds);
        }
        fn work_duration(&self, seconds: f64) {
            self.0.work_duration(seconds);
        }
        fn unfinished_work(&self, seconds: f64) {
            self.0.unfinished_work(seconds);
        }
        fn longest_running_processor(&self, seconds: f64) {
            self.0.longest_running_processor(seconds);
        }
        fn retry(&self) {
            self.0.retry();
        }
    }

    /// A queue named `q` recording into `metrics`' series, as a controller's does.
    fn tallied_queue(metrics: &Metrics) -> WorkQueue<&'static str> {
        WorkQueue::builder()
            .name("q")
            .metrics(metrics.workqueue("q"))
            .build()
    }

    fn workqueue_lines(metrics: &Metrics) -> Vec<String> {
        metrics.scraped_lines("workqueue_")
    }

    const MS: Duration = Duration::from_millis(1);

    /// Adds, raises, delays, requeues while processing; scrapes half-way; leaves `d` queued.
    async fn work(queue: &WorkQueue<&'static str>, metrics: &Metrics) {
        queue.add("a");
        queue.add_with_priority("b", Priority::LOW);
        queue.add("a");
        advance(3 * MS).await;
        assert_eq!(queue.get().await, Some("a"));
        advance(MS).await;
        queue.add("a");
        queue.done(&"a");
        workqueue_lines(metrics);
        assert_eq!(queue.get().await, Some("a"));
        advance(20 * MS).await;
        queue.done(&"a");
        queue.add_after("c", 5 * MS);
        queue.add_with_priority("b", Priority::new(5));
        advance(5 * MS).await;
        for _ in 0..2 {
            let item = queue.get().await.unwrap();
            advance(MS).await;
            queue.done(&item);
        }
        queue.add("d");
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_keeping_a_tally_is_scraped_as_one_calling_the_hooks() {
        let (tallied, hooked) = (Metrics::new(), Metrics::new());
        let a = tallied_queue(&tallied);
        let b = WorkQueue::builder()
            .name("q")
            .metrics(Arc::new(ViaHooks(hooked.workqueue("q"))))
            .build();
        work(&a, &tallied).await;
        work(&b, &hooked).await;

        let lines = workqueue_lines(&tallied);
        // The same lines, but for the sums' last digits: the tally adds whole nanoseconds,
        // the hooks seconds.
        let (exact, sums): (Vec<_>, Vec<_>) = lines.iter().partition(|l| !l.contains("_sum{"));
        let (hooked_exact, hooked_sums): (Vec<_>, Vec<_>) = workqueue_lines(&hooked)
            .into_iter()
            .partition(|l| !l.contains("_sum{"));
        assert_eq!(exact, hooked_exact.iter().collect::<Vec<_>>());
        let value = |l: &str| -> f64 { l.rsplit(' ').next().unwrap().parse().unwrap() };
        assert_eq!(sums.len(), 2);
        for (ours, theirs) in sums.iter().zip(&hooked_sums) {
            assert!(
                (value(ours) - value(theirs)).abs() < 1e-12,
                "{ours} vs {theirs}"
            );
        }
        for expected in [
            r#"workqueue_adds_total{controller="q",name="q"} 5"#,
            r#"workqueue_depth{controller="q",name="q",priority="0"} 1"#,
            r#"workqueue_depth{controller="q",name="q",priority="5"} 0"#,
            r#"workqueue_queue_duration_seconds_count{controller="q",name="q"} 4"#,
            r#"workqueue_work_duration_seconds_count{controller="q",name="q"} 4"#,
            r#"workqueue_work_duration_seconds_bucket{controller="q",name="q",le="0.01"} 3"#,
            r#"workqueue_queue_duration_seconds_sum{controller="q",name="q"} 0.033"#,
            r#"workqueue_work_duration_seconds_sum{controller="q",name="q"} 0.023"#,
        ] {
            assert!(
                lines.iter().any(|l| l == expected),
                "{expected} in {lines:#?}"
            );
        }
        assert_eq!(
            workqueue_lines(&tallied),
            lines,
            "a second scrape counts nothing twice"
        );
    }

    #[test]
    fn dropped_queues_are_not_kept_without_scrapes() {
        let metrics = Metrics::new();
        for _ in 0..3 {
            let queue = tallied_queue(&metrics);
            queue.add("a");
        }
        let series = metrics.workqueue("q");
        assert_eq!(series.tallies.lock().len(), 1, "only the last queue's");
        assert!(
            workqueue_lines(&metrics)
                .contains(&r#"workqueue_adds_total{controller="q",name="q"} 3"#.to_string())
        );
        assert_eq!(series.tallies.lock().len(), 0, "a scrape forgets it too");
    }

    #[tokio::test(start_paused = true)]
    async fn what_a_dropped_queue_tallied_still_counts() {
        let metrics = Metrics::new();
        let queue = tallied_queue(&metrics);
        queue.add("a");
        queue.add("b");
        assert_eq!(queue.get().await, Some("a"));
        queue.done(&"a");
        drop(queue);
        let lines = workqueue_lines(&metrics);
        for expected in [
            r#"workqueue_adds_total{controller="q",name="q"} 2"#,
            r#"workqueue_depth{controller="q",name="q",priority="0"} 1"#,
            r#"workqueue_work_duration_seconds_count{controller="q",name="q"} 1"#,
        ] {
            assert!(
                lines.iter().any(|l| l == expected),
                "{expected} in {lines:#?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn work_in_flight_is_measured_at_each_scrape() {
        let metrics = Metrics::new();
        let queue = tallied_queue(&metrics);
        queue.add("a");
        queue.add("b");
        let a = queue.get().await.unwrap();
        advance(Duration::from_millis(3250)).await;
        let b = queue.get().await.unwrap();
        advance(Duration::from_secs(1)).await;
        let in_flight = || -> Vec<String> {
            workqueue_lines(&metrics)
                .into_iter()
                .filter(|l| {
                    l.starts_with("workqueue_unfinished") || l.starts_with("workqueue_longest")
                })
                .collect()
        };
        let lines = |longest: &str, unfinished: &str| {
            [
                format!(
                    r#"workqueue_longest_running_processor_seconds{{controller="q",name="q"}} {longest}"#
                ),
                format!(
                    r#"workqueue_unfinished_work_seconds{{controller="q",name="q"}} {unfinished}"#
                ),
            ]
        };
        // Nothing calls `update_unfinished_work`: the scrape measures, a quarter second past
        // the half-second marks client-go's queues update them at.
        assert_eq!(in_flight(), lines("4.25", "5.25"));
        queue.done(&b);
        advance(Duration::from_secs(1)).await;
        assert_eq!(in_flight(), lines("5.25", "5.25"));
        queue.done(&a);
        assert_eq!(in_flight(), lines("0", "0"));
    }
}
