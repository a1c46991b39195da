//! Owner references: which objects a controller's children belong to.
//!
//! A child with an owner reference is garbage collected when its owner is deleted; a child
//! whose reference is the *controller* reference (at most one per child) also tells windlass's
//! [`Controller::owns`](crate::controller::Controller::owns) which object to reconcile when
//! the child changes. These are controller-runtime's `controllerutil` helpers:
//! [`set_controller_reference`] (which refuses to steal a child another controller owns),
//! [`set_owner_reference`], [`remove_owner_reference`], [`has_controller_reference`], and
//! [`owner_reference`] / [`controller_reference`] to build the reference to any [`Object`].
//!
//! References are built with `blockOwnerDeletion: true`, so a foreground deletion of the
//! owner waits for its children. On clusters with the `OwnerReferencesPermissionEnforcement`
//! admission plugin that needs `update` on the owner's `finalizers` subresource, which the
//! generated roles ([`rbac`](crate::rbac)) grant to controllers that own children.
//!
//! This module edits objects in memory; writing them is up to the caller (see
//! [`apply`](crate::apply)).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::core::discovery::Scope;

use crate::object::Object;

/// Why an owner reference could not be built or set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OwnerError {
    /// The owner has no name or uid yet: only objects read back from the API server can own
    /// others.
    #[error("the owner {kind} {name:?} has no uid; use the object as the API server returned it")]
    OwnerNotStored {
        /// The owner's kind.
        kind: String,
        /// The owner's name, if it has one.
        name: String,
    },
    /// Another object is already the child's controller.
    #[error(
        "{child_kind} {child:?} is already controlled by {owner_kind} {owner:?}; \
         an object has at most one controller"
    )]
    AlreadyOwned {
        /// The child's kind.
        child_kind: String,
        /// The child's name.
        child: String,
        /// The kind of the current controller.
        owner_kind: String,
        /// The name of the current controller.
        owner: String,
    },
    /// The owner cannot own the child across namespaces (owner references name no
    /// namespace: a namespaced owner must be in the child's namespace, and cannot own a
    /// cluster-scoped child).
    #[error("{owner} cannot own {child}; owner references do not cross namespaces")]
    CrossNamespace {
        /// The owner, with its kind and namespace.
        owner: String,
        /// The child, with its kind and where it lives.
        child: String,
    },
}

fn build<O: Object>(owner: &O, controller: bool) -> Result<OwnerReference, OwnerError> {
    let meta = owner.meta();
    match (&meta.name, &meta.uid) {
        (Some(name), Some(uid)) => Ok(OwnerReference {
            api_version: O::API_VERSION.to_string(),
            kind: O::KIND.to_string(),
            name: name.clone(),
            uid: uid.clone(),
            controller: controller.then_some(true),
            block_owner_deletion: Some(true),
        }),
        _ => Err(OwnerError::OwnerNotStored {
            kind: O::KIND.to_string(),
            name: meta.name.clone().unwrap_or_default(),
        }),
    }
}

/// The (non-controller) owner reference to `owner`, with `blockOwnerDeletion: true`.
///
/// # Errors
///
/// [`OwnerError::OwnerNotStored`] if `owner` has no name or uid.
pub fn owner_reference<O: Object>(owner: &O) -> Result<OwnerReference, OwnerError> {
    build(owner, false)
}

/// The controller reference to `owner` (`controller: true`, `blockOwnerDeletion: true`).
///
/// # Errors
///
/// [`OwnerError::OwnerNotStored`] if `owner` has no name or uid.
pub fn controller_reference<O: Object>(owner: &O) -> Result<OwnerReference, OwnerError> {
    build(owner, true)
}

/// The API group of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
fn group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// Whether `reference` refers to the object `other` refers to: the same group, kind and name
/// (any version of the group, as controller-runtime compares them; a uid is not compared, so
/// a reference to a deleted and recreated owner is replaced rather than duplicated).
fn same_object(reference: &OwnerReference, other: &OwnerReference) -> bool {
    group(&reference.api_version) == group(&other.api_version)
        && reference.kind == other.kind
        && reference.name == other.name
}

fn check_namespaces<O: Object, C: Object>(owner: &O, child: &C) -> Result<(), OwnerError> {
    let Some(owner_namespace) = owner.meta().namespace.as_deref() else {
        return Ok(()); // cluster-scoped owners may own anything
    };
    let child_where = match (C::SCOPE, child.meta().namespace.as_deref()) {
        (Scope::Cluster, _) => "(cluster-scoped)".to_string(),
        (Scope::Namespaced, Some(ns)) if ns != owner_namespace => format!("in namespace {ns:?}"),
        _ => return Ok(()),
    };
    let name = |m: &ObjectMeta| m.name.clone().unwrap_or_default();
    Err(OwnerError::CrossNamespace {
        owner: format!(
            "{} {:?} in namespace {owner_namespace:?}",
            O::KIND,
            name(owner.meta())
        ),
        child: format!("{} {:?} {child_where}", C::KIND, name(child.meta())),
    })
}

