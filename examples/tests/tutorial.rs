//! Tests of the tutorial's `WebApp` operator (checkpoint 6), written the way you would test
//! your own operator: against `windlass::testing`'s API server, in-process, with no cluster.
//!
//! In your own crate the operator lives in its library (`src/lib.rs`) and a test says
//! `use my_operator::{controller, WebApp, ...}`. The tutorial's operator is an example file,
//! so this test includes that file as a module instead.
//!
//! Every wait is on a condition, bounded by a timeout: no test sleeps.

// ANCHOR: include
#[path = "../examples/tutorial_6_events.rs"]
#[allow(dead_code, unreachable_pub)]
mod webapp;

use webapp::{DnsProvider, WebApp, WebAppSpec, controller};
// ANCHOR_END: include

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, future};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{Condition, await_condition};
use kube::runtime::{WatchStreamExt, conditions, watcher};
use kube::{Client, CustomResourceExt, Resource, ResourceExt};
use serde_json::json;
use windlass::condition;
use windlass::manager::{Config, Manager, ShutdownHandle};
use windlass::testing::{ApiServer, FaultRule, Verb};

// ANCHOR: harness
/// The operator running against a fresh API server, and what a test needs to talk to both.
struct Operator {
    server: ApiServer,
    client: Client,
    dns: Arc<DnsProvider>,
    shutdown: ShutdownHandle,
    running: tokio::task::JoinHandle<Result<(), windlass::manager::ManagerError>>,
}

impl Operator {
    /// Starts an API server, installs the CRD, and runs the operator on it.
    async fn start() -> Operator {
        let server = ApiServer::new();
        let client = server.client();
        let crds = Api::all(client.clone());
        crds.create(&PostParams::default(), &WebApp::crd())
            .await
            .expect("the CRD is valid");
        within(await_condition(
            crds,
            WebApp::crd_name(),
            conditions::is_crd_established(),
        ))
        .await
        .expect("the CRD is established");

        let dns = Arc::new(DnsProvider::default());
        let config = Config::default().handle_signals(false);
        let manager = Manager::with_config(client.clone(), config).add(controller(dns.clone()));
        let shutdown = manager.shutdown_handle();
        let running = tokio::spawn(manager.run());
        Operator {
            server,
            client,
            dns,
            shutdown,
            running,
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), "default")
    }

    /// Waits until `cond` holds for the object `name` of kind `K`, and returns it.
    async fn wait<K>(&self, name: &str, cond: impl Condition<K>) -> Option<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + Send
            + 'static,
        K::DynamicType: Default,
    {
        within(await_condition(self.api::<K>(), name, cond))
            .await
            .unwrap_or_else(|e| panic!("waiting for {name}: {e}"))
    }

    /// Shuts the operator down gracefully; it must stop without an error.
    async fn stop(self) {
        self.shutdown.shutdown();
        self.running
            .await
            .expect("the manager does not panic")
            .expect("the manager stops cleanly");
    }
}

/// Runs `wait` for at most 30 seconds: a test fails, it never hangs.
async fn within<T, E: std::fmt::Display>(
    wait: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(Duration::from_secs(30), wait).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out after 30 s".into()),
    }
}

fn webapp(name: &str, host: &str) -> WebApp {
    WebApp::new(
        name,
        WebAppSpec {
            image: "nginx:1.27".into(),
            replicas: 2,
            host: host.into(),
        },
    )
}
// ANCHOR_END: harness

/// Whether the WebApp's `Available` condition is `status` for its current generation.
fn available_is(status: &'static str) -> impl Condition<WebApp> {
    move |app: Option<&WebApp>| {
        app.is_some_and(|app| {
            let conditions = app.status.as_ref().map(|s| &s.conditions[..]);
            condition::find_status_condition(conditions.unwrap_or_default(), "Available")
                .is_some_and(|c| {
                    c.status == status && c.observed_generation == app.metadata.generation
                })
        })
    }
}

/// Waits for an event with `reason` about the object `name`.
async fn event(client: &Client, name: &str, reason: &str) -> Event {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let mut found = watcher(events, watcher::Config::default())
        .applied_objects()
        .try_filter(|e| {
            let about = e.regarding.as_ref().and_then(|r| r.name.as_deref());
            future::ready(about == Some(name) && e.reason.as_deref() == Some(reason))
        })
        .boxed();
    within(found.try_next())
        .await
        .unwrap_or_else(|e| panic!("waiting for event {reason} about {name}: {e}"))
        .expect("the event watch does not end")
}

// ANCHOR: children_test
#[tokio::test]
async fn a_webapp_gets_an_owned_deployment_and_service_and_a_dns_record() {
    let op = Operator::start().await;
    let app = op
        .api::<WebApp>()
        .create(
            &PostParams::default(),
            &webapp("hello", "hello.example.com"),
        )
        .await
        .unwrap();

    let deployment = op
        .wait("hello", |d: Option<&Deployment>| d.is_some())
        .await
        .unwrap();
    assert_eq!(deployment.spec.replicas, Some(2));
    let pod = deployment.spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.containers[0].image.as_deref(), Some("nginx:1.27"));
    let owner = &deployment.owner_references()[0];
    assert_eq!(
        (owner.uid.as_str(), owner.controller),
        (app.uid().unwrap().as_str(), Some(true))
    );

    let service = op
        .wait("hello", |s: Option<&Service>| s.is_some())
        .await
        .unwrap();
    assert_eq!(service.owner_references()[0].uid, app.uid().unwrap());

    // The record is published before the status is written: once there is a status, the
    // record is there.
    op.wait("hello", available_is("False")).await;
    assert_eq!(
        op.dns.lookup("hello.example.com").as_deref(),
        Some("hello.default.svc.cluster.local")
    );
    op.stop().await;
}
// ANCHOR_END: children_test

