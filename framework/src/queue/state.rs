//! The queue's state behind its one lock, and every transition of an item through it.
//!
//! This file owns `State`: the key index, the slots that hold each known item, the ready queue,
//! the deadline heap and the counters the waiting logic needs. Its methods are synchronous and
//! run under the queue's mutex; they report whether a waiter should be woken and leave waking it
//! (after the lock is released) to `work_queue.rs`.
//!
//! An item is known to the queue (has a slot) while it is queued, waiting, or processing. The
//! index maps a key to its slot by the key's hash, stored in the slot so the key is hashed once
//! per call and never again on growth; `get` reaches the slot through its ticket without hashing
//! at all. Slots are reused through a free list, so steady state allocates nothing but the key
//! clone `get` returns.

use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashTable, hash_table::Entry};
use tokio::time::Instant;

use super::delay::DelayHeap;
use super::metrics::QueueMetrics;
use super::priority::{Priority, ReadyQueue, Ticket};
use super::stopwatch::{self, Stamp, nanos_as_seconds};
use crate::metrics::{Tally, WorkqueueMetrics};

/// Where a queue's measurements go.
pub(crate) enum Record {
    /// Nowhere: the queue does not even read the clock for them.
    Off,
    /// To a [`QueueMetrics`]'s hooks: the counts and depths under the lock, the durations
    /// handed to the caller to report once it is released.
    Hooks(Arc<dyn QueueMetrics>),
    /// Into a tally kept here, which windlass's own series take when scraped.
    Tally {
        tally: Box<Tally>,
        series: Arc<WorkqueueMetrics>,
    },
}

impl Record {
    /// Where the measurements for `metrics` go: a tally for windlass's own series, the hooks
    /// for any other.
    pub(crate) fn to(metrics: Option<&Arc<dyn QueueMetrics>>) -> Self {
        let Some(metrics) = metrics else {
            return Record::Off;
        };
        match WorkqueueMetrics::downcast(metrics) {
            Some(series) => Record::Tally {
                tally: Box::default(),
                series,
            },
            None => Record::Hooks(metrics.clone()),
        }
    }

    #[inline]
    fn on(&self) -> bool {
        !matches!(self, Record::Off)
    }

    #[inline]
    fn add(&mut self, priority: Priority) {
        match self {
            Record::Off => {}
            Record::Hooks(m) => {
                m.add();
                m.depth_inc(priority);
            }
            Record::Tally { tally, .. } => tally.add(priority),
        }
    }

    #[inline]
    fn depth(&mut self, priority: Priority, delta: i64) {
        match self {
            Record::Off => {}
            Record::Hooks(m) if delta > 0 => m.depth_inc(priority),
            Record::Hooks(m) => m.depth_dec(priority),
            Record::Tally { tally, .. } => tally.depth(priority, delta),
        }
    }

    /// Records a duration of `nanos` nanoseconds with `tally` (`Tally::queue_latency` or
    /// `Tally::work_duration`); for hooks, returns it in seconds, to be reported once the lock
    /// is released. `tally` is a type parameter, not a function pointer, so the call inlines.
    #[inline]
    fn duration(&mut self, nanos: u64, tally: impl FnOnce(&mut Tally, u64)) -> Option<f64> {
        match self {
            Record::Tally { tally: t, .. } => {
                tally(t, nanos);
                None
            }
            _ => Some(nanos_as_seconds(nanos)),
        }
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Record::Off => "Off",
            Record::Hooks(_) => "Hooks",
            Record::Tally { .. } => "Tally",
        })
    }
}

/// What remains to be done for an item, apart from the pass a worker may be making.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    /// Nothing.
    Clean,
    /// Becomes dirty at this ready time; its live heap entry carries the slot's `seq`.
    Waiting(Instant),
    /// Needs a pass: in the ready queue (its live ticket carries the slot's `seq`), or, while
    /// a worker processes it, queued again at `done`.
    Dirty,
}

#[derive(Debug)]
struct Slot<K> {
    /// `None` while the slot is on the free list.
    key: Option<K>,
    hash: u64,
    /// The sequence number of the item's one live ticket or heap entry.
    seq: u64,
    priority: Priority,
    pending: Pending,
    processing: bool,
    /// When it became dirty, for the queue latency metric.
    added_at: Option<Stamp>,
    /// When a worker took it (the stopwatch's reading), while one has it and metrics are on;
    /// `IDLE` otherwise. Kept here, in the slot that taking and finishing the item write
    /// anyway, rather than in a table of the items in flight: where workers on two threads
    /// take turns at the queue's lock, such a table's lines moved between their cores on
    /// every item, which cost a no-op reconcile about 2 % more (see the performance
    /// chapter's metrics section).
    started_at: Stamp,
}

