//! Server-side apply (`PATCH` with `application/apply-patch+yaml`), as structured-merge-diff
//! does it inside the apiserver: the applied configuration is merged into the live object
//! following the schema's list and map types, fields the applier applied before and no longer
//! applies are removed unless another manager owns them, and changing a field another manager
//! owns is a conflict (409) unless `force=true`, which takes the field over.
//!
//! This module owns the merge, the pruning of disowned fields and conflict detection; the
//! write itself (system fields, defaulting, validation, storage) goes through `write.rs`
//! like any other, with the managedFields computed here.

use serde_json::{Value, json};

use super::fields::{self, Entry, Operation};
use super::fieldset::{self, Set, item_element, path_string};
use super::kinds::ResourceType;
use super::schema::{ListType, Node};
use super::status::ApiError;
use super::validation::Cause;

/// Reads an apply body: YAML (of which JSON is a subset), one object.
pub(crate) fn parse(body: &[u8]) -> Result<Value, ApiError> {
    let text = String::from_utf8_lossy(body);
    let value: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_saphyr::from_str(&text).map_err(|e| {
            let first = e.to_string();
            let first = first.lines().next().unwrap_or_default().to_string();
            ApiError::bad_request(format!("error converting YAML to JSON: yaml: {first}"))
        })?
    };
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(json!({})),
        other => Err(ApiError::bad_request(format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            }
        ))),
    }
}

/// The checks the apiserver makes of an applied configuration before merging it.
pub(crate) fn check_config(rt: &ResourceType, config: &Value) -> Result<(), ApiError> {
    if config
        .pointer("/metadata/managedFields")
        .is_some_and(|m| !m.is_null())
    {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    let text = || serde_json::to_string(config).unwrap_or_default();
    let kind = config
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let api_version = config
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Object 'Kind' is missing in '{}'",
            text()
        )));
    }
    if api_version.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Object 'apiVersion' is missing in '{}'",
            text()
        )));
    }
    if api_version != rt.api_version() {
        return Err(ApiError::bad_request(format!(
            "Incorrect version specified in apply patch. Specified patch version: {api_version}, expected: {}",
            rt.api_version()
        )));
    }
    Ok(())
}

/// The result of an apply: the merged object with its managedFields written in.
#[derive(Debug)]
pub(crate) struct Applied {
    pub(crate) object: Value,
}

/// One field another manager owns that the apply would change.
#[derive(Debug)]
struct Conflict {
    manager: Entry,
    path: Vec<String>,
}

/// Applies `config` for `manager` onto `live` (an empty object when creating).
pub(crate) fn apply(
    rt: &ResourceType,
    live: &Value,
    config: &Value,
    manager: &str,
    subresource: Option<&str>,
    force: bool,
) -> Result<Applied, ApiError> {
    let node = fields::node_for(rt);
    let mut merged = merge(Some(live), config, node).unwrap_or_else(|| json!({}));
    let config_tracked = fields::trackable(rt, config, subresource);
    let applied_set = {
        let mut s = fieldset::to_set(&config_tracked, node);
        let mut strip = Set::default();
        strip.insert(&[fieldset::field("metadata")]);
        s = s.difference(&strip);
        s
    };
    let me = Entry {
        manager: manager.to_string(),
        operation: Operation::Apply,
        api_version: rt.api_version(),
        time: fields::now(),
        subresource: subresource.map(String::from),
        set: applied_set.clone(),
    };
    let mut entries = fields::entries(live);
    let last = entries
        .iter()
        .find(|e| e.same_manager(&me))
        .map(|e| e.set.clone())
        .unwrap_or_default();

    // Fields this applier applied last time and no longer applies go, unless another
    // manager still owns them.
    let mut others = Set::default();
    for e in entries.iter().filter(|e| !e.same_manager(&me)) {
        others.union(&e.set);
    }
    let mut keep = applied_set.clone();
    keep.union(&others);
    let disowned = last.difference(&keep);
    for path in disowned.paths() {
        // A list item or map entry that someone still owns part of stays.
        if keep.has_prefix(&path) {
            continue;
        }
        remove_path(&mut merged, &path, node);
    }

    let c = fields::changes(rt, live, &merged, subresource);
    let changed = c.changed();
    let mut conflicts = Vec::new();
    for e in entries.iter().filter(|e| !e.same_manager(&me)) {
        for path in e.set.intersection(&changed).paths() {
            conflicts.push(Conflict {
                manager: e.clone(),
                path,
            });
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(conflicts));
    }
    for e in entries.iter_mut().filter(|e| !e.same_manager(&me)) {
        e.set = e.set.difference(&changed).difference(&c.removed);
    }
    entries.retain(|e| !e.same_manager(&me));
    entries.push(me);
    fields::put_entries(&mut merged, entries);
    Ok(Applied { object: merged })
}

