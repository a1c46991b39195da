//! The manager's HTTP server: `/metrics` on the metrics address, `/healthz` and `/readyz` on
//! the health probe address (one listener serves both when the addresses are equal). It is
//! the first thing [`Manager::run`] starts and the last it stops, so probes and scrapes see the
//! whole of the manager's life, shutdown included.
//!
//! This file owns the listeners, the routing and the manager's settings and methods for them;
//! what the probe endpoints answer is `healthz.rs`'s, and what `/metrics` answers is
//! [`Metrics::encode`]'s.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::healthz::{Check, Checks};
use super::{BoxError, Config, Manager, ManagerError};
use crate::informer::Cache;
use crate::metrics::{Metrics, TEXT_CONTENT_TYPE};

/// The serving half of a manager's [`Config`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    metrics: Option<Metrics>,
    metrics_address: Option<SocketAddr>,
    probe_address: Option<SocketAddr>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            metrics: Some(Metrics::new()),
            metrics_address: None,
            probe_address: None,
        }
    }
}

impl Config {
    /// The registry the manager records its controllers' (and queues', and caches') series
    /// into and serves at `/metrics` (default: a new [`Metrics`]). Pass the same `Metrics` to
    /// the [client](crate::client::Config::metrics) to have its requests counted there too.
    /// `None` records nothing, and `/metrics` answers 404.
    #[must_use]
    pub fn metrics(mut self, metrics: Option<Metrics>) -> Self {
        self.serving.metrics = metrics;
        self
    }

    /// Where to serve `/metrics` (default: nowhere). Operators conventionally use
    /// `0.0.0.0:8080`; tests use `127.0.0.1:0` and read the port back with
    /// [`Manager::metrics_address`]. The address is bound when the manager is created, so that
    /// the port is known before it runs.
    #[must_use]
    pub fn metrics_bind_address(mut self, address: Option<SocketAddr>) -> Self {
        self.serving.metrics_address = address;
        self
    }

    /// Where to serve `/healthz` and `/readyz` (default: nowhere; conventionally
    /// `0.0.0.0:8081`). May equal the metrics address, in which case one listener serves
    /// all three.
    #[must_use]
    pub fn health_probe_bind_address(mut self, address: Option<SocketAddr>) -> Self {
        self.serving.probe_address = address;
        self
    }
}

/// One bound listener and what it serves.
#[derive(Debug)]
struct Listener {
    listener: std::net::TcpListener,
    address: SocketAddr,
    metrics: bool,
    probes: bool,
}

/// A manager's serving state: its registry, its listeners (bound when the manager is
/// created) and its health checks.
#[derive(Debug)]
pub(crate) struct Serving {
    metrics: Option<Metrics>,
    listeners: Vec<Listener>,
    /// A bind failure, reported by `run`.
    failed: Option<ManagerError>,
    healthz: Checks,
    readyz: Checks,
}

fn bind(address: SocketAddr, metrics: bool, probes: bool) -> Result<Listener, ManagerError> {
    let listen = |address| -> std::io::Result<Listener> {
        let listener = std::net::TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        Ok(Listener {
            address: listener.local_addr()?,
            listener,
            metrics,
            probes,
        })
    };
    listen(address).map_err(|source| ManagerError::Listen {
        what: match (metrics, probes) {
            (true, true) => "metrics and health probes",
            (true, false) => "metrics",
            _ => "health probes",
        },
        address,
        source,
    })
}

impl Serving {
    /// Binds the configured addresses and adds the built-in checks: `ping` for liveness;
    /// `informer-sync` (every cache has its first list) and `shutdown` (fails once the
    /// manager is shutting down, so traffic stops before it exits) for readiness.
    pub(crate) fn new(settings: &Settings, cache: &Cache, shutdown: &CancellationToken) -> Self {
        if let Some(metrics) = &settings.metrics {
            metrics.watch_cache(cache);
        }
        let mut failed = None;
        let mut listeners = Vec::new();
        let shared = settings.metrics_address.is_some()
            && settings.metrics_address == settings.probe_address
            && settings.metrics_address.is_some_and(|a| a.port() != 0);
        let wanted: Vec<(SocketAddr, bool, bool)> = if shared {
            vec![(settings.metrics_address.expect("checked"), true, true)]
        } else {
            settings
                .metrics_address
                .map(|a| (a, true, false))
                .into_iter()
                .chain(settings.probe_address.map(|a| (a, false, true)))
                .collect()
        };
        for (address, metrics, probes) in wanted {
            match bind(address, metrics, probes) {
                Ok(l) => listeners.push(l),
                Err(e) => failed = failed.or(Some(e)),
            }
        }

        let mut healthz = Checks::default();
        healthz.add("ping".into(), Arc::new(|| Ok(())));
        let mut readyz = Checks::default();
        let synced = cache.clone();
        readyz.add(
            "informer-sync".into(),
            Arc::new(move || {
                if synced.is_synced() {
                    Ok(())
                } else {
                    Err("not every informer has its first list yet".into())
                }
            }),
        );
        let stopping = shutdown.clone();
        readyz.add(
            "shutdown".into(),
            Arc::new(move || {
                if stopping.is_cancelled() {
                    Err("the manager is shutting down".into())
                } else {
                    Ok(())
                }
            }),
        );
        Self {
            metrics: settings.metrics.clone(),
            listeners,
            failed,
            healthz,
            readyz,
        }
    }

