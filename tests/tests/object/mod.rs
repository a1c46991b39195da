//! `windlass::object` with derived types and the test API server: GVKs, deep copies, a scheme
//! decoding mixed objects, and a REST mapper reading discovery.

mod model;
mod rest_mapper;
mod scheme;
