//! CustomResourceDefinitions: validating them on write, and turning an established CRD into
//! the resource types the server then serves (one per served version, sharing one storage).
//!
//! The lifecycle (NamesAccepted → Established, cleanup on deletion) runs in `controllers.rs`;
//! validating custom resources against their schema is not done here.

use std::sync::Arc;

use serde_json::{Value, json};

use super::kinds::{Generation, GroupResource, ResourceType, ScalePaths, Shape};
use super::server::State;
use super::structural::CrSchema;
use super::validation::{Cause, NameRule, go_quote, is_dns1123_label, is_dns1123_subdomain};

/// The finalizer the apiserver puts on every CRD so its custom resources are deleted first.
pub(crate) const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

fn invalid(field: &str, value: &Value, why: &str) -> Cause {
    let shown = match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    Cause {
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {shown}: {why}"),
        field: field.into(),
    }
}

fn required(field: &str, why: Option<&str>) -> Cause {
    let message = match why {
        Some(w) => format!("Required value: {w}"),
        None => "Required value".into(),
    };
    Cause {
        reason: "FieldValueRequired",
        message,
        field: field.into(),
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The apiextensions rules for a CRD (and, on update, what may not change).
pub(crate) fn validate(crd: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let group = str_at(crd, "/spec/group");
    let plural = str_at(crd, "/spec/names/plural");
    let kind = str_at(crd, "/spec/names/kind");
    let name = str_at(crd, "/metadata/name");
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if group.is_empty() {
        causes.push(required("spec.group", None));
    } else {
        for why in is_dns1123_subdomain(group) {
            causes.push(invalid("spec.group", &json!(group), &why));
        }
        if !group.contains('.') {
            causes.push(invalid(
                "spec.group",
                &json!(group),
                "should be a domain with at least one dot",
            ));
        }
    }
    if plural.is_empty() {
        causes.push(required("spec.names.plural", None));
    } else {
        for why in is_dns1123_label(plural) {
            causes.push(invalid("spec.names.plural", &json!(plural), &why));
        }
    }
    let singular = str_at(crd, "/spec/names/singular");
    if !singular.is_empty() {
        for why in is_dns1123_label(singular) {
            causes.push(invalid("spec.names.singular", &json!(singular), &why));
        }
    }
    if kind.is_empty() {
        causes.push(required("spec.names.kind", None));
    } else if !kind.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        || !kind.chars().all(|c| c.is_ascii_alphanumeric())
    {
        causes.push(invalid(
            "spec.names.kind",
            &json!(kind),
            "may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?",
        ));
    }
    let scope = str_at(crd, "/spec/scope");
    if scope != "Cluster" && scope != "Namespaced" {
        causes.push(Cause {
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: {scope:?}: supported values: \"Cluster\", \"Namespaced\""
            ),
            field: "spec.scope".into(),
        });
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(invalid(
            "spec.versions",
            &json!(versions),
            "must have exactly one version marked as storage version",
        ));
    } else {
        let storage = versions.iter().filter(|v| v["storage"] == true).count();
        if storage != 1 {
            causes.push(invalid(
                "spec.versions",
                &json!(format!("{} versions", versions.len())),
                "must have exactly one version marked as storage version",
            ));
        }
        if !versions.iter().any(|v| v["served"] == true) {
            causes.push(invalid(
                "spec.versions",
                &json!(format!("{} versions", versions.len())),
                "must have at least one version marked as served",
            ));
        }
        let mut seen = Vec::new();
        for (i, v) in versions.iter().enumerate() {
            let name = v["name"].as_str().unwrap_or_default();
            let at = format!("spec.versions[{i}]");
            if name.is_empty() {
                causes.push(required(&format!("{at}.name"), None));
            } else {
                for why in is_dns1123_label(name) {
                    causes.push(invalid(&format!("{at}.name"), &json!(name), &why));
                }
                if seen.contains(&name) {
                    causes.push(Cause::duplicate(&format!("{at}.name"), &go_quote(name)));
                }
                seen.push(name);
            }
            match v
                .pointer("/schema/openAPIV3Schema")
                .filter(|s| !s.is_null())
            {
                None => causes.push(required(
                    &format!("{at}.schema.openAPIV3Schema"),
                    Some("schemas are required"),
                )),
                Some(schema) => causes.extend(validate_schema(
                    schema,
                    &format!("{at}.schema.openAPIV3Schema"),
                )),
            }
        }
    }
    if let Some(old) = old
        && str_at(old, "/spec/scope") != scope
        && !scope.is_empty()
    {
        causes.push(invalid("spec.scope", &json!(scope), "field is immutable"));
    }
    causes
}

/// A version's schema: structural (the same checker `windlass::object::crd` offers users),
/// CEL rules that compile, patterns that are regular expressions.
fn validate_schema(schema: &Value, at: &str) -> Vec<Cause> {
    let mut causes: Vec<Cause> = crate::object::crd::check_structural(schema)
        .into_iter()
        .map(|v| {
            let field = if v.path.is_empty() {
                at.to_string()
            } else {
                format!("{at}.{}", v.path)
            };
            let reason = match v.message.split(':').next().unwrap_or_default() {
                "Required value" => "FieldValueRequired",
                "Forbidden" => "FieldValueForbidden",
                "Unsupported value" => "FieldValueNotSupported",
                _ => "FieldValueInvalid",
            };
            Cause::new(reason, &field, v.message)
        })
        .collect();
    schema_rules(schema, at, &mut causes);
    causes
}

/// Compiles every `x-kubernetes-validations` rule (and `messageExpression`) and `pattern`.
fn schema_rules(node: &Value, at: &str, causes: &mut Vec<Cause>) {
    let Some(obj) = node.as_object() else { return };
    if let Some(rules) = obj
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        for (i, r) in rules.iter().enumerate() {
            let field = format!("{at}.x-kubernetes-validations[{i}]");
            let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
            let shown = format!(
                "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:{}, OptionalOldSelf:(*bool)(nil)}}",
                go_quote(text("rule")),
                go_quote(text("message")),
                go_quote(text("messageExpression")),
                go_quote(text("fieldPath"))
            );
            if let Err(e) = super::cel::compile(text("rule")) {
                causes.push(Cause::invalid(&format!("{field}.rule"), &shown, &e));
            }
            if !text("messageExpression").is_empty()
                && let Err(e) = super::cel::compile(text("messageExpression"))
            {
                causes.push(Cause::invalid(
                    &format!("{field}.messageExpression"),
                    &shown,
                    &format!("messageExpression {e}"),
                ));
            }
        }
    }
    if let Some(p) = obj.get("pattern").and_then(Value::as_str)
        && let Err(e) = regex::Regex::new(p)
    {
        let why = e.to_string();
        let why = why.lines().last().unwrap_or_default().trim().to_string();
        causes.push(Cause::invalid(
            &format!("{at}.pattern"),
            &go_quote(p),
            &format!("must be a valid regular expression, but isn't: {why}"),
        ));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            schema_rules(prop, &format!("{at}.properties[{name}]"), causes);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = obj.get(key).filter(|c| c.is_object()) {
            schema_rules(child, &format!("{at}.{key}"), causes);
        }
    }
}

