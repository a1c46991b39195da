//! What the benchmarks share: the fixtures of BENCHMARKS.md, generated deterministically, and
//! servers filled with them. Each benchmark includes this module (`mod common;`) and uses what
//! it needs of it.
//!
//! - ConfigMap, ~0.4 KB: 2 labels, 2 data keys, one of 128 B.
//! - Pod, ~6 KB: a one-container pod as a Deployment's ReplicaSet creates it and the kubelet
//!   reports it, with the two managedFields entries that leaves (`kube-controller-manager`'s
//!   create and `kubelet`'s status update, computed by the server as a real one does).
//! - [`BenchApp`], ~2 KB: a custom resource with a typical operator spec and status.
#![allow(dead_code, unused_imports, unreachable_pub, missing_docs)]

pub mod fixtures;

pub use fixtures::{BenchApp, Fixture};

/// Which controller machinery a measurement ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// windlass.
    Windlass,
    /// kube-runtime 5.0.
    Kube,
}
