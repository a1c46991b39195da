//! A printer column type the API server does not know.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use windlass::CustomResource;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[windlass(group = "example.com", version = "v1", kind = "Widget")]
#[windlass(printcolumn(name = "Size", type = "int", json_path = ".spec.size"))]
struct WidgetSpec {
    size: u32,
}

fn main() {}
