//! One object is never reconciled by two workers at once, however fast it changes; and workers
//! whose reconciles never wait still share their thread with other tasks.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use windlass::controller::{Action, Context, Controller, reconciler_fn};
use windlass::manager::Manager;
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

/// What the cooperative-budget tests read of a drain whose reconciles never wait.
#[derive(Clone, Default)]
struct NeverWaits {
    reconciled: Arc<AtomicUsize>,
    /// Set by a test as it begins the shutdown.
    stopping: Arc<AtomicBool>,
    /// Reconciles started after `stopping` was set.
    after_stop: Arc<AtomicUsize>,
}

/// A manager (and the server it talks to) with `DRAIN` ConfigMaps to reconcile and one worker
/// whose reconciles never wait, and a receiver that fires at the first reconcile. One worker:
/// with several, each would spend a whole budget before another task's turn.
async fn never_waiting_drain() -> (ApiServer, Manager, NeverWaits, oneshot::Receiver<()>) {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..DRAIN {
        create_cm(&api, &format!("cm-{i:03}"), "v").await;
    }
    let seen = NeverWaits::default();
    let (first_tx, first_rx) = oneshot::channel::<()>();
    let first_tx = Arc::new(Mutex::new(Some(first_tx)));
    let reconciler = {
        let seen = seen.clone();
        reconciler_fn(move |_cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| {
            let (seen, first_tx) = (seen.clone(), first_tx.clone());
            // Nothing awaited: the reconcile is ready the first time it is polled.
            async move {
                if seen.stopping.load(Ordering::SeqCst) {
                    seen.after_stop.fetch_add(1, Ordering::SeqCst);
                }
                seen.reconciled.fetch_add(1, Ordering::SeqCst);
                if let Some(tx) = first_tx.lock().take() {
                    let _ = tx.send(());
                }
                Ok::<_, kube::Error>(Action::await_change())
            }
        })
    };
    let controller = Controller::new(reconciler).max_concurrent_reconciles(1);
    (server, manager(client).add(controller), seen, first_rx)
}

/// A worker running reconciles that never wait lets the other tasks on its thread run while it
/// drains the queue: on a one-thread runtime, a task woken by the first reconcile runs long
/// before the last.
#[tokio::test]
async fn a_drain_of_reconciles_that_never_wait_lets_other_tasks_run() {
    let (_server, manager, seen, first) = never_waiting_drain().await;
    // Notes how many reconciles had run by the time it got its turn.
    let observer = {
        let reconciled = seen.reconciled.clone();
        tokio::spawn(async move {
            first.await.expect("a first reconcile");
            reconciled.load(Ordering::SeqCst)
        })
    };
    let running = Running::start(manager);
    let at_turn = tokio::time::timeout(WAIT, observer)
        .await
        .expect("the observer runs")
        .expect("the observer does not panic");
    let drained = async {
        while seen.reconciled.load(Ordering::SeqCst) < DRAIN {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(WAIT, drained)
        .await
        .expect("every object is reconciled");
    running.stop().await.unwrap();
    assert!(
        at_turn < DRAIN,
        "the observer ran only after all {DRAIN} reconciles: the worker never yielded"
    );
}

/// A worker that yields (its budget spent) in the middle of a drain starts no reconcile once
/// the manager began shutting down during the yield.
#[tokio::test]
async fn no_reconcile_starts_after_shutdown_begins_during_a_workers_yield() {
    let (_server, manager, seen, first) = never_waiting_drain().await;
    let handle = manager.shutdown_handle();
    // Woken by the first reconcile, it runs when the worker first yields, mid-drain.
    let stopper = tokio::spawn({
        let stopping = seen.stopping.clone();
        async move {
            first.await.expect("a first reconcile");
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
    let reconciled = seen.reconciled.load(Ordering::SeqCst);
    assert!(
        reconciled < DRAIN,
        "the shutdown came after the drain ({reconciled} reconciles), so this tests nothing"
    );
    assert_eq!(
        seen.after_stop.load(Ordering::SeqCst),
        0,
        "a reconcile started after the shutdown began"
    );
}
