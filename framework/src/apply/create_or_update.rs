//! [`create_or_update`] and [`create_or_patch`]: read, mutate, write only what changed.

use std::fmt;

use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::Value;

use super::error::{BoxError, WriteError};
use super::merge;
use crate::object::Object;

/// What [`create_or_update`] or [`create_or_patch`] did (controller-runtime's
/// `OperationResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// The object did not exist and was created.
    Created,
    /// The object existed and was changed (not its status).
    Updated,
    /// The object and its status were changed.
    UpdatedStatus,
    /// Only the object's status was changed.
    UpdatedStatusOnly,
    /// Nothing needed changing, and nothing was written.
    Unchanged,
}

impl Operation {
    /// Whether anything was written.
    pub fn changed(self) -> bool {
        self != Operation::Unchanged
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Created => "created",
            Operation::Updated => "updated",
            Operation::UpdatedStatus => "updatedStatus",
            Operation::UpdatedStatusOnly => "updatedStatusOnly",
            Operation::Unchanged => "unchanged",
        })
    }
}

fn name_of<K: Object>(obj: &K) -> Result<String, WriteError> {
    obj.meta()
        .name
        .clone()
        .ok_or(WriteError::MissingName { kind: K::KIND })
}

fn key_of<K: Object>(obj: &K) -> String {
    let m = obj.meta();
    format!(
        "{}/{}",
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default()
    )
}

fn to_json<K: Object>(obj: &K, name: &str) -> Result<Value, WriteError> {
    serde_json::to_value(obj).map_err(|source| WriteError::Encode {
        kind: K::KIND,
        name: name.to_string(),
        source,
    })
}

