//! Reads: get, list (selectors, paging with consistent `continue` snapshots, resourceVersion
//! semantics) and the `/scale` read; plus rendering a stored object in the shape a request
//! asked for (its version, or metadata only).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};

use super::events;
use super::kinds::{ResourceType, Shape};
use super::request::{Query, Wants};
use super::selector::{FieldSelector, LabelSelector, field_not_known, field_not_supported};
use super::server::{Ctx, Inner, Reply};
use super::status::ApiError;
use super::store::{ObjKey, Stored, TooOld};
use super::validation::{Cause, go_quote};

/// The object as the client asked for it: the served version's apiVersion and shape, or only
/// metadata.
pub(crate) fn render(obj: &Stored, rt: &ResourceType, wants: Wants) -> Bytes {
    match wants {
        Wants::Metadata => to_bytes(&partial_metadata(&obj.value)),
        _ if rt.version == rt.storage_version && rt.shape == Shape::Native => obj.bytes.clone(),
        _ => to_bytes(&render_value(&obj.value, rt, wants)),
    }
}

/// Like [`render`], for a stored value that is not (or not yet) serialized.
pub(crate) fn render_value(value: &Value, rt: &ResourceType, wants: Wants) -> Value {
    match wants {
        Wants::Metadata => partial_metadata(value),
        _ => {
            let mut v = events::served(rt, value).into_owned();
            if rt.version != rt.storage_version {
                v["apiVersion"] = json!(rt.api_version());
            }
            v
        }
    }
}

/// Whether a stored object is selected, judged on the shape `rt` serves (its field labels).
pub(crate) fn selected(
    value: &Value,
    rt: &ResourceType,
    labels: &LabelSelector,
    fields: &FieldSelector,
) -> bool {
    matches(&events::served(rt, value), labels, fields)
}