/// What the taker of an item does once the queue's lock is released ([`State::after_take`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AfterTake {
    /// Whether to wake another waiting `get`: items are left for it.
    pub(crate) wake_another: bool,
    /// The item's queue latency in seconds, for the hooks (none with a tally or no metrics).
    pub(crate) latency: Option<f64>,
}

/// How long a `done` item was processed, and the stopwatch reading its work ended at (with
/// metrics on).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Worked {
    /// Nanoseconds from the `get` that handed the item out to the end of its work.
    pub(crate) nanos: u64,
    /// The reading its work ended at: the worker's, or the one `done` took.
    pub(crate) at: Stamp,
}

/// A slot's `started_at` when no worker has its item, or metrics are off.
const IDLE: Stamp = Stamp::MAX;

/// Stale tickets (or heap entries) are dropped once there are more than twice as many as live
/// items, plus this slack, so that compaction is amortised over many operations.
const COMPACT_SLACK: usize = 64;

/// A waiting item further away than this is treated as this far away (30 years, as Tokio does
/// for its own "never").
const FAR_FUTURE: std::time::Duration = std::time::Duration::from_secs(86400 * 365 * 30);

/// Everything behind the queue's lock.
#[derive(Debug)]
pub(crate) struct State<K> {
    /// foldhash, seeded randomly per queue: fast on the short keys controllers use, and not
    /// predictable from outside.
    hasher: DefaultHashBuilder,
    index: HashTable<u32>,
    slots: Vec<Slot<K>>,
    free: Vec<u32>,
    next_seq: u64,
    ready: ReadyQueue,
    /// Live tickets in `ready`: the items a `get` can take now.
    ready_len: usize,
    delayed: DelayHeap,
    /// Slots whose `pending` is `Waiting`.
    waiting: usize,
    processing: usize,
    record: Record,
    /// The work duration the last `done` measured (with metrics on) and the reading it ended
    /// at, for a controller to report as its reconcile time and to start its next item at
    /// without reading the stopwatch again.
    pub(crate) last_work: Option<Worked>,
    /// The queue latency of the item the last `pop` handed out and the work duration the last
    /// `done` measured, for the caller to report to the hooks once the lock is released.
    pub(crate) unreported_latency: Option<f64>,
    pub(crate) unreported_work: Option<f64>,
    /// `get` calls registered to be woken.
    pub(crate) waiters: usize,
    /// The ready time a waiting `get` sleeps until, if any does.
    pub(crate) timer: Option<Instant>,
    pub(crate) shutting_down: bool,
    pub(crate) draining: bool,
}

impl<K> Default for State<K> {
    fn default() -> Self {
        Self {
            hasher: DefaultHashBuilder::default(),
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
            ready: ReadyQueue::default(),
            ready_len: 0,
            delayed: DelayHeap::default(),
            waiting: 0,
            processing: 0,
            record: Record::Off,
            last_work: None,
            unreported_latency: None,
            unreported_work: None,
            waiters: 0,
            timer: None,
            shutting_down: false,
            draining: false,
        }
    }
}

impl<K> State<K> {
    /// A state recording its measurements to `record`.
    pub(crate) fn recording(record: Record) -> Self {
        Self {
            record,
            ..Self::default()
        }
    }

    /// Moves the tally, if the queue keeps one, into its series, and reports the work in
    /// flight at `now` (the stopwatch's reading as the series are scraped) to them.
    pub(crate) fn hand_over_tally(&mut self, now: Option<Stamp>) {
        if !matches!(self.record, Record::Tally { .. }) {
            return;
        }
        let unfinished = now.map(|now| self.unfinished_work(now));
        if let Record::Tally { tally, series } = &mut self.record {
            series.take(tally);
            if let Some((total, longest)) = unfinished {
                series.unfinished_work(total);
                series.longest_running_processor(longest);
            }
        }
    }

    /// Items handed out and not yet done.
    pub(crate) fn processing(&self) -> usize {
        self.processing
    }

