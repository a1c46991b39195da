//! The benchmark fixtures (BENCHMARKS.md): ConfigMaps, Pods and a custom resource, numbered and
//! fully determined by their number, and servers filled with them.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::{conditions, wait::await_condition};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use windlass::testing::ApiServer;

/// Every fixture object lives in this namespace.
pub const NAMESPACE: &str = "default";

/// The three fixture kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fixture {
    ConfigMap,
    Pod,
    BenchApp,
}

impl Fixture {
    pub const ALL: [Fixture; 3] = [Fixture::ConfigMap, Fixture::Pod, Fixture::BenchApp];

    pub fn name(self) -> &'static str {
        match self {
            Fixture::ConfigMap => "ConfigMap",
            Fixture::Pod => "Pod",
            Fixture::BenchApp => "BenchApp (CR)",
        }
    }
}

/// A ConfigMap of ~0.4 KB: 2 labels, 2 data keys, one of 128 B.
pub fn configmap(i: usize) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": format!("cm-{i:06}"), "namespace": NAMESPACE,
                     "labels": {"app": "bench", "shard": (i % 8).to_string()}},
        "data": {"small": "value", "big": "x".repeat(128)},
    }))
    .expect("a valid ConfigMap")
}

/// A short deterministic token (the random suffixes Kubernetes gives pods and volumes).
fn token(i: usize, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    (0..len)
        .map(|_| {
            x ^= x >> 29;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

fn pod_name(i: usize) -> String {
    format!("web-7d9c5b8f4-{}{i:06}", token(i, 5))
}

/// A pod as a ReplicaSet creates it: metadata, owner, spec (one container, the service
/// account token volume, the default tolerations), no status yet.
pub fn pod(i: usize) -> Pod {
    let volume = format!("kube-api-access-{}", token(i + 7, 5));
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(i),
            "generateName": "web-7d9c5b8f4-",
            "namespace": NAMESPACE,
            "labels": {"app": "web", "pod-template-hash": "7d9c5b8f4", "tier": "frontend"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-02T09:14:07Z"},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9c5b8f4",
                "uid": "5b0c8a51-3d5e-4c61-9a8e-2f6f0d3c7a19",
                "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "containers": [{
                "name": "web",
                "image": "registry.example.com/shop/web:1.27.3",
                "imagePullPolicy": "IfNotPresent",
                "args": ["--listen=:8080", "--metrics=:9090", "--log-format=json"],
                "ports": [
                    {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                    {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
                ],
                "env": [
                    {"name": "LOG_LEVEL", "value": "info"},
                    {"name": "CACHE_URL", "value": "redis://cache.shop.svc.cluster.local:6379/0"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                ],
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"cpu": "500m", "memory": "256Mi"},
                },
                "readinessProbe": {
                    "httpGet": {"path": "/readyz", "port": "http", "scheme": "HTTP"},
                    "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3,
                },
                "livenessProbe": {
                    "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                    "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 1,
                    "successThreshold": 1, "failureThreshold": 3,
                },
                "volumeMounts": [{
                    "name": volume, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                    "readOnly": true,
                }],
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": true,
            "nodeName": format!("worker-{}", i % 16),
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccount": "default",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300},
            ],
            "volumes": [{
                "name": volume,
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
                    ],
                },
            }],
        },
    }))
    .expect("a valid Pod")
}

