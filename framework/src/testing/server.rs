//! The server value users hold: [`ApiServer`], its [`Config`], the clients it hands out and
//! the request log; plus the dispatch from a parsed request to the handler that answers it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::mpsc;

use super::controllers;
use super::faults::{Faults, RequestInfo, Verb};
use super::kinds::{Registry, ResourceType};
use super::request::{ApiRequest, ResourcePath, Route, Wants, negotiate, route};
use super::status::ApiError;
use super::store::Store;
use super::{delete, discovery, openapi, read, watch, write};

/// The response body type of every answer, in-process or over HTTP.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// How an [`ApiServer`] behaves. Every setting has the default a test usually wants, which is
/// how a real cluster behaves unless said otherwise.
#[derive(Debug, Clone)]
pub struct Config {
    garbage_collection: bool,
    enforce_namespaces: bool,
    watch_list: bool,
    bookmark_interval: Duration,
    max_watch_timeout: Duration,
    history_limit: usize,
    request_log_limit: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            garbage_collection: true,
            enforce_namespaces: true,
            watch_list: true,
            bookmark_interval: Duration::from_secs(60),
            max_watch_timeout: Duration::from_secs(30 * 60),
            history_limit: 10_000,
            request_log_limit: 100_000,
        }
    }
}

impl Config {
    /// Whether the built-in garbage collector and namespace controller run (default: on, like a
    /// cluster). Off behaves like envtest: owners' dependents are never collected and deleted
    /// namespaces stay `Terminating`.
    #[must_use]
    pub fn garbage_collection(mut self, on: bool) -> Self {
        self.garbage_collection = on;
        self
    }

    /// Whether objects may only be created in namespaces that exist (default: on, like a
    /// cluster's `NamespaceLifecycle` admission).
    #[must_use]
    pub fn enforce_namespaces(mut self, on: bool) -> Self {
        self.enforce_namespaces = on;
        self
    }

    /// Whether streaming lists (`sendInitialEvents`, the `WatchList` feature gate) are served
    /// (default: on, as in Kubernetes 1.34+).
    #[must_use]
    pub fn watch_list(mut self, on: bool) -> Self {
        self.watch_list = on;
        self
    }

    /// How often watches that allow bookmarks get one (default: 60 s, like a real server).
    #[must_use]
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// The longest a watch stream stays open; a client's `timeoutSeconds` is capped by it
    /// (default: 30 min).
    #[must_use]
    pub fn max_watch_timeout(mut self, timeout: Duration) -> Self {
        self.max_watch_timeout = timeout;
        self
    }

    /// How many changes per resource are kept for watches to resume from and for consistent
    /// paged lists (default: 10 000). Older resourceVersions answer 410 Expired.
    #[must_use]
    pub fn history_limit(mut self, changes: usize) -> Self {
        self.history_limit = changes;
        self
    }

    /// How many requests the request log keeps (default: 100 000; oldest dropped first).
    #[must_use]
    pub fn request_log_limit(mut self, requests: usize) -> Self {
        self.request_log_limit = requests;
        self
    }
}

/// One request as the server saw it, for tests that assert on traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestRecord {
    /// The name of the client that sent it ([`ApiServer::client_named`]; `http` for requests
    /// over TCP).
    pub client: String,
    /// The HTTP method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The Kubernetes verb, for resource requests.
    pub verb: Option<Verb>,
    /// The resource's plural, for resource requests.
    pub resource: Option<String>,
    /// The status answered (0 when the request was dropped by a disconnect fault).
    pub status: u16,
}

/// The state every request reads and writes under one lock: the stored objects and the
/// resources being served (so a CRD's removal and a create of its resource cannot interleave).
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) store: Store,
    pub(crate) registry: Registry,
}

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) garbage_collection: bool,
    pub(crate) enforce_namespaces: bool,
    pub(crate) watch_list: bool,
    pub(crate) bookmark_interval: Duration,
    pub(crate) max_watch_timeout: Duration,
}

