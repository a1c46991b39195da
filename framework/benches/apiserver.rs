//! How cheap `windlass::testing`'s API server is to read from, so benchmarks of controllers
//! measure the controllers and not the server: the cost per object of creating, listing (paged
//! by 500, as kube's watcher does) and starting a watch, in-process.
//!
//! ```sh
//! cargo bench -p windlass --features testing --bench apiserver
//! WINDLASS_BENCH_QUICK=1 cargo bench -p windlass --features testing --bench apiserver
//! ```

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use windlass::testing::ApiServer;

fn configmap(i: usize) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": format!("cm-{i:06}"), "labels": {"app": "bench", "shard": (i % 8).to_string()}},
        "data": {"small": "value", "big": "x".repeat(128)},
    }))
    .expect("a valid ConfigMap")
}

fn per_object(d: Duration, n: usize) -> String {
    format!("{:>8.2} µs/object", d.as_secs_f64() * 1e6 / n as f64)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let quick = std::env::var_os("WINDLASS_BENCH_QUICK").is_some();
    let n = if quick { 1_000 } else { 50_000 };
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");

    let start = Instant::now();
    for i in 0..n {
        api.create(&PostParams::default(), &configmap(i))
            .await
            .expect("create");
    }
    let create = start.elapsed();

    let start = Instant::now();
    let mut listed = 0;
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await.expect("list");
        listed += page.items.len();
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    let list = start.elapsed();
    assert_eq!(listed, n);

    let start = Instant::now();
    let mut stream = api
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch")
        .boxed();
    let mut added = 0;
    while added < n {
        match stream.next().await {
            Some(Ok(WatchEvent::Added(_))) => added += 1,
            other => panic!("unexpected watch item {other:?}"),
        }
    }
    let watch = start.elapsed();

    println!(
        "windlass::testing API server, {n} ConfigMaps of ~0.4 KB, in-process client (one thread)"
    );
    println!(
        "  create (typed, validated, stored)        {}",
        per_object(create, n)
    );
    println!(
        "  list, paged by 500, decoded by kube      {}",
        per_object(list, n)
    );
    println!(
        "  watch from 0: synthetic ADDED, decoded   {}",
        per_object(watch, n)
    );
}
