//! # windlass
//!
//! A framework for writing Kubernetes operators in Rust, in the style of Go's
//! [controller-runtime](https://github.com/kubernetes-sigs/controller-runtime), built on
//! [kube-rs](https://kube.rs).
//!
//! An operator is a custom resource definition plus a controller that keeps the world in line
//! with it. windlass gives both halves their moving parts:
//!
//! - [`CustomResource`]: derive a complete custom resource type, and its CRD, from a plain spec
//!   struct, as controller-gen does for Go types. Misuse is a compile error that says how to
//!   fix it.
//!
//! - [`object`]: the runtime object model: [`Object`](object::Object) for every typed object
//!   (GVK, metadata, deep copy), [`DynObject`](object::DynObject) to hold objects of any kind,
//!   the [`Scheme`](object::Scheme) that decodes JSON into the right type, the
//!   [`RestMapper`](object::RestMapper) from kinds to resources, and CRD generation.
//!
//! - [`controller`]: the level-driven control loop. Implement [`Reconciler`](controller::Reconciler)
//!   for your kind, build a [`Controller`](controller::Controller) that also watches the
//!   children it owns and anything mapped to it, and get one reconcile per object at a time,
//!   per-object backoff, panic recovery, and the reason each reconcile runs.
//!
//! - [`manager`]: runs controllers over one client and one shared cache, from start to graceful
//!   shutdown on SIGTERM.
//!
//! - [`leader`]: leader election over a Lease, client-go's algorithm with faster handovers, so
//!   several replicas can run and exactly one reconciles at a time.
//!
//! - [`informer`]: shared, indexed caches kept current by kube-runtime's `watcher`; one watch per
//!   kind however many controllers read it.
//!
//! - [`queue`]: the rate-limited, deduplicating, priority workqueue every controller runs on,
//!   with client-go's semantics (an object is never handed to two workers at once; adds while it
//!   is processed are merged into one more pass; per-object exponential backoff).
//!
//! - The operator toolkit, what a reconciler uses to do its job: [`finalizer`] (cleanup before
//!   an object goes), [`events`] (Kubernetes Events, aggregated into series), [`owner`] (owner
//!   references), [`apply`] (`create_or_update`, server-side apply that skips no-op writes,
//!   `retry_on_conflict`) and [`condition`] (status conditions). [`rbac`] and [`deploy`] turn
//!   what the controllers declare into the minimal roles and the manifests that install the
//!   operator.
//!
//! - `testing` (feature `testing`): an in-process, protocol-faithful Kubernetes API server, so
//!   operators and their tests run with no cluster.
//!
//! - [`metrics`]: a Prometheus registry with controller-runtime's series (same names, labels and
//!   buckets, so existing dashboards work), served by the manager at `/metrics` next to the
//!   `/healthz` and `/readyz` probes.
//!
//! - [`client`]: client-side flow control for the kube client (a token bucket, bounded retries
//!   of 429s honouring `Retry-After`, request metrics), as client-go gives Go operators.
//!
//! - [`leader`]: leader election with client-go's Lease algorithm, a watch for fast handover and
//!   hot standby, so only one replica of an operator reconciles at a time.
//!
//! ## A custom resource
//!
//! ```
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//! use windlass::prelude::*;
//!
//! /// A backup of a database, taken on a schedule.
//! #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
//! #[windlass(group = "example.com", version = "v1", kind = "Backup", namespaced)]
//! #[windlass(status = BackupStatus)]
//! #[windlass(printcolumn(name = "Schedule", type = "string", json_path = ".spec.schedule"))]
//! struct BackupSpec {
//!     /// A cron schedule.
//!     schedule: String,
//! }
//!
//! #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
//! struct BackupStatus {
//!     last_run: Option<String>,
//! }
//!
//! // The CRD to install, as YAML for `kubectl apply -f -`.
//! let yaml = windlass::object::crd::to_yaml(&[Backup::crd()])?;
//! assert!(yaml.contains("name: backups.example.com"));
//!
//! // Objects to create with `kube::Api<Backup>`.
//! let backup = Backup::new("nightly", BackupSpec { schedule: "0 3 * * *".into() });
//! assert_eq!(backup.gvk().kind, "Backup");
//! # Ok::<(), windlass::object::crd::CrdError>(())
//! ```
//!
//! ## Feature flags
//!
//! | feature | what it adds |
//! |---|---|
//! | `testing` | [`testing`]: an in-process Kubernetes API server for tests, with fault injection |

pub mod client;
pub mod controller;
pub mod informer;
pub mod leader;
pub mod manager;
pub mod metrics;
pub mod object;
pub mod prelude;
pub mod queue;
#[cfg(feature = "testing")]
pub mod testing;

// The operator toolkit: what a reconciler uses to do its job, and what installs the operator.
pub mod apply;
pub mod condition;
pub mod deploy;
pub mod events;
pub mod finalizer;
pub mod owner;
pub mod rbac;

pub use windlass_macros::CustomResource;

/// The attribute that makes `async fn` work in trait impls such as [`controller::Reconciler`],
/// re-exported so operators need not depend on `async-trait` themselves.
pub use async_trait::async_trait;

/// What the code `#[derive(CustomResource)]` writes refers to, so its users need not depend on
/// these crates by name. Not a public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use k8s_openapi;
    pub use kube;
    pub use schemars;
    pub use serde;
    pub use serde_json;

    pub use crate::object::clone_meta_from;
}
