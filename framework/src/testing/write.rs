//! Writes: create, replace (PUT), patch, and the `/status` and `/scale` variants, with the
//! apiserver's rules for each — system fields, defaulting, validation, optimistic concurrency,
//! `generation`, status subresource semantics, managedFields, no-op writes, and deletion when
//! the last finalizer of a terminating object goes.
//!
//! Deletion itself lives in `delete.rs`; what happens *after* a write (garbage collection,
//! CRD establishment) is the background controllers' business.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::apply;
use super::crd;
use super::events;
use super::fields;
use super::kinds::{Generation, ResourceType, Shape, builtins, split_api_version};
use super::patch::{apply_json_patch, apply_merge_patch, go_syntax_error};
use super::read::{object_key, render, render_value, scale_of};
use super::rules;
use super::server::{Ctx, Inner, Reply, Settings, State};
use super::status::ApiError;
use super::store::{ObjKey, Stored};
use super::structural;
use super::validation::{
    Cause, finalizer_warnings, generate_name, go_quote, validate_object_meta,
    validate_object_meta_update,
};

/// The current time as `metav1.Time` writes it (RFC 3339, seconds).
pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A random RFC 4122 version 4 UUID, as the apiserver gives every object.
pub(crate) fn new_uid() -> String {
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// Reads a request body as an object of the resource's kind, as the apiserver's decoder does:
/// a missing `kind` or `apiVersion` is taken from the endpoint, another kind or version is
/// refused, and built-ins are decoded into their typed form.
pub(crate) fn decode_body(rt: &ResourceType, body: &[u8]) -> Result<Decoded, ApiError> {
    let unrecognized = |why: String| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: {why} ({})",
            rt.kind,
            summarize(body)
        ))
    };
    if let Some(syntax) = go_syntax_error(body) {
        return Err(unrecognized(syntax));
    }
    // Go replaces invalid UTF-8 inside strings rather than failing.
    let value: Value = serde_json::from_str(&String::from_utf8_lossy(body))
        .map_err(|e| unrecognized(e.to_string()))?;
    let value = match value {
        // Go decodes `null` into the zero value: an object with nothing set.
        Value::Null => json!({}),
        Value::Object(_) => value,
        other => {
            let what = match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            };
            return Err(unrecognized(format!(
                "json: cannot unmarshal {what} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}"
            )));
        }
    };
    check_type(rt, value)
}

/// The start of a body as the apiserver quotes it in decoding errors: JSON objects as text,
/// anything else in hex, at most 30 bytes.
fn summarize(body: &[u8]) -> String {
    let cut = &body[..body.len().min(30)];
    let more = if body.len() > 30 { " ..." } else { "" };
    match body.first() {
        None => "<empty>".to_string(),
        Some(b'{') => format!("{}{more}", String::from_utf8_lossy(cut)),
        Some(_) => {
            let hex: String = cut.iter().map(|b| format!("{b:02x}")).collect();
            format!("{hex}{more}")
        }
    }
}

/// The Go package a group's internal types live in, as conversion errors name it.
fn internal_package(group: &str) -> &str {
    match group {
        "" | "events.k8s.io" => "core",
        g => g.split('.').next().unwrap_or(g),
    }
}

/// A body decoded into the kind: the object, and the fields the decoder dropped because the
/// kind (or the CRD's schema) does not have them.
pub(crate) type Decoded = (Value, Vec<String>);

fn check_type(rt: &ResourceType, mut value: Value) -> Result<Decoded, ApiError> {
    let string = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut kind = string(&value, "kind");
    let mut api_version = string(&value, "apiVersion");
    // The decoder fills in what the body leaves out from the endpoint's kind.
    if kind.is_empty() {
        kind = rt.kind.clone();
        value["kind"] = json!(kind);
    }
    if api_version.is_empty() {
        api_version = rt.api_version();
        value["apiVersion"] = json!(api_version);
    }
    let (group, version) = split_api_version(&api_version);
    if rt.custom {
        if api_version != rt.api_version() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                rt.api_version()
            )));
        }
        if kind != rt.kind {
            // The custom resource validator insists on the served kind.
            let name = meta_str(&value, "name").unwrap_or_default();
            let cause = Cause::invalid("kind", &go_quote(&kind), &format!("must be {}", rt.kind));
            return Err(ApiError::invalid(rt, name, &[cause]));
        }
    } else if api_version != rt.api_version() || kind != rt.kind {
        let known = builtins()
            .iter()
            .any(|b| b.group == group && b.version == version && b.kind == kind);
        let why = if known {
            format!(
                "converting ({version}.{kind}) to ({}.{}): unknown conversion",
                internal_package(&rt.group),
                rt.kind
            )
        } else {
            format!(
                "no kind {} is registered for version {} in scheme \"pkg/api/legacyscheme/scheme.go:30\"",
                go_quote(&kind),
                go_quote(&api_version)
            )
        };
        return Err(ApiError::bad_request(format!(
            "{kind} in version {} cannot be handled as a {}: {why}",
            go_quote(version),
            rt.kind
        )));
    }
    if !value
        .get("metadata")
        .is_none_or(|m| m.is_object() || m.is_null())
    {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: metadata must be an object",
            rt.kind, rt.version, rt.kind
        )));
    }
    if value.get("metadata").is_none_or(Value::is_null) {
        value["metadata"] = json!({});
    }
    let mut unknown = Vec::new();
    if let Some(decode) = rt.decode {
        let decoded = decode(value.clone()).map_err(|e| {
            ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: {e}",
                rt.kind, rt.version, rt.kind
            ))
        })?;
        dropped_fields(&value, &decoded, "", &mut unknown);
        value = decoded;
    }
    if let Some(schema) = &rt.custom_schema {
        // The custom resource decoder prunes, then defaults (nulls that may not be null
        // give way to defaults).
        unknown = structural::prune(&mut value, schema.root());
        structural::drop_nulls(&mut value, schema.root());
        structural::default(&mut value, schema.root());
    }
    Ok((value, unknown))
}

