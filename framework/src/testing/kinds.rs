//! What the server knows about each resource it serves: names, scope, subresources and the
//! per-kind rules of the real apiserver (when `generation` moves, whether an update without a
//! resourceVersion is allowed, what a delete answers, which fields can be selected on).
//!
//! Built-in kinds are described here from k8s-openapi's metadata; custom resources get their
//! description from their CRD (see `crd.rs`). Storage and verbs live elsewhere.

use std::any::TypeId;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, coordination::v1 as coordination};
use k8s_openapi::api::{core::v1 as core, events::v1 as events, rbac::v1 as rbac};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::{ClusterResourceScope, ListableResource, Resource};
use serde_json::Value;

use super::defaults;
use super::structural::CrSchema;
use super::validation::NameRule;

/// The storage a resource lives in: one per (group, plural), shared by all served versions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct GroupResource {
    pub(crate) group: String,
    pub(crate) resource: String,
}

/// When `metadata.generation` is bumped, mirroring each kind's registry strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Generation {
    /// The kind has no generation (ConfigMap, Secret, Service, RBAC, ...).
    None,
    /// Set to 1 on create; bumped when `spec` changes.
    Spec,
    /// Like `Spec`, and also when annotations change (Deployment's strategy does this).
    SpecOrAnnotations,
    /// Custom resources: bumped on any change outside `metadata` (and outside `status` when the
    /// status subresource is enabled).
    AllButMetadata,
}

/// Where the `/scale` subresource reads and writes replica counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScalePaths {
    /// Dotted path of the desired replica count, e.g. `.spec.replicas`.
    pub(crate) spec_replicas: String,
    /// Dotted path of the observed replica count, e.g. `.status.replicas`.
    pub(crate) status_replicas: String,
    /// Dotted path of the selector: a string (custom resources) or, for built-ins, the
    /// structured `spec.selector` rendered as a string.
    pub(crate) label_selector: Option<String>,
}

/// Kind-specific defaulting applied on every write, like the apiserver's `SetDefaults_*`.
pub(crate) type Defaulter = fn(&mut Value);

/// Everything the server needs to serve one resource at one version.
#[derive(Debug, Clone)]
pub(crate) struct ResourceType {
    pub(crate) group: String,
    pub(crate) version: String,
    /// The version objects are stored in (differs from `version` only for CRDs that serve
    /// several versions; with conversion strategy `None` the versions differ only in apiVersion).
    pub(crate) storage_version: String,
    pub(crate) kind: String,
    pub(crate) list_kind: String,
    pub(crate) plural: String,
    pub(crate) singular: String,
    pub(crate) namespaced: bool,
    pub(crate) short_names: Vec<String>,
    pub(crate) categories: Vec<String>,
    pub(crate) status_subresource: bool,
    pub(crate) scale: Option<ScalePaths>,
    pub(crate) generation: Generation,
    /// Whether a PUT without `metadata.resourceVersion` overwrites (most built-ins) or is
    /// rejected (custom resources, CRDs).
    pub(crate) unconditional_update: bool,
    /// Whether a PUT of a missing object creates it (answering 201), as the strategies of
    /// Leases, Endpoints, Services and RBAC roles and bindings allow; otherwise it is a 404.
    pub(crate) create_on_update: bool,
    /// Whether a delete without finalizers answers the deleted object (Pods) or a Status.
    pub(crate) delete_returns_object: bool,
    pub(crate) name_rule: NameRule,
    /// Field selector labels beyond `metadata.name` and `metadata.namespace`.
    pub(crate) selectable_fields: Vec<String>,
    /// A custom resource (served from a CRD).
    pub(crate) custom: bool,
    pub(crate) defaulter: Option<Defaulter>,
    /// For built-ins: a round trip through the typed k8s-openapi struct, which rejects bodies
    /// of the wrong shape and drops unknown fields, as the apiserver's typed decoding does.
    pub(crate) decode: Option<Decoder>,
    /// How objects are stored (see `events.rs` for the shape conversions).
    pub(crate) shape: Shape,
    /// For built-ins: the kind's OpenAPI schema (see `schema.rs`).
    pub(crate) schema: Option<SchemaFn>,
    /// For custom resources: the version's structural schema and its CEL rules.
    pub(crate) custom_schema: Option<Arc<CrSchema>>,
    /// For built-ins: the containers Go's zero value of the kind already has (non-pointer
    /// structs such as `spec`), which field ownership does not count as added.
    pub(crate) zero: &'static [&'static str],
    /// For custom resources: the version's `additionalPrinterColumns` (Table output).
    pub(crate) printer_columns: Vec<Value>,
}

