//! Workqueue benchmarks: scenario S3 of the project's benchmark plan.
//!
//! Run with `cargo bench -p windlass --bench queue`; set `WINDLASS_BENCH_QUICK=1` for a run of
//! a few seconds with small sizes (for CI). Shared VMs vary by ±50 % between runs, so every
//! scenario runs as interleaved pairs (A B A B ...) in one process and reports the median ratio
//! A/B with the spread (min–max) over the pairs, next to the median absolute numbers.
//!
//! Scenarios (keys are `String`s "namespace/name", the same for every queue):
//!
//! 1. 1000 adds then 1000 get+done, repeated: CPU ns per item. Baseline: a naive port of
//!    client-go's queue (a mutex around a `VecDeque` plus `HashSet`s for dirty and processing).
//! 2. add-only: a flood of distinct keys into one queue (a startup list), and re-adds of keys
//!    already queued (a watch event for a queued object): CPU ns per add. Same baseline.
//! 3. contended: a backlog of queued items and workers taking one, sleeping 1 ms, and marking
//!    it done, while another thread adds new keys: wall latency of each add, p50 and p99.
//!    Same baseline, run with the same backlog and workers.
//! 4. throughput against kube-runtime's `scheduler` (what kube's `Controller` queues on), fed
//!    `ScheduleRequest`s for the same keys, all due at once: items per CPU second, reported as
//!    windlass / kube-runtime.
//!
//! Single-threaded scenarios measure the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not
//! wall time, so that time the VM gives to other work is not counted.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::scheduler::{ScheduleRequest, scheduler};
use parking_lot::Mutex;
use tokio::sync::Notify;
use windlass::queue::{NoopMetrics, WorkQueue};

/// Sizes of one run.
struct Plan {
    pairs: usize,
    /// Scenario 1: rounds of 1000 items per sample.
    rounds: usize,
    /// Scenario 2: distinct keys added per sample.
    flood: usize,
    /// Scenario 3.
    backlog: usize,
    workers: usize,
    adds: usize,
    /// Scenario 4: items per sample.
    throughput_items: usize,
}

const FULL: Plan = Plan {
    pairs: 7,
    rounds: 300,
    flood: 200_000,
    backlog: 1_000_000,
    workers: 1000,
    adds: 1000,
    throughput_items: 200_000,
};

const QUICK: Plan = Plan {
    pairs: 3,
    rounds: 20,
    flood: 20_000,
    backlog: 20_000,
    workers: 100,
    adds: 200,
    throughput_items: 20_000,
};

