//! Deletes: DeleteOptions (body and query), preconditions, propagation policies turned into
//! the `foregroundDeletion`/`orphan` finalizers, graceful marking of objects that still have
//! finalizers, namespaces going `Terminating`, and deletecollection.
//!
//! Collecting dependents is the garbage collector's job (`controllers.rs`), as on a cluster.

use std::sync::Arc;

use serde_json::{Value, json};

use super::kinds::ResourceType;
use super::read::{list_body, object_key, render, selected, selectors};
use super::server::{Ctx, Reply, State};
use super::status::{ApiError, success_status};
use super::store::{ObjKey, Stored};
use super::validation::{Cause, go_quote};
use super::write::{dry_run_values, now};

/// How dependents of a deleted object are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// DeleteOptions, from the body and the query (the query wins where both are set).
#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteOptions {
    pub(crate) propagation: Option<Propagation>,
    pub(crate) uid: Option<String>,
    pub(crate) resource_version: Option<String>,
    pub(crate) dry_run: bool,
}

/// DeleteOptions as the delete handler reads them: from the body when there is one (the
/// query is then ignored), else from the query; then `ValidateDeleteOptions`.
pub(crate) fn delete_options(ctx: &Ctx<'_>) -> Result<DeleteOptions, ApiError> {
    let mut opts = DeleteOptions::default();
    let body = ctx.req.body.as_ref();
    let (policy, orphan, dry_run): (Option<String>, Option<bool>, Vec<String>) =
        if !body.iter().all(u8::is_ascii_whitespace) {
            let v: Value = serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
            })?;
            if !v.is_object() {
                return Err(ApiError::bad_request("DeleteOptions must be a JSON object"));
            }
            opts.uid = v
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(String::from);
            opts.resource_version = v
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(String::from);
            (
                v.get("propagationPolicy")
                    .and_then(Value::as_str)
                    .map(String::from),
                v.get("orphanDependents").and_then(Value::as_bool),
                v.get("dryRun")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        } else {
            let q = &ctx.req.query;
            (
                q.get("propagationPolicy").map(String::from),
                q.get("orphanDependents")
                    .map(|_| q.flag("orphanDependents")),
                q.all("dryRun").map(String::from).collect(),
            )
        };
    let mut causes = Vec::new();
    if orphan.is_some() && policy.is_some() {
        causes.push(Cause::invalid(
            "propagationPolicy",
            &go_quote(policy.as_deref().unwrap_or_default()),
            "orphanDependents and deletionPropagation cannot be both set",
        ));
    }
    opts.propagation = match policy.as_deref() {
        None => orphan.map(|o| {
            if o {
                Propagation::Orphan
            } else {
                Propagation::Background
            }
        }),
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some("Orphan") => Some(Propagation::Orphan),
        Some(other) => {
            causes.push(Cause::not_supported(
                "propagationPolicy",
                &go_quote(other),
                &["Foreground", "Background", "Orphan", "nil"],
            ));
            None
        }
    };
    match dry_run_values(&dry_run) {
        Ok(d) => opts.dry_run = d,
        Err(e) => causes.extend(e),
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid_kind(
            "meta.k8s.io",
            "DeleteOptions",
            "",
            &causes,
        ));
    }
    Ok(opts)
}

/// What a delete did.
#[derive(Debug)]
pub(crate) enum Deleted {
    /// Removed from storage; the object's last state.
    Gone(Arc<Stored>),
    /// Finalizers remain: marked with a deletionTimestamp (or already was).
    Marked(Arc<Stored>),
}

fn is_namespace(rt: &ResourceType) -> bool {
    rt.group.is_empty() && rt.plural == "namespaces"
}

