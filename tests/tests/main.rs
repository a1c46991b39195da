//! windlass integration tests, one binary: each file in this folder is a module.

// The JSON fixtures of whole CRDs nest deeper than serde_json's macro allows by default.
#![recursion_limit = "256"]

mod chaos;
mod controller;
mod derive;
mod leader;
mod object;
mod observability;
mod testing;
mod toolkit;