fn main() {
    let quick = std::env::var("WINDLASS_BENCH_QUICK").is_ok_and(|v| v == "1");
    let plan = if quick { QUICK } else { FULL };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    eprintln!(
        "workqueue benchmark ({} mode, {} pairs)",
        if quick { "quick" } else { "full" },
        plan.pairs
    );

    let keys = |n: usize, salt: &str| -> Vec<String> {
        (0..n)
            .map(|i| format!("namespace-{:02}/{salt}-configmap-{i:07}", i % 50))
            .collect()
    };

    // 1. add then get+done.
    let template = keys(1000, "agd");
    rows.push(pairs(
        "1000 add, then 1000 get+done",
        "ns/item",
        "naive client-go port",
        plan.pairs,
        |windlass| {
            let batches: Vec<Vec<String>> = (0..plan.rounds).map(|_| template.clone()).collect();
            let items = (plan.rounds * 1000) as f64;
            if windlass {
                let queue = WorkQueue::<String>::new("bench");
                runtime.block_on(async {
                    let cpu = CpuTimer::start();
                    for batch in batches {
                        for key in batch {
                            queue.add(key);
                        }
                        for _ in 0..1000 {
                            let key = queue.get().await.unwrap();
                            queue.done(&key);
                        }
                    }
                    cpu.elapsed_ns() / items
                })
            } else {
                let queue = NaiveQueue::<String>::default();
                runtime.block_on(async {
                    let cpu = CpuTimer::start();
                    for batch in batches {
                        for key in batch {
                            queue.add(key);
                        }
                        for _ in 0..1000 {
                            let key = queue.get().await.unwrap();
                            queue.done(&key);
                        }
                    }
                    cpu.elapsed_ns() / items
                })
            }
        },
    ));

    // 1b. the cost of metrics: the same with metrics on (a no-op sink, so only the queue's own
    // bookkeeping and clock reads are measured), against metrics off.
    rows.push(pairs(
        "1000 add, then 1000 get+done, metrics on",
        "ns/item",
        "windlass, metrics off",
        plan.pairs,
        |metrics_on| {
            let batches: Vec<Vec<String>> = (0..plan.rounds).map(|_| template.clone()).collect();
            let items = (plan.rounds * 1000) as f64;
            let mut builder = WorkQueue::<String>::builder().name("bench");
            if metrics_on {
                builder = builder.metrics(Arc::new(NoopMetrics));
            }
            let queue = builder.build();
            runtime.block_on(async {
                let cpu = CpuTimer::start();
                for batch in batches {
                    for key in batch {
                        queue.add(key);
                    }
                    for _ in 0..1000 {
                        let key = queue.get().await.unwrap();
                        queue.done(&key);
                    }
                }
                cpu.elapsed_ns() / items
            })
        },
    ));

    // 2. add-only: a flood of distinct keys, then re-adds of queued keys.
    let flood = keys(plan.flood, "flood");
    rows.push(pairs(
        "add-only, distinct keys (startup flood)",
        "ns/item",
        "naive client-go port",
        plan.pairs,
        |windlass| {
            let batch = flood.clone();
            let cpu;
            let ns = if windlass {
                let queue = WorkQueue::<String>::new("bench");
                cpu = CpuTimer::start();
                for key in batch {
                    queue.add(key);
                }
                let ns = cpu.elapsed_ns();
                drop(queue);
                ns
            } else {
                let queue = NaiveQueue::<String>::default();
                cpu = CpuTimer::start();
                for key in batch {
                    queue.add(key);
                }
                let ns = cpu.elapsed_ns();
                drop(queue);
                ns
            };
            ns / plan.flood as f64
        },
    ));
    let readds = plan.rounds * 1000;
    rows.push(pairs(
        "add-only, re-add of 1000 queued keys",
        "ns/item",
        "naive client-go port",
        plan.pairs,
        |windlass| {
            let batches: Vec<Vec<String>> = (0..plan.rounds).map(|_| template.clone()).collect();
            if windlass {
                let queue = WorkQueue::<String>::new("bench");
                template.iter().for_each(|key| queue.add(key.clone()));
                let cpu = CpuTimer::start();
                batches.into_iter().flatten().for_each(|key| queue.add(key));
                cpu.elapsed_ns() / readds as f64
            } else {
                let queue = NaiveQueue::<String>::default();
                template.iter().for_each(|key| queue.add(key.clone()));
                let cpu = CpuTimer::start();
                batches.into_iter().flatten().for_each(|key| queue.add(key));
                cpu.elapsed_ns() / readds as f64
            }
        },
    ));

    // 3. contended adds.
    let backlog = keys(plan.backlog, "backlog");
    let fresh = keys(plan.adds, "fresh");
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    let mut max = Vec::new();
    let mut rate = Vec::new();
    for _ in 0..plan.pairs {
        let a = contended(true, &backlog, &fresh, plan.workers);
        let b = contended(false, &backlog, &fresh, plan.workers);
        p50.push((a.p50, b.p50));
        p99.push((a.p99, b.p99));
        max.push((a.max, b.max));
        rate.push((a.rate, b.rate));
        eprintln!(
            "contended pair: windlass p50 {:.1} µs, p99 {:.1} µs, max {:.0} µs; \
             baseline p50 {:.1} µs, p99 {:.1} µs, max {:.0} µs",
            a.p50, a.p99, a.max, b.p50, b.p99, b.max
        );
    }
    let label = format!(
        "contended add ({} queued, {} workers × 1 ms, {} adds)",
        short(plan.backlog),
        plan.workers,
        plan.adds
    );
    rows.push(Row::new(
        format!("{label}: p50"),
        "µs",
        "naive client-go port",
        p50,
    ));
    rows.push(Row::new(
        format!("{label}: p99"),
        "µs",
        "naive client-go port",
        p99,
    ));
    rows.push(Row::new(
        format!("{label}: max"),
        "µs",
        "naive client-go port",
        max,
    ));
    rows.push(Row::new(
        format!("{label}: items processed per second meanwhile"),
        "items/s",
        "naive client-go port",
        rate,
    ));

    // 4. throughput against kube-runtime's scheduler. Both numbers are items per CPU second,
    // so the ratio is windlass / kube-runtime throughput.
    let items = keys(plan.throughput_items, "tp");
    rows.push(pairs(
        "throughput: add, get+done all",
        "items/s",
        "kube-runtime scheduler",
        plan.pairs,
        |windlass| {
            let batch = items.clone();
            let n = batch.len();
            let ns = if windlass {
                let queue = WorkQueue::<String>::new("bench");
                runtime.block_on(async {
                    let cpu = CpuTimer::start();
                    for key in batch {
                        queue.add(key);
                    }
                    for _ in 0..n {
                        let key = queue.get().await.unwrap();
                        queue.done(&key);
                    }
                    cpu.elapsed_ns()
                })
            } else {
                // Due before the scheduler's `DelayQueue` exists, so every item is already expired
                // when inserted and none waits for a timer tick.
                let due = tokio::time::Instant::now();
                let requests: Vec<_> = batch
                    .into_iter()
                    .map(|message| ScheduleRequest {
                        message,
                        run_at: due,
                    })
                    .collect();
                runtime.block_on(async {
                    let cpu = CpuTimer::start();
                    // The scheduler ends when its request stream does: keep it open.
                    let requests =
                        futures::stream::iter(requests).chain(futures::stream::pending());
                    let mut scheduled = pin!(scheduler(requests));
                    for _ in 0..n {
                        scheduled.next().await.unwrap();
                    }
                    cpu.elapsed_ns()
                })
            };
            n as f64 / (ns / 1e9)
        },
    ));

    print_table(&rows);
}

