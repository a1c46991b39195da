//! Bad input: malformed and mistyped bodies, parameters of the wrong shape, and a few hundred
//! garbage requests from a seeded generator, after which every object that existed before is
//! unchanged to the byte and the server still serves.

use std::time::Duration;

use http::{Method, Request};
use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};
use windlass::testing::ApiServer;

use super::support::*;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn a_body_that_is_not_json_is_400_with_gos_parse_error() {
    let server = ApiServer::new();
    let client = server.client();
    let res = request_bytes(&client, Method::POST, CMS, "application/json", "{not json").await;
    let body = res.assert_status(400, "BadRequest");
    assert_eq!(
        body["message"],
        "the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; json parse error: invalid character 'n' looking for beginning of object key string ({not json)"
    );
    let res = request_bytes(&client, Method::POST, CMS, "application/json", "").await;
    let body = res.assert_status(400, "BadRequest");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("unexpected end of JSON input (<empty>)"),
        "{body}"
    );
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_400() {
    let server = ApiServer::new();
    let client = server.client();
    for (body, what) in [
        ("[1,2]", "array"),
        ("\"x\"", "string"),
        ("5", "number"),
        ("true", "bool"),
    ] {
        let res = request_bytes(&client, Method::POST, CMS, "application/json", body).await;
        let status = res.assert_status(400, "BadRequest");
        let msg = status["message"].as_str().unwrap();
        assert!(
            msg.starts_with(&format!(
                "the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; json parse error: json: cannot unmarshal {what} into Go value of type struct"
            )),
            "{msg}"
        );
    }
}

#[tokio::test]
async fn a_body_of_another_kind_or_version_is_400() {
    let server = ApiServer::new();
    let client = server.client();
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}});
    let res = request(&client, Method::POST, CMS, Some(secret)).await;
    let body = res.assert_status(400, "BadRequest");
    assert_eq!(
        body["message"],
        r#"Secret in version "v1" cannot be handled as a ConfigMap: converting (v1.Secret) to (core.ConfigMap): unknown conversion"#
    );
    let elsewhere =
        json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    let res = request(&client, Method::POST, CMS, Some(elsewhere)).await;
    let body = res.assert_status(400, "BadRequest");
    assert_eq!(
        body["message"],
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: no kind "ConfigMap" is registered for version "apps/v1" in scheme "pkg/api/legacyscheme/scheme.go:30""#
    );
    assert_eq!(get(&client, &format!("{CMS}/x")).await.status, 404);
}

#[tokio::test]
async fn a_custom_resource_of_another_kind_is_422_and_of_another_version_400() {
    let server = ApiServer::new();
    let client = server.client();
    widgets(&client).await;
    let path = "/apis/example.com/v1/namespaces/default/widgets";
    let res = request(
        &client,
        Method::POST,
        path,
        Some(json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "w"}})),
    )
    .await;
    let body = res.assert_status(422, "Invalid");
    assert_eq!(
        body["message"],
        r#"Widget.example.com "w" is invalid: kind: Invalid value: "Gadget": must be Widget"#
    );
    let res = request(
        &client,
        Method::POST,
        path,
        Some(json!({"apiVersion": "example.com/v9", "kind": "Widget", "metadata": {"name": "w"}})),
    )
    .await;
    let body = res.assert_status(400, "BadRequest");
    assert_eq!(
        body["message"],
        "the API version in the data (example.com/v9) does not match the expected API version (example.com/v1)"
    );
}

#[tokio::test]
async fn metadata_that_is_not_an_object_is_400() {
    let server = ApiServer::new();
    let client = server.client();
    let res = request(
        &client,
        Method::POST,
        CMS,
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": "x"})),
    )
    .await;
    res.assert_status(400, "BadRequest");
}

#[tokio::test(start_paused = true)]
async fn watch_maybe_is_a_watch_because_boolean_parameters_are_lenient() {
    let server = ApiServer::new();
    let client = server.client();
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &cm("x"))
        .await
        .unwrap();
    let mut w = RawWatch::start(&client, &format!("{CMS}?watch=maybe&resourceVersion=0")).await;
    assert_eq!(w.status, 200);
    assert_eq!(w.next_named().await, ("ADDED".into(), "x".into()));
    // Only absent, 0 and false are false.
    let res = get(&client, &format!("{CMS}?watch=0")).await;
    assert_eq!(res.json()["kind"], "ConfigMapList");
}

#[tokio::test]
async fn integer_parameters_that_do_not_parse_are_400() {
    let server = ApiServer::new();
    let client = server.client();
    for (query, value) in [
        ("limit=abc", "abc"),
        ("limit=", ""),
        ("watch=true&timeoutSeconds=1.5", "1.5"),
    ] {
        let res = get(&client, &format!("{CMS}?{query}")).await;
        let body = res.assert_status(400, "BadRequest");
        assert_eq!(
            body["message"],
            format!("strconv.ParseInt: parsing {value:?}: invalid syntax"),
            "{query}"
        );
    }
}

