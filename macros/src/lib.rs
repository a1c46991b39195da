//! Derive macros for [windlass](https://docs.rs/windlass).
//!
//! This crate is re-exported by `windlass`; depend on that instead of on this crate directly,
//! and read the derive's documentation at `windlass::CustomResource`.
//!
//! The layout follows serde_derive's: `lib.rs` parses the input and hands off, `attr.rs` reads
//! `#[windlass(...)]` into a typed model that keeps spans, `valid.rs` checks the rules that span
//! several attributes, and `expand.rs` writes the code. Errors are collected in `ctxt.rs` and
//! reported together.

mod attr;
mod case;
mod ctxt;
mod expand;
mod valid;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derive a Kubernetes custom resource type from its spec struct.
///
/// See `windlass::CustomResource` for the attributes and what is generated.
#[proc_macro_derive(CustomResource, attributes(windlass))]
pub fn derive_custom_resource(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
