//! `/metrics` scraped over HTTP after a known workload: every controller-runtime series with
//! its exact value, labels, type and buckets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::mpsc;
use windlass::controller::{Action, Context, Controller, TerminalError, reconciler_fn};
use windlass::manager::{Config, Manager, ShutdownHandle};
use windlass::testing::ApiServer;

use super::scrape::{Scrape, get};

const WAIT: Duration = Duration::from_secs(60);

fn local() -> Option<SocketAddr> {
    Some(([127, 0, 0, 1], 0).into())
}

#[derive(Debug, thiserror::Error)]
enum WorkloadError {
    #[error("the backend is not reachable yet")]
    Unavailable,
    #[error(transparent)]
    Invalid(#[from] TerminalError),
}

async fn create(api: &Api<ConfigMap>, name: &str) {
    let cm: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
    }))
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
}

/// controller-runtime's `controller_runtime_reconcile_time_seconds` buckets, as its source
/// spells them.
const CONTROLLER_RUNTIME_RECONCILE_BUCKETS: [f64; 40] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0,
];

/// Go's `prometheus.ExponentialBuckets(10e-9, 10, 12)`: each bound the previous times ten.
fn workqueue_buckets() -> Vec<f64> {
    let mut bounds = Vec::new();
    let mut b = 10e-9;
    for _ in 0..12 {
        bounds.push(b);
        b *= 10.0;
    }
    bounds
}

struct Running {
    addr: SocketAddr,
    shutdown: ShutdownHandle,
    task: tokio::task::JoinHandle<Result<(), windlass::manager::ManagerError>>,
}

fn start(manager: Manager) -> Running {
    let addr = manager
        .metrics_address()
        .expect("the metrics address is bound");
    Running {
        addr,
        shutdown: manager.shutdown_handle(),
        task: tokio::spawn(manager.run()),
    }
}

impl Running {
    async fn scrape(&self) -> Scrape {
        let answer = get(self.addr, "/metrics").await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.content_type,
            "text/plain; version=0.0.4; charset=utf-8"
        );
        Scrape::parse(&answer.body)
    }

    async fn stop(self) {
        self.shutdown.shutdown();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the manager stops")
            .unwrap()
            .expect("a clean shutdown");
    }
}

