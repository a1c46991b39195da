//! A kind that is not UpperCamelCase.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use windlass::CustomResource;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[windlass(group = "example.com", version = "v1", kind = "my-widget")]
struct WidgetSpec {
    size: u32,
}

fn main() {}
