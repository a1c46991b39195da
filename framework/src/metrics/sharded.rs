//! Series recorded on every reconcile, kept in per-thread shards so that workers on different
//! threads never write to the same cache line, and summed only when scraped.
//!
//! The `prometheus` crate's counters, gauges and histograms keep one set of atomics per
//! series that every recording thread updates: a histogram `observe` is four atomic
//! read-modify-writes (one a compare-and-swap loop) on lines shared by all workers. With
//! several workers on several cores, those lines bounce between the cores on every reconcile.
//! Here each thread records into a shard of its own (threads are given shards round-robin),
//! so an update is an uncontended atomic add on a line that stays in the core's cache, and a
//! scrape, which is rare, pays for adding the shards up. The exposition is the same:
//! [`ShardedVec`] is a [`Collector`] producing the families the `prometheus` types would.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, Metric, MetricFamily, MetricType};

use super::collect::{family, label_pairs};
use crate::queue::nanos_as_seconds;

/// How many shards are owned by one thread each. Threads beyond these share one more shard.
const OWNED: usize = 16;

/// Shards per series: the owned ones and the shared one.
const SHARDS: usize = OWNED + 1;

/// Words of one cache-line-sized chunk (128 bytes: two lines, since adjacent-line prefetch
/// makes neighbouring lines contend too).
const CHUNK: usize = 16;

#[repr(align(128))]
#[derive(Default)]
struct Chunk<T>([T; CHUNK]);

/// Words of a histogram's shard: three chunks, room for the counts of up to 45 bounds and
/// `+Inf`, and the two sums. One size for every histogram, so that finding a word is one
/// index.
const ROW: usize = 3 * CHUNK;

#[repr(align(128))]
struct Row([AtomicU64; ROW]);

impl Default for Row {
    fn default() -> Self {
        Row(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// Which owned shards are taken, one bit each.
static TAKEN: AtomicU32 = AtomicU32::new(0);

/// The shard a thread records into, and whether the thread owns it.
#[derive(Clone, Copy)]
struct Slot {
    index: usize,
    owned: bool,
}

const SHARED: Slot = Slot {
    index: OWNED,
    owned: false,
};

/// A thread's claim on an owned shard, given back when the thread exits.
struct Claim(Slot);

impl Claim {
    fn new() -> Self {
        let mut taken = TAKEN.load(Ordering::Relaxed);
        loop {
            let free = (!taken).trailing_zeros() as usize;
            if free >= OWNED {
                return Claim(SHARED);
            }
            // Acquire: what the shard's previous owner stored happens before what we store.
            match TAKEN.compare_exchange_weak(
                taken,
                taken | (1 << free),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Claim(Slot {
                        index: free,
                        owned: true,
                    });
                }
                Err(now) => taken = now,
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.0.owned {
            TAKEN.fetch_and(!(1 << self.0.index), Ordering::Release);
        }
    }
}

/// The current thread's shard. The first call claims a free owned shard if there is one;
/// after the thread's locals are destroyed it records into the shared shard.
#[inline]
fn slot() -> Slot {
    thread_local! {
        static CLAIM: Claim = Claim::new();
    }
    CLAIM.try_with(|c| c.0).unwrap_or(SHARED)
}

/// The current thread's shard, looked up once for several updates in a row. Not `Send`: an
/// owned shard must only ever be written by its own thread, so a `Here` cannot be kept across
/// an `.await` that might resume on another thread.
#[derive(Clone, Copy)]
pub(crate) struct Here(Slot, std::marker::PhantomData<*const ()>);

/// The current thread's shard, for the `*_here` updates.
#[inline]
pub(crate) fn here() -> Here {
    Here(slot(), std::marker::PhantomData)
}

/// Adds to a word of a shard. Only the owner of an owned shard writes to it, so a plain load
/// and store (no locked instruction) cannot lose an update; the shared shard needs an atomic
/// add. Returns the word's value before.
#[inline]
fn add_u64(word: &AtomicU64, delta: u64, slot: Slot) -> u64 {
    if slot.owned {
        let before = word.load(Ordering::Relaxed);
        word.store(before.wrapping_add(delta), Ordering::Relaxed);
        before
    } else {
        word.fetch_add(delta, Ordering::Relaxed)
    }
}

/// 2^64 nanoseconds in seconds: what a histogram's nanosecond sum carries into its sum in
/// seconds when it wraps (after 584 years of durations).
const WRAP_SECONDS: f64 = 18_446_744_073_709_551_616.0 / 1e9;

/// Adds to a word of a shard holding the bits of an `f64`, as [`add_u64`] does.
#[inline]
fn add_f64(word: &AtomicU64, delta: f64, slot: Slot) {
    let mut current = word.load(Ordering::Relaxed);
    if slot.owned {
        word.store(
            (f64::from_bits(current) + delta).to_bits(),
            Ordering::Relaxed,
        );
        return;
    }
    loop {
        let next = (f64::from_bits(current) + delta).to_bits();
        match word.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break,
            Err(actual) => current = actual,
        }
    }
}

/// A series kind that [`ShardedVec`] can hold.
pub(crate) trait Series: Send + Sync + 'static {
    /// The Prometheus type of its family.
    const KIND: MetricType;
    /// Writes its current value into `metric`.
    fn fill(&self, metric: &mut Metric);
}

/// A sum kept in shards: the one cell behind [`Counter`] and [`Gauge`]. Deltas are added
/// with wrapping arithmetic, so a gauge's negative deltas are two's-complement additions and
/// the wrapped total read back as `i64` is the signed sum.
struct Sum {
    shards: Box<[Chunk<AtomicU64>]>,
}

impl Sum {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Chunk::default()).collect(),
        }
    }

    #[inline]
    fn add(&self, delta: u64, Here(slot, _): Here) {
        add_u64(&self.shards[slot.index].0[0], delta, slot);
    }

    /// Adds to the shared shard, from a thread that owns no part of this sum.
    fn add_shared(&self, delta: u64) {
        add_u64(&self.shards[SHARED.index].0[0], delta, SHARED);
    }

    fn total(&self) -> u64 {
        self.shards
            .iter()
            .fold(0, |sum, c| sum.wrapping_add(c.0[0].load(Ordering::Relaxed)))
    }
}

