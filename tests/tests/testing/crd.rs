//! CustomResourceDefinitions: the NamesAccepted/Established lifecycle, serving and discovery
//! once established, validation, several versions, cluster scope, and deletion.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::discovery::{self, Scope, verbs};
use kube::runtime::{conditions, wait::await_condition};
use serde_json::{Value, json};
use windlass::testing::ApiServer;

use super::support::*;

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

fn condition<'a>(crd: &'a Value, kind: &str) -> Option<&'a Value> {
    crd["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

#[tokio::test]
async fn a_new_crd_has_its_names_accepted_then_is_established_in_separate_events() {
    let server = ApiServer::new();
    let client = server.client();
    let from = rv_of(&server);
    let mut w = RawWatch::start(
        &client,
        &format!("{CRDS}?watch=true&resourceVersion={from}"),
    )
    .await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let created = crds
        .create(&PostParams::default(), &widget_crd())
        .await
        .unwrap();
    assert_eq!(
        created.finalizers(),
        ["customresourcecleanup.apiextensions.k8s.io"]
    );
    let added = w.next().await;
    assert_eq!(event_type(&added), "ADDED");
    assert!(condition(&added["object"], "Established").is_none());
    let accepted = w.next().await;
    assert_eq!(event_type(&accepted), "MODIFIED");
    let names = condition(&accepted["object"], "NamesAccepted").expect("NamesAccepted");
    assert_eq!(
        (names["status"].as_str(), names["reason"].as_str()),
        (Some("True"), Some("NoConflicts"))
    );
    let installing = condition(&accepted["object"], "Established").expect("Established (not yet)");
    assert_eq!(
        (installing["status"].as_str(), installing["reason"].as_str()),
        (Some("False"), Some("Installing"))
    );
    assert_eq!(
        accepted["object"]["status"]["acceptedNames"],
        json!({
            "plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wd"],
        })
    );
    let established = w.next().await;
    assert_eq!(event_type(&established), "MODIFIED");
    let e = condition(&established["object"], "Established").expect("Established");
    assert_eq!(
        (e["status"].as_str(), e["reason"].as_str()),
        (Some("True"), Some("InitialNamesAccepted"))
    );
    assert_eq!(
        established["object"]["status"]["storedVersions"],
        json!(["v1"])
    );
}

#[tokio::test]
async fn custom_resources_are_served_once_their_crd_is_established() {
    let server = ApiServer::new();
    let client = server.client();
    let path = "/apis/example.com/v1/namespaces/default/widgets";
    assert_eq!(get(&client, path).await.text(), "404 page not found\n");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &widget_crd())
        .await
        .unwrap();
    let established = await_condition(
        crds,
        "widgets.example.com",
        conditions::is_crd_established(),
    );
    tokio::time::timeout(WAIT, established)
        .await
        .unwrap()
        .unwrap();
    let res = get(&client, path).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["kind"], "WidgetList");
}

