//! The operator under test: a `Site` custom resource (modelled on the quickstart's `Website`)
//! owning a Deployment and a Service, reporting a `Ready` condition and `observedGeneration`
//! in its status, and holding a finalizer whose cleanup removes what it registered outside the
//! cluster (here: an entry in a shared set standing in for a cloud resource).
//!
//! Every reconcile and cleanup is written to the [`Journal`] as a window (replica, key, start,
//! end, what it saw, how it ended). The reconciler can be told to misbehave for chosen objects
//! ([`Behaviour`]): panic, hang past the controller's timeout, or fail forever.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use parking_lot::Mutex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::Instant;
use windlass::CustomResource;
use windlass::apply::WriteError;
use windlass::condition::{self, ConditionStatus};
use windlass::controller::{Action, Context, Reconciler, TerminalError};
use windlass::finalizer::{Cleanup, CleanupStatus};
use windlass::leader::LeadershipHandle;
use windlass::owner::{OwnerError, controller_reference};

/// How long a reconcile's work takes (so overlapping reconciles would show).
pub(crate) const WORK: Duration = Duration::from_millis(20);
/// How soon a converged site is reconciled again: a periodic requeue that must never be lost.
pub(crate) const REQUEUE: Duration = Duration::from_secs(15);
/// How long a hung reconcile hangs: far past the controller's reconcile timeout.
const HANG: Duration = Duration::from_secs(3600);

/// A site: an image served by some number of replicas.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[windlass(group = "chaos.windlass.rs", version = "v1", kind = "Site", namespaced)]
#[windlass(status = SiteStatus)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SiteSpec {
    /// The container image.
    pub(crate) image: String,
    /// How many copies to run.
    pub(crate) replicas: i32,
}

/// What the operator last did for a site.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SiteStatus {
    /// `Ready` once the Deployment and Service match the spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) conditions: Vec<Condition>,
    /// The generation of the spec this status describes.
    #[serde(default)]
    pub(crate) observed_generation: i64,
}

/// The process-wide order of journal events: finer than a paused clock, under which a
/// handover may take no time at all.
static SEQ: AtomicU64 = AtomicU64::new(0);

fn seq() -> u64 {
    SEQ.fetch_add(1, Ordering::SeqCst)
}

/// Which of the operator's entry points ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Reconcile,
    Cleanup,
}

/// How a window ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It returned success.
    Done,
    /// It returned an error (the message).
    Failed(String),
    /// It never returned: it panicked, timed out, or was dropped (lease lost, shutdown
    /// past the grace period).
    Abandoned,
}

/// One reconcile or cleanup, as a window of time on one replica incarnation.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) replica: String,
    pub(crate) incarnation: u32,
    pub(crate) phase: Phase,
    pub(crate) key: String,
    pub(crate) uid: String,
    pub(crate) generation: i64,
    /// Why it ran (`ReconcileReason`'s text: `start-up`, `requeue`, `retry (attempt 2)`, ...).
    pub(crate) reason: String,
    /// Which attempt in a row this was (`Context::attempt`).
    pub(crate) attempt: u32,
    /// Whether the replica's manager said it led when the window opened.
    pub(crate) leading: bool,
    /// The lease holder the replica had last observed when the window opened.
    pub(crate) holder: Option<String>,
    pub(crate) start: Instant,
    pub(crate) start_seq: u64,
    pub(crate) end: Instant,
    pub(crate) end_seq: u64,
    pub(crate) outcome: Outcome,
}

/// Every window of every replica; [`Journal::all`] returns them in the order they opened.
#[derive(Clone, Default)]
pub(crate) struct Journal(Arc<Mutex<Vec<Entry>>>);

impl Journal {
    pub(crate) fn all(&self) -> Vec<Entry> {
        let mut all = self.0.lock().clone();
        all.sort_by_key(|e| e.start_seq);
        all
    }
}

/// An open window; recorded when dropped, so a reconcile that panics or is cut off still
/// counts up to the moment it ended.
struct Open {
    journal: Journal,
    entry: Option<Entry>,
}

