//! The controller's side of its workqueue: keys go in with the reason they were added for, so
//! the reconcile that takes a key can say why it runs.

use std::time::Duration;

use hashbrown::HashMap;
use parking_lot::Mutex;

use super::context::ReconcileReason;
use crate::informer::ObjectKey;
use crate::queue::{Priority, WorkQueue};

/// A controller's queue plus the pending reason of every queued key, and how many times in a
/// row each key's reconcile has failed.
#[derive(Debug)]
pub(crate) struct Enqueuer {
    pub(crate) queue: WorkQueue<ObjectKey>,
    /// Both maps under one lock: a reconcile starts by reading both ([`Enqueuer::take`]).
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    reasons: HashMap<ObjectKey, ReconcileReason>,
    /// Counted here rather than read from the rate limiter, which only counts the retries it
    /// delays: a retry the error hook schedules itself is a failure all the same.
    failures: HashMap<ObjectKey, u32>,
}

impl Enqueuer {
    pub(crate) fn new(queue: WorkQueue<ObjectKey>) -> Self {
        Self {
            queue,
            pending: Mutex::default(),
        }
    }

    /// What a reconcile of `key` starts from: the reason it was queued for (forgetting it),
    /// and how many times in a row its reconcile has failed.
    pub(crate) fn take(&self, key: &ObjectKey) -> (ReconcileReason, u32) {
        let mut state = self.pending.lock();
        let reason = state
            .reasons
            .remove(key)
            .unwrap_or(ReconcileReason::Requeue);
        (reason, state.failures.get(key).copied().unwrap_or(0))
    }

    /// Counts one more failure of `key`'s reconcile.
    pub(crate) fn count_failure(&self, key: &ObjectKey) {
        *self.pending.lock().failures.entry(key.clone()).or_default() += 1;
    }

    /// Forgets `key`'s failures (after a success, or when giving up until it changes).
    pub(crate) fn reset_failures(&self, key: &ObjectKey) {
        self.pending.lock().failures.remove(key);
    }

    fn note(&self, key: &ObjectKey, reason: ReconcileReason) {
        let mut state = self.pending.lock();
        let reasons = &mut state.reasons;
        match reasons.get(key) {
            Some(pending) if pending.weight() > reason.weight() => {}
            _ => {
                reasons.insert(key.clone(), reason);
            }
        }
    }

    pub(crate) fn enqueue(&self, key: ObjectKey, reason: ReconcileReason, priority: Priority) {
        if self.queue.is_shutting_down() {
            return;
        }
        self.note(&key, reason);
        self.queue.add_with_priority(key, priority);
    }

    pub(crate) fn enqueue_after(&self, key: ObjectKey, reason: ReconcileReason, after: Duration) {
        self.note(&key, reason);
        self.queue.add_after(key, after);
    }

    pub(crate) fn enqueue_rate_limited(&self, key: ObjectKey, reason: ReconcileReason) {
        self.note(&key, reason);
        self.queue.add_rate_limited(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::context::EventKind;

    #[tokio::test]
    async fn a_real_change_is_not_hidden_by_a_later_resync() {
        let e = Enqueuer::new(WorkQueue::new("test"));
        let key = ObjectKey::new(Some("ns"), "a");
        e.enqueue(
            key.clone(),
            ReconcileReason::ObjectChanged(EventKind::Updated),
            Priority::NORMAL,
        );
        e.enqueue(key.clone(), ReconcileReason::Resync, Priority::LOW);
        assert_eq!(e.queue.get().await, Some(key.clone()));
        assert_eq!(
            e.take(&key),
            (ReconcileReason::ObjectChanged(EventKind::Updated), 0)
        );
        assert_eq!(e.take(&key), (ReconcileReason::Requeue, 0));
    }
}
