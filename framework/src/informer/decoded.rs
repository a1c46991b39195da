//! Decoding list and watch items one object at a time, so one malformed object is reported and
//! skipped instead of failing the whole list or breaking the watch.
//!
//! kube decodes a watch line or a list body in one go: a single object that does not fit the
//! Rust type fails the request, and the watcher retries it forever. [`Decoded`] is the item type
//! windlass's informers ask kube for instead: it keeps the raw JSON of each object, decodes it
//! into `K` on its own, and on failure keeps the object's metadata and the error.
//! [`Stripped`] does the same without ever building `metadata.managedFields` (what informers
//! ask for by default).

use std::fmt;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// One object from a list or watch: decoded, or what could be salvaged from it.
// `Ok` is nearly every object and is moved straight into an `Arc` by the informer; boxing it
// to shrink the rare `Malformed` case would cost an allocation per object.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(crate) enum Decoded<K> {
    /// The object decoded as `K`.
    Ok(K),
    /// The object did not decode as `K`.
    Malformed {
        /// Whatever metadata could be read (empty when even that failed).
        meta: ObjectMeta,
        /// Why decoding failed.
        error: Arc<str>,
    },
}

impl<K: fmt::Debug> fmt::Debug for Decoded<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decoded::Ok(k) => k.fmt(f),
            Decoded::Malformed { meta, error } => f
                .debug_struct("Malformed")
                .field("namespace", &meta.namespace)
                .field("name", &meta.name)
                .field("error", error)
                .finish(),
        }
    }
}

#[derive(Deserialize)]
struct MetadataOnly {
    #[serde(default)]
    metadata: ObjectMeta,
}

impl<K: DeserializeOwned> Decoded<K> {
    /// Decodes one object's raw JSON, with `metadata.managedFields` skipped unread if `strip`.
    fn from_raw(raw: &RawValue, strip: bool) -> Self {
        let decoded = if strip {
            let mut de = serde_json::Deserializer::from_str(raw.get());
            super::strip::without_managed_fields::<K, _>(&mut de).and_then(|k| de.end().map(|()| k))
        } else {
            serde_json::from_str::<K>(raw.get())
        };
        match decoded {
            Ok(k) => Decoded::Ok(k),
            Err(e) => {
                let meta = serde_json::from_str::<MetadataOnly>(raw.get())
                    .map(|m| m.metadata)
                    .unwrap_or_default();
                Decoded::Malformed {
                    meta,
                    error: Arc::from(e.to_string()),
                }
            }
        }
    }
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Decoded<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // kube decodes with serde_json, which hands out the object's raw text here; decoding it
        // a second time costs a scan of bytes already in cache, and buys isolation per object.
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Decoded::from_raw(&raw, false))
    }
}

/// The type information of a wrapper's `Resource` impl: the wrapped kind's.
macro_rules! kind_of_inner {
    () => {
        fn kind(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
            K::kind(dt)
        }
        fn group(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
            K::group(dt)
        }
        fn version(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
            K::version(dt)
        }
        fn api_version(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
            K::api_version(dt)
        }
        fn plural(dt: &Self::DynamicType) -> std::borrow::Cow<'_, str> {
            K::plural(dt)
        }
    };
}

/// A [`Decoded`] object whose `metadata.managedFields` were skipped while decoding: an
/// informer that drops them (the default) never allocates them, which for a Pod is about half
/// of what decoding it would otherwise build.
#[derive(Clone, Debug)]
pub(crate) struct Stripped<K>(pub(crate) Decoded<K>);

impl<'de, K: DeserializeOwned> Deserialize<'de> for Stripped<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Stripped(Decoded::from_raw(&raw, true)))
    }
}

impl<K: Resource> Resource for Stripped<K> {
    type DynamicType = K::DynamicType;
    type Scope = kube::core::DynamicResourceScope;

    kind_of_inner!();
    fn meta(&self) -> &ObjectMeta {
        self.0.meta()
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.0.meta_mut()
    }
}

// The scope is left dynamic so an informer can build a namespaced or cluster-wide `Api` for
// any kind; the cache checks the real scope before it asks for a namespace.
impl<K: Resource> Resource for Decoded<K> {
    type DynamicType = K::DynamicType;
    type Scope = kube::core::DynamicResourceScope;

    kind_of_inner!();
    fn meta(&self) -> &ObjectMeta {
        match self {
            Decoded::Ok(k) => k.meta(),
            Decoded::Malformed { meta, .. } => meta,
        }
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Decoded::Ok(k) => k.meta_mut(),
            Decoded::Malformed { meta, .. } => meta,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn a_well_formed_object_decodes_as_its_type() {
        let d: Decoded<ConfigMap> = serde_json::from_str(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"}}"#,
        )
        .unwrap();
        match d {
            Decoded::Ok(cm) => assert_eq!(cm.data.unwrap()["k"], "v"),
            Decoded::Malformed { error, .. } => panic!("did not decode: {error}"),
        }
    }

    #[test]
    fn a_malformed_object_keeps_its_metadata_and_the_reason() {
        let d: Decoded<ConfigMap> = serde_json::from_str(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bad","namespace":"ns"},"data":5}"#,
        )
        .unwrap();
        match d {
            Decoded::Malformed { meta, error } => {
                assert_eq!(meta.name.as_deref(), Some("bad"));
                assert!(error.contains("invalid type"), "{error}");
            }
            Decoded::Ok(_) => panic!("decoded a malformed object"),
        }
    }

    #[test]
    fn a_stripped_object_decodes_without_its_managed_fields() {
        let json = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a",
            "managedFields":[{"manager":"m","operation":"Update","fieldsV1":{"f:data":{}}}]},
            "data":{"k":"v"}}"#;
        let Stripped(Decoded::Ok(stripped)) =
            serde_json::from_str::<Stripped<ConfigMap>>(json).unwrap()
        else {
            panic!("did not decode");
        };
        assert_eq!(stripped.metadata.managed_fields, None);
        assert_eq!(stripped.data.unwrap()["k"], "v");
        let Decoded::Ok(kept) = serde_json::from_str::<Decoded<ConfigMap>>(json).unwrap() else {
            panic!("did not decode");
        };
        assert_eq!(
            kept.metadata.managed_fields.unwrap()[0].manager.as_deref(),
            Some("m")
        );
    }

    #[test]
    fn a_malformed_stripped_object_keeps_its_metadata_and_the_reason() {
        let d: Stripped<ConfigMap> = serde_json::from_str(
            r#"{"metadata":{"name":"bad","namespace":"ns","managedFields":[]},"data":5}"#,
        )
        .unwrap();
        match d.0 {
            Decoded::Malformed { meta, error } => {
                assert_eq!(meta.name.as_deref(), Some("bad"));
                assert!(error.contains("invalid type"), "{error}");
            }
            Decoded::Ok(_) => panic!("decoded a malformed object"),
        }
    }

    #[test]
    fn one_malformed_item_does_not_fail_a_list() {
        let items: Vec<Decoded<ConfigMap>> = serde_json::from_str(
            r#"[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}},
                {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"},"data":[1]}]"#,
        )
        .unwrap();
        assert!(matches!(items[0], Decoded::Ok(_)));
        assert!(matches!(items[1], Decoded::Malformed { .. }));
    }
}
