//! Counts windlass's log lines by message, so a scenario can check that every failure it
//! caused was reported (invariant 5: clear errors).
//!
//! Installed as the thread's default subscriber: a `#[tokio::test]` runs every task of the
//! test on its one thread, so the count covers the whole operator and nothing of other tests.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::subscriber::DefaultGuard;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Log lines of windlass, at debug level and above, counted by message.
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<BTreeMap<String, u64>>>);

/// An event's message, then ` | ` and its `error` field if it has one.
#[derive(Default)]
struct Message(String, String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.0 = format!("{value:?}"),
            "error" => self.1 = format!("{value:?}"),
            _ => {}
        }
    }
}

impl<S: Subscriber> Layer<S> for Logs {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut m = Message::default();
        event.record(&mut m);
        let line = if m.1.is_empty() {
            m.0
        } else {
            format!("{} | {}", m.0, m.1)
        };
        *self.0.lock().entry(line).or_default() += 1;
    }
}

impl Logs {
    /// Starts counting on this thread until the guard is dropped.
    pub(crate) fn install() -> (Logs, DefaultGuard) {
        let logs = Logs::default();
        let filter = Targets::new().with_target("windlass", Level::DEBUG);
        // `WINDLASS_CHAOS_LOG=<filter>` also prints the logs, to see what led to a failure.
        let print = std::env::var("WINDLASS_CHAOS_LOG").ok().map(|directives| {
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(tracing_subscriber::EnvFilter::new(directives))
        });
        let subscriber = tracing_subscriber::registry()
            .with(logs.clone().with_filter(filter))
            .with(print);
        let guard = tracing::subscriber::set_default(subscriber);
        (logs, guard)
    }

    /// The lines that started with `prefix`, with their counts.
    pub(crate) fn lines(&self, prefix: &str) -> Vec<(String, u64)> {
        self.0
            .lock()
            .iter()
            .filter(|(m, _)| m.starts_with(prefix))
            .map(|(m, n)| (m.clone(), *n))
            .collect()
    }

    /// How many lines started with `prefix`.
    pub(crate) fn count(&self, prefix: &str) -> u64 {
        self.0
            .lock()
            .iter()
            .filter(|(m, _)| m.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }
}
