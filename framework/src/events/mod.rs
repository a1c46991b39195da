//! Events: telling users what a controller did to their objects, in `kubectl describe` and
//! `kubectl events`.
//!
//! Every reconcile's [`Context`](crate::controller::Context) carries a [`Recorder`] whose
//! reporting controller is the controller's name and whose reporting instance is the pod's
//! name (`POD_NAME`, which the generated [Deployment](crate::deploy) sets from the downward
//! API), or else the host name. [`Recorder::normal`] and [`Recorder::warning`] publish an
//! event about any object, with a reason (`UpperCamelCase`, what happened), an action (what
//! the controller did or failed to do) and a note for humans.
//!
//! Repeats are aggregated, not flooded: publishing an event with the same type, reason,
//! action and regarding object as one published by this recorder in the last six minutes
//! patches that event's `series` (count and last time) instead of creating another. That is
//! kube-runtime's [`events::Recorder`](kube::runtime::events::Recorder), which this wraps, and
//! the semantics of client-go's `events` package; events are written through
//! `events.k8s.io/v1` and are visible through core `v1` Events as well.
//!
//! # RBAC
//!
//! Publishing needs `create` and `patch` on `events` in the `events.k8s.io` group (`patch`
//! for series), in the namespace of the regarding object (`default` for cluster-scoped
//! objects). windlass's generated roles ([`rbac`](crate::rbac)) grant both, and the same on
//! core `events` for tools that still write those, unless the controller was built with
//! [`record_events(false)`](crate::controller::Controller::record_events).
//!
//! This module does not own reading events back; use `Api<Event>` for that.

use std::fmt;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder as KubeRecorder, Reporter};

/// Publishes events for one controller. Cheap to clone; clones share the series cache.
#[derive(Clone)]
pub struct Recorder {
    inner: Option<KubeRecorder>,
    reporter: Reporter,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("controller", &self.reporter.controller)
            .field("instance", &self.reporter.instance)
            .field("enabled", &self.inner.is_some())
            .finish()
    }
}

/// The reporting instance of this process: the pod's name when the downward API provides it
/// as `POD_NAME`, else the host name (which, in a pod, is the pod's name too).
fn instance() -> Option<String> {
    std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| Reporter::from("windlass").instance)
}

impl Recorder {
    /// A recorder that reports as `controller`, from this pod or host.
    pub fn new(client: Client, controller: &str) -> Self {
        let reporter = Reporter {
            controller: controller.to_string(),
            instance: instance(),
        };
        Self {
            inner: Some(KubeRecorder::new(client, reporter.clone())),
            reporter,
        }
    }

    /// A recorder that publishes nothing (for a controller built with
    /// [`record_events(false)`](crate::controller::Controller::record_events)).
    pub fn disabled(controller: &str) -> Self {
        Self {
            inner: None,
            reporter: Reporter {
                controller: controller.to_string(),
                instance: instance(),
            },
        }
    }

    /// Whether this recorder publishes anything.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Who the events say reported them.
    pub fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    /// Publishes a `Normal` event about `regarding`: something worth knowing happened.
    ///
    /// Best effort, as in controller-runtime: a failure to publish is logged (at warn level)
    /// and does not fail the reconcile. Use [`publish`](Self::publish) to handle it.
    pub async fn normal<O>(&self, regarding: &O, reason: &str, action: &str, note: &str)
    where
        O: Resource<DynamicType = ()>,
    {
        self.best_effort(EventType::Normal, regarding, reason, action, note)
            .await;
    }

    /// Publishes a `Warning` event about `regarding`: something went wrong that a user may
    /// need to act on. Best effort, like [`normal`](Self::normal).
    pub async fn warning<O>(&self, regarding: &O, reason: &str, action: &str, note: &str)
    where
        O: Resource<DynamicType = ()>,
    {
        self.best_effort(EventType::Warning, regarding, reason, action, note)
            .await;
    }

    async fn best_effort<O>(
        &self,
        type_: EventType,
        regarding: &O,
        reason: &str,
        action: &str,
        note: &str,
    ) where
        O: Resource<DynamicType = ()>,
    {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note.to_string()),
            action: action.to_string(),
            secondary: None,
        };
        let reference = regarding.object_ref(&());
        if let Err(error) = self.publish(&event, &reference).await {
            tracing::warn!(
                %error,
                reason,
                object = reference.name.as_deref().unwrap_or_default(),
                "could not publish an event"
            );
        }
    }

    /// Publishes `event` about the object `regarding` refers to, aggregating repeats into a
    /// series. Does nothing when the recorder is [disabled](Self::disabled).
    ///
    /// # Errors
    ///
    /// The API server's error creating or patching the event.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        match &self.inner {
            Some(recorder) => recorder.publish(event, regarding).await,
            None => Ok(()),
        }
    }
}
