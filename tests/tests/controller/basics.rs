//! Primaries are reconciled at start-up, when created and when changed; deletions are not.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams};
use tokio::sync::Notify;
use windlass::controller::{
    Action, Context, Controller, EventKind, ReconcileReason, reconciler_fn,
};
use windlass::testing::ApiServer;

use super::support::{
    Recorder, Run, Running, create_cm, manager, next, recording, serial_recording_controller,
    set_cm,
};

#[tokio::test]
async fn existing_objects_are_reconciled_at_startup_and_changes_after() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "before", "1").await;

    let (rec, mut rx) = Recorder::new();
    let running = Running::start(manager(client).add(Controller::new(recording(rec.clone()))));

    let first = next(&mut rx).await;
    assert_eq!(first.name, "before");
    assert_eq!(first.reason, ReconcileReason::Startup);

    create_cm(&api, "after", "1").await;
    let created = next(&mut rx).await;
    assert_eq!(created.name, "after");
    assert_eq!(
        created.reason,
        ReconcileReason::ObjectChanged(EventKind::Added)
    );

    set_cm(&api, "before", "2").await;
    let updated = next(&mut rx).await;
    assert_eq!(updated.name, "before");
    assert_eq!(
        updated.reason,
        ReconcileReason::ObjectChanged(EventKind::Updated)
    );
    assert_eq!(updated.value, "2", "the reconcile sees the newest state");

    running.stop().await.unwrap();
    assert_eq!(rec.count("before"), 2);
}

#[tokio::test]
async fn deleting_a_primary_does_not_reconcile_it() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "doomed", "1").await;

    let (rec, mut rx) = Recorder::new();
    let running = Running::start(manager(client).add(serial_recording_controller(rec.clone())));
    assert_eq!(next(&mut rx).await.name, "doomed");

    api.delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    // One worker takes keys in the order their events arrived: had the deletion queued a
    // reconcile, it would run before the sentinel's.
    create_cm(&api, "sentinel", "1").await;
    assert_eq!(next(&mut rx).await.name, "sentinel");

    running.stop().await.unwrap();
    assert_eq!(rec.count("doomed"), 1);
}

#[tokio::test]
async fn an_object_deleted_before_its_turn_is_not_reconciled() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "victim", "1").await;

    let (rec, mut rx) = Recorder::new();
    let gate = Arc::new(Notify::new());
    let reconciler = {
        let (rec, gate) = (rec.clone(), gate.clone());
        reconciler_fn(move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
            let (rec, gate) = (rec.clone(), gate.clone());
            async move {
                rec.record(Run::of_cm(&cm, &ctx));
                if cm.metadata.name.as_deref() == Some("blocker") {
                    gate.notified().await;
                }
                Ok::<_, kube::Error>(Action::await_change())
            }
        })
    };
    let running = Running::start(
        manager(client).add(Controller::new(reconciler).max_concurrent_reconciles(1)),
    );
    assert_eq!(next(&mut rx).await.name, "victim");

    // The only worker is busy with the blocker while the victim changes and is deleted.
    create_cm(&api, "blocker", "1").await;
    assert_eq!(next(&mut rx).await.name, "blocker");
    set_cm(&api, "victim", "2").await;
    api.delete("victim", &DeleteParams::default())
        .await
        .unwrap();
    create_cm(&api, "sentinel", "1").await;
    gate.notify_one();

    assert_eq!(next(&mut rx).await.name, "sentinel");
    running.stop().await.unwrap();
    assert_eq!(
        rec.count("victim"),
        1,
        "only the start-up reconcile of the victim ran"
    );
}

#[tokio::test(start_paused = true)]
async fn a_reconcile_that_asks_to_requeue_runs_again_after_that_long() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "rollout", "1").await;

    let (rec, mut rx) = Recorder::new();
    let reconciler = {
        let rec = rec.clone();
        reconciler_fn(move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
            let rec = rec.clone();
            async move {
                rec.record(Run::of_cm(&cm, &ctx));
                Ok::<_, kube::Error>(Action::requeue(Duration::from_secs(45)))
            }
        })
    };
    let running = Running::start(manager(client).add(Controller::new(reconciler)));

    let first = next(&mut rx).await;
    let again = next(&mut rx).await;
    assert_eq!(
        (again.attempt, &again.reason),
        (1, &ReconcileReason::Requeue)
    );
    let waited = again.start - first.start;
    assert!(
        waited >= Duration::from_secs(45) && waited <= Duration::from_millis(45_001),
        "requeued after {waited:?}"
    );
    running.stop().await.unwrap();
}
