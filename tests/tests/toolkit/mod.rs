//! The operator toolkit: finalizers and cleanup, events, owner references, writing objects
//! (create-or-update, server-side apply, conflict retry), status conditions, RBAC and deploy
//! manifests, against `windlass::testing`.

mod apply;
mod conditions;
mod deploy;
mod events;
mod finalizer;
mod owner;
mod retry;
mod support;
mod write;
