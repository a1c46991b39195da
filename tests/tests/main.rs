//! windlass integration tests, one binary: each file in this folder is a module.

mod controller;
mod derive;
mod leader;
mod object;
mod testing;
