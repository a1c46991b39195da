//! A `watches` mapping: reconciling the objects that refer to the object that changed.
//!
//! Deployments name the ConfigMap they read in a `reloader.example.com/configmap` annotation.
//! When that ConfigMap's data changes, their pods must restart to read it again, so the
//! controller stamps a hash of the data into each Deployment's pod template (a rollout). The
//! controller's kind is Deployment; it also `watches` ConfigMaps, mapping a changed ConfigMap
//! to the Deployments that name it, found through an index on the shared Deployment cache
//! (controller-runtime's field indexer and `EnqueueRequestsFromMapFunc`). Everything runs
//! against windlass's in-process test API server.
//!
//! ```sh
//! cargo run --example watches
//! ```

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::info;
use windlass::controller::{Action, Context, Controller, Reconciler};
use windlass::informer::{InformerConfig, ObjectKey};
use windlass::manager::Manager;
use windlass::testing::ApiServer;

/// On a Deployment: the ConfigMap (in its namespace) it reads.
const USES: &str = "reloader.example.com/configmap";
/// On its pod template: a hash of that ConfigMap's data.
const HASH: &str = "reloader.example.com/config-hash";
/// The index from `namespace/configmap` to the Deployments that use it.
const BY_CONFIGMAP: &str = "configmap";

/// A hash of a ConfigMap's data (the same data gives the same hash).
fn hash(cm: &ConfigMap) -> String {
    let mut hasher = DefaultHasher::new();
    cm.data.hash(&mut hasher);
    cm.binary_data
        .as_ref()
        .map(|b| b.iter().map(|(k, v)| (k, &v.0)).collect::<Vec<_>>())
        .hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

// ANCHOR: reconciler
/// Keeps each Deployment's pod template stamped with the hash of the ConfigMap it uses.
#[derive(Debug)]
struct Reloader;

#[windlass::async_trait]
impl Reconciler for Reloader {
    type Object = Deployment;
    type Error = kube::Error;

    async fn reconcile(
        &self,
        deployment: Arc<Deployment>,
        ctx: &Context<Deployment>,
    ) -> Result<Action, kube::Error> {
        let Some(configmap) = deployment.annotations().get(USES) else {
            return Ok(Action::await_change());
        };
        let ns = deployment.namespace().unwrap_or_default();
        // From the shared cache: no API request.
        let Some(cm) = ctx.cache().get::<ConfigMap>(Some(&ns), configmap).await else {
            // Not there (yet): its creation will map back here.
            return Ok(Action::await_change());
        };
        let want = hash(&cm);
        let template = deployment.spec.template.metadata.as_ref();
        let have = template
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(HASH));
        if have != Some(&want) {
            let api: Api<Deployment> = Api::namespaced(ctx.client().clone(), &ns);
            let stamp = json!({"spec": {"template": {"metadata": {"annotations": {HASH: want}}}}});
            api.patch(
                &deployment.name_any(),
                &PatchParams::default(),
                &Patch::Merge(stamp),
            )
            .await?;
            info!(deployment = %deployment.name_any(), %configmap, hash = %want, reason = %ctx.reason(), "rolled out the new configuration");
        }
        Ok(Action::await_change())
    }
}
// ANCHOR_END: reconciler

// ANCHOR: watches
/// The reloader's manager. The index goes on the shared Deployment informer, the one the
/// controller itself reads, so the map function finds users without an API request.
fn operator(client: kube::Client) -> Manager {
    let manager = Manager::new(client);
    let deployments = manager
        .cache()
        .informer::<Deployment>(InformerConfig::default());
    deployments.add_index(BY_CONFIGMAP, |d: &Deployment| {
        let ns = d.namespace().unwrap_or_default();
        d.annotations()
            .get(USES)
            .map(|cm| vec![format!("{ns}/{cm}")])
            .unwrap_or_default()
    });
    let controller = Controller::new(Reloader).watches::<ConfigMap, _>(move |cm: &ConfigMap| {
        let key = format!("{}/{}", cm.namespace().unwrap_or_default(), cm.name_any());
        let users = deployments
            .store()
            .by_index(BY_CONFIGMAP, &key)
            .unwrap_or_default();
        users.iter().map(|d| ObjectKey::of(d.as_ref())).collect()
    });
    manager.add(controller)
}
// ANCHOR_END: watches

fn deployment(name: &str, uses: Option<&str>) -> Result<Deployment, serde_json::Error> {
    let annotations: BTreeMap<&str, &str> = uses.map(|cm| (USES, cm)).into_iter().collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}
            }
        }
    }))
}

/// The config hash on a Deployment's pod template, if any.
fn stamped(d: Option<&Deployment>) -> Option<String> {
    let template = d?.spec.template.metadata.as_ref()?;
    template.annotations.as_ref()?.get(HASH).cloned()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    windlass_examples::init_tracing();
    let server = ApiServer::new();
    let client = server.client();
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut settings = ConfigMap::default();
    settings.meta_mut().name = Some("settings".into());
    settings.data = Some(BTreeMap::from([("greeting".into(), "hello".into())]));
    configmaps.create(&PostParams::default(), &settings).await?;
    deployments
        .create(
            &PostParams::default(),
            &deployment("web", Some("settings"))?,
        )
        .await?;
    deployments
        .create(&PostParams::default(), &deployment("batch", None)?)
        .await?;

    let manager = operator(client.clone());
    let shutdown = manager.shutdown_handle();
    let running = tokio::spawn(manager.run());

    let first = hash(&settings);
    let wait = await_condition(deployments.clone(), "web", move |d: Option<&Deployment>| {
        stamped(d).as_deref() == Some(first.as_str())
    });
    tokio::time::timeout(Duration::from_secs(30), wait).await??;
    info!("web runs with the configuration it reads");

    let change = json!({"data": {"greeting": "bonjour"}});
    let changed = configmaps
        .patch("settings", &PatchParams::default(), &Patch::Merge(change))
        .await?;
    info!("user changed ConfigMap settings");
    let second = hash(&changed);
    let wait = await_condition(deployments.clone(), "web", move |d: Option<&Deployment>| {
        stamped(d).as_deref() == Some(second.as_str())
    });
    tokio::time::timeout(Duration::from_secs(30), wait).await??;
    let batch = deployments.get("batch").await?;
    info!(
        batch_stamped = stamped(Some(&batch)).is_some(),
        "web rolled out the change; batch, which does not use it, was left alone"
    );

    shutdown.shutdown();
    running.await??;
    Ok(())
}
