//! Shared fixtures: a recording reconciler, a running manager, object builders and bounded
//! waits.
//!
//! Every wait is bounded by a timeout (instant under tokio's paused clock once nothing else
//! can happen), so a controller that misbehaves fails a test instead of hanging it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ListParams, PostParams};
use kube::{Resource, ResourceExt};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use windlass::controller::{
    Action, Context, Controller, ReconcileReason, Reconciler, reconciler_fn,
};
use windlass::informer::{Cacheable, EventHandler};
use windlass::manager::{Config, Manager, ManagerError, ShutdownHandle};

/// How long any single wait may take before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// One reconcile as a test saw it.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) name: String,
    pub(crate) reason: ReconcileReason,
    pub(crate) attempt: u32,
    /// The object's resourceVersion as the reconcile got it.
    pub(crate) resource_version: String,
    /// `data.v` of a ConfigMap (empty for other kinds).
    pub(crate) value: String,
    pub(crate) start: Instant,
    pub(crate) end: Instant,
}

impl Run {
    /// A run of `obj` starting (and ending) now.
    pub(crate) fn of<K: Resource>(obj: &K, ctx: &Context<K>) -> Self {
        let now = Instant::now();
        Run {
            name: obj.meta().name.clone().unwrap_or_default(),
            reason: ctx.reason().clone(),
            attempt: ctx.attempt(),
            resource_version: obj.meta().resource_version.clone().unwrap_or_default(),
            value: String::new(),
            start: now,
            end: now,
        }
    }

    /// A run of a ConfigMap, with its `data.v`.
    pub(crate) fn of_cm(cm: &ConfigMap, ctx: &Context<ConfigMap>) -> Self {
        Run {
            value: data_v(cm),
            ..Run::of(cm, ctx)
        }
    }
}

/// A ConfigMap's `data.v`, or empty.
pub(crate) fn data_v(cm: &ConfigMap) -> String {
    cm.data
        .as_ref()
        .and_then(|d| d.get("v").cloned())
        .unwrap_or_default()
}

/// Collects reconciles, and lets a test wait for the next ones.
#[derive(Clone)]
pub(crate) struct Recorder {
    pub(crate) runs: Arc<Mutex<Vec<Run>>>,
    tx: mpsc::UnboundedSender<Run>,
}

impl Recorder {
    pub(crate) fn new() -> (Self, mpsc::UnboundedReceiver<Run>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                runs: Arc::default(),
                tx,
            },
            rx,
        )
    }

    pub(crate) fn record(&self, run: Run) {
        self.runs.lock().push(run.clone());
        let _ = self.tx.send(run);
    }

    /// How many reconciles of `name` were recorded.
    pub(crate) fn count(&self, name: &str) -> usize {
        self.runs.lock().iter().filter(|r| r.name == name).count()
    }

    /// The recorded reconciles of `name`, oldest first.
    pub(crate) fn of(&self, name: &str) -> Vec<Run> {
        self.runs
            .lock()
            .iter()
            .filter(|r| r.name == name)
            .cloned()
            .collect()
    }

    /// Every recorded reconcile, oldest first.
    pub(crate) fn all(&self) -> Vec<Run> {
        self.runs.lock().clone()
    }
}

/// A reconciler that records every run of a ConfigMap and asks for nothing more.
pub(crate) fn recording(rec: Recorder) -> impl Reconciler<Object = ConfigMap> {
    reconciler_fn(move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
        let rec = rec.clone();
        async move {
            rec.record(Run::of_cm(&cm, &ctx));
            Ok::<_, kube::Error>(Action::await_change())
        }
    })
}

/// A reconciler of any kind that records every run and asks for nothing more.
pub(crate) fn recording_of<K>(rec: Recorder) -> impl Reconciler<Object = K>
where
    K: Cacheable,
    K::DynamicType: Default,
{
    reconciler_fn(move |obj: Arc<K>, ctx: Context<K>| {
        let rec = rec.clone();
        async move {
            rec.record(Run::of(obj.as_ref(), &ctx));
            Ok::<_, kube::Error>(Action::await_change())
        }
    })
}

/// A ConfigMap controller recording every run, with one worker, so reconciles happen in the
/// order keys were queued.
pub(crate) fn serial_recording_controller(
    rec: Recorder,
) -> Controller<impl Reconciler<Object = ConfigMap>> {
    Controller::new(recording(rec)).max_concurrent_reconciles(1)
}

/// Waits (bounded) for the next recorded run.
pub(crate) async fn next(rx: &mut mpsc::UnboundedReceiver<Run>) -> Run {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a reconcile within the wait limit")
        .expect("the recorder lives")
}

/// Waits (bounded) for the next run of `name`, returning it and the runs of other objects
/// seen before it.
pub(crate) async fn next_of(rx: &mut mpsc::UnboundedReceiver<Run>, name: &str) -> (Run, Vec<Run>) {
    let mut others = Vec::new();
    for _ in 0..10_000 {
        let run = next(rx).await;
        if run.name == name {
            return (run, others);
        }
        others.push(run);
    }
    panic!("no run of {name} among 10 000 runs")
}

