//! Applying a controller's desired state to objects the way a controller should: writing
//! only when something changed, with the controller's field manager, and retrying conflicts.
//!
//! - [`create_or_update`] and [`create_or_patch`] (controller-runtime's `controllerutil`):
//!   read the object, let a closure set what the controller wants, and write only if that
//!   changed anything, reporting the [`Operation`] performed. `create_or_patch` sends merge
//!   patches of just the changed fields, and writes the status subresource too.
//! - [`apply`] and [`apply_status`]: server-side apply with a field manager (the
//!   controller's name, through [`Context::apply`](crate::controller::Context::apply)), which
//!   skip the request when the desired state is already exactly what that manager owns.
//! - [`retry_on_conflict`] (client-go's `retry.RetryOnConflict`): run a read-modify-write
//!   again when the API server answers 409 Conflict, with client-go's
//!   [`DEFAULT_RETRY`] or [`DEFAULT_BACKOFF`], or any [`Backoff`].
//!
//! These take kube's `Api<K>`, so they work inside and outside reconcilers. This module does
//! not own the client's transport (rate limits, retries of throttled requests), reading
//! through the cache (see [`informer`](crate::informer)), nor building the objects (see
//! [`owner`](crate::owner) and [`condition`](crate::condition)).

mod create_or_update;
mod error;
mod managed;
mod merge;
mod retry;
mod ssa;

pub use create_or_update::{Operation, create_or_patch, create_or_update};
pub use error::{BoxError, WriteError};
pub use retry::{Backoff, DEFAULT_BACKOFF, DEFAULT_RETRY, retry_on_conflict, retry_on_error};
pub use ssa::{apply, apply_status, needs_apply};
