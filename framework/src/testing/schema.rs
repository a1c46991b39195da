//! The schemas objects are read through: for built-in kinds, k8s-openapi's OpenAPI schemas
//! (the same definitions the apiserver publishes) with the list and patch annotations of the
//! Go types layered on; for custom resources, the CRD version's `openAPIV3Schema`, with
//! `metadata` read as `ObjectMeta` as the apiserver does.
//!
//! This module owns navigating a schema ([`Node`]) and the built-in definitions. Server-side
//! apply (`fieldset.rs`), strategic merge (`strategic.rs`), custom resource validation
//! (`validate.rs`) and the OpenAPI documents (`openapi.rs`) all read objects through it.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use super::kinds::builtins;

/// How a list's items are identified, from `x-kubernetes-list-type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListType {
    /// Replaced whole (the default).
    Atomic,
    /// Items are scalars identified by value.
    Set,
    /// Items are objects identified by these keys (with each key's schema default, if any).
    Map(Vec<String>, Vec<Option<Value>>),
}

/// The name of `ObjectMeta`'s definition.
pub(crate) const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// The built-in definitions, keyed by their OpenAPI names (`io.k8s.api.core.v1.Pod`), plus
/// each built-in kind's definition name keyed by `group/version/Kind`.
#[derive(Debug)]
pub(crate) struct Builtins {
    pub(crate) defs: Map<String, Value>,
    pub(crate) kinds: Map<String, Value>,
}

/// The built-in definitions, generated once per process.
pub(crate) fn builtin() -> &'static Builtins {
    static BUILTINS: OnceLock<Builtins> = OnceLock::new();
    BUILTINS.get_or_init(|| {
        let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
        let mut kinds = Map::new();
        for rt in builtins() {
            let Some(schema_of) = rt.schema else {
                continue;
            };
            let root = schema_of(&mut generator);
            if let Some(name) = root
                .as_value()
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(ref_name)
            {
                kinds.insert(
                    format!("{}/{}/{}", rt.group, rt.version, rt.kind),
                    json!(name),
                );
            }
        }
        let mut defs = generator.take_definitions(true);
        annotate(&mut defs);
        Builtins { defs, kinds }
    })
}

/// The definition name a `$ref` points at.
pub(crate) fn ref_name(r: &str) -> Option<&str> {
    r.strip_prefix("#/components/schemas/")
        .or_else(|| r.strip_prefix("#/definitions/"))
        .or_else(|| r.strip_prefix("#/$defs/"))
}

/// A schema node: the schema as written (`outer`, which may be a `$ref` with siblings) and
/// what it resolves to (`inner`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node<'a> {
    outer: &'a Value,
    inner: &'a Value,
    /// The root of an object (or an embedded resource): `metadata` is `ObjectMeta` here.
    object_root: bool,
}

impl<'a> Node<'a> {
    /// A node for `schema`, following `$ref`s into the built-in definitions.
    pub(crate) fn new(schema: &'a Value) -> Self {
        let defs = &builtin().defs;
        let mut inner = schema;
        for _ in 0..8 {
            // OpenAPI 3.0 allows no siblings next to `$ref`, so a described reference is
            // written `{"allOf": [{"$ref": ..}], "description": ..}`.
            let target = match inner.get("allOf").and_then(Value::as_array) {
                Some(all) if all.len() == 1 && inner.get("$ref").is_none() => &all[0],
                _ => inner,
            };
            match target
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(ref_name)
                .and_then(|n| defs.get(n))
            {
                Some(target) => inner = target,
                None => break,
            }
        }
        Node {
            outer: schema,
            inner,
            object_root: false,
        }
    }

    /// The node of an object's root: `metadata` is read as `ObjectMeta`.
    pub(crate) fn root(schema: &'a Value) -> Self {
        Node {
            object_root: true,
            ..Node::new(schema)
        }
    }

