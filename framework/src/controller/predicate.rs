//! Event predicates: which updates of an object are worth a reconcile.
//!
//! A predicate sees the old and new version of an updated object and says whether the change
//! should be reconciled. Additions and deletions always pass. Combine predicates with
//! [`and`], [`or`] and [`not`], or write a closure `|old: &K, new: &K| -> bool`.

use std::fmt;
use std::sync::Arc;

use kube::Resource;

/// Decides whether an update is reconciled.
pub trait Predicate<K>: Send + Sync {
    /// Whether the change from `old` to `new` should be reconciled.
    fn allows(&self, old: &K, new: &K) -> bool;
}

/// Both predicates must allow the change.
pub fn and<A, B>(a: A, b: B) -> And<A, B> {
    And(a, b)
}

/// Either predicate may allow the change.
pub fn or<A, B>(a: A, b: B) -> Or<A, B> {
    Or(a, b)
}

impl<K, F> Predicate<K> for F
where
    F: Fn(&K, &K) -> bool + Send + Sync,
{
    fn allows(&self, old: &K, new: &K) -> bool {
        self(old, new)
    }
}

impl<K> Predicate<K> for Arc<dyn Predicate<K>> {
    fn allows(&self, old: &K, new: &K) -> bool {
        (**self).allows(old, new)
    }
}

/// `metadata.generation` changed: the spec changed (status-only and metadata-only writes are
/// ignored). Kinds without a generation never pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenerationChanged;

impl<K: Resource> Predicate<K> for GenerationChanged {
    fn allows(&self, old: &K, new: &K) -> bool {
        old.meta().generation != new.meta().generation
    }
}

/// `metadata.resourceVersion` changed: any write at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceVersionChanged;

impl<K: Resource> Predicate<K> for ResourceVersionChanged {
    fn allows(&self, old: &K, new: &K) -> bool {
        old.meta().resource_version != new.meta().resource_version
    }
}

/// The labels changed.
#[derive(Debug, Clone, Copy, Default)]
pub struct LabelsChanged;

impl<K: Resource> Predicate<K> for LabelsChanged {
    fn allows(&self, old: &K, new: &K) -> bool {
        old.meta().labels != new.meta().labels
    }
}

/// The annotations changed.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnnotationsChanged;

impl<K: Resource> Predicate<K> for AnnotationsChanged {
    fn allows(&self, old: &K, new: &K) -> bool {
        old.meta().annotations != new.meta().annotations
    }
}

/// See [`and`].
#[derive(Debug, Clone, Copy)]
pub struct And<A, B>(A, B);

impl<K, A: Predicate<K>, B: Predicate<K>> Predicate<K> for And<A, B> {
    fn allows(&self, old: &K, new: &K) -> bool {
        self.0.allows(old, new) && self.1.allows(old, new)
    }
}

/// See [`or`].
#[derive(Debug, Clone, Copy)]
pub struct Or<A, B>(A, B);

impl<K, A: Predicate<K>, B: Predicate<K>> Predicate<K> for Or<A, B> {
    fn allows(&self, old: &K, new: &K) -> bool {
        self.0.allows(old, new) || self.1.allows(old, new)
    }
}

/// The opposite of a predicate.
pub fn not<P>(predicate: P) -> Not<P> {
    Not(predicate)
}

/// See [`not`].
#[derive(Clone, Copy)]
pub struct Not<P>(P);

impl<P> fmt::Debug for Not<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Not(..)")
    }
}

impl<K, P: Predicate<K>> Predicate<K> for Not<P> {
    fn allows(&self, old: &K, new: &K) -> bool {
        !self.0.allows(old, new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;

    fn deploy(generation: i64, label: &str) -> Deployment {
        let mut d = Deployment::default();
        d.metadata.generation = Some(generation);
        d.metadata.labels = Some([("l".to_string(), label.to_string())].into());
        d
    }

    #[test]
    fn generation_changed_ignores_metadata_only_writes() {
        assert!(!GenerationChanged.allows(&deploy(1, "a"), &deploy(1, "b")));
        assert!(GenerationChanged.allows(&deploy(1, "a"), &deploy(2, "a")));
    }

    #[test]
    fn predicates_combine() {
        let either = or(GenerationChanged, LabelsChanged);
        assert!(either.allows(&deploy(1, "a"), &deploy(1, "b")));
        let both = and(GenerationChanged, LabelsChanged);
        assert!(!both.allows(&deploy(1, "a"), &deploy(2, "a")));
        assert!(not(GenerationChanged).allows(&deploy(1, "a"), &deploy(1, "a")));
        let custom = |_: &Deployment, new: &Deployment| new.metadata.generation == Some(3);
        assert!(custom.allows(&deploy(1, "a"), &deploy(3, "a")));
    }
}
