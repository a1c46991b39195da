//! `status = "Type"`, the spelling kube-derive users know, works as well as `status = Type`.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use windlass::CustomResource;

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
struct WidgetStatus {
    ready: bool,
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[windlass(group = "example.com", version = "v1", kind = "Widget", namespaced, status = "WidgetStatus")]
struct WidgetSpec {
    size: u32,
}

fn main() {
    let mut w = Widget::new("a", WidgetSpec { size: 1 });
    w.status = Some(WidgetStatus { ready: true });
    assert_eq!(serde_json::to_value(&w).unwrap()["status"]["ready"], true);
}
