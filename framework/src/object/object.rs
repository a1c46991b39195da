//! [`Object`]: the trait every typed Kubernetes object implements.

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::GroupVersionKind;
use kube::core::discovery::Scope;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A Kubernetes object whose group, version, kind, plural and scope are known at compile time:
/// the Rust counterpart of apimachinery's `runtime.Object`.
///
/// Implemented for every k8s-openapi type that has an `ObjectMeta` (`Pod`, `Deployment`,
/// `CustomResourceDefinition`, …) and for every type made by `#[derive(CustomResource)]`, through
/// one blanket impl over k8s-openapi's `Resource` and `Metadata` traits. The object's metadata is
/// [`kube::Resource::meta`], a supertrait method.
///
/// # Deep copy
///
/// Go's controller-gen writes `DeepCopy` and `DeepCopyInto` for every API type, because copying
/// a Go struct shares its maps, slices and pointers. In Rust, [`Clone`] on an owned type already
/// is a deep copy (nothing is shared unless the type holds an `Rc`/`Arc`, which no API type
/// does), and [`Clone::clone_from`] is `DeepCopyInto`. So [`Object::deep_copy`] is `clone` and
/// [`Object::deep_copy_into`] is `clone_from`, under the names controller-runtime users look for.
///
/// How much of the target's memory `clone_from` reuses depends on the type: `String`, `Vec` and
/// `Option` reuse their buffers, but `#[derive(Clone)]` does not override `clone_from`, so a
/// derived struct is cloned afresh and then moved in. k8s-openapi's types derive `Clone`;
/// types made by `#[derive(CustomResource)]` implement `clone_from` field by field and reuse the
/// metadata's strings and lists, and the spec's and status's buffers as far as their own `Clone`
/// impls do.
///
/// # Example
///
/// ```
/// use k8s_openapi::api::core::v1::Pod;
/// use windlass::object::Object;
///
/// assert_eq!(Pod::KIND, "Pod");
/// assert_eq!(Pod::API_VERSION, "v1");
/// assert_eq!(Pod::PLURAL, "pods");
/// let pod = Pod::default();
/// assert_eq!(pod.gvk().kind, "Pod");
/// ```
pub trait Object:
    kube::Resource<DynamicType = ()>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The API group; empty for the core group (`Pod`, `ConfigMap`, …).
    const GROUP: &'static str;
    /// The API version within the group, such as `v1`.
    const VERSION: &'static str;
    /// The kind, such as `Deployment`.
    const KIND: &'static str;
    /// `group/version`, or just `version` for the core group.
    const API_VERSION: &'static str;
    /// The resource name in URLs (the plural, lowercase), such as `deployments`.
    const PLURAL: &'static str;
    /// Whether objects of this type live in a namespace.
    const SCOPE: Scope;

    /// The group, version and kind of this type.
    fn type_gvk() -> GroupVersionKind {
        GroupVersionKind::gvk(Self::GROUP, Self::VERSION, Self::KIND)
    }

    /// The group, version and kind of this object (the same for every value of a type).
    fn gvk(&self) -> GroupVersionKind {
        Self::type_gvk()
    }

    /// A copy that shares nothing with `self`: Go's `DeepCopy`, which is [`Clone::clone`].
    #[must_use]
    fn deep_copy(&self) -> Self {
        self.clone()
    }

    /// Overwrite `target` with a copy of `self`, reusing `target`'s allocations where it can:
    /// Go's `DeepCopyInto`, which is [`Clone::clone_from`].
    fn deep_copy_into(&self, target: &mut Self) {
        target.clone_from(self);
    }
}

/// The scope a k8s-openapi scope marker stands for. Subresource types (`Scale`, `Eviction`, …)
/// have no scope of their own and so are not [`Object`]s.
pub trait KnownScope: private::Sealed {
    /// The scope.
    const SCOPE: Scope;
}

impl KnownScope for k8s_openapi::NamespaceResourceScope {
    const SCOPE: Scope = Scope::Namespaced;
}

impl KnownScope for k8s_openapi::ClusterResourceScope {
    const SCOPE: Scope = Scope::Cluster;
}

mod private {
    pub trait Sealed {}
    impl Sealed for k8s_openapi::NamespaceResourceScope {}
    impl Sealed for k8s_openapi::ClusterResourceScope {}
}

impl<K> Object for K
where
    K: k8s_openapi::Resource + k8s_openapi::Metadata<Ty = ObjectMeta>,
    K::Scope: KnownScope,
    K: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    const GROUP: &'static str = <K as k8s_openapi::Resource>::GROUP;
    const VERSION: &'static str = <K as k8s_openapi::Resource>::VERSION;
    const KIND: &'static str = <K as k8s_openapi::Resource>::KIND;
    const API_VERSION: &'static str = <K as k8s_openapi::Resource>::API_VERSION;
    const PLURAL: &'static str = <K as k8s_openapi::Resource>::URL_PATH_SEGMENT;
    const SCOPE: Scope = <K::Scope as KnownScope>::SCOPE;
}

