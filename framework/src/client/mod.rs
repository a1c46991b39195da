//! Client-side flow control for the kube client, as client-go's `flowcontrol` and `rest`
//! packages give Go operators: a token bucket every request waits on, bounded retries of
//! throttled requests honouring `Retry-After`, and the `rest_client_*` metrics.
//!
//! This module owns the client [`Config`] and the tower layer it builds ([`FlowControlLayer`]);
//! the token bucket is the workqueue's [`BucketRateLimiter`](crate::queue::BucketRateLimiter)
//! (client-go's reservation semantics, on Tokio's pausable clock), and the series are recorded
//! into a [`Metrics`]. It does not own the kube client itself: the layer goes on top of kube's
//! own stack through `kube::client::ClientBuilder`.
//!
//! # Why
//!
//! An operator that wakes up to 10 000 objects would otherwise send its reconciles' requests
//! as fast as it can, and the API server's priority and fairness would answer with 429s for
//! everyone in the operator's priority level. client-go limits each client to 5 requests per
//! second with bursts of 10 by default, and controller-runtime raises that to 20 and 30; the
//! same defaults apply here.
//!
//! # Example
//!
//! ```no_run
//! use windlass::manager::{Config, Manager};
//! use windlass::metrics::Metrics;
//!
//! # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
//! let metrics = Metrics::new();
//! let client = windlass::client::Config::default()
//!     .qps(50.0)
//!     .burst(100)
//!     .metrics(metrics.clone())
//!     .build(kube::Config::infer().await?)?;
//! let manager = Manager::with_config(client, Config::default().metrics(Some(metrics)));
//! # let _ = manager;
//! # Ok(())
//! # }
//! ```
//!
//! Leader election must not wait behind a burst of reconciles, or the lease expires while the
//! operator is busiest: give it a client of its own built with [`Config::exempt`], as
//! client-go's leader election gets a client of its own.

mod flow;

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;
use governor::Quota;
use http::{Request, Response};
use kube::client::{Body, ClientBuilder};
use tower::{BoxError, Service};

pub use flow::{FlowControl, FlowControlLayer};

use crate::metrics::Metrics;

/// How a client built by windlass limits and retries its requests, and where it records them.
#[derive(Clone)]
pub struct Config {
    qps: f64,
    burst: u32,
    exempt: bool,
    max_retries: u32,
    max_retry_after: Duration,
    metrics: Option<Metrics>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("qps", &self.qps)
            .field("burst", &self.burst)
            .field("exempt", &self.exempt)
            .field("max_retries", &self.max_retries)
            .field("max_retry_after", &self.max_retry_after)
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            qps: 20.0,
            burst: 30,
            exempt: false,
            max_retries: 10,
            max_retry_after: Duration::from_secs(60),
            metrics: None,
        }
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The rate limit is not a positive, finite rate with a burst of at least one.
    #[error(
        "invalid client rate limit: {qps} requests per second with bursts of {burst}; both must be positive (use `exempt` for no limit)"
    )]
    InvalidRateLimit {
        /// The requests per second asked for.
        qps: f64,
        /// The burst asked for.
        burst: u32,
    },
    /// kube could not build its client from the configuration.
    #[error("building the kube client")]
    Kube(#[source] kube::Error),
}

impl Config {
    /// Sustained requests per second (default 20, controller-runtime's). May be fractional:
    /// 0.5 is one request every two seconds.
    #[must_use]
    pub fn qps(mut self, qps: f64) -> Self {
        self.qps = qps;
        self
    }

    /// Requests that may go at once after a quiet period (default 30, controller-runtime's).
    #[must_use]
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// Exempts the client from rate limiting (default: false): its requests never wait for
    /// a token, and are still retried and counted. For leader election, whose renewals must
    /// not queue behind a burst of reconciles.
    #[must_use]
    pub fn exempt(mut self, exempt: bool) -> Self {
        self.exempt = exempt;
        self
    }

