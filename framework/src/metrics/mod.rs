//! Prometheus metrics with controller-runtime's series: same names, types, labels and buckets,
//! so the Grafana dashboards and alerts written for Go operators work unchanged.
//!
//! This module owns [`Metrics`]: the Prometheus [`Registry`] a manager records into and serves
//! at `/metrics`, and every series windlass itself records. It does not own the HTTP server
//! (see [`manager`](crate::manager)), nor the tower layer that records the client's requests
//! (see [`client`](crate::client)); both write into a `Metrics`.
//!
//! # Series
//!
//! | series | type | labels | recorded by |
//! |---|---|---|---|
//! | `controller_runtime_reconcile_total` | counter | `controller`, `result` (`success`, `error`, `requeue`, `requeue_after`) | every reconcile |
//! | `controller_runtime_reconcile_errors_total` | counter | `controller` | every failed reconcile, terminal errors, panics and timeouts included |
//! | `controller_runtime_terminal_reconcile_errors_total` | counter | `controller` | reconciles failing with a [`TerminalError`](crate::controller::TerminalError) |
//! | `controller_runtime_reconcile_panics_total` | counter | `controller` | reconciles that panicked |
//! | `controller_runtime_reconcile_timeouts_total` | counter | `controller` | reconciles cut off by the controller's timeout |
//! | `controller_runtime_reconcile_time_seconds` | histogram | `controller` | every reconcile, with controller-runtime's 40 buckets from 5 ms to 60 s |
//! | `controller_runtime_max_concurrent_reconciles` | gauge | `controller` | set at start |
//! | `controller_runtime_active_workers` | gauge | `controller` | workers holding an item from the queue (between `get` and `done`), read from the queue at each scrape |
//! | `workqueue_depth` | gauge | `name`, `controller`, `priority` | items waiting, per priority (`0`, and `-100` for the start-up pass) |
//! | `workqueue_adds_total` | counter | `name`, `controller` | adds, with client-go's counting |
//! | `workqueue_retries_total` | counter | `name`, `controller` | rate-limited re-adds |
//! | `workqueue_queue_duration_seconds` | histogram | `name`, `controller` | add to get; buckets 10⁻⁸ … 10³ s |
//! | `workqueue_work_duration_seconds` | histogram | `name`, `controller` | get to done; same buckets |
//! | `workqueue_unfinished_work_seconds` | gauge | `name`, `controller` | the items in flight, measured at each scrape (client-go: every 500 ms) |
//! | `workqueue_longest_running_processor_seconds` | gauge | `name`, `controller` | the same |
//! | `leader_election_master_status` | gauge | `name` | [`Metrics::set_leader`] |
//! | `rest_client_requests_total` | counter | `code`, `method`, `host` | every HTTP request of a [flow-controlled](crate::client) client |
//! | `rest_client_request_duration_seconds` | histogram | `verb`, `host` | the same; client-go's buckets |
//! | `rest_client_rate_limiter_duration_seconds` | histogram | `verb`, `host` | time spent waiting for the client's token bucket |
//! | `rest_client_request_retries_total` | counter | `code`, `verb`, `host` | retries of 429 responses |
//! | `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_virtual_memory_max_bytes`, `process_open_fds`, `process_max_fds`, `process_start_time_seconds` | | | Linux only, read from `/proc` at each scrape, as Go's process collector does |
//! | `windlass_informer_objects` | gauge | `informer` | objects in each informer's cache |
//! | `windlass_informer_watch_errors_total` | counter | `informer` | failed list or watch calls (each retried with backoff) |
//! | `windlass_informer_relists_total` | counter | `informer` | relists after the first list |
//! | `windlass_informer_malformed_objects_total` | counter | `informer` | objects skipped because they did not decode |
//!
//! Every controller's series, and its queue's, exist with value zero from the moment the
//! controller starts, so a rate or an alert on them is defined before the first event.
//!
//! # Your own metrics
//!
//! Register them on the manager's [`registry`](Metrics::registry); they are served with the
//! rest:
//!
//! ```
//! use windlass::metrics::Metrics;
//! use windlass::metrics::prometheus::IntCounter;
//!
//! let metrics = Metrics::new();
//! let backups = IntCounter::new("backups_taken_total", "Backups taken").unwrap();
//! metrics.registry().register(Box::new(backups.clone())).unwrap();
//! backups.inc();
//! assert!(metrics.encode().contains("backups_taken_total 1"));
//! ```

mod cache;
mod collect;
mod controller;
#[cfg(target_os = "linux")]
mod process;
mod rest_client;
mod sharded;
mod workqueue;

use std::fmt;
use std::sync::Arc;

use prometheus::{Encoder, IntGaugeVec, Opts, Registry, TextEncoder};

pub(crate) use controller::{ControllerMetrics, Failure, ReconcileResult};
pub(crate) use rest_client::RestClientMetrics;
pub(crate) use workqueue::Tally;
pub use workqueue::WorkqueueMetrics;

/// The `prometheus` crate windlass records with, so an operator's own collectors are of the
/// same version as the [`Registry`] they are registered on.
pub use prometheus;

