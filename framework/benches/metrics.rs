//! What metrics cost per reconcile (BENCHMARKS.md S4, metrics on vs off).
//!
//! The S4 scenario of `benches/controller.rs` with windlass on both sides: 10 000 cached
//! ConfigMaps, all queued at once when the cache is synced, drained by W ∈ {1, 4, 16} workers
//! running a no-op reconcile; once with the manager's metrics on (the default: every
//! controller-runtime and workqueue series recorded) and once with them off
//! (`Config::metrics(None)`: the queue does not even read the clock). Process CPU time from
//! the first reconcile to the last, per reconcile, as interleaved pairs (on, off, on, off ...)
//! after one unmeasured warm-up pair; the table gives the medians and the median ratio with
//! its spread.
//!
//! ```sh
//! cargo bench -p windlass --features testing --bench metrics
//! WINDLASS_BENCH_QUICK=1 cargo bench -p windlass --features testing --bench metrics
//! WINDLASS_BENCH_PAIRS=41 cargo bench -p windlass --features testing --bench metrics
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use tokio::sync::Notify;
use windlass::controller::{Action, Context, Controller, reconciler_fn};
use windlass::manager::{Config, Manager};
use windlass::testing::ApiServer;

fn cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn configmap(i: usize) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": format!("cm-{i:06}"), "namespace": "default",
                     "labels": {"app": "bench", "shard": (i % 8).to_string()}},
        "data": {"small": "value", "big": "x".repeat(128)},
    }))
    .expect("a valid ConfigMap")
}

/// Counts reconciles; remembers when the first one ran and wakes a waiter at the target.
struct Counter {
    count: AtomicUsize,
    target: usize,
    reached: Notify,
    first: parking_lot::Mutex<Option<(Instant, Duration)>>,
}

impl Counter {
    fn hit(&self) {
        {
            let mut first = self.first.lock();
            if first.is_none() {
                *first = Some((Instant::now(), cpu_now()));
            }
        }
        if self.count.fetch_add(1, Ordering::SeqCst) + 1 == self.target {
            self.reached.notify_one();
        }
    }
}

/// Wall time and process CPU of the drain of `n` queued keys.
async fn drain(
    server: &ApiServer,
    n: usize,
    workers: usize,
    metrics: bool,
) -> (Duration, Duration) {
    let counter = Arc::new(Counter {
        count: AtomicUsize::new(0),
        target: n,
        reached: Notify::new(),
        first: parking_lot::Mutex::new(None),
    });
    let c = counter.clone();
    let controller = Controller::new(reconciler_fn(
        move |_cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| {
            c.hit();
            async { Ok::<_, kube::Error>(Action::await_change()) }
        },
    ))
    .max_concurrent_reconciles(workers);
    let mut config = Config::default().handle_signals(false);
    if !metrics {
        config = config.metrics(None);
    }
    let manager = Manager::with_config(server.client(), config).add(controller);
    let handle = manager.shutdown_handle();
    let reached = counter.reached.notified();
    let task = tokio::spawn(manager.run());
    tokio::time::timeout(Duration::from_secs(600), reached)
        .await
        .expect("the drain finishes");
    let end = (Instant::now(), cpu_now());
    let (t0, cpu0) = counter.first.lock().expect("a first reconcile");
    handle.shutdown();
    let _ = task.await;
    (end.0 - t0, end.1 - cpu0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let quick = std::env::var_os("WINDLASS_BENCH_QUICK").is_some();
    // More pairs narrow the median on a busy machine: `WINDLASS_BENCH_PAIRS=41`.
    let pairs = match std::env::var("WINDLASS_BENCH_PAIRS") {
        Ok(p) => match p.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!(
                    "WINDLASS_BENCH_PAIRS must be a whole number of pairs, 1 or more; got {p:?}"
                );
                std::process::exit(2);
            }
        },
        Err(_) if quick => 1,
        Err(_) => 15,
    };
    let n = if quick { 500 } else { 10_000 };
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for i in 0..n {
        api.create(&PostParams::default(), &configmap(i))
            .await
            .expect("create");
    }
    println!("S4 metrics on vs off: {n} queued no-op reconciles, {pairs} interleaved pairs");
    println!(
        "| workers | CPU per reconcile, on (median) | off (median) | ratio on/off (min–max) | reconciles/s on | off |"
    );
    println!("|---|---|---|---|---|---|");
    for workers in [1, 4, 16] {
        // Warm-up pair, not measured.
        drain(&server, n, workers, true).await;
        drain(&server, n, workers, false).await;
        let (mut on_cpu, mut off_cpu, mut ratios, mut on_rate, mut off_rate) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..pairs {
            let on = drain(&server, n, workers, true).await;
            let off = drain(&server, n, workers, false).await;
            let per = |d: Duration| d.as_nanos() as f64 / n as f64;
            on_cpu.push(per(on.1));
            off_cpu.push(per(off.1));
            ratios.push(per(on.1) / per(off.1));
            on_rate.push(n as f64 / on.0.as_secs_f64() / 1000.0);
            off_rate.push(n as f64 / off.0.as_secs_f64() / 1000.0);
        }
        let lo = ratios.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().cloned().fold(0.0, f64::max);
        println!(
            "| {workers} | {:.0} ns | {:.0} ns | {:.3} ({lo:.2}–{hi:.2}) | {:.0} k/s | {:.0} k/s |",
            median(on_cpu),
            median(off_cpu),
            median(ratios),
            median(on_rate),
            median(off_rate),
        );
    }
}
