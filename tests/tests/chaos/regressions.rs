//! Bugs the chaos scenarios found in windlass, each pinned down by a deterministic test named
//! after the scenario that found it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;
use windlass::controller::{Action, Context, Controller, Reconciler};
use windlass::finalizer::{Cleanup, CleanupStatus};
use windlass::manager::{Config, Manager};
use windlass::metrics::Metrics;
use windlass::testing::ApiServer;

use super::harness::metric;
use crate::controller::support::{Running, WAIT, configmap};

const FINALIZER: &str = "windlass.rs/configmap";

/// What cleanup does besides its own work, the first time it runs: what another writer does
/// to the object meanwhile.
#[derive(Clone, Copy)]
enum Meanwhile {
    /// Someone removes every finalizer by hand (`kubectl patch`): the object is deleted.
    ForceFinalize,
    /// ... and then creates a new object of the same name that carries the finalizer (an
    /// exported manifest applied again).
    ForceFinalizeAndRecreate,
}

struct Mirror {
    user: Api<ConfigMap>,
    meanwhile: Meanwhile,
    cleanups: AtomicU32,
    done: mpsc::UnboundedSender<String>,
}

#[windlass::async_trait]
impl Reconciler for Mirror {
    type Object = ConfigMap;
    type Error = kube::Error;

    async fn reconcile(
        &self,
        _cm: Arc<ConfigMap>,
        _ctx: &Context<ConfigMap>,
    ) -> Result<Action, kube::Error> {
        Ok(Action::await_change())
    }
}

#[windlass::async_trait]
impl Cleanup for Mirror {
    async fn cleanup(
        &self,
        cm: Arc<ConfigMap>,
        _ctx: &Context<ConfigMap>,
    ) -> Result<CleanupStatus, kube::Error> {
        if self.cleanups.fetch_add(1, Ordering::SeqCst) == 0 {
            let name = cm.name_any();
            let unfinalize = json!({"metadata": {"finalizers": null}});
            self.user
                .patch(&name, &PatchParams::default(), &Patch::Merge(unfinalize))
                .await?;
            let mut report = String::new();
            if let Meanwhile::ForceFinalizeAndRecreate = self.meanwhile {
                let mut again = configmap(&name, "2");
                again.metadata.finalizers = Some(vec![FINALIZER.into()]);
                let created = self.user.create(&PostParams::default(), &again).await?;
                report = created.uid().unwrap_or_default();
            }
            let _ = self.done.send(report);
        }
        Ok(CleanupStatus::Done)
    }
}

/// A ConfigMap controller with cleanup on its own client, recording into `metrics`.
fn start(
    server: &ApiServer,
    meanwhile: Meanwhile,
    metrics: &Metrics,
) -> (Running, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mirror = Mirror {
        user: Api::namespaced(server.client_named("user").client(), "default"),
        meanwhile,
        cleanups: AtomicU32::new(0),
        done: tx,
    };
    let controller = Controller::new(mirror).with_cleanup();
    let config = Config::default()
        .handle_signals(false)
        .metrics(Some(metrics.clone()));
    let manager =
        Manager::with_config(server.client_named("operator").client(), config).add(controller);
    (Running::start(manager), rx)
}

/// Creates `name`, waits until the controller put its finalizer on it, and deletes it.
async fn create_and_delete(api: &Api<ConfigMap>, name: &str) {
    api.create(&PostParams::default(), &configmap(name, "1"))
        .await
        .unwrap();
    let finalized = async {
        loop {
            let cm = api.get(name).await.unwrap();
            if cm.finalizers().iter().any(|f| f == FINALIZER) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, finalized)
        .await
        .expect("the finalizer is added");
    api.delete(name, &DeleteParams::default()).await.unwrap();
}

/// Found by every scenario that deletes sites (first by
/// `watch_streams_closed_every_few_events_and_at_random_lose_nothing`): removing the
/// finalizer of an object that was already gone (its cache entry was behind the deletion, or
/// someone had removed the finalizer by hand) failed with 404, which was logged as a failed
/// reconcile, counted in `controller_runtime_reconcile_errors_total`, and retried.
#[tokio::test(start_paused = true)]
async fn chaos_deleting_a_site_whose_finalizer_is_already_gone_is_not_a_failed_reconcile() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let metrics = Metrics::new();
    let (running, mut done) = start(&server, Meanwhile::ForceFinalize, &metrics);
    create_and_delete(&api, "mirrored").await;
    tokio::time::timeout(WAIT, done.recv())
        .await
        .expect("cleanup ran")
        .unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(api.get_opt("mirrored").await.unwrap().is_none());
    assert_eq!(
        metric(&metrics, "controller_runtime_reconcile_errors_total"),
        0.0,
        "an object already gone is not a failure"
    );
    running.stop().await.unwrap();
}

