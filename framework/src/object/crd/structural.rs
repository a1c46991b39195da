//! Checking that a schema is structural, with the apiserver's rules and wording.

use std::fmt;

use serde_json::{Map, Value};

/// One way a schema breaks the apiserver's structural-schema rules, worded as the apiserver
/// words it (`<path>: <reason>: <detail>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where, as the apiserver prints it: `properties[spec].properties[size].type`.
    pub path: String,
    /// What is wrong, such as `Required value: must not be empty for specified object fields`.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The ways `schema` (a CRD version's `openAPIV3Schema`, as JSON) is not structural or would be
/// refused by the apiserver's CRD validation; empty when it would be accepted.
///
/// Checks what the apiserver checks on every version's schema: a `type` on every node except
/// under `x-kubernetes-int-or-string` / `x-kubernetes-preserve-unknown-fields`, `type: object`
/// at the root, `items` on arrays, no `$ref`, no `additionalProperties` together with
/// `properties` or at the root, no `uniqueItems: true`, root `metadata` restricted to `name` and
/// `generateName`, and `allOf`/`anyOf`/`oneOf`/`not` holding only value validations over fields
/// that are also specified outside them. CEL rules are not compiled.
pub fn check_structural(schema: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    structure(schema, Level::Root, "", &mut out);
    out.sort_by_key(ToString::to_string);
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn push(out: &mut Vec<Violation>, path: String, message: impl Into<String>) {
    out.push(Violation {
        path,
        message: message.into(),
    });
}

fn flag(obj: &Map<String, Value>, key: &str) -> bool {
    obj.get(key) == Some(&Value::Bool(true))
}

fn structure(schema: &Value, level: Level, path: &str, out: &mut Vec<Violation>) {
    let Some(obj) = schema.as_object() else {
        push(out, path.into(), "Invalid value: must be a schema object");
        return;
    };
    let ty = obj.get("type").and_then(Value::as_str).unwrap_or_default();
    if obj.get("type").is_some_and(|t| !t.is_string()) {
        push(
            out,
            child(path, "type"),
            "Invalid value: must be a single type name",
        );
    }
    if obj.contains_key("$ref") {
        push(out, child(path, "$ref"), "Forbidden: $ref is not supported");
    }
    if flag(obj, "uniqueItems") {
        push(
            out,
            child(path, "uniqueItems"),
            "Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        );
    }
    if obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        push(
            out,
            child(path, "x-kubernetes-preserve-unknown-fields"),
            "Invalid value: false: must be true or undefined",
        );
    }
    let int_or_string = flag(obj, "x-kubernetes-int-or-string");
    let preserve = flag(obj, "x-kubernetes-preserve-unknown-fields");
    if int_or_string && preserve {
        push(
            out,
            child(path, "x-kubernetes-preserve-unknown-fields"),
            "Invalid value: true: must be false if x-kubernetes-int-or-string is true",
        );
    }
    if ty.is_empty() && !int_or_string && !preserve {
        let detail = match level {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        push(
            out,
            child(path, "type"),
            format!("Required value: {detail}"),
        );
    }
    if level == Level::Root && !ty.is_empty() && ty != "object" {
        push(
            out,
            child(path, "type"),
            format!("Invalid value: {ty:?}: must be object at the root"),
        );
    }
    let properties = obj.get("properties").and_then(Value::as_object);
    if let Some(ap) = obj.get("additionalProperties") {
        if properties.is_some_and(|p| !p.is_empty()) && ap != &Value::Bool(true) {
            push(
                out,
                child(path, "additionalProperties"),
                "Forbidden: additionalProperties and properties are mutual exclusive",
            );
        }
        if level == Level::Root {
            push(
                out,
                child(path, "additionalProperties"),
                "Forbidden: must not be used at the root",
            );
        }
        if ap.is_object() {
            structure(ap, Level::Field, &child(path, "additionalProperties"), out);
        }
    }
    if ty == "array" {
        match obj.get("items") {
            None => push(
                out,
                child(path, "items"),
                "Required value: must be specified",
            ),
            Some(items) if items.is_array() => push(
                out,
                child(path, "items"),
                "Forbidden: items must be a schema object and not an array",
            ),
            Some(_) => {}
        }
    }
    if let Some(items) = obj.get("items").filter(|i| i.is_object()) {
        structure(items, Level::Item, &child(path, "items"), out);
    }
    if let Some(props) = properties {
        for (name, prop) in props {
            structure(
                prop,
                Level::Field,
                &format!("{}[{name}]", child(path, "properties")),
                out,
            );
        }
        if level == Level::Root {
            root_type_meta(props, path, out);
        }
    }
    let int_or_string_any_of =
        obj.get("anyOf") == Some(&serde_json::json!([{"type": "integer"}, {"type": "string"}]));
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if junctor == "anyOf" && int_or_string_any_of {
            continue;
        }
        if let Some(Value::Array(branches)) = obj.get(junctor) {
            for (i, branch) in branches.iter().enumerate() {
                let at = format!("{}[{i}]", child(path, junctor));
                nested(branch, &at, out);
                completeness(branch, schema, path, &at, out);
            }
        }
    }
    if let Some(not) = obj.get("not") {
        let at = child(path, "not");
        nested(not, &at, out);
        completeness(not, schema, path, &at, out);
    }
}

/// `apiVersion`, `kind` and `metadata` at the root.
fn root_type_meta(props: &Map<String, Value>, path: &str, out: &mut Vec<Violation>) {
    let at = |name: &str| format!("{}[{name}]", child(path, "properties"));
    for name in ["apiVersion", "kind"] {
        if let Some(ty) = props
            .get(name)
            .map(|p| p.get("type").and_then(Value::as_str).unwrap_or_default())
            && ty != "string"
        {
            push(
                out,
                child(&at(name), "type"),
                format!("Invalid value: {ty:?}: must be string"),
            );
        }
    }
    if let Some(metadata) = props.get("metadata").and_then(Value::as_object) {
        if metadata.get("type").and_then(Value::as_str) != Some("object") {
            push(
                out,
                child(&at("metadata"), "type"),
                "Invalid value: must be object",
            );
        }
        let allowed = |k: &str| matches!(k, "type" | "properties");
        let meta_props = metadata.get("properties").and_then(Value::as_object);
        let only_names =
            meta_props.is_none_or(|p| p.keys().all(|k| k == "name" || k == "generateName"));
        if !metadata.keys().all(|k| allowed(k)) || !only_names {
            push(
                out,
                at("metadata"),
                "Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
            );
        }
    }
}

/// A schema under a logical junctor: value validations only.
fn nested(schema: &Value, path: &str, out: &mut Vec<Violation>) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    let forbidden: [(&str, &str); 11] = [
        ("type", "must be empty to be structural"),
        ("additionalProperties", "must be undefined to be structural"),
        ("default", "must be undefined to be structural"),
        ("title", "must be empty to be structural"),
        ("description", "must be empty to be structural"),
        ("nullable", "must be false to be structural"),
        (
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        ),
        (
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        ),
    ];
    for (key, why) in forbidden {
        let set = match obj.get(key) {
            None | Some(Value::Bool(false)) | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(_) => true,
        };
        if set {
            push(out, child(path, key), format!("Forbidden: {why}"));
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        if props.contains_key("metadata") {
            push(
                out,
                format!("{}[metadata]", child(path, "properties")),
                "Forbidden: must not be specified in a nested context",
            );
        }
        for (name, prop) in props {
            nested(prop, &format!("{}[{name}]", child(path, "properties")), out);
        }
    }
    if let Some(items) = obj.get("items") {
        nested(items, &child(path, "items"), out);
    }
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = obj.get(junctor) {
            for (i, branch) in branches.iter().enumerate() {
                nested(branch, &format!("{}[{i}]", child(path, junctor)), out);
            }
        }
    }
    if let Some(not) = obj.get("not") {
        nested(not, &child(path, "not"), out);
    }
}