/// Produces a built-in kind's schema (a `$ref` into the generator's definitions).
pub(crate) type SchemaFn = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

fn schema_of<T: schemars::JsonSchema>(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<T>()
}

/// Where a kind's objects live when they are not stored as served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Stored as served (at the storage version).
    Native,
    /// events.k8s.io/v1 Events: stored as core v1 Events, converted on every read and write.
    EventsV1,
}

/// Decodes a body into the kind's typed form and back.
pub(crate) type Decoder = fn(Value) -> Result<Value, String>;

fn typed_round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(
    v: Value,
) -> Result<Value, String> {
    let typed: T = serde_json::from_value(v).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

impl ResourceType {
    /// The storage the objects live in.
    pub(crate) fn group_resource(&self) -> GroupResource {
        match self.shape {
            Shape::Native => GroupResource {
                group: self.group.clone(),
                resource: self.plural.clone(),
            },
            Shape::EventsV1 => GroupResource {
                group: String::new(),
                resource: "events".into(),
            },
        }
    }

    pub(crate) fn api_version(&self) -> String {
        api_version(&self.group, &self.version)
    }

    pub(crate) fn storage_api_version(&self) -> String {
        api_version(&self.group, &self.storage_version)
    }

    /// `deployments.apps`, or `configmaps` for the core group: how errors name a resource.
    pub(crate) fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether `field` may be used in a field selector on this resource.
    pub(crate) fn is_selectable(&self, field: &str) -> bool {
        field == "metadata.name"
            || (field == "metadata.namespace" && self.namespaced)
            || self.selectable_fields.iter().any(|f| f == field)
    }

    /// Whether DELETE on the collection is served: every kind here but Namespace, whose
    /// storage has no DeleteCollection.
    pub(crate) fn supports_delete_collection(&self) -> bool {
        !(self.group.is_empty() && self.plural == "namespaces")
    }

    /// The verbs discovery lists, sorted.
    pub(crate) fn verbs(&self) -> Vec<&'static str> {
        let mut verbs = vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ];
        if !self.supports_delete_collection() {
            verbs.retain(|v| *v != "deletecollection");
        }
        verbs
    }
}

/// `v1` for the core group, `group/version` otherwise.
pub(crate) fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Splits an apiVersion into group and version.
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Per-kind facts k8s-openapi does not carry.
struct Extra {
    singular: &'static str,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    scale: bool,
    generation: Generation,
    name_rule: NameRule,
    fields: &'static [&'static str],
    defaulter: Option<Defaulter>,
    zero: &'static [&'static str],
}

const PLAIN: Extra = Extra {
    singular: "",
    short_names: &[],
    categories: &[],
    status: false,
    scale: false,
    generation: Generation::None,
    name_rule: NameRule::DnsSubdomain,
    fields: &[],
    defaulter: None,
    zero: &[],
};