/// Runs `sample(true)` (windlass) and `sample(false)` (the baseline) alternately.
fn pairs(
    name: &str,
    unit: &'static str,
    baseline: &'static str,
    n: usize,
    mut sample: impl FnMut(bool) -> f64,
) -> Row {
    // One unmeasured pair warms allocators and caches.
    sample(true);
    sample(false);
    let samples = (0..n).map(|_| (sample(true), sample(false))).collect();
    Row::new(name.to_owned(), unit, baseline, samples)
}

struct Contended {
    p50: f64,
    p99: f64,
    max: f64,
    /// Items the workers processed per second while the adds were timed.
    rate: f64,
}

/// Scenario 3 for one queue: fill the backlog, start the workers, time adds from a thread of
/// their own, one every 50 µs or so.
fn contended(windlass: bool, backlog: &[String], fresh: &[String], workers: usize) -> Contended {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let queue: Arc<dyn BenchQueue> = if windlass {
        Arc::new(WorkQueue::<String>::new("bench"))
    } else {
        Arc::new(NaiveQueue::<String>::default())
    };
    backlog.iter().for_each(|key| queue.add(key.clone()));
    let processed = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (queue, processed) = (queue.clone(), processed.clone());
            runtime.spawn(async move {
                while let Some(key) = queue.get().await {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    queue.done(key);
                    processed.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Let every worker take its first item before measuring.
    std::thread::sleep(Duration::from_millis(50));
    let adder = {
        let (queue, fresh) = (queue.clone(), fresh.to_vec());
        std::thread::spawn(move || {
            let mut latencies = Vec::with_capacity(fresh.len());
            for key in fresh {
                let start = Instant::now();
                queue.add(key);
                latencies.push(start.elapsed().as_secs_f64() * 1e6);
                std::thread::sleep(Duration::from_micros(50));
            }
            latencies
        })
    };
    let before = (processed.load(Ordering::Relaxed), Instant::now());
    let mut latencies = adder.join().unwrap();
    let rate =
        (processed.load(Ordering::Relaxed) - before.0) as f64 / before.1.elapsed().as_secs_f64();
    queue.shut_down();
    for handle in handles {
        handle.abort();
    }
    drop(runtime);
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Contended {
        p50: at(0.50),
        p99: at(0.99),
        max: latencies[latencies.len() - 1],
        rate,
    }
}

/// What scenario 3 needs of a queue.
trait BenchQueue: Send + Sync {
    fn add(&self, key: String);
    fn get(&self) -> futures::future::BoxFuture<'_, Option<String>>;
    fn done(&self, key: String);
    fn shut_down(&self);
}

impl BenchQueue for WorkQueue<String> {
    fn add(&self, key: String) {
        WorkQueue::add(self, key);
    }
    fn get(&self) -> futures::future::BoxFuture<'_, Option<String>> {
        Box::pin(WorkQueue::get(self))
    }
    fn done(&self, key: String) {
        WorkQueue::done(self, &key);
    }
    fn shut_down(&self) {
        WorkQueue::shut_down(self);
    }
}

impl BenchQueue for NaiveQueue<String> {
    fn add(&self, key: String) {
        NaiveQueue::add(self, key);
    }
    fn get(&self) -> futures::future::BoxFuture<'_, Option<String>> {
        Box::pin(NaiveQueue::get(self))
    }
    fn done(&self, key: String) {
        NaiveQueue::done(self, &key);
    }
    fn shut_down(&self) {
        NaiveQueue::shut_down(self);
    }
}

/// client-go's `workqueue.Typed` ported as directly as possible: a FIFO, a dirty set and a
/// processing set under one mutex, items cloned into each, and a notification per add.
#[derive(Default)]
struct NaiveQueue<K> {
    inner: Mutex<Naive<K>>,
    ready: Notify,
}

#[derive(Default)]
struct Naive<K> {
    queue: VecDeque<K>,
    dirty: HashSet<K>,
    processing: HashSet<K>,
    shutting_down: bool,
}

impl<K: Clone + Eq + Hash> NaiveQueue<K> {
    fn add(&self, key: K) {
        let mut inner = self.inner.lock();
        if inner.shutting_down || inner.dirty.contains(&key) {
            return;
        }
        inner.dirty.insert(key.clone());
        if inner.processing.contains(&key) {
            return;
        }
        inner.queue.push_back(key);
        drop(inner);
        self.ready.notify_one();
    }

    async fn get(&self) -> Option<K> {
        loop {
            let mut notified = pin!(self.ready.notified());
            notified.as_mut().enable();
            {
                let mut inner = self.inner.lock();
                if let Some(key) = inner.queue.pop_front() {
                    inner.dirty.remove(&key);
                    inner.processing.insert(key.clone());
                    return Some(key);
                }
                if inner.shutting_down {
                    return None;
                }
            }
            notified.await;
        }
    }

    fn done(&self, key: &K) {
        let mut inner = self.inner.lock();
        inner.processing.remove(key);
        if inner.dirty.contains(key) {
            inner.queue.push_back(key.clone());
            drop(inner);
            self.ready.notify_one();
        }
    }

    fn shut_down(&self) {
        self.inner.lock().shutting_down = true;
        self.ready.notify_waiters();
    }
}

/// CPU time of the current thread (`CLOCK_THREAD_CPUTIME_ID`).
struct CpuTimer {
    start: u128,
}

impl CpuTimer {
    fn start() -> Self {
        Self {
            start: thread_cpu_ns(),
        }
    }

    fn elapsed_ns(&self) -> f64 {
        (thread_cpu_ns() - self.start) as f64
    }
}

fn thread_cpu_ns() -> u128 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    now.tv_sec as u128 * 1_000_000_000 + now.tv_nsec as u128
}