    fn address(&self, metrics: bool) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|l| if metrics { l.metrics } else { l.probes })
            .map(|l| l.address)
    }

    pub(crate) fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_ref()
    }

    /// Starts serving on every listener.
    ///
    /// # Errors
    ///
    /// When an address could not be bound (when the manager was created).
    pub(crate) fn start(self) -> Result<Server, ManagerError> {
        if let Some(failed) = self.failed {
            return Err(failed);
        }
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for l in self.listeners {
            let listener =
                TcpListener::from_std(l.listener).map_err(|source| ManagerError::Listen {
                    what: "metrics or health probes",
                    address: l.address,
                    source,
                })?;
            let routes = Arc::new(Routes {
                metrics: if l.metrics {
                    self.metrics.clone()
                } else {
                    None
                },
                serves_metrics: l.metrics,
                probes: l
                    .probes
                    .then(|| (self.healthz.clone(), self.readyz.clone())),
            });
            tracing::info!(address = %l.address, metrics = l.metrics, probes = l.probes, "serving");
            tasks.spawn(accept(listener, routes, stop.clone()));
        }
        Ok(Server { stop, tasks })
    }
}

/// The running server; [`stop`](Server::stop) ends it.
#[derive(Debug)]
pub(crate) struct Server {
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl Server {
    /// Stops accepting and closes open connections.
    pub(crate) async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// What one listener answers.
struct Routes {
    metrics: Option<Metrics>,
    serves_metrics: bool,
    probes: Option<(Checks, Checks)>,
}

const TEXT: &str = "text/plain; charset=utf-8";

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The rest of `path` after `prefix`, when `path` is `prefix` or below it.
fn under<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

impl Routes {
    fn answer(&self, uri: &Uri) -> Response<Full<Bytes>> {
        let path = uri.path();
        if self.serves_metrics
            && path == "/metrics"
            && let Some(metrics) = &self.metrics
        {
            return text(StatusCode::OK, TEXT_CONTENT_TYPE, metrics.encode());
        }
        if let Some((healthz, readyz)) = &self.probes {
            let answer = if let Some(rest) = under(path, "/healthz") {
                Some(healthz.serve(rest, uri.query()))
            } else {
                under(path, "/readyz").map(|rest| readyz.serve(rest, uri.query()))
            };
            if let Some(answer) = answer {
                return text(answer.status, TEXT, answer.body);
            }
        }
        text(StatusCode::NOT_FOUND, TEXT, "404 page not found\n".into())
    }
}

async fn accept(listener: TcpListener, routes: Arc<Routes>, stop: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::debug!(%error, "accepting a connection failed");
                        continue;
                    }
                };
                let routes = routes.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let response = routes.answer(req.uri());
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

impl Manager {
    /// The registry this manager records into and serves, unless metrics are off
    /// ([`Config::metrics`]). Register your own collectors on its
    /// [`registry`](Metrics::registry).
    pub fn metrics(&self) -> Option<&Metrics> {
        self.serving.metrics()
    }

    /// The address `/metrics` is served on (with the port the system chose for port 0), if
    /// [`Config::metrics_bind_address`] set one and it could be bound.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.serving.address(true)
    }

    /// The address `/healthz` and `/readyz` are served on, if
    /// [`Config::health_probe_bind_address`] set one and it could be bound.
    pub fn health_probe_address(&self) -> Option<SocketAddr> {
        self.serving.address(false)
    }

    /// Adds a liveness check, served by `/healthz` and `/healthz/<name>` (controller-runtime's
    /// `AddHealthzCheck`). A failing liveness check makes the kubelet restart the pod: keep
    /// it for states only a restart fixes. A check of the same name is replaced.
    #[must_use]
    pub fn add_healthz_check(
        mut self,
        name: impl Into<String>,
        check: impl Fn() -> Result<(), BoxError> + Send + Sync + 'static,
    ) -> Self {
        let check: Check = Arc::new(check);
        self.serving.healthz.add(name.into(), check);
        self
    }

    /// Adds a readiness check, served by `/readyz` and `/readyz/<name>` alongside the
    /// built-in `informer-sync` and `shutdown` (controller-runtime's `AddReadyzCheck`). A check
    /// of the same name is replaced.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use windlass::manager::Manager;
    ///
    /// # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
    /// let webhook_ready = Arc::new(AtomicBool::new(false));
    /// let ready = webhook_ready.clone();
    /// let manager = Manager::new(kube::Client::try_default().await?).add_readyz_check(
    ///     "webhook",
    ///     move || {
    ///         if ready.load(Ordering::Relaxed) {
    ///             Ok(())
    ///         } else {
    ///             Err("the webhook server has no certificate yet".into())
    ///         }
    ///     },
    /// );
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn add_readyz_check(
        mut self,
        name: impl Into<String>,
        check: impl Fn() -> Result<(), BoxError> + Send + Sync + 'static,
    ) -> Self {
        let check: Check = Arc::new(check);
        self.serving.readyz.add(name.into(), check);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        assert_eq!(under("/readyz", "/readyz"), Some(""));
        assert_eq!(under("/readyz/", "/readyz"), Some("/"));
        assert_eq!(under("/readyz/db", "/readyz"), Some("/db"));
        assert_eq!(under("/readyzz", "/readyz"), None);
    }
}