/// Found while reading the failures of the same scenarios: the finalizer was removed by name
/// and index only, so when the name already belonged to a new object carrying the same
/// finalizer, the cleanup of the old object released the new one, which could then be deleted
/// without its own cleanup. The patches now test the uid as well.
#[tokio::test(start_paused = true)]
async fn chaos_a_site_recreated_under_the_same_name_keeps_its_finalizer_through_the_old_cleanup() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let metrics = Metrics::new();
    let (running, mut done) = start(&server, Meanwhile::ForceFinalizeAndRecreate, &metrics);
    create_and_delete(&api, "mirrored").await;
    let new_uid = tokio::time::timeout(WAIT, done.recv())
        .await
        .expect("cleanup ran")
        .unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let now = api.get("mirrored").await.unwrap();
    assert_eq!(now.uid().as_deref(), Some(new_uid.as_str()));
    // The operator never changed the new object: it did not take the finalizer off (and had
    // no reason to put it back).
    let requests = server.requests();
    let recreated = requests
        .iter()
        .rposition(|r| r.client == "user" && r.method == http::Method::POST)
        .expect("the user recreated the object");
    let changed: Vec<_> = requests[recreated..]
        .iter()
        .filter(|r| {
            r.client == "operator"
                && r.method == http::Method::PATCH
                && r.path.ends_with("/configmaps/mirrored")
                && r.status == 200
        })
        .collect();
    assert!(changed.is_empty(), "{changed:?}");
    assert!(now.finalizers().iter().any(|f| f == FINALIZER));
    running.stop().await.unwrap();
}

/// Found by the soak schedule (seed 1003: the leader shut down while the API server was
/// unreachable): the lease was lost during the graceful drain, in-flight reconciles were
/// abandoned, and yet `Manager::run` returned `Ok(())`, because failures of runnables while
/// draining were dropped. It now returns the lost lease.
#[tokio::test(start_paused = true)]
async fn chaos_a_leader_shut_down_while_cut_off_from_the_api_reports_the_lost_lease() {
    use windlass::controller::reconciler_fn;
    use windlass::leader::{LeaderElectionConfig, LeaderElectionError};
    use windlass::manager::ManagerError;

    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &configmap("slow", "1"))
        .await
        .unwrap();
    let (started, mut reconciling) = mpsc::unbounded_channel();
    let controller = Controller::new(reconciler_fn(
        move |_cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| {
            let started = started.clone();
            async move {
                let _ = started.send(());
                tokio::time::sleep(Duration::from_secs(20)).await;
                Ok::<_, kube::Error>(Action::await_change())
            }
        },
    ));
    let replica = server.client_named("replica");
    let election = LeaderElectionConfig::new("slow-operator")
        .namespace("default")
        .lease_duration(Duration::from_secs(3))
        .renew_deadline(Duration::from_secs(2))
        .retry_period(Duration::from_millis(500));
    let config = Config::default()
        .handle_signals(false)
        .graceful_shutdown_timeout(Duration::from_secs(30))
        .leader_election(election);
    let manager = Manager::with_config(replica.client(), config).add(controller);
    let running = Running::start(manager);
    tokio::time::timeout(WAIT, reconciling.recv())
        .await
        .expect("a reconcile starts")
        .unwrap();

    // SIGTERM while the API server is unreachable: the drain waits for the reconcile, the
    // lease cannot be renewed, and at the renew deadline the reconcile is abandoned.
    replica.faults().disconnect();
    running.shutdown.shutdown();
    let result = tokio::time::timeout(WAIT, running.task)
        .await
        .expect("the manager stops")
        .expect("the manager does not panic");
    assert!(
        matches!(
            result,
            Err(ManagerError::LeaderElection(
                LeaderElectionError::RenewDeadlineExceeded { .. }
            ))
        ),
        "{result:?}"
    );
}