use crate::informer::Cache;

/// The `Content-Type` of [`Metrics::encode`]'s output: Prometheus's text exposition format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A Prometheus registry holding windlass's series, plus any the operator adds. Cheap to
/// clone; clones share the registry.
///
/// A [`Manager`](crate::manager::Manager) records into the `Metrics` of its
/// [`Config`](crate::manager::Config) (a fresh one by default) and serves it at `/metrics`;
/// give the same `Metrics` to the [client](crate::client::Config::metrics) so its requests are
/// counted there too.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    controller: controller::Families,
    workqueue: workqueue::Families,
    rest_client: RestClientMetrics,
    caches: cache::CacheCollector,
    leader: IntGaugeVec,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers a collector windlass defines itself. Its names are fixed and the registry is
/// new, so this cannot collide.
fn register(registry: &Registry, collector: impl prometheus::core::Collector + 'static) {
    registry
        .register(Box::new(collector))
        .expect("windlass's own series are valid and registered once, in a new registry");
}

impl Metrics {
    /// A new registry with every windlass series (and, on Linux, the process series).
    pub fn new() -> Self {
        let registry = Registry::new();
        let controller = controller::Families::new();
        controller.register(&registry);
        let workqueue = workqueue::Families::new();
        workqueue.register(&registry);
        let rest_client = RestClientMetrics::new();
        rest_client.register(&registry);
        let caches = cache::CacheCollector::new();
        register(&registry, caches.clone());
        let leader = IntGaugeVec::new(
            Opts::new(
                "leader_election_master_status",
                "Gauge of if the reporting system is master of the relevant lease, 0 indicates \
                 backup, 1 indicates master. 'name' is the string used to identify the lease. \
                 Please make sure to group by name.",
            ),
            &["name"],
        )
        .expect("a valid gauge");
        register(&registry, leader.clone());
        #[cfg(target_os = "linux")]
        register(&registry, process::ProcessCollector::new());
        Self {
            inner: Arc::new(Inner {
                registry,
                controller,
                workqueue,
                rest_client,
                caches,
                leader,
            }),
        }
    }

    /// The registry: register your own collectors here to have them served with windlass's.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Everything in the registry in Prometheus's text exposition format (what `/metrics`
    /// answers; its content type is [`TEXT_CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let families = self.inner.registry.gather();
        let mut out = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&families, &mut out) {
            // Only a collector of the operator's own that produces an invalid family can get
            // here; the rest of the scrape is still worth having.
            tracing::warn!(%error, "a metric family could not be encoded");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Sets `leader_election_master_status{name}`: 1 while this replica holds the lease
    /// `name`, 0 otherwise. Leader election calls this when it acquires and when it loses or
    /// releases the lease.
    pub fn set_leader(&self, name: &str, leading: bool) {
        self.inner
            .leader
            .with_label_values(&[name])
            .set(i64::from(leading));
    }

    /// The workqueue series of a queue named `name` (its `name` and `controller` labels), to
    /// pass to [`WorkQueueBuilder::metrics`](crate::queue::WorkQueueBuilder::metrics) for a
    /// queue of your own. Controllers get theirs automatically.
    ///
    /// The queue's `workqueue_unfinished_work_seconds` and
    /// `workqueue_longest_running_processor_seconds` are measured from its items in flight at
    /// each scrape.
    pub fn workqueue(&self, name: &str) -> Arc<WorkqueueMetrics> {
        Arc::new(WorkqueueMetrics::new(&self.inner.workqueue, name))
    }

    /// A controller's series, created at zero (with `max_concurrent_reconciles` set).
    pub(crate) fn controller(
        &self,
        name: &str,
        max_concurrent: usize,
        queue: std::sync::Weak<dyn crate::queue::Scraped>,
    ) -> ControllerMetrics {
        ControllerMetrics::new(&self.inner.controller, name, max_concurrent, queue)
    }

    /// The series the client's flow-control layer records.
    pub(crate) fn rest_client(&self) -> &RestClientMetrics {
        &self.inner.rest_client
    }

    /// Exports `cache`'s informer counters (read at each scrape, for as long as the cache
    /// lives).
    pub(crate) fn watch_cache(&self, cache: &Cache) {
        self.inner.caches.add(cache);
    }

    /// The lines of a scrape that start with `prefix`, for tests to compare.
    #[cfg(test)]
    pub(crate) fn scraped_lines(&self, prefix: &str) -> Vec<String> {
        self.encode()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_status_follows_set_leader() {
        let metrics = Metrics::new();
        metrics.set_leader("my-operator", true);
        assert!(
            metrics
                .encode()
                .contains("leader_election_master_status{name=\"my-operator\"} 1\n")
        );
        metrics.set_leader("my-operator", false);
        assert!(
            metrics
                .encode()
                .contains("leader_election_master_status{name=\"my-operator\"} 0\n")
        );
    }

    #[test]
    fn two_registries_do_not_share_series() {
        let a = Metrics::new();
        let b = Metrics::new();
        a.set_leader("x", true);
        assert!(!b.encode().contains("leader_election_master_status{"));
    }
}
