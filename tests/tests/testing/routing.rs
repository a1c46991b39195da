//! Routing and framing: which paths are served, the shape of every answer, status codes, and
//! the error messages users and clients grep for.

use http::Method;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use windlass::testing::ApiServer;

use super::support::*;

#[tokio::test]
async fn an_unknown_path_answers_a_plain_text_404_page_not_found() {
    let server = ApiServer::new();
    let client = server.client();
    for path in [
        "/apis/example.com/v1/namespaces/default/widgets",
        "/apis/example.com/v1",
        "/nope",
        "/api/v1/namespaces/default/bogus",
    ] {
        let res = get(&client, path).await;
        assert_eq!(res.status, 404, "{path}");
        assert_eq!(
            res.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{path}"
        );
        assert_eq!(res.text(), "404 page not found\n", "{path}");
    }
}

#[tokio::test]
async fn an_undeclared_subresource_of_a_built_in_answers_a_not_found_status() {
    let server = ApiServer::new();
    let client = server.client();
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &cm("x"))
        .await
        .unwrap();
    let res = get(&client, "/api/v1/namespaces/default/configmaps/x/status").await;
    let body = res.assert_status(404, "NotFound");
    assert_eq!(
        body["message"],
        "the server could not find the requested resource"
    );
    assert_eq!(res.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn an_undeclared_subresource_of_a_custom_resource_answers_not_found_for_the_object() {
    let server = ApiServer::new();
    let client = server.client();
    let gadgets = gadgets(&client).await;
    gadgets
        .create(&PostParams::default(), &gadget("g", json!({})))
        .await
        .unwrap();
    let res = get(
        &client,
        "/apis/example.com/v1/namespaces/default/gadgets/g/status",
    )
    .await;
    let body = res.assert_status(404, "NotFound");
    assert_eq!(body["message"], r#"gadgets.example.com "g" not found"#);
    assert_eq!(
        body["details"],
        json!({"name": "g", "group": "example.com", "kind": "gadgets"})
    );
}

#[tokio::test]
async fn a_cluster_scoped_kind_under_a_namespace_is_not_found() {
    let server = ApiServer::new();
    let client = server.client();
    for path in [
        "/api/v1/namespaces/default/nodes",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/clusterroles",
    ] {
        let res = get(&client, path).await;
        assert_eq!(res.status, 404, "{path}");
        assert_eq!(res.text(), "404 page not found\n", "{path}");
    }
}

#[tokio::test]
async fn namespaced_kinds_are_listable_across_namespaces() {
    let server = ApiServer::new();
    let client = server.client();
    for ns in ["default", "kube-system"] {
        Api::<ConfigMap>::namespaced(client.clone(), ns)
            .create(&PostParams::default(), &cm("settings"))
            .await
            .unwrap();
    }
    let all = Api::<ConfigMap>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap();
    let found: Vec<(String, String)> = all
        .items
        .iter()
        .map(|c| {
            (
                c.metadata.namespace.clone().unwrap(),
                c.metadata.name.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("default".to_string(), "settings".to_string()),
            ("kube-system".to_string(), "settings".to_string())
        ]
    );
}

#[tokio::test]
async fn query_strings_may_start_with_an_ampersand_or_be_empty() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &labeled_cm("a", &[("app", "x")]))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    let res = get(
        &client,
        "/api/v1/namespaces/default/configmaps?&labelSelector=app%3Dx&&",
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["items"].as_array().unwrap().len(), 1);
    let res = get(&client, "/api/v1/namespaces/default/configmaps?").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn create_answers_201_and_get_replace_patch_and_delete_answer_200() {
    let server = ApiServer::new();
    let client = server.client();
    let base = "/api/v1/namespaces/default/configmaps";
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}});
    let created = request(&client, Method::POST, base, Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let mut obj = created.json();
    assert_eq!(get(&client, &format!("{base}/x")).await.status, 200);
    obj["data"]["a"] = json!("2");
    assert_eq!(
        request(&client, Method::PUT, &format!("{base}/x"), Some(obj))
            .await
            .status,
        200
    );
    let patched = request_bytes(
        &client,
        Method::PATCH,
        &format!("{base}/x"),
        "application/merge-patch+json",
        r#"{"data":{"b":"3"}}"#,
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(
        request(&client, Method::DELETE, &format!("{base}/x"), None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn single_objects_and_watch_events_carry_api_version_and_kind() {
    let server = ApiServer::new();
    let client = server.client();
    Api::<Deployment>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let got = get(&client, "/apis/apps/v1/namespaces/default/deployments/web")
        .await
        .json();
    assert_eq!(
        (got["apiVersion"].as_str(), got["kind"].as_str()),
        (Some("apps/v1"), Some("Deployment"))
    );
    let list = get(&client, "/apis/apps/v1/namespaces/default/deployments")
        .await
        .json();
    assert_eq!(
        (list["apiVersion"].as_str(), list["kind"].as_str()),
        (Some("apps/v1"), Some("DeploymentList"))
    );
    let mut watch = RawWatch::start(
        &client,
        "/apis/apps/v1/namespaces/default/deployments?watch=true",
    )
    .await;
    let event = watch.next().await;
    assert_eq!(event["type"], "ADDED");
    assert_eq!(event["object"]["apiVersion"], "apps/v1");
    assert_eq!(event["object"]["kind"], "Deployment");
}

#[tokio::test]
async fn not_found_is_a_status_naming_the_qualified_plural() {
    let server = ApiServer::new();
    let client = server.client();
    let res = get(&client, "/apis/apps/v1/namespaces/default/deployments/web").await;
    let body = res.assert_status(404, "NotFound");
    assert_eq!(
        body,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": r#"deployments.apps "web" not found"#, "reason": "NotFound",
            "details": {"name": "web", "group": "apps", "kind": "deployments"}, "code": 404,
        })
    );
    let err = api_err(
        Api::<ConfigMap>::namespaced(client, "default")
            .get("x")
            .await,
    );
    assert_eq!(err.message, r#"configmaps "x" not found"#);
    let details = err.details.unwrap();
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("x", "", "configmaps")
    );
}

#[tokio::test]
async fn creating_an_existing_name_is_already_exists_naming_the_qualified_plural() {
    let server = ApiServer::new();
    let api: Api<Deployment> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let err = api_err(api.create(&PostParams::default(), &deployment("web")).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(err.message, r#"deployments.apps "web" already exists"#);
    let details = err.details.unwrap();
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("web", "apps", "deployments")
    );
}

#[tokio::test]
async fn a_stale_replace_is_a_conflict_with_the_message_controllers_expect() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let first = api.create(&PostParams::default(), &cm("x")).await.unwrap();
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .unwrap();
    let err = api_err(api.replace("x", &PostParams::default(), &first).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        r#"Operation cannot be fulfilled on configmaps "x": the object has been modified; please apply your changes to the latest version and try again"#
    );
    assert_eq!(err.details.unwrap().kind, "configmaps");
}

#[tokio::test]
async fn an_invalid_object_is_422_naming_the_kind_with_a_cause_per_field() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let err = api_err(api.create(&PostParams::default(), &cm("Foo")).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    let why = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    assert_eq!(
        err.message,
        format!(r#"ConfigMap "Foo" is invalid: metadata.name: Invalid value: "Foo": {why}"#)
    );
    let details = err.details.unwrap();
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("Foo", "ConfigMap")
    );
    assert_eq!(details.causes.len(), 1);
    assert_eq!(details.causes[0].reason, "FieldValueInvalid");
    assert_eq!(details.causes[0].field, "metadata.name");
    assert_eq!(
        details.causes[0].message,
        format!(r#"Invalid value: "Foo": {why}"#)
    );
}

#[tokio::test]
async fn an_invalid_object_of_a_group_names_the_qualified_kind() {
    let server = ApiServer::new();
    let api: Api<Deployment> = Api::namespaced(server.client(), "default");
    let mut d = deployment("web");
    d.metadata.labels = Some([("bad key".to_string(), "v".to_string())].into());
    let err = api_err(api.create(&PostParams::default(), &d).await);
    assert_eq!(err.code, 422);
    assert!(
        err.message.starts_with(
            r#"Deployment.apps "web" is invalid: metadata.labels: Invalid value: "bad key": "#
        ),
        "{}",
        err.message
    );
    let details = err.details.unwrap();
    assert_eq!(
        (details.group.as_str(), details.kind.as_str()),
        ("apps", "Deployment")
    );
}

#[tokio::test]
async fn a_method_a_path_does_not_serve_is_405() {
    let server = ApiServer::new();
    let client = server.client();
    let res = request(
        &client,
        Method::POST,
        "/api/v1/namespaces/default/configmaps/x",
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})),
    )
    .await;
    let body = res.assert_status(405, "MethodNotAllowed");
    assert_eq!(
        body["message"],
        "the server does not allow this method on the requested resource"
    );
    // Creating a namespaced kind needs a namespace in the path.
    let res = request(
        &client,
        Method::POST,
        "/api/v1/configmaps",
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}})),
    )
    .await;
    res.assert_status(405, "MethodNotAllowed");
    assert!(
        get(&client, "/api/v1/namespaces/default/configmaps/x")
            .await
            .status
            == 404
    );
}