// ANCHOR: status_test
#[tokio::test]
async fn a_webapp_is_available_once_its_replicas_are() {
    let op = Operator::start().await;
    let webapps = op.api::<WebApp>();
    webapps
        .create(
            &PostParams::default(),
            &webapp("hello", "hello.example.com"),
        )
        .await
        .unwrap();
    op.wait("hello", available_is("False")).await;

    // The test API server runs no pods: play the kubelet.
    let up = json!({"status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}});
    op.api::<Deployment>()
        .patch_status("hello", &PatchParams::default(), &Patch::Merge(&up))
        .await
        .unwrap();
    let app = op.wait("hello", available_is("True")).await.unwrap();
    assert_eq!(app.status.unwrap().available_replicas, 2);

    // Scaling up makes it unavailable again, for the new generation.
    webapps
        .patch(
            "hello",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    let app = op.wait("hello", available_is("False")).await.unwrap();
    assert_eq!(app.metadata.generation, Some(2));
    op.stop().await;
}
// ANCHOR_END: status_test

// ANCHOR: cleanup_test
#[tokio::test]
async fn deleting_a_webapp_removes_its_dns_record_then_its_children() {
    let op = Operator::start().await;
    let webapps = op.api::<WebApp>();
    webapps
        .create(
            &PostParams::default(),
            &webapp("hello", "hello.example.com"),
        )
        .await
        .unwrap();
    let app = op.wait("hello", available_is("False")).await.unwrap();
    assert_eq!(app.finalizers(), ["tutorial.windlass.rs/webapp"]);
    let deployment_uid = op
        .api::<Deployment>()
        .get("hello")
        .await
        .unwrap()
        .uid()
        .unwrap();

    webapps
        .delete("hello", &DeleteParams::default())
        .await
        .unwrap();
    op.wait(
        "hello",
        conditions::is_deleted::<WebApp>(&app.uid().unwrap()),
    )
    .await;
    assert_eq!(op.dns.lookup("hello.example.com"), None);
    op.wait(
        "hello",
        conditions::is_deleted::<Deployment>(&deployment_uid),
    )
    .await;
    event(&op.client, "hello", "Unpublished").await;
    op.stop().await;
}
// ANCHOR_END: cleanup_test

#[tokio::test]
async fn a_deployment_edited_by_hand_is_put_back() {
    let op = Operator::start().await;
    op.api::<WebApp>()
        .create(
            &PostParams::default(),
            &webapp("hello", "hello.example.com"),
        )
        .await
        .unwrap();
    op.wait("hello", |d: Option<&Deployment>| d.is_some()).await;

    op.api::<Deployment>()
        .patch(
            "hello",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    op.wait("hello", |d: Option<&Deployment>| {
        d.and_then(|d| d.spec.replicas) == Some(2)
    })
    .await;
    op.stop().await;
}

// ANCHOR: warning_test
#[tokio::test]
async fn a_host_outside_the_zone_is_a_warning_until_the_user_fixes_it() {
    let op = Operator::start().await;
    let webapps = op.api::<WebApp>();
    webapps
        .create(&PostParams::default(), &webapp("typo", "typo.example.org"))
        .await
        .unwrap();
    let warning = event(&op.client, "typo", "HostRefused").await;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(op.dns.lookup("typo.example.org"), None);

    webapps
        .patch(
            "typo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"host": "typo.example.com"}})),
        )
        .await
        .unwrap();
    event(&op.client, "typo", "Published").await;
    assert!(op.dns.lookup("typo.example.com").is_some());
    op.stop().await;
}
// ANCHOR_END: warning_test

// ANCHOR: fault_test
#[tokio::test]
async fn a_failed_write_is_retried_until_the_webapp_converges() {
    let op = Operator::start().await;
    // The API server refuses the first two Service writes, as an overloaded one might.
    op.server.faults().fail(
        FaultRule::status(500)
            .verb(Verb::Patch)
            .resource("services")
            .times(2),
    );
    op.api::<WebApp>()
        .create(
            &PostParams::default(),
            &webapp("hello", "hello.example.com"),
        )
        .await
        .unwrap();

    op.wait("hello", |s: Option<&Service>| s.is_some()).await;
    op.wait("hello", available_is("False")).await;
    let refused = op
        .server
        .requests()
        .iter()
        .filter(|r| r.verb == Some(Verb::Patch) && r.path.ends_with("/services/hello"))
        .count();
    assert!(
        refused >= 3,
        "two refused applies and one that worked, saw {refused}"
    );
    op.stop().await;
}
// ANCHOR_END: fault_test
