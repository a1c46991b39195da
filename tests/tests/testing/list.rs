//! Lists: their shape, paging with limit and continue over a consistent snapshot, label and
//! field selectors, and continue tokens that outlive the kept history.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use windlass::testing::ApiServer;

use super::support::*;

fn names<K: kube::Resource + Clone>(list: &kube::core::ObjectList<K>) -> Vec<String> {
    list.items.iter().map(|o| o.name_any()).collect()
}

#[tokio::test]
async fn a_list_carries_its_kind_api_version_and_a_resource_version_even_when_empty() {
    let server = ApiServer::new();
    let client = server.client();
    // Leases were never written: the list is empty but still reports the store's revision.
    let res = get(
        &client,
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
    )
    .await;
    assert_eq!(res.status, 200);
    let body = res.json();
    assert_eq!(body["kind"], "LeaseList");
    assert_eq!(body["apiVersion"], "coordination.k8s.io/v1");
    assert_eq!(body["items"], json!([]));
    assert_eq!(body["metadata"]["resourceVersion"], rv_of(&server));
    let leases = Api::<Lease>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        leases
            .metadata
            .resource_version
            .is_some_and(|rv| !rv.is_empty())
    );
}

#[tokio::test]
async fn paging_answers_one_consistent_snapshot_while_objects_change_between_pages() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for n in ["a", "b", "c", "d", "e"] {
        cms.create(&PostParams::default(), &cm(n)).await.unwrap();
    }
    let first = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(names(&first), ["a", "b"]);
    let snapshot_rv = first.metadata.resource_version.clone().unwrap();
    // Between pages: a new object sorting into the rest, an update and a delete of unread ones.
    cms.create(&PostParams::default(), &cm("bb")).await.unwrap();
    cms.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "changed"}})),
    )
    .await
    .unwrap();
    cms.delete("d", &DeleteParams::default()).await.unwrap();
    let mut seen = names(&first);
    let mut token = first.metadata.continue_.clone();
    let mut pages = 1;
    while let Some(t) = token.take() {
        let page = cms
            .list(&ListParams::default().limit(2).continue_token(&t))
            .await
            .unwrap();
        assert_eq!(
            page.metadata.resource_version.as_ref(),
            Some(&snapshot_rv),
            "every page is the same snapshot"
        );
        if let Some(c) = page.items.iter().find(|c| c.name_any() == "c") {
            assert_eq!(
                c.data.as_ref().unwrap()["a"],
                "1",
                "the snapshot's version of c"
            );
        }
        seen.extend(names(&page));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        pages += 1;
        assert!(pages < 10, "paging ends");
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn remaining_item_count_counts_the_objects_after_a_page_of_an_unfiltered_list() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for n in ["a", "b", "c", "d", "e"] {
        cms.create(&PostParams::default(), &labeled_cm(n, &[("app", "x")]))
            .await
            .unwrap();
    }
    let page = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page.metadata.remaining_item_count, Some(3));
    let filtered = cms
        .list(&ListParams::default().limit(2).labels("app=x"))
        .await
        .unwrap();
    assert_eq!(names(&filtered), ["a", "b"]);
    assert!(filtered.metadata.continue_.is_some());
    assert_eq!(
        filtered.metadata.remaining_item_count, None,
        "selectors make the count unknown"
    );
    let last = cms.list(&ListParams::default().limit(5)).await.unwrap();
    assert_eq!(last.metadata.continue_, None);
    assert_eq!(last.metadata.remaining_item_count, None);
}

async fn labeled_fixture(server: &ApiServer) -> Api<ConfigMap> {
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let objects = [
        ("prod-web", vec![("env", "prod"), ("tier", "web")]),
        ("prod-db", vec![("env", "prod"), ("tier", "db")]),
        ("dev-web", vec![("env", "dev"), ("tier", "web")]),
        ("unlabeled", vec![]),
    ];
    for (name, labels) in objects {
        cms.create(&PostParams::default(), &labeled_cm(name, &labels))
            .await
            .unwrap();
    }
    cms
}

async fn selected(cms: &Api<ConfigMap>, selector: &str) -> Vec<String> {
    let mut n = names(
        &cms.list(&ListParams::default().labels(selector))
            .await
            .unwrap(),
    );
    n.sort();
    n
}

#[tokio::test]
async fn equality_label_selectors_select_by_key_and_value() {
    let server = ApiServer::new();
    let cms = labeled_fixture(&server).await;
    assert_eq!(selected(&cms, "env=prod").await, ["prod-db", "prod-web"]);
    assert_eq!(selected(&cms, "env==prod").await, ["prod-db", "prod-web"]);
    assert_eq!(selected(&cms, "env=prod,tier=web").await, ["prod-web"]);
    assert_eq!(
        selected(&cms, "tier").await,
        ["dev-web", "prod-db", "prod-web"]
    );
    assert_eq!(selected(&cms, "!tier").await, ["unlabeled"]);
}

#[tokio::test]
async fn set_based_label_selectors_select_by_membership() {
    let server = ApiServer::new();
    let cms = labeled_fixture(&server).await;
    assert_eq!(
        selected(&cms, "env in (prod,dev)").await,
        ["dev-web", "prod-db", "prod-web"]
    );
    assert_eq!(selected(&cms, "tier in (db), env").await, ["prod-db"]);
}

#[tokio::test]
async fn not_equal_and_notin_also_select_objects_without_the_key() {
    let server = ApiServer::new();
    let cms = labeled_fixture(&server).await;
    assert_eq!(selected(&cms, "env!=prod").await, ["dev-web", "unlabeled"]);
    assert_eq!(
        selected(&cms, "tier notin (web)").await,
        ["prod-db", "unlabeled"]
    );
}

