//! A controller on a built-in kind: a ConfigMap syncer. A ConfigMap in the `platform`
//! namespace labelled `sync.example.com/replicate=true` is copied into every namespace its
//! `sync.example.com/to` annotation lists (say, a CA bundle every team needs), and the copies
//! follow it: changed with it, put back when edited by hand, removed from namespaces it no
//! longer lists, and deleted with it.
//!
//! Copies live in other namespaces than their source, where owner references cannot reach,
//! so the controller deletes them itself, from a finalizer. It watches the copies too (a mapped
//! watch from each copy back to its source). Everything runs against windlass's in-process
//! test API server.
//!
//! ```sh
//! cargo run --example configmap_sync
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{conditions, wait::await_condition};
use kube::{Client, ResourceExt};
use serde_json::json;
use tracing::info;
use windlass::apply::WriteError;
use windlass::controller::{Action, Context, Controller, Reconciler};
use windlass::finalizer::{Cleanup, CleanupStatus};
use windlass::informer::{InformerConfig, ObjectKey};
use windlass::manager::Manager;
use windlass::testing::ApiServer;

/// Marks a ConfigMap to copy (on the source).
const REPLICATE: &str = "sync.example.com/replicate";
/// Lists the namespaces to copy it into (on the source).
const TO: &str = "sync.example.com/to";
/// Names a copy's source, as `<namespace>.<name>` (on the copies).
const FROM: &str = "sync.example.com/from";
/// Where sources live.
const SOURCES: &str = "platform";

// ANCHOR: reconciler
/// Copies source ConfigMaps into the namespaces they list.
#[derive(Debug)]
struct Syncer;

/// The namespaces a source asks to be copied into.
fn targets(source: &ConfigMap) -> BTreeSet<String> {
    let to = source
        .annotations()
        .get(TO)
        .map(String::as_str)
        .unwrap_or("");
    to.split(',')
        .map(str::trim)
        .filter(|ns| !ns.is_empty() && *ns != SOURCES)
        .map(String::from)
        .collect()
}

/// The `FROM` label of a source's copies.
fn from(source: &ConfigMap) -> String {
    format!("{SOURCES}.{}", source.name_any())
}

/// The informer of the copies: every ConfigMap with a `FROM` label.
fn copies_informer() -> InformerConfig {
    InformerConfig::default().labels(FROM)
}

/// The namespaces holding a copy of `source`, as the cache knows them (no API request).
fn namespaces_with_copies(source: &ConfigMap, ctx: &Context<ConfigMap>) -> BTreeSet<String> {
    let from = from(source);
    let copies = ctx.cache().informer::<ConfigMap>(copies_informer());
    copies
        .store()
        .list()
        .into_iter()
        .filter(|copy| copy.labels().get(FROM) == Some(&from))
        .filter_map(|copy| copy.namespace())
        .collect()
}

