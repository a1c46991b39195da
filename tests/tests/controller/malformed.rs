//! An object that does not decode as the controller's type is skipped and counted; the
//! informer keeps running and other objects keep being reconciled.

use std::borrow::Cow;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::{conditions, wait::await_condition};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use windlass::controller::{Controller, EventKind, ReconcileReason};
use windlass::informer::{InformerConfig, InformerStats};
use windlass::testing::ApiServer;

use super::support::{Recorder, Running, WAIT, manager, next, recording_of, runs_during};

/// `gizmos.example.com/v1`, written by hand: `spec.size` must be a number.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Gizmo {
    metadata: ObjectMeta,
    spec: GizmoSpec,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct GizmoSpec {
    size: i64,
}

impl kube::Resource for Gizmo {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Gizmo".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "example.com".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "gizmos".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Installs the gizmo CRD (no schema checks, so any spec is stored) and returns an untyped
/// `Api` for gizmos in `default`.
async fn gizmos(client: &kube::Client) -> Api<DynamicObject> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "gizmos.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "gizmos", "kind": "Gizmo"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let established = await_condition(crds, "gizmos.example.com", conditions::is_crd_established());
    tokio::time::timeout(WAIT, established)
        .await
        .expect("the CRD is established")
        .unwrap();
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Gizmo"),
        "gizmos",
    );
    Api::namespaced_with(client.clone(), "default", &resource)
}

async fn create(api: &Api<DynamicObject>, name: &str, size: Value) {
    let gizmo: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Gizmo",
        "metadata": {"name": name},
        "spec": {"size": size},
    }))
    .unwrap();
    api.create(&PostParams::default(), &gizmo).await.unwrap();
}

fn gizmo_stats(cache: &windlass::informer::Cache) -> InformerStats {
    cache.informer::<Gizmo>(InformerConfig::default()).stats()
}

#[tokio::test(start_paused = true)]
async fn a_malformed_object_is_skipped_and_counted_while_the_rest_are_reconciled() {
    let server = ApiServer::new();
    let client = server.client();
    let api = gizmos(&client).await;
    create(&api, "good", json!(1)).await;
    create(&api, "bad-in-list", json!("huge")).await;

    let (rec, mut rx) = Recorder::new();
    let manager = manager(client).add(Controller::new(recording_of::<Gizmo>(rec.clone())));
    let cache = manager.cache().clone();
    let running = Running::start(manager);

    let first = next(&mut rx).await;
    assert_eq!(
        (first.name.as_str(), &first.reason),
        ("good", &ReconcileReason::Startup)
    );
    assert_eq!(
        gizmo_stats(&cache).malformed,
        1,
        "the malformed object in the list is counted"
    );

    // One in the watch stream, then a good one behind it: the watch carries on.
    create(&api, "bad-in-watch", json!([1, 2])).await;
    create(&api, "later", json!(2)).await;
    let later = next(&mut rx).await;
    assert_eq!(
        (later.name.as_str(), &later.reason),
        ("later", &ReconcileReason::ObjectChanged(EventKind::Added))
    );
    let stats = gizmo_stats(&cache);
    assert_eq!((stats.malformed, stats.objects), (2, 2), "{stats:?}");

    // Once fixed, the object is cached and reconciled like a new one.
    let fix = Patch::Merge(json!({"spec": {"size": 3}}));
    api.patch("bad-in-list", &PatchParams::default(), &fix)
        .await
        .unwrap();
    let fixed = next(&mut rx).await;
    assert_eq!(
        (fixed.name.as_str(), &fixed.reason),
        (
            "bad-in-list",
            &ReconcileReason::ObjectChanged(EventKind::Added)
        )
    );

    assert!(
        runs_during(&mut rx, Duration::from_secs(60))
            .await
            .is_empty()
    );
    assert_eq!(rec.count("bad-in-watch"), 0);
    assert!(!running.is_finished());
    running.stop().await.unwrap();
}
