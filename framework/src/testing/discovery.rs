//! Discovery: `/version`, legacy discovery (`/api`, `/apis`, `/apis/{g}`, group versions) and
//! aggregated discovery (`apidiscovery.k8s.io/v2`), computed from what is being served now, so
//! an established CRD appears and a deleted one disappears.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use super::kinds::{ResourceType, api_version};
use super::request::Wants;
use super::server::{Inner, Reply};
use super::status::ApiError;

/// The Kubernetes version the server reports.
pub(crate) const MAJOR: &str = "1";
pub(crate) const MINOR: &str = "34";

pub(crate) fn version() -> Value {
    json!({
        "major": MAJOR,
        "minor": MINOR,
        "gitVersion": format!("v{MAJOR}.{MINOR}.0-windlass"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

pub(crate) fn core_versions(inner: &Inner, wants: Wants) -> Result<Reply, ApiError> {
    if wants == Wants::AggregatedDiscovery {
        let groups: Vec<Value> = aggregated(inner, |g| g.is_empty());
        return Ok(aggregated_reply(groups));
    }
    Ok(Reply::json(
        200,
        &json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
        }),
    ))
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": api_version(name, v), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

pub(crate) fn groups(inner: &Inner, wants: Wants) -> Result<Reply, ApiError> {
    if wants == Wants::AggregatedDiscovery {
        return Ok(aggregated_reply(aggregated(inner, |g| !g.is_empty())));
    }
    let state = inner.state.lock();
    let groups: Vec<Value> = state
        .registry
        .groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    Ok(Reply::json(
        200,
        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
    ))
}

pub(crate) fn group(inner: &Inner, name: &str) -> Result<Reply, ApiError> {
    let state = inner.state.lock();
    match state
        .registry
        .groups()
        .iter()
        .find(|(g, _)| g == name && !g.is_empty())
    {
        Some((g, vs)) => {
            let mut body = group_json(g, vs);
            body["kind"] = json!("APIGroup");
            body["apiVersion"] = json!("v1");
            Ok(Reply::json(200, &body))
        }
        None => Ok(Reply::page_not_found()),
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

pub(crate) fn resource_list(inner: &Inner, group: &str, version: &str) -> Result<Reply, ApiError> {
    let state = inner.state.lock();
    if !state.registry.serves_group_version(group, version) {
        return Ok(Reply::page_not_found());
    }
    let mut resources = Vec::new();
    for rt in state.registry.resources(group, version) {
        let mut main = json!({
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": rt.verbs(),
        });
        if !rt.short_names.is_empty() {
            main["shortNames"] = json!(rt.short_names);
        }
        if !rt.categories.is_empty() {
            main["categories"] = json!(rt.categories);
        }
        resources.push(main);
        for (sub, kind, extra) in subresources(&rt) {
            let mut s = json!({
                "name": format!("{}/{sub}", rt.plural),
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": kind,
                "verbs": sorted(vec!["get".into(), "patch".into(), "update".into()]),
            });
            if let Some((g, v)) = extra {
                s["group"] = json!(g);
                s["version"] = json!(v);
            }
            resources.push(s);
        }
    }
    Ok(Reply::json(
        200,
        &json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": api_version(group, version),
            "resources": resources,
        }),
    ))
}

/// (subresource, kind, Some((group, version)) when the kind is from another group).
fn subresources(
    rt: &ResourceType,
) -> Vec<(&'static str, String, Option<(&'static str, &'static str)>)> {
    let mut out = Vec::new();
    if rt.plural == "namespaces" && rt.group.is_empty() {
        out.push(("finalize", rt.kind.clone(), None));
    }
    if rt.scale.is_some() {
        out.push(("scale", "Scale".to_string(), Some(("autoscaling", "v1"))));
    }
    if rt.status_subresource {
        out.push(("status", rt.kind.clone(), None));
    }
    out
}

fn aggregated(inner: &Inner, include: impl Fn(&str) -> bool) -> Vec<Value> {
    let state = inner.state.lock();
    state
        .registry
        .groups()
        .into_iter()
        .filter(|(g, _)| include(g))
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = state
                        .registry
                        .resources(&g, v)
                        .iter()
                        .map(resource_discovery)
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": vs})
        })
        .collect()
}

fn resource_discovery(rt: &Arc<ResourceType>) -> Value {
    let mut r = json!({
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": if rt.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": rt.singular,
        "verbs": rt.verbs(),
    });
    if !rt.short_names.is_empty() {
        r["shortNames"] = json!(rt.short_names);
    }
    if !rt.categories.is_empty() {
        r["categories"] = json!(rt.categories);
    }
    let subs: Vec<Value> = subresources(rt)
        .into_iter()
        .map(|(sub, kind, extra)| {
            let (g, v) = match extra {
                Some((g, v)) => (g.to_string(), v.to_string()),
                None => (rt.group.clone(), rt.version.clone()),
            };
            json!({
                "subresource": sub,
                "responseKind": {"group": g, "version": v, "kind": kind},
                "verbs": ["get", "patch", "update"],
            })
        })
        .collect();
    if !subs.is_empty() {
        r["subresources"] = json!(subs);
    }
    r
}

fn aggregated_reply(items: Vec<Value>) -> Reply {
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    });
    Reply::Json {
        code: 200,
        body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
        content_type: AGGREGATED_CONTENT_TYPE,
    }
}
