//! The `workqueue_*` series: controller-runtime's workqueue metrics provider, as a
//! [`QueueMetrics`] implementation.
//!
//! controller-runtime labels every workqueue series with `name` and `controller` (both the
//! controller's name) and `workqueue_depth` also with `priority`; its histograms use
//! `prometheus.ExponentialBuckets(10e-9, 10, 12)`: 10 ns to 1000 s.

use std::sync::Arc;

use prometheus::{Gauge, GaugeVec, IntCounter, IntCounterVec, Opts, Registry};

use super::register;
use super::sharded::{self, ShardedVec};
use crate::queue::{Priority, QueueMetrics};

/// `prometheus.ExponentialBuckets(10e-9, 10, 12)`, computed as Go computes it (each bound the
/// previous one times ten), so the bounds are the same floating-point numbers.
pub(crate) fn buckets() -> Vec<f64> {
    let mut bound = 10e-9;
    (0..12)
        .map(|_| {
            let b = bound;
            bound *= 10.0;
            b
        })
        .collect()
}

///
/// The series recorded on every add, get and done are [sharded](super::sharded); the others
/// are the `prometheus` crate's.
pub(crate) struct Families {
    depth: ShardedVec<sharded::Gauge>,
    adds: ShardedVec<sharded::Counter>,
    queue_duration: ShardedVec<sharded::Histogram>,
    work_duration: ShardedVec<sharded::Histogram>,
    unfinished: GaugeVec,
    longest: GaugeVec,
    retries: IntCounterVec,
}

const LABELS: &[&str] = &["name", "controller"];

fn histogram(name: &str, help: &str) -> ShardedVec<sharded::Histogram> {
    ShardedVec::histograms(name, help, LABELS, &buckets())
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
        }
    }

    pub(crate) fn register(&self, registry: &Registry) {
        register(registry, self.depth.clone());
        register(registry, self.adds.clone());
        register(registry, self.queue_duration.clone());
        register(registry, self.work_duration.clone());
        register(registry, self.unfinished.clone());
        register(registry, self.longest.clone());
        register(registry, self.retries.clone());
    }
}

/// One workqueue's series, recording through [`QueueMetrics`] with client-go's semantics.
///
/// Made by [`Metrics::workqueue`](super::Metrics::workqueue). The series of the queue's name
/// exist at zero from the moment this is made, `workqueue_depth` for the two priorities
/// controllers use ([`Priority::NORMAL`] and [`Priority::LOW`]); other priorities appear when
/// first used.
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
        }
    }

    fn depth(&self, priority: Priority, delta: i64) {
        match priority {
            Priority::NORMAL => self.depth_normal.add(delta),
            Priority::LOW => self.depth_low.add(delta),
            other => self
                .depth_vec
                .with_label_values(&[&self.name, &self.name, &other.get().to_string()])
                .add(delta),
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
        let b = buckets();
        assert_eq!(b.len(), 12);
        assert_eq!(b[0], 1e-8);
        assert!((b[11] - 1e3).abs() < 1e-9);
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