    /// The earliest ready time, if no waiting `get` sleeps until it (or a later time) yet.
    /// The caller then sleeps until it and holds the timer.
    pub(crate) fn claim_timer(&mut self) -> Option<Instant> {
        let slots = &self.slots;
        let earliest = self
            .delayed
            .earliest(|t| slots[t.slot as usize].seq == t.seq)?;
        if self.timer.is_some_and(|timer| timer <= earliest) {
            return None;
        }
        self.timer = Some(earliest);
        Some(earliest)
    }

    /// Whether a `get` that stops waiting, or takes an item, should wake another one: items are
    /// ready, or items wait and no waiting `get` sleeps until their ready time.
    pub(crate) fn should_wake_another(&self) -> bool {
        self.waiters > 0
            && (self.ready_len > 0
                || (self.timer.is_none() && self.waiting > 0 && !self.shutting_down))
    }

    /// The sum and the longest of the in-flight items' processing times at `now`, in seconds.
    ///
    /// The start times are kept in the slots, so this reads slots until it has found as many
    /// timed items as are in flight (only items in flight are timed): at worst every slot,
    /// queued items' too (about 3 µs per thousand slots up to 100 000, 8 ms for a million,
    /// measured on the performance chapter's machine). That is what keeping them there
    /// costs, once per scrape, instead of a table of in-flight entries written on every item.
    pub(crate) fn unfinished_work(&self, now: Stamp) -> (f64, f64) {
        let mut total = 0.0;
        let mut longest = 0.0_f64;
        let started = self.slots.iter().map(|slot| slot.started_at);
        let timed = started.filter(|&s| s != IDLE).take(self.processing);
        for started_at in timed {
            let seconds = stopwatch::seconds(started_at, now);
            total += seconds;
            longest = longest.max(seconds);
        }
        (total, longest)
    }

    /// Entries in the deadline heap, live or stale.
    #[cfg(test)]
    pub(crate) fn delay_entries(&self) -> usize {
        self.delayed.entries()
    }
}

impl<K: Clone + Eq + Hash> State<K> {
    /// Items a `get` can take now. `stamp` is the stopwatch's reading (with metrics on).
    pub(crate) fn ready_len(
        &mut self,
        now: impl FnOnce() -> Instant,
        stamp: Option<Stamp>,
    ) -> usize {
        if self.delayed.entries() > 0 {
            self.promote_due(now(), stamp);
        }
        self.ready_len
    }

    /// Mark an item dirty. Returns whether it entered the ready queue (so a waiter should wake).
    /// `stamp` is the stopwatch's reading (with metrics on).
    pub(crate) fn add(&mut self, key: K, priority: Priority, stamp: Option<Stamp>) -> bool {
        if self.shutting_down {
            return false;
        }
        let slot = self.slot_of(key);
        self.make_dirty(slot, priority, stamp)
    }

    /// Make an item ready at `ready_at` unless it is ready sooner. Returns whether its ready
    /// time is earlier than the one a waiting `get` sleeps until (so a waiter should wake).
    pub(crate) fn add_after(&mut self, key: K, ready_at: Instant, priority: Priority) -> bool {
        if self.shutting_down {
            return false;
        }
        let slot = self.slot_of(key);
        let entry = &mut self.slots[slot as usize];
        match entry.pending {
            Pending::Dirty => {
                self.raise(slot, priority);
                return false;
            }
            Pending::Waiting(current) => {
                entry.priority = entry.priority.max(priority);
                if current <= ready_at {
                    return false;
                }
            }
            Pending::Clean => {
                entry.priority = priority;
                self.waiting += 1;
            }
        }
        let seq = self.next_seq();
        let entry = &mut self.slots[slot as usize];
        entry.seq = seq;
        entry.pending = Pending::Waiting(ready_at);
        self.delayed.push(ready_at, Ticket { slot, seq });
        if self.delayed.entries() > 2 * self.waiting + COMPACT_SLACK {
            let slots = &self.slots;
            self.delayed.retain(|t| slots[t.slot as usize].seq == t.seq);
        }
        self.timer.is_none_or(|timer| ready_at < timer)
    }

    /// After [`pop`](Self::pop) handed an item to a `get` (or to a worker's `done` taking its
    /// next item): what the taker does once the lock is released.
    #[inline]
    pub(crate) fn after_take(&mut self) -> AfterTake {
        AfterTake {
            wake_another: self.should_wake_another(),
            latency: self.unreported_latency.take(),
        }
    }

