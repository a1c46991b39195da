//! Events: `events.k8s.io/v1` Events and core `v1` Events are one storage in two shapes, as in
//! the apiserver (events.k8s.io is served by converting core Events), and the stricter
//! validation a create through `events.k8s.io/v1` gets.
//!
//! This module owns the conversion between the shapes and that validation; which kinds share
//! a storage is recorded on the resource type (`Shape`).

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use super::kinds::{ResourceType, Shape};
use super::validation::{Cause, go_quote, is_qualified_name};

/// events.k8s.io/v1 member → core v1 member, for the members that differ (the conversion
/// functions of `pkg/apis/events/v1`).
const RENAMES: [(&str, &str); 7] = [
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

fn rename(
    object: &Map<String, Value>,
    pairs: impl Iterator<Item = (&'static str, &'static str)>,
) -> Map<String, Value> {
    let mut out = object.clone();
    for (from, to) in pairs {
        match out.remove(from) {
            Some(v) => {
                out.insert(to.to_string(), v);
            }
            None => {
                out.remove(to);
            }
        }
    }
    out
}

/// An object in the shape it is stored in, from the shape `rt` serves.
pub(crate) fn stored(rt: &ResourceType, served: Value) -> Value {
    match (rt.shape, &served) {
        (Shape::EventsV1, Value::Object(o)) => {
            let mut core = rename(o, RENAMES.into_iter());
            core.entry("involvedObject").or_insert_with(|| json!({}));
            core.insert("apiVersion".into(), json!("v1"));
            core.insert("kind".into(), json!("Event"));
            Value::Object(core)
        }
        _ => served,
    }
}

/// A stored object in the shape `rt` serves.
pub(crate) fn served<'a>(rt: &ResourceType, stored: &'a Value) -> Cow<'a, Value> {
    match (rt.shape, stored) {
        (Shape::EventsV1, Value::Object(o)) => {
            let mut v1 = rename(o, RENAMES.into_iter().map(|(a, b)| (b, a)));
            v1.entry("regarding").or_insert_with(|| json!({}));
            v1.insert("apiVersion".into(), json!(rt.api_version()));
            v1.insert("kind".into(), json!(rt.kind));
            Cow::Owned(Value::Object(v1))
        }
        _ => Cow::Borrowed(stored),
    }
}

fn required(field: &str) -> Cause {
    Cause::required(field, "")
}

fn missing(obj: &Value, field: &str) -> bool {
    obj.get(field)
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
}

/// The rules `ValidateEventCreate` adds for an events.k8s.io/v1 Event: when it happened, its
/// type, who reported it, what was done and why, and a series of at least two.
pub(crate) fn validate_create(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(series) = obj.get("series").filter(|s| !s.is_null()) {
        if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            causes.push(Cause::invalid(
                "series.count",
                "\"\"",
                "should be at least 2",
            ));
        }
        if missing(series, "lastObservedTime") {
            causes.push(required("series.lastObservedTime"));
        }
    }
    if missing(obj, "eventTime") {
        causes.push(required("eventTime"));
    }
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or_default();
    if kind != "Normal" && kind != "Warning" {
        causes.push(Cause::invalid(
            "type",
            "\"\"",
            &format!("has invalid value: {kind}"),
        ));
    }
    for deprecated in ["deprecatedFirstTimestamp", "deprecatedLastTimestamp"] {
        if !missing(obj, deprecated) {
            causes.push(Cause::invalid(deprecated, "\"\"", "needs to be unset"));
        }
    }
    if obj
        .get("deprecatedCount")
        .and_then(Value::as_i64)
        .is_some_and(|c| c != 0)
    {
        causes.push(Cause::invalid("deprecatedCount", "0", "needs to be unset"));
    }
    let controller = obj
        .get("reportingController")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if controller.is_empty() {
        causes.push(required("reportingController"));
    }
    for why in is_qualified_name(controller) {
        causes.push(Cause::invalid(
            "reportingController",
            &go_quote(controller),
            &why,
        ));
    }
    for field in ["reportingInstance", "action", "reason"] {
        if missing(obj, field) {
            causes.push(required(field));
        }
    }
    causes
}

/// The rules `ValidateEventUpdate` adds for an events.k8s.io/v1 Event: only the series (and
/// metadata) may change, and a series still counts at least two.
pub(crate) fn validate_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    for field in [
        "regarding",
        "related",
        "note",
        "reason",
        "type",
        "action",
        "eventTime",
        "reportingController",
        "reportingInstance",
    ] {
        let (a, b) = (new.get(field), old.get(field));
        if a.filter(|v| !v.is_null()) != b.filter(|v| !v.is_null()) {
            let shown = match a {
                Some(Value::String(s)) => go_quote(s),
                Some(v) => super::validation::go_json(v),
                None => "\"\"".into(),
            };
            causes.push(Cause::invalid(field, &shown, "field is immutable"));
        }
    }
    if let Some(series) = new.get("series").filter(|s| !s.is_null()) {
        if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            causes.push(Cause::invalid(
                "series.count",
                "\"\"",
                "should be at least 2",
            ));
        }
        if missing(series, "lastObservedTime") {
            causes.push(required("series.lastObservedTime"));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::kinds::Registry;

    fn events_v1() -> ResourceType {
        (*Registry::with_builtins()
            .get("events.k8s.io", "v1", "events")
            .unwrap())
        .clone()
    }

    #[test]
    fn the_two_shapes_convert_into_each_other() {
        let rt = events_v1();
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"name": "x"}, "note": "n", "reportingController": "c", "reason": "R",
            "series": {"count": 2}});
        let core = stored(&rt, v1.clone());
        assert_eq!(
            core,
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"name": "x"}, "message": "n", "reportingComponent": "c", "reason": "R",
            "series": {"count": 2}})
        );
        assert_eq!(served(&rt, &core).into_owned(), v1);
    }

    #[test]
    fn a_v1_event_update_may_only_change_its_series() {
        let old =
            json!({"note": "a", "reason": "R", "series": {"count": 2, "lastObservedTime": "t"}});
        let mut new = old.clone();
        new["series"]["count"] = json!(3);
        assert!(validate_update(&new, &old).is_empty());
        new["note"] = json!("b");
        new["series"]["count"] = json!(1);
        let fields: Vec<String> = validate_update(&new, &old)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, ["note", "series.count"]);
    }

    #[test]
    fn a_v1_event_needs_its_reporting_fields() {
        let causes = validate_create(&json!({"type": "Normal", "series": {"count": 1}}));
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "series.count",
                "series.lastObservedTime",
                "eventTime",
                // Required, then IsQualifiedName's two complaints about an empty name.
                "reportingController",
                "reportingController",
                "reportingController",
                "reportingInstance",
                "action",
                "reason"
            ]
        );
    }
}
