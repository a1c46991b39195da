//! The steady state: one replica leads and reconciles, the Lease says so in client-go's
//! fields, the others wait; Events on the Lease; runnables that need no leadership; a bad
//! configuration.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use windlass::async_trait;
use windlass::leader::LeaderElectionError;
use windlass::manager::{BoxError, Config, Manager, ManagerError, RunContext, Runnable};

use super::support::*;

#[tokio::test(start_paused = true)]
async fn of_three_replicas_exactly_one_leads_and_only_it_reconciles() {
    let server = server().await;
    let windows = Windows::default();
    let replicas: Vec<Replica> = ["a", "b", "c"]
        .iter()
        .map(|n| Replica::start(&server, &windows, n))
        .collect();
    let sampler = Sampler::start(replicas.iter().map(|r| r.leadership.clone()).collect());
    let i = leader(&replicas.iter().collect::<Vec<_>>()).await;
    run_for(Duration::from_secs(20)).await;

    let leader = &replicas[i];
    assert!(leader.is_leader());
    assert_eq!(windows.replicas(), std::slice::from_ref(&leader.name));
    // Busy all along: 20 s of 50 ms reconciles of three objects, eight workers.
    assert!(
        windows.count(&leader.name) > 300,
        "{}",
        windows.count(&leader.name)
    );
    for other in replicas.iter().filter(|r| r.name != leader.name) {
        assert!(!other.is_leader());
        assert_eq!(other.leadership.leader(), Some(leader.name.clone()));
    }
    let lease = Api::<Lease>::namespaced(server.client(), "default")
        .get(LEASE)
        .await
        .unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some(leader.name.as_str())
    );
    sampler.assert_never_two_leaders();
    windows.assert_one_leader_at_a_time();
    for r in replicas {
        r.running.stop().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn the_lease_has_client_gos_fields_and_keeps_its_acquire_time_across_renewals() {
    let server = server().await;
    let windows = Windows::default();
    let mut log = LeaseLog::start(&server);
    let a = Replica::start(&server, &windows, "a");
    let created = log.next_by("a").await;
    assert_eq!((created.duration, created.transitions), (3, 0));
    assert_eq!(created.acquire, created.renew, "{created:?}");
    let micro = |t: &Option<String>| {
        let t = t.as_deref().unwrap();
        // RFC 3339, UTC, six fractional digits: a MicroTime.
        t.len() == "2026-01-02T03:04:05.123456Z".len()
            && t.ends_with('Z')
            && t.as_bytes()[19] == b'.'
    };
    assert!(
        micro(&created.renew) && micro(&created.acquire),
        "{created:?}"
    );

    run_for(Duration::from_secs(5)).await;
    let by_a: Vec<Seen> = log.all().into_iter().filter(|s| s.holder == "a").collect();
    assert!(
        by_a.len() >= 10,
        "renewed every retry period: {}",
        by_a.len()
    );
    for pair in by_a.windows(2) {
        assert_eq!(pair[1].acquire, created.acquire, "acquireTime is kept");
        assert_eq!(pair[1].transitions, 0);
        assert!(pair[1].renew > pair[0].renew, "renewTime moves on");
        assert_eq!(
            pair[1].at - pair[0].at,
            RETRY_PERIOD,
            "one renewal per retry period"
        );
    }

    // A new holder counts a transition and starts its own acquireTime.
    let b = Replica::start(&server, &windows, "b");
    run_for(Duration::from_secs(1)).await;
    a.running.stop().await.unwrap();
    let released = log.next_by("").await;
    assert_eq!((released.duration, released.transitions), (1, 0));
    let taken = log.next_by("b").await;
    assert_eq!((taken.duration, taken.transitions), (3, 1));
    assert_ne!(taken.acquire, created.acquire);
    assert_eq!(taken.acquire, taken.renew);
    let renewed = log.next_by("b").await;
    assert_eq!(renewed.acquire, taken.acquire);
    assert_eq!(renewed.transitions, 1);
    b.running.stop().await.unwrap();
    windows.assert_one_leader_at_a_time();
}

#[tokio::test(start_paused = true)]
async fn becoming_and_stopping_leading_are_events_on_the_lease() {
    let server = server().await;
    let windows = Windows::default();
    let a = Replica::start(&server, &windows, "a");
    a.leadership.wait_leading().await;
    let b = Replica::start(&server, &windows, "b");
    run_for(Duration::from_secs(1)).await;
    a.running.stop().await.unwrap();
    b.leadership.wait_leading().await;
    run_for(Duration::from_secs(1)).await;
    b.running.stop().await.unwrap();

    let lease = Api::<Lease>::namespaced(server.client(), "default")
        .get(LEASE)
        .await
        .unwrap();
    let events: Vec<Event> = Api::<Event>::namespaced(server.client(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let mut messages: Vec<String> = events
        .iter()
        .map(|e| e.message.clone().unwrap_or_default())
        .collect();
    messages.sort();
    assert_eq!(
        messages,
        [
            "a became leader",
            "a stopped leading",
            "b became leader",
            "b stopped leading"
        ]
    );
    for e in &events {
        assert_eq!(e.reason.as_deref(), Some("LeaderElection"));
        assert_eq!(e.type_.as_deref(), Some("Normal"));
        let about = &e.involved_object;
        assert_eq!(about.kind.as_deref(), Some("Lease"));
        assert_eq!(about.api_version.as_deref(), Some("coordination.k8s.io/v1"));
        assert_eq!(about.name.as_deref(), Some(LEASE));
        assert_eq!(about.namespace.as_deref(), Some("default"));
        assert_eq!(about.uid, lease.metadata.uid);
    }
}

/// Counts its ticks; needs no leadership.
struct Heartbeat(Arc<AtomicUsize>);

#[async_trait]
impl Runnable for Heartbeat {
    fn name(&self) -> String {
        "heartbeat".into()
    }

    fn needs_leader_election(&self) -> bool {
        false
    }

    async fn run(self: Box<Self>, ctx: RunContext) -> Result<(), BoxError> {
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn runnables_that_need_no_leadership_run_on_every_replica() {
    let server = server().await;
    let windows = Windows::default();
    let mut running = Vec::new();
    let mut beats = Vec::new();
    for name in ["a", "b"] {
        let count = Arc::new(AtomicUsize::new(0));
        let config = Config::default()
            .handle_signals(false)
            .leader_election(election(name));
        let manager = Manager::with_config(server.client_named(name).client(), config)
            .add(recording_controller(windows.clone(), name))
            .add(Heartbeat(count.clone()));
        beats.push(count);
        running.push(Running::start(manager));
    }
    run_for(Duration::from_secs(5)).await;
    for count in &beats {
        assert!(count.load(Ordering::SeqCst) >= 40);
    }
    assert_eq!(windows.replicas().len(), 1, "only the leader reconciles");
    for r in running {
        r.stop().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn an_invalid_election_config_fails_run_with_a_message_saying_what_to_fix() {
    let server = server().await;
    let config = Config::default()
        .handle_signals(false)
        .leader_election(election("a").renew_deadline(Duration::from_secs(5)));
    let manager = Manager::with_config(server.client(), config);
    assert!(manager.leadership().is_none());
    let err = manager.run().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid leader election configuration: the lease duration 3s must be longer than the renew deadline 5s"
    );
    assert!(matches!(
        err,
        ManagerError::LeaderElection(LeaderElectionError::InvalidConfig(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn the_leader_election_gauge_is_one_on_the_leader_and_zero_on_the_others() {
    let server = server().await;
    let windows = Windows::default();
    let gauges: Vec<_> = ["a", "b"]
        .iter()
        .map(|name| {
            let client = server.client_named(name);
            let config = Config::default()
                .handle_signals(false)
                .graceful_shutdown_timeout(Duration::from_secs(10))
                .leader_election(election(name));
            let manager = Manager::with_config(client.client(), config)
                .add(recording_controller(windows.clone(), name));
            let metrics = manager
                .metrics()
                .expect("metrics are on by default")
                .clone();
            let leadership = manager.leadership().expect("leader election is configured");
            (metrics, leadership, Running::start(manager))
        })
        .collect();
    let waits = gauges.iter().map(|(_, l, _)| Box::pin(l.wait_leading()));
    tokio::time::timeout(WAIT, futures::future::select_all(waits))
        .await
        .expect("a replica leads");
    run_for(Duration::from_secs(1)).await;
    let series = format!("leader_election_master_status{{name=\"{LEASE}\"}}");
    for (metrics, leadership, _) in &gauges {
        let text = metrics.encode();
        let expected = if leadership.is_leader() { 1 } else { 0 };
        assert!(
            text.lines().any(|l| l == format!("{series} {expected}")),
            "expected {series} {expected}:\n{text}"
        );
    }
    for (_, _, running) in gauges {
        running.stop().await.unwrap();
    }
}
