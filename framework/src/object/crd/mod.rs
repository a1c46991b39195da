//! Building `CustomResourceDefinition`s: what `#[derive(CustomResource)]` records about a
//! custom resource, the structural schema of its Rust type, merging the CRDs of several versions
//! of one kind, and printing CRDs as YAML for `kubectl apply -f`.
//!
//! The derive calls [`build`]; most users only meet this module through [`merge_crds`] and
//! [`to_yaml`] in a `crdgen` binary:
//!
//! ```no_run
//! # use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
//! # fn crd() -> CustomResourceDefinition { unimplemented!() }
//! // With `Widget: CustomResourceExt`, this would be `Widget::crd()`.
//! print!("{}", windlass::object::crd::to_yaml(&[crd()])?);
//! # Ok::<(), windlass::object::crd::CrdError>(())
//! ```

mod merge;
mod schema;
mod structural;
mod yaml;

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresourceScale,
    CustomResourceSubresourceStatus, CustomResourceSubresources, CustomResourceValidation,
    JSONSchemaProps, SelectableField,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde_json::{Value, json};

pub use merge::merge_crds;
pub use schema::{schema_for, structural};
pub use structural::{Violation, check_structural};
pub use yaml::{to_yaml, write_yaml};

/// Why CRDs could not be merged or printed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrdError {
    /// `merge_crds` was given no CRD.
    #[error("no CRDs to merge")]
    Empty,
    /// Two CRDs being merged disagree on something all versions of one kind share.
    #[error(
        "cannot merge the CRD of version {version:?} into the others: its {field} is {found:?}, \
         theirs is {expected:?}; all versions of one kind must share group, kind, names and scope"
    )]
    Mismatch {
        /// What differs: `group`, `kind`, `scope`, `plural`, ….
        field: &'static str,
        /// The value in the first CRD.
        expected: String,
        /// The value in the CRD of `version`.
        found: String,
        /// The version whose CRD differs.
        version: String,
    },
    /// Two CRDs being merged define the same version.
    #[error("version {0:?} is defined twice")]
    DuplicateVersion(String),
    /// Not exactly one of the merged versions is the storage version.
    #[error(
        "exactly one version must be the storage version, but {} {}; mark the others with \
         #[windlass(storage = false)]",
        if .0.is_empty() { "none is".to_string() } else { format!("{:?} are", .0) },
        if .0.is_empty() { "marked" } else { "all marked" }
    )]
    StorageVersions(Vec<String>),
    /// A version's schema is not structural, or the CRD could not be built from it.
    #[error("the schema of version {version:?} is invalid: {reason}")]
    InvalidSchema {
        /// The version.
        version: String,
        /// What is wrong.
        reason: String,
    },
    /// Serializing to YAML failed.
    #[error("cannot write the CRD as YAML: {0}")]
    Yaml(String),
}

/// A CEL validation rule (`x-kubernetes-validations`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validation {
    /// The CEL expression, with `self` the value the rule is on.
    pub rule: &'static str,
    /// What the API server says when the rule fails; without one it quotes the rule.
    pub message: Option<&'static str>,
}

/// An `additionalPrinterColumns` entry: a column `kubectl get` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrinterColumn {
    /// The column header.
    pub name: &'static str,
    /// `integer`, `number`, `string`, `boolean` or `date`.
    pub type_: &'static str,
    /// A simple JSON path into the object, such as `.spec.replicas`.
    pub json_path: &'static str,
    /// A human readable description of the column.
    pub description: Option<&'static str>,
    /// 0 for columns always shown; higher for those shown only with `-o wide`.
    pub priority: Option<i32>,
    /// An OpenAPI format refining the type, such as `int32` or `date-time`.
    pub format: Option<&'static str>,
}

/// The `scale` subresource: where the replica counts and the selector live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// JSON path of the desired replicas in the spec, such as `.spec.replicas`.
    pub spec_replicas_path: &'static str,
    /// JSON path of the observed replicas in the status, such as `.status.replicas`.
    pub status_replicas_path: &'static str,
    /// JSON path of the label selector (as a string) in the status, for the HPA.
    pub label_selector_path: Option<&'static str>,
}

/// Everything about a custom resource except its schema: what `#[derive(CustomResource)]`
/// records from its `#[windlass(...)]` attributes and passes to [`build`]. Spelling one out by
/// hand works too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Definition {
    /// The API group, a DNS subdomain with at least one dot.
    pub group: &'static str,
    /// The version, such as `v1alpha1`.
    pub version: &'static str,
    /// The kind, UpperCamelCase.
    pub kind: &'static str,
    /// The plural resource name, lowercase.
    pub plural: &'static str,
    /// The singular resource name, lowercase.
    pub singular: &'static str,
    /// Short names for `kubectl get`.
    pub short_names: &'static [&'static str],
    /// Categories for `kubectl get <category>`, such as `all`.
    pub categories: &'static [&'static str],
    /// Whether objects live in namespaces (else cluster-scoped).
    pub namespaced: bool,
    /// Whether the type has a `status` (and so a `/status` subresource).
    pub status: bool,
    /// The `scale` subresource, if any.
    pub scale: Option<Scale>,
    /// Columns for `kubectl get`.
    pub printer_columns: &'static [PrinterColumn],
    /// JSON paths usable in field selectors, such as `.spec.color`.
    pub selectable_fields: &'static [&'static str],
    /// CEL rules on the whole object (`self` is the object, so `self.spec.x`).
    pub validations: &'static [Validation],
    /// CEL rules on fields of the spec, by their serialized name.
    pub field_validations: &'static [(&'static str, Validation)],
    /// Whether this version is served.
    pub served: bool,
    /// Whether this version is the storage version.
    pub storage: bool,
    /// Whether this version is deprecated.
    pub deprecated: bool,
    /// The warning clients get when using this deprecated version.
    pub deprecation_warning: Option<&'static str>,
}

