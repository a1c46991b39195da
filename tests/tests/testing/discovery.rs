//! Discovery: `/version`, legacy discovery documents, aggregated discovery, and kube's
//! `Discovery` resolving built-ins through both.

use kube::core::GroupVersionKind;
use kube::discovery::{Scope, verbs};
use serde_json::{Value, json};
use windlass::testing::ApiServer;

use super::support::*;

const AGGREGATED: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";

fn resource<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} is listed"))
}

#[tokio::test]
async fn version_reports_a_kubernetes_version() {
    let server = ApiServer::new();
    let info = server.client().apiserver_version().await.unwrap();
    assert_eq!(info.major, "1");
    assert!(
        info.minor
            .parse::<u32>()
            .is_ok_and(|m| (33..=37).contains(&m)),
        "{}",
        info.minor
    );
    assert!(
        info.git_version.starts_with(&format!("v1.{}.", info.minor)),
        "{}",
        info.git_version
    );
    assert!(!info.platform.is_empty());
}

#[tokio::test]
async fn api_lists_the_core_versions() {
    let server = ApiServer::new();
    let body = get(&server.client(), "/api").await.json();
    assert_eq!(body["kind"], "APIVersions");
    assert_eq!(body["versions"], json!(["v1"]));
}

#[tokio::test]
async fn apis_lists_every_group_with_its_preferred_version() {
    let server = ApiServer::new();
    let client = server.client();
    let body = get(&client, "/apis").await.json();
    assert_eq!(
        (body["kind"].as_str(), body["apiVersion"].as_str()),
        (Some("APIGroupList"), Some("v1"))
    );
    let apps = body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "apps")
        .expect("apps");
    let v1 = json!({"groupVersion": "apps/v1", "version": "v1"});
    assert_eq!(apps["versions"], json!([v1]));
    assert_eq!(apps["preferredVersion"], v1);
    assert!(
        body["groups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["name"] != ""),
        "the core group is not a named group"
    );
    let group = get(&client, "/apis/apps").await.json();
    assert_eq!(
        (group["kind"].as_str(), group["apiVersion"].as_str()),
        (Some("APIGroup"), Some("v1"))
    );
    assert_eq!(group["name"], "apps");
    assert_eq!(group["preferredVersion"], v1);
}

#[tokio::test]
async fn a_group_version_lists_its_resources_and_subresources() {
    let server = ApiServer::new();
    let client = server.client();
    let core = get(&client, "/api/v1").await.json();
    assert_eq!(
        (core["kind"].as_str(), core["groupVersion"].as_str()),
        (Some("APIResourceList"), Some("v1"))
    );
    let cms = resource(&core, "configmaps");
    assert_eq!(cms["singularName"], "configmap");
    assert_eq!(cms["namespaced"], true);
    assert_eq!(cms["kind"], "ConfigMap");
    assert_eq!(
        cms["verbs"],
        json!([
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch"
        ])
    );
    assert_eq!(cms["shortNames"], json!(["cm"]));
    let pod_status = resource(&core, "pods/status");
    assert_eq!(pod_status["kind"], "Pod");
    assert_eq!(pod_status["verbs"], json!(["get", "patch", "update"]));
    let namespaces = resource(&core, "namespaces");
    assert_eq!(namespaces["namespaced"], false);
    assert_eq!(
        namespaces["verbs"],
        json!([
            "create", "delete", "get", "list", "patch", "update", "watch"
        ])
    );
    let apps = get(&client, "/apis/apps/v1").await.json();
    let deploys = resource(&apps, "deployments");
    assert_eq!(deploys["shortNames"], json!(["deploy"]));
    assert_eq!(deploys["categories"], json!(["all"]));
    let scale = resource(&apps, "deployments/scale");
    assert_eq!(
        (
            scale["group"].as_str(),
            scale["version"].as_str(),
            scale["kind"].as_str()
        ),
        (Some("autoscaling"), Some("v1"), Some("Scale"))
    );
    assert_eq!(scale["verbs"], json!(["get", "patch", "update"]));
}

#[tokio::test]
async fn an_unknown_group_or_version_is_a_plain_404() {
    let server = ApiServer::new();
    let client = server.client();
    for path in [
        "/apis/nope.example.com",
        "/apis/apps/v2",
        "/api/v2",
        "/apis/nope.example.com/v1",
    ] {
        let res = get(&client, path).await;
        assert_eq!(
            (res.status.as_u16(), res.text()),
            (404, "404 page not found\n".to_string()),
            "{path}"
        );
    }
}

#[tokio::test]
async fn aggregated_discovery_answers_in_its_own_content_type() {
    let server = ApiServer::new();
    let client = server.client();
    let req = http::Request::builder()
        .uri("/apis")
        .header("accept", AGGREGATED)
        .body(Vec::new())
        .unwrap();
    let res = send(&client, req).await;
    assert_eq!(
        res.header("content-type"),
        Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    );
    let body = res.json();
    assert_eq!(
        (body["kind"].as_str(), body["apiVersion"].as_str()),
        (
            Some("APIGroupDiscoveryList"),
            Some("apidiscovery.k8s.io/v2")
        )
    );
    let apps = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "apps")
        .expect("apps");
    let v1 = &apps["versions"][0];
    assert_eq!(v1["version"], "v1");
    let deploys = v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "deployments")
        .expect("deployments");
    assert_eq!(deploys["scope"], "Namespaced");
    assert_eq!(
        deploys["responseKind"],
        json!({"group": "apps", "version": "v1", "kind": "Deployment"})
    );
    let subs: Vec<&str> = deploys["subresources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subresource"].as_str().unwrap())
        .collect();
    assert_eq!(subs, ["scale", "status"]);
    // The same request without the aggregated type gets the legacy document.
    let legacy = get(&client, "/apis").await;
    assert_eq!(legacy.header("content-type"), Some("application/json"));
    assert_eq!(legacy.json()["kind"], "APIGroupList");
}

#[tokio::test]
async fn kube_discovery_resolves_built_ins_through_legacy_and_aggregated_discovery() {
    let server = ApiServer::new();
    let client = server.client();
    for discovery in [
        kube::Discovery::new(client.clone()).run().await.unwrap(),
        kube::Discovery::new(client.clone())
            .run_aggregated()
            .await
            .unwrap(),
    ] {
        let (ar, caps) = discovery
            .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
            .expect("deployments");
        assert_eq!(ar.plural, "deployments");
        assert_eq!(caps.scope, Scope::Namespaced);
        assert!(caps.supports_operation(verbs::PATCH));
        let (ar, caps) = discovery
            .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Namespace"))
            .expect("namespaces");
        assert_eq!(ar.plural, "namespaces");
        assert_eq!(caps.scope, Scope::Cluster);
        assert!(discovery.has_group("coordination.k8s.io"));
        assert!(discovery.has_group("apiextensions.k8s.io"));
    }
}
