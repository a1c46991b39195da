//! kubectl against the standalone `windlass-apiserver` binary: a real client, written in Go,
//! that knows nothing of windlass, must be able to work with the test API server.
//!
//! These tests live in the examples crate rather than in `tests/` because cargo only tells a
//! test where a binary is (`CARGO_BIN_EXE_*`) when the binary is in the test's own package.
//! They need `kubectl` on PATH (CI installs Debian's `kubernetes-client` when it is missing).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

mod support;

/// One running `windlass-apiserver` with its kubeconfig; killed on drop.
struct Server {
    child: Child,
    dir: PathBuf,
}

impl Server {
    fn start(test: &str) -> Server {
        let dir =
            std::env::temp_dir().join(format!("windlass-kubectl-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let kubeconfig = dir.join("kubeconfig");
        let mut child = Command::new(env!("CARGO_BIN_EXE_windlass-apiserver"))
            .args(["--addr", "127.0.0.1:0", "--kubeconfig"])
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("windlass-apiserver starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // The server prints where it serves, then that the kubeconfig is written.
        let mut ready = false;
        for _ in 0..2 {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.starts_with("kubeconfig written") => ready = true,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        assert!(ready, "windlass-apiserver did not report readiness");
        Server { child, dir }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(kubectl());
        cmd.env("KUBECONFIG", self.kubeconfig())
            .args(args)
            .args(["--request-timeout", "20s"]);
        cmd
    }

    /// Runs kubectl and returns its output, asserting success.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("kubectl runs")
    }

    /// Runs kubectl with `stdin` as its input (for `-f -`).
    fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("kubectl finishes");
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl with `stdin` as its input and returns the whole output, success or not.
    fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("kubectl finishes")
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("kubectl printed JSON")
    }

    /// Sends SIGTERM and checks the server exits cleanly.
    #[cfg(unix)]
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let (tx, rx) = mpsc::channel();
        let mut child = std::mem::replace(
            &mut self.child,
            Command::new("true").spawn().expect("true runs"),
        );
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let exit = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server exits after SIGTERM")
            .expect("wait");
        assert!(exit.success(), "server exited with {exit}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn kubectl() -> String {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("kubectl").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "kubectl is not on PATH: install it (Debian: apt-get install kubernetes-client)"
    );
    "kubectl".into()
}

/// A ConfigMap manifest. (kubectl's generator commands such as `kubectl create configmap`
/// send protobuf bodies, which the test server does not decode; `-f` sends JSON.)
fn configmap(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"k":"v"}}}}"#
    )
}

const CONFIGMAP: &str = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"app-config","labels":{"app":"demo"}},"data":{"mode":"fast"}}"#;

#[test]
fn kubectl_discovers_resources_and_the_server_version() {
    let server = Server::start("discovery");
    let resources = server.ok(&["api-resources"]);
    let line = resources
        .lines()
        .find(|l| l.starts_with("configmaps "))
        .expect("configmaps listed");
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols, ["configmaps", "cm", "v1", "true", "ConfigMap"]);
    assert!(
        resources
            .lines()
            .any(|l| l.starts_with("deployments ") && l.contains("apps/v1"))
    );
    assert!(
        resources
            .lines()
            .any(|l| l.starts_with("customresourcedefinitions ") && l.contains("crd,crds"))
    );
    let version = server.json(&["version", "-o", "json"]);
    assert_eq!(version["serverVersion"]["major"], "1");
    assert!(
        version["serverVersion"]["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1.")
    );
    let namespaces = server.ok(&["get", "namespaces", "-o", "name"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            namespaces.contains(&format!("namespace/{ns}")),
            "{namespaces}"
        );
    }
    server.stop();
}

