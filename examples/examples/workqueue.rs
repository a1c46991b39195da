//! The workqueue on its own (placeholder, being written).
fn main() {}
