//! PATCH: JSON patch (with the Go library's quirks clients rely on), merge patch,
//! resourceVersion preconditions, and the content types that are refused.

use http::Method;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use windlass::testing::ApiServer;

use super::support::*;

const X: &str = "/api/v1/namespaces/default/configmaps/x";
const JSON_PATCH: &str = "application/json-patch+json";
const MERGE_PATCH: &str = "application/merge-patch+json";

async fn setup() -> (ApiServer, kube::Client) {
    let server = ApiServer::new();
    let client = server.client();
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(
            &PostParams::default(),
            &cm_with("x", &[("a", "1"), ("b", "2")]),
        )
        .await
        .unwrap();
    (server, client)
}

#[tokio::test]
async fn a_json_patch_adds_replaces_and_removes_members() {
    let (_server, client) = setup().await;
    let patch = r#"[{"op":"add","path":"/data/c","value":"3"},{"op":"replace","path":"/data/a","value":"one"},{"op":"remove","path":"/data/b"}]"#;
    let res = request_bytes(&client, Method::PATCH, X, JSON_PATCH, patch).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["data"], json!({"a": "one", "c": "3"}));
}

#[tokio::test]
async fn a_json_patch_test_of_an_absent_member_against_null_succeeds() {
    let (_server, client) = setup().await;
    let patch = r#"[{"op":"test","path":"/metadata/finalizers","value":null},{"op":"add","path":"/metadata/finalizers","value":["example.com/f"]}]"#;
    let res = request_bytes(&client, Method::PATCH, X, JSON_PATCH, patch).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.json()["metadata"]["finalizers"],
        json!(["example.com/f"])
    );
}

#[tokio::test]
async fn a_failed_json_patch_test_is_422_and_changes_nothing() {
    let (server, client) = setup().await;
    let before = server.resource_version();
    let patch = r#"[{"op":"replace","path":"/data/a","value":"changed"},{"op":"test","path":"/data/b","value":"not 2"}]"#;
    let res = request_bytes(&client, Method::PATCH, X, JSON_PATCH, patch).await;
    let body = res.assert_status(422, "Invalid");
    assert_eq!(
        body["message"],
        "the server rejected our request due to an error in our request"
    );
    assert_eq!(get(&client, X).await.json()["data"]["a"], "1");
    assert_eq!(server.resource_version(), before);
}

#[tokio::test]
async fn a_json_patch_with_a_path_that_does_not_exist_is_422() {
    let (_server, client) = setup().await;
    for patch in [
        r#"[{"op":"remove","path":"/data/nope"}]"#,
        r#"[{"op":"replace","path":"/spec/x/y","value":1}]"#,
        r#"[{"op":"bogus","path":"/data/a"}]"#,
    ] {
        let res = request_bytes(&client, Method::PATCH, X, JSON_PATCH, patch).await;
        res.assert_status(422, "Invalid");
    }
}

#[tokio::test]
async fn a_json_patch_that_is_not_a_list_of_operations_is_400() {
    let (_server, client) = setup().await;
    let res = request_bytes(&client, Method::PATCH, X, JSON_PATCH, r#"{"op":"add"}"#).await;
    let body = res.assert_status(400, "BadRequest");
    assert_eq!(
        body["message"],
        "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp"
    );
    let res = request_bytes(&client, Method::PATCH, X, JSON_PATCH, "[{").await;
    let body = res.assert_status(400, "BadRequest");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("error decoding patch: "),
        "{body}"
    );
}

#[tokio::test]
async fn a_merge_patch_sets_nested_members_and_null_removes_them() {
    let (_server, client) = setup().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let patched = api
        .patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"data": {"a": null, "c": "3"}, "metadata": {"labels": {"k": "v"}}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.data.unwrap(),
        [
            ("b".to_string(), "2".to_string()),
            ("c".to_string(), "3".to_string())
        ]
        .into()
    );
    assert_eq!(patched.metadata.labels.unwrap()["k"], "v");
}

#[tokio::test]
async fn a_resource_version_in_a_patch_is_a_precondition() {
    let (server, client) = setup().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let current = rv_of(&server);
    let stale = (server.resource_version() - 1).to_string();
    let patch = |rv: &str, v: &str| {
        Patch::Merge(json!({"metadata": {"resourceVersion": rv}, "data": {"a": v}}))
    };
    let err = api_err(
        api.patch("x", &PatchParams::default(), &patch(&stale, "2"))
            .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        r#"Operation cannot be fulfilled on configmaps "x": the object has been modified; please apply your changes to the latest version and try again"#
    );
    let ok = api
        .patch("x", &PatchParams::default(), &patch(&current, "2"))
        .await
        .unwrap();
    assert_eq!(ok.data.unwrap()["a"], "2");
}

#[tokio::test]
async fn patching_a_missing_object_is_404() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let err = api_err(
        api.patch(
            "nope",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {}})),
        )
        .await,
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, r#"configmaps "nope" not found"#)
    );
}

