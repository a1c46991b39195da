//! Measuring tools shared by windlass's benchmarks (`framework/benches/`), kept out of the
//! framework so its builds never carry them.
//!
//! - [`alloc`]: a counting global allocator (live and peak heap bytes, allocations), which a
//!   benchmark binary installs with `#[global_allocator]`.
//! - [`os`]: what the kernel says: process and thread CPU time, resident set size.
//! - [`report`]: quick mode, medians and percentiles, and the table of interleaved pairs
//!   (windlass, baseline, windlass, baseline, ...) every benchmark prints.
//!
//! It owns no scenario and no fixture: those live with the benchmarks.

pub mod alloc;
pub mod os;
pub mod report;

pub use alloc::CountingAlloc;
pub use report::{Table, quick};
