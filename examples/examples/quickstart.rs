//! The quickstart: a small, complete operator.
//!
//! A `Website` custom resource asks for a web server (an image and a number of replicas). The
//! operator keeps a Deployment and a Service for every Website, owned by it (so they go when it
//! goes), and reports what it did in the Website's status. The example then plays the part of a
//! user: it creates three Websites, scales one and deletes another, and shows the operator
//! reacting to each.
//!
//! By default everything runs in this process against windlass's test API server, so no cluster
//! is needed. With `--kubeconfig` it uses your current kubeconfig context instead (installing
//! the CRD there and cleaning up its Websites at the end).
//!
//! ```sh
//! cargo run --example quickstart
//! cargo run --example quickstart -- --kubeconfig
//! cargo run --example quickstart -- --log-json    # one JSON object per log line
//! ```

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{conditions, wait::await_condition};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::info;
use windlass::apply::WriteError;
use windlass::controller::{Action, Context, Controller, Reconciler};
use windlass::manager::{Config, Manager};
use windlass::owner::{OwnerError, controller_reference};
use windlass::prelude::*;

// ANCHOR: resource
/// A website: a container image served by some number of replicas.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[windlass(
    group = "quickstart.windlass.rs",
    version = "v1",
    kind = "Website",
    namespaced
)]
#[windlass(status = WebsiteStatus, shortname = "ws")]
#[windlass(printcolumn(name = "Replicas", type = "integer", json_path = ".spec.replicas"))]
#[windlass(printcolumn(name = "Phase", type = "string", json_path = ".status.phase"))]
#[serde(rename_all = "camelCase")]
pub struct WebsiteSpec {
    /// The container image that serves the site.
    pub image: String,
    /// How many copies to run.
    pub replicas: i32,
}

/// What the operator last did for a website.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebsiteStatus {
    /// `Ready` once the Deployment and Service match the spec.
    pub phase: String,
    /// The Deployment serving the site.
    pub deployment: String,
    /// The Service in front of it.
    pub service: String,
    /// The generation of the spec this status describes.
    pub observed_generation: i64,
}
// ANCHOR_END: resource

// ANCHOR: reconciler
/// Keeps a Deployment and a Service for every Website.
struct WebsiteReconciler;