/// Deletes the copy of `source` in `namespace`; one that is gone already is fine.
async fn delete_copy(
    source: &ConfigMap,
    namespace: &str,
    client: &Client,
) -> Result<(), kube::Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    match api
        .delete(&source.name_any(), &DeleteParams::default())
        .await
    {
        Ok(_) => {
            info!(source = %source.name_any(), %namespace, "deleted a copy");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// What syncing can fail with.
#[derive(Debug, thiserror::Error)]
enum Error {
    /// Writing a copy failed (its namespace may not exist yet: retried with backoff).
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Deleting a copy failed.
    #[error("deleting a copy")]
    Delete(#[source] kube::Error),
}

#[windlass::async_trait]
impl Reconciler for Syncer {
    type Object = ConfigMap;
    type Error = Error;

    async fn reconcile(
        &self,
        source: Arc<ConfigMap>,
        ctx: &Context<ConfigMap>,
    ) -> Result<Action, Error> {
        let wanted = targets(&source);
        for namespace in &wanted {
            let copy = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(source.name_any()),
                    namespace: Some(namespace.clone()),
                    labels: Some(BTreeMap::from([(FROM.to_string(), from(&source))])),
                    ..ObjectMeta::default()
                },
                data: source.data.clone(),
                binary_data: source.binary_data.clone(),
                ..ConfigMap::default()
            };
            let api: Api<ConfigMap> = Api::namespaced(ctx.client().clone(), namespace);
            let (_, op) = ctx.apply(&api, &copy).await?;
            if op.changed() {
                info!(source = %source.name_any(), %namespace, reason = %ctx.reason(), %op, "synced a copy");
            }
        }
        for namespace in namespaces_with_copies(&source, ctx).difference(&wanted) {
            delete_copy(&source, namespace, ctx.client())
                .await
                .map_err(Error::Delete)?;
        }
        Ok(Action::await_change())
    }
}

#[windlass::async_trait]
impl Cleanup for Syncer {
    async fn cleanup(
        &self,
        source: Arc<ConfigMap>,
        ctx: &Context<ConfigMap>,
    ) -> Result<CleanupStatus, Error> {
        let everywhere = &targets(&source) | &namespaces_with_copies(&source, ctx);
        for namespace in &everywhere {
            delete_copy(&source, namespace, ctx.client())
                .await
                .map_err(Error::Delete)?;
        }
        Ok(CleanupStatus::Done)
    }
}
// ANCHOR_END: reconciler

// ANCHOR: controller
/// The syncer's controller: sources are the labelled ConfigMaps of the `platform` namespace;
/// a change to any copy brings its source back.
fn controller() -> Controller<windlass::finalizer::Finalized<Syncer>> {
    Controller::new(Syncer)
        .name("configmap-sync")
        .informer(
            InformerConfig::default()
                .namespace(SOURCES)
                .labels(&format!("{REPLICATE}=true")),
        )
        .watches_with::<ConfigMap, _>(copies_informer(), |copy: &ConfigMap| {
            let source = copy.labels().get(FROM).and_then(|f| f.split_once('.'));
            source
                .map(|(namespace, name)| ObjectKey::new(Some(namespace), name))
                .into_iter()
                .collect()
        })
        .with_cleanup()
}
// ANCHOR_END: controller

/// Waits up to 30 seconds for `cond` to hold for the ConfigMap `name` in `api`'s namespace.
async fn wait_for(
    api: &Api<ConfigMap>,
    name: &str,
    cond: impl Fn(Option<&ConfigMap>) -> bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let wait = await_condition(api.clone(), name, move |cm: Option<&ConfigMap>| cond(cm));
    tokio::time::timeout(Duration::from_secs(30), wait).await??;
    Ok(())
}

fn greeting(cm: Option<&ConfigMap>) -> Option<&str> {
    cm.and_then(|cm| cm.data.as_ref())
        .and_then(|d| d.get("greeting"))
        .map(String::as_str)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    windlass_examples::init_tracing();
    let server = ApiServer::new();
    let client = server.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in [SOURCES, "team-a", "team-b"] {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        namespaces.create(&PostParams::default(), &ns).await?;
    }

    let manager = Manager::new(client.clone()).add(controller());
    let shutdown = manager.shutdown_handle();
    let running = tokio::spawn(manager.run());

    let sources: Api<ConfigMap> = Api::namespaced(client.clone(), SOURCES);
    let team_a: Api<ConfigMap> = Api::namespaced(client.clone(), "team-a");
    let team_b: Api<ConfigMap> = Api::namespaced(client.clone(), "team-b");
    let source = ConfigMap {
        metadata: ObjectMeta {
            name: Some("settings".into()),
            labels: Some(BTreeMap::from([(REPLICATE.into(), "true".into())])),
            annotations: Some(BTreeMap::from([(TO.into(), "team-a, team-b".into())])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("greeting".into(), "hello".into())])),
        ..ConfigMap::default()
    };
    sources.create(&PostParams::default(), &source).await?;
    info!("user created platform/settings for team-a and team-b");
    wait_for(&team_a, "settings", |cm| greeting(cm) == Some("hello")).await?;
    wait_for(&team_b, "settings", |cm| greeting(cm) == Some("hello")).await?;
    info!("both teams have a copy");

    let change = |greeting: &str| Patch::Merge(json!({"data": {"greeting": greeting}}));
    sources
        .patch("settings", &PatchParams::default(), &change("bonjour"))
        .await?;
    info!("user changed the source");
    wait_for(&team_a, "settings", |cm| greeting(cm) == Some("bonjour")).await?;
    wait_for(&team_b, "settings", |cm| greeting(cm) == Some("bonjour")).await?;
    info!("both copies followed");

    team_a
        .patch("settings", &PatchParams::default(), &change("hacked"))
        .await?;
    info!("someone edited the copy in team-a by hand");
    wait_for(&team_a, "settings", |cm| greeting(cm) == Some("bonjour")).await?;
    info!("the copy in team-a was put back");

    let only_a = Patch::Merge(json!({"metadata": {"annotations": {TO: "team-a"}}}));
    sources
        .patch("settings", &PatchParams::default(), &only_a)
        .await?;
    info!("user removed team-b from the source's list");
    wait_for(&team_b, "settings", |cm| cm.is_none()).await?;
    info!("the copy in team-b is gone");

    let uid = sources.get("settings").await?.uid().unwrap_or_default();
    sources.delete("settings", &DeleteParams::default()).await?;
    let gone = await_condition(sources.clone(), "settings", conditions::is_deleted(&uid));
    tokio::time::timeout(Duration::from_secs(30), gone).await??;
    wait_for(&team_a, "settings", |cm| cm.is_none()).await?;
    info!("user deleted the source; its copies went with it");

    shutdown.shutdown();
    running.await??;
    Ok(())
}
