//! Custom resources against their CRD's structural schema, as the apiextensions-apiserver
//! treats every write: unknown fields are pruned (and reported for `fieldValidation`),
//! `default`s are applied, the value is validated (types, `required`, `enum`, bounds,
//! `pattern`, the formats Kubernetes checks, `nullable`, `x-kubernetes-int-or-string`,
//! `allOf`/`anyOf`/`oneOf`/`not`, list-type invariants) and the CEL `x-kubernetes-validations`
//! rules are evaluated, transition rules against the old object.
//!
//! Messages are the apiserver's: kube-openapi's `spec.size in body should be less than or
//! equal to 100` inside the `field.Error` forms of [`Cause`]. CEL lives in `cel.rs`; checking a
//! CRD's own schema when it is registered lives in `crd.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Map, Value};

use super::cel::{self, Outcome, Rule};
use super::schema::{ListType, Node};
use super::validation::{Cause, FIELD_VALUE_INVALID, go_json, go_quote};

/// A CRD version's schema, with its CEL rules compiled on first use.
#[derive(Debug)]
pub(crate) struct CrSchema {
    pub(crate) schema: Value,
    rules: Mutex<HashMap<String, Arc<Rule>>>,
}

impl CrSchema {
    pub(crate) fn new(schema: Value) -> Self {
        Self {
            schema,
            rules: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn root(&self) -> Node<'_> {
        Node::root(&self.schema)
    }

    fn rule(&self, source: &str) -> Result<Arc<Rule>, String> {
        if let Some(r) = self.rules.lock().get(source) {
            return Ok(r.clone());
        }
        let r = Arc::new(cel::compile(source)?);
        self.rules.lock().insert(source.to_string(), r.clone());
        Ok(r)
    }
}

/// Removes what the schema does not declare; returns the dotted paths removed, for
/// `fieldValidation` (`Warn` reports them, `Strict` refuses the write).
pub(crate) fn prune(value: &mut Value, node: Node<'_>) -> Vec<String> {
    let mut removed = Vec::new();
    prune_at(value, node, "", false, &mut removed);
    removed
}

/// Like [`prune`], for built-in schemas, where an object schema without properties (Go's
/// `runtime.RawExtension`, `apiextensions.JSON`) holds anything.
pub(crate) fn prune_known(value: &mut Value, node: Node<'_>) -> Vec<String> {
    let mut removed = Vec::new();
    prune_at(value, node, "", true, &mut removed);
    removed
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn prune_at(
    value: &mut Value,
    node: Node<'_>,
    path: &str,
    lenient: bool,
    removed: &mut Vec<String>,
) {
    match value {
        Value::Object(map) => {
            if node.properties().is_none()
                && (node.preserves_unknown()
                    || (lenient && node.get("additionalProperties").is_none()))
            {
                return;
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let child_path = join(path, &k);
                match node.property(&k) {
                    Some(child) => {
                        // An object's metadata is ObjectMeta, which the apiserver decodes as
                        // its Go type, not through the CRD's schema: members typed as raw JSON
                        // there (a managed field's `fieldsV1`) hold anything.
                        let lenient = lenient || (k == "metadata" && node.declares("metadata"));
                        if let Some(v) = map.get_mut(&k) {
                            prune_at(v, child, &child_path, lenient, removed);
                        }
                    }
                    None if node.preserves_unknown() => {}
                    None => {
                        map.remove(&k);
                        removed.push(child_path);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = node.items() {
                for (i, v) in items.iter_mut().enumerate() {
                    prune_at(v, item, &format!("{path}[{i}]"), lenient, removed);
                }
            }
        }
        _ => {}
    }
}

/// Applies the schema's `default`s to members that are absent (or `null` where the schema is
/// not nullable), recursively, as the apiserver does on decoding and after every mutation.
pub(crate) fn default(value: &mut Value, node: Node<'_>) {
    match value {
        Value::Object(map) => {
            if let Some(props) = node.properties() {
                for (k, prop) in props {
                    let p = Node::new(prop);
                    let absent = match map.get(k) {
                        None => true,
                        Some(Value::Null) => !p.nullable(),
                        Some(_) => false,
                    };
                    if absent && let Some(d) = p.get("default") {
                        map.insert(k.clone(), d.clone());
                    }
                }
            }
            for (k, v) in map.iter_mut() {
                if let Some(child) = node.property(k)
                    && !(k == "metadata" && node.declares("metadata"))
                {
                    default(v, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = node.items() {
                items.iter_mut().for_each(|v| default(v, item));
            }
        }
        _ => {}
    }
}

/// Drops `null` members the schema does not allow to be null, as the apiserver's pruning does
/// before defaulting (so the default applies instead).
pub(crate) fn drop_nulls(value: &mut Value, node: Node<'_>) {
    match value {
        Value::Object(map) => {
            if node.properties().is_none() && node.preserves_unknown() {
                return;
            }
            map.retain(|k, v| {
                !(v.is_null()
                    && node
                        .property(k)
                        .is_some_and(|p| !p.nullable() && p.get("default").is_some()))
            });
            for (k, v) in map.iter_mut() {
                if let Some(child) = node.property(k) {
                    drop_nulls(v, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = node.items() {
                items.iter_mut().for_each(|v| drop_nulls(v, item));
            }
        }
        _ => {}
    }
}

/// How JSON names a value's type, as kube-openapi's type validator reports it.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as `field.Invalid` prints it: strings quoted, numbers and bools bare.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Number(_) | Value::Bool(_) => v.to_string(),
        Value::Null => "\"null\"".into(),
        other => go_json(other),
    }
}

/// A Go `%v` of a float64 bound: integral values print without a fraction.
fn bound(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{}", f as i64),
        Some(f) => format!("{f}"),
        None => v.to_string(),
    }
}

fn at(path: &str) -> &str {
    if path.is_empty() { "<nil>" } else { path }
}

/// Validates `value` against the schema; one cause per violation. `old` is the stored object
/// on updates (for transition rules).
pub(crate) fn validate(schema: &CrSchema, value: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let root = schema.root();
    check(root, value, "", true, &mut causes);
    // CEL rules are only evaluated on an object that passed the schema's blocking checks.
    let blocking = causes.iter().any(|c| {
        matches!(
            c.reason,
            "FieldValueNotSupported"
                | "FieldValueRequired"
                | "FieldValueTooLong"
                | "FieldValueTooMany"
                | "FieldValueTypeInvalid"
        )
    });
    if blocking {
        if has_rules(&schema.schema) {
            causes.push(Cause::invalid(
                "<nil>",
                "\"null\"",
                "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
            ));
        }
        return causes;
    }
    rules(schema, root, value, old, "", &mut causes);
    causes
}

fn has_rules(schema: &Value) -> bool {
    match schema {
        Value::Object(m) => m.contains_key("x-kubernetes-validations") || m.values().any(has_rules),
        Value::Array(a) => a.iter().any(has_rules),
        _ => false,
    }
}

/// Validation ratcheting (`CRDValidationRatcheting`, on by default): an update may keep a
/// value that no longer validates as long as it does not change it.
pub(crate) fn ratchet(causes: Vec<Cause>, old: &Value, new: &Value) -> Vec<Cause> {
    causes
        .into_iter()
        .filter(|c| {
            if c.field == "<nil>" || c.field.is_empty() {
                let strip = |v: &Value| {
                    let mut v = v.clone();
                    if let Some(o) = v.as_object_mut() {
                        o.remove("metadata");
                    }
                    v
                };
                return strip(old) != strip(new);
            }
            value_at(old, &c.field) != value_at(new, &c.field)
        })
        .collect()
}

/// The value at a field path as causes print it (`spec.items[0].name`).
fn value_at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in path.split('.') {
        let (name, indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        for idx in indices.split('[').filter(|s| !s.is_empty()) {
            let i: usize = idx.trim_end_matches(']').parse().ok()?;
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

/// kube-openapi's checks of one node (and its children).
fn check(node: Node<'_>, value: &Value, path: &str, root: bool, out: &mut Vec<Cause>) {
    let shown_path = if path.is_empty() { "<nil>" } else { path };
    if value.is_null() {
        if !node.nullable() && node.ty().is_some() {
            out.push(type_invalid(path, "null", node.ty().unwrap_or_default()));
        }
        return;
    }
    let actual = json_type(value);
    if node.int_or_string() {
        if !matches!(actual, "integer" | "string") {
            out.push(type_invalid(path, actual, "integer,string"));
            return;
        }
    } else if let Some(ty) = node.ty() {
        let ok = ty == actual || (ty == "number" && actual == "integer");
        if !ok {
            out.push(type_invalid(path, actual, ty));
            return;
        }
    }
    let in_body = format!("{shown_path} in body");
    if let Some(values) = node.get("enum").and_then(Value::as_array)
        && !values.contains(value)
    {
        let supported: Vec<String> = values
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
            .collect();
        let refs: Vec<&str> = supported.iter().map(String::as_str).collect();
        out.push(Cause::not_supported(at(path), &shown(value), &refs));
    }
    match value {
        Value::String(s) => check_string(node, s, path, &in_body, out),
        Value::Number(_) => check_number(node, value, path, &in_body, out),
        Value::Array(items) => {
            let item = node.items();
            for (i, v) in items.iter().enumerate() {
                if let Some(item) = item {
                    check(item, v, &format!("{path}[{i}]"), false, out);
                }
            }
            if let Some(min) = node.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                out.push(Cause::invalid(
                    at(path),
                    &items.len().to_string(),
                    &format!("{in_body} should have at least {min} items"),
                ));
            }
            if let Some(max) = node.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                out.push(Cause::new(
                    "FieldValueTooMany",
                    at(path),
                    format!("Too many: {}: must have at most {max} items", items.len()),
                ));
            }
            list_invariants(node, items, path, out);
        }
        Value::Object(map) => {
            for r in node
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if map.get(r).is_none() {
                    out.push(Cause::required(&join(path, r), ""));
                }
            }
            for (k, v) in map {
                if root && k == "metadata" {
                    continue;
                }
                if let Some(child) = node.property(k) {
                    check(child, v, &join(path, k), false, out);
                }
            }
            if let Some(min) = node.get("minProperties").and_then(Value::as_u64)
                && (map.len() as u64) < min
            {
                out.push(Cause::invalid(
                    at(path),
                    &map.len().to_string(),
                    &format!("{in_body} should have at least {min} properties"),
                ));
            }
            if let Some(max) = node.get("maxProperties").and_then(Value::as_u64)
                && map.len() as u64 > max
            {
                out.push(Cause::new(
                    "FieldValueTooMany",
                    at(path),
                    format!("Too many: {}: must have at most {max} items", map.len()),
                ));
            }
        }
        _ => {}
    }
    junctions(node, value, path, &in_body, out);
}

fn type_invalid(path: &str, actual: &str, expected: &str) -> Cause {
    let shown_path = if path.is_empty() { "<nil>" } else { path };
    Cause::new(
        "FieldValueTypeInvalid",
        at(path),
        format!(
            "Invalid value: {}: {shown_path} in body must be of type {expected}: {}",
            go_quote(actual),
            go_quote(actual)
        ),
    )
}

fn check_string(node: Node<'_>, s: &str, path: &str, in_body: &str, out: &mut Vec<Cause>) {
    let chars = s.chars().count() as u64;
    if let Some(max) = node.get("maxLength").and_then(Value::as_u64)
        && chars > max
    {
        out.push(Cause::too_long(at(path), max as usize));
    }
    if let Some(min) = node.get("minLength").and_then(Value::as_u64)
        && chars < min
    {
        out.push(Cause::invalid(
            at(path),
            &go_quote(s),
            &format!("{in_body} should be at least {min} chars long"),
        ));
    }
    if let Some(p) = node.get("pattern").and_then(Value::as_str)
        && !regex_matches(p, s)
    {
        out.push(Cause::invalid(
            at(path),
            &go_quote(s),
            &format!("{in_body} should match '{p}'"),
        ));
    }
    if let Some(f) = node.get("format").and_then(Value::as_str)
        && !super::formats::valid(f, s)
    {
        out.push(Cause::new(
            "FieldValueTypeInvalid",
            at(path),
            format!(
                "Invalid value: {}: {in_body} must be of type {f}: {}",
                go_quote(s),
                go_quote(s)
            ),
        ));
    }
}

fn regex_matches(pattern: &str, s: &str) -> bool {
    // A pattern that does not compile was refused when the CRD was registered.
    regex::Regex::new(pattern).map_or(true, |r| r.is_match(s))
}

fn check_number(node: Node<'_>, v: &Value, path: &str, in_body: &str, out: &mut Vec<Cause>) {
    let n = v.as_f64().unwrap_or_default();
    let exclusive = |k: &str| node.get(k) == Some(&Value::Bool(true));
    if let Some(max) = node.get("maximum") {
        let m = max.as_f64().unwrap_or(f64::MAX);
        let (bad, word) = if exclusive("exclusiveMaximum") {
            (n >= m, "less than")
        } else {
            (n > m, "less than or equal to")
        };
        if bad {
            out.push(Cause::invalid(
                at(path),
                &shown(v),
                &format!("{in_body} should be {word} {}", bound(max)),
            ));
        }
    }
    if let Some(min) = node.get("minimum") {
        let m = min.as_f64().unwrap_or(f64::MIN);
        let (bad, word) = if exclusive("exclusiveMinimum") {
            (n <= m, "greater than")
        } else {
            (n < m, "greater than or equal to")
        };
        if bad {
            out.push(Cause::invalid(
                at(path),
                &shown(v),
                &format!("{in_body} should be {word} {}", bound(min)),
            ));
        }
    }
    if let Some(factor) = node.get("multipleOf").and_then(Value::as_f64)
        && factor > 0.0
        && (n / factor).fract() != 0.0
    {
        out.push(Cause::invalid(
            at(path),
            &shown(v),
            &format!(
                "{in_body} should be a multiple of {}",
                bound(&Value::from(factor))
            ),
        ));
    }
}

/// `allOf`, `anyOf`, `oneOf` and `not`: value validations only (structural schemas keep
/// types and properties outside them), checked as kube-openapi's schema-props validator does.
fn junctions(node: Node<'_>, value: &Value, path: &str, in_body: &str, out: &mut Vec<Cause>) {
    let passes = |s: &Value| {
        let mut errs = Vec::new();
        check(Node::new(s), value, path, false, &mut errs);
        errs
    };
    if let Some(all) = node.get("allOf").and_then(Value::as_array) {
        for s in all {
            out.extend(passes(s));
        }
    }
    if let Some(any) = node.get("anyOf").and_then(Value::as_array)
        && !any.is_empty()
        && !any.iter().any(|s| passes(s).is_empty())
    {
        out.push(Cause::invalid(
            at(path),
            &shown(value),
            &format!("{in_body} must validate at least one schema (anyOf)"),
        ));
    }
    if let Some(one) = node.get("oneOf").and_then(Value::as_array)
        && !one.is_empty()
    {
        let ok = one.iter().filter(|s| passes(s).is_empty()).count();
        if ok != 1 {
            out.push(Cause::invalid(
                at(path),
                &shown(value),
                &format!("{in_body} must validate one and only one schema (oneOf)"),
            ));
        }
    }
    if let Some(not) = node.get("not")
        && passes(not).is_empty()
    {
        out.push(Cause::invalid(
            at(path),
            &shown(value),
            &format!("{in_body} must not validate the schema (not)"),
        ));
    }
}

/// `x-kubernetes-list-type: set` items are unique; `map` items are unique by their keys.
fn list_invariants(node: Node<'_>, items: &[Value], path: &str, out: &mut Vec<Cause>) {
    match node.list_type() {
        ListType::Atomic => {}
        ListType::Set => {
            for (i, v) in items.iter().enumerate() {
                if items[..i].contains(v) {
                    out.push(Cause::duplicate(&format!("{path}[{i}]"), &shown(v)));
                }
            }
        }
        ListType::Map(keys, defaults) => {
            let key_of = |v: &Value| -> Vec<Value> {
                keys.iter()
                    .enumerate()
                    .map(|(i, k)| {
                        v.get(k)
                            .cloned()
                            .or_else(|| defaults.get(i).cloned().flatten())
                            .unwrap_or(Value::Null)
                    })
                    .collect()
            };
            for (i, v) in items.iter().enumerate() {
                let k = key_of(v);
                if items[..i].iter().any(|o| key_of(o) == k) {
                    let shown_key: Map<String, Value> = keys.iter().cloned().zip(k).collect();
                    out.push(Cause::duplicate(
                        &format!("{path}[{i}]"),
                        &go_json(&Value::Object(shown_key)),
                    ));
                }
            }
        }
    }
}

/// Evaluates the `x-kubernetes-validations` rules of `node` and below.
fn rules(
    schema: &CrSchema,
    node: Node<'_>,
    value: &Value,
    old: Option<&Value>,
    path: &str,
    out: &mut Vec<Cause>,
) {
    if value.is_null() {
        return;
    }
    if let Some(list) = node
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        // Root rules see only the name and generateName of metadata.
        let this = if path.is_empty() {
            restricted_root(value)
        } else {
            value.clone()
        };
        let old_this = old.map(|o| {
            if path.is_empty() {
                restricted_root(o)
            } else {
                o.clone()
            }
        });
        for r in list {
            evaluate_rule(schema, node, r, &this, old_this.as_ref(), path, out);
        }
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if path.is_empty() && k == "metadata" {
                    continue;
                }
                if let Some(child) = node.property(k) {
                    let old_child = old.and_then(|o| o.get(k));
                    rules(schema, child, v, old_child, &join(path, k), out);
                }
            }
        }
        Value::Array(items) => {
            let Some(item) = node.items() else { return };
            let list = node.list_type();
            for (i, v) in items.iter().enumerate() {
                // Only items of map and set lists correlate with an old item.
                let old_item = match &list {
                    ListType::Map(..) => {
                        let me = super::fieldset::item_element(&list, i, v);
                        old.and_then(Value::as_array).and_then(|o| {
                            o.iter().enumerate().find_map(|(j, ov)| {
                                (super::fieldset::item_element(&list, j, ov) == me).then_some(ov)
                            })
                        })
                    }
                    ListType::Set => old
                        .and_then(Value::as_array)
                        .and_then(|o| o.iter().find(|ov| *ov == v)),
                    ListType::Atomic => None,
                };
                rules(schema, item, v, old_item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn restricted_root(v: &Value) -> Value {
    let mut out = v.clone();
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.retain(|k, _| k == "name" || k == "generateName");
    }
    out
}

fn evaluate_rule(
    schema: &CrSchema,
    node: Node<'_>,
    r: &Value,
    this: &Value,
    old: Option<&Value>,
    path: &str,
    out: &mut Vec<Cause>,
) {
    let Some(source) = r.get("rule").and_then(Value::as_str) else {
        return;
    };
    let Ok(rule) = schema.rule(source) else {
        return;
    };
    if rule.transition && old.is_none() {
        return;
    }
    let mut field = path.to_string();
    if let Some(rel) = r.get("fieldPath").and_then(Value::as_str) {
        field.push_str(rel);
        field = field.trim_start_matches('.').to_string();
    }
    let ty = node.ty().unwrap_or("object");
    let detail = match cel::check(&rule, this, old) {
        Outcome::Pass => return,
        Outcome::Error(e) => {
            out.push(Cause::invalid(
                at(&field),
                &go_quote(ty),
                &format!("{e} evaluating rule: {source}"),
            ));
            return;
        }
        Outcome::Fail => {
            let from_expression = r
                .get("messageExpression")
                .and_then(Value::as_str)
                .and_then(|m| schema.rule(m).ok())
                .and_then(|m| cel::message(&m, this, old))
                .filter(|m| !m.trim().is_empty());
            from_expression
                .or_else(|| r.get("message").and_then(Value::as_str).map(String::from))
                .unwrap_or_else(|| format!("failed rule: {source}"))
        }
    };
    let cause = match r.get("reason").and_then(Value::as_str) {
        Some("FieldValueRequired") => Cause::required(at(&field), &detail),
        Some("FieldValueForbidden") => Cause::forbidden(at(&field), &detail),
        Some("FieldValueDuplicate") => Cause::duplicate(at(&field), &go_quote(ty)),
        _ => Cause::new(
            FIELD_VALUE_INVALID,
            at(&field),
            format!("Invalid value: {}: {detail}", go_quote(ty)),
        ),
    };
    out.push(cause);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> CrSchema {
        CrSchema::new(json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 100},
                        "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                        "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                        "port": {"x-kubernetes-int-or-string": true},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    },
                    "x-kubernetes-validations": [{"rule": "self.size != 13", "message": "unlucky"}]
                }
            }
        }))
    }

    #[test]
    fn unknown_fields_are_pruned_and_reported() {
        let s = schema();
        let mut v = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "a", "bogus": 1},
            "spec": {"size": 1, "extra": true, "free": {"anything": 1}}, "other": 1});
        let removed = prune(&mut v, s.root());
        assert_eq!(removed, ["metadata.bogus", "other", "spec.extra"]);
        assert_eq!(v["spec"]["free"], json!({"anything": 1}));
    }

