//! The clock a queue's metrics read: when an item was added, taken and done.
//!
//! Only the metrics read it; what the queue does (delays, rate limits, its timer) follows
//! Tokio's clock. A queue with metrics reads it once per item in a controller (at `done`; the
//! worker's next `get` reuses that reading), so its cost is the metrics' cost.
//!
//! Where Tokio's clock runs, the stopwatch is the CPU's counter (the TSC on x86-64, through
//! `quanta`, calibrated against the monotonic clock). `Instant::now` goes through the vDSO,
//! which fences its counter read: the read waits for every load before it to complete, and in
//! a reconcile loop, whose cost is mostly cache misses on keys and objects, that wait cost
//! more than all the rest of the metrics together (a tenth of a no-op reconcile; measured in
//! `benches/metrics.rs`). An unfenced read may run a few instructions early, which no
//! histogram bucket can tell.
//!
//! Where Tokio's clock is paused when the queue is built (`#[tokio::test(start_paused =
//! true)]`), the stopwatch is Tokio's clock, so that a test advancing time sees the durations
//! it advanced, exactly.

use std::sync::OnceLock;

use tokio::time::Instant;

/// Nanoseconds on a queue's stopwatch, counted from when the queue was built.
pub(crate) type Stamp = u64;

/// A queue's metrics clock.
#[derive(Debug)]
pub(crate) enum Stopwatch {
    /// Tokio's clock, paused when the queue was built.
    Tokio { start: Instant },
    /// The CPU's counter, or the monotonic clock where `quanta` finds no counter it trusts.
    Counter { clock: quanta::Clock, start: u64 },
}

impl Stopwatch {
    /// Tokio's clock if it is paused now, the CPU's counter otherwise.
    pub(crate) fn new() -> Self {
        if tokio_clock_paused() {
            Stopwatch::Tokio {
                start: Instant::now(),
            }
        } else {
            Self::counter()
        }
    }

    /// The CPU's counter, whatever Tokio's clock does.
    fn counter() -> Self {
        // One clock per process: making one calibrates the counter the first time (about half
        // a millisecond here) and asks the CPU what counter it has every time (about 25 µs
        // under a hypervisor, where `cpuid` traps).
        static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
        let clock = CLOCK.get_or_init(quanta::Clock::new).clone();
        let start = clock.raw();
        Stopwatch::Counter { clock, start }
    }

    /// Now.
    #[inline]
    pub(crate) fn now(&self) -> Stamp {
        match self {
            Stopwatch::Tokio { start } => {
                u64::try_from(Instant::now().saturating_duration_since(*start).as_nanos())
                    .unwrap_or(u64::MAX)
            }
            // Zero for a reading behind `start`: counters of different cores may disagree
            // by a little, and a duration then saturates at zero.
            Stopwatch::Counter { clock, start } => clock.delta_as_nanos(*start, clock.raw()),
        }
    }
}

/// Seconds from `from` to `to`; zero if `to` is earlier (another core's reading).
#[inline]
pub(crate) fn seconds(from: Stamp, to: Stamp) -> f64 {
    nanos_as_seconds(to.saturating_sub(from))
}

/// Seconds in a whole number of nanoseconds.
#[inline]
pub(crate) const fn nanos_as_seconds(nanos: u64) -> f64 {
    // A division, not a multiplication by 1e-9: it is correctly rounded, so a whole number of
    // milliseconds on the paused clock is the same `f64` as `Duration::as_secs_f64` gives.
    nanos as f64 / 1e9
}

/// Whether the current runtime's clock (Tokio's) is paused: it stands still while the real
/// clock moves on. A real clock too coarse to move within the check counts as paused, which
/// only costs speed (Tokio's clock is then read), never a wrong duration.
fn tokio_clock_paused() -> bool {
    let before = Instant::now();
    let real = std::time::Instant::now();
    for _ in 0..10_000 {
        if std::time::Instant::now() != real {
            break;
        }
        std::hint::spin_loop();
    }
    Instant::now() == before
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn on_a_paused_clock_the_stopwatch_is_tokios_and_measures_what_the_test_advanced() {
        let stopwatch = Stopwatch::new();
        assert!(
            matches!(stopwatch, Stopwatch::Tokio { .. }),
            "{stopwatch:?}"
        );
        let before = stopwatch.now();
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(seconds(before, stopwatch.now()), 1.5);
    }

    #[tokio::test]
    async fn on_a_running_clock_the_stopwatch_is_the_counter_and_follows_real_time() {
        let stopwatch = Stopwatch::new();
        assert!(
            matches!(stopwatch, Stopwatch::Counter { .. }),
            "{stopwatch:?}"
        );
        let before = stopwatch.now();
        let real = real_time::busy_for(Duration::from_millis(2));
        real_time::assert_measured(seconds(before, stopwatch.now()), real);
    }

    /// As documented on `WorkQueueBuilder::metrics`: the choice is made when the queue is
    /// built, so time advanced on a clock paused later is not work the stopwatch sees.
    #[tokio::test]
    async fn a_clock_paused_after_the_stopwatch_was_made_is_not_followed() {
        let stopwatch = Stopwatch::new();
        tokio::time::pause();
        let before = stopwatch.now();
        tokio::time::advance(Duration::from_secs(10)).await;
        let measured = seconds(before, stopwatch.now());
        assert!(measured < 1.0, "measured {measured} s");
    }

    #[test]
    fn a_reading_behind_the_start_is_no_time_at_all() {
        assert_eq!(seconds(10, 4), 0.0);
        assert_eq!(seconds(4, 10), 6e-9);
    }
}

/// For tests of durations measured on a running clock: real time spent without sleeping, and
/// the check that a measurement covers it.
#[cfg(test)]
pub(crate) mod real_time {
    use std::time::{Duration, Instant};

    /// Busy-waits (no sleep) for at least `at_least`; returns the real seconds that passed.
    pub(crate) fn busy_for(at_least: Duration) -> f64 {
        let start = Instant::now();
        while start.elapsed() < at_least {
            std::hint::spin_loop();
        }
        start.elapsed().as_secs_f64()
    }

    /// `measured` seconds, taken around a span of `real` seconds, cover it: at least the real
    /// time (less a tenth for calibration, which is far better than that), and less than a
    /// second more (room for being descheduled between the readings).
    pub(crate) fn assert_measured(measured: f64, real: f64) {
        assert!(
            measured >= real * 0.9 && measured < real + 1.0,
            "measured {measured} s, real {real} s"
        );
    }
}
