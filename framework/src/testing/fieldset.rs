//! Field sets, the unit of ownership of server-side apply: which fields (and list items) of an
//! object a manager owns, in structured-merge-diff's model and its `FieldsV1` encoding
//! (`{"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}}`).
//!
//! This module owns the set type, its encoding, and the two ways sets are made from objects:
//! [`to_set`] (every field an applied configuration mentions) and [`compare`] (what changed
//! between two versions of an object, for updates and conflict detection). Both follow the
//! object's schema (see `schema.rs`): lists are atomic unless the schema says `set` or `map`,
//! and atomic maps and structs are owned whole. Who owns what lives in `fields.rs`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::schema::{ListType, Node};

/// A set of field paths, as a tree: each child is a path element (`f:name`, `k:{..}`, `v:..`,
/// `i:N`) and a node is a *member* when the path that leads to it is in the set itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Set {
    children: BTreeMap<String, SetNode>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SetNode {
    member: bool,
    children: Set,
}

impl Set {
    pub(crate) fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Adds `path` (a list of encoded path elements) as a member.
    pub(crate) fn insert(&mut self, path: &[String]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let node = self.children.entry(first.clone()).or_default();
        if rest.is_empty() {
            node.member = true;
        } else {
            node.children.insert(rest);
        }
    }

    /// Whether some member starts with `prefix` (the prefix itself included).
    pub(crate) fn has_prefix(&self, prefix: &[String]) -> bool {
        let Some((first, rest)) = prefix.split_first() else {
            return !self.is_empty();
        };
        match self.children.get(first) {
            None => false,
            Some(n) if rest.is_empty() => n.member || !n.children.is_empty(),
            Some(n) => n.children.has_prefix(rest),
        }
    }

    pub(crate) fn union(&mut self, other: &Set) {
        for (k, n) in &other.children {
            let mine = self.children.entry(k.clone()).or_default();
            mine.member |= n.member;
            mine.children.union(&n.children);
        }
    }

    /// The members of `self` that are not members of `other` (exact paths, not prefixes).
    pub(crate) fn difference(&self, other: &Set) -> Set {
        let mut out = Set::default();
        for (k, n) in &self.children {
            let (member, children) = match other.children.get(k) {
                None => (n.member, n.children.clone()),
                Some(o) => (n.member && !o.member, n.children.difference(&o.children)),
            };
            if member || !children.is_empty() {
                out.children.insert(k.clone(), SetNode { member, children });
            }
        }
        out
    }

    /// The members of both.
    pub(crate) fn intersection(&self, other: &Set) -> Set {
        let mut out = Set::default();
        for (k, n) in &self.children {
            if let Some(o) = other.children.get(k) {
                let member = n.member && o.member;
                let children = n.children.intersection(&o.children);
                if member || !children.is_empty() {
                    out.children.insert(k.clone(), SetNode { member, children });
                }
            }
        }
        out
    }

