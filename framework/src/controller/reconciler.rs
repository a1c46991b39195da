//! What users implement: the [`Reconciler`] trait (or a closure, with [`reconciler_fn`]), the
//! [`Action`] a reconcile asks for next, and [`TerminalError`] for failures retrying cannot fix.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::context::Context;
use crate::informer::Cacheable;

/// What a controller does with an object after a successful reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action(pub(crate) Next);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    AwaitChange,
    RequeueAfter(Duration),
    RequeueWithBackoff,
}

impl Action {
    /// Nothing more to do until the object (or something mapped to it) changes, or the next
    /// resync. Resets the object's backoff.
    pub fn await_change() -> Self {
        Action(Next::AwaitChange)
    }

    /// Reconcile again after `after` (e.g. to check on a slow rollout). Resets the backoff.
    pub fn requeue(after: Duration) -> Self {
        Action(Next::RequeueAfter(after))
    }

    /// Reconcile again after the object's next backoff step (5 ms, doubling, up to 1000 s by
    /// default), as after an error but without logging one: for "not ready yet, check again
    /// soon" when there is no better time to give.
    pub fn requeue_with_backoff() -> Self {
        Action(Next::RequeueWithBackoff)
    }
}

/// The reconcile loop for one kind of object.
///
/// A reconcile gets the newest cached state of one object and moves the world towards what it
/// asks for: read state, change the world, write status. It must be safe to run again at any
/// time, since it runs after every change, after errors, and at every resync.
///
/// Objects deleted before their turn are not reconciled (there is nothing left to read); to
/// clean up after an object, give it a finalizer.
#[async_trait]
pub trait Reconciler: Send + Sync + 'static {
    /// The kind this controller reconciles.
    type Object: Cacheable;
    /// What a reconcile can fail with.
    type Error: StdError + Send + Sync + 'static;

    /// Reconciles one object.
    ///
    /// # Errors
    ///
    /// An ordinary error requeues the object with per-object exponential backoff; an error whose
    /// chain contains a [`TerminalError`] is recorded and not retried until the object changes;
    /// a 409 conflict from the API server is requeued promptly and logged at debug level.
    async fn reconcile(
        &self,
        obj: Arc<Self::Object>,
        ctx: &Context<Self::Object>,
    ) -> Result<Action, Self::Error>;

    /// Chooses what to do after an error, given how many times this object has failed in a
    /// row (`attempt` is 1 for the first failure). `None` (the default) applies the standard
    /// rules above.
    fn on_error(
        &self,
        obj: &Arc<Self::Object>,
        error: &Self::Error,
        attempt: u32,
        ctx: &Context<Self::Object>,
    ) -> Option<Action> {
        let _ = (obj, error, attempt, ctx);
        None
    }
}

/// A failure retrying will not fix (invalid spec, missing permission the operator cannot
/// grant itself): the controller records it and does not retry until the object changes.
///
/// Put it anywhere in your error's `source()` chain, including behind an
/// `#[error(transparent)]` variant; [`TerminalError::new`] wraps any error, which becomes its
/// [`source`](StdError::source).
///
/// ```
/// use windlass::controller::TerminalError;
///
/// #[derive(Debug, thiserror::Error)]
/// enum Error {
///     #[error(transparent)]
///     Kube(#[from] kube::Error),
///     #[error(transparent)]
///     Invalid(#[from] TerminalError),
/// }
///
/// let e = Error::from(TerminalError::new("spec.replicas must be positive"));
/// # let _ = e;
/// ```
#[derive(Debug)]
pub struct TerminalError(Terminal);

/// What a [`TerminalError`] wraps, standing in for it as its source: an
/// `#[error(transparent)]` wrapper forwards `source()` past the `TerminalError` itself, so
/// this is what marks such a chain as terminal.
#[derive(Debug)]
struct Terminal(Box<dyn StdError + Send + Sync>);

impl fmt::Display for Terminal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for Terminal {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

impl TerminalError {
    /// Marks `error` as terminal.
    pub fn new(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self(Terminal(error.into()))
    }
}

impl fmt::Display for TerminalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("terminal error")
    }
}

impl StdError for TerminalError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}

/// The links of an error's `source()` chain, starting with the error itself.
pub(crate) fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    let mut next = Some(error);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.source();
        Some(current)
    })
}

