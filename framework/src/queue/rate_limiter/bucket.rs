//! The overall token bucket (client-go's `BucketRateLimiter`), built on `governor`.
//!
//! This file owns [`BucketRateLimiter`] and the clock that makes `governor` follow Tokio's
//! (pausable) time.
//!
//! client-go's bucket is `golang.org/x/time/rate`'s `Limiter.Reserve()`: every call takes a
//! token, possibly one that only becomes valid in the future, and returns how long until it is
//! valid. `governor` answers only "is a token available now" (`check`), and a refused check
//! takes nothing, so it cannot express a reservation. The bucket is therefore built on
//! governor's pieces instead of its `RateLimiter`: its [`Quota`] for the parameters, its
//! [`InMemoryState`] (the lock-free cell holding the GCRA "theoretical arrival time", updated
//! through [`StateStore::measure_and_replace`]) and its [`Clock`] trait, implemented over
//! Tokio's clock. The update is governor's GCRA step (`gcra.rs`) with the refusal removed: a
//! cell arriving at `t0` is allowed at `tat - tau` (governor refuses it when `t0` is earlier;
//! we return the difference as the wait), and the arrival time then moves to
//! `max(tat, t0) + t` exactly as governor moves it on an allowed cell. While no call has to
//! wait, the two agree call for call (a test checks this against governor's own `check`).

use std::convert::Infallible;
use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;
use governor::clock::Clock;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed, StateStore};

use super::{RateLimiter, non_zero};

/// Limits all items together to `qps` per second, with bursts of up to `burst` at once.
///
/// Every [`when`](RateLimiter::when) takes a token and returns how long until that token is
/// valid, as client-go's bucket does: with 10 per second and a burst of 100, the first 100
/// calls return zero and the following ones 100 ms, 200 ms, and so on. The bucket keeps no
/// per-item state, so [`forget`](RateLimiter::forget) does nothing and
/// [`num_requeues`](RateLimiter::num_requeues) is zero.
///
/// Time is Tokio's: under a paused clock the bucket refills only as the test advances time.
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use windlass::queue::{BucketRateLimiter, RateLimiter};
///
/// let bucket = BucketRateLimiter::new(NonZeroU32::new(2).unwrap(), NonZeroU32::new(1).unwrap());
/// assert_eq!(RateLimiter::<&str>::when(&bucket, &"a"), Duration::ZERO);
/// // The second token is valid half a second after the first (less the time this took).
/// let wait = RateLimiter::<&str>::when(&bucket, &"b");
/// assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
/// ```
pub struct BucketRateLimiter {
    quota: Quota,
    /// The time a token takes to replenish (GCRA's `t`).
    period: Nanos,
    /// How far ahead of the arrival time a cell may come (GCRA's `tau`): `period * (burst - 1)`.
    tolerance: Nanos,
    state: InMemoryState,
    clock: TokioClock,
}

impl BucketRateLimiter {
    /// A bucket refilled with `qps` tokens per second, holding at most `burst`.
    pub fn new(qps: NonZeroU32, burst: NonZeroU32) -> Self {
        Self::from_quota(Quota::per_second(qps).allow_burst(burst))
    }

    /// A bucket following a governor [`Quota`], for rates that are not a whole number per
    /// second (`Quota::with_period(Duration::from_secs(2))` for one every two seconds).
    pub fn from_quota(quota: Quota) -> Self {
        let period = Nanos::from(quota.replenish_interval().max(Duration::from_nanos(1)));
        let tolerance = period * u64::from(quota.burst_size().get() - 1);
        Self {
            quota,
            period,
            tolerance,
            state: InMemoryState::default(),
            clock: TokioClock::new(),
        }
    }

    /// Take a token and return how long until it is valid.
    fn reserve(&self) -> Duration {
        let t0 = self.clock.now();
        let (period, tolerance) = (self.period, self.tolerance);
        let Ok(wait) = self.state.measure_and_replace(&NotKeyed::NonKey, |tat| {
            let tat = tat.unwrap_or(t0);
            let wait = tat.saturating_sub(tolerance).saturating_sub(t0);
            Ok::<_, Infallible>((wait, tat.max(t0) + period))
        });
        wait.into()
    }
}