/// Waits (bounded) for `n` runs.
pub(crate) async fn next_n(rx: &mut mpsc::UnboundedReceiver<Run>, n: usize) -> Vec<Run> {
    let mut runs = Vec::with_capacity(n);
    for _ in 0..n {
        runs.push(next(rx).await);
    }
    runs
}

/// Every run recorded during the next `period`. Only meaningful under a paused clock, where
/// the period passes once every task is idle: then no work left in a queue is missed.
pub(crate) async fn runs_during(
    rx: &mut mpsc::UnboundedReceiver<Run>,
    period: Duration,
) -> Vec<Run> {
    let deadline = Instant::now() + period;
    let mut runs = Vec::new();
    while let Ok(Some(run)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        runs.push(run);
    }
    runs
}

/// A manager running in a task, with a way to stop it.
pub(crate) struct Running {
    pub(crate) shutdown: ShutdownHandle,
    pub(crate) task: JoinHandle<Result<(), ManagerError>>,
}

impl Running {
    /// Starts `manager.run()` in a task.
    pub(crate) fn start(manager: Manager) -> Self {
        let shutdown = manager.shutdown_handle();
        Running {
            shutdown,
            task: tokio::spawn(manager.run()),
        }
    }

    /// Shuts the manager down and returns what `run()` returned.
    pub(crate) async fn stop(self) -> Result<(), ManagerError> {
        self.shutdown.shutdown();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the manager stops within the wait limit")
            .expect("the manager's task does not panic")
    }

    /// Whether `run()` has returned.
    pub(crate) fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// A manager that does not listen for signals (tests stop it with a handle).
pub(crate) fn manager(client: kube::Client) -> Manager {
    Manager::with_config(client, Config::default().handle_signals(false))
}

pub(crate) fn configmap(name: &str, data: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"v": data},
    }))
    .unwrap()
}

pub(crate) async fn create_cm(api: &Api<ConfigMap>, name: &str, data: &str) -> ConfigMap {
    api.create(&PostParams::default(), &configmap(name, data))
        .await
        .unwrap()
}

/// Sets a ConfigMap's `data.v` with a merge patch.
pub(crate) async fn set_cm(api: &Api<ConfigMap>, name: &str, data: &str) -> ConfigMap {
    let patch = json!({"data": {"v": data}});
    api.patch(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(patch),
    )
    .await
    .unwrap()
}

/// Sets one label with a merge patch.
pub(crate) async fn set_label<K>(api: &Api<K>, name: &str, key: &str, value: &str) -> K
where
    K: Clone + serde::de::DeserializeOwned + Debug,
{
    let patch = json!({"metadata": {"labels": {key: value}}});
    api.patch(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(patch),
    )
    .await
    .unwrap()
}

/// A controller owner reference to `owner`.
pub(crate) fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    owner
        .controller_owner_ref(&())
        .expect("the owner has a name and uid")
}

/// A Secret named `name` in `default`, optionally with owner references and labels.
pub(crate) fn secret(name: &str, owners: Vec<OwnerReference>, labels: &[(&str, &str)]) -> Secret {
    let mut s: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": "default"},
        "stringData": {"k": "v"},
    }))
    .unwrap();
    if !owners.is_empty() {
        s.metadata.owner_references = Some(owners);
    }
    if !labels.is_empty() {
        s.metadata.labels = Some(labels_of(labels));
    }
    s
}

pub(crate) fn labels_of(labels: &[(&str, &str)]) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A minimal valid Deployment in `default`: one nginx container, selecting `app: <name>`.
pub(crate) fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
            }
        }
    }))
    .unwrap()
}

/// Forwards every event an informer sees to a channel, as a wake-up for tests that wait for
/// the cache to reach a state.
pub(crate) struct Wakeups(pub(crate) mpsc::UnboundedSender<()>);

impl<K> EventHandler<K> for Wakeups {
    fn on_add(&self, _: &Arc<K>, _: bool) {
        let _ = self.0.send(());
    }
    fn on_update(&self, _: &Arc<K>, _: &Arc<K>) {
        let _ = self.0.send(());
    }
    fn on_delete(&self, _: &Arc<K>) {
        let _ = self.0.send(());
    }
}

/// Waits (bounded) until `cond` holds, re-checking after every informer event.
pub(crate) async fn until(
    wakeups: &mut mpsc::UnboundedReceiver<()>,
    what: &str,
    mut cond: impl FnMut() -> bool,
) {
    let wait = async {
        while !cond() {
            wakeups.recv().await.expect("the informer lives");
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// The names and resourceVersions of every ConfigMap on the server in `default`, sorted.
pub(crate) async fn server_cms(api: &Api<ConfigMap>) -> Vec<(String, String)> {
    let mut out: Vec<_> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| (c.name_any(), c.resource_version().unwrap_or_default()))
        .collect();
    out.sort();
    out
}

/// The names and resourceVersions of cached ConfigMaps in `default`, sorted.
pub(crate) fn cached_cms(store: &windlass::informer::Store<ConfigMap>) -> Vec<(String, String)> {
    let mut out: Vec<_> = store
        .list_namespace("default")
        .iter()
        .map(|c| (c.name_any(), c.resource_version().unwrap_or_default()))
        .collect();
    out.sort();
    out
}
