//! The control loop: controllers, informers and the manager, against `windlass::testing`.

mod support;
mod basics;
