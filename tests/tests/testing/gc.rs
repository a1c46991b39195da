//! Garbage collection: background, foreground and orphan propagation, owners that never
//! existed, several owners, and the envtest-like mode where nothing is collected.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use windlass::testing::{ApiServer, Config};

use super::support::*;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

fn owned_by(name: &str, owners: &[&ConfigMap], block: bool) -> ConfigMap {
    let mut c = cm(name);
    c.metadata.owner_references = Some(
        owners
            .iter()
            .map(|o| OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: o.name_any(),
                uid: o.uid().unwrap(),
                block_owner_deletion: block.then_some(true),
                controller: None,
            })
            .collect(),
    );
    c
}

async fn owner_and_dependent(
    server: &ApiServer,
    block: bool,
) -> (Api<ConfigMap>, ConfigMap, ConfigMap) {
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let owner = api
        .create(&PostParams::default(), &cm("owner"))
        .await
        .unwrap();
    let dependent = api
        .create(
            &PostParams::default(),
            &owned_by("dependent", &[&owner], block),
        )
        .await
        .unwrap();
    (api, owner, dependent)
}

/// Collects watch events as (type, name) until `name` is DELETED.
async fn until_deleted(w: &mut RawWatch, name: &str) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    for _ in 0..50 {
        let e = w.next_named().await;
        let done = e.0 == "DELETED" && e.1 == name;
        seen.push(e);
        if done {
            return seen;
        }
    }
    panic!("{name} was never deleted: {seen:?}");
}

#[tokio::test]
async fn background_deletion_collects_dependents_after_the_owner_is_gone() {
    let server = ApiServer::new();
    let (api, _, _) = owner_and_dependent(&server, false).await;
    let from = rv_of(&server);
    let mut w = RawWatch::start(
        &server.client(),
        &format!("{CMS}?watch=true&resourceVersion={from}"),
    )
    .await;
    api.delete("owner", &DeleteParams::default()).await.unwrap();
    let seen = until_deleted(&mut w, "dependent").await;
    assert_eq!(
        seen,
        [
            ("DELETED".to_string(), "owner".to_string()),
            ("DELETED".into(), "dependent".into())
        ]
    );
    assert!(api.get_opt("dependent").await.unwrap().is_none());
}

#[tokio::test]
async fn foreground_deletion_removes_blocking_dependents_before_the_owner() {
    let server = ApiServer::new();
    let (api, _, _) = owner_and_dependent(&server, true).await;
    let from = rv_of(&server);
    let mut w = RawWatch::start(
        &server.client(),
        &format!("{CMS}?watch=true&resourceVersion={from}"),
    )
    .await;
    let marked = api
        .delete("owner", &DeleteParams::foreground())
        .await
        .unwrap()
        .left()
        .expect("the owner waits");
    assert_eq!(marked.finalizers(), ["foregroundDeletion"]);
    assert!(marked.metadata.deletion_timestamp.is_some());
    let seen = until_deleted(&mut w, "owner").await;
    // Removing the last finalizer deletes the owner outright: no MODIFIED in between.
    assert_eq!(
        seen,
        [
            ("MODIFIED".to_string(), "owner".to_string()),
            ("DELETED".into(), "dependent".into()),
            ("DELETED".into(), "owner".into()),
        ]
    );
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_without_the_owner_reference() {
    let server = ApiServer::new();
    let (api, _, _) = owner_and_dependent(&server, true).await;
    let from = rv_of(&server);
    let mut w = RawWatch::start(
        &server.client(),
        &format!("{CMS}?watch=true&resourceVersion={from}"),
    )
    .await;
    let marked = api
        .delete("owner", &DeleteParams::orphan())
        .await
        .unwrap()
        .left()
        .expect("the owner waits");
    assert_eq!(marked.finalizers(), ["orphan"]);
    until_deleted(&mut w, "owner").await;
    let dependent = api.get("dependent").await.unwrap();
    assert_eq!(dependent.metadata.owner_references, None);
}

#[tokio::test]
async fn a_dependent_with_another_live_owner_survives_and_loses_only_the_dead_reference() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let a = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let b = api.create(&PostParams::default(), &cm("b")).await.unwrap();
    api.create(
        &PostParams::default(),
        &owned_by("dependent", &[&a, &b], false),
    )
    .await
    .unwrap();
    let from = rv_of(&server);
    let mut w = RawWatch::start(
        &server.client(),
        &format!("{CMS}?watch=true&resourceVersion={from}&fieldSelector=metadata.name%3Ddependent"),
    )
    .await;
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let e = w.next().await;
    assert_eq!(event_type(&e), "MODIFIED");
    let refs: Vec<&str> = e["object"]["metadata"]["ownerReferences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["b"]);
    assert!(api.get_opt("dependent").await.unwrap().is_some());
}

#[tokio::test]
async fn a_dependent_whose_owner_never_existed_is_collected() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let from = rv_of(&server);
    let mut w = RawWatch::start(
        &server.client(),
        &format!("{CMS}?watch=true&resourceVersion={from}"),
    )
    .await;
    let mut ghost = cm("ghost");
    ghost.metadata.uid = Some("6a3f0000-0000-4000-8000-000000000000".into());
    api.create(
        &PostParams::default(),
        &owned_by("orphaned", &[&ghost], false),
    )
    .await
    .unwrap();
    let seen = until_deleted(&mut w, "orphaned").await;
    assert_eq!(
        seen,
        [
            ("ADDED".to_string(), "orphaned".to_string()),
            ("DELETED".into(), "orphaned".into())
        ]
    );
}

#[tokio::test]
async fn without_garbage_collection_nothing_is_collected_and_propagation_finalizers_stay() {
    let server = ApiServer::with_config(Config::default().garbage_collection(false));
    let (api, _, _) = owner_and_dependent(&server, true).await;
    api.delete("owner", &DeleteParams::default()).await.unwrap();
    let dependent = api.get("dependent").await.unwrap();
    assert_eq!(
        dependent.metadata.owner_references.unwrap()[0].name,
        "owner"
    );
    let second = api
        .create(&PostParams::default(), &cm("second"))
        .await
        .unwrap();
    api.create(
        &PostParams::default(),
        &owned_by("second-dependent", &[&second], true),
    )
    .await
    .unwrap();
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..Default::default()
    };
    api.delete("second", &dp).await.unwrap();
    // The background controllers handle changes in order: once a CRD installed now is
    // established, they have seen both deletions.
    gadgets(&server.client()).await;
    let second = api.get("second").await.unwrap();
    assert_eq!(
        second.finalizers(),
        ["foregroundDeletion"],
        "the owner waits forever, as under envtest"
    );
    assert!(api.get_opt("second-dependent").await.unwrap().is_some());
}
