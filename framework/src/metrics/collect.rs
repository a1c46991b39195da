//! Building metric families by hand, for the collectors that read their values at scrape time
//! (informer counters, process statistics) instead of keeping them in Prometheus atomics.

use prometheus::core::Desc;
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

/// A family's description: name, help and label names.
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) kind: MetricType,
}

impl Family {
    pub(crate) fn desc(&self, labels: &[&str]) -> Desc {
        Desc::new(
            self.name.into(),
            self.help.into(),
            labels.iter().map(|l| l.to_string()).collect(),
            Default::default(),
        )
        .expect("a valid metric description")
    }

    /// The family with one sample per `(label values, value)`.
    pub(crate) fn collect<'a>(
        &self,
        label_names: &[&str],
        samples: impl IntoIterator<Item = (Vec<&'a str>, f64)>,
    ) -> MetricFamily {
        let metrics = samples
            .into_iter()
            .map(|(values, value)| {
                let mut metric = Metric::from_label(label_pairs(label_names, &values));
                match self.kind {
                    MetricType::COUNTER => {
                        let mut c = Counter::default();
                        c.set_value(value);
                        metric.set_counter(c);
                    }
                    _ => {
                        let mut g = Gauge::default();
                        g.set_value(value);
                        metric.set_gauge(g);
                    }
                }
                metric
            })
            .collect();
        family(self.name, self.help, self.kind, metrics)
    }
}

/// The label pairs of a series, sorted by label name as the Go client and the `prometheus`
/// crate expose them.
pub(crate) fn label_pairs(names: &[impl AsRef<str>], values: &[impl AsRef<str>]) -> Vec<LabelPair> {
    let mut pairs: Vec<LabelPair> = names
        .iter()
        .zip(values)
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name(name.as_ref().to_string());
            pair.set_value(value.as_ref().to_string());
            pair
        })
        .collect();
    pairs.sort_by(|a, b| a.name().cmp(b.name()));
    pairs
}

pub(crate) fn family(
    name: &str,
    help: &str,
    kind: MetricType,
    metrics: Vec<Metric>,
) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.into());
    family.set_help(help.into());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}
