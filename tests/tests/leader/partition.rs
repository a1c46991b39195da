//! A leader cut off from the API server: it stops its controllers by the renew deadline, and
//! a healthy replica takes over once the lease expires; an outage of the whole API server:
//! nobody believes it leads, and candidates retry for as long as it lasts.

use std::time::Duration;

use tokio::time::Instant;
use windlass::leader::LeaderElectionError;
use windlass::manager::ManagerError;

use super::support::*;

#[tokio::test(start_paused = true)]
async fn a_leader_cut_off_from_the_api_stops_its_controllers_by_the_renew_deadline() {
    let server = server().await;
    let windows = Windows::default();
    let mut log = LeaseLog::start(&server);
    let replicas = ["a", "b"].map(|n| Replica::start(&server, &windows, n));
    let sampler = Sampler::start(replicas.iter().map(|r| r.leadership.clone()).collect());
    let i = leader(&replicas.iter().collect::<Vec<_>>()).await;
    run_for(Duration::from_secs(2)).await;
    let [a, b] = replicas;
    let (cut, healthy) = if i == 0 { (a, b) } else { (b, a) };

    log.skip_backlog();
    let renewal = log.next_by(&cut.name).await;
    run_for(RETRY_PERIOD / 2).await;
    cut.client.faults().disconnect();
    let deadline = renewal.at + RENEW_DEADLINE;

    cut.leadership.wait_not_leading().await;
    let stopped = Instant::now();
    println!(
        "cut off {:?} after its last renewal; stopped leading {:?} after it",
        RETRY_PERIOD / 2,
        stopped - renewal.at
    );
    assert!(stopped <= deadline, "{:?}", stopped - renewal.at);
    // It kept retrying until the deadline rather than giving up at the first failure.
    assert!(stopped > deadline - RETRY_PERIOD);
    let result = tokio::time::timeout(WAIT, cut.running.task)
        .await
        .expect("run() returns once the lease is lost")
        .unwrap();
    let returned = Instant::now();
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            ManagerError::LeaderElection(LeaderElectionError::RenewDeadlineExceeded { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("default/windlass-test"), "{err}");
    assert!(returned <= deadline, "nothing waits on the unreachable API");
    assert!(
        windows.last_end(&cut.name).unwrap() <= deadline,
        "no reconcile of the cut-off leader ran past the renew deadline"
    );

    healthy.leadership.wait_leading().await;
    let took_over = Instant::now() - renewal.at;
    assert!(
        took_over >= LEASE_DURATION && took_over <= LEASE_DURATION + RETRY_PERIOD,
        "{took_over:?}"
    );
    run_for(Duration::from_secs(1)).await;
    assert!(windows.count(&healthy.name) > 0);
    sampler.assert_never_two_leaders();
    windows.assert_one_leader_at_a_time();
    healthy.running.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_api_outage_longer_than_the_renew_deadline_leaves_nobody_leading_and_candidates_retrying()
 {
    let server = server().await;
    let windows = Windows::default();
    let mut log = LeaseLog::start(&server);
    let mut replicas: Vec<Replica> = ["a", "b", "c"]
        .iter()
        .map(|n| Replica::start(&server, &windows, n))
        .collect();
    let handles: Vec<_> = replicas.iter().map(|r| r.leadership.clone()).collect();
    let sampler = Sampler::start(handles.clone());
    let i = leader(&replicas.iter().collect::<Vec<_>>()).await;
    run_for(Duration::from_secs(2)).await;
    let old = replicas.remove(i);
    log.skip_backlog();
    let renewal = log.next_by(&old.name).await;

    server.faults().disconnect();
    run_for(RENEW_DEADLINE + RETRY_PERIOD).await;
    assert!(Instant::now() >= renewal.at + RENEW_DEADLINE);
    assert!(!old.is_leader());
    let err = tokio::time::timeout(WAIT, old.running.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, ManagerError::LeaderElection(_)), "{err}");

    // Ten minutes without an API server: nobody leads, and both candidates keep trying.
    let during = Sampler::start(handles);
    let outage = Duration::from_secs(600);
    run_for(outage - Duration::from_secs(60)).await;
    server.clear_requests();
    run_for(Duration::from_secs(60)).await;
    assert_eq!(
        during.max(),
        0,
        "a replica believed it led during the outage"
    );
    let requests = server.requests();
    for r in &replicas {
        let lease_gets = requests
            .iter()
            .filter(|q| q.client == r.name && q.resource.as_deref() == Some("leases"))
            .count();
        // One attempt per retry period (plus jitter) in the outage's last minute.
        assert!(lease_gets >= 50, "{}: {lease_gets} requests", r.name);
        assert!(!r.is_leader());
    }

    server.faults().reconnect();
    let back = Instant::now();
    let j = leader(&replicas.iter().collect::<Vec<_>>()).await;
    let waited = Instant::now() - back;
    println!(
        "after a 10 min outage, {} led {waited:?} after the API came back",
        replicas[j].name
    );
    assert!(waited <= LEASE_DURATION + RETRY_PERIOD, "{waited:?}");
    run_for(Duration::from_secs(1)).await;
    sampler.assert_never_two_leaders();
    windows.assert_one_leader_at_a_time();
    for r in replicas {
        r.running.stop().await.unwrap();
    }
}
