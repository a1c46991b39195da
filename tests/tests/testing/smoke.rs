use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::{WatchStreamExt, conditions, wait::await_condition, watcher};
use serde_json::json;
use windlass::testing::ApiServer;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})).unwrap()
}

#[tokio::test]
async fn smoke_crud_and_watch() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let created = api
        .create(&PostParams::default(), &cm("one"))
        .await
        .unwrap();
    assert!(created.metadata.resource_version.is_some());
    let got = api.get("one").await.unwrap();
    assert_eq!(got.data.unwrap()["a"], "1");
    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let patched = api
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"b": "2"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["b"], "2");
    let stream = watcher(api.clone(), watcher::Config::default()).applied_objects();
    futures::pin_mut!(stream);
    let first = stream.try_next().await.unwrap().unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("one"));
    api.create(&PostParams::default(), &cm("two"))
        .await
        .unwrap();
    let second = stream.try_next().await.unwrap().unwrap();
    assert_eq!(second.metadata.name.as_deref(), Some("two"));
    api.delete("two", &DeleteParams::default()).await.unwrap();
    let streaming =
        watcher(api.clone(), watcher::Config::default().streaming_lists()).applied_objects();
    futures::pin_mut!(streaming);
    let one = streaming.try_next().await.unwrap().unwrap();
    assert_eq!(one.metadata.name.as_deref(), Some("one"));
}

#[tokio::test]
async fn smoke_crd() {
    let server = ApiServer::new();
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}}}]}
    })).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        await_condition(
            crds.clone(),
            "widgets.example.com",
            conditions::is_crd_established(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(server.client(), "default", &ar);
    let w: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}})).unwrap();
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let discovery = kube::Discovery::new(server.client())
        .run_aggregated()
        .await
        .unwrap();
    assert!(discovery.groups().any(|g| g.name() == "example.com"));
    let n = widgets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(n, 1);
    let _ = widgets
        .watch(&kube::api::WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed()
        .next()
        .await;
}
