//! Several mistakes in one input are all reported, in one run.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use windlass::CustomResource;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[windlass(group = "example", kind = "widget", shortname = "W")]
#[windlass(printcolumn(name = "Size", json_path = "spec.size"))]
struct WidgetSpec {
    #[windlass(validation(message = "too big"))]
    size: u32,
}

fn main() {}
