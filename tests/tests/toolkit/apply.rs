//! Server-side apply helpers: the field manager is the controller's name, and an apply of what
//! the manager already owns is not sent (counted in the server's request log).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::sync::mpsc;
use windlass::apply::{Operation, apply, apply_status};
use windlass::condition;
use windlass::controller::{Action, Context, Controller, reconciler_fn};
use windlass::testing::ApiServer;

use super::support::{PetStatus, Running, WAIT, configmap, manager, pet, pet_server, writes};

const MANAGER: &str = "settings-controller";

/// A Deployment with two containers (a list keyed by name) and an atomic list of args.
fn web_deployment() -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                    {"name": "log", "image": "busybox:1.36", "args": ["tail", "-f", "/var/log/web"]},
                ]}
            }
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn applying_the_same_state_again_sends_no_apply() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let desired = configmap("settings", &[("mode", "fast"), ("level", "3")]);

    let (stored, op) = apply(&cms, &desired, MANAGER).await.unwrap();
    assert_eq!(op, Operation::Created);
    assert_eq!(writes(&server, "configmaps"), (1, 0, 0, 1));
    let managers: Vec<_> = stored
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, [MANAGER]);

    server.clear_requests();
    let (_, op) = apply(&cms, &desired, MANAGER).await.unwrap();
    assert_eq!(op, Operation::Unchanged);
    assert_eq!(
        writes(&server, "configmaps"),
        (1, 0, 0, 0),
        "one read, no apply"
    );
}

#[tokio::test]
async fn a_changed_or_dropped_field_is_applied() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    apply(
        &cms,
        &configmap("settings", &[("mode", "fast"), ("level", "3")]),
        MANAGER,
    )
    .await
    .unwrap();

    server.clear_requests();
    let (stored, op) = apply(
        &cms,
        &configmap("settings", &[("mode", "safe"), ("level", "3")]),
        MANAGER,
    )
    .await
    .unwrap();
    assert_eq!(op, Operation::Updated);
    assert_eq!(writes(&server, "configmaps"), (1, 0, 0, 1));
    assert_eq!(stored.data.as_ref().unwrap()["mode"], "safe");

    // No longer setting `level` releases it, and the API server removes it.
    server.clear_requests();
    let (stored, op) = apply(&cms, &configmap("settings", &[("mode", "safe")]), MANAGER)
        .await
        .unwrap();
    assert_eq!(op, Operation::Updated);
    assert_eq!(writes(&server, "configmaps"), (1, 0, 0, 1));
    assert_eq!(
        stored.data.unwrap(),
        BTreeMap::from([("mode".to_string(), "safe".to_string())])
    );
}

#[tokio::test]
async fn a_field_someone_else_changed_is_applied_back() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let desired = configmap("settings", &[("mode", "fast")]);
    apply(&cms, &desired, MANAGER).await.unwrap();
    cms.patch(
        "settings",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"mode": "slow", "extra": "theirs"}})),
    )
    .await
    .unwrap();

    server.clear_requests();
    let (stored, op) = apply(&cms, &desired, MANAGER).await.unwrap();
    assert_eq!(op, Operation::Updated);
    assert_eq!(writes(&server, "configmaps"), (1, 0, 0, 1));
    let data = stored.data.unwrap();
    assert_eq!(
        (data["mode"].as_str(), data["extra"].as_str()),
        ("fast", "theirs")
    );

    // And then it is ours again: no apply.
    server.clear_requests();
    assert_eq!(
        apply(&cms, &desired, MANAGER).await.unwrap().1,
        Operation::Unchanged
    );
    assert_eq!(writes(&server, "configmaps"), (1, 0, 0, 0));
}

