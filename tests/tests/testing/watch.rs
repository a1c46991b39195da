//! Watches: how they start, event order and content, selectors, bookmarks, expiry, timeouts,
//! no-op writes, single-object watches and streaming lists.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use windlass::testing::{ApiServer, Config};

use super::support::*;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

async fn create(api: &Api<ConfigMap>, name: &str) -> ConfigMap {
    api.create(&PostParams::default(), &cm(name)).await.unwrap()
}

async fn set(api: &Api<ConfigMap>, name: &str, value: &str) -> ConfigMap {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": value}})),
    )
    .await
    .unwrap()
}

fn rv_in(event: &Value) -> u64 {
    event["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_watch_from_resource_version_0_starts_with_an_added_event_per_object() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create(&api, "a").await;
    create(&api, "b").await;
    let mut w = RawWatch::start(&client, &format!("{CMS}?watch=true&resourceVersion=0")).await;
    assert_eq!(w.next_named().await, ("ADDED".into(), "a".into()));
    assert_eq!(w.next_named().await, ("ADDED".into(), "b".into()));
    create(&api, "c").await;
    assert_eq!(w.next_named().await, ("ADDED".into(), "c".into()));
    set(&api, "a", "2").await;
    assert_eq!(w.next_named().await, ("MODIFIED".into(), "a".into()));
}

#[tokio::test]
async fn a_watch_without_resource_version_that_allows_bookmarks_ends_its_initial_events_with_a_bookmark()
 {
    // Since the WatchList gate is on, the apiserver defaults such a watch to a streaming list.
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create(&api, "a").await;
    let mut w = RawWatch::start(
        &client,
        &format!("{CMS}?watch=true&allowWatchBookmarks=true"),
    )
    .await;
    assert_eq!(w.next_named().await, ("ADDED".into(), "a".into()));
    let bookmark = w.next().await;
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(
        bookmark["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(
        bookmark["object"]["metadata"]["resourceVersion"],
        rv_of(&server)
    );
}

#[tokio::test]
async fn with_the_watch_list_gate_off_a_watch_from_resource_version_0_sends_no_initial_bookmark() {
    let server = ApiServer::with_config(Config::default().watch_list(false));
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create(&api, "a").await;
    let mut w = RawWatch::start(
        &client,
        &format!("{CMS}?watch=true&allowWatchBookmarks=true&resourceVersion=0"),
    )
    .await;
    assert_eq!(w.next_named().await, ("ADDED".into(), "a".into()));
    create(&api, "b").await;
    assert_eq!(w.next_named().await, ("ADDED".into(), "b".into()));
}

#[tokio::test]
async fn a_watch_from_resource_version_n_sends_only_later_changes() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create(&api, "a").await;
    let b = create(&api, "b").await;
    set(&api, "a", "2").await;
    let from = b.metadata.resource_version.unwrap();
    let mut w = RawWatch::start(&client, &format!("{CMS}?watch=true&resourceVersion={from}")).await;
    let e = w.next().await;
    assert_eq!(
        (event_type(&e), e["object"]["data"]["a"].as_str()),
        ("MODIFIED".to_string(), Some("2"))
    );
    w.expect_quiet(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn a_watch_answers_200_json_before_any_event() {
    let server = ApiServer::new();
    let client = server.client();
    let from = rv_of(&server);
    let w = RawWatch::start(&client, &format!("{CMS}?watch=true&resourceVersion={from}")).await;
    assert_eq!(w.status, 200);
    assert_eq!(w.headers.get("content-type").unwrap(), "application/json");
}

#[tokio::test]
async fn watch_events_arrive_in_strict_resource_version_order() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let other: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let from = rv_of(&server);
    let mut w = RawWatch::start(
        &client,
        &format!("/api/v1/configmaps?watch=true&resourceVersion={from}"),
    )
    .await;
    let mut written = Vec::new();
    for i in 0..5 {
        for (a, name) in [(&api, "x"), (&other, "y")] {
            let obj = if i == 0 {
                create(a, name).await
            } else {
                set(a, name, &format!("v{i}")).await
            };
            written.push(rv(obj.metadata.resource_version.as_ref()));
        }
    }
    let deleted = api.delete("x", &DeleteParams::default()).await.unwrap();
    assert!(deleted.is_right());
    let mut seen = Vec::new();
    for _ in 0..written.len() + 1 {
        seen.push(rv_in(&w.next().await));
    }
    assert!(
        seen.windows(2).all(|p| p[0] < p[1]),
        "strictly increasing: {seen:?}"
    );
    assert_eq!(&seen[..written.len()], &written[..]);
}

#[tokio::test]
async fn a_deleted_event_carries_the_last_state_stamped_with_the_deletion_resource_version() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create(&api, "x").await;
    let last = set(&api, "x", "last").await;
    let from = rv_of(&server);
    let mut w = RawWatch::start(&client, &format!("{CMS}?watch=true&resourceVersion={from}")).await;
    api.delete("x", &DeleteParams::default()).await.unwrap();
    let e = w.next().await;
    assert_eq!(event_type(&e), "DELETED");
    assert_eq!(e["object"]["data"]["a"], "last");
    assert_eq!(
        e["object"]["metadata"]["uid"].as_str(),
        last.metadata.uid.as_deref()
    );
    let deletion_rv = rv_in(&e);
    assert!(deletion_rv > rv(last.metadata.resource_version.as_ref()));
    assert_eq!(
        deletion_rv,
        server.resource_version(),
        "the deletion's own revision"
    );
}

#[tokio::test]
async fn an_object_that_starts_matching_a_selector_is_added_and_one_that_stops_is_deleted() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create(&api, "x").await;
    let from = rv_of(&server);
    let mut w = RawWatch::start(
        &client,
        &format!("{CMS}?watch=true&resourceVersion={from}&labelSelector=env%3Dprod"),
    )
    .await;
    let label = |v: Option<&str>| Patch::Merge(json!({"metadata": {"labels": {"env": v}}}));
    api.patch("x", &PatchParams::default(), &label(Some("prod")))
        .await
        .unwrap();
    assert_eq!(w.next_named().await, ("ADDED".into(), "x".into()));
    set(&api, "x", "2").await;
    assert_eq!(w.next_named().await, ("MODIFIED".into(), "x".into()));
    let unlabeled = api
        .patch("x", &PatchParams::default(), &label(None))
        .await
        .unwrap();
    let e = w.next().await;
    assert_eq!(event_type(&e), "DELETED");
    assert_eq!(
        e["object"]["metadata"]["labels"]["env"], "prod",
        "the content from before the change"
    );
    assert_eq!(e["object"]["data"]["a"], "2");
    assert_eq!(
        Some(rv_in(&e)),
        unlabeled
            .metadata
            .resource_version
            .map(|r| r.parse().unwrap()),
        "the change's revision"
    );
    set(&api, "x", "3").await;
    w.expect_quiet(Duration::from_millis(50)).await;
}