/// Found by the soak schedule (seed 5058: an API outage, then the leader cut off): a hot
/// standby's watch had been failing during the outage and was waiting out kube's backoff (up to
/// 30 s) when it became the leader, so it reconciled sites deleted and cleaned up meanwhile
/// from its stale cache, re-registering what their cleanup had removed. A new leader now
/// relists every informer whose watch is failing before its controllers start.
#[tokio::test(start_paused = true)]
async fn chaos_soak_a_new_leader_does_not_act_on_a_cache_left_stale_by_a_failing_watch() {
    use windlass::controller::reconciler_fn;
    use windlass::leader::LeaderElectionConfig;
    use windlass::testing::{FaultRule, Verb};

    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for name in ["kept", "victim"] {
        api.create(&PostParams::default(), &configmap(name, "1"))
            .await
            .unwrap();
    }
    let (seen, mut reconciled) = mpsc::unbounded_channel::<(String, String)>();
    let replica = |name: &str| {
        let client = server.client_named(name);
        let seen = seen.clone();
        let who = name.to_string();
        let controller = Controller::new(reconciler_fn(
            move |cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| {
                let _ = seen.send((who.clone(), cm.name_any()));
                async { Ok::<_, kube::Error>(Action::await_change()) }
            },
        ));
        let election = LeaderElectionConfig::new("stale-operator")
            .namespace("default")
            .identity(name)
            .lease_duration(Duration::from_secs(3))
            .renew_deadline(Duration::from_secs(2))
            .retry_period(Duration::from_millis(500));
        let config = Config::default()
            .handle_signals(false)
            .leader_election(election);
        let manager = Manager::with_config(client.client(), config).add(controller);
        let leadership = manager.leadership().unwrap();
        let readiness = manager.readiness();
        (client, leadership, readiness, Running::start(manager))
    };
    let (a, a_leads, _, a_running) = replica("a");
    tokio::time::timeout(WAIT, a_leads.wait_leading())
        .await
        .expect("a leads");
    let (b, b_leads, b_ready, b_running) = replica("b");
    let synced = async {
        while !b_ready.is_ready() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, synced)
        .await
        .expect("the standby's cache syncs");

    // The standby's ConfigMap watch fails from now on (its Lease requests still go through),
    // so it backs off with its cache as it is; meanwhile "victim" is deleted.
    for verb in [Verb::Watch, Verb::List] {
        b.faults().fail(
            FaultRule::status(503)
                .verb(verb)
                .resource("configmaps")
                .times(usize::MAX),
        );
    }
    b.faults().close_watches();
    tokio::time::sleep(Duration::from_secs(20)).await;
    api.delete("victim", &DeleteParams::default())
        .await
        .unwrap();

    // The leader is cut off; the standby takes over, and its watch recovers only then.
    a.faults().disconnect();
    tokio::time::timeout(WAIT, b_leads.wait_leading())
        .await
        .expect("b takes over");
    b.faults().clear();
    tokio::time::sleep(Duration::from_secs(10)).await;

    let mut by_b = Vec::new();
    while let Ok((who, name)) = reconciled.try_recv() {
        if who == "b" {
            by_b.push(name);
        }
    }
    assert!(by_b.contains(&"kept".to_string()), "{by_b:?}");
    assert!(
        !by_b.contains(&"victim".to_string()),
        "the new leader reconciled an object deleted before it led: {by_b:?}"
    );
    b_running.stop().await.unwrap();
    drop(a_running);
}
