//! Strategic merge patch (`application/strategic-merge-patch+json`), for built-in kinds: a
//! JSON merge patch whose lists merge by the type's merge keys (containers by `name`, ports
//! by `containerPort`, conditions by `type`, finalizers as a set) and which understands the
//! directives `$patch` (`replace`, `delete`, `merge`), `$retainKeys`,
//! `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>`, as apimachinery's
//! `strategicpatch` applies them.
//!
//! The merge keys and strategies come from the kind's schema (`schema.rs`); custom resources
//! have none, and the server refuses strategic merge for them with a 415 before this runs.

use serde_json::{Map, Value};

use super::patch::{PatchError, decode, json_kind};
use super::schema::Node;

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM: &str = "$deleteFromPrimitiveList/";
const SET_ORDER: &str = "$setElementOrder/";

/// Applies a strategic merge patch `body` to `doc`, following `node`'s patch metadata.
///
/// # Errors
///
/// 400 when the body is not a JSON object or a directive is malformed.
pub(crate) fn apply(doc: &Value, body: &[u8], node: Option<Node<'_>>) -> Result<Value, PatchError> {
    let patch = match decode(body)? {
        Value::Object(p) => p,
        other => {
            return Err(PatchError::decoding(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(&other)
            )));
        }
    };
    let original = doc.as_object().cloned().unwrap_or_default();
    match merge_map(original, &patch, node)? {
        Some(m) => Ok(Value::Object(m)),
        None => Ok(Value::Object(Map::new())),
    }
}

fn bad(message: impl Into<String>) -> PatchError {
    PatchError::bad_request(message.into())
}

/// Merges `patch` into `original`; `None` when the patch deletes the map (`$patch: delete`).
fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    node: Option<Node<'_>>,
) -> Result<Option<Map<String, Value>>, PatchError> {
    match patch.get(PATCH) {
        None => {}
        Some(Value::String(d)) if d == "merge" => {}
        Some(Value::String(d)) if d == "replace" => {
            return Ok(Some(strip(patch, node)?));
        }
        Some(Value::String(d)) if d == "delete" => return Ok(None),
        Some(other) => return Err(bad(format!("Unknown patch type: {}", show(other)))),
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let Some(keys) = retain.as_array() else {
            return Err(bad(format!(
                "invalid patch: {RETAIN_KEYS} must be a list of strings, got {}",
                show(retain)
            )));
        };
        let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        original.retain(|k, _| keys.contains(&k.as_str()));
    }
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix(DELETE_FROM) {
            let Some(remove) = v.as_array() else {
                return Err(bad(format!(
                    "invalid patch: {k} must be a list, got {}",
                    show(v)
                )));
            };
            if let Some(Value::Array(items)) = original.get_mut(field) {
                items.retain(|i| !remove.contains(i));
            }
        }
    }
    for (k, v) in patch {
        if k.starts_with('$') {
            continue;
        }
        let child = node.and_then(|n| n.property(k));
        if v.is_null() {
            original.remove(k);
            continue;
        }
        let merged = match (original.remove(k), v) {
            (Some(Value::Object(o)), Value::Object(p)) => {
                merge_map(o, p, child)?.map(Value::Object)
            }
            (None | Some(Value::Null), Value::Object(p)) => {
                merge_map(Map::new(), p, child)?.map(Value::Object)
            }
            (Some(Value::Array(o)), Value::Array(p)) => {
                Some(Value::Array(merge_list(o, p, child)?))
            }
            (None | Some(Value::Null), Value::Array(p)) => {
                Some(Value::Array(merge_list(Vec::new(), p, child)?))
            }
            (_, other) => Some(other.clone()),
        };
        if let Some(m) = merged {
            original.insert(k.clone(), m);
        }
    }
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix(SET_ORDER) {
            let Some(order) = v.as_array() else {
                return Err(bad(format!(
                    "invalid patch: {k} must be a list, got {}",
                    show(v)
                )));
            };
            let key = node
                .and_then(|n| n.property(field))
                .and_then(|f| f.patch_merge_key().map(String::from));
            if let Some(Value::Array(items)) = original.get_mut(field) {
                reorder(items, order, key.as_deref());
            }
        }
    }
    Ok(Some(original))
}

/// The patch without its directives, as a value to write in place of something.
fn strip(
    patch: &Map<String, Value>,
    node: Option<Node<'_>>,
) -> Result<Map<String, Value>, PatchError> {
    let mut out = Map::new();
    for (k, v) in patch {
        if k.starts_with('$') || v.is_null() {
            continue;
        }
        let child = node.and_then(|n| n.property(k));
        let v = match v {
            Value::Object(m) => match merge_map(Map::new(), m, child)? {
                Some(m) => Value::Object(m),
                None => continue,
            },
            Value::Array(a) => Value::Array(merge_list(Vec::new(), a, child)?),
            other => other.clone(),
        };
        out.insert(k.clone(), v);
    }
    Ok(out)
}

fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    node: Option<Node<'_>>,
) -> Result<Vec<Value>, PatchError> {
    let strategy = node.map(|n| n.patch_strategy()).unwrap_or_default();
    let merge = strategy.split(',').any(|s| s == "merge");
    let items = node.and_then(|n| n.items());
    // `{"$patch": "replace"}` among the items replaces the whole list with the others.
    let replace = patch
        .iter()
        .any(|i| i.get(PATCH).and_then(Value::as_str) == Some("replace"));
    if !merge || replace {
        let mut out = Vec::new();
        for item in patch {
            match item {
                Value::Object(m) if m.get(PATCH).is_some() && m.len() == 1 => {}
                Value::Object(m) => {
                    if let Some(m) = merge_map(Map::new(), m, items)? {
                        out.push(Value::Object(m));
                    }
                }
                other => out.push(other.clone()),
            }
        }
        return Ok(out);
    }
    let Some(key) = node.and_then(|n| n.patch_merge_key()) else {
        // A list of scalars merged as a set: new values are appended.
        let mut out = original;
        for item in patch {
            if !out.contains(item) {
                out.push(item.clone());
            }
        }
        return Ok(out);
    };
    let mut out = original;
    for item in patch {
        let Value::Object(p) = item else {
            return Err(bad(format!(
                "invalid patch: list items must be objects with the merge key {key:?}"
            )));
        };
        let Some(id) = p.get(key) else {
            return Err(bad(format!(
                "map: {} does not contain declared merge key: {key}",
                show(item)
            )));
        };
        let pos = out.iter().position(|o| o.get(key) == Some(id));
        if p.get(PATCH).and_then(Value::as_str) == Some("delete") {
            out.retain(|o| o.get(key) != Some(id));
            continue;
        }
        match pos {
            Some(i) => {
                let o = out[i].as_object().cloned().unwrap_or_default();
                match merge_map(o, p, items)? {
                    Some(m) => out[i] = Value::Object(m),
                    None => {
                        out.remove(i);
                    }
                }
            }
            None => {
                if let Some(m) = merge_map(Map::new(), p, items)? {
                    out.push(Value::Object(m));
                }
            }
        }
    }
    Ok(out)
}

/// `$setElementOrder`: the listed items first, in that order, then the rest as they were.
fn reorder(items: &mut Vec<Value>, order: &[Value], key: Option<&str>) {
    let id = |v: &Value| -> Value {
        match key {
            Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let mut ordered = Vec::with_capacity(items.len());
    for o in order {
        let want = id(o);
        if let Some(pos) = items.iter().position(|i| id(i) == want) {
            ordered.push(items.remove(pos));
        }
    }
    ordered.append(items);
    *items = ordered;
}

fn show(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Node<'static> {
        Node::builtin_kind("", "v1", "Pod").expect("the Pod schema")
    }

    fn run(doc: Value, patch: Value) -> Value {
        apply(&doc, patch.to_string().as_bytes(), Some(pod())).expect("applies")
    }

    #[test]
    fn containers_merge_by_name() {
        let doc = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}});
        let out = run(
            doc,
            json!({"spec": {"containers": [{"name": "b", "image": "2"}, {"name": "c", "image": "3"}]}}),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "image": "1"}, {"name": "b", "image": "2"}, {"name": "c", "image": "3"}])
        );
    }

    #[test]
    fn directives_delete_replace_and_order() {
        let doc = json!({"metadata": {"finalizers": ["x", "y"]},
            "spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}});
        let out = run(
            doc.clone(),
            json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "b", "image": "1"}])
        );
        let out = run(
            doc.clone(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"], "finalizers": ["z"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["y", "z"]));
        let out = run(
            doc.clone(),
            json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}),
        );
        assert_eq!(out["spec"]["containers"][0]["name"], "b");
        let out = run(
            doc,
            json!({"spec": {"$patch": "replace", "containers": [{"name": "z", "image": "9"}]}}),
        );
        assert_eq!(
            out["spec"],
            json!({"containers": [{"name": "z", "image": "9"}]})
        );
    }

    #[test]
    fn retain_keys_clears_what_is_not_listed() {
        let d = Node::builtin_kind("apps", "v1", "Deployment").unwrap();
        let doc = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        let out = apply(&doc, patch.to_string().as_bytes(), Some(d)).unwrap();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }
}
