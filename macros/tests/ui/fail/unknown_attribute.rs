//! An attribute that is nothing like a known one lists the known ones.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use windlass::CustomResource;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[windlass(group = "example.com", version = "v1", kind = "Widget", replicas = 3)]
struct WidgetSpec {
    size: u32,
}

fn main() {}
