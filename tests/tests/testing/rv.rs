//! resourceVersion semantics: one global counter, get and list at a resourceVersion, exact
//! snapshots, the ListOptions rules, and resourceVersions from the future or of the wrong shape.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{
    Api, DeleteParams, GetParams, ListParams, Patch, PatchParams, PostParams, VersionMatch,
};
use serde_json::json;
use windlass::testing::ApiServer;

use super::support::*;

fn names(list: &kube::core::ObjectList<ConfigMap>) -> Vec<String> {
    list.items.iter().map(|c| c.name_any()).collect()
}

#[tokio::test]
async fn resource_versions_come_from_one_counter_shared_by_all_kinds() {
    let server = ApiServer::new();
    let client = server.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let deploys: Api<Deployment> = Api::namespaced(client, "default");
    let a = rv(cms
        .create(&PostParams::default(), &cm("a"))
        .await
        .unwrap()
        .metadata
        .resource_version
        .as_ref());
    let d = rv(deploys
        .create(&PostParams::default(), &deployment("d"))
        .await
        .unwrap()
        .metadata
        .resource_version
        .as_ref());
    let b = rv(cms
        .create(&PostParams::default(), &cm("b"))
        .await
        .unwrap()
        .metadata
        .resource_version
        .as_ref());
    assert!(a < d && d < b, "{a} < {d} < {b}");
    // A list reports the store's revision, which moves with writes to other kinds too.
    deploys
        .patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    let list = cms.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.metadata.resource_version, Some(rv_of(&server)));
    assert!(rv(list.metadata.resource_version.as_ref()) > b);
}

#[tokio::test]
async fn get_at_a_past_resource_version_answers_the_latest_object() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let first = cms.create(&PostParams::default(), &cm("x")).await.unwrap();
    cms.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .unwrap();
    let old = first.resource_version().unwrap();
    for params in [GetParams::at(&old), GetParams::any(), GetParams::default()] {
        let got = cms.get_with("x", &params).await.unwrap();
        assert_eq!(got.data.unwrap()["a"], "2", "{params:?}");
    }
}

#[tokio::test]
async fn list_without_a_limit_answers_the_latest_state_for_any_resource_version() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let first = cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    cms.create(&PostParams::default(), &cm("b")).await.unwrap();
    let old = first.resource_version().unwrap();
    for (rv, m) in [
        (None, None),
        (Some("0"), None),
        (Some(old.as_str()), None),
        (Some(old.as_str()), Some(VersionMatch::NotOlderThan)),
    ] {
        let lp = ListParams {
            resource_version: rv.map(String::from),
            version_match: m.clone(),
            ..Default::default()
        };
        let list = cms.list(&lp).await.unwrap();
        assert_eq!(names(&list), ["a", "b"], "rv {rv:?} {m:?}");
        assert_eq!(list.metadata.resource_version, Some(rv_of(&server)));
    }
}

/// Creates a, b, c, records the revision, then changes everything: returns the revision.
async fn history(cms: &Api<ConfigMap>) -> String {
    for n in ["a", "b", "c"] {
        cms.create(&PostParams::default(), &cm(n)).await.unwrap();
    }
    let at = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "changed"}})),
    )
    .await
    .unwrap();
    cms.delete("b", &DeleteParams::default()).await.unwrap();
    cms.create(&PostParams::default(), &cm("d")).await.unwrap();
    at
}

#[tokio::test]
async fn an_exact_list_answers_the_snapshot_at_that_resource_version() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let at = history(&cms).await;
    let list = cms
        .list(&ListParams::default().at(&at).matching(VersionMatch::Exact))
        .await
        .unwrap();
    assert_eq!(names(&list), ["a", "b", "c"]);
    assert_eq!(list.items[0].data.as_ref().unwrap()["a"], "1");
    assert_eq!(list.metadata.resource_version, Some(at));
}

#[tokio::test]
async fn a_limited_list_at_a_resource_version_answers_that_exact_snapshot() {
    let server = ApiServer::new();
    let client = server.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let at = history(&cms).await;
    // The legacy rule: limit plus resourceVersion=N without resourceVersionMatch is Exact.
    let res = get(
        &client,
        &format!("/api/v1/namespaces/default/configmaps?limit=10&resourceVersion={at}"),
    )
    .await;
    let body = res.json();
    let found: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["a", "b", "c"]);
    assert_eq!(body["metadata"]["resourceVersion"], at);
}

#[tokio::test]
async fn an_exact_list_older_than_the_kept_history_is_410_expired() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let at = history(&cms).await;
    server.expire_history();
    let err = api_err(
        cms.list(&ListParams::default().at(&at).matching(VersionMatch::Exact))
            .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (410, "Expired"));
    assert_eq!(
        err.message,
        "The resourceVersion for the provided list is too old."
    );
}

