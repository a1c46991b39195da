//! An in-process, protocol-faithful Kubernetes API server for tests (feature `testing`).
//!
//! [`ApiServer`] speaks the Kubernetes HTTP API closely enough that kube's client and runtime
//! (`Api`, `watcher`, `reflector`, `finalizer`, `events::Recorder`), kubectl and windlass's own
//! controllers cannot tell it from a cluster for what an operator does: one global
//! resourceVersion, consistent paged lists, watches that resume from a resourceVersion or answer
//! 410 when it is too old, streaming lists, bookmarks, label and field selectors, create /
//! update / JSON, merge and strategic merge patch / delete with the real validation and error
//! messages, server-side apply with field ownership and conflicts (`managedFields`),
//! `generation`, the status and scale subresources, finalizers, garbage collection,
//! metadata-only requests, `dryRun`, `fieldValidation`, CRDs that become servable once
//! Established and whose custom resources are pruned, defaulted and validated against their
//! schema and CEL rules, discovery (legacy and aggregated), OpenAPI v2 and v3 documents, and
//! `Table` output with a CRD's printer columns.
//!
//! Clients are handed out in-process ([`ApiServer::client`]: a `kube::Client` backed by a tower
//! service, no TCP), and the same server can be served over HTTP on 127.0.0.1 for other clients
//! ([`ApiServer::serve`]; the `windlass-apiserver` binary does that and writes a kubeconfig).
//!
//! # Typed API calls
//!
//! ```
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::{Api, PostParams};
//! use windlass::testing::ApiServer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = ApiServer::new();
//! let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
//! let mut cm = ConfigMap::default();
//! cm.metadata.name = Some("settings".into());
//! let created = cms.create(&PostParams::default(), &cm).await?;
//! assert!(created.metadata.uid.is_some());
//!
//! let err = cms.create(&PostParams::default(), &cm).await.unwrap_err();
//! assert!(err.to_string().contains(r#"configmaps "settings" already exists"#));
//! # Ok(())
//! # }
//! ```
//!
//! # Running a controller against it
//!
//! Anything built on kube's `watcher` runs unchanged; here kube-runtime's own `Controller`:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use futures::StreamExt;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::{Api, PostParams};
//! use kube::runtime::controller::{Action, Controller};
//! use kube::runtime::watcher;
//! use windlass::testing::ApiServer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = ApiServer::new();
//! let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
//! let mut cm = ConfigMap::default();
//! cm.metadata.name = Some("watched".into());
//! cms.create(&PostParams::default(), &cm).await?;
//!
//! async fn reconcile(_: Arc<ConfigMap>, _: Arc<()>) -> Result<Action, kube::Error> {
//!     Ok(Action::await_change())
//! }
//! fn error_policy(_: Arc<ConfigMap>, _: &kube::Error, _: Arc<()>) -> Action {
//!     Action::requeue(Duration::from_secs(1))
//! }
//! let mut results = Controller::new(cms, watcher::Config::default())
//!     .run(reconcile, error_policy, Arc::new(()))
//!     .boxed();
//! let first = results.next().await;
//! assert_eq!(first.unwrap()?.0.name, "watched");
//! # Ok(())
//! # }
//! ```
//!
//! # Injecting faults
//!
//! Faults apply to the whole server ([`ApiServer::faults`]) or to one client
//! ([`ApiServer::client_named`] then [`TestClient::faults`]), so one replica can be cut off
//! while others carry on:
//!
//! ```
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::{Api, ListParams};
//! use windlass::testing::{ApiServer, FaultRule, Verb};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = ApiServer::new();
//! let replica = server.client_named("replica-a");
//! replica.faults().fail(FaultRule::status(503).verb(Verb::List).resource("configmaps"));
//!
//! let cms: Api<ConfigMap> = Api::all(replica.client());
//! let err = cms.list(&ListParams::default()).await.unwrap_err();
//! assert!(matches!(err, kube::Error::Api(ref s) if s.code == 503));
//! assert!(cms.list(&ListParams::default()).await.is_ok()); // the rule fired once
//!
//! replica.faults().disconnect(); // now every request fails as if the server were unreachable
//! assert!(cms.list(&ListParams::default()).await.is_err());
//! # Ok(())
//! # }
//! ```
//!
//! # Server-side apply
//!
//! ```
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::{Api, Patch, PatchParams};
//! use serde_json::json;
//! use windlass::testing::ApiServer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = ApiServer::new();
//! let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
//! let config = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": {"name": "shared"}, "data": {"mode": v}});
//! cms.patch("shared", &PatchParams::apply("alice"), &Patch::Apply(config("fast"))).await?;
//! let err = cms
//!     .patch("shared", &PatchParams::apply("bob"), &Patch::Apply(config("slow")))
//!     .await
//!     .unwrap_err();
//! assert!(err.to_string().contains(r#"conflict with "alice": .data.mode"#));
//! cms.patch("shared", &PatchParams::apply("bob").force(), &Patch::Apply(config("slow"))).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # What is not implemented
//!
//! Kubernetes' own CEL libraries (`quantity()`, `isURL()`, `ip()`, `format.*`, ...: CRDs using
//! them are refused at registration) and CEL cost limits; kind-specific `Table` columns for
//! built-in kinds; protobuf; authentication or authorization; admission webhooks; conversion
//! webhooks; and kubelet or workload controllers (Pods stay `Pending`, Deployments get no
//! ReplicaSets).

mod apply;
mod cel;
mod controllers;
mod crd;
mod defaults;
mod delete;
mod discovery;
mod events;
mod faults;
mod fields;
mod fieldset;
mod formats;
mod http;
mod kinds;
mod openapi;
mod patch;
mod read;
mod request;
mod rules;
mod schema;
mod selector;
mod server;
mod status;
mod store;
mod strategic;
mod structural;
mod table;
mod validation;
mod watch;
mod write;

pub use faults::{FaultRule, Faults, Verb};
pub use http::{ServeHandle, kubeconfig_yaml};
pub use server::{ApiServer, Config, RequestRecord, TestClient, TestService};
