//! Leaving out a required attribute (here `group`).
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use windlass::CustomResource;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[windlass(version = "v1", kind = "Widget")]
struct WidgetSpec {
    size: u32,
}

fn main() {}
