//! What a reconcile gets besides its object: the [`Context`] (client, caches, the controller's
//! name, the attempt number, its event recorder) and the [`ReconcileReason`] it runs for.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use kube::{Api, Client};
use serde::Serialize;

use crate::apply::{Operation, WriteError};
use crate::events::Recorder;
use crate::informer::{Cache, ObjectKey};
use crate::object::Object;

/// The kind of change a watch event reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The object appeared.
    Added,
    /// The object changed.
    Updated,
    /// The object went away.
    Deleted,
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventKind::Added => "added",
            EventKind::Updated => "updated",
            EventKind::Deleted => "deleted",
        })
    }
}

/// Another object whose change led to a reconcile.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Related {
    /// Its kind, e.g. `Deployment`.
    pub kind: String,
    /// Its namespace and name.
    pub key: ObjectKey,
}

impl fmt::Display for Related {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.key)
    }
}

/// Why a reconcile runs. When several reasons pile up for one object before its turn, the
/// reconcile reports the most significant: a change beats a retry or requeue, which beat a
/// resync or the start-up pass.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReconcileReason {
    /// The object was in the controller's first list (every object is reconciled once at
    /// start-up).
    Startup,
    /// The object itself was added or changed.
    ObjectChanged(EventKind),
    /// A child it owns (by controller owner reference) changed.
    OwnedChanged {
        /// The child.
        child: Related,
        /// What happened to it.
        event: EventKind,
    },
    /// A watched object mapped to it changed.
    Mapped {
        /// The watched object.
        source: Related,
        /// What happened to it.
        event: EventKind,
    },
    /// The periodic resync.
    Resync,
    /// The previous reconcile asked to run again (`Action::requeue`).
    Requeue,
    /// The previous reconcile failed; this is attempt `attempt` (2 for the first retry).
    Retry {
        /// Which attempt this is.
        attempt: u32,
    },
}

impl ReconcileReason {
    /// How much the reason says about the world having changed (higher wins a merge).
    pub(crate) fn weight(&self) -> u8 {
        match self {
            ReconcileReason::Startup | ReconcileReason::Resync => 0,
            ReconcileReason::Requeue | ReconcileReason::Retry { .. } => 1,
            _ => 2,
        }
    }
}

impl fmt::Display for ReconcileReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReconcileReason::Startup => f.write_str("start-up"),
            ReconcileReason::ObjectChanged(e) => write!(f, "object {e}"),
            ReconcileReason::OwnedChanged { child, event } => write!(f, "owned {child} {event}"),
            ReconcileReason::Mapped { source, event } => write!(f, "watched {source} {event}"),
            ReconcileReason::Resync => f.write_str("resync"),
            ReconcileReason::Requeue => f.write_str("requeue"),
            ReconcileReason::Retry { attempt } => write!(f, "retry (attempt {attempt})"),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) cache: Cache,
    pub(crate) controller: String,
    pub(crate) recorder: Recorder,
}

/// What a reconcile can use besides its object. Cheap to clone.
pub struct Context<K> {
    shared: Arc<Shared>,
    reason: ReconcileReason,
    attempt: u32,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Context<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            reason: self.reason.clone(),
            attempt: self.attempt,
            _kind: PhantomData,
        }
    }
}

impl<K> fmt::Debug for Context<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("controller", &self.shared.controller)
            .field("reason", &self.reason)
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl<K> Context<K> {
    pub(crate) fn new(shared: Arc<Shared>, reason: ReconcileReason, attempt: u32) -> Self {
        Self {
            shared,
            reason,
            attempt,
            _kind: PhantomData,
        }
    }

    /// The manager's client.
    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    /// The manager's cache: read any kind from it (`ctx.cache().get::<Secret>(..)`); kinds
    /// not cached yet get an informer on first read.
    pub fn cache(&self) -> &Cache {
        &self.shared.cache
    }

    /// The controller's name (as in logs and metrics).
    pub fn controller(&self) -> &str {
        &self.shared.controller
    }

    /// Why this reconcile runs.
    pub fn reason(&self) -> &ReconcileReason {
        &self.reason
    }

    /// Which attempt this is: 1, or more after consecutive failures of this object.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The controller's event recorder: events it publishes name the controller as their
    /// reporting controller (see [`events`](crate::events)).
    pub fn recorder(&self) -> &Recorder {
        &self.shared.recorder
    }

    /// The field manager the controller's writes use: its name.
    pub fn field_manager(&self) -> &str {
        &self.shared.controller
    }

    /// Server-side applies `desired` with the controller's field manager, skipping the write
    /// when it already owns exactly that state: [`apply::apply`](crate::apply::apply).
    ///
    /// # Errors
    ///
    /// As [`apply::apply`](crate::apply::apply).
    pub async fn apply<O: Object>(
        &self,
        api: &Api<O>,
        desired: &O,
    ) -> Result<(O, Operation), WriteError> {
        crate::apply::apply(api, desired, self.field_manager()).await
    }

    /// Server-side applies `status` as the status of the object `name` with the controller's
    /// field manager, skipping the write when it already owns exactly that status:
    /// [`apply::apply_status`](crate::apply::apply_status).
    ///
    /// # Errors
    ///
    /// As [`apply::apply_status`](crate::apply::apply_status).
    pub async fn apply_status<O: Object, S: Serialize>(
        &self,
        api: &Api<O>,
        name: &str,
        status: &S,
    ) -> Result<(O, Operation), WriteError> {
        crate::apply::apply_status(api, name, status, self.field_manager()).await
    }
}
