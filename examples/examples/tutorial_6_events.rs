//! Tutorial checkpoint 6, "Events": the complete `WebApp` operator. It tells people what it
//! did with Kubernetes Events (`kubectl describe webapp hello`, `kubectl events`), and a host
//! name the DNS provider refuses becomes a `Warning` event and a terminal error, not a retry
//! loop.
//!
//! The example creates two WebApps, one with a host name outside the DNS zone, fixes that one
//! the way a user would, and lists the events the operator published. This is the operator
//! `examples/tests/tutorial.rs` tests.
//!
//! By default everything runs against windlass's in-process test API server; `--kubeconfig`
//! uses your current kubeconfig context instead (and deletes what it created at the end).
//!
//! ```sh
//! cargo run --example tutorial_6_events
//! cargo run --example tutorial_6_events -- --kubeconfig
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{TryStreamExt, future};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodSpec, PodTemplateSpec, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    Condition, LabelSelector, ObjectMeta, OwnerReference,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, conditions, wait::await_condition, watcher};
use kube::{Client, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::info;
use windlass::apply::WriteError;
use windlass::condition;
use windlass::controller::{Action, Context, Controller, Reconciler, TerminalError};
use windlass::finalizer::{Cleanup, CleanupStatus, Finalized};
use windlass::manager::{Config, Manager};
use windlass::owner::{OwnerError, controller_reference};
use windlass::prelude::*;
use windlass::testing::ApiServer;

/// A small web application: an image served by some replicas behind a host name.
// clippy's duplicated_attributes lint takes the two columns' `type = "string"` for one
// attribute written twice (rust-clippy#13238); they belong to different columns.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[windlass(
    group = "tutorial.windlass.rs",
    version = "v1",
    kind = "WebApp",
    namespaced
)]
#[windlass(status = WebAppStatus, shortname = "wa")]
#[windlass(printcolumn(name = "Host", type = "string", json_path = ".spec.host"))]
#[windlass(printcolumn(name = "Replicas", type = "integer", json_path = ".spec.replicas"))]
#[windlass(printcolumn(
    name = "Available",
    type = "string",
    json_path = ".status.conditions[?(@.type==\"Available\")].status"
))]
#[windlass(printcolumn(name = "Age", type = "date", json_path = ".metadata.creationTimestamp"))]
#[serde(rename_all = "camelCase")]
pub struct WebAppSpec {
    /// The container image that serves the application.
    pub image: String,
    /// How many copies to run.
    #[windlass(validation(rule = "self >= 0", message = "replicas cannot be negative"))]
    pub replicas: i32,
    /// The host name the application is reached at, published in DNS by the operator.
    pub host: String,
}

/// What the operator observed about a WebApp.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebAppStatus {
    /// `Available`: enough replicas are up to serve.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// How many replicas are available.
    #[serde(default)]
    pub available_replicas: i32,
    /// The generation of the spec this status describes.
    #[serde(default)]
    pub observed_generation: i64,
}

/// Installs (or updates) the CRD with server-side apply and waits until it is served.
async fn install_crd(client: &Client) -> Result<(), Box<dyn std::error::Error>> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let apply = PatchParams::apply("webapp-tutorial").force();
    crds.patch(WebApp::crd_name(), &apply, &Patch::Apply(WebApp::crd()))
        .await?;
    let established = await_condition(crds, WebApp::crd_name(), conditions::is_crd_established());
    tokio::time::timeout(Duration::from_secs(30), established).await??;
    info!(crd = %WebApp::crd_name(), "the CRD is installed");
    Ok(())
}

// ANCHOR: dns
/// A DNS provider outside the cluster: records from host names to what they point at. A map
/// in this process stands in for a real provider's API.
#[derive(Debug, Default)]
pub struct DnsProvider {
    records: Mutex<BTreeMap<String, String>>,
}

/// What the DNS provider refuses.
#[derive(Debug, thiserror::Error)]
#[error("the DNS provider only serves *.example.com, not {0}")]
pub struct OutsideZone(String);

impl DnsProvider {
    /// Points `host` at `target`; returns whether that changed anything.
    pub fn upsert(&self, host: &str, target: &str) -> Result<bool, OutsideZone> {
        if !host.ends_with(".example.com") {
            return Err(OutsideZone(host.to_string()));
        }
        let mut records = self.records.lock().expect("not poisoned");
        let previous = records.insert(host.to_string(), target.to_string());
        Ok(previous.as_deref() != Some(target))
    }

    /// Removes the record for `host`, if there is one.
    pub fn remove(&self, host: &str) {
        self.records.lock().expect("not poisoned").remove(host);
    }

    /// What `host` points at.
    pub fn lookup(&self, host: &str) -> Option<String> {
        self.records
            .lock()
            .expect("not poisoned")
            .get(host)
            .cloned()
    }
}
// ANCHOR_END: dns

/// The labels of everything a WebApp owns, and the selector of its pods.
fn labels(app: &WebApp) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), app.name_any()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "webapp-operator".to_string(),
        ),
    ])
}

