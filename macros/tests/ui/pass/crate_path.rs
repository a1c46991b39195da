//! `crate = path` for code that reaches windlass through a re-export.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod reexport {
    pub use windlass;
}

#[derive(reexport::windlass::CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[windlass(crate = reexport::windlass, group = "example.com", version = "v1", kind = "Widget")]
struct WidgetSpec {
    size: u32,
}

fn main() {
    let w: Widget = serde_json::from_str(r#"{"apiVersion":"example.com/v1","kind":"Widget","spec":{"size":2}}"#).unwrap();
    assert_eq!(w.spec.size, 2);
}
