//! Controllers against kube-runtime's `Controller`, in the same run (BENCHMARKS.md S1 and S4):
//!
//! - S1, initial sync: N ConfigMaps (or Pods of ~6 KB with managedFields) exist; a controller
//!   with a no-op reconciler starts. Wall and process CPU time until every object has been
//!   reconciled once, the peak heap above what was live before the start (counting allocator)
//!   and the peak resident set (cross-check), and reconciles per object after the start-up
//!   pass (list+watch paged by 500, and streaming lists).
//! - S4, throughput: 10 000 cached objects, all queued at once, W ∈ {1, 4, 16} workers: no-op
//!   reconciles per second and CPU per reconcile. windlass queues everything at start-up once
//!   its cache is synced; kube-runtime is measured on `reconcile_all_on` after its start-up
//!   pass, so neither side's window includes listing.
//!
//! Both sides run against the same in-process `windlass::testing` server, as interleaved pairs
//! (windlass, kube-runtime, windlass, ...); the table reports medians and the median ratio with
//! its spread. Process CPU includes the API server's share, the same for both sides. The
//! fixtures are those of `common::fixtures`.
//!
//! ```sh
//! cargo bench -p windlass --features testing --bench controller
//! WINDLASS_BENCH_QUICK=1 cargo bench -p windlass --features testing --bench controller
//! ```

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::Api;
use kube::runtime::{Controller as KubeController, controller as kube_controller, watcher};
use tokio::sync::Notify;
use windlass::controller::{Action, Context, Controller, reconciler_fn};
use windlass::informer::{Cacheable, InformerConfig};
use windlass::manager::{Config, Manager};
use windlass::testing::ApiServer;
use windlass_bench_support::alloc::{self, Snapshot};
use windlass_bench_support::{CountingAlloc, Table, os, quick};

use common::{Fixture, Side, fixtures};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn cpu_now() -> Duration {
    os::process_cpu()
}

async fn server_with(fixture: Fixture, n: usize) -> ApiServer {
    let server = ApiServer::new();
    fixtures::fill(&server, fixture, n).await;
    server
}

/// Counts reconciles and wakes a waiter at a target.
struct Counter {
    count: AtomicUsize,
    target: AtomicUsize,
    reached: Notify,
    first: parking_lot::Mutex<Option<(Instant, Duration)>>,
}

impl Counter {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            count: AtomicUsize::new(0),
            target: AtomicUsize::new(usize::MAX),
            reached: Notify::new(),
            first: parking_lot::Mutex::new(None),
        })
    }

    fn hit(&self) {
        {
            let mut first = self.first.lock();
            if first.is_none() {
                *first = Some((Instant::now(), cpu_now()));
            }
        }
        let now = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        if now == self.target.load(Ordering::SeqCst) {
            self.reached.notify_one();
        }
    }

    async fn wait_for(&self, target: usize) {
        self.target.store(target, Ordering::SeqCst);
        let notified = self.reached.notified();
        if self.count.load(Ordering::SeqCst) >= target {
            return;
        }
        tokio::time::timeout(Duration::from_secs(600), notified)
            .await
            .expect("reconciles finish");
    }
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    wall: Duration,
    cpu: Duration,
    per_object: f64,
    /// Peak heap above what was live at the start, bytes.
    peak_heap: usize,
    /// Peak resident set of the process, bytes.
    peak_rss: usize,
}