#[tokio::test(start_paused = true)]
async fn a_known_workload_scrapes_as_controller_runtime_series_with_exact_values() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for name in [
        "ok-1", "ok-2", "ok-3", "flaky", "doomed", "boom", "later", "soon",
    ] {
        create(&api, name).await;
    }

    // Every object settles: successes at once; `flaky` fails twice, `boom` panics once, `later`
    // and `soon` ask to run again once; `doomed` fails for good.
    let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let seen = runs.clone();
    let controller = Controller::new(reconciler_fn(
        move |cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| {
            let name = cm.name_any();
            let run = {
                let mut runs = seen.lock();
                let n = runs.entry(name.clone()).or_default();
                *n += 1;
                *n
            };
            let _ = tx.send(name.clone());
            async move {
                match (name.as_str(), run) {
                    ("flaky", 1 | 2) => Err(WorkloadError::Unavailable),
                    ("doomed", _) => Err(TerminalError::new("spec.size must be positive").into()),
                    ("boom", 1) => panic!("boom"),
                    ("later", 1) => Ok(Action::requeue(Duration::from_secs(30))),
                    ("soon", 1) => Ok(Action::requeue_with_backoff()),
                    _ => Ok(Action::await_change()),
                }
            }
        },
    ))
    .name("workload")
    .max_concurrent_reconciles(2);
    let manager = Manager::with_config(
        server.client(),
        Config::default()
            .handle_signals(false)
            .metrics_bind_address(local()),
    )
    .add(controller);
    let running = start(manager);

    // 3 + 3 (flaky) + 1 (doomed) + 2 (boom) + 2 (later) + 2 (soon) reconciles.
    for _ in 0..13 {
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("the workload runs")
            .unwrap();
    }
    // Under the paused clock this returns once every task is idle: the last reconcile has
    // been recorded and nothing is left in the queue.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        tokio::time::timeout(Duration::from_secs(3600), rx.recv())
            .await
            .is_err(),
        "no reconcile after the workload settled"
    );

    let s = running.scrape().await;
    let c = [("controller", "workload")];
    let result = |r: &'static str| [("controller", "workload"), ("result", r)];
    assert_eq!(
        s.get("controller_runtime_reconcile_total", &result("success")),
        7.0
    );
    assert_eq!(
        s.get("controller_runtime_reconcile_total", &result("error")),
        4.0
    );
    assert_eq!(
        s.get("controller_runtime_reconcile_total", &result("requeue")),
        1.0
    );
    assert_eq!(
        s.get(
            "controller_runtime_reconcile_total",
            &result("requeue_after")
        ),
        1.0
    );
    assert_eq!(s.series("controller_runtime_reconcile_total").len(), 4);
    assert_eq!(s.get("controller_runtime_reconcile_errors_total", &c), 4.0);
    assert_eq!(
        s.get("controller_runtime_terminal_reconcile_errors_total", &c),
        1.0
    );
    assert_eq!(s.get("controller_runtime_reconcile_panics_total", &c), 1.0);
    assert_eq!(
        s.get("controller_runtime_reconcile_timeouts_total", &c),
        0.0
    );
    assert_eq!(
        s.get("controller_runtime_max_concurrent_reconciles", &c),
        2.0
    );
    assert_eq!(s.get("controller_runtime_active_workers", &c), 0.0);
    assert_eq!(
        s.get("controller_runtime_reconcile_time_seconds_count", &c),
        13.0
    );
    // No reconcile waits on the (paused) clock, so each took zero seconds.
    assert_eq!(
        s.get("controller_runtime_reconcile_time_seconds_sum", &c),
        0.0
    );
    let buckets = s.buckets("controller_runtime_reconcile_time_seconds", &c);
    let bounds: Vec<f64> = buckets.iter().map(|b| b.0).collect();
    let mut expected = CONTROLLER_RUNTIME_RECONCILE_BUCKETS.to_vec();
    expected.push(f64::INFINITY);
    assert_eq!(bounds, expected, "controller-runtime's buckets");
    assert!(buckets.iter().all(|b| b.1 == 13.0));

    let q = [("controller", "workload"), ("name", "workload")];
    // One add per reconcile: 8 at start-up, 2 + 1 retries, 1 requeue after, 1 with backoff.
    assert_eq!(s.get("workqueue_adds_total", &q), 13.0);
    // Rate-limited re-adds: flaky twice, boom once, soon's requeue with backoff.
    assert_eq!(s.get("workqueue_retries_total", &q), 4.0);
    let depth = |p: &'static str| {
        [
            ("controller", "workload"),
            ("name", "workload"),
            ("priority", p),
        ]
    };
    assert_eq!(s.get("workqueue_depth", &depth("0")), 0.0);
    assert_eq!(s.get("workqueue_depth", &depth("-100")), 0.0);
    assert_eq!(s.series("workqueue_depth").len(), 2);
    assert_eq!(s.get("workqueue_unfinished_work_seconds", &q), 0.0);
    assert_eq!(
        s.get("workqueue_longest_running_processor_seconds", &q),
        0.0
    );
    for histogram in [
        "workqueue_queue_duration_seconds",
        "workqueue_work_duration_seconds",
    ] {
        assert_eq!(
            s.get(&format!("{histogram}_count"), &q),
            13.0,
            "{histogram}"
        );
        let buckets = s.buckets(histogram, &q);
        let bounds: Vec<f64> = buckets.iter().map(|b| b.0).collect();
        let mut expected = workqueue_buckets();
        expected.push(f64::INFINITY);
        assert_eq!(
            bounds, expected,
            "{histogram}: ExponentialBuckets(10e-9, 10, 12)"
        );
        // 10 ns to 1000 s.
        assert_eq!(bounds[0], 1e-8);
        assert!((bounds[11] - 1e3).abs() < 1e-9);
        assert!(buckets.iter().all(|b| b.1 == 13.0), "{histogram}: all zero");
    }

    let informer = [("informer", "ConfigMap")];
    assert_eq!(s.get("windlass_informer_objects", &informer), 8.0);
    assert_eq!(
        s.get("windlass_informer_watch_errors_total", &informer),
        0.0
    );
    assert_eq!(s.get("windlass_informer_relists_total", &informer), 0.0);
    assert_eq!(
        s.get("windlass_informer_malformed_objects_total", &informer),
        0.0
    );

    for (family, kind) in [
        ("controller_runtime_reconcile_total", "counter"),
        ("controller_runtime_reconcile_errors_total", "counter"),
        (
            "controller_runtime_terminal_reconcile_errors_total",
            "counter",
        ),
        ("controller_runtime_reconcile_panics_total", "counter"),
        ("controller_runtime_reconcile_timeouts_total", "counter"),
        ("controller_runtime_reconcile_time_seconds", "histogram"),
        ("controller_runtime_max_concurrent_reconciles", "gauge"),
        ("controller_runtime_active_workers", "gauge"),
        ("workqueue_depth", "gauge"),
        ("workqueue_adds_total", "counter"),
        ("workqueue_retries_total", "counter"),
        ("workqueue_queue_duration_seconds", "histogram"),
        ("workqueue_work_duration_seconds", "histogram"),
        ("workqueue_unfinished_work_seconds", "gauge"),
        ("workqueue_longest_running_processor_seconds", "gauge"),
        ("windlass_informer_objects", "gauge"),
        ("windlass_informer_watch_errors_total", "counter"),
        ("process_cpu_seconds_total", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
    ] {
        assert_eq!(
            s.types.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
    assert!(s.get("process_resident_memory_bytes", &[]) > 0.0);
    // No leader election ran, so there is no lease to report on.
    assert!(s.series("leader_election_master_status").is_empty());

    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_started_controller_exports_every_series_at_zero_before_its_first_reconcile() {
    let server = ApiServer::new();
    let controller = Controller::new(reconciler_fn(
        |_cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| async move {
            Ok::<_, kube::Error>(Action::await_change())
        },
    ))
    .name("idle")
    .max_concurrent_reconciles(3);
    let manager = Manager::with_config(
        server.client(),
        Config::default()
            .handle_signals(false)
            .metrics_bind_address(local()),
    )
    .add(controller);
    let running = start(manager);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let s = running.scrape().await;
    let c = [("controller", "idle")];
    for result in ["success", "error", "requeue", "requeue_after"] {
        assert_eq!(
            s.get(
                "controller_runtime_reconcile_total",
                &[("controller", "idle"), ("result", result)]
            ),
            0.0
        );
    }
    for counter in [
        "controller_runtime_reconcile_errors_total",
        "controller_runtime_terminal_reconcile_errors_total",
        "controller_runtime_reconcile_panics_total",
        "controller_runtime_reconcile_timeouts_total",
        "controller_runtime_active_workers",
        "controller_runtime_reconcile_time_seconds_count",
    ] {
        assert_eq!(s.get(counter, &c), 0.0, "{counter}");
    }
    assert_eq!(
        s.get("controller_runtime_max_concurrent_reconciles", &c),
        3.0
    );
    let q = [("controller", "idle"), ("name", "idle")];
    for series in [
        "workqueue_adds_total",
        "workqueue_retries_total",
        "workqueue_unfinished_work_seconds",
        "workqueue_longest_running_processor_seconds",
        "workqueue_queue_duration_seconds_count",
        "workqueue_work_duration_seconds_count",
    ] {
        assert_eq!(s.get(series, &q), 0.0, "{series}");
    }
    assert_eq!(
        s.get("windlass_informer_objects", &[("informer", "ConfigMap")]),
        0.0
    );
    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn metrics_turned_off_record_nothing_and_serve_404() {
    let server = ApiServer::new();
    let manager = Manager::with_config(
        server.client(),
        Config::default()
            .handle_signals(false)
            .metrics(None)
            .metrics_bind_address(local()),
    );
    assert!(manager.metrics().is_none());
    let running = start(manager);
    assert_eq!(get(running.addr, "/metrics").await.status, 404);
    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_operators_own_metrics_are_served_with_windlasss() {
    let server = ApiServer::new();
    let manager = Manager::with_config(
        server.client(),
        Config::default()
            .handle_signals(false)
            .metrics_bind_address(local()),
    );
    let backups = prometheus::IntCounter::new("backups_taken_total", "Backups taken").unwrap();
    manager
        .metrics()
        .unwrap()
        .registry()
        .register(Box::new(backups.clone()))
        .unwrap();
    backups.inc_by(3);
    let running = start(manager);
    assert_eq!(running.scrape().await.get("backups_taken_total", &[]), 3.0);
    running.stop().await;
}
