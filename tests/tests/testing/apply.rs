//! Server-side apply: field ownership per manager in `managedFields`, conflicts and `force`,
//! removal of fields a manager stops applying, list semantics from the schema, YAML bodies,
//! and the requests the apiserver refuses.

use http::Method;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use serde_json::{Value, json};
use windlass::testing::ApiServer;

use super::support::*;

const APPLY: &str = "application/apply-patch+yaml";
const X: &str = "/api/v1/namespaces/default/configmaps/x";

fn cm_config(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": data})
}

fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap_or_default().to_string(),
                        e["operation"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn apply_cm(
    api: &Api<ConfigMap>,
    manager: &str,
    data: Value,
    force: bool,
) -> Result<Value, kube::Error> {
    let mut pp = PatchParams::apply(manager);
    if force {
        pp = pp.force();
    }
    let cm = api.patch("x", &pp, &Patch::Apply(cm_config(data))).await?;
    Ok(serde_json::to_value(cm).unwrap())
}

#[tokio::test]
async fn apply_creates_a_missing_object_with_201_and_an_apply_entry() {
    let server = ApiServer::new();
    let client = server.client();
    let res = request_bytes(
        &client,
        Method::PATCH,
        &format!("{X}?fieldManager=ops"),
        APPLY,
        serde_json::to_vec(&cm_config(json!({"k": "v"}))).unwrap(),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let body = res.json();
    assert_eq!(body["data"], json!({"k": "v"}));
    let e = entry(&body, "ops", "Apply").expect("an Apply entry");
    assert_eq!(e["apiVersion"], "v1");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert_eq!(e["fieldsV1"], json!({"f:data": {"f:k": {}}}));
    assert!(e.get("subresource").is_none());
    // Applying it again changes nothing: 200, same resourceVersion.
    let again = request_bytes(
        &client,
        Method::PATCH,
        &format!("{X}?fieldManager=ops"),
        APPLY,
        serde_json::to_vec(&cm_config(json!({"k": "v"}))).unwrap(),
    )
    .await;
    assert_eq!(again.status, 200);
    assert_eq!(
        again.json()["metadata"]["resourceVersion"],
        body["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn apply_bodies_may_be_yaml() {
    let server = ApiServer::new();
    let client = server.client();
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels:\n    app: web\ndata:\n  port: \"8080\"\n";
    let res = request_bytes(
        &client,
        Method::PATCH,
        &format!("{X}?fieldManager=ops"),
        APPLY,
        yaml,
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let body = res.json();
    assert_eq!(body["data"]["port"], "8080");
    assert_eq!(body["metadata"]["labels"]["app"], "web");
    assert_eq!(
        entry(&body, "ops", "Apply").unwrap()["fieldsV1"],
        json!({"f:data": {"f:port": {}}, "f:metadata": {"f:labels": {"f:app": {}}}})
    );
    let bad = request_bytes(
        &client,
        Method::PATCH,
        &format!("{X}?fieldManager=ops"),
        APPLY,
        "a: [b",
    )
    .await;
    let status = bad.assert_status(400, "BadRequest");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("error converting YAML to JSON: yaml: "),
        "{status}"
    );
}

#[tokio::test]
async fn a_second_manager_changing_an_applied_field_is_a_409_conflict_with_causes() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    apply_cm(&cms, "alice", json!({"k": "1", "j": "1"}), false)
        .await
        .unwrap();
    let before = server.resource_version();
    let status = api_err(apply_cm(&cms, "bob", json!({"k": "2"}), false).await);
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert_eq!(
        status.message,
        r#"Apply failed with 1 conflict: conflict with "alice": .data.k"#
    );
    let causes = &status.details.as_ref().expect("details").causes;
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(causes[0].message, r#"conflict with "alice""#);
    assert_eq!(causes[0].field, ".data.k");
    assert_eq!(server.resource_version(), before, "nothing was written");
}

#[tokio::test]
async fn conflicts_with_several_fields_are_listed_per_manager() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    apply_cm(&cms, "alice", json!({"a": "1", "b": "1"}), false)
        .await
        .unwrap();
    let status = api_err(apply_cm(&cms, "bob", json!({"a": "2", "b": "2"}), false).await);
    assert_eq!(
        status.message,
        "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .data.a\n- .data.b"
    );
}

#[tokio::test]
async fn force_takes_ownership_of_the_conflicting_fields() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    apply_cm(&cms, "alice", json!({"k": "1", "j": "1"}), false)
        .await
        .unwrap();
    let obj = apply_cm(&cms, "bob", json!({"k": "2"}), true)
        .await
        .unwrap();
    assert_eq!(obj["data"], json!({"k": "2", "j": "1"}));
    assert_eq!(
        entry(&obj, "alice", "Apply").unwrap()["fieldsV1"],
        json!({"f:data": {"f:j": {}}})
    );
    assert_eq!(
        entry(&obj, "bob", "Apply").unwrap()["fieldsV1"],
        json!({"f:data": {"f:k": {}}})
    );
}

#[tokio::test]
async fn applying_the_same_value_shares_ownership_without_conflict() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    apply_cm(&cms, "alice", json!({"k": "1"}), false)
        .await
        .unwrap();
    let obj = apply_cm(&cms, "bob", json!({"k": "1"}), false)
        .await
        .unwrap();
    assert_eq!(
        managers(&obj),
        [
            ("alice".into(), "Apply".into()),
            ("bob".into(), "Apply".into())
        ]
    );
    // alice stops applying k: bob still owns it, so it stays.
    let obj = apply_cm(&cms, "alice", json!({}), false).await.unwrap();
    assert_eq!(obj["data"], json!({"k": "1"}));
    assert_eq!(managers(&obj), [("bob".into(), "Apply".into())]);
}

#[tokio::test]
async fn fields_a_manager_stops_applying_are_removed() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    apply_cm(&cms, "alice", json!({"k": "1", "j": "1"}), false)
        .await
        .unwrap();
    let obj = apply_cm(&cms, "alice", json!({"j": "1"}), false)
        .await
        .unwrap();
    assert_eq!(obj["data"], json!({"j": "1"}));
}

