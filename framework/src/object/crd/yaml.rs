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
