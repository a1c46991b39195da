//! # windlass
//!
//! A framework for writing Kubernetes operators in Rust, in the style of Go's
//! [controller-runtime](https://github.com/kubernetes-sigs/controller-runtime), built on
//! [kube-rs](https://kube.rs).
//!
//! An operator is a custom resource definition plus a controller that keeps the world in line
//! with it. windlass gives the controller half its moving parts:
//!
//! - [`queue`]: the rate-limited, deduplicating, priority workqueue every controller runs on,
//!   with client-go's semantics (an object is never handed to two workers at once; adds while it
//!   is processed are merged into one more pass; per-object exponential backoff).
//!
//! - `testing` (feature `testing`): an in-process, protocol-faithful Kubernetes API server, so
//!   operators and their tests run with no cluster.
//!
//! Later modules (informers, controllers, the manager, leader election, metrics and an
//! in-process API server for tests) build on these.
//!
//! ## Feature flags
//!
//! | feature | what it adds |
//! |---|---|
//! | `testing` | [`testing`]: an in-process Kubernetes API server for tests, with fault injection |

pub mod controller;
pub mod informer;
pub mod manager;
pub mod queue;
#[cfg(feature = "testing")]
pub mod testing;
