//! What metrics cost per reconcile (BENCHMARKS.md S4, metrics on vs off).
//!
//! The S4 scenario of `benches/controller.rs` with windlass on both sides: 10 000 cached
//! ConfigMaps, all queued at once when the cache is synced, drained by W ∈ {1, 4, 16} workers
//! running a no-op reconcile; once with the manager's metrics on (the default: every
//! controller-runtime and workqueue series recorded) and once with them off
//! (`Config::metrics(None)`: the queue does not even read the clock). Process CPU time of the
//! drain, per reconcile, as interleaved pairs (on then off, off then on, ...) after one unmeasured
//! warm-up pair; the table gives the medians and the median ratio with its spread. The drain
//! is measured from a gate the first reconciles wait at, opened 50 ms after the first one
//! arrives, so that the informer's own work after the sync is not counted.
//!
//! Each scenario runs on a current-thread runtime, where a drain's CPU is the work itself and
//! the pairs agree to a few percent, and on Tokio's multi-threaded runtime, where it also
//! depends on how the workers happen to spread over the threads (pairs vary by tens of
//! percent, so the median needs many of them).
//!
//! A last table isolates the queue: one thread, then two, each taking an item from one queue,
//! marking it done and adding it back, with windlass's workqueue metrics on (as a controller's
//! queue records them), the same series through their hooks, and off; process CPU per item over
//! interleaved rounds. With metrics on it reads the queue's stopwatch three times per item (add,
//! `get`, `done`), each just before taking the queue's lock: a worst case beside a controller,
//! whose worker reads it once per reconcile, away from the lock.
//!
//! ```sh
//! cargo bench -p windlass --features testing --bench metrics
//! WINDLASS_BENCH_QUICK=1 cargo bench -p windlass --features testing --bench metrics
//! WINDLASS_BENCH_PAIRS=41 cargo bench -p windlass --features testing --bench metrics
//! WINDLASS_BENCH_RUNTIME=current_thread cargo bench -p windlass --features testing --bench metrics
//! ```
//!
//! CPU time moves by a few percent from run to run; instructions do not. With
//! `WINDLASS_BENCH_INSTRUCTIONS=on` (or `off`) the benchmark runs one drain of W=1 on a
//! current-thread runtime, metrics on (or off), reading no CPU clock, for counting under
//! Valgrind's callgrind what the workers execute (the binary is the one `cargo bench ... --no-run`
//! prints; `callgrind_annotate` then lists it by function):
//!
//! ```sh
//! WINDLASS_BENCH_INSTRUCTIONS=on valgrind --tool=callgrind --collect-atstart=no \
//!   '--toggle-collect=*Controller<R>>::run::{{closure}}::{{closure}}' target/release/deps/metrics-<hash>
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use tokio::sync::Notify;
use windlass::controller::{Action, Context, Controller, reconciler_fn};
use windlass::manager::{Config, Manager};
use windlass::metrics::{Metrics, WorkqueueMetrics};
use windlass::queue::{Priority, QueueMetrics, WorkQueue};
use windlass::testing::ApiServer;

/// How long a drain lets the process settle between the first reconcile and the start of the
/// measurement.
const SETTLE: Duration = Duration::from_millis(50);

/// Whether drains read the process's CPU time (not when counting instructions: rustix's vDSO
/// lookup does not run under Valgrind).
static READ_CPU: AtomicBool = AtomicBool::new(true);