#[tokio::test]
async fn a_continue_token_that_is_not_one_is_400() {
    let server = ApiServer::new();
    let res = get(
        &server.client(),
        &format!("{CMS}?limit=1&continue=not-a-token"),
    )
    .await;
    let body = res.assert_status(400, "BadRequest");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("continue key is not valid"),
        "{body}"
    );
}

/// A small, seeded xorshift generator: the garbage is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// A short lowercase word that never names the objects the test protects.
    fn word(&mut self) -> String {
        loop {
            let len = 1 + self.below(8);
            let w: String = (0..len)
                .map(|_| (b'a' + self.below(26) as u8) as char)
                .collect();
            if !w.contains("keep") {
                return w;
            }
        }
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// An apiVersion and kind for a body, sometimes empty.
    fn pick2(&mut self) -> (&'static str, &'static str) {
        let kinds = [
            ("v1", "ConfigMap"),
            ("v1", "Secret"),
            ("apps/v1", "Deployment"),
            ("example.com/v1", "Widget"),
            ("v1", "Pod"),
            ("", ""),
        ];
        kinds[self.below(kinds.len())]
    }

    fn json(&mut self, depth: u32) -> Value {
        match self.below(if depth == 0 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => json!(self.chance(50)),
            2 => json!(self.next() as i64 % 1000),
            3 => json!(self.word()),
            4 => json!(String::from_utf8_lossy(&self.bytes(6))),
            5 => Value::Array((0..self.below(4)).map(|_| self.json(depth - 1)).collect()),
            _ => {
                let keys = [
                    "apiVersion",
                    "kind",
                    "metadata",
                    "spec",
                    "data",
                    "status",
                    "name",
                    "labels",
                    "op",
                    "path",
                    "value",
                ];
                Value::Object(
                    (0..self.below(4))
                        .map(|_| (self.pick(&keys).to_string(), self.json(depth - 1)))
                        .collect(),
                )
            }
        }
    }
}

/// (group/version, plural, namespaced, kind) of the resources the garbage aims at.
const PLURALS: &[(&str, &str, bool, &str)] = &[
    ("", "configmaps", true, "ConfigMap"),
    ("", "secrets", true, "Secret"),
    ("", "pods", true, "Pod"),
    ("", "events", true, "Event"),
    ("apps/v1", "deployments", true, "Deployment"),
    ("example.com/v1", "widgets", true, "Widget"),
    ("coordination.k8s.io/v1", "leases", true, "Lease"),
    ("events.k8s.io/v1", "events", true, "Event"),
    ("", "namespaces", false, "Namespace"),
    ("", "nodes", false, "Node"),
    (
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        false,
        "CustomResourceDefinition",
    ),
    ("", "bogus", true, "Bogus"),
];

