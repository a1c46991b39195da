//! Conformance of `windlass::testing`'s API server, driven through kube's client and runtime.

mod smoke;
