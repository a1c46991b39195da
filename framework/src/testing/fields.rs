//! `metadata.managedFields`: which manager owns which fields, for ordinary writes
//! (`operation: Update`) and server-side apply (`operation: Apply`), each entry a FieldsV1 set
//! (see `fieldset.rs`), with `subresource: status` for writes through `/status`.
//!
//! An update gives its manager the fields it added or changed and takes them (and the fields
//! it removed) away from every other manager; updates never conflict. Apply, which can
//! conflict, is built from the same pieces in `apply.rs`. Entries are kept in the order the
//! apiserver writes them: appliers first, then by time, then by manager.

use serde_json::{Map, Value, json};

use super::fieldset::{self, Comparison, Set};
use super::kinds::ResourceType;
use super::schema::Node;

/// Metadata fields the server owns; they never appear in managedFields (SMD's strip set).
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

/// `Apply` or `Update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One managedFields entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) manager: String,
    pub(crate) operation: Operation,
    pub(crate) api_version: String,
    pub(crate) time: String,
    pub(crate) subresource: Option<String>,
    pub(crate) set: Set,
}

impl Entry {
    /// Whether `self` is the manager identified by the other entry's identity: manager,
    /// operation, subresource, and (for updates only) apiVersion.
    pub(crate) fn same_manager(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// How conflict messages name this manager: `"kubectl"` for an applier, `"kubectl"
    /// using v1` for an updater.
    pub(crate) fn printed(&self) -> String {
        let name = super::validation::go_quote(&self.manager);
        match self.operation {
            Operation::Apply => name,
            Operation::Update => format!("{name} using {}", self.api_version),
        }
    }

    fn to_json(&self) -> Value {
        let mut e = json!({
            "manager": self.manager,
            "operation": self.operation.as_str(),
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.set.to_fields_v1(),
        });
        if let Some(s) = &self.subresource {
            e["subresource"] = json!(s);
        }
        e
    }

    fn from_json(v: &Value) -> Option<Entry> {
        let manager = v.get("manager")?.as_str()?.to_string();
        let operation = match v.get("operation").and_then(Value::as_str) {
            Some("Apply") => Operation::Apply,
            _ => Operation::Update,
        };
        let str_of = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
        let set = match v.get("fieldsV1") {
            Some(f) => Set::from_fields_v1(f).ok()?,
            None => Set::default(),
        };
        Some(Entry {
            manager,
            operation,
            api_version: str_of("apiVersion").to_string(),
            time: str_of("time").to_string(),
            subresource: Some(str_of("subresource"))
                .filter(|s| !s.is_empty())
                .map(String::from),
            set,
        })
    }
}

pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The schema field ownership follows for `rt`.
pub(crate) fn node_for(rt: &ResourceType) -> Option<Node<'_>> {
    match &rt.custom_schema {
        Some(s) => Some(s.root()),
        None => Node::builtin_kind(&rt.group, &rt.version, &rt.kind),
    }
}

/// The part of an object a write through `subresource` can own.
pub(crate) fn trackable(rt: &ResourceType, obj: &Value, subresource: Option<&str>) -> Value {
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
            out.insert(k.clone(), Value::Object(meta));
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// `obj` with the containers Go's zero value of the kind has, so that they do not count as
/// added (custom resources have none: a new `spec` is itself added, hence its `.`).
fn with_zero(rt: &ResourceType, mut obj: Value) -> Value {
    for path in rt.zero {
        // `a.b=null` is a nil slice or map: present, as `null`.
        let (path, null) = match path.strip_suffix("=null") {
            Some(p) => (p, true),
            None => (*path, false),
        };
        let mut cur = &mut obj;
        let segs: Vec<&str> = path.split('.').collect();
        for (i, seg) in segs.iter().enumerate() {
            if !cur.is_object() {
                break;
            }
            if cur.get(*seg).is_none() || (!null && cur[*seg].is_null()) {
                cur[*seg] = if null && i == segs.len() - 1 {
                    Value::Null
                } else {
                    json!({})
                };
            }
            cur = &mut cur[*seg];
        }
    }
    if let Some(m) = obj.as_object_mut() {
        m.entry("metadata").or_insert_with(|| json!({}));
    }
    obj
}

/// What changed between two versions of an object, as ownership counts it.
pub(crate) fn changes(
    rt: &ResourceType,
    old: &Value,
    new: &Value,
    subresource: Option<&str>,
) -> Comparison {
    let old = with_zero(rt, trackable(rt, old, subresource));
    let new = with_zero(rt, trackable(rt, new, subresource));
    let mut c = fieldset::compare(&old, &new, node_for(rt));
    // `metadata` itself is stripped: it exists in every object.
    for set in [&mut c.added, &mut c.removed] {
        let mut strip = Set::default();
        strip.insert(&[fieldset::field("metadata")]);
        *set = set.difference(&strip);
    }
    c
}

/// The entries of an object; entries that do not decode are dropped.
pub(crate) fn entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Entry::from_json).collect())
        .unwrap_or_default()
}

