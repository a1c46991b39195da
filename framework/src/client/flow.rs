//! The flow-control tower layer: wait for a token, send, count, and retry throttled answers.
//!
//! One service does all three steps for each request, in the order client-go's
//! `rest.Request` does them: every attempt (retries included) first waits for a token of the
//! client's bucket (`rest_client_rate_limiter_duration_seconds`), then is sent and counted
//! (`rest_client_requests_total`, `rest_client_request_duration_seconds`, up to the response
//! headers); a 429, or a 5xx with `Retry-After`, is retried after the wait the server asked
//! for (`rest_client_request_retries_total`), at most `max_retries` times.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use governor::Quota;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use tokio::time::Instant;
use tower::buffer::Buffer;
use tower::{BoxError, Layer, Service, ServiceExt};

use crate::metrics::RestClientMetrics;
use crate::queue::{BucketRateLimiter, RateLimiter};

/// Requests queued for the wrapped service before callers wait (kube's client uses the same).
const BUFFER: usize = 1024;

/// Waits longer than this are logged, as client-go logs "Waited for ... due to client-side
/// throttling".
const LONG_THROTTLE: Duration = Duration::from_millis(50);

/// Applies a client [`Config`](super::Config)'s flow control to a service. Made by
/// [`Config::layer`](super::Config::layer); every service it wraps shares its token bucket.
#[derive(Clone)]
pub struct FlowControlLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FlowControlLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowControlLayer")
            .field("bucket", &self.shared.bucket)
            .field("host", &self.shared.host)
            .finish_non_exhaustive()
    }
}

struct Shared {
    bucket: Option<BucketRateLimiter>,
    max_retries: u32,
    max_retry_after: Duration,
    metrics: Option<RestClientMetrics>,
    host: String,
}

impl FlowControlLayer {
    pub(crate) fn new(
        quota: Option<Quota>,
        max_retries: u32,
        max_retry_after: Duration,
        metrics: Option<RestClientMetrics>,
        host: String,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                bucket: quota.map(BucketRateLimiter::from_quota),
                max_retries,
                max_retry_after,
                metrics,
                host,
            }),
        }
    }
}

impl<S> Layer<S> for FlowControlLayer
where
    S: Service<Request<Body>> + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError> + Send + Sync,
{
    type Service = FlowControl<Buffer<Request<Body>, S::Future>>;

    /// Wraps `inner` in a [`Buffer`] first: a request waiting for a token or a retry must
    /// not hold up the others, so each request gets its own handle on the service.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (the buffer's worker is a task).
    fn layer(&self, inner: S) -> Self::Service {
        FlowControl {
            inner: Buffer::new(inner, BUFFER),
            shared: self.shared.clone(),
        }
    }
}

/// The service [`FlowControlLayer`] makes.
#[derive(Clone)]
pub struct FlowControl<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for FlowControl<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowControl")
            .field("host", &self.shared.host)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<Body>> for FlowControl<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<B>, BoxError>>;

    /// Always ready: each request waits for the token bucket and the inner service in its
    /// own future, so a throttled request holds no slot of the inner service while it waits.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        Box::pin(self.shared.clone().send(self.inner.clone(), request))
    }
}

/// A copy of `request` to send again, when its body can be copied (a streaming body cannot:
/// such a request is sent once).
fn copy(request: &Request<Body>) -> Option<Request<Body>> {
    let body = request.body().try_clone()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    Some(copy)
}

/// What `Retry-After` asks for, in client-go's reading: whole seconds, on a 429 or a 5xx.
fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    let status = response.status();
    if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
        return None;
    }
    let seconds = response
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

impl Shared {
    async fn send<S, B>(
        self: Arc<Self>,
        mut inner: S,
        mut request: Request<Body>,
    ) -> Result<Response<B>, BoxError>
    where
        S: Service<Request<Body>, Response = Response<B>>,
        S::Error: Into<BoxError>,
    {
        let method = request.method().clone();
        let mut retries = 0;
        loop {
            let again = (retries < self.max_retries)
                .then(|| copy(&request))
                .flatten();
            self.throttle(&method).await;
            let sent = Instant::now();
            let ready = inner.ready().await.map_err(Into::into);
            let result = match ready {
                Ok(ready) => ready.call(request).await.map_err(Into::into),
                Err(e) => Err(e),
            };
            self.record(&method, &result, sent.elapsed());
            let response = result?;
            let wait = retry_after(&response).filter(|w| *w <= self.max_retry_after);
            let (Some(next), Some(wait)) = (again, wait) else {
                return Ok(response);
            };
            retries += 1;
            let code = response.status().as_u16().to_string();
            if let Some(metrics) = &self.metrics {
                metrics
                    .retries
                    .with_label_values(&[&code, method.as_str(), &self.host])
                    .inc();
            }
            tracing::debug!(
                status = %code, ?wait, retry = retries, uri = %next.uri(),
                "the API server asked to retry later; retrying"
            );
            drop(response);
            tokio::time::sleep(wait).await;
            request = next;
        }
    }

    /// Waits for a token, and records the wait.
    async fn throttle(&self, method: &Method) {
        let Some(bucket) = &self.bucket else {
            return;
        };
        let wait = RateLimiter::<()>::when(bucket, &());
        if !wait.is_zero() {
            if wait > LONG_THROTTLE {
                tracing::debug!(?wait, "waiting for the client-side rate limiter");
            }
            tokio::time::sleep(wait).await;
        }
        if let Some(metrics) = &self.metrics {
            metrics
                .rate_limiter
                .with_label_values(&[method.as_str(), &self.host])
                .observe(wait.as_secs_f64());
        }
    }

    fn record<B>(
        &self,
        method: &Method,
        result: &Result<Response<B>, BoxError>,
        latency: Duration,
    ) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        let code = match result {
            Ok(response) => response.status().as_u16().to_string(),
            Err(_) => "<error>".to_string(),
        };
        metrics
            .requests
            .with_label_values(&[&code, method.as_str(), &self.host])
            .inc();
        metrics
            .duration
            .with_label_values(&[method.as_str(), &self.host])
            .observe(latency.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, retry_after: Option<&str>) -> Response<()> {
        let mut builder = Response::builder().status(status);
        if let Some(after) = retry_after {
            builder = builder.header("Retry-After", after);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn retry_after_is_read_on_429_and_5xx_only() {
        assert_eq!(
            retry_after(&response(429, Some("3"))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&response(503, Some("1"))),
            Some(Duration::from_secs(1))
        );
        assert_eq!(retry_after(&response(429, None)), None);
        assert_eq!(retry_after(&response(409, Some("1"))), None);
        // client-go reads whole seconds only.
        assert_eq!(
            retry_after(&response(429, Some("Wed, 21 Oct 2015 07:28:00 GMT"))),
            None
        );
    }
}