fn api_error<K: Object>(
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

/// Runs `mutate` on `obj`, refusing a change of name or namespace.
fn run_mutate<K: Object>(
    obj: &mut K,
    name: &str,
    mutate: impl FnOnce(&mut K) -> Result<(), BoxError>,
) -> Result<(), WriteError> {
    let before = key_of(obj);
    mutate(obj).map_err(|source| WriteError::Mutate {
        kind: K::KIND,
        name: name.to_string(),
        source,
    })?;
    let after = key_of(obj);
    if before != after {
        return Err(WriteError::KeyChanged {
            kind: K::KIND,
            before,
            after,
        });
    }
    Ok(())
}

/// Makes the object named like `obj` look the way `mutate` says, replacing it whole
/// (controller-runtime's `CreateOrUpdate`).
///
/// Reads the object named `obj.metadata.name` through `api` (one GET). If it exists, `obj`
/// becomes the stored object and `mutate` runs on it; if nothing changed, nothing is
/// written ([`Operation::Unchanged`]); otherwise the object is replaced (a PUT carrying the
/// resourceVersion read, so a concurrent change is a 409 Conflict rather than lost; see
/// [`retry_on_conflict`](super::retry_on_conflict)). If it does not exist, `mutate` runs on
/// `obj` as given and the result is created. Either way `obj` ends as the API server
/// returned it.
///
/// `mutate` should set the fields the controller cares about, one by one, not replace whole
/// structs: fields the API server defaults (a Deployment's `strategy`, a container's
/// `imagePullPolicy`) would otherwise be cleared each time, and every call would write. The
/// status is not written (use [`create_or_patch`]).
///
/// # Errors
///
/// [`WriteError::MissingName`] if `obj` has no name; [`WriteError::Mutate`] if `mutate`
/// fails (nothing is written); [`WriteError::KeyChanged`] if it renames the object;
/// [`WriteError::Api`] if a request fails.
///
/// # Example
///
/// ```no_run
/// use std::collections::BTreeMap;
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kube::api::Api;
/// use windlass::apply::{create_or_update, Operation};
///
/// # async fn doc(client: kube::Client) -> Result<(), windlass::apply::WriteError> {
/// let api: Api<ConfigMap> = Api::namespaced(client, "default");
/// let mut cm = ConfigMap::default();
/// cm.metadata.name = Some("settings".into());
/// let op = create_or_update(&api, &mut cm, |cm| {
///     cm.data.get_or_insert_with(BTreeMap::new).insert("mode".into(), "fast".into());
///     Ok(())
/// })
/// .await?;
/// println!("settings {op}");
/// # Ok(())
/// # }
/// ```
pub async fn create_or_update<K, F>(
    api: &Api<K>,
    obj: &mut K,
    mutate: F,
) -> Result<Operation, WriteError>
where
    K: Object,
    F: FnOnce(&mut K) -> Result<(), BoxError>,
{
    let name = name_of(obj)?;
    let Some(existing) = fetch(api, &name).await? else {
        run_mutate(obj, &name, mutate)?;
        *obj = api
            .create(&PostParams::default(), obj)
            .await
            .map_err(api_error::<K>("creating", &name))?;
        return Ok(Operation::Created);
    };
    *obj = existing;
    let before = to_json(obj, &name)?;
    run_mutate(obj, &name, mutate)?;
    let after = to_json(obj, &name)?;
    if merge::same(&before, &after) {
        return Ok(Operation::Unchanged);
    }
    *obj = api
        .replace(&name, &PostParams::default(), obj)
        .await
        .map_err(api_error::<K>("updating", &name))?;
    Ok(Operation::Updated)
}

/// The object named `name`, if it exists.
async fn fetch<K: Object>(api: &Api<K>, name: &str) -> Result<Option<K>, WriteError> {
    api.get_opt(name)
        .await
        .map_err(api_error::<K>("reading", name))
}

/// Splits an object's JSON into everything but the status, and the status.
fn split_status(mut value: Value) -> (Value, Value) {
    let status = value
        .as_object_mut()
        .and_then(|m| m.remove("status"))
        .unwrap_or(Value::Null);
    (value, status)
}

/// Makes the object named like `obj` look the way `mutate` says, patching only what changed,
/// status included (controller-runtime's `CreateOrPatch`).
///
/// Like [`create_or_update`], but writes JSON merge patches of the changed fields instead of
/// the whole object: one to the object if anything but its status changed, and one to its
/// `status` subresource if the status changed. Merge patches carry no resourceVersion, so they
/// do not conflict with concurrent writers of other fields (lists are replaced whole, though).
/// When the object is created, a status set by `mutate` is written right after (the API server
/// ignores the status of a create for kinds with a status subresource).
///
/// Returns [`Operation::Updated`], [`Operation::UpdatedStatusOnly`] or
/// [`Operation::UpdatedStatus`] (both) depending on what was written, and
/// [`Operation::Unchanged`] when nothing was.
///
/// # Errors
///
/// As [`create_or_update`]. A status change on a kind without a status subresource fails
/// with a 404 from the API server.
pub async fn create_or_patch<K, F>(
    api: &Api<K>,
    obj: &mut K,
    mutate: F,
) -> Result<Operation, WriteError>
where
    K: Object,
    F: FnOnce(&mut K) -> Result<(), BoxError>,
{
    let name = name_of(obj)?;
    let Some(existing) = fetch(api, &name).await? else {
        run_mutate(obj, &name, mutate)?;
        let (_, desired_status) = split_status(to_json(obj, &name)?);
        *obj = api
            .create(&PostParams::default(), obj)
            .await
            .map_err(api_error::<K>("creating", &name))?;
        let (_, stored_status) = split_status(to_json(obj, &name)?);
        if let Some(patch) = merge::diff(&stored_status, &desired_status) {
            *obj = patch_status(api, &name, patch).await?;
        }
        return Ok(Operation::Created);
    };
    *obj = existing;
    let (before, before_status) = split_status(to_json(obj, &name)?);
    run_mutate(obj, &name, mutate)?;
    let (after, after_status) = split_status(to_json(obj, &name)?);
    let object_patch = merge::diff(&before, &after);
    let status_patch = merge::diff(&before_status, &after_status);
    if let Some(patch) = &object_patch {
        *obj = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(api_error::<K>("patching", &name))?;
    }
    if let Some(patch) = status_patch.clone() {
        *obj = patch_status(api, &name, patch).await?;
    }
    Ok(match (object_patch.is_some(), status_patch.is_some()) {
        (false, false) => Operation::Unchanged,
        (true, false) => Operation::Updated,
        (false, true) => Operation::UpdatedStatusOnly,
        (true, true) => Operation::UpdatedStatus,
    })
}

async fn patch_status<K: Object>(api: &Api<K>, name: &str, status: Value) -> Result<K, WriteError> {
    let patch = serde_json::json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(api_error::<K>("patching the status of", name))
}