#[test]
fn kubectl_creates_reads_changes_and_deletes_objects() {
    let server = Server::start("crud");
    let created = server.ok_stdin(&["create", "-f", "-", "--validate=false"], CONFIGMAP);
    assert_eq!(created.trim(), "configmap/app-config created");

    let got = server.json(&["get", "configmap", "app-config", "-o", "json"]);
    assert_eq!(got["data"]["mode"], "fast");
    assert!(got["metadata"]["uid"].is_string());

    for n in 0..3 {
        server.ok_stdin(
            &["create", "-f", "-", "--validate=false"],
            &configmap(&format!("extra-{n}")),
        );
    }
    let paged = server.json(&["get", "configmaps", "--chunk-size=1", "-o", "json"]);
    let names: Vec<&str> = paged["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app-config", "extra-0", "extra-1", "extra-2"]);

    let mut replaced: Value = got.clone();
    replaced["data"]["mode"] = "safe".into();
    let out = server.ok_stdin(
        &["replace", "-f", "-", "--validate=false"],
        &replaced.to_string(),
    );
    assert_eq!(out.trim(), "configmap/app-config replaced");
    assert_eq!(
        server.json(&["get", "cm", "app-config", "-o", "json"])["data"]["mode"],
        "safe"
    );

    let out = server.ok(&[
        "patch",
        "configmap",
        "app-config",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"extra":"1"}}"#,
    ]);
    assert_eq!(out.trim(), "configmap/app-config patched");
    let out = server.ok(&[
        "patch",
        "configmap",
        "app-config",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/data/mode","value":"json"}]"#,
    ]);
    assert_eq!(out.trim(), "configmap/app-config patched");
    let patched = server.json(&["get", "cm", "app-config", "-o", "json"]);
    assert_eq!(patched["data"]["extra"], "1");
    assert_eq!(patched["data"]["mode"], "json");

    assert_eq!(
        server
            .ok(&["label", "configmap", "app-config", "tier=backend"])
            .trim(),
        "configmap/app-config labeled"
    );
    assert_eq!(
        server
            .ok(&["annotate", "configmap", "app-config", "owner=team-a"])
            .trim(),
        "configmap/app-config annotated"
    );
    let selected = server.ok(&["get", "configmaps", "-l", "tier=backend", "-o", "name"]);
    assert_eq!(selected.trim(), "configmap/app-config");
    let annotated = server.json(&["get", "cm", "app-config", "-o", "json"]);
    assert_eq!(annotated["metadata"]["annotations"]["owner"], "team-a");

    // A failing patch shows the server's own message.
    let bad = server.run(&[
        "patch",
        "configmap",
        "app-config",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/data/nope"}]"#,
    ]);
    assert!(!bad.status.success());

    let missing = server.run(&["get", "configmap", "nope"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains(r#"configmaps "nope" not found"#));

    assert_eq!(
        server.ok(&["delete", "configmap", "app-config"]).trim(),
        r#"configmap "app-config" deleted"#
    );
    server.stop();
}

#[test]
fn kubectl_wait_for_delete_returns_once_a_finalizer_is_removed() {
    let server = Server::start("wait");
    server.ok_stdin(
        &["create", "-f", "-", "--validate=false"],
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"held","finalizers":["example.com/hold"]}}"#,
    );
    let out = server.ok(&["delete", "configmap", "held", "--wait=false"]);
    assert_eq!(out.trim(), r#"configmap "held" deleted"#);
    let mut waiter = server
        .command(&["wait", "--for=delete", "configmap/held", "--timeout=30s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl wait runs");
    // Still held: the finalizer is there, the object is terminating.
    let held = server.json(&["get", "cm", "held", "-o", "json"]);
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    server.ok(&[
        "patch",
        "configmap",
        "held",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    let status = waiter.wait().expect("kubectl wait finishes");
    assert!(status.success());
    let gone = server.run(&["get", "cm", "held"]);
    assert!(!gone.status.success());
    server.stop();
}

#[test]
fn kubectl_get_watch_sees_a_concurrent_change() {
    let server = Server::start("watch");
    server.ok_stdin(
        &["create", "-f", "-", "--validate=false"],
        &configmap("first"),
    );
    let mut watch = server
        .command(&["get", "configmaps", "--watch", "-o", "name"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl get -w runs");
    let stdout = watch.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(20))
            .expect("initial listing"),
        "configmap/first"
    );
    server.ok_stdin(
        &["create", "-f", "-", "--validate=false"],
        &configmap("second"),
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(20))
            .expect("the watch sees the create"),
        "configmap/second"
    );
    server.ok(&["label", "configmap", "first", "seen=yes"]);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(20))
            .expect("the watch sees the update"),
        "configmap/first"
    );
    let _ = watch.kill();
    let _ = watch.wait();
    server.stop();
}

#[test]
fn kubectl_creates_a_crd_from_yaml_then_its_custom_resources() {
    let server = Server::start("crd");
    let yaml = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
    subresources:
      status: {}
";
    let out = server.ok_stdin(&["create", "-f", "-", "--validate=false"], yaml);
    assert_eq!(
        out.trim(),
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"
    );
    server.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=20s",
    ]);
    let out = server.ok_stdin(
        &["create", "-f", "-", "--validate=false"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: gear\nspec:\n  size: 3\n",
    );
    assert_eq!(out.trim(), "widget.example.com/gear created");
    let names = server.ok(&["get", "widgets", "-o", "name"]);
    assert_eq!(names.trim(), "widget.example.com/gear");
    let short = server.json(&["get", "wd", "gear", "-o", "json"]);
    assert_eq!(short["spec"]["size"], 3);
    assert_eq!(short["metadata"]["generation"], 1);
    let table = server.ok(&["get", "widgets"]);
    assert!(
        table.lines().next().unwrap_or_default().starts_with("NAME"),
        "{table}"
    );
    assert!(table.contains("gear"));
    server.stop();
}

