//! Rate limiters made of other rate limiters, or of simple rules.
//!
//! This file owns [`MaxOfRateLimiter`] (the longest delay of several limiters),
//! [`FastSlowRateLimiter`] (a fast delay for the first attempts, a slow one after) and
//! [`MaxWaitRateLimiter`] (a cap on another limiter's delay).

use std::fmt;
use std::hash::Hash;
use std::time::Duration;

use hashbrown::HashMap;
use parking_lot::Mutex;

use super::RateLimiter;

/// Asks every limiter and returns the longest delay (client-go's `MaxOfRateLimiter`).
///
/// Every limiter is asked on every call, so each records the failure (a token bucket takes its
/// token even when another limiter's delay is longer). [`num_requeues`](RateLimiter::num_requeues)
/// is the largest count among them, and [`forget`](RateLimiter::forget) reaches all of them.
/// With no limiters, the delay is zero.
pub struct MaxOfRateLimiter<K> {
    limiters: Vec<Box<dyn RateLimiter<K>>>,
}

impl<K> MaxOfRateLimiter<K> {
    /// The longest delay of `limiters`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use windlass::queue::{
    ///     BucketRateLimiter, ExponentialFailureRateLimiter, MaxOfRateLimiter, RateLimiter,
    /// };
    ///
    /// let limiter: MaxOfRateLimiter<String> = MaxOfRateLimiter::new(vec![
    ///     Box::new(ExponentialFailureRateLimiter::new(
    ///         Duration::from_millis(50),
    ///         Duration::from_secs(300),
    ///     )),
    ///     Box::new(BucketRateLimiter::default()),
    /// ]);
    /// assert_eq!(limiter.when(&"ns/a".to_owned()), Duration::from_millis(50));
    /// ```
    pub fn new(limiters: Vec<Box<dyn RateLimiter<K>>>) -> Self {
        Self { limiters }
    }
}

impl<K> fmt::Debug for MaxOfRateLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaxOfRateLimiter")
            .field("limiters", &self.limiters.len())
            .finish()
    }
}

impl<K> RateLimiter<K> for MaxOfRateLimiter<K> {
    fn when(&self, item: &K) -> Duration {
        self.limiters
            .iter()
            .map(|limiter| limiter.when(item))
            .max()
            .unwrap_or_default()
    }

    fn forget(&self, item: &K) {
        for limiter in &self.limiters {
            limiter.forget(item);
        }
    }

    fn num_requeues(&self, item: &K) -> u32 {
        self.limiters
            .iter()
            .map(|limiter| limiter.num_requeues(item))
            .max()
            .unwrap_or(0)
    }
}

/// Delays an item by `fast` for its first `max_fast_attempts` failures and by `slow` after
/// (client-go's `ItemFastSlowRateLimiter`).
///
/// For work that is expected to succeed after a few quick tries (waiting for a dependent
/// object to appear) and should then be checked rarely.
///
/// ```
/// use std::time::Duration;
/// use windlass::queue::{FastSlowRateLimiter, RateLimiter};
///
/// let limiter = FastSlowRateLimiter::new(Duration::from_millis(10), Duration::from_secs(60), 2);
/// assert_eq!(limiter.when(&"a"), Duration::from_millis(10));
/// assert_eq!(limiter.when(&"a"), Duration::from_millis(10));
/// assert_eq!(limiter.when(&"a"), Duration::from_secs(60));
/// ```
pub struct FastSlowRateLimiter<K> {
    fast: Duration,
    slow: Duration,
    max_fast_attempts: u32,
    failures: Mutex<HashMap<K, u32>>,
}

impl<K> FastSlowRateLimiter<K> {
    /// `fast` for the first `max_fast_attempts` failures of an item, `slow` after.
    pub fn new(fast: Duration, slow: Duration, max_fast_attempts: u32) -> Self {
        Self {
            fast,
            slow,
            max_fast_attempts,
            failures: Mutex::new(HashMap::new()),
        }
    }
}

impl<K> fmt::Debug for FastSlowRateLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FastSlowRateLimiter")
            .field("fast", &self.fast)
            .field("slow", &self.slow)
            .field("max_fast_attempts", &self.max_fast_attempts)
            .field("items", &self.failures.lock().len())
            .finish()
    }
}

impl<K: Clone + Eq + Hash + Send + Sync> RateLimiter<K> for FastSlowRateLimiter<K> {
    fn when(&self, item: &K) -> Duration {
        let attempts = {
            let mut failures = self.failures.lock();
            if let Some(count) = failures.get_mut(item) {
                *count = count.saturating_add(1);
                *count
            } else {
                failures.insert(item.clone(), 1);
                1
            }
        };
        if attempts <= self.max_fast_attempts {
            self.fast
        } else {
            self.slow
        }
    }

    fn forget(&self, item: &K) {
        self.failures.lock().remove(item);
    }

    fn num_requeues(&self, item: &K) -> u32 {
        self.failures.lock().get(item).copied().unwrap_or(0)
    }
}