/// Whether `error` (or anything in its chain) is a [`TerminalError`].
pub(crate) fn is_terminal(error: &(dyn StdError + 'static)) -> bool {
    chain(error).any(|e| e.is::<TerminalError>() || e.is::<Terminal>())
}

/// Whether `error` (or anything in its chain) is the API server's 409 Conflict.
pub(crate) fn is_conflict(error: &(dyn StdError + 'static)) -> bool {
    let conflict = |s: &kube::core::Status| s.code == 409 && s.reason == "Conflict";
    // `kube::Error::Api`'s source is its boxed `Status`, and that is all a chain shows when
    // the user wraps kube's error with `#[error(transparent)]` (which skips the wrapped error
    // and forwards its source), so look for either.
    chain(error).any(|e| {
        if let Some(kube::Error::Api(status)) = e.downcast_ref::<kube::Error>() {
            return conflict(status);
        }
        e.downcast_ref::<Box<kube::core::Status>>()
            .is_some_and(|s| conflict(s))
            || e.downcast_ref::<kube::core::Status>().is_some_and(conflict)
    })
}

/// A [`Reconciler`] made from an async closure, for small controllers.
///
/// ```
/// use std::sync::Arc;
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use windlass::controller::{reconciler_fn, Action, Context};
///
/// let reconciler = reconciler_fn(|cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| async move {
///     println!("saw {}", cm.metadata.name.as_deref().unwrap_or_default());
///     Ok::<_, kube::Error>(Action::await_change())
/// });
/// # let _ = reconciler;
/// ```
pub fn reconciler_fn<K, E, F, Fut>(f: F) -> FnReconciler<K, E, F>
where
    F: Fn(Arc<K>, Context<K>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
{
    FnReconciler {
        f,
        _types: PhantomData,
    }
}

/// See [`reconciler_fn`].
pub struct FnReconciler<K, E, F> {
    f: F,
    _types: PhantomData<fn() -> (K, E)>,
}

impl<K, E, F> fmt::Debug for FnReconciler<K, E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnReconciler").finish_non_exhaustive()
    }
}

#[async_trait]
impl<K, E, F, Fut> Reconciler for FnReconciler<K, E, F>
where
    K: Cacheable,
    E: StdError + Send + Sync + 'static,
    F: Fn(Arc<K>, Context<K>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
{
    type Object = K;
    type Error = E;

    async fn reconcile(&self, obj: Arc<K>, ctx: &Context<K>) -> Result<Action, E> {
        (self.f)(obj, ctx.clone()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("wrapped")]
    struct Wrapper(#[source] TerminalError);

    #[test]
    fn a_terminal_error_is_found_anywhere_in_the_chain() {
        let e = Wrapper(TerminalError::new("spec.replicas must be positive"));
        assert!(is_terminal(&e));
        assert!(!is_terminal(&std::io::Error::other("transient")));
    }

    #[test]
    fn a_terminal_error_is_found_behind_a_transparent_wrapper() {
        #[derive(Debug, thiserror::Error)]
        enum Error {
            #[error(transparent)]
            Invalid(#[from] TerminalError),
        }
        let e = Error::from(TerminalError::new("spec.replicas must be positive"));
        assert!(is_terminal(&e));
        assert_eq!(
            crate::controller::runner::display_chain(&e),
            "terminal error: spec.replicas must be positive"
        );
    }

    #[test]
    fn a_409_conflict_is_recognised_through_wrappers() {
        #[derive(Debug, thiserror::Error)]
        #[error("writing status")]
        struct Writing(#[source] kube::Error);
        let status =
            kube::core::Status::failure("the object has been modified", "Conflict").with_code(409);
        assert!(is_conflict(&Writing(kube::Error::Api(status.boxed()))));
        let not_found = kube::core::Status::failure("gone", "NotFound").with_code(404);
        assert!(!is_conflict(&kube::Error::Api(not_found.boxed())));
    }

    #[test]
    fn a_409_conflict_is_recognised_through_a_transparent_wrapper() {
        #[derive(Debug, thiserror::Error)]
        enum Error {
            #[error(transparent)]
            Kube(#[from] kube::Error),
        }
        let status =
            kube::core::Status::failure("the object has been modified", "Conflict").with_code(409);
        assert!(is_conflict(&Error::from(kube::Error::Api(status.boxed()))));
        let not_found = kube::core::Status::failure("gone", "NotFound").with_code(404);
        assert!(!is_conflict(&Error::from(kube::Error::Api(
            not_found.boxed()
        ))));
    }
}
