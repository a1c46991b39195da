//! Reconciles run on start-up and on changes, and the manager shuts down cleanly.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::time::Instant;
use windlass::controller::{Action, Context, Controller, EventKind, ReconcileReason, reconciler_fn};
use windlass::manager::{Config, Manager};
use windlass::testing::ApiServer;

use super::support::{Recorder, Run, create_cm, next};

fn recording_controller(rec: Recorder) -> Controller<impl windlass::controller::Reconciler<Object = ConfigMap>> {
    Controller::new(reconciler_fn(move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
        let rec = rec.clone();
        async move {
            let start = Instant::now();
            rec.record(Run {
                name: cm.metadata.name.clone().unwrap_or_default(),
                reason: ctx.reason().clone(),
                attempt: ctx.attempt(),
                start,
                end: Instant::now(),
            });
            Ok::<_, kube::Error>(Action::await_change())
        }
    }))
}

#[tokio::test]
async fn existing_objects_are_reconciled_at_startup_and_changes_after() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "before", "1").await;

    let (rec, mut rx) = Recorder::new();
    let manager = Manager::with_config(client, Config::default().handle_signals(false))
        .add(recording_controller(rec.clone()));
    let shutdown = manager.shutdown_handle();
    let running = tokio::spawn(manager.run());

    let first = next(&mut rx).await;
    assert_eq!(first.name, "before");
    assert_eq!(first.reason, ReconcileReason::Startup);

    create_cm(&api, "after", "1").await;
    let created = next(&mut rx).await;
    assert_eq!(created.name, "after");
    assert_eq!(created.reason, ReconcileReason::ObjectChanged(EventKind::Added));

    api.patch("before", &PatchParams::default(), &Patch::Merge(json!({"data": {"v": "2"}}))).await.unwrap();
    let updated = next(&mut rx).await;
    assert_eq!(updated.name, "before");
    assert_eq!(updated.reason, ReconcileReason::ObjectChanged(EventKind::Updated));

    shutdown.shutdown();
    running.await.unwrap().unwrap();
    assert_eq!(rec.count("before"), 2);
}
