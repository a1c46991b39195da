//! One test per fault scenario: start the operator, drive the workload through the faults,
//! heal, and check the invariants (see the harness). Each prints its seed first and its report
//! last (`cargo test -p windlass-tests chaos:: -- --nocapture` shows them).

use std::time::Duration;

use tokio::time::Instant;

use super::harness::{Chaos, GRACE, LEASE_DURATION, Settings, seed};
use super::operator::Outcome;
use super::report::Report;
use super::schedule::{Fault, random};

/// How long each scenario's workload runs under faults (simulated time).
const SPAN: Duration = Duration::from_secs(30);

fn at(secs: f64, fault: Fault) -> (Duration, Fault) {
    (Duration::from_secs_f64(secs), fault)
}

/// The common shape: start, create every site, run the workload through `schedule`, heal,
/// check, shut down.
async fn scenario(settings: Settings, schedule: &[(Duration, Fault)]) -> (Report, Chaos) {
    let mut chaos = Chaos::start(settings).await;
    chaos.create_all().await;
    chaos.run(schedule, SPAN).await;
    chaos.heal().await;
    chaos.check().await;
    (chaos.report.clone(), chaos)
}

#[tokio::test(start_paused = true)]
async fn watch_streams_closed_every_few_events_and_at_random_lose_nothing() {
    let settings = Settings::new(seed(1));
    let mut rng = fastrand::Rng::with_seed(settings.seed);
    let mut schedule = vec![
        at(0.0, Fault::CloseWatchesAfter(3)),
        at(12.0, Fault::CloseWatchesAfter(1)),
        at(20.0, Fault::CloseWatchesEvery(Duration::from_millis(700))),
    ];
    for _ in 0..6 {
        schedule.push(at(rng.f64() * 30.0, Fault::CloseWatchesNow));
    }
    schedule.sort_by_key(|(t, _)| *t);
    let (_, chaos) = scenario(settings, &schedule).await;
    let report = chaos.finish().await;
    assert!(report.faults_injected() >= 9);
}

#[tokio::test(start_paused = true)]
async fn expired_watches_and_lists_lose_nothing() {
    let schedule = [
        at(0.0, Fault::Expired(3)),
        at(6.0, Fault::CompactHistory),
        at(9.0, Fault::Expired(5)),
        at(18.0, Fault::CompactHistory),
        at(19.0, Fault::Expired(2)),
    ];
    let (_, chaos) = scenario(Settings::new(seed(2)), &schedule).await;
    let report = chaos.finish().await;
    assert!(report.relists > 0, "the informers relisted after 410s");
}

/// Paged relists (two objects a page, every request slowed down) while history is compacted
/// again and again: continue tokens expire mid-list, and the informers start their lists over.
#[tokio::test(start_paused = true)]
async fn continue_tokens_expired_mid_list_lose_nothing() {
    // A relist of three pages takes three round trips; history is compacted more often than
    // that for a while, so some compaction lands between two pages.
    let mut schedule = vec![at(0.0, Fault::Latency(Some(Duration::from_millis(100))))];
    for i in 0..40 {
        schedule.push(at(2.0 + 0.13 * i as f64, Fault::CompactHistory));
    }
    for i in 0..10 {
        schedule.push(at(12.0 + 1.1 * i as f64, Fault::CompactHistory));
    }
    let (_, chaos) = scenario(Settings::new(seed(15)).page_size(2), &schedule).await;
    let expired = chaos.expired_continues();
    let report = chaos.finish().await;
    assert!(expired > 0, "a continue token expired mid-list: {report}");
    println!("{expired} continued lists answered 410 Expired");
}

#[tokio::test(start_paused = true)]
async fn conflicts_on_a_third_of_writes_lose_nothing() {
    let conflicts = Fault::Conflicts {
        every: 3,
        times: 40,
    };
    let schedule = [at(0.0, conflicts.clone()), at(12.0, conflicts)];
    let (_, chaos) = scenario(Settings::new(seed(3)), &schedule).await;
    let report = chaos.finish().await;
    assert!(
        report.reconciles_failed > 0,
        "conflicts failed some reconciles"
    );
}

#[tokio::test(start_paused = true)]
async fn throttling_with_retry_after_loses_nothing() {
    let throttle = Fault::Throttle {
        times: 25,
        retry_after: Duration::from_secs(1),
    };
    let schedule = [
        at(0.0, throttle.clone()),
        at(10.0, throttle.clone()),
        at(20.0, throttle),
    ];
    let (_, chaos) = scenario(Settings::new(seed(4)), &schedule).await;
    chaos.finish().await;
}

