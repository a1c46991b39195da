//! Storage: the objects of every resource, one global resourceVersion counter (like an etcd
//! revision), and a bounded per-resource history of changes from which watches resume and
//! consistent snapshots of the past are rebuilt.
//!
//! Each stored object is serialized once, when it is written; get, list and watch answers reuse
//! those bytes. The store knows nothing of HTTP, validation or per-kind rules: callers decide
//! *what* to write, the store only records it, versions it and tells watchers.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::watch;

use super::kinds::GroupResource;

/// An object's key inside its resource: (namespace, name); the namespace is empty for
/// cluster-scoped kinds. Ordered as etcd orders keys, so lists come out sorted the same way.
pub(crate) type ObjKey = (String, String);

/// One stored object: its JSON, the bytes it serializes to and the revision that wrote it.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) value: Value,
    pub(crate) bytes: Bytes,
    pub(crate) rv: u64,
}

impl Stored {
    pub(crate) fn new(value: Value, rv: u64) -> Self {
        // Serializing a `Value` cannot fail: its map keys are strings.
        let bytes = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Self { value, bytes, rv }
    }

    pub(crate) fn uid(&self) -> Option<&str> {
        self.value.pointer("/metadata/uid").and_then(Value::as_str)
    }
}

/// The type of a change, as watch events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change in a resource's history.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) rv: u64,
    pub(crate) kind: EventType,
    pub(crate) key: ObjKey,
    /// The state after the change; for a deletion, the last state stamped with the deletion's
    /// revision (what a DELETED watch event carries).
    pub(crate) object: Arc<Stored>,
    /// The state before the change (none for a creation).
    pub(crate) prev: Option<Arc<Stored>>,
}

/// A resourceVersion older than the kept history was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooOld {
    /// The oldest revision a watch can still resume from (or a snapshot be rebuilt at): what
    /// the watch cache's "too old resource version: N (M)" reports as M.
    pub(crate) oldest: u64,
}

#[derive(Debug)]
pub(crate) struct ResourceStore {
    objects: BTreeMap<ObjKey, Arc<Stored>>,
    history: VecDeque<Arc<Event>>,
    /// Every change with a revision ≤ this is no longer in `history`.
    compacted: u64,
    changed: watch::Sender<u64>,
    /// Which incarnation of the resource this is: a CRD deleted and created again serves a
    /// new one, and watches of the old one end.
    incarnation: u64,
    /// No longer served (its CRD is gone): the objects are gone, and watches drain the
    /// history they have not read yet (the custom resources' DELETED events), then end.
    closed: bool,
}

impl ResourceStore {
    fn new(compacted: u64, incarnation: u64) -> Self {
        Self {
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            compacted,
            changed: watch::Sender::new(compacted),
            incarnation,
            closed: false,
        }
    }

    pub(crate) fn incarnation(&self) -> u64 {
        self.incarnation
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn len(&self) -> usize {
        self.objects.len()
    }

    /// The changes after revision `after`, oldest first.
    pub(crate) fn events_after(&self, after: u64) -> Result<Vec<Arc<Event>>, TooOld> {
        if after < self.compacted {
            return Err(TooOld {
                oldest: self.compacted,
            });
        }
        let start = self.history.partition_point(|e| e.rv <= after);
        Ok(self.history.range(start..).cloned().collect())
    }

    /// The objects as they were at revision `at`, in key order, starting after `after`.
    pub(crate) fn snapshot(
        &self,
        at: u64,
        after: Option<&ObjKey>,
        namespace: Option<&str>,
    ) -> Result<Snapshot<'_>, TooOld> {
        // The state at `at` is the current state with every later change undone: for each key
        // changed since, its state before the first such change.
        let mut overlay: BTreeMap<ObjKey, Option<Arc<Stored>>> = BTreeMap::new();
        for e in self.events_after(at)? {
            overlay
                .entry(e.key.clone())
                .or_insert_with(|| e.prev.clone());
        }
        Ok(Snapshot {
            store: self,
            overlay,
            after: after.cloned(),
            namespace: namespace.map(String::from),
        })
    }

    pub(crate) fn objects(&self) -> &BTreeMap<ObjKey, Arc<Stored>> {
        &self.objects
    }
}

/// A consistent view of one resource at a past (or the current) revision.
#[derive(Debug)]
pub(crate) struct Snapshot<'a> {
    store: &'a ResourceStore,
    overlay: BTreeMap<ObjKey, Option<Arc<Stored>>>,
    after: Option<ObjKey>,
    namespace: Option<String>,
}

