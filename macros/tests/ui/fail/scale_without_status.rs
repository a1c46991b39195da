//! The scale subresource needs a status to read replicas from.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use windlass::CustomResource;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[windlass(group = "example.com", version = "v1", kind = "Widget")]
#[windlass(scale(spec_replicas_path = ".spec.size", status_replicas_path = ".status.size"))]
struct WidgetSpec {
    size: u32,
}

fn main() {}
