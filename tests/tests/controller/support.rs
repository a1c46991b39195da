//! Shared fixtures: a recording reconciler and object builders.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;
use windlass::controller::ReconcileReason;

/// One reconcile as a test saw it.
#[derive(Debug, Clone)]
pub struct Run {
    pub name: String,
    pub reason: ReconcileReason,
    pub attempt: u32,
    pub start: Instant,
    pub end: Instant,
}

/// Collects reconciles, and lets a test wait for the next ones.
#[derive(Clone)]
pub struct Recorder {
    pub runs: Arc<Mutex<Vec<Run>>>,
    tx: mpsc::UnboundedSender<Run>,
}

impl Recorder {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Run>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { runs: Arc::default(), tx }, rx)
    }

    pub fn record(&self, run: Run) {
        self.runs.lock().push(run.clone());
        let _ = self.tx.send(run);
    }

    pub fn count(&self, name: &str) -> usize {
        self.runs.lock().iter().filter(|r| r.name == name).count()
    }
}

/// Waits (bounded) for the next recorded run.
pub async fn next(rx: &mut mpsc::UnboundedReceiver<Run>) -> Run {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("a reconcile within 60 s")
        .expect("the recorder lives")
}

pub fn configmap(name: &str, data: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"v": data},
    }))
    .unwrap()
}

pub async fn create_cm(api: &Api<ConfigMap>, name: &str, data: &str) -> ConfigMap {
    api.create(&PostParams::default(), &configmap(name, data)).await.unwrap()
}
