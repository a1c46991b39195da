//! Fixtures and helpers shared by the conformance tests: objects to create, a CRD to install,
//! raw HTTP requests and raw watch streams, and bounded waits on kube streams.
//!
//! Everything here is bounded: every wait has a timeout (instant under tokio's paused clock),
//! so a server that misbehaves fails a test instead of hanging it.

#![allow(dead_code)]

use std::fmt::Debug;
use std::time::Duration;

use futures::{Stream, StreamExt};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams, WatchEvent};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind, Status};
use kube::runtime::{conditions, wait::await_condition};
use serde_json::{Value, json};

/// How long any single wait may take before the test fails. Under a paused clock this passes
/// instantly once nothing else can happen.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// A ConfigMap named `name` with `data: {a: "1"}`.
pub(crate) fn cm(name: &str) -> ConfigMap {
    cm_with(name, &[("a", "1")])
}

/// A ConfigMap with the given data.
pub(crate) fn cm_with(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": data,
    }))
    .expect("a valid ConfigMap")
}

/// A ConfigMap with the given labels.
pub(crate) fn labeled_cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let mut c = cm(name);
    c.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    c
}

/// A minimal valid Deployment: one nginx container, selecting `app: <name>`.
pub(crate) fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
            }
        }
    }))
    .expect("a valid Deployment")
}

/// The `Status` of an API error; panics on any other error.
pub(crate) fn status(err: kube::Error) -> Box<Status> {
    match err {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error Status, got {other:?}"),
    }
}

/// Unwraps an `Err` into its `Status`, panicking on success.
pub(crate) fn api_err<T: Debug>(result: Result<T, kube::Error>) -> Box<Status> {
    match result {
        Ok(v) => panic!("expected an API error, got success: {v:?}"),
        Err(e) => status(e),
    }
}

/// The CRD `widgets.example.com`: namespaced, versions `v1` (storage, status and scale
/// subresources with `.spec.size`/`.status.size`) and `v1beta1` (served, no subresources).
pub(crate) fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true,
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                 "subresources": {"status": {}, "scale": {
                     "specReplicasPath": ".spec.size",
                     "statusReplicasPath": ".status.size",
                     "labelSelectorPath": ".status.selector"}}},
                {"name": "v1beta1", "served": true, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}
            ]
        }
    }))
    .expect("a valid CRD")
}

/// The CRD `gadgets.example.com`: namespaced, one version `v1` without subresources.
pub(crate) fn gadget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "kind": "Gadget"},
            "versions": [
                {"name": "v1", "served": true, "storage": true,
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}
            ]
        }
    }))
    .expect("a valid CRD")
}

/// Creates a CRD and waits until it is Established.
pub(crate) async fn install(client: &kube::Client, crd: &CustomResourceDefinition) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().expect("the CRD has a name");
    crds.create(&PostParams::default(), crd)
        .await
        .expect("the CRD is created");
    let established = await_condition(crds, &name, conditions::is_crd_established());
    tokio::time::timeout(WAIT, established)
        .await
        .expect("the CRD is established in time")
        .expect("waiting for the CRD works");
}

/// The `ApiResource` of widgets at `version`.
pub(crate) fn widget_resource(version: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", version, "Widget"),
        "widgets",
    )
}

/// The `ApiResource` of gadgets (`example.com/v1`).
pub(crate) fn gadget_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Gadget"),
        "gadgets",
    )
}

/// Installs the widget CRD and returns an `Api` for widgets (v1) in `default`.
pub(crate) async fn widgets(client: &kube::Client) -> Api<DynamicObject> {
    install(client, &widget_crd()).await;
    Api::namespaced_with(client.clone(), "default", &widget_resource("v1"))
}

/// Installs the gadget CRD and returns an `Api` for gadgets in `default`.
pub(crate) async fn gadgets(client: &kube::Client) -> Api<DynamicObject> {
    install(client, &gadget_crd()).await;
    Api::namespaced_with(client.clone(), "default", &gadget_resource())
}

/// A widget (`example.com/v1`) with the given spec.
pub(crate) fn widget(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("a valid widget")
}

/// A gadget (`example.com/v1`) with the given spec.
pub(crate) fn gadget(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Gadget",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("a valid gadget")
}

/// A whole HTTP answer, read to the end.
#[derive(Debug)]
pub(crate) struct Raw {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Raw {
    /// The body as JSON; panics (showing the body) when it is not JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a `Status` failure body with this code and reason, and returns the body.
    pub(crate) fn assert_status(&self, code: u16, reason: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            code,
            "unexpected status; body: {}",
            self.text()
        );
        let body = self.json();
        assert_eq!(body["kind"], "Status", "body: {body}");
        assert_eq!(body["apiVersion"], "v1", "body: {body}");
        assert_eq!(body["status"], "Failure", "body: {body}");
        assert_eq!(body["code"], code, "body: {body}");
        assert_eq!(body["reason"], reason, "body: {body}");
        body
    }
}

