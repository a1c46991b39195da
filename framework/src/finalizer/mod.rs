//! Finalizers and cleanup: what keeps an object around until its controller has cleaned up
//! after it.
//!
//! A reconciler that must undo something when its object goes away (delete a cloud resource,
//! deregister from an external system, remove files) implements [`Cleanup`], and its
//! controller is built with [`Controller::with_cleanup`](crate::controller::Controller::with_cleanup).
//! The controller then manages one finalizer, named after the controller
//! ([`finalizer_name`]):
//!
//! 1. before the first reconcile of an object acts, the finalizer is added (a JSON patch that
//!    tests the current list first, so concurrent writers never lose each other's finalizers);
//! 2. when the object is deleted, the API server only marks it (`deletionTimestamp`) while the
//!    finalizer is on it, and the controller calls [`Cleanup::cleanup`] instead of
//!    `reconcile`;
//! 3. only when cleanup reports [`CleanupStatus::Done`] is the finalizer removed, and the API
//!    server then deletes the object. A cleanup error backs off and retries like a reconcile
//!    error; the object is never released before its cleanup succeeded.
//!
//! A controller without cleanup adds no finalizer.
//!
//! This module also has the in-memory helpers controller-runtime's `controllerutil` offers
//! ([`contains_finalizer`], [`add_finalizer`], [`remove_finalizer`]) for reconcilers that
//! manage other finalizers by hand. It does not own the control loop that calls cleanup (see
//! [`controller`](crate::controller)).
//!
//! # Why not kube-runtime's `finalizer` helper
//!
//! The protocol is the same as kube-runtime's `finalizer::finalizer` (the same JSON patches,
//! tested against the current list), but the helper is not used: it returns kube-runtime's
//! `Action` (opaque, so it cannot be turned into windlass's), wraps the reconciler's error in
//! its own generic error type (which would change what [`Reconciler::on_error`] sees), and
//! ends the reconcile after adding the finalizer, waiting for the watch to bring the object
//! back. windlass adds the finalizer and reconciles the patched object in the same pass.
//!
//! [`Reconciler::on_error`]: crate::controller::Reconciler::on_error

mod cleanup;

pub use cleanup::{Cleanup, CleanupError, CleanupStatus, Finalized};

use kube::Resource;

/// The domain that prefixes the finalizer of a controller whose kind is in the core group
/// (which has no domain of its own).
pub const CORE_FINALIZER_DOMAIN: &str = "windlass.rs";

/// The finalizer a controller named `controller` manages for objects of the API group `group`:
/// `<group>/<controller>`, or `windlass.rs/<controller>` for the core group (which has no
/// domain of its own).
///
/// The controller's name is made into a valid name part: characters other than ASCII
/// alphanumerics, `-`, `_` and `.` become `-`, it starts and ends with an alphanumeric, and it
/// is at most 63 characters long. So any controller name gives a finalizer the API server
/// accepts (API groups are DNS subdomains already).
///
/// Renaming a controller renames its finalizer; objects that still carry the old one keep it
/// (and cannot be deleted) until it is removed by hand.
///
/// ```
/// use windlass::finalizer::finalizer_name;
///
/// assert_eq!(finalizer_name("example.com", "backup"), "example.com/backup");
/// assert_eq!(finalizer_name("", "configmap"), "windlass.rs/configmap");
/// assert_eq!(finalizer_name("example.com", "Backup Service"), "example.com/Backup-Service");
/// ```
pub fn finalizer_name(group: &str, controller: &str) -> String {
    let domain = if group.is_empty() {
        CORE_FINALIZER_DOMAIN
    } else {
        group
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let local: String = controller
        .chars()
        .map(|c| if allowed(c) { c } else { '-' })
        .collect();
    let mut local = local.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if local.len() > 63 {
        local = local[..63].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    }
    let local = if local.is_empty() {
        "controller"
    } else {
        local
    };
    format!("{domain}/{local}")
}

/// Whether `obj` carries the finalizer `name` (controller-runtime's `ContainsFinalizer`).
pub fn contains_finalizer<K: Resource>(obj: &K, name: &str) -> bool {
    obj.meta()
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|n| n == name))
}

/// Adds the finalizer `name` to `obj` in memory unless it is there already; returns whether
/// it added it (controller-runtime's `AddFinalizer`). Write the object to make it count.
pub fn add_finalizer<K: Resource>(obj: &mut K, name: &str) -> bool {
    if contains_finalizer(obj, name) {
        return false;
    }
    obj.meta_mut()
        .finalizers
        .get_or_insert_with(Vec::new)
        .push(name.to_string());
    true
}

