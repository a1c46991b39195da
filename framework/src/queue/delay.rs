//! The deadline heap behind `add_after`: items waiting for their ready time.
//!
//! This file owns `DelayHeap`, a min-heap of (ready time, sequence number, slot). It does not
//! own timers: no task or `Sleep` exists per delayed item. Instead one waiting `get` sleeps
//! until the earliest ready time (see `work_queue.rs`), and every `get` moves the items that
//! are due into the ready queue before it pops.
//!
//! Entries are never removed from the middle of the heap. An item that is re-added with an
//! earlier ready time, or plainly added while it waits, gets a fresh sequence number; its old
//! entry goes stale and is skipped (and eventually dropped) when it reaches the top.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tokio::time::Instant;

use super::priority::Ticket;

/// A min-heap of waiting items, earliest ready time first; among equal ready times, the one
/// scheduled first.
#[derive(Debug, Default)]
pub(crate) struct DelayHeap {
    heap: BinaryHeap<Reverse<(Instant, u64, u32)>>,
}

impl DelayHeap {
    /// Schedule a ticket for `ready_at`.
    pub(crate) fn push(&mut self, ready_at: Instant, ticket: Ticket) {
        self.heap.push(Reverse((ready_at, ticket.seq, ticket.slot)));
    }

    /// Entries in the heap, live or stale.
    pub(crate) fn entries(&self) -> usize {
        self.heap.len()
    }

    /// The earliest ready time among live entries, dropping stale entries off the top.
    pub(crate) fn earliest(&mut self, mut live: impl FnMut(Ticket) -> bool) -> Option<Instant> {
        while let Some(&Reverse((ready_at, seq, slot))) = self.heap.peek() {
            if live(Ticket { slot, seq }) {
                return Some(ready_at);
            }
            self.heap.pop();
        }
        None
    }

