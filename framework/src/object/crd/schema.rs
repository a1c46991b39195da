//! Turning the JSON Schema schemars generates into the structural OpenAPI v3 schema the API
//! server requires of a CRD.
//!
//! The rules come from the apiserver's structural-schema validation
//! (`apiextensions-apiserver/pkg/apiserver/schema/validation.go`): every node has a `type`
//! unless it is `x-kubernetes-int-or-string` or `x-kubernetes-preserve-unknown-fields`; no
//! `$ref`; `properties` and `additionalProperties` never together; and `oneOf`/`anyOf`/`allOf`/
//! `not` carry only value validations (no `type`, `description`, `default`, `nullable`,
//! `additionalProperties`), over properties that are also specified outside them.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// The schema of `T`, with every subschema inlined and rewritten into structural form.
///
/// What each Rust/serde shape becomes:
///
/// | Rust | schema |
/// |---|---|
/// | `Option<T>` | `T`'s schema with `nullable: true`, and not in `required` |
/// | `#[serde(default)]` field | not in `required` |
/// | enum of unit variants | `type: string` with an `enum` list |
/// | enum with data, externally/internally/adjacently tagged | `type: object` with the union of the variants' properties and a `oneOf` of the `required` sets (and tag values) that tell the variants apart |
/// | `#[serde(untagged)]` enum | as above with `anyOf`, or the common scalar type |
/// | enum mixing unit and data variants, or untagged over unrelated types | `x-kubernetes-preserve-unknown-fields: true` (no structural type fits) |
/// | `BTreeMap<String, T>` / `HashMap` | `type: object`, `additionalProperties: T` |
/// | `serde_json::Value` | `x-kubernetes-preserve-unknown-fields: true` |
/// | map of `Value` | `type: object`, `x-kubernetes-preserve-unknown-fields: true` |
/// | `IntOrString`, `Quantity` (k8s-openapi) | `x-kubernetes-int-or-string: true` |
/// | recursive type | `x-kubernetes-preserve-unknown-fields: true` where it recurses |
/// | tuple of unlike types | array of `x-kubernetes-preserve-unknown-fields: true` items |
///
/// Doc comments become `description`s; `title`, `$schema`, `$defs` and other JSON Schema
/// keywords the apiserver does not know are removed.
pub fn schema_for<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    let mut value = schema.to_value();
    structural(&mut value);
    value
}

/// Rewrite a JSON Schema, in place, into the structural subset of OpenAPI v3.
pub fn structural(schema: &mut Value) {
    visit(schema);
    replace_null_types(schema);
    if let Some(obj) = schema.as_object_mut() {
        // The root's `$defs` are only reachable through `$ref`s, and those are gone.
        obj.remove("$defs");
        obj.remove("definitions");
    }
}

/// `type: null` survives `visit` so a parent can recognize `Option`'s null branch; one left at a
/// structural position (a `()` field) has no OpenAPI form and accepts only null, so it becomes a
/// nullable any-value.
fn replace_null_types(node: &mut Value) {
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    if obj.get("type") == Some(&json!("null")) {
        obj.remove("type");
        obj.remove("enum");
        obj.insert("nullable".into(), true.into());
        obj.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
    }
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        props.values_mut().for_each(replace_null_types);
    }
    if let Some(items) = obj.get_mut("items") {
        replace_null_types(items);
    }
    if let Some(ap) = obj.get_mut("additionalProperties") {
        replace_null_types(ap);
    }
}

/// Keywords of JSON Schema that OpenAPI v3 in a CRD has no place for.
const DROPPED: &[&str] = &[
    "$schema",
    "$id",
    "$anchor",
    "$comment",
    "title",
    "examples",
    "readOnly",
    "writeOnly",
    "deprecated",
    "contentEncoding",
    "contentMediaType",
    "unevaluatedProperties",
    "unevaluatedItems",
];

fn any_value() -> Value {
    json!({"x-kubernetes-preserve-unknown-fields": true})
}

