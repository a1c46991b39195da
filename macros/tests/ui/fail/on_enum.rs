//! The derive on an enum.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use windlass::CustomResource;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[windlass(group = "example.com", version = "v1", kind = "Widget")]
enum WidgetSpec {
    Small,
    Large,
}

fn main() {}
