//! Creates: the fields the server sets, generateName, managedFields, namespaces from the URL,
//! what a create body may not carry, validation, defaulting, typed decoding and dryRun.

use http::{Method, Request};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};
use windlass::testing::ApiServer;

use super::support::*;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn create_sets_uid_creation_timestamp_and_resource_version() {
    let server = ApiServer::new();
    let client = server.client();
    let res = request(
        &client,
        Method::POST,
        CMS,
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})),
    )
    .await;
    let meta = &res.json()["metadata"];
    let uid = meta["uid"].as_str().unwrap();
    assert_eq!(uid.len(), 36);
    assert_eq!(
        uid.split('-').map(str::len).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    let created = meta["creationTimestamp"].as_str().unwrap();
    assert_eq!(
        created.len(),
        "2026-01-01T00:00:00Z".len(),
        "RFC 3339 in whole seconds: {created}"
    );
    assert!(created.ends_with('Z') && created.as_bytes()[10] == b'T');
    assert_eq!(meta["resourceVersion"], rv_of(&server));
    assert_eq!(meta["namespace"], "default");
}

#[tokio::test]
async fn generation_starts_at_1_for_custom_resources_and_spec_bearing_built_ins_only() {
    let server = ApiServer::new();
    let client = server.client();
    let widgets = widgets(&client).await;
    let w = widgets
        .create(&PostParams::default(), &widget("w", json!({"size": 1})))
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(1));
    let d = Api::<Deployment>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &deployment("d"))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    let mut c = cm("c");
    c.metadata.generation = Some(7);
    let c = Api::<ConfigMap>::namespaced(client, "default")
        .create(&PostParams::default(), &c)
        .await
        .unwrap();
    assert_eq!(c.metadata.generation, None);
}

#[tokio::test]
async fn generate_name_appends_five_random_characters_to_the_prefix() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut c = cm("");
    c.metadata.name = None;
    c.metadata.generate_name = Some("job-".into());
    let a = api
        .create(&PostParams::default(), &c)
        .await
        .unwrap()
        .name_any();
    let b = api
        .create(&PostParams::default(), &c)
        .await
        .unwrap()
        .name_any();
    for name in [&a, &b] {
        let suffix = name.strip_prefix("job-").expect("the prefix is kept");
        assert_eq!(suffix.len(), 5, "{name}");
        assert!(
            suffix
                .chars()
                .all(|ch| "bcdfghjklmnpqrstvwxz2456789".contains(ch)),
            "{name}"
        );
    }
    assert_ne!(a, b);
    let got = api.get(&a).await.unwrap();
    assert_eq!(got.metadata.generate_name.as_deref(), Some("job-"));
}

#[tokio::test]
async fn managed_fields_record_the_field_manager_parameter() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let pp = PostParams {
        field_manager: Some("my-operator".into()),
        ..Default::default()
    };
    let mut c = labeled_cm("x", &[("app", "web")]);
    c.data = Some([("a".to_string(), "1".to_string())].into());
    let created = api.create(&pp, &c).await.unwrap();
    let mf = created.metadata.managed_fields.unwrap();
    assert_eq!(mf.len(), 1);
    let e = serde_json::to_value(&mf[0]).unwrap();
    assert_eq!(e["manager"], "my-operator");
    assert_eq!(e["operation"], "Update");
    assert_eq!(e["apiVersion"], "v1");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert_eq!(
        e["fieldsV1"],
        json!({
            "f:data": {".": {}, "f:a": {}},
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        })
    );
    assert!(e["time"].as_str().is_some());
}

#[tokio::test]
async fn managed_fields_fall_back_to_the_user_agent_before_its_first_slash() {
    let server = ApiServer::new();
    let client = server.client();
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}});
    let req = Request::builder()
        .method(Method::POST)
        .uri(CMS)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            "kubectl/v1.34.1 (linux/amd64) kubernetes/abcdef",
        )
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    let res = send(&client, req).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(
        res.json()["metadata"]["managedFields"][0]["manager"],
        "kubectl"
    );
}

#[tokio::test]
async fn create_takes_the_namespace_from_the_url_and_refuses_a_different_one_in_the_body() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "kube-system");
    let created = api.create(&PostParams::default(), &cm("x")).await.unwrap();
    assert_eq!(created.namespace().as_deref(), Some("kube-system"));
    let mut c = cm("y");
    c.metadata.namespace = Some("default".into());
    let err = api_err(api.create(&PostParams::default(), &c).await);
    assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        err.message,
        "the namespace of the provided object does not match the namespace sent on the request"
    );
}

