//! RBAC and deploy manifests generated from the declared controllers: the golden install
//! YAML, what the roles allow, and the test server accepting every manifest.
//!
//! Regenerate the golden file with `UPDATE_GOLDEN=1 cargo test -p windlass-tests --test
//! integration toolkit::deploy` and review the diff: it is what users `kubectl apply`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::pinned_kind;
use kube::runtime::{conditions, wait::await_condition};
use windlass::controller::{Action, Context, Controller, reconciler_fn};
use windlass::deploy::{Config, DeployError, Manifests};
use windlass::informer::{InformerConfig, ObjectKey};
use windlass::leader::LeaderElectionConfig;
use windlass::manager::Manager;
use windlass::rbac::{self, Permission, Rules};
use windlass::testing::ApiServer;

use super::support::{Pet, WAIT, manager};

mod pets {
    use std::sync::Arc;

    use windlass::controller::{Action, Context, Reconciler};
    use windlass::finalizer::{Cleanup, CleanupStatus};

    use super::Pet;

    /// A pet controller with cleanup.
    pub(super) struct Pets;

    #[windlass::async_trait]
    impl Reconciler for Pets {
        type Object = Pet;
        type Error = kube::Error;
        async fn reconcile(&self, _: Arc<Pet>, _: &Context<Pet>) -> Result<Action, kube::Error> {
            Ok(Action::await_change())
        }
    }

    #[windlass::async_trait]
    impl Cleanup for Pets {
        async fn cleanup(
            &self,
            _: Arc<Pet>,
            _: &Context<Pet>,
        ) -> Result<CleanupStatus, kube::Error> {
            Ok(CleanupStatus::Done)
        }
    }
}

fn noop<K>() -> impl windlass::controller::Reconciler<Object = K>
where
    K: windlass::informer::Cacheable,
    K::DynamicType: Default,
{
    reconciler_fn(|_: Arc<K>, _: Context<K>| async { Ok::<_, kube::Error>(Action::await_change()) })
}

/// An operator with a cluster-wide Pet controller (cleanup, owned Deployments, watched
/// Secrets, events) and a ConfigMap controller in `team-a` (no events, one extra rule).
fn operator(client: kube::Client) -> Manager {
    let pets = Controller::new(pets::Pets)
        .with_cleanup()
        .owns::<Deployment>()
        .watches::<Secret, _>(|_: &Secret| Vec::<ObjectKey>::new());
    let mut registry = rbac::rule("", &["secrets"], &["get"]);
    registry.resource_names = Some(vec!["registry".into()]);
    let configs = Controller::new(noop::<ConfigMap>())
        .informer(InformerConfig::default().namespace("team-a"))
        .record_events(false)
        .permission(Permission::namespaced("team-a", registry));
    manager(client).add(pets).add(configs)
}

fn config() -> Config {
    Config::new("pet-operator", "ghcr.io/windlass-rs/pet-operator:0.1.0")
        .leader_election(true)
        .replicas(2)
        .crd::<Pet>()
        .env("RUST_LOG", "info")
}

#[tokio::test]
async fn the_install_yaml_matches_the_golden_file() {
    let server = ApiServer::new();
    let yaml = operator(server.client())
        .manifests(&config())
        .unwrap()
        .to_yaml()
        .unwrap();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/install.yaml");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &yaml).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing; run with UPDATE_GOLDEN=1 to write it",
            path.display()
        )
    });
    assert!(
        expected == yaml,
        "the install YAML differs from {}; if the change is intended, run with UPDATE_GOLDEN=1 \
         and review the diff\n--- generated:\n{yaml}",
        path.display()
    );
}

