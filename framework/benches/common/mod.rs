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

/// Waits (up to 3 s) until the heap stops shrinking: a stopped controller's cache can still be
/// being freed by the runtime (an aborted task is dropped by a worker thread later), which
/// would otherwise be counted against the next measurement, in heap and in CPU.
pub async fn settle_heap() {
    let mut last = windlass_bench_support::alloc::live_bytes();
    for _ in 0..60 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let now = windlass_bench_support::alloc::live_bytes();
        if now + (1 << 20) >= last {
            return;
        }
        last = now;
    }
}

/// Which controller machinery a measurement ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// windlass.
    Windlass,
    /// kube-runtime 5.0.
    Kube,
}