impl Open {
    fn close(mut self, outcome: Outcome) {
        if let Some(e) = self.entry.as_mut() {
            e.outcome = outcome;
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(mut e) = self.entry.take() {
            e.end = Instant::now();
            e.end_seq = seq();
            self.journal.0.lock().push(e);
        }
    }
}

/// How the reconciler misbehaves, for which objects; shared by every replica.
#[derive(Default)]
pub(crate) struct Behaviour {
    state: Mutex<Misbehaving>,
    /// Panics, hangs and injected failures that happened.
    pub(crate) panics: AtomicU64,
    pub(crate) hangs: AtomicU64,
    pub(crate) failures: AtomicU64,
}

#[derive(Default)]
struct Misbehaving {
    panic: BTreeMap<String, usize>,
    hang: BTreeMap<String, usize>,
    fail_forever: BTreeSet<String>,
    terminal: BTreeSet<String>,
    slow: Option<Duration>,
}

enum Misbehave {
    Panic,
    Hang,
    Fail,
    Terminal,
}

impl Behaviour {
    /// The next `times` reconciles of `name` panic.
    pub(crate) fn panic_in(&self, name: &str, times: usize) {
        *self.state.lock().panic.entry(name.into()).or_default() += times;
    }

    /// The next `times` reconciles of `name` hang (until the controller's timeout).
    pub(crate) fn hang_in(&self, name: &str, times: usize) {
        *self.state.lock().hang.entry(name.into()).or_default() += times;
    }

    /// Every reconcile of `name` fails, from now on.
    pub(crate) fn fail_forever(&self, name: &str) {
        self.state.lock().fail_forever.insert(name.into());
    }

    /// Every reconcile of `name` fails with a terminal error (not retried until it changes),
    /// from now on.
    pub(crate) fn fail_terminally(&self, name: &str) {
        self.state.lock().terminal.insert(name.into());
    }

    /// The names that fail forever, terminally or not.
    pub(crate) fn failing(&self) -> BTreeSet<String> {
        let s = self.state.lock();
        s.fail_forever.union(&s.terminal).cloned().collect()
    }

    /// The names that fail with a terminal error.
    pub(crate) fn terminal(&self) -> BTreeSet<String> {
        self.state.lock().terminal.clone()
    }

    /// Every reconcile takes this long (`None`: [`WORK`]).
    pub(crate) fn set_slow(&self, slow: Option<Duration>) {
        self.state.lock().slow = slow;
    }

    /// Stops panicking and hanging (failing forever stays: it is forever).
    pub(crate) fn heal(&self) {
        let mut s = self.state.lock();
        s.panic.clear();
        s.hang.clear();
        s.slow = None;
    }

    fn next(&self, name: &str) -> Option<Misbehave> {
        let mut s = self.state.lock();
        let take = |m: &mut BTreeMap<String, usize>| match m.get_mut(name) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        };
        if take(&mut s.panic) {
            return Some(Misbehave::Panic);
        }
        if take(&mut s.hang) {
            return Some(Misbehave::Hang);
        }
        if s.terminal.contains(name) {
            return Some(Misbehave::Terminal);
        }
        s.fail_forever.contains(name).then_some(Misbehave::Fail)
    }

    fn work(&self) -> Duration {
        self.state.lock().slow.unwrap_or(WORK)
    }
}

/// What the operator registered outside the cluster, by site uid: an entry is added by a
/// reconcile and removed by cleanup, so an entry left for a deleted site is a cleanup lost.
#[derive(Clone, Default)]
pub(crate) struct External(Arc<Mutex<BTreeMap<String, String>>>);

impl External {
    pub(crate) fn has(&self, uid: &str) -> bool {
        self.0.lock().contains_key(uid)
    }
}

