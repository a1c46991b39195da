//! Tutorial checkpoint 7, "Two replicas": the `WebApp` operator run the way it runs in
//! production, as more than one replica with leader election, so that a node going down or a
//! rolling update never leaves WebApps unattended, and two replicas never reconcile at once.
//!
//! Two replicas run in this process, each with its own client of the in-process API server, as
//! two pods would. Only the one holding the Lease reconciles. The example creates a WebApp,
//! shuts the leader down gracefully, and shows the other replica taking over and handling the
//! user's next change.
//!
//! ```sh
//! cargo run --example tutorial_7_replicas
//! cargo run --example tutorial_7_replicas -- --kubeconfig
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodSpec, PodTemplateSpec, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    Condition, LabelSelector, ObjectMeta, OwnerReference,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{conditions, wait::await_condition};
use kube::{Client, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::info;
use windlass::apply::WriteError;
use windlass::condition;
use windlass::controller::{Action, Context, Controller, Reconciler, TerminalError};
use windlass::finalizer::{Cleanup, CleanupStatus, Finalized};
use windlass::leader::LeaderElectionConfig;
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

/// The operator's manager, as every replica runs it: one Lease, named after the operator, in
/// the pod's own namespace (`default` outside a pod). `identity` names the replica in the
/// Lease; unset, it is the pod's name and a random suffix.
pub fn operator(client: Client, dns: Arc<DnsProvider>, identity: Option<&str>) -> Manager {
    let mut election = LeaderElectionConfig::new("webapp-operator");
    if let Some(identity) = identity {
        election = election.identity(identity);
    }
    let config = Config::default().leader_election(election);
    Manager::with_config(client, config).add(controller(dns))
}
// ANCHOR_END: operator

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
    // ANCHOR: clients
    // Two replicas, each with its own connection, as two pods would have.
    let (clients, server) = if std::env::args().any(|a| a == "--kubeconfig") {
        let clients = [Client::try_default().await?, Client::try_default().await?];
        (clients, None)
    } else {
        let server = ApiServer::new();
        let clients = [
            server.client_named("replica-a").client(),
            server.client_named("replica-b").client(),
        ];
        (clients, Some(server))
    };
    // ANCHOR_END: clients
    let [a_client, b_client] = clients;
    let client = server
        .as_ref()
        .map_or_else(|| a_client.clone(), ApiServer::client);
    install_crd(&client).await?;

    // ANCHOR: start
    // The DNS provider is outside the cluster: both replicas talk to the same one.
    let dns = Arc::new(DnsProvider::default());
    let a = operator(a_client, dns.clone(), Some("replica-a"));
    let b = operator(b_client, dns.clone(), Some("replica-b"));
    let (a_leads, b_leads) = (
        a.leadership().expect("elects"),
        b.leadership().expect("elects"),
    );
    let (a_stop, b_stop) = (a.shutdown_handle(), b.shutdown_handle());
    let a_run = tokio::spawn(a.run());
    let b_run = tokio::spawn(b.run());
    // ANCHOR_END: start

    let elected = async {
        tokio::select! {
            _ = a_leads.wait_leading() => {}
            _ = b_leads.wait_leading() => {}
        }
    };
    tokio::time::timeout(Duration::from_secs(60), elected).await?;
    let (leader, follower, leader_stop, follower_stop, leader_run, follower_run) =
        if a_leads.is_leader() {
            (a_leads, b_leads, a_stop, b_stop, a_run, b_run)
        } else {
            (b_leads, a_leads, b_stop, a_stop, b_run, a_run)
        };
    info!(
        leader = leader.identity(),
        standby = follower.identity(),
        "one replica leads"
    );

    // Play the user.
    let webapps: Api<WebApp> = Api::namespaced(client.clone(), "default");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let spec = WebAppSpec {
        image: "nginx:1.27".into(),
        replicas: 2,
        host: "hello.example.com".into(),
    };
    webapps
        .create(&PostParams::default(), &WebApp::new("hello", spec))
        .await?;
    wait_for(&deployments, "hello", |d: Option<&Deployment>| d.is_some()).await?;
    info!(by = leader.identity(), "WebApp hello is deployed");

    // ANCHOR: handover
    let began = Instant::now();
    leader_stop.shutdown();
    tokio::time::timeout(Duration::from_secs(60), follower.wait_leading()).await?;
    info!(
        after = ?began.elapsed(),
        "{} shut down gracefully and released the lease; {} took over",
        leader.identity(),
        follower.identity()
    );
    // ANCHOR_END: handover
    leader_run.await??;

    webapps
        .patch(
            "hello",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await?;
    info!("user scaled WebApp hello to 3 replicas");
    wait_for(&deployments, "hello", |d: Option<&Deployment>| {
        d.and_then(|d| d.spec.replicas) == Some(3)
    })
    .await?;
    info!(
        by = follower.identity(),
        "Deployment hello now asks for 3 replicas"
    );

    let uid = webapps.get("hello").await?.uid().unwrap_or_default();
    webapps.delete("hello", &DeleteParams::default()).await?;
    wait_for(&webapps, "hello", conditions::is_deleted(&uid)).await?;
    info!(record = ?dns.lookup("hello.example.com"), "WebApp hello is gone, and so is its DNS record");

    follower_stop.shutdown();
    follower_run.await??;
    info!("both replicas stopped; the lease is released");
    Ok(())
}
