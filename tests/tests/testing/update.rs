//! Updates (PUT): immutable fields, finalizers of terminating objects, empty collections,
//! optimistic concurrency, unconditional updates, `generation` and dryRun.

use http::Method;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use windlass::testing::ApiServer;

use super::support::*;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn a_replace_cannot_rename_or_move_the_object() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut c = api.create(&PostParams::default(), &cm("x")).await.unwrap();
    c.metadata.name = Some("y".into());
    let err = api_err(api.replace("x", &PostParams::default(), &c).await);
    assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        err.message,
        "the name of the object (y) does not match the name on the URL (x)"
    );
    c.metadata.name = Some("x".into());
    c.metadata.namespace = Some("kube-system".into());
    let err = api_err(api.replace("x", &PostParams::default(), &c).await);
    assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        err.message,
        "the namespace of the provided object does not match the namespace sent on the request"
    );
}

#[tokio::test]
async fn a_replace_cannot_change_the_uid() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut c = api.create(&PostParams::default(), &cm("x")).await.unwrap();
    c.metadata.uid = Some("0b7ee8a4-0000-4000-8000-000000000000".into());
    let err = api_err(api.replace("x", &PostParams::default(), &c).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        err.message,
        r#"ConfigMap "x" is invalid: metadata.uid: Invalid value: "0b7ee8a4-0000-4000-8000-000000000000": field is immutable"#
    );
}

#[tokio::test]
async fn a_replace_keeps_the_creation_timestamp_whatever_the_body_says() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = api.create(&PostParams::default(), &cm("x")).await.unwrap();
    let mut body = serde_json::to_value(&created).unwrap();
    body["metadata"]["creationTimestamp"] = json!("2001-01-01T00:00:00Z");
    body["data"]["a"] = json!("2");
    let res = request(&client, Method::PUT, &format!("{CMS}/x"), Some(body)).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.json()["metadata"]["creationTimestamp"].as_str(),
        Some(
            created
                .metadata
                .creation_timestamp
                .unwrap()
                .0
                .to_string()
                .as_str()
        )
    );
}

#[tokio::test]
async fn no_new_finalizer_may_be_added_while_the_object_is_being_deleted() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut c = cm("x");
    c.metadata.finalizers = Some(vec!["example.com/a".into()]);
    api.create(&PostParams::default(), &c).await.unwrap();
    api.delete("x", &DeleteParams::default()).await.unwrap();
    let mut marked = api.get("x").await.unwrap();
    marked.metadata.finalizers = Some(vec!["example.com/a".into(), "example.com/b".into()]);
    let err = api_err(api.replace("x", &PostParams::default(), &marked).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        err.message,
        r#"ConfigMap "x" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"example.com/b"}"#
    );
}

#[tokio::test]
async fn empty_labels_annotations_and_finalizers_are_not_stored() {
    let server = ApiServer::new();
    let client = server.client();
    let empty_meta = json!({"labels": {}, "annotations": {}, "finalizers": []});
    let mut body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    body["metadata"]
        .as_object_mut()
        .unwrap()
        .extend(empty_meta.as_object().unwrap().clone());
    let created = request(&client, Method::POST, CMS, Some(body)).await.json();
    for key in ["labels", "annotations", "finalizers"] {
        assert!(created["metadata"].get(key).is_none(), "{key} in {created}");
    }
    let widgets = widgets(&client).await;
    let mut w = widget("w", json!({}));
    w.metadata.labels = Some(Default::default());
    w.metadata.finalizers = Some(vec![]);
    widgets.create(&PostParams::default(), &w).await.unwrap();
    let stored = get(&client, "/apis/example.com/v1/namespaces/default/widgets/w")
        .await
        .json();
    assert!(stored["metadata"].get("labels").is_none(), "{stored}");
    assert!(stored["metadata"].get("finalizers").is_none(), "{stored}");
    // And on update.
    let mut labeled = widgets.get("w").await.unwrap();
    labeled.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
    let labeled = widgets
        .replace("w", &PostParams::default(), &labeled)
        .await
        .unwrap();
    let mut cleared = labeled.clone();
    cleared.metadata.labels = Some(Default::default());
    widgets
        .replace("w", &PostParams::default(), &cleared)
        .await
        .unwrap();
    let stored = get(&client, "/apis/example.com/v1/namespaces/default/widgets/w")
        .await
        .json();
    assert!(stored["metadata"].get("labels").is_none(), "{stored}");
}

#[tokio::test]
async fn a_replace_without_resource_version_overwrites_a_config_map() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &cm("x")).await.unwrap();
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .unwrap();
    let replaced = api
        .replace("x", &PostParams::default(), &cm_with("x", &[("b", "3")]))
        .await
        .unwrap();
    assert_eq!(
        replaced.data.unwrap(),
        [("b".to_string(), "3".to_string())].into()
    );
}

#[tokio::test]
async fn a_replace_without_resource_version_of_a_custom_resource_is_422() {
    let server = ApiServer::new();
    let widgets = widgets(&server.client()).await;
    widgets
        .create(&PostParams::default(), &widget("w", json!({"size": 1})))
        .await
        .unwrap();
    let err = api_err(
        widgets
            .replace(
                "w",
                &PostParams::default(),
                &widget("w", json!({"size": 2})),
            )
            .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        err.message,
        r#"Widget.example.com "w" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"#
    );
}

