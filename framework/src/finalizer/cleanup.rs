//! The [`Cleanup`] trait, and [`Finalized`]: the reconciler a controller with cleanup runs,
//! which manages the finalizer around the user's reconcile and cleanup.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::{contains_finalizer, finalizer_name};
use crate::controller::{Action, Context, Reconciler};
use crate::informer::namespaced;

/// What a cleanup step reports when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CleanupStatus {
    /// Everything is cleaned up: the finalizer is removed and the API server deletes the
    /// object.
    Done,
    /// Not finished yet (say, an external resource is still being torn down): the finalizer
    /// stays, and cleanup runs again after the given time (or sooner, when the object
    /// changes). Nothing is logged as an error.
    RequeueAfter(Duration),
}

/// Cleanup after an object that is being deleted, for a controller built with
/// [`Controller::with_cleanup`](crate::controller::Controller::with_cleanup).
///
/// Implementing this trait does not by itself put a finalizer on anything: `with_cleanup`
/// does, and it only accepts reconcilers that implement `Cleanup`. (Adding a finalizer to
/// every object of a kind is a change users of the cluster notice, so it is never implied.)
///
/// ```
/// use std::sync::Arc;
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use windlass::controller::{Action, Context, Controller, Reconciler};
/// use windlass::finalizer::{Cleanup, CleanupStatus};
///
/// struct Mirror;
///
/// #[windlass::async_trait]
/// impl Reconciler for Mirror {
///     type Object = ConfigMap;
///     type Error = kube::Error;
///     async fn reconcile(&self, cm: Arc<ConfigMap>, ctx: &Context<ConfigMap>) -> Result<Action, kube::Error> {
///         // copy the ConfigMap somewhere outside the cluster
///         Ok(Action::await_change())
///     }
/// }
///
/// #[windlass::async_trait]
/// impl Cleanup for Mirror {
///     async fn cleanup(&self, cm: Arc<ConfigMap>, ctx: &Context<ConfigMap>) -> Result<CleanupStatus, kube::Error> {
///         // delete the copy
///         Ok(CleanupStatus::Done)
///     }
/// }
///
/// let controller = Controller::new(Mirror).with_cleanup();
/// assert_eq!(controller.finalizer().as_deref(), Some("windlass.rs/configmap"));
/// ```
#[async_trait]
pub trait Cleanup: Reconciler {
    /// Cleans up after an object that is being deleted (its `deletionTimestamp` is set and it
    /// still carries the controller's finalizer). It runs instead of
    /// [`reconcile`](Reconciler::reconcile) from then on, until it reports
    /// [`CleanupStatus::Done`]; like a reconcile, it must be safe to run again.
    ///
    /// # Errors
    ///
    /// An error keeps the finalizer and retries with the object's backoff, following the same
    /// rules as a reconcile error (including [`Reconciler::on_error`] and
    /// [`TerminalError`](crate::controller::TerminalError)).
    async fn cleanup(
        &self,
        obj: Arc<Self::Object>,
        ctx: &Context<Self::Object>,
    ) -> Result<CleanupStatus, Self::Error>;
}

/// What a controller with cleanup can fail with: the reconciler's own error, or a failure
/// to add or remove the finalizer.
///
/// The reconciler's error is wrapped transparently: it prints the same, and a
/// [`TerminalError`](crate::controller::TerminalError) or a 409 Conflict in its chain is
/// still found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CleanupError<E> {
    /// What the reconciler's `reconcile` or `cleanup` returned.
    #[error(transparent)]
    Reconciler(E),
    /// Adding the finalizer failed; the object was not reconciled.
    #[error("adding finalizer {name}")]
    AddFinalizer {
        /// The finalizer.
        name: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
    /// Removing the finalizer after a successful cleanup failed; cleanup runs again.
    #[error("removing finalizer {name} after cleanup")]
    RemoveFinalizer {
        /// The finalizer.
        name: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
}

/// A reconciler with [`Cleanup`], run behind the finalizer it needs: what
/// [`Controller::with_cleanup`](crate::controller::Controller::with_cleanup) makes of one.
///
/// For an object that is not being deleted, it adds the finalizer (if missing) and then
/// reconciles the object as patched; for an object being deleted that carries the finalizer,
/// it runs cleanup and removes the finalizer once cleanup is done; an object being deleted
/// without it (cleanup already done, other finalizers still pending) is left alone. The
/// finalizer is [`finalizer_name`] of the kind's group and the controller's name.
pub struct Finalized<R> {
    inner: Arc<R>,
}

impl<R> Finalized<R> {
    pub(crate) fn new(inner: Arc<R>) -> Self {
        Self { inner }
    }

    /// The reconciler inside.
    pub fn inner(&self) -> &R {
        &self.inner
    }
}

impl<R> std::fmt::Debug for Finalized<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finalized").finish_non_exhaustive()
    }
}

