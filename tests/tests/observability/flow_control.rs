//! The client's flow control against the test API server, through the same tower stack a real
//! client gets: the token bucket's minimum time, bounded retries honouring `Retry-After`, and
//! the `rest_client_*` series.

use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use tokio::time::Instant;
use windlass::metrics::Metrics;
use windlass::testing::{ApiServer, FaultRule, Verb};

use super::scrape::Scrape;

const HOST: &str = "in-process";

fn client(server: &ApiServer, config: windlass::client::Config) -> kube::Client {
    config
        .build_with(server.client_named("operator").client_builder(), HOST)
        .expect("a valid configuration")
}

async fn list(api: &Api<ConfigMap>) -> Result<(), kube::Error> {
    api.list(&ListParams::default()).await.map(|_| ())
}

#[tokio::test(start_paused = true)]
async fn fifty_requests_at_ten_per_second_take_at_least_what_the_bucket_allows() {
    let server = ApiServer::new();
    let metrics = Metrics::new();
    let api: Api<ConfigMap> = Api::namespaced(
        client(
            &server,
            windlass::client::Config::default()
                .qps(10.0)
                .metrics(metrics.clone()),
        ),
        "default",
    );

    let start = Instant::now();
    let results = join_all((0..50).map(|_| list(&api))).await;
    let took = start.elapsed();
    assert!(results.iter().all(Result::is_ok));
    // The default burst of 30 goes at once; the other 20 need a token each, one per 100 ms.
    let minimum = Duration::from_millis(100) * (50 - 30);
    assert!(
        took >= minimum,
        "50 requests took {took:?}, less than {minimum:?}"
    );
    assert_eq!(server.requests().len(), 50);

    let s = Scrape::parse(&metrics.encode());
    let get = [("verb", "GET"), ("host", HOST)];
    assert_eq!(
        s.get("rest_client_rate_limiter_duration_seconds_count", &get),
        50.0
    );
    // The 20 waits were 100 ms, 200 ms ... 2 s: 21 s in all.
    let waited = s.get("rest_client_rate_limiter_duration_seconds_sum", &get);
    assert!((waited - 21.0).abs() < 1e-6, "waited {waited} s in all");
    assert_eq!(
        s.get(
            "rest_client_requests_total",
            &[("code", "200"), ("method", "GET"), ("host", HOST)]
        ),
        50.0
    );
    assert_eq!(
        s.get("rest_client_request_duration_seconds_count", &get),
        50.0
    );
    let bounds: Vec<f64> = s
        .buckets("rest_client_request_duration_seconds", &get)
        .iter()
        .map(|b| b.0)
        .collect();
    assert_eq!(
        bounds,
        [
            0.005,
            0.025,
            0.1,
            0.25,
            0.5,
            1.0,
            2.0,
            4.0,
            8.0,
            15.0,
            30.0,
            60.0,
            f64::INFINITY
        ],
        "client-go's buckets"
    );
}

#[tokio::test(start_paused = true)]
async fn one_request_per_token_when_sent_one_after_another() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(
        client(
            &server,
            windlass::client::Config::default().qps(10.0).burst(1),
        ),
        "default",
    );
    let start = Instant::now();
    for _ in 0..50 {
        list(&api).await.unwrap();
    }
    let minimum = Duration::from_millis(100) * 49;
    assert!(start.elapsed() >= minimum, "took {:?}", start.elapsed());
}

#[tokio::test(start_paused = true)]
async fn an_exempt_client_never_waits() {
    let server = ApiServer::new();
    let metrics = Metrics::new();
    let api: Api<ConfigMap> = Api::namespaced(
        client(
            &server,
            windlass::client::Config::default()
                .qps(1.0)
                .burst(1)
                .exempt(true)
                .metrics(metrics.clone()),
        ),
        "default",
    );
    let start = Instant::now();
    let results = join_all((0..50).map(|_| list(&api))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(start.elapsed(), Duration::ZERO);
    let s = Scrape::parse(&metrics.encode());
    // Still counted, never throttled.
    assert_eq!(
        s.get(
            "rest_client_requests_total",
            &[("code", "200"), ("method", "GET"), ("host", HOST)]
        ),
        50.0
    );
    assert!(
        s.series("rest_client_rate_limiter_duration_seconds_count")
            .is_empty()
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_is_retried_after_what_retry_after_says() {
    let server = ApiServer::new();
    let metrics = Metrics::new();
    server.faults().fail(
        FaultRule::status(429)
            .verb(Verb::List)
            .times(2)
            .retry_after(Duration::from_secs(3)),
    );
    let api: Api<ConfigMap> = Api::namespaced(
        client(
            &server,
            windlass::client::Config::default().metrics(metrics.clone()),
        ),
        "default",
    );
    let start = Instant::now();
    list(&api).await.expect("the third attempt succeeds");
    assert!(start.elapsed() >= Duration::from_secs(6));
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 200]);

    let s = Scrape::parse(&metrics.encode());
    let code = |c: &'static str| [("code", c), ("method", "GET"), ("host", HOST)];
    assert_eq!(s.get("rest_client_requests_total", &code("429")), 2.0);
    assert_eq!(s.get("rest_client_requests_total", &code("200")), 1.0);
    assert_eq!(
        s.get(
            "rest_client_request_retries_total",
            &[("code", "429"), ("verb", "GET"), ("host", HOST)]
        ),
        2.0
    );
}

#[tokio::test(start_paused = true)]
async fn retries_are_bounded_and_the_last_429_reaches_the_caller() {
    let server = ApiServer::new();
    server.faults().fail(
        FaultRule::status(429)
            .verb(Verb::List)
            .times(100)
            .retry_after(Duration::from_secs(1)),
    );
    let api: Api<ConfigMap> = Api::namespaced(
        client(&server, windlass::client::Config::default().max_retries(3)),
        "default",
    );
    let err = list(&api).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 429),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 4, "one attempt and three retries");
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_limit_is_not_waited_for() {
    let server = ApiServer::new();
    server.faults().fail(
        FaultRule::status(429)
            .verb(Verb::List)
            .retry_after(Duration::from_secs(600)),
    );
    let api: Api<ConfigMap> = Api::namespaced(
        client(
            &server,
            windlass::client::Config::default().max_retry_after(Duration::from_secs(60)),
        ),
        "default",
    );
    let start = Instant::now();
    let err = list(&api).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 429));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_503_without_retry_after_is_not_retried_by_the_client() {
    let server = ApiServer::new();
    server
        .faults()
        .fail(FaultRule::status(503).verb(Verb::List));
    let api: Api<ConfigMap> = Api::namespaced(
        client(&server, windlass::client::Config::default()),
        "default",
    );
    let err = list(&api).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 503));
    assert_eq!(server.requests().len(), 1);
}