/// An integer counter.
pub(crate) struct Counter(Sum);

impl Counter {
    /// Adds one.
    pub(crate) fn inc(&self) {
        self.inc_here(here());
    }

    /// Adds one in the shard of `here`, the current thread's.
    #[inline]
    pub(crate) fn inc_here(&self, here: Here) {
        self.0.add(1, here);
    }

    /// Adds `n` counted elsewhere (a queue's tally).
    pub(crate) fn add_counted(&self, n: u64) {
        self.0.add_shared(n);
    }

    /// The total over every shard.
    pub(crate) fn get(&self) -> u64 {
        self.0.total()
    }
}

impl Series for Counter {
    const KIND: MetricType = MetricType::COUNTER;
    fn fill(&self, metric: &mut Metric) {
        let mut c = proto::Counter::default();
        c.set_value(self.get() as f64);
        metric.set_counter(c);
    }
}

/// An integer gauge moved up and down (its shards may go negative; their sum cannot, when
/// every decrement follows its increment).
pub(crate) struct Gauge(Sum);

impl Gauge {
    /// Adds `delta`.
    pub(crate) fn add(&self, delta: i64) {
        self.add_here(delta, here());
    }

    /// Adds `delta` in the shard of `here`, the current thread's.
    pub(crate) fn add_here(&self, delta: i64, here: Here) {
        self.0.add(delta as u64, here);
    }

    /// Adds `delta` counted elsewhere (a queue's tally).
    pub(crate) fn add_counted(&self, delta: i64) {
        self.0.add_shared(delta as u64);
    }

    /// Adds one.
    #[cfg(test)]
    pub(crate) fn inc(&self) {
        self.add(1);
    }

    /// Subtracts one.
    #[cfg(test)]
    pub(crate) fn dec(&self) {
        self.add(-1);
    }

    /// The value: the sum of the shards.
    pub(crate) fn get(&self) -> i64 {
        self.0.total() as i64
    }
}

