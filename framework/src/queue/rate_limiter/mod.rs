//! Rate limiters: how long [`add_rate_limited`](super::WorkQueue::add_rate_limited) delays an
//! item.
//!
//! This module owns the [`RateLimiter`] trait and client-go's rate limiters, under the same
//! names without the `Item` prefix: per-item exponential backoff
//! ([`ExponentialFailureRateLimiter`]), an overall token bucket ([`BucketRateLimiter`], backed by
//! `governor`), and the combinators [`MaxOfRateLimiter`], [`FastSlowRateLimiter`] and
//! [`MaxWaitRateLimiter`]. [`default_controller_rate_limiter`] is what a queue uses unless told
//! otherwise. It does not own the delaying itself, which is the queue's
//! [`add_after`](super::WorkQueue::add_after).

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

mod bucket;
mod combinators;
mod exponential;

pub use bucket::BucketRateLimiter;
pub use combinators::{FastSlowRateLimiter, MaxOfRateLimiter, MaxWaitRateLimiter};
pub use exponential::ExponentialFailureRateLimiter;

/// Decides how long an item waits before it is retried (client-go's `TypedRateLimiter`).
///
/// The trait is object safe: a queue holds its limiter as an `Arc<dyn RateLimiter<K>>`, and
/// [`MaxOfRateLimiter`] combines `Box<dyn RateLimiter<K>>`s.
///
/// ```
/// use std::time::Duration;
/// use windlass::queue::{RateLimiter, WorkQueue};
///
/// /// Retries everything after a fixed second.
/// #[derive(Debug)]
/// struct Fixed;
///
/// impl<K> RateLimiter<K> for Fixed {
///     fn when(&self, _item: &K) -> Duration {
///         Duration::from_secs(1)
///     }
///     fn forget(&self, _item: &K) {}
///     fn num_requeues(&self, _item: &K) -> u32 {
///         0
///     }
/// }
///
/// let queue: WorkQueue<String> = WorkQueue::builder().rate_limiter(Fixed).build();
/// # let _ = queue;
/// ```
pub trait RateLimiter<K>: Send + Sync {
    /// Records a failure of `item` and returns how long it should wait before its next try.
    fn when(&self, item: &K) -> Duration;

    /// Forgets `item`'s failures, typically once it has been processed successfully.
    fn forget(&self, item: &K);

    /// How many times `item` has failed since it was last forgotten.
    fn num_requeues(&self, item: &K) -> u32;
}

impl<K, R: RateLimiter<K> + ?Sized> RateLimiter<K> for Box<R> {
    fn when(&self, item: &K) -> Duration {
        (**self).when(item)
    }
    fn forget(&self, item: &K) {
        (**self).forget(item);
    }
    fn num_requeues(&self, item: &K) -> u32 {
        (**self).num_requeues(item)
    }
}

impl<K, R: RateLimiter<K> + ?Sized> RateLimiter<K> for Arc<R> {
    fn when(&self, item: &K) -> Duration {
        (**self).when(item)
    }
    fn forget(&self, item: &K) {
        (**self).forget(item);
    }
    fn num_requeues(&self, item: &K) -> u32 {
        (**self).num_requeues(item)
    }
}

/// client-go's default controller rate limiter: the longer of per-item exponential backoff from
/// 5 ms to 1000 s and an overall token bucket of 10 per second with a burst of 100.
///
/// The per-item backoff retries a one-off conflict almost at once and backs off an object that
/// keeps failing to one try every ~17 minutes. The bucket bounds the retries of all items
/// together, so that a failure that hits every object at once (the API server is down, a
/// webhook rejects everything) does not turn into a retry storm: past 100 quick retries, they
/// are spread at 10 per second. See [`ExponentialFailureRateLimiter::default`] and
/// [`BucketRateLimiter::default`].
pub fn default_controller_rate_limiter<K>() -> MaxOfRateLimiter<K>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
{
    MaxOfRateLimiter::new(vec![
        Box::new(ExponentialFailureRateLimiter::default()),
        Box::new(BucketRateLimiter::default()),
    ])
}

/// `n` as a `NonZeroU32`, for constants.
const fn non_zero(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => panic!("zero"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn rate_limiters_are_object_safe_and_shareable() {
        let boxed: Box<dyn RateLimiter<String>> = Box::new(default_controller_rate_limiter());
        let shared: Arc<dyn RateLimiter<String>> = Arc::new(boxed);
        let item = "ns/a".to_owned();
        assert_eq!(shared.when(&item), 5 * MS);
        assert_eq!(shared.num_requeues(&item), 1);
        shared.forget(&item);
        assert_eq!(shared.num_requeues(&item), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn default_controller_rate_limiter_is_exponential_per_item_and_bucket_limited_overall() {
        let limiter = default_controller_rate_limiter::<u32>();
        // One item failing: 5 ms, 10 ms, 20 ms ...
        let delays: Vec<_> = (0..4).map(|_| limiter.when(&0)).collect();
        assert_eq!(delays, [5 * MS, 10 * MS, 20 * MS, 40 * MS]);
        // Many items failing at once: the bucket's burst of 100 (4 taken above) is spent, then
        // each retry waits for a token at 10 per second.
        for item in 1..=96 {
            assert_eq!(limiter.when(&item), 5 * MS);
        }
        assert_eq!(limiter.when(&97), 100 * MS);
        assert_eq!(limiter.when(&98), 200 * MS);
    }
}
