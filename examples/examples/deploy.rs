//! Deploying an operator: print everything `kubectl apply -f -` needs to install it — its
//! namespace, CRDs, service account, the minimal RBAC for what its controllers do, and a
//! Deployment — from the controllers themselves.
//!
//! ```sh
//! cargo run --example deploy                      # print the install YAML
//! cargo run --example deploy | kubectl apply -f -  # install it
//! ```

use std::sync::Arc;

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use windlass::controller::{Action, Context, Controller, Reconciler};
use windlass::deploy::Config;
use windlass::finalizer::{Cleanup, CleanupStatus};
use windlass::informer::ObjectKey;
use windlass::manager::Manager;
use windlass::prelude::*;
use windlass::rbac::{self, Permission};

/// Nightly backups of a database to a bucket.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[windlass(
    group = "backup.example.com",
    version = "v1",
    kind = "Backup",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// A cron schedule.
    pub schedule: String,
    /// The Secret with the bucket's credentials.
    pub credentials: String,
}

/// Runs a CronJob per Backup, and deletes the bucket's objects when the Backup goes.
struct Backups;

#[windlass::async_trait]
impl Reconciler for Backups {
    type Object = Backup;
    type Error = kube::Error;
    async fn reconcile(&self, _: Arc<Backup>, _: &Context<Backup>) -> Result<Action, kube::Error> {
        Ok(Action::await_change())
    }
}

#[windlass::async_trait]
impl Cleanup for Backups {
    async fn cleanup(
        &self,
        _: Arc<Backup>,
        _: &Context<Backup>,
    ) -> Result<CleanupStatus, kube::Error> {
        Ok(CleanupStatus::Done)
    }
}

// ANCHOR: operator
/// The operator's manager: the same function builds it to run and to print its install.
fn operator(client: Client) -> Manager {
    let backups = Controller::new(Backups)
        .with_cleanup()
        .owns::<CronJob>()
        // A Backup is reconciled again when the Secret it names changes.
        .watches::<Secret, _>(|secret: &Secret| {
            let _ = secret;
            Vec::<ObjectKey>::new()
        })
        // The reconciler also reads the cluster's backup policy, which nothing above declares.
        .permission(Permission::cluster(rbac::rule(
            "",
            &["configmaps"],
            &["get"],
        )));
    Manager::new(client).add(backups)
}
// ANCHOR_END: operator

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ANCHOR: print
    // Building a client connects to nothing, so printing needs no cluster.
    let client = Client::try_from(kube::Config::new("https://kubernetes.invalid".parse()?))?;
    let config = Config::new("backup-operator", "ghcr.io/example/backup-operator:1.0.0")
        .namespace("backup-system")
        .leader_election(true)
        .replicas(2)
        .crd::<Backup>()
        .env("RUST_LOG", "info");
    print!("{}", operator(client).manifests(&config)?.to_yaml()?);
    // ANCHOR_END: print
    Ok(())
}
