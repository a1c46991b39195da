//! windlass integration tests, one binary: each file in this folder is a module.

mod controller;
mod derive;
mod object;
mod observability;
mod testing;