pub(crate) struct Inner {
    pub(crate) state: Mutex<State>,
    pub(crate) settings: Mutex<Settings>,
    pub(crate) faults: Faults,
    log: Mutex<VecDeque<RequestRecord>>,
    log_limit: usize,
    next_client: AtomicU64,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner").finish_non_exhaustive()
    }
}

/// Per-client state: its name (for the request log) and its own faults.
#[derive(Debug)]
pub(crate) struct ClientState {
    pub(crate) name: String,
    pub(crate) faults: Faults,
}

/// A request the server did not answer because a disconnect fault is active.
#[derive(Debug, thiserror::Error)]
#[error(
    "connection refused: the test API server is unreachable for client {0:?} (disconnect fault)"
)]
pub(crate) struct Unreachable(pub(crate) String);

/// An in-process Kubernetes API server for tests.
///
/// See the [module documentation](super) for what it implements and how tests use it.
/// Cloning is cheap; clones are the same server.
#[derive(Clone)]
pub struct ApiServer {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state.lock();
        f.debug_struct("ApiServer")
            .field("revision", &state.store.revision())
            .finish()
    }
}

/// A client handed out by [`ApiServer::client_named`], with fault injection that affects only
/// this client.
#[derive(Clone)]
pub struct TestClient {
    state: Arc<ClientState>,
    client: kube::Client,
    service: TestService,
}

impl fmt::Debug for TestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient")
            .field("name", &self.state.name)
            .finish()
    }
}

impl TestClient {
    /// The kube client; clone it freely.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// Faults that affect only this client's requests and watches.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// The name requests from this client are logged under.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// A kube `ClientBuilder` over the same connection (same name, same faults), to build a
    /// client with tower layers of your own, or windlass's flow control
    /// ([`client::Config::build_with`](crate::client::Config::build_with)), so tests exercise
    /// the same stack as a real client:
    ///
    /// ```
    /// use windlass::testing::ApiServer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = ApiServer::new();
    /// let replica = server.client_named("operator");
    /// let client = windlass::client::Config::default()
    ///     .qps(10.0)
    ///     .build_with(replica.client_builder(), "in-process")?;
    /// # let _ = client;
    /// # Ok(())
    /// # }
    /// ```
    pub fn client_builder(&self) -> kube::client::ClientBuilder<TestService> {
        kube::client::ClientBuilder::new(self.service.clone(), "default")
    }
}

/// The tower service behind a [`TestClient`]: requests go straight to the server's handler,
/// in-process. Cloning is cheap.
#[derive(Clone)]
pub struct TestService {
    inner: Arc<Inner>,
    client: Arc<ClientState>,
}

impl fmt::Debug for TestService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestService")
            .field("client", &self.client.name)
            .finish()
    }
}

impl tower::Service<http::Request<kube::client::Body>> for TestService {
    type Response = Response<UnsyncBoxBody<Bytes, Infallible>>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
        let inner = self.inner.clone();
        let client = self.client.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = body.collect_bytes().await.unwrap_or_default();
            Ok(inner.handle(&client, ApiRequest::new(parts, body)).await?)
        })
    }
}

