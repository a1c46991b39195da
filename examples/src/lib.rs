//! Shared helpers for windlass's runnable examples.
//!
//! Each example lives in `examples/examples/` and starts with a doc comment saying what it shows
//! and the command that runs it.

use tracing_subscriber::EnvFilter;

/// Sets up logging the way every example (and most operators) want it: human-readable lines
/// by default, one JSON object per line with `--log-json` or `LOG_FORMAT=json` (what log
/// collectors in a cluster parse), and the level from `RUST_LOG` (default `info`; for example
/// `RUST_LOG=windlass=debug,info`).
pub fn init_tracing() {
    let json = std::env::args().any(|a| a == "--log-json")
        || std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if json {
        // The reconcile span's fields (controller, object, reason, attempt, outcome) come
        // with every line logged inside it.
        fmt.json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        fmt.init();
    }
}