/// Rewrite the schema at a structural position (the root, a property, an item or a map value).
fn visit(node: &mut Value) {
    match node {
        Value::Bool(true) => *node = any_value(),
        // `false` accepts nothing; no structural schema says that, and serde never asks for it
        // outside `additionalProperties`, which is handled by the parent.
        Value::Bool(false) => *node = any_value(),
        Value::Object(_) => {}
        _ => *node = any_value(),
    }
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    for key in DROPPED {
        obj.remove(*key);
    }
    if obj.contains_key("$ref") {
        // Only recursive types keep a `$ref` when subschemas are inlined; the apiserver has no
        // way to say "this again", so the recursion point accepts any value.
        let description = obj.remove("description");
        obj.clear();
        obj.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
        if let Some(d) = description {
            obj.insert("description".into(), d);
        }
        return;
    }
    if let Some(c) = obj.remove("const") {
        obj.insert("enum".into(), Value::Array(vec![c]));
    }
    for (exclusive, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        // JSON Schema 2020-12 gives the bound itself; OpenAPI v3.0 a flag next to it.
        if let Some(n) = obj.get(exclusive).filter(|v| v.is_number()).cloned() {
            obj.insert(bound.into(), n);
            obj.insert(exclusive.into(), true.into());
        }
    }
    children(obj);
    normalize_type(obj);
    if obj.remove("uniqueItems") == Some(Value::Bool(true)) {
        // The apiserver forbids uniqueItems (quadratic to check); a set of scalars is what
        // `x-kubernetes-list-type: set` says, and is checked in linear time.
        let scalar_items = obj
            .get("items")
            .and_then(|i| i.get("type"))
            .and_then(Value::as_str)
            .is_some_and(|t| matches!(t, "string" | "integer" | "number" | "boolean"));
        if scalar_items {
            obj.insert("x-kubernetes-list-type".into(), "set".into());
        }
    }
    if let Some(Value::Array(all_of)) = obj.remove("allOf") {
        for part in all_of {
            absorb(obj, part);
        }
    }
    for junctor in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = obj.remove(junctor) {
            let merged = merge_branches(branches, junctor);
            absorb(obj, merged);
        }
    }
    fix_additional_properties(obj);
    if obj.get("nullable") == Some(&Value::Bool(true))
        && let Some(Value::Array(values)) = obj.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        // The apiserver checks `enum` even for null, so a nullable enum must list null, or
        // `None` (serialized as null) is refused.
        values.push(Value::Null);
    }
    if obj.get("nullable") == Some(&Value::Bool(false)) {
        obj.remove("nullable");
    }
    if let Some(Value::Array(required)) = obj.get("required")
        && required.is_empty()
    {
        obj.remove("required");
    }
    let typed = obj.get("type").is_some_and(|t| t != "null");
    let open = obj.contains_key("x-kubernetes-int-or-string")
        || obj.contains_key("x-kubernetes-preserve-unknown-fields");
    if !typed && !open && obj.get("type") != Some(&json!("null")) {
        obj.remove("type");
        obj.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
    }
}

/// Rewrite the structural positions under `obj`.
fn children(obj: &mut Map<String, Value>) {
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for prop in props.values_mut() {
            visit(prop);
        }
    }
    if let Some(prefix) = obj.remove("prefixItems") {
        // A tuple: one schema per position. Structural arrays have one item schema, so a
        // tuple of like types keeps it and any other tuple takes any items.
        let items = match prefix {
            Value::Array(mut items) if !items.is_empty() => {
                items.iter_mut().for_each(visit);
                if items.iter().all(|i| i == &items[0]) {
                    items.swap_remove(0)
                } else {
                    any_value()
                }
            }
            _ => any_value(),
        };
        obj.insert("items".into(), items);
    } else if let Some(items) = obj.get_mut("items") {
        visit(items);
    }
    if let Some(ap) = obj.get_mut("additionalProperties")
        && ap.is_object()
    {
        visit(ap);
    }
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = obj.get_mut(junctor) {
            branches.iter_mut().for_each(visit);
        }
    }
    // `not` has no structural use in what serde produces; drop it rather than rewrite it.
    obj.remove("not");
}

