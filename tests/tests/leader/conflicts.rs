//! Conflicting writes: every write of the Lease carries the resourceVersion last read, so of
//! two replicas writing at once one fails, and there is never more than one holder.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use serde_json::json;
use tokio::time::Instant;
use windlass::leader::LeaderElectionError;
use windlass::manager::ManagerError;
use windlass::testing::{FaultRule, RequestRecord, Verb};

use super::support::*;

fn lease_writes(requests: &[RequestRecord], verb: Verb) -> Vec<(String, u16)> {
    requests
        .iter()
        .filter(|r| r.verb == Some(verb) && r.resource.as_deref() == Some("leases"))
        .map(|r| (r.client.clone(), r.status))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn replicas_starting_together_create_the_lease_once_and_one_leads() {
    let server = server().await;
    let windows = Windows::default();
    let replicas: Vec<Replica> = ["a", "b", "c"]
        .iter()
        .map(|n| Replica::start(&server, &windows, n))
        .collect();
    let sampler = Sampler::start(replicas.iter().map(|r| r.leadership.clone()).collect());
    let i = leader(&replicas.iter().collect::<Vec<_>>()).await;
    run_for(Duration::from_secs(5)).await;
    let creates = lease_writes(&server.requests(), Verb::Create);
    let won: Vec<_> = creates.iter().filter(|(_, s)| *s == 201).collect();
    assert_eq!(won, [&(replicas[i].name.clone(), 201)], "{creates:?}");
    assert!(
        creates.iter().all(|(_, s)| *s == 201 || *s == 409),
        "{creates:?}"
    );
    sampler.assert_never_two_leaders();
    windows.assert_one_leader_at_a_time();
    assert_eq!(windows.replicas(), [replicas[i].name.clone()]);
    for r in replicas {
        r.running.stop().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn two_candidates_taking_over_an_expired_lease_at_once_leave_one_holder() {
    let server = server().await;
    let leases: Api<Lease> = Api::namespaced(server.client(), "default");
    let ghost: Lease = serde_json::from_value(json!({
        "metadata": {"name": LEASE},
        "spec": {"holderIdentity": "ghost", "leaseDurationSeconds": 3, "leaseTransitions": 4,
                 "acquireTime": "2026-01-02T03:04:05.000000Z", "renewTime": "2026-01-02T03:04:05.000000Z"},
    }))
    .unwrap();
    leases.create(&PostParams::default(), &ghost).await.unwrap();
    let windows = Windows::default();
    let started = Instant::now();
    let replicas = ["b", "c"].map(|n| Replica::start(&server, &windows, n));
    let sampler = Sampler::start(replicas.iter().map(|r| r.leadership.clone()).collect());
    let i = leader(&replicas.iter().collect::<Vec<_>>()).await;
    // Both saw the ghost's record at the start, so both judged it expired at the same instant.
    assert_eq!(Instant::now() - started, LEASE_DURATION);
    let updates = lease_writes(&server.requests(), Verb::Update);
    assert_eq!(
        updates.iter().filter(|(_, s)| *s == 409).count(),
        1,
        "the second takeover conflicted: {updates:?}"
    );
    run_for(Duration::from_secs(3)).await;
    let lease = leases.get(LEASE).await.unwrap().spec.unwrap();
    assert_eq!(
        lease.holder_identity.as_deref(),
        Some(replicas[i].name.as_str())
    );
    assert_eq!(lease.lease_transitions, Some(5));
    sampler.assert_never_two_leaders();
    windows.assert_one_leader_at_a_time();
    for r in replicas {
        r.running.stop().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn conflicts_on_renewals_never_produce_two_holders() {
    let server = server().await;
    let windows = Windows::default();
    let mut log = LeaseLog::start(&server);
    let mut replicas: Vec<Replica> = ["a", "b", "c"]
        .iter()
        .map(|n| Replica::start(&server, &windows, n))
        .collect();
    let sampler = Sampler::start(replicas.iter().map(|r| r.leadership.clone()).collect());
    let i = leader(&replicas.iter().collect::<Vec<_>>()).await;
    run_for(Duration::from_secs(1)).await;
    let leader_faults = replicas[i].client.faults().clone();
    let update = || FaultRule::status(409).verb(Verb::Update).resource("leases");

    // A few conflicts: retried within the renew deadline, the leader keeps its lease.
    leader_faults.fail(update().times(3));
    run_for(Duration::from_secs(5)).await;
    assert!(replicas[i].is_leader());
    assert_eq!(windows.replicas(), [replicas[i].name.clone()]);

    // Conflicts on every write: it gives up at the deadline, and another replica takes over
    // once the lease expires.
    let old = replicas.remove(i);
    log.skip_backlog();
    let renewal = log.next_by(&old.name).await;
    leader_faults.fail(update().times(usize::MAX));
    let err = tokio::time::timeout(WAIT, old.running.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err,
            ManagerError::LeaderElection(LeaderElectionError::RenewDeadlineExceeded { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("409"), "{err}");
    let j = leader(&replicas.iter().collect::<Vec<_>>()).await;
    assert!(Instant::now() - renewal.at >= LEASE_DURATION);
    run_for(Duration::from_secs(2)).await;
    assert!(replicas[j].is_leader());
    sampler.assert_never_two_leaders();
    windows.assert_one_leader_at_a_time();
    for r in replicas {
        r.running.stop().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_finds_another_holder_in_the_lease_stops_leading_at_once() {
    let server = server().await;
    let windows = Windows::default();
    let a = Replica::start(&server, &windows, "a");
    a.leadership.wait_leading().await;
    run_for(Duration::from_secs(1)).await;

    let leases: Api<Lease> = Api::namespaced(server.client(), "default");
    let mut lease = leases.get(LEASE).await.unwrap();
    lease.spec.as_mut().unwrap().holder_identity = Some("intruder".into());
    leases
        .replace(LEASE, &PostParams::default(), &lease)
        .await
        .unwrap();
    let intruded = Instant::now();

    let err = tokio::time::timeout(WAIT, a.running.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    let noticed = Instant::now() - intruded;
    assert!(noticed <= RETRY_PERIOD, "{noticed:?}");
    match err {
        ManagerError::LeaderElection(LeaderElectionError::LeaseTaken { holder, .. }) => {
            assert_eq!(holder, "intruder");
        }
        other => panic!("{other}"),
    }
    assert!(windows.last_end("a").unwrap() <= intruded + RETRY_PERIOD);
    assert_eq!(
        leases
            .get(LEASE)
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("intruder"),
        "a replica that lost the lease does not release someone else's"
    );
}
