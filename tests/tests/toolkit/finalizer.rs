//! Cleanup and finalizers: the finalizer goes on before the first reconcile acts, deletion
//! waits for cleanup, failed cleanup retries with backoff, and controllers without cleanup add
//! no finalizer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use windlass::controller::{Action, Context, Controller, Reconciler, reconciler_fn};
use windlass::finalizer::{Cleanup, CleanupStatus};
use windlass::testing::ApiServer;

use super::support::{Running, WAIT, configmap, manager, until, until_deleted};

const FINALIZER: &str = "windlass.rs/configmap";

#[derive(Debug, thiserror::Error)]
#[error("the backup service is unreachable")]
struct Unreachable;

/// What the reconciler saw.
#[derive(Debug, Clone)]
enum Seen {
    Reconcile { finalizers: Vec<String> },
    Cleanup { attempt: u32, at: Instant },
}

/// A ConfigMap reconciler with cleanup: cleanup fails `failures` times, then waits for a
/// permit from `gate` (if any), then reports `first` once and `Done` after that.
struct Backups {
    seen: mpsc::UnboundedSender<Seen>,
    failures: AtomicU32,
    gate: Option<Arc<Semaphore>>,
    first: Option<CleanupStatus>,
    cleanups: AtomicU32,
}

impl Backups {
    fn new(seen: mpsc::UnboundedSender<Seen>) -> Self {
        Self {
            seen,
            failures: AtomicU32::new(0),
            gate: None,
            first: None,
            cleanups: AtomicU32::new(0),
        }
    }
}

#[windlass::async_trait]
impl Reconciler for Backups {
    type Object = ConfigMap;
    type Error = Unreachable;

    async fn reconcile(
        &self,
        cm: Arc<ConfigMap>,
        _ctx: &Context<ConfigMap>,
    ) -> Result<Action, Unreachable> {
        let _ = self.seen.send(Seen::Reconcile {
            finalizers: cm.finalizers().to_vec(),
        });
        Ok(Action::await_change())
    }
}

#[windlass::async_trait]
impl Cleanup for Backups {
    async fn cleanup(
        &self,
        _cm: Arc<ConfigMap>,
        ctx: &Context<ConfigMap>,
    ) -> Result<CleanupStatus, Unreachable> {
        let _ = self.seen.send(Seen::Cleanup {
            attempt: ctx.attempt(),
            at: Instant::now(),
        });
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Unreachable);
        }
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("the gate stays open").forget();
        }
        if self.cleanups.fetch_add(1, Ordering::SeqCst) == 0
            && let Some(first) = self.first
        {
            return Ok(first);
        }
        Ok(CleanupStatus::Done)
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("the reconciler runs within the wait limit")
        .expect("the reconciler lives")
}

async fn next_cleanup(rx: &mut mpsc::UnboundedReceiver<Seen>) -> (u32, Instant) {
    loop {
        if let Seen::Cleanup { attempt, at } = next(rx).await {
            return (attempt, at);
        }
    }
}

#[tokio::test]
async fn the_finalizer_is_on_the_object_before_the_first_reconcile_acts() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    cms.create(&PostParams::default(), &configmap("db", &[]))
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let controller = Controller::new(Backups::new(tx)).with_cleanup();
    assert_eq!(controller.finalizer().as_deref(), Some(FINALIZER));
    let running = Running::start(manager(server.client()).add(controller));

    let Seen::Reconcile { finalizers } = next(&mut rx).await else {
        panic!("a reconcile comes first");
    };
    assert_eq!(finalizers, [FINALIZER]);
    assert_eq!(cms.get("db").await.unwrap().finalizers(), [FINALIZER]);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn deleting_an_object_waits_for_its_cleanup_and_then_it_disappears() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    cms.create(&PostParams::default(), &configmap("db", &[]))
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let reconciler = Backups {
        gate: Some(gate.clone()),
        ..Backups::new(tx)
    };
    let running =
        Running::start(manager(server.client()).add(Controller::new(reconciler).with_cleanup()));
    next(&mut rx).await;
    until(&cms, "db", "the finalizer is on", |cm| {
        cm.is_some_and(|cm| cm.finalizers() == [FINALIZER])
    })
    .await;

    let uid = cms.get("db").await.unwrap().uid().unwrap();
    cms.delete("db", &DeleteParams::default()).await.unwrap();
    next_cleanup(&mut rx).await;
    // Cleanup is running (held at the gate): the object is only marked for deletion.
    let marked = cms.get("db").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.finalizers(), [FINALIZER]);

    gate.add_permits(1);
    until_deleted(&cms, "db", &uid).await;
    running.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failing_cleanup_retries_with_backoff_and_the_object_stays_until_it_succeeds() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    cms.create(&PostParams::default(), &configmap("db", &[]))
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reconciler = Backups {
        failures: AtomicU32::new(4),
        ..Backups::new(tx)
    };
    let running =
        Running::start(manager(server.client()).add(Controller::new(reconciler).with_cleanup()));
    next(&mut rx).await;
    let uid = cms.get("db").await.unwrap().uid().unwrap();
    cms.delete("db", &DeleteParams::default()).await.unwrap();

    let mut cleanups = Vec::new();
    for _ in 0..4 {
        cleanups.push(next_cleanup(&mut rx).await);
        // After every failure the object is still there, finalizer and all.
        let cm = cms.get("db").await.unwrap();
        assert_eq!(cm.finalizers(), [FINALIZER]);
    }
    cleanups.push(next_cleanup(&mut rx).await);
    until_deleted(&cms, "db", &uid).await;

    let attempts: Vec<u32> = cleanups.iter().map(|(a, _)| *a).collect();
    assert_eq!(attempts, [1, 2, 3, 4, 5]);
    // The controller's per-object backoff: 5 ms, doubling.
    let gaps: Vec<Duration> = cleanups.windows(2).map(|w| w[1].1 - w[0].1).collect();
    for (gap, expected) in gaps.iter().zip([5, 10, 20, 40]) {
        let expected = Duration::from_millis(expected);
        assert!(
            *gap >= expected && *gap <= expected + Duration::from_millis(1),
            "waited {gap:?}, expected {expected:?} (all gaps: {gaps:?})"
        );
    }
    running.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_cleanup_that_is_not_done_keeps_the_finalizer_and_runs_again_when_asked() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    cms.create(&PostParams::default(), &configmap("db", &[]))
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reconciler = Backups {
        first: Some(CleanupStatus::RequeueAfter(Duration::from_secs(30))),
        ..Backups::new(tx)
    };
    let running =
        Running::start(manager(server.client()).add(Controller::new(reconciler).with_cleanup()));
    next(&mut rx).await;
    let uid = cms.get("db").await.unwrap().uid().unwrap();
    cms.delete("db", &DeleteParams::default()).await.unwrap();

    let (first_attempt, first) = next_cleanup(&mut rx).await;
    let (second_attempt, second) = next_cleanup(&mut rx).await;
    assert_eq!(
        (first_attempt, second_attempt),
        (1, 1),
        "not counted as failures"
    );
    let gap = second - first;
    assert!(
        gap >= Duration::from_secs(30) && gap <= Duration::from_millis(30_001),
        "{gap:?}"
    );
    until_deleted(&cms, "db", &uid).await;
    running.stop().await.unwrap();
}

