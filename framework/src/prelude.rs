//! What an operator author imports every time: `use windlass::prelude::*;`.
//!
//! The derive and the traits whose methods custom resource code calls. kube's own traits
//! (`kube::Resource`, `kube::ResourceExt`, `kube::CustomResourceExt`) are re-exported too, as
//! `_` imports where their method names would clash with windlass's.

pub use crate::CustomResource;
pub use crate::async_trait;
pub use crate::controller::{Action, Context, Controller, Reconciler, TerminalError};
pub use crate::manager::Manager;
pub use crate::object::{Object, Scheme};
pub use kube::CustomResourceExt;
pub use kube::ResourceExt as _;
pub use kube::core::object::{HasSpec, HasStatus};