#[tokio::test]
async fn an_updater_owns_what_it_changed_and_applying_over_it_conflicts() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    apply_cm(&cms, "alice", json!({"k": "1"}), false)
        .await
        .unwrap();
    // A merge patch by another manager takes the field (updates never conflict).
    let patched = cms
        .patch(
            "x",
            &PatchParams {
                field_manager: Some("editor".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"data": {"k": "edited"}})),
        )
        .await
        .unwrap();
    let patched = serde_json::to_value(patched).unwrap();
    assert_eq!(
        entry(&patched, "editor", "Update").unwrap()["fieldsV1"],
        json!({"f:data": {"f:k": {}}})
    );
    assert!(
        entry(&patched, "alice", "Apply").is_none(),
        "alice lost her only field"
    );
    let status = api_err(apply_cm(&cms, "alice", json!({"k": "1"}), false).await);
    assert_eq!(
        status.message,
        r#"Apply failed with 1 conflict: conflict with "editor" using v1: .data.k"#
    );
}

#[tokio::test]
async fn apply_requires_a_field_manager() {
    let server = ApiServer::new();
    let client = server.client();
    let res = request_bytes(
        &client,
        Method::PATCH,
        X,
        APPLY,
        serde_json::to_vec(&cm_config(json!({}))).unwrap(),
    )
    .await;
    let status = res.assert_status(422, "Invalid");
    assert_eq!(
        status["message"],
        r#"PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch"#
    );
}

#[tokio::test]
async fn managed_fields_in_an_apply_body_are_refused() {
    let server = ApiServer::new();
    let client = server.client();
    let mut config = cm_config(json!({}));
    config["metadata"]["managedFields"] = json!([{"manager": "x", "operation": "Apply"}]);
    let res = request_bytes(
        &client,
        Method::PATCH,
        &format!("{X}?fieldManager=ops"),
        APPLY,
        serde_json::to_vec(&config).unwrap(),
    )
    .await;
    let status = res.assert_status(400, "BadRequest");
    assert_eq!(status["message"], "metadata.managedFields must be nil");
}