/// The golden CRD the derive macro produces for `Widget`: CEL rules, printer columns.
const WIDGET_CRD: &str = include_str!("../../tests/golden/widget.yaml");

fn install_widgets(server: &Server) {
    // With validation on: kubectl finds fieldValidation in the OpenAPI document and lets the
    // server validate.
    server.ok_stdin(&["create", "-f", "-"], WIDGET_CRD);
    server.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=20s",
    ]);
}

#[test]
fn kubectl_create_and_apply_validate_on_the_server_without_validate_false() {
    let server = Server::start("validate");
    let out = server.ok_stdin(&["create", "-f", "-"], CONFIGMAP);
    assert_eq!(out.trim(), "configmap/app-config created");
    let out = server.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"applied"},"data":{"k":"v"}}"#,
    );
    assert_eq!(out.trim(), "configmap/applied created");
    // An unknown field is refused (kubectl asks for fieldValidation=Strict).
    let bad = server.run_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bad"},"bogus":1}"#,
    );
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains(r#"strict decoding error: unknown field "bogus""#),
        "{stderr}"
    );
    install_widgets(&server);
    let bad = server.run_stdin(
        &["create", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 3\n  color: green\n",
    );
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains(r#"spec.color: Invalid value: "string": failed rule: self != 'green'"#),
        "{stderr}"
    );
    server.stop();
}

#[test]
fn kubectl_server_side_apply_conflicts_with_a_second_field_manager_until_forced() {
    let server = Server::start("ssa");
    let first = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"shared"},"data":{"mode":"fast"}}"#;
    let out = server.ok_stdin(&["apply", "--server-side", "-f", "-"], first);
    assert_eq!(out.trim(), "configmap/shared serverside-applied");
    let second = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"shared"},"data":{"mode":"slow"}}"#;
    let conflict = server.run_stdin(
        &["apply", "--server-side", "--field-manager=tuner", "-f", "-"],
        second,
    );
    assert!(!conflict.status.success());
    let stderr = String::from_utf8_lossy(&conflict.stderr);
    assert!(
        stderr.contains(r#"Apply failed with 1 conflict: conflict with "kubectl": .data.mode"#),
        "{stderr}"
    );
    let out = server.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=tuner",
            "--force-conflicts",
            "-f",
            "-",
        ],
        second,
    );
    assert_eq!(out.trim(), "configmap/shared serverside-applied");
    let cm = server.json(&[
        "get",
        "configmap",
        "shared",
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    assert_eq!(cm["data"]["mode"], "slow");
    let owners: Vec<&str> = cm["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["fieldsV1"]["f:data"]["f:mode"].is_object())
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(owners, ["tuner"]);
    server.stop();
}

#[test]
fn kubectl_patch_is_a_strategic_merge_by_container_name() {
    let server = Server::start("strategic");
    let deployment = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
        "spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
        "spec":{"containers":[{"name":"web","image":"nginx:1"},{"name":"log","image":"fluent:1"}]}}}}"#;
    server.ok_stdin(&["create", "-f", "-"], deployment);
    let out = server.ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:2"}]}}}}"#,
    ]);
    assert_eq!(out.trim(), "deployment.apps/web patched");
    let d = server.json(&["get", "deployment", "web", "-o", "json"]);
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 2, "the other container stays");
    assert_eq!(containers[0]["image"], "nginx:2");
    assert_eq!(containers[1]["name"], "log");
    server.ok(&["label", "deployment", "web", "tier=front"]);
    server.ok(&["annotate", "deployment", "web", "note=hi"]);
    let d = server.json(&["get", "deployment", "web", "-o", "json"]);
    assert_eq!(d["metadata"]["labels"]["tier"], "front");
    assert_eq!(d["metadata"]["annotations"]["note"], "hi");
    server.stop();
}

#[test]
fn kubectl_explains_a_crd_field_and_prints_its_printer_columns() {
    let server = Server::start("explain");
    install_widgets(&server);
    let out = server.ok(&["explain", "widget.spec.size"]);
    assert!(out.contains("FIELD: size <integer>"), "{out}");
    assert!(out.contains("How many widgets."), "{out}");
    server.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: gear\nspec:\n  size: 3\n  color: red\n",
    );
    let table = server.ok(&["get", "widgets"]);
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "SIZE"], "{table}");
    assert_eq!(lines[1], ["gear", "3"], "{table}");
    let wide = server.ok(&["get", "widgets", "-o", "wide"]);
    assert!(
        wide.lines().next().unwrap_or_default().contains("READY"),
        "{wide}"
    );
    let out = server.ok(&["explain", "configmap.data"]);
    assert!(out.contains("FIELD: data <map[string]string>"), "{out}");
    server.stop();
}