fn garbage_request(rng: &mut Rng) -> (Request<Vec<u8>>, bool) {
    let method = match rng.below(10) {
        0..=2 => Method::GET,
        3..=4 => Method::POST,
        5 => Method::PUT,
        6..=7 => Method::PATCH,
        8 => Method::DELETE,
        _ => Method::from_bytes(rng.pick(&["HEAD", "OPTIONS", "FROB", "CONNECT"]).as_bytes())
            .unwrap(),
    };
    let (gv, plural, namespaced, own_kind) = PLURALS[rng.below(PLURALS.len())];
    let base = if gv.is_empty() {
        "/api/v1".to_string()
    } else {
        format!("/apis/{gv}")
    };
    let ns = match rng.below(4) {
        0 => "default".to_string(),
        1 => "fuzz".to_string(),
        _ => rng.word(),
    };
    let name = match rng.below(6) {
        0 => "x".to_string(),
        1 => "%2e%2e".to_string(),
        2 => "Bad_Name".to_string(),
        _ => rng.word(),
    };
    let sub = rng.pick(&["status", "scale", "finalize", "bogus"]);
    let mut path = match rng.below(9) {
        0 if namespaced => format!("{base}/namespaces/{ns}/{plural}"),
        1 if namespaced => format!("{base}/namespaces/{ns}/{plural}/{name}"),
        2 if namespaced => format!("{base}/namespaces/{ns}/{plural}/{name}/{sub}"),
        3 => format!("{base}/{plural}/{name}"),
        4 => format!("{base}/{plural}/{name}/{sub}"),
        5 => rng
            .pick(&[
                "/api",
                "/apis",
                "/version",
                "/apis/apps",
                "/api/v1",
                "/openapi/v2",
                "/healthz",
            ])
            .to_string(),
        6 => {
            let junk: String = rng.bytes(12).iter().map(|b| format!("%{b:02X}")).collect();
            format!("/{}/{junk}//..", rng.word())
        }
        _ => format!("{base}/{plural}"),
    };
    // Never touch the protected objects' collections across namespaces with a DELETE.
    if method == Method::DELETE
        && !path.contains("/namespaces/")
        && !path.trim_end_matches('/').ends_with(&name)
    {
        path = format!("{path}/{name}");
    }
    let params = [
        "watch=true",
        "watch=maybe",
        "watch=0",
        "limit=abc",
        "limit=-1",
        "limit=2",
        "continue=garbage",
        "resourceVersion=abc",
        "resourceVersion=0",
        "resourceVersion=3",
        "resourceVersion=99999999",
        "resourceVersionMatch=Exact",
        "resourceVersionMatch=NotOlderThan",
        "resourceVersionMatch=Bogus",
        "labelSelector=a%3Db",
        "labelSelector=a+in+(",
        "labelSelector=%21%21",
        "fieldSelector=metadata.name%3Dx",
        "fieldSelector=spec.foo%3D1",
        "fieldSelector=%3D%3D",
        "timeoutSeconds=1",
        "timeoutSeconds=-1",
        "timeoutSeconds=abc",
        "allowWatchBookmarks=true",
        "sendInitialEvents=true",
        "sendInitialEvents=x",
        "dryRun=All",
        "dryRun=Maybe",
        "propagationPolicy=Sideways",
        "propagationPolicy=Foreground",
        "fieldManager=fuzz",
        "force=true",
        "pretty=true",
        "%ZZ=%ZZ",
        "&&&",
        "=x",
    ];
    let mut query: Vec<String> = (0..rng.below(4))
        .map(|_| rng.pick(&params).to_string())
        .collect();
    if rng.chance(10) {
        query.push(format!("{}={}", rng.word(), rng.word()));
    }
    let is_watch = query
        .iter()
        .any(|q| q.starts_with("watch=") && q != "watch=0");
    let uri = if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    };
    let mut builder = Request::builder().method(method).uri(uri.as_str());
    let content_type = rng.pick(&[
        "application/json",
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
        "text/plain",
        "application/json; charset=utf-8",
        "garbage",
        "",
    ]);
    if content_type == "garbage" {
        // Bytes that are not text, as a header value may carry.
        builder = builder.header(
            "content-type",
            http::HeaderValue::from_bytes(b"app/\xfe\xff;;=").unwrap(),
        );
    } else if !content_type.is_empty() {
        builder = builder.header("content-type", content_type);
    }
    let accept = rng.pick(&[
        "",
        "application/json",
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        "application/json;as=Table;v=v1;g=meta.k8s.io",
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        "*/*",
        "application/yaml",
    ]);
    if !accept.is_empty() {
        builder = builder.header("accept", accept);
    }
    if rng.chance(20) {
        builder = builder.header("user-agent", format!("{}/{}", rng.word(), rng.word()));
    }
    let body = match rng.below(6) {
        0 => Vec::new(),
        1 => rng.bytes(64),
        2 | 3 => {
            // Half the time the body is of the endpoint's own kind, so some writes succeed.
            let (api_version, kind) = if rng.chance(50) {
                (if gv.is_empty() { "v1" } else { gv }, own_kind)
            } else {
                rng.pick2()
            };
            let mut labels = serde_json::Map::new();
            labels.insert(rng.word(), json!(rng.word()));
            let mut obj = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "labels": labels}});
            for key in ["data", "spec", "status", "metadata"] {
                if rng.chance(40) {
                    obj[key] = rng.json(3);
                }
            }
            serde_json::to_vec(&obj).unwrap()
        }
        4 => {
            let ops: Vec<Value> = (0..rng.below(4))
                .map(|_| json!({"op": rng.pick(&["add", "remove", "replace", "test", "move", "copy", "bogus"]), "path": format!("/{}/{}", rng.pick(&["data", "metadata", "spec", ""]), rng.word()), "value": rng.json(2)}))
                .collect();
            serde_json::to_vec(&ops).unwrap()
        }
        _ => serde_json::to_vec(&rng.json(3)).unwrap(),
    };
    (builder.body(body).unwrap(), is_watch)
}

/// The raw bytes of every object the garbage must leave alone.
async fn snapshot(client: &kube::Client, paths: &[String]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for p in paths {
        let res = get(client, p).await;
        assert_eq!(res.status, 200, "{p}");
        out.push(res.body);
    }
    out
}

