//! Tutorial checkpoint 4, "Status and conditions": the operator reports in each `WebApp`'s
//! status how many replicas are available, and an `Available` condition that
//! `kubectl wait --for=condition=Available` understands.
//!
//! The in-process test API server runs no pods, so the example plays the kubelet (marking the
//! Deployment's replicas available) and shows the condition flip from `False` to `True`.
//! Against a cluster (`--kubeconfig`) the pods really start.
//!
//! By default everything runs against windlass's in-process test API server; `--kubeconfig`
//! uses your current kubeconfig context instead (and deletes what it created at the end).
//!
//! ```sh
//! cargo run --example tutorial_4_status
//! cargo run --example tutorial_4_status -- --kubeconfig
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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
use windlass::controller::{Action, Context, Controller, Reconciler};
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
}
// ANCHOR_END: error

// ANCHOR: reconciler
/// Keeps a Deployment and a Service for every WebApp.
#[derive(Debug)]
pub struct WebAppReconciler;

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

        let services: Api<Service> = Api::namespaced(ctx.client().clone(), &ns);
        let (_, op) = ctx.apply(&services, &service(&app, &owner)).await?;
        info!(webapp = %app.name_any(), %op, "reconciled the Service");

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

// ANCHOR: wait
/// Whether a WebApp's `Available` condition has `status` for its current spec: what
/// `kubectl wait --for=condition=Available=True webapp/hello` waits for.
fn available_is(status: &'static str) -> impl Fn(Option<&WebApp>) -> bool {
    move |app| {
        app.is_some_and(|app| {
            let conditions = app
                .status
                .as_ref()
                .map(|s| s.conditions.as_slice())
                .unwrap_or_default();
            condition::find_status_condition(conditions, "Available").is_some_and(|c| {
                c.status == status && c.observed_generation == app.metadata.generation
            })
        })
    }
}
// ANCHOR_END: wait

/// Logs a WebApp's conditions.
fn show(app: &WebApp) {
    for c in app.status.iter().flat_map(|s| &s.conditions) {
        info!(webapp = %app.name_any(), r#type = c.type_, status = c.status, reason = c.reason, message = c.message, "condition");
    }
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
    let use_kubeconfig = std::env::args().any(|a| a == "--kubeconfig");
    let (client, _server) = if use_kubeconfig {
        (Client::try_default().await?, None)
    } else {
        let server = ApiServer::new();
        (server.client(), Some(server))
    };
    install_crd(&client).await?;

    // ANCHOR: run
    let controller = Controller::new(WebAppReconciler)
        .owns::<Deployment>()
        .owns::<Service>();
    let manager = Manager::with_config(client.clone(), Config::default()).add(controller);
    let shutdown = manager.shutdown_handle();
    let running = tokio::spawn(manager.run());
    // ANCHOR_END: run

    // Play the user.
    let webapps: Api<WebApp> = Api::namespaced(client.clone(), "default");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let hello = WebApp::new(
        "hello",
        WebAppSpec {
            image: "nginx:1.27".into(),
            replicas: 2,
            host: "hello.example.com".into(),
        },
    );
    webapps.create(&PostParams::default(), &hello).await?;
    info!("user created WebApp hello");

    if !use_kubeconfig {
        wait_for(&webapps, "hello", available_is("False")).await?;
        show(&webapps.get("hello").await?);
        // Play the kubelet: the test API server runs no pods.
        let up = json!({"status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}});
        deployments
            .patch_status("hello", &PatchParams::default(), &Patch::Merge(&up))
            .await?;
        info!("(playing the kubelet: both replicas are up)");
    }
    wait_for(&webapps, "hello", available_is("True")).await?;
    show(&webapps.get("hello").await?);
    info!("WebApp hello is available");

    webapps.delete("hello", &DeleteParams::default()).await?;
    info!("user deleted WebApp hello");

    shutdown.shutdown();
    running.await??;
    Ok(())
}