/// What the apiserver adds to a CRD it creates.
pub(crate) fn prepare_create(crd: &mut Value) {
    let fins = crd["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !fins.iter().any(|f| f == CLEANUP_FINALIZER) {
        let mut fins = fins;
        fins.push(json!(CLEANUP_FINALIZER));
        crd["metadata"]["finalizers"] = json!(fins);
    }
    let storage: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"] == true)
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    crd["status"] = json!({"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": storage});
}

/// The (group, plural) a CRD named `plural.group` defines.
pub(crate) fn group_resource_of_name(name: &str) -> Option<GroupResource> {
    let (plural, group) = name.split_once('.')?;
    Some(GroupResource {
        group: group.into(),
        resource: plural.into(),
    })
}

pub(crate) fn condition_true(crd: &Value, kind: &str) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == kind && c["status"] == "True")
        })
}

/// Whether the CRD serving this custom resource is being deleted.
pub(crate) fn is_terminating(state: &State, rt: &ResourceType) -> bool {
    let crds = GroupResource {
        group: "apiextensions.k8s.io".into(),
        resource: "customresourcedefinitions".into(),
    };
    let name = format!("{}.{}", rt.plural, rt.group);
    state
        .store
        .get(&crds, &(String::new(), name))
        .is_some_and(|c| c.value.pointer("/metadata/deletionTimestamp").is_some())
}

