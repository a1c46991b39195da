//! The workqueue controllers run on: deduplicating, fair, prioritised, delayed and rate limited.
//!
//! This module owns [`WorkQueue`], the queue of keys (usually object references) a controller's
//! workers take work from, and the parts it is assembled from: [`Priority`], the [`RateLimiter`]
//! trait with client-go's rate limiters, and the [`QueueMetrics`] hooks. It does not own what
//! puts keys in the queue (informers and event handlers) nor the workers that take them out
//! (the controller); it is the contract between the two.
//!
//! # Semantics
//!
//! The queue has the semantics of client-go's `workqueue`, plus the priority ordering
//! controller-runtime's priority queue uses by default:
//!
//! - **Fair**: items are handed out first in, first out within a priority level.
//! - **Stingy**: an item added many times before a worker takes it is processed once.
//! - **Exclusive**: an item is never handed to two workers at once. Adding an item while a
//!   worker processes it marks it dirty; it is queued again when the worker calls
//!   [`done`](WorkQueue::done), so it is processed exactly once more, and never concurrently.
//! - **Delayed**: [`add_after`](WorkQueue::add_after) makes an item ready later. An item already
//!   waiting keeps the earlier of its two ready times, and a plain add makes it ready at once.
//! - **Prioritised**: higher [`Priority`] items are handed out first. Re-adding an item with a
//!   higher priority raises it, never lowers it. Controllers add the items of their initial list
//!   and of resyncs at [`Priority::LOW`], so that real changes are not stuck behind a startup
//!   flood.
//! - **Rate limited**: [`add_rate_limited`](WorkQueue::add_rate_limited) delays an item by what
//!   the queue's [`RateLimiter`] says (by default per-item exponential backoff from 5 ms to
//!   1000 s, and an overall token bucket of 10 per second with a burst of 100);
//!   [`forget`](WorkQueue::forget) resets an item's failures once it succeeds.
//!
//! Time comes from Tokio's clock ([`tokio::time::Instant`]), so tests can pause and advance it.
//! The durations a queue's metrics report are read on a stopwatch of its own: the CPU's counter
//! (cheaper to read than the clock), or Tokio's clock if that is paused when the queue is built,
//! as in `#[tokio::test(start_paused = true)]`.
//! A delayed item costs no task or timer of its own: the queue keeps a heap of ready times and
//! one waiting worker sleeps until the earliest.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use windlass::queue::{Priority, WorkQueue};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let queue: WorkQueue<String> = WorkQueue::new("configmaps");
//!
//! queue.add_with_priority("default/startup".to_owned(), Priority::LOW);
//! queue.add("default/changed".to_owned());
//! queue.add("default/changed".to_owned()); // merged with the add above
//! queue.add_after("default/later".to_owned(), Duration::from_millis(1));
//!
//! // The real change comes first, the initial-list item after it.
//! assert_eq!(queue.get().await.as_deref(), Some("default/changed"));
//! queue.done(&"default/changed".to_owned());
//! assert_eq!(queue.get().await.as_deref(), Some("default/startup"));
//! queue.done(&"default/startup".to_owned());
//! // `get` waits for the delayed item.
//! assert_eq!(queue.get().await.as_deref(), Some("default/later"));
//! queue.done(&"default/later".to_owned());
//!
//! queue.shut_down();
//! assert_eq!(queue.get().await, None);
//! # }
//! ```

mod delay;
mod metrics;
mod priority;
pub mod rate_limiter;
mod state;
mod stopwatch;
mod work_queue;

pub use metrics::{NoopMetrics, QueueMetrics};
pub use priority::Priority;
pub use rate_limiter::{
    BucketRateLimiter, ExponentialFailureRateLimiter, FastSlowRateLimiter, MaxOfRateLimiter,
    MaxWaitRateLimiter, RateLimiter, default_controller_rate_limiter,
};
pub(crate) use stopwatch::{Stamp, nanos_as_seconds};
pub(crate) use work_queue::Scraped;
pub use work_queue::{WorkQueue, WorkQueueBuilder};