/// `type: [T, "null"]` becomes `type: T, nullable: true`; `[integer, string]` becomes
/// int-or-string; other unions of types have no structural form.
fn normalize_type(obj: &mut Map<String, Value>) {
    let Some(Value::Array(types)) = obj.get("type") else {
        return;
    };
    let mut types: Vec<String> = types
        .iter()
        .filter_map(|t| t.as_str().map(String::from))
        .collect();
    if types.iter().any(|t| t == "null") {
        types.retain(|t| t != "null");
        obj.insert("nullable".into(), true.into());
    }
    types.sort();
    types.dedup();
    match types.as_slice() {
        [] => {
            obj.insert("type".into(), "null".into());
        }
        [one] => {
            obj.insert("type".into(), one.as_str().into());
        }
        [a, b] if a == "integer" && b == "string" => {
            obj.remove("type");
            obj.insert("x-kubernetes-int-or-string".into(), true.into());
        }
        _ => {
            obj.remove("type");
            obj.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
        }
    }
}

/// Whether a branch of `anyOf`/`oneOf` is the `null` that `Option` adds.
fn is_null(branch: &Value) -> bool {
    branch.get("type") == Some(&json!("null")) || branch.get("enum") == Some(&json!([null]))
}

/// What a structural schema's values are, for telling whether branches can be merged.
fn kind_of(schema: &Value) -> &str {
    if schema.get("x-kubernetes-int-or-string").is_some() {
        "int-or-string"
    } else if let Some(t) = schema.get("type").and_then(Value::as_str) {
        t
    } else {
        "any"
    }
}

/// Merge the already-structural branches of an `anyOf`/`oneOf` into one structural schema.
fn merge_branches(branches: Vec<Value>, junctor: &str) -> Value {
    let nullable = branches.iter().any(is_null);
    let mut branches: Vec<Value> = branches.into_iter().filter(|b| !is_null(b)).collect();
    let mut merged = match branches.len() {
        0 => json!({"type": "null"}),
        1 => branches.swap_remove(0),
        _ => merge_alternatives(branches, junctor),
    };
    if nullable && let Some(obj) = merged.as_object_mut() {
        obj.insert("nullable".into(), true.into());
    }
    merged
}

fn merge_alternatives(branches: Vec<Value>, junctor: &str) -> Value {
    let mut kinds: Vec<&str> = branches.iter().map(kind_of).collect();
    kinds.sort_unstable();
    kinds.dedup();
    match kinds.as_slice() {
        ["object"] => merge_objects(branches, junctor),
        [scalar @ ("string" | "integer" | "number" | "boolean")] => {
            // Unit variants (with or without doc comments) and untagged scalars: one type, and
            // the union of the values if every branch lists them.
            let mut out = json!({"type": scalar});
            let enums: Option<Vec<Value>> = branches
                .iter()
                .map(|b| b.get("enum").and_then(Value::as_array).cloned())
                .collect::<Option<Vec<_>>>()
                .map(|lists| lists.into_iter().flatten().collect());
            if let Some(mut values) = enums {
                dedup_values(&mut values);
                out["enum"] = Value::Array(values);
            }
            out
        }
        ["int-or-string"] | ["int-or-string", "integer" | "string"] | ["integer", "string"] => {
            json!({"x-kubernetes-int-or-string": true})
        }
        _ if branches.iter().all(|b| b == &branches[0]) => {
            branches.into_iter().next().unwrap_or_else(any_value)
        }
        _ => any_value(),
    }
}

fn dedup_values(values: &mut Vec<Value>) {
    let mut seen = Vec::with_capacity(values.len());
    values.retain(|v| {
        if seen.contains(v) {
            false
        } else {
            seen.push(v.clone());
            true
        }
    });
}

