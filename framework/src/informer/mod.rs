//! Informers: shared, cached views of the cluster, kept current by a watch.
//!
//! This module owns the [`Cache`] (one [`Informer`] per kind, namespace and selector, shared by
//! every controller and every read), each informer's [`Store`] with named indexes, and the
//! [`EventHandler`]s informers tell about changes. Listing, watching, resuming and relisting are
//! kube-runtime's `watcher`, with kube's default backoff, so a broken watch never ends an
//! informer. It does not own what is done with changes: that is the controller's business.
//!
//! Cached objects are shared as `Arc`s, and `managedFields` is dropped from them by default,
//! while decoding, so it is never built (see [`InformerConfig::strip_managed_fields`]). An object that does not decode as its Rust
//! type is counted, logged and skipped instead of failing the list or the watch.

mod cache;
mod config;
mod decoded;
mod shared;
mod store;
mod strip;

pub use cache::{Cache, Cacheable};
pub(crate) use cache::{WeakCache, namespaced};
pub use config::InformerConfig;
pub(crate) use shared::panic_message;
pub use shared::{EventHandler, Informer, InformerStats};
pub use store::{IndexFn, ObjectKey, Store, UnknownIndex};