#[tokio::test]
async fn a_deployment_with_keyed_lists_applied_twice_is_applied_once() {
    let server = ApiServer::new();
    let deployments: Api<Deployment> = Api::namespaced(server.client(), "default");
    let desired = web_deployment();
    assert_eq!(
        apply(&deployments, &desired, MANAGER).await.unwrap().1,
        Operation::Created
    );
    server.clear_requests();
    assert_eq!(
        apply(&deployments, &desired, MANAGER).await.unwrap().1,
        Operation::Unchanged
    );
    assert_eq!(writes(&server, "deployments"), (1, 0, 0, 0));

    let mut scaled = desired.clone();
    scaled.spec.replicas = Some(3);
    assert_eq!(
        apply(&deployments, &scaled, MANAGER).await.unwrap().1,
        Operation::Updated
    );
}

#[tokio::test]
async fn applying_a_status_already_owned_sends_no_apply() {
    let server = ApiServer::new();
    let deployments: Api<Deployment> = Api::namespaced(server.client(), "default");
    deployments
        .create(&Default::default(), &web_deployment())
        .await
        .unwrap();
    let status = json!({
        "replicas": 2,
        "availableReplicas": 1,
        "conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}],
    });

    server.clear_requests();
    let (stored, op) = apply_status(&deployments, "web", &status, MANAGER)
        .await
        .unwrap();
    assert_eq!(op, Operation::UpdatedStatusOnly);
    assert_eq!(stored.status.unwrap().available_replicas, Some(1));
    assert_eq!(writes(&server, "deployments/status").3, 1);

    server.clear_requests();
    let (_, op) = apply_status(&deployments, "web", &status, MANAGER)
        .await
        .unwrap();
    assert_eq!(op, Operation::Unchanged);
    assert_eq!(writes(&server, "deployments/status").3, 0);
    assert_eq!(writes(&server, "deployments").0, 1, "one read");

    let mut more = status.clone();
    more["availableReplicas"] = json!(2);
    let (_, op) = apply_status(&deployments, "web", &more, MANAGER)
        .await
        .unwrap();
    assert_eq!(op, Operation::UpdatedStatusOnly);
}

#[tokio::test]
async fn applying_a_custom_resource_status_already_owned_sends_no_apply() {
    let (server, pets) = pet_server().await;
    pets.create(&Default::default(), &pet("rex", "kibble", 2))
        .await
        .unwrap();
    let mut status = PetStatus {
        meals_served: Some(2),
        ..PetStatus::default()
    };
    condition::set_status_condition(
        &mut status.conditions,
        condition::new("Fed", true, "Served"),
    );

    let (stored, op) = apply_status(&pets, "rex", &status, MANAGER).await.unwrap();
    assert_eq!(op, Operation::UpdatedStatusOnly);
    assert_eq!(stored.status.as_ref(), Some(&status));

    server.clear_requests();
    let (_, op) = apply_status(&pets, "rex", &status, MANAGER).await.unwrap();
    assert_eq!(op, Operation::Unchanged);
    assert_eq!(writes(&server, "pets/status").3, 0);
}

#[tokio::test]
async fn a_reconcile_applies_with_the_controller_name_as_field_manager() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    cms.create(&Default::default(), &configmap("source", &[("v", "1")]))
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let controller = Controller::new(reconciler_fn(
        move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
            let tx = tx.clone();
            async move {
                if cm.metadata.name.as_deref() != Some("source") {
                    return Ok(Action::await_change());
                }
                let api: Api<ConfigMap> = Api::namespaced(ctx.client().clone(), "default");
                let mut copy = configmap("copy", &[]);
                copy.data = cm.data.clone();
                let (_, op) = ctx.apply(&api, &copy).await?;
                let _ = tx.send(op);
                Ok::<_, windlass::apply::WriteError>(Action::await_change())
            }
        },
    ))
    .name("copier");
    let running = Running::start(manager(server.client()).add(controller));
    let op = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    running.stop().await.unwrap();
    assert_eq!(op, Operation::Created);
    let copy = cms.get("copy").await.unwrap();
    let managers: Vec<_> = copy
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| (m.manager.clone().unwrap(), m.operation.clone().unwrap()))
        .collect();
    assert_eq!(managers, [("copier".to_string(), "Apply".to_string())]);
}