/// Object variants: the union of their properties, and a junctor of value validations that
/// tells them apart (their `required` sets, and the values of properties whose allowed values
/// differ between variants, like an internal tag).
fn merge_objects(branches: Vec<Value>, junctor: &str) -> Value {
    if branches
        .iter()
        .any(|b| b.get("additionalProperties").is_some_and(Value::is_object))
    {
        // A map among the variants: no union of properties describes it.
        return json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    }
    let mut properties = Map::new();
    // For each property, the allowed values each branch lists (None when a branch lists none).
    let mut per_branch_enums: Vec<Map<String, Value>> = Vec::new();
    for branch in &branches {
        let mut enums = Map::new();
        let description = branch.get("description").cloned();
        let Some(props) = branch.get("properties").and_then(Value::as_object) else {
            per_branch_enums.push(enums);
            continue;
        };
        for (name, schema) in props {
            let mut schema = schema.clone();
            // An externally tagged variant is an object with one property, the variant name;
            // its doc comment belongs on that property.
            if props.len() == 1
                && let (Some(d), Some(obj)) = (&description, schema.as_object_mut())
            {
                obj.entry("description").or_insert_with(|| d.clone());
            }
            if let Some(values) = schema.get("enum") {
                enums.insert(name.clone(), values.clone());
            }
            match properties.get_mut(name) {
                None => {
                    properties.insert(name.clone(), schema);
                }
                Some(existing) => *existing = unify(existing.take(), schema),
            }
        }
        per_branch_enums.push(enums);
    }
    let mut alternatives = Vec::with_capacity(branches.len());
    for (branch, enums) in branches.iter().zip(&per_branch_enums) {
        let mut alternative = Map::new();
        if let Some(required) = branch
            .get("required")
            .filter(|r| r.as_array().is_some_and(|r| !r.is_empty()))
        {
            alternative.insert("required".into(), required.clone());
        }
        let mut discriminators = Map::new();
        for (name, values) in enums {
            let union = properties.get(name).and_then(|p| p.get("enum"));
            if union != Some(values) {
                discriminators.insert(name.clone(), json!({"enum": values}));
            }
        }
        if !discriminators.is_empty() {
            alternative.insert("properties".into(), Value::Object(discriminators));
        }
        alternatives.push(Value::Object(alternative));
    }
    let mut out = json!({"type": "object"});
    if !properties.is_empty() {
        out["properties"] = Value::Object(properties);
    }
    let all_same = alternatives.iter().all(|a| a == &alternatives[0]);
    // `oneOf` with a branch that matches everything would reject every value; such variants
    // cannot be told apart structurally, so the schema only lists their properties.
    let any_empty = alternatives
        .iter()
        .any(|a| a.as_object().is_some_and(Map::is_empty));
    if !(all_same || junctor == "oneOf" && any_empty) {
        let alternatives = alternatives
            .into_iter()
            .filter(|a| a.as_object().is_some_and(|a| !a.is_empty()))
            .collect();
        out[junctor] = Value::Array(alternatives);
    }
    out
}

/// One schema for a property two variants both have.
fn unify(a: Value, b: Value) -> Value {
    if a == b {
        return a;
    }
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("description");
            o.remove("enum");
        }
        v
    };
    if strip(&a) == strip(&b) {
        // Same shape, different allowed values (an internal or adjacent tag): allow all of them.
        let mut out = a.clone();
        match (a.get("enum"), b.get("enum")) {
            (Some(Value::Array(x)), Some(Value::Array(y))) => {
                let mut values: Vec<Value> = x.iter().chain(y).cloned().collect();
                dedup_values(&mut values);
                out["enum"] = Value::Array(values);
            }
            _ => {
                if let Some(o) = out.as_object_mut() {
                    o.remove("enum");
                }
            }
        }
        return out;
    }
    let description = a.get("description").cloned();
    let mut out = match (kind_of(&a), kind_of(&b)) {
        ("object", "object") => merge_objects(vec![a, b], "anyOf"),
        ("integer", "string") | ("string", "integer") => {
            json!({"x-kubernetes-int-or-string": true})
        }
        _ => any_value(),
    };
    if let (Some(d), Some(o)) = (description, out.as_object_mut()) {
        o.insert("description".into(), d);
    }
    out
}

