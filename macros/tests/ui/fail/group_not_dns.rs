//! A group that is not a DNS subdomain.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use windlass::CustomResource;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[windlass(group = "Example_Group", version = "v1", kind = "Widget")]
struct WidgetSpec {
    size: u32,
}

fn main() {}