fn builtin<T>(extra: Extra) -> ResourceType
where
    T: Resource
        + ListableResource
        + serde::de::DeserializeOwned
        + serde::Serialize
        + schemars::JsonSchema
        + 'static,
{
    let namespaced = TypeId::of::<T::Scope>() != TypeId::of::<ClusterResourceScope>();
    ResourceType {
        group: T::GROUP.to_string(),
        version: T::VERSION.to_string(),
        storage_version: T::VERSION.to_string(),
        kind: T::KIND.to_string(),
        list_kind: T::LIST_KIND.to_string(),
        plural: T::URL_PATH_SEGMENT.to_string(),
        singular: if extra.singular.is_empty() {
            T::KIND.to_ascii_lowercase()
        } else {
            extra.singular.to_string()
        },
        namespaced,
        short_names: extra.short_names.iter().map(|s| s.to_string()).collect(),
        categories: extra.categories.iter().map(|s| s.to_string()).collect(),
        status_subresource: extra.status,
        scale: extra.scale.then(|| ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: Some(".spec.selector".into()),
        }),
        generation: extra.generation,
        // Every built-in strategy windlass serves allows unconditional updates except the
        // CRD's own (apiextensions' strategy answers false).
        unconditional_update: TypeId::of::<T>()
            != TypeId::of::<apiextensions::CustomResourceDefinition>(),
        create_on_update: [
            TypeId::of::<coordination::Lease>(),
            TypeId::of::<core::Endpoints>(),
            TypeId::of::<core::Service>(),
            TypeId::of::<rbac::Role>(),
            TypeId::of::<rbac::RoleBinding>(),
            TypeId::of::<rbac::ClusterRole>(),
            TypeId::of::<rbac::ClusterRoleBinding>(),
        ]
        .contains(&TypeId::of::<T>()),
        delete_returns_object: TypeId::of::<T>() == TypeId::of::<core::Pod>(),
        name_rule: extra.name_rule,
        selectable_fields: extra.fields.iter().map(|s| s.to_string()).collect(),
        custom: false,
        defaulter: extra.defaulter,
        decode: Some(typed_round_trip::<T>),
        schema: Some(schema_of::<T>),
        custom_schema: None,
        zero: extra.zero,
        printer_columns: Vec::new(),
        shape: if TypeId::of::<T>() == TypeId::of::<events::Event>() {
            Shape::EventsV1
        } else {
            Shape::Native
        },
    }
}

const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

const CORE_EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

const EVENTS_V1_FIELDS: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "type",
];