#[tokio::test]
async fn legacy_and_aggregated_discovery_find_an_established_crd() {
    let server = ApiServer::new();
    let client = server.client();
    install(&client, &widget_crd()).await;
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    for discovery in [
        kube::Discovery::new(client.clone()).run().await.unwrap(),
        kube::Discovery::new(client.clone())
            .run_aggregated()
            .await
            .unwrap(),
    ] {
        let group = discovery
            .get("example.com")
            .expect("the group is discovered");
        assert_eq!(group.preferred_version(), Some("v1"));
        assert_eq!(group.versions().collect::<Vec<_>>(), ["v1", "v1beta1"]);
        let (ar, caps) = discovery.resolve_gvk(&gvk).expect("the kind resolves");
        assert_eq!(ar.plural, "widgets");
        assert_eq!(caps.scope, Scope::Namespaced);
        assert!(caps.supports_operation(verbs::WATCH));
        let subs: Vec<&str> = caps
            .subresources
            .iter()
            .map(|(s, _)| s.plural.as_str())
            .collect();
        assert!(
            subs.contains(&"status") && subs.contains(&"scale"),
            "{subs:?}"
        );
    }
    let (ar, caps) = discovery::pinned_kind(&client, &gvk).await.unwrap();
    assert_eq!(
        (ar.plural.as_str(), ar.api_version.as_str()),
        ("widgets", "example.com/v1")
    );
    assert_eq!(caps.scope, Scope::Namespaced);
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
    widgets
        .create(&PostParams::default(), &widget("found", json!({})))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_crd_named_other_than_plural_dot_group_is_422() {
    let server = ApiServer::new();
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    let mut crd = widget_crd();
    crd.metadata.name = Some("gadgets.example.com".into());
    let err = api_err(crds.create(&PostParams::default(), &crd).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        err.message,
        r#"CustomResourceDefinition.apiextensions.k8s.io "gadgets.example.com" is invalid: metadata.name: Invalid value: "gadgets.example.com": must be spec.names.plural+"."+spec.group"#
    );
    let details = err.details.unwrap();
    assert_eq!(
        (details.group.as_str(), details.kind.as_str()),
        ("apiextensions.k8s.io", "CustomResourceDefinition")
    );
}

#[tokio::test]
async fn a_crd_must_have_exactly_one_storage_version() {
    let server = ApiServer::new();
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    for storage in [true, false] {
        let mut crd = serde_json::to_value(widget_crd()).unwrap();
        crd["spec"]["versions"][0]["storage"] = json!(storage);
        crd["spec"]["versions"][1]["storage"] = json!(storage);
        let crd: CustomResourceDefinition = serde_json::from_value(crd).unwrap();
        let err = api_err(crds.create(&PostParams::default(), &crd).await);
        assert_eq!(err.code, 422);
        let causes = err.details.unwrap().causes;
        assert!(
            causes.iter().any(|c| c.field == "spec.versions"
                && c.message
                    .ends_with("must have exactly one version marked as storage version")),
            "{causes:?}"
        );
    }
}

#[tokio::test]
async fn a_multi_version_crd_serves_the_same_objects_at_every_version() {
    let server = ApiServer::new();
    let client = server.client();
    install(&client, &widget_crd()).await;
    let v1: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &widget_resource("v1"));
    let beta: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &widget_resource("v1beta1"));
    let mut old = widget("w", json!({"size": 1}));
    old.types.as_mut().unwrap().api_version = "example.com/v1beta1".into();
    let created = beta.create(&PostParams::default(), &old).await.unwrap();
    assert_eq!(created.types.unwrap().api_version, "example.com/v1beta1");
    let mut at_v1 = serde_json::to_value(v1.get("w").await.unwrap()).unwrap();
    let mut at_beta = serde_json::to_value(beta.get("w").await.unwrap()).unwrap();
    assert_eq!(at_v1["apiVersion"], "example.com/v1");
    assert_eq!(at_beta["apiVersion"], "example.com/v1beta1");
    at_v1["apiVersion"] = Value::Null;
    at_beta["apiVersion"] = Value::Null;
    // managedFields name the version each write used; everything else is one object.
    at_v1["metadata"]["managedFields"] = Value::Null;
    at_beta["metadata"]["managedFields"] = Value::Null;
    assert_eq!(at_v1, at_beta);
    let listed = beta.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        listed.items[0].types.as_ref().unwrap().api_version,
        "example.com/v1beta1"
    );
    let raw = get(
        &client,
        "/apis/example.com/v1beta1/namespaces/default/widgets",
    )
    .await
    .json();
    assert_eq!(raw["apiVersion"], "example.com/v1beta1");
}

#[tokio::test]
async fn a_cluster_scoped_crd_is_served_without_namespaces() {
    let server = ApiServer::new();
    let client = server.client();
    let mut crd = serde_json::to_value(gadget_crd()).unwrap();
    crd["spec"]["scope"] = json!("Cluster");
    install(&client, &serde_json::from_value(crd).unwrap()).await;
    let ar = gadget_resource();
    let gadgets: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let created = gadgets
        .create(&PostParams::default(), &gadget("g", json!({})))
        .await
        .unwrap();
    assert_eq!(created.metadata.namespace, None);
    assert_eq!(
        get(&client, "/apis/example.com/v1/gadgets/g").await.status,
        200
    );
    assert_eq!(
        get(&client, "/apis/example.com/v1/namespaces/default/gadgets/g")
            .await
            .text(),
        "404 page not found\n"
    );
}

