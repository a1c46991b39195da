//! Status conditions: a `Database` custom resource runs as a Deployment, and its status says
//! whether it is `Available` (enough replicas are) and `Progressing` (a rollout is under way),
//! as typed conditions with `meta.SetStatusCondition` semantics.
//!
//! The in-process test API server has no kubelet, so the example plays one, marking the
//! Deployment's replicas available, and shows the conditions change.
//!
//! ```sh
//! cargo run --example conditions
//! ```

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{conditions, wait::await_condition};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::info;
use windlass::apply::{DEFAULT_RETRY, WriteError, create_or_patch, retry_on_conflict};
use windlass::condition::{self, ConditionStatus, ConditionType};
use windlass::controller::{Action, Context, Controller, Reconciler};
use windlass::manager::Manager;
use windlass::owner::set_controller_reference;
use windlass::prelude::*;

// ANCHOR: resource
/// A database: some replicas of a database server.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[windlass(
    group = "db.example.com",
    version = "v1",
    kind = "Database",
    namespaced
)]
#[windlass(status = DatabaseStatus)]
pub struct DatabaseSpec {
    /// How many replicas to run.
    pub replicas: i32,
}

/// What the operator reports about a database.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DatabaseStatus {
    /// `Available` and `Progressing`, as `kubectl wait --for=condition=Available` reads them.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// The conditions a database reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseCondition {
    /// Enough replicas are available to serve.
    Available,
    /// Replicas are being added, removed or replaced.
    Progressing,
}

impl ConditionType for DatabaseCondition {
    fn as_str(&self) -> &'static str {
        match self {
            DatabaseCondition::Available => "Available",
            DatabaseCondition::Progressing => "Progressing",
        }
    }
}
// ANCHOR_END: resource

/// What a reconcile can fail with.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

struct Databases;

#[windlass::async_trait]
impl Reconciler for Databases {
    type Object = Database;
    type Error = Error;

    async fn reconcile(&self, db: Arc<Database>, ctx: &Context<Database>) -> Result<Action, Error> {
        let ns = db.namespace().unwrap_or_else(|| "default".into());
        let name = db.name_any();
        // ANCHOR: child
        let deployments = Api::<Deployment>::namespaced(ctx.client().clone(), &ns);
        let mut deployment = Deployment::default();
        deployment.metadata.name = Some(name.clone());
        create_or_patch(&deployments, &mut deployment, |d| {
            set_controller_reference(db.as_ref(), d)?;
            let labels = [("app".to_string(), name.clone())].into();
            d.spec.replicas = Some(db.spec.replicas);
            d.spec.selector.match_labels = Some(labels);
            let template = &mut d.spec.template;
            template.metadata.get_or_insert_default().labels = d.spec.selector.match_labels.clone();
            let pod = template.spec.get_or_insert_default();
            if pod.containers.is_empty() {
                pod.containers.push(Container {
                    name: "postgres".into(),
                    image: Some("postgres:17".into()),
                    ..Container::default()
                });
            }
            Ok(())
        })
        .await?;
        // ANCHOR_END: child

        // ANCHOR: conditions
        let available = deployment
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or_default();
        let wanted = db.spec.replicas;
        let set_conditions = |conditions: &mut Vec<Condition>| {
            let enough = available >= wanted;
            let available_condition = condition::new(
                DatabaseCondition::Available,
                enough,
                if enough {
                    "ReplicasAvailable"
                } else {
                    "WaitingForReplicas"
                },
            )
            .message(format!("{available} of {wanted} replicas available"))
            .observed_generation_of(db.as_ref());
            let progressing = condition::new(
                DatabaseCondition::Progressing,
                available != wanted,
                if available == wanted {
                    "RolledOut"
                } else {
                    "Scaling"
                },
            )
            .observed_generation_of(db.as_ref());
            // `|` not `||`: set both, whatever the first says.
            condition::set_status_condition(conditions, available_condition)
                | condition::set_status_condition(conditions, progressing)
        };

        // Compare against the cached status first: most reconciles change nothing, and then
        // send nothing.
        let mut cached = db.status.clone().unwrap_or_default().conditions;
        if set_conditions(&mut cached) {
            // Other writers may own other conditions in the same list, so update the freshest
            // copy with its resourceVersion, and start over if someone wrote in between.
            let databases = Api::<Database>::namespaced(ctx.client().clone(), &ns);
            retry_on_conflict(DEFAULT_RETRY, || async {
                let mut fresh = databases.get_status(&name).await?;
                let status = fresh.status.get_or_insert_default();
                if set_conditions(&mut status.conditions) {
                    databases
                        .replace_status(&name, &PostParams::default(), &fresh)
                        .await?;
                }
                Ok::<_, Error>(())
            })
            .await?;
        }
        // ANCHOR_END: conditions
        Ok(Action::await_change())
    }
}

fn show(db: &Database) {
    for c in db.status.iter().flat_map(|s| &s.conditions) {
        info!(
            r#type = c.type_,
            status = c.status,
            reason = c.reason,
            detail = c.message,
            observed_generation = c.observed_generation,
            last_transition = %c.last_transition_time.0,
            "condition"
        );
    }
}

/// Waits until the database's condition `type_` has `status` for its current generation.
async fn wait_for(
    dbs: &Api<Database>,
    type_: DatabaseCondition,
    status: ConditionStatus,
    generation: i64,
) -> Result<Database, Box<dyn std::error::Error>> {
    let cond = await_condition(dbs.clone(), "orders", move |db: Option<&Database>| {
        db.and_then(|d| d.status.as_ref()).is_some_and(|s| {
            condition::find_status_condition(&s.conditions, type_).is_some_and(|c| {
                c.status == status.as_str() && c.observed_generation == Some(generation)
            })
        })
    });
    tokio::time::timeout(Duration::from_secs(30), cond).await??;
    Ok(dbs.get("orders").await?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    windlass_examples::init_tracing();
    let server = windlass::testing::ApiServer::new();
    let client = server.client();
    let crds = Api::all(client.clone());
    crds.create(&PostParams::default(), &Database::crd())
        .await?;
    let established = await_condition(crds, Database::crd_name(), conditions::is_crd_established());
    tokio::time::timeout(Duration::from_secs(30), established).await??;

    let manager = Manager::new(client.clone()).add(Controller::new(Databases).owns::<Deployment>());
    let shutdown = manager.shutdown_handle();
    let running = tokio::spawn(manager.run());

    let dbs: Api<Database> = Api::namespaced(client.clone(), "default");
    dbs.create(
        &PostParams::default(),
        &Database::new("orders", DatabaseSpec { replicas: 2 }),
    )
    .await?;
    info!("user created a database with 2 replicas");
    show(
        &wait_for(
            &dbs,
            DatabaseCondition::Available,
            ConditionStatus::False,
            1,
        )
        .await?,
    );

    // Play the kubelet: both replicas come up.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let available = json!({"status": {"replicas": 2, "availableReplicas": 2, "readyReplicas": 2}});
    deployments
        .patch_status("orders", &PatchParams::default(), &Patch::Merge(&available))
        .await?;
    info!("both replicas are available");
    show(&wait_for(&dbs, DatabaseCondition::Available, ConditionStatus::True, 1).await?);

    dbs.patch(
        "orders",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await?;
    info!("user scaled the database to 3 replicas");
    show(
        &wait_for(
            &dbs,
            DatabaseCondition::Available,
            ConditionStatus::False,
            2,
        )
        .await?,
    );

    shutdown.shutdown();
    running.await??;
    Ok(())
}
