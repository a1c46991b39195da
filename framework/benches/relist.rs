//! Relist after a forced 410 (BENCHMARKS.md S6), windlass's `Controller` against
//! kube-runtime's, in the same run.
//!
//! N objects are cached and reconciled once. Then the controller's client is cut off (its
//! watch ends), 1 % of the objects are changed by another client, the server forgets its
//! history (as an etcd compaction does), and the client is let back: resuming the watch
//! answers 410 Expired and the controller must relist. Measured from the reconnect until the
//! relist is over (the controller's client has listed and opened a new watch, and no
//! reconcile has run for 500 ms since): reconciles triggered (against the objects changed),
//! the peak heap above what was live before the relist, per object (against what the
//! controller held after its first sync), and process CPU. Interleaved pairs after a warm-up
//! pair. `WINDLASS_BENCH_VERBOSE=1` prints every sample.
//!
//! ```sh
//! cargo bench -p windlass --features testing --bench relist
//! WINDLASS_BENCH_QUICK=1 cargo bench -p windlass --features testing --bench relist
//! ```

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{Controller as KubeController, controller as kube_controller, watcher};
use tokio::sync::Notify;
use windlass::controller::{Action, Context, Controller, reconciler_fn};
use windlass::informer::Cacheable;
use windlass::manager::{Config, Manager};
use windlass::testing::{ApiServer, TestClient, Verb};
use windlass_bench_support::alloc::{self, Snapshot};
use windlass_bench_support::report::verbose;
use windlass_bench_support::{CountingAlloc, Table, os, quick};

use common::{Fixture, Side, fixtures};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// How long without a reconcile counts as "the reconciles are over".
const QUIET: Duration = Duration::from_millis(500);
/// The longest a phase may take before the benchmark gives up.
const LIMIT: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Counter {
    count: AtomicUsize,
    changed: Notify,
}