/// The built-in kinds served from the start.
pub(crate) fn builtins() -> Vec<ResourceType> {
    let workload = |short: &'static [&'static str], scale: bool, defaulter: Defaulter| Extra {
        short_names: short,
        categories: &["all"],
        status: true,
        scale,
        generation: Generation::Spec,
        defaulter: Some(defaulter),
        ..PLAIN
    };
    vec![
        builtin::<core::Namespace>(Extra {
            short_names: &["ns"],
            status: true,
            name_rule: NameRule::DnsLabel,
            fields: &["status.phase"],
            defaulter: Some(defaults::namespace),
            zero: &["spec", "status"],
            ..PLAIN
        }),
        builtin::<core::ConfigMap>(Extra {
            short_names: &["cm"],
            ..PLAIN
        }),
        builtin::<core::Secret>(Extra {
            fields: &["type"],
            defaulter: Some(defaults::secret),
            ..PLAIN
        }),
        builtin::<core::Service>(Extra {
            short_names: &["svc"],
            categories: &["all"],
            status: true,
            name_rule: NameRule::Dns1035Label,
            defaulter: Some(defaults::service),
            zero: &["spec", "status", "status.loadBalancer"],
            ..PLAIN
        }),
        builtin::<core::ServiceAccount>(Extra {
            short_names: &["sa"],
            ..PLAIN
        }),
        builtin::<core::Pod>(Extra {
            short_names: &["po"],
            categories: &["all"],
            status: true,
            generation: Generation::Spec,
            fields: POD_FIELDS,
            defaulter: Some(defaults::pod),
            zero: &["spec", "spec.containers=null", "status"],
            ..PLAIN
        }),
        builtin::<core::Event>(Extra {
            short_names: &["ev"],
            fields: CORE_EVENT_FIELDS,
            zero: &["involvedObject", "source"],
            ..PLAIN
        }),
        builtin::<core::Node>(Extra {
            short_names: &["no"],
            status: true,
            fields: &["spec.unschedulable"],
            zero: &[
                "spec",
                "status",
                "status.daemonEndpoints",
                "status.daemonEndpoints.kubeletEndpoint",
                "status.nodeInfo",
            ],
            ..PLAIN
        }),
        builtin::<core::PersistentVolumeClaim>(Extra {
            short_names: &["pvc"],
            zero: &["spec", "spec.resources", "status"],
            status: true,
            ..PLAIN
        }),
        builtin::<core::Endpoints>(Extra {
            short_names: &["ep"],
            ..PLAIN
        }),
        builtin::<events::Event>(Extra {
            short_names: &["ev"],
            fields: EVENTS_V1_FIELDS,
            zero: &["involvedObject", "source"],
            ..PLAIN
        }),
        builtin::<coordination::Lease>(Extra {
            zero: &["spec"],
            ..PLAIN
        }),
        builtin::<apps::Deployment>(Extra {
            generation: Generation::SpecOrAnnotations,
            zero: &[
                "spec",
                "spec.strategy",
                "spec.template",
                "spec.template.metadata",
                "spec.template.spec",
                "spec.template.spec.containers=null",
                "status",
            ],
            ..workload(&["deploy"], true, defaults::deployment)
        }),
        builtin::<apps::ReplicaSet>(Extra {
            fields: &["status.replicas"],
            zero: &[
                "spec",
                "spec.template",
                "spec.template.metadata",
                "spec.template.spec",
                "spec.template.spec.containers=null",
                "status",
            ],
            ..workload(&["rs"], true, defaults::replica_set)
        }),
        builtin::<apps::StatefulSet>(Extra {
            zero: &[
                "spec",
                "spec.template",
                "spec.template.metadata",
                "spec.template.spec",
                "spec.template.spec.containers=null",
                "spec.updateStrategy",
                "status",
            ],
            ..workload(&["sts"], true, defaults::stateful_set)
        }),
        builtin::<apps::DaemonSet>(Extra {
            zero: &[
                "spec",
                "spec.template",
                "spec.template.metadata",
                "spec.template.spec",
                "spec.template.spec.containers=null",
                "spec.updateStrategy",
                "status",
            ],
            ..workload(&["ds"], false, defaults::daemon_set)
        }),
        builtin::<batch::Job>(Extra {
            short_names: &[],
            fields: &["status.successful"],
            zero: &[
                "spec",
                "spec.template",
                "spec.template.metadata",
                "spec.template.spec",
                "spec.template.spec.containers=null",
                "status",
            ],
            ..workload(&[], false, defaults::job)
        }),
        builtin::<batch::CronJob>(Extra {
            zero: &[
                "spec",
                "spec.jobTemplate",
                "spec.jobTemplate.metadata",
                "spec.jobTemplate.spec",
                "spec.jobTemplate.spec.template",
                "spec.jobTemplate.spec.template.metadata",
                "spec.jobTemplate.spec.template.spec",
                "spec.jobTemplate.spec.template.spec.containers=null",
                "status",
            ],
            ..workload(&["cj"], false, defaults::cron_job)
        }),
        builtin::<rbac::Role>(Extra {
            name_rule: NameRule::PathSegment,
            ..PLAIN
        }),
        builtin::<rbac::RoleBinding>(Extra {
            name_rule: NameRule::PathSegment,
            zero: &["roleRef"],
            ..PLAIN
        }),
        builtin::<rbac::ClusterRole>(Extra {
            name_rule: NameRule::PathSegment,
            ..PLAIN
        }),
        builtin::<rbac::ClusterRoleBinding>(Extra {
            name_rule: NameRule::PathSegment,
            zero: &["roleRef"],
            ..PLAIN
        }),
        builtin::<apiextensions::CustomResourceDefinition>(Extra {
            short_names: &["crd", "crds"],
            categories: &["api-extensions"],
            status: true,
            generation: Generation::Spec,
            defaulter: Some(defaults::crd),
            zero: &["spec", "spec.names", "status", "status.acceptedNames"],
            ..PLAIN
        }),
    ]
}

/// The served resources, indexed the ways requests and discovery look them up.
#[derive(Debug, Default, Clone)]
pub(crate) struct Registry {
    /// (group, version, plural) → type.
    by_path: BTreeMap<(String, String, String), Arc<ResourceType>>,
    /// Group → versions in order of preference (first = preferred).
    group_versions: BTreeMap<String, Vec<String>>,
    /// Groups in the order discovery lists them (built-ins first, then CRD groups).
    group_order: Vec<String>,
}

impl Registry {
    pub(crate) fn with_builtins() -> Self {
        let mut r = Self::default();
        for rt in builtins() {
            r.insert(rt);
        }
        r
    }

    pub(crate) fn insert(&mut self, rt: ResourceType) {
        if !self.group_order.contains(&rt.group) {
            self.group_order.push(rt.group.clone());
        }
        let versions = self.group_versions.entry(rt.group.clone()).or_default();
        if !versions.contains(&rt.version) {
            versions.push(rt.version.clone());
            sort_versions(versions);
        }
        self.by_path.insert(
            (rt.group.clone(), rt.version.clone(), rt.plural.clone()),
            Arc::new(rt),
        );
    }