#[tokio::test]
async fn a_resource_version_in_a_create_body_is_a_500_like_the_real_storage_layer_answers() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut c = cm("x");
    c.metadata.resource_version = Some("12".into());
    let err = api_err(api.create(&PostParams::default(), &c).await);
    assert_eq!((err.code, err.reason.as_str()), (500, ""));
    assert_eq!(
        err.message,
        "resourceVersion should not be set on objects to be created"
    );
    // One that does not parse as a revision is ignored (kubernetes/kubernetes#113847).
    c.metadata.resource_version = Some("-1".into());
    let created = api.create(&PostParams::default(), &c).await.unwrap();
    assert_eq!(created.resource_version(), Some(rv_of(&server)));
}

#[tokio::test]
async fn status_is_dropped_on_create_for_kinds_with_a_status_subresource() {
    let server = ApiServer::new();
    let client = server.client();
    let widgets = widgets(&client).await;
    let mut w = widget("w", json!({"size": 1}));
    w.data["status"] = json!({"size": 9});
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.data.get("status"), None);
    let gadgets = gadgets(&client).await;
    let mut g = gadget("g", json!({}));
    g.data["status"] = json!({"ready": true});
    let created = gadgets.create(&PostParams::default(), &g).await.unwrap();
    assert_eq!(
        created.data["status"],
        json!({"ready": true}),
        "no status subresource: status is ordinary content"
    );
    let mut d = deployment("d");
    d.status = serde_json::from_value(json!({"replicas": 5})).unwrap();
    let created = Api::<Deployment>::namespaced(client, "default")
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    assert_eq!(serde_json::to_value(created.status).unwrap(), json!({}));
}

async fn invalid(api: &Api<ConfigMap>, c: ConfigMap) -> (String, Vec<(String, String)>) {
    let err = api_err(api.create(&PostParams::default(), &c).await);
    assert_eq!(
        (err.code, err.reason.as_str()),
        (422, "Invalid"),
        "{}",
        err.message
    );
    let causes = err
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| (c.field, c.message))
        .collect();
    (err.message, causes)
}

#[tokio::test]
async fn a_missing_name_is_required() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut c = cm("x");
    c.metadata.name = None;
    let (message, causes) = invalid(&api, c).await;
    assert_eq!(
        message,
        r#"ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required"#
    );
    assert_eq!(
        causes,
        [(
            "metadata.name".to_string(),
            "Required value: name or generateName is required".to_string()
        )]
    );
}

#[tokio::test]
async fn label_keys_and_values_must_be_valid() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let (_, causes) = invalid(
        &api,
        labeled_cm("x", &[("-bad", "ok"), ("good", "bad value")]),
    )
    .await;
    let fields: Vec<&str> = causes.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["metadata.labels", "metadata.labels"]);
    assert!(
        causes[0].1.starts_with(
            r#"Invalid value: "-bad": name part must consist of alphanumeric characters"#
        ),
        "{}",
        causes[0].1
    );
    assert!(causes[1].1.starts_with(r#"Invalid value: "bad value": a valid label must be an empty string or consist of alphanumeric characters"#), "{}", causes[1].1);
}

#[tokio::test]
async fn annotation_keys_must_be_qualified_names() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut c = cm("x");
    c.metadata.annotations = Some([("a/b/c".to_string(), "v".to_string())].into());
    let (_, causes) = invalid(&api, c).await;
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].0, "metadata.annotations");
    assert!(
        causes[0].1.starts_with(
            r#"Invalid value: "a/b/c": a valid label key must consist of alphanumeric characters"#
        ),
        "{}",
        causes[0].1
    );
}

#[tokio::test]
async fn at_most_one_owner_reference_may_be_the_controller() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let owner = |name: &str, uid: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": uid, "controller": true});
    let mut c = cm("x");
    c.metadata.owner_references =
        Some(serde_json::from_value(json!([owner("a", "1"), owner("b", "2")])).unwrap());
    let (_, causes) = invalid(&api, c).await;
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].0, "metadata.ownerReferences");
    assert!(
        causes[0].1.ends_with("Only one reference can have Controller set to true. Found \"true\" in references for ConfigMap/a and ConfigMap/b"),
        "{}",
        causes[0].1
    );
}

#[tokio::test]
async fn finalizer_names_must_be_qualified_names() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut c = cm("x");
    c.metadata.finalizers = Some(vec!["example.com/ok".into(), "not/a/finalizer".into()]);
    let (_, causes) = invalid(&api, c).await;
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].0, "metadata.finalizers");
    assert!(
        causes[0]
            .1
            .starts_with(r#"Invalid value: "not/a/finalizer": "#),
        "{}",
        causes[0].1
    );
}

