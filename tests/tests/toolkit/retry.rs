//! retry_on_conflict with client-go's backoffs, against injected 409s, under a paused clock.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use tokio::time::Instant;
use windlass::apply::{
    DEFAULT_BACKOFF, DEFAULT_RETRY, Operation, create_or_update, retry_on_conflict,
};
use windlass::testing::{ApiServer, FaultRule, Verb};

use super::support::{configmap, requests};

/// Reads the ConfigMap, bumps its counter and writes it back with a PUT.
async fn bump(cms: &Api<ConfigMap>) -> Result<ConfigMap, kube::Error> {
    let mut cm = cms.get("counter").await?;
    let data = cm.data.get_or_insert_with(BTreeMap::new);
    let n: u32 = data.get("n").map_or(0, |n| n.parse().unwrap());
    data.insert("n".into(), (n + 1).to_string());
    cms.replace("counter", &PostParams::default(), &cm).await
}

async fn setup() -> (ApiServer, Api<ConfigMap>) {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    cms.create(&PostParams::default(), &configmap("counter", &[("n", "0")]))
        .await
        .unwrap();
    (server, cms)
}

fn conflicts(times: usize) -> FaultRule {
    FaultRule::status(409)
        .verb(Verb::Update)
        .resource("configmaps")
        .times(times)
}

/// `elapsed` is within `low_ms..=high_ms`, where `high_ms` allows for the jitter and for
/// the timer wheel rounding each sleep up to the next millisecond.
fn assert_between(elapsed: Duration, low_ms: u64, high_ms: u64) {
    assert!(
        elapsed >= Duration::from_millis(low_ms) && elapsed <= Duration::from_millis(high_ms),
        "took {elapsed:?}, expected {low_ms} ms to {high_ms} ms"
    );
}

#[tokio::test(start_paused = true)]
async fn default_retry_succeeds_after_four_conflicts_waiting_ten_milliseconds_each() {
    let (server, cms) = setup().await;
    server.faults().fail(conflicts(4));
    let start = Instant::now();
    let cm = retry_on_conflict(DEFAULT_RETRY, || bump(&cms))
        .await
        .unwrap();
    assert_between(start.elapsed(), 40, 44);
    assert_eq!(cm.data.unwrap()["n"], "1");
    let statuses: Vec<u16> = requests(&server, "configmaps", Verb::Update)
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [409, 409, 409, 409, 200]);
}

#[tokio::test(start_paused = true)]
async fn default_retry_gives_up_after_its_fifth_attempt_with_the_last_conflict() {
    let (server, cms) = setup().await;
    server.faults().fail(conflicts(5));
    let start = Instant::now();
    let err = retry_on_conflict(DEFAULT_RETRY, || bump(&cms))
        .await
        .unwrap_err();
    assert_between(start.elapsed(), 40, 44);
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err}"
    );
    assert_eq!(requests(&server, "configmaps", Verb::Update).len(), 5);
    assert_eq!(cms.get("counter").await.unwrap().data.unwrap()["n"], "0");
}

#[tokio::test(start_paused = true)]
async fn default_backoff_waits_five_times_longer_each_time_and_gives_up_after_four_attempts() {
    let (server, cms) = setup().await;
    server.faults().fail(conflicts(3));
    let start = Instant::now();
    retry_on_conflict(DEFAULT_BACKOFF, || bump(&cms))
        .await
        .unwrap();
    // 10 + 50 + 250 ms, each up to 10 % longer (and rounded up to the millisecond).
    assert_between(start.elapsed(), 310, 344);
    assert_eq!(requests(&server, "configmaps", Verb::Update).len(), 4);

    server.clear_requests();
    server.faults().fail(conflicts(4));
    let err = retry_on_conflict(DEFAULT_BACKOFF, || bump(&cms))
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409));
    assert_eq!(requests(&server, "configmaps", Verb::Update).len(), 4);
}

#[tokio::test(start_paused = true)]
async fn an_error_other_than_a_conflict_is_returned_at_once() {
    let (server, cms) = setup().await;
    server
        .faults()
        .fail(FaultRule::status(500).verb(Verb::Update));
    let start = Instant::now();
    let err = retry_on_conflict(DEFAULT_RETRY, || bump(&cms))
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 500));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(requests(&server, "configmaps", Verb::Update).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_conflict_inside_a_write_error_is_retried_too() {
    let (server, cms) = setup().await;
    server.faults().fail(conflicts(2));
    let op = retry_on_conflict(DEFAULT_RETRY, || {
        let cms = cms.clone();
        async move {
            let mut cm = ConfigMap::default();
            cm.metadata.name = Some("counter".into());
            create_or_update(&cms, &mut cm, |cm| {
                cm.data
                    .get_or_insert_with(BTreeMap::new)
                    .insert("n".into(), "7".into());
                Ok(())
            })
            .await
        }
    })
    .await
    .unwrap();
    assert_eq!(op, Operation::Updated);
    assert_eq!(requests(&server, "configmaps", Verb::Update).len(), 3);
}