#[tokio::test]
async fn an_apply_of_another_version_is_refused() {
    let server = ApiServer::new();
    let client = server.client();
    let res = request_bytes(
        &client,
        Method::PATCH,
        "/apis/apps/v1/namespaces/default/deployments/d?fieldManager=ops",
        APPLY,
        r#"{"apiVersion":"apps/v1beta1","kind":"Deployment","metadata":{"name":"d"}}"#,
    )
    .await;
    let status = res.assert_status(400, "BadRequest");
    assert_eq!(
        status["message"],
        "Incorrect version specified in apply patch. Specified patch version: apps/v1beta1, expected: apps/v1"
    );
}

#[tokio::test]
async fn resetting_managed_fields_with_one_empty_entry_clears_them() {
    let server = ApiServer::new();
    let client = server.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    apply_cm(&cms, "alice", json!({"k": "1"}), false)
        .await
        .unwrap();
    let res = request_bytes(
        &client,
        Method::PATCH,
        X,
        "application/merge-patch+json",
        r#"{"metadata":{"managedFields":[{}]}}"#,
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(
        res.json()["metadata"].get("managedFields").is_none(),
        "{}",
        res.text()
    );
    // With nobody owning k, another applier may set it without a conflict.
    let obj = apply_cm(&cms, "bob", json!({"k": "2"}), false)
        .await
        .unwrap();
    assert_eq!(obj["data"]["k"], "2");
}

fn deployment_config(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": containers}}
        }
    })
}

#[tokio::test]
async fn containers_are_merged_by_name_and_each_manager_owns_its_own() {
    let server = ApiServer::new();
    let deploys: Api<Deployment> = Api::namespaced(server.client(), "default");
    let pp = |m: &str| PatchParams::apply(m);
    deploys
        .patch(
            "d",
            &pp("app"),
            &Patch::Apply(deployment_config(
                json!([{"name": "web", "image": "nginx:1"}]),
            )),
        )
        .await
        .unwrap();
    // A second manager adds a sidecar without touching the first container.
    let d = deploys
        .patch(
            "d",
            &pp("mesh"),
            &Patch::Apply(json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "envoy:1"}]}}}
            })),
        )
        .await
        .unwrap();
    let d = serde_json::to_value(d).unwrap();
    let names: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "proxy"]);
    assert_eq!(
        entry(&d, "mesh", "Apply").unwrap()["fieldsV1"]["f:spec"]["f:template"]["f:spec"],
        json!({"f:containers": {"k:{\"name\":\"proxy\"}": {".": {}, "f:image": {}, "f:name": {}}}})
    );
    // The selector is atomic: owned whole.
    assert_eq!(
        entry(&d, "app", "Apply").unwrap()["fieldsV1"]["f:spec"]["f:selector"],
        json!({})
    );
    // The first manager changing the sidecar's image conflicts with the second.
    let status = api_err(
        deploys
            .patch(
                "d",
                &pp("app"),
                &Patch::Apply(deployment_config(json!([
                    {"name": "web", "image": "nginx:1"},
                    {"name": "proxy", "image": "envoy:2"}
                ]))),
            )
            .await,
    );
    assert_eq!(
        status.message,
        r#"Apply failed with 1 conflict: conflict with "mesh": .spec.template.spec.containers[name="proxy"].image"#
    );
    // The sidecar's manager dropping it removes it; the other container stays.
    let d = deploys
        .patch(
            "d",
            &pp("mesh"),
            &Patch::Apply(
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}),
            ),
        )
        .await
        .unwrap();
    let containers = d.spec.template.spec.unwrap().containers;
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0].name, "web");
}

#[tokio::test]
async fn finalizers_are_a_set_each_manager_owning_its_own() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let with_fins = |fins: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "finalizers": fins}});
    cms.patch(
        "x",
        &PatchParams::apply("a"),
        &Patch::Apply(with_fins(json!(["example.com/a"]))),
    )
    .await
    .unwrap();
    let cm = cms
        .patch(
            "x",
            &PatchParams::apply("b"),
            &Patch::Apply(with_fins(json!(["example.com/b"]))),
        )
        .await
        .unwrap();
    assert_eq!(
        cm.metadata.finalizers.unwrap(),
        ["example.com/a", "example.com/b"]
    );
    let v = serde_json::to_value(cms.get("x").await.unwrap()).unwrap();
    assert_eq!(
        entry(&v, "b", "Apply").unwrap()["fieldsV1"],
        json!({"f:metadata": {"f:finalizers": {"v:\"example.com/b\"": {}}}})
    );
    let cm = cms
        .patch(
            "x",
            &PatchParams::apply("a"),
            &Patch::Apply(with_fins(json!([]))),
        )
        .await
        .unwrap();
    assert_eq!(cm.metadata.finalizers.unwrap(), ["example.com/b"]);
}

