//! Decoding an object without its `metadata.managedFields`, so an informer that drops them
//! never builds them: no allocation for their field sets and no time spent decoding them.
//!
//! This module owns one serde adapter: a [`Deserializer`] wrapper that, in the object's
//! top-level map, hands the value of `metadata` on through a second wrapper, which skips the
//! `managedFields` entry of that map (as `IgnoredAny`: its JSON is scanned, nothing is kept).
//! Every other key and value goes straight to the underlying deserializer, so a field of the
//! same name anywhere else (a ConfigMap's `data.managedFields`) is untouched.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

/// Deserializes a `T` from `deserializer`, skipping `metadata.managedFields` unread.
pub(crate) fn without_managed_fields<'de, T, D>(deserializer: D) -> Result<T, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    T::deserialize(Skip {
        inner: deserializer,
        level: Level::Object,
    })
}

/// Where in the object a wrapped map is.
#[derive(Clone, Copy)]
enum Level {
    /// The object itself: its `metadata` value is wrapped in turn.
    Object,
    /// `metadata`: its `managedFields` entry is skipped.
    Metadata,
}

struct Skip<D> {
    inner: D,
    level: Level,
}

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
                self.inner.$method($($arg,)* visitor)
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Skip<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_any(Wrap {
            inner: visitor,
            level: self.level,
        })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_option(Wrap {
            inner: visitor,
            level: self.level,
        })
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_map(Wrap {
            inner: visitor,
            level: self.level,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_struct(
            name,
            fields,
            Wrap {
                inner: visitor,
                level: self.level,
            },
        )
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }

    // Nothing but a map can hold `managedFields`: everything else is read as it would be.
    forward! {
        deserialize_bool(); deserialize_i8(); deserialize_i16(); deserialize_i32();
        deserialize_i64(); deserialize_i128(); deserialize_u8(); deserialize_u16();
        deserialize_u32(); deserialize_u64(); deserialize_u128(); deserialize_f32();
        deserialize_f64(); deserialize_char(); deserialize_str(); deserialize_string();
        deserialize_bytes(); deserialize_byte_buf(); deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq(); deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier(); deserialize_ignored_any();
    }
}

/// The caller's visitor, given a filtering view of the map it visits.
struct Wrap<V> {
    inner: V,
    level: Level,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Filter {
            inner: map,
            level: self.level,
            metadata_next: false,
        })
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Skip {
            inner: d,
            level: self.level,
        })
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    // A value of the wrong shape: the caller's visitor decides, so errors read the same.
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<V::Value, E> {
        self.inner.visit_bool(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<V::Value, E> {
        self.inner.visit_i64(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<V::Value, E> {
        self.inner.visit_u64(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<V::Value, E> {
        self.inner.visit_f64(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        self.inner.visit_str(v)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        self.inner.visit_borrowed_str(v)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        self.inner.visit_string(v)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(seq)
    }
}

/// A map with `managedFields` left out (in `metadata`), or with `metadata` wrapped (in the
/// object).
struct Filter<A> {
    inner: A,
    level: Level,
    /// The key just handed out was the object's `metadata`.
    metadata_next: bool,
}

/// A map key, borrowed from the input when it can be.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Filter<A> {
    type Error = A::Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        // Each pass consumes one entry of the input map, so this ends with the map.
        loop {
            let Some(Key(key)) = self.inner.next_key::<Key<'de>>()? else {
                return Ok(None);
            };
            match self.level {
                Level::Metadata if key == "managedFields" => {
                    self.inner.next_value::<IgnoredAny>()?;
                    continue;
                }
                Level::Object => self.metadata_next = key == "metadata",
                Level::Metadata => {}
            }
            return match key {
                Cow::Borrowed(k) => seed.deserialize(BorrowedStrDeserializer::new(k)),
                Cow::Owned(k) => seed.deserialize(StringDeserializer::new(k)),
            }
            .map(Some);
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        if std::mem::take(&mut self.metadata_next) {
            self.inner.next_value_seed(MetadataSeed(seed))
        } else {
            self.inner.next_value_seed(seed)
        }
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// The seed of the object's `metadata` value, deserialized with `managedFields` skipped.
struct MetadataSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for MetadataSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Skip {
            inner: d,
            level: Level::Metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn decode(json: &str) -> Result<ConfigMap, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(json);
        let cm = without_managed_fields(&mut de)?;
        de.end()?;
        Ok(cm)
    }

    const WITH_MANAGED_FIELDS: &str = r#"{
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": "a", "namespace": "ns", "labels": {"app": "x"}, "resourceVersion": "7",
            "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                               "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:k": {}}}}]
        },
        "data": {"k": "v", "managedFields": "kept"}
    }"#;

    #[test]
    fn managed_fields_are_skipped_and_everything_else_is_kept() {
        let cm = decode(WITH_MANAGED_FIELDS).unwrap();
        assert_eq!(cm.metadata.managed_fields, None);
        assert_eq!(cm.metadata.name.as_deref(), Some("a"));
        assert_eq!(cm.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(cm.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(cm.metadata.labels.unwrap()["app"], "x");
        let data = cm.data.unwrap();
        assert_eq!(data["k"], "v");
        assert_eq!(
            data["managedFields"], "kept",
            "only metadata's entry is skipped"
        );
    }

    #[test]
    fn the_result_equals_a_full_decode_with_managed_fields_removed() {
        let mut full: ConfigMap = serde_json::from_str(WITH_MANAGED_FIELDS).unwrap();
        full.metadata.managed_fields = None;
        assert_eq!(decode(WITH_MANAGED_FIELDS).unwrap(), full);
    }

    #[test]
    fn malformed_managed_fields_no_longer_fail_the_object() {
        let cm = decode(r#"{"metadata": {"name": "a", "managedFields": 5}}"#).unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some("a"));
    }

    #[test]
    fn other_malformed_fields_still_fail_with_the_usual_message() {
        let err = decode(r#"{"metadata": {"name": 5}}"#).unwrap_err();
        let plain = serde_json::from_str::<ConfigMap>(r#"{"metadata": {"name": 5}}"#).unwrap_err();
        assert_eq!(err.to_string(), plain.to_string());
        assert!(decode(r#"{"metadata": 5}"#).is_err());
        assert!(decode(r#"{"data": {"k": 1}}"#).is_err());
    }

    #[test]
    fn escaped_keys_are_read_as_their_text() {
        let cm = decode(r#"{"metadata": {"na\u006de": "a", "managed\u0046ields": []}}"#).unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some("a"));
        assert_eq!(cm.metadata.managed_fields, None);
    }
}