impl Definition {
    /// The CRD's name: `plural.group`.
    pub fn crd_name(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }
}

/// The CRD of `K`, a type whose `JsonSchema` describes the whole object (`apiVersion`, `kind`,
/// `metadata`, `spec`, `status`), as the derive's root types do.
///
/// # Panics
///
/// Only on a bug in windlass: the structural schema it generated does not deserialize as a
/// `JSONSchemaProps`. [`try_build`] returns that as an error instead.
pub fn build<K: JsonSchema>(definition: &Definition) -> CustomResourceDefinition {
    match try_build::<K>(definition) {
        Ok(crd) => crd,
        Err(err) => panic!(
            "windlass generated an invalid CRD for {}: {err}",
            definition.kind
        ),
    }
}

/// [`build`], returning a schema it cannot express as an error.
///
/// # Errors
///
/// [`CrdError::InvalidSchema`] when the generated schema does not deserialize as a
/// `JSONSchemaProps`.
pub fn try_build<K: JsonSchema>(
    definition: &Definition,
) -> Result<CustomResourceDefinition, CrdError> {
    let mut schema = schema_for::<K>();
    add_validations(&mut schema, definition);
    let schema: JSONSchemaProps =
        serde_json::from_value(schema).map_err(|e| CrdError::InvalidSchema {
            version: definition.version.into(),
            reason: e.to_string(),
        })?;
    Ok(assemble(definition, schema))
}

fn rules(validations: &[Validation]) -> Value {
    validations
        .iter()
        .map(|v| match v.message {
            Some(message) => json!({"rule": v.rule, "message": message}),
            None => json!({"rule": v.rule}),
        })
        .collect()
}

fn add_validations(schema: &mut Value, definition: &Definition) {
    if !definition.validations.is_empty() {
        schema["x-kubernetes-validations"] = rules(definition.validations);
    }
    let mut by_field: BTreeMap<&str, Vec<Validation>> = BTreeMap::new();
    for (field, validation) in definition.field_validations {
        by_field.entry(field).or_default().push(*validation);
    }
    for (field, validations) in by_field {
        if let Some(property) = schema
            .pointer_mut("/properties/spec/properties")
            .and_then(|p| p.get_mut(field))
            .and_then(Value::as_object_mut)
        {
            property.insert("x-kubernetes-validations".into(), rules(&validations));
        }
    }
}

fn some_vec<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn assemble(def: &Definition, schema: JSONSchemaProps) -> CustomResourceDefinition {
    let subresources = (def.status || def.scale.is_some()).then(|| CustomResourceSubresources {
        status: def
            .status
            .then_some(CustomResourceSubresourceStatus(json!({}))),
        scale: def.scale.map(|s| CustomResourceSubresourceScale {
            spec_replicas_path: s.spec_replicas_path.into(),
            status_replicas_path: s.status_replicas_path.into(),
            label_selector_path: s.label_selector_path.map(Into::into),
        }),
    });
    let columns = def
        .printer_columns
        .iter()
        .map(|c| CustomResourceColumnDefinition {
            name: c.name.into(),
            type_: c.type_.into(),
            json_path: c.json_path.into(),
            description: c.description.map(Into::into),
            priority: c.priority,
            format: c.format.map(Into::into),
        })
        .collect();
    let selectable = def
        .selectable_fields
        .iter()
        .map(|p| SelectableField {
            json_path: (*p).into(),
        })
        .collect();
    let strings = |v: &[&str]| some_vec(v.iter().map(|s| (*s).to_string()).collect());
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(def.crd_name()),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: def.group.into(),
            names: CustomResourceDefinitionNames {
                kind: def.kind.into(),
                list_kind: Some(format!("{}List", def.kind)),
                plural: def.plural.into(),
                singular: Some(def.singular.into()),
                short_names: strings(def.short_names),
                categories: strings(def.categories),
            },
            scope: if def.namespaced {
                "Namespaced"
            } else {
                "Cluster"
            }
            .into(),
            versions: vec![CustomResourceDefinitionVersion {
                name: def.version.into(),
                served: def.served,
                storage: def.storage,
                deprecated: def.deprecated.then_some(true),
                deprecation_warning: def.deprecation_warning.map(Into::into),
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: Some(schema),
                }),
                subresources,
                additional_printer_columns: some_vec(columns),
                selectable_fields: some_vec(selectable),
            }],
            conversion: None,
            preserve_unknown_fields: None,
        },
        status: None,
    }
}
