//! The OpenAPI documents kubectl reads: `/openapi/v3` (an index of group versions, each with a
//! `?hash=` that changes with its content) and `/openapi/v3/{api/v1 | apis/g/v}`, plus the
//! single `/openapi/v2` document, all computed from what is served now (built-in kinds and
//! every established CRD).
//!
//! kubectl needs them for `explain`, for finding that the server validates fields itself
//! (`fieldValidation` on the PATCH operation, so `create -f` and `apply -f` validate without
//! `--validate=false`) and for strategic merge metadata in client-side `apply`. Each kind's
//! schema comes from `schema.rs`; custom resources' from their CRD, with `metadata` as
//! `ObjectMeta`. Only JSON is served (the real server also speaks protobuf).

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value, json};

use super::discovery;
use super::kinds::ResourceType;
use super::request::ApiRequest;
use super::schema::{self, OBJECT_META};
use super::server::{Inner, Reply};

const V3_REF: &str = "#/components/schemas/";
const V2_REF: &str = "#/definitions/";

/// Answers `/openapi/...`.
pub(crate) fn serve(inner: &Inner, req: &ApiRequest) -> Reply {
    let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["openapi", "v2"] => {
            if !accepts_json(req) {
                return Reply::Error(super::status::ApiError::not_acceptable(
                    "only the following media types are accepted: application/json",
                ));
            }
            Reply::json(200, &v2(inner))
        }
        ["openapi", "v3"] => Reply::json(200, &v3_index(inner)),
        ["openapi", "v3", "api", v] => gv_reply(inner, "", v),
        ["openapi", "v3", "apis", g, v] => gv_reply(inner, g, v),
        _ => Reply::page_not_found(),
    }
}

fn accepts_json(req: &ApiRequest) -> bool {
    let accept = req
        .header(http::header::ACCEPT)
        .unwrap_or("application/json");
    accept.split(',').any(|m| {
        let m = m.split(';').next().unwrap_or_default().trim();
        matches!(m, "application/json" | "*/*" | "application/*" | "")
    })
}

fn gv_reply(inner: &Inner, group: &str, version: &str) -> Reply {
    match gv_doc(inner, group, version) {
        Some(doc) => Reply::json(200, &doc),
        None => Reply::page_not_found(),
    }
}

/// The served resource types, grouped by group version (preferred order within a group).
fn served(inner: &Inner) -> Vec<(String, String, Vec<std::sync::Arc<ResourceType>>)> {
    let state = inner.state.lock();
    let mut out = Vec::new();
    for (group, versions) in state.registry.groups() {
        for v in versions {
            let types = state.registry.resources(&group, &v);
            out.push((group.clone(), v, types));
        }
    }
    out
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn v3_index(inner: &Inner) -> Value {
    let mut paths = Map::new();
    for (group, version, _) in served(inner) {
        let doc = gv_doc(inner, &group, &version).unwrap_or_default();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        doc.to_string().hash(&mut h);
        let path = gv_path(&group, &version);
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={:016X}", h.finish())}),
        );
    }
    json!({"paths": paths})
}

/// The name a custom resource's schema is published under: the group reversed, the version
/// and the kind (`com.example.v1.Widget`).
fn custom_name(rt: &ResourceType) -> String {
    let mut parts: Vec<&str> = rt.group.split('.').collect();
    parts.reverse();
    format!("{}.{}.{}", parts.join("."), rt.version, rt.kind)
}

fn gvk(rt: &ResourceType) -> Value {
    json!([{"group": rt.group, "version": rt.version, "kind": rt.kind}])
}