impl Default for ApiServer {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiServer {
    /// A server with the default [`Config`]: built-in kinds, the namespaces `default`,
    /// `kube-system`, `kube-public` and `kube-node-lease`, garbage collection on.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (the server's background controllers run as a task).
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    /// A server with the given configuration.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn with_config(config: Config) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut store = Store::new(config.history_limit);
        store.set_change_sink(tx);
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                store,
                registry: Registry::with_builtins(),
            }),
            settings: Mutex::new(Settings {
                garbage_collection: config.garbage_collection,
                enforce_namespaces: config.enforce_namespaces,
                watch_list: config.watch_list,
                bookmark_interval: config.bookmark_interval,
                max_watch_timeout: config.max_watch_timeout,
            }),
            faults: Faults::new(),
            log: Mutex::new(VecDeque::new()),
            log_limit: config.request_log_limit,
            next_client: AtomicU64::new(1),
        });
        write::create_default_namespaces(&inner);
        tokio::spawn(controllers::run(Arc::downgrade(&inner), rx));
        Self { inner }
    }

    /// A new kube client backed by this server, in-process (no TCP). Its default namespace is
    /// `default`.
    pub fn client(&self) -> kube::Client {
        let n = self.inner.next_client.fetch_add(1, Ordering::Relaxed);
        self.client_named(&format!("client-{n}")).client()
    }

    /// A new named client with its own fault injection (e.g. one per operator replica).
    pub fn client_named(&self, name: &str) -> TestClient {
        let state = Arc::new(ClientState {
            name: name.to_string(),
            faults: Faults::new(),
        });
        let service = TestService {
            inner: self.inner.clone(),
            client: state.clone(),
        };
        TestClient {
            state,
            client: kube::Client::new(service.clone(), "default"),
            service,
        }
    }

    /// Faults that affect every client of this server (and requests over HTTP).
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The requests served so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner.log.lock().iter().cloned().collect()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.inner.log.lock().clear();
    }

    /// The current resourceVersion of the store (the revision of the last write).
    pub fn resource_version(&self) -> u64 {
        self.inner.state.lock().store.revision()
    }

    /// Forgets all history, as an etcd compaction does: every watch is ended, and resuming
    /// it (or any list or watch from an older resourceVersion, or a continue token issued
    /// before) answers 410 Expired, so clients must relist.
    pub fn expire_history(&self) {
        self.inner.state.lock().store.compact_all();
        self.inner.faults.close_watches();
    }

    /// Turns the `WatchList` feature gate (streaming lists) on or off.
    pub fn set_watch_list(&self, on: bool) {
        self.inner.settings.lock().watch_list = on;
    }

    /// Changes how often bookmarks are sent on watches that allow them.
    pub fn set_bookmark_interval(&self, interval: Duration) {
        self.inner.settings.lock().bookmark_interval = interval;
    }

    /// Changes the longest a watch stream stays open (applies to watches started afterwards).
    pub fn set_max_watch_timeout(&self, timeout: Duration) {
        self.inner.settings.lock().max_watch_timeout = timeout;
    }

    /// Turns the garbage collector and namespace controller on or off.
    pub fn set_garbage_collection(&self, on: bool) {
        self.inner.settings.lock().garbage_collection = on;
    }

    /// Changes how many changes per resource are kept.
    pub fn set_history_limit(&self, changes: usize) {
        self.inner.state.lock().store.set_history_limit(changes);
    }
}

impl Inner {
    pub(crate) fn settings(&self) -> Settings {
        self.settings.lock().clone()
    }

    /// Serves one request for one client: faults first, then the endpoint, then the log.
    pub(crate) async fn handle(
        self: &Arc<Self>,
        client: &ClientState,
        req: ApiRequest,
    ) -> Result<Response<Body>, Unreachable> {
        let route = route(&req.path);
        let info = request_info(&req, &route);
        let mut record = RequestRecord {
            client: client.name.clone(),
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.raw_query.clone().unwrap_or_default(),
            verb: info.verb,
            resource: info.resource.map(String::from),
            status: 0,
        };
        if self.faults.is_disconnected() || client.faults.is_disconnected() {
            self.log(record);
            return Err(Unreachable(client.name.clone()));
        }
        for latency in [self.faults.latency(), client.faults.latency()]
            .into_iter()
            .flatten()
        {
            tokio::time::sleep(latency).await;
        }
        let injected = self
            .faults
            .take(&info)
            .or_else(|| client.faults.take(&info));
        let reply = match injected {
            Some(f) if f.code == 410 && info.verb == Some(Verb::Watch) => watch::expired_stream(),
            Some(f) => Reply::Error(ApiError::injected(f.code, f.retry_after)),
            None => self.dispatch(client, &req, route).await,
        };
        let response = reply.into_response();
        record.status = response.status().as_u16();
        self.log(record);
        Ok(response)
    }

    fn log(&self, record: RequestRecord) {
        let mut log = self.log.lock();
        if log.len() >= self.log_limit.max(1) {
            log.pop_front();
        }
        log.push_back(record);
    }