#[tokio::test(start_paused = true)]
async fn bookmarks_are_sent_only_to_watches_that_allow_them() {
    let server = ApiServer::new();
    server.set_bookmark_interval(Duration::from_secs(1));
    let client = server.client();
    let from = rv_of(&server);
    let mut with = RawWatch::start(
        &client,
        &format!("{CMS}?watch=true&resourceVersion={from}&allowWatchBookmarks=true"),
    )
    .await;
    let mut without =
        RawWatch::start(&client, &format!("{CMS}?watch=true&resourceVersion={from}")).await;
    let bookmark = with.next().await;
    assert_eq!(bookmark["type"], "BOOKMARK");
    without.expect_quiet(Duration::from_secs(10)).await;
}

#[tokio::test(start_paused = true)]
async fn a_bookmark_carries_api_version_kind_and_only_the_resource_version() {
    let server = ApiServer::new();
    server.set_bookmark_interval(Duration::from_secs(1));
    let client = server.client();
    let from = rv_of(&server);
    let mut w = RawWatch::start(
        &client,
        &format!(
            "/apis/apps/v1/deployments?watch=true&resourceVersion={from}&allowWatchBookmarks=true"
        ),
    )
    .await;
    let bookmark = w.next().await;
    assert_eq!(
        bookmark,
        json!({"type": "BOOKMARK", "object": {
            "kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"resourceVersion": from}
        }})
    );
}

