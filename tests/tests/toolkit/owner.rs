//! Owner references set by the helpers: accepted by the API server, followed by its garbage
//! collector, and by controllers that own children.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;
use windlass::controller::{Action, Context, Controller, ReconcileReason, reconciler_fn};
use windlass::owner::{OwnerError, set_controller_reference, set_owner_reference};
use windlass::testing::ApiServer;

use super::support::{Running, WAIT, configmap, manager, until, until_deleted};

fn secret(name: &str) -> Secret {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": "default"},
        "stringData": {"password": "hunter2"},
    }))
    .unwrap()
}

#[tokio::test]
async fn children_are_garbage_collected_when_their_owner_is_deleted() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let owner = cms
        .create(&PostParams::default(), &configmap("db", &[]))
        .await
        .unwrap();
    let mut controlled = secret("db-password");
    set_controller_reference(&owner, &mut controlled).unwrap();
    let controlled = secrets
        .create(&PostParams::default(), &controlled)
        .await
        .unwrap();
    let mut owned = secret("db-backup-key");
    set_owner_reference(&owner, &mut owned).unwrap();
    let owned = secrets
        .create(&PostParams::default(), &owned)
        .await
        .unwrap();
    let reference = &controlled.owner_references()[0];
    assert_eq!(
        (reference.controller, reference.block_owner_deletion),
        (Some(true), Some(true))
    );

    cms.delete("db", &DeleteParams::default()).await.unwrap();
    for child in [&controlled, &owned] {
        let uid = child.uid().unwrap();
        until_deleted(&secrets, &child.name_any(), &uid).await;
    }
}

#[tokio::test]
async fn a_child_with_two_owners_is_collected_only_when_both_are_gone() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let first = cms
        .create(&PostParams::default(), &configmap("first", &[]))
        .await
        .unwrap();
    let second = cms
        .create(&PostParams::default(), &configmap("second", &[]))
        .await
        .unwrap();
    let mut shared = secret("shared");
    set_controller_reference(&first, &mut shared).unwrap();
    set_owner_reference(&second, &mut shared).unwrap();
    let shared = secrets
        .create(&PostParams::default(), &shared)
        .await
        .unwrap();

    cms.delete("first", &DeleteParams::default()).await.unwrap();
    until(
        &secrets,
        "shared",
        "the first owner's reference is dropped",
        |s| s.is_some_and(|s| s.owner_references().len() == 1),
    )
    .await;
    assert_eq!(
        secrets.get("shared").await.unwrap().owner_references()[0].name,
        "second"
    );

    cms.delete("second", &DeleteParams::default())
        .await
        .unwrap();
    until_deleted(&secrets, "shared", &shared.uid().unwrap()).await;
}

#[tokio::test]
async fn a_controller_reference_set_by_the_helper_reconciles_the_owner_when_the_child_changes() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let owner = cms
        .create(&PostParams::default(), &configmap("db", &[]))
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let controller = Controller::new(reconciler_fn(
        move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((cm.name_any(), ctx.reason().clone()));
                Ok::<_, kube::Error>(Action::await_change())
            }
        },
    ))
    .owns::<Secret>();
    let running = Running::start(manager(server.client()).add(controller));
    let (_, reason) = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reason, ReconcileReason::Startup);

    let mut child = secret("db-password");
    set_controller_reference(&owner, &mut child).unwrap();
    secrets
        .create(&PostParams::default(), &child)
        .await
        .unwrap();
    let (name, reason) = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(name, "db");
    assert!(
        matches!(reason, ReconcileReason::OwnedChanged { ref child, .. } if child.key.name == "db-password"),
        "{reason:?}"
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_child_read_from_the_server_cannot_be_taken_over_by_another_controller() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    let first = cms
        .create(&PostParams::default(), &configmap("first", &[]))
        .await
        .unwrap();
    let second = cms
        .create(&PostParams::default(), &configmap("second", &[]))
        .await
        .unwrap();
    let mut child = secret("shared");
    set_controller_reference(&first, &mut child).unwrap();
    secrets
        .create(&PostParams::default(), &child)
        .await
        .unwrap();

    let mut stored = secrets.get("shared").await.unwrap();
    let err = set_controller_reference(&second, &mut stored).unwrap_err();
    assert!(matches!(err, OwnerError::AlreadyOwned { ref owner, .. } if owner == "first"));
}
