//! Kind-specific validation of built-in objects: the rules of each kind's `Validate*`
//! function that operators run into most (ConfigMap and Secret keys, workload selectors and
//! templates, containers). Metadata rules live in `validation.rs`; CRDs in `crd.rs`.

use serde_json::Value;

use super::kinds::ResourceType;
use super::validation::{Cause, is_dns1123_label};

fn required(field: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired",
        message: "Required value".into(),
        field: field.into(),
    }
}

fn invalid(field: &str, value: &str, why: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {value:?}: {why}"),
        field: field.into(),
    }
}

/// Every rule the kind has beyond metadata.
pub(crate) fn validate(rt: &ResourceType, obj: &Value) -> Vec<Cause> {
    if rt.custom {
        return Vec::new();
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "ConfigMap") => {
            let mut c = config_keys(obj, "data");
            c.extend(config_keys(obj, "binaryData"));
            if let (Some(d), Some(b)) = (
                obj.get("data").and_then(Value::as_object),
                obj.get("binaryData").and_then(Value::as_object),
            ) {
                for k in d.keys().filter(|k| b.contains_key(*k)) {
                    c.push(invalid(
                        &format!("data[{k}]"),
                        k,
                        "duplicate of key present in binaryData",
                    ));
                }
            }
            c
        }
        ("", "Secret") => {
            let mut c = config_keys(obj, "data");
            c.extend(config_keys(obj, "stringData"));
            c
        }
        ("", "Pod") => pod_spec(obj.get("spec"), "spec"),
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => workload(obj),
        ("batch", "Job") => pod_spec(obj.pointer("/spec/template/spec"), "spec.template.spec"),
        ("batch", "CronJob") => {
            let mut c = Vec::new();
            if obj
                .pointer("/spec/schedule")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                c.push(required("spec.schedule"));
            }
            c.extend(pod_spec(
                obj.pointer("/spec/jobTemplate/spec/template/spec"),
                "spec.jobTemplate.spec.template.spec",
            ));
            c
        }
        _ => Vec::new(),
    }
}

/// Keys of ConfigMap/Secret data: `[-._a-zA-Z0-9]+`, at most 253 characters.
fn config_keys(obj: &Value, field: &str) -> Vec<Cause> {
    let Some(map) = obj.get(field).and_then(Value::as_object) else {
        return Vec::new();
    };
    map.keys()
        .filter(|k| {
            k.is_empty()
                || k.len() > 253
                || !k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                || *k == "."
                || *k == ".."
        })
        .map(|k| {
            invalid(
                &format!("{field}[{k}]"),
                k,
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
            )
        })
        .collect()
}

fn pod_spec(spec: Option<&Value>, path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    match containers {
        None => causes.push(required(&format!("{path}.containers"))),
        Some(list) if list.is_empty() => causes.push(required(&format!("{path}.containers"))),
        Some(list) => {
            for (i, c) in list.iter().enumerate() {
                let at = format!("{path}.containers[{i}]");
                match c.get("name").and_then(Value::as_str) {
                    None | Some("") => causes.push(required(&format!("{at}.name"))),
                    Some(name) => {
                        for why in is_dns1123_label(name) {
                            causes.push(invalid(&format!("{at}.name"), name, &why));
                        }
                    }
                }
                if c.get("image")
                    .and_then(Value::as_str)
                    .is_none_or(|s| s.trim().is_empty())
                {
                    causes.push(required(&format!("{at}.image")));
                }
            }
        }
    }
    causes
}

/// Deployments, ReplicaSets, StatefulSets and DaemonSets: a selector that is not empty and
/// selects the pod template's labels, and a valid pod template.
fn workload(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let selector = obj.pointer("/spec/selector");
    let template_labels = obj
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object);
    let match_labels = selector
        .and_then(|s| s.get("matchLabels"))
        .and_then(Value::as_object);
    let has_exprs = selector
        .and_then(|s| s.get("matchExpressions"))
        .and_then(Value::as_array)
        .is_some_and(|e| !e.is_empty());
    if selector.is_none_or(Value::is_null) {
        causes.push(required("spec.selector"));
    } else if match_labels.is_none_or(|m| m.is_empty()) && !has_exprs {
        causes.push(Cause {
            reason: "FieldValueInvalid",
            message: "Invalid value: \"null\": empty selector is invalid for deployment".into(),
            field: "spec.selector".into(),
        });
    } else if let Some(m) = match_labels {
        let selects = m
            .iter()
            .all(|(k, v)| template_labels.and_then(|t| t.get(k)) == Some(v));
        if !selects {
            let labels = template_labels
                .map(|t| {
                    let pairs: Vec<String> = t
                        .iter()
                        .map(|(k, v)| format!("{k:?}:{:?}", v.as_str().unwrap_or_default()))
                        .collect();
                    format!("map[string]string{{{}}}", pairs.join(", "))
                })
                .unwrap_or_else(|| "map[string]string(nil)".into());
            causes.push(Cause {
                reason: "FieldValueInvalid",
                message: format!(
                    "Invalid value: {labels}: `selector` does not match template `labels`"
                ),
                field: "spec.template.metadata.labels".into(),
            });
        }
    }
    causes.extend(pod_spec(
        obj.pointer("/spec/template/spec"),
        "spec.template.spec",
    ));
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::kinds::Registry;
    use serde_json::json;

    fn rt(g: &str, p: &str) -> ResourceType {
        (*Registry::with_builtins().get(g, "v1", p).unwrap()).clone()
    }

    #[test]
    fn config_map_keys_must_be_config_keys() {
        let causes = validate(
            &rt("", "configmaps"),
            &json!({"data": {"ok.key": "", "bad key": ""}}),
        );
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "data[bad key]");
    }

    #[test]
    fn a_deployment_selector_must_select_its_template() {
        let d = json!({"spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "api"}},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        }});
        let causes = validate(&rt("apps", "deployments"), &d);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.template.metadata.labels");
    }

    #[test]
    fn pods_need_named_containers_with_images() {
        let causes = validate(
            &rt("", "pods"),
            &json!({"spec": {"containers": [{"name": "Bad_Name"}]}}),
        );
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            ["spec.containers[0].name", "spec.containers[0].image"]
        );
    }
}
