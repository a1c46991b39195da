//! The background work a cluster does after a write, run as one task per server and driven by
//! every committed change, the way controllers are driven by informers:
//!
//! - the apiextensions controllers: a new CRD gets `NamesAccepted`, then `Established` (each a
//!   separate write), and only then are its resources served; a deleted CRD first loses all its
//!   custom resources, then its cleanup finalizer, then its endpoints;
//! - the garbage collector (switchable): dependents whose owners are gone are deleted,
//!   `foregroundDeletion` waits for blocking dependents, `orphan` strips owner references;
//! - the namespace controller (with the GC switch): a terminating namespace is emptied, then
//!   removed.
//!
//! Every step is idempotent and re-derived from stored state, so the order in which changes
//! arrive does not matter and the work converges.

use std::sync::{Arc, Weak};

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

use super::crd::{self, CLEANUP_FINALIZER};
use super::delete::{DeleteOptions, Deleted, Propagation, delete_object};
use super::kinds::{GroupResource, ResourceType};
use super::server::{Inner, State};
use super::store::{Event, EventType, ObjKey, owner_uids};
use super::write::{commit_update, now, prepare_update};

const APIEXTENSIONS: &str = "apiextensions.k8s.io";
const CONTROLLER_MANAGER: &str = "kube-controller-manager";

pub(crate) async fn run(
    inner: Weak<Inner>,
    mut changes: UnboundedReceiver<(GroupResource, Arc<Event>)>,
) {
    // Ends when the server is dropped: the sender lives in its store.
    while let Some((gr, event)) = changes.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        let gc = inner.settings().garbage_collection;
        let mut state = inner.state.lock();
        react(&mut state, gc, &gr, &event);
    }
}

fn is_crds(gr: &GroupResource) -> bool {
    gr.group == APIEXTENSIONS && gr.resource == "customresourcedefinitions"
}

fn type_of(state: &State, gr: &GroupResource) -> Option<Arc<ResourceType>> {
    state.registry.storage_type(gr)
}