    /// How many times one request is retried after a throttled answer (default 10,
    /// client-go's). Retried are 429 Too Many Requests and 5xx answers that carry a
    /// `Retry-After` header, after waiting what it says; each retry waits for a token again.
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The longest `Retry-After` honoured (default 60 s). An answer asking for a longer wait
    /// is returned to the caller, whose controller backs off on its own instead of holding the
    /// request open.
    #[must_use]
    pub fn max_retry_after(mut self, wait: Duration) -> Self {
        self.max_retry_after = wait;
        self
    }

    /// Where the `rest_client_*` series are recorded (default: nowhere). Use the manager's
    /// [`Metrics`] so they are served with the rest.
    #[must_use]
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn quota(&self) -> Result<Option<Quota>, ClientError> {
        if self.exempt {
            return Ok(None);
        }
        let invalid = || ClientError::InvalidRateLimit {
            qps: self.qps,
            burst: self.burst,
        };
        let burst = NonZeroU32::new(self.burst).ok_or_else(invalid)?;
        if !(self.qps.is_finite() && self.qps > 0.0) {
            return Err(invalid());
        }
        let period = Duration::try_from_secs_f64(1.0 / self.qps).map_err(|_| invalid())?;
        let quota = Quota::with_period(period.max(Duration::from_nanos(1))).ok_or_else(invalid)?;
        Ok(Some(quota.allow_burst(burst)))
    }

    /// The tower layer that applies this configuration, labelling its series with `host`.
    /// Every service the layer wraps shares one token bucket.
    ///
    /// # Errors
    ///
    /// When the rate limit is invalid (see [`ClientError::InvalidRateLimit`]).
    pub fn layer(&self, host: impl Into<String>) -> Result<FlowControlLayer, ClientError> {
        Ok(FlowControlLayer::new(
            self.quota()?,
            self.max_retries,
            self.max_retry_after,
            self.metrics.as_ref().map(|m| m.rest_client().clone()),
            host.into(),
        ))
    }

    /// A kube client for `config` with this flow control on top of kube's own stack (TLS,
    /// authentication, tracing). kube's own retry layer is turned off: this one retries 429s
    /// as client-go does, and two would multiply each other's attempts. Series are labelled
    /// with the API server's `host:port`.
    ///
    /// # Errors
    ///
    /// When the rate limit is invalid, or kube cannot build a client from `config`.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, as `kube::Client::new` does.
    pub fn build(&self, mut config: kube::Config) -> Result<kube::Client, ClientError> {
        let host = config
            .cluster_url
            .authority()
            .map(ToString::to_string)
            .unwrap_or_default();
        config.default_retry = false;
        let builder = ClientBuilder::try_from(config).map_err(ClientError::Kube)?;
        self.build_with(builder, host)
    }

    /// A kube client from any kube `ClientBuilder`, with this flow control on top, its series
    /// labelled with `host`. This is how tests give a client of
    /// [`windlass::testing`](crate#feature-flags)'s API server the same layers as a real one.
    ///
    /// # Errors
    ///
    /// When the rate limit is invalid.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn build_with<S, B>(
        &self,
        builder: ClientBuilder<S>,
        host: impl Into<String>,
    ) -> Result<kube::Client, ClientError>
    where
        S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError> + Send + Sync,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Ok(builder.with_layer(&self.layer(host)?).build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_rates_are_errors_not_panics() {
        for (qps, burst) in [(0.0, 30), (-1.0, 30), (f64::NAN, 30), (20.0, 0)] {
            let err = Config::default()
                .qps(qps)
                .burst(burst)
                .layer("h")
                .unwrap_err();
            assert!(matches!(err, ClientError::InvalidRateLimit { .. }), "{err}");
        }
        // Exempt clients need no rate at all.
        assert!(Config::default().qps(0.0).exempt(true).layer("h").is_ok());
    }

    #[test]
    fn fractional_rates_are_periods() {
        let quota = Config::default()
            .qps(0.5)
            .burst(1)
            .quota()
            .unwrap()
            .unwrap();
        assert_eq!(quota.replenish_interval(), Duration::from_secs(2));
        let quota = Config::default().quota().unwrap().unwrap();
        assert_eq!(quota.replenish_interval(), Duration::from_millis(50));
        assert_eq!(quota.burst_size().get(), 30);
    }
}