/// Writes `entries` into the object, in the apiserver's order, dropping empty ones.
pub(crate) fn put_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|a, b| {
        (
            a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            let list = entries.iter().map(Entry::to_json).collect();
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Takes ownership of `changed` for `me` and removes `changed` and `removed` from everyone
/// else (an update's forced ownership transfer).
pub(crate) fn record(entries: &mut Vec<Entry>, me: Entry, c: &Comparison) {
    let changed = c.changed();
    for e in entries.iter_mut() {
        if !e.same_manager(&me) {
            e.set = e.set.difference(&changed).difference(&c.removed);
        }
    }
    match entries.iter_mut().find(|e| e.same_manager(&me)) {
        Some(e) => {
            let mut set = e.set.clone();
            set.union(&changed);
            let set = set.difference(&c.removed);
            if !changed.is_empty() {
                e.time = me.time;
            }
            e.set = set;
        }
        None => {
            let mut me = me;
            me.set = changed;
            entries.push(me);
        }
    }
    entries.retain(|e| !e.set.is_empty());
}

fn updater(manager: &str, api_version: &str, subresource: Option<&str>) -> Entry {
    Entry {
        manager: manager.to_string(),
        operation: Operation::Update,
        api_version: api_version.to_string(),
        time: now(),
        subresource: subresource.map(String::from),
        set: Set::default(),
    }
}

/// Records a create: `manager` owns every field the new object sets. Entries the client sent
/// are kept (a client may restore managedFields).
pub(crate) fn on_create(rt: &ResourceType, obj: &mut Value, manager: &str, api_version: &str) {
    let c = changes(rt, &json!({}), obj, None);
    let mut list = entries(obj);
    record(&mut list, updater(manager, api_version, None), &c);
    put_entries(obj, list);
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
    let c = changes(rt, old, new, subresource);
    // A client that sends different managedFields through the main resource replaces them
    // (`[{}]` resets them); otherwise the stored ones carry on.
    let sent = new.pointer("/metadata/managedFields").cloned();
    let stored = old.pointer("/metadata/managedFields").cloned();
    let mut list = match sent {
        Some(Value::Array(_)) if subresource.is_none() && sent != stored => entries(new),
        _ => entries(old),
    };
    record(&mut list, updater(manager, api_version, subresource), &c);
    put_entries(new, list);
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
        let alice = mf.iter().find(|e| e["manager"] == "alice").unwrap();
        let bob = mf.iter().find(|e| e["manager"] == "bob").unwrap();
        assert_eq!(alice["fieldsV1"]["f:data"], json!({".": {}, "f:a": {}}));
        assert_eq!(bob["fieldsV1"], json!({"f:data": {"f:b": {}}}));
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

    #[test]
    fn list_items_of_built_ins_are_owned_by_their_keys() {
        let reg = Registry::with_builtins();
        let rt = reg.get("apps", "v1", "deployments").unwrap();
        let mut obj = json!({"metadata": {"name": "d"}, "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
        on_create(&rt, &mut obj, "kubectl", "apps/v1");
        assert_eq!(
            obj["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"],
            json!({
                "f:selector": {},
                "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}
                }}}
            })
        );
    }
}