fn cpu_now() -> Duration {
    if !READ_CPU.load(Ordering::Relaxed) {
        return Duration::ZERO;
    }
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

/// Counts reconciles and holds them at a gate until the measurement starts.
///
/// Workers start the moment the cache is synced, while the informer may still be freeing
/// what it built the cache from (the list's buffers): that work is no reconcile's, and it
/// varied the CPU of a drain by tens of percent. So the first reconciles wait at the gate;
/// the drain opens it once the process is quiet and measures from there.
struct Counter {
    count: AtomicUsize,
    target: usize,
    reached: Notify,
    arrived: Notify,
    open: AtomicBool,
    gate: Notify,
}

impl Counter {
    async fn hit(&self) {
        if !self.open.load(Ordering::Acquire) {
            let opened = self.gate.notified();
            self.arrived.notify_one();
            if !self.open.load(Ordering::Acquire) {
                opened.await;
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
        arrived: Notify::new(),
        open: AtomicBool::new(false),
        gate: Notify::new(),
    });
    let c = counter.clone();
    let controller = Controller::new(reconciler_fn(
        move |_cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| {
            let c = c.clone();
            async move {
                c.hit().await;
                Ok::<_, kube::Error>(Action::await_change())
            }
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
    tokio::time::timeout(Duration::from_secs(600), counter.arrived.notified())
        .await
        .expect("a first reconcile");
    // Let the informer finish what it does after the sync (the list's buffers are freed).
    tokio::time::sleep(SETTLE).await;
    let start = (Instant::now(), cpu_now());
    counter.open.store(true, Ordering::Release);
    counter.gate.notify_waiters();
    tokio::time::timeout(Duration::from_secs(600), reached)
        .await
        .expect("the drain finishes");
    let end = (Instant::now(), cpu_now());
    handle.shutdown();
    let _ = task.await;
    (end.0 - start.0, end.1 - start.1)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The runtimes the drains run on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// One thread: every task in one place, so a drain's CPU is the work itself and pairs
    /// agree to a few percent.
    CurrentThread,
    /// Tokio's default multi-threaded runtime (one worker thread per core): what an operator
    /// runs on, where a drain's CPU also depends on how the workers spread over the threads.
    MultiThread,
}

impl Flavor {
    fn name(self) -> &'static str {
        match self {
            Flavor::CurrentThread => "current_thread",
            Flavor::MultiThread => "multi_thread",
        }
    }

    fn runtime(self) -> tokio::runtime::Runtime {
        match self {
            Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
            Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread(),
        }
        .enable_all()
        .build()
        .expect("a Tokio runtime")
    }
}

/// The drains of one row split in two groups by their CPU per reconcile, if they fall in two
/// groups at least 1.5× apart, each with a tenth of the drains or more: the bound between them
/// (a two-means split of the logarithms).
///
/// On the multi-threaded runtime a drain runs in one of two modes, decided when the gate opens:
/// its workers either stay on one thread (about the CPU of one worker) or spread over both, and
/// then contend for every shared lock (two to three times the CPU). Which mode a drain falls
/// in does not depend on the metrics, but a median of pair ratios mixes pairs of different
/// modes (ratios of 0.4 or 2.5); comparing the drains of each mode separately does not.
fn split(on: &[f64], off: &[f64]) -> Option<f64> {
    let logs: Vec<f64> = on.iter().chain(off).map(|v| v.ln()).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let mut lo = logs.iter().cloned().fold(f64::INFINITY, f64::min);
    let mut hi = logs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    for _ in 0..50 {
        let bound = (lo + hi) / 2.0;
        let (low, high): (Vec<f64>, Vec<f64>) = logs.iter().partition(|&&v| v <= bound);
        if low.is_empty() || high.is_empty() {
            return None;
        }
        (lo, hi) = (mean(&low), mean(&high));
    }
    let bound = (lo + hi) / 2.0;
    let low = logs.iter().filter(|&&v| v <= bound).count();
    let tenth = logs.len().div_ceil(10);
    ((hi - lo).exp() >= 1.5 && low >= tenth && logs.len() - low >= tenth).then(|| bound.exp())
}

/// `on` and `off` drains below (or above) `bound`: how many of each and the ratio of their
/// medians.
fn mode(on: &[f64], off: &[f64], keep: impl Fn(f64) -> bool) -> String {
    let on: Vec<f64> = on.iter().cloned().filter(|&v| keep(v)).collect();
    let off: Vec<f64> = off.iter().cloned().filter(|&v| keep(v)).collect();
    if on.is_empty() || off.is_empty() {
        return format!("{} / {} | – |", on.len(), off.len());
    }
    let (n_on, n_off) = (on.len(), off.len());
    let (on, off) = (median(on), median(off));
    format!(
        "{n_on} / {n_off} | {on:.0} ns / {off:.0} ns = **{:.3}** |",
        on / off
    )
}

/// A test API server holding `n` ConfigMaps.
async fn server_with(n: usize) -> ApiServer {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for i in 0..n {
        api.create(&PostParams::default(), &configmap(i))
            .await
            .expect("create");
    }
    server
}

/// One table row per worker count on one runtime flavor; returns the rows of the table of
/// modes (see [`split`]).
async fn scenario(flavor: Flavor, n: usize, pairs: usize) -> Vec<String> {
    let server = server_with(n).await;
    let mut modes = Vec::new();
    for workers in [1, 4, 16] {
        // Warm-up pair, not measured.
        drain(&server, n, workers, true).await;
        drain(&server, n, workers, false).await;
        let (mut on_cpu, mut off_cpu, mut ratios, mut on_rate, mut off_rate) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for pair in 0..pairs {
            // Alternating which goes first keeps whatever the previous drain leaves behind
            // from weighing on one side only.
            let (on, off) = if pair % 2 == 0 {
                let on = drain(&server, n, workers, true).await;
                (on, drain(&server, n, workers, false).await)
            } else {
                let off = drain(&server, n, workers, false).await;
                (drain(&server, n, workers, true).await, off)
            };
            let per = |d: Duration| d.as_nanos() as f64 / n as f64;
            on_cpu.push(per(on.1));
            off_cpu.push(per(off.1));
            ratios.push(per(on.1) / per(off.1));
            on_rate.push(n as f64 / on.0.as_secs_f64() / 1000.0);
            off_rate.push(n as f64 / off.0.as_secs_f64() / 1000.0);
        }
        // Only the multi-threaded runtime has modes; on one thread a split would be noise.
        if let Some(bound) = split(&on_cpu, &off_cpu).filter(|_| flavor == Flavor::MultiThread) {
            modes.push(format!(
                "| {} | {workers} | {} {}",
                flavor.name(),
                mode(&on_cpu, &off_cpu, |v| v <= bound),
                mode(&on_cpu, &off_cpu, |v| v > bound),
            ));
        }
        let lo = ratios.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().cloned().fold(0.0, f64::max);
        println!(
            "| {} | {workers} | {:.0} ns | {:.0} ns | {:.3} ({lo:.2}–{hi:.2}) | {:.0} k/s | {:.0} k/s |",
            flavor.name(),
            median(on_cpu),
            median(off_cpu),
            median(ratios),
            median(on_rate),
            median(off_rate),
        );
    }
    modes
}

/// Process CPU per item of `threads` threads each taking an item from `queue`, marking it done
/// and adding it back, `rounds` times.
fn churn(queue: &WorkQueue<u32>, threads: usize, rounds: usize) -> f64 {
    let start = cpu_now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..rounds {
                    // Items are always ready: the queue holds more than the threads take.
                    let item = queue
                        .get()
                        .now_or_never()
                        .flatten()
                        .expect("an item is ready");
                    queue.done(&item);
                    queue.add(item);
                }
            });
        }
    });
    (cpu_now() - start).as_nanos() as f64 / (threads * rounds) as f64
}

