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
pub(crate) fn here() -> Here {
    Here(slot(), std::marker::PhantomData)
}

/// Adds to a word of a shard. Only the owner of an owned shard writes to it, so a plain load
/// and store (no locked instruction) cannot lose an update; the shared shard needs an atomic
/// add.
fn add_u64(word: &AtomicU64, delta: u64, slot: Slot) {
    if slot.owned {
        word.store(
            word.load(Ordering::Relaxed).wrapping_add(delta),
            Ordering::Relaxed,
        );
    } else {
        word.fetch_add(delta, Ordering::Relaxed);
    }
}

/// Adds to a word of a shard holding the bits of an `f64`, as [`add_u64`] does.
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
/// Each shard holds a count per bucket (plus one for observations above the last bound) and
/// the sum of its observations. The sample count is the total of the bucket counts, so a
/// scrape always sees the `+Inf` bucket equal to the count, as Prometheus requires, even
/// while observations are being recorded.
pub(crate) struct Histogram {
    bounds: Arc<[f64]>,
    /// Chunks per shard: enough for `bounds.len() + 1` bucket counts and the sum.
    stride: usize,
    chunks: Box<[Chunk<AtomicU64>]>,
}

impl Histogram {
    fn new(bounds: Arc<[f64]>) -> Self {
        let words = bounds.len() + 2;
        let stride = words.div_ceil(CHUNK);
        Self {
            chunks: (0..SHARDS * stride).map(|_| Chunk::default()).collect(),
            bounds,
            stride,
        }
    }

    fn word(&self, shard: usize, word: usize) -> &AtomicU64 {
        &self.chunks[shard * self.stride + word / CHUNK].0[word % CHUNK]
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
        add_f64(self.word(slot.index, self.bounds.len() + 1), value, slot);
    }

    /// Adds observations counted elsewhere (a queue's tally): `counts` per bucket, the last
    /// one above every bound, and their `sum`.
    pub(crate) fn add_counted(&self, counts: &[u64], sum: f64) {
        debug_assert_eq!(counts.len(), self.bounds.len() + 1);
        for (bucket, &n) in counts.iter().enumerate() {
            if n > 0 {
                add_u64(self.word(SHARED.index, bucket), n, SHARED);
            }
        }
        add_f64(self.word(SHARED.index, self.bounds.len() + 1), sum, SHARED);
    }

    /// Counts per bucket (the last one above every bound), summed over the shards, and the
    /// sum of every observation.
    fn snapshot(&self) -> (Vec<u64>, f64) {
        let n = self.bounds.len() + 1;
        let mut counts = vec![0; n];
        let mut sum = 0.0;
        for shard in 0..SHARDS {
            for (i, count) in counts.iter_mut().enumerate() {
                *count += self.word(shard, i).load(Ordering::Relaxed);
            }
            sum += f64::from_bits(self.word(shard, n).load(Ordering::Relaxed));
        }
        (counts, sum)
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
