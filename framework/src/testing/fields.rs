//! `metadata.managedFields` for ordinary writes (`operation: Update`): which manager last set
//! which fields, in the FieldsV1 format (`{"f:data": {".": {}, "f:key": {}}}`).
//!
//! A create gives its manager every field it set; an update gives its manager the fields it
//! changed and takes them away from everyone else (updates never conflict). Lists are treated
//! as atomic here; server-side apply's list keys and conflict detection are not this module's
//! job.

use serde_json::{Map, Value, json};

use super::kinds::ResourceType;

/// Metadata fields the server owns; they never appear in managedFields.
const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "generateName",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The part of an object a write through `subresource` can own.
fn trackable(rt: &ResourceType, obj: &Value, subresource: Option<&str>) -> Value {
    let Some(map) = obj.as_object() else {
        return json!({});
    };
    let mut out = Map::new();
    for (k, v) in map {
        let keep = match (subresource, k.as_str()) {
            (_, "apiVersion" | "kind") => false,
            (Some("status"), key) => key == "status",
            (_, "status") => !rt.status_subresource,
            _ => true,
        };
        if !keep {
            continue;
        }
        if k == "metadata" {
            let mut meta = v.as_object().cloned().unwrap_or_default();
            meta.retain(|mk, _| !SYSTEM_METADATA.contains(&mk.as_str()));
            if !meta.is_empty() {
                out.insert(k.clone(), Value::Object(meta));
            }
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// The field set of a value: objects recurse (with `.` marking the object itself below the
/// root), everything else is a leaf.
fn field_set(v: &Value, root: bool) -> Value {
    let mut out = Map::new();
    if let Value::Object(m) = v {
        if !root {
            out.insert(".".into(), json!({}));
        }
        for (k, child) in m {
            if child.is_null() {
                continue;
            }
            let mut set = field_set(child, false);
            if root && k == "metadata" {
                // ObjectMeta is a struct in every kind's schema, so unlike a map (labels,
                // data, an untyped custom resource spec) it is not a member of the set itself.
                if let Some(o) = set.as_object_mut() {
                    o.remove(".");
                }
            }
            out.insert(format!("f:{k}"), set);
        }
    }
    Value::Object(out)
}

/// Fields set or changed in `new` relative to `old`, and fields `old` had that `new` dropped.
fn diff(old: &Value, new: &Value, root: bool) -> (Value, Value) {
    let mut changed = Map::new();
    let mut removed = Map::new();
    match (old.as_object(), new.as_object()) {
        (Some(o), Some(n)) => {
            for (k, nv) in n {
                if nv.is_null() {
                    continue;
                }
                let key = format!("f:{k}");
                match o.get(k) {
                    None | Some(Value::Null) => {
                        changed.insert(key, field_set(nv, false));
                    }
                    Some(ov) if ov.is_object() && nv.is_object() => {
                        let (c, r) = diff(ov, nv, false);
                        if c.as_object().is_some_and(|m| !m.is_empty()) {
                            changed.insert(key.clone(), c);
                        }
                        if r.as_object().is_some_and(|m| !m.is_empty()) {
                            removed.insert(key, r);
                        }
                    }
                    Some(ov) if ov != nv => {
                        changed.insert(key, field_set(nv, false));
                    }
                    Some(_) => {}
                }
            }
            for (k, ov) in o {
                if !ov.is_null() && n.get(k).is_none_or(Value::is_null) {
                    removed.insert(format!("f:{k}"), json!({}));
                }
            }
        }
        _ if old != new => {
            changed = field_set(new, root)
                .as_object()
                .cloned()
                .unwrap_or_default();
        }
        _ => {}
    }
    (Value::Object(changed), Value::Object(removed))
}

fn union(into: &mut Value, add: &Value) {
    let (Some(a), Some(b)) = (into.as_object_mut(), add.as_object()) else {
        return;
    };
    for (k, v) in b {
        match a.get_mut(k) {
            Some(existing) => union(existing, v),
            None => {
                a.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Removes from `from` every field in `take`; a leaf in `take` removes the whole subtree.
fn subtract(from: &mut Value, take: &Value) {
    let (Some(a), Some(b)) = (from.as_object_mut(), take.as_object()) else {
        return;
    };
    for (k, v) in b {
        if k == "." {
            continue;
        }
        let leaf = v
            .as_object()
            .is_none_or(|m| m.is_empty() || m.keys().all(|x| x == "."));
        if leaf {
            a.remove(k);
        } else if let Some(child) = a.get_mut(k) {
            subtract(child, v);
            if child.as_object().is_some_and(Map::is_empty) {
                a.remove(k);
            }
        }
    }
}

fn is_empty(v: &Value) -> bool {
    v.as_object().is_none_or(Map::is_empty)
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn entry(manager: &str, api_version: &str, subresource: Option<&str>, fields: Value) -> Value {
    let mut e = json!({
        "manager": manager,
        "operation": "Update",
        "apiVersion": api_version,
        "time": now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    if let Some(s) = subresource {
        e["subresource"] = json!(s);
    }
    e
}

/// Records a create: `manager` owns every field the new object sets. Entries the client sent
/// are kept (a client may restore managedFields), and the manager's own entry is merged in.
pub(crate) fn on_create(rt: &ResourceType, obj: &mut Value, manager: &str, api_version: &str) {
    let owned = field_set(&trackable(rt, obj, None), true);
    let mut entries = take_entries(obj);
    if !is_empty(&owned) {
        merge_into(&mut entries, manager, api_version, None, &owned);
    }
    put_entries(obj, entries);
}

/// Records an update from `old` to `new` (already prepared) by `manager`.
pub(crate) fn on_update(
    rt: &ResourceType,
    old: &Value,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
) {
    let (changed, removed) = diff(
        &trackable(rt, old, subresource),
        &trackable(rt, new, subresource),
        true,
    );
    // A client that sends managedFields replaces them (`[{}]` clears them); otherwise the
    // stored ones carry on.
    let sent = new.pointer("/metadata/managedFields").cloned();
    let mut entries = match sent {
        Some(Value::Array(list))
            if list
                != old
                    .pointer("/metadata/managedFields")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default() =>
        {
            list.into_iter()
                .filter(|e| e.get("manager").is_some())
                .collect()
        }
        _ => old
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    };
    if !is_empty(&changed) || !is_empty(&removed) {
        for e in entries.iter_mut() {
            if let Some(f) = e.get_mut("fieldsV1") {
                subtract(f, &changed);
                subtract(f, &removed);
            }
        }
        entries.retain(|e| e.get("fieldsV1").is_some_and(|f| !is_empty(f)));
        if !is_empty(&changed) {
            merge_into(&mut entries, manager, api_version, subresource, &changed);
        }
    }
    put_entries(new, entries);
}

fn take_entries(obj: &mut Value) -> Vec<Value> {
    obj.get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove("managedFields"))
        .and_then(|v| match v {
            Value::Array(a) => Some(
                a.into_iter()
                    .filter(|e| e.get("manager").is_some())
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

fn put_entries(obj: &mut Value, entries: Vec<Value>) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(entries));
        }
    }
}

fn merge_into(
    entries: &mut Vec<Value>,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    fields: &Value,
) {
    let same = |e: &Value| {
        e["manager"] == manager
            && e["operation"] == "Update"
            && e["apiVersion"] == api_version
            && e.get("subresource").and_then(Value::as_str) == subresource
    };
    match entries.iter_mut().find(|e| same(e)) {
        Some(e) => {
            union(&mut e["fieldsV1"], fields);
            e["time"] = json!(now());
        }
        None => entries.push(entry(manager, api_version, subresource, fields.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::kinds::Registry;

    fn cm_type() -> ResourceType {
        (*Registry::with_builtins()
            .get("", "v1", "configmaps")
            .unwrap())
        .clone()
    }

    #[test]
    fn create_gives_the_manager_every_field_it_set() {
        let rt = cm_type();
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "labels": {"a": "1"}}, "data": {"k": "v"}});
        on_create(&rt, &mut obj, "tester", "v1");
        let mf = &obj["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "tester");
        assert_eq!(mf["operation"], "Update");
        assert_eq!(
            mf["fieldsV1"],
            json!({
                "f:data": {".": {}, "f:k": {}},
                "f:metadata": {"f:labels": {".": {}, "f:a": {}}}
            })
        );
    }

    #[test]
    fn an_update_moves_changed_fields_to_the_updater() {
        let rt = cm_type();
        let mut old = json!({"metadata": {"name": "x"}, "data": {"a": "1", "b": "1"}});
        on_create(&rt, &mut old, "alice", "v1");
        let mut new = old.clone();
        new["data"]["b"] = json!("2");
        on_update(&rt, &old, &mut new, "bob", "v1", None);
        let mf = new["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf.len(), 2);
        assert_eq!(mf[0]["fieldsV1"]["f:data"], json!({".": {}, "f:a": {}}));
        assert_eq!(mf[1]["manager"], "bob");
        assert_eq!(mf[1]["fieldsV1"], json!({"f:data": {"f:b": {}}}));
    }

    #[test]
    fn an_unchanged_update_leaves_managed_fields_alone() {
        let rt = cm_type();
        let mut old = json!({"metadata": {"name": "x"}, "data": {"a": "1"}});
        on_create(&rt, &mut old, "alice", "v1");
        let mut new = old.clone();
        on_update(&rt, &old, &mut new, "bob", "v1", None);
        assert_eq!(
            new["metadata"]["managedFields"],
            old["metadata"]["managedFields"]
        );
    }
}