    /// Hand out the next ready item, if any, with its priority. `now` (Tokio's clock) is read
    /// only if items wait for a ready time; `stamp` is the stopwatch's reading (with metrics
    /// on), the time the item is taken at.
    pub(crate) fn pop(
        &mut self,
        now: impl FnOnce() -> Instant,
        stamp: Option<Stamp>,
    ) -> Option<(K, Priority)> {
        if self.delayed.entries() > 0 {
            self.promote_due(now(), stamp);
        }
        let entry = loop {
            let (_, ticket) = self.ready.pop()?;
            let entry = &mut self.slots[ticket.slot as usize];
            if entry.seq == ticket.seq {
                break entry;
            }
        };
        debug_assert!(entry.pending == Pending::Dirty && !entry.processing);
        entry.pending = Pending::Clean;
        entry.processing = true;
        self.ready_len -= 1;
        self.processing += 1;
        if let Some(now) = stamp.filter(|_| self.record.on()) {
            self.record.depth(entry.priority, -1);
            if let Some(added_at) = entry.added_at.take() {
                let nanos = now.saturating_sub(added_at);
                self.unreported_latency = self.record.duration(nanos, Tally::queue_latency);
            }
            entry.started_at = now;
        }
        entry.key.clone().map(|key| (key, entry.priority))
    }

    /// Finish processing an item. Returns whether it entered the ready queue again. `stamp` is
    /// the stopwatch's reading (with metrics on).
    pub(crate) fn done(&mut self, key: &K, stamp: Option<Stamp>) -> bool {
        let hash = self.hasher.hash_one(key);
        let slots = &mut self.slots;
        let Ok(found) = self
            .index
            .find_entry(hash, |&i| slots[i as usize].key.as_ref() == Some(key))
        else {
            return false;
        };
        let slot = *found.get();
        let entry = &mut slots[slot as usize];
        if !entry.processing {
            return false;
        }
        entry.processing = false;
        self.processing -= 1;
        let started_at = std::mem::replace(&mut entry.started_at, IDLE);
        if started_at != IDLE
            && let Some(at) = stamp.filter(|_| self.record.on())
        {
            let nanos = at.saturating_sub(started_at);
            self.unreported_work = self.record.duration(nanos, Tally::work_duration);
            self.last_work = Some(Worked { nanos, at });
        }
        let entry = &mut slots[slot as usize];
        match entry.pending {
            Pending::Clean => {
                found.remove();
                entry.key = None;
                self.free.push(slot);
                false
            }
            Pending::Waiting(_) => false,
            Pending::Dirty => {
                let priority = entry.priority;
                self.enqueue(slot, priority);
                true
            }
        }
    }

    /// Start shutting down: refuse adds and drop the items waiting for a ready time, as
    /// client-go's delaying queue stops its waiting loop.
    pub(crate) fn shut_down(&mut self) {
        self.shutting_down = true;
        let slots = &mut self.slots;
        for ticket in self.delayed.drain() {
            let entry = &mut slots[ticket.slot as usize];
            if entry.seq != ticket.seq || !matches!(entry.pending, Pending::Waiting(_)) {
                continue;
            }
            entry.pending = Pending::Clean;
            if !entry.processing {
                let hash = entry.hash;
                if let Ok(found) = self.index.find_entry(hash, |&i| i == ticket.slot) {
                    found.remove();
                }
                entry.key = None;
                self.free.push(ticket.slot);
            }
        }
        self.waiting = 0;
    }

    /// The slot of `key`, taking a free one if the key is new.
    fn slot_of(&mut self, key: K) -> u32 {
        let hash = self.hasher.hash_one(&key);
        let slots = &mut self.slots;
        let entry = self.index.entry(
            hash,
            |&i| slots[i as usize].key.as_ref() == Some(&key),
            |&i| slots[i as usize].hash,
        );
        match entry {
            Entry::Occupied(found) => *found.get(),
            Entry::Vacant(vacant) => {
                let slot = match self.free.pop() {
                    Some(slot) => {
                        let entry = &mut slots[slot as usize];
                        entry.key = Some(key);
                        entry.hash = hash;
                        entry.pending = Pending::Clean;
                        slot
                    }
                    None => {
                        let slot =
                            u32::try_from(slots.len()).expect("fewer than 2^32 items are queued");
                        slots.push(Slot {
                            key: Some(key),
                            hash,
                            seq: 0,
                            priority: Priority::NORMAL,
                            pending: Pending::Clean,
                            processing: false,
                            added_at: None,
                            started_at: IDLE,
                        });
                        // Room on the free list for every slot, taken now while items are
                        // added, so that `done` never grows it: growing it there, in the middle
                        // of a drain, made the allocator consolidate its free chunks, which cost
                        // more than anything else a `done` does.
                        self.free.reserve(slots.len());
                        slot
                    }
                };
                vacant.insert(slot);
                slot
            }
        }
    }

