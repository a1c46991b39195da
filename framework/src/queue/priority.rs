//! Priorities, and the ready queue that orders items by priority and then first in, first out.
//!
//! This file owns [`Priority`] and `ReadyQueue`, the per-priority FIFO lists of tickets that
//! `get` pops from. It does not own what an item's state is; a ticket names a slot of the
//! queue's state and the sequence number it was queued with, and the state decides whether a
//! popped ticket is still live.

use std::collections::VecDeque;

/// How urgently an item should be processed: higher priorities are handed out first.
///
/// Priorities are plain integers, as in controller-runtime's priority queue, so that a
/// controller can place its own levels between the named ones. Items of equal priority are
/// handed out first in, first out.
///
/// ```
/// use windlass::queue::Priority;
///
/// assert!(Priority::NORMAL > Priority::LOW);
/// assert_eq!(Priority::default(), Priority::NORMAL);
/// assert_eq!(Priority::new(-100), Priority::LOW);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(i32);

impl Priority {
    /// For items of an informer's initial list and of resyncs (-100, controller-runtime's
    /// `LowPriority`).
    ///
    /// A controller that starts against 50 000 existing objects queues them all at once; at this
    /// priority a change made meanwhile is handed out before that flood, instead of behind it.
    pub const LOW: Self = Self(-100);

    /// For everything else: the priority of [`WorkQueue::add`](super::WorkQueue::add) (0).
    pub const NORMAL: Self = Self(0);

    /// A priority of the given level.
    pub const fn new(level: i32) -> Self {
        Self(level)
    }

    /// The level of this priority.
    pub const fn get(self) -> i32 {
        self.0
    }
}

impl From<i32> for Priority {
    fn from(level: i32) -> Self {
        Self(level)
    }
}

/// A queued item: the slot it is in and the sequence number it was queued with.
///
/// An item whose priority is raised is queued again under a fresh sequence number and its old
/// ticket goes stale, rather than being searched for and removed from the middle of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub(crate) slot: u32,
    pub(crate) seq: u64,
}

/// One FIFO list of tickets per priority, highest priority first.
#[derive(Debug, Default)]
pub(crate) struct ReadyQueue {
    /// Sorted by descending priority. Controllers use two or three levels, so a linear scan
    /// beats any map.
    levels: Vec<Level>,
    /// Tickets in all levels, live or stale.
    tickets: usize,
}

#[derive(Debug)]
struct Level {
    priority: Priority,
    tickets: VecDeque<Ticket>,
}

/// Empty levels are kept for reuse, up to this many levels in all.
const MAX_IDLE_LEVELS: usize = 8;

impl ReadyQueue {
    /// Queue a ticket at the back of its priority level.
    pub(crate) fn push(&mut self, priority: Priority, ticket: Ticket) {
        self.tickets += 1;
        let position = self
            .levels
            .iter()
            .position(|level| level.priority <= priority);
        if let Some(i) = position
            && self.levels[i].priority == priority
        {
            self.levels[i].tickets.push_back(ticket);
            return;
        }
        if self.levels.len() >= MAX_IDLE_LEVELS {
            self.levels.retain(|level| !level.tickets.is_empty());
        }
        let at = self
            .levels
            .iter()
            .position(|level| level.priority < priority);
        let at = at.unwrap_or(self.levels.len());
        self.levels.insert(
            at,
            Level {
                priority,
                tickets: VecDeque::from([ticket]),
            },
        );
    }

    /// Take the oldest ticket of the highest non-empty priority level.
    pub(crate) fn pop(&mut self) -> Option<(Priority, Ticket)> {
        let level = self
            .levels
            .iter_mut()
            .find(|level| !level.tickets.is_empty())?;
        let ticket = level.tickets.pop_front()?;
        self.tickets -= 1;
        Some((level.priority, ticket))
    }

    /// Tickets queued, including stale ones.
    pub(crate) fn tickets(&self) -> usize {
        self.tickets
    }

