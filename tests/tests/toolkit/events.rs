//! Events: published with the controller as reporter, aggregated into series, and readable
//! through both Event APIs.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use tokio::sync::mpsc;
use windlass::controller::{Action, Context, Controller, reconciler_fn};
use windlass::events::Recorder;
use windlass::testing::ApiServer;

use super::support::{Running, WAIT, configmap, manager};

async fn events(server: &ApiServer) -> Vec<Event> {
    Api::<Event>::namespaced(server.client(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

async fn core_events(server: &ApiServer) -> Vec<CoreEvent> {
    Api::<CoreEvent>::namespaced(server.client(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn a_reconcile_publishes_events_that_name_the_controller_and_read_back_through_both_apis() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let cm = cms
        .create(&PostParams::default(), &configmap("settings", &[]))
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let controller = Controller::new(reconciler_fn(
        move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
            let tx = tx.clone();
            async move {
                ctx.recorder()
                    .normal(
                        cm.as_ref(),
                        "Mirrored",
                        "Mirror",
                        "copied to the backup store",
                    )
                    .await;
                let _ = tx.send(ctx.recorder().reporter().clone());
                Ok::<_, kube::Error>(Action::await_change())
            }
        },
    ))
    .name("mirror");
    let running = Running::start(manager(server.client()).add(controller));
    let reporter = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    running.stop().await.unwrap();
    assert_eq!(reporter.controller, "mirror");
    let instance = reporter.instance.expect("the host name is known");

    let [event] = events(&server).await.try_into().expect("one event");
    assert_eq!(event.type_.as_deref(), Some("Normal"));
    assert_eq!(event.reason.as_deref(), Some("Mirrored"));
    assert_eq!(event.action.as_deref(), Some("Mirror"));
    assert_eq!(event.note.as_deref(), Some("copied to the backup store"));
    assert_eq!(event.reporting_controller.as_deref(), Some("mirror"));
    assert_eq!(event.reporting_instance.as_deref(), Some(instance.as_str()));
    let regarding = event.regarding.expect("the event is about the ConfigMap");
    assert_eq!(
        (
            regarding.kind.as_deref(),
            regarding.name.as_deref(),
            regarding.uid
        ),
        (Some("ConfigMap"), Some("settings"), cm.metadata.uid)
    );

    let [core] = core_events(&server)
        .await
        .try_into()
        .expect("one core event");
    assert_eq!(core.reason.as_deref(), Some("Mirrored"));
    assert_eq!(core.message.as_deref(), Some("copied to the backup store"));
    assert_eq!(core.reporting_component.as_deref(), Some("mirror"));
    assert_eq!(core.involved_object.name.as_deref(), Some("settings"));
}

#[tokio::test]
async fn repeated_events_are_aggregated_into_one_series() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let cm = cms
        .create(&PostParams::default(), &configmap("settings", &[]))
        .await
        .unwrap();
    let recorder = Recorder::new(server.client(), "mirror");
    for _ in 0..3 {
        recorder
            .warning(&cm, "BackupFailed", "Mirror", "the backup store is full")
            .await;
    }
    recorder
        .normal(&cm, "Mirrored", "Mirror", "copied to the backup store")
        .await;

    let mut events = events(&server).await;
    events.sort_by_key(|e| e.reason.clone());
    assert_eq!(events.len(), 2, "{events:#?}");
    let failed = &events[0];
    assert_eq!(failed.reason.as_deref(), Some("BackupFailed"));
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    assert_eq!(failed.series.as_ref().map(|s| s.count), Some(3));
    assert!(events[1].series.is_none(), "a single event has no series");

    let mut core = core_events(&server).await;
    core.sort_by_key(|e| e.reason.clone());
    assert_eq!(core.len(), 2);
    assert_eq!(core[0].type_.as_deref(), Some("Warning"));
    assert_eq!(core[0].series.as_ref().and_then(|s| s.count), Some(3));
}

#[tokio::test]
async fn a_controller_that_records_no_events_publishes_none() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    cms.create(&PostParams::default(), &configmap("settings", &[]))
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let controller = Controller::new(reconciler_fn(
        move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
            let tx = tx.clone();
            async move {
                ctx.recorder()
                    .normal(cm.as_ref(), "Mirrored", "Mirror", "copied")
                    .await;
                let _ = tx.send(ctx.recorder().is_enabled());
                Ok::<_, kube::Error>(Action::await_change())
            }
        },
    ))
    .record_events(false);
    assert!(
        controller
            .permissions()
            .iter()
            .all(|p| p.rule().resources != Some(vec!["events".to_string()])),
        "no event permissions are declared"
    );
    let running = Running::start(manager(server.client()).add(controller));
    let enabled = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    running.stop().await.unwrap();
    assert!(!enabled);
    assert!(events(&server).await.is_empty());
}
