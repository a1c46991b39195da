//! Deletes: what they answer, finalizers, preconditions, deletecollection, dryRun, DeleteOptions
//! validation, and namespaces (their existence, creates into them, and their deletion).

use std::time::Duration;

use http::Method;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;
use windlass::testing::{ApiServer, Config};

use super::support::*;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

fn with_finalizer(name: &str) -> ConfigMap {
    let mut c = cm(name);
    c.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    c
}

#[tokio::test]
async fn deleting_an_object_without_finalizers_removes_it_and_answers_a_success_status() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = api.create(&PostParams::default(), &cm("x")).await.unwrap();
    let from = rv_of(&server);
    let mut w = RawWatch::start(&client, &format!("{CMS}?watch=true&resourceVersion={from}")).await;
    let res = request(
        &client,
        Method::DELETE,
        &format!("{CMS}/x"),
        Some(json!({})),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.json(),
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": "x", "kind": "configmaps", "uid": created.uid().unwrap()},
        })
    );
    assert_eq!(w.next_named().await, ("DELETED".into(), "x".into()));
    assert!(api.get_opt("x").await.unwrap().is_none());
}

#[tokio::test]
async fn deleting_a_pod_answers_the_deleted_pod() {
    let server = ApiServer::new();
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let p: Pod = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
    )
    .unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
    let answered = pods.delete("p", &DeleteParams::default()).await.unwrap();
    assert_eq!(answered.left().expect("the deleted pod").name_any(), "p");
    assert!(pods.get_opt("p").await.unwrap().is_none());
}

#[tokio::test]
async fn deleting_an_object_with_finalizers_marks_it_for_deletion() {
    let server = ApiServer::new();
    let client = server.client();
    let widgets = widgets(&client).await;
    let mut w = widget("w", json!({"size": 1}));
    w.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    widgets.create(&PostParams::default(), &w).await.unwrap();
    let from = rv_of(&server);
    let mut watch = RawWatch::start(
        &client,
        &format!(
            "/apis/example.com/v1/namespaces/default/widgets?watch=true&resourceVersion={from}"
        ),
    )
    .await;
    let marked = widgets
        .delete("w", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("the object");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(0));
    assert_eq!(
        marked.metadata.generation,
        Some(2),
        "setting deletionTimestamp moves generation"
    );
    assert_eq!(marked.finalizers(), ["example.com/hold"]);
    let e = watch.next().await;
    assert_eq!(event_type(&e), "MODIFIED");
    assert!(e["object"]["metadata"]["deletionTimestamp"].is_string());
}

#[tokio::test]
async fn deleting_a_terminating_object_again_changes_nothing() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &with_finalizer("x"))
        .await
        .unwrap();
    let first = api
        .delete("x", &DeleteParams::default())
        .await
        .unwrap()
        .unwrap_left();
    let from = rv_of(&server);
    let mut w = RawWatch::start(&client, &format!("{CMS}?watch=true&resourceVersion={from}")).await;
    let again = api
        .delete("x", &DeleteParams::default())
        .await
        .unwrap()
        .unwrap_left();
    assert_eq!(again.resource_version(), first.resource_version());
    assert_eq!(
        again.metadata.deletion_timestamp,
        first.metadata.deletion_timestamp
    );
    assert_eq!(server.resource_version().to_string(), from);
    w.expect_quiet(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn removing_the_last_finalizer_of_a_terminating_object_deletes_it() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &with_finalizer("x"))
        .await
        .unwrap();
    api.delete("x", &DeleteParams::default()).await.unwrap();
    let from = rv_of(&server);
    let mut w = RawWatch::start(&client, &format!("{CMS}?watch=true&resourceVersion={from}")).await;
    let answered = api
        .patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    let e = w.next().await;
    assert_eq!(event_type(&e), "DELETED");
    // The update is not stored: the object is deleted as it was last stored, finalizer included.
    assert_eq!(
        e["object"]["metadata"]["finalizers"],
        json!(["example.com/hold"])
    );
    assert_eq!(answered.finalizers(), ["example.com/hold"]);
    assert_eq!(
        answered.resource_version(),
        e["object"]["metadata"]["resourceVersion"]
            .as_str()
            .map(String::from)
    );
    assert!(api.get_opt("x").await.unwrap().is_none());
}