#[tokio::test]
async fn a_deployment_gets_the_defaults_a_cluster_fills_in() {
    let server = ApiServer::new();
    let api: Api<Deployment> = Api::namespaced(server.client(), "default");
    let mut d = serde_json::to_value(deployment("web")).unwrap();
    d["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "busybox"}));
    let d: Deployment = serde_json::from_value(d).unwrap();
    let created =
        serde_json::to_value(api.create(&PostParams::default(), &d).await.unwrap()).unwrap();
    let spec = &created["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(
        pod["containers"][0]["imagePullPolicy"], "IfNotPresent",
        "a tagged image"
    );
    assert_eq!(
        pod["containers"][1]["imagePullPolicy"], "Always",
        "an untagged image"
    );
    assert_eq!(
        pod["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
}

#[tokio::test]
async fn a_built_in_body_of_the_wrong_shape_is_400_from_typed_decoding() {
    let server = ApiServer::new();
    let client = server.client();
    let res = request(
        &client,
        Method::POST,
        CMS,
        Some(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": 5}),
        ),
    )
    .await;
    let body = res.assert_status(400, "BadRequest");
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.starts_with(r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: "#),
        "{msg}"
    );
    assert_eq!(get(&client, &format!("{CMS}/x")).await.status, 404);
}

#[tokio::test]
async fn a_body_without_kind_or_api_version_takes_them_from_the_url() {
    let server = ApiServer::new();
    let client = server.client();
    let res = request(
        &client,
        Method::POST,
        CMS,
        Some(json!({"metadata": {"name": "x"}, "data": {"a": "1"}})),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(
        (
            res.json()["apiVersion"].as_str(),
            res.json()["kind"].as_str()
        ),
        (Some("v1"), Some("ConfigMap"))
    );
}

#[tokio::test]
async fn dry_run_create_validates_and_answers_but_stores_nothing() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let before = server.resource_version();
    let mut w = RawWatch::start(
        &client,
        &format!("{CMS}?watch=true&resourceVersion={before}"),
    )
    .await;
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let answered = api.create(&dry, &cm("x")).await.unwrap();
    assert_eq!(answered.name_any(), "x");
    assert!(answered.uid().is_some());
    assert!(
        answered.resource_version().is_none(),
        "nothing was stored, so no resourceVersion"
    );
    assert!(api.get_opt("x").await.unwrap().is_none());
    assert_eq!(server.resource_version(), before);
    w.expect_quiet(std::time::Duration::from_millis(50)).await;
    // Validation still runs.
    let err = api_err(api.create(&dry, &cm("Bad")).await);
    assert_eq!(err.code, 422);
}

#[tokio::test]
async fn a_dry_run_value_other_than_all_is_422() {
    let server = ApiServer::new();
    let client = server.client();
    let res = request(
        &client,
        Method::POST,
        &format!("{CMS}?dryRun=Maybe"),
        Some(serde_json::to_value(cm("x")).unwrap()),
    )
    .await;
    let body = res.assert_status(422, "Invalid");
    assert_eq!(
        body["message"],
        r#"CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"Maybe"}: supported values: "All""#
    );
    assert_eq!(get(&client, &format!("{CMS}/x")).await.status, 404);
}

#[tokio::test]
async fn an_unscheduled_pod_is_created_pending_with_defaults() {
    let server = ApiServer::new();
    let api: Api<Pod> = Api::namespaced(server.client(), "default");
    let p: Pod = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}),
    )
    .unwrap();
    let created =
        serde_json::to_value(api.create(&PostParams::default(), &p).await.unwrap()).unwrap();
    assert_eq!(created["spec"]["schedulerName"], "default-scheduler");
    assert_eq!(created["status"]["phase"], "Pending");
    let listed = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    let _: Value = created;
}

#[tokio::test]
async fn a_custom_resource_finalizer_without_a_path_is_accepted_with_a_warning() {
    let server = ApiServer::new();
    let client = server.client();
    widgets(&client).await;
    let path = "/apis/example.com/v1/namespaces/default/widgets";
    let body = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "finalizers": ["cleanup", "example.com/ok", "orphan"]}});
    let res = request(&client, Method::POST, path, Some(body)).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let warnings: Vec<&str> = res
        .headers
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        warnings,
        [
            r#"299 - "metadata.finalizers: \"cleanup\": prefer a domain-qualified finalizer name including a path (/) to avoid accidental conflicts with other finalizer writers""#
        ]
    );
    let cm_res = request(
        &client,
        Method::POST,
        CMS,
        Some(json!({"metadata": {"name": "c", "finalizers": ["cleanup"]}})),
    )
    .await;
    assert_eq!(cm_res.status, 201);
    assert!(cm_res.header("warning").is_none(), "built-ins do not warn");
}
