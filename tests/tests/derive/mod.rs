//! `#[derive(CustomResource)]`: golden CRDs, structural schemas, and custom resources served by
//! the test API server.

mod apiserver;
mod golden;
pub(crate) mod specs;
