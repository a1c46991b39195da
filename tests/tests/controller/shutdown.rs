//! Graceful shutdown: in-flight reconciles finish, within the grace period.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::Api;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use windlass::controller::{Action, Context, Controller, reconciler_fn};
use windlass::informer::InformerConfig;
use windlass::manager::{Config, Manager, ManagerError};
use windlass::testing::ApiServer;

use super::support::{Running, WAIT, Wakeups, create_cm, set_label, until};

/// A one-worker ConfigMap controller whose reconcile says when it started, takes `takes`,
/// then labels its object `done: "yes"`.
fn slow_controller(
    started: Arc<Notify>,
    finished: Arc<AtomicBool>,
    takes: Duration,
) -> Controller<impl windlass::controller::Reconciler<Object = ConfigMap>> {
    let reconciler = reconciler_fn(move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
        let (started, finished) = (started.clone(), finished.clone());
        async move {
            started.notify_one();
            tokio::time::sleep(takes).await;
            let api: Api<ConfigMap> = Api::namespaced(ctx.client().clone(), "default");
            set_label(&api, &cm.name_any(), "done", "yes").await;
            finished.store(true, Ordering::SeqCst);
            Ok::<_, kube::Error>(Action::await_change())
        }
    });
    Controller::new(reconciler).max_concurrent_reconciles(1)
}

fn manager_with_grace(client: kube::Client, grace: Duration) -> Manager {
    Manager::with_config(
        client,
        Config::default()
            .handle_signals(false)
            .graceful_shutdown_timeout(grace),
    )
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_a_reconcile_in_flight_to_finish() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "slow", "1").await;

    let (started, finished) = (Arc::new(Notify::new()), Arc::new(AtomicBool::new(false)));
    let controller = slow_controller(started.clone(), finished.clone(), Duration::from_secs(5));
    let manager = manager_with_grace(client, Duration::from_secs(30)).add(controller);
    let informer = manager
        .cache()
        .informer::<ConfigMap>(InformerConfig::default());
    let (tx, mut wakeups) = mpsc::unbounded_channel();
    informer.add_handler(Arc::new(Wakeups(tx)));
    let running = Running::start(manager);
    tokio::time::timeout(WAIT, started.notified())
        .await
        .expect("the reconcile starts");

    // Queued behind the slow one when shutdown starts: never started.
    create_cm(&api, "queued", "1").await;
    until(&mut wakeups, "the controller has seen it", || {
        informer
            .store()
            .get_named(Some("default"), "queued")
            .is_some()
    })
    .await;

    let shutdown_at = Instant::now();
    running.stop().await.expect("a clean shutdown");
    assert!(
        finished.load(Ordering::SeqCst),
        "run() returned before the reconcile finished"
    );
    assert!(shutdown_at.elapsed() >= Duration::from_secs(5));
    let slow = api.get("slow").await.unwrap();
    assert_eq!(
        slow.labels()["done"],
        "yes",
        "the reconcile's last write landed"
    );
    let queued = api.get("queued").await.unwrap();
    assert!(
        !queued.labels().contains_key("done"),
        "no reconcile starts once shutdown has"
    );
}

#[tokio::test(start_paused = true)]
async fn a_reconcile_hanging_past_the_grace_period_fails_the_shutdown() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "hung", "1").await;

    let (started, finished) = (Arc::new(Notify::new()), Arc::new(AtomicBool::new(false)));
    let controller = slow_controller(
        started.clone(),
        finished.clone(),
        Duration::from_secs(24 * 3600),
    );
    let grace = Duration::from_secs(10);
    let running = Running::start(manager_with_grace(client, grace).add(controller));
    tokio::time::timeout(WAIT, started.notified())
        .await
        .expect("the reconcile starts");

    let shutdown_at = Instant::now();
    match running.stop().await {
        Err(ManagerError::GracePeriodExceeded(d)) => assert_eq!(d, grace),
        other => panic!("expected GracePeriodExceeded, got {other:?}"),
    }
    let waited = shutdown_at.elapsed();
    assert!(
        waited >= grace && waited < grace + Duration::from_secs(1),
        "waited {waited:?}"
    );
    assert!(!finished.load(Ordering::SeqCst));
}

/// A caller that builds a new manager once `run` returns (after losing the lease, say) must not
/// hold two caches: when `run` returns, the informers' tasks have ended and nothing of the
/// manager's keeps a cached object alive.
#[tokio::test(start_paused = true)]
async fn when_run_returns_nothing_holds_the_cached_objects() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "held", "1").await;

    let seen: Arc<parking_lot::Mutex<Option<std::sync::Weak<ConfigMap>>>> = Arc::default();
    let reconciled = Arc::new(Notify::new());
    let controller = Controller::new(reconciler_fn({
        let (seen, reconciled) = (seen.clone(), reconciled.clone());
        move |cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| {
            *seen.lock() = Some(Arc::downgrade(&cm));
            reconciled.notify_one();
            async { Ok::<_, kube::Error>(Action::await_change()) }
        }
    }));
    let manager = manager_with_grace(client, Duration::from_secs(30)).add(controller);
    let handle = manager.shutdown_handle();
    tokio::spawn(async move {
        reconciled.notified().await;
        handle.shutdown();
    });
    // Run on this task, so that nothing else gets to run between `run` returning and the check.
    tokio::time::timeout(WAIT, manager.run())
        .await
        .expect("the manager stops")
        .expect("a clean shutdown");

    let cached = seen.lock().take().expect("the object was reconciled");
    assert!(
        cached.upgrade().is_none(),
        "the cached ConfigMap outlived the manager's run"
    );
}