    /// Drop the tickets for which `live` is false, keeping the order of the others.
    pub(crate) fn retain(&mut self, mut live: impl FnMut(Ticket) -> bool) {
        for level in &mut self.levels {
            level.tickets.retain(|&ticket| live(ticket));
        }
        self.tickets = self.levels.iter().map(|level| level.tickets.len()).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::WorkQueue;

    fn ticket(slot: u32) -> Ticket {
        Ticket {
            slot,
            seq: u64::from(slot),
        }
    }

    #[test]
    fn ready_queue_pops_highest_priority_first_then_oldest() {
        let mut ready = ReadyQueue::default();
        ready.push(Priority::LOW, ticket(1));
        ready.push(Priority::NORMAL, ticket(2));
        ready.push(Priority::new(5), ticket(3));
        ready.push(Priority::NORMAL, ticket(4));
        let popped: Vec<_> = std::iter::from_fn(|| ready.pop())
            .map(|(_, t)| t.slot)
            .collect();
        assert_eq!(popped, [3, 2, 4, 1]);
        assert_eq!(ready.tickets(), 0);
    }

    #[test]
    fn ready_queue_retain_drops_stale_tickets_and_keeps_order() {
        let mut ready = ReadyQueue::default();
        for slot in 0..10 {
            ready.push(Priority::NORMAL, ticket(slot));
        }
        ready.retain(|t| t.slot % 2 == 0);
        assert_eq!(ready.tickets(), 5);
        let popped: Vec<_> = std::iter::from_fn(|| ready.pop())
            .map(|(_, t)| t.slot)
            .collect();
        assert_eq!(popped, [0, 2, 4, 6, 8]);
    }

    #[test]
    fn ready_queue_handles_many_distinct_priorities() {
        let mut ready = ReadyQueue::default();
        for level in 0..40 {
            ready.push(Priority::new(level % 20), ticket(level as u32));
            if level % 3 == 0 {
                ready.pop();
            }
        }
        let mut last = i32::MAX;
        while let Some((priority, _)) = ready.pop() {
            assert!(priority.get() <= last);
            last = priority.get();
        }
    }

    async fn take(queue: &WorkQueue<&'static str>) -> &'static str {
        let item = queue.get().await.expect("an item is queued");
        queue.done(&item);
        item
    }

    #[tokio::test]
    async fn higher_priorities_are_handed_out_first() {
        let queue = WorkQueue::new("test");
        queue.add_with_priority("low", Priority::LOW);
        queue.add("normal");
        queue.add_with_priority("high", Priority::new(10));
        assert_eq!(take(&queue).await, "high");
        assert_eq!(take(&queue).await, "normal");
        assert_eq!(take(&queue).await, "low");
    }

    #[tokio::test]
    async fn re_adding_with_a_higher_priority_raises_it() {
        let queue = WorkQueue::new("test");
        queue.add_with_priority("a", Priority::LOW);
        queue.add_with_priority("b", Priority::LOW);
        queue.add_with_priority("c", Priority::NORMAL);
        queue.add_with_priority("b", Priority::NORMAL);
        assert_eq!(queue.len(), 3);
        assert_eq!(take(&queue).await, "c");
        assert_eq!(take(&queue).await, "b");
        assert_eq!(take(&queue).await, "a");
        assert!(queue.is_empty());
    }

    #[tokio::test]
    async fn re_adding_with_a_lower_priority_never_lowers_it() {
        let queue = WorkQueue::new("test");
        queue.add_with_priority("x", Priority::NORMAL);
        queue.add_with_priority("y", Priority::LOW);
        queue.add_with_priority("x", Priority::LOW);
        assert_eq!(take(&queue).await, "x");
        assert_eq!(take(&queue).await, "y");
    }

    #[tokio::test]
    async fn real_change_is_not_stuck_behind_a_low_priority_startup_flood() {
        let queue = WorkQueue::new("test");
        let names: Vec<String> = (0..1000).map(|i| format!("ns/initial-{i}")).collect();
        for name in &names {
            queue.add_with_priority(name.clone(), Priority::LOW);
        }
        queue.add("ns/changed".to_owned());
        assert_eq!(queue.get().await.as_deref(), Some("ns/changed"));
    }

    #[tokio::test]
    async fn priority_raised_while_processing_applies_to_the_next_pass() {
        let queue = WorkQueue::new("test");
        queue.add("busy");
        let busy = queue.get().await.unwrap();
        queue.add_with_priority("busy", Priority::LOW);
        queue.add_with_priority("busy", Priority::new(7));
        queue.add_with_priority("other", Priority::new(3));
        queue.done(&busy);
        assert_eq!(take(&queue).await, "busy");
        assert_eq!(take(&queue).await, "other");
    }

    #[tokio::test]
    async fn an_item_processed_at_high_priority_is_queued_again_at_the_priority_of_its_new_add() {
        let queue = WorkQueue::new("test");
        queue.add_with_priority("a", Priority::new(10));
        assert_eq!(take(&queue).await, "a");
        queue.add_with_priority("a", Priority::LOW);
        queue.add("b");
        assert_eq!(take(&queue).await, "b");
        assert_eq!(take(&queue).await, "a");
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_item_priority_is_raised_by_a_later_add_after() {
        let queue = WorkQueue::new("test");
        queue.add_after_with_priority("w", std::time::Duration::from_secs(1), Priority::LOW);
        queue.add_after_with_priority("w", std::time::Duration::from_secs(5), Priority::new(5));
        queue.add_after_with_priority("n", std::time::Duration::from_secs(1), Priority::NORMAL);
        tokio::time::advance(std::time::Duration::from_secs(2)).await;
        assert_eq!(queue.len(), 2);
        assert_eq!(take(&queue).await, "w");
        assert_eq!(take(&queue).await, "n");
    }

    #[tokio::test(start_paused = true)]
    async fn get_with_priority_reports_the_priority_and_a_retry_can_keep_it() {
        let queue = WorkQueue::new("test");
        queue.add_with_priority("resync", Priority::LOW);
        let (item, priority) = queue.get_with_priority().await.unwrap();
        assert_eq!((item, priority), ("resync", Priority::LOW));
        queue.add_rate_limited_with_priority(item, priority);
        queue.done(&item);
        assert_eq!(
            queue.get_with_priority().await,
            Some(("resync", Priority::LOW))
        );
        assert_eq!(queue.num_requeues(&"resync"), 1);
    }
}