    /// Removes every served version of one (group, plural).
    pub(crate) fn remove(&mut self, gr: &GroupResource) {
        self.by_path
            .retain(|(g, _, p), _| !(g == &gr.group && p == &gr.resource));
        let still: Vec<(String, String)> = self
            .by_path
            .keys()
            .map(|(g, v, _)| (g.clone(), v.clone()))
            .collect();
        for (group, versions) in self.group_versions.iter_mut() {
            versions.retain(|v| still.iter().any(|(g, sv)| g == group && sv == v));
        }
        self.group_versions.retain(|_, v| !v.is_empty());
        let groups = &self.group_versions;
        self.group_order.retain(|g| groups.contains_key(g));
    }

    pub(crate) fn get(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Option<Arc<ResourceType>> {
        self.by_path
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// Whether (group, version) is served at all (for routing: unknown → 404 page not found).
    pub(crate) fn serves_group_version(&self, group: &str, version: &str) -> bool {
        self.group_versions
            .get(group)
            .is_some_and(|v| v.iter().any(|x| x == version))
    }

    /// The storage version's type of a group resource (any served version will do for rules).
    pub(crate) fn storage_type(&self, gr: &GroupResource) -> Option<Arc<ResourceType>> {
        let mut found = None;
        for ((g, _, p), rt) in &self.by_path {
            if g == &gr.group && p == &gr.resource {
                if rt.version == rt.storage_version {
                    return Some(rt.clone());
                }
                found = Some(rt.clone());
            }
        }
        found
    }

    /// Groups in discovery order, each with its versions (preferred first).
    pub(crate) fn groups(&self) -> Vec<(String, Vec<String>)> {
        self.group_order
            .iter()
            .filter_map(|g| self.group_versions.get(g).map(|v| (g.clone(), v.clone())))
            .collect()
    }

    /// The resources served in one group version, sorted by plural.
    pub(crate) fn resources(&self, group: &str, version: &str) -> Vec<Arc<ResourceType>> {
        self.by_path
            .iter()
            .filter(|((g, v, _), _)| g == group && v == version)
            .map(|(_, rt)| rt.clone())
            .collect()
    }

    /// Every distinct storage (group, plural).
    pub(crate) fn group_resources(&self) -> Vec<GroupResource> {
        let mut out: Vec<GroupResource> = self
            .by_path
            .keys()
            .map(|(g, _, p)| GroupResource {
                group: g.clone(),
                resource: p.clone(),
            })
            .collect();
        out.dedup();
        out
    }
}

/// Orders versions the way Kubernetes does: GA before beta before alpha, higher numbers first,
/// then anything that does not look like a Kubernetes version, alphabetically.
pub(crate) fn sort_versions(versions: &mut [String]) {
    versions.sort_by_key(|v| version_priority(v));
}

fn version_priority(v: &str) -> (u8, std::cmp::Reverse<u64>, std::cmp::Reverse<u64>, String) {
    use std::cmp::Reverse;
    let parse = |s: &str| -> Option<(u64, u8, u64)> {
        let rest = s.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let major: u64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((major, 0, 0));
        }
        let (class, num) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (2, n)
        } else {
            return None;
        };
        Some((major, class, num.parse().ok()?))
    };
    match parse(v) {
        Some((major, class, minor)) => (class, Reverse(major), Reverse(minor), String::new()),
        None => (3, Reverse(0), Reverse(0), v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_ga_then_beta_then_alpha_then_others() {
        let mut v: Vec<String> = ["v1alpha1", "foo", "v1beta1", "v2", "v1", "v1beta2", "v10"]
            .map(String::from)
            .into();
        sort_versions(&mut v);
        assert_eq!(
            v,
            ["v10", "v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]
        );
    }

    #[test]
    fn builtins_know_their_scope_and_plural() {
        let r = Registry::with_builtins();
        let cm = r.get("", "v1", "configmaps").unwrap();
        assert!(cm.namespaced);
        assert_eq!(cm.kind, "ConfigMap");
        assert_eq!(cm.list_kind, "ConfigMapList");
        let ns = r.get("", "v1", "namespaces").unwrap();
        assert!(!ns.namespaced);
        let crd = r
            .get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .unwrap();
        assert!(!crd.namespaced);
        assert!(!crd.unconditional_update);
        assert_eq!(
            r.get("apps", "v1", "deployments")
                .unwrap()
                .qualified_plural(),
            "deployments.apps"
        );
    }
}
