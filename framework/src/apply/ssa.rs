//! Server-side apply helpers that skip the request when the field manager already owns
//! exactly the desired state.

use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::create_or_update::Operation;
use super::error::WriteError;
use super::managed::owns_exactly;
use crate::object::Object;

/// Metadata members a client must not send in an apply configuration (or that the API
/// server sets itself and never records as owned).
const SERVER_METADATA: [&str; 8] = [
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

fn kube_error<K: Object>(
    action: &'static str,
    name: &str,
) -> impl FnOnce(kube::Error) -> WriteError {
    let name = name.to_string();
    move |source| WriteError::Api {
        action,
        kind: K::KIND,
        name,
        source,
    }
}

fn encode<K: Object>(value: &impl Serialize, name: &str) -> Result<Value, WriteError> {
    serde_json::to_value(value).map_err(|source| WriteError::Encode {
        kind: K::KIND,
        name: name.to_string(),
        source,
    })
}

/// `desired` without the metadata the server sets (an apply configuration must not carry it).
fn without_server_metadata(mut desired: Value) -> Value {
    if let Some(Value::Object(meta)) = desired.get_mut("metadata") {
        for key in SERVER_METADATA {
            meta.remove(key);
        }
    }
    desired
}

/// What of an apply configuration the API server records as owned: everything but
/// `apiVersion`, `kind`, and the name and namespace that identify the object.
fn owned_part(body: &Value) -> Map<String, Value> {
    let mut owned = body.as_object().cloned().unwrap_or_default();
    owned.remove("apiVersion");
    owned.remove("kind");
    if let Some(Value::Object(meta)) = owned.get_mut("metadata") {
        meta.remove("name");
        meta.remove("namespace");
        meta.retain(|_, v| !v.is_null());
        if meta.is_empty() {
            owned.remove("metadata");
        }
    }
    owned
}

/// Whether applying `desired` as `field_manager` (to `subresource`, `None` for the object
/// itself, `Some("status")` for its status) would change `live` at all. `false` when
/// `field_manager` already owns exactly the fields `desired` sets (an earlier apply of the
/// same fields) and `live` has `desired`'s values in them; `true` otherwise, including when
/// unsure. `live` must have its `managedFields` (objects from the API server do; cached ones
/// do not, unless the informer keeps them).
pub fn needs_apply<K: Object>(
    live: &K,
    desired: &Value,
    field_manager: &str,
    subresource: Option<&str>,
) -> bool {
    let Some(managed) = live.meta().managed_fields.as_ref() else {
        return true;
    };
    let entry = managed.iter().find(|m| {
        m.manager.as_deref() == Some(field_manager)
            && m.operation.as_deref() == Some("Apply")
            && m.subresource.as_deref().filter(|s| !s.is_empty()) == subresource
    });
    let Some(fields) = entry.and_then(|e| e.fields_v1.as_ref()) else {
        return true;
    };
    let Ok(live) = serde_json::to_value(live) else {
        return true;
    };
    let owned = owned_part(&without_server_metadata(desired.clone()));
    !owns_exactly(&owned, &fields.0, &live)
}

/// Server-side applies `desired` as `field_manager`, forcing ownership of the fields it sets
/// (as controllers should: they are the authority on those fields), unless the manager
/// already owns exactly those fields with those values: then no write is sent.
///
/// Reads the live object first (one GET); sends the apply (one PATCH) only when
/// [`needs_apply`] says so. Returns the object as stored and what happened:
/// [`Operation::Created`], [`Operation::Updated`] or [`Operation::Unchanged`]. Its `status`
/// is not applied: use [`apply_status`].
///
/// `desired` should set only the fields the controller owns; unset optional fields are left
/// out by k8s-openapi's types and by derived custom resources with `Option` fields.
///
/// # Errors
///
/// [`WriteError::MissingName`] if `desired` has no name; [`WriteError::Api`] if a request
/// fails.
pub async fn apply<K: Object>(
    api: &Api<K>,
    desired: &K,
    field_manager: &str,
) -> Result<(K, Operation), WriteError> {
    let name = desired
        .meta()
        .name
        .clone()
        .ok_or(WriteError::MissingName { kind: K::KIND })?;
    let mut body = without_server_metadata(encode::<K>(desired, &name)?);
    // The status is not the object's to apply: the API server would ignore it (kinds with a
    // status subresource) or record it as owned through the wrong endpoint.
    if let Some(obj) = body.as_object_mut() {
        obj.remove("status");
    }
    let live = api
        .get_opt(&name)
        .await
        .map_err(kube_error::<K>("reading", &name))?;
    let operation = match &live {
        Some(live) if !needs_apply(live, &body, field_manager, None) => {
            return Ok((live.clone(), Operation::Unchanged));
        }
        Some(_) => Operation::Updated,
        None => Operation::Created,
    };
    let stored = api
        .patch(
            &name,
            &PatchParams::apply(field_manager).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(kube_error::<K>("applying", &name))?;
    Ok((stored, operation))
}

/// Server-side applies `status` as the status of the object `name`, through the `status`
/// subresource, as `field_manager` (forcing ownership), unless the manager already owns
/// exactly those status fields with those values.
///
/// Reads the live object first (one GET); sends the apply only when needed. Returns the
/// object as stored and [`Operation::UpdatedStatusOnly`] or [`Operation::Unchanged`].
///
/// # Errors
///
/// [`WriteError::Api`] if a request fails (a 404 when the object does not exist).
pub async fn apply_status<K: Object, S: Serialize>(
    api: &Api<K>,
    name: &str,
    status: &S,
    field_manager: &str,
) -> Result<(K, Operation), WriteError> {
    let body = json!({
        "apiVersion": K::API_VERSION,
        "kind": K::KIND,
        "metadata": {"name": name},
        "status": encode::<K>(status, name)?,
    });
    let live = api
        .get_opt(name)
        .await
        .map_err(kube_error::<K>("reading", name))?;
    if let Some(live) = &live
        && !needs_apply(live, &body, field_manager, Some("status"))
    {
        return Ok((live.clone(), Operation::Unchanged));
    }
    let stored = api
        .patch_status(
            name,
            &PatchParams::apply(field_manager).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(kube_error::<K>("applying the status of", name))?;
    Ok((stored, Operation::UpdatedStatusOnly))
}
