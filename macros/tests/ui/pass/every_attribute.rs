//! Every container and field attribute at once.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use windlass::CustomResource;

/// The status.
#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
struct GizmoStatus {
    replicas: i32,
    selector: Option<String>,
}

/// A gizmo.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[windlass(group = "tools.example.com", version = "v2beta1", kind = "Gizmo", namespaced)]
#[windlass(status = GizmoStatus, plural = "gizmoes", singular = "gizmo")]
#[windlass(shortname = "gz", shortname = "gzm", category = "all", category = "tools")]
#[windlass(printcolumn(
    name = "Replicas",
    type = "integer",
    json_path = ".spec.replicas",
    description = "Desired replicas",
    priority = 0,
    format = "int32"
))]
#[windlass(printcolumn(name = "Mode", type = "string", json_path = ".spec.mode"))]
#[windlass(printcolumn(
    name = "Ready",
    type = "string",
    json_path = ".status.conditions[?(@.type==\"Ready\")].status",
    priority = 1
))]
#[windlass(scale(
    spec_replicas_path = ".spec.replicas",
    status_replicas_path = ".status.replicas",
    label_selector_path = ".status.selector"
))]
#[windlass(selectable = ".spec.mode")]
#[windlass(validation(rule = "self.metadata.name.size() < 20", message = "short names only"))]
#[windlass(validation = "has(self.spec)")]
#[windlass(storage = false, served = true, deprecated(warning = "use v2"))]
struct GizmoSpec {
    #[windlass(validation(rule = "self >= 0", message = "must not be negative"))]
    replicas: i32,
    #[windlass(validation = "self != ''")]
    mode: String,
}

fn main() {
    use kube::CustomResourceExt;
    use kube::core::object::{HasSpec, HasStatus};

    let crd = Gizmo::crd();
    let version = &crd.spec.versions[0];
    assert!(!version.storage);
    assert_eq!(version.deprecation_warning.as_deref(), Some("use v2"));
    assert_eq!(Gizmo::shortnames(), ["gz", "gzm"]);
    assert_eq!(Gizmo::api_resource().plural, "gizmoes");
    let mut g = Gizmo::new("g", GizmoSpec { replicas: 1, mode: "a".into() });
    assert_eq!(g.spec().replicas, 1);
    assert!(g.status().is_none());
    *g.status_mut() = Some(GizmoStatus { replicas: 1, selector: None });
}