/// windlass's workqueue series behind a type of their own, so that a queue given them calls
/// their hooks for each item instead of keeping a tally.
struct ThroughHooks(Arc<WorkqueueMetrics>);

impl QueueMetrics for ThroughHooks {
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

/// The queue alone, metrics on vs off, on one thread and with two contending: one table row
/// each. "On" is windlass's series as a controller's queue records them (a tally under the
/// queue's lock); "hooks" the same series through their `QueueMetrics` hooks, as any other
/// implementation is called.
fn queue_alone(quick: bool) {
    let (samples, rounds) = if quick { (3, 10_000) } else { (31, 200_000) };
    let metrics = Metrics::new();
    let queue = |name: &str, m: Option<Arc<dyn QueueMetrics>>| {
        let builder = WorkQueue::builder().name(name);
        let builder = match m {
            Some(m) => builder.metrics(m),
            None => builder,
        };
        let queue: WorkQueue<u32> = builder.build();
        for item in 0..10_000 {
            queue.add(item);
        }
        queue
    };
    let arms = [
        queue("on", Some(metrics.workqueue("on"))),
        queue(
            "hooks",
            Some(Arc::new(ThroughHooks(metrics.workqueue("hooks")))),
        ),
        queue("off", None),
    ];
    println!();
    println!(
        "The queue alone: 10 000 items, each thread taking one, marking it done and adding it back, {samples} interleaved rounds of {rounds} per thread"
    );
    println!(
        "| threads | CPU per item, on (median) | through hooks (median) | off (median) | ratio on/off (min–max) |"
    );
    println!("|---|---|---|---|---|");
    for threads in [1, 2] {
        let mut ns = [Vec::new(), Vec::new(), Vec::new()];
        let mut ratios = Vec::new();
        for round in 0..samples {
            // Each round runs the three in a different order.
            let mut this = [0.0; 3];
            for k in 0..3 {
                let arm = (round + k) % 3;
                this[arm] = churn(&arms[arm], threads, rounds);
            }
            for (arm, v) in this.iter().enumerate() {
                ns[arm].push(*v);
            }
            ratios.push(this[0] / this[2]);
        }
        let lo = ratios.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().cloned().fold(0.0, f64::max);
        let [on, hooks, off] = ns;
        println!(
            "| {threads} | {:.0} ns | {:.0} ns | {:.0} ns | {:.3} ({lo:.2}–{hi:.2}) |",
            median(on),
            median(hooks),
            median(off),
            median(ratios),
        );
    }
}

fn main() {
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
    // `WINDLASS_BENCH_RUNTIME=current_thread` or `multi_thread` runs one flavor only.
    let flavors = match std::env::var("WINDLASS_BENCH_RUNTIME").as_deref() {
        Err(_) => vec![Flavor::CurrentThread, Flavor::MultiThread],
        Ok("current_thread") => vec![Flavor::CurrentThread],
        Ok("multi_thread") => vec![Flavor::MultiThread],
        Ok(other) => {
            eprintln!(
                "WINDLASS_BENCH_RUNTIME must be current_thread or multi_thread; got {other:?}"
            );
            std::process::exit(2);
        }
    };
    let n = if quick { 500 } else { 10_000 };
    if let Ok(arm) = std::env::var("WINDLASS_BENCH_INSTRUCTIONS") {
        let metrics = match arm.as_str() {
            "on" => true,
            "off" => false,
            other => {
                eprintln!("WINDLASS_BENCH_INSTRUCTIONS must be on or off; got {other:?}");
                std::process::exit(2);
            }
        };
        READ_CPU.store(false, Ordering::Relaxed);
        Flavor::CurrentThread.runtime().block_on(async {
            drain(&server_with(n).await, n, 1, metrics).await;
        });
        println!("one drain of {n} no-op reconciles, metrics {arm}");
        return;
    }
    println!("S4 metrics on vs off: {n} queued no-op reconciles, {pairs} interleaved pairs");
    println!(
        "| runtime | workers | CPU per reconcile, on (median) | off (median) | ratio on/off (min–max) | reconciles/s on | off |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut modes = Vec::new();
    for flavor in flavors {
        modes.extend(flavor.runtime().block_on(scenario(flavor, n, pairs)));
    }
    if !modes.is_empty() {
        println!();
        println!("Rows whose drains fall in two modes, each mode's drains compared on its own:");
        println!(
            "| runtime | workers | low-CPU drains, on / off | their medians, on / off = ratio | high-CPU drains, on / off | their medians, on / off = ratio |"
        );
        println!("|---|---|---|---|---|---|");
        for row in modes {
            println!("{row}");
        }
    }
    queue_alone(quick);
}