/// The schema of one kind and its definition name, with the GVK extension kubectl looks for.
fn kind_schema(rt: &ResourceType) -> Option<(String, Value)> {
    match &rt.custom_schema {
        Some(cr) => {
            let mut s = cr.schema.clone();
            let obj = s.as_object_mut()?;
            let props = obj
                .entry("properties")
                .or_insert_with(|| json!({}))
                .as_object_mut()?;
            props.insert(
                "metadata".into(),
                json!({"allOf": [{"$ref": format!("{V3_REF}{OBJECT_META}")}],
                       "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}),
            );
            for (k, d) in [
                (
                    "apiVersion",
                    "APIVersion defines the versioned schema of this representation of an object.",
                ),
                (
                    "kind",
                    "Kind is a string value representing the REST resource this object represents.",
                ),
            ] {
                props
                    .entry(k)
                    .or_insert_with(|| json!({"type": "string", "description": d}));
            }
            obj.insert("x-kubernetes-group-version-kind".into(), gvk(rt));
            Some((custom_name(rt), s))
        }
        None => {
            let b = schema::builtin();
            let name = b
                .kinds
                .get(&format!("{}/{}/{}", rt.group, rt.version, rt.kind))?
                .as_str()?
                .to_string();
            let mut s = b.defs.get(&name)?.clone();
            s.as_object_mut()?
                .insert("x-kubernetes-group-version-kind".into(), gvk(rt));
            Some((name, s))
        }
    }
}

/// Definition names `v` refers to.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(name) = m
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(schema::ref_name)
            {
                out.push(name.to_string());
            }
            m.values().for_each(|c| refs(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
        _ => {}
    }
}

/// The kinds' schemas plus every definition they reach.
fn schemas(types: &[std::sync::Arc<ResourceType>]) -> Map<String, Value> {
    let defs = &schema::builtin().defs;
    let mut out = Map::new();
    let mut todo = Vec::new();
    for rt in types {
        if let Some((name, s)) = kind_schema(rt) {
            refs(&s, &mut todo);
            out.insert(name, s);
        }
    }
    let mut seen: BTreeSet<String> = out.keys().cloned().collect();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(d) = defs.get(&name) {
            refs(d, &mut todo);
            out.insert(name, d.clone());
        }
    }
    out
}

fn param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn write_params() -> Vec<Value> {
    vec![
        param(
            "dryRun",
            "When present, indicates that modifications should not be persisted.",
        ),
        param(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        param(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn (the default) and Strict.",
        ),
    ]
}

/// The operations of one resource, as the apiserver's route table publishes them.
fn paths(rt: &ResourceType, schema_ref: &str, paths: &mut Map<String, Value>) {
    let base = format!("/{}", gv_path(&rt.group, &rt.version));
    let collection = if rt.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", rt.plural)
    } else {
        format!("{base}/{}", rt.plural)
    };
    let item = format!("{collection}/{{name}}");
    let body = json!({"content": {"application/json": {"schema": {"$ref": schema_ref}}}});
    let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": schema_ref}}}}});
    let op = |action: &str, params: Vec<Value>| {
        let mut o = json!({
            "description": format!("{action} {}", rt.kind),
            "operationId": format!("{action}{}", rt.kind),
            "parameters": params,
            "responses": ok,
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        });
        if matches!(action, "post" | "put" | "patch") {
            o["requestBody"] = body.clone();
        }
        o
    };
    let mut patch_params = write_params();
    patch_params.push(param(
        "force",
        "Force is going to \"force\" Apply requests.",
    ));
    paths.insert(
        collection,
        json!({"get": op("list", vec![]), "post": op("post", write_params())}),
    );
    paths.insert(
        item,
        json!({
            "get": op("get", vec![]),
            "put": op("put", write_params()),
            "patch": op("patch", patch_params),
            "delete": op("delete", vec![param("dryRun", "When present, indicates that modifications should not be persisted.")]),
        }),
    );
}

/// One group version's OpenAPI 3.0 document.
fn gv_doc(inner: &Inner, group: &str, version: &str) -> Option<Value> {
    let types = served(inner)
        .into_iter()
        .find(|(g, v, _)| g == group && v == version)?
        .2;
    let mut p = Map::new();
    for rt in &types {
        if let Some((name, _)) = kind_schema(rt) {
            paths(rt, &format!("{V3_REF}{name}"), &mut p);
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{}.{}.0", discovery::MAJOR, discovery::MINOR)},
        "paths": p,
        "components": {"schemas": schemas(&types)},
    }))
}

/// Rewrites references for Swagger 2.0 and drops what 2.0 lacks.
fn to_v2(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref")
                && let Some(rest) = r.strip_prefix(V3_REF)
            {
                *r = format!("{V2_REF}{rest}");
            }
            if m.get("nullable").is_some_and(Value::is_boolean) {
                m.remove("nullable");
            }
            m.values_mut().for_each(to_v2);
        }
        Value::Array(a) => a.iter_mut().for_each(to_v2),
        _ => {}
    }
}

/// The single Swagger 2.0 document of everything served.
fn v2(inner: &Inner) -> Value {
    let all: Vec<_> = served(inner).into_iter().flat_map(|(_, _, t)| t).collect();
    let mut definitions = schemas(&all);
    let mut p = Map::new();
    for rt in &all {
        if let Some((name, _)) = kind_schema(rt) {
            paths(rt, &format!("{V2_REF}{name}"), &mut p);
        }
    }
    // Swagger 2.0 operations name their body and answer schemas directly.
    for ops in p.values_mut() {
        for op in ops.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
            let schema = op
                .pointer("/responses/200/content/application~1json/schema")
                .cloned()
                .unwrap_or_default();
            op["responses"] = json!({"200": {"description": "OK", "schema": schema}});
            if let Some(o) = op.as_object_mut()
                && o.remove("requestBody").is_some()
            {
                let params = o.entry("parameters").or_insert_with(|| json!([]));
                if let Some(a) = params.as_array_mut() {
                    a.push(
                        json!({"name": "body", "in": "body", "required": true, "schema": schema}),
                    );
                }
            }
            if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                for prm in params.iter_mut() {
                    if prm["in"] == "query"
                        && let Some(o) = prm.as_object_mut()
                    {
                        o.remove("schema");
                        o.insert("type".into(), json!("string"));
                        o.insert("uniqueItems".into(), json!(true));
                    }
                }
            }
        }
    }
    let mut doc = json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": format!("v{}.{}.0", discovery::MAJOR, discovery::MINOR)},
        "paths": p,
        "definitions": std::mem::take(&mut definitions),
    });
    to_v2(&mut doc);
    doc
}
