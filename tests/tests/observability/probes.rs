//! `/healthz` and `/readyz` over HTTP, as the kubelet probes them: not ready until the caches
//! have synced, ready after, and failing with a body that names the failing check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use tokio::sync::{Notify, oneshot};
use windlass::controller::{Action, Context, Controller, reconciler_fn};
use windlass::informer::Cache;
use windlass::manager::{
    BoxError, Config, Manager, ManagerError, RunContext, Runnable, ShutdownHandle,
};
use windlass::testing::ApiServer;

use super::scrape::get;

const WAIT: Duration = Duration::from_secs(60);

fn local() -> Option<SocketAddr> {
    Some(([127, 0, 0, 1], 0).into())
}

fn config() -> Config {
    Config::default()
        .handle_signals(false)
        .health_probe_bind_address(local())
}

fn noop_controller() -> Controller<impl windlass::controller::Reconciler<Object = ConfigMap>> {
    Controller::new(reconciler_fn(
        |_cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| async move {
            Ok::<_, kube::Error>(Action::await_change())
        },
    ))
}

async fn stop(shutdown: ShutdownHandle, task: tokio::task::JoinHandle<Result<(), ManagerError>>) {
    shutdown.shutdown();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the manager stops")
        .unwrap()
        .expect("a clean shutdown");
}

async fn synced(cache: &Cache) {
    tokio::time::timeout(WAIT, cache.wait_synced())
        .await
        .expect("the caches sync once the API server answers");
}

#[tokio::test(start_paused = true)]
async fn readyz_fails_until_the_caches_sync_and_passes_after() {
    let server = ApiServer::new();
    let replica = server.client_named("operator");
    // The operator cannot reach the API server at first: its informers cannot list.
    replica.faults().disconnect();
    let manager = Manager::with_config(replica.client(), config()).add(noop_controller());
    let addr = manager.health_probe_address().expect("bound");
    let cache = manager.cache().clone();
    let shutdown = manager.shutdown_handle();
    let task = tokio::spawn(manager.run());

    let answer = get(addr, "/readyz").await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.content_type, "text/plain; charset=utf-8");
    assert_eq!(
        answer.body,
        "[-]informer-sync failed: reason withheld\n[+]shutdown ok\nhealthz check failed\n"
    );
    let one = get(addr, "/readyz/informer-sync").await;
    assert_eq!(one.status, 500);
    assert_eq!(
        one.body,
        "internal server error: not every informer has its first list yet\n"
    );
    // Liveness does not depend on the caches.
    assert_eq!(get(addr, "/healthz").await.status, 200);

    replica.faults().reconnect();
    synced(&cache).await;
    let answer = get(addr, "/readyz").await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "ok"));
    let verbose = get(addr, "/readyz?verbose").await;
    assert_eq!(
        (verbose.status, verbose.body.as_str()),
        (
            200,
            "[+]informer-sync ok\n[+]shutdown ok\nhealthz check passed\n"
        )
    );
    stop(shutdown, task).await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_readiness_check_answers_500_naming_it_and_can_be_excluded() {
    let server = ApiServer::new();
    let database_up = Arc::new(AtomicBool::new(false));
    let up = database_up.clone();
    let manager = Manager::with_config(server.client(), config())
        .add(noop_controller())
        .add_readyz_check("database", move || {
            if up.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("connection refused".into())
            }
        });
    let addr = manager.health_probe_address().expect("bound");
    let cache = manager.cache().clone();
    let shutdown = manager.shutdown_handle();
    let task = tokio::spawn(manager.run());
    synced(&cache).await;

    let answer = get(addr, "/readyz").await;
    assert_eq!(answer.status, 500);
    assert_eq!(
        answer.body,
        "[-]database failed: reason withheld\n[+]informer-sync ok\n[+]shutdown ok\nhealthz check failed\n"
    );
    let one = get(addr, "/readyz/database").await;
    assert_eq!(
        (one.status, one.body.as_str()),
        (500, "internal server error: connection refused\n")
    );
    let excluded = get(addr, "/readyz?exclude=database&exclude=nope&verbose").await;
    assert_eq!(excluded.status, 200);
    assert_eq!(
        excluded.body,
        "[+]database excluded: ok\n[+]informer-sync ok\n[+]shutdown ok\n\
         warn: some health checks cannot be excluded: no matches for \"nope\"\n\
         healthz check passed\n"
    );
    assert_eq!(get(addr, "/readyz/nope").await.status, 404);

    database_up.store(true, Ordering::SeqCst);
    assert_eq!(get(addr, "/readyz").await.status, 200);
    assert_eq!(get(addr, "/readyz/database").await.body, "ok");
    stop(shutdown, task).await;
}

