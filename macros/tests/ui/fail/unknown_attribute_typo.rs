//! A misspelt attribute gets a suggestion.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use windlass::CustomResource;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[windlass(group = "example.com", version = "v1", kind = "Widget", namespace)]
struct WidgetSpec {
    size: u32,
}

fn main() {}
