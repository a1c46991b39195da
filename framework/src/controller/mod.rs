//! Controllers: the level-driven control loop around a [`Reconciler`].
//!
//! This module owns what turns a reconcile function into a running loop: the [`Reconciler`]
//! trait and [`Action`], the [`Context`] a reconcile gets (with the [`ReconcileReason`] it runs
//! for), the [`Controller`] builder (owned children, mapped watches, [predicates](Predicate),
//! concurrency, resync, timeout), and the workers that run reconciles from the workqueue. It
//! does not own the caches (see [`informer`](crate::informer)) or process lifecycle (see
//! [`manager`](crate::manager)).
//!
//! # Guarantees
//!
//! - One object is never reconciled by two workers at once; changes that arrive while it is
//!   being reconciled are merged and handled once, after it finishes.
//! - No reconcile runs before the caches the controller reads have their first list, and at
//!   start-up every existing object is reconciled exactly once, however many of its children
//!   and mapped objects also report in.
//! - The queue holds object keys, not events: a reconcile always sees the newest cached state.
//! - Errors back off per object (5 ms doubling to 1000 s, within an overall 10/s bucket);
//!   success resets the backoff; a [`TerminalError`] is not retried until the object changes;
//!   409 conflicts are retried promptly and quietly; a panic in a reconcile is caught and
//!   retried like an error, and the worker carries on.

mod builder;
mod context;
mod enqueue;
mod predicate;
mod reconciler;
mod runner;

pub use builder::{Controller, DEFAULT_MAX_CONCURRENT_RECONCILES};
pub use context::{Context, EventKind, ReconcileReason, Related};
pub use predicate::{
    And, AnnotationsChanged, GenerationChanged, LabelsChanged, Not, Or, Predicate,
    ResourceVersionChanged, and, not, or,
};
pub(crate) use reconciler::is_conflict;
pub use reconciler::{Action, FnReconciler, Reconciler, TerminalError, reconciler_fn};
pub(crate) use runner::display_chain;
