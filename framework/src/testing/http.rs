//! Serving the API over plain HTTP on loopback, for clients that are not in the test process
//! (kubectl, the Python client), and writing a kubeconfig that points at it.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::faults::Faults;
use super::request::ApiRequest;
use super::server::{ApiServer, ClientState};

/// A running HTTP endpoint of an [`ApiServer`]; dropping it stops serving.
pub struct ServeHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for ServeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

impl ServeHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig (YAML) whose current context points at this endpoint, namespace `default`.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.url())
    }

    /// Stops accepting connections and closes the open ones (watch streams end).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A kubeconfig for an API server at `url` with no authentication.
pub fn kubeconfig_yaml(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: windlass
  cluster:
    server: {url}
contexts:
- name: windlass
  context:
    cluster: windlass
    namespace: default
    user: windlass
current-context: windlass
preferences: {{}}
users:
- name: windlass
  user: {{}}
"
    )
}

impl ApiServer {
    /// Serves this server over plain HTTP/1.1 at `addr` (use `127.0.0.1:0` for any free port),
    /// so out-of-process clients such as kubectl can use it. Requests over HTTP are logged
    /// under the client name `http` and obey the server-wide [`faults`](Self::faults).
    ///
    /// # Errors
    ///
    /// When the address cannot be bound.
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<ServeHandle> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let inner = self.inner.clone();
        let client = Arc::new(ClientState {
            name: "http".into(),
            faults: Faults::new(),
        });
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let _ = stream.set_nodelay(true);
                        let inner = inner.clone();
                        let client = client.clone();
                        connections.spawn(async move {
                            let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                                let inner = inner.clone();
                                let client = client.clone();
                                async move {
                                    let (parts, body) = req.into_parts();
                                    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_else(|_| Bytes::new());
                                    inner.handle(&client, ApiRequest::new(parts, body)).await
                                }
                            });
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                    _ = stopped.changed() => break,
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
            connections.shutdown().await;
        });
        Ok(ServeHandle {
            addr,
            stop,
            task: Some(task),
        })
    }
}