#[tokio::test(start_paused = true)]
async fn server_error_bursts_lose_nothing() {
    let schedule = [
        at(
            0.0,
            Fault::ServerErrors {
                code: 500,
                times: 30,
            },
        ),
        at(
            8.0,
            Fault::ServerErrors {
                code: 503,
                times: 30,
            },
        ),
        at(
            16.0,
            Fault::ServerErrors {
                code: 500,
                times: 60,
            },
        ),
    ];
    let (_, chaos) = scenario(Settings::new(seed(5)), &schedule).await;
    let report = chaos.finish().await;
    assert!(report.failed_requests >= 90, "{report}");
}

#[tokio::test(start_paused = true)]
async fn the_api_unreachable_longer_than_the_renew_deadline_loses_nothing() {
    let schedule = [
        at(2.0, Fault::DisconnectAll),
        at(2.0 + 3.0 * LEASE_DURATION.as_secs_f64(), Fault::Reconnect),
        at(15.0, Fault::DisconnectAll),
        at(15.5, Fault::Reconnect),
    ];
    let (_, chaos) = scenario(Settings::new(seed(6)), &schedule).await;
    let report = chaos.finish().await;
    assert!(
        report.lease_losses >= 1,
        "the leader lost its lease: {report}"
    );
}

#[tokio::test(start_paused = true)]
async fn added_latency_loses_nothing() {
    let schedule = [
        at(0.0, Fault::Latency(Some(Duration::from_millis(200)))),
        at(10.0, Fault::Latency(Some(Duration::from_millis(900)))),
        at(20.0, Fault::Latency(None)),
    ];
    let (_, chaos) = scenario(Settings::new(seed(7)), &schedule).await;
    chaos.finish().await;
}

#[tokio::test(start_paused = true)]
async fn reconcilers_that_panic_hang_or_fail_forever_are_contained() {
    let settings = Settings::new(seed(8)).protect("site-0").protect("site-1");
    let schedule = [
        at(1.0, Fault::Panic(Some("site-0".into()), 3)),
        at(1.0, Fault::Hang(Some("site-1".into()), 2)),
        at(1.0, Fault::FailForever(Some("site-2".into()))),
        at(1.0, Fault::Terminal(Some("site-3".into()))),
    ];
    let (report, chaos) = scenario(settings, &schedule).await;
    // Site-3's failures are terminal: attempted when it changed, never retried after the
    // workload stopped changing it (the harness checks that; here, that it was attempted).
    let terminal = chaos
        .entries()
        .into_iter()
        .filter(|e| e.key == "site-3" && matches!(e.outcome, Outcome::Failed(_)))
        .count();
    assert!(terminal > 0, "site-3 was attempted");
    assert_eq!(report.panics_caught, 3, "{report}");
    assert_eq!(report.timeouts, 2, "{report}");
    assert!(report.errors_reported >= 5, "{report}");
    chaos.finish().await;
}