/// The accepted names a CRD's spec asks for, as `status.acceptedNames` reports them.
pub(crate) fn accepted_names(crd: &Value) -> Value {
    let names = &crd["spec"]["names"];
    let kind = names["kind"].as_str().unwrap_or_default();
    let mut out = json!({
        "plural": names["plural"],
        "singular": names.get("singular").and_then(Value::as_str).map_or_else(|| kind.to_ascii_lowercase(), String::from),
        "kind": kind,
        "listKind": names.get("listKind").and_then(Value::as_str).map_or_else(|| format!("{kind}List"), String::from),
    });
    for f in ["shortNames", "categories"] {
        if let Some(v) = names
            .get(f)
            .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        {
            out[f] = v.clone();
        }
    }
    out
}

/// The resource types an established CRD serves: one per served version.
pub(crate) fn types_for(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let names = accepted_names(crd);
    let group = spec["group"].as_str().unwrap_or_default().to_string();
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let storage = versions
        .iter()
        .find(|v| v["storage"] == true)
        .and_then(|v| v["name"].as_str())
        .unwrap_or_default()
        .to_string();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    versions
        .iter()
        .filter(|v| v["served"] == true)
        .map(|v| {
            let subresources = &v["subresources"];
            let scale = subresources
                .get("scale")
                .filter(|s| s.is_object())
                .map(|s| ScalePaths {
                    spec_replicas: s["specReplicasPath"]
                        .as_str()
                        .unwrap_or(".spec.replicas")
                        .into(),
                    status_replicas: s["statusReplicasPath"]
                        .as_str()
                        .unwrap_or(".status.replicas")
                        .into(),
                    label_selector: s["labelSelectorPath"].as_str().map(String::from),
                });
            let selectable = v["selectableFields"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f["jsonPath"].as_str())
                        .map(|p| p.trim_start_matches('.').to_string())
                        .collect()
                })
                .unwrap_or_default();
            ResourceType {
                group: group.clone(),
                version: v["name"].as_str().unwrap_or_default().to_string(),
                storage_version: storage.clone(),
                kind: names["kind"].as_str().unwrap_or_default().to_string(),
                list_kind: names["listKind"].as_str().unwrap_or_default().to_string(),
                plural: names["plural"].as_str().unwrap_or_default().to_string(),
                singular: names["singular"].as_str().unwrap_or_default().to_string(),
                namespaced: spec["scope"] == "Namespaced",
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                status_subresource: subresources.get("status").is_some_and(Value::is_object),
                scale,
                generation: Generation::AllButMetadata,
                unconditional_update: false,
                create_on_update: false,
                delete_returns_object: false,
                name_rule: NameRule::DnsSubdomain,
                selectable_fields: selectable,
                custom: true,
                defaulter: None,
                decode: None,
                shape: Shape::Native,
                schema: None,
                custom_schema: Some(Arc::new(CrSchema::new(
                    v.pointer("/schema/openAPIV3Schema")
                        .cloned()
                        .unwrap_or_else(|| json!({"type": "object"})),
                ))),
                zero: &[],
                printer_columns: v
                    .get("additionalPrinterColumns")
                    .and_then(Value::as_array)
                    .filter(|c| !c.is_empty())
                    .cloned()
                    // The apiserver defaults a version without columns to an Age column.
                    .unwrap_or_else(|| {
                        vec![json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})]
                    }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object"}},
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}}},
                    {"name": "v1beta1", "served": true, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object"}}}
                ]
            }
        })
    }

    #[test]
    fn a_valid_crd_has_no_causes() {
        assert!(validate(&crd(), None).is_empty());
    }

    #[test]
    fn the_name_must_be_plural_dot_group() {
        let mut c = crd();
        c["metadata"]["name"] = json!("gadgets.example.com");
        let causes = validate(&c, None);
        assert_eq!(causes[0].field, "metadata.name");
    }

    #[test]
    fn exactly_one_storage_version_is_required() {
        let mut c = crd();
        c["spec"]["versions"][1]["storage"] = json!(true);
        assert!(
            validate(&c, None)
                .iter()
                .any(|c| c.message.contains("exactly one version marked as storage"))
        );
    }

    #[test]
    fn every_served_version_becomes_a_type_sharing_the_storage_version() {
        let types = types_for(&crd());
        assert_eq!(types.len(), 2);
        assert!(
            types
                .iter()
                .all(|t| t.storage_version == "v1" && t.kind == "Widget")
        );
        assert_eq!(types[0].list_kind, "WidgetList");
        assert!(types[0].status_subresource && types[0].scale.is_some());
        assert!(!types[1].status_subresource);
    }
}