    async fn dispatch(
        self: &Arc<Self>,
        client: &ClientState,
        req: &ApiRequest,
        route: Route,
    ) -> Reply {
        let wants = negotiate(&req.headers);
        let result = match route {
            Route::Version => Ok(Reply::json(200, &discovery::version())),
            Route::Health => Ok(Reply::Text(200, "ok")),
            Route::CoreVersions => discovery::core_versions(self, wants),
            Route::Groups => discovery::groups(self, wants),
            Route::Group(g) => discovery::group(self, &g),
            Route::GroupVersion(g, v) => discovery::resource_list(self, &g, &v),
            Route::OpenApi => Ok(openapi::serve(self, req)),
            Route::NotFound => Ok(Reply::page_not_found()),
            Route::Resource(path) => self.resource(client, req, path, wants).await,
        };
        result.unwrap_or_else(Reply::Error)
    }

    async fn resource(
        self: &Arc<Self>,
        client: &ClientState,
        req: &ApiRequest,
        path: ResourcePath,
        wants: Wants,
    ) -> Result<Reply, ApiError> {
        let Some(rt) = self
            .state
            .lock()
            .registry
            .get(&path.group, &path.version, &path.plural)
        else {
            return Ok(Reply::page_not_found());
        };
        if path.namespace.is_some() && !rt.namespaced {
            return Ok(Reply::page_not_found());
        }
        // Tables are served for reads of custom resources (their printer columns); other
        // requests take the next representation the client accepts.
        let wants = if wants == Wants::Table
            && (!rt.custom
                || req.method != Method::GET
                || path.subresource.is_some()
                || verb_of(req) == Some(Verb::Watch))
        {
            super::request::negotiate_without_table(&req.headers)
        } else {
            wants
        };
        if wants == Wants::Unsupported {
            return Err(ApiError::not_acceptable(
                "only the following media types are accepted: application/json, application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
            ));
        }
        let sub = path.subresource.as_deref();
        let known_sub = match sub {
            None => true,
            Some("status") => rt.status_subresource,
            Some("scale") => rt.scale.is_some(),
            Some("finalize") => rt.plural == "namespaces" && rt.group.is_empty(),
            Some(_) => false,
        };
        if !known_sub {
            // A built-in's undeclared subresource has no route (go-restful's generic 404
            // Status); the CRD handler answers NotFound for the object instead.
            return Err(match path.name.as_deref() {
                Some(name) if rt.custom => ApiError::not_found(&rt, name),
                _ => ApiError::route_not_found(),
            });
        }
        let ns = path.namespace.as_deref();
        let ctx = Ctx {
            inner: self,
            client,
            req,
            rt: &rt,
            wants,
            namespace: ns,
        };
        match (&req.method, path.name.as_deref(), verb_of(req)) {
            (_, _, Some(Verb::Watch)) if path.name.is_none() => watch::watch(&ctx).await,
            (&Method::GET, Some(name), _) => match sub {
                Some("scale") => read::get_scale(&ctx, name),
                _ => read::get(&ctx, name).await,
            },
            (&Method::GET, None, _) => read::list(&ctx).await,
            (&Method::POST, None, _) => write::create(&ctx),
            (&Method::PUT, Some(name), _) => match sub {
                Some("scale") => write::update_scale(&ctx, name),
                _ => write::update(&ctx, name, sub),
            },
            (&Method::PATCH, Some(name), _) => match sub {
                Some("scale") => write::patch_scale(&ctx, name),
                _ => write::patch(&ctx, name, sub),
            },
            (&Method::DELETE, Some(name), _) if sub.is_none() => delete::delete(&ctx, name),
            (&Method::DELETE, None, _) => delete::delete_collection(&ctx),
            _ => Err(ApiError::method_not_allowed()),
        }
    }
}

/// Everything a resource handler needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) inner: &'a Arc<Inner>,
    pub(crate) client: &'a ClientState,
    pub(crate) req: &'a ApiRequest,
    pub(crate) rt: &'a Arc<ResourceType>,
    pub(crate) wants: Wants,
    pub(crate) namespace: Option<&'a str>,
}