/// The members of `sent` the typed decoding of a built-in dropped: its unknown fields, named
/// as Go's strict JSON decoder names them.
fn dropped_fields(sent: &Value, decoded: &Value, path: &str, out: &mut Vec<String>) {
    match (sent, decoded) {
        (Value::Object(s), Value::Object(d)) => {
            for (k, v) in s {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match d.get(k) {
                    None if !v.is_null() => out.push(p),
                    Some(dv) => dropped_fields(v, dv, &p, out),
                    None => {}
                }
            }
        }
        (Value::Array(s), Value::Array(d)) if s.len() == d.len() => {
            for (i, (a, b)) in s.iter().zip(d).enumerate() {
                dropped_fields(a, b, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The `fieldValidation` directive of a write: what unknown fields get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

pub(crate) fn field_validation(ctx: &Ctx<'_>) -> Result<FieldValidation, ApiError> {
    match ctx.req.query.value("fieldValidation") {
        None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
        Some("Ignore") => Ok(FieldValidation::Ignore),
        Some("Strict") => Ok(FieldValidation::Strict),
        Some(other) => Err(ApiError::bad_request(format!(
            "fieldValidation: Invalid value: {}: must be one of Ignore, Warn or Strict",
            go_quote(other)
        ))),
    }
}

/// Unknown fields as `Warning`s (`Warn`), a 400 (`Strict`), or nothing (`Ignore`).
pub(crate) fn unknown_fields(
    rt: &ResourceType,
    directive: FieldValidation,
    unknown: &[String],
) -> Result<Vec<String>, ApiError> {
    let texts: Vec<String> = unknown
        .iter()
        .map(|p| format!("unknown field {}", go_quote(p)))
        .collect();
    match directive {
        FieldValidation::Ignore => Ok(Vec::new()),
        FieldValidation::Warn => Ok(texts),
        FieldValidation::Strict if texts.is_empty() => Ok(Vec::new()),
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "{} in version {} cannot be handled as a {}: strict decoding error: {}",
            rt.kind,
            go_quote(&rt.version),
            rt.kind,
            texts.join(", ")
        ))),
    }
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?
        .get(field)?
        .as_str()
        .filter(|s| !s.is_empty())
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

/// Drops empty collections from metadata, as Go's `omitempty` does when the object is stored.
fn drop_empty_metadata(obj: &mut Value) {
    let meta = meta_mut(obj);
    for f in [
        "labels",
        "annotations",
        "finalizers",
        "ownerReferences",
        "managedFields",
    ] {
        let empty = match meta.get(f) {
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            meta.remove(f);
        }
    }
}

/// `generateName` expanded with a fresh random suffix.
fn generated_name(prefix: &str) -> String {
    generate_name(prefix, &mut fastrand::u64(..))
}

/// Validation shared by create and update: metadata rules and the kind's own rules.
fn validate(rt: &ResourceType, obj: &Value) -> Vec<Cause> {
    let empty = json!({});
    let meta = obj.get("metadata").unwrap_or(&empty);
    let mut causes = validate_object_meta(meta, rt.namespaced, rt.name_rule);
    causes.extend(rules::validate(rt, obj));
    causes
}

fn invalid(rt: &ResourceType, obj: &Value, causes: &[Cause]) -> ApiError {
    let name = meta_str(obj, "name")
        .or_else(|| meta_str(obj, "generateName"))
        .unwrap_or_default();
    ApiError::invalid(rt, name, causes)
}

/// Checks that objects may be created in `ns` (it exists and is not terminating).
fn check_namespace(
    state: &State,
    settings: &Settings,
    rt: &ResourceType,
    ns: &str,
    name: &str,
) -> Result<(), ApiError> {
    if !rt.namespaced || !settings.enforce_namespaces {
        return Ok(());
    }
    let namespaces = state
        .registry
        .get("", "v1", "namespaces")
        .map(|t| t.group_resource());
    let found = namespaces.and_then(|gr| state.store.get(&gr, &(String::new(), ns.to_string())));
    match found {
        None => Err(ApiError::namespace_not_found(ns)),
        Some(n) if n.value.pointer("/metadata/deletionTimestamp").is_some() => {
            // NamespaceLifecycle admission: Forbidden for the object, plus a cause.
            let mut e = ApiError::forbidden(
                rt,
                name,
                &format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            );
            if let Some(d) = e.details.as_mut() {
                d["causes"] = json!([{
                    "reason": "NamespaceTerminating",
                    "message": format!("namespace {ns} is being terminated"),
                    "field": "metadata.namespace",
                }]);
            }
            Err(e)
        }
        Some(_) => Ok(()),
    }
}

/// Creates an object (already decoded, its namespace settled) under the store lock.
pub(crate) fn create_object(
    state: &mut State,
    settings: &Settings,
    rt: &ResourceType,
    mut obj: Value,
    manager: Option<&str>,
    dry_run: bool,
) -> Result<Arc<Stored>, ApiError> {
    if rt.custom && crd::is_terminating(state, rt) {
        return Err(ApiError::method_not_supported(
            "create not allowed while custom resource definition is terminating",
        ));
    }
    // Storage refuses a create that carries a revision with a plain error, which the apiserver
    // answers as a 500 without a reason; one that does not parse is ignored, as there.
    if meta_str(&obj, "resourceVersion").is_some_and(|rv| rv.parse::<u64>().is_ok_and(|n| n > 0)) {
        return Err(ApiError::new(
            500,
            "",
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let ns = meta_str(&obj, "namespace").unwrap_or_default().to_string();
    // Admission (NamespaceLifecycle) runs before the name is generated and before validation.
    check_namespace(
        state,
        settings,
        rt,
        &ns,
        meta_str(&obj, "name").unwrap_or_default(),
    )?;
    if meta_str(&obj, "name").is_none()
        && let Some(prefix) = meta_str(&obj, "generateName").map(String::from)
    {
        let gr = rt.group_resource();
        // Retry on the (unlikely) collision, as the apiserver does since 1.32.
        let mut name = generated_name(&prefix);
        for _ in 0..8 {
            if state.store.get(&gr, &(ns.clone(), name.clone())).is_none() {
                break;
            }
            name = generated_name(&prefix);
        }
        meta_mut(&mut obj).insert("name".into(), json!(name));
    }
    prepare_create(rt, &mut obj, manager);
    let mut causes = validate(rt, &obj);
    if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
        causes.extend(crd::validate(&obj, None));
    }
    if rt.shape == Shape::EventsV1 {
        causes.extend(events::validate_create(&obj));
    }
    if let Some(schema) = &rt.custom_schema {
        causes.extend(structural::validate(schema, &obj, None));
    }
    if !causes.is_empty() {
        return Err(invalid(rt, &obj, &causes));
    }
    let obj = events::stored(rt, obj);
    let name = meta_str(&obj, "name").unwrap_or_default().to_string();
    let key = (ns, name.clone());
    let gr = rt.group_resource();
    if state.store.get(&gr, &key).is_some() {
        return Err(ApiError::already_exists(rt, &name));
    }
    if dry_run {
        return Ok(Arc::new(Stored::new(obj, 0)));
    }
    Ok(state.store.put(&gr, key, obj).event.object.clone())
}

/// The system fields, defaults and status rules of a create.
fn prepare_create(rt: &ResourceType, obj: &mut Value, manager: Option<&str>) {
    obj["apiVersion"] = json!(rt.storage_api_version());
    obj["kind"] = json!(rt.kind);
    let meta = meta_mut(obj);
    meta.insert("uid".into(), json!(new_uid()));
    meta.insert("creationTimestamp".into(), json!(now()));
    for f in [
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "resourceVersion",
    ] {
        meta.remove(f);
    }
    if rt.generation == Generation::None {
        meta.remove("generation");
    } else {
        meta.insert("generation".into(), json!(1));
    }
    if !rt.namespaced {
        meta.remove("namespace");
    }
    if rt.status_subresource
        && let Some(o) = obj.as_object_mut()
    {
        o.remove("status");
    }
    if let Some(d) = rt.defaulter {
        d(obj);
    }
    if rt.status_subresource && !rt.custom && obj.get("status").is_none() {
        obj["status"] = json!({});
    }
    if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
        crd::prepare_create(obj);
    }
    drop_empty_metadata(obj);
    // Applied objects arrive with their managedFields computed.
    if let Some(manager) = manager {
        fields::on_create(rt, obj, manager, &rt.api_version());
    } else {
        let entries = fields::entries(obj);
        fields::put_entries(obj, entries);
    }
}

/// Turns a client's new version of an object into what will be stored, given the old one:
/// the subresource's rules, system fields, defaults, validation, generation, managedFields.
pub(crate) fn prepare_update(
    rt: &ResourceType,
    old: &Value,
    mut new: Value,
    subresource: Option<&str>,
    manager: Option<&str>,
) -> Result<Value, ApiError> {
    // The rules apply to the shape the client wrote; the result is stored in the storage's.
    let old = &*events::served(rt, old);
    new["apiVersion"] = json!(rt.storage_api_version());
    new["kind"] = json!(rt.kind);
    match subresource {
        Some("status") if rt.custom => {
            // A custom resource's /status keeps everything of the old object but its status.
            let status = new.get("status").cloned();
            let managed = new.pointer("/metadata/managedFields").cloned();
            let rv = new.pointer("/metadata/resourceVersion").cloned();
            new = old.clone();
            set_or_remove(&mut new, "status", status);
            if let Some(m) = managed {
                meta_mut(&mut new).insert("managedFields".into(), m);
            }
            if let Some(rv) = rv {
                meta_mut(&mut new).insert("resourceVersion".into(), rv);
            }
        }
        Some("status") | Some("finalize") => {
            // Built-in status (and namespace finalize) writes keep the old metadata and spec.
            let keep = if subresource == Some("finalize") {
                "spec"
            } else {
                "status"
            };
            let part = new.get(keep).cloned();
            let managed = new.pointer("/metadata/managedFields").cloned();
            let rv = new.pointer("/metadata/resourceVersion").cloned();
            let mut base = old.clone();
            if keep == "spec" {
                // Only the finalizers of the spec can change through /finalize.
                let fins = part.as_ref().and_then(|s| s.get("finalizers")).cloned();
                set_or_remove(&mut base["spec"], "finalizers", fins);
            } else {
                set_or_remove(&mut base, "status", part);
            }
            new = base;
            if let Some(m) = managed {
                meta_mut(&mut new).insert("managedFields".into(), m);
            }
            if let Some(rv) = rv {
                meta_mut(&mut new).insert("resourceVersion".into(), rv);
            }
        }
        _ => {
            if rt.status_subresource {
                let status = old.get("status").cloned();
                set_or_remove(&mut new, "status", status);
            }
            if rt.plural == "namespaces" && rt.group.is_empty() {
                // spec.finalizers of a namespace only change through /finalize.
                let fins = old.pointer("/spec/finalizers").cloned();
                if new.get("spec").is_some_and(Value::is_object) || fins.is_some() {
                    if !new.get("spec").is_some_and(Value::is_object) {
                        new["spec"] = json!({});
                    }
                    set_or_remove(&mut new["spec"], "finalizers", fins);
                }
            }
        }
    }
    // System fields a client cannot change.
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    {
        let meta = meta_mut(&mut new);
        if meta
            .get("uid")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            && let Some(uid) = old_meta.get("uid")
        {
            meta.insert("uid".into(), uid.clone());
        }
        for f in [
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old_meta.get(f) {
                Some(v) => meta.insert(f.into(), v.clone()),
                None => meta.remove(f),
            };
        }
        meta.remove("selfLink");
        if !rt.namespaced {
            meta.remove("namespace");
        }
    }
    if let Some(d) = rt.defaulter {
        d(&mut new);
    }
    drop_empty_metadata(&mut new);
    let mut causes = validate(rt, &new);
    causes.extend(validate_object_meta_update(
        &old_meta,
        new.get("metadata").unwrap_or(&json!({})),
    ));
    if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
        causes.extend(crd::validate(&new, Some(old)));
    }
    if rt.shape == Shape::EventsV1 {
        causes.extend(events::validate_update(&new, old));
    }
    if let Some(schema) = &rt.custom_schema {
        // Validation ratchets: what an update leaves as it was may stay invalid.
        let schema_causes = structural::validate(schema, &new, Some(old));
        causes.extend(structural::ratchet(schema_causes, old, &new));
    }
    if !causes.is_empty() {
        return Err(invalid(rt, &new, &causes));
    }
    if subresource.is_none() && generation_changes(rt, old, &new) {
        let g = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta_mut(&mut new).insert("generation".into(), json!(g + 1));
    }
    match manager {
        Some(manager) => fields::on_update(
            rt,
            old,
            &mut new,
            manager,
            &rt.api_version(),
            subresource.filter(|s| *s == "status"),
        ),
        None => {
            let entries = fields::entries(&new);
            fields::put_entries(&mut new, entries);
        }
    }
    Ok(events::stored(rt, new))
}

fn set_or_remove(obj: &mut Value, key: &str, value: Option<Value>) {
    if let Some(o) = obj.as_object_mut() {
        match value {
            Some(v) => o.insert(key.to_string(), v),
            None => o.remove(key),
        };
    }
}

/// Whether a main-endpoint write changes what `generation` counts for this kind.
fn generation_changes(rt: &ResourceType, old: &Value, new: &Value) -> bool {
    match rt.generation {
        Generation::None => false,
        Generation::Spec => old.get("spec") != new.get("spec"),
        Generation::SpecOrAnnotations => {
            old.get("spec") != new.get("spec")
                || old.pointer("/metadata/annotations") != new.pointer("/metadata/annotations")
        }
        Generation::AllButMetadata => {
            let strip = |v: &Value| {
                let mut m = v.as_object().cloned().unwrap_or_default();
                m.remove("metadata");
                if rt.status_subresource {
                    m.remove("status");
                }
                m
            };
            strip(old) != strip(new)
        }
    }
}

/// Whether two versions of an object differ in anything but resourceVersion and managedFields.
fn same_content(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    if a.len() != b.len() {
        return false;
    }
    a.iter().all(|(k, av)| {
        let Some(bv) = b.get(k) else { return false };
        if k != "metadata" {
            return av == bv;
        }
        let skip = |m: &&Map<String, Value>, key: &String| {
            key != "resourceVersion" && key != "managedFields" && m.contains_key(key)
        };
        match (av.as_object(), bv.as_object()) {
            (Some(am), Some(bm)) => {
                let ak: Vec<_> = am.keys().filter(|k| skip(&am, k)).collect();
                let bk: Vec<_> = bm.keys().filter(|k| skip(&bm, k)).collect();
                ak == bk
                    && ak.iter().all(|k| am.get(*k) == bm.get(*k))
                    && same_ownership(am.get("managedFields"), bm.get("managedFields"))
            }
            _ => av == bv,
        }
    })
}

/// Whether two managedFields say the same but for their timestamps (the apiserver does not
/// store a write that only moves a timestamp).
fn same_ownership(a: Option<&Value>, b: Option<&Value>) -> bool {
    let strip = |v: Option<&Value>| -> Vec<Value> {
        v.and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|e| {
                        let mut e = e.clone();
                        if let Some(o) = e.as_object_mut() {
                            o.remove("time");
                        }
                        e
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    strip(a) == strip(b)
}

fn finalizers_empty(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
}

/// Stores an already-prepared update. A write that changes nothing stores nothing (no new
/// resourceVersion, no event); an update leaving a terminating object without finalizers
/// deletes it.
pub(crate) fn commit_update(
    state: &mut State,
    rt: &ResourceType,
    key: &ObjKey,
    old: &Arc<Stored>,
    new: Value,
    dry_run: bool,
) -> Result<Arc<Stored>, ApiError> {
    if same_content(&old.value, &new) {
        return Ok(old.clone());
    }
    let gr = rt.group_resource();
    let terminating = new.pointer("/metadata/deletionTimestamp").is_some();
    let ns_finalizers_empty = !(rt.plural == "namespaces" && rt.group.is_empty())
        || new
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
    if dry_run {
        return Ok(Arc::new(Stored::new(new, old.rv)));
    }
    if terminating && finalizers_empty(&new) && ns_finalizers_empty {
        // The registry does not store an update that empties the finalizers of a terminating
        // object: it deletes the stored object, so the DELETED event (and the answer) carry
        // the last stored state, finalizers included, at the deletion's revision.
        let written = state.store.remove(&gr, key);
        return Ok(written
            .map(|w| w.event.object.clone())
            .unwrap_or_else(|| old.clone()));
    }
    Ok(state.store.put(&gr, key.clone(), new).event.object.clone())
}

fn name_matches(
    rt: &ResourceType,
    obj: &Value,
    name: &str,
    ns: Option<&str>,
) -> Result<(), ApiError> {
    if let Some(body_name) = meta_str(obj, "name")
        && body_name != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if let (true, Some(url_ns), Some(body_ns)) = (rt.namespaced, ns, meta_str(obj, "namespace"))
        && body_ns != url_ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// Create and replace bodies must be JSON: protobuf and YAML bodies are not decoded here.
fn require_json(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    match ctx.req.content_type().as_str() {
        "application/json" | "" => Ok(()),
        other => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json (got {other:?})"
            ),
        )),
    }
}

/// The `dryRun` values of a write, validated as `ValidateDryRun` does (only `All` exists);
/// `options` names the options kind the 422 reports (`CreateOptions`, ...).
pub(crate) fn dry_run(values: &[String], options: &str) -> Result<bool, ApiError> {
    dry_run_values(values)
        .map_err(|causes| ApiError::invalid_kind("meta.k8s.io", options, "", &causes))
}

/// Like [`dry_run`], with the causes left for the caller to aggregate.
pub(crate) fn dry_run_values(values: &[String]) -> Result<bool, Vec<Cause>> {
    if values.iter().any(|v| v != "All") {
        // Go prints the rejected []string with %#v.
        let quoted: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
        let shown = format!("[]string{{{}}}", quoted.join(", "));
        return Err(vec![Cause::not_supported("dryRun", &shown, &["All"])]);
    }
    Ok(!values.is_empty())
}

fn query_dry_run(ctx: &Ctx<'_>, options: &str) -> Result<bool, ApiError> {
    let values: Vec<String> = ctx.req.query.all("dryRun").map(String::from).collect();
    dry_run(&values, options)
}

pub(crate) fn create(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let rt = ctx.rt;
    let dry = query_dry_run(ctx, "CreateOptions")?;
    let directive = field_validation(ctx)?;
    require_json(ctx)?;
    let (mut obj, unknown) = decode_body(rt, &ctx.req.body)?;
    let mut warned = unknown_fields(rt, directive, &unknown)?;
    if rt.namespaced {
        let Some(url_ns) = ctx.namespace else {
            return Err(ApiError::method_not_allowed());
        };
        match meta_str(&obj, "namespace") {
            Some(body_ns) if body_ns != url_ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                meta_mut(&mut obj).insert("namespace".into(), json!(url_ns));
            }
        }
    }
    let settings = ctx.inner.settings();
    let manager = ctx.req.field_manager();
    warned.extend(warnings(rt, &obj, None, None));
    let mut state = ctx.inner.state.lock();
    let stored = create_object(&mut state, &settings, rt, obj, Some(&manager), dry)?;
    Ok(Reply::bytes(201, render(&stored, rt, ctx.wants)).warned(warned))
}

/// The `Warning`s a write of `new` gets: the custom resource strategy's, about finalizers
/// added without a path (status writes get none).
fn warnings(rt: &ResourceType, new: &Value, old: Option<&Value>, sub: Option<&str>) -> Vec<String> {
    if !rt.custom || sub.is_some() {
        return Vec::new();
    }
    let empty = json!({});
    finalizer_warnings(
        new.get("metadata").unwrap_or(&empty),
        old.and_then(|o| o.get("metadata")),
    )
}

pub(crate) fn update(ctx: &Ctx<'_>, name: &str, sub: Option<&str>) -> Result<Reply, ApiError> {
    let rt = ctx.rt;
    let dry = query_dry_run(ctx, "UpdateOptions")?;
    let directive = field_validation(ctx)?;
    require_json(ctx)?;
    let (mut obj, unknown) = decode_body(rt, &ctx.req.body)?;
    let mut warned = unknown_fields(rt, directive, &unknown)?;
    name_matches(rt, &obj, name, ctx.namespace)?;
    if let (true, Some(url_ns), None) = (rt.namespaced, ctx.namespace, meta_str(&obj, "namespace"))
    {
        // Like a create, an update takes the namespace from the URL when the body has none.
        meta_mut(&mut obj).insert("namespace".into(), json!(url_ns));
    }
    let key = object_key(ctx, name);
    let manager = ctx.req.field_manager();
    let settings = ctx.inner.settings();
    let mut state = ctx.inner.state.lock();
    let Some(old) = state.store.get(&rt.group_resource(), &key) else {
        if !rt.create_on_update || sub.is_some() {
            return Err(ApiError::not_found(rt, name));
        }
        // This kind's strategy lets a PUT create: storage ignores the body's revision then.
        meta_mut(&mut obj).remove("resourceVersion");
        warned.extend(warnings(rt, &obj, None, sub));
        let stored = create_object(&mut state, &settings, rt, obj, Some(&manager), dry)?;
        return Ok(Reply::bytes(201, render(&stored, rt, ctx.wants)).warned(warned));
    };
    match meta_str(&obj, "resourceVersion") {
        Some(rv) if rv != old.rv.to_string() => return Err(ApiError::conflict(rt, name)),
        Some(_) => {}
        None if !rt.unconditional_update => {
            let cause = Cause {
                reason: "FieldValueInvalid",
                message: "Invalid value: 0x0: must be specified for an update".into(),
                field: "metadata.resourceVersion".into(),
            };
            return Err(ApiError::invalid(rt, name, &[cause]));
        }
        None => {}
    }
    warned.extend(warnings(rt, &obj, Some(&old.value), sub));
    let new = prepare_update(rt, &old.value, obj, sub, Some(&manager))?;
    let stored = commit_update(&mut state, rt, &key, &old, new, dry)?;
    Ok(Reply::bytes(200, render(&stored, rt, ctx.wants)).warned(warned))
}

/// Applies a PATCH body of the request's content type to `base`.
/// The patch types a resource accepts, in the order the 415 answer lists them.
fn patch_types(rt: &ResourceType) -> &'static [&'static str] {
    if rt.custom {
        &[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ]
    } else {
        &[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml",
        ]
    }
}

/// The PATCH body's media type, refused first (before the object is even looked up) when
/// the resource does not accept it.
fn patch_type(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let content_type = ctx.req.content_type();
    let accepted = patch_types(ctx.rt);
    if ctx.req.header(http::header::CONTENT_TYPE).is_none()
        || !accepted.contains(&content_type.as_str())
    {
        return Err(ApiError::unsupported_media_type(accepted));
    }
    Ok(content_type)
}

/// Applies a PATCH body of the request's content type to `base`.
fn apply_patch(ctx: &Ctx<'_>, base: &Value) -> Result<Value, ApiError> {
    let content_type = patch_type(ctx)?;
    let to_api = |e: super::patch::PatchError| ApiError::new(e.code, e.reason, e.message);
    match content_type.as_str() {
        "application/json-patch+json" => apply_json_patch(base, &ctx.req.body).map_err(to_api),
        "application/merge-patch+json" => apply_merge_patch(base, &ctx.req.body).map_err(to_api),
        "application/strategic-merge-patch+json" => {
            super::strategic::apply(base, &ctx.req.body, fields::node_for(ctx.rt)).map_err(to_api)
        }
        other => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "{other} is not implemented by windlass::testing yet; use application/merge-patch+json or application/json-patch+json"
            ),
        )),
    }
}

