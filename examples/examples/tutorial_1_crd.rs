//! Tutorial checkpoint 1, "Defining the CRD": the `WebApp` custom resource the tutorial's
//! operator is about, its CRD installed, and the API server checking what users write.
//!
//! A `WebApp` asks for a small web application: a container image, a number of replicas and
//! the host name it is reached at. Nothing acts on it yet: this checkpoint installs the CRD,
//! creates a WebApp, and shows the API server refusing one that breaks a validation rule.
//!
//! By default everything runs against windlass's in-process test API server; `--kubeconfig`
//! uses your current kubeconfig context instead (and deletes what it created at the end).
//!
//! ```sh
//! cargo run --example tutorial_1_crd
//! cargo run --example tutorial_1_crd -- --kubeconfig
//! ```

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{conditions, wait::await_condition};
use kube::{Client, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::info;
use windlass::prelude::*;
use windlass::testing::ApiServer;

// ANCHOR: resource
/// A small web application: an image served by some replicas behind a host name.
// clippy's duplicated_attributes lint takes the two columns' `type = "string"` for one
// attribute written twice; they belong to different columns.
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
// ANCHOR_END: resource

// ANCHOR: install
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
// ANCHOR_END: install

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    windlass_examples::init_tracing();

    // ANCHOR: connect
    // The in-process API server, or the cluster of your kubeconfig with `--kubeconfig`.
    let (client, _server) = if std::env::args().any(|a| a == "--kubeconfig") {
        (Client::try_default().await?, None)
    } else {
        let server = ApiServer::new();
        (server.client(), Some(server))
    };
    // ANCHOR_END: connect
    install_crd(&client).await?;

    // ANCHOR: use
    let webapps: Api<WebApp> = Api::namespaced(client.clone(), "default");
    let hello = WebApp::new(
        "hello",
        WebAppSpec {
            image: "nginx:1.27".into(),
            replicas: 2,
            host: "hello.example.com".into(),
        },
    );
    let created = webapps.create(&PostParams::default(), &hello).await?;
    info!(
        name = %created.name_any(),
        generation = created.metadata.generation,
        status = ?created.status,
        "created a WebApp; nothing acts on it yet"
    );

    let mut broken = hello.clone();
    broken.metadata.name = Some("broken".into());
    broken.spec.replicas = -1;
    match webapps.create(&PostParams::default(), &broken).await {
        Err(kube::Error::Api(status)) => {
            info!(code = status.code, message = %status.message, "the API server refused it")
        }
        other => return Err(format!("expected a validation error, got {other:?}").into()),
    }
    // ANCHOR_END: use

    webapps.delete("hello", &DeleteParams::default()).await?;
    info!("deleted the WebApp");
    Ok(())
}
