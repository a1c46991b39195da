//! A `status` type that does not exist.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use windlass::CustomResource;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[windlass(group = "example.com", version = "v1", kind = "Widget", status = WidgetStatsu)]
struct WidgetSpec {
    size: u32,
}

fn main() {}