/// What a Website reconcile can fail with.
#[derive(Debug, thiserror::Error)]
enum Error {
    /// Writing a child failed.
    #[error(transparent)]
    Apply(#[from] WriteError),
    /// The Website cannot own children (it has no uid: it was not read from the API server).
    #[error(transparent)]
    Owner(#[from] OwnerError),
    /// A child does not fit its type (a mistake in the templates below).
    #[error("building a child: {0}")]
    Template(#[from] serde_json::Error),
    /// Writing the Website's status failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

#[windlass::async_trait]
impl Reconciler for WebsiteReconciler {
    type Object = Website;
    type Error = Error;

    async fn reconcile(&self, site: Arc<Website>, ctx: &Context<Website>) -> Result<Action, Error> {
        let ns = site.namespace().unwrap_or_else(|| "default".into());
        let name = site.name_any();

        // ANCHOR: children
        // The children carry the Website as their controller: they are garbage collected with
        // it, and their changes bring the controller back here.
        let owner = controller_reference(site.as_ref())?;
        let labels =
            json!({"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "quickstart"});
        let deployment: Deployment = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": [owner]},
            "spec": {
                "replicas": site.spec.replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{
                        "name": "web",
                        "image": site.spec.image,
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    }]}
                }
            }
        }))?;
        // Server-side apply as the controller: one GET, and no write at all when the
        // Deployment already is what this controller last applied.
        let deployments = Api::<Deployment>::namespaced(ctx.client().clone(), &ns);
        let (_, op) = ctx.apply(&deployments, &deployment).await?;
        if op.changed() {
            let note = format!("{op} Deployment {name} ({} replicas)", site.spec.replicas);
            ctx.recorder()
                .normal(site.as_ref(), "Deployed", "Deploy", &note)
                .await;
            info!(kind = "Deployment", %name, %op, "applied");
        }
        // ANCHOR_END: children

        let service: Service = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": [owner]},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]}
        }))?;
        let services = Api::<Service>::namespaced(ctx.client().clone(), &ns);
        let (_, op) = ctx.apply(&services, &service).await?;
        if op.changed() {
            info!(kind = "Service", %name, %op, "applied");
        }

        let status = WebsiteStatus {
            phase: "Ready".into(),
            deployment: name.clone(),
            service: name.clone(),
            observed_generation: site.metadata.generation.unwrap_or_default(),
        };
        // The cached Website says whether the status is already right: no request if it is.
        if site.status.as_ref() != Some(&status) {
            let websites = Api::<Website>::namespaced(ctx.client().clone(), &ns);
            websites
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await?;
            info!(website = %name, replicas = site.spec.replicas, reason = %ctx.reason(), "website ready");
        }
        Ok(Action::await_change())
    }
}
// ANCHOR_END: reconciler

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    windlass_examples::init_tracing();

    // ANCHOR: client
    let use_kubeconfig = std::env::args().any(|a| a == "--kubeconfig");
    let (client, _server) = if use_kubeconfig {
        info!("using the current kubeconfig context");
        // Client-side flow control, as controller-runtime's clients have: 20 requests per
        // second with bursts of 30, and 429 answers retried after their Retry-After.
        let config = kube::Config::infer().await?;
        (windlass::client::Config::default().build(config)?, None)
    } else {
        info!(
            "starting windlass's in-process test API server (pass --kubeconfig to use a cluster)"
        );
        let server = windlass::testing::ApiServer::new();
        (server.client(), Some(server))
    };
    // ANCHOR_END: client

    // ANCHOR: install
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    match crds.create(&PostParams::default(), &Website::crd()).await {
        Ok(_) => info!(crd = %Website::crd_name(), "installed the CRD"),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            info!(crd = %Website::crd_name(), "the CRD is already installed")
        }
        Err(e) => return Err(e.into()),
    }
    let established = await_condition(crds, Website::crd_name(), conditions::is_crd_established());
    tokio::time::timeout(Duration::from_secs(30), established).await??;
    // ANCHOR_END: install

    // ANCHOR: run
    let controller = Controller::new(WebsiteReconciler)
        .owns::<Deployment>()
        .owns::<Service>();
    let manager = Manager::with_config(client.clone(), Config::default()).add(controller);
    let shutdown = manager.shutdown_handle();
    let running = tokio::spawn(manager.run());
    // ANCHOR_END: run

    // Play the user: create three websites, scale one, delete one.
    let websites: Api<Website> = Api::namespaced(client.clone(), "default");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    for (name, image, replicas) in [
        ("blog", "nginx:1.27", 1),
        ("shop", "nginx:1.27", 2),
        ("docs", "httpd:2.4", 1),
    ] {
        let site = Website::new(
            name,
            WebsiteSpec {
                image: image.into(),
                replicas,
            },
        );
        websites.create(&PostParams::default(), &site).await?;
        info!(website = name, "user created a website");
    }
    for name in ["blog", "shop", "docs"] {
        let ready = await_condition(websites.clone(), name, |w: Option<&Website>| {
            w.and_then(|w| w.status.as_ref())
                .is_some_and(|s| s.phase == "Ready")
        });
        tokio::time::timeout(Duration::from_secs(30), ready).await??;
    }

    websites
        .patch(
            "blog",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await?;
    info!(website = "blog", "user scaled the website to 3 replicas");
    let scaled = await_condition(deployments.clone(), "blog", |d: Option<&Deployment>| {
        d.and_then(|d| d.spec.replicas) == Some(3)
    });
    tokio::time::timeout(Duration::from_secs(30), scaled).await??;
    info!(deployment = "blog", "deployment now asks for 3 replicas");

    let docs_uid = deployments.get("docs").await?.uid().unwrap_or_default();
    websites.delete("docs", &DeleteParams::default()).await?;
    info!(website = "docs", "user deleted a website");
    let collected = await_condition(
        deployments.clone(),
        "docs",
        conditions::is_deleted(&docs_uid),
    );
    tokio::time::timeout(Duration::from_secs(30), collected).await??;
    info!(
        deployment = "docs",
        "its deployment was garbage collected with it"
    );

    if use_kubeconfig {
        for name in ["blog", "shop"] {
            websites.delete(name, &DeleteParams::default()).await?;
        }
    }
    shutdown.shutdown();
    running.await??;
    info!("done");
    Ok(())
}