#[tokio::test]
async fn delete_preconditions_that_do_not_match_are_a_conflict() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let created = api.create(&PostParams::default(), &cm("x")).await.unwrap();
    let uid = created.uid().unwrap();
    let rv = created.resource_version().unwrap();
    let by_uid = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("other".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let err = api_err(api.delete("x", &by_uid).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        format!(
            r#"Operation cannot be fulfilled on configmaps "x": Precondition failed: UID in precondition: other, UID in object meta: {uid}"#
        )
    );
    let by_rv = DeleteParams {
        preconditions: Some(Preconditions {
            uid: None,
            resource_version: Some("1".into()),
        }),
        ..Default::default()
    };
    let err = api_err(api.delete("x", &by_rv).await);
    assert_eq!(
        err.message,
        format!(
            r#"Operation cannot be fulfilled on configmaps "x": Precondition failed: ResourceVersion in precondition: 1, ResourceVersion in object meta: {rv}"#
        )
    );
    let matching = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid),
            resource_version: Some(rv),
        }),
        ..Default::default()
    };
    assert!(api.delete("x", &matching).await.unwrap().is_right());
}

#[tokio::test]
async fn deleting_a_missing_object_is_404() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let err = api_err(api.delete("x", &DeleteParams::default()).await);
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, r#"configmaps "x" not found"#)
    );
}

#[tokio::test]
async fn deletecollection_deletes_what_the_selector_matches_by_the_same_rules() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &labeled_cm("a", &[("app", "x")]))
        .await
        .unwrap();
    let mut held = labeled_cm("b", &[("app", "x")]);
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();
    api.create(&PostParams::default(), &labeled_cm("c", &[("app", "y")]))
        .await
        .unwrap();
    let deleted = api
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("app=x"),
        )
        .await
        .unwrap();
    let list = deleted.unwrap_left();
    assert_eq!(
        list.items.iter().map(|c| c.name_any()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert_eq!(left, ["b", "c"]);
    assert!(
        api.get("b")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
}

#[tokio::test]
async fn deletecollection_is_405_outside_a_namespace_and_for_namespaces() {
    let server = ApiServer::new();
    let client = server.client();
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &cm("x"))
        .await
        .unwrap();
    let res = request(&client, Method::DELETE, "/api/v1/configmaps", None).await;
    res.assert_status(405, "MethodNotAllowed");
    assert_eq!(get(&client, &format!("{CMS}/x")).await.status, 200);
    // Namespaces have no deletecollection at all.
    let res = request(&client, Method::DELETE, "/api/v1/namespaces", None).await;
    res.assert_status(405, "MethodNotAllowed");
    assert_eq!(get(&client, "/api/v1/namespaces/default").await.status, 200);
}

#[tokio::test]
async fn dry_run_delete_answers_but_deletes_nothing() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &cm("x")).await.unwrap();
    let before = server.resource_version();
    let mut w = RawWatch::start(
        &client,
        &format!("{CMS}?watch=true&resourceVersion={before}"),
    )
    .await;
    let answered = api
        .delete("x", &DeleteParams::default().dry_run())
        .await
        .unwrap();
    assert!(answered.is_right());
    assert!(api.get_opt("x").await.unwrap().is_some());
    assert_eq!(server.resource_version(), before);
    w.expect_quiet(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn delete_options_are_validated_and_come_from_the_body_before_the_query() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &cm("x")).await.unwrap();
    let res = request(
        &client,
        Method::DELETE,
        &format!("{CMS}/x?propagationPolicy=Sideways"),
        None,
    )
    .await;
    let body = res.assert_status(422, "Invalid");
    assert_eq!(
        body["message"],
        r#"DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Sideways": supported values: "Foreground", "Background", "Orphan", "nil""#
    );
    let res = request(
        &client,
        Method::DELETE,
        &format!("{CMS}/x"),
        Some(json!({"propagationPolicy": "Background", "orphanDependents": true})),
    )
    .await;
    let body = res.assert_status(422, "Invalid");
    assert_eq!(
        body["message"],
        r#"DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: "Background": orphanDependents and deletionPropagation cannot be both set"#
    );
    let res = request(
        &client,
        Method::DELETE,
        &format!("{CMS}/x"),
        Some(json!({"dryRun": ["Sometimes"]})),
    )
    .await;
    res.assert_status(422, "Invalid");
    // With a body, the query is not read at all.
    let res = request(
        &client,
        Method::DELETE,
        &format!("{CMS}/x?propagationPolicy=Sideways"),
        Some(json!({})),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
}

