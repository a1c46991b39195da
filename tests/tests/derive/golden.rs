//! The generated CRDs, compared with the checked-in YAML in `tests/golden/`, and checked against
//! the apiserver's structural-schema rules.
//!
//! Regenerate the files with `UPDATE_GOLDEN=1 cargo test -p windlass-tests --test integration golden`
//! and review the diff: it is what users `kubectl apply`.

use std::path::PathBuf;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use windlass::object::crd::{CrdError, check_structural, merge_crds, to_yaml};

use super::specs::{Shape, Widget, gadget};

fn golden(name: &str, crd: &CustomResourceDefinition) {
    for version in &crd.spec.versions {
        let schema = serde_json::to_value(
            version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .expect("every version has a schema"),
        )
        .unwrap();
        let violations = check_structural(&schema);
        assert!(
            violations.is_empty(),
            "{name} {}: {violations:#?}",
            version.name
        );
    }
    let yaml = to_yaml(std::slice::from_ref(crd)).unwrap();
    let back: CustomResourceDefinition =
        serde_saphyr::from_str(yaml.trim_start_matches("---\n")).expect("the YAML parses");
    assert_eq!(&back, crd, "the YAML reads back as the same CRD");

    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("golden/{name}.yaml"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &yaml).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing; run with UPDATE_GOLDEN=1 to write it",
            path.display()
        )
    });
    assert!(
        expected == yaml,
        "the CRD of {name} differs from {}; if the change is intended, run with UPDATE_GOLDEN=1 \
         and review the diff\n--- generated:\n{yaml}",
        path.display()
    );
}

#[test]
fn golden_widget_crd_has_every_attribute() {
    golden("widget", &Widget::crd());
}

#[test]
fn golden_shape_crd_has_every_schema_shape() {
    let crd = Shape::crd();
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
    let nested_map = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["nestedMap"];
    assert_eq!(
        nested_map["x-kubernetes-validations"],
        serde_json::json!([{"rule": "self.size() <= 10", "message": "at most 10 entries"}]),
        "a field rule follows serde's rename_all"
    );
    golden("shape", &crd);
}

#[test]
fn golden_gadget_crd_merges_two_versions_with_one_storage_version() {
    let merged = merge_crds(vec![
        gadget::v1alpha1::Gadget::crd(),
        gadget::v1::Gadget::crd(),
    ])
    .unwrap();
    let versions: Vec<(&str, bool)> = merged
        .spec
        .versions
        .iter()
        .map(|v| (v.name.as_str(), v.storage))
        .collect();
    assert_eq!(versions, [("v1alpha1", false), ("v1", true)]);
    golden("gadget", &merged);
}

#[test]
fn merging_versions_of_different_kinds_is_a_clear_error() {
    let err = merge_crds(vec![gadget::v1::Gadget::crd(), Widget::crd()]).unwrap_err();
    assert!(
        matches!(err, CrdError::Mismatch { field: "kind", .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "cannot merge the CRD of version \"v1\" into the others: its kind is \"Widget\", theirs \
         is \"Gadget\"; all versions of one kind must share group, kind, names and scope"
    );
}

#[test]
fn merging_versions_of_different_groups_or_scopes_is_a_clear_error() {
    let mut other_group = gadget::v1::Gadget::crd();
    other_group.spec.group = "other.example.com".into();
    let err = merge_crds(vec![gadget::v1alpha1::Gadget::crd(), other_group]).unwrap_err();
    assert!(
        matches!(err, CrdError::Mismatch { field: "group", .. }),
        "{err:?}"
    );

    let mut cluster = gadget::v1::Gadget::crd();
    cluster.spec.scope = "Cluster".into();
    let err = merge_crds(vec![gadget::v1alpha1::Gadget::crd(), cluster]).unwrap_err();
    assert!(
        matches!(err, CrdError::Mismatch { field: "scope", .. }),
        "{err:?}"
    );
}

#[test]
fn merging_needs_exactly_one_storage_version() {
    let mut second = gadget::v1::Gadget::crd();
    second.spec.versions[0].name = "v2".into();
    let err = merge_crds(vec![gadget::v1::Gadget::crd(), second]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "exactly one version must be the storage version, but [\"v1\", \"v2\"] are all marked; \
         mark the others with #[windlass(storage = false)]"
    );
    let err = merge_crds(vec![gadget::v1alpha1::Gadget::crd()]).unwrap_err();
    assert!(
        matches!(err, CrdError::StorageVersions(ref v) if v.is_empty()),
        "{err}"
    );
    let err = merge_crds(vec![gadget::v1::Gadget::crd(), gadget::v1::Gadget::crd()]).unwrap_err();
    assert!(
        matches!(err, CrdError::DuplicateVersion(ref v) if v == "v1"),
        "{err}"
    );
    assert!(matches!(merge_crds(vec![]), Err(CrdError::Empty)));
}