    /// The built-in definition `name`.
    pub(crate) fn definition(name: &str) -> Option<Node<'static>> {
        builtin().defs.get(name).map(Node::new)
    }

    /// The schema of the built-in kind `group/version/Kind`.
    pub(crate) fn builtin_kind(group: &str, version: &str, kind: &str) -> Option<Node<'static>> {
        let b = builtin();
        let name = b
            .kinds
            .get(&format!("{group}/{version}/{kind}"))?
            .as_str()?;
        b.defs.get(name).map(Node::root)
    }

    /// A keyword, looked up on the schema as written first.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.outer.get(key).or_else(|| self.inner.get(key))
    }

    fn flag(&self, key: &str) -> bool {
        self.get(key) == Some(&Value::Bool(true))
    }

    pub(crate) fn ty(&self) -> Option<&'a str> {
        self.get("type").and_then(Value::as_str)
    }

    pub(crate) fn properties(&self) -> Option<&'a Map<String, Value>> {
        self.inner.get("properties").and_then(Value::as_object)
    }

    /// Whether the schema names `name` as a property (rather than as a map key).
    pub(crate) fn declares(&self, name: &str) -> bool {
        (self.object_root && name == "metadata")
            || self.properties().is_some_and(|p| p.contains_key(name))
    }

    /// The schema of member `name`: its property, else `additionalProperties`.
    pub(crate) fn property(&self, name: &str) -> Option<Node<'a>> {
        if (self.object_root || self.is_embedded()) && name == "metadata" {
            return Node::definition(OBJECT_META);
        }
        if (self.object_root || self.is_embedded()) && matches!(name, "apiVersion" | "kind") {
            if let Some(p) = self.properties().and_then(|p| p.get(name)) {
                return Some(Node::new(p));
            }
            return Some(Node::new(string_schema()));
        }
        if let Some(p) = self.properties().and_then(|p| p.get(name)) {
            let mut n = Node::new(p);
            n.object_root = n.is_embedded();
            return Some(n);
        }
        match self.inner.get("additionalProperties") {
            Some(v @ Value::Object(_)) => Some(Node::new(v)),
            _ => None,
        }
    }

    /// The schema of an array's items.
    pub(crate) fn items(&self) -> Option<Node<'a>> {
        self.inner.get("items").filter(|v| v.is_object()).map(|v| {
            let mut n = Node::new(v);
            n.object_root = n.is_embedded();
            n
        })
    }

    pub(crate) fn list_type(&self) -> ListType {
        match self.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListType::Set,
            Some("map") => {
                let keys: Vec<String> = self
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                let defaults = keys
                    .iter()
                    .map(|k| {
                        self.items()
                            .and_then(|i| i.property(k))
                            .and_then(|p| p.get("default").cloned())
                    })
                    .collect();
                ListType::Map(keys, defaults)
            }
            _ => ListType::Atomic,
        }
    }

    /// An object owned and replaced whole (`x-kubernetes-map-type: atomic`, Go's
    /// `+structType=atomic`).
    pub(crate) fn is_atomic_map(&self) -> bool {
        self.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic")
    }

    pub(crate) fn preserves_unknown(&self) -> bool {
        self.flag("x-kubernetes-preserve-unknown-fields")
    }

    pub(crate) fn is_embedded(&self) -> bool {
        self.flag("x-kubernetes-embedded-resource")
    }

    pub(crate) fn int_or_string(&self) -> bool {
        self.flag("x-kubernetes-int-or-string")
    }

    pub(crate) fn nullable(&self) -> bool {
        self.flag("nullable")
    }

    /// The strategic merge patch strategy (`merge`, `retainKeys`, `merge,retainKeys`).
    pub(crate) fn patch_strategy(&self) -> &'a str {
        self.get("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub(crate) fn patch_merge_key(&self) -> Option<&'a str> {
        self.get("x-kubernetes-patch-merge-key")
            .and_then(Value::as_str)
    }
}

fn string_schema() -> &'static Value {
    static STRING: OnceLock<Value> = OnceLock::new();
    STRING.get_or_init(|| json!({"type": "string"}))
}

/// One annotation the Go types carry and k8s-openapi's schemas do not: the list type (and map
/// keys) server-side apply uses, and the patch strategy (and merge key) of strategic merge.
struct ListAnnotation {
    definition: &'static str,
    property: &'static str,
    list: &'static str,
    keys: &'static [&'static str],
    strategy: &'static str,
    merge_key: &'static str,
}