    /// The `Clean` or `Waiting` to `Dirty` transition, or a priority raise if already dirty.
    /// `added_at` is when it became dirty on the stopwatch (with metrics on), for the latency
    /// metric.
    fn make_dirty(&mut self, slot: u32, priority: Priority, added_at: Option<Stamp>) -> bool {
        let entry = &mut self.slots[slot as usize];
        match entry.pending {
            Pending::Dirty => {
                self.raise(slot, priority);
                return false;
            }
            Pending::Waiting(_) => {
                entry.priority = entry.priority.max(priority);
                self.waiting -= 1;
            }
            Pending::Clean => entry.priority = priority,
        }
        entry.pending = Pending::Dirty;
        if self.record.on() {
            self.record.add(entry.priority);
            entry.added_at = added_at;
        }
        if entry.processing {
            return false;
        }
        let priority = entry.priority;
        self.enqueue(slot, priority);
        true
    }

    /// Raise a dirty item's priority; a queued one moves to the back of its new level.
    fn raise(&mut self, slot: u32, priority: Priority) {
        let entry = &mut self.slots[slot as usize];
        if priority <= entry.priority {
            return;
        }
        self.record.depth(entry.priority, -1);
        self.record.depth(priority, 1);
        entry.priority = priority;
        if !entry.processing {
            // The old ticket goes stale; `enqueue` counts the item as ready once more.
            self.ready_len -= 1;
            self.enqueue(slot, priority);
        }
    }

    /// Put a dirty, not processing item at the back of its priority level.
    fn enqueue(&mut self, slot: u32, priority: Priority) {
        let seq = self.next_seq();
        self.slots[slot as usize].seq = seq;
        self.ready.push(priority, Ticket { slot, seq });
        self.ready_len += 1;
        if self.ready.tickets() > 2 * self.ready_len + COMPACT_SLACK {
            let slots = &self.slots;
            self.ready.retain(|t| slots[t.slot as usize].seq == t.seq);
        }
    }

