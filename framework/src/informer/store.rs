//! The cache an informer fills: objects by namespace and name, shared as `Arc`s, with named
//! indexes (e.g. by owner uid, by a field) kept up to date on every change.
//!
//! Readers get cheap clones of `Arc`s; the informer is the only writer.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use kube::Resource;
use parking_lot::RwLock;

/// Where an object lives: its namespace (none for cluster-scoped kinds) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The namespace, or `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl ObjectKey {
    /// The key of a namespaced object.
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        Self {
            namespace: namespace.map(String::from),
            name: name.to_string(),
        }
    }

    /// The key of an object, from its metadata.
    pub fn of<K: Resource>(obj: &K) -> Self {
        let meta = obj.meta();
        Self {
            namespace: meta.namespace.clone(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A function that files an object under zero or more index values.
pub type IndexFn<K> = Arc<dyn Fn(&K) -> Vec<String> + Send + Sync>;

struct Index<K> {
    func: IndexFn<K>,
    entries: HashMap<String, HashSet<ObjectKey>>,
}

struct State<K> {
    objects: HashMap<ObjectKey, Arc<K>>,
    indexes: HashMap<String, Index<K>>,
}

/// A read handle on an informer's cache. Cloning is cheap; clones see the same cache.
pub struct Store<K> {
    state: Arc<RwLock<State<K>>>,
}

impl<K> Clone for Store<K> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
        }
    }
}

impl<K> fmt::Debug for Store<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.read();
        f.debug_struct("Store")
            .field("objects", &s.objects.len())
            .field("indexes", &s.indexes.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<K: Resource> Store<K> {
    pub(crate) fn new() -> Self {
        Self {
            state: Arc::new(RwLock::new(State {
                objects: HashMap::new(),
                indexes: HashMap::new(),
            })),
        }
    }

    /// The cached object with this key.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<K>> {
        self.state.read().objects.get(key).cloned()
    }

    /// The cached object `namespace/name` (`None` namespace for cluster-scoped kinds).
    pub fn get_named(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        self.get(&ObjectKey::new(namespace, name))
    }

    /// Every cached object, in no particular order.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.state.read().objects.values().cloned().collect()
    }

    /// The cached objects of one namespace.
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        self.state
            .read()
            .objects
            .iter()
            .filter(|(k, _)| k.namespace.as_deref() == Some(namespace))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// How many objects are cached.
    pub fn len(&self) -> usize {
        self.state.read().objects.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The objects filed under `value` in the index `index`.
    ///
    /// # Errors
    ///
    /// When no index of that name was added to the informer.
    pub fn by_index(&self, index: &str, value: &str) -> Result<Vec<Arc<K>>, UnknownIndex> {
        let s = self.state.read();
        let idx = s
            .indexes
            .get(index)
            .ok_or_else(|| UnknownIndex(index.to_string()))?;
        Ok(idx
            .entries
            .get(value)
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| s.objects.get(k).cloned())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Adds a named index and files every cached object in it.
    pub(crate) fn add_index(&self, name: &str, func: IndexFn<K>) {
        let mut s = self.state.write();
        let mut entries: HashMap<String, HashSet<ObjectKey>> = HashMap::new();
        for (key, obj) in &s.objects {
            for value in func(obj) {
                entries.entry(value).or_default().insert(key.clone());
            }
        }
        s.indexes.insert(name.to_string(), Index { func, entries });
    }

    /// Stores an object, returning the one it replaced.
    pub(crate) fn upsert(&self, key: ObjectKey, obj: Arc<K>) -> Option<Arc<K>> {
        let mut s = self.state.write();
        let old = s.objects.insert(key.clone(), obj.clone());
        let State { indexes, .. } = &mut *s;
        for idx in indexes.values_mut() {
            if let Some(old) = &old {
                for value in (idx.func)(old) {
                    remove_entry(&mut idx.entries, &value, &key);
                }
            }
            for value in (idx.func)(&obj) {
                idx.entries.entry(value).or_default().insert(key.clone());
            }
        }
        old
    }

    /// Removes an object, returning it.
    pub(crate) fn remove(&self, key: &ObjectKey) -> Option<Arc<K>> {
        let mut s = self.state.write();
        let old = s.objects.remove(key)?;
        let State { indexes, .. } = &mut *s;
        for idx in indexes.values_mut() {
            for value in (idx.func)(&old) {
                remove_entry(&mut idx.entries, &value, key);
            }
        }
        Some(old)
    }

    /// The keys of every cached object.
    pub(crate) fn keys(&self) -> Vec<ObjectKey> {
        self.state.read().objects.keys().cloned().collect()
    }
}

fn remove_entry(entries: &mut HashMap<String, HashSet<ObjectKey>>, value: &str, key: &ObjectKey) {
    if let Some(set) = entries.get_mut(value) {
        set.remove(key);
        if set.is_empty() {
            entries.remove(value);
        }
    }
}

/// An index was asked for that the informer does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the informer has no index named {0:?}: add it with Informer::add_index before reading")]
pub struct UnknownIndex(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn cm(name: &str, owner: &str) -> Arc<ConfigMap> {
        let mut c = ConfigMap::default();
        c.metadata.name = Some(name.into());
        c.metadata.namespace = Some("ns".into());
        c.metadata.labels = Some([("owner".to_string(), owner.to_string())].into());
        Arc::new(c)
    }

    fn by_owner() -> IndexFn<ConfigMap> {
        Arc::new(|c: &ConfigMap| {
            c.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("owner").cloned())
                .into_iter()
                .collect()
        })
    }

    #[test]
    fn indexes_follow_updates_and_deletes() {
        let store = Store::new();
        store.add_index("owner", by_owner());
        let a = ObjectKey::new(Some("ns"), "a");
        store.upsert(a.clone(), cm("a", "x"));
        store.upsert(ObjectKey::new(Some("ns"), "b"), cm("b", "x"));
        assert_eq!(store.by_index("owner", "x").unwrap().len(), 2);
        store.upsert(a.clone(), cm("a", "y"));
        assert_eq!(store.by_index("owner", "x").unwrap().len(), 1);
        assert_eq!(store.by_index("owner", "y").unwrap().len(), 1);
        store.remove(&a);
        assert!(store.by_index("owner", "y").unwrap().is_empty());
    }

    #[test]
    fn an_index_added_later_files_existing_objects() {
        let store = Store::new();
        store.upsert(ObjectKey::new(Some("ns"), "a"), cm("a", "x"));
        store.add_index("owner", by_owner());
        assert_eq!(store.by_index("owner", "x").unwrap().len(), 1);
        assert_eq!(
            store.by_index("nope", "x").unwrap_err(),
            UnknownIndex("nope".into())
        );
    }
}