#[tokio::test]
async fn resource_version_match_rules_are_422_list_options() {
    let server = ApiServer::new();
    let client = server.client();
    let cases = [
        (
            "resourceVersionMatch=Exact",
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
        ),
        (
            "resourceVersionMatch=Exact&resourceVersion=0",
            "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
        ),
        (
            "resourceVersionMatch=Newest&resourceVersion=5",
            "resourceVersionMatch: Unsupported value: \"Newest\": supported values: \"Exact\", \"NotOlderThan\", \"\"",
        ),
        (
            "resourceVersionMatch=NotOlderThan&continue=abc",
            "[resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided, resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided]",
        ),
        (
            "sendInitialEvents=true",
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
        ),
    ];
    for (query, detail) in cases {
        let res = get(
            &client,
            &format!("/api/v1/namespaces/default/configmaps?{query}"),
        )
        .await;
        let body = res.assert_status(422, "Invalid");
        assert_eq!(
            body["message"],
            format!(r#"ListOptions.meta.k8s.io "" is invalid: {detail}"#),
            "{query}"
        );
        assert_eq!(body["details"]["kind"], "ListOptions", "{query}");
        assert_eq!(body["details"]["group"], "meta.k8s.io", "{query}");
    }
}

#[tokio::test]
async fn a_continue_token_with_a_resource_version_is_400() {
    let server = ApiServer::new();
    let client = server.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for n in ["a", "b"] {
        cms.create(&PostParams::default(), &cm(n)).await.unwrap();
    }
    let token = cms
        .list(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .continue_
        .unwrap();
    let res = get(
        &client,
        &format!(
            "/api/v1/namespaces/default/configmaps?limit=1&continue={token}&resourceVersion=3"
        ),
    )
    .await;
    let body = res.assert_status(400, "BadRequest");
    assert_eq!(
        body["message"],
        "specifying resource version is not allowed when using continue"
    );
}

#[tokio::test(start_paused = true)]
async fn get_at_a_future_resource_version_answers_504_after_waiting() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    cms.create(&PostParams::default(), &cm("x")).await.unwrap();
    let current = server.resource_version();
    let future = (current + 100).to_string();
    let started = tokio::time::Instant::now();
    let err = api_err(cms.get_with("x", &GetParams::at(&future)).await);
    assert_eq!((err.code, err.reason.as_str()), (504, "Timeout"));
    assert_eq!(
        err.message,
        format!("Timeout: Too large resource version: {future}, current: {current}")
    );
    let details = err.details.unwrap();
    assert_eq!(details.causes[0].reason, "ResourceVersionTooLarge");
    assert_eq!(details.retry_after_seconds, 1);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(3),
        "the server waits before giving up"
    );
}

#[tokio::test(start_paused = true)]
async fn list_at_a_future_resource_version_answers_504() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let future = (server.resource_version() + 5).to_string();
    let err = api_err(cms.list(&ListParams::default().at(&future)).await);
    assert_eq!((err.code, err.reason.as_str()), (504, "Timeout"));
    assert!(
        err.message.starts_with(&format!(
            "Timeout: Too large resource version: {future}, current: "
        )),
        "{}",
        err.message
    );
}

#[tokio::test(start_paused = true)]
async fn a_get_at_a_future_resource_version_succeeds_when_the_store_catches_up() {
    let server = ApiServer::new();
    let client = server.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("x")).await.unwrap();
    let next = (server.resource_version() + 1).to_string();
    let waiting = tokio::spawn({
        let cms = cms.clone();
        async move { cms.get_with("x", &GetParams::at(&next)).await }
    });
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    cms.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .unwrap();
    let got = waiting.await.unwrap().unwrap();
    assert_eq!(got.data.unwrap()["a"], "2");
}

/// The real server parses resourceVersion deep in storage and lets the error through
/// unconverted: a 500 without a reason (kubernetes/kubernetes#139485, unfixed through 1.37).
#[tokio::test]
async fn a_resource_version_that_is_not_an_unsigned_integer_is_a_500_naming_the_parse_error() {
    let server = ApiServer::new();
    let client = server.client();
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &cm("x"))
        .await
        .unwrap();
    for path in [
        "/api/v1/namespaces/default/configmaps",
        "/api/v1/namespaces/default/configmaps/x",
        "/api/v1/namespaces/default/configmaps?watch=true",
    ] {
        for (bad, why) in [
            ("abc", "invalid syntax"),
            ("-1", "invalid syntax"),
            ("1.5", "invalid syntax"),
            ("99999999999999999999", "value out of range"),
        ] {
            let sep = if path.contains('?') { '&' } else { '?' };
            let res = get(&client, &format!("{path}{sep}resourceVersion={bad}")).await;
            assert_eq!(res.status, 500, "{path} {bad}: {}", res.text());
            let body = res.json();
            assert_eq!(body["kind"], "Status");
            assert_eq!(body["code"], 500);
            assert!(body.get("reason").is_none(), "{body}");
            assert_eq!(
                body["message"],
                format!(
                    r#"resourceVersion: Invalid value: "{bad}": strconv.ParseUint: parsing "{bad}": {why}"#
                ),
                "{path}"
            );
        }
    }
}