impl Series for Gauge {
    const KIND: MetricType = MetricType::GAUGE;
    fn fill(&self, metric: &mut Metric) {
        let mut g = proto::Gauge::default();
        g.set_value(self.get() as f64);
        metric.set_gauge(g);
    }
}

/// A histogram with fixed bucket bounds.
///
/// Each shard holds a count per bucket (plus one for observations above the last bound), the
/// sum of its observations in seconds and the sum of those recorded in whole nanoseconds. The
/// sample count is the total of the bucket counts, so a scrape always sees the `+Inf` bucket
/// equal to the count, as Prometheus requires, even while observations are being recorded.
pub(crate) struct Histogram {
    bounds: Arc<[f64]>,
    /// Each bound as the largest whole number of nanoseconds at or below it, so that a
    /// duration in nanoseconds finds its bucket by integer comparisons: `n <= nanos_bounds[i]`
    /// exactly when `n as f64 / 1e9 <= bounds[i]`.
    nanos_bounds: Box<[u64]>,
    /// One row per shard.
    rows: Box<[Row]>,
}

/// The largest whole number of nanoseconds `n` with `nanos_as_seconds(n) <= bound`, for a
/// bound of zero or more (`u64::MAX` for one beyond what `u64` nanoseconds reach).
pub(crate) const fn nanos_at_or_below(bound: f64) -> u64 {
    assert!(
        bound >= 0.0,
        "histogram bounds here are durations, so not negative"
    );
    let estimate = bound * 1e9;
    if estimate >= u64::MAX as f64 {
        return u64::MAX;
    }
    // The float product is within a few nanoseconds of the answer; the rounding of the
    // division decides the rest.
    let mut n = estimate as u64;
    while n > 0 && nanos_as_seconds(n) > bound {
        n -= 1;
    }
    while n < u64::MAX && nanos_as_seconds(n + 1) <= bound {
        n += 1;
    }
    n
}

impl Histogram {
    fn new(bounds: Arc<[f64]>) -> Self {
        assert!(
            bounds.len() + 3 <= ROW,
            "a sharded histogram has at most {} bounds",
            ROW - 3
        );
        Self {
            rows: (0..SHARDS).map(|_| Row::default()).collect(),
            nanos_bounds: bounds.iter().map(|&b| nanos_at_or_below(b)).collect(),
            bounds,
        }
    }

    /// The word of a shard holding the sum of the observations recorded in seconds.
    #[inline]
    fn seconds_sum(&self) -> usize {
        self.bounds.len() + 1
    }

    /// The word of a shard holding the sum of the observations recorded in nanoseconds.
    #[inline]
    fn nanos_sum(&self) -> usize {
        self.bounds.len() + 2
    }

    #[inline]
    fn word(&self, shard: usize, word: usize) -> &AtomicU64 {
        &self.rows[shard].0[word]
    }

    /// Records one observation.
    pub(crate) fn observe(&self, value: f64) {
        self.observe_here(value, here());
    }

    /// Records one observation in the shard of `here`, the current thread's.
    pub(crate) fn observe_here(&self, value: f64, Here(slot, _): Here) {
        // Prometheus buckets are "less than or equal": the first bound not below the value (a
        // NaN lands in +Inf, as in the Go client). A linear scan, not a binary search: the
        // observations of one series cluster in a few buckets, so its branches are predicted,
        // where a binary search's are not (measured: a third of the cost of an observation).
        let bucket = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        add_u64(self.word(slot.index, bucket), 1, slot);
        add_f64(self.word(slot.index, self.seconds_sum()), value, slot);
    }

    /// Records a duration of `nanos` nanoseconds in the shard of `here`, the current thread's:
    /// the same as observing `nanos_as_seconds(nanos)`, with integer comparisons and an
    /// integer sum (no conversion to floating point on the way).
    #[inline]
    pub(crate) fn observe_nanos_here(&self, nanos: u64, Here(slot, _): Here) {
        let bucket = self
            .nanos_bounds
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(self.bounds.len());
        add_u64(self.word(slot.index, bucket), 1, slot);
        self.add_nanos(nanos, slot);
    }

