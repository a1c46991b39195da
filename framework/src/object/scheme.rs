//! [`Scheme`]: the registry from group/version/kind to Rust type.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;

use kube::core::GroupVersionKind;
use kube::core::discovery::Scope;
use serde_json::Value;

use super::{DynObject, Object};

/// Why a [`Scheme`] could not register, decode or encode an object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemeError {
    /// The JSON had no `apiVersion` or no `kind`, so its type cannot be told.
    #[error("object has no {field}; a scheme needs apiVersion and kind to pick the type")]
    MissingTypeMeta {
        /// `apiVersion` or `kind`.
        field: &'static str,
    },
    /// No type is registered for the object's group, version and kind.
    #[error(
        "no kind {kind:?} is registered for version {api_version:?} in the scheme; \
         register its type with Scheme::register",
        kind = .0.kind,
        api_version = api_version(.0)
    )]
    NotRegistered(GroupVersionKind),
    /// Another type is already registered for the group, version and kind.
    #[error(
        "kind {kind:?} of version {api_version:?} is already registered to {existing}, not {new}",
        kind = .gvk.kind,
        api_version = api_version(.gvk)
    )]
    Conflict {
        /// The group, version and kind.
        gvk: GroupVersionKind,
        /// The type registered first.
        existing: &'static str,
        /// The type that was refused.
        new: &'static str,
    },
    /// The object is of another kind than the one asked for.
    #[error(
        "expected {expected:?} of version {expected_version:?}, got {found:?} of version {found_version:?}",
        expected = .expected.kind,
        expected_version = api_version(.expected),
        found = .found.kind,
        found_version = api_version(.found)
    )]
    UnexpectedKind {
        /// The kind asked for.
        expected: Box<GroupVersionKind>,
        /// The kind the object names.
        found: Box<GroupVersionKind>,
    },
    /// The bytes are not JSON, or the JSON does not fit the registered type.
    #[error("cannot decode {kind:?} of version {api_version:?}", kind = .gvk.kind, api_version = api_version(.gvk))]
    Decode {
        /// The group, version and kind read from the object.
        gvk: GroupVersionKind,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// The input is not a JSON object at all.
    #[error("input is not a JSON object")]
    NotJson(#[source] serde_json::Error),
    /// Encoding failed, which the derived and k8s-openapi `Serialize` impls never do.
    #[error("cannot encode the object")]
    Encode(#[source] serde_json::Error),
}

fn api_version(gvk: &GroupVersionKind) -> String {
    kube::core::GroupVersion::gv(&gvk.group, &gvk.version).api_version()
}

/// What the scheme knows about one registered type.
#[derive(Clone)]
struct Registration {
    type_id: TypeId,
    type_name: &'static str,
    plural: &'static str,
    scope: Scope,
    decode: fn(Value) -> Result<Box<dyn DynObject>, serde_json::Error>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("type_name", &self.type_name)
            .field("plural", &self.plural)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

fn decode_as<K: Object>(json: Value) -> Result<Box<dyn DynObject>, serde_json::Error> {
    Ok(Box::new(serde_json::from_value::<K>(json)?))
}

/// A registry from group/version/kind to Rust type: apimachinery's `runtime.Scheme`.
///
/// Build one by registering the types a controller handles; it then decodes JSON whose
/// `apiVersion` and `kind` name a registered type into that type (boxed as a [`DynObject`]),
/// encodes objects back, and gives the [`RestMapper`](super::RestMapper) its static mappings.
///
/// # Example
///
/// ```
/// use k8s_openapi::api::core::v1::{ConfigMap, Pod};
/// use windlass::object::Scheme;
///
/// let mut scheme = Scheme::new();
/// scheme.register::<Pod>()?.register::<ConfigMap>()?;
/// let object = scheme.decode(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}"#)?;
/// assert!(object.downcast_ref::<ConfigMap>().is_some());
/// assert!(scheme.decode(br#"{"apiVersion":"v1","kind":"Secret"}"#).is_err());
/// # Ok::<(), windlass::object::SchemeError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Scheme {
    types: HashMap<GroupVersionKind, Registration>,
}

impl Scheme {
    /// An empty scheme.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `K` under its group, version and kind. Registering the same type twice is
    /// harmless.
    ///
    /// # Errors
    ///
    /// [`SchemeError::Conflict`] if another type is registered for the same group, version and
    /// kind.
    pub fn register<K: Object>(&mut self) -> Result<&mut Self, SchemeError> {
        let gvk = K::type_gvk();
        let new = Registration {
            type_id: TypeId::of::<K>(),
            type_name: std::any::type_name::<K>(),
            plural: K::PLURAL,
            scope: K::SCOPE,
            decode: decode_as::<K>,
        };
        if let Some(existing) = self.types.get(&gvk) {
            if existing.type_id != new.type_id {
                return Err(SchemeError::Conflict {
                    gvk,
                    existing: existing.type_name,
                    new: new.type_name,
                });
            }
            return Ok(self);
        }
        self.types.insert(gvk, new);
        Ok(self)
    }

    /// Whether a type is registered for `gvk`: `Scheme.Recognizes`.
    pub fn recognizes(&self, gvk: &GroupVersionKind) -> bool {
        self.types.contains_key(gvk)
    }

    /// Whether `K` is registered (under its own group, version and kind).
    pub fn is_registered<K: Object>(&self) -> bool {
        self.types
            .get(&K::type_gvk())
            .is_some_and(|r| r.type_id == TypeId::of::<K>())
    }

    /// The registered groups, versions and kinds, in no particular order.
    pub fn kinds(&self) -> impl Iterator<Item = &GroupVersionKind> {
        self.types.keys()
    }

    /// The plural resource name and scope registered for `gvk`.
    pub fn resource_of(&self, gvk: &GroupVersionKind) -> Option<(&'static str, Scope)> {
        self.types.get(gvk).map(|r| (r.plural, r.scope.clone()))
    }

    /// Decode JSON bytes into the registered type its `apiVersion` and `kind` name.
    ///
    /// # Errors
    ///
    /// [`SchemeError::NotJson`] for bytes that are not a JSON object,
    /// [`SchemeError::MissingTypeMeta`], [`SchemeError::NotRegistered`], or
    /// [`SchemeError::Decode`] when the JSON does not fit the type.
    pub fn decode(&self, json: &[u8]) -> Result<Box<dyn DynObject>, SchemeError> {
        let value: Value = serde_json::from_slice(json).map_err(SchemeError::NotJson)?;
        self.decode_value(value)
    }

    /// Decode a JSON value into the registered type its `apiVersion` and `kind` name.
    ///
    /// # Errors
    ///
    /// As [`Scheme::decode`].
    pub fn decode_value(&self, json: Value) -> Result<Box<dyn DynObject>, SchemeError> {
        let gvk = gvk_of(&json)?;
        let Some(registration) = self.types.get(&gvk) else {
            return Err(SchemeError::NotRegistered(gvk));
        };
        (registration.decode)(json).map_err(|source| SchemeError::Decode { gvk, source })
    }

    /// Decode JSON bytes into a `K`, checking that they name `K`'s group, version and kind.
    ///
    /// # Errors
    ///
    /// As [`Scheme::decode`], and [`SchemeError::UnexpectedKind`] when the JSON names another
    /// kind than `K`.
    pub fn decode_as<K: Object>(&self, json: &[u8]) -> Result<K, SchemeError> {
        let object = self.decode(json)?;
        object
            .downcast::<K>()
            .map(|k| *k)
            .map_err(|other| SchemeError::UnexpectedKind {
                expected: Box::new(K::type_gvk()),
                found: Box::new(other.gvk()),
            })
    }

    /// Encode a registered object as JSON bytes, with its `apiVersion` and `kind`.
    ///
    /// # Errors
    ///
    /// [`SchemeError::NotRegistered`] when the object's type is not registered (Go's
    /// `runtime.Encode` refuses those too), [`SchemeError::Encode`] if serialization fails.
    pub fn encode(&self, object: &dyn DynObject) -> Result<Vec<u8>, SchemeError> {
        serde_json::to_vec(&self.encode_value(object)?).map_err(SchemeError::Encode)
    }

    /// Encode a registered object as a JSON value; see [`Scheme::encode`].
    ///
    /// # Errors
    ///
    /// As [`Scheme::encode`].
    pub fn encode_value(&self, object: &dyn DynObject) -> Result<Value, SchemeError> {
        let gvk = object.gvk();
        match self.types.get(&gvk) {
            Some(r) if r.type_id == object.as_any().type_id() => {}
            _ => return Err(SchemeError::NotRegistered(gvk)),
        }
        object.to_json().map_err(SchemeError::Encode)
    }
}

/// The group, version and kind a JSON object names in its `apiVersion` and `kind`.
fn gvk_of(json: &Value) -> Result<GroupVersionKind, SchemeError> {
    let field = |name: &'static str| {
        json.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(SchemeError::MissingTypeMeta { field: name })
    };
    let api_version = field("apiVersion")?;
    let kind = field("kind")?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    Ok(GroupVersionKind::gvk(group, version, kind))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};
    use serde_json::json;

    use super::*;

    fn scheme() -> Scheme {
        let mut scheme = Scheme::new();
        scheme
            .register::<Pod>()
            .unwrap()
            .register::<Deployment>()
            .unwrap();
        scheme
    }

    #[test]
    fn decode_picks_the_registered_type_from_api_version_and_kind() {
        let scheme = scheme();
        let pod = scheme
            .decode(br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}"#)
            .unwrap();
        let deployment = scheme
            .decode(br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"}}"#)
            .unwrap();
        assert_eq!(
            pod.downcast_ref::<Pod>().unwrap().metadata.name.as_deref(),
            Some("p")
        );
        assert!(deployment.is::<Deployment>());
    }

    #[test]
    fn an_unregistered_kind_is_an_error_that_names_it() {
        let err = scheme()
            .decode(br#"{"apiVersion":"v1","kind":"ConfigMap"}"#)
            .unwrap_err();
        assert!(matches!(err, SchemeError::NotRegistered(ref gvk) if gvk.kind == "ConfigMap"));
        assert_eq!(
            err.to_string(),
            "no kind \"ConfigMap\" is registered for version \"v1\" in the scheme; \
             register its type with Scheme::register"
        );
    }

    #[test]
    fn a_known_kind_in_an_unknown_version_is_not_registered() {
        let err = scheme()
            .decode(br#"{"apiVersion":"apps/v1beta1","kind":"Deployment"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("\"apps/v1beta1\""), "{err}");
    }

    #[test]
    fn missing_api_version_or_kind_is_reported() {
        let scheme = scheme();
        let err = scheme.decode(br#"{"kind":"Pod"}"#).unwrap_err();
        assert!(matches!(
            err,
            SchemeError::MissingTypeMeta {
                field: "apiVersion"
            }
        ));
        let err = scheme.decode(br#"{"apiVersion":"v1"}"#).unwrap_err();
        assert!(matches!(
            err,
            SchemeError::MissingTypeMeta { field: "kind" }
        ));
        assert!(matches!(
            scheme.decode(b"not json"),
            Err(SchemeError::NotJson(_))
        ));
    }

    #[test]
    fn json_that_does_not_fit_the_type_is_a_decode_error() {
        let err = scheme()
            .decode_value(json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": 3}}))
            .unwrap_err();
        assert!(matches!(err, SchemeError::Decode { .. }), "{err:?}");
    }

    #[test]
    fn encode_round_trips_and_refuses_unregistered_types() {
        let scheme = scheme();
        let pod = scheme
            .decode(br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}"#)
            .unwrap();
        let bytes = scheme.encode(pod.as_ref()).unwrap();
        let again = scheme.decode(&bytes).unwrap();
        assert_eq!(again.downcast_ref::<Pod>(), pod.downcast_ref::<Pod>());

        let cm: Box<dyn DynObject> = Box::new(ConfigMap::default());
        assert!(matches!(
            scheme.encode(cm.as_ref()),
            Err(SchemeError::NotRegistered(_))
        ));
    }

    #[test]
    fn registering_the_same_type_twice_is_harmless() {
        let mut scheme = scheme();
        scheme.register::<Pod>().unwrap();
        assert_eq!(scheme.kinds().count(), 2);
        assert!(scheme.is_registered::<Pod>());
        assert!(!scheme.is_registered::<ConfigMap>());
        assert_eq!(
            scheme.resource_of(&Deployment::type_gvk()),
            Some(("deployments", Scope::Namespaced))
        );
    }

    #[test]
    fn decode_as_checks_the_kind() {
        let scheme = scheme();
        let pod: Pod = scheme
            .decode_as(br#"{"apiVersion":"v1","kind":"Pod"}"#)
            .unwrap();
        assert_eq!(pod, Pod::default());
        let err = scheme
            .decode_as::<Pod>(br#"{"apiVersion":"apps/v1","kind":"Deployment"}"#)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected \"Pod\" of version \"v1\", got \"Deployment\" of version \"apps/v1\""
        );
    }
}
