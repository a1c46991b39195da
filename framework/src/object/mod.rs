//! The runtime object model: what every Kubernetes object a controller handles has in common.
//!
//! This is the Rust counterpart of apimachinery's `runtime` package, the part controller-runtime
//! builds on:
//!
//! - [`Object`] (`runtime.Object`): a typed object whose group, version, kind and plural are
//!   known at compile time, with its `ObjectMeta` and a deep copy. Every k8s-openapi type and
//!   every type made by `#[derive(CustomResource)]` implements it.
//! - [`DynObject`]: the object-safe companion, so objects of different kinds can share one
//!   collection as `Box<dyn DynObject>` and be downcast back to their type.
//! - [`Scheme`] (`runtime.Scheme`): the registry from group/version/kind to Rust type, which
//!   decodes JSON into the right type and encodes it back.
//! - [`RestMapper`] (`meta.RESTMapper`): from a kind to the resource (plural) and scope the API
//!   server serves it under, from the scheme and, for kinds it does not know, from discovery.
//! - [`crd`]: building `CustomResourceDefinition`s — structural schemas, merging versions,
//!   printing YAML — for the `CustomResource` derive and for `crdgen` binaries.
//!
//! It does not talk to the API server except through the [`RestMapper`]'s discovery; reading and
//! writing objects is kube's `Api<K>`.

pub mod crd;
mod dyn_object;
#[allow(clippy::module_inception)]
mod object;
mod rest_mapper;
mod scheme;

pub use dyn_object::DynObject;
pub use object::Object;
#[doc(hidden)]
pub use object::clone_meta_from;
pub use rest_mapper::{RestMapper, RestMapperError, RestMapping};
pub use scheme::{Scheme, SchemeError};

pub use kube::core::discovery::Scope;
pub use kube::core::{GroupVersion, GroupVersionKind, GroupVersionResource};