/// S1: from start to every object reconciled once; then how many reconciles per object.
async fn initial_sync<K: Cacheable<DynamicType = ()>>(
    side: Side,
    server: &ApiServer,
    n: usize,
    streaming: bool,
) -> Sample {
    let counter = Counter::new();
    let c = counter.clone();
    let wc = if streaming {
        watcher::Config::default().streaming_lists()
    } else {
        watcher::Config::default()
    };
    common::settle_heap().await;
    alloc::reset_peak();
    os::reset_peak_rss();
    let heap0 = Snapshot::now();
    let (t0, cpu0) = (Instant::now(), cpu_now());
    let sampled = || Sample {
        wall: t0.elapsed(),
        cpu: cpu_now() - cpu0,
        per_object: 0.0,
        peak_heap: Snapshot::now().peak_above(&heap0),
        peak_rss: os::rss().peak,
    };
    let settle = |sample: Sample, counter: &Counter| {
        let total = counter.count.load(Ordering::SeqCst);
        Sample {
            per_object: total as f64 / n as f64,
            ..sample
        }
    };
    match side {
        Side::Windlass => {
            let controller =
                Controller::new(reconciler_fn(move |_obj: Arc<K>, _ctx: Context<K>| {
                    c.hit();
                    async { Ok::<_, kube::Error>(Action::await_change()) }
                }))
                .informer(InformerConfig::default().watcher(wc));
            let manager =
                Manager::with_config(server.client(), Config::default().handle_signals(false))
                    .add(controller);
            let handle = manager.shutdown_handle();
            let task = tokio::spawn(manager.run());
            counter.wait_for(n).await;
            let sample = sampled();
            // Let anything still pending (duplicate triggers) run before counting.
            tokio::time::sleep(Duration::from_millis(200)).await;
            handle.shutdown();
            let _ = task.await;
            settle(sample, &counter)
        }
        Side::Kube => {
            let api: Api<K> = Api::all(server.client());
            let stop = Arc::new(Notify::new());
            let s = stop.clone();
            let task = tokio::spawn(
                KubeController::new(api, wc)
                    .graceful_shutdown_on(async move { s.notified().await })
                    .run(
                        move |_obj: Arc<K>, _ctx: Arc<()>| {
                            c.hit();
                            async { Ok::<_, kube::Error>(kube_controller::Action::await_change()) }
                        },
                        |_, _: &kube::Error, _| {
                            kube_controller::Action::requeue(Duration::from_secs(1))
                        },
                        Arc::new(()),
                    )
                    .for_each(|_| async {}),
            );
            counter.wait_for(n).await;
            let sample = sampled();
            tokio::time::sleep(Duration::from_millis(200)).await;
            stop.notify_one();
            let _ = task.await;
            settle(sample, &counter)
        }
    }
}

/// S4: the drain of `n` queued keys by `workers` workers.
async fn throughput(side: Side, server: &ApiServer, n: usize, workers: usize) -> Sample {
    common::settle_heap().await;
    let counter = Counter::new();
    let c = counter.clone();
    match side {
        Side::Windlass => {
            let controller = Controller::new(reconciler_fn(
                move |_cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| {
                    c.hit();
                    async { Ok::<_, kube::Error>(Action::await_change()) }
                },
            ))
            .max_concurrent_reconciles(workers);
            let manager =
                Manager::with_config(server.client(), Config::default().handle_signals(false))
                    .add(controller);
            let handle = manager.shutdown_handle();
            let task = tokio::spawn(manager.run());
            counter.wait_for(n).await;
            let end = (Instant::now(), cpu_now());
            let (t0, cpu0) = counter.first.lock().expect("a first reconcile");
            handle.shutdown();
            let _ = task.await;
            Sample {
                wall: end.0 - t0,
                cpu: end.1 - cpu0,
                per_object: 1.0,
                peak_heap: 0,
                peak_rss: 0,
            }
        }
        Side::Kube => {
            let api: Api<ConfigMap> = Api::all(server.client());
            let (trigger_tx, trigger_rx) = futures::channel::mpsc::unbounded::<()>();
            let stop = Arc::new(Notify::new());
            let s = stop.clone();
            let task = tokio::spawn(
                KubeController::new(api, watcher::Config::default())
                    .with_config(kube_controller::Config::default().concurrency(workers as u16))
                    .reconcile_all_on(trigger_rx)
                    .graceful_shutdown_on(async move { s.notified().await })
                    .run(
                        move |_cm: Arc<ConfigMap>, _ctx: Arc<()>| {
                            c.hit();
                            async { Ok::<_, kube::Error>(kube_controller::Action::await_change()) }
                        },
                        |_, _: &kube::Error, _| {
                            kube_controller::Action::requeue(Duration::from_secs(1))
                        },
                        Arc::new(()),
                    )
                    .for_each(|_| async {}),
            );
            counter.wait_for(n).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let before = counter.count.load(Ordering::SeqCst);
            let (t0, cpu0) = (Instant::now(), cpu_now());
            trigger_tx.unbounded_send(()).expect("trigger");
            counter.wait_for(before + n).await;
            let sample = Sample {
                wall: t0.elapsed(),
                cpu: cpu_now() - cpu0,
                per_object: 1.0,
                peak_heap: 0,
                peak_rss: 0,
            };
            stop.notify_one();
            let _ = task.await;
            sample
        }
    }
}