#[tokio::test]
async fn the_default_namespaces_exist_and_are_active() {
    let server = ApiServer::new();
    let nss: Api<Namespace> = Api::all(server.client());
    let names: Vec<String> = nss
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|n| n.name_any())
        .collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    let default = nss.get("default").await.unwrap();
    assert_eq!(
        default.status.as_ref().unwrap().phase.as_deref(),
        Some("Active")
    );
    assert_eq!(default.labels()["kubernetes.io/metadata.name"], "default");
}

#[tokio::test]
async fn creating_in_a_missing_namespace_is_404_naming_the_namespace() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "nowhere");
    let err = api_err(api.create(&PostParams::default(), &cm("x")).await);
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert_eq!(err.message, r#"namespaces "nowhere" not found"#);
    let details = err.details.unwrap();
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("nowhere", "namespaces")
    );
}

fn namespace(name: &str) -> Namespace {
    serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    .unwrap()
}

#[tokio::test]
async fn deleting_a_namespace_makes_it_terminating_then_empties_and_removes_it() {
    let server = ApiServer::new();
    let client = server.client();
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(&PostParams::default(), &namespace("team"))
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let from = rv_of(&server);
    let mut ns_watch = RawWatch::start(&client, &format!("/api/v1/namespaces?watch=true&resourceVersion={from}&fieldSelector=metadata.name%3Dteam")).await;
    let mut cm_watch = RawWatch::start(
        &client,
        &format!("/api/v1/namespaces/team/configmaps?watch=true&resourceVersion={from}"),
    )
    .await;
    let answered = nss
        .delete("team", &DeleteParams::default())
        .await
        .unwrap()
        .unwrap_left();
    assert_eq!(
        answered.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    let e = ns_watch.next().await;
    assert_eq!(
        (event_type(&e), e["object"]["status"]["phase"].as_str()),
        ("MODIFIED".to_string(), Some("Terminating"))
    );
    assert_eq!(cm_watch.next_named().await, ("DELETED".into(), "a".into()));
    loop {
        let e = ns_watch.next().await;
        if event_type(&e) == "DELETED" {
            break;
        }
        assert_eq!(event_type(&e), "MODIFIED");
    }
    assert!(nss.get_opt("team").await.unwrap().is_none());
}

#[tokio::test]
async fn without_garbage_collection_a_deleted_namespace_stays_terminating_and_refuses_new_content()
{
    let server = ApiServer::with_config(Config::default().garbage_collection(false));
    let client = server.client();
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(&PostParams::default(), &namespace("team"))
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    nss.delete("team", &DeleteParams::default()).await.unwrap();
    let ns = nss.get("team").await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    assert!(cms.get_opt("a").await.unwrap().is_some());
    let err = api_err(cms.create(&PostParams::default(), &cm("b")).await);
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        err.message,
        r#"configmaps "b" is forbidden: unable to create new content in namespace team because it is being terminated"#
    );
    let details = err.details.unwrap();
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("b", "configmaps")
    );
    assert_eq!(details.causes[0].reason, "NamespaceTerminating");
}