/// What the kubelet reports for pod `i` once it runs.
pub fn pod_status(i: usize) -> serde_json::Value {
    let ip = format!("10.244.{}.{}", (i / 250) % 250, i % 250 + 2);
    let host = format!("192.168.10.{}", i % 16 + 10);
    let t = |s: u32| format!("2026-11-02T09:14:{s:02}Z");
    json!({
        "phase": "Running",
        "conditions": [
            {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": t(9)},
            {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": t(7)},
            {"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": t(21)},
            {"type": "ContainersReady", "status": "True", "lastProbeTime": null, "lastTransitionTime": t(21)},
            {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": t(7)},
        ],
        "containerStatuses": [{
            "name": "web",
            "containerID": format!("containerd://{}", "0f3a9c".repeat(10) + "beef"),
            "image": "registry.example.com/shop/web:1.27.3",
            "imageID": format!("registry.example.com/shop/web@sha256:{}", "4e1d7a".repeat(10) + "c0de"),
            "ready": true,
            "restartCount": 0,
            "started": true,
            "lastState": {},
            "state": {"running": {"startedAt": t(9)}},
        }],
        "hostIP": host,
        "hostIPs": [{"ip": host}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "qosClass": "Burstable",
        "startTime": t(7),
    })
}

/// A custom resource of ~2 KB: an application an operator deploys.
#[derive(windlass::CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[windlass(
    group = "bench.windlass.dev",
    version = "v1",
    kind = "BenchApp",
    namespaced
)]
#[windlass(status = BenchAppStatus)]
#[serde(rename_all = "camelCase")]
pub struct BenchAppSpec {
    pub image: String,
    pub replicas: i32,
    pub version: String,
    pub ports: Vec<BenchPort>,
    pub env: BTreeMap<String, String>,
    pub config: BTreeMap<String, String>,
    pub resources: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BenchPort {
    pub name: String,
    pub port: i32,
    pub protocol: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BenchAppStatus {
    pub observed_generation: Option<i64>,
    pub ready_replicas: Option<i32>,
    pub message: Option<String>,
}

/// Custom resource `i`.
pub fn bench_app(i: usize) -> BenchApp {
    let mut app = BenchApp::new(
        &format!("app-{i:06}"),
        BenchAppSpec {
            image: format!("registry.example.com/apps/app-{}:2.{}.0", i % 50, i % 7),
            replicas: (i % 5) as i32 + 1,
            version: format!("2.{}.0", i % 7),
            ports: vec![
                BenchPort {
                    name: "http".into(),
                    port: 8080,
                    protocol: "TCP".into(),
                },
                BenchPort {
                    name: "grpc".into(),
                    port: 9000,
                    protocol: "TCP".into(),
                },
            ],
            env: (0..6)
                .map(|k| {
                    (
                        format!("APP_SETTING_{k}"),
                        format!("value-{k}-{}", token(i + k, 12)),
                    )
                })
                .collect(),
            config: (0..6)
                .map(|k| (format!("feature.{k}.enabled"), (k % 2 == 0).to_string()))
                .chain([("banner".to_string(), "welcome ".repeat(24))])
                .collect(),
            resources: [
                ("requests.cpu", "250m"),
                ("requests.memory", "256Mi"),
                ("limits.cpu", "1"),
                ("limits.memory", "512Mi"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        },
    );
    app.metadata.namespace = Some(NAMESPACE.into());
    app.metadata.labels = Some(
        [
            ("app.kubernetes.io/name", format!("app-{}", i % 50)),
            ("app.kubernetes.io/managed-by", "bench-operator".to_string()),
            ("team", format!("team-{}", i % 4)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    );
    app
}

/// How many creates are in flight at once while filling a server.
const FILL_CONCURRENCY: usize = 8;

/// Creates objects `0..n` of `fixture` in `server` (and the CRD first, for the custom
/// resource). Pods are created by `kube-controller-manager` and given their status by
/// `kubelet`, so each carries the two managedFields entries a real one has.
pub async fn fill(server: &ApiServer, fixture: Fixture, n: usize) {
    fill_range(server, fixture, 0..n).await;
}

/// Like [`fill`], for the objects numbered `range`.
pub async fn fill_range(server: &ApiServer, fixture: Fixture, range: std::ops::Range<usize>) {
    let client = server.client();
    match fixture {
        Fixture::ConfigMap => {
            let api: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
            futures::stream::iter(range)
                .map(|i| {
                    let api = api.clone();
                    async move { api.create(&PostParams::default(), &configmap(i)).await }
                })
                .buffer_unordered(FILL_CONCURRENCY)
                .try_for_each(|_| async { Ok(()) })
                .await
                .expect("create ConfigMaps");
        }
        Fixture::Pod => {
            // The pods' owner (a ReplicaSet) is not in the server; its garbage collector would
            // delete them as orphans.
            server.set_garbage_collection(false);
            let api: Api<Pod> = Api::namespaced(client, NAMESPACE);
            futures::stream::iter(range)
                .map(|i| {
                    let api = api.clone();
                    async move {
                        let created = api
                            .create(&manager("kube-controller-manager"), &pod(i))
                            .await?;
                        let mut running = created;
                        running.status =
                            Some(serde_json::from_value(pod_status(i)).expect("a PodStatus"));
                        let name = running.metadata.name.clone().unwrap_or_default();
                        api.replace_status(&name, &manager("kubelet"), &running)
                            .await
                            .map(|_| ())
                    }
                })
                .buffer_unordered(FILL_CONCURRENCY)
                .try_for_each(|_| async { Ok(()) })
                .await
                .expect("create Pods");
        }
        Fixture::BenchApp => {
            install_crd(&client).await;
            let api: Api<BenchApp> = Api::namespaced(client, NAMESPACE);
            futures::stream::iter(range)
                .map(|i| {
                    let api = api.clone();
                    async move {
                        api.create(&manager("bench-operator"), &bench_app(i))
                            .await
                            .map(|_| ())
                    }
                })
                .buffer_unordered(FILL_CONCURRENCY)
                .try_for_each(|_| async { Ok(()) })
                .await
                .expect("create BenchApps");
        }
    }
}

fn manager(name: &str) -> PostParams {
    PostParams {
        field_manager: Some(name.to_string()),
        ..PostParams::default()
    }
}

/// Installs the `BenchApp` CRD (once) and waits until it is established.
pub async fn install_crd(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = BenchApp::crd();
    let name = crd.metadata.name.clone().unwrap_or_default();
    if crds.get_opt(&name).await.expect("read CRDs").is_none() {
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("the BenchApp CRD is accepted");
    }
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .expect("the CRD is established in time")
    .expect("waiting for the CRD");
}

/// The JSON size of object 0 of each fixture as the server stores and serves it (with its
/// managedFields), in bytes; and the same without managedFields.
pub async fn sizes(fixture: Fixture) -> (usize, usize) {
    let server = ApiServer::new();
    fill(&server, fixture, 1).await;
    let client = server.client();
    let mut value = match fixture {
        Fixture::ConfigMap => serde_json::to_value(
            Api::<ConfigMap>::namespaced(client, NAMESPACE)
                .get("cm-000000")
                .await
                .expect("get"),
        ),
        Fixture::Pod => serde_json::to_value(
            Api::<Pod>::namespaced(client, NAMESPACE)
                .get(&pod_name(0))
                .await
                .expect("get"),
        ),
        Fixture::BenchApp => serde_json::to_value(
            Api::<BenchApp>::namespaced(client, NAMESPACE)
                .get("app-000000")
                .await
                .expect("get"),
        ),
    }
    .expect("serialize");
    let full = serde_json::to_vec(&value).expect("serialize").len();
    if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("managedFields");
    }
    let stripped = serde_json::to_vec(&value).expect("serialize").len();
    (full, stripped)
}

/// Prints the fixtures' sizes (a line each), so every run shows what it measured.
pub async fn print_sizes() {
    for f in Fixture::ALL {
        let (full, stripped) = sizes(f).await;
        println!(
            "fixture {}: {full} B of JSON as served ({stripped} B without managedFields)",
            f.name()
        );
    }
}