const fn list(
    definition: &'static str,
    property: &'static str,
    list: &'static str,
    keys: &'static [&'static str],
    strategy: &'static str,
    merge_key: &'static str,
) -> ListAnnotation {
    ListAnnotation {
        definition,
        property,
        list,
        keys,
        strategy,
        merge_key,
    }
}

const CORE: &str = "io.k8s.api.core.v1.";
const APPS: &str = "io.k8s.api.apps.v1.";

/// The `+listType`, `+listMapKey`, `+patchStrategy` and `+patchMergeKey` markers of the
/// fields of the served kinds (from the Go types in k8s.io/api and apimachinery).
const LISTS: &[ListAnnotation] = &[
    list(OBJECT_META, "finalizers", "set", &[], "merge", ""),
    list(
        OBJECT_META,
        "ownerReferences",
        "map",
        &["uid"],
        "merge",
        "uid",
    ),
    list(OBJECT_META, "managedFields", "atomic", &[], "", ""),
    list("PodSpec", "containers", "map", &["name"], "merge", "name"),
    list(
        "PodSpec",
        "initContainers",
        "map",
        &["name"],
        "merge",
        "name",
    ),
    list(
        "PodSpec",
        "ephemeralContainers",
        "map",
        &["name"],
        "merge",
        "name",
    ),
    list(
        "PodSpec",
        "volumes",
        "map",
        &["name"],
        "merge,retainKeys",
        "name",
    ),
    list(
        "PodSpec",
        "imagePullSecrets",
        "map",
        &["name"],
        "merge",
        "name",
    ),
    list("PodSpec", "hostAliases", "map", &["ip"], "merge", "ip"),
    list(
        "PodSpec",
        "schedulingGates",
        "map",
        &["name"],
        "merge",
        "name",
    ),
    list(
        "PodSpec",
        "resourceClaims",
        "map",
        &["name"],
        "merge,retainKeys",
        "name",
    ),
    list(
        "PodSpec",
        "topologySpreadConstraints",
        "map",
        &["topologyKey", "whenUnsatisfiable"],
        "merge",
        "topologyKey",
    ),
    list(
        "Container",
        "ports",
        "map",
        &["containerPort", "protocol"],
        "merge",
        "containerPort",
    ),
    list("Container", "env", "map", &["name"], "merge", "name"),
    list(
        "Container",
        "volumeMounts",
        "map",
        &["mountPath"],
        "merge",
        "mountPath",
    ),
    list(
        "Container",
        "volumeDevices",
        "map",
        &["devicePath"],
        "merge",
        "devicePath",
    ),
    list(
        "EphemeralContainer",
        "ports",
        "map",
        &["containerPort", "protocol"],
        "merge",
        "containerPort",
    ),
    list(
        "EphemeralContainer",
        "env",
        "map",
        &["name"],
        "merge",
        "name",
    ),
    list(
        "EphemeralContainer",
        "volumeMounts",
        "map",
        &["mountPath"],
        "merge",
        "mountPath",
    ),
    list("PodStatus", "conditions", "map", &["type"], "merge", "type"),
    list("PodStatus", "podIPs", "map", &["ip"], "merge", "ip"),
    list(
        "ServiceSpec",
        "ports",
        "map",
        &["port", "protocol"],
        "merge",
        "port",
    ),
    list(
        "NamespaceStatus",
        "conditions",
        "map",
        &["type"],
        "merge",
        "type",
    ),
    list(
        "NodeStatus",
        "conditions",
        "map",
        &["type"],
        "merge",
        "type",
    ),
    list("NodeStatus", "addresses", "map", &["type"], "merge", "type"),
    list(
        "PersistentVolumeClaimStatus",
        "conditions",
        "map",
        &["type"],
        "merge",
        "type",
    ),
    list(
        "DeploymentStatus",
        "conditions",
        "map",
        &["type"],
        "merge",
        "type",
    ),
    list(
        "ReplicaSetStatus",
        "conditions",
        "map",
        &["type"],
        "merge",
        "type",
    ),
    list(
        "StatefulSetStatus",
        "conditions",
        "map",
        &["type"],
        "merge",
        "type",
    ),
    list(
        "DaemonSetStatus",
        "conditions",
        "map",
        &["type"],
        "merge",
        "type",
    ),
    list(
        "io.k8s.api.batch.v1.JobStatus",
        "conditions",
        "atomic",
        &[],
        "merge",
        "type",
    ),
    list(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus",
        "conditions",
        "map",
        &["type"],
        "merge",
        "type",
    ),
];