fn conflict_error(mut conflicts: Vec<Conflict>) -> ApiError {
    conflicts.sort_by(|a, b| {
        (&a.manager.manager, a.manager.operation, &a.path).cmp(&(
            &b.manager.manager,
            b.manager.operation,
            &b.path,
        ))
    });
    let message = if let [one] = conflicts.as_slice() {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.manager.printed(),
            path_string(&one.path)
        )
    } else {
        let mut lines = Vec::new();
        let mut last: Option<String> = None;
        for c in &conflicts {
            let who = c.manager.printed();
            if last.as_ref() != Some(&who) {
                lines.push(format!("conflicts with {who}:"));
                last = Some(who);
            }
            lines.push(format!("- {}", path_string(&c.path)));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let causes: Vec<Cause> = conflicts
        .iter()
        .map(|c| Cause {
            reason: "FieldManagerConflict",
            message: format!("conflict with {}", c.manager.printed()),
            field: path_string(&c.path),
        })
        .collect();
    let mut e = ApiError::new(409, "Conflict", message);
    e.details = Some(Box::new(json!({
        "causes": causes.iter().map(Cause::to_json).collect::<Vec<_>>(),
    })));
    e
}

/// Structured-merge-diff's merge: `config` wins for every field it sets; objects merge by
/// member, atomic lists and maps are replaced, `set` and `map` lists merge by item.
fn merge(live: Option<&Value>, config: &Value, node: Option<Node<'_>>) -> Option<Value> {
    match (live, config) {
        (Some(Value::Object(l)), Value::Object(c)) if !node.is_some_and(|n| n.is_atomic_map()) => {
            let mut out = l.clone();
            for (k, v) in c {
                let child = node.and_then(|n| n.property(k));
                if let Some(m) = merge(l.get(k), v, child) {
                    out.insert(k.clone(), m);
                }
            }
            Some(Value::Object(out))
        }
        (Some(Value::Array(l)), Value::Array(c)) => {
            let list = node.map(|n| n.list_type()).unwrap_or(ListType::Atomic);
            if list == ListType::Atomic {
                return Some(config.clone());
            }
            Some(Value::Array(merge_list(
                l,
                c,
                &list,
                node.and_then(|n| n.items()),
            )))
        }
        _ => Some(config.clone()),
    }
}

/// The item order of SMD's list merge: the config's order for the items it has, with items
/// only the live list has kept in place.
fn merge_list(
    live: &[Value],
    config: &[Value],
    list: &ListType,
    item: Option<Node<'_>>,
) -> Vec<Value> {
    let index = |items: &[Value]| -> Vec<(String, Value)> {
        let mut out: Vec<(String, Value)> = Vec::new();
        for (i, v) in items.iter().enumerate() {
            if let Some(pe) = item_element(list, i, v)
                && !out.iter().any(|(p, _)| *p == pe)
            {
                out.push((pe, v.clone()));
            }
        }
        out
    };
    let (lhs, rhs) = (index(live), index(config));
    let in_rhs = |pe: &str| rhs.iter().find(|(p, _)| p == pe).map(|(_, v)| v);
    let in_lhs = |pe: &str| lhs.iter().find(|(p, _)| p == pe).map(|(_, v)| v);
    let mut shared: std::collections::VecDeque<&String> = rhs
        .iter()
        .map(|(p, _)| p)
        .filter(|p| in_lhs(p).is_some())
        .collect();
    let mut next_shared = shared.pop_front();
    let mut out = Vec::new();
    let (mut li, mut ri) = (0, 0);
    let merged_item = |l: Option<&Value>, r: &Value| merge(l, r, item).unwrap_or(Value::Null);
    while li < lhs.len() || ri < rhs.len() {
        if li < lhs.len() && ri < rhs.len() {
            let pe = &lhs[li].0;
            if *pe == rhs[ri].0 {
                out.push(merged_item(Some(&lhs[li].1), &rhs[ri].1));
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if in_rhs(pe).is_some() && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < lhs.len() && in_rhs(&lhs[li].0).is_none() {
            out.push(lhs[li].1.clone());
            li += 1;
            continue;
        }
        if ri < rhs.len() {
            let pe = &rhs[ri].0;
            out.push(merged_item(in_lhs(pe), &rhs[ri].1));
            ri += 1;
            if next_shared.is_some_and(|n| n == pe) {
                next_shared = shared.pop_front();
            }
        } else {
            li += 1;
        }
    }
    out
}

/// Removes the field or item at `path` from `value`.
fn remove_path(value: &mut Value, path: &[String], node: Option<Node<'_>>) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match value {
        Value::Object(map) => {
            let Some(name) = first.strip_prefix("f:") else {
                return;
            };
            let child_node = node.and_then(|n| n.property(name));
            if rest.is_empty() {
                map.remove(name);
            } else if let Some(child) = map.get_mut(name) {
                remove_path(child, rest, child_node);
            }
        }
        Value::Array(items) => {
            let list = node.map(|n| n.list_type()).unwrap_or(ListType::Atomic);
            let item_node = node.and_then(|n| n.items());
            let pos = items
                .iter()
                .enumerate()
                .position(|(i, v)| item_element(&list, i, v).as_deref() == Some(first.as_str()));
            if let Some(pos) = pos {
                if rest.is_empty() {
                    items.remove(pos);
                } else {
                    remove_path(&mut items[pos], rest, item_node);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::kinds::Registry;

    fn cm() -> ResourceType {
        (*Registry::with_builtins()
            .get("", "v1", "configmaps")
            .unwrap())
        .clone()
    }

    fn cfg(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": data})
    }

    #[test]
    fn a_second_applier_changing_a_field_conflicts() {
        let rt = cm();
        let first = apply(&rt, &json!({}), &cfg(json!({"k": "1"})), "a", None, false).unwrap();
        let err = apply(
            &rt,
            &first.object,
            &cfg(json!({"k": "2"})),
            "b",
            None,
            false,
        )
        .unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"a\": .data.k"
        );
        let forced = apply(&rt, &first.object, &cfg(json!({"k": "2"})), "b", None, true).unwrap();
        let mf = forced.object["metadata"]["managedFields"]
            .as_array()
            .unwrap();
        assert_eq!(mf.len(), 1, "{mf:?}");
        assert_eq!(mf[0]["manager"], "b");
    }

    #[test]
    fn the_same_value_is_shared_not_a_conflict() {
        let rt = cm();
        let first = apply(&rt, &json!({}), &cfg(json!({"k": "1"})), "a", None, false).unwrap();
        let second = apply(
            &rt,
            &first.object,
            &cfg(json!({"k": "1"})),
            "b",
            None,
            false,
        )
        .unwrap();
        assert_eq!(
            second.object["metadata"]["managedFields"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn fields_no_longer_applied_are_removed_unless_owned_by_another() {
        let rt = cm();
        let a = apply(
            &rt,
            &json!({}),
            &cfg(json!({"k": "1", "j": "1"})),
            "a",
            None,
            false,
        )
        .unwrap();
        let b = apply(&rt, &a.object, &cfg(json!({"j": "1"})), "b", None, false).unwrap();
        let a2 = apply(&rt, &b.object, &cfg(json!({})), "a", None, false).unwrap();
        assert_eq!(keys(&a2.object["data"]), ["j"]);
    }
}