    /// Adds `nanos` to the nanosecond sum of `slot`'s shard, carrying into its sum in seconds
    /// when it wraps.
    #[inline]
    fn add_nanos(&self, nanos: u64, slot: Slot) {
        let before = add_u64(self.word(slot.index, self.nanos_sum()), nanos, slot);
        if before.checked_add(nanos).is_none() {
            add_f64(
                self.word(slot.index, self.seconds_sum()),
                WRAP_SECONDS,
                slot,
            );
        }
    }

    /// Adds durations counted elsewhere (a queue's tally): `counts` per bucket, the last one
    /// above every bound, and their sum in nanoseconds.
    pub(crate) fn add_counted(&self, counts: &[u64], sum_nanos: u128) {
        debug_assert_eq!(counts.len(), self.bounds.len() + 1);
        for (bucket, &n) in counts.iter().enumerate() {
            if n > 0 {
                add_u64(self.word(SHARED.index, bucket), n, SHARED);
            }
        }
        let wraps = (sum_nanos >> 64) as f64;
        if wraps > 0.0 {
            add_f64(
                self.word(SHARED.index, self.seconds_sum()),
                wraps * WRAP_SECONDS,
                SHARED,
            );
        }
        self.add_nanos(sum_nanos as u64, SHARED);
    }

    /// Counts per bucket (the last one above every bound), summed over the shards, and the
    /// sum of every observation.
    fn snapshot(&self) -> (Vec<u64>, f64) {
        let n = self.bounds.len() + 1;
        let mut counts = vec![0; n];
        let mut sum = 0.0;
        let mut nanos: u128 = 0;
        for shard in 0..SHARDS {
            for (i, count) in counts.iter_mut().enumerate() {
                *count += self.word(shard, i).load(Ordering::Relaxed);
            }
            sum += f64::from_bits(self.word(shard, self.seconds_sum()).load(Ordering::Relaxed));
            nanos += u128::from(self.word(shard, self.nanos_sum()).load(Ordering::Relaxed));
        }
        // As `nanos_as_seconds`, for the total of every shard.
        (counts, sum + nanos as f64 / 1e9)
    }

    /// How many observations were recorded.
    #[cfg(test)]
    pub(crate) fn sample_count(&self) -> u64 {
        self.snapshot().0.iter().sum()
    }
}

impl Series for Histogram {
    const KIND: MetricType = MetricType::HISTOGRAM;
    fn fill(&self, metric: &mut Metric) {
        let (counts, sum) = self.snapshot();
        let mut cumulative = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(&counts)
            .map(|(bound, count)| {
                cumulative += count;
                let mut b = proto::Bucket::default();
                b.set_cumulative_count(cumulative);
                b.set_upper_bound(*bound);
                b
            })
            .collect();
        let mut h = proto::Histogram::default();
        h.set_sample_count(counts.iter().sum());
        h.set_sample_sum(sum);
        h.set_bucket(buckets);
        metric.set_histogram(h);
    }
}

/// A family of sharded series, one per set of label values: the counterpart of the
/// `prometheus` crate's `IntCounterVec`, `IntGaugeVec` and `HistogramVec`. Clones share the
/// series.
pub(crate) struct ShardedVec<S> {
    inner: Arc<VecInner<S>>,
}

struct VecInner<S> {
    desc: Desc,
    make: Box<dyn Fn() -> S + Send + Sync>,
    series: Mutex<Vec<(Vec<String>, Arc<S>)>>,
}

