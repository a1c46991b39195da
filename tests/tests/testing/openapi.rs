//! `/openapi/v2`, `/openapi/v3` and `Table` output: what kubectl reads to validate, explain
//! and print.

use http::{Method, Request};
use kube::api::PostParams;
use serde_json::json;
use windlass::testing::ApiServer;

use super::support::*;

#[tokio::test]
async fn the_v3_index_lists_every_group_version_with_a_hash() {
    let server = ApiServer::new();
    let client = server.client();
    let index = get(&client, "/openapi/v3").await.json();
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("apps/v1 is listed");
    assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="), "{url}");
    assert!(index["paths"]["api/v1"].is_object());
    assert!(index["paths"].get("apis/example.com/v1").is_none());
    // A CRD's group version appears once it is established, and the hash of a document
    // changes with its content.
    widgets(&client).await;
    let index = get(&client, "/openapi/v3").await.json();
    assert!(index["paths"]["apis/example.com/v1"].is_object());
}

#[tokio::test]
async fn a_v3_document_has_the_kinds_schemas_and_a_patch_that_takes_field_validation() {
    let server = ApiServer::new();
    let client = server.client();
    let doc = get(&client, "/openapi/v3/apis/apps/v1").await.json();
    assert_eq!(doc["openapi"], "3.0.0");
    let deployment = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deployment["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
    );
    assert!(
        doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]["x-kubernetes-patch-merge-key"]
            == "name"
    );
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
    );
}

#[tokio::test]
async fn a_crds_schema_is_published_with_object_meta_for_metadata() {
    let server = ApiServer::new();
    let client = server.client();
    let yaml = include_str!("../../golden/widget.yaml");
    let crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_saphyr::from_str(yaml.trim_start_matches("---\n")).unwrap();
    install(&client, &crd).await;
    let doc = get(&client, "/openapi/v3/apis/example.com/v1").await.json();
    let widget = &doc["components"]["schemas"]["com.example.v1.Widget"];
    assert_eq!(
        widget["properties"]["spec"]["properties"]["size"]["description"],
        "How many widgets."
    );
    assert_eq!(
        widget["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert!(
        doc["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object()
    );
}

#[tokio::test]
async fn the_v2_document_is_swagger_with_definitions() {
    let server = ApiServer::new();
    let client = server.client();
    let doc = get(&client, "/openapi/v2").await.json();
    assert_eq!(doc["swagger"], "2.0");
    let cm = &doc["definitions"]["io.k8s.api.core.v1.ConfigMap"];
    assert_eq!(
        cm["x-kubernetes-group-version-kind"][0]["kind"],
        "ConfigMap"
    );
    assert_eq!(
        cm["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    // Protobuf only: not served here.
    let req = Request::builder()
        .uri("/openapi/v2")
        .header(
            "accept",
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        )
        .body(Vec::new())
        .unwrap();
    assert_eq!(send(&client, req).await.status, 406);
}

#[tokio::test]
async fn custom_resources_list_as_tables_with_their_printer_columns() {
    let server = ApiServer::new();
    let client = server.client();
    let yaml = include_str!("../../golden/widget.yaml");
    let crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_saphyr::from_str(yaml.trim_start_matches("---\n")).unwrap();
    install(&client, &crd).await;
    let widgets: kube::Api<kube::core::DynamicObject> =
        kube::Api::namespaced_with(client.clone(), "default", &widget_resource("v1"));
    widgets
        .create(
            &PostParams::default(),
            &widget("w", json!({"size": 3, "color": "red"})),
        )
        .await
        .unwrap();
    let req = Request::builder()
        .method(Method::GET)
        .uri("/apis/example.com/v1/namespaces/default/widgets")
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Vec::new())
        .unwrap();
    let table = send(&client, req).await.json();
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    let names: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Name", "Size", "Ready"]);
    assert_eq!(table["columnDefinitions"][2]["priority"], 1);
    assert_eq!(table["rows"][0]["cells"], json!(["w", 3, null]));
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    // Built-in kinds fall back to plain JSON, as the Accept header allows.
    let req = Request::builder()
        .uri("/api/v1/namespaces/default/configmaps")
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Vec::new())
        .unwrap();
    assert_eq!(send(&client, req).await.json()["kind"], "ConfigMapList");
}
