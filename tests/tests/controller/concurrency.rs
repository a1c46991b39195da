//! One object is never reconciled by two workers at once, however fast it changes.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use windlass::controller::{Action, Context, Controller, reconciler_fn};
use windlass::testing::ApiServer;

use super::support::{Recorder, Run, Running, WAIT, create_cm, manager, set_cm};

const KEYS: usize = 16;
const WRITES: usize = 300;
const WORKERS: usize = 8;

/// A reconcile that has started, and lets it finish once its object has been changed.
type Started = (String, oneshot::Sender<()>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_object_is_reconciled_twice_at_once_while_it_changes_rapidly() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for k in 0..KEYS {
        create_cm(&api, &format!("k-{k}"), "start").await;
    }

    let (rec, mut rx) = Recorder::new();
    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    let overlaps = Arc::new(AtomicUsize::new(0));
    let (started_tx, mut started_rx) = mpsc::unbounded_channel::<Started>();
    let reconciler = {
        let (rec, in_flight, overlaps) = (rec.clone(), in_flight.clone(), overlaps.clone());
        reconciler_fn(move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
            let (rec, in_flight, overlaps) = (rec.clone(), in_flight.clone(), overlaps.clone());
            let started_tx = started_tx.clone();
            async move {
                let mut run = Run::of_cm(&cm, &ctx);
                if !in_flight.lock().insert(run.name.clone()) {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                // Hold on until the writer has changed this very object (while the writer
                // still listens), so every change lands in the middle of a reconcile.
                let (go_tx, go_rx) = oneshot::channel();
                if started_tx.send((run.name.clone(), go_tx)).is_ok() {
                    let _ = tokio::time::timeout(WAIT, go_rx).await;
                }
                let api: Api<ConfigMap> = Api::namespaced(ctx.client().clone(), "default");
                api.get(&run.name).await?;
                in_flight.lock().remove(&run.name);
                run.end = Instant::now();
                rec.record(run);
                Ok::<_, kube::Error>(Action::await_change())
            }
        })
    };
    let controller = Controller::new(reconciler).max_concurrent_reconciles(WORKERS);
    let running = Running::start(manager(client).add(controller));

    let mut finals: BTreeMap<String, String> = BTreeMap::new();
    let writes = async {
        for i in 0..WRITES {
            let (key, go) = started_rx.recv().await.expect("reconciles keep starting");
            let value = i.to_string();
            set_cm(&api, &key, &value).await;
            finals.insert(key, value);
            let _ = go.send(());
        }
        drop(started_rx);
    };
    tokio::time::timeout(WAIT, writes)
        .await
        .expect("the writes finish");

    // Every object's last change is reconciled: nothing was lost in the merging.
    let mut last_seen: BTreeMap<String, String> = BTreeMap::new();
    let converged = async {
        while finals.iter().any(|(k, v)| last_seen.get(k) != Some(v)) {
            let run = rx.recv().await.expect("the recorder lives");
            last_seen.insert(run.name, run.value);
        }
    };
    tokio::time::timeout(WAIT, converged)
        .await
        .expect("every final state is reconciled");
    running.stop().await.unwrap();

    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "a reconcile started while another of the same object ran"
    );
    let mut by_key: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    for run in rec.all() {
        by_key.entry(run.name.clone()).or_default().push(run);
    }
    for (key, mut runs) in by_key {
        runs.sort_by_key(|r| r.start);
        for pair in runs.windows(2) {
            assert!(
                pair[0].end <= pair[1].start,
                "{key}: two reconciles overlapped: {pair:?}"
            );
        }
    }
}

/// More objects than a worker reconciles in one turn of Tokio's cooperative budget (128).
const DRAIN: usize = 400;