/// `target.clone_from(source)` for `ObjectMeta`, field by field, so the target's strings, lists
/// and maps are reused (the derived `Clone` of `ObjectMeta` would allocate them all afresh).
pub fn clone_meta_from(target: &mut ObjectMeta, source: &ObjectMeta) {
    // Destructured without `..` so a field added to ObjectMeta fails to compile here.
    let ObjectMeta {
        annotations,
        creation_timestamp,
        deletion_grace_period_seconds,
        deletion_timestamp,
        finalizers,
        generate_name,
        generation,
        labels,
        managed_fields,
        name,
        namespace,
        owner_references,
        resource_version,
        self_link,
        uid,
    } = target;
    annotations.clone_from(&source.annotations);
    creation_timestamp.clone_from(&source.creation_timestamp);
    deletion_grace_period_seconds.clone_from(&source.deletion_grace_period_seconds);
    deletion_timestamp.clone_from(&source.deletion_timestamp);
    finalizers.clone_from(&source.finalizers);
    generate_name.clone_from(&source.generate_name);
    generation.clone_from(&source.generation);
    labels.clone_from(&source.labels);
    managed_fields.clone_from(&source.managed_fields);
    name.clone_from(&source.name);
    namespace.clone_from(&source.namespace);
    owner_references.clone_from(&source.owner_references);
    resource_version.clone_from(&source.resource_version);
    self_link.clone_from(&source.self_link);
    uid.clone_from(&source.uid);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
    use k8s_openapi::api::rbac::v1::ClusterRole;
    use kube::Resource;

    use super::*;

    #[test]
    fn built_in_types_report_their_group_version_kind_plural_and_scope() {
        assert_eq!(Pod::type_gvk(), GroupVersionKind::gvk("", "v1", "Pod"));
        assert_eq!(Pod::API_VERSION, "v1");
        assert_eq!(Pod::SCOPE, Scope::Namespaced);
        assert_eq!(Deployment::GROUP, "apps");
        assert_eq!(Deployment::API_VERSION, "apps/v1");
        assert_eq!(Deployment::PLURAL, "deployments");
        assert_eq!(Namespace::SCOPE, Scope::Cluster);
        assert_eq!(ClusterRole::API_VERSION, "rbac.authorization.k8s.io/v1");
        assert_eq!(ClusterRole::SCOPE, Scope::Cluster);
    }

    #[test]
    fn gvk_on_an_instance_is_the_type_gvk() {
        let mut cm = ConfigMap::default();
        cm.meta_mut().name = Some("settings".into());
        assert_eq!(cm.gvk(), ConfigMap::type_gvk());
        assert_eq!(cm.meta().name.as_deref(), Some("settings"));
    }

    #[test]
    fn deep_copy_shares_nothing_with_the_original() {
        let original = ConfigMap {
            data: Some(BTreeMap::from([("a".into(), "1".into())])),
            ..ConfigMap::default()
        };
        let mut copy = original.deep_copy();
        copy.data.as_mut().unwrap().insert("b".into(), "2".into());
        assert_eq!(original.data.as_ref().unwrap().len(), 1);
        assert_eq!(copy.data.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn deep_copy_into_a_built_in_type_leaves_no_aliasing() {
        let mut source = ConfigMap::default();
        source.meta_mut().finalizers = Some(vec!["a".into(), "b".into()]);
        let mut target = ConfigMap::default();
        source.deep_copy_into(&mut target);
        assert_eq!(target, source);
        target.meta_mut().finalizers.as_mut().unwrap()[0] = "changed".into();
        assert_eq!(source.meta().finalizers.as_ref().unwrap()[0], "a");
    }

    #[test]
    fn clone_meta_from_copies_every_field_and_reuses_the_targets_buffers() {
        let source = ObjectMeta {
            name: Some("web".into()),
            namespace: Some("prod".into()),
            finalizers: Some(vec!["a".into(), "b".into()]),
            labels: Some(BTreeMap::from([("app".into(), "web".into())])),
            generation: Some(3),
            ..ObjectMeta::default()
        };
        let mut target = ObjectMeta {
            name: Some(String::with_capacity(128)),
            finalizers: Some(Vec::with_capacity(64)),
            uid: Some("stale".into()),
            ..ObjectMeta::default()
        };
        let name_buffer = target.name.as_ref().unwrap().as_ptr();
        let finalizers_buffer = target.finalizers.as_ref().unwrap().as_ptr();

        clone_meta_from(&mut target, &source);

        assert_eq!(target, source);
        assert_eq!(target.name.as_ref().unwrap().as_ptr(), name_buffer);
        assert!(target.name.as_ref().unwrap().capacity() >= 128);
        assert_eq!(
            target.finalizers.as_ref().unwrap().as_ptr(),
            finalizers_buffer
        );
        assert!(target.finalizers.as_ref().unwrap().capacity() >= 64);
        target.finalizers.as_mut().unwrap()[0] = "changed".into();
        assert_eq!(source.finalizers.as_ref().unwrap()[0], "a");
    }
}