#[tokio::test(start_paused = true)]
async fn bookmarks_come_periodically_with_the_latest_revision() {
    let server = ApiServer::new();
    server.set_bookmark_interval(Duration::from_secs(5));
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let from = rv_of(&server);
    let mut w = RawWatch::start(
        &client,
        &format!("{CMS}?watch=true&resourceVersion={from}&allowWatchBookmarks=true"),
    )
    .await;
    let started = tokio::time::Instant::now();
    let first = w.next().await;
    assert_eq!(
        (first["type"].as_str(), rv_in(&first)),
        (Some("BOOKMARK"), from.parse().unwrap())
    );
    // A write this watch does not see (another namespace) still moves the bookmarks on.
    create(&api, "elsewhere").await;
    let second = w.next().await;
    assert_eq!(
        (second["type"].as_str(), rv_in(&second)),
        (Some("BOOKMARK"), server.resource_version())
    );
    assert_eq!(started.elapsed(), Duration::from_secs(10), "two periods");
}

#[tokio::test(start_paused = true)]
async fn a_watch_gets_a_last_bookmark_shortly_before_its_timeout_then_ends() {
    let server = ApiServer::new();
    let client = server.client();
    let from = rv_of(&server);
    let started = tokio::time::Instant::now();
    let mut w = RawWatch::start(
        &client,
        &format!(
            "{CMS}?watch=true&resourceVersion={from}&allowWatchBookmarks=true&timeoutSeconds=30"
        ),
    )
    .await;
    assert_eq!(w.next().await["type"], "BOOKMARK");
    assert_eq!(started.elapsed(), Duration::from_secs(28));
    w.expect_end().await;
    assert_eq!(started.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn timeout_seconds_ends_the_stream_cleanly() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let from = rv_of(&server);
    let started = tokio::time::Instant::now();
    let mut w = RawWatch::start(
        &client,
        &format!("{CMS}?watch=true&resourceVersion={from}&timeoutSeconds=5"),
    )
    .await;
    create(&api, "x").await;
    assert_eq!(w.next_named().await, ("ADDED".into(), "x".into()));
    w.expect_end().await;
    assert_eq!(started.elapsed(), Duration::from_secs(5));
}

#[tokio::test]
async fn a_too_old_resource_version_answers_200_then_one_expired_error_event() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let old = rv(create(&api, "x").await.metadata.resource_version.as_ref());
    set(&api, "x", "2").await;
    server.expire_history();
    let compacted = server.resource_version();
    let mut w = RawWatch::start(&client, &format!("{CMS}?watch=true&resourceVersion={old}")).await;
    assert_eq!(w.status, 200);
    let e = w.next().await;
    assert_eq!(
        e,
        json!({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {old} ({compacted})"),
            "reason": "Expired", "code": 410,
        }})
    );
    w.expect_end().await;
}

#[tokio::test]
async fn a_watch_that_falls_behind_the_kept_history_gets_the_expired_error() {
    let server = ApiServer::with_config(Config::default().history_limit(3));
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let old = rv(create(&api, "x").await.metadata.resource_version.as_ref());
    for i in 0..5 {
        set(&api, "x", &i.to_string()).await;
    }
    let mut w = RawWatch::start(&client, &format!("{CMS}?watch=true&resourceVersion={old}")).await;
    let e = w.next().await;
    assert_eq!(e["type"], "ERROR");
    assert_eq!(e["object"]["code"], 410);
    let oldest = server.resource_version() - 3;
    assert_eq!(
        e["object"]["message"],
        format!("too old resource version: {old} ({oldest})")
    );
}