/// Every property and items a junctor branch talks about is specified outside the junctor.
/// `s_path` is where the structural schema is, `v_path` where the branch is.
fn completeness(
    branch: &Value,
    outer: &Value,
    s_path: &str,
    v_path: &str,
    out: &mut Vec<Violation>,
) {
    if let Some(props) = branch.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let s_at = format!("{}[{name}]", child(s_path, "properties"));
            let v_at = format!("{}[{name}]", child(v_path, "properties"));
            match outer.get("properties").and_then(|p| p.get(name)) {
                Some(spec) => completeness(prop, spec, &s_at, &v_at, out),
                None => push(
                    out,
                    s_at,
                    format!("Required value: because it is defined in {v_at}"),
                ),
            }
        }
    }
    if let Some(items) = branch.get("items") {
        let s_at = child(s_path, "items");
        let v_at = child(v_path, "items");
        match outer.get("items") {
            Some(spec) => completeness(items, spec, &s_at, &v_at, out),
            None => push(
                out,
                s_at,
                format!("Required value: because it is defined in {v_at}"),
            ),
        }
    }
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = branch.get(junctor) {
            for (i, b) in branches.iter().enumerate() {
                let v_at = format!("{}[{i}]", child(v_path, junctor));
                completeness(b, outer, s_path, &v_at, out);
            }
        }
    }
    if let Some(not) = branch.get("not") {
        completeness(not, outer, s_path, &child(v_path, "not"), out);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn messages(schema: Value) -> Vec<String> {
        check_structural(&schema)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_structural_schema_has_no_violations() {
        let schema = json!({
            "type": "object",
            "properties": {
                "metadata": {"type": "object"},
                "spec": {
                    "type": "object",
                    "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                    "oneOf": [{"required": ["a"]}, {"required": ["b"]}]
                },
                "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "any": {"x-kubernetes-preserve-unknown-fields": true}
            }
        });
        assert_eq!(messages(schema), Vec::<String>::new());
    }

    #[test]
    fn missing_types_are_reported_per_level_as_the_apiserver_words_them() {
        let schema = json!({
            "properties": {
                "a": {"type": "array"},
                "b": {"type": "array", "items": {}},
                "c": {}
            }
        });
        assert_eq!(
            messages(schema),
            [
                "properties[a].items: Required value: must be specified",
                "properties[b].items.type: Required value: must not be empty for specified array items",
                "properties[c].type: Required value: must not be empty for specified object fields",
                "type: Required value: must not be empty at the root",
            ]
        );
    }

    #[test]
    fn junctors_may_only_hold_value_validations_over_specified_fields() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"type": "string"}},
            "oneOf": [
                {"type": "object", "description": "x", "properties": {"a": {"enum": ["x"]}}},
                {"properties": {"z": {"type": "string"}}}
            ]
        });
        assert_eq!(
            messages(schema),
            [
                "oneOf[0].description: Forbidden: must be empty to be structural",
                "oneOf[0].type: Forbidden: must be empty to be structural",
                "oneOf[1].properties[z].type: Forbidden: must be empty to be structural",
                "properties[z]: Required value: because it is defined in oneOf[1].properties[z]",
            ]
        );
    }

    #[test]
    fn maps_with_properties_refs_unique_items_and_rich_metadata_are_refused() {
        let schema = json!({
            "type": "object",
            "properties": {
                "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}},
                "s": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false},
                "r": {"$ref": "#/$defs/R"},
                "u": {"type": "array", "items": {"type": "string"}, "uniqueItems": true}
            }
        });
        assert_eq!(
            messages(schema),
            [
                "properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
                "properties[r].$ref: Forbidden: $ref is not supported",
                "properties[r].type: Required value: must not be empty for specified object fields",
                "properties[s].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
                "properties[u].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            ]
        );
    }
}