/// Workers running reconciles that never wait let the other tasks on their thread run while
/// they drain the queue: on a one-thread runtime, a task woken by the first reconcile runs
/// long before the last.
#[tokio::test]
async fn a_drain_of_reconciles_that_never_wait_lets_other_tasks_run() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..DRAIN {
        create_cm(&api, &format!("cm-{i:03}"), "v").await;
    }
    let reconciled = Arc::new(AtomicUsize::new(0));
    let (first_tx, first_rx) = oneshot::channel::<()>();
    let first_tx = Arc::new(Mutex::new(Some(first_tx)));
    let reconciler = {
        let reconciled = reconciled.clone();
        reconciler_fn(move |_cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| {
            let (reconciled, first_tx) = (reconciled.clone(), first_tx.clone());
            // Nothing awaited: the reconcile is ready the first time it is polled.
            async move {
                reconciled.fetch_add(1, Ordering::SeqCst);
                if let Some(tx) = first_tx.lock().take() {
                    let _ = tx.send(());
                }
                Ok::<_, kube::Error>(Action::await_change())
            }
        })
    };
    // A task that wakes at the first reconcile and notes how many had run by the time it
    // got its turn.
    let observer = {
        let reconciled = reconciled.clone();
        tokio::spawn(async move {
            first_rx.await.expect("a first reconcile");
            reconciled.load(Ordering::SeqCst)
        })
    };
    // One worker: several would each spend a budget before the observer's turn.
    let controller = Controller::new(reconciler).max_concurrent_reconciles(1);
    let running = Running::start(manager(client).add(controller));
    let seen = tokio::time::timeout(WAIT, observer)
        .await
        .expect("the observer runs")
        .expect("the observer does not panic");
    let drained = async {
        while reconciled.load(Ordering::SeqCst) < DRAIN {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(WAIT, drained)
        .await
        .expect("every object is reconciled");
    running.stop().await.unwrap();
    assert!(
        seen < DRAIN,
        "the observer ran only after all {DRAIN} reconciles: the workers never yielded"
    );
}

/// A worker that yields (its budget spent) while holding the item its last reconcile's end
/// handed it starts no reconcile once the manager is shutting down.
#[tokio::test]
async fn no_reconcile_starts_after_shutdown_begins_during_a_workers_yield() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..DRAIN {
        create_cm(&api, &format!("cm-{i:03}"), "v").await;
    }
    let reconciled = Arc::new(AtomicUsize::new(0));
    let stopping = Arc::new(AtomicBool::new(false));
    let after_stop = Arc::new(AtomicUsize::new(0));
    let (first_tx, first_rx) = oneshot::channel::<()>();
    let first_tx = Arc::new(Mutex::new(Some(first_tx)));
    let reconciler = {
        let (reconciled, stopping, after_stop) =
            (reconciled.clone(), stopping.clone(), after_stop.clone());
        reconciler_fn(move |_cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| {
            let (reconciled, stopping, after_stop, first_tx) = (
                reconciled.clone(),
                stopping.clone(),
                after_stop.clone(),
                first_tx.clone(),
            );
            async move {
                if stopping.load(Ordering::SeqCst) {
                    after_stop.fetch_add(1, Ordering::SeqCst);
                }
                reconciled.fetch_add(1, Ordering::SeqCst);
                if let Some(tx) = first_tx.lock().take() {
                    let _ = tx.send(());
                }
                Ok::<_, kube::Error>(Action::await_change())
            }
        })
    };
    // One worker: several would each spend a budget before the stopper's turn.
    let manager = manager(client).add(Controller::new(reconciler).max_concurrent_reconciles(1));
    let handle = manager.shutdown_handle();
    // Woken by the first reconcile, it runs when the worker first yields, mid-drain.
    let stopper = tokio::spawn({
        let stopping = stopping.clone();
        async move {
            first_rx.await.expect("a first reconcile");
            stopping.store(true, Ordering::SeqCst);
            handle.shutdown();
        }
    });
    let running = Running::start(manager);
    tokio::time::timeout(WAIT, stopper)
        .await
        .expect("the shutdown is asked for")
        .expect("the stopper does not panic");
    running.stop().await.unwrap();
    let reconciled = reconciled.load(Ordering::SeqCst);
    assert!(
        reconciled < DRAIN,
        "the shutdown came after the drain ({reconciled} reconciles), so this tests nothing"
    );
    assert_eq!(
        after_stop.load(Ordering::SeqCst),
        0,
        "a reconcile started after the shutdown began"
    );
}