    #[test]
    fn managed_fields_of_a_custom_resource_are_kept_whole() {
        let s = schema();
        let entry = json!({"manager": "kubectl", "operation": "Update", "apiVersion": "x/v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:size": {}}}});
        let mut v = json!({"apiVersion": "x/v1", "kind": "W",
            "metadata": {"name": "a", "managedFields": [entry.clone()]}, "spec": {"size": 1}});
        let removed = prune(&mut v, s.root());
        assert_eq!(removed, Vec::<String>::new());
        assert_eq!(v["metadata"]["managedFields"][0], entry);
    }

    #[test]
    fn defaults_fill_absent_members() {
        let s = schema();
        let mut v = json!({"spec": {"size": 1}});
        default(&mut v, s.root());
        assert_eq!(v["spec"]["color"], "red");
    }

    #[test]
    fn each_violation_is_one_cause_with_the_apiservers_words() {
        let s = schema();
        let v =
            json!({"spec": {"size": 200, "color": "green", "tags": ["a", "a", "b"], "port": true}});
        let causes = validate(&s, &v, None);
        let texts: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert!(texts.contains(&"spec.size: Invalid value: 200: spec.size in body should be less than or equal to 100".to_string()), "{texts:?}");
        assert!(
            texts.contains(
                &"spec.color: Unsupported value: \"green\": supported values: \"red\", \"blue\""
                    .to_string()
            ),
            "{texts:?}"
        );
        assert!(
            texts.contains(&"spec.tags: Too many: 3: must have at most 2 items".to_string()),
            "{texts:?}"
        );
        assert!(
            texts.contains(&"spec.tags[1]: Duplicate value: \"a\"".to_string()),
            "{texts:?}"
        );
        assert!(texts.contains(&"spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"".to_string()), "{texts:?}");
    }

    #[test]
    fn cel_rules_run_once_the_schema_passes() {
        let s = schema();
        let causes = validate(&s, &json!({"spec": {"size": 13}}), None);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec");
        assert_eq!(causes[0].message, "Invalid value: \"object\": unlucky");
        let missing = validate(&s, &json!({"spec": {}}), None);
        assert_eq!(missing[0].message, "Required value");
        assert_eq!(missing[1].field, "<nil>");
    }
}