/// S1 for one kind and size, both list modes, as interleaved pairs.
async fn s1<K: Cacheable<DynamicType = ()>>(
    table: &mut Table,
    fixture: Fixture,
    n: usize,
    pairs: usize,
) {
    let server = server_with(fixture, n).await;
    let name = match fixture {
        Fixture::Pod => "Pods",
        Fixture::ConfigMap => "ConfigMaps",
        Fixture::BenchApp => "BenchApps",
    };
    for streaming in [false, true] {
        let label = if streaming {
            "streaming list"
        } else {
            "list+watch"
        };
        let (mut wall, mut cpu, mut per, mut heap, mut rss) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..pairs {
            let w = initial_sync::<K>(Side::Windlass, &server, n, streaming).await;
            let k = initial_sync::<K>(Side::Kube, &server, n, streaming).await;
            wall.push((w.wall.as_secs_f64(), k.wall.as_secs_f64()));
            cpu.push((w.cpu.as_secs_f64(), k.cpu.as_secs_f64()));
            per.push((w.per_object, k.per_object));
            heap.push((w.peak_heap as f64 / 1e6, k.peak_heap as f64 / 1e6));
            rss.push((w.peak_rss as f64 / 1e6, k.peak_rss as f64 / 1e6));
        }
        let what = format!("S1 {n} {name}, {label}");
        table.row(&format!("{what}: wall to all reconciled"), "s", &wall);
        table.row(&format!("{what}: CPU to all reconciled"), "s", &cpu);
        table.row(&format!("{what}: reconciles per object"), "", &per);
        table.row(&format!("{what}: peak heap above start"), "MB", &heap);
        table.row(&format!("{what}: peak RSS of the process"), "MB", &rss);
    }
}

#[tokio::main]
async fn main() {
    let quick = quick();
    let pairs = if quick { 1 } else { 5 };
    let sizes: &[usize] = if quick { &[500] } else { &[10_000, 50_000] };
    let pods = if quick { 200 } else { 10_000 };
    fixtures::print_sizes().await;
    let mut table = Table::new(
        &format!(
            "controller benchmarks: windlass vs kube-runtime Controller, {pairs} interleaved pairs"
        ),
        "kube-runtime",
    );
    for &n in sizes {
        s1::<ConfigMap>(&mut table, Fixture::ConfigMap, n, pairs).await;
    }
    s1::<Pod>(&mut table, Fixture::Pod, pods, pairs).await;
    let n = if quick { 500 } else { 10_000 };
    let server = server_with(Fixture::ConfigMap, n).await;
    for workers in [1, 4, 16] {
        let mut rate = Vec::new();
        let mut cpu = Vec::new();
        for _ in 0..pairs {
            let w = throughput(Side::Windlass, &server, n, workers).await;
            let k = throughput(Side::Kube, &server, n, workers).await;
            rate.push((
                n as f64 / w.wall.as_secs_f64() / 1000.0,
                n as f64 / k.wall.as_secs_f64() / 1000.0,
            ));
            cpu.push((
                w.cpu.as_nanos() as f64 / n as f64,
                k.cpu.as_nanos() as f64 / n as f64,
            ));
        }
        table.row(
            &format!("S4 {n} queued, W={workers}: reconciles/s"),
            "k/s",
            &rate,
        );
        table.row(
            &format!("S4 {n} queued, W={workers}: CPU per reconcile"),
            "ns",
            &cpu,
        );
    }
}
