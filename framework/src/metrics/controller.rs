//! The `controller_runtime_*` series, with controller-runtime's names, help texts, labels and
//! buckets, and the per-controller handle the controller's workers record into.

use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{MetricFamily, MetricType};
use prometheus::{IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

use super::collect::Family;
use super::register;
use super::sharded::{self, ShardedVec};
use crate::queue::Scraped;

/// controller-runtime's `controller_runtime_reconcile_time_seconds` buckets: 5 ms to 60 s,
/// finer where reconciles usually fall.
pub(crate) const RECONCILE_TIME_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0,
];

/// The families, shared by every controller of one registry.
///
/// The series every reconcile records (results, time) are [sharded](super::sharded) so that
/// workers on different threads do not contend; the active workers are read from the
/// controllers' queues when scraped; the others, recorded on failures or once, are the
/// `prometheus` crate's.
pub(crate) struct Families {
    total: ShardedVec<sharded::Counter>,
    errors: IntCounterVec,
    terminal: IntCounterVec,
    panics: IntCounterVec,
    timeouts: IntCounterVec,
    time: ShardedVec<sharded::Histogram>,
    max_concurrent: IntGaugeVec,
    active: ActiveWorkers,
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter")
}

fn gauge(name: &str, help: &str) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), &["controller"]).expect("a valid gauge")
}

impl Families {
    pub(crate) fn new() -> Self {
        Self {
            total: ShardedVec::counters(
                "controller_runtime_reconcile_total",
                "Total number of reconciliations per controller",
                &["controller", "result"],
            ),
            errors: counter(
                "controller_runtime_reconcile_errors_total",
                "Total number of reconciliation errors per controller",
                &["controller"],
            ),
            terminal: counter(
                "controller_runtime_terminal_reconcile_errors_total",
                "Total number of terminal reconciliation errors per controller",
                &["controller"],
            ),
            panics: counter(
                "controller_runtime_reconcile_panics_total",
                "Total number of reconciliation panics per controller",
                &["controller"],
            ),
            timeouts: counter(
                "controller_runtime_reconcile_timeouts_total",
                "Total number of reconciliation timeouts per controller",
                &["controller"],
            ),
            time: ShardedVec::histograms(
                "controller_runtime_reconcile_time_seconds",
                "Length of time per reconciliation per controller",
                &["controller"],
                RECONCILE_TIME_BUCKETS,
            ),
            max_concurrent: gauge(
                "controller_runtime_max_concurrent_reconciles",
                "Maximum number of concurrent reconciles per controller",
            ),
            active: ActiveWorkers::new(),
        }
    }

    pub(crate) fn register(&self, registry: &Registry) {
        register(registry, self.total.clone());
        register(registry, self.errors.clone());
        register(registry, self.terminal.clone());
        register(registry, self.panics.clone());
        register(registry, self.timeouts.clone());
        register(registry, self.time.clone());
        register(registry, self.max_concurrent.clone());
        register(registry, self.active.clone());
    }
}

const ACTIVE: Family = Family {
    name: "controller_runtime_active_workers",
    help: "Number of currently used workers per controller",
    kind: MetricType::GAUGE,
};

/// `controller_runtime_active_workers`, read at each scrape from the controllers' queues: a
/// worker is active from the `get` that hands it an item to the `done` that ends it, as in
/// controller-runtime, which counts a worker up after `Get` and down just before `Done`. Reading
/// it costs the reconciles nothing.
#[derive(Clone)]
struct ActiveWorkers {
    desc: Arc<Desc>,
    /// Each controller's name and queue; a dropped queue's series stays, at zero.
    queues: Arc<Mutex<Vec<ControllerQueue>>>,
}

/// A controller's name and its queue.
type ControllerQueue = (String, Weak<dyn Scraped>);

impl ActiveWorkers {
    fn new() -> Self {
        Self {
            desc: Arc::new(ACTIVE.desc(&["controller"])),
            queues: Arc::default(),
        }
    }

    fn add(&self, controller: &str, queue: Weak<dyn Scraped>) {
        let mut queues = self.queues.lock();
        // A controller started again (after a lost lease, say) takes over its series: the
        // dropped queues of its name go, so that restarts do not pile them up.
        queues.retain(|(name, q)| name != controller || q.strong_count() > 0);
        queues.push((controller.to_string(), queue));
    }
}

impl Collector for ActiveWorkers {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let queues: Vec<_> = self
            .queues
            .lock()
            .iter()
            .map(|(name, queue)| (name.clone(), queue.upgrade()))
            .collect();
        // One series per controller name, summing the queues of any that share it.
        let mut active: Vec<(String, usize)> = Vec::new();
        for (name, queue) in queues {
            let n = queue.map_or(0, |q| q.in_flight());
            match active.iter_mut().find(|(c, _)| *c == name) {
                Some((_, total)) => *total += n,
                None => active.push((name, n)),
            }
        }
        vec![ACTIVE.collect(
            &["controller"],
            active.iter().map(|(c, n)| (vec![c.as_str()], *n as f64)),
        )]
    }
}

/// How a reconcile ended, as `controller_runtime_reconcile_total`'s `result` label counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReconcileResult {
    /// Succeeded and waits for the next change.
    Success,
    /// Succeeded and asked to run again after the object's backoff.
    Requeue,
    /// Succeeded and asked to run again after a given time.
    RequeueAfter,
    /// Failed: an error (terminal or not), a panic or a timeout.
    Error,
}

