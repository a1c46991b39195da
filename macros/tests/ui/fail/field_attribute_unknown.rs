//! An unknown attribute on a field.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use windlass::CustomResource;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[windlass(group = "example.com", version = "v1", kind = "Widget")]
struct WidgetSpec {
    #[windlass(validate = "self > 0")]
    size: u32,
}

fn main() {}
