//! Observability: a manager serving Prometheus metrics and health probes, with a client under
//! client-side flow control, and what a scrape and a readiness probe then see.
//!
//! A ConfigMap controller reconciles three objects; one fails once before it succeeds. The
//! example then fetches `/metrics` and `/readyz?verbose` over HTTP, as Prometheus and the kubelet
//! would, and prints what they answer (the metrics filtered to the controller's series).
//! Everything runs in this process against windlass's test API server.
//!
//! ```sh
//! cargo run --example observability
//! cargo run --example observability -- --log-json    # one JSON object per log line
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use windlass::controller::{Action, Context, Controller, reconciler_fn};
use windlass::manager::{Config, Manager};
use windlass::metrics::Metrics;
use windlass::testing::ApiServer;

#[derive(Debug, thiserror::Error)]
#[error("the backend is not reachable yet")]
struct Unavailable;

/// `GET path` over HTTP/1.1, returning the status line and the body.
async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(String, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.lines().next().unwrap_or_default().to_string();
    Ok((status, body.to_string()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    windlass_examples::init_tracing();
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for name in ["web", "db", "flaky"] {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cms.create(&PostParams::default(), &cm).await?;
    }

    let (done, mut reconciled) = mpsc::unbounded_channel();
    let failed_once = Arc::new(AtomicBool::new(false));
    let controller = Controller::new(reconciler_fn(
        move |cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| {
            let (done, failed_once) = (done.clone(), failed_once.clone());
            async move {
                if cm.name_any() == "flaky" && !failed_once.swap(true, Ordering::SeqCst) {
                    return Err(Unavailable);
                }
                let _ = done.send(());
                Ok(Action::await_change())
            }
        },
    ))
    .name("configmaps");

    // ANCHOR: setup
    // One registry for everything: the manager's controllers and the client's requests.
    let metrics = Metrics::new();
    // The kube client, under client-side flow control (controller-runtime's defaults: 20
    // requests per second, bursts of 30). Against a cluster:
    // `.build(kube::Config::infer().await?)`.
    let client = windlass::client::Config::default()
        .qps(20.0)
        .burst(30)
        .metrics(metrics.clone())
        .build_with(
            server.client_named("operator").client_builder(),
            "in-process",
        )?;
    let manager = Manager::with_config(
        client,
        Config::default()
            .metrics(Some(metrics))
            // In a pod: "0.0.0.0:8080" and "0.0.0.0:8081", as kubebuilder's scaffolding uses.
            .metrics_bind_address(Some("127.0.0.1:0".parse()?))
            .health_probe_bind_address(Some("127.0.0.1:0".parse()?)),
    )
    .add(controller)
    .add_readyz_check("backend", || Ok(()));
    let metrics_addr = manager.metrics_address().expect("bound");
    let probe_addr = manager.health_probe_address().expect("bound");
    // ANCHOR_END: setup
    let shutdown = manager.shutdown_handle();
    let running = tokio::spawn(manager.run());

    for _ in 0..3 {
        tokio::time::timeout(Duration::from_secs(30), reconciled.recv()).await?;
    }
    // Let the last reconcile's outcome be recorded.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let (status, body) = get(metrics_addr, "/metrics").await?;
    println!("GET http://{metrics_addr}/metrics -> {status}");
    let shown = [
        "controller_runtime_reconcile_total",
        "controller_runtime_reconcile_errors_total",
        "controller_runtime_reconcile_time_seconds_count",
        "controller_runtime_max_concurrent_reconciles",
        "controller_runtime_active_workers",
        "workqueue_adds_total",
        "workqueue_retries_total",
        "workqueue_depth",
        "rest_client_requests_total",
        "windlass_informer_objects",
    ];
    for line in body.lines() {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        if shown.contains(&name) {
            println!("{line}");
        }
    }
    let (status, body) = get(probe_addr, "/readyz?verbose").await?;
    println!("\nGET http://{probe_addr}/readyz?verbose -> {status}");
    print!("{body}");

    shutdown.shutdown();
    running.await??;
    Ok(())
}