fn verb_of(req: &ApiRequest) -> Option<Verb> {
    let name = route(&req.path);
    let has_name = matches!(&name, Route::Resource(p) if p.name.is_some());
    Some(match req.method {
        Method::GET if !has_name && req.query.flag("watch") => Verb::Watch,
        Method::GET if has_name => Verb::Get,
        Method::GET => Verb::List,
        Method::POST => Verb::Create,
        Method::PUT => Verb::Update,
        Method::PATCH => Verb::Patch,
        Method::DELETE if has_name => Verb::Delete,
        Method::DELETE => Verb::DeleteCollection,
        _ => return None,
    })
}

fn request_info<'a>(req: &ApiRequest, route: &'a Route) -> RequestInfo<'a> {
    match route {
        Route::Resource(p) => RequestInfo {
            verb: verb_of(req),
            resource: Some(&p.plural),
            group: Some(&p.group),
            namespace: p.namespace.as_deref(),
            name: p.name.as_deref(),
            subresource: p.subresource.as_deref(),
        },
        _ => RequestInfo::default(),
    }
}

/// What a handler answers.
pub(crate) enum Reply {
    Json {
        code: u16,
        body: Bytes,
        content_type: &'static str,
    },
    Text(u16, &'static str),
    Stream(Body),
    Error(ApiError),
    /// Another answer with `Warning` headers (the apiserver's warnings, e.g. about finalizers).
    Warned(Box<Reply>, Vec<String>),
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Json { code, .. } => write!(f, "Json({code})"),
            Reply::Text(code, t) => write!(f, "Text({code}, {t:?})"),
            Reply::Stream(_) => f.write_str("Stream"),
            Reply::Error(e) => write!(f, "Error({e:?})"),
            Reply::Warned(r, w) => write!(f, "Warned({r:?}, {w:?})"),
        }
    }
}

impl Reply {
    pub(crate) fn json(code: u16, value: &Value) -> Self {
        Self::bytes(
            code,
            Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
        )
    }

    pub(crate) fn bytes(code: u16, body: Bytes) -> Self {
        Reply::Json {
            code,
            body,
            content_type: "application/json",
        }
    }

    pub(crate) fn page_not_found() -> Self {
        Reply::Text(404, "404 page not found")
    }

    /// This answer with a `Warning` header per warning (none: the answer as it is).
    pub(crate) fn warned(self, warnings: Vec<String>) -> Self {
        if warnings.is_empty() {
            self
        } else {
            Reply::Warned(Box::new(self), warnings)
        }
    }

    fn into_response(self) -> Response<Body> {
        let builder = Response::builder();
        let response = match self {
            Reply::Warned(reply, warnings) => {
                let mut response = reply.into_response();
                for w in warnings {
                    // RFC 7234 warn-code 299, no agent, the text as a quoted string.
                    let text = w.replace('\\', "\\\\").replace('"', "\\\"");
                    if let Ok(v) = http::HeaderValue::from_str(&format!("299 - \"{text}\"")) {
                        response.headers_mut().append(http::header::WARNING, v);
                    }
                }
                return response;
            }
            Reply::Json {
                code,
                body,
                content_type,
            } => builder
                .status(code)
                .header(http::header::CONTENT_TYPE, content_type)
                .body(full(body)),
            Reply::Text(code, text) => builder
                .status(code)
                .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .header("X-Content-Type-Options", "nosniff")
                .body(full(format!("{text}\n"))),
            Reply::Stream(body) => builder
                .status(200)
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::CACHE_CONTROL, "no-cache, private")
                .body(body),
            Reply::Error(e) => {
                let mut b = builder
                    .status(
                        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    )
                    .header(http::header::CONTENT_TYPE, "application/json");
                if let Some(secs) = e.retry_after {
                    b = b.header(http::header::RETRY_AFTER, secs.to_string());
                }
                b.body(full(serde_json::to_vec(&e.to_status()).unwrap_or_default()))
            }
        };
        response.unwrap_or_else(|_| {
            let mut r = Response::new(full(Bytes::from_static(b"internal error")));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
    }
}