#[tokio::test(start_paused = true)]
async fn garbage_requests_never_break_the_server_or_touch_other_objects() {
    let server = ApiServer::new();
    let client = server.client();
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "keep"}})).unwrap(),
        )
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "keep");
    cms.create(&PostParams::default(), &labeled_cm("keep-a", &[("a", "b")]))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm_with("keep-b", &[("x", "y")]))
        .await
        .unwrap();
    Api::<Deployment>::namespaced(client.clone(), "keep")
        .create(&PostParams::default(), &deployment("keep-d"))
        .await
        .unwrap();
    let lease: Lease = serde_json::from_value(
        json!({"metadata": {"name": "keep-l"}, "spec": {"holderIdentity": "me"}}),
    )
    .unwrap();
    Api::<Lease>::namespaced(client.clone(), "keep")
        .create(&PostParams::default(), &lease)
        .await
        .unwrap();
    install(&client, &widget_crd()).await;
    let mut w = widget("keep-w", json!({"size": 1}));
    w.metadata.namespace = Some("keep".into());
    Api::namespaced_with(client.clone(), "keep", &widget_resource("v1"))
        .create(&PostParams::default(), &w)
        .await
        .unwrap();
    let protected: Vec<String> = [
        "/api/v1/namespaces/keep",
        "/api/v1/namespaces/keep/configmaps/keep-a",
        "/api/v1/namespaces/keep/configmaps/keep-b",
        "/apis/apps/v1/namespaces/keep/deployments/keep-d",
        "/apis/coordination.k8s.io/v1/namespaces/keep/leases/keep-l",
        "/apis/example.com/v1/namespaces/keep/widgets/keep-w",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
    ]
    .map(String::from)
    .into();
    let before = snapshot(&client, &protected).await;

    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..400 {
        let (req, is_watch) = garbage_request(&mut rng);
        let described = format!("#{i} {} {}", req.method(), req.uri());
        let res = tokio::time::timeout(WAIT, client.send(req.map(kube::client::Body::from)))
            .await
            .unwrap_or_else(|_| panic!("{described}: no answer"))
            .unwrap_or_else(|e| panic!("{described}: the server failed to answer: {e}"));
        let status = res.status().as_u16();
        *statuses.entry(status).or_default() += 1;
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = if is_watch && status == 200 && content_type == "application/json" {
            // A stream: read what comes within a second, then hang up.
            let mut body = res.into_body();
            let mut bytes = Vec::new();
            while let Ok(Some(Ok(frame))) =
                tokio::time::timeout(Duration::from_secs(1), body.frame()).await
            {
                if let Ok(d) = frame.into_data() {
                    bytes.extend_from_slice(&d);
                }
            }
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let _: Value = serde_json::from_slice(line)
                    .unwrap_or_else(|e| panic!("{described}: a watch line is not JSON: {e}"));
            }
            continue;
        } else {
            tokio::time::timeout(WAIT, res.into_body().collect())
                .await
                .unwrap_or_else(|_| panic!("{described}: the body never ended"))
                .unwrap_or_else(|e| panic!("{described}: the body failed: {e}"))
                .to_bytes()
        };
        assert!((200..600).contains(&status), "{described}: status {status}");
        if status >= 400 {
            if content_type.starts_with("text/plain") {
                assert_eq!(
                    (status, body.as_ref()),
                    (404, b"404 page not found\n".as_ref()),
                    "{described}"
                );
                continue;
            }
            let s: Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("{described}: an error body is not JSON ({e})"));
            assert_eq!(s["kind"], "Status", "{described}: {s}");
            assert_eq!(s["code"], status, "{described}: {s}");
            let message = s["message"].as_str().unwrap_or_default();
            assert!(!message.is_empty(), "{described}: a failure says why: {s}");
            if status == 500 {
                assert!(
                    message.starts_with("resourceVersion: Invalid value")
                        || message == "resourceVersion should not be set on objects to be created",
                    "{described}: an unexpected internal error: {s}"
                );
            }
        } else if content_type.starts_with("application/json") {
            let _: Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("{described}: a success body is not JSON ({e})"));
        }
    }
    assert!(
        [200, 400, 404, 405, 415, 422]
            .iter()
            .all(|s| statuses.contains_key(s)),
        "the garbage reached many paths: {statuses:?}"
    );

    let after = snapshot(&client, &protected).await;
    for ((path, a), b) in protected.iter().zip(&before).zip(&after) {
        assert_eq!(
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b),
            "{path} changed"
        );
    }
    // Still serving: every resource lists, writes work, and the background controllers run.
    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    for group in discovery.groups() {
        for (ar, _) in group.recommended_resources() {
            let api: Api<kube::core::DynamicObject> = Api::all_with(client.clone(), &ar);
            api.list(&ListParams::default())
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", ar.plural));
        }
    }
    cms.create(&PostParams::default(), &cm("after"))
        .await
        .unwrap();
    install(&client, &gadget_crd()).await;
}