impl Counter {
    fn hit(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    fn get(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until at least `target` reconciles ran and then none for [`QUIET`].
    async fn wait_quiet(&self, target: usize) {
        let start = Instant::now();
        loop {
            assert!(start.elapsed() < LIMIT, "reconciles did not settle");
            let seen = self.get();
            tokio::time::sleep(QUIET).await;
            if seen >= target && self.get() == seen {
                return;
            }
        }
    }
}

#[derive(Debug)]
struct Sample {
    reconciles: f64,
    /// Peak heap above the heap before the relist, bytes per object.
    peak: f64,
    /// Heap held after the first sync, bytes per object.
    store: f64,
    cpu: Duration,
    wall: Duration,
}

/// Waits until `client` has listed and then opened a watch: the relist is over.
async fn relisted(server: &ApiServer, client: &str) {
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < LIMIT, "the controller did not relist");
        let log = server.requests();
        let mine = |r: &&windlass::testing::RequestRecord, verb: Verb| {
            r.client == client && r.verb == Some(verb) && r.status == 200
        };
        if let Some(listed) = log.iter().position(|r| mine(&r, Verb::List))
            && log[listed..].iter().any(|r| mine(&r, Verb::Watch))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A running controller of either side, to be stopped.
enum Running {
    Windlass(
        windlass::manager::ShutdownHandle,
        tokio::task::JoinHandle<()>,
    ),
    Kube(Arc<Notify>, tokio::task::JoinHandle<()>),
}

impl Running {
    async fn stop(self) {
        match self {
            Running::Windlass(handle, task) => {
                handle.shutdown();
                let _ = task.await;
            }
            Running::Kube(stop, task) => {
                stop.notify_one();
                let _ = task.await;
            }
        }
    }
}

fn start<K>(side: Side, client: kube::Client, counter: Arc<Counter>) -> Running
where
    K: Cacheable<DynamicType = ()>,
{
    match side {
        Side::Windlass => {
            let controller =
                Controller::new(reconciler_fn(move |_obj: Arc<K>, _ctx: Context<K>| {
                    counter.hit();
                    async { Ok::<_, kube::Error>(Action::await_change()) }
                }));
            let manager = Manager::with_config(client, Config::default().handle_signals(false))
                .add(controller);
            let handle = manager.shutdown_handle();
            let task = tokio::spawn(async move {
                let _ = manager.run().await;
            });
            Running::Windlass(handle, task)
        }
        Side::Kube => {
            let api: Api<K> = Api::all(client);
            let stop = Arc::new(Notify::new());
            let s = stop.clone();
            let task = tokio::spawn(
                KubeController::new(api, watcher::Config::default())
                    .graceful_shutdown_on(async move { s.notified().await })
                    .run(
                        move |_obj: Arc<K>, _ctx: Arc<()>| {
                            counter.hit();
                            async { Ok::<_, kube::Error>(kube_controller::Action::await_change()) }
                        },
                        |_, _: &kube::Error, _| {
                            kube_controller::Action::requeue(Duration::from_secs(1))
                        },
                        Arc::new(()),
                    )
                    .for_each(|_| async {}),
            );
            Running::Kube(stop, task)
        }
    }
}

/// Changes objects `range` of `fixture` (a label bump: a new resourceVersion, same size).
async fn change(server: &ApiServer, fixture: Fixture, range: std::ops::Range<usize>, round: usize) {
    let client = server.client();
    let patch =
        Patch::Merge(serde_json::json!({"metadata": {"labels": {"round": round.to_string()}}}));
    let pp = PatchParams::default();
    for i in range {
        match fixture {
            Fixture::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), fixtures::NAMESPACE);
                api.patch(&fixtures::configmap(i).metadata.name.unwrap(), &pp, &patch)
                    .await
                    .expect("patch");
            }
            Fixture::Pod => {
                let api: Api<Pod> = Api::namespaced(client.clone(), fixtures::NAMESPACE);
                api.patch(&fixtures::pod(i).metadata.name.unwrap(), &pp, &patch)
                    .await
                    .expect("patch");
            }
            Fixture::BenchApp => unreachable!("S6 runs ConfigMaps and Pods"),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn relist<K>(
    side: Side,
    server: &ApiServer,
    ctl: &TestClient,
    fixture: Fixture,
    n: usize,
    changed: usize,
    round: usize,
) -> Sample
where
    K: Cacheable<DynamicType = ()>,
{
    // Let the previous controller's teardown finish before taking the baseline.
    common::settle_heap().await;
    let idle = Snapshot::now();
    let counter = Arc::new(Counter::default());
    let running = start::<K>(side, ctl.client(), counter.clone());
    counter.wait_quiet(n).await;
    let store = Snapshot::now().live_since(&idle) as f64 / n as f64;

    // The watch ends and cannot come back while the objects change and history is lost.
    ctl.faults().disconnect();
    let first = (round * changed) % (n - changed + 1);
    change(server, fixture, first..first + changed, round).await;
    server.expire_history();
    let before_count = counter.get();
    alloc::reset_peak();
    let before = Snapshot::now();
    let (t0, cpu0) = (Instant::now(), os::process_cpu());
    server.clear_requests();
    ctl.faults().reconnect();
    relisted(server, ctl.name()).await;
    counter.wait_quiet(before_count).await;
    let (wall, cpu) = (t0.elapsed() - QUIET, os::process_cpu() - cpu0);
    let after = Snapshot::now();
    running.stop().await;
    Sample {
        reconciles: (counter.get() - before_count) as f64,
        peak: after.peak_above(&before) as f64 / n as f64,
        store,
        cpu,
        wall,
    }
}

async fn scenario<K>(table: &mut Table, fixture: Fixture, n: usize, pairs: usize)
where
    K: Cacheable<DynamicType = ()>,
{
    let server = ApiServer::new();
    fixtures::fill(&server, fixture, n).await;
    let changed = (n / 100).max(1);
    let (mut reconciles, mut peak, mut store, mut cpu, mut wall) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut round = 0;
    // A warm-up pair first, unless this is a quick run of one pair.
    let first = usize::from(pairs == 1);
    for pair in first..=pairs {
        let mut per = Vec::new();
        for side in [Side::Windlass, Side::Kube] {
            round += 1;
            let ctl = server.client_named(&format!("controller-{round}"));
            let sample = relist::<K>(side, &server, &ctl, fixture, n, changed, round).await;
            if verbose() {
                eprintln!("{fixture:?} pair {pair} {side:?}: {sample:?}");
            }
            per.push(sample);
        }
        if pair > 0 {
            let (w, k) = (&per[0], &per[1]);
            reconciles.push((w.reconciles, k.reconciles));
            peak.push((w.peak, k.peak));
            store.push((w.store, k.store));
            cpu.push((w.cpu.as_secs_f64() * 1e3, k.cpu.as_secs_f64() * 1e3));
            wall.push((w.wall.as_secs_f64() * 1e3, k.wall.as_secs_f64() * 1e3));
        }
    }
    let name = fixture.name();
    let what = format!("S6 {n} {name}s, {changed} changed");
    table.row(
        &format!("{what}: reconciles triggered by the relist"),
        "",
        &reconciles,
    );
    table.row(
        &format!("{what}: peak heap during the relist, per object"),
        "B",
        &peak,
    );
    table.row(
        &format!("{what}: heap held after sync, per object"),
        "B",
        &store,
    );
    table.row(&format!("{what}: process CPU of the relist"), "ms", &cpu);
    table.row(
        &format!("{what}: wall, reconnect to the last reconcile"),
        "ms",
        &wall,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = quick();
    let pairs = if quick { 1 } else { 5 };
    let n = if quick { 500 } else { 10_000 };
    let mut table = Table::new(
        &format!(
            "S6 relist after a forced 410: windlass vs kube-runtime Controller, {pairs} interleaved pairs"
        ),
        "kube-runtime",
    );
    scenario::<ConfigMap>(&mut table, Fixture::ConfigMap, n, pairs).await;
    scenario::<Pod>(&mut table, Fixture::Pod, n, pairs).await;
}