    /// Move the waiting items whose ready time has come to the dirty state, in ready time order.
    /// With metrics on, each counts as added when it became due: its ready time, which is on
    /// Tokio's clock, goes onto the stopwatch as the stopwatch's reading now (`stamp`) less
    /// how long ago (on Tokio's clock) that was.
    fn promote_due(&mut self, now: Instant, stamp: Option<Stamp>) {
        while let Some(ticket) = self.delayed.pop_due(now) {
            let entry = &self.slots[ticket.slot as usize];
            if let Pending::Waiting(ready_at) = entry.pending
                && entry.seq == ticket.seq
            {
                let priority = entry.priority;
                let due_at = stamp.map(|stamp| {
                    let ago = now.saturating_duration_since(ready_at).as_nanos();
                    stamp.saturating_sub(u64::try_from(ago).unwrap_or(u64::MAX))
                });
                self.make_dirty(ticket.slot, priority, due_at);
            }
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }
}

/// The instant `delay` from `now`, saturating far in the future instead of overflowing.
pub(crate) fn ready_time(now: Instant, delay: std::time::Duration) -> Instant {
    now + delay.min(FAR_FUTURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Instant {
        Instant::now()
    }

    #[test]
    fn steady_state_reuses_slots_instead_of_growing() {
        let mut state = State::default();
        for key in 0..1000 {
            assert!(state.add(key, Priority::NORMAL, None));
            assert_eq!(state.pop(now, None), Some((key, Priority::NORMAL)));
            assert!(!state.done(&key, None));
        }
        assert_eq!(state.slots.len(), 1);
        assert_eq!(state.index.len(), 0);
    }

    #[test]
    fn priority_raises_leave_a_bounded_number_of_stale_tickets() {
        let mut state = State::default();
        for key in 0..10 {
            state.add(key, Priority::LOW, None);
        }
        for level in 0..1000 {
            state.add(level % 10, Priority::new(level), None);
        }
        assert_eq!(state.ready_len, 10);
        assert!(state.ready.tickets() <= 2 * 10 + COMPACT_SLACK + 1);
        let mut popped: Vec<_> = std::iter::from_fn(|| state.pop(now, None))
            .map(|(key, _)| key)
            .collect();
        popped.sort_unstable();
        assert_eq!(popped, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn shut_down_frees_the_slots_of_waiting_items_but_not_of_processing_ones() {
        let mut state = State::default();
        let later = now() + std::time::Duration::from_secs(60);
        state.add("busy", Priority::NORMAL, None);
        assert_eq!(state.pop(now, None), Some(("busy", Priority::NORMAL)));
        state.add_after("busy", later, Priority::NORMAL);
        state.add_after("idle", later, Priority::NORMAL);
        state.shut_down();
        assert_eq!(
            state.index.len(),
            1,
            "only the item in flight is still known"
        );
        assert!(!state.done(&"busy", None), "its wait was dropped");
        assert_eq!(state.index.len(), 0);
    }

    #[test]
    fn finishing_items_allocates_nothing() {
        let mut state = State::default();
        for i in 0..1000 {
            state.add(i, Priority::NORMAL, None);
        }
        let capacity = state.free.capacity();
        while let Some((key, _)) = state.pop(now, None) {
            assert!(!state.done(&key, None));
        }
        assert_eq!(state.free.len(), 1000, "every slot is free again");
        assert_eq!(
            state.free.capacity(),
            capacity,
            "the free list had room for every slot before the first done"
        );
    }

    #[test]
    fn with_metrics_finishing_items_allocates_nothing_either() {
        let mut state = State::recording(Record::Hooks(Arc::new(crate::queue::NoopMetrics)));
        for i in 0..100 {
            state.add(i, Priority::NORMAL, Some(i));
        }
        let capacity = state.free.capacity();
        // A hundred items in flight at once, then all done, then again.
        for round in 0..2 {
            let taken: Vec<_> = std::iter::from_fn(|| state.pop(now, Some(1000)))
                .map(|(key, _)| key)
                .collect();
            assert_eq!(taken.len(), 100);
            // Each taken at 1000 ns, so 2000 ns in flight at 3000.
            let (total, longest) = state.unfinished_work(3000);
            assert!((total - 100.0 * 2e-6).abs() < 1e-15, "{total}");
            assert_eq!(longest, 2e-6);
            for key in taken {
                assert!(!state.done(&key, Some(2000)));
                state.add(key, Priority::NORMAL, Some(2000));
            }
            assert_eq!(
                state.free.capacity(),
                capacity,
                "round {round}: done grew nothing"
            );
            assert_eq!(state.unfinished_work(3000), (0.0, 0.0));
        }
    }

    #[test]
    fn unfinished_work_counts_the_items_in_flight_only() {
        let mut state = State::recording(Record::Hooks(Arc::new(crate::queue::NoopMetrics)));
        for key in ["a", "b", "c"] {
            state.add(key, Priority::NORMAL, Some(0));
        }
        assert_eq!(
            state.pop(now, Some(1_000_000_000)),
            Some(("a", Priority::NORMAL))
        );
        assert_eq!(
            state.pop(now, Some(2_000_000_000)),
            Some(("b", Priority::NORMAL))
        );
        assert_eq!(
            state.pop(now, Some(3_000_000_000)),
            Some(("c", Priority::NORMAL))
        );
        state.done(&"b", Some(4_000_000_000));
        // a for 4 s, c for 2 s; b is done.
        assert_eq!(state.unfinished_work(5_000_000_000), (6.0, 4.0));
        state.done(&"a", Some(5_000_000_000));
        assert_eq!(state.pop(now, Some(5_000_000_000)), None);
        assert_eq!(state.unfinished_work(6_000_000_000), (3.0, 3.0));
    }

    #[test]
    fn ready_time_saturates_instead_of_overflowing() {
        let start = now();
        assert_eq!(
            ready_time(start, std::time::Duration::MAX),
            start + FAR_FUTURE
        );
    }
}
