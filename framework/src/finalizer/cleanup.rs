//! The [`Cleanup`] trait, and the step that runs either reconcile or cleanup for an object of
//! a controller that has one, managing its finalizer on the way.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::json;

use super::contains_finalizer;
use crate::controller::{Action, Context, Reconciler};
use crate::informer::{Cacheable, namespaced};

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

/// A reconciler's cleanup, with its type erased so the controller need not require
/// [`Cleanup`] of every reconciler.
pub(crate) type CleanupFn<K, E> = Arc<
    dyn for<'a> Fn(Arc<K>, &'a Context<K>) -> BoxFuture<'a, Result<CleanupStatus, E>> + Send + Sync,
>;

/// The cleanup of reconciler `reconciler`, erased.
pub(crate) fn erase<R: Cleanup>(reconciler: Arc<R>) -> CleanupFn<R::Object, R::Error> {
    Arc::new(move |obj, ctx| {
        let reconciler = reconciler.clone();
        Box::pin(async move { reconciler.cleanup(obj, ctx).await })
    })
}

/// A finalizer patch that failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FinalizerError {
    /// Adding the finalizer failed.
    #[error("adding finalizer {name}")]
    Add {
        name: String,
        #[source]
        source: kube::Error,
    },
    /// Removing the finalizer after a successful cleanup failed; cleanup runs again.
    #[error("removing finalizer {name} after cleanup")]
    Remove {
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl FinalizerError {
    /// Whether the object changed between the read and the patch (a failed `test`, which the
    /// API server answers 422, or a 409): expected under concurrent writers, so retried
    /// quietly.
    pub(crate) fn is_race(&self) -> bool {
        let (FinalizerError::Add { source, .. } | FinalizerError::Remove { source, .. }) = self;
        matches!(source, kube::Error::Api(s) if s.code == 422 || s.code == 409)
    }
}

/// What failed in one pass of a controller with cleanup.
#[derive(Debug)]
pub(crate) enum Failure<E> {
    /// The reconciler's `reconcile` or `cleanup`.
    Reconciler(E),
    /// Managing the finalizer.
    Finalizer(FinalizerError),
}

/// The finalizer a controller manages, and the cleanup it runs.
pub(crate) struct Finalizing<K, E> {
    pub(crate) name: String,
    pub(crate) cleanup: CleanupFn<K, E>,
}

impl<K, E> Finalizing<K, E>
where
    K: Cacheable,
    K::DynamicType: Default,
{
    /// One pass over `obj`: add the finalizer and reconcile, or clean up and remove it.
    pub(crate) async fn run<R>(
        &self,
        reconciler: &R,
        obj: Arc<K>,
        ctx: &Context<K>,
    ) -> Result<Action, Failure<E>>
    where
        R: Reconciler<Object = K, Error = E>,
    {
        let has = contains_finalizer(obj.as_ref(), &self.name);
        let deleting = obj.meta().deletion_timestamp.is_some();
        match (deleting, has) {
            (false, true) => reconciler
                .reconcile(obj, ctx)
                .await
                .map_err(Failure::Reconciler),
            (false, false) => {
                // Added before reconcile acts, so nothing it creates can outlive the object
                // without cleanup knowing about it.
                let patched = self.add(ctx, &obj).await.map_err(Failure::Finalizer)?;
                reconciler
                    .reconcile(Arc::new(patched), ctx)
                    .await
                    .map_err(Failure::Reconciler)
            }
            (true, true) => match (self.cleanup)(obj.clone(), ctx)
                .await
                .map_err(Failure::Reconciler)?
            {
                CleanupStatus::Done => {
                    self.remove(ctx, &obj).await.map_err(Failure::Finalizer)?;
                    Ok(Action::await_change())
                }
                CleanupStatus::RequeueAfter(after) => Ok(Action::requeue(after)),
            },
            // Being deleted and our part is done: other finalizers hold the object.
            (true, false) => Ok(Action::await_change()),
        }
    }

    /// The API of `obj`'s kind, in its namespace. Dynamic, because kube's typed constructors
    /// want the kind's scope known at compile time and `K` is any cacheable kind.
    fn api(ctx: &Context<K>, obj: &K) -> Api<DynamicObject> {
        let resource = ApiResource::erase::<K>(&K::DynamicType::default());
        match obj.namespace() {
            Some(ns) if namespaced::<K>() => {
                Api::namespaced_with(ctx.client().clone(), &ns, &resource)
            }
            _ => Api::all_with(ctx.client().clone(), &resource),
        }
    }

    /// Adds the finalizer with a JSON patch that first tests the list it read, as
    /// kube-runtime's helper does: the API server does not deduplicate finalizers, and a
    /// plain merge would overwrite a finalizer someone else added meanwhile.
    async fn add(&self, ctx: &Context<K>, obj: &K) -> Result<K, FinalizerError> {
        let patch = match &obj.meta().finalizers {
            // A `test` of an absent member against null succeeds on the API server.
            None => json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": [self.name]},
            ]),
            Some(current) => json!([
                {"op": "test", "path": "/metadata/finalizers", "value": current},
                {"op": "add", "path": "/metadata/finalizers/-", "value": self.name},
            ]),
        };
        self.patch(ctx, obj, patch)
            .await
            .map_err(|source| FinalizerError::Add {
                name: self.name.clone(),
                source,
            })
    }

    /// Removes the finalizer by index, testing that the index still holds it (finalizers are
    /// removed concurrently by their controllers, shifting the indexes).
    async fn remove(&self, ctx: &Context<K>, obj: &K) -> Result<K, FinalizerError> {
        let index = obj
            .finalizers()
            .iter()
            .position(|f| *f == self.name)
            .unwrap_or_default();
        let path = format!("/metadata/finalizers/{index}");
        let patch = json!([
            {"op": "test", "path": path, "value": self.name},
            {"op": "remove", "path": path},
        ]);
        self.patch(ctx, obj, patch)
            .await
            .map_err(|source| FinalizerError::Remove {
                name: self.name.clone(),
                source,
            })
    }

    async fn patch(
        &self,
        ctx: &Context<K>,
        obj: &K,
        patch: serde_json::Value,
    ) -> Result<K, kube::Error> {
        let patch =
            Patch::<()>::Json(serde_json::from_value(patch).map_err(kube::Error::SerdeError)?);
        let patched = Self::api(ctx, obj)
            .patch(&obj.name_any(), &PatchParams::default(), &patch)
            .await?;
        let value = serde_json::to_value(patched).map_err(kube::Error::SerdeError)?;
        serde_json::from_value(value).map_err(kube::Error::SerdeError)
    }
}
