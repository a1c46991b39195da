//! Whether a field manager already owns exactly the fields of a desired apply configuration,
//! with the values the live object has: then applying it again would change nothing.
//!
//! Server-side apply records what each manager owns in `metadata.managedFields`, in the
//! `FieldsV1` format: `f:<name>` for a member of a map or struct, `k:<json>` for an element of
//! a list keyed by some of its fields (containers by `name`), `v:<json>` for an element of a
//! set, and `.` for the field itself when its children are listed too; an empty `{}` owns the
//! field whole (a scalar, an atomic list or struct). The comparison walks the desired
//! configuration, the manager's field set and the live object together, and answers "the
//! same" only when every level agrees. Anything it does not recognise counts as different, so
//! the worst a surprise can cost is one apply that changes nothing.

use serde_json::{Map, Value};

use super::merge::same;

/// Whether applying `desired` as the manager whose field set is `fields` would change
/// nothing on `live`: the manager owns exactly the fields `desired` sets, and `live` holds
/// the values `desired` gives them.
pub(crate) fn owns_exactly(desired: &Map<String, Value>, fields: &Value, live: &Value) -> bool {
    match fields.as_object() {
        Some(fields) => map_matches(desired, fields, live),
        None => false,
    }
}

/// The children of a field set: everything but `.`.
fn children(fields: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    fields.iter().filter(|(k, _)| k.as_str() != ".")
}

fn map_matches(desired: &Map<String, Value>, fields: &Map<String, Value>, live: &Value) -> bool {
    let Some(live) = live.as_object() else {
        return false;
    };
    let wanted: Vec<(&String, &Value)> = desired.iter().filter(|(_, v)| !v.is_null()).collect();
    if children(fields).count() != wanted.len() {
        return false;
    }
    wanted.into_iter().all(
        |(key, value)| match (fields.get(&format!("f:{key}")), live.get(key)) {
            (Some(owned), Some(live)) => value_matches(value, owned, live),
            _ => false,
        },
    )
}

fn value_matches(desired: &Value, fields: &Value, live: &Value) -> bool {
    let Some(fields) = fields.as_object() else {
        return false;
    };
    // Owned whole: a scalar, an atomic list or struct, or an empty map.
    if children(fields).next().is_none() {
        return same(desired, live);
    }
    match desired {
        Value::Object(desired) => map_matches(desired, fields, live),
        Value::Array(items) => list_matches(items, fields, live),
        _ => false,
    }
}

fn list_matches(items: &[Value], fields: &Map<String, Value>, live: &Value) -> bool {
    let Some(live) = live.as_array() else {
        return false;
    };
    let owned: Vec<(&String, &Value)> = children(fields).collect();
    if owned.len() != items.len() {
        return false;
    }
    if owned.iter().all(|(k, _)| k.starts_with("v:")) {
        // A set: the same values, each present in the live list.
        return owned.iter().all(|(k, _)| {
            serde_json::from_str::<Value>(&k[2..]).is_ok_and(|v| {
                items.iter().any(|i| same(i, &v)) && live.iter().any(|l| same(l, &v))
            })
        });
    }
    // A list keyed by some fields of its elements: each desired element is owned under its
    // key, and matches the live element with that key.
    let mut used = vec![false; owned.len()];
    items.iter().all(|item| {
        let Some(element) = item.as_object() else {
            return false;
        };
        let found = owned.iter().enumerate().find(|(i, (k, _))| {
            !used[*i]
                && k.strip_prefix("k:")
                    .and_then(|key| serde_json::from_str::<Map<String, Value>>(key).ok())
                    .is_some_and(|key| key.iter().all(|(f, v)| element.get(f) == Some(v)))
        });
        let Some((i, (key, sub))) = found else {
            return false;
        };
        used[i] = true;
        let key: Map<String, Value> = serde_json::from_str(&key[2..]).unwrap_or_default();
        let Some(live_element) = live
            .iter()
            .find(|l| key.iter().all(|(f, v)| l.get(f) == Some(v)))
        else {
            return false;
        };
        value_matches(item, sub, live_element)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(desired: Value, fields: Value, live: Value) -> bool {
        owns_exactly(desired.as_object().unwrap(), &fields, &live)
    }

    #[test]
    fn the_same_fields_with_the_same_values_match() {
        assert!(check(
            json!({"data": {"a": "1"}}),
            json!({"f:data": {".": {}, "f:a": {}}}),
            json!({"data": {"a": "1", "b": "someone else's"}}),
        ));
    }

    #[test]
    fn a_new_value_or_a_dropped_field_does_not_match() {
        let fields = json!({"f:data": {".": {}, "f:a": {}, "f:b": {}}});
        let live = json!({"data": {"a": "1", "b": "2"}});
        assert!(check(
            json!({"data": {"a": "1", "b": "2"}}),
            fields.clone(),
            live.clone()
        ));
        assert!(!check(
            json!({"data": {"a": "1", "b": "3"}}),
            fields.clone(),
            live.clone()
        ));
        // No longer setting `b` would release it: an apply is needed.
        assert!(!check(
            json!({"data": {"a": "1"}}),
            fields.clone(),
            live.clone()
        ));
        // Setting a field not owned yet.
        assert!(!check(
            json!({"data": {"a": "1", "b": "2", "c": "3"}}),
            fields,
            live
        ));
    }

    #[test]
    fn keyed_lists_match_element_by_key_in_any_order() {
        let fields = json!({"f:spec": {"f:containers": {
            "k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:image": {}},
            "k:{\"name\":\"b\"}": {".": {}, "f:name": {}, "f:image": {}},
        }}});
        let live = json!({"spec": {"containers": [
            {"name": "b", "image": "y", "imagePullPolicy": "Always"},
            {"name": "a", "image": "x", "imagePullPolicy": "Always"},
        ]}});
        let desired = json!({"spec": {"containers": [
            {"name": "a", "image": "x"}, {"name": "b", "image": "y"},
        ]}});
        assert!(check(desired, fields.clone(), live.clone()));
        let changed = json!({"spec": {"containers": [
            {"name": "a", "image": "x2"}, {"name": "b", "image": "y"},
        ]}});
        assert!(!check(changed, fields.clone(), live.clone()));
        let fewer = json!({"spec": {"containers": [{"name": "a", "image": "x"}]}});
        assert!(!check(fewer, fields, live));
    }

    #[test]
    fn atomic_values_and_sets_compare_whole() {
        let fields = json!({"f:spec": {"f:args": {}, "f:tags": {"v:\"a\"": {}, "v:\"b\"": {}}}});
        let live = json!({"spec": {"args": ["--x", "--y"], "tags": ["b", "a"]}});
        assert!(check(
            json!({"spec": {"args": ["--x", "--y"], "tags": ["a", "b"]}}),
            fields.clone(),
            live.clone()
        ));
        assert!(!check(
            json!({"spec": {"args": ["--y", "--x"], "tags": ["a", "b"]}}),
            fields,
            live
        ));
    }

    #[test]
    fn unknown_field_set_shapes_never_match() {
        assert!(!check(
            json!({"a": [1]}),
            json!({"f:a": {"i:0": {}}}),
            json!({"a": [1]})
        ));
        assert!(!check(
            json!({"a": 1}),
            json!("not a field set"),
            json!({"a": 1})
        ));
    }
}
