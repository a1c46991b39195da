//! Fault injection: status rules, latency, per-client and server-wide faults, disconnection,
//! breaking watch streams, and the request log.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use windlass::testing::{ApiServer, FaultRule, Verb};

use super::support::*;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn a_fault_rule_fails_matching_requests_the_given_number_of_times() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &cm("x")).await.unwrap();
    server.faults().fail(
        FaultRule::status(503)
            .verb(Verb::List)
            .resource("configmaps")
            .times(2),
    );
    assert!(
        api.get("x").await.is_ok(),
        "a get does not match a list rule"
    );
    for _ in 0..2 {
        let err = api_err(api.list(&ListParams::default()).await);
        assert_eq!((err.code, err.reason.as_str()), (503, "ServiceUnavailable"));
    }
    assert!(
        api.list(&ListParams::default()).await.is_ok(),
        "the rule is spent"
    );
}

#[tokio::test]
async fn fault_statuses_carry_the_reason_clients_expect() {
    let server = ApiServer::new();
    let client = server.client();
    for (code, reason) in [
        (409, "Conflict"),
        (410, "Expired"),
        (429, "TooManyRequests"),
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
    ] {
        server
            .faults()
            .fail(FaultRule::status(code).verb(Verb::Get));
        let res = get(&client, &format!("{CMS}/x")).await;
        res.assert_status(code, reason);
    }
}

#[tokio::test]
async fn a_429_fault_with_retry_after_sends_the_header_and_the_detail() {
    let server = ApiServer::new();
    let client = server.client();
    server
        .faults()
        .fail(FaultRule::status(429).retry_after(Duration::from_millis(1500)));
    let res = get(&client, CMS).await;
    let body = res.assert_status(429, "TooManyRequests");
    assert_eq!(res.header("retry-after"), Some("2"));
    assert_eq!(body["details"]["retryAfterSeconds"], 2);
}

#[tokio::test]
async fn a_410_fault_on_a_watch_answers_an_in_stream_expired_error() {
    let server = ApiServer::new();
    let client = server.client();
    server.faults().fail(
        FaultRule::status(410)
            .verb(Verb::Watch)
            .resource("configmaps"),
    );
    let mut w = RawWatch::start(&client, &format!("{CMS}?watch=true&resourceVersion=1")).await;
    assert_eq!(w.status, 200);
    let e = w.next().await;
    assert_eq!(e["type"], "ERROR");
    assert_eq!(
        (e["object"]["code"].as_u64(), e["object"]["reason"].as_str()),
        (Some(410), Some("Expired"))
    );
    w.expect_end().await;
}

#[tokio::test(start_paused = true)]
async fn latency_delays_every_request() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    server.faults().set_latency(Some(Duration::from_secs(2)));
    let started = tokio::time::Instant::now();
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    server.faults().set_latency(None);
    let started = tokio::time::Instant::now();
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test]
async fn per_client_faults_affect_only_that_client() {
    let server = ApiServer::new();
    let a = server.client_named("a");
    let b = server.client_named("b");
    a.faults().fail(FaultRule::status(500).times(5));
    let api_a: Api<ConfigMap> = Api::namespaced(a.client(), "default");
    let api_b: Api<ConfigMap> = Api::namespaced(b.client(), "default");
    assert_eq!(api_err(api_a.list(&ListParams::default()).await).code, 500);
    assert!(api_b.list(&ListParams::default()).await.is_ok());
    server.faults().fail(FaultRule::status(503));
    assert_eq!(
        api_err(api_b.list(&ListParams::default()).await).code,
        503,
        "server-wide faults hit every client"
    );
}

