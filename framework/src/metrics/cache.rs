//! windlass's own cache series: each informer's object count, watch errors, relists and
//! malformed objects, read from [`Cache::stats`] at each scrape.

use std::sync::Arc;

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{MetricFamily, MetricType};

use super::collect::Family;
use crate::informer::{Cache, WeakCache};

const OBJECTS: Family = Family {
    name: "windlass_informer_objects",
    help: "Number of objects in the informer's cache.",
    kind: MetricType::GAUGE,
};
const WATCH_ERRORS: Family = Family {
    name: "windlass_informer_watch_errors_total",
    help: "Number of failed list or watch calls of the informer (each is retried with backoff).",
    kind: MetricType::COUNTER,
};
const RELISTS: Family = Family {
    name: "windlass_informer_relists_total",
    help: "Number of relists after the informer's first list (after a 410 Gone, or a watch that could not resume).",
    kind: MetricType::COUNTER,
};
const MALFORMED: Family = Family {
    name: "windlass_informer_malformed_objects_total",
    help: "Number of objects the informer skipped because they did not decode.",
    kind: MetricType::COUNTER,
};

const LABELS: &[&str] = &["informer"];

/// Reads the counters of every cache it was given, for as long as each cache lives.
#[derive(Clone)]
pub(crate) struct CacheCollector {
    caches: Arc<Mutex<Vec<WeakCache>>>,
    descs: Arc<Vec<Desc>>,
}

impl CacheCollector {
    pub(crate) fn new() -> Self {
        let descs = [OBJECTS, WATCH_ERRORS, RELISTS, MALFORMED]
            .iter()
            .map(|f| f.desc(LABELS))
            .collect();
        Self {
            caches: Arc::new(Mutex::new(Vec::new())),
            descs: Arc::new(descs),
        }
    }

    pub(crate) fn add(&self, cache: &Cache) {
        self.caches.lock().push(cache.downgrade());
    }
}

impl Collector for CacheCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let caches: Vec<Cache> = {
            let mut weak = self.caches.lock();
            weak.retain(|c| c.upgrade().is_some());
            weak.iter().filter_map(WeakCache::upgrade).collect()
        };
        let stats: Vec<_> = caches.iter().flat_map(Cache::stats).collect();
        if stats.is_empty() {
            return Vec::new();
        }
        let family = |f: &Family, value: fn(&crate::informer::InformerStats) -> u64| {
            f.collect(
                LABELS,
                stats
                    .iter()
                    .map(|(name, s)| (vec![name.as_str()], value(s) as f64)),
            )
        };
        vec![
            family(&OBJECTS, |s| s.objects),
            family(&WATCH_ERRORS, |s| s.watch_errors),
            family(&RELISTS, |s| s.relists),
            family(&MALFORMED, |s| s.malformed),
        ]
    }
}