pub(crate) fn patch(ctx: &Ctx<'_>, name: &str, sub: Option<&str>) -> Result<Reply, ApiError> {
    let rt = ctx.rt;
    patch_type(ctx)?;
    let dry = query_dry_run(ctx, "PatchOptions")?;
    let key = object_key(ctx, name);
    let manager = ctx.req.field_manager();
    if ctx.req.query.get("force").is_some()
        && ctx.req.content_type() != "application/apply-patch+yaml"
    {
        let cause = Cause {
            reason: "FieldValueForbidden",
            message: "Forbidden: may not be specified for non-apply patch".into(),
            field: "force".into(),
        };
        return Err(ApiError::invalid_kind(
            "meta.k8s.io",
            "PatchOptions",
            "",
            &[cause],
        ));
    }
    let directive = field_validation(ctx)?;
    if ctx.req.content_type() == "application/apply-patch+yaml" {
        return apply_patch_request(ctx, name, sub, dry, directive);
    }
    let mut state = ctx.inner.state.lock();
    let old = state
        .store
        .get(&rt.group_resource(), &key)
        .ok_or_else(|| ApiError::not_found(rt, name))?;
    let base = render_value(&old.value, rt, super::request::Wants::Json);
    let mut patched = apply_patch(ctx, &base)?;
    if !patched.is_object() {
        return Err(ApiError::bad_request(
            "the patched object is not a JSON object",
        ));
    }
    // A resourceVersion in the patched object is a precondition; none means "latest".
    match meta_str(&patched, "resourceVersion") {
        Some(rv) if rv != old.rv.to_string() => return Err(ApiError::conflict(rt, name)),
        _ => {
            meta_mut(&mut patched).insert("resourceVersion".into(), json!(old.rv.to_string()));
        }
    }
    let (patched, unknown) = check_type(rt, patched)?;
    let mut warned = unknown_fields(rt, directive, &unknown)?;
    name_matches(rt, &patched, name, ctx.namespace)?;
    warned.extend(warnings(rt, &patched, Some(&old.value), sub));
    let new = prepare_update(rt, &old.value, patched, sub, Some(&manager))?;
    let stored = commit_update(&mut state, rt, &key, &old, new, dry)?;
    Ok(Reply::bytes(200, render(&stored, rt, ctx.wants)).warned(warned))
}