/// Sends a raw request (path and query only, as the in-process service receives them).
pub(crate) async fn send(client: &kube::Client, req: Request<Vec<u8>>) -> Raw {
    let res = tokio::time::timeout(WAIT, client.send(req.map(kube::client::Body::from)))
        .await
        .expect("the server answers in time")
        .expect("the request reaches the server");
    let (parts, body) = res.into_parts();
    let body = tokio::time::timeout(WAIT, body.collect())
        .await
        .expect("the body ends in time")
        .expect("the body can be read")
        .to_bytes()
        .to_vec();
    Raw {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Sends `method path` with an optional JSON body.
pub(crate) async fn request(
    client: &kube::Client,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> Raw {
    let mut builder = Request::builder().method(method).uri(uri);
    let bytes = match body {
        Some(b) => {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
            serde_json::to_vec(&b).expect("JSON serializes")
        }
        None => Vec::new(),
    };
    send(client, builder.body(bytes).expect("a valid request")).await
}

pub(crate) async fn get(client: &kube::Client, uri: &str) -> Raw {
    request(client, Method::GET, uri, None).await
}

/// Sends a request with a body of the given content type, as bytes.
pub(crate) async fn request_bytes(
    client: &kube::Client,
    method: Method,
    uri: &str,
    content_type: &str,
    body: impl Into<Vec<u8>>,
) -> Raw {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(body.into())
        .expect("a valid request");
    send(client, req).await
}

/// What the next read of a raw watch found.
#[derive(Debug)]
pub(crate) enum Next {
    /// One event line, parsed.
    Event(Value),
    /// The server ended the stream.
    End,
    /// Nothing arrived within the wait.
    Quiet,
}

/// A raw watch stream: the answer's status and headers, then one JSON event per line.
pub(crate) struct RawWatch {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    body: kube::client::Body,
    buf: Vec<u8>,
    ended: bool,
}

impl RawWatch {
    /// Starts a watch with a raw GET of `uri` (which must ask for `watch=true`).
    pub(crate) async fn start(client: &kube::Client, uri: &str) -> Self {
        let req = Request::builder()
            .uri(uri)
            .body(Vec::new())
            .expect("a valid request");
        let res = tokio::time::timeout(WAIT, client.send(req.map(kube::client::Body::from)))
            .await
            .expect("the watch answers in time")
            .expect("the request reaches the server");
        let (parts, body) = res.into_parts();
        Self {
            status: parts.status,
            headers: parts.headers,
            body,
            buf: Vec::new(),
            ended: false,
        }
    }

    /// The next event, the end of the stream, or quiet after `wait`.
    pub(crate) async fn next_within(&mut self, wait: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let event = serde_json::from_slice(&line[..line.len() - 1]).unwrap_or_else(|e| {
                    panic!(
                        "watch line is not JSON ({e}): {:?}",
                        String::from_utf8_lossy(&line)
                    )
                });
                return Next::Event(event);
            }
            if self.ended {
                assert!(
                    self.buf.is_empty(),
                    "stream ended mid-line: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
                return Next::End;
            }
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return Next::Quiet,
                Ok(None) => self.ended = true,
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Ok(Some(Err(e))) => panic!("watch body failed: {e}"),
            }
        }
    }

    /// The next event; panics when the stream ends or stays quiet.
    pub(crate) async fn next(&mut self) -> Value {
        match self.next_within(WAIT).await {
            Next::Event(e) => e,
            other => panic!("expected a watch event, got {other:?}"),
        }
    }

    /// The next event's type and object name.
    pub(crate) async fn next_named(&mut self) -> (String, String) {
        let e = self.next().await;
        (
            event_type(&e),
            e["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    }

    /// Asserts that the server ends the stream (before anything else arrives).
    pub(crate) async fn expect_end(&mut self) {
        match self.next_within(WAIT).await {
            Next::End => {}
            other => panic!("expected the watch to end, got {other:?}"),
        }
    }

    /// Asserts that nothing arrives within `wait` (and the stream stays open).
    pub(crate) async fn expect_quiet(&mut self, wait: Duration) {
        match self.next_within(wait).await {
            Next::Quiet => {}
            other => panic!("expected no watch event, got {other:?}"),
        }
    }
}

pub(crate) fn event_type(e: &Value) -> String {
    e["type"].as_str().unwrap_or_default().to_string()
}

/// The next item of a stream, failing the test if none comes in time.
pub(crate) async fn next_item<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("an item arrives in time")
        .expect("the stream goes on")
}

/// A kube watch event reduced to (type, name, resourceVersion) for comparisons.
pub(crate) fn summary<K: kube::Resource>(e: &WatchEvent<K>) -> (String, String, String) {
    use kube::ResourceExt;
    match e {
        WatchEvent::Added(o) => (
            "ADDED".into(),
            o.name_any(),
            o.resource_version().unwrap_or_default(),
        ),
        WatchEvent::Modified(o) => (
            "MODIFIED".into(),
            o.name_any(),
            o.resource_version().unwrap_or_default(),
        ),
        WatchEvent::Deleted(o) => (
            "DELETED".into(),
            o.name_any(),
            o.resource_version().unwrap_or_default(),
        ),
        WatchEvent::Bookmark(b) => (
            "BOOKMARK".into(),
            String::new(),
            b.metadata.resource_version.clone(),
        ),
        WatchEvent::Error(s) => ("ERROR".into(), s.reason.clone(), s.code.to_string()),
    }
}

/// The store's current revision as a resourceVersion string.
pub(crate) fn rv_of(server: &windlass::testing::ApiServer) -> String {
    server.resource_version().to_string()
}

/// Parses a resourceVersion.
pub(crate) fn rv(s: Option<&String>) -> u64 {
    s.expect("a resourceVersion")
        .parse()
        .expect("a numeric resourceVersion")
}