#[tokio::test]
async fn a_replace_with_a_stale_resource_version_of_a_custom_resource_is_a_conflict() {
    let server = ApiServer::new();
    let widgets = widgets(&server.client()).await;
    let first = widgets
        .create(&PostParams::default(), &widget("w", json!({"size": 1})))
        .await
        .unwrap();
    widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    let err = api_err(widgets.replace("w", &PostParams::default(), &first).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        r#"Operation cannot be fulfilled on widgets.example.com "w": the object has been modified; please apply your changes to the latest version and try again"#
    );
}

#[tokio::test]
async fn a_replace_of_a_missing_object_is_404() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let err = api_err(api.replace("x", &PostParams::default(), &cm("x")).await);
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, r#"configmaps "x" not found"#)
    );
}

#[tokio::test]
async fn a_replace_of_a_missing_lease_creates_it_as_its_strategy_allows() {
    let server = ApiServer::new();
    let client = server.client();
    let body = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
        "spec": {"holderIdentity": "me"}});
    let path = "/apis/coordination.k8s.io/v1/namespaces/default/leases/l";
    let res = request(&client, Method::PUT, path, Some(body.clone())).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["spec"]["holderIdentity"], "me");
    assert_eq!(
        request(&client, Method::PUT, path, Some(body)).await.status,
        200
    );
}

#[tokio::test]
async fn custom_resource_generation_moves_with_everything_but_metadata_and_status() {
    let server = ApiServer::new();
    let widgets = widgets(&server.client()).await;
    widgets
        .create(&PostParams::default(), &widget("w", json!({"size": 1})))
        .await
        .unwrap();
    let merge = |v| Patch::Merge(v);
    let pp = PatchParams::default();
    let g = |o: kube::core::DynamicObject| o.metadata.generation.unwrap();
    assert_eq!(
        g(widgets
            .patch("w", &pp, &merge(json!({"spec": {"size": 2}})))
            .await
            .unwrap()),
        2
    );
    assert_eq!(
        g(widgets
            .patch(
                "w",
                &pp,
                &merge(json!({"metadata": {"labels": {"a": "b"}}}))
            )
            .await
            .unwrap()),
        2
    );
    assert_eq!(
        g(widgets
            .patch("w", &pp, &merge(json!({"extra": {"top": "level"}})))
            .await
            .unwrap()),
        3
    );
    assert_eq!(
        g(widgets
            .patch_status("w", &pp, &merge(json!({"status": {"size": 2}})))
            .await
            .unwrap()),
        3
    );
}

#[tokio::test]
async fn without_a_status_subresource_a_status_change_moves_generation() {
    let server = ApiServer::new();
    let gadgets = gadgets(&server.client()).await;
    gadgets
        .create(&PostParams::default(), &gadget("g", json!({})))
        .await
        .unwrap();
    let patched = gadgets
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.generation, Some(2));
    assert_eq!(patched.data["status"], json!({"ready": true}));
}

#[tokio::test]
async fn deployment_generation_moves_with_spec_and_annotations_but_not_labels() {
    let server = ApiServer::new();
    let api: Api<Deployment> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &deployment("d"))
        .await
        .unwrap();
    let pp = PatchParams::default();
    let g = |d: Deployment| d.metadata.generation.unwrap();
    assert_eq!(
        g(api
            .patch("d", &pp, &Patch::Merge(json!({"spec": {"replicas": 3}})))
            .await
            .unwrap()),
        2
    );
    assert_eq!(
        g(api
            .patch(
                "d",
                &pp,
                &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}}))
            )
            .await
            .unwrap()),
        2
    );
    assert_eq!(
        g(api
            .patch(
                "d",
                &pp,
                &Patch::Merge(json!({"metadata": {"annotations": {"x": "y"}}}))
            )
            .await
            .unwrap()),
        3
    );
}

#[tokio::test]
async fn dry_run_replace_and_patch_answer_the_result_but_store_nothing() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = api.create(&PostParams::default(), &cm("x")).await.unwrap();
    let before = server.resource_version();
    let mut w = RawWatch::start(
        &client,
        &format!("{CMS}?watch=true&resourceVersion={before}"),
    )
    .await;
    let mut changed = created.clone();
    changed.data = Some([("a".to_string(), "dry".to_string())].into());
    let replaced = api
        .replace(
            "x",
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &changed,
        )
        .await
        .unwrap();
    assert_eq!(replaced.data.unwrap()["a"], "dry");
    let patched = api
        .patch(
            "x",
            &PatchParams::default().dry_run(),
            &Patch::Merge(json!({"data": {"a": "dry"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["a"], "dry");
    assert_eq!(api.get("x").await.unwrap().data.unwrap()["a"], "1");
    assert_eq!(server.resource_version(), before);
    w.expect_quiet(std::time::Duration::from_millis(50)).await;
    assert_eq!(created.resource_version(), Some(before.to_string()));
}