#[tokio::test(start_paused = true)]
async fn malformed_objects_in_watch_streams_are_skipped_and_counted() {
    let schedule = [
        at(2.0, Fault::Malformed(None)),
        at(9.0, Fault::Malformed(None)),
        at(15.0, Fault::CloseWatchesNow),
    ];
    let (_, chaos) = scenario(Settings::new(seed(9)).permissive(), &schedule).await;
    let report = chaos.finish().await;
    assert!(report.malformed_skipped >= 2, "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_leader_cut_off_while_another_replica_is_healthy_hands_over() {
    let schedule = [
        at(3.0, Fault::DisconnectLeader),
        at(3.0 + 3.0 * LEASE_DURATION.as_secs_f64(), Fault::Reconnect),
        at(18.0, Fault::DisconnectLeader),
        at(18.0 + 2.0 * LEASE_DURATION.as_secs_f64(), Fault::Reconnect),
    ];
    let (_, chaos) = scenario(Settings::new(seed(10)).replicas(2), &schedule).await;
    let report = chaos.finish().await;
    assert!(report.lease_losses >= 2, "{report}");
}

#[tokio::test(start_paused = true)]
async fn graceful_shutdown_with_reconciles_in_flight_finishes_them() {
    let mut chaos = Chaos::start(Settings::new(seed(11))).await;
    chaos.behaviour.set_slow(Some(Duration::from_secs(1)));
    chaos.create_all().await;
    chaos.run(&[], Duration::from_millis(300)).await;
    let asked = Instant::now();
    let (i, incarnation) = chaos.shutdown_leader().expect("a replica leads");
    let (took, result) = chaos.wait_exit(i).await;
    assert_eq!(result, Ok(()), "a graceful shutdown returns Ok");
    assert!(took <= GRACE, "shutdown took {took:?}");
    let entries: Vec<_> = chaos
        .entries()
        .into_iter()
        .filter(|e| e.incarnation == incarnation && chaos.is_replica(i, &e.replica))
        .collect();
    let in_flight: Vec<_> = entries
        .iter()
        .filter(|e| e.start <= asked && e.end > asked)
        .collect();
    assert!(
        !in_flight.is_empty(),
        "reconciles were in flight at shutdown"
    );
    for e in &entries {
        assert_ne!(
            e.outcome,
            Outcome::Abandoned,
            "an in-flight reconcile was cut short: {e:?}"
        );
    }
    chaos.count_fault("leader shut down");
    chaos.run(&[], Duration::from_secs(10)).await;
    chaos.heal().await;
    chaos.check().await;
    chaos.finish().await;
}

#[tokio::test(start_paused = true)]
async fn a_relist_storm_after_history_compaction_loses_nothing() {
    let schedule: Vec<_> = (0..10)
        .map(|i| at(1.0 + 2.5 * i as f64, Fault::CompactHistory))
        .collect();
    let (_, chaos) = scenario(Settings::new(seed(12)), &schedule).await;
    let report = chaos.finish().await;
    assert!(report.relists >= 10, "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_crd_deleted_and_recreated_while_its_controller_runs_loses_nothing() {
    let schedule = [at(5.0, Fault::DeleteCrd), at(6.0, Fault::RecreateCrd)];
    let mut chaos = Chaos::start(Settings::new(seed(13))).await;
    chaos.create_all().await;
    chaos.run(&schedule, SPAN).await;
    assert!(chaos.crd_present(), "the CRD was recreated");
    chaos.create_all().await;
    chaos.heal().await;
    chaos.check().await;
    let report = chaos.finish().await;
    assert!(
        report.cleanups >= 6,
        "every site was cleaned up when its CRD went: {report}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_seeded_random_combination_of_faults_loses_nothing() {
    let settings = Settings::new(seed(14)).permissive();
    let mut rng = fastrand::Rng::with_seed(settings.seed ^ 0x5eed);
    let schedule = random(&mut rng, SPAN, 16, true);
    let (_, chaos) = scenario(settings, &schedule).await;
    chaos.finish().await;
}

/// `WINDLASS_CHAOS_SOAK=<seconds>`: random rounds (a new cluster, seed and 30-fault schedule
/// over a minute each) until that much wall-clock time has passed, with the totals printed.
/// Without it, one such round with a fixed seed.
#[tokio::test(start_paused = true)]
async fn soak() {
    let secs: Option<u64> = std::env::var("WINDLASS_CHAOS_SOAK").ok().map(|s| {
        s.trim()
            .parse()
            .expect("WINDLASS_CHAOS_SOAK is a number of seconds")
    });
    let until = std::time::Instant::now() + Duration::from_secs(secs.unwrap_or(0));
    let first = seed(if secs.is_some() {
        fastrand::u64(..)
    } else {
        16
    });
    let mut total = Report::default();
    for round in 0..1_000_000u64 {
        if round > 0 && std::time::Instant::now() >= until {
            break;
        }
        let settings = Settings::new(first.wrapping_add(round)).permissive();
        let mut rng = fastrand::Rng::with_seed(settings.seed ^ 0x5eed);
        let schedule = random(&mut rng, Duration::from_secs(60), 30, true);
        let mut chaos = Chaos::start(settings).await;
        chaos.create_all().await;
        chaos.run(&schedule, Duration::from_secs(60)).await;
        chaos.heal().await;
        chaos.check().await;
        let report = chaos.finish().await;
        total.add(&report);
        println!("soak: {} rounds so far", total.rounds);
    }
    println!(
        "soak finished after {} s (first seed {first})\n{total}",
        secs.unwrap_or(0)
    );
}
