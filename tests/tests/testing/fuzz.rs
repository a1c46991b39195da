//! Random bodies and patches, from a seeded generator: whatever arrives, the server answers
//! (no panic, no hang), refusals change nothing, and what is stored still decodes.

use http::Method;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kube::core::DynamicObject;
use serde_json::{Map, Value, json};
use windlass::testing::ApiServer;

use super::support::*;

/// Keys the generator draws from: real fields, directives and junk, so random bodies reach
/// the interesting code paths instead of failing at the first check.
const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "labels",
    "annotations",
    "finalizers",
    "managedFields",
    "resourceVersion",
    "ownerReferences",
    "spec",
    "status",
    "data",
    "size",
    "mode",
    "tags",
    "entries",
    "key",
    "value",
    "containers",
    "image",
    "template",
    "selector",
    "matchLabels",
    "replicas",
    "strategy",
    "type",
    "$patch",
    "$retainKeys",
    "$setElementOrder/containers",
    "$deleteFromPrimitiveList/finalizers",
    "op",
    "path",
    "from",
    "x",
    "",
];

fn scalar(rng: &mut fastrand::Rng) -> Value {
    match rng.u8(..7) {
        0 => Value::Null,
        1 => json!(rng.bool()),
        2 => json!(rng.i64(-3..300)),
        3 => json!(rng.f64() * 10.0),
        4 => json!(
            [
                "fast", "slow", "replace", "delete", "merge", "/data/a", "v1", "add"
            ][rng.usize(..8)]
        ),
        5 => json!(KEYS[rng.usize(..KEYS.len())]),
        _ => json!("x".repeat(rng.usize(..12))),
    }
}

fn value(rng: &mut fastrand::Rng, depth: u32) -> Value {
    if depth == 0 {
        return scalar(rng);
    }
    match rng.u8(..5) {
        0 | 1 => {
            let mut m = Map::new();
            for _ in 0..rng.usize(..5) {
                m.insert(
                    KEYS[rng.usize(..KEYS.len())].to_string(),
                    value(rng, depth - 1),
                );
            }
            Value::Object(m)
        }
        2 => Value::Array((0..rng.usize(..4)).map(|_| value(rng, depth - 1)).collect()),
        _ => scalar(rng),
    }
}

/// A random body: usually JSON shaped like an object of the kind, sometimes raw bytes.
fn body(rng: &mut fastrand::Rng, base: &Value) -> Vec<u8> {
    match rng.u8(..10) {
        0 => (0..rng.usize(..40)).map(|_| rng.u8(..)).collect(),
        1 => b"a: [b\n  - c: {".to_vec(),
        2 => serde_json::to_vec(&value(rng, 4)).unwrap(),
        3 => {
            // A JSON patch with random operations.
            let ops: Vec<Value> = (0..rng.usize(..4))
                .map(|_| {
                    let op = ["add", "remove", "replace", "test", "move", "copy"][rng.usize(..6)];
                    let path = [
                        "/data/a",
                        "/spec/size",
                        "/metadata/labels/x",
                        "/metadata/finalizers/0",
                        "/x/y",
                        "",
                    ][rng.usize(..6)];
                    json!({"op": op, "path": path, "from": "/data/a", "value": value(rng, 2)})
                })
                .collect();
            serde_json::to_vec(&ops).unwrap()
        }
        _ => {
            // The base object with a few members replaced by random values.
            let mut v = base.clone();
            for _ in 0..rng.usize(1..4) {
                let target = ["spec", "data", "metadata", "status"][rng.usize(..4)];
                if let Some(o) = v.get_mut(target).and_then(Value::as_object_mut) {
                    o.insert(KEYS[rng.usize(..KEYS.len())].to_string(), value(rng, 3));
                } else if let Some(o) = v.as_object_mut() {
                    o.insert(target.to_string(), value(rng, 3));
                }
            }
            if rng.bool() {
                serde_json::to_vec(&v).unwrap()
            } else {
                serde_saphyr::to_string(&v).unwrap_or_default().into_bytes()
            }
        }
    }
}

#[tokio::test]
async fn random_bodies_and_patches_never_panic_or_corrupt_stored_objects() {
    let server = ApiServer::new();
    let client = server.client();
    let widgets = widgets(&client).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    deploys
        .create(&PostParams::default(), &deployment("d"))
        .await
        .unwrap();
    widgets
        .create(&PostParams::default(), &widget("w", json!({"size": 1})))
        .await
        .unwrap();
    let targets = [
        (
            "/api/v1/namespaces/default/configmaps",
            "a",
            serde_json::to_value(cm("a")).unwrap(),
        ),
        (
            "/apis/apps/v1/namespaces/default/deployments",
            "d",
            serde_json::to_value(deployment("d")).unwrap(),
        ),
        (
            "/apis/example.com/v1/namespaces/default/widgets",
            "w",
            serde_json::to_value(widget("w", json!({"size": 1}))).unwrap(),
        ),
    ];
    let types = [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    ];
    let mut rng = fastrand::Rng::with_seed(0x5eed_1234);
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..600 {
        let (collection, name, base) = &targets[rng.usize(..targets.len())];
        let payload = body(&mut rng, base);
        let before = server.resource_version();
        let res = match rng.u8(..6) {
            0 => {
                request_bytes(
                    &client,
                    Method::POST,
                    collection,
                    "application/json",
                    payload,
                )
                .await
            }
            1 => {
                request_bytes(
                    &client,
                    Method::PUT,
                    &format!("{collection}/{name}"),
                    "application/json",
                    payload,
                )
                .await
            }
            _ => {
                let ct = types[rng.usize(..types.len())];
                let q = [
                    "",
                    "?fieldManager=fuzz",
                    "?fieldManager=fuzz&force=true",
                    "?fieldValidation=Strict&fieldManager=f",
                ][rng.usize(..4)];
                request_bytes(
                    &client,
                    Method::PATCH,
                    &format!("{collection}/{name}{q}"),
                    ct,
                    payload,
                )
                .await
            }
        };
        let code = res.status.as_u16();
        assert!(code < 500, "iteration {i}: {code} {}", res.text());
        if code < 400 {
            accepted += 1;
        } else {
            refused += 1;
        }
        if code >= 400 {
            // A refusal is a Status and writes nothing.
            res.assert_status(code, res.json()["reason"].as_str().unwrap_or_default());
            assert_eq!(
                server.resource_version(),
                before,
                "iteration {i}: a refused write moved the store"
            );
        }
    }
    // The generator reaches both sides of the server's checks.
    assert!(
        accepted > 50 && refused > 50,
        "accepted {accepted}, refused {refused}"
    );
    // Everything stored still decodes into its kind.
    for cm in cms
        .list(&ListParams::default())
        .await
        .expect("configmaps decode")
    {
        assert!(cm.metadata.resource_version.is_some());
    }
    deploys
        .list(&ListParams::default())
        .await
        .expect("deployments decode");
    let ws: Vec<DynamicObject> = widgets
        .list(&ListParams::default())
        .await
        .expect("widgets decode")
        .items;
    assert!(!ws.is_empty());
}