/// Server-side apply: the configuration is merged into the live object (or creates it) with
/// field ownership and conflicts, then written like any update.
fn apply_patch_request(
    ctx: &Ctx<'_>,
    name: &str,
    sub: Option<&str>,
    dry: bool,
    directive: FieldValidation,
) -> Result<Reply, ApiError> {
    let rt = ctx.rt;
    let Some(manager) = ctx
        .req
        .query
        .value("fieldManager")
        .filter(|m| !m.is_empty())
    else {
        let cause = Cause::required("fieldManager", "is required for apply patch");
        return Err(ApiError::invalid_kind(
            "meta.k8s.io",
            "PatchOptions",
            "",
            &[cause],
        ));
    };
    let force = match ctx.req.query.value("force") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "failed to parse \"force\" query parameter: strconv.ParseBool: parsing {}: invalid syntax",
                go_quote(other)
            )));
        }
    };
    let config = apply::parse(&ctx.req.body)?;
    apply::check_config(rt, &config)?;
    let mut config = config;
    // The configuration is not decoded into the kind (it is partial) nor defaulted; fields
    // the schema does not have are dropped and reported.
    let unknown = match (&rt.custom_schema, fields::node_for(rt)) {
        (Some(schema), _) => structural::prune(&mut config, schema.root()),
        (None, Some(node)) => structural::prune_known(&mut config, node),
        (None, None) => Vec::new(),
    };
    let mut warned = unknown_fields(rt, directive, &unknown)?;
    name_matches(rt, &config, name, ctx.namespace)?;
    if let (true, Some(url_ns)) = (rt.namespaced, ctx.namespace) {
        meta_mut(&mut config).insert("namespace".into(), json!(url_ns));
    }
    let key = object_key(ctx, name);
    let settings = ctx.inner.settings();
    let mut state = ctx.inner.state.lock();
    let old = state.store.get(&rt.group_resource(), &key);
    if let (Some(old), Some(rv)) = (&old, meta_str(&config, "resourceVersion"))
        && rv != old.rv.to_string()
    {
        return Err(ApiError::conflict(rt, name));
    }
    let Some(old) = old else {
        if sub.is_some() {
            return Err(ApiError::not_found(rt, name));
        }
        // Applying to an object that does not exist creates it.
        let mut live =
            json!({"apiVersion": rt.api_version(), "kind": rt.kind, "metadata": {"name": name}});
        if let (true, Some(ns)) = (rt.namespaced, ctx.namespace) {
            live["metadata"]["namespace"] = json!(ns);
        }
        let applied = apply::apply(rt, &live, &config, manager, None, force)?;
        let mut obj = applied.object;
        meta_mut(&mut obj).remove("resourceVersion");
        warned.extend(warnings(rt, &obj, None, None));
        let stored = create_object(&mut state, &settings, rt, obj, None, dry)?;
        return Ok(Reply::bytes(201, render(&stored, rt, ctx.wants)).warned(warned));
    };
    let live = render_value(&old.value, rt, super::request::Wants::Json);
    let status_sub = sub.filter(|s| *s == "status");
    let applied = apply::apply(rt, &live, &config, manager, status_sub, force)?;
    let mut new = applied.object;
    meta_mut(&mut new).insert("resourceVersion".into(), json!(old.rv.to_string()));
    // The merged object is decoded like any other write (defaults for custom resources).
    let (new, _) = check_type(rt, new)?;
    warned.extend(warnings(rt, &new, Some(&old.value), sub));
    let new = prepare_update(rt, &old.value, new, sub, None)?;
    let stored = commit_update(&mut state, rt, &key, &old, new, dry)?;
    Ok(Reply::bytes(200, render(&stored, rt, ctx.wants)).warned(warned))
}