impl Snapshot<'_> {
    /// The objects of the snapshot in key order (namespace, then name).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&ObjKey, &Arc<Stored>)> + '_ {
        let lower: Bound<ObjKey> = match (&self.after, &self.namespace) {
            (Some(k), _) => Bound::Excluded(k.clone()),
            (None, Some(ns)) => Bound::Included((ns.clone(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        let ns = self.namespace.clone();
        let mut current = self
            .store
            .objects
            .range((lower.clone(), Bound::Unbounded))
            .peekable();
        let mut overlay = self.overlay.range((lower, Bound::Unbounded)).peekable();
        std::iter::from_fn(move || {
            loop {
                let next = match (current.peek(), overlay.peek()) {
                    (None, None) => return None,
                    (Some(_), None) => current.next().map(|(k, v)| (k, Some(v))),
                    (None, Some(_)) => overlay.next().map(|(k, v)| (k, v.as_ref())),
                    (Some((ck, _)), Some((ok, _))) => {
                        if ck < ok {
                            current.next().map(|(k, v)| (k, Some(v)))
                        } else {
                            if ck == ok {
                                current.next();
                            }
                            overlay.next().map(|(k, v)| (k, v.as_ref()))
                        }
                    }
                };
                let (key, value) = next?;
                if let Some(ns) = &ns
                    && &key.0 != ns
                {
                    return None;
                }
                if let Some(v) = value {
                    return Some((key, v));
                }
            }
        })
    }
}

/// A change made by one write, for the caller to act on after the write (garbage collection,
/// CRD bookkeeping).
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub(crate) event: Arc<Event>,
}

/// The whole store. Lives behind one mutex: writes are serialized, which is what gives the
/// single, strictly increasing revision order a real etcd gives.
#[derive(Debug)]
pub(crate) struct Store {
    revision: u64,
    resources: HashMap<GroupResource, ResourceStore>,
    uids: HashMap<String, (GroupResource, ObjKey)>,
    /// Owner uid → the objects whose ownerReferences name it.
    dependents: HashMap<String, HashSet<(GroupResource, ObjKey)>>,
    history_limit: usize,
    /// How many resource incarnations were created (see `ResourceStore::incarnation`).
    incarnations: u64,
    /// The current revision, for readers waiting on a resourceVersion from the future.
    revision_tx: watch::Sender<u64>,
    /// Where every committed change is also sent (the background controllers).
    on_change: Option<tokio::sync::mpsc::UnboundedSender<(GroupResource, Arc<Event>)>>,
}

impl Store {
    pub(crate) fn new(history_limit: usize) -> Self {
        Self {
            revision: 1,
            resources: HashMap::new(),
            uids: HashMap::new(),
            dependents: HashMap::new(),
            history_limit: history_limit.max(1),
            incarnations: 0,
            revision_tx: watch::Sender::new(1),
            on_change: None,
        }
    }

    /// Sends every committed change to `tx` as well.
    pub(crate) fn set_change_sink(
        &mut self,
        tx: tokio::sync::mpsc::UnboundedSender<(GroupResource, Arc<Event>)>,
    ) {
        self.on_change = Some(tx);
    }

    pub(crate) fn subscribe_revision(&self) -> watch::Receiver<u64> {
        self.revision_tx.subscribe()
    }

    /// The current revision: the resourceVersion a list made now reports.
    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    pub(crate) fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit.max(1);
    }

    pub(crate) fn resource(&mut self, gr: &GroupResource) -> &mut ResourceStore {
        if self.resources.get(gr).is_none_or(|rs| rs.closed) {
            self.incarnations += 1;
            // A resource written for the first time has lost no history: a watch from any
            // earlier revision (an empty list made before the write, say) must see the write.
            // Only a new incarnation (a CRD deleted and created again) forgets the old one's.
            let compacted = if self.resources.contains_key(gr) {
                self.revision
            } else {
                0
            };
            let fresh = ResourceStore::new(compacted, self.incarnations);
            if let Some(old) = self.resources.insert(gr.clone(), fresh) {
                // Watches still draining the old incarnation end now.
                old.changed.send_replace(u64::MAX);
            }
        }
        self.resources
            .entry(gr.clone())
            .or_insert_with(|| ResourceStore::new(0, 0))
    }

    pub(crate) fn resource_ref(&self, gr: &GroupResource) -> Option<&ResourceStore> {
        self.resources.get(gr)
    }

    pub(crate) fn get(&self, gr: &GroupResource, key: &ObjKey) -> Option<Arc<Stored>> {
        self.resources.get(gr)?.objects.get(key).cloned()
    }

    /// Where the object with this uid lives, if it exists.
    pub(crate) fn by_uid(&self, uid: &str) -> Option<(GroupResource, ObjKey)> {
        self.uids.get(uid).cloned()
    }

    /// The objects that name `owner_uid` in their ownerReferences.
    pub(crate) fn dependents_of(&self, owner_uid: &str) -> Vec<(GroupResource, ObjKey)> {
        let mut out: Vec<_> = self
            .dependents
            .get(owner_uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    pub(crate) fn subscribe(&mut self, gr: &GroupResource) -> watch::Receiver<u64> {
        self.resource(gr).changed.subscribe()
    }

    /// Writes `value` (creating or replacing) at a new revision, stamping its resourceVersion.
    pub(crate) fn put(&mut self, gr: &GroupResource, key: ObjKey, mut value: Value) -> Written {
        self.revision += 1;
        let rv = self.revision;
        set_resource_version(&mut value, rv);
        let stored = Arc::new(Stored::new(value, rv));
        let prev = self
            .resource(gr)
            .objects
            .insert(key.clone(), stored.clone());
        self.unindex(gr, &key, prev.as_deref());
        self.index(gr, &key, &stored);
        let kind = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(
            gr,
            Event {
                rv,
                kind,
                key,
                object: stored,
                prev,
            },
        )
    }

    /// Removes an object at a new revision; the DELETED event carries its last stored state
    /// stamped with the deletion's revision, as etcd's previous value is.
    pub(crate) fn remove(&mut self, gr: &GroupResource, key: &ObjKey) -> Option<Written> {
        let prev = self.resources.get_mut(gr)?.objects.remove(key)?;
        self.revision += 1;
        let rv = self.revision;
        self.unindex(gr, key, Some(&prev));
        let mut last = prev.value.clone();
        set_resource_version(&mut last, rv);
        let object = Arc::new(Stored::new(last, rv));
        Some(self.record(
            gr,
            Event {
                rv,
                kind: EventType::Deleted,
                key: key.clone(),
                object,
                prev: Some(prev),
            },
        ))
    }

    /// Drops a whole resource's storage (its CRD is gone). Watchers see the history end.
    pub(crate) fn drop_resource(&mut self, gr: &GroupResource) {
        let Some(rs) = self.resources.get_mut(gr) else {
            return;
        };
        let objects = std::mem::take(&mut rs.objects);
        rs.closed = true;
        let at = *rs.changed.borrow();
        rs.changed.send_replace(at);
        for (key, obj) in &objects {
            self.unindex(gr, key, Some(obj));
        }
    }

    /// Forgets all history, so every watch or snapshot from an older revision answers 410.
    pub(crate) fn compact_all(&mut self) {
        let rev = self.revision;
        for rs in self.resources.values_mut() {
            rs.history.clear();
            rs.compacted = rev;
        }
    }

    fn record(&mut self, gr: &GroupResource, event: Event) -> Written {
        let limit = self.history_limit;
        let event = Arc::new(event);
        let rs = self.resource(gr);
        rs.history.push_back(event.clone());
        while rs.history.len() > limit {
            if let Some(old) = rs.history.pop_front() {
                rs.compacted = old.rv;
            }
        }
        rs.changed.send_replace(event.rv);
        self.revision_tx.send_replace(event.rv);
        if let Some(tx) = &self.on_change {
            // The receiver only goes away with the server; nothing to do then.
            let _ = tx.send((gr.clone(), event.clone()));
        }
        Written { event }
    }

    fn index(&mut self, gr: &GroupResource, key: &ObjKey, obj: &Stored) {
        if let Some(uid) = obj.uid() {
            self.uids.insert(uid.to_string(), (gr.clone(), key.clone()));
        }
        for owner in owner_uids(&obj.value) {
            self.dependents
                .entry(owner)
                .or_default()
                .insert((gr.clone(), key.clone()));
        }
    }

    fn unindex(&mut self, gr: &GroupResource, key: &ObjKey, obj: Option<&Stored>) {
        let Some(obj) = obj else { return };
        if let Some(uid) = obj.uid()
            && self.uids.get(uid).is_some_and(|(g, k)| g == gr && k == key)
        {
            self.uids.remove(uid);
        }
        for owner in owner_uids(&obj.value) {
            if let Some(set) = self.dependents.get_mut(&owner) {
                set.remove(&(gr.clone(), key.clone()));
                if set.is_empty() {
                    self.dependents.remove(&owner);
                }
            }
        }
    }
}

fn set_resource_version(value: &mut Value, rv: u64) {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

/// The uids an object's ownerReferences point at.
pub(crate) fn owner_uids(value: &Value) -> Vec<String> {
    value
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gr() -> GroupResource {
        GroupResource {
            group: String::new(),
            resource: "configmaps".into(),
        }
    }

    fn key(name: &str) -> ObjKey {
        ("default".into(), name.into())
    }

    fn cm(name: &str, v: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")}, "data": {"v": v}})
    }

    fn names(s: &Snapshot<'_>) -> Vec<String> {
        s.iter()
            .map(|(k, o)| format!("{}={}", k.1, o.value["data"]["v"].as_str().unwrap()))
            .collect()
    }

    #[test]
    fn a_watch_from_before_a_resources_first_write_sees_that_write() {
        let mut s = Store::new(100);
        let other = GroupResource {
            group: "apps".into(),
            resource: "deployments".into(),
        };
        s.put(&other, key("d"), json!({"metadata": {"name": "d"}}));
        // An empty list of configmaps reports the current revision; a watch resumes from it.
        let listed = s.revision();
        let written = s.put(&gr(), key("a"), cm("a", "1")).event.rv;
        let events = s
            .resource_ref(&gr())
            .unwrap()
            .events_after(listed)
            .expect("nothing was compacted");
        assert_eq!(events.iter().map(|e| e.rv).collect::<Vec<_>>(), [written]);
    }

    #[test]
    fn revisions_are_global_and_strictly_increasing() {
        let mut s = Store::new(100);
        let a = s.put(&gr(), key("a"), cm("a", "1")).event.rv;
        let other = GroupResource {
            group: "apps".into(),
            resource: "deployments".into(),
        };
        let b = s
            .put(&other, key("d"), json!({"metadata": {"name": "d"}}))
            .event
            .rv;
        let c = s.put(&gr(), key("a"), cm("a", "2")).event.rv;
        assert!(a < b && b < c);
        assert_eq!(
            s.get(&gr(), &key("a")).unwrap().value["metadata"]["resourceVersion"],
            c.to_string()
        );
    }

    #[test]
    fn snapshot_at_a_past_revision_undoes_later_changes() {
        let mut s = Store::new(100);
        s.put(&gr(), key("a"), cm("a", "1"));
        let at = s.put(&gr(), key("b"), cm("b", "1")).event.rv;
        s.put(&gr(), key("a"), cm("a", "2"));
        s.remove(&gr(), &key("b"));
        s.put(&gr(), key("c"), cm("c", "1"));
        let rs = s.resource_ref(&gr()).unwrap();
        assert_eq!(names(&rs.snapshot(at, None, None).unwrap()), ["a=1", "b=1"]);
        assert_eq!(
            names(&rs.snapshot(s.revision(), None, None).unwrap()),
            ["a=2", "c=1"]
        );
        assert_eq!(
            names(&rs.snapshot(at, Some(&key("a")), None).unwrap()),
            ["b=1"]
        );
    }

    #[test]
    fn history_past_the_limit_is_too_old() {
        let mut s = Store::new(2);
        let first = s.put(&gr(), key("a"), cm("a", "1")).event.rv;
        s.put(&gr(), key("a"), cm("a", "2"));
        s.put(&gr(), key("a"), cm("a", "3"));
        let rs = s.resource_ref(&gr()).unwrap();
        assert!(rs.events_after(first).is_ok());
        assert_eq!(
            rs.events_after(first - 1).unwrap_err(),
            TooOld { oldest: first }
        );
    }

    #[test]
    fn deleted_events_carry_the_last_state_at_the_deletion_revision() {
        let mut s = Store::new(10);
        s.put(&gr(), key("a"), cm("a", "1"));
        let w = s.remove(&gr(), &key("a")).unwrap();
        assert_eq!(w.event.kind, EventType::Deleted);
        assert_eq!(
            w.event.object.value["metadata"]["resourceVersion"],
            w.event.rv.to_string()
        );
        assert_eq!(w.event.object.value["data"]["v"], "1");
        assert!(s.by_uid("uid-a").is_none());
    }

    #[test]
    fn dependents_are_indexed_by_owner_uid() {
        let mut s = Store::new(10);
        let mut child = cm("child", "1");
        child["metadata"]["ownerReferences"] = json!([{"uid": "owner-1"}]);
        s.put(&gr(), key("child"), child);
        assert_eq!(s.dependents_of("owner-1"), vec![(gr(), key("child"))]);
        s.remove(&gr(), &key("child"));
        assert!(s.dependents_of("owner-1").is_empty());
    }
}
