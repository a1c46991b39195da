//! Printing CRDs as YAML, for `kubectl apply -f`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use super::CrdError;

/// The CRDs as one multi-document YAML stream (`---` between documents), ready for
/// `kubectl apply -f -`.
///
/// # Errors
///
/// [`CrdError::Yaml`] if the YAML writer fails, which it does not for CRDs.
pub fn to_yaml(crds: &[CustomResourceDefinition]) -> Result<String, CrdError> {
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        let doc = serde_saphyr::to_string(crd).map_err(|e| CrdError::Yaml(e.to_string()))?;
        out.push_str(&doc);
        if !doc.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// Write the CRDs as YAML to `out` (say, standard output in a `crdgen` binary).
///
/// # Errors
///
/// [`CrdError::Yaml`] if writing fails.
pub fn write_yaml(
    out: &mut impl std::io::Write,
    crds: &[CustomResourceDefinition],
) -> Result<(), CrdError> {
    let yaml = to_yaml(crds)?;
    out.write_all(yaml.as_bytes())
        .map_err(|e| CrdError::Yaml(e.to_string()))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn named(name: &str) -> CustomResourceDefinition {
        CustomResourceDefinition {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            ..CustomResourceDefinition::default()
        }
    }

    #[test]
    fn each_crd_is_its_own_yaml_document() {
        let yaml = to_yaml(&[named("a.example.com"), named("b.example.com")]).unwrap();
        assert_eq!(yaml.matches("---\n").count(), 2);
        assert!(yaml.starts_with("---\napiVersion: apiextensions.k8s.io/v1\n"));
        assert!(yaml.contains("  name: b.example.com\n"));
        let mut written = Vec::new();
        write_yaml(&mut written, &[named("a.example.com")]).unwrap();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            to_yaml(&[named("a.example.com")]).unwrap()
        );
    }

    #[test]
    fn strings_yaml_would_read_as_other_types_are_quoted() {
        let mut crd = named("a.example.com");
        crd.spec.group = "true".into();
        crd.spec.scope = "1.5".into();
        let yaml = to_yaml(&[crd.clone()]).unwrap();
        let back: CustomResourceDefinition =
            serde_saphyr::from_str(yaml.trim_start_matches("---\n")).unwrap();
        assert_eq!(back, crd);
    }
}