/// Removes every copy of the finalizer `name` from `obj` in memory; returns whether there was
/// one (controller-runtime's `RemoveFinalizer`). Write the object to make it count.
pub fn remove_finalizer<K: Resource>(obj: &mut K, name: &str) -> bool {
    let Some(finalizers) = obj.meta_mut().finalizers.as_mut() else {
        return false;
    };
    let before = finalizers.len();
    finalizers.retain(|n| n != name);
    let removed = finalizers.len() != before;
    if finalizers.is_empty() {
        obj.meta_mut().finalizers = None;
    }
    removed
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    /// Why `name` is not a valid finalizer name, if it is not: the API server wants a
    /// qualified name (`prefix/name`, the prefix a DNS subdomain, the name at most 63
    /// alphanumerics, `-`, `_` or `.`, starting and ending alphanumeric).
    fn invalid_finalizer_name(name: &str) -> Option<String> {
        let Some((prefix, local)) = name.split_once('/') else {
            return Some("a finalizer needs a domain prefix, as in example.com/cleanup".into());
        };
        let subdomain_ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !subdomain_ok {
            return Some(format!("the prefix {prefix:?} is not a DNS subdomain"));
        }
        let edge_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
        let local_ok = !local.is_empty()
            && local.len() <= 63
            && edge_ok(local.bytes().next())
            && edge_ok(local.bytes().last())
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !local_ok {
            return Some(format!("the name part {local:?} is not valid"));
        }
        None
    }

    #[test]
    fn a_controller_finalizer_is_qualified_by_its_group_or_windlass() {
        assert_eq!(finalizer_name("apps", "deploys"), "apps/deploys");
        assert_eq!(finalizer_name("", "configmap"), "windlass.rs/configmap");
    }

    #[test]
    fn any_controller_name_makes_a_valid_finalizer() {
        let long = "x".repeat(70);
        let long_expected = format!("windlass.rs/{}", "x".repeat(63));
        for (controller, expected) in [
            ("backup service", "windlass.rs/backup-service"),
            ("acme.io/cleanup", "windlass.rs/acme.io-cleanup"),
            ("-- \u{e9}moji \u{2713} --", "windlass.rs/moji"),
            ("///", "windlass.rs/controller"),
            ("", "windlass.rs/controller"),
            (long.as_str(), long_expected.as_str()),
        ] {
            let name = finalizer_name("", controller);
            assert_eq!(name, expected, "{controller:?}");
            assert_eq!(invalid_finalizer_name(&name), None, "{name}");
        }
        // Cut at 63 characters, then trimmed back to an alphanumeric.
        let name = finalizer_name("example.com", &format!("a{}-b", "-".repeat(61)));
        assert_eq!(name, "example.com/a");
    }

    #[test]
    fn the_check_used_here_rejects_what_the_api_server_rejects() {
        assert!(
            invalid_finalizer_name("cleanup")
                .unwrap()
                .contains("domain prefix")
        );
        assert!(
            invalid_finalizer_name("Example.com/cleanup")
                .unwrap()
                .contains("DNS subdomain")
        );
        assert!(
            invalid_finalizer_name("example.com/-cleanup")
                .unwrap()
                .contains("name part")
        );
        assert!(invalid_finalizer_name("example.com/a/b").is_some());
        assert!(invalid_finalizer_name(&format!("example.com/{}", "x".repeat(64))).is_some());
        assert_eq!(invalid_finalizer_name("example.com/clean_up.v2"), None);
    }

    #[test]
    fn in_memory_helpers_add_once_and_remove_every_copy() {
        let mut cm = ConfigMap::default();
        assert!(!contains_finalizer(&cm, "a.io/x"));
        assert!(add_finalizer(&mut cm, "a.io/x"));
        assert!(!add_finalizer(&mut cm, "a.io/x"));
        assert!(add_finalizer(&mut cm, "b.io/y"));
        cm.metadata
            .finalizers
            .as_mut()
            .unwrap()
            .push("a.io/x".into());
        assert!(remove_finalizer(&mut cm, "a.io/x"));
        assert_eq!(cm.metadata.finalizers, Some(vec!["b.io/y".to_string()]));
        assert!(remove_finalizer(&mut cm, "b.io/y"));
        assert_eq!(cm.metadata.finalizers, None);
        assert!(!remove_finalizer(&mut cm, "b.io/y"));
    }
}