fn react(state: &mut State, gc: bool, gr: &GroupResource, event: &Event) {
    if is_crds(gr) {
        sync_crd(state, &event.key.1);
    } else if event.kind == EventType::Deleted && type_of(state, gr).is_some_and(|t| t.custom) {
        // A custom resource of a terminating CRD went away: the CRD may be done cleaning up.
        sync_crd(state, &format!("{}.{}", gr.resource, gr.group));
    }
    if !gc {
        return;
    }
    let obj = &event.object.value;
    match event.kind {
        EventType::Deleted => {
            if let Some(uid) = event.object.uid() {
                for (dgr, dkey) in state.store.dependents_of(uid) {
                    collect(state, &dgr, &dkey);
                }
            }
            // Owners deleting in the foreground may have been waiting for this dependent.
            for owner in owner_uids(obj) {
                if let Some((ogr, okey)) = state.store.by_uid(&owner) {
                    finish_owner(state, &ogr, &okey);
                }
            }
            if !event.key.0.is_empty() {
                sync_namespace(state, &event.key.0);
            }
        }
        EventType::Added | EventType::Modified => {
            if !owner_uids(obj).is_empty() {
                collect(state, gr, &event.key);
            }
            if obj.pointer("/metadata/deletionTimestamp").is_some() {
                finish_owner(state, gr, &event.key);
                if gr.group.is_empty() && gr.resource == "namespaces" {
                    sync_namespace(state, &event.key.1);
                }
            }
        }
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `new` over the stored object as an internal controller would (Update semantics).
fn write(
    state: &mut State,
    gr: &GroupResource,
    key: &ObjKey,
    sub: Option<&str>,
    manager: &str,
    new: Value,
) {
    let Some(rt) = type_of(state, gr) else { return };
    let Some(old) = state.store.get(gr, key) else {
        return;
    };
    if let Ok(prepared) = prepare_update(&rt, &old.value, new, sub, Some(manager)) {
        let _ = commit_update(state, &rt, key, &old, prepared, false);
    }
}

fn delete(state: &mut State, gr: &GroupResource, key: &ObjKey, propagation: Propagation) {
    let Some(rt) = type_of(state, gr) else { return };
    let opts = DeleteOptions {
        propagation: Some(propagation),
        ..Default::default()
    };
    let _ = delete_object(state, &rt, key, &opts);
}

/// The garbage collector's verdict on one dependent.
fn collect(state: &mut State, gr: &GroupResource, key: &ObjKey) {
    let Some(obj) = state.store.get(gr, key) else {
        return;
    };
    let refs = obj
        .value
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if refs.is_empty() {
        return;
    }
    let mut alive = 0;
    let mut dangling = Vec::new();
    let mut waiting = Vec::new();
    for r in &refs {
        let uid = r["uid"].as_str().unwrap_or_default();
        match state
            .store
            .by_uid(uid)
            .and_then(|(ogr, okey)| state.store.get(&ogr, &okey))
        {
            None => dangling.push(uid.to_string()),
            Some(owner) => {
                let deleting = owner.value.pointer("/metadata/deletionTimestamp").is_some();
                if deleting
                    && finalizers(&owner.value)
                        .iter()
                        .any(|f| f == "foregroundDeletion")
                {
                    waiting.push(uid.to_string());
                } else {
                    alive += 1;
                }
            }
        }
    }
    if alive > 0 {
        // Some owner still stands: only the references to owners that are gone are dropped.
        if !dangling.is_empty() || !waiting.is_empty() {
            let mut new = obj.value.clone();
            let kept: Vec<Value> = refs
                .into_iter()
                .filter(|r| {
                    let uid = r["uid"].as_str().unwrap_or_default();
                    !dangling.iter().any(|d| d == uid) && !waiting.iter().any(|w| w == uid)
                })
                .collect();
            new["metadata"]["ownerReferences"] = json!(kept);
            write(state, gr, key, None, CONTROLLER_MANAGER, new);
        }
        return;
    }
    if obj.value.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let has_dependents = obj
        .uid()
        .is_some_and(|u| !state.store.dependents_of(u).is_empty());
    let policy = if !waiting.is_empty() && has_dependents {
        Propagation::Foreground
    } else {
        Propagation::Background
    };
    delete(state, gr, key, policy);
}

/// Completes `foregroundDeletion` and `orphan` for an owner being deleted.
fn finish_owner(state: &mut State, gr: &GroupResource, key: &ObjKey) {
    let Some(owner) = state.store.get(gr, key) else {
        return;
    };
    if owner.value.pointer("/metadata/deletionTimestamp").is_none() {
        return;
    }
    let Some(uid) = owner.uid().map(String::from) else {
        return;
    };
    let fins = finalizers(&owner.value);
    if fins.iter().any(|f| f == "orphan") {
        for (dgr, dkey) in state.store.dependents_of(&uid) {
            if let Some(dep) = state.store.get(&dgr, &dkey) {
                let mut new = dep.value.clone();
                let refs: Vec<Value> = new["metadata"]["ownerReferences"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|r| r["uid"] != uid.as_str())
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                new["metadata"]["ownerReferences"] = json!(refs);
                write(state, &dgr, &dkey, None, CONTROLLER_MANAGER, new);
            }
        }
        remove_finalizer(state, gr, key, "orphan");
    } else if fins.iter().any(|f| f == "foregroundDeletion") {
        let dependents = state.store.dependents_of(&uid);
        for (dgr, dkey) in &dependents {
            collect(state, dgr, dkey);
        }
        // Only dependents that block their owner's deletion keep it waiting.
        let blocking = state
            .store
            .dependents_of(&uid)
            .into_iter()
            .any(|(dgr, dkey)| {
                state.store.get(&dgr, &dkey).is_some_and(|d| {
                    d.value["metadata"]["ownerReferences"]
                        .as_array()
                        .is_some_and(|a| {
                            a.iter().any(|r| {
                                r["uid"] == uid.as_str() && r["blockOwnerDeletion"] == true
                            })
                        })
                })
            });
        if !blocking {
            remove_finalizer(state, gr, key, "foregroundDeletion");
        }
    }
}

fn remove_finalizer(state: &mut State, gr: &GroupResource, key: &ObjKey, finalizer: &str) {
    let Some(obj) = state.store.get(gr, key) else {
        return;
    };
    let mut new = obj.value.clone();
    let kept: Vec<String> = finalizers(&obj.value)
        .into_iter()
        .filter(|f| f != finalizer)
        .collect();
    new["metadata"]["finalizers"] = json!(kept);
    write(state, gr, key, None, CONTROLLER_MANAGER, new);
}

/// Empties a terminating namespace, then lets it go.
fn sync_namespace(state: &mut State, name: &str) {
    let ns_gr = GroupResource {
        group: String::new(),
        resource: "namespaces".into(),
    };
    let ns_key = (String::new(), name.to_string());
    let Some(ns) = state.store.get(&ns_gr, &ns_key) else {
        return;
    };
    if ns.value.pointer("/metadata/deletionTimestamp").is_none() {
        return;
    }
    let mut remaining = 0;
    for gr in state.registry.group_resources() {
        if !type_of(state, &gr).is_some_and(|t| t.namespaced) {
            continue;
        }
        let keys: Vec<ObjKey> = state
            .store
            .resource_ref(&gr)
            .map(|rs| {
                rs.objects()
                    .keys()
                    .filter(|k| k.0 == name)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for key in keys {
            delete(state, &gr, &key, Propagation::Background);
            if state.store.get(&gr, &key).is_some() {
                remaining += 1;
            }
        }
    }
    if remaining == 0 {
        let mut new = ns.value.clone();
        new["spec"]["finalizers"] = json!([]);
        write(
            state,
            &ns_gr,
            &ns_key,
            Some("finalize"),
            "kube-controller-manager",
            new,
        );
    }
}

fn condition(kind: &str, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": "True", "lastTransitionTime": now(), "reason": reason, "message": message})
}

/// Drives one CRD through its lifecycle.
fn sync_crd(state: &mut State, name: &str) {
    let crds = GroupResource {
        group: APIEXTENSIONS.into(),
        resource: "customresourcedefinitions".into(),
    };
    let key = (String::new(), name.to_string());
    let Some(gr) = crd::group_resource_of_name(name) else {
        return;
    };
    let Some(stored) = state.store.get(&crds, &key) else {
        // Gone: stop serving its resources.
        state.registry.remove(&gr);
        state.store.drop_resource(&gr);
        return;
    };
    let obj = stored.value.clone();
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        if !crd::condition_true(&obj, "Terminating") {
            let mut new = obj.clone();
            push_condition(
                &mut new,
                condition(
                    "Terminating",
                    "InstanceDeletionInProgress",
                    "CustomResource deletion is in progress",
                ),
            );
            write(state, &crds, &key, Some("status"), "kube-apiserver", new);
        }
        if state.registry.storage_type(&gr).is_some() {
            let keys: Vec<ObjKey> = state
                .store
                .resource_ref(&gr)
                .map(|rs| rs.objects().keys().cloned().collect())
                .unwrap_or_default();
            for k in &keys {
                if let Some(rt) = type_of(state, &gr) {
                    let _: Option<Deleted> =
                        delete_object(state, &rt, k, &DeleteOptions::default()).ok();
                }
            }
        }
        let left = state.store.resource_ref(&gr).map_or(0, |rs| rs.len());
        if left == 0 && finalizers(&obj).iter().any(|f| f == CLEANUP_FINALIZER) {
            remove_finalizer(state, &crds, &key, CLEANUP_FINALIZER);
        }
        return;
    }
    let accepted = crd::accepted_names(&obj);
    if !crd::condition_true(&obj, "NamesAccepted")
        || obj.pointer("/status/acceptedNames") != Some(&accepted)
    {
        let mut new = obj.clone();
        new["status"]["acceptedNames"] = accepted;
        push_condition(
            &mut new,
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
        );
        if !crd::condition_true(&obj, "Established") {
            // The naming controller reports the CRD as installing until it is established.
            let mut installing = condition(
                "Established",
                "Installing",
                "the initial names have been accepted",
            );
            installing["status"] = json!("False");
            push_condition(&mut new, installing);
        }
        write(state, &crds, &key, Some("status"), "kube-apiserver", new);
        return;
    }
    if !crd::condition_true(&obj, "Established") {
        let mut new = obj.clone();
        push_condition(
            &mut new,
            condition(
                "Established",
                "InitialNamesAccepted",
                "the initial names have been accepted",
            ),
        );
        register(state, &gr, &obj);
        write(state, &crds, &key, Some("status"), "kube-apiserver", new);
        return;
    }
    // Established and possibly edited (versions served, subresources): serve what it says now.
    register(state, &gr, &obj);
    let storage = obj
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| vs.iter().find(|v| v["storage"] == true))
        .and_then(|v| v["name"].as_str())
        .map(String::from);
    if let Some(storage) = storage {
        let stored_versions = obj
            .pointer("/status/storedVersions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !stored_versions.iter().any(|v| v == storage.as_str()) {
            let mut new = obj.clone();
            let mut sv = stored_versions;
            sv.push(json!(storage));
            new["status"]["storedVersions"] = json!(sv);
            write(state, &crds, &key, Some("status"), "kube-apiserver", new);
        }
    }
}

fn register(state: &mut State, gr: &GroupResource, crd_obj: &Value) {
    state.registry.remove(gr);
    for rt in crd::types_for(crd_obj) {
        state.registry.insert(rt);
    }
}

fn push_condition(crd_obj: &mut Value, cond: Value) {
    if !crd_obj["status"].is_object() {
        crd_obj["status"] = json!({});
    }
    let mut conds = crd_obj["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    conds.retain(|c| c["type"] != cond["type"]);
    conds.push(cond);
    crd_obj["status"]["conditions"] = json!(conds);
}
