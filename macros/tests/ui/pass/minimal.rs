//! The least a custom resource needs: group, version and kind. Cluster-scoped, no status.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use windlass::CustomResource;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[windlass(group = "example.com", version = "v1", kind = "Widget")]
struct WidgetSpec {
    size: u32,
}

fn main() {
    use kube::CustomResourceExt;
    use windlass::object::{Object, Scope};

    let w = Widget::new("a", WidgetSpec { size: 1 });
    assert_eq!(w.spec.size, 1);
    assert_eq!(Widget::crd_name(), "widgets.example.com");
    assert_eq!(Widget::SCOPE, Scope::Cluster);
    assert_eq!(Widget::crd().spec.scope, "Cluster");
    let json = serde_json::to_value(&w).unwrap();
    assert_eq!(json["apiVersion"], "example.com/v1");
    assert_eq!(json["kind"], "Widget");
    assert!(json.get("status").is_none());
}
