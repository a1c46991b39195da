//! Printing CRDs as YAML for `kubectl apply -f`: the `Widget` of the `custom_resource` example,
//! and a `Gadget` defined in two versions (`v1alpha1` and `v1`) merged into one CRD whose storage
//! version is `v1`.
//!
//! Run with `cargo run --example crdgen`, or `cargo run --example crdgen | kubectl apply -f -`.

#[allow(dead_code)] // its `main` is not run from here
#[path = "custom_resource.rs"]
mod custom_resource;

// ANCHOR: versions
/// The first version of gadgets, still served but no longer stored.
mod v1alpha1 {
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};
    use windlass::CustomResource;

    /// A gadget.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
    #[windlass(
        group = "example.com",
        version = "v1alpha1",
        kind = "Gadget",
        namespaced
    )]
    #[windlass(
        storage = false,
        deprecated(warning = "example.com/v1alpha1 Gadget is deprecated; use example.com/v1")
    )]
    pub(crate) struct GadgetSpec {
        /// What the gadget does.
        pub(crate) purpose: String,
    }
}

/// The current version of gadgets.
mod v1 {
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};
    use windlass::CustomResource;

    /// A gadget.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
    #[windlass(group = "example.com", version = "v1", kind = "Gadget", namespaced)]
    pub(crate) struct GadgetSpec {
        /// What the gadget does.
        pub(crate) purpose: String,
        /// How many of it there are; new in v1.
        #[serde(default)]
        pub(crate) count: u32,
    }
}
// ANCHOR_END: versions

// ANCHOR: main
use windlass::object::crd::{merge_crds, to_yaml};
use windlass::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gadget = merge_crds(vec![v1alpha1::Gadget::crd(), v1::Gadget::crd()])?;
    let mut crds = custom_resource::crds();
    crds.push(gadget);
    print!("{}", to_yaml(&crds)?);
    Ok(())
}
// ANCHOR_END: main
