//! Conformance of `windlass::testing`'s API server, driven through kube's client and runtime.

mod routing;
mod smoke;
mod support;
