//! Broken watches and expired history lose no update.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams};
use tokio::sync::mpsc;
use windlass::controller::{Controller, EventKind, ReconcileReason};
use windlass::informer::{Informer, InformerConfig};
use windlass::testing::ApiServer;

use super::support::{
    Recorder, Run, Running, Wakeups, cached_cms, create_cm, manager, next_n, recording,
    runs_during, server_cms, set_cm, until,
};

const OBJECTS: usize = 5;

fn name(i: usize) -> String {
    format!("cm-{i}")
}

/// Starts a recording ConfigMap controller; returns the running manager and its informer.
fn start(
    client: kube::Client,
    rec: &Recorder,
) -> (
    Running,
    Arc<Informer<ConfigMap>>,
    mpsc::UnboundedReceiver<()>,
) {
    let manager = manager(client).add(Controller::new(recording(rec.clone())));
    let informer = manager
        .cache()
        .informer::<ConfigMap>(InformerConfig::default());
    let (tx, wakeups) = mpsc::unbounded_channel();
    informer.add_handler(Arc::new(Wakeups(tx)));
    (Running::start(manager), informer, wakeups)
}

/// Waits until the last reconcile of each object saw its final value, and the cache holds
/// exactly what the server holds.
async fn assert_converged(
    rx: &mut mpsc::UnboundedReceiver<Run>,
    finals: &BTreeMap<String, String>,
    api: &Api<ConfigMap>,
    informer: &Informer<ConfigMap>,
    wakeups: &mut mpsc::UnboundedReceiver<()>,
) {
    let mut last_seen: BTreeMap<String, String> = BTreeMap::new();
    let converged = async {
        while finals.iter().any(|(k, v)| last_seen.get(k) != Some(v)) {
            let run = rx.recv().await.expect("the recorder lives");
            last_seen.insert(run.name, run.value);
        }
    };
    tokio::time::timeout(super::support::WAIT, converged)
        .await
        .unwrap_or_else(|_| {
            panic!("not every change was reconciled: saw {last_seen:?}, want {finals:?}")
        });
    let on_server = server_cms(api).await;
    until(wakeups, "the cache equals the server", || {
        cached_cms(informer.store()) == on_server
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn changes_made_around_closed_watches_are_all_reconciled() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..OBJECTS {
        create_cm(&api, &name(i), "0").await;
    }
    let (rec, mut rx) = Recorder::new();
    let (running, informer, mut wakeups) = start(client, &rec);
    next_n(&mut rx, OBJECTS).await;

    let mut finals = BTreeMap::new();
    for round in 1..=10 {
        server.faults().close_watches();
        let key = name(round % OBJECTS);
        set_cm(&api, &key, &round.to_string()).await;
        finals.insert(key, round.to_string());
    }
    assert_converged(&mut rx, &finals, &api, &informer, &mut wakeups).await;
    running.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn changes_are_all_reconciled_when_every_watch_ends_after_one_event() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..OBJECTS {
        create_cm(&api, &name(i), "0").await;
    }
    let (rec, mut rx) = Recorder::new();
    let (running, informer, mut wakeups) = start(client, &rec);
    next_n(&mut rx, OBJECTS).await;

    server.faults().close_watches_after(Some(1));
    let mut finals = BTreeMap::new();
    for change in 1..=20 {
        let key = name(change * 3 % OBJECTS);
        set_cm(&api, &key, &change.to_string()).await;
        finals.insert(key, change.to_string());
    }
    assert_converged(&mut rx, &finals, &api, &informer, &mut wakeups).await;
    running.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_relist_after_expired_history_reconciles_only_what_changed_meanwhile() {
    let server = ApiServer::new();
    let operator = server.client_named("operator");
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for i in 0..OBJECTS {
        create_cm(&api, &name(i), "0").await;
    }
    let (rec, mut rx) = Recorder::new();
    let (running, informer, mut wakeups) = start(operator.client(), &rec);
    next_n(&mut rx, OBJECTS).await;

    // While the operator is cut off: two changes, a deletion and a creation; then the history
    // it would resume from is compacted away, so it must relist.
    operator.faults().disconnect();
    set_cm(&api, &name(1), "changed").await;
    set_cm(&api, &name(2), "changed").await;
    api.delete(&name(3), &DeleteParams::default())
        .await
        .unwrap();
    create_cm(&api, "newcomer", "new").await;
    server.expire_history();
    operator.faults().reconnect();

    let on_server = server_cms(&api).await;
    until(&mut wakeups, "the cache equals the server", || {
        cached_cms(informer.store()) == on_server
    })
    .await;
    assert!(informer.stats().relists >= 1, "{:?}", informer.stats());

    let mut runs = runs_during(&mut rx, std::time::Duration::from_secs(60)).await;
    runs.sort_by(|a, b| a.name.cmp(&b.name));
    let seen: Vec<(&str, &str, &ReconcileReason)> = runs
        .iter()
        .map(|r| (r.name.as_str(), r.value.as_str(), &r.reason))
        .collect();
    let updated = ReconcileReason::ObjectChanged(EventKind::Updated);
    let added = ReconcileReason::ObjectChanged(EventKind::Added);
    assert_eq!(
        seen,
        [
            ("cm-1", "changed", &updated),
            ("cm-2", "changed", &updated),
            ("newcomer", "new", &added)
        ]
    );
    running.stop().await.unwrap();
}