impl<S> Clone for ShardedVec<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: Series> ShardedVec<S> {
    fn with_maker(
        name: &str,
        help: &str,
        labels: &[&str],
        make: impl Fn() -> S + Send + Sync + 'static,
    ) -> Self {
        let desc = Desc::new(
            name.into(),
            help.into(),
            labels.iter().map(|l| l.to_string()).collect(),
            Default::default(),
        )
        .expect("a valid metric description");
        Self {
            inner: Arc::new(VecInner {
                desc,
                make: Box::new(make),
                series: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The series of these label values (in the order of the family's label names), created
    /// at zero if it does not exist yet. Resolve it once and keep it: this takes a lock.
    pub(crate) fn with_label_values(&self, values: &[&str]) -> Arc<S> {
        let mut series = self.inner.series.lock();
        if let Some((_, s)) = series.iter().find(|(v, _)| v.iter().eq(values.iter())) {
            return s.clone();
        }
        let s = Arc::new((self.inner.make)());
        series.push((values.iter().map(|v| v.to_string()).collect(), s.clone()));
        s
    }
}

impl ShardedVec<Counter> {
    /// A counter family.
    pub(crate) fn counters(name: &str, help: &str, labels: &[&str]) -> Self {
        Self::with_maker(name, help, labels, || Counter(Sum::new()))
    }
}

impl ShardedVec<Gauge> {
    /// A gauge family.
    pub(crate) fn gauges(name: &str, help: &str, labels: &[&str]) -> Self {
        Self::with_maker(name, help, labels, || Gauge(Sum::new()))
    }
}

impl ShardedVec<Histogram> {
    /// A histogram family with these bucket bounds (increasing).
    pub(crate) fn histograms(name: &str, help: &str, labels: &[&str], bounds: &[f64]) -> Self {
        let bounds: Arc<[f64]> = bounds.into();
        Self::with_maker(name, help, labels, move || Histogram::new(bounds.clone()))
    }
}

impl<S: Series> Collector for ShardedVec<S> {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.inner.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let desc = &self.inner.desc;
        let series = self.inner.series.lock();
        let metrics = series
            .iter()
            .map(|(values, s)| {
                let mut metric = Metric::from_label(label_pairs(&desc.variable_labels, values));
                s.fill(&mut metric);
                metric
            })
            .collect();
        vec![family(&desc.fq_name, &desc.help, S::KIND, metrics)]
    }
}

#[cfg(test)]
mod tests {
    use prometheus::{Encoder, Registry, TextEncoder};

    use super::*;

    fn encode(registry: &Registry) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The same recordings through the `prometheus` crate's types and through the sharded
    /// ones give the same exposition, byte for byte.
    #[test]
    fn the_exposition_is_the_prometheus_crates() {
        let bounds = [0.005, 0.01, 0.5, 1.0];
        let theirs = Registry::new();
        let c = prometheus::IntCounterVec::new(prometheus::Opts::new("c_total", "C."), &["b", "a"])
            .unwrap();
        let g = prometheus::IntGaugeVec::new(prometheus::Opts::new("g", "G."), &["a"]).unwrap();
        let h = prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new("h_seconds", "H.").buckets(bounds.to_vec()),
            &["a"],
        )
        .unwrap();
        theirs.register(Box::new(c.clone())).unwrap();
        theirs.register(Box::new(g.clone())).unwrap();
        theirs.register(Box::new(h.clone())).unwrap();

        let ours = Registry::new();
        // Labels not in alphabetical order: both expose them sorted by name.
        let sc = ShardedVec::counters("c_total", "C.", &["b", "a"]);
        let sg = ShardedVec::gauges("g", "G.", &["a"]);
        let sh = ShardedVec::histograms("h_seconds", "H.", &["a"], &bounds);
        ours.register(Box::new(sc.clone())).unwrap();
        ours.register(Box::new(sg.clone())).unwrap();
        ours.register(Box::new(sh.clone())).unwrap();

        for (labels, n) in [(["y", "1"], 3), (["x", "2"], 1), (["x", "1"], 0)] {
            let (theirs, ours) = (c.with_label_values(&labels), sc.with_label_values(&labels));
            for _ in 0..n {
                theirs.inc();
                ours.inc();
            }
        }
        g.with_label_values(&["q"]).add(5);
        g.with_label_values(&["q"]).sub(2);
        sg.with_label_values(&["q"]).add(5);
        sg.with_label_values(&["q"]).add(-2);
        for v in [0.001, 0.005, 0.0051, 0.75, 1.0, 2.0, 60.0, f64::NAN] {
            h.with_label_values(&["z"]).observe(v);
            sh.with_label_values(&["z"]).observe(v);
        }
        h.with_label_values(&["empty"]);
        sh.with_label_values(&["empty"]);

        assert_eq!(encode(&ours), encode(&theirs));
    }

    /// A duration recorded in nanoseconds lands in the bucket, and adds to the sum, as the
    /// same duration recorded in seconds: at each bound, one nanosecond either side and on it,
    /// for controller-runtime's reconcile buckets and client-go's workqueue buckets (whose
    /// products put two bounds a hair below 10 µs and 100 µs).
    #[test]
    fn durations_in_nanoseconds_land_where_their_seconds_do() {
        let workqueue = &crate::metrics::workqueue::BUCKETS;
        for bounds in [
            crate::metrics::controller::RECONCILE_TIME_BUCKETS,
            workqueue,
        ] {
            let (in_seconds, in_nanos) =
                (Histogram::new(bounds.into()), Histogram::new(bounds.into()));
            for &bound in bounds {
                let at = nanos_at_or_below(bound);
                assert!(nanos_as_seconds(at) <= bound && nanos_as_seconds(at + 1) > bound);
                for n in [at - 1, at, at + 1] {
                    in_seconds.observe(nanos_as_seconds(n));
                    in_nanos.observe_nanos_here(n, here());
                }
            }
            in_seconds.observe(nanos_as_seconds(u64::MAX));
            in_nanos.observe_nanos_here(u64::MAX, here());
            let (counts, sum) = in_nanos.snapshot();
            assert_eq!(counts, in_seconds.snapshot().0);
            assert!(counts.iter().all(|&n| n == 3 || n == 2), "{counts:?}");
            let relative = (sum - in_seconds.snapshot().1).abs() / sum;
            assert!(relative < 1e-12, "{relative}");
        }
        assert_eq!(
            nanos_at_or_below(workqueue[3]),
            9_999,
            "10 µs is above 1e-5"
        );
        assert_eq!(nanos_at_or_below(0.005), 5_000_000);
    }

    /// A tally's sum beyond 64 bits of nanoseconds (584 years of durations between two
    /// scrapes) still adds up: what the word cannot hold is carried into the sum in seconds.
    #[test]
    fn counted_sums_past_64_bits_of_nanoseconds_carry_into_seconds() {
        let h = Histogram::new(vec![1.0].into());
        let two_to_the_64 = 1u128 << 64;
        h.add_counted(&[1, 2], 2 * two_to_the_64 + 3_000_000_000);
        h.add_counted(&[0, 1], u128::from(u64::MAX));
        let (counts, sum) = h.snapshot();
        assert_eq!(counts, vec![1, 3]);
        let expected = (3 * two_to_the_64 + 2_999_999_999) as f64 / 1e9;
        assert!(
            (sum - expected).abs() / expected < 1e-12,
            "{sum} vs {expected}"
        );
    }

    #[test]
    fn updates_from_many_threads_all_count() {
        let counter = Arc::new(Counter(Sum::new()));
        let gauge = Arc::new(Gauge(Sum::new()));
        let histogram = Arc::new(Histogram::new(vec![1.0, 2.0].into()));
        let threads: Vec<_> = (0..(SHARDS + 3))
            .map(|_| {
                let (counter, gauge, histogram) =
                    (counter.clone(), gauge.clone(), histogram.clone());
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        counter.inc();
                        gauge.inc();
                        histogram.observe(f64::from(i % 3));
                    }
                    for _ in 0..1000 {
                        gauge.dec();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = (SHARDS as u64 + 3) * 1000;
        assert_eq!(counter.get(), n);
        assert_eq!(gauge.get(), 0);
        let (counts, sum) = histogram.snapshot();
        assert_eq!(counts.iter().sum::<u64>(), n);
        // i % 3 over 0..1000: 334 zeros, 333 ones, 333 twos per thread.
        assert_eq!(counts, vec![(n / 1000) * 667, (n / 1000) * 333, 0]);
        assert_eq!(sum, (n / 1000) as f64 * (333.0 + 666.0));
    }
}
