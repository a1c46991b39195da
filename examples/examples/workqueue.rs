//! The workqueue on its own: two workers taking keys from a `WorkQueue`, showing that repeated
//! adds are merged (`add`), that an item added while it is processed runs once more after
//! `done`, priorities (`add_with_priority`), delays (`add_after`), retries with per-item
//! backoff (`add_rate_limited`, `forget`), and a draining shutdown.
//!
//! Run with `cargo run --example workqueue`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use windlass::queue::{ExponentialFailureRateLimiter, Priority, WorkQueue};

/// Successful passes the example waits for: web twice, resync, later, flaky.
const PASSES: usize = 5;

/// Passes over "default/web" so far, by either worker.
static WEB_PASSES: AtomicU32 = AtomicU32::new(0);

#[tokio::main]
async fn main() {
    let start = Instant::now();
    // ANCHOR: setup
    let queue: WorkQueue<String> = WorkQueue::builder()
        .name("example")
        // Short backoff so the example finishes quickly: 1 ms, 2 ms, 4 ms ... up to 20 ms.
        .rate_limiter(ExponentialFailureRateLimiter::new(
            Duration::from_millis(1),
            Duration::from_millis(20),
        ))
        .build();

    queue.add_with_priority("default/resync".to_owned(), Priority::LOW);
    queue.add("default/web".to_owned());
    queue.add("default/web".to_owned());
    queue.add("default/flaky".to_owned());
    queue.add_after("default/later".to_owned(), Duration::from_millis(5));
    // ANCHOR_END: setup
    println!(
        "queued {} items (web added twice, merged; resync at low priority; later in 5 ms)",
        queue.len()
    );

    let (passed, mut passes) = mpsc::unbounded_channel();
    let workers: Vec<_> = (1..=2)
        .map(|id| tokio::spawn(worker(id, queue.clone(), passed.clone(), start)))
        .collect();
    for _ in 0..PASSES {
        passes.recv().await.expect("workers run until shutdown");
    }

    queue.shut_down_with_drain().await;
    for worker in workers {
        worker.await.expect("worker panicked");
    }
    println!("[{:>5.1?}] queue shut down and drained", start.elapsed());
}

async fn worker(
    id: u32,
    queue: WorkQueue<String>,
    passed: mpsc::UnboundedSender<()>,
    start: Instant,
) {
    // ANCHOR: worker
    while let Some(key) = queue.get().await {
        let at = start.elapsed();
        match key.as_str() {
            "default/web" => {
                println!("[{at:>5.1?}] worker {id}: {key}");
                if WEB_PASSES.fetch_add(1, Ordering::Relaxed) == 0 {
                    // A watch event for the same object while it is being processed: it is
                    // not handed to the other worker, but queued again once this pass is done.
                    queue.add(key.clone());
                    println!("[{at:>5.1?}] worker {id}: {key} changed meanwhile, runs once more");
                }
                passed.send(()).ok();
            }
            "default/flaky" if queue.num_requeues(&key) < 3 => {
                println!(
                    "[{at:>5.1?}] worker {id}: {key} failed (retry {}), backing off",
                    queue.num_requeues(&key) + 1
                );
                queue.add_rate_limited(key.clone());
            }
            _ => {
                println!("[{at:>5.1?}] worker {id}: {key}");
                queue.forget(&key);
                passed.send(()).ok();
            }
        }
        // Stand-in for real work.
        tokio::time::sleep(Duration::from_millis(1)).await;
        queue.done(&key);
    }
    // ANCHOR_END: worker
    println!(
        "[{:>5.1?}] worker {id}: queue shut down, exiting",
        start.elapsed()
    );
}
