//! Per-item exponential backoff (client-go's `ItemExponentialFailureRateLimiter`).
//!
//! This file owns [`ExponentialFailureRateLimiter`] and its overflow-safe backoff arithmetic.

use std::fmt;
use std::hash::Hash;
use std::time::Duration;

use hashbrown::HashMap;
use parking_lot::Mutex;

use super::RateLimiter;

/// Delays an item by `base * 2^failures`, capped at `max`, where `failures` counts the item's
/// earlier failures since it was last forgotten.
///
/// ```
/// use std::time::Duration;
/// use windlass::queue::{ExponentialFailureRateLimiter, RateLimiter};
///
/// let limiter = ExponentialFailureRateLimiter::new(Duration::from_millis(5), Duration::from_secs(1000));
/// let item = "default/web";
/// assert_eq!(limiter.when(&item), Duration::from_millis(5));
/// assert_eq!(limiter.when(&item), Duration::from_millis(10));
/// assert_eq!(limiter.when(&item), Duration::from_millis(20));
/// limiter.forget(&item);
/// assert_eq!(limiter.when(&item), Duration::from_millis(5));
/// ```
pub struct ExponentialFailureRateLimiter<K> {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<K, u32>>,
}

impl<K> ExponentialFailureRateLimiter<K> {
    /// Backoff starting at `base` and doubling on each failure, up to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }
}

impl<K> Default for ExponentialFailureRateLimiter<K> {
    /// client-go's controller default: from 5 ms to 1000 s.
    ///
    /// 5 ms retries a one-off failure (most often a write conflict, resolved by reading the
    /// object again) almost at once. Doubling reaches the 1000 s cap (~17 minutes) after 18
    /// failures, about an hour and a half of trying, so an object that keeps failing is still
    /// retried four times an hour rather than hammered or given up on.
    fn default() -> Self {
        Self::new(Duration::from_millis(5), Duration::from_secs(1000))
    }
}

impl<K> fmt::Debug for ExponentialFailureRateLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExponentialFailureRateLimiter")
            .field("base", &self.base)
            .field("max", &self.max)
            .field("items", &self.failures.lock().len())
            .finish()
    }
}

impl<K: Clone + Eq + Hash + Send + Sync> RateLimiter<K> for ExponentialFailureRateLimiter<K> {
    fn when(&self, item: &K) -> Duration {
        let exponent = {
            let mut failures = self.failures.lock();
            match failures.get_mut(item) {
                Some(count) => {
                    let exponent = *count;
                    *count = count.saturating_add(1);
                    exponent
                }
                None => {
                    failures.insert(item.clone(), 1);
                    0
                }
            }
        };
        backoff(self.base, exponent, self.max)
    }

    fn forget(&self, item: &K) {
        self.failures.lock().remove(item);
    }

    fn num_requeues(&self, item: &K) -> u32 {
        self.failures.lock().get(item).copied().unwrap_or(0)
    }
}

/// `base * 2^exponent`, or `max` if that is larger or does not fit in 128 bits of nanoseconds.
pub(super) fn backoff(base: Duration, exponent: u32, max: Duration) -> Duration {
    let nanos = 2u128
        .checked_pow(exponent)
        .and_then(|factor| base.as_nanos().checked_mul(factor));
    match nanos {
        Some(nanos) if nanos <= max.as_nanos() => duration_from_nanos(nanos),
        _ => max,
    }
}

fn duration_from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it fits in a u32.
    Duration::new(secs, (nanos % NANOS_PER_SEC) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn exponential_failure_doubles_from_base_on_each_failure() {
        let limiter = ExponentialFailureRateLimiter::new(MS, Duration::from_secs(1));
        let delays: Vec<_> = (0..5).map(|_| limiter.when(&"a")).collect();
        assert_eq!(delays, [MS, 2 * MS, 4 * MS, 8 * MS, 16 * MS]);
        assert_eq!(limiter.num_requeues(&"a"), 5);
    }

    #[test]
    fn exponential_failure_is_capped_at_max() {
        let limiter = ExponentialFailureRateLimiter::new(MS, 10 * MS);
        let delays: Vec<_> = (0..6).map(|_| limiter.when(&"a")).collect();
        assert_eq!(delays, [MS, 2 * MS, 4 * MS, 8 * MS, 10 * MS, 10 * MS]);
    }

    #[test]
    fn exponential_failure_after_1000_failures_is_the_cap_not_a_wrap_around() {
        let limiter = ExponentialFailureRateLimiter::default();
        let last = (0..1000).map(|_| limiter.when(&"a")).last();
        assert_eq!(last, Some(Duration::from_secs(1000)));
        assert_eq!(limiter.num_requeues(&"a"), 1000);
        assert_eq!(backoff(5 * MS, u32::MAX, Duration::MAX), Duration::MAX);
        assert_eq!(backoff(Duration::MAX, 1, Duration::MAX), Duration::MAX);
    }

    #[test]
    fn exponential_failure_counts_items_separately() {
        let limiter = ExponentialFailureRateLimiter::new(MS, Duration::from_secs(1));
        limiter.when(&"a");
        limiter.when(&"a");
        assert_eq!(limiter.when(&"b"), MS);
        assert_eq!(limiter.num_requeues(&"a"), 2);
        assert_eq!(limiter.num_requeues(&"c"), 0);
    }

    #[test]
    fn forget_resets_the_failure_count() {
        let limiter = ExponentialFailureRateLimiter::new(MS, Duration::from_secs(1));
        limiter.when(&"a");
        limiter.when(&"a");
        limiter.forget(&"a");
        assert_eq!(limiter.num_requeues(&"a"), 0);
        assert_eq!(limiter.when(&"a"), MS);
    }
}