#[tokio::test]
async fn an_object_gone_before_its_finalizer_is_removed_is_not_an_error() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    cms.create(&PostParams::default(), &configmap("db", &[]))
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let reconciler = Backups {
        gate: Some(gate.clone()),
        ..Backups::new(tx)
    };
    // One worker, so the next object's reconcile starts only once this one's outcome is in.
    let manager = manager(server.client()).add(
        Controller::new(reconciler)
            .with_cleanup()
            .max_concurrent_reconciles(1),
    );
    let metrics = manager
        .metrics()
        .cloned()
        .expect("metrics are on by default");
    let running = Running::start(manager);
    next(&mut rx).await;
    let uid = cms.get("db").await.unwrap().uid().unwrap();
    cms.delete("db", &DeleteParams::default()).await.unwrap();
    next_cleanup(&mut rx).await;

    // While cleanup runs, someone else releases the object, and the API server deletes it.
    cms.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    until_deleted(&cms, "db", &uid).await;
    gate.add_permits(1);
    cms.create(&PostParams::default(), &configmap("marker", &[]))
        .await
        .unwrap();
    loop {
        if let Seen::Reconcile { .. } = next(&mut rx).await {
            break;
        }
    }
    let errors = metrics
        .encode()
        .lines()
        .find(|l| l.starts_with("controller_runtime_reconcile_errors_total{"))
        .map(str::to_string);
    assert_eq!(
        errors.as_deref(),
        Some(r#"controller_runtime_reconcile_errors_total{controller="configmap"} 0"#)
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn other_finalizers_are_kept_when_the_controller_adds_and_removes_its_own() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut cm = configmap("db", &[]);
    cm.metadata.finalizers = Some(vec!["example.com/audit".into()]);
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let running = Running::start(
        manager(server.client()).add(Controller::new(Backups::new(tx)).with_cleanup()),
    );
    let Seen::Reconcile { finalizers } = next(&mut rx).await else {
        panic!("a reconcile comes first");
    };
    assert_eq!(finalizers, ["example.com/audit", FINALIZER]);

    cms.delete("db", &DeleteParams::default()).await.unwrap();
    next_cleanup(&mut rx).await;
    until(&cms, "db", "only the other finalizer is left", |cm| {
        cm.is_some_and(|cm| cm.finalizers() == ["example.com/audit"])
    })
    .await;

    let uid = cms.get("db").await.unwrap().uid().unwrap();
    cms.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    until_deleted(&cms, "db", &uid).await;
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_controller_without_cleanup_adds_no_finalizer() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    cms.create(&PostParams::default(), &configmap("db", &[]))
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let controller = Controller::new(reconciler_fn(move |cm: Arc<ConfigMap>, _ctx| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(cm.finalizers().to_vec());
            Ok::<_, kube::Error>(Action::await_change())
        }
    }));
    assert_eq!(controller.finalizer(), None);
    let running = Running::start(manager(server.client()).add(controller));
    let seen = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(seen.is_empty());
    running.stop().await.unwrap();
    assert!(cms.get("db").await.unwrap().metadata.finalizers.is_none());
    let uid = cms.get("db").await.unwrap().uid().unwrap();
    cms.delete("db", &DeleteParams::default()).await.unwrap();
    until_deleted(&cms, "db", &uid).await;
}

#[tokio::test]
async fn any_controller_name_gives_a_finalizer_the_api_server_accepts() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    cms.create(&PostParams::default(), &configmap("db", &[]))
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let controller = Controller::new(Backups::new(tx))
        .with_cleanup()
        .name("Backup service (nightly)");
    assert_eq!(
        controller.finalizer().as_deref(),
        Some("windlass.rs/Backup-service--nightly")
    );
    let running = Running::start(manager(server.client()).add(controller));
    let Seen::Reconcile { finalizers } = next(&mut rx).await else {
        panic!("a reconcile comes first");
    };
    assert_eq!(finalizers, ["windlass.rs/Backup-service--nightly"]);
    running.stop().await.unwrap();
}