#[tokio::test]
async fn a_write_that_changes_nothing_emits_no_event_and_keeps_the_resource_version() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = create(&api, "x").await;
    let before = server.resource_version();
    let mut w = RawWatch::start(
        &client,
        &format!("{CMS}?watch=true&resourceVersion={before}"),
    )
    .await;
    let replaced = api
        .replace("x", &PostParams::default(), &created)
        .await
        .unwrap();
    let patched = api
        .patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(
        patched.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(server.resource_version(), before);
    w.expect_quiet(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn a_field_selector_on_metadata_name_watches_one_object() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create(&api, "a").await;
    create(&api, "b").await;
    let mut w = RawWatch::start(
        &client,
        &format!("{CMS}?watch=true&fieldSelector=metadata.name%3Db&resourceVersion=0"),
    )
    .await;
    assert_eq!(w.next_named().await, ("ADDED".into(), "b".into()));
    set(&api, "a", "2").await;
    set(&api, "b", "2").await;
    assert_eq!(w.next_named().await, ("MODIFIED".into(), "b".into()));
    api.delete("a", &DeleteParams::default()).await.unwrap();
    api.delete("b", &DeleteParams::default()).await.unwrap();
    assert_eq!(w.next_named().await, ("DELETED".into(), "b".into()));
}

#[tokio::test]
async fn a_namespaced_watch_sees_only_its_namespace() {
    let server = ApiServer::new();
    let client = server.client();
    let from = rv_of(&server);
    let mut w = RawWatch::start(&client, &format!("{CMS}?watch=true&resourceVersion={from}")).await;
    create(&Api::namespaced(client.clone(), "kube-system"), "other").await;
    create(&Api::namespaced(client.clone(), "default"), "mine").await;
    assert_eq!(w.next_named().await, ("ADDED".into(), "mine".into()));
}

#[tokio::test]
async fn a_streaming_list_sends_added_events_then_an_initial_events_end_bookmark_then_changes() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create(&api, "a").await;
    create(&api, "b").await;
    let at = rv_of(&server);
    let mut w = RawWatch::start(
        &client,
        &format!("{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion=0"),
    )
    .await;
    assert_eq!(w.next_named().await, ("ADDED".into(), "a".into()));
    assert_eq!(w.next_named().await, ("ADDED".into(), "b".into()));
    assert_eq!(
        w.next().await,
        json!({"type": "BOOKMARK", "object": {
            "kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"resourceVersion": at, "annotations": {"k8s.io/initial-events-end": "true"}}
        }})
    );
    create(&api, "c").await;
    assert_eq!(w.next_named().await, ("ADDED".into(), "c".into()));
}

#[tokio::test]
async fn a_watch_with_send_initial_events_false_starts_from_its_resource_version() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create(&api, "a").await;
    let mut w = RawWatch::start(
        &client,
        &format!("{CMS}?watch=true&sendInitialEvents=false&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion=0"),
    )
    .await;
    create(&api, "b").await;
    assert_eq!(w.next_named().await, ("ADDED".into(), "b".into()));
}

#[tokio::test]
async fn send_initial_events_needs_resource_version_match_not_older_than() {
    let server = ApiServer::new();
    let client = server.client();
    let cases = [
        (
            "sendInitialEvents=true&allowWatchBookmarks=true",
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ),
        (
            "resourceVersionMatch=NotOlderThan&resourceVersion=5",
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ),
        (
            "sendInitialEvents=true&resourceVersionMatch=Exact",
            "[resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan, resourceVersionMatch: Unsupported value: \"Exact\": supported values: \"NotOlderThan\"]",
        ),
    ];
    for (query, detail) in cases {
        let res = get(&client, &format!("{CMS}?watch=true&{query}")).await;
        let body = res.assert_status(422, "Invalid");
        assert_eq!(
            body["message"],
            format!(r#"ListOptions.meta.k8s.io "" is invalid: {detail}"#),
            "{query}"
        );
        assert_eq!(body["details"]["kind"], "ListOptions");
    }
}

#[tokio::test]
async fn with_the_watch_list_gate_off_streaming_lists_are_422_and_kubes_streaming_watcher_keeps_failing()
 {
    let server = ApiServer::new();
    server.set_watch_list(false);
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create(&api, "a").await;
    let res = get(
        &client,
        &format!("{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion=0"),
    )
    .await;
    let body = res.assert_status(422, "Invalid");
    assert_eq!(
        body["message"],
        r#"ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"#
    );
    let streaming = watcher(api.clone(), watcher::Config::default().streaming_lists());
    futures::pin_mut!(streaming);
    for _ in 0..3 {
        match next_item(&mut streaming).await {
            Err(watcher::Error::WatchStartFailed(kube::Error::Api(s))) => assert_eq!(s.code, 422),
            other => panic!("expected the streaming watch to fail to start, got {other:?}"),
        }
    }
    let listing = watcher(api, watcher::Config::default()).applied_objects();
    futures::pin_mut!(listing);
    let first = next_item(&mut listing).await.unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("a"));
}

#[tokio::test]
async fn a_list_answers_resource_version_a_watch_can_resume_from() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create(&api, "a").await;
    let list_rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    create(&api, "b").await;
    let mut w = RawWatch::start(
        &client,
        &format!("{CMS}?watch=true&resourceVersion={list_rv}"),
    )
    .await;
    assert_eq!(w.next_named().await, ("ADDED".into(), "b".into()));
}
