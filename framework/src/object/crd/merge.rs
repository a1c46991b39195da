//! Merging the CRDs of several versions of one kind into one CRD.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use super::CrdError;

/// Merge the CRDs of several versions of one kind (say `v1::Widget::crd()` and
/// `v2::Widget::crd()`) into one CRD that serves them all.
///
/// The versions keep their order; exactly one of them must be the storage version (the derive
/// makes every version storage unless it says `#[windlass(storage = false)]`). A multi-version
/// CRD needs a conversion strategy when the versions' schemas differ; the result has none
/// (`None` strategy: the apiserver only rewrites `apiVersion`), which is right when the versions
/// differ only in what is optional.
///
/// # Errors
///
/// [`CrdError::Empty`] for no CRDs, [`CrdError::Mismatch`] when they disagree on group, kind,
/// scope or names, [`CrdError::DuplicateVersion`], and [`CrdError::StorageVersions`] unless
/// exactly one version is the storage version.
pub fn merge_crds(
    crds: Vec<CustomResourceDefinition>,
) -> Result<CustomResourceDefinition, CrdError> {
    let mut crds = crds.into_iter();
    let Some(mut merged) = crds.next() else {
        return Err(CrdError::Empty);
    };
    for crd in crds {
        let version = crd
            .spec
            .versions
            .first()
            .map(|v| v.name.clone())
            .unwrap_or_default();
        let (a, b) = (&merged.spec, &crd.spec);
        let checks: [(&'static str, String, String); 7] = [
            ("group", a.group.clone(), b.group.clone()),
            ("kind", a.names.kind.clone(), b.names.kind.clone()),
            ("scope", a.scope.clone(), b.scope.clone()),
            ("plural", a.names.plural.clone(), b.names.plural.clone()),
            (
                "singular",
                format!("{:?}", a.names.singular),
                format!("{:?}", b.names.singular),
            ),
            (
                "shortNames",
                format!("{:?}", a.names.short_names),
                format!("{:?}", b.names.short_names),
            ),
            (
                "categories",
                format!("{:?}", a.names.categories),
                format!("{:?}", b.names.categories),
            ),
        ];
        for (field, expected, found) in checks {
            if expected != found {
                return Err(CrdError::Mismatch {
                    field,
                    expected,
                    found,
                    version,
                });
            }
        }
        for v in crd.spec.versions {
            if merged.spec.versions.iter().any(|m| m.name == v.name) {
                return Err(CrdError::DuplicateVersion(v.name));
            }
            merged.spec.versions.push(v);
        }
    }
    let storage: Vec<String> = merged
        .spec
        .versions
        .iter()
        .filter(|v| v.storage)
        .map(|v| v.name.clone())
        .collect();
    if storage.len() != 1 {
        return Err(CrdError::StorageVersions(storage));
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionVersion;

    use super::*;

    fn crd(version: &str, storage: bool) -> CustomResourceDefinition {
        let mut crd = CustomResourceDefinition::default();
        crd.spec.group = "example.com".into();
        crd.spec.names.kind = "Widget".into();
        crd.spec.names.plural = "widgets".into();
        crd.spec.scope = "Namespaced".into();
        crd.spec.versions = vec![CustomResourceDefinitionVersion {
            name: version.into(),
            served: true,
            storage,
            ..CustomResourceDefinitionVersion::default()
        }];
        crd
    }

    #[test]
    fn versions_are_kept_in_order_with_the_one_storage_version() {
        let merged = merge_crds(vec![crd("v1", true), crd("v2beta1", false)]).unwrap();
        let names: Vec<_> = merged
            .spec
            .versions
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(names, ["v1", "v2beta1"]);
    }

    #[test]
    fn a_different_plural_is_a_mismatch_naming_the_version() {
        let mut other = crd("v2", false);
        other.spec.names.plural = "widgetz".into();
        let err = merge_crds(vec![crd("v1", true), other]).unwrap_err();
        assert!(
            matches!(err, CrdError::Mismatch { field: "plural", ref version, .. } if version == "v2"),
            "{err:?}"
        );
    }
}