/// Deletes one object by the apiserver's rules (shared by the API, deletecollection, the GC
/// and the namespace and CRD controllers).
pub(crate) fn delete_object(
    state: &mut State,
    rt: &ResourceType,
    key: &ObjKey,
    opts: &DeleteOptions,
) -> Result<Deleted, ApiError> {
    let gr = rt.group_resource();
    let name = key.1.as_str();
    let old = state
        .store
        .get(&gr, key)
        .ok_or_else(|| ApiError::not_found(rt, name))?;
    if let Some(uid) = &opts.uid {
        let actual = old.uid().unwrap_or_default();
        if uid != actual {
            return Err(ApiError::conflict_with(
                rt,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(rv) = &opts.resource_version
        && *rv != old.rv.to_string()
    {
        return Err(ApiError::conflict_with(
            rt,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                old.rv
            ),
        ));
    }
    let mut new = old.value.clone();
    let mut finalizers: Vec<String> = new
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    // The propagation policy is recorded as a finalizer for the garbage collector.
    let has = |f: &Vec<String>, x: &str| f.iter().any(|y| y == x);
    match opts.propagation {
        Some(Propagation::Foreground) => {
            finalizers.retain(|f| f != "orphan");
            if !has(&finalizers, "foregroundDeletion") {
                finalizers.push("foregroundDeletion".into());
            }
        }
        Some(Propagation::Orphan) => {
            finalizers.retain(|f| f != "foregroundDeletion");
            if !has(&finalizers, "orphan") {
                finalizers.push("orphan".into());
            }
        }
        Some(Propagation::Background) => {
            finalizers.retain(|f| f != "orphan" && f != "foregroundDeletion");
        }
        None => {}
    }
    let spec_finalizers = is_namespace(rt)
        && new
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
    if finalizers.is_empty() && !spec_finalizers {
        if opts.dry_run {
            return Ok(Deleted::Gone(old));
        }
        let w = state
            .store
            .remove(&gr, key)
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        return Ok(Deleted::Gone(w.event.object.clone()));
    }
    let already = new.pointer("/metadata/deletionTimestamp").is_some();
    let meta = new["metadata"]
        .as_object_mut()
        .ok_or_else(|| ApiError::internal("stored object has no metadata"))?;
    meta.insert("finalizers".into(), json!(finalizers));
    if !already {
        meta.insert("deletionTimestamp".into(), json!(now()));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        if let Some(g) = meta.get("generation").and_then(Value::as_i64) {
            meta.insert("generation".into(), json!(g + 1));
        }
    }
    if meta
        .get("finalizers")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        meta.remove("finalizers");
    }
    if is_namespace(rt) {
        new["status"]["phase"] = json!("Terminating");
    }
    if new == old.value {
        return Ok(Deleted::Marked(old));
    }
    if opts.dry_run {
        return Ok(Deleted::Marked(Arc::new(Stored::new(new, old.rv))));
    }
    Ok(Deleted::Marked(
        state.store.put(&gr, key.clone(), new).event.object.clone(),
    ))
}

pub(crate) fn delete(ctx: &Ctx<'_>, name: &str) -> Result<Reply, ApiError> {
    let opts = delete_options(ctx)?;
    let mut state = ctx.inner.state.lock();
    match delete_object(&mut state, ctx.rt, &object_key(ctx, name), &opts)? {
        Deleted::Gone(obj) if !ctx.rt.delete_returns_object => {
            Ok(Reply::json(200, &success_status(ctx.rt, name, obj.uid())))
        }
        Deleted::Gone(obj) | Deleted::Marked(obj) => {
            Ok(Reply::bytes(200, render(&obj, ctx.rt, ctx.wants)))
        }
    }
}

pub(crate) fn delete_collection(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    // Like create, deletecollection of a namespaced kind is only routed under a namespace.
    if (ctx.rt.namespaced && ctx.namespace.is_none()) || !ctx.rt.supports_delete_collection() {
        return Err(ApiError::method_not_allowed());
    }
    let opts = delete_options(ctx)?;
    let (labels, fields) = selectors(&ctx.req.query, ctx.rt)?;
    let mut state = ctx.inner.state.lock();
    let gr = ctx.rt.group_resource();
    let keys: Vec<ObjKey> = state
        .store
        .resource_ref(&gr)
        .map(|rs| {
            rs.objects()
                .iter()
                .filter(|(k, _)| ctx.namespace.is_none_or(|ns| ns == k.0))
                .filter(|(_, o)| selected(&o.value, ctx.rt, &labels, &fields))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    let mut items = Vec::with_capacity(keys.len());
    for key in keys {
        match delete_object(&mut state, ctx.rt, &key, &opts) {
            Ok(Deleted::Gone(o) | Deleted::Marked(o)) => items.push(render(&o, ctx.rt, ctx.wants)),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let rv = state.store.revision();
    drop(state);
    let (kind, api_version) = match ctx.wants {
        super::request::Wants::Metadata => (
            "PartialObjectMetadataList".to_string(),
            "meta.k8s.io/v1".to_string(),
        ),
        _ => (ctx.rt.list_kind.clone(), ctx.rt.api_version()),
    };
    Ok(Reply::bytes(
        200,
        list_body(
            &kind,
            &api_version,
            &json!({"resourceVersion": rv.to_string()}),
            &items,
        ),
    ))
}
