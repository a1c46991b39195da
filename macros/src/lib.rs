//! Derive macros for [windlass](https://docs.rs/windlass).
//!
//! This crate is re-exported by `windlass`; depend on that instead of on this crate directly.
//! The `CustomResource` derive arrives with the object-model work; until then the crate is empty.
