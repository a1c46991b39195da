//! Graceful handover: a leader that shuts down releases the lease after its controllers have
//! stopped, and a candidate watching the Lease takes over one round trip later.

use std::time::Duration;

use tokio::time::Instant;

use super::support::*;

/// Round-trip time of every request the replicas make in these tests, so a handover takes
/// measurable (simulated) time.
const LATENCY: Duration = Duration::from_millis(5);

fn slowed(r: Replica) -> Replica {
    r.client.faults().set_latency(Some(LATENCY));
    r
}

/// Waits (bounded) until `replica` has reconciled something; returns when it first did.
async fn first_reconcile(windows: &Windows, replica: &str) -> Instant {
    for _ in 0..10_000 {
        if let Some(t) = windows.first_start(replica) {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("{replica} never reconciled");
}

#[tokio::test(start_paused = true)]
async fn a_graceful_shutdown_hands_over_within_a_few_round_trips() {
    let server = server().await;
    let windows = Windows::default();
    let replicas = [
        slowed(Replica::start(&server, &windows, "a")),
        slowed(Replica::start(&server, &windows, "b")),
    ];
    let sampler = Sampler::start(replicas.iter().map(|r| r.leadership.clone()).collect());
    let i = leader(&replicas.iter().collect::<Vec<_>>()).await;
    run_for(Duration::from_secs(3)).await;
    let [a, b] = replicas;
    let (old, new) = if i == 0 { (a, b) } else { (b, a) };
    let (old_name, new_name) = (old.name.clone(), new.name.clone());

    let shutdown_at = Instant::now();
    old.running.stop().await.unwrap();
    let first = first_reconcile(&windows, &new_name).await;
    let last = windows.last_end(&old_name).unwrap();
    let gap = first - last;
    println!(
        "graceful handover: {gap:?} from the old leader's last reconcile to the new leader's first ({:?} after shutdown began; {LATENCY:?} per request)",
        first - shutdown_at
    );
    // The release (one write) and the takeover (one write) happen in between: two round
    // trips, and the watch event costs no request.
    assert!(gap >= 2 * LATENCY, "{gap:?}");
    assert!(gap <= Duration::from_millis(100), "{gap:?}");
    run_for(Duration::from_secs(1)).await;
    sampler.assert_never_two_leaders();
    windows.assert_one_leader_at_a_time();
    new.running.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn of_three_replicas_each_graceful_shutdown_hands_over_to_exactly_one_of_the_rest() {
    let server = server().await;
    let windows = Windows::default();
    let log = LeaseLog::start(&server);
    let mut replicas: Vec<Replica> = ["a", "b", "c"]
        .iter()
        .map(|n| slowed(Replica::start(&server, &windows, n)))
        .collect();
    let sampler = Sampler::start(replicas.iter().map(|r| r.leadership.clone()).collect());
    let mut order = Vec::new();
    while !replicas.is_empty() {
        let i = leader(&replicas.iter().collect::<Vec<_>>()).await;
        run_for(Duration::from_secs(2)).await;
        let old = replicas.remove(i);
        order.push(old.name.clone());
        let last_seen = windows.last_end(&old.name);
        old.running.stop().await.unwrap();
        if !replicas.is_empty() {
            let i = leader(&replicas.iter().collect::<Vec<_>>()).await;
            let next = &replicas[i].name;
            let first = loop {
                if let Some(t) = windows.first_start(next) {
                    break t;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            };
            let gap = first - windows.last_end(&old.name).or(last_seen).unwrap();
            println!("handover {} -> {next}: {gap:?}", old.name);
            assert!(gap <= Duration::from_millis(100), "{gap:?}");
        }
    }
    sampler.assert_never_two_leaders();
    windows.assert_one_leader_at_a_time();
    assert_eq!(windows.replicas(), order);
    // Each holder released the lease to the next; the transitions count the holders.
    let mut expected = Vec::new();
    for name in &order {
        expected.push(name.clone());
        expected.push(String::new());
    }
    assert_eq!(log.holders(), expected);
    assert_eq!(log.all().last().unwrap().transitions, 2);
}

#[tokio::test(start_paused = true)]
async fn without_release_a_stopped_leader_is_replaced_only_when_its_lease_expires() {
    let server = server().await;
    let windows = Windows::default();
    let mut log = LeaseLog::start(&server);
    let replicas = ["a", "b"]
        .map(|n| Replica::start_with(&server, &windows, n, |c| c.release_on_cancel(false)));
    let i = leader(&replicas.iter().collect::<Vec<_>>()).await;
    run_for(Duration::from_secs(1)).await;
    let [a, b] = replicas;
    let (old, new) = if i == 0 { (a, b) } else { (b, a) };
    log.skip_backlog();
    let renewal = log.next_by(&old.name).await;
    old.running.stop().await.unwrap();
    new.leadership.wait_leading().await;
    let waited = Instant::now() - renewal.at;
    assert!(
        waited >= LEASE_DURATION && waited <= LEASE_DURATION + RETRY_PERIOD,
        "{waited:?}"
    );
    assert!(!log.holders().contains(&String::new()), "never released");
    windows.assert_one_leader_at_a_time();
    new.running.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn without_the_watch_candidates_notice_a_release_at_their_next_poll() {
    let server = server().await;
    let windows = Windows::default();
    let mut log = LeaseLog::start(&server);
    let replicas =
        ["a", "b"].map(|n| Replica::start_with(&server, &windows, n, |c| c.watch(false)));
    let i = leader(&replicas.iter().collect::<Vec<_>>()).await;
    run_for(Duration::from_secs(1)).await;
    let [a, b] = replicas;
    let (old, new) = if i == 0 { (a, b) } else { (b, a) };
    old.running.stop().await.unwrap();
    let released = log.next_by("").await;
    new.leadership.wait_leading().await;
    let waited = Instant::now() - released.at;
    // Polls come every retry period plus up to 20 % jitter.
    assert!(waited <= RETRY_PERIOD.mul_f64(1.2), "{waited:?}");
    assert!(
        server.requests().iter().all(|r| r.client == "observer"
            || r.verb != Some(windlass::testing::Verb::Watch)
            || r.resource.as_deref() != Some("leases")),
        "no replica watched the Lease"
    );
    windows.assert_one_leader_at_a_time();
    new.running.stop().await.unwrap();
}
