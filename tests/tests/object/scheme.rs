//! A `Scheme` with built-in and derived types.

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use serde_json::json;
use windlass::object::{Scheme, SchemeError};

use crate::derive::specs::{Shape, Widget, full_shape};

/// Another type claiming Widget's group, version and kind.
mod impostor {
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};
    use windlass::CustomResource;

    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
    #[windlass(group = "example.com", version = "v1", kind = "Widget", namespaced)]
    pub(crate) struct WidgetSpec {
        pub(crate) other: bool,
    }
}

fn scheme() -> Scheme {
    let mut scheme = Scheme::new();
    scheme
        .register::<Pod>()
        .unwrap()
        .register::<ConfigMap>()
        .unwrap()
        .register::<Widget>()
        .unwrap()
        .register::<Shape>()
        .unwrap();
    scheme
}

#[test]
fn a_scheme_decodes_a_mixed_list_into_each_objects_own_type() {
    let scheme = scheme();
    let items = json!([
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}},
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
         "spec": {"size": 3, "color": "red"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}},
        serde_json::to_value(full_shape("s")).unwrap(),
    ]);
    let objects: Vec<_> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|item| scheme.decode_value(item.clone()).unwrap())
        .collect();
    assert!(objects[0].is::<Pod>());
    assert_eq!(objects[1].downcast_ref::<Widget>().unwrap().spec.size, 3);
    assert!(objects[2].is::<ConfigMap>());
    assert_eq!(
        objects[3].downcast_ref::<Shape>().unwrap().spec,
        full_shape("s").spec
    );

    for (object, item) in objects.iter().zip(items.as_array().unwrap()) {
        let encoded = scheme.encode_value(object.as_ref()).unwrap();
        assert_eq!(encoded["apiVersion"], item["apiVersion"]);
        assert_eq!(encoded["kind"], item["kind"]);
    }
}

#[test]
fn an_unregistered_gvk_is_a_clear_error() {
    let err = scheme()
        .decode(br#"{"apiVersion":"example.com/v2","kind":"Widget"}"#)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no kind \"Widget\" is registered for version \"example.com/v2\" in the scheme; \
         register its type with Scheme::register"
    );
}

#[test]
fn two_types_for_one_gvk_conflict() {
    let mut scheme = scheme();
    let err = scheme.register::<impostor::Widget>().unwrap_err();
    assert!(matches!(err, SchemeError::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains("already registered"), "{err}");
}