#[tokio::test]
async fn deleting_a_crd_deletes_its_custom_resources_then_itself_then_its_endpoints() {
    let server = ApiServer::new();
    let client = server.client();
    let widgets = widgets(&client).await;
    for n in ["a", "b"] {
        widgets
            .create(&PostParams::default(), &widget(n, json!({})))
            .await
            .unwrap();
    }
    let from = rv_of(&server);
    let mut cr_watch = RawWatch::start(
        &client,
        &format!("/apis/example.com/v1/widgets?watch=true&resourceVersion={from}"),
    )
    .await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let uid = crds
        .get("widgets.example.com")
        .await
        .unwrap()
        .uid()
        .unwrap();
    let marked = crds
        .delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        marked
            .left()
            .expect("the CRD waits for its cleanup")
            .metadata
            .deletion_timestamp
            .is_some()
    );
    assert_eq!(cr_watch.next_named().await, ("DELETED".into(), "a".into()));
    assert_eq!(cr_watch.next_named().await, ("DELETED".into(), "b".into()));
    cr_watch.expect_end().await;
    let gone = await_condition(
        crds.clone(),
        "widgets.example.com",
        conditions::is_deleted(&uid),
    );
    tokio::time::timeout(WAIT, gone).await.unwrap().unwrap();
    assert_eq!(
        get(&client, "/apis/example.com/v1/namespaces/default/widgets")
            .await
            .text(),
        "404 page not found\n"
    );
    let discovery = kube::Discovery::new(client).run_aggregated().await.unwrap();
    assert!(!discovery.has_group("example.com"));
}

#[tokio::test]
async fn a_crd_whose_custom_resources_cannot_go_yet_stays_terminating_and_refuses_creates() {
    let server = ApiServer::new();
    let client = server.client();
    let widgets = widgets(&client).await;
    let mut held = widget("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    widgets.create(&PostParams::default(), &held).await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = await_condition(
        crds.clone(),
        "widgets.example.com",
        |c: Option<&CustomResourceDefinition>| {
            c.and_then(|c| c.status.as_ref())
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Terminating" && c.status == "True")
                })
        },
    );
    tokio::time::timeout(WAIT, terminating)
        .await
        .unwrap()
        .unwrap();
    assert!(
        widgets
            .get("held")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    let err = api_err(
        widgets
            .create(&PostParams::default(), &widget("new", json!({})))
            .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (405, "MethodNotAllowed"));
    assert_eq!(
        err.message,
        "create not allowed while custom resource definition is terminating"
    );
    // Once the last custom resource goes, so does the CRD.
    let uid = crds
        .get("widgets.example.com")
        .await
        .unwrap()
        .uid()
        .unwrap();
    widgets
        .patch(
            "held",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    let gone = await_condition(crds, "widgets.example.com", conditions::is_deleted(&uid));
    tokio::time::timeout(WAIT, gone).await.unwrap().unwrap();
}

#[tokio::test]
async fn custom_resources_round_trip_through_dynamic_objects() {
    let server = ApiServer::new();
    let client = server.client();
    let widgets = widgets(&client).await;
    let mut w = widget("w", json!({"size": 3, "nested": {"list": [1, 2, 3]}}));
    w.metadata.labels = Some([("app".to_string(), "x".to_string())].into());
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(
        created.data["spec"],
        json!({"size": 3, "nested": {"list": [1, 2, 3]}})
    );
    let ar = ApiResource::erase::<CustomResourceDefinition>(&());
    assert_eq!(ar.plural, "customresourcedefinitions");
    let found = widgets
        .list(&ListParams::default().labels("app=x"))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
}
