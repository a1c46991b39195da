//! Conformance of `windlass::testing`'s API server, driven through kube's client and runtime.

mod apply;
mod bad_input;
mod cr_validation;
mod crd;
mod create;
mod delete;
mod discovery;
mod faults;
mod fuzz;
mod gc;
mod leases_events;
mod list;
mod metadata;
mod openapi;
mod patch;
mod routing;
mod runtime;
mod rv;
mod subresources;
mod support;
mod update;
mod watch;