// ANCHOR: children
/// The Deployment a WebApp asks for, owned by it.
fn deployment(app: &WebApp, owner: &OwnerReference) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some(app.name_any()),
            namespace: app.namespace(),
            labels: Some(labels(app)),
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            replicas: Some(app.spec.replicas),
            selector: LabelSelector {
                match_labels: Some(labels(app)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(app)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "web".into(),
                        image: Some(app.spec.image.clone()),
                        ports: Some(vec![ContainerPort {
                            container_port: 80,
                            protocol: Some("TCP".into()),
                            ..ContainerPort::default()
                        }]),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

/// The Service in front of a WebApp's pods, owned by it.
fn service(app: &WebApp, owner: &OwnerReference) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(app.name_any()),
            namespace: app.namespace(),
            labels: Some(labels(app)),
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(labels(app)),
            ports: Some(vec![ServicePort {
                port: 80,
                target_port: Some(IntOrString::Int(80)),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
// ANCHOR_END: children

// ANCHOR: error
/// What a WebApp reconcile can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing a child failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The WebApp cannot own children (it was not read from the API server: no uid).
    #[error(transparent)]
    Owner(#[from] OwnerError),
    /// The WebApp asks for something that retrying cannot fix (a host outside the DNS zone):
    /// it is not retried until it changes.
    #[error(transparent)]
    Invalid(#[from] TerminalError),
}
// ANCHOR_END: error

// ANCHOR: reconciler
/// Keeps a Deployment, a Service and a DNS record for every WebApp.
#[derive(Debug)]
pub struct WebAppReconciler {
    /// Where the WebApps' host names are published.
    pub dns: Arc<DnsProvider>,
}

#[windlass::async_trait]
impl Reconciler for WebAppReconciler {
    type Object = WebApp;
    type Error = Error;

    async fn reconcile(&self, app: Arc<WebApp>, ctx: &Context<WebApp>) -> Result<Action, Error> {
        let ns = app.namespace().unwrap_or_else(|| "default".into());
        // The children name the WebApp as their controller: the garbage collector deletes
        // them with it, and `.owns()` brings their changes back here.
        let owner = controller_reference(app.as_ref())?;

        let deployments: Api<Deployment> = Api::namespaced(ctx.client().clone(), &ns);
        let (stored, op) = ctx.apply(&deployments, &deployment(&app, &owner)).await?;
        info!(webapp = %app.name_any(), reason = %ctx.reason(), %op, "reconciled the Deployment");
        // ANCHOR: normal
        if op.changed() {
            let note = format!(
                "{op} Deployment {} ({} replicas of {})",
                app.name_any(),
                app.spec.replicas,
                app.spec.image
            );
            ctx.recorder()
                .normal(app.as_ref(), "Deployed", "ApplyDeployment", &note)
                .await;
        }
        // ANCHOR_END: normal

        let services: Api<Service> = Api::namespaced(ctx.client().clone(), &ns);
        let (_, op) = ctx.apply(&services, &service(&app, &owner)).await?;
        info!(webapp = %app.name_any(), %op, "reconciled the Service");

        // ANCHOR: publish
        // The finalizer is on `app` already: whatever this publishes, cleanup will remove.
        let target = format!("{}.{ns}.svc.cluster.local", app.name_any());
        match self.dns.upsert(&app.spec.host, &target) {
            Ok(true) => {
                let note = format!("{} points at {target}", app.spec.host);
                ctx.recorder()
                    .normal(app.as_ref(), "Published", "PublishDNS", &note)
                    .await;
            }
            Ok(false) => {}
            Err(refused) => {
                // Retrying will not change the provider's mind; the user has to. Say so where
                // they will look, and wait for the WebApp to change.
                ctx.recorder()
                    .warning(
                        app.as_ref(),
                        "HostRefused",
                        "PublishDNS",
                        &refused.to_string(),
                    )
                    .await;
                return Err(TerminalError::new(refused).into());
            }
        }
        // ANCHOR_END: publish

        // ANCHOR: status
        let available = stored
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or_default();
        let status = status(&app, available);
        let webapps: Api<WebApp> = Api::namespaced(ctx.client().clone(), &ns);
        // Server-side apply of the whole status as the controller; nothing is sent when the
        // controller already wrote exactly this status.
        match ctx.apply_status(&webapps, &app.name_any(), &status).await {
            Ok((_, op)) if op.changed() => {
                info!(webapp = %app.name_any(), available, "updated the status");
            }
            Ok(_) => {}
            // Deleted since the cache last saw it: there is nothing left to report on.
            Err(e) if is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
        // ANCHOR_END: status
        Ok(Action::await_change())
    }
}

// ANCHOR: not_found
/// Whether a write failed because the object is gone.
fn is_not_found(error: &WriteError) -> bool {
    matches!(error.api_error(), Some(kube::Error::Api(status)) if status.code == 404)
}
// ANCHOR_END: not_found

// ANCHOR: conditions
/// The status of `app` when `available` of its replicas are: the `Available` condition
/// keeps its last transition time unless it flips.
fn status(app: &WebApp, available: i32) -> WebAppStatus {
    let mut conditions = app
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let wanted = app.spec.replicas;
    let enough = available >= wanted;
    condition::set_status_condition(
        &mut conditions,
        condition::new(
            "Available",
            enough,
            if enough {
                "ReplicasAvailable"
            } else {
                "WaitingForReplicas"
            },
        )
        .message(format!("{available} of {wanted} replicas available"))
        .observed_generation_of(app),
    );
    WebAppStatus {
        conditions,
        available_replicas: available,
        observed_generation: app.metadata.generation.unwrap_or_default(),
    }
}
// ANCHOR_END: conditions
// ANCHOR_END: reconciler

// ANCHOR: cleanup
#[windlass::async_trait]
impl Cleanup for WebAppReconciler {
    async fn cleanup(
        &self,
        app: Arc<WebApp>,
        ctx: &Context<WebApp>,
    ) -> Result<CleanupStatus, Error> {
        // Removing a record that is not there is fine: cleanup may run more than once.
        self.dns.remove(&app.spec.host);
        let note = format!("removed the DNS record of {}", app.spec.host);
        ctx.recorder()
            .normal(app.as_ref(), "Unpublished", "UnpublishDNS", &note)
            .await;
        Ok(CleanupStatus::Done)
    }
}
// ANCHOR_END: cleanup

// ANCHOR: operator
/// The operator: one controller for WebApps, their children, and their DNS records.
pub fn controller(dns: Arc<DnsProvider>) -> Controller<Finalized<WebAppReconciler>> {
    Controller::new(WebAppReconciler { dns })
        .owns::<Deployment>()
        .owns::<Service>()
        .with_cleanup()
}
// ANCHOR_END: operator

/// Waits up to 30 seconds for an event with `reason` about the WebApp `name`.
async fn wait_for_event(
    events: &Api<Event>,
    name: &str,
    reason: &str,
) -> Result<Event, Box<dyn std::error::Error>> {
    let matching = watcher(events.clone(), watcher::Config::default())
        .applied_objects()
        .try_filter(|e| {
            let about = e.regarding.as_ref().and_then(|r| r.name.as_deref());
            future::ready(about == Some(name) && e.reason.as_deref() == Some(reason))
        });
    let mut matching = std::pin::pin!(matching);
    let found = tokio::time::timeout(Duration::from_secs(30), matching.try_next()).await??;
    found.ok_or_else(|| "the event watch ended".into())
}

/// Waits up to 120 seconds for `cond` to hold for the object `name`.
async fn wait_for<K, F>(api: &Api<K>, name: &str, cond: F) -> Result<(), Box<dyn std::error::Error>>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    F: kube::runtime::wait::Condition<K>,
{
    let wait = await_condition(api.clone(), name, cond);
    tokio::time::timeout(Duration::from_secs(120), wait).await??;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    windlass_examples::init_tracing();
    let (client, _server) = if std::env::args().any(|a| a == "--kubeconfig") {
        (Client::try_default().await?, None)
    } else {
        let server = ApiServer::new();
        (server.client(), Some(server))
    };
    install_crd(&client).await?;

    // ANCHOR: run
    let dns = Arc::new(DnsProvider::default());
    let manager =
        Manager::with_config(client.clone(), Config::default()).add(controller(dns.clone()));
    let shutdown = manager.shutdown_handle();
    let running = tokio::spawn(manager.run());
    // ANCHOR_END: run

    // Play the user.
    let webapps: Api<WebApp> = Api::namespaced(client.clone(), "default");
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    for (name, host) in [("hello", "hello.example.com"), ("typo", "typo.example.org")] {
        let spec = WebAppSpec {
            image: "nginx:1.27".into(),
            replicas: 2,
            host: host.into(),
        };
        webapps
            .create(&PostParams::default(), &WebApp::new(name, spec))
            .await?;
        info!(webapp = name, host, "user created a WebApp");
    }
    let refused = wait_for_event(&events, "typo", "HostRefused").await?;
    info!(note = ?refused.note, "WebApp typo got a warning");

    webapps
        .patch(
            "typo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"host": "typo.example.com"}})),
        )
        .await?;
    info!("user fixed the host name of WebApp typo");
    wait_for_event(&events, "typo", "Published").await?;
    info!(record = ?dns.lookup("typo.example.com"), "WebApp typo is published");

    // ANCHOR: list
    // What `kubectl events` shows.
    for e in events.list(&ListParams::default()).await? {
        let regarding = e.regarding.and_then(|r| r.name).unwrap_or_default();
        info!(
            r#type = e.type_.unwrap_or_default(),
            reason = e.reason.unwrap_or_default(),
            object = format!("webapp/{regarding}"),
            note = e.note.unwrap_or_default(),
            "event"
        );
    }
    // ANCHOR_END: list

    for name in ["hello", "typo"] {
        let uid = webapps.get(name).await?.uid().unwrap_or_default();
        webapps.delete(name, &DeleteParams::default()).await?;
        wait_for(&webapps, name, conditions::is_deleted(&uid)).await?;
    }
    info!(records = ?dns.lookup("hello.example.com"), "both WebApps are gone, and so are their DNS records");

    shutdown.shutdown();
    running.await??;
    Ok(())
}
