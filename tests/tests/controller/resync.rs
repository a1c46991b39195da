//! The periodic resync reconciles every cached object again.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use windlass::controller::{Controller, ReconcileReason};
use windlass::testing::ApiServer;

use super::support::{Recorder, Run, Running, create_cm, manager, next_n, recording};

// Shorter than the wait limit of `next`, jitter included.
const PERIOD: Duration = Duration::from_secs(30);

/// The runs all name every object once, for `reason`, between `from + 90 %` and `from + 110 %`
/// of the period.
fn assert_round(runs: &[Run], from: tokio::time::Instant, reason: &ReconcileReason) {
    let names: BTreeSet<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["a", "b", "c"]), "{runs:?}");
    for run in runs {
        assert_eq!(&run.reason, reason);
        let after = run.start - from;
        assert!(
            after >= PERIOD.mul_f64(0.9) && after <= PERIOD.mul_f64(1.1),
            "{} resynced {after:?} after the previous round",
            run.name
        );
    }
}

#[tokio::test(start_paused = true)]
async fn every_cached_object_is_reconciled_again_each_resync_period() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for name in ["a", "b", "c"] {
        create_cm(&api, name, "1").await;
    }

    let (rec, mut rx) = Recorder::new();
    let controller = Controller::new(recording(rec.clone())).resync_period(PERIOD);
    let running = Running::start(manager(client).add(controller));

    let startup = next_n(&mut rx, 3).await;
    assert!(startup.iter().all(|r| r.reason == ReconcileReason::Startup));
    let first = next_n(&mut rx, 3).await;
    assert_round(&first, startup[0].start, &ReconcileReason::Resync);
    let second = next_n(&mut rx, 3).await;
    assert_round(&second, first[0].start, &ReconcileReason::Resync);

    running.stop().await.unwrap();
    assert_eq!(rec.count("a"), 3);
}

#[tokio::test(start_paused = true)]
async fn without_a_resync_period_nothing_is_reconciled_again_unprompted() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "a", "1").await;

    let (rec, mut rx) = Recorder::new();
    let running = Running::start(manager(client).add(Controller::new(recording(rec.clone()))));
    next_n(&mut rx, 1).await;
    let later = super::support::runs_during(&mut rx, Duration::from_secs(24 * 3600)).await;
    assert!(later.is_empty(), "{later:?}");
    running.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_zero_resync_period_turns_resync_off_instead_of_spinning() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "a", "1").await;

    let (rec, mut rx) = Recorder::new();
    let controller = Controller::new(recording(rec.clone())).resync_period(Duration::ZERO);
    let running = Running::start(manager(client).add(controller));
    next_n(&mut rx, 1).await;
    let later = super::support::runs_during(&mut rx, Duration::from_secs(3600)).await;
    assert!(later.is_empty(), "{later:?}");
    running.stop().await.unwrap();
}
