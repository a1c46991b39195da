//! Every example runs to completion against the embedded API server and exits 0.
//!
//! `cargo test` builds the examples next to this test's own binary (in `target/<profile>/
//! examples/`); each is run with a bounded wait, and its output is checked for what the example
//! promises to show. A new example must be added to `EXAMPLES`, which a test checks against the
//! files in `examples/examples/`.

mod support;

use std::path::PathBuf;

use support::run;

/// Each example and a line its output must contain.
const EXAMPLES: &[(&str, &str)] = &[
    ("quickstart", "its deployment was garbage collected with it"),
    ("workqueue", "queue shut down and drained"),
    ("test_server", "second create: 409"),
    ("custom_resource", "ready"),
    ("crdgen", "kind: CustomResourceDefinition"),
    ("cleanup", "the Bucket is gone, and so is the bucket"),
    ("conditions", "user scaled the database to 3 replicas"),
    ("deploy", "kind: ClusterRole"),
    ("observability", "controller_runtime_reconcile_total"),
    ("leader_election", "the lease is released"),
    ("configmap_sync", "its copies went with it"),
    ("watches", "batch, which does not use it, was left alone"),
    ("tutorial_1_crd", "the API server refused it"),
    (
        "tutorial_2_reconciler",
        "the Deployment outlived its WebApp",
    ),
    (
        "tutorial_3_owning",
        "its Deployment and Service were garbage collected with it",
    ),
    ("tutorial_4_status", "WebApp hello is available"),
    (
        "tutorial_5_finalizer",
        "WebApp hello is gone, and so is its DNS record",
    ),
    ("tutorial_6_events", "HostRefused"),
    ("tutorial_7_replicas", "took over"),
    (
        "tutorial_8_production",
        r#"controller_runtime_reconcile_total{controller="webapp",result="success"}"#,
    ),
];

#[test]
fn every_example_runs_to_completion_and_shows_what_it_promises() {
    for (name, expected) in EXAMPLES {
        let (ok, output) = run(name, &[], &[]);
        assert!(ok, "example {name} failed:\n{output}");
        assert!(
            output.contains(expected),
            "example {name} did not print {expected:?}:\n{output}"
        );
    }
}

#[test]
fn the_tutorial_operator_prints_its_install() {
    let (ok, output) = run("tutorial_8_production", &["--manifests"], &[]);
    assert!(ok, "tutorial_8_production --manifests failed:\n{output}");
    for kind in [
        "kind: Namespace",
        "kind: CustomResourceDefinition",
        "kind: ServiceAccount",
        "kind: ClusterRole",
        "kind: Deployment",
        "name: webapps.tutorial.windlass.rs",
        "- leases",
    ] {
        assert!(
            output.contains(kind),
            "the install has no {kind:?}:\n{output}"
        );
    }
}

#[test]
fn every_example_file_is_listed_here() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("examples/examples exists")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".rs"))
                .map(String::from)
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = EXAMPLES.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "add new examples to EXAMPLES in examples/tests/examples.rs"
    );
}