fn rules_of(manifests: &Manifests) -> Rules {
    Rules {
        cluster: manifests
            .cluster_role
            .as_ref()
            .and_then(|r| r.rules.clone())
            .unwrap_or_default(),
        namespaced: manifests
            .roles
            .iter()
            .map(|r| {
                (
                    r.metadata.namespace.clone().unwrap(),
                    r.rules.clone().unwrap_or_default(),
                )
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

#[tokio::test]
async fn the_roles_allow_what_each_controller_declared_and_nothing_more() {
    let server = ApiServer::new();
    let manifests = operator(server.client()).manifests(&config()).unwrap();
    let rules = rules_of(&manifests);
    let group = "toolkit.windlass.rs";
    let allowed = [
        // The Pet controller, everywhere: its kind, with the finalizer patch and status.
        ("watch", group, "pets", None),
        ("patch", group, "pets", None),
        ("update", group, "pets/status", None),
        ("update", group, "pets/finalizers", None),
        // Its children, and what it watches.
        ("create", "apps", "deployments", None),
        ("delete", "apps", "deployments", None),
        ("list", "", "secrets", None),
        // Its events, in both groups.
        ("create", "events.k8s.io", "events", None),
        ("patch", "", "events", None),
        // The ConfigMap controller, in its namespace only.
        ("watch", "", "configmaps", Some("team-a")),
        // Leader election, in the operator's namespace.
        (
            "update",
            "coordination.k8s.io",
            "leases",
            Some("pet-operator"),
        ),
    ];
    for (verb, group, resource, ns) in allowed {
        assert!(
            rules.allows(verb, group, resource, ns),
            "{verb} {group}/{resource} in {ns:?} should be allowed: {rules:#?}"
        );
    }
    let denied = [
        ("delete", group, "pets", None),
        ("create", "", "secrets", None),
        ("watch", "", "configmaps", None),
        ("watch", "", "configmaps", Some("team-b")),
        ("update", "coordination.k8s.io", "leases", Some("team-a")),
        ("delete", "", "events", None),
    ];
    for (verb, group, resource, ns) in denied {
        assert!(
            !rules.allows(verb, group, resource, ns),
            "{verb} {group}/{resource} in {ns:?} should be denied: {rules:#?}"
        );
    }
    let team_a = &rules.namespaced["team-a"];
    assert!(
        team_a
            .iter()
            .any(|r| r.resource_names == Some(vec!["registry".to_string()])),
        "the extra rule is kept: {team_a:#?}"
    );
}

#[tokio::test]
async fn an_operator_whose_controllers_all_watch_one_namespace_gets_a_role_and_no_cluster_role() {
    let server = ApiServer::new();
    let controller = Controller::new(noop::<ConfigMap>())
        .informer(InformerConfig::default().namespace("team-a"))
        .owns_with::<Secret>(InformerConfig::default().namespace("team-a"));
    let manifests = manager(server.client())
        .add(controller)
        .manifests(&Config::new("cm-operator", "example.com/cm-operator:1"))
        .unwrap();
    assert!(manifests.cluster_role.is_none());
    assert!(manifests.cluster_role_binding.is_none());
    let namespaces: Vec<_> = manifests
        .roles
        .iter()
        .map(|r| r.metadata.namespace.clone().unwrap())
        .collect();
    assert_eq!(namespaces, ["team-a"]);
    let rules = rules_of(&manifests);
    assert!(rules.allows("create", "", "secrets", Some("team-a")));
    assert!(rules.allows("create", "", "events", Some("team-a")));
    assert!(!rules.allows("list", "", "configmaps", Some("cm-operator")));
    let strategy = manifests.deployment.spec.strategy.clone();
    assert_eq!(
        strategy.and_then(|s| s.type_).as_deref(),
        Some("Recreate"),
        "without leader election, replicas never overlap"
    );
}

#[tokio::test]
async fn the_deployment_probes_and_declares_the_ports_the_manager_serves() {
    let server = ApiServer::new();
    let serving = windlass::manager::Config::default()
        .handle_signals(false)
        .metrics_bind_address(Some("127.0.0.1:0".parse().unwrap()))
        .health_probe_bind_address(Some("127.0.0.1:0".parse().unwrap()));
    let manager =
        Manager::with_config(server.client(), serving).add(Controller::new(noop::<ConfigMap>()));
    let metrics = manager.metrics_address().unwrap().port();
    let probes = manager.health_probe_address().unwrap().port();
    let manifests = manager
        .manifests(&Config::new("cm-operator", "example.com/cm-operator:1"))
        .unwrap();
    let pod = manifests.deployment.spec.template.spec.clone().unwrap();
    let container = &pod.containers[0];
    let ports: Vec<_> = container
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone().unwrap(), p.container_port))
        .collect();
    assert_eq!(
        ports,
        [
            ("metrics".to_string(), i32::from(metrics)),
            ("probes".to_string(), i32::from(probes))
        ]
    );
    let path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
        let get = probe.as_ref().unwrap().http_get.clone().unwrap();
        (get.path.unwrap(), get.port)
    };
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    assert_eq!(
        path(&container.liveness_probe),
        ("/healthz".to_string(), IntOrString::Int(probes.into()))
    );
    assert_eq!(
        path(&container.readiness_probe),
        ("/readyz".to_string(), IntOrString::Int(probes.into()))
    );
    // And the server takes the Deployment.
    let client = server.client();
    for object in manifests.objects().unwrap() {
        create(&client, object).await;
    }
}

#[tokio::test]
async fn the_managers_leader_election_is_granted_its_lease_and_allows_replicas() {
    let server = ApiServer::new();
    let election = LeaderElectionConfig::new("cm-operator")
        .namespace("ops")
        .watch(false);
    let manager = Manager::with_config(
        server.client(),
        windlass::manager::Config::default()
            .handle_signals(false)
            .leader_election(election),
    )
    .add(Controller::new(noop::<ConfigMap>()).record_events(false));
    let manifests = manager
        .manifests(&Config::new("cm-operator", "example.com/cm-operator:1").replicas(3))
        .unwrap();
    let rules = rules_of(&manifests);
    for verb in ["get", "create", "update"] {
        assert!(
            rules.allows(verb, "coordination.k8s.io", "leases", Some("ops")),
            "{verb}"
        );
    }
    assert!(
        !rules.allows("watch", "coordination.k8s.io", "leases", Some("ops")),
        "candidates do not watch"
    );
    assert!(!rules.allows("get", "coordination.k8s.io", "leases", Some("cm-operator")));
    assert!(
        rules.allows("create", "", "events", Some("ops")),
        "its became-leader events"
    );
    let spec = &manifests.deployment.spec;
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(spec.strategy, None, "rolling updates may overlap replicas");
}

#[tokio::test]
async fn more_than_one_replica_without_leader_election_is_refused() {
    let server = ApiServer::new();
    let err = operator(server.client())
        .manifests(&Config::new("pet-operator", "example.com/pets:1").replicas(2))
        .unwrap_err();
    assert!(
        matches!(err, DeployError::ReplicasWithoutLeaderElection(2)),
        "{err}"
    );
}

/// Creates `value` through discovery, as `kubectl apply` would.
async fn create(client: &kube::Client, value: serde_json::Value) -> DynamicObject {
    let obj: DynamicObject = serde_json::from_value(value).unwrap();
    let types = obj.types.clone().unwrap();
    let gvk = GroupVersionKind::try_from(&types).unwrap();
    let (resource, _): (ApiResource, _) = pinned_kind(client, &gvk)
        .await
        .unwrap_or_else(|e| panic!("{gvk:?} is served: {e}"));
    let api: Api<DynamicObject> = match &obj.metadata.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    api.create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the server accepts the {} {:?}: {e}",
                types.kind, obj.metadata.name
            )
        })
}

#[tokio::test]
async fn the_test_server_accepts_every_generated_manifest() {
    let server = ApiServer::new();
    let client = server.client();
    let manifests = operator(client.clone()).manifests(&config()).unwrap();
    let objects = manifests.objects().unwrap();
    let kinds: Vec<_> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "CustomResourceDefinition",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "Deployment",
        ]
    );
    // The namespaces the roles are for exist already in a real cluster.
    create(&client, serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})).await;
    for object in objects {
        let created = create(&client, object).await;
        if created.types.as_ref().unwrap().kind == "CustomResourceDefinition" {
            let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
            let name = created.metadata.name.clone().unwrap();
            tokio::time::timeout(
                WAIT,
                await_condition(crds, &name, conditions::is_crd_established()),
            )
            .await
            .unwrap()
            .unwrap();
        }
    }
    let deployment: Deployment = Api::namespaced(client, "pet-operator")
        .get("pet-operator")
        .await
        .unwrap();
    let pod = deployment.spec.template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("pet-operator"));
}
