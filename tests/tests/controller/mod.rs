//! The control loop: controllers, informers and the manager, against `windlass::testing`.

mod basics;
mod cache;
mod concurrency;
mod errors;
mod malformed;
mod mapped;
mod owned;
mod predicates;
mod resync;
mod shutdown;
mod startup;
pub(crate) mod support;
mod watch_breaks;