fn upsert<C: Object>(child: &mut C, reference: OwnerReference) {
    let refs = child
        .meta_mut()
        .owner_references
        .get_or_insert_with(Vec::new);
    match refs.iter_mut().find(|r| same_object(r, &reference)) {
        Some(existing) => *existing = reference,
        None => refs.push(reference),
    }
}

/// Makes `owner` the controller of `child` (controller-runtime's `SetControllerReference`):
/// adds the controller reference, or updates it when `owner` already is the controller.
/// `child` is then garbage collected with `owner`, and its changes reconcile `owner` in a
/// controller that [`owns`](crate::controller::Controller::owns) its kind.
///
/// # Errors
///
/// [`OwnerError::AlreadyOwned`] if another object controls `child`;
/// [`OwnerError::CrossNamespace`] if the reference would cross namespaces;
/// [`OwnerError::OwnerNotStored`] if `owner` has no uid.
///
/// # Example
///
/// ```
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use windlass::owner::{has_controller_reference, set_controller_reference};
///
/// let mut owner = ConfigMap::default();
/// owner.metadata.name = Some("settings".into());
/// owner.metadata.uid = Some("6d1c8b5e".into());
/// let mut child = ConfigMap::default();
///
/// set_controller_reference(&owner, &mut child)?;
/// assert!(has_controller_reference(&child));
/// # Ok::<(), windlass::owner::OwnerError>(())
/// ```
pub fn set_controller_reference<O: Object, C: Object>(
    owner: &O,
    child: &mut C,
) -> Result<(), OwnerError> {
    let reference = controller_reference(owner)?;
    check_namespaces(owner, child)?;
    if let Some(current) = controller_of(child)
        && !same_object(current, &reference)
    {
        return Err(OwnerError::AlreadyOwned {
            child_kind: C::KIND.to_string(),
            child: child.meta().name.clone().unwrap_or_default(),
            owner_kind: current.kind.clone(),
            owner: current.name.clone(),
        });
    }
    upsert(child, reference);
    Ok(())
}

/// Makes `owner` an owner of `child` without making it the controller (controller-runtime's
/// `SetOwnerReference`): `child` is garbage collected once all its owners are gone. When
/// `owner` already is the controller of `child`, it stays the controller.
///
/// # Errors
///
/// [`OwnerError::CrossNamespace`] if the reference would cross namespaces;
/// [`OwnerError::OwnerNotStored`] if `owner` has no uid.
pub fn set_owner_reference<O: Object, C: Object>(
    owner: &O,
    child: &mut C,
) -> Result<(), OwnerError> {
    let mut reference = owner_reference(owner)?;
    check_namespaces(owner, child)?;
    if controller_of(child).is_some_and(|c| same_object(c, &reference)) {
        reference.controller = Some(true);
    }
    upsert(child, reference);
    Ok(())
}

/// Removes `owner`'s reference (controller or not) from `child`; returns whether there was
/// one. An owner without a name matches nothing.
pub fn remove_owner_reference<O: Object, C: Object>(owner: &O, child: &mut C) -> bool {
    let Some(name) = owner.meta().name.as_deref() else {
        return false;
    };
    let Some(refs) = child.meta_mut().owner_references.as_mut() else {
        return false;
    };
    let before = refs.len();
    refs.retain(|r| !(group(&r.api_version) == O::GROUP && r.kind == O::KIND && r.name == name));
    let removed = refs.len() != before;
    if refs.is_empty() {
        child.meta_mut().owner_references = None;
    }
    removed
}

/// Whether any object controls `child` (controller-runtime's `HasControllerReference`).
pub fn has_controller_reference<C: Object>(child: &C) -> bool {
    controller_of(child).is_some()
}