    /// Every member path, in order.
    pub(crate) fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        for (k, n) in &self.children {
            prefix.push(k.clone());
            if n.member {
                out.push(prefix.clone());
            }
            n.children.collect(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` JSON of this set.
    pub(crate) fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        for (k, n) in &self.children {
            let mut child = match n.children.to_fields_v1() {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            if n.member && !child.is_empty() {
                child.insert(".".into(), Value::Object(Map::new()));
            }
            map.insert(k.clone(), Value::Object(child));
        }
        Value::Object(map)
    }

    /// Reads `FieldsV1` JSON; anything that is not an object of objects is an error.
    pub(crate) fn from_fields_v1(v: &Value) -> Result<Set, String> {
        let Value::Object(map) = v else {
            return Err(format!("expected an object, got {v}"));
        };
        let mut set = Set::default();
        for (k, child) in map {
            if k == "." {
                continue;
            }
            if !matches!(k.get(..2), Some("f:" | "k:" | "v:" | "i:")) {
                return Err(format!("unknown path element {k:?}"));
            }
            let Value::Object(cm) = child else {
                return Err(format!("expected an object under {k:?}"));
            };
            let children = Set::from_fields_v1(child)?;
            let member = cm.is_empty() || cm.contains_key(".");
            set.children.insert(k.clone(), SetNode { member, children });
        }
        Ok(set)
    }
}

/// The encoded path element of an object member.
pub(crate) fn field(name: &str) -> String {
    format!("f:{name}")
}

/// How a path is printed in conflict messages: `.spec.containers[name="web"].image`.
pub(crate) fn path_string(path: &[String]) -> String {
    let mut out = String::new();
    for pe in path {
        let (kind, rest) = pe.split_at(2.min(pe.len()));
        match kind {
            "f:" => {
                out.push('.');
                out.push_str(rest);
            }
            "k:" => {
                let fields: Map<String, Value> = serde_json::from_str(rest).unwrap_or_default();
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!("[{}]", parts.join(",")));
            }
            "v:" => out.push_str(&format!("[={rest}]")),
            _ => out.push_str(&format!("[{rest}]")),
        }
    }
    out
}

/// The path element of a list item, as the list's type identifies items; `None` for an
/// item of a map list that lacks a key (such an item cannot be tracked).
pub(crate) fn item_element(list: &ListType, index: usize, item: &Value) -> Option<String> {
    match list {
        ListType::Atomic => Some(format!("i:{index}")),
        ListType::Set => Some(format!("v:{}", canonical(item))),
        ListType::Map(keys, defaults) => {
            let mut fields = Map::new();
            for (i, k) in keys.iter().enumerate() {
                let v = item
                    .get(k)
                    .filter(|v| !v.is_null())
                    .cloned()
                    .or_else(|| defaults.get(i).cloned().flatten())?;
                fields.insert(k.clone(), v);
            }
            Some(format!("k:{}", canonical(&Value::Object(fields))))
        }
    }
}

/// Compact JSON with sorted members (serde_json's map is ordered), as SMD encodes values.
fn canonical(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Every field `value` mentions: leaves, list items (always members themselves), map keys the
/// schema does not declare, atomic lists and maps whole.
pub(crate) fn to_set(value: &Value, node: Option<Node<'_>>) -> Set {
    let mut set = Set::default();
    walk_set(value, node, &mut Vec::new(), &mut set);
    set
}

fn walk_set(value: &Value, node: Option<Node<'_>>, path: &mut Vec<String>, set: &mut Set) {
    match value {
        Value::Object(map) => {
            if node.is_some_and(|n| n.is_atomic_map()) {
                set.insert(path);
                return;
            }
            for (k, child) in map {
                let child_node = node.and_then(|n| n.property(k));
                path.push(field(k));
                walk_set(child, child_node, path, set);
                if !node.is_some_and(|n| n.declares(k)) {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            let list = node.map(|n| n.list_type()).unwrap_or(ListType::Atomic);
            if list == ListType::Atomic {
                set.insert(path);
                return;
            }
            let item_node = node.and_then(|n| n.items());
            for (i, item) in items.iter().enumerate() {
                let Some(pe) = item_element(&list, i, item) else {
                    continue;
                };
                path.push(pe);
                if matches!(list, ListType::Map(..)) {
                    walk_set(item, item_node, path, set);
                }
                set.insert(path);
                path.pop();
            }
        }
        _ => set.insert(path),
    }
}

/// What changed from `old` to `new`: fields added, modified, and removed. A container that
/// appears or disappears is itself added or removed (that is where FieldsV1's `.` comes from).
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub(crate) added: Set,
    pub(crate) modified: Set,
    pub(crate) removed: Set,
}

impl Comparison {
    /// Added and modified: what a writer now owns.
    pub(crate) fn changed(&self) -> Set {
        let mut s = self.added.clone();
        s.union(&self.modified);
        s
    }
}

pub(crate) fn compare(old: &Value, new: &Value, node: Option<Node<'_>>) -> Comparison {
    let mut c = Comparison::default();
    walk_compare(Some(old), Some(new), node, &mut Vec::new(), &mut c);
    c
}

fn is_empty_container(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

fn leaf(old: Option<&Value>, new: Option<&Value>, path: &[String], c: &mut Comparison) {
    match (old, new) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        (Some(a), Some(b)) if a != b => c.modified.insert(path),
        _ => {}
    }
}

fn walk_compare(
    old: Option<&Value>,
    new: Option<&Value>,
    node: Option<Node<'_>>,
    path: &mut Vec<String>,
    c: &mut Comparison,
) {
    let container = |v: Option<&Value>| matches!(v, Some(Value::Object(_) | Value::Array(_)));
    // A `null` (Go's nil slice or map in a zero value) is present but empty.
    let (old_v, new_v) = (old.filter(|v| !v.is_null()), new.filter(|v| !v.is_null()));
    let kind_changed = match (old_v, new_v) {
        (Some(a), Some(b)) => std::mem::discriminant(a) != std::mem::discriminant(b),
        _ => false,
    };
    if kind_changed || !(container(old_v) || container(new_v)) {
        leaf(old, new, path, c);
        return;
    }
    // Both sides empty (or absent): a leaf, which keeps `{}` and `null` apart.
    if is_empty_container(old) && is_empty_container(new) {
        leaf(old, new, path, c);
        return;
    }
    let is_object = matches!(old_v.or(new_v), Some(Value::Object(_)));
    if is_object {
        if node.is_some_and(|n| n.is_atomic_map()) {
            leaf(old, new, path, c);
            return;
        }
        let empty = Map::new();
        let om = old_v.and_then(Value::as_object).unwrap_or(&empty);
        let nm = new_v.and_then(Value::as_object).unwrap_or(&empty);
        let mut keys: Vec<&String> = om.keys().chain(nm.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            path.push(field(k));
            walk_compare(
                om.get(k),
                nm.get(k),
                node.and_then(|n| n.property(k)),
                path,
                c,
            );
            path.pop();
        }
    } else {
        let list = node.map(|n| n.list_type()).unwrap_or(ListType::Atomic);
        if list == ListType::Atomic {
            leaf(old, new, path, c);
            return;
        }
        let index = |v: Option<&Value>| -> Vec<(String, Value)> {
            let mut out: Vec<(String, Value)> = Vec::new();
            for (i, item) in v
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if let Some(pe) = item_element(&list, i, item)
                    && !out.iter().any(|(p, _)| *p == pe)
                {
                    out.push((pe, item.clone()));
                }
            }
            out
        };
        let (oi, ni) = (index(old), index(new));
        let item_node = node.and_then(|n| n.items());
        let mut pes: Vec<&String> = oi.iter().chain(ni.iter()).map(|(p, _)| p).collect();
        pes.sort();
        pes.dedup();
        for pe in pes {
            let a = oi.iter().find(|(p, _)| p == pe).map(|(_, v)| v);
            let b = ni.iter().find(|(p, _)| p == pe).map(|(_, v)| v);
            path.push(pe.clone());
            if matches!(list, ListType::Map(..)) {
                walk_compare(a, b, item_node, path, c);
                // The item itself appears or disappears with its fields.
                match (a, b) {
                    (None, Some(_)) => c.added.insert(path),
                    (Some(_), None) => c.removed.insert(path),
                    _ => {}
                }
            } else {
                leaf(a, b, path, c);
            }
            path.pop();
        }
    }
    // A container that appears or disappears is itself added or removed.
    match (old, new) {
        (None, Some(_)) if !path.is_empty() => c.added.insert(path),
        (Some(_), None) if !path.is_empty() => c.removed.insert(path),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fields_v1_round_trips_members_and_children() {
        let v = json!({"f:data": {".": {}, "f:a": {}}, "f:spec": {"f:x": {}}});
        let s = Set::from_fields_v1(&v).unwrap();
        assert!(s.has_prefix(&p(&["f:data", "f:a"])));
        assert!(!s.has_prefix(&p(&["f:other"])));
        assert_eq!(s.to_fields_v1(), v);
    }

    #[test]
    fn difference_removes_exact_members_only() {
        let a = Set::from_fields_v1(&json!({"f:data": {".": {}, "f:a": {}, "f:b": {}}})).unwrap();
        let b = Set::from_fields_v1(&json!({"f:data": {"f:a": {}}})).unwrap();
        assert_eq!(
            a.difference(&b).to_fields_v1(),
            json!({"f:data": {".": {}, "f:b": {}}})
        );
        assert_eq!(
            a.intersection(&b).to_fields_v1(),
            json!({"f:data": {"f:a": {}}})
        );
    }

    #[test]
    fn paths_print_as_in_conflict_messages() {
        assert_eq!(path_string(&p(&["f:data", "f:k"])), ".data.k");
        assert_eq!(
            path_string(&p(&["f:spec", "k:{\"name\":\"web\"}", "f:image"])),
            ".spec[name=\"web\"].image"
        );
        assert_eq!(
            path_string(&p(&["f:finalizers", "v:\"a\""])),
            ".finalizers[=\"a\"]"
        );
    }

    #[test]
    fn an_added_container_is_a_member_and_an_untouched_one_is_not() {
        let c = compare(
            &json!({"spec": {"a": 1}}),
            &json!({"spec": {"a": 1, "b": {"c": 2}}}),
            None,
        );
        assert_eq!(
            c.added.to_fields_v1(),
            json!({"f:spec": {"f:b": {".": {}, "f:c": {}}}})
        );
        assert!(c.modified.is_empty() && c.removed.is_empty());
    }
}