/// Merge the keys of a subschema (one `allOf` part, or the result of merging `anyOf`/`oneOf`)
/// into the schema that held it; the holder's own keys (its description, default) win.
fn absorb(obj: &mut Map<String, Value>, part: Value) {
    let Value::Object(part) = part else {
        return;
    };
    for (key, value) in part {
        match (key.as_str(), obj.get_mut(&key)) {
            ("properties", Some(Value::Object(props))) => {
                if let Value::Object(more) = value {
                    for (name, schema) in more {
                        props.entry(name).or_insert(schema);
                    }
                }
            }
            ("required", Some(Value::Array(required))) => {
                if let Value::Array(more) = value {
                    required.extend(more);
                    dedup_values(required);
                }
            }
            ("type", Some(Value::String(t))) if t == "null" => {
                obj.insert(key, value);
            }
            (_, Some(_)) => {}
            (_, None) => {
                obj.insert(key, value);
            }
        }
    }
}

/// `additionalProperties` is for maps only, and `true` is spelled
/// `x-kubernetes-preserve-unknown-fields`.
fn fix_additional_properties(obj: &mut Map<String, Value>) {
    let Some(ap) = obj.remove("additionalProperties") else {
        return;
    };
    let has_properties = obj
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty());
    match ap {
        // `deny_unknown_fields`: the apiserver prunes unknown fields instead.
        Value::Bool(false) => {}
        Value::Bool(true) => {
            obj.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
        }
        // A map of `Value`s.
        schema if schema == any_value() => {
            obj.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
        }
        // A struct with a flattened map: its known fields, and anything else kept.
        _ if has_properties => {
            obj.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
        }
        schema => {
            obj.insert("additionalProperties".into(), schema);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::*;
    use crate::object::crd::check_structural;

    fn of<T: JsonSchema>() -> Value {
        let schema = schema_for::<T>();
        let violations = check_structural(&schema);
        assert!(violations.is_empty(), "{violations:#?}\n{schema:#}");
        schema
    }

    #[allow(dead_code)]
    #[derive(JsonSchema, Serialize, Deserialize)]
    struct Inner {
        /// The name.
        name: String,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Shapes {
        /// Doc comments become descriptions.
        replica_count: u32,
        maybe: Option<Inner>,
        #[serde(default)]
        defaulted: Vec<String>,
        labels: BTreeMap<String, String>,
        anything: serde_json::Value,
        free_map: BTreeMap<String, serde_json::Value>,
        port: IntOrString,
        set: std::collections::BTreeSet<String>,
        pair: (String, u8),
        #[serde(rename = "renamed")]
        original: bool,
    }

    #[test]
    fn struct_fields_map_to_structural_properties() {
        let s = of::<Shapes>();
        assert_eq!(s["type"], "object");
        assert!(s.get("title").is_none() && s.get("$schema").is_none());
        assert!(
            s.get("additionalProperties").is_none(),
            "deny_unknown_fields is dropped"
        );
        let p = &s["properties"];
        assert_eq!(
            p["replicaCount"]["description"],
            "Doc comments become descriptions."
        );
        assert_eq!(p["replicaCount"]["type"], "integer");
        assert_eq!(p["maybe"]["type"], "object");
        assert_eq!(p["maybe"]["nullable"], true);
        assert_eq!(
            p["labels"]["additionalProperties"],
            json!({"type": "string"})
        );
        assert_eq!(
            p["anything"],
            json!({"x-kubernetes-preserve-unknown-fields": true})
        );
        assert_eq!(
            p["freeMap"],
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
        );
        assert_eq!(p["port"]["x-kubernetes-int-or-string"], true);
        assert_eq!(p["set"]["x-kubernetes-list-type"], "set");
        assert!(p["set"].get("uniqueItems").is_none());
        assert_eq!(
            p["pair"]["items"],
            json!({"x-kubernetes-preserve-unknown-fields": true})
        );
        assert_eq!(p["renamed"]["type"], "boolean");
        let mut required: Vec<&str> = s["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        required.sort_unstable();
        assert!(!required.contains(&"maybe") && !required.contains(&"defaulted"));
        assert!(required.contains(&"replicaCount") && required.contains(&"renamed"));
    }

    #[allow(dead_code)]
    #[derive(JsonSchema, Serialize, Deserialize)]
    enum Unit {
        /// The first.
        A,
        B,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema, Serialize, Deserialize)]
    #[serde(tag = "type")]
    enum Internal {
        Cat { lives: u8 },
        Dog { good: bool },
    }

    #[allow(dead_code)]
    #[derive(JsonSchema, Serialize, Deserialize)]
    enum External {
        Cat { lives: u8 },
        Dog(Inner),
    }

    #[allow(dead_code)]
    #[derive(JsonSchema, Serialize, Deserialize)]
    #[serde(untagged)]
    enum Untagged {
        Number(i64),
        Text(String),
    }

    #[allow(dead_code)]
    #[derive(JsonSchema, Serialize, Deserialize)]
    struct Enums {
        unit: Unit,
        maybe_unit: Option<Unit>,
        internal: Internal,
        external: External,
        untagged: Untagged,
    }

    #[test]
    fn enums_map_to_enum_lists_or_objects_told_apart_by_one_of() {
        let s = of::<Enums>();
        let p = &s["properties"];
        // schemars lists documented unit variants apart from the others, so order is its own.
        let sorted = |v: &Value| {
            let mut values: Vec<String> = v["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            values.sort();
            values
        };
        assert_eq!(p["unit"]["type"], "string");
        assert_eq!(sorted(&p["unit"]), ["A", "B"]);
        let maybe = p["maybe_unit"]["enum"].as_array().unwrap();
        assert_eq!(maybe.len(), 3);
        assert!(
            maybe.contains(&Value::Null),
            "None serializes as null, which must be allowed"
        );
        assert_eq!(p["maybe_unit"]["nullable"], true);
        assert_eq!(
            p["internal"]["properties"]["type"]["enum"],
            json!(["Cat", "Dog"])
        );
        assert_eq!(
            p["internal"]["oneOf"][0]["properties"]["type"],
            json!({"enum": ["Cat"]})
        );
        assert_eq!(p["external"]["type"], "object");
        assert_eq!(
            p["external"]["oneOf"],
            json!([{"required": ["Cat"]}, {"required": ["Dog"]}])
        );
        assert_eq!(p["untagged"], json!({"x-kubernetes-int-or-string": true}));
    }

    #[allow(dead_code)]
    #[derive(JsonSchema, Serialize, Deserialize)]
    struct Pairs {
        pairs: Vec<(u8, u8)>,
    }

    #[test]
    fn a_tuple_of_like_types_keeps_its_item_schema() {
        let s = of::<Pairs>();
        assert_eq!(
            s["properties"]["pairs"]["items"]["items"]["type"],
            "integer"
        );
    }

    #[allow(dead_code)]
    #[derive(JsonSchema, Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "camelCase")]
    enum InternalNewtype {
        Wrapped(Inner),
        Other { count: u8 },
    }

    #[allow(dead_code)]
    #[derive(JsonSchema, Serialize, Deserialize)]
    struct Tree {
        name: String,
        children: Vec<Tree>,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema, Serialize, Deserialize)]
    struct Unusual {
        internal_newtype: InternalNewtype,
        maybe_external: Option<External>,
        tree: Tree,
        unit: (),
        letter: char,
        boxed: Box<Inner>,
        nested_options: Option<Option<u8>>,
        list_of_enums: Vec<External>,
        map_of_enums: BTreeMap<String, Internal>,
    }

    #[test]
    fn less_common_shapes_are_structural_too() {
        let s = of::<Unusual>();
        let p = &s["properties"];
        assert_eq!(
            p["internal_newtype"]["properties"]["kind"]["enum"],
            json!(["wrapped", "other"])
        );
        assert_eq!(
            p["internal_newtype"]["properties"]["name"]["type"],
            "string"
        );
        assert_eq!(p["maybe_external"]["nullable"], true);
        assert_eq!(p["maybe_external"]["type"], "object");
        // A recursive type recurses once, then accepts anything where it would recurse again.
        assert_eq!(
            p["tree"]["properties"]["children"]["items"],
            json!({"x-kubernetes-preserve-unknown-fields": true})
        );
        assert_eq!(p["unit"]["nullable"], true);
        assert_eq!(p["list_of_enums"]["items"]["type"], "object");
        assert_eq!(p["map_of_enums"]["additionalProperties"]["type"], "object");
    }
}
