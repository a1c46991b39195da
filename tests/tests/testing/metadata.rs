//! Metadata-only requests: PartialObjectMetadata(List) for get, list, watch and kube's
//! `metadata_watcher`, and how other `as=` representations are negotiated.

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use windlass::testing::ApiServer;

use super::support::*;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

async fn with_one(server: &ApiServer) -> Api<ConfigMap> {
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &labeled_cm("x", &[("app", "web")]))
        .await
        .unwrap();
    api
}

async fn get_as(client: &kube::Client, uri: &str, accept: &str) -> Raw {
    let req = http::Request::builder()
        .uri(uri)
        .header("accept", accept)
        .body(Vec::new())
        .unwrap();
    send(client, req).await
}

#[tokio::test]
async fn get_metadata_answers_a_partial_object_metadata() {
    let server = ApiServer::new();
    let api = with_one(&server).await;
    let meta = api.get_metadata("x").await.unwrap();
    assert_eq!(meta.name_any(), "x");
    assert_eq!(meta.labels()["app"], "web");
    let types = meta.types.unwrap();
    assert_eq!(
        (types.api_version.as_str(), types.kind.as_str()),
        ("meta.k8s.io/v1", "PartialObjectMetadata")
    );
    let raw = get_as(
        &server.client(),
        &format!("{CMS}/x"),
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    )
    .await
    .json();
    assert!(raw.get("data").is_none(), "only metadata: {raw}");
    assert_eq!(raw["metadata"]["name"], "x");
}

#[tokio::test]
async fn list_metadata_answers_a_partial_object_metadata_list() {
    let server = ApiServer::new();
    let api = with_one(&server).await;
    let list = api.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(
        list.items.iter().map(|m| m.name_any()).collect::<Vec<_>>(),
        ["x"]
    );
    let raw = get_as(
        &server.client(),
        CMS,
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    )
    .await
    .json();
    assert_eq!(
        (raw["kind"].as_str(), raw["apiVersion"].as_str()),
        (Some("PartialObjectMetadataList"), Some("meta.k8s.io/v1"))
    );
    assert_eq!(raw["items"][0]["kind"], "PartialObjectMetadata");
    assert!(raw["items"][0].get("data").is_none());
    assert_eq!(raw["metadata"]["resourceVersion"], rv_of(&server));
}

#[tokio::test]
async fn watch_metadata_streams_partial_object_metadata_events() {
    let server = ApiServer::new();
    let api = with_one(&server).await;
    let stream = api
        .watch_metadata(&WatchParams::default(), "0")
        .await
        .unwrap();
    futures::pin_mut!(stream);
    match next_item(&mut stream).await.unwrap() {
        WatchEvent::Added(m) => {
            assert_eq!(m.name_any(), "x");
            assert_eq!(m.types.unwrap().kind, "PartialObjectMetadata");
        }
        other => panic!("expected ADDED, got {other:?}"),
    }
    match next_item(&mut stream).await.unwrap() {
        WatchEvent::Bookmark(b) => {
            assert_eq!(b.types.kind, "PartialObjectMetadata");
            assert_eq!(
                b.metadata
                    .annotations
                    .get("k8s.io/initial-events-end")
                    .map(String::as_str),
                Some("true")
            );
        }
        other => panic!("expected the initial-events-end bookmark, got {other:?}"),
    }
    api.create(&PostParams::default(), &cm("y")).await.unwrap();
    match next_item(&mut stream).await.unwrap() {
        WatchEvent::Added(m) => assert_eq!(m.name_any(), "y"),
        other => panic!("expected ADDED, got {other:?}"),
    }
}

#[tokio::test]
async fn a_watcher_over_partial_object_metadata_sees_objects_and_changes() {
    let server = ApiServer::new();
    let api = with_one(&server).await;
    let meta: Api<PartialObjectMeta<ConfigMap>> = Api::namespaced(server.client(), "default");
    for config in [
        watcher::Config::default(),
        watcher::Config::default().streaming_lists(),
    ] {
        let stream = watcher(meta.clone(), config).applied_objects().boxed();
        futures::pin_mut!(stream);
        assert_eq!(next_item(&mut stream).await.unwrap().name_any(), "x");
        api.create(&PostParams::default(), &cm("z")).await.unwrap();
        let z = next_item(&mut stream).await.unwrap();
        assert_eq!(z.name_any(), "z");
        assert_eq!(z.types.unwrap().api_version, "meta.k8s.io/v1");
        api.delete("z", &Default::default()).await.unwrap();
    }
}

/// kube 5 deprecates `metadata_watcher` for the form above, but it still works.
#[allow(deprecated)]
#[tokio::test]
async fn kube_metadata_watcher_sees_objects_and_changes() {
    let server = ApiServer::new();
    let api = with_one(&server).await;
    let stream = kube::runtime::metadata_watcher(api.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    futures::pin_mut!(stream);
    assert_eq!(next_item(&mut stream).await.unwrap().name_any(), "x");
    api.create(&PostParams::default(), &cm("z")).await.unwrap();
    let z = next_item(&mut stream).await.unwrap();
    assert_eq!(z.name_any(), "z");
    assert_eq!(z.types.unwrap().kind, "PartialObjectMetadata");
}

#[tokio::test]
async fn an_unsupported_representation_falls_back_to_json_only_when_the_client_accepts_it() {
    let server = ApiServer::new();
    let client = server.client();
    with_one(&server).await;
    let table = "application/json;as=Table;v=v1;g=meta.k8s.io";
    let res = get_as(&client, CMS, &format!("{table},application/json")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["kind"], "ConfigMapList");
    let res = get_as(&client, CMS, table).await;
    res.assert_status(406, "NotAcceptable");
}