#[tokio::test]
async fn a_patch_that_renames_the_object_is_400() {
    let (_server, client) = setup().await;
    let res = request_bytes(
        &client,
        Method::PATCH,
        X,
        MERGE_PATCH,
        r#"{"metadata":{"name":"y"}}"#,
    )
    .await;
    let body = res.assert_status(400, "BadRequest");
    assert_eq!(
        body["message"],
        "the name of the object (y) does not match the name on the URL (x)"
    );
}

#[tokio::test]
async fn an_unknown_patch_content_type_is_415_listing_the_accepted_ones() {
    let (_server, client) = setup().await;
    let res = request_bytes(
        &client,
        Method::PATCH,
        X,
        "text/plain",
        r#"{"data":{"a":"2"}}"#,
    )
    .await;
    let body = res.assert_status(415, "UnsupportedMediaType");
    assert_eq!(
        body["message"],
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
    );
}

#[tokio::test]
async fn a_strategic_merge_patch_of_a_custom_resource_is_415() {
    let server = ApiServer::new();
    let client = server.client();
    let widgets = widgets(&client).await;
    widgets
        .create(&PostParams::default(), &widget("w", json!({"size": 1})))
        .await
        .unwrap();
    let res = request_bytes(
        &client,
        Method::PATCH,
        "/apis/example.com/v1/namespaces/default/widgets/w",
        "application/strategic-merge-patch+json",
        r#"{"spec":{"size":2}}"#,
    )
    .await;
    let body = res.assert_status(415, "UnsupportedMediaType");
    assert_eq!(
        body["message"],
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    );
}

#[tokio::test]
async fn a_json_patch_of_the_status_subresource_changes_only_status() {
    let server = ApiServer::new();
    let client = server.client();
    let widgets = widgets(&client).await;
    widgets
        .create(&PostParams::default(), &widget("w", json!({"size": 1})))
        .await
        .unwrap();
    let res = request_bytes(
        &client,
        Method::PATCH,
        "/apis/example.com/v1/namespaces/default/widgets/w/status",
        JSON_PATCH,
        r#"[{"op":"add","path":"/status","value":{"size":1}},{"op":"replace","path":"/spec/size","value":9}]"#,
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(body["status"], json!({"size": 1}));
    assert_eq!(body["spec"]["size"], 1);
}

fn web_deployment() -> k8s_openapi::api::apps::v1::Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "finalizers": ["example.com/a"]},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                    {"name": "log", "image": "fluent:1"}
                ]}
            }
        }
    }))
    .unwrap()
}

async fn strategic(patch: serde_json::Value) -> serde_json::Value {
    use k8s_openapi::api::apps::v1::Deployment;
    let server = ApiServer::new();
    let deploys: Api<Deployment> = Api::namespaced(server.client(), "default");
    deploys
        .create(&PostParams::default(), &web_deployment())
        .await
        .unwrap();
    let patched = deploys
        .patch("web", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("the strategic merge patch applies");
    serde_json::to_value(patched).unwrap()
}

#[tokio::test]
async fn a_strategic_merge_patch_merges_containers_and_env_by_name() {
    let d = strategic(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:2", "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}]}
    ]}}}}))
    .await;
    let containers = &d["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["image"], "nginx:2");
    assert_eq!(
        containers[0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "two"}, {"name": "C", "value": "3"}])
    );
    assert_eq!(containers[1]["name"], "log", "the other container stays");
}

#[tokio::test]
async fn strategic_merge_directives_delete_replace_and_reorder_list_items() {
    let d = strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "log", "$patch": "delete"}]}}}})).await;
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let d = strategic(json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "log"}, {"name": "web"}],
        "containers": [{"name": "log", "image": "fluent:2"}]
    }}}}))
    .await;
    let names: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["log", "web"]);

    let d = strategic(json!({"spec": {"template": {"spec": {"containers": [
        {"$patch": "replace"}, {"name": "only", "image": "busybox"}
    ]}}}}))
    .await;
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["name"], "only");
    assert_eq!(containers[0]["image"], "busybox");
}

#[tokio::test]
async fn strategic_merge_finalizers_are_a_set_with_delete_from_primitive_list() {
    let d = strategic(json!({"metadata": {
        "finalizers": ["example.com/b"],
        "$deleteFromPrimitiveList/finalizers": ["example.com/a"]
    }}))
    .await;
    assert_eq!(d["metadata"]["finalizers"], json!(["example.com/b"]));
}

#[tokio::test]
async fn strategic_merge_retain_keys_clears_the_other_strategy_fields() {
    let d = strategic(json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}))
        .await;
    assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[tokio::test]
async fn a_strategic_merge_patch_records_the_patcher_as_an_update_manager() {
    let d = strategic(json!({"metadata": {"labels": {"tier": "front"}}})).await;
    let patcher = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["fieldsV1"]["f:metadata"]["f:labels"].is_object())
        .expect("an entry owning the label");
    assert_eq!(patcher["operation"], "Update");
    assert_eq!(
        patcher["fieldsV1"]["f:metadata"]["f:labels"],
        json!({".": {}, "f:tier": {}})
    );
}
