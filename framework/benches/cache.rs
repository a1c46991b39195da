//! Cache bytes per object at steady state (BENCHMARKS.md S2), windlass's informer store against
//! kube-runtime's reflector store with its defaults (what kube-runtime's `Controller` keeps).
//!
//! For each fixture (ConfigMap ~0.4 KB, Pod ~6 KB with two managedFields entries, a ~2 KB custom
//! resource) and each side: start a cache of the kind against a server holding N objects and
//! against an empty one, wait until it is synced and idle, and read the counting allocator's
//! live heap. Bytes per object are (heap with N − heap with 0) / N, so the client, the watch
//! and the empty maps cancel out. The same run reports the peak heap while syncing and the
//! allocations made, per object, and the growth of the resident set as a cross-check (with
//! glibc's free memory returned to the kernel before each reading).
//! `WINDLASS_BENCH_VERBOSE=1` prints every sample.
//! Interleaved pairs (windlass, kube-runtime, ...) after a warm-up pair.
//!
//! ```sh
//! cargo bench -p windlass --features testing --bench cache
//! WINDLASS_BENCH_QUICK=1 cargo bench -p windlass --features testing --bench cache
//! ```

mod common;

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use windlass::informer::{Cache, Cacheable, InformerConfig};
use windlass::testing::ApiServer;
use windlass_bench_support::alloc::{self, Snapshot};
use windlass_bench_support::report::verbose;
use windlass_bench_support::{CountingAlloc, Table, os, quick};

use common::{BenchApp, Fixture, Side, fixtures};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// What one cache start cost, from before the start to synced and idle.
#[derive(Clone, Copy, Debug)]
struct Sample {
    live: f64,
    peak: f64,
    allocations: f64,
    rss: f64,
    objects: usize,
}

impl Sample {
    fn minus(self, empty: Sample, n: usize) -> Sample {
        let n = n as f64;
        Sample {
            live: (self.live - empty.live) / n,
            peak: (self.peak - empty.peak) / n,
            allocations: (self.allocations - empty.allocations) / n,
            rss: (self.rss - empty.rss) / n,
            objects: self.objects,
        }
    }
}

/// Lets what the last step started (task aborts, stream drops) finish, and returns freed
/// memory to the kernel so resident-set readings count live memory.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
    common::settle_heap().await;
    os::trim_heap();
}

async fn measure<K>(side: Side, server: &ApiServer) -> Sample
where
    K: Cacheable<DynamicType = ()>,
{
    settle().await;
    alloc::reset_peak();
    let before = Snapshot::now();
    let rss_before = os::rss().now;
    let client = server.client();
    let (objects, after, rss_after) = match side {
        Side::Windlass => {
            let cache = Cache::new(client);
            let informer = cache.informer::<K>(InformerConfig::default());
            cache.start();
            cache.wait_synced().await;
            settle().await;
            let after = Snapshot::now();
            let rss_after = os::rss().now;
            let objects = informer.store().len();
            cache.stop();
            (objects, after, rss_after)
        }
        Side::Kube => {
            let (reader, writer) = reflector::store::<K>();
            let api: Api<K> = Api::all(client);
            let task = tokio::spawn(
                watcher(api, watcher::Config::default())
                    .reflect(writer)
                    .applied_objects()
                    .for_each(|_| async {}),
            );
            reader
                .wait_until_ready()
                .await
                .expect("the reflector syncs");
            settle().await;
            let after = Snapshot::now();
            let rss_after = os::rss().now;
            let objects = reader.len();
            task.abort();
            let _ = task.await;
            (objects, after, rss_after)
        }
    };
    Sample {
        live: after.live_since(&before) as f64,
        peak: after.peak_above(&before) as f64,
        allocations: after.allocations_since(&before) as f64,
        rss: rss_after as f64 - rss_before as f64,
        objects,
    }
}

async fn scenario<K>(table: &mut Table, fixture: Fixture, n: usize, pairs: usize)
where
    K: Cacheable<DynamicType = ()>,
{
    let empty = ApiServer::new();
    let full = ApiServer::new();
    if fixture == Fixture::BenchApp {
        fixtures::install_crd(&empty.client()).await;
    }
    fixtures::fill(&full, fixture, n).await;
    let mut live = Vec::new();
    let mut peak = Vec::new();
    let mut allocations = Vec::new();
    let mut rss = Vec::new();
    // The first pair warms up the allocator's free lists and the server and is not counted
    // (a quick run of one pair skips it).
    let first = usize::from(pairs == 1);
    for pair in first..=pairs {
        let mut per = [None, None];
        for (k, side) in [Side::Windlass, Side::Kube].into_iter().enumerate() {
            let e = measure::<K>(side, &empty).await;
            let f = measure::<K>(side, &full).await;
            if verbose() {
                eprintln!("{fixture:?} pair {pair} {side:?}: empty {e:?}, full {f:?}");
            }
            assert_eq!(f.objects, n, "{side:?} cached every object");
            per[k] = Some(f.minus(e, n));
        }
        let [Some(w), Some(k)] = per else {
            unreachable!()
        };
        if pair > 0 {
            live.push((w.live, k.live));
            peak.push((w.peak, k.peak));
            allocations.push((w.allocations, k.allocations));
            rss.push((w.rss, k.rss));
        }
    }
    let name = fixture.name();
    table.row(
        &format!("S2 {n} {name}: cache bytes per object"),
        "B",
        &live,
    );
    table.row(
        &format!("S2 {n} {name}: peak heap per object while syncing"),
        "B",
        &peak,
    );
    table.row(
        &format!("S2 {n} {name}: allocations per object while syncing"),
        "",
        &allocations,
    );
    table.row(
        &format!("S2 {n} {name}: resident set growth per object (cross-check)"),
        "B",
        &rss,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = quick();
    let pairs = if quick { 1 } else { 5 };
    let n = if quick { 200 } else { 10_000 };
    fixtures::print_sizes().await;
    let mut table = Table::new(
        &format!(
            "S2 cache memory: windlass informer vs kube-runtime reflector store (defaults), {pairs} interleaved pairs"
        ),
        "kube-runtime",
    );
    scenario::<ConfigMap>(&mut table, Fixture::ConfigMap, n, pairs).await;
    scenario::<Pod>(&mut table, Fixture::Pod, n, pairs).await;
    scenario::<BenchApp>(&mut table, Fixture::BenchApp, n, pairs).await;
}