/// The value of `key: value` in kubectl's YAML, first occurrence, unquoted.
fn yaml_value(yaml: &str, key: &str) -> Option<String> {
    yaml.lines().find_map(|l| {
        l.trim()
            .strip_prefix(&format!("{key}:"))
            .map(|v| v.trim().trim_matches('"').to_string())
    })
}

/// RFC 3339 in UTC with six fractional digits: how a MicroTime is written.
fn is_micro_time(t: &str) -> bool {
    t.len() == "2026-01-02T03:04:05.123456Z".len()
        && t.ends_with('Z')
        && t.as_bytes()[19] == b'.'
        && t[20..26].bytes().all(|b| b.is_ascii_digit())
}

#[test]
fn kubectl_reads_the_lease_a_leader_elector_writes() {
    use windlass::leader::{LeaderElectionConfig, LeaderElector};

    let server = Server::start("lease");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let kubeconfig = server.kubeconfig();
    let client = runtime.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("client config");
        kube::Client::try_from(config).expect("client")
    });
    let config = LeaderElectionConfig::new("demo-operator")
        .namespace("default")
        .identity("replica-a")
        .lease_duration(Duration::from_secs(3))
        .renew_deadline(Duration::from_secs(2))
        .retry_period(Duration::from_millis(500));
    let elector = LeaderElector::new(client, config).expect("a valid config");
    let leadership = elector.handle();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let election = runtime.spawn(elector.run(shutdown.clone(), |stop| async move {
        stop.cancelled().await;
    }));
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), leadership.wait_leading())
            .await
            .expect("leads within 20 s");
    });

    let get = || {
        server.ok(&[
            "get",
            "lease",
            "demo-operator",
            "-n",
            "default",
            "-o",
            "yaml",
        ])
    };
    let first = get();
    assert_eq!(
        yaml_value(&first, "kind").as_deref(),
        Some("Lease"),
        "{first}"
    );
    assert_eq!(
        yaml_value(&first, "apiVersion").as_deref(),
        Some("coordination.k8s.io/v1")
    );
    assert_eq!(
        yaml_value(&first, "holderIdentity").as_deref(),
        Some("replica-a")
    );
    assert_eq!(
        yaml_value(&first, "leaseDurationSeconds").as_deref(),
        Some("3")
    );
    assert_eq!(yaml_value(&first, "leaseTransitions").as_deref(), Some("0"));
    let acquired = yaml_value(&first, "acquireTime").expect("acquireTime");
    let renewed = yaml_value(&first, "renewTime").expect("renewTime");
    assert!(
        is_micro_time(&acquired) && is_micro_time(&renewed),
        "{first}"
    );

    // The leader renews (every retry period, in real time: kubectl is another process), and
    // acquireTime stays. Wait for a renewal, polling kubectl for at most 10 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let later = loop {
        let later = get();
        if yaml_value(&later, "renewTime").unwrap() > renewed
            || std::time::Instant::now() > deadline
        {
            break later;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(yaml_value(&later, "acquireTime"), Some(acquired));
    assert!(
        yaml_value(&later, "renewTime").unwrap() > renewed,
        "{later}"
    );

    shutdown.cancel();
    let ended = runtime
        .block_on(election)
        .expect("the election task does not panic");
    assert!(matches!(ended, Ok(Some(()))), "{ended:?}");
    let released = get();
    assert_eq!(
        yaml_value(&released, "holderIdentity").as_deref(),
        Some(""),
        "{released}"
    );
    assert_eq!(
        yaml_value(&released, "leaseDurationSeconds").as_deref(),
        Some("1")
    );
    assert_eq!(
        yaml_value(&released, "leaseTransitions").as_deref(),
        Some("0")
    );

    let events = server.json(&["get", "events", "-n", "default", "-o", "json"]);
    let mut messages: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["kind"] == "Lease")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    messages.sort_unstable();
    assert_eq!(
        messages,
        ["replica-a became leader", "replica-a stopped leading"]
    );
    server.stop();
}

/// The quickstart's `--kubeconfig` path: the same operator, through the flow-controlled client
/// it builds from a kubeconfig, against an API server in another process.
#[test]
fn the_quickstart_runs_against_the_cluster_its_kubeconfig_names() {
    let server = Server::start("quickstart");
    let kubeconfig = server.kubeconfig();
    let (ok, output) = support::run(
        "quickstart",
        &["--kubeconfig"],
        &[("KUBECONFIG", kubeconfig.as_os_str())],
    );
    assert!(ok, "{output}");
    assert!(
        output.contains("using the current kubeconfig context"),
        "{output}"
    );
    assert!(
        output.contains("its deployment was garbage collected with it"),
        "{output}"
    );
}
