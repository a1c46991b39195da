//! The control loop: controllers, informers and the manager, against `windlass::testing`.

mod basics;
mod owned;
mod support;
