//! Start-up: every object reconciled exactly once, readiness, and a failing runnable.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use serde_json::json;
use windlass::controller::{Controller, ReconcileReason};
use windlass::informer::{InformerConfig, ObjectKey};
use windlass::manager::{BoxError, ManagerError, RunContext, Runnable};
use windlass::testing::{ApiServer, FaultRule, Verb};

use super::support::{
    Recorder, Running, WAIT, configmap, controller_ref, labels_of, manager, next, next_n,
    recording, runs_during, secret,
};

const PRIMARIES: usize = 10;

/// ServiceAccounts labelled `app: <name>` map to the primary ConfigMap `<name>`.
fn by_app_label(sa: &ServiceAccount) -> Vec<ObjectKey> {
    sa.labels()
        .get("app")
        .map(|app| ObjectKey::new(sa.namespace().as_deref(), app))
        .into_iter()
        .collect()
}

#[tokio::test(start_paused = true)]
async fn each_primary_is_reconciled_exactly_once_at_startup_however_many_children_report_in() {
    let server = ApiServer::new();
    let client = server.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    for i in 0..PRIMARIES {
        let mut primary = configmap(&format!("app-{i}"), "1");
        primary.metadata.labels = Some(labels_of(&[("role", "primary")]));
        let primary = cms.create(&PostParams::default(), &primary).await.unwrap();
        for j in 0..3 {
            let child = secret(
                &format!("app-{i}-secret-{j}"),
                vec![controller_ref(&primary)],
                &[],
            );
            secrets
                .create(&PostParams::default(), &child)
                .await
                .unwrap();
        }
        for j in 0..2 {
            let mut child = configmap(&format!("app-{i}-config-{j}"), "1");
            child.metadata.owner_references = Some(vec![controller_ref(&primary)]);
            cms.create(&PostParams::default(), &child).await.unwrap();
        }
        let account: ServiceAccount = serde_json::from_value(json!({
            "metadata": {"name": format!("app-{i}"), "labels": {"app": format!("app-{i}")}}
        }))
        .unwrap();
        accounts
            .create(&PostParams::default(), &account)
            .await
            .unwrap();
    }

    let (rec, mut rx) = Recorder::new();
    let controller = Controller::new(recording(rec.clone()))
        .informer(InformerConfig::default().labels("role=primary"))
        .owns::<Secret>()
        .owns::<ConfigMap>()
        .watches::<ServiceAccount, _>(by_app_label);
    let running = Running::start(manager(client).add(controller));

    let mut runs = next_n(&mut rx, PRIMARIES).await;
    runs.extend(runs_during(&mut rx, Duration::from_secs(60)).await);
    let mut per_primary: BTreeMap<String, usize> = BTreeMap::new();
    for run in &runs {
        assert_eq!(run.reason, ReconcileReason::Startup, "{run:?}");
        *per_primary.entry(run.name.clone()).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> =
        (0..PRIMARIES).map(|i| (format!("app-{i}"), 1)).collect();
    assert_eq!(per_primary, expected);
    running.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_manager_is_ready_only_once_its_caches_have_synced() {
    let server = ApiServer::new();
    let client = server.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &configmap("app", "1"))
        .await
        .unwrap();
    // The first lists fail, so the cache cannot sync for a while.
    server.faults().fail(
        FaultRule::status(503)
            .verb(Verb::List)
            .resource("configmaps")
            .times(3),
    );

    let (rec, mut rx) = Recorder::new();
    let manager = manager(client).add(Controller::new(recording(rec)));
    let readiness = manager.readiness();
    assert!(!readiness.is_ready(), "not ready before the manager runs");
    let running = Running::start(manager);

    // Paused clock: each 1 ms step lets every task run until it is idle.
    let failed_list = |r: &windlass::testing::RequestRecord| {
        r.resource.as_deref() == Some("configmaps") && r.status == 503
    };
    let mut steps = 0;
    while !server.requests().iter().any(failed_list) {
        steps += 1;
        assert!(steps < 1000, "the controller lists ConfigMaps");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        !readiness.is_ready(),
        "not ready while the first list fails"
    );

    assert_eq!(next(&mut rx).await.name, "app");
    assert!(readiness.is_ready(), "ready once the cache has synced");
    running.stop().await.unwrap();
    assert!(!readiness.is_ready(), "not ready once shut down");
}

struct Broken;

#[async_trait]
impl Runnable for Broken {
    fn name(&self) -> String {
        "webhook-server".into()
    }

    async fn run(self: Box<Self>, _ctx: RunContext) -> Result<(), BoxError> {
        Err("the port is already in use".into())
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_runnable_stops_the_manager_with_its_error() {
    let server = ApiServer::new();
    let (rec, _rx) = Recorder::new();
    let manager = manager(server.client())
        .add(Controller::new(recording(rec)))
        .add(Broken);
    let result = tokio::time::timeout(WAIT, manager.run())
        .await
        .expect("run() returns");
    match result {
        Err(ManagerError::Runnable { name, source }) => {
            assert_eq!(name, "webhook-server");
            assert_eq!(source.to_string(), "the port is already in use");
        }
        other => panic!("expected the runnable's error, got {other:?}"),
    }
}

struct Panicking;

#[async_trait]
impl Runnable for Panicking {
    fn name(&self) -> String {
        "metrics-server".into()
    }

    async fn run(self: Box<Self>, _ctx: RunContext) -> Result<(), BoxError> {
        panic!("the metrics registry was poisoned");
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_runnable_stops_the_manager_with_its_name() {
    let server = ApiServer::new();
    let (rec, _rx) = Recorder::new();
    let manager = manager(server.client())
        .add(Controller::new(recording(rec)))
        .add(Panicking);
    let result = tokio::time::timeout(WAIT, manager.run())
        .await
        .expect("run() returns");
    match result {
        Err(ManagerError::Runnable { name, source }) => {
            assert_eq!(name, "metrics-server");
            assert!(
                source
                    .to_string()
                    .contains("the metrics registry was poisoned"),
                "{source}"
            );
        }
        other => panic!("expected the runnable's panic, got {other:?}"),
    }
}
