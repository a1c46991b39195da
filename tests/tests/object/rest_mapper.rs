//! A `RestMapper` reading the test API server's discovery.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, PostParams};
use kube::core::{GroupVersionKind, GroupVersionResource};
use kube::runtime::{conditions, wait::await_condition};
use windlass::object::{Object, RestMapper, RestMapperError, Scheme, Scope};
use windlass::testing::ApiServer;

use crate::derive::specs::{Shape, Widget};

async fn install(client: &kube::Client, crd: &CustomResourceDefinition) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), crd).await.unwrap();
    let name = crd.metadata.name.clone().unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .unwrap()
    .unwrap();
}

#[tokio::test]
async fn kinds_missing_from_the_scheme_are_mapped_through_discovery() {
    let server = ApiServer::new();
    let client = server.client();
    install(&client, &Widget::crd()).await;
    install(&client, &Shape::crd()).await;
    let mapper = RestMapper::with_discovery(&Scheme::new(), client);

    let widget = mapper.rest_mapping(&Widget::type_gvk()).await.unwrap();
    assert_eq!(
        widget.resource,
        GroupVersionResource::gvr("example.com", "v1", "widgets")
    );
    assert_eq!(widget.scope, Scope::Namespaced);
    let shape = mapper.rest_mapping(&Shape::type_gvk()).await.unwrap();
    assert_eq!(shape.scope, Scope::Cluster);
    let cm = mapper.rest_mapping(&ConfigMap::type_gvk()).await.unwrap();
    assert_eq!(cm.resource.resource, "configmaps");

    let kind = mapper
        .kind_for(&GroupVersionResource::gvr(
            "shapes.example.com",
            "v1",
            "shapes",
        ))
        .await
        .unwrap();
    assert_eq!(kind, Shape::type_gvk());
}

#[tokio::test]
async fn an_unknown_kind_is_no_match_and_found_once_its_crd_is_installed() {
    let server = ApiServer::new();
    let client = server.client();
    let mapper = RestMapper::with_discovery(&Scheme::new(), client.clone());

    let err = mapper.rest_mapping(&Widget::type_gvk()).await.unwrap_err();
    assert!(matches!(err, RestMapperError::NoKindMatch(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "no matches for kind \"Widget\" in version \"example.com/v1\""
    );
    let err = mapper
        .rest_mapping(&GroupVersionKind::gvk("", "v1", "Nonsense"))
        .await
        .unwrap_err();
    assert!(matches!(err, RestMapperError::NoKindMatch(_)), "{err:?}");

    install(&client, &Widget::crd()).await;
    let widget = mapper.rest_mapping(&Widget::type_gvk()).await.unwrap();
    assert_eq!(widget.resource.resource, "widgets");
}

#[tokio::test]
async fn kinds_in_the_scheme_need_no_discovery() {
    let server = ApiServer::new();
    let mut scheme = Scheme::new();
    scheme.register::<Widget>().unwrap();
    // The CRD is not installed: the mapping comes from the scheme alone.
    let mapper = RestMapper::with_discovery(&scheme, server.client());
    let widget = mapper.rest_mapping(&Widget::type_gvk()).await.unwrap();
    assert_eq!(widget.api_resource().plural, "widgets");
}

#[tokio::test]
async fn discovery_answers_are_cached_until_reset() {
    let server = ApiServer::new();
    let client = server.client();
    install(&client, &Widget::crd()).await;
    let mapper = RestMapper::with_discovery(&Scheme::new(), client);
    mapper.rest_mapping(&Widget::type_gvk()).await.unwrap();

    // With the server unreachable, the cached answer still serves, also to clones.
    server.faults().disconnect();
    let widget = mapper
        .clone()
        .rest_mapping(&Widget::type_gvk())
        .await
        .unwrap();
    assert_eq!(widget.resource.resource, "widgets");

    mapper.reset();
    let err = mapper.rest_mapping(&Widget::type_gvk()).await.unwrap_err();
    assert!(matches!(err, RestMapperError::Discovery(_)), "{err:?}");
}