/// What a site reconcile can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Apply(#[from] WriteError),
    #[error(transparent)]
    Owner(#[from] OwnerError),
    #[error("building a child: {0}")]
    Template(#[from] serde_json::Error),
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("injected failure for {0}")]
    Injected(String),
    #[error(transparent)]
    Terminal(#[from] TerminalError),
}

/// The site reconciler of one replica incarnation.
pub(crate) struct SiteReconciler {
    pub(crate) replica: String,
    pub(crate) incarnation: u32,
    pub(crate) journal: Journal,
    pub(crate) behaviour: Arc<Behaviour>,
    pub(crate) external: External,
    pub(crate) leadership: LeadershipHandle,
}

impl SiteReconciler {
    fn open(&self, phase: Phase, site: &Site, ctx: &Context<Site>) -> Open {
        let now = Instant::now();
        Open {
            journal: self.journal.clone(),
            entry: Some(Entry {
                replica: self.replica.clone(),
                incarnation: self.incarnation,
                phase,
                key: site.name_any(),
                uid: site.uid().unwrap_or_default(),
                generation: site.metadata.generation.unwrap_or_default(),
                reason: ctx.reason().to_string(),
                attempt: ctx.attempt(),
                leading: self.leadership.is_leader(),
                holder: self.leadership.leader(),
                start: now,
                start_seq: seq(),
                end: now,
                end_seq: 0,
                outcome: Outcome::Abandoned,
            }),
        }
    }

    async fn converge(&self, site: &Site, ctx: &Context<Site>) -> Result<(), Error> {
        let ns = site.namespace().unwrap_or_else(|| "default".into());
        let name = site.name_any();
        match self.behaviour.next(&name) {
            Some(Misbehave::Panic) => {
                self.behaviour.panics.fetch_add(1, Ordering::SeqCst);
                panic!("injected panic reconciling {name}");
            }
            Some(Misbehave::Hang) => {
                self.behaviour.hangs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(HANG).await;
            }
            Some(Misbehave::Fail) => {
                self.behaviour.failures.fetch_add(1, Ordering::SeqCst);
                return Err(Error::Injected(name));
            }
            Some(Misbehave::Terminal) => {
                self.behaviour.failures.fetch_add(1, Ordering::SeqCst);
                return Err(TerminalError::new(format!("{name} cannot be served")).into());
            }
            None => {}
        }
        tokio::time::sleep(self.behaviour.work()).await;

        let owner = controller_reference(site)?;
        let labels =
            json!({"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "chaos"});
        let deployment: Deployment = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": [owner]},
            "spec": {
                "replicas": site.spec.replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": site.spec.image}]}
                }
            }
        }))?;
        ctx.apply(
            &Api::<Deployment>::namespaced(ctx.client().clone(), &ns),
            &deployment,
        )
        .await?;
        let service: Service = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": [owner]},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]}
        }))?;
        ctx.apply(
            &Api::<Service>::namespaced(ctx.client().clone(), &ns),
            &service,
        )
        .await?;
        if let Some(uid) = site.uid() {
            self.external.0.lock().insert(uid, name.clone());
        }

        let generation = site.metadata.generation.unwrap_or_default();
        let mut status = site.status.clone().unwrap_or_default();
        let changed = condition::set_status_condition(
            &mut status.conditions,
            condition::new("Ready", ConditionStatus::True, "Deployed")
                .message(format!(
                    "{} replicas of {}",
                    site.spec.replicas, site.spec.image
                ))
                .observed_generation(generation),
        );
        if changed || status.observed_generation != generation {
            status.observed_generation = generation;
            Api::<Site>::namespaced(ctx.client().clone(), &ns)
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await?;
        }
        Ok(())
    }
}

#[windlass::async_trait]
impl Reconciler for SiteReconciler {
    type Object = Site;
    type Error = Error;

    async fn reconcile(&self, site: Arc<Site>, ctx: &Context<Site>) -> Result<Action, Error> {
        let open = self.open(Phase::Reconcile, &site, ctx);
        match self.converge(&site, ctx).await {
            Ok(()) => {
                open.close(Outcome::Done);
                Ok(Action::requeue(REQUEUE))
            }
            Err(e) => {
                open.close(Outcome::Failed(e.to_string()));
                Err(e)
            }
        }
    }
}

#[windlass::async_trait]
impl Cleanup for SiteReconciler {
    async fn cleanup(&self, site: Arc<Site>, ctx: &Context<Site>) -> Result<CleanupStatus, Error> {
        let open = self.open(Phase::Cleanup, &site, ctx);
        tokio::time::sleep(self.behaviour.work()).await;
        if let Some(uid) = site.uid() {
            self.external.0.lock().remove(&uid);
        }
        open.close(Outcome::Done);
        Ok(CleanupStatus::Done)
    }
}