/// Caps another limiter's delay at `max_wait` (client-go's `WithMaxWaitRateLimiter`).
///
/// For a limiter whose delays can grow too long for the work at hand, such as a token bucket
/// that a burst of failures has sent far into the future.
///
/// ```
/// use std::time::Duration;
/// use windlass::queue::{ExponentialFailureRateLimiter, MaxWaitRateLimiter, RateLimiter};
///
/// let limiter = MaxWaitRateLimiter::new(
///     ExponentialFailureRateLimiter::new(Duration::from_secs(1), Duration::from_secs(1000)),
///     Duration::from_secs(3),
/// );
/// let delays: Vec<_> = (0..4).map(|_| limiter.when(&"a").as_secs()).collect();
/// assert_eq!(delays, [1, 2, 3, 3]);
/// ```
#[derive(Debug)]
pub struct MaxWaitRateLimiter<R> {
    inner: R,
    max_wait: Duration,
}

impl<R> MaxWaitRateLimiter<R> {
    /// `inner`'s delays, capped at `max_wait`.
    pub fn new(inner: R, max_wait: Duration) -> Self {
        Self { inner, max_wait }
    }
}

impl<K, R: RateLimiter<K>> RateLimiter<K> for MaxWaitRateLimiter<R> {
    fn when(&self, item: &K) -> Duration {
        self.inner.when(item).min(self.max_wait)
    }

    fn forget(&self, item: &K) {
        self.inner.forget(item);
    }

    fn num_requeues(&self, item: &K) -> u32 {
        self.inner.num_requeues(item)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::queue::ExponentialFailureRateLimiter;

    const MS: Duration = Duration::from_millis(1);

    /// Answers a fixed delay and counts its calls.
    #[derive(Debug, Default)]
    struct Fixed {
        delay: Duration,
        requeues: u32,
        forgotten: Arc<AtomicU32>,
    }

    impl RateLimiter<&'static str> for Fixed {
        fn when(&self, _: &&'static str) -> Duration {
            self.delay
        }
        fn forget(&self, _: &&'static str) {
            self.forgotten.fetch_add(1, Ordering::Relaxed);
        }
        fn num_requeues(&self, _: &&'static str) -> u32 {
            self.requeues
        }
    }

    #[test]
    fn max_of_returns_the_longest_delay_and_the_largest_requeue_count() {
        let limiter = MaxOfRateLimiter::new(vec![
            Box::new(Fixed {
                delay: 3 * MS,
                requeues: 7,
                ..Fixed::default()
            }),
            Box::new(Fixed {
                delay: 9 * MS,
                requeues: 2,
                ..Fixed::default()
            }),
            Box::new(Fixed {
                delay: MS,
                requeues: 4,
                ..Fixed::default()
            }),
        ]);
        assert_eq!(limiter.when(&"a"), 9 * MS);
        assert_eq!(limiter.num_requeues(&"a"), 7);
    }

    #[test]
    fn max_of_asks_every_limiter_and_forget_reaches_all_of_them() {
        let forgotten = Arc::new(AtomicU32::new(0));
        let fixed = || Fixed {
            forgotten: forgotten.clone(),
            ..Fixed::default()
        };
        let exponential = Arc::new(ExponentialFailureRateLimiter::new(
            MS,
            Duration::from_secs(1),
        ));
        let limiter = MaxOfRateLimiter::new(vec![
            Box::new(fixed()),
            Box::new(exponential.clone()),
            Box::new(fixed()),
        ]);
        limiter.when(&"a");
        limiter.when(&"a");
        assert_eq!(exponential.num_requeues(&"a"), 2);
        limiter.forget(&"a");
        assert_eq!(forgotten.load(Ordering::Relaxed), 2);
        assert_eq!(exponential.num_requeues(&"a"), 0);
    }

    #[test]
    fn max_of_nothing_is_no_delay() {
        let limiter = MaxOfRateLimiter::<&str>::new(Vec::new());
        assert_eq!(limiter.when(&"a"), Duration::ZERO);
        assert_eq!(limiter.num_requeues(&"a"), 0);
    }

    #[test]
    fn fast_slow_uses_the_fast_delay_for_the_first_attempts_then_the_slow_one() {
        let limiter = FastSlowRateLimiter::new(5 * MS, 10 * MS, 3);
        let delays: Vec<_> = (0..5).map(|_| limiter.when(&"a")).collect();
        assert_eq!(delays, [5 * MS, 5 * MS, 5 * MS, 10 * MS, 10 * MS]);
        assert_eq!(limiter.num_requeues(&"a"), 5);
        assert_eq!(limiter.when(&"b"), 5 * MS);
    }

    #[test]
    fn fast_slow_forget_resets_to_fast() {
        let limiter = FastSlowRateLimiter::new(5 * MS, 10 * MS, 1);
        limiter.when(&"a");
        assert_eq!(limiter.when(&"a"), 10 * MS);
        limiter.forget(&"a");
        assert_eq!(limiter.num_requeues(&"a"), 0);
        assert_eq!(limiter.when(&"a"), 5 * MS);
    }

    #[test]
    fn max_wait_caps_the_inner_delay_and_passes_the_rest_through() {
        let limiter = MaxWaitRateLimiter::new(
            ExponentialFailureRateLimiter::new(MS, Duration::from_secs(10)),
            3 * MS,
        );
        let delays: Vec<_> = (0..4).map(|_| limiter.when(&"a")).collect();
        assert_eq!(delays, [MS, 2 * MS, 3 * MS, 3 * MS]);
        assert_eq!(limiter.num_requeues(&"a"), 4);
        limiter.forget(&"a");
        assert_eq!(limiter.num_requeues(&"a"), 0);
    }
}