/// One line of the results: (windlass, baseline) per pair.
struct Row {
    name: String,
    unit: &'static str,
    baseline: &'static str,
    samples: Vec<(f64, f64)>,
}

impl Row {
    fn new(
        name: String,
        unit: &'static str,
        baseline: &'static str,
        samples: Vec<(f64, f64)>,
    ) -> Self {
        Self {
            name,
            unit,
            baseline,
            samples,
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| scenario | windlass (median) | baseline | baseline (median) | ratio windlass/baseline: median (min–max) |"
    );
    println!("|---|---|---|---|---|");
    for row in rows {
        let ratios: Vec<f64> = row.samples.iter().map(|(a, b)| a / b).collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let a = median(row.samples.iter().map(|s| s.0).collect());
        let b = median(row.samples.iter().map(|s| s.1).collect());
        println!(
            "| {} | {} {} | {} | {} {} | {:.2} ({:.2}–{:.2}) |",
            row.name,
            number(a),
            row.unit,
            row.baseline,
            number(b),
            row.unit,
            median(ratios),
            lo,
            hi
        );
    }
}

fn number(value: f64) -> String {
    if value >= 100_000.0 {
        format!("{:.2} M", value / 1e6)
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn short(n: usize) -> String {
    if n >= 1_000_000 {
        format!("{}M", n / 1_000_000)
    } else {
        format!("{}k", n / 1000)
    }
}