#[tokio::test(start_paused = true)]
async fn healthz_runs_liveness_checks_only() {
    let server = ApiServer::new();
    let manager = Manager::with_config(server.client(), config())
        .add_healthz_check("deadlock", || Err("workers stuck".into()));
    let addr = manager.health_probe_address().expect("bound");
    let shutdown = manager.shutdown_handle();
    let task = tokio::spawn(manager.run());

    let answer = get(addr, "/healthz").await;
    assert_eq!(answer.status, 500);
    assert_eq!(
        answer.body,
        "[-]deadlock failed: reason withheld\n[+]ping ok\nhealthz check failed\n"
    );
    assert_eq!(get(addr, "/healthz/ping").await.body, "ok");
    assert_eq!(get(addr, "/healthz?exclude=deadlock").await.status, 200);
    // Metrics are not served on the probe address unless the addresses are the same.
    assert_eq!(get(addr, "/metrics").await.status, 404);
    stop(shutdown, task).await;
}

/// A runnable that, once shutdown starts, holds the manager open until the test lets it go.
struct Lingering {
    stopping: Arc<Notify>,
    release: std::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

#[windlass::async_trait]
impl Runnable for Lingering {
    fn name(&self) -> String {
        "lingering".into()
    }
    fn needs_leader_election(&self) -> bool {
        false
    }
    async fn run(self: Box<Self>, ctx: RunContext) -> Result<(), BoxError> {
        ctx.shutdown.cancelled().await;
        self.stopping.notify_one();
        let release = self.release.lock().unwrap().take().expect("run once");
        let _ = release.await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn during_graceful_shutdown_probes_still_answer_and_readyz_reports_shutdown() {
    let server = ApiServer::new();
    let stopping = Arc::new(Notify::new());
    let (release, released) = oneshot::channel();
    let manager = Manager::with_config(server.client(), config()).add(Lingering {
        stopping: stopping.clone(),
        release: std::sync::Mutex::new(Some(released)),
    });
    let addr = manager.health_probe_address().expect("bound");
    let cache = manager.cache().clone();
    let shutdown = manager.shutdown_handle();
    let task = tokio::spawn(manager.run());
    synced(&cache).await;
    assert_eq!(get(addr, "/readyz").await.status, 200);

    let notified = stopping.notified();
    shutdown.shutdown();
    tokio::time::timeout(WAIT, notified)
        .await
        .expect("shutdown reaches the runnable");
    // In-flight work is finishing: the server is still up, and tells the kubelet to stop
    // sending traffic.
    let answer = get(addr, "/readyz").await;
    assert_eq!(answer.status, 500);
    assert!(
        answer
            .body
            .contains("[-]shutdown failed: reason withheld\n"),
        "{}",
        answer.body
    );
    assert_eq!(get(addr, "/healthz").await.status, 200);

    release.send(()).unwrap();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the manager stops")
        .unwrap()
        .expect("a clean shutdown");
    // Stopped last: nothing listens any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn one_address_for_metrics_and_probes_serves_both() {
    let server = ApiServer::new();
    // Port 0 would give two different ports; take a free one and name it twice.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let manager = Manager::with_config(
        server.client(),
        Config::default()
            .handle_signals(false)
            .metrics_bind_address(Some(port))
            .health_probe_bind_address(Some(port)),
    );
    assert_eq!(manager.metrics_address(), Some(port));
    assert_eq!(manager.health_probe_address(), Some(port));
    let shutdown = manager.shutdown_handle();
    let task = tokio::spawn(manager.run());
    assert_eq!(get(port, "/metrics").await.status, 200);
    assert_eq!(get(port, "/healthz").await.status, 200);
    assert_eq!(get(port, "/readyz").await.status, 200);
    assert_eq!(get(port, "/nope").await.body, "404 page not found\n");
    stop(shutdown, task).await;
}

#[tokio::test(start_paused = true)]
async fn an_address_in_use_fails_run_with_the_address() {
    let server = ApiServer::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let manager = Manager::with_config(
        server.client(),
        Config::default()
            .handle_signals(false)
            .metrics_bind_address(Some(address)),
    );
    assert_eq!(manager.metrics_address(), None);
    let err = manager.run().await.unwrap_err();
    assert!(
        matches!(err, ManagerError::Listen { address: a, .. } if a == address),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("cannot serve metrics on {address}")
    );
}
