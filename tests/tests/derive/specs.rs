//! The representative custom resources the derive tests use: one with every attribute, one
//! with every schema shape, and one kind in two versions.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use windlass::CustomResource;

/// A widget: every container and field attribute at once.
// clippy's duplicated_attributes takes `type = "integer"` in two printcolumns for a repeated
// attribute; it is not one.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[windlass(group = "example.com", version = "v1", kind = "Widget", namespaced)]
#[windlass(status = WidgetStatus, plural = "widgets", singular = "widget")]
#[windlass(
    shortname = "wd",
    shortname = "wdg",
    category = "all",
    category = "example"
)]
#[windlass(printcolumn(name = "Size", type = "integer", json_path = ".spec.size"))]
#[windlass(printcolumn(
    name = "Ready",
    type = "integer",
    json_path = ".status.ready",
    description = "Widgets ready to serve",
    priority = 1,
    format = "int32"
))]
#[windlass(scale(
    spec_replicas_path = ".spec.size",
    status_replicas_path = ".status.ready",
    label_selector_path = ".status.selector"
))]
#[windlass(selectable = ".spec.color")]
#[windlass(validation(
    rule = "self.metadata.name.size() <= 40",
    message = "widget names are at most 40 characters"
))]
pub(crate) struct WidgetSpec {
    /// How many widgets.
    #[windlass(validation(rule = "self <= 100", message = "at most 100 widgets"))]
    pub(crate) size: i32,
    /// Their color.
    #[windlass(validation = "self != 'green'")]
    pub(crate) color: String,
}

/// What the controller last saw of a widget.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub(crate) struct WidgetStatus {
    /// Widgets ready to serve.
    pub(crate) ready: i32,
    /// The selector of the widgets' pods.
    pub(crate) selector: Option<String>,
}

/// Every shape of Rust type the schema generator maps.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[windlass(group = "shapes.example.com", version = "v1", kind = "Shape")]
#[serde(rename_all = "camelCase")]
pub(crate) struct ShapeSpec {
    /// A plain string, whose doc comment is its description.
    pub(crate) name: String,
    pub(crate) count: u32,
    pub(crate) ratio: f64,
    pub(crate) enabled: bool,
    /// Optional: nullable and not required.
    pub(crate) nickname: Option<String>,
    pub(crate) nested: Option<Nested>,
    /// Defaulted: not required.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    pub(crate) unique: BTreeSet<String>,
    pub(crate) labels: BTreeMap<String, String>,
    /// A map of structs; its rule lands on `nestedMap`, the name serde gives it.
    #[windlass(validation(rule = "self.size() <= 10", message = "at most 10 entries"))]
    pub(crate) nested_map: BTreeMap<String, Nested>,
    /// Any JSON value.
    pub(crate) raw: serde_json::Value,
    pub(crate) raw_map: BTreeMap<String, serde_json::Value>,
    pub(crate) port: IntOrString,
    pub(crate) memory: Quantity,
    #[serde(rename = "renamedField")]
    pub(crate) original: String,
    pub(crate) mode: Mode,
    pub(crate) maybe_mode: Option<Mode>,
    pub(crate) external: External,
    pub(crate) internal: Internal,
    pub(crate) adjacent: Adjacent,
    pub(crate) untagged: Untagged,
    pub(crate) untagged_objects: UntaggedObjects,
    pub(crate) mixed: Mixed,
    pub(crate) selector: Option<LabelSelector>,
    #[serde(flatten)]
    pub(crate) extra: Extra,
}

/// A nested struct.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Nested {
    /// A field of the nested struct.
    pub(crate) value: i64,
}

/// Fields flattened into the spec.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub(crate) struct Extra {
    pub(crate) flattened: String,
}

/// Unit variants only.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub(crate) enum Mode {
    Fast,
    Slow,
}

/// Externally tagged, every variant with data.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) enum External {
    /// A struct variant.
    Disk { size: u32 },
    /// A newtype variant.
    Memory(Nested),
}

/// Internally tagged.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(tag = "type")]
pub(crate) enum Internal {
    Http { port: u16 },
    Exec { command: Vec<String> },
    None,
}

/// Adjacently tagged.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(tag = "kind", content = "value")]
pub(crate) enum Adjacent {
    Text(String),
    Empty,
}

/// Untagged scalars of two types.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(untagged)]
pub(crate) enum Untagged {
    Number(i64),
    Text(String),
}

/// Untagged objects.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(untagged)]
pub(crate) enum UntaggedObjects {
    ByName { name: String },
    ById { id: u64 },
}

/// Unit and data variants together: a string or an object, which no structural type is.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub(crate) enum Mixed {
    Off,
    On { level: u8 },
}

/// One kind, two versions: `v1alpha1` is served but not stored, `v1` is stored.
pub(crate) mod gadget {
    /// The old version.
    pub(crate) mod v1alpha1 {
        use schemars::JsonSchema;
        use serde::{Deserialize, Serialize};
        use windlass::CustomResource;

        /// A gadget.
        #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
        #[windlass(
            group = "example.com",
            version = "v1alpha1",
            kind = "Gadget",
            namespaced
        )]
        #[windlass(
            storage = false,
            deprecated(warning = "example.com/v1alpha1 Gadget is deprecated")
        )]
        pub(crate) struct GadgetSpec {
            pub(crate) purpose: String,
        }
    }

    /// The current version.
    pub(crate) mod v1 {
        use schemars::JsonSchema;
        use serde::{Deserialize, Serialize};
        use windlass::CustomResource;

        /// A gadget.
        #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
        #[windlass(group = "example.com", version = "v1", kind = "Gadget", namespaced)]
        pub(crate) struct GadgetSpec {
            pub(crate) purpose: String,
            #[serde(default)]
            pub(crate) count: u32,
        }
    }
}

/// A shape with every field set, for round trips.
pub(crate) fn full_shape(name: &str) -> Shape {
    Shape::new(
        name,
        ShapeSpec {
            name: "round".into(),
            count: 3,
            ratio: 0.5,
            enabled: true,
            nickname: Some("ball".into()),
            nested: Some(Nested { value: -1 }),
            tags: vec!["a".into()],
            unique: BTreeSet::from(["x".into(), "y".into()]),
            labels: BTreeMap::from([("app".into(), "shape".into())]),
            nested_map: BTreeMap::from([("one".into(), Nested { value: 1 })]),
            raw: serde_json::json!({"anything": [1, "two", {"three": null}]}),
            raw_map: BTreeMap::from([("k".into(), serde_json::json!({"deep": true}))]),
            port: IntOrString::String("http".into()),
            memory: Quantity("64Mi".into()),
            original: "renamed".into(),
            mode: Mode::Slow,
            maybe_mode: None,
            external: External::Memory(Nested { value: 7 }),
            internal: Internal::Http { port: 8080 },
            adjacent: Adjacent::Text("hi".into()),
            untagged: Untagged::Number(5),
            untagged_objects: UntaggedObjects::ById { id: 9 },
            mixed: Mixed::On { level: 2 },
            selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("app".into(), "shape".into())])),
                ..LabelSelector::default()
            }),
            extra: Extra {
                flattened: "flat".into(),
            },
        },
    )
}