/// Writes the desired replica count of a Scale into the object, through the main endpoint's
/// rules (so `generation` moves as for any spec change).
fn write_scale(
    ctx: &Ctx<'_>,
    name: &str,
    scale: Value,
    state: &mut State,
    old: &Arc<Stored>,
    options: &str,
) -> Result<Reply, ApiError> {
    let rt = ctx.rt;
    let Some(paths) = rt.scale.as_ref() else {
        return Err(ApiError::route_not_found());
    };
    if let Some(rv) = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        && rv != old.rv.to_string()
    {
        return Err(ApiError::conflict(rt, name));
    }
    let replicas = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
    if !replicas.is_i64() || replicas.as_i64().is_some_and(|r| r < 0) {
        let cause = Cause {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {replicas}: must be greater than or equal to 0"),
            field: "spec.replicas".into(),
        };
        return Err(ApiError::invalid_kind(
            "autoscaling",
            "Scale",
            name,
            &[cause],
        ));
    }
    let mut new = old.value.clone();
    let segs: Vec<&str> = paths
        .spec_replicas
        .trim_start_matches('.')
        .split('.')
        .collect();
    let mut cur = &mut new;
    for seg in &segs[..segs.len() - 1] {
        if !cur.get(*seg).is_some_and(Value::is_object) {
            cur[*seg] = json!({});
        }
        cur = &mut cur[*seg];
    }
    cur[segs[segs.len() - 1]] = replicas;
    let key = object_key(ctx, name);
    let new = prepare_update(rt, &old.value, new, None, Some(&ctx.req.field_manager()))?;
    let stored = commit_update(state, rt, &key, old, new, query_dry_run(ctx, options)?)?;
    Ok(Reply::json(200, &scale_of(rt, &stored.value)))
}

