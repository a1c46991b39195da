//! Defining a custom resource with `#[derive(CustomResource)]`: a namespaced `Widget` with a
//! status, printer columns, the scale subresource and CEL validation, then creating one in the
//! in-process test API server, reading it back and updating its status.
//!
//! Run with `cargo run --example custom_resource`.

// ANCHOR: imports
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{conditions, wait::await_condition};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use windlass::prelude::*;
// ANCHOR_END: imports

// ANCHOR: spec
/// A widget: some number of identical things of one color.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[windlass(group = "example.com", version = "v1", kind = "Widget", namespaced)]
#[windlass(status = WidgetStatus, shortname = "wd", category = "all")]
#[windlass(printcolumn(name = "Color", type = "string", json_path = ".spec.color"))]
#[windlass(printcolumn(name = "Ready", type = "integer", json_path = ".status.readyReplicas"))]
#[windlass(scale(
    spec_replicas_path = ".spec.replicas",
    status_replicas_path = ".status.readyReplicas",
    label_selector_path = ".status.selector"
))]
#[windlass(selectable = ".spec.color")]
#[serde(rename_all = "camelCase")]
struct WidgetSpec {
    /// How many widgets to run.
    #[windlass(validation(rule = "self <= 100", message = "at most 100 widgets"))]
    replicas: i32,
    /// Their color.
    color: Color,
    /// Extra labels for the widgets' pods.
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
}

/// The colors a widget comes in.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
enum Color {
    /// The default.
    Red,
    /// Calmer.
    Blue,
}

/// What the controller last saw.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct WidgetStatus {
    /// Widgets ready to serve.
    ready_replicas: i32,
    /// The label selector of the widgets' pods, for `kubectl scale` and autoscalers.
    selector: Option<String>,
}
// ANCHOR_END: spec

/// The CRDs this example defines; `crdgen` prints them.
#[allow(dead_code)]
pub(crate) fn crds() -> Vec<CustomResourceDefinition> {
    vec![Widget::crd()]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ANCHOR: install
    let server = windlass::testing::ApiServer::new();
    let client = server.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &Widget::crd()).await?;
    await_condition(crds, Widget::crd_name(), conditions::is_crd_established()).await?;
    // ANCHOR_END: install

    // ANCHOR: use
    let widgets: Api<Widget> = Api::namespaced(client, "default");
    let spec = WidgetSpec {
        replicas: 3,
        color: Color::Blue,
        labels: Default::default(),
    };
    let created = widgets
        .create(&PostParams::default(), &Widget::new("blue", spec))
        .await?;
    println!(
        "created {} at generation {:?}",
        created.name_any(),
        created.metadata.generation
    );

    let status = WidgetStatus {
        ready_replicas: 3,
        selector: Some("app=blue".into()),
    };
    let patch = Patch::Merge(serde_json::json!({ "status": status }));
    let updated = widgets
        .patch_status("blue", &PatchParams::default(), &patch)
        .await?;
    assert_eq!(updated.status, Some(status));
    assert_eq!(updated.spec.replicas, 3);
    // ANCHOR_END: use
    println!("{} ready", updated.status.map_or(0, |s| s.ready_replicas));
    Ok(())
}
