//! A crashed leader (its task aborted: no release, no last words) is replaced once the lease
//! it last renewed expires: no sooner than the lease duration, and within one retry period
//! more.

use std::time::Duration;

use tokio::time::Instant;

use super::support::*;

async fn crash_and_replace(replicas: usize) {
    let server = server().await;
    let windows = Windows::default();
    let mut log = LeaseLog::start(&server);
    let mut running: Vec<Replica> = ["a", "b", "c"][..replicas]
        .iter()
        .map(|n| Replica::start(&server, &windows, n))
        .collect();
    let sampler = Sampler::start(running.iter().map(|r| r.leadership.clone()).collect());
    let i = leader(&running.iter().collect::<Vec<_>>()).await;
    run_for(Duration::from_secs(2)).await;
    let crashed = running.remove(i);

    // Right after a renewal, so the time from the crash is the time from the last renewal.
    log.skip_backlog();
    let renewal = log.next_by(&crashed.name).await;
    crashed.running.task.abort();
    let crashed_at = Instant::now();
    let aborted = crashed.running.task.await.unwrap_err();
    assert!(aborted.is_cancelled());
    assert_eq!(Instant::now(), crashed_at);
    assert!(
        !crashed.leadership.is_leader(),
        "an aborted elector does not lead"
    );

    let j = leader(&running.iter().collect::<Vec<_>>()).await;
    let took_over = Instant::now();
    let since_renewal = took_over - renewal.at;
    println!(
        "{replicas} replicas: a crashed leader was replaced {since_renewal:?} after its last renewal ({:?} after the crash)",
        took_over - crashed_at
    );
    assert!(since_renewal >= LEASE_DURATION, "{since_renewal:?}");
    assert!(
        since_renewal <= LEASE_DURATION + RETRY_PERIOD,
        "{since_renewal:?}"
    );
    let new = &running[j];
    run_for(Duration::from_secs(1)).await;
    assert!(windows.first_start(&new.name).unwrap() >= renewal.at + LEASE_DURATION);
    let taken = log.last_by(&new.name).unwrap();
    assert_eq!(taken.transitions, 1);
    assert_ne!(taken.acquire, renewal.acquire);
    sampler.assert_never_two_leaders();
    windows.assert_one_leader_at_a_time();
    assert_eq!(windows.replicas(), [crashed.name.clone(), new.name.clone()]);
    assert!(windows.last_end(&crashed.name).unwrap() <= crashed_at);
    for r in running {
        r.running.stop().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn of_two_replicas_a_crashed_leader_is_replaced_after_the_lease_duration_and_within_a_retry_period_more()
 {
    crash_and_replace(2).await;
}

#[tokio::test(start_paused = true)]
async fn of_three_replicas_a_crashed_leader_is_replaced_after_the_lease_duration_and_within_a_retry_period_more()
 {
    crash_and_replace(3).await;
}
