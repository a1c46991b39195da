//! `Table` answers (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`) for custom
//! resources: the `Name` column, then the CRD version's `additionalPrinterColumns` (which
//! default to `Age`), as `kubectl get` prints them. Built-in kinds are answered as plain JSON
//! (the server's kind-specific columns are not reproduced), which kubectl also accepts.

use serde_json::{Value, json};

use super::kinds::ResourceType;
use super::read::partial_metadata;

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// A Table of `rows` (from [`row`]) with `rt`'s columns.
pub(crate) fn table(rt: &ResourceType, metadata: Value, rows: Vec<Value>) -> Value {
    let mut defs = vec![json!({
        "name": "Name", "type": "string", "format": "name",
        "description": NAME_DESCRIPTION, "priority": 0,
    })];
    for c in &rt.printer_columns {
        defs.push(json!({
            "name": c["name"],
            "type": c["type"],
            "format": c.get("format").cloned().unwrap_or(json!("")),
            "description": c.get("description").cloned().unwrap_or(json!("")),
            "priority": c.get("priority").cloned().unwrap_or(json!(0)),
        }));
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": defs,
        "rows": rows,
    })
}

/// One object's row: its cells, and the object's metadata.
pub(crate) fn row(rt: &ResourceType, obj: &Value) -> Value {
    let mut cells = vec![
        obj.pointer("/metadata/name")
            .cloned()
            .unwrap_or(Value::Null),
    ];
    for c in &rt.printer_columns {
        let path = c["jsonPath"].as_str().unwrap_or_default();
        let value = json_path(obj, path);
        let cell = match (c["type"].as_str(), value) {
            (_, None) => Value::Null,
            (Some("date"), Some(Value::String(s))) => match s.parse::<jiff::Timestamp>() {
                Ok(t) => json!(human_duration(jiff::Timestamp::now().duration_since(t))),
                Err(_) => json!(s),
            },
            (_, Some(v @ (Value::Object(_) | Value::Array(_)))) => json!(v.to_string()),
            (_, Some(v)) => v.clone(),
        };
        cells.push(cell);
    }
    json!({"cells": cells, "object": partial_metadata(obj)})
}

/// The subset of JSONPath printer columns use: `.a.b`, `[0]`, and `[?(@.k=="v")]` filters.
fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut cur = obj;
    let mut rest = path.trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            cur = cur.get(&r[..end])?;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            rest = &r[end + 1..];
            if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (key, want) = filter.split_once("==")?;
                let want = want.trim().trim_matches(['"', '\'']);
                cur = cur.as_array()?.iter().find(|item| {
                    item.get(key.trim()).is_some_and(|v| match v {
                        Value::String(s) => s == want,
                        other => want.parse::<Value>().is_ok_and(|w| w == *other),
                    })
                })?;
            } else {
                cur = cur.get(inner.trim().parse::<usize>().ok()?)?;
            }
        } else {
            return None;
        }
    }
    Some(cur)
}

/// apimachinery's `duration.HumanDuration`: `5s`, `3m20s`, `4h10m`, `3d4h`, `2y10d`.
fn human_duration(d: jiff::SignedDuration) -> String {
    let secs = d.as_secs();
    if secs < -1 {
        return "<invalid>".into();
    }
    let secs = secs.max(0);
    let (m, h) = (secs / 60, secs / 3600);
    if secs < 60 * 2 {
        format!("{secs}s")
    } else if m < 10 {
        let s = secs % 60;
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else if m < 60 * 3 {
        format!("{m}m")
    } else if h < 8 {
        let mm = m % 60;
        if mm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{mm}m")
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        let hh = h % 24;
        if hh == 0 {
            format!("{}d", h / 24)
        } else {
            format!("{}d{hh}h", h / 24)
        }
    } else if h < 24 * 365 * 2 {
        format!("{}d", h / 24)
    } else if h < 24 * 365 * 8 {
        let dd = (h / 24) % 365;
        if dd == 0 {
            format!("{}y", h / 24 / 365)
        } else {
            format!("{}y{dd}d", h / 24 / 365)
        }
    } else {
        format!("{}y", h / 24 / 365)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_follow_members_indices_and_filters() {
        let obj = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}, "spec": {"a": [1, 2]}});
        assert_eq!(json_path(&obj, ".spec.a[1]"), Some(&json!(2)));
        assert_eq!(
            json_path(&obj, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(&json!("True"))
        );
        assert_eq!(json_path(&obj, ".spec.missing"), None);
    }

    #[test]
    fn durations_read_like_kubectls_age_column() {
        let d = jiff::SignedDuration::from_secs;
        assert_eq!(human_duration(d(5)), "5s");
        assert_eq!(human_duration(d(200)), "3m20s");
        assert_eq!(human_duration(d(3 * 3600 + 600)), "3h10m");
        assert_eq!(human_duration(d(3 * 86400 + 4 * 3600)), "3d4h");
    }
}