/// Fields whose patch strategy is `retainKeys` without being lists.
const RETAIN_KEYS: &[(&str, &str)] = &[
    ("DeploymentSpec", "strategy"),
    ("DaemonSetSpec", "updateStrategy"),
];

/// Structs the Go types mark `+structType=atomic`, owned and replaced whole.
const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.SecretKeySelector",
];

/// Resolves a short definition name (`PodSpec`) to its full name.
fn full_name(short: &str) -> String {
    if short.starts_with("io.k8s.") {
        return short.to_string();
    }
    let apps = [
        "DeploymentStatus",
        "ReplicaSetStatus",
        "StatefulSetStatus",
        "DaemonSetStatus",
        "DeploymentSpec",
        "DaemonSetSpec",
    ];
    if apps.contains(&short) {
        format!("{APPS}{short}")
    } else {
        format!("{CORE}{short}")
    }
}

fn annotate(defs: &mut Map<String, Value>) {
    for a in LISTS {
        let Some(prop) = defs
            .get_mut(&full_name(a.definition))
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(a.property))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        prop.insert("x-kubernetes-list-type".into(), json!(a.list));
        if !a.keys.is_empty() {
            prop.insert("x-kubernetes-list-map-keys".into(), json!(a.keys));
        }
        if !a.strategy.is_empty() {
            prop.insert("x-kubernetes-patch-strategy".into(), json!(a.strategy));
        }
        if !a.merge_key.is_empty() {
            prop.insert("x-kubernetes-patch-merge-key".into(), json!(a.merge_key));
        }
    }
    for (def, field) in RETAIN_KEYS {
        if let Some(prop) = defs
            .get_mut(&full_name(def))
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(*field))
            .and_then(Value::as_object_mut)
        {
            prop.insert("x-kubernetes-patch-strategy".into(), json!("retainKeys"));
        }
    }
    for def in ATOMIC_STRUCTS {
        if let Some(d) = defs.get_mut(*def).and_then(Value::as_object_mut) {
            d.insert("x-kubernetes-map-type".into(), json!("atomic"));
        }
    }
    // Protocols default to TCP, which is also how list keys without one are identified.
    for def in ["ContainerPort", "ServicePort"] {
        if let Some(p) = defs
            .get_mut(&full_name(def))
            .and_then(|d| d.pointer_mut("/properties/protocol"))
            .and_then(Value::as_object_mut)
        {
            p.insert("default".into(), json!("TCP"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_kinds_resolve_through_their_definitions() {
        let pod = Node::builtin_kind("", "v1", "Pod").expect("the Pod schema");
        let containers = pod
            .property("spec")
            .and_then(|s| s.property("containers"))
            .expect("containers");
        assert_eq!(
            containers.list_type(),
            ListType::Map(vec!["name".into()], vec![None])
        );
        let ports = containers
            .items()
            .and_then(|c| c.property("ports"))
            .expect("ports");
        assert_eq!(
            ports.list_type(),
            ListType::Map(
                vec!["containerPort".into(), "protocol".into()],
                vec![None, Some(json!("TCP"))]
            )
        );
        let meta = pod.property("metadata").expect("metadata");
        assert_eq!(
            meta.property("finalizers").unwrap().list_type(),
            ListType::Set
        );
        assert!(meta.property("labels").unwrap().property("x").is_some());
    }

    #[test]
    fn label_selectors_are_atomic() {
        let d = Node::builtin_kind("apps", "v1", "Deployment").expect("the Deployment schema");
        let sel = d
            .property("spec")
            .and_then(|s| s.property("selector"))
            .expect("selector");
        assert!(sel.is_atomic_map());
    }
}