/// Whether a patch failed because the object changed since it was read: a failed JSON patch
/// `test` (422: the finalizer list changed, or the name now belongs to a new object with
/// another uid) or a 409. Expected under concurrent writers of the finalizer list.
fn changed_meanwhile(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 422 || s.code == 409)
}

/// Whether a patch failed because the object no longer exists.
fn gone(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 404)
}

#[async_trait]
impl<R> Reconciler for Finalized<R>
where
    R: Cleanup,
    <R::Object as Resource>::DynamicType: Default,
{
    type Object = R::Object;
    type Error = CleanupError<R::Error>;

    async fn reconcile(
        &self,
        obj: Arc<R::Object>,
        ctx: &Context<R::Object>,
    ) -> Result<Action, Self::Error> {
        let name = finalizer_name(&R::Object::group(&Default::default()), ctx.controller());
        let has = contains_finalizer(obj.as_ref(), &name);
        let deleting = obj.meta().deletion_timestamp.is_some();
        match (deleting, has) {
            (false, true) => self
                .inner
                .reconcile(obj, ctx)
                .await
                .map_err(CleanupError::Reconciler),
            (false, false) => {
                // Added before reconcile acts, so nothing it creates can outlive the object
                // without cleanup hearing of it.
                let patched = match add(ctx, &obj, &name).await {
                    Ok(patched) => patched,
                    Err(e) if gone(&e) => {
                        // Deleted before its turn came: nothing is left to reconcile, or to
                        // clean up after.
                        tracing::debug!(finalizer = %name, "the object is gone; nothing to do");
                        return Ok(Action::await_change());
                    }
                    Err(e) if changed_meanwhile(&e) => {
                        tracing::debug!(finalizer = %name, "the finalizers changed meanwhile; retrying");
                        return Ok(Action::requeue_with_backoff());
                    }
                    Err(source) => return Err(CleanupError::AddFinalizer { name, source }),
                };
                self.inner
                    .reconcile(Arc::new(patched), ctx)
                    .await
                    .map_err(CleanupError::Reconciler)
            }
            (true, true) => match self
                .inner
                .cleanup(obj.clone(), ctx)
                .await
                .map_err(CleanupError::Reconciler)?
            {
                CleanupStatus::Done => match remove(ctx, &obj, &name).await {
                    Ok(()) => Ok(Action::await_change()),
                    // The object went meanwhile (the cache was behind a removal that already
                    // deleted it, or someone removed the finalizer by hand): with it went the
                    // finalizer, which is what removing it was for.
                    Err(e) if gone(&e) => {
                        tracing::debug!(finalizer = %name, "the object is already gone");
                        Ok(Action::await_change())
                    }
                    Err(e) if changed_meanwhile(&e) => {
                        tracing::debug!(finalizer = %name, "the finalizers changed meanwhile; retrying");
                        Ok(Action::requeue_with_backoff())
                    }
                    Err(source) => Err(CleanupError::RemoveFinalizer { name, source }),
                },
                CleanupStatus::RequeueAfter(after) => Ok(Action::requeue(after)),
            },
            // Being deleted and our part is done: other finalizers hold the object.
            (true, false) => Ok(Action::await_change()),
        }
    }

    fn on_error(
        &self,
        obj: &Arc<R::Object>,
        error: &Self::Error,
        attempt: u32,
        ctx: &Context<R::Object>,
    ) -> Option<Action> {
        match error {
            CleanupError::Reconciler(e) => self.inner.on_error(obj, e, attempt, ctx),
            _ => None,
        }
    }
}