    /// Take the next entry, live or stale, whose ready time is at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Ticket> {
        let &Reverse((ready_at, seq, slot)) = self.heap.peek()?;
        if ready_at > now {
            return None;
        }
        self.heap.pop();
        Some(Ticket { slot, seq })
    }

    /// Drop the stale entries.
    pub(crate) fn retain(&mut self, mut live: impl FnMut(Ticket) -> bool) {
        self.heap
            .retain(|&Reverse((_, seq, slot))| live(Ticket { slot, seq }));
    }

    /// Take every entry, live or stale.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Ticket> + '_ {
        self.heap
            .drain()
            .map(|Reverse((_, seq, slot))| Ticket { slot, seq })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::advance;

    use super::*;
    use crate::queue::WorkQueue;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test(start_paused = true)]
    async fn delay_heap_pops_due_entries_in_ready_time_then_schedule_order() {
        let now = Instant::now();
        let mut heap = DelayHeap::default();
        heap.push(now + 3 * MS, Ticket { slot: 0, seq: 1 });
        heap.push(now + MS, Ticket { slot: 1, seq: 2 });
        heap.push(now + 3 * MS, Ticket { slot: 2, seq: 3 });
        heap.push(now + 9 * MS, Ticket { slot: 3, seq: 4 });
        assert_eq!(heap.earliest(|t| t.slot != 1), Some(now + 3 * MS));
        let due: Vec<_> = std::iter::from_fn(|| heap.pop_due(now + 5 * MS)).collect();
        assert_eq!(due.iter().map(|t| t.slot).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(heap.entries(), 1);
    }

    async fn take(queue: &WorkQueue<&'static str>) -> &'static str {
        let item = queue.get().await.expect("an item is queued");
        queue.done(&item);
        item
    }

    #[tokio::test(start_paused = true)]
    async fn add_after_with_zero_delay_is_a_plain_add() {
        let queue = WorkQueue::new("test");
        queue.add_after("now", Duration::ZERO);
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.try_get_for_test(), Some("now"));
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_item_is_handed_out_once_its_delay_has_passed_and_not_before() {
        let queue = WorkQueue::new("test");
        let start = Instant::now();
        queue.add_after("later", 50 * MS);
        assert_eq!(queue.len(), 0);
        advance(49 * MS).await;
        assert_eq!(queue.try_get_for_test(), None);
        assert_eq!(take(&queue).await, "later");
        assert_eq!(start.elapsed(), 50 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_item_keeps_the_earlier_of_two_ready_times() {
        let queue = WorkQueue::new("test");
        let start = Instant::now();
        queue.add_after("sooner-second", 30 * MS);
        queue.add_after("sooner-second", 10 * MS);
        queue.add_after("sooner-first", 20 * MS);
        queue.add_after("sooner-first", 40 * MS);
        assert_eq!(take(&queue).await, "sooner-second");
        assert_eq!(start.elapsed(), 10 * MS);
        assert_eq!(take(&queue).await, "sooner-first");
        assert_eq!(start.elapsed(), 20 * MS);
        // Each was handed out once: their stale later entries do not bring them back.
        advance(100 * MS).await;
        assert_eq!(queue.try_get_for_test(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_item_added_plainly_becomes_ready_at_once() {
        let queue = WorkQueue::new("test");
        queue.add_after("w", Duration::from_secs(60));
        queue.add("w");
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.try_get_for_test(), Some("w"));
        queue.done(&"w");
        advance(Duration::from_secs(61)).await;
        assert_eq!(queue.try_get_for_test(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn items_due_together_come_out_in_ready_time_order() {
        let queue = WorkQueue::new("test");
        queue.add_after("third", 3 * MS);
        queue.add_after("first", MS);
        queue.add_after("fourth", 4 * MS);
        queue.add_after("second", 2 * MS);
        advance(10 * MS).await;
        assert_eq!(queue.len(), 4);
        for expected in ["first", "second", "third", "fourth"] {
            assert_eq!(take(&queue).await, expected);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_getter_wakes_for_an_earlier_delay_added_after_it_started_waiting() {
        let queue = WorkQueue::new("test");
        let start = Instant::now();
        queue.add_after("slow", Duration::from_secs(10));
        let getter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.get().await }
        });
        tokio::task::yield_now().await;
        queue.add_after("fast", 5 * MS);
        let got = tokio::time::timeout(Duration::from_secs(3600), getter).await;
        assert_eq!(
            got.expect("the getter was never woken").unwrap(),
            Some("fast")
        );
        assert_eq!(start.elapsed(), 5 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn several_waiting_getters_all_receive_delayed_items() {
        let queue = WorkQueue::new("test");
        let getters: Vec<_> = (0..4)
            .map(|_| {
                let queue = queue.clone();
                tokio::spawn(async move { queue.get().await })
            })
            .collect();
        tokio::task::yield_now().await;
        for (item, delay) in [("a", 4), ("b", 1), ("c", 3), ("d", 1)] {
            queue.add_after(item, delay * MS);
        }
        let mut got = Vec::new();
        for getter in getters {
            // Under the paused clock a lost wakeup fails here at once instead of hanging.
            let item = tokio::time::timeout(Duration::from_secs(3600), getter).await;
            got.push(item.expect("a getter was never woken").unwrap().unwrap());
        }
        got.sort_unstable();
        assert_eq!(got, ["a", "b", "c", "d"]);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_items_are_dropped_at_shut_down() {
        let queue = WorkQueue::new("test");
        queue.add_after("w", MS);
        queue.add("r");
        queue.shut_down();
        advance(10 * MS).await;
        assert_eq!(queue.get().await, Some("r"));
        queue.done(&"r");
        assert_eq!(queue.get().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn add_after_on_a_processing_item_requeues_it_once_due_and_done() {
        let queue = WorkQueue::new("test");
        queue.add("p");
        let p = queue.get().await.unwrap();
        queue.add_after("p", 5 * MS);
        advance(10 * MS).await;
        assert_eq!(queue.len(), 0, "still processing: not queued twice");
        queue.done(&p);
        assert_eq!(queue.try_get_for_test(), Some("p"));
    }

    #[tokio::test(start_paused = true)]
    async fn stale_heap_entries_are_compacted() {
        let queue = WorkQueue::new("test");
        for round in 0..1000u32 {
            queue.add_after(round % 4, Duration::from_secs(1000));
            queue.add(round % 4);
            let item = queue.try_get_for_test().unwrap();
            queue.done(&item);
        }
        assert!(queue.delay_entries_for_test() < 100);
    }

    /// Only delayed adds, many getters, several threads: a lost timer handover would leave
    /// items undelivered and hang the test until its guard timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn delayed_items_reach_many_concurrent_getters_without_a_lost_wakeup() {
        const ITEMS: u32 = 2000;
        let queue: WorkQueue<u32> = WorkQueue::new("delays");
        let (delivered, mut deliveries) = tokio::sync::mpsc::unbounded_channel();
        let getters: Vec<_> = (0..16)
            .map(|_| {
                let (queue, delivered) = (queue.clone(), delivered.clone());
                tokio::spawn(async move {
                    while let Some(item) = queue.get().await {
                        delivered.send(item).unwrap();
                        queue.done(&item);
                    }
                })
            })
            .collect();
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        for item in 0..ITEMS {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            queue.add_after(item, Duration::from_micros(rng % 500));
            if item % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let mut seen = std::collections::HashSet::new();
        let all = async {
            while seen.len() < ITEMS as usize {
                seen.insert(deliveries.recv().await.unwrap());
            }
        };
        // A guard against a hang, not a timing assertion.
        tokio::time::timeout(Duration::from_secs(60), all)
            .await
            .expect("a delayed item was lost");
        queue.shut_down();
        for getter in getters {
            getter.await.unwrap();
        }
    }
}
