//! Predicates decide which updates of a primary are worth a reconcile.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use windlass::controller::{
    Controller, EventKind, GenerationChanged, LabelsChanged, ReconcileReason, not,
};
use windlass::testing::ApiServer;

use super::support::{Recorder, Running, deployment, manager, next, recording_of, set_label};

async fn scale(api: &Api<Deployment>, name: &str, replicas: i32) {
    let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
    api.patch(name, &PatchParams::default(), &patch)
        .await
        .unwrap();
}

#[tokio::test]
async fn generation_changed_ignores_a_label_change_and_reconciles_a_spec_change() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &deployment("sentinel"))
        .await
        .unwrap();

    let (rec, mut rx) = Recorder::new();
    let controller = Controller::new(recording_of::<Deployment>(rec.clone()))
        .with_predicate(GenerationChanged)
        .max_concurrent_reconciles(1);
    let running = Running::start(manager(client).add(controller));
    next(&mut rx).await;
    next(&mut rx).await;

    let relabelled = set_label(&api, "web", "tier", "frontend").await;
    assert_eq!(
        relabelled.metadata.generation,
        Some(1),
        "a label change keeps the generation"
    );
    // One worker takes keys in the order their events arrived: a reconcile queued for the
    // label change would run before the sentinel's.
    scale(&api, "sentinel", 2).await;
    assert_eq!(next(&mut rx).await.name, "sentinel");

    scale(&api, "web", 3).await;
    let run = next(&mut rx).await;
    assert_eq!(
        (run.name.as_str(), run.reason),
        ("web", ReconcileReason::ObjectChanged(EventKind::Updated))
    );
    let web = api.get("web").await.unwrap();
    assert_eq!(web.metadata.generation, Some(2));
    assert_eq!(
        run.resource_version,
        web.metadata.resource_version.unwrap(),
        "the reconcile saw the scaled Deployment"
    );

    running.stop().await.unwrap();
    assert_eq!(rec.count("web"), 2, "start-up and the spec change");
}

#[tokio::test]
async fn every_predicate_added_must_allow_an_update() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();

    let (rec, mut rx) = Recorder::new();
    // A spec change that leaves the labels alone.
    let controller = Controller::new(recording_of::<Deployment>(rec.clone()))
        .with_predicate(GenerationChanged)
        .with_predicate(not(LabelsChanged))
        .max_concurrent_reconciles(1);
    let running = Running::start(manager(client).add(controller));
    next(&mut rx).await;

    // Spec and labels in one write: the generation moves but so do the labels.
    let both =
        Patch::Merge(json!({"metadata": {"labels": {"tier": "x"}}, "spec": {"replicas": 2}}));
    api.patch("web", &PatchParams::default(), &both)
        .await
        .unwrap();
    scale(&api, "web", 3).await;
    let run = next(&mut rx).await;
    assert_eq!(
        run.reason,
        ReconcileReason::ObjectChanged(EventKind::Updated)
    );
    let web = api.get("web").await.unwrap();
    assert_eq!(
        run.resource_version,
        web.metadata.resource_version.unwrap(),
        "only the spec-only change was reconciled"
    );

    running.stop().await.unwrap();
    assert_eq!(rec.count("web"), 2);
}