#[tokio::test]
async fn owner_references_are_keyed_by_uid() {
    // No garbage collector: the owners named here do not exist.
    let server =
        ApiServer::with_config(windlass::testing::Config::default().garbage_collection(false));
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let owner = |uid: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": format!("o-{uid}"), "uid": uid});
    let config = |refs: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "ownerReferences": refs}});
    cms.patch(
        "x",
        &PatchParams::apply("a"),
        &Patch::Apply(config(json!([owner("1")]))),
    )
    .await
    .unwrap();
    let cm = cms
        .patch(
            "x",
            &PatchParams::apply("b"),
            &Patch::Apply(config(json!([owner("2")]))),
        )
        .await
        .unwrap();
    let uids: Vec<String> = cm
        .metadata
        .owner_references
        .unwrap()
        .into_iter()
        .map(|o| o.uid)
        .collect();
    assert_eq!(uids, ["1", "2"]);
}

fn lease_config(holder: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "leader"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}
    })
}

#[tokio::test]
async fn leases_taken_by_server_side_apply_conflict_between_candidates() {
    let server = ApiServer::new();
    let leases: Api<Lease> = Api::namespaced(server.client(), "default");
    leases
        .patch(
            "leader",
            &PatchParams::apply("replica-a"),
            &Patch::Apply(lease_config("replica-a")),
        )
        .await
        .unwrap();
    let status = api_err(
        leases
            .patch(
                "leader",
                &PatchParams::apply("replica-b"),
                &Patch::Apply(lease_config("replica-b")),
            )
            .await,
    );
    assert_eq!(status.code, 409);
    assert_eq!(
        status.message,
        r#"Apply failed with 1 conflict: conflict with "replica-a": .spec.holderIdentity"#
    );
    // Taking over a lease is a forced apply.
    let taken = leases
        .patch(
            "leader",
            &PatchParams::apply("replica-b").force(),
            &Patch::Apply(lease_config("replica-b")),
        )
        .await
        .unwrap();
    assert_eq!(
        taken.spec.unwrap().holder_identity.as_deref(),
        Some("replica-b")
    );
}

#[tokio::test]
async fn a_stale_resource_version_in_an_apply_is_a_conflict() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    apply_cm(&cms, "a", json!({"k": "1"}), false).await.unwrap();
    let mut config = cm_config(json!({"k": "2"}));
    config["metadata"]["resourceVersion"] = json!("1");
    let status = api_err(
        cms.patch("x", &PatchParams::apply("a"), &Patch::Apply(config))
            .await,
    );
    assert_eq!(status.code, 409);
    assert!(
        status.message.contains("the object has been modified"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn status_writes_are_tracked_with_the_status_subresource() {
    let server = ApiServer::new();
    let client = server.client();
    let widgets = widgets(&client).await;
    widgets
        .create(&PostParams::default(), &widget("w", json!({"size": 1})))
        .await
        .unwrap();
    let status_config: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "status": {"size": 1}
    }))
    .unwrap();
    let obj = widgets
        .patch_status(
            "w",
            &PatchParams::apply("ctrl"),
            &Patch::Apply(&status_config),
        )
        .await
        .unwrap();
    let obj = serde_json::to_value(obj).unwrap();
    let e = entry(&obj, "ctrl", "Apply").expect("an Apply entry for the status");
    assert_eq!(e["subresource"], "status");
    assert_eq!(e["fieldsV1"], json!({"f:status": {".": {}, "f:size": {}}}));
    assert_eq!(obj["status"]["size"], 1);
    // The create's manager owns the spec (custom resources get `.` for a new spec).
    let creator = obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["operation"] == "Update")
        .unwrap();
    assert_eq!(
        creator["fieldsV1"]["f:spec"],
        json!({".": {}, "f:size": {}})
    );
}
