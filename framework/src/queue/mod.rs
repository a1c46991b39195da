//! The workqueue controllers run on (placeholder, being written).
