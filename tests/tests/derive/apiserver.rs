//! The generated CRDs installed in `windlass::testing`'s API server: accepted, Established, and
//! their custom resources round-trip through `kube::Api<Kind>`.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{conditions, wait::await_condition};
use serde_json::json;
use windlass::object::crd::merge_crds;
use windlass::testing::ApiServer;

use super::specs::{Shape, Widget, WidgetSpec, WidgetStatus, full_shape, gadget};

const WAIT: Duration = Duration::from_secs(30);

/// Create `crd` and wait until the server says it is Established.
async fn install(client: &kube::Client, crd: &CustomResourceDefinition) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), crd)
        .await
        .expect("the generated CRD is accepted");
    let name = crd.metadata.name.clone().unwrap();
    tokio::time::timeout(
        WAIT,
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .expect("the CRD is established in time")
    .expect("waiting for the CRD works");
}

fn widget(name: &str, size: i32) -> Widget {
    Widget::new(
        name,
        WidgetSpec {
            size,
            color: "blue".into(),
        },
    )
}

#[tokio::test]
async fn every_generated_crd_is_accepted_and_becomes_established() {
    let server = ApiServer::new();
    let client = server.client();
    let gadget = merge_crds(vec![
        gadget::v1alpha1::Gadget::crd(),
        gadget::v1::Gadget::crd(),
    ])
    .unwrap();
    for crd in [Widget::crd(), Shape::crd(), gadget] {
        install(&client, &crd).await;
    }
}

#[tokio::test]
async fn a_widget_round_trips_through_create_get_list_and_watch() {
    let server = ApiServer::new();
    let client = server.client();
    install(&client, &Widget::crd()).await;
    let widgets: Api<Widget> = Api::namespaced(client, "default");

    let list = widgets.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.clone().unwrap();
    let mut watch = widgets
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();

    let created = widgets
        .create(&PostParams::default(), &widget("w", 2))
        .await
        .unwrap();
    assert_eq!(created.spec, widget("w", 2).spec);
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some());

    let got = widgets.get("w").await.unwrap();
    assert_eq!(got.spec, created.spec);
    assert_eq!(got.status, None);

    let listed = widgets.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].spec.size, 2);

    let event = tokio::time::timeout(WAIT, watch.try_next())
        .await
        .expect("an event in time")
        .unwrap()
        .expect("the watch is open");
    match event {
        WatchEvent::Added(w) => assert_eq!(w.spec, created.spec),
        other => panic!("expected Added, got {other:?}"),
    }
}

#[tokio::test]
async fn a_widget_status_is_written_only_through_the_status_subresource() {
    let server = ApiServer::new();
    let client = server.client();
    install(&client, &Widget::crd()).await;
    let widgets: Api<Widget> = Api::namespaced(client, "default");
    widgets
        .create(&PostParams::default(), &widget("w", 2))
        .await
        .unwrap();

    let status = WidgetStatus {
        ready: 1,
        selector: Some("app=w".into()),
    };
    let patched = widgets
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .unwrap();
    assert_eq!(patched.status.as_ref(), Some(&status));
    assert_eq!(
        patched.metadata.generation,
        Some(1),
        "status writes keep the generation"
    );

    // A status in a write to the main resource is ignored, as with every status subresource.
    let mut replaced = widgets.get("w").await.unwrap();
    replaced.spec.size = 4;
    replaced.status = Some(WidgetStatus::default());
    let replaced = widgets
        .replace("w", &PostParams::default(), &replaced)
        .await
        .unwrap();
    assert_eq!(replaced.status.as_ref(), Some(&status));
    assert_eq!(replaced.metadata.generation, Some(2));
}

#[tokio::test]
async fn a_widget_scales_through_the_scale_subresource() {
    let server = ApiServer::new();
    let client = server.client();
    install(&client, &Widget::crd()).await;
    let widgets: Api<Widget> = Api::namespaced(client, "default");
    widgets
        .create(&PostParams::default(), &widget("w", 2))
        .await
        .unwrap();
    widgets
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": 2, "selector": "app=w"}})),
        )
        .await
        .unwrap();

    let scale = widgets.get_scale("w").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    let status = scale.status.unwrap();
    assert_eq!(status.replicas, 2);
    assert_eq!(status.selector.as_deref(), Some("app=w"));

    widgets
        .patch_scale(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(widgets.get("w").await.unwrap().spec.size, 5);
}

#[tokio::test]
async fn a_shape_with_every_schema_shape_round_trips_unchanged() {
    let server = ApiServer::new();
    let client = server.client();
    install(&client, &Shape::crd()).await;
    let shapes: Api<Shape> = Api::all(client);
    let shape = full_shape("s");
    let created = shapes.create(&PostParams::default(), &shape).await.unwrap();
    assert_eq!(created.spec, shape.spec);
    let got = shapes.get("s").await.unwrap();
    assert_eq!(got.spec, shape.spec);
    assert_eq!(got.metadata.namespace, None, "Shape is cluster-scoped");
}

#[tokio::test]
async fn both_versions_of_a_merged_crd_are_served() {
    let server = ApiServer::new();
    let client = server.client();
    let merged = merge_crds(vec![
        gadget::v1alpha1::Gadget::crd(),
        gadget::v1::Gadget::crd(),
    ])
    .unwrap();
    install(&client, &merged).await;
    let v1: Api<gadget::v1::Gadget> = Api::namespaced(client.clone(), "default");
    let old: Api<gadget::v1alpha1::Gadget> = Api::namespaced(client, "default");
    let spec = gadget::v1::GadgetSpec {
        purpose: "opening cans".into(),
        count: 2,
    };
    v1.create(&PostParams::default(), &gadget::v1::Gadget::new("g", spec))
        .await
        .unwrap();
    let read_old = old.get("g").await.unwrap();
    assert_eq!(read_old.spec.purpose, "opening cans");
    let listed = old.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
}