impl Default for BucketRateLimiter {
    /// client-go's controller default: 10 per second, bursts of 100.
    ///
    /// The burst lets a handful of failures (up to 100 at once) retry without any overall
    /// delay; the rate then caps retries of all items together at 10 per second, about what a
    /// controller's share of the API server's default client rate (client-go's 5 to 20 QPS
    /// clients) can absorb, so a failure hitting every object at once does not become a storm.
    fn default() -> Self {
        Self::new(non_zero(10), non_zero(100))
    }
}

impl fmt::Debug for BucketRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BucketRateLimiter")
            .field("quota", &self.quota)
            .finish_non_exhaustive()
    }
}

impl<K> RateLimiter<K> for BucketRateLimiter {
    fn when(&self, _item: &K) -> Duration {
        self.reserve()
    }

    fn forget(&self, _item: &K) {}

    fn num_requeues(&self, _item: &K) -> u32 {
        0
    }
}

/// A governor [`Clock`] reading Tokio's clock, as nanoseconds since the clock was made.
///
/// Tokio's [`Instant`](tokio::time::Instant) follows a paused test clock; governor's own
/// clocks read the system's, which tests cannot control.
#[derive(Clone, Debug)]
pub(crate) struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    pub(crate) fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.origin.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::advance;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn when(bucket: &BucketRateLimiter) -> Duration {
        RateLimiter::<()>::when(bucket, &())
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_hands_out_its_burst_at_once_then_reserves_future_tokens() {
        let bucket = BucketRateLimiter::new(non_zero(10), non_zero(100));
        for _ in 0..100 {
            assert_eq!(when(&bucket), Duration::ZERO);
        }
        let reserved: Vec<_> = (0..4).map(|_| when(&bucket)).collect();
        assert_eq!(reserved, [100 * MS, 200 * MS, 300 * MS, 400 * MS]);
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_refills_at_its_rate_as_tokio_time_passes() {
        let bucket = BucketRateLimiter::new(non_zero(10), non_zero(100));
        for _ in 0..102 {
            when(&bucket);
        }
        // Two tokens are owed; after 250 ms, 2.5 tokens have come back: the next is 50 ms away.
        advance(250 * MS).await;
        assert_eq!(when(&bucket), 50 * MS);
        // A long quiet spell refills the whole burst, and no more.
        advance(Duration::from_secs(60)).await;
        for _ in 0..100 {
            assert_eq!(when(&bucket), Duration::ZERO);
        }
        assert_eq!(when(&bucket), 100 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_agrees_with_governors_own_decision_while_no_call_waits() {
        let quota = Quota::per_second(non_zero(4)).allow_burst(non_zero(3));
        let bucket = BucketRateLimiter::from_quota(quota);
        let governor = governor::RateLimiter::direct_with_clock(quota, TokioClock::new());
        // Calls spaced so that the bucket sometimes runs dry; each time governor refuses, the
        // bucket must answer the wait governor names (and we then wait it out, so that the
        // bucket holds no reservation governor does not know about).
        for step in [0, 0, 0, 0, 100, 250, 0, 10, 500, 0, 0, 0, 0, 1000] {
            advance(step * MS).await;
            match governor.check() {
                Ok(()) => assert_eq!(when(&bucket), Duration::ZERO),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(governor.clock().now());
                    assert!(wait > Duration::ZERO);
                    assert_eq!(when(&bucket), wait);
                    advance(wait).await;
                    assert!(governor.check().is_ok());
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_with_a_period_longer_than_a_second() {
        let bucket =
            BucketRateLimiter::from_quota(Quota::with_period(Duration::from_secs(2)).unwrap());
        assert_eq!(when(&bucket), Duration::ZERO);
        assert_eq!(when(&bucket), Duration::from_secs(2));
        assert_eq!(RateLimiter::<()>::num_requeues(&bucket, &()), 0);
    }
}