#[tokio::test]
async fn a_label_selector_that_does_not_parse_is_400() {
    let server = ApiServer::new();
    let client = server.client();
    for selector in [
        "env in (prod",
        "env=prod,",
        "=prod",
        "env notin prod",
        "a b",
    ] {
        let q: String = form_urlencoded_selector(selector);
        let res = get(
            &client,
            &format!("/api/v1/namespaces/default/configmaps?labelSelector={q}"),
        )
        .await;
        let body = res.assert_status(400, "BadRequest");
        assert!(!body["message"].as_str().unwrap().is_empty(), "{selector}");
    }
}

fn form_urlencoded_selector(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn field_selectors_select_by_name_and_namespace() {
    let server = ApiServer::new();
    let client = server.client();
    for ns in ["default", "kube-system"] {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        for n in ["a", "b"] {
            cms.create(&PostParams::default(), &cm(n)).await.unwrap();
        }
    }
    let all: Api<ConfigMap> = Api::all(client);
    let pick = |sel: &'static str| {
        let all = all.clone();
        async move {
            all.list(&ListParams::default().fields(sel))
                .await
                .unwrap()
                .items
                .iter()
                .map(|c| format!("{}/{}", c.namespace().unwrap(), c.name_any()))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        pick("metadata.name=a").await,
        ["default/a", "kube-system/a"]
    );
    assert_eq!(
        pick("metadata.name==a,metadata.namespace=kube-system").await,
        ["kube-system/a"]
    );
    assert_eq!(
        pick("metadata.namespace!=default").await,
        ["kube-system/a", "kube-system/b"]
    );
}

#[tokio::test]
async fn built_ins_select_on_their_own_fields() {
    let server = ApiServer::new();
    let client = server.client();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    for (name, type_) in [("tls", "kubernetes.io/tls"), ("plain", "Opaque")] {
        let s: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": type_,
            "data": if type_ == "Opaque" { json!({}) } else { json!({"tls.crt": "", "tls.key": ""}) },
        }))
        .unwrap();
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    let tls = secrets
        .list(&ListParams::default().fields("type=kubernetes.io/tls"))
        .await
        .unwrap();
    assert_eq!(names(&tls), ["tls"]);
    let pods: Api<Pod> = Api::namespaced(client, "default");
    for (name, node) in [("on-a", Some("node-a")), ("pending", None)] {
        let mut spec = json!({"containers": [{"name": "c", "image": "nginx"}]});
        if let Some(node) = node {
            spec["nodeName"] = json!(node);
        }
        let p: Pod = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}),
        )
        .unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    let scheduled = pods
        .list(&ListParams::default().fields("spec.nodeName=node-a"))
        .await
        .unwrap();
    assert_eq!(names(&scheduled), ["on-a"]);
    let unscheduled = pods
        .list(&ListParams::default().fields("spec.nodeName="))
        .await
        .unwrap();
    assert_eq!(names(&unscheduled), ["pending"]);
}

#[tokio::test]
async fn a_field_the_kind_cannot_select_on_is_400_worded_as_that_kind_words_it() {
    let server = ApiServer::new();
    let client = server.client();
    gadgets(&client).await;
    let cases = [
        (
            "/api/v1/namespaces/default/configmaps",
            r#"field label "spec.foo" not supported for "ConfigMap""#,
        ),
        (
            "/apis/apps/v1/namespaces/default/deployments",
            r#""spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace""#,
        ),
        (
            "/api/v1/namespaces/default/pods",
            "field label not supported: spec.foo",
        ),
        (
            "/apis/example.com/v1/namespaces/default/gadgets",
            "field label not supported: spec.foo",
        ),
    ];
    for (path, message) in cases {
        let res = get(&client, &format!("{path}?fieldSelector=spec.foo%3Dbar")).await;
        let body = res.assert_status(400, "BadRequest");
        assert_eq!(body["message"], message, "{path}");
    }
}

#[tokio::test]
async fn a_continue_token_older_than_the_history_is_410_with_a_token_for_the_rest() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for n in ["a", "b", "c", "d"] {
        cms.create(&PostParams::default(), &cm(n)).await.unwrap();
    }
    let first = cms.list(&ListParams::default().limit(2)).await.unwrap();
    let token = first.metadata.continue_.unwrap();
    cms.create(&PostParams::default(), &cm("e")).await.unwrap();
    server.expire_history();
    let err = api_err(
        cms.list(&ListParams::default().limit(2).continue_token(&token))
            .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (410, "Expired"));
    assert!(
        err.message.starts_with(
            "The provided continue parameter is too old to display a consistent list result."
        ),
        "{}",
        err.message
    );
    let fresh = err
        .metadata
        .and_then(|m| m.continue_)
        .expect("a fresh continue token");
    assert_ne!(fresh, token);
    // The fresh token continues after the last item returned, at the latest state.
    let rest = cms
        .list(&ListParams::default().limit(10).continue_token(&fresh))
        .await
        .unwrap();
    assert_eq!(names(&rest), ["c", "d", "e"]);
}

#[tokio::test]
async fn field_selector_values_unescape_commas_equals_and_backslashes() {
    let server = ApiServer::new();
    let secrets: Api<Secret> = Api::namespaced(server.client(), "default");
    for (name, type_) in [("odd", r"example.com/a,b=c\d"), ("plain", "Opaque")] {
        let s: Secret = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": type_})).unwrap();
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    let found = secrets
        .list(&ListParams::default().fields(r"type=example.com/a\,b\=c\\d"))
        .await
        .unwrap();
    assert_eq!(names(&found), ["odd"]);
    let others = secrets
        .list(&ListParams::default().fields(r"type!=example.com/a\,b\=c\\d,metadata.name!=nope"))
        .await
        .unwrap();
    assert_eq!(names(&others), ["plain"]);
}
