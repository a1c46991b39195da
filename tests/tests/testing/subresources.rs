//! The status and scale subresources of built-ins and custom resources.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::Scale;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use windlass::testing::ApiServer;

use super::support::*;

#[tokio::test]
async fn the_main_endpoint_ignores_status_changes() {
    let server = ApiServer::new();
    let client = server.client();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deploys
        .create(&PostParams::default(), &deployment("d"))
        .await
        .unwrap();
    let patched = deploys
        .patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.status.unwrap().replicas, None);
    let widgets = widgets(&client).await;
    widgets
        .create(&PostParams::default(), &widget("w", json!({"size": 1})))
        .await
        .unwrap();
    let patched = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"size": 3}, "spec": {"size": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.get("status"), None);
    assert_eq!(patched.data["spec"]["size"], 2);
}

#[tokio::test]
async fn a_custom_resource_status_write_keeps_everything_but_status() {
    let server = ApiServer::new();
    let widgets = widgets(&server.client()).await;
    widgets
        .create(&PostParams::default(), &widget("w", json!({"size": 1})))
        .await
        .unwrap();
    let mut w = widgets.get("w").await.unwrap();
    w.data["spec"]["size"] = json!(5);
    w.data["status"] = json!({"size": 1, "phase": "Ready"});
    w.metadata.labels = Some([("ignored".to_string(), "yes".to_string())].into());
    let written = widgets
        .replace_status("w", &PostParams::default(), &w)
        .await
        .unwrap();
    assert_eq!(written.data["status"], json!({"size": 1, "phase": "Ready"}));
    assert_eq!(written.data["spec"]["size"], 1);
    assert_eq!(written.metadata.labels, None);
    assert_eq!(
        written.metadata.generation,
        Some(1),
        "status writes never move generation"
    );
}

#[tokio::test]
async fn a_built_in_status_write_keeps_spec_and_labels() {
    let server = ApiServer::new();
    let deploys: Api<Deployment> = Api::namespaced(server.client(), "default");
    deploys
        .create(&PostParams::default(), &deployment("d"))
        .await
        .unwrap();
    let patch = json!({"metadata": {"labels": {"ignored": "yes"}}, "spec": {"replicas": 9}, "status": {"replicas": 2, "readyReplicas": 1}});
    let written = deploys
        .patch_status("d", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    let status = written.status.unwrap();
    assert_eq!((status.replicas, status.ready_replicas), (Some(2), Some(1)));
    assert_eq!(written.spec.replicas, Some(1));
    assert_eq!(written.metadata.labels, None);
    assert_eq!(written.metadata.generation, Some(1));
}

#[tokio::test]
async fn reading_the_status_subresource_answers_the_whole_object() {
    let server = ApiServer::new();
    let deploys: Api<Deployment> = Api::namespaced(server.client(), "default");
    deploys
        .create(&PostParams::default(), &deployment("d"))
        .await
        .unwrap();
    let got = deploys.get_status("d").await.unwrap();
    assert_eq!(got.spec.replicas, Some(1));
    assert_eq!(got.metadata.name.as_deref(), Some("d"));
}

#[tokio::test]
async fn a_deployment_scale_is_an_autoscaling_v1_scale() {
    let server = ApiServer::new();
    let client = server.client();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d = deploys
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let raw = get(
        &client,
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
    )
    .await
    .json();
    assert_eq!(raw["apiVersion"], "autoscaling/v1");
    assert_eq!(raw["kind"], "Scale");
    assert_eq!(raw["metadata"]["name"], "web");
    assert_eq!(raw["metadata"]["namespace"], "default");
    assert_eq!(raw["metadata"]["uid"].as_str(), d.metadata.uid.as_deref());
    assert_eq!(
        raw["metadata"]["resourceVersion"].as_str(),
        d.metadata.resource_version.as_deref()
    );
    assert_eq!(raw["spec"], json!({"replicas": 1}));
    assert_eq!(raw["status"], json!({"replicas": 0, "selector": "app=web"}));
}

#[tokio::test]
async fn replacing_a_scale_sets_spec_replicas_and_moves_generation() {
    let server = ApiServer::new();
    let deploys: Api<Deployment> = Api::namespaced(server.client(), "default");
    deploys
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let mut scale = deploys.get_scale("web").await.unwrap();
    scale.spec.get_or_insert_with(Default::default).replicas = Some(4);
    let answered = deploys
        .replace_scale("web", &PostParams::default(), &scale)
        .await
        .unwrap();
    assert_eq!(answered.spec.unwrap().replicas, Some(4));
    let d = deploys.get("web").await.unwrap();
    assert_eq!((d.spec.replicas, d.metadata.generation), (Some(4), Some(2)));
    // The scale carried the old resourceVersion: a second replace with it is a conflict.
    let err = api_err(
        deploys
            .replace_scale("web", &PostParams::default(), &scale)
            .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
}

#[tokio::test]
async fn patching_a_scale_sets_spec_replicas() {
    let server = ApiServer::new();
    let deploys: Api<Deployment> = Api::namespaced(server.client(), "default");
    deploys
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let scale: Scale = deploys
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    assert_eq!(deploys.get("web").await.unwrap().spec.replicas, Some(3));
}

#[tokio::test]
async fn a_custom_resource_scale_maps_through_the_crd_replica_paths() {
    let server = ApiServer::new();
    let client = server.client();
    let widgets = widgets(&client).await;
    widgets
        .create(&PostParams::default(), &widget("w", json!({"size": 2})))
        .await
        .unwrap();
    widgets
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"size": 1, "selector": "app=w"}})),
        )
        .await
        .unwrap();
    let raw = get(
        &client,
        "/apis/example.com/v1/namespaces/default/widgets/w/scale",
    )
    .await
    .json();
    assert_eq!(raw["apiVersion"], "autoscaling/v1");
    assert_eq!(raw["spec"], json!({"replicas": 2}));
    assert_eq!(raw["status"], json!({"replicas": 1, "selector": "app=w"}));
    let scaled = widgets
        .patch_scale(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 6}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(6));
    let w = widgets.get("w").await.unwrap();
    assert_eq!(w.data["spec"]["size"], 6);
    assert_eq!(w.metadata.generation, Some(2));
}

#[tokio::test]
async fn a_version_without_the_scale_subresource_has_no_scale() {
    let server = ApiServer::new();
    let client = server.client();
    widgets(&client).await;
    let res = get(
        &client,
        "/apis/example.com/v1beta1/namespaces/default/widgets/w/scale",
    )
    .await;
    let body = res.assert_status(404, "NotFound");
    assert_eq!(body["message"], r#"widgets.example.com "w" not found"#);
}