#[tokio::test]
async fn a_disconnected_client_fails_at_the_transport_and_loses_its_watches_while_others_carry_on()
{
    let server = ApiServer::new();
    let cut = server.client_named("cut");
    let fine = server.client_named("fine");
    let api_cut: Api<ConfigMap> = Api::namespaced(cut.client(), "default");
    let from = rv_of(&server);
    let mut cut_watch = RawWatch::start(
        &cut.client(),
        &format!("{CMS}?watch=true&resourceVersion={from}"),
    )
    .await;
    let mut fine_watch = RawWatch::start(
        &fine.client(),
        &format!("{CMS}?watch=true&resourceVersion={from}"),
    )
    .await;
    cut.faults().disconnect();
    assert!(cut.faults().is_disconnected());
    match api_cut.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => panic!("a disconnected client gets no HTTP answer, got {s:?}"),
        Err(_) => {}
        Ok(_) => panic!("a disconnected client cannot list"),
    }
    cut_watch.expect_end().await;
    Api::<ConfigMap>::namespaced(fine.client(), "default")
        .create(&PostParams::default(), &cm("x"))
        .await
        .unwrap();
    assert_eq!(fine_watch.next_named().await, ("ADDED".into(), "x".into()));
    cut.faults().reconnect();
    assert_eq!(
        api_cut
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let dropped = server
        .requests()
        .into_iter()
        .filter(|r| r.client == "cut" && r.status == 0)
        .count();
    assert_eq!(dropped, 1, "the dropped request is logged with status 0");
}

#[tokio::test]
async fn close_watches_after_ends_each_stream_after_that_many_events() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for n in ["a", "b", "c"] {
        api.create(&PostParams::default(), &cm(n)).await.unwrap();
    }
    server.faults().close_watches_after(Some(2));
    let mut w = RawWatch::start(&client, &format!("{CMS}?watch=true&resourceVersion=0")).await;
    assert_eq!(w.next_named().await, ("ADDED".into(), "a".into()));
    assert_eq!(w.next_named().await, ("ADDED".into(), "b".into()));
    w.expect_end().await;
}

#[tokio::test(start_paused = true)]
async fn close_watches_every_ends_streams_after_the_period() {
    let server = ApiServer::new();
    let client = server.client();
    server
        .faults()
        .close_watches_every(Some(Duration::from_secs(10)));
    let from = rv_of(&server);
    let started = tokio::time::Instant::now();
    let mut w = RawWatch::start(&client, &format!("{CMS}?watch=true&resourceVersion={from}")).await;
    w.expect_end().await;
    assert_eq!(started.elapsed(), Duration::from_secs(10));
}

#[tokio::test]
async fn close_watches_ends_open_streams_now() {
    let server = ApiServer::new();
    let client = server.client();
    let from = rv_of(&server);
    let mut w = RawWatch::start(&client, &format!("{CMS}?watch=true&resourceVersion={from}")).await;
    server.faults().close_watches();
    w.expect_end().await;
}

#[tokio::test]
async fn the_request_log_records_clients_verbs_resources_and_statuses() {
    let server = ApiServer::new();
    server.clear_requests();
    let api: Api<ConfigMap> = Api::namespaced(server.client_named("operator").client(), "default");
    api.create(&PostParams::default(), &cm("x")).await.unwrap();
    let _ = api.get("missing").await;
    api.list(&ListParams::default().labels("a=b"))
        .await
        .unwrap();
    let log = server.requests();
    let seen: Vec<(&str, Option<Verb>, Option<&str>, u16)> = log
        .iter()
        .map(|r| (r.client.as_str(), r.verb, r.resource.as_deref(), r.status))
        .collect();
    assert_eq!(
        seen,
        [
            ("operator", Some(Verb::Create), Some("configmaps"), 201),
            ("operator", Some(Verb::Get), Some("configmaps"), 404),
            ("operator", Some(Verb::List), Some("configmaps"), 200),
        ]
    );
    assert_eq!(log[1].path, "/api/v1/namespaces/default/configmaps/missing");
    assert_eq!(log[2].query, "&labelSelector=a%3Db");
    server.clear_requests();
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn clearing_faults_removes_rules_latency_and_disconnection() {
    let server = ApiServer::new();
    let client = server.client_named("c");
    client.faults().fail(FaultRule::status(500).times(10));
    client.faults().disconnect();
    client.faults().clear();
    assert!(!client.faults().is_disconnected());
    let api: Api<ConfigMap> = Api::namespaced(client.client(), "default");
    assert!(api.list(&ListParams::default()).await.is_ok());
}