impl ReconcileResult {
    /// The `result` label value.
    pub(crate) fn label(self) -> &'static str {
        match self {
            ReconcileResult::Success => "success",
            ReconcileResult::Requeue => "requeue",
            ReconcileResult::RequeueAfter => "requeue_after",
            ReconcileResult::Error => "error",
        }
    }
}

/// One controller's series, resolved once so that recording a reconcile touches atomics only
/// (no label lookup).
#[derive(Clone)]
pub(crate) struct ControllerMetrics {
    success: Arc<sharded::Counter>,
    requeue: Arc<sharded::Counter>,
    requeue_after: Arc<sharded::Counter>,
    error: Arc<sharded::Counter>,
    errors: IntCounter,
    terminal: IntCounter,
    panics: IntCounter,
    timeouts: IntCounter,
    time: Arc<sharded::Histogram>,
}

impl ControllerMetrics {
    /// The series of the controller `name`, whose workers take their items from `queue`.
    ///
    /// Resolving a label set creates its series at zero: that is the pre-initialisation
    /// controller-runtime does when a controller starts.
    pub(crate) fn new(
        families: &Families,
        name: &str,
        max_concurrent: usize,
        queue: Weak<dyn Scraped>,
    ) -> Self {
        let result = |r: &str| families.total.with_label_values(&[name, r]);
        let metrics = Self {
            success: result("success"),
            requeue: result("requeue"),
            requeue_after: result("requeue_after"),
            error: result("error"),
            errors: families.errors.with_label_values(&[name]),
            terminal: families.terminal.with_label_values(&[name]),
            panics: families.panics.with_label_values(&[name]),
            timeouts: families.timeouts.with_label_values(&[name]),
            time: families.time.with_label_values(&[name]),
        };
        families.active.add(name, queue);
        families
            .max_concurrent
            .with_label_values(&[name])
            .set(i64::try_from(max_concurrent).unwrap_or(i64::MAX));
        metrics
    }

    /// A reconcile ended after `nanos` nanoseconds: its result, and which kind of failure it
    /// was.
    #[inline]
    pub(crate) fn finish(&self, nanos: u64, result: ReconcileResult, failure: Failure) {
        // One shard lookup for the two updates every reconcile makes.
        let here = sharded::here();
        self.time.observe_nanos_here(nanos, here);
        match result {
            ReconcileResult::Success => self.success.inc_here(here),
            ReconcileResult::Requeue => self.requeue.inc_here(here),
            ReconcileResult::RequeueAfter => self.requeue_after.inc_here(here),
            ReconcileResult::Error => {
                self.error.inc_here(here);
                self.errors.inc();
            }
        }
        match failure {
            Failure::None | Failure::Error => {}
            Failure::Terminal => self.terminal.inc(),
            Failure::Panic => self.panics.inc(),
            Failure::Timeout => self.timeouts.inc(),
        }
    }
}

/// What kind of failure a failed reconcile was, for the counters that single some out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Not a failure.
    None,
    /// An ordinary error.
    Error,
    /// An error with a `TerminalError` in its chain.
    Terminal,
    /// A panic.
    Panic,
    /// The controller's reconcile timeout fired.
    Timeout,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::queue::WorkQueue;

    #[test]
    fn a_panic_counts_as_an_error_and_a_panic() {
        let families = Families::new();
        let queue = WorkQueue::<&str>::new("c");
        let m = ControllerMetrics::new(&families, "c", 2, queue.scraped());
        m.finish(1_000_000, ReconcileResult::Error, Failure::Panic);
        assert_eq!(m.error.get(), 1);
        assert_eq!(m.errors.get(), 1);
        assert_eq!(m.panics.get(), 1);
        assert_eq!(m.terminal.get(), 0);
        assert_eq!(m.time.sample_count(), 1);
    }

    fn active_line(metrics: &Metrics) -> Vec<String> {
        metrics.scraped_lines("controller_runtime_active_workers{")
    }

    #[tokio::test]
    async fn active_workers_are_the_items_taken_from_the_queue_and_not_done() {
        let metrics = Metrics::new();
        let queue = WorkQueue::new("c");
        let _m = metrics.controller("c", 4, queue.scraped());
        let active = |n: u32| {
            vec![format!(
                r#"controller_runtime_active_workers{{controller="c"}} {n}"#
            )]
        };
        assert_eq!(active_line(&metrics), active(0), "at zero from the start");
        for key in ["a", "b", "c"] {
            queue.add(key);
        }
        let (a, b) = (queue.get().await.unwrap(), queue.get().await.unwrap());
        assert_eq!(
            active_line(&metrics),
            active(2),
            "the third item still waits"
        );
        queue.done(&a);
        assert_eq!(active_line(&metrics), active(1));
        queue.done(&b);
        drop(queue);
        assert_eq!(
            active_line(&metrics),
            active(0),
            "the series outlives its queue"
        );
    }

    #[test]
    fn a_controller_started_again_replaces_its_dropped_queue() {
        let families = Families::new();
        for _ in 0..3 {
            let queue = WorkQueue::<&str>::new("c");
            let _m = ControllerMetrics::new(&families, "c", 1, queue.scraped());
        }
        let other = WorkQueue::<&str>::new("d");
        let _d = ControllerMetrics::new(&families, "d", 1, other.scraped());
        assert_eq!(families.active.queues.lock().len(), 2, "one entry per name");
    }

    #[test]
    fn buckets_are_controller_runtimes_forty() {
        assert_eq!(RECONCILE_TIME_BUCKETS.len(), 40);
        assert!(RECONCILE_TIME_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }
}
