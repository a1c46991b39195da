//! Shared helpers for windlass's runnable examples.
//!
//! Each example lives in `examples/examples/` and starts with a doc comment saying what it shows
//! and the command that runs it.