pub(crate) fn partial_metadata(value: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": value.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

pub(crate) fn to_bytes(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// Parses a `resourceVersion` parameter: `None` when unset or empty.
///
/// The real server parses it deep in storage and lets the error through unconverted, so a
/// malformed resourceVersion answers 500 with no reason (kubernetes/kubernetes#139485); this
/// mirrors that rather than the 400 one would expect.
pub(crate) fn parse_rv(q: &Query) -> Result<Option<u64>, ApiError> {
    let Some(s) = q.value("resourceVersion") else {
        return Ok(None);
    };
    let why = if !s.bytes().all(|b| b.is_ascii_digit()) {
        "invalid syntax"
    } else if let Ok(rv) = s.parse::<u64>() {
        return Ok(Some(rv));
    } else {
        "value out of range"
    };
    Err(ApiError::new(
        500,
        "",
        format!(
            "resourceVersion: Invalid value: {}: strconv.ParseUint: parsing {}: {why}",
            go_quote(s),
            go_quote(s)
        ),
    ))
}

/// The `limit` of a list (none when absent or not positive), or Go's parse error as a 400.
pub(crate) fn parse_limit(q: &Query) -> Result<Option<usize>, ApiError> {
    let limit = q.int("limit").map_err(ApiError::bad_request)?;
    Ok(limit
        .filter(|n| *n > 0)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
}

/// Waits (a few seconds at most, as the real watch cache does) until the store has reached
/// revision `rv`; a resourceVersion from the future then answers 504.
pub(crate) async fn wait_for_revision(inner: &Inner, rv: u64) -> Result<(), ApiError> {
    let mut rx = inner.state.lock().store.subscribe_revision();
    let wait = async {
        loop {
            if *rx.borrow_and_update() >= rv {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(3), wait).await {
        Ok(()) => Ok(()),
        Err(_) => Err(ApiError::too_large_resource_version(rv, *rx.borrow())),
    }
}

pub(crate) fn object_key(ctx: &Ctx<'_>, name: &str) -> ObjKey {
    (
        ctx.namespace.unwrap_or_default().to_string(),
        name.to_string(),
    )
}

pub(crate) async fn get(ctx: &Ctx<'_>, name: &str) -> Result<Reply, ApiError> {
    if let Some(rv) = parse_rv(&ctx.req.query)?.filter(|rv| *rv > 0) {
        wait_for_revision(ctx.inner, rv).await?;
    }
    let state = ctx.inner.state.lock();
    let obj = state
        .store
        .get(&ctx.rt.group_resource(), &object_key(ctx, name))
        .ok_or_else(|| ApiError::not_found(ctx.rt, name))?;
    if ctx.wants == Wants::Table {
        let meta = json!({"resourceVersion": obj.rv.to_string()});
        let row = super::table::row(ctx.rt, &render_value(&obj.value, ctx.rt, Wants::Json));
        return Ok(Reply::json(
            200,
            &super::table::table(ctx.rt, meta, vec![row]),
        ));
    }
    // `/status` reads answer the whole object, like the main endpoint.
    Ok(Reply::bytes(200, render(&obj, ctx.rt, ctx.wants)))
}

/// A forbidden `ListOptions` combination, as `ValidateListOptions` words it.
pub(crate) fn forbidden(field: &str, message: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden",
        message: format!("Forbidden: {message}"),
        field: field.to_string(),
    }
}

/// A `ListOptions` value outside its enumeration.
pub(crate) fn not_supported(field: &str, value: &str, supported: &[&str]) -> Cause {
    let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
    Cause {
        reason: "FieldValueNotSupported",
        message: format!(
            "Unsupported value: {}: supported values: {}",
            go_quote(value),
            quoted.join(", ")
        ),
        field: field.to_string(),
    }
}

/// `ListOptions` violations: 422 with the kind `ListOptions`, every cause at once, as the
/// real server reports them.
pub(crate) fn list_options_invalid(causes: &[Cause]) -> ApiError {
    ApiError::invalid_kind("meta.k8s.io", "ListOptions", "", causes)
}

/// apimachinery's `ValidateListOptions` for a list (not a watch).
fn validate_list_options(q: &Query) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    if let Some(m) = q.value("resourceVersionMatch") {
        let rv = q.value("resourceVersion");
        if rv.is_none() {
            causes.push(forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if q.value("continue").is_some() {
            causes.push(forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if m != "Exact" && m != "NotOlderThan" {
            causes.push(not_supported(
                "resourceVersionMatch",
                m,
                &["Exact", "NotOlderThan", ""],
            ));
        }
        if m == "Exact" && rv == Some("0") {
            causes.push(forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if q.get("sendInitialEvents").is_some() {
        causes.push(forbidden(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for list",
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(list_options_invalid(&causes))
    }
}

/// Parses the label and field selectors of a list, watch or deletecollection.
pub(crate) fn selectors(
    q: &Query,
    rt: &ResourceType,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    for field in fields.requirements().iter().map(|r| r.field.as_str()) {
        if !rt.is_selectable(field) {
            return Err(ApiError::bad_request(unsupported_field(rt, field)));
        }
    }
    Ok((labels, fields))
}

/// Core kinds whose field-label conversion only knows the metadata fields and says so in its
/// own words (core/v1's `addConversionFuncs`).
const CORE_METADATA_ONLY_FIELDS: [&str; 6] = [
    "Endpoints",
    "ResourceQuota",
    "PersistentVolumeClaim",
    "Service",
    "ServiceAccount",
    "ConfigMap",
];

/// The 400 message for a field the kind cannot select on, worded by the kind's field-label
/// conversion: core's metadata-only kinds, the kinds with their own conversions (and custom
/// resources), and apimachinery's default for the kinds that register none.
fn unsupported_field(rt: &ResourceType, field: &str) -> String {
    if rt.group.is_empty() && CORE_METADATA_ONLY_FIELDS.contains(&rt.kind.as_str()) {
        format!(
            "field label {} not supported for {}",
            go_quote(field),
            go_quote(&rt.kind)
        )
    } else if rt.custom || !rt.selectable_fields.is_empty() {
        field_not_supported(field)
    } else {
        field_not_known(field)
    }
}

pub(crate) fn matches(obj: &Value, labels: &LabelSelector, fields: &FieldSelector) -> bool {
    labels.matches(obj.pointer("/metadata/labels").and_then(Value::as_object))
        && fields.matches(obj)
}

/// A continue token: the snapshot revision and the last key returned. Opaque to clients.
pub(crate) fn encode_continue(rv: u64, last: &ObjKey) -> String {
    B64.encode(
        serde_json::to_vec(&json!({"v": "meta.k8s.io/v1", "rv": rv, "start": [last.0, last.1]}))
            .unwrap_or_default(),
    )
}

fn decode_continue(token: &str) -> Result<(u64, ObjKey), ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let bytes = B64
        .decode(token)
        .map_err(|_| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|_| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(bad("server does not recognize this encoded key"));
    }
    let rv = v["rv"]
        .as_u64()
        .ok_or_else(|| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let ns = v["start"][0]
        .as_str()
        .ok_or_else(|| bad("encoded start key is invalid"))?;
    let name = v["start"][1]
        .as_str()
        .ok_or_else(|| bad("encoded start key is invalid"))?;
    Ok((rv, (ns.to_string(), name.to_string())))
}

const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

pub(crate) async fn list(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let q = &ctx.req.query;
    // In the real handler's order: parameter decoding (400), ListOptions validation (422),
    // field selector conversion (400), then storage (resourceVersion, continue).
    let limit = parse_limit(q)?;
    validate_list_options(q)?;
    let (labels, fields) = selectors(q, ctx.rt)?;
    let rv = parse_rv(q)?;
    let rv_match = q.value("resourceVersionMatch");
    let token = q.value("continue");
    if token.is_some() && rv.is_some_and(|rv| rv > 0) {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    let (at, after) = match token {
        Some(t) => {
            let (rv, key) = decode_continue(t)?;
            (if rv == 0 { None } else { Some(rv) }, Some(key))
        }
        None => {
            // Exact reads exactly N; so does the legacy form, a limit with resourceVersion=N
            // (N > 0) and no resourceVersionMatch. Otherwise N only means "not older than".
            let exact = match rv_match {
                Some(m) => m == "Exact",
                None => limit.is_some(),
            };
            match rv {
                Some(n) if n > 0 => {
                    wait_for_revision(ctx.inner, n).await?;
                    (exact.then_some(n), None)
                }
                _ => (None, None),
            }
        }
    };

    let state = ctx.inner.state.lock();
    let current = state.store.revision();
    let at = at.unwrap_or(current);
    let gr = ctx.rt.group_resource();
    let mut items: Vec<Bytes> = Vec::new();
    let mut last: Option<ObjKey> = None;
    let mut more = false;
    let mut remaining = 0usize;
    if let Some(rs) = state.store.resource_ref(&gr) {
        let snapshot = match rs.snapshot(at, after.as_ref(), ctx.namespace) {
            Ok(s) => s,
            Err(TooOld { .. }) => {
                let mut e = if token.is_some() {
                    ApiError::expired(CONTINUE_EXPIRED)
                } else {
                    ApiError::expired("The resourceVersion for the provided list is too old.")
                };
                if let Some(key) = after.as_ref().filter(|_| token.is_some()) {
                    // A token for the rest of the list at the latest revision (rv 0 = latest).
                    e.metadata = Some(Box::new(json!({"continue": encode_continue(0, key)})));
                }
                return Err(e);
            }
        };
        let unfiltered = labels.is_empty() && fields.is_empty();
        for (key, obj) in snapshot.iter() {
            if limit.is_some_and(|l| items.len() >= l) {
                more = true;
                if !unfiltered {
                    break;
                }
                remaining += 1;
                continue;
            }
            if selected(&obj.value, ctx.rt, &labels, &fields) {
                if ctx.wants == Wants::Table {
                    let served = render_value(&obj.value, ctx.rt, Wants::Json);
                    items.push(to_bytes(&super::table::row(ctx.rt, &served)));
                } else {
                    items.push(render(obj, ctx.rt, ctx.wants));
                }
                last = Some(key.clone());
            }
        }
        if !unfiltered {
            remaining = 0;
        }
    }
    let mut meta = json!({"resourceVersion": at.to_string()});
    if more && let Some(last) = &last {
        meta["continue"] = json!(encode_continue(at, last));
        if remaining > 0 {
            meta["remainingItemCount"] = json!(remaining);
        }
    }
    drop(state);
    if ctx.wants == Wants::Table {
        let rows = items
            .iter()
            .filter_map(|b| serde_json::from_slice(b).ok())
            .collect();
        return Ok(Reply::json(200, &super::table::table(ctx.rt, meta, rows)));
    }
    let (kind, api_version) = match ctx.wants {
        Wants::Metadata => (
            "PartialObjectMetadataList".to_string(),
            "meta.k8s.io/v1".to_string(),
        ),
        _ => (ctx.rt.list_kind.clone(), ctx.rt.api_version()),
    };
    Ok(Reply::bytes(
        200,
        list_body(&kind, &api_version, &meta, &items),
    ))
}

/// Splices stored object bytes into a list body without re-serializing them.
pub(crate) fn list_body(kind: &str, api_version: &str, meta: &Value, items: &[Bytes]) -> Bytes {
    let head = format!(
        "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{},\"items\":[",
        Value::from(kind),
        Value::from(api_version),
        meta
    );
    let size = head.len() + items.iter().map(|i| i.len() + 1).sum::<usize>() + 2;
    let mut out = BytesMut::with_capacity(size);
    out.put_slice(head.as_bytes());
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(item);
    }
    out.put_slice(b"]}");
    out.freeze()
}

/// Renders a structured label selector (`matchLabels`, `matchExpressions`) as the string form
/// the `/scale` subresource reports.
pub(crate) fn selector_string(sel: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"]
                .as_array()
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e["operator"].as_str().unwrap_or_default() {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

/// Reads a dotted JSON path such as `.spec.replicas`.
pub(crate) fn at_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .try_fold(value, |v, seg| v.get(seg))
}

/// The `autoscaling/v1` Scale view of an object.
pub(crate) fn scale_of(rt: &ResourceType, obj: &Value) -> Value {
    let paths = rt.scale.as_ref();
    let spec = paths
        .and_then(|p| at_path(obj, &p.spec_replicas))
        .cloned()
        .unwrap_or(json!(0));
    let status = paths
        .and_then(|p| at_path(obj, &p.status_replicas))
        .cloned()
        .unwrap_or(json!(0));
    let selector = paths
        .and_then(|p| p.label_selector.as_deref())
        .and_then(|p| at_path(obj, p))
        .map(|s| match s {
            Value::String(s) => s.clone(),
            structured => selector_string(structured),
        });
    let meta = &obj["metadata"];
    let mut metadata = json!({});
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(f) {
            metadata[f] = v.clone();
        }
    }
    let mut status_obj = json!({"replicas": status});
    if let Some(sel) = selector.filter(|s| !s.is_empty()) {
        status_obj["selector"] = json!(sel);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": spec},
        "status": status_obj,
    })
}

pub(crate) fn get_scale(ctx: &Ctx<'_>, name: &str) -> Result<Reply, ApiError> {
    let state = ctx.inner.state.lock();
    let obj = state
        .store
        .get(&ctx.rt.group_resource(), &object_key(ctx, name))
        .ok_or_else(|| ApiError::not_found(ctx.rt, name))?;
    Ok(Reply::json(200, &scale_of(ctx.rt, &obj.value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_selectors_render_as_strings() {
        let sel = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"}
        ]});
        assert_eq!(selector_string(&sel), "app=web,tier in (a,b),!canary");
    }

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(42, &("ns".into(), "b".into()));
        assert_eq!(
            decode_continue(&t).unwrap(),
            (42, ("ns".into(), "b".into()))
        );
        assert_eq!(decode_continue("not-base64!").unwrap_err().code, 400);
    }

    #[test]
    fn list_bodies_splice_items() {
        let body = list_body(
            "ConfigMapList",
            "v1",
            &json!({"resourceVersion": "5"}),
            &[
                Bytes::from_static(b"{\"a\":1}"),
                Bytes::from_static(b"{\"b\":2}"),
            ],
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["items"], json!([{"a": 1}, {"b": 2}]));
        assert_eq!(v["metadata"]["resourceVersion"], "5");
    }
}
