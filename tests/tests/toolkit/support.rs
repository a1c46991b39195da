//! Shared fixtures: a custom resource with conditions, a running manager, request counting
//! and bounded waits.

#![allow(dead_code)]

use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, PostParams};
use kube::runtime::conditions;
use kube::runtime::wait::await_condition;
use kube::{CustomResourceExt, Resource};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::task::JoinHandle;
use windlass::CustomResource;
use windlass::manager::{Config, Manager, ManagerError, ShutdownHandle};
use windlass::testing::{ApiServer, RequestRecord, Verb};

/// How long any single wait may take before the test fails (instant under a paused clock
/// once nothing else can happen).
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// A pet shop's pet: a custom resource with a status subresource holding conditions.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[windlass(
    group = "toolkit.windlass.rs",
    version = "v1",
    kind = "Pet",
    namespaced
)]
#[windlass(status = PetStatus)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PetSpec {
    /// What it eats.
    pub(crate) food: String,
    /// How many meals a day.
    pub(crate) meals: i32,
}

/// What the operator last saw of a pet.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PetStatus {
    /// The pet's conditions (`Fed`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) conditions: Vec<Condition>,
    /// Meals served today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) meals_served: Option<i32>,
}

pub(crate) fn pet(name: &str, food: &str, meals: i32) -> Pet {
    Pet::new(
        name,
        PetSpec {
            food: food.into(),
            meals,
        },
    )
}

/// Creates `crd` and waits until it is Established.
pub(crate) async fn install(client: &kube::Client, crd: &CustomResourceDefinition) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), crd)
        .await
        .expect("the CRD is accepted");
    let name = crd.metadata.name.clone().unwrap();
    tokio::time::timeout(
        WAIT,
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .expect("the CRD is established in time")
    .expect("waiting for the CRD works");
}

/// A server with the Pet CRD installed, and the Pet API in `default`.
pub(crate) async fn pet_server() -> (ApiServer, Api<Pet>) {
    let server = ApiServer::new();
    install(&server.client(), &Pet::crd()).await;
    let pets = Api::namespaced(server.client(), "default");
    (server, pets)
}

/// A manager running in a task, with a way to stop it.
pub(crate) struct Running {
    pub(crate) shutdown: ShutdownHandle,
    pub(crate) task: JoinHandle<Result<(), ManagerError>>,
}

impl Running {
    /// Starts `manager.run()` in a task.
    pub(crate) fn start(manager: Manager) -> Self {
        let shutdown = manager.shutdown_handle();
        Running {
            shutdown,
            task: tokio::spawn(manager.run()),
        }
    }

    /// Shuts the manager down and returns what `run()` returned.
    pub(crate) async fn stop(self) -> Result<(), ManagerError> {
        self.shutdown.shutdown();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the manager stops within the wait limit")
            .expect("the manager's task does not panic")
    }
}

/// A manager that does not listen for signals.
pub(crate) fn manager(client: kube::Client) -> Manager {
    Manager::with_config(client, Config::default().handle_signals(false))
}

/// Waits (bounded) until the object `name` satisfies `cond` (`None`: it does not exist).
pub(crate) async fn until<K, F>(api: &Api<K>, name: &str, what: &str, cond: F)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    F: Fn(Option<&K>) -> bool,
{
    tokio::time::timeout(
        WAIT,
        await_condition(api.clone(), name, move |o: Option<&K>| cond(o)),
    )
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"))
    .expect("waiting works");
}

/// Waits (bounded) until the object `name` with `uid` is gone.
pub(crate) async fn until_deleted<K>(api: &Api<K>, name: &str, uid: &str)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    tokio::time::timeout(
        WAIT,
        await_condition(api.clone(), name, conditions::is_deleted(uid)),
    )
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {name} is deleted"))
    .expect("waiting works");
}

/// The requests the server has seen for `resource` (a plural, with `/status` for the status
/// subresource) with `verb`.
pub(crate) fn requests(server: &ApiServer, resource: &str, verb: Verb) -> Vec<RequestRecord> {
    let (plural, status) = match resource.split_once('/') {
        Some((plural, _)) => (plural, true),
        None => (resource, false),
    };
    server
        .requests()
        .into_iter()
        .filter(|r| {
            r.resource.as_deref() == Some(plural)
                && r.verb == Some(verb)
                && r.path.ends_with("/status") == status
        })
        .collect()
}

/// How many requests of each verb the server has seen for `resource`, in the order `get`,
/// `create`, `update`, `patch`.
pub(crate) fn writes(server: &ApiServer, resource: &str) -> (usize, usize, usize, usize) {
    (
        requests(server, resource, Verb::Get).len(),
        requests(server, resource, Verb::Create).len(),
        requests(server, resource, Verb::Update).len(),
        requests(server, resource, Verb::Patch).len(),
    )
}

/// A ConfigMap named `name` in `default` with `data`.
pub(crate) fn configmap(
    name: &str,
    data: &[(&str, &str)],
) -> k8s_openapi::api::core::v1::ConfigMap {
    let data: serde_json::Map<String, serde_json::Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": data,
    }))
    .unwrap()
}
