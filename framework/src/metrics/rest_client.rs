//! The `rest_client_*` series client-go records for every request, with its names, labels and
//! buckets (Kubernetes' `component-base/metrics/prometheus/restclient`; controller-runtime
//! registers `rest_client_requests_total` from it).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::register;

/// client-go's buckets for request and rate-limiter latency: 5 ms to 60 s.
pub(crate) const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0,
];

/// The families the client's flow-control layer records into.
#[derive(Clone)]
pub(crate) struct RestClientMetrics {
    /// `rest_client_requests_total{code, method, host}`.
    pub(crate) requests: IntCounterVec,
    /// `rest_client_request_duration_seconds{verb, host}`.
    pub(crate) duration: HistogramVec,
    /// `rest_client_rate_limiter_duration_seconds{verb, host}`.
    pub(crate) rate_limiter: HistogramVec,
    /// `rest_client_request_retries_total{code, verb, host}`.
    pub(crate) retries: IntCounterVec,
}

fn latency(name: &str, help: &str) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        &["verb", "host"],
    )
    .expect("a valid histogram")
}

impl RestClientMetrics {
    pub(crate) fn new() -> Self {
        Self {
            requests: IntCounterVec::new(
                Opts::new(
                    "rest_client_requests_total",
                    "Number of HTTP requests, partitioned by status code, method, and host.",
                ),
                &["code", "method", "host"],
            )
            .expect("a valid counter"),
            duration: latency(
                "rest_client_request_duration_seconds",
                "Request latency in seconds. Broken down by verb, and host.",
            ),
            rate_limiter: latency(
                "rest_client_rate_limiter_duration_seconds",
                "Client side rate limiter latency in seconds. Broken down by verb, and host.",
            ),
            retries: IntCounterVec::new(
                Opts::new(
                    "rest_client_request_retries_total",
                    "Number of request retries, partitioned by status code, verb, and host.",
                ),
                &["code", "verb", "host"],
            )
            .expect("a valid counter"),
        }
    }

    pub(crate) fn register(&self, registry: &Registry) {
        register(registry, self.requests.clone());
        register(registry, self.duration.clone());
        register(registry, self.rate_limiter.clone());
        register(registry, self.retries.clone());
    }
}