/// The API of `obj`'s kind, in its namespace. Dynamic, because kube's typed constructors
/// want the kind's scope known at compile time, and `K` is any cacheable kind.
fn api<K>(ctx: &Context<K>, obj: &K) -> Api<DynamicObject>
where
    K: Resource + 'static,
    K::DynamicType: Default,
{
    let resource = ApiResource::erase::<K>(&K::DynamicType::default());
    match obj.namespace() {
        Some(ns) if namespaced::<K>() => Api::namespaced_with(ctx.client().clone(), &ns, &resource),
        _ => Api::all_with(ctx.client().clone(), &resource),
    }
}

async fn patch<K>(ctx: &Context<K>, obj: &K, patch: serde_json::Value) -> Result<K, kube::Error>
where
    K: Resource + serde::de::DeserializeOwned + 'static,
    K::DynamicType: Default,
{
    let patch = Patch::<()>::Json(serde_json::from_value(patch).map_err(kube::Error::SerdeError)?);
    let patched = api(ctx, obj)
        .patch(&obj.name_any(), &PatchParams::default(), &patch)
        .await?;
    let value = serde_json::to_value(patched).map_err(kube::Error::SerdeError)?;
    serde_json::from_value(value).map_err(kube::Error::SerdeError)
}

/// A JSON patch `test` that the object is the one that was read, not a new object that took
/// its name after it was deleted (patches address objects by name); none if the uid is
/// unknown.
fn same_uid<K: Resource>(obj: &K) -> Vec<serde_json::Value> {
    obj.meta()
        .uid
        .iter()
        .map(|uid| json!({"op": "test", "path": "/metadata/uid", "value": uid}))
        .collect()
}

/// `first` followed by `then`, as one JSON patch.
fn ops(first: Vec<serde_json::Value>, then: serde_json::Value) -> serde_json::Value {
    let mut all = first;
    all.extend(then.as_array().cloned().unwrap_or_default());
    serde_json::Value::Array(all)
}

/// Adds the finalizer with a JSON patch that first tests the list it read, as kube-runtime's
/// helper does: the API server does not deduplicate finalizers, and a plain merge would
/// overwrite a finalizer someone else added meanwhile. It tests the uid too, so a new object
/// of the same name is not taken for the one that was read.
async fn add<K>(ctx: &Context<K>, obj: &K, name: &str) -> Result<K, kube::Error>
where
    K: Resource + serde::de::DeserializeOwned + 'static,
    K::DynamicType: Default,
{
    let list = match &obj.meta().finalizers {
        // A `test` of an absent member against null succeeds on the API server.
        None => json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [name]},
        ]),
        Some(current) => json!([
            {"op": "test", "path": "/metadata/finalizers", "value": current},
            {"op": "add", "path": "/metadata/finalizers/-", "value": name},
        ]),
    };
    patch(ctx, obj, ops(same_uid(obj), list)).await
}

/// Removes the finalizer by index, testing that the index still holds it (other controllers
/// remove their finalizers concurrently, shifting the indexes) and that the object is the one
/// that was cleaned up: when a cache still holds an object already deleted, and a new one
/// of the same name carries the finalizer, removing it from the new one would let that one
/// go without its cleanup.
async fn remove<K>(ctx: &Context<K>, obj: &K, name: &str) -> Result<(), kube::Error>
where
    K: Resource + serde::de::DeserializeOwned + 'static,
    K::DynamicType: Default,
{
    let index = obj
        .finalizers()
        .iter()
        .position(|f| f == name)
        .unwrap_or_default();
    let path = format!("/metadata/finalizers/{index}");
    let ops = ops(
        same_uid(obj),
        json!([
            {"op": "test", "path": path, "value": name},
            {"op": "remove", "path": path},
        ]),
    );
    // The answer may be the object's last state or, once it is gone, nothing worth decoding.
    api(ctx, obj)
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::<()>::Json(serde_json::from_value(ops).map_err(kube::Error::SerdeError)?),
        )
        .await
        .map(drop)
}