/// The controller reference of `child`, if it has one.
pub fn controller_of<C: kube::Resource>(child: &C) -> Option<&OwnerReference> {
    child
        .meta()
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// Whether `owner` is the controller of `child` (same group, kind, name and uid).
pub fn is_controlled_by<O: Object, C: kube::Resource>(child: &C, owner: &O) -> bool {
    controller_of(child).is_some_and(|r| {
        group(&r.api_version) == O::GROUP
            && r.kind == O::KIND
            && Some(&r.name) == owner.meta().name.as_ref()
            && Some(&r.uid) == owner.meta().uid.as_ref()
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};

    use super::*;

    fn stored<K: Object + Default>(name: &str, uid: &str, ns: Option<&str>) -> K {
        let mut obj = K::default();
        obj.meta_mut().name = Some(name.into());
        obj.meta_mut().uid = Some(uid.into());
        obj.meta_mut().namespace = ns.map(Into::into);
        obj
    }

    #[test]
    fn a_controller_reference_blocks_owner_deletion_and_names_the_owner() {
        let owner: Deployment = stored("web", "u1", Some("default"));
        let r = controller_reference(&owner).unwrap();
        assert_eq!(
            (r.api_version.as_str(), r.kind.as_str(), r.name.as_str()),
            ("apps/v1", "Deployment", "web")
        );
        assert_eq!(
            (r.controller, r.block_owner_deletion),
            (Some(true), Some(true))
        );
        let plain = owner_reference(&owner).unwrap();
        assert_eq!(
            (plain.controller, plain.block_owner_deletion),
            (None, Some(true))
        );
    }

    #[test]
    fn an_owner_without_a_uid_cannot_own() {
        let owner = ConfigMap::default();
        let mut child = ConfigMap::default();
        assert!(matches!(
            set_controller_reference(&owner, &mut child),
            Err(OwnerError::OwnerNotStored { .. })
        ));
    }

    #[test]
    fn setting_the_controller_twice_keeps_one_reference() {
        let owner: ConfigMap = stored("a", "u1", Some("default"));
        let mut child: ConfigMap = stored("c", "u2", Some("default"));
        set_controller_reference(&owner, &mut child).unwrap();
        set_controller_reference(&owner, &mut child).unwrap();
        assert_eq!(child.metadata.owner_references.as_ref().unwrap().len(), 1);
        assert!(is_controlled_by(&child, &owner));
    }

    #[test]
    fn a_second_controller_is_refused_and_the_child_is_left_alone() {
        let first: ConfigMap = stored("a", "u1", Some("default"));
        let second: ConfigMap = stored("b", "u3", Some("default"));
        let mut child: ConfigMap = stored("c", "u2", Some("default"));
        set_controller_reference(&first, &mut child).unwrap();
        let before = child.clone();
        let err = set_controller_reference(&second, &mut child).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"ConfigMap "c" is already controlled by ConfigMap "a"; an object has at most one controller"#
        );
        assert_eq!(child, before);
        // A plain owner reference is still allowed next to the controller.
        set_owner_reference(&second, &mut child).unwrap();
        assert_eq!(child.metadata.owner_references.as_ref().unwrap().len(), 2);
        assert!(is_controlled_by(&child, &first));
    }

    #[test]
    fn an_owner_reference_to_the_controller_keeps_it_the_controller() {
        let owner: ConfigMap = stored("a", "u1", Some("default"));
        let mut child: ConfigMap = stored("c", "u2", Some("default"));
        set_controller_reference(&owner, &mut child).unwrap();
        set_owner_reference(&owner, &mut child).unwrap();
        assert!(is_controlled_by(&child, &owner));
        assert_eq!(child.metadata.owner_references.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn references_do_not_cross_namespaces() {
        let owner: ConfigMap = stored("a", "u1", Some("team-a"));
        let mut elsewhere: ConfigMap = stored("c", "u2", Some("team-b"));
        assert!(matches!(
            set_controller_reference(&owner, &mut elsewhere),
            Err(OwnerError::CrossNamespace { .. })
        ));
        let mut cluster: Namespace = stored("ns", "u3", None);
        let err = set_owner_reference(&owner, &mut cluster).unwrap_err();
        assert!(err.to_string().contains("(cluster-scoped)"), "{err}");
        // A cluster-scoped owner may own a namespaced child.
        let ns_owner: Namespace = stored("team-a", "u4", None);
        set_controller_reference(&ns_owner, &mut elsewhere).unwrap();
    }

    #[test]
    fn removing_an_owner_reference_drops_only_that_owner() {
        let a: ConfigMap = stored("a", "u1", Some("default"));
        let b: ConfigMap = stored("b", "u3", Some("default"));
        let mut child: ConfigMap = stored("c", "u2", Some("default"));
        set_controller_reference(&a, &mut child).unwrap();
        set_owner_reference(&b, &mut child).unwrap();
        assert!(remove_owner_reference(&a, &mut child));
        assert!(!has_controller_reference(&child));
        assert!(!remove_owner_reference(&a, &mut child));
        assert!(remove_owner_reference(&b, &mut child));
        assert_eq!(child.metadata.owner_references, None);
    }
}
