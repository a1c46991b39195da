//! The JSON merge patch (RFC 7386) that turns one JSON document into another, used to write
//! only what a mutate closure changed.

use serde_json::{Map, Value};

/// The merge patch from `before` to `after`, or `None` when they are the same. Members that
/// are `null` in `after` count as absent (a typed object serializes unset optional fields
/// either way), and arrays are replaced whole, as merge patches do.
pub(crate) fn diff(before: &Value, after: &Value) -> Option<Value> {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => diff_maps(b, a).map(Value::Object),
        _ if same(before, after) => None,
        _ => Some(after.clone()),
    }
}

fn diff_maps(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Option<Map<String, Value>> {
    let mut patch = Map::new();
    for (key, a) in after {
        match before.get(key) {
            Some(b) => {
                if let Some(d) = diff(b, a) {
                    patch.insert(key.clone(), d);
                }
            }
            None if a.is_null() => {}
            None => {
                patch.insert(key.clone(), strip_nulls(a));
            }
        }
    }
    for (key, b) in before {
        if !after.contains_key(key) && !b.is_null() {
            patch.insert(key.clone(), Value::Null);
        }
    }
    (!patch.is_empty()).then_some(patch)
}

/// Whether two values are equal, counting `null` members as absent.
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let present = |m: &Map<String, Value>| m.values().filter(|v| !v.is_null()).count();
            present(a) == present(b)
                && a.iter()
                    .filter(|(_, v)| !v.is_null())
                    .all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        _ => a == b,
    }
}

/// `value` without `null` members: in a merge patch a `null` deletes, and a new member's
/// unset fields must not.
fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_changed_members_are_in_the_patch() {
        let before = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]});
        let after = json!({"a": 1, "b": {"c": 2, "d": 4}, "e": [1, 2]});
        assert_eq!(diff(&before, &after), Some(json!({"b": {"d": 4}})));
    }

    #[test]
    fn removed_members_are_null_and_arrays_are_replaced_whole() {
        let before = json!({"a": 1, "e": [1, 2]});
        let after = json!({"e": [1, 3]});
        assert_eq!(diff(&before, &after), Some(json!({"a": null, "e": [1, 3]})));
    }

    #[test]
    fn null_counts_as_absent() {
        let before = json!({"a": 1});
        let after = json!({"a": 1, "b": null, "c": {"d": null, "e": 1}});
        assert_eq!(diff(&before, &after), Some(json!({"c": {"e": 1}})));
        assert_eq!(diff(&json!({"a": 1, "b": null}), &json!({"a": 1})), None);
        assert!(same(&json!({"x": [{"a": null}]}), &json!({"x": [{}]})));
    }
}