pub(crate) fn update_scale(ctx: &Ctx<'_>, name: &str) -> Result<Reply, ApiError> {
    let scale: Value = serde_json::from_slice(&ctx.req.body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })?;
    let mut state = ctx.inner.state.lock();
    let old = state
        .store
        .get(&ctx.rt.group_resource(), &object_key(ctx, name))
        .ok_or_else(|| ApiError::not_found(ctx.rt, name))?;
    write_scale(ctx, name, scale, &mut state, &old, "UpdateOptions")
}

pub(crate) fn patch_scale(ctx: &Ctx<'_>, name: &str) -> Result<Reply, ApiError> {
    patch_type(ctx)?;
    let mut state = ctx.inner.state.lock();
    let old = state
        .store
        .get(&ctx.rt.group_resource(), &object_key(ctx, name))
        .ok_or_else(|| ApiError::not_found(ctx.rt, name))?;
    let scale = apply_patch(ctx, &scale_of(ctx.rt, &old.value))?;
    write_scale(ctx, name, scale, &mut state, &old, "PatchOptions")
}

/// The namespaces every cluster starts with.
pub(crate) fn create_default_namespaces(inner: &Inner) {
    let settings = inner.settings();
    let mut state = inner.state.lock();
    let Some(rt) = state.registry.get("", "v1", "namespaces") else {
        return;
    };
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        // Cannot fail: the names are valid and the store is empty.
        let _ = create_object(
            &mut state,
            &settings,
            &rt,
            obj,
            Some("kube-apiserver"),
            false,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_look_like_version_4_uuids() {
        let uid = new_uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(&uid[14..15], "4");
        assert!(matches!(&uid[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn generated_names_keep_the_prefix_and_add_five_characters() {
        let n = generated_name("web-");
        assert!(n.starts_with("web-"));
        assert_eq!(n.len(), 9);
        assert_eq!(generated_name(&"x".repeat(80)).len(), 63);
    }

    #[test]
    fn same_content_ignores_resource_version_and_managed_fields_times() {
        let a = json!({"metadata": {"name": "a", "resourceVersion": "1", "managedFields": []}, "data": {}});
        let b = json!({"metadata": {"name": "a", "resourceVersion": "2"}, "data": {}});
        assert!(same_content(&a, &b));
        let c = json!({"metadata": {"name": "a", "labels": {"x": "y"}}, "data": {}});
        assert!(!same_content(&a, &c));
    }
}
