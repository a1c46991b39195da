//! Hot standby: candidates start and sync their caches before they win, so a new leader
//! reconciles at once without listing; and the opt-out, a cold standby that keeps no cache.

use std::time::Duration;

use windlass::manager::{Config, Manager, Readiness};
use windlass::testing::{ApiServer, RequestRecord, Verb};

use super::support::*;

fn start(server: &ApiServer, windows: &Windows, name: &str, hot: bool) -> (Running, Readiness) {
    let config = Config::default()
        .handle_signals(false)
        .leader_election(election(name).hot_standby(hot));
    let manager = Manager::with_config(server.client_named(name).client(), config)
        .add(recording_controller(windows.clone(), name));
    let readiness = manager.readiness();
    (Running::start(manager), readiness)
}

fn configmap_reads(requests: &[RequestRecord], client: &str) -> usize {
    requests
        .iter()
        .filter(|r| {
            r.client == client
                && r.resource.as_deref() == Some("configmaps")
                && matches!(r.verb, Some(Verb::List | Verb::Watch))
        })
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_hot_standby_syncs_its_cache_before_it_leads_and_reconciles_without_listing() {
    let server = server().await;
    let windows = Windows::default();
    let (a, _) = start(&server, &windows, "a", true);
    run_for(Duration::from_secs(1)).await;
    let (b, b_ready) = start(&server, &windows, "b", true);
    run_for(Duration::from_secs(2)).await;
    assert_eq!(windows.replicas(), ["a"]);
    assert!(b_ready.is_ready(), "the standby's cache is synced");
    assert!(configmap_reads(&server.requests(), "b") > 0);

    server.clear_requests();
    a.stop().await.unwrap();
    run_for(Duration::from_secs(1)).await;
    assert_eq!(windows.replicas(), ["a", "b"]);
    assert_eq!(
        configmap_reads(&server.requests(), "b"),
        0,
        "the new leader reconciled from the cache it already had"
    );
    windows.assert_one_leader_at_a_time();
    b.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_cold_standby_lists_only_once_it_leads() {
    let server = server().await;
    let windows = Windows::default();
    let (a, _) = start(&server, &windows, "a", false);
    run_for(Duration::from_secs(1)).await;
    let (b, b_ready) = start(&server, &windows, "b", false);
    run_for(Duration::from_secs(2)).await;
    assert_eq!(configmap_reads(&server.requests(), "b"), 0);
    assert!(
        !b_ready.is_ready(),
        "a cold standby has no cache to be ready with"
    );

    a.stop().await.unwrap();
    run_for(Duration::from_secs(1)).await;
    assert!(configmap_reads(&server.requests(), "b") > 0);
    assert!(b_ready.is_ready());
    let reconciled: Vec<String> = windows.of("b").iter().map(|w| w.object.clone()).collect();
    for name in ["a", "b", "c"] {
        assert!(reconciled.contains(&name.to_string()), "{reconciled:?}");
    }
    windows.assert_one_leader_at_a_time();
    b.stop().await.unwrap();
}
