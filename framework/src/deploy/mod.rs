//! Deploy manifests: everything `kubectl apply -f` needs to install an operator.
//!
//! [`Manager::manifests`](crate::manager::Manager::manifests) builds [`Manifests`] from what
//! the manager's controllers declare ([`rbac`](crate::rbac)) and a [`Config`] (name, image,
//! namespace, leader election, CRDs): the operator's `Namespace`, its CRDs, a
//! `ServiceAccount`, the minimal `ClusterRole` and/or namespaced `Role`s with their bindings,
//! and a `Deployment` that runs the image as that service account. [`Manifests::to_yaml`]
//! prints them all, in the order they can be applied.
//!
//! The Deployment is locked down as the Pod Security "restricted" profile asks (non-root, no
//! privilege escalation, no capabilities, read-only root file system, the runtime's default
//! seccomp profile), passes the pod's name and namespace as `POD_NAME` and `POD_NAMESPACE`
//! (events report the pod's name), declares the metrics port and probes `/healthz` and
//! `/readyz` when the manager serves them, and, without leader election, runs one replica with
//! the `Recreate` strategy so two operators never run at once during a rollout.
//!
//! The fields of [`Manifests`] are public k8s-openapi objects: change anything else (resources,
//! node selectors, probes) before printing.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::rbac::{Permission, Rules, leader_election_permissions};

/// Why manifests could not be built or printed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// More than one replica was asked for without leader election: every replica would
    /// reconcile the same objects at once.
    #[error(
        "{0} replicas need leader election (Config::leader_election(true)); without it every \
         replica reconciles the same objects at once"
    )]
    ReplicasWithoutLeaderElection(i32),
    /// An object could not be built (an image or name that is not a string, say).
    #[error("building the manifests: {0}")]
    Build(String),
    /// The YAML writer failed.
    #[error("writing YAML: {0}")]
    Yaml(String),
}

/// What to install: the operator's name, image and namespace, and the CRDs it serves.
#[derive(Debug, Clone)]
pub struct Config {
    name: String,
    image: String,
    namespace: String,
    replicas: i32,
    leader_election: Option<Lease>,
    crds: Vec<CustomResourceDefinition>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    metrics_port: Option<u16>,
    probe_port: Option<u16>,
}

impl Config {
    /// An operator called `name` (the name of its namespace, service account, roles and
    /// Deployment), running `image`.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            namespace: name.clone(),
            name,
            image: image.into(),
            replicas: 1,
            leader_election: None,
            crds: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            metrics_port: None,
            probe_port: None,
        }
    }

    /// The namespace the operator runs in (default: its name). It is created with the rest.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// How many replicas run (default 1; more need [leader election](Self::leader_election)).
    #[must_use]
    pub fn replicas(mut self, replicas: i32) -> Self {
        self.replicas = replicas;
        self
    }

    /// Whether the operator uses leader election with a Lease in its namespace, configured as
    /// [`LeaderElectionConfig`](crate::leader::LeaderElectionConfig)'s defaults (default:
    /// false). On, the roles grant what the election needs, and more than one replica may run
    /// and overlap during rolling updates.
    /// [`Manager::manifests`](crate::manager::Manager::manifests) sets this from the manager's
    /// own leader election configuration.
    #[must_use]
    pub fn leader_election(mut self, on: bool) -> Self {
        self.leader_election = on.then_some(Lease {
            namespace: None,
            watch: true,
            events: true,
        });
        self
    }

    /// Leader election as a manager configures it, unless set already.
    pub(crate) fn lease_unless_set(
        mut self,
        namespace: Option<String>,
        watch: bool,
        events: bool,
    ) -> Self {
        self.leader_election.get_or_insert(Lease {
            namespace,
            watch,
            events,
        });
        self
    }

    /// Installs the CRD of the custom resource `K` (from `#[derive(CustomResource)]`).
    #[must_use]
    pub fn crd<K: kube::CustomResourceExt>(mut self) -> Self {
        self.crds.push(K::crd());
        self
    }

    /// Installs these CRDs.
    #[must_use]
    pub fn crds(mut self, crds: impl IntoIterator<Item = CustomResourceDefinition>) -> Self {
        self.crds.extend(crds);
        self
    }

    /// The operator's command-line arguments.
    #[must_use]
    pub fn args(mut self, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// The port the operator serves `/metrics` on, declared as the container's `metrics` port
    /// (default: none; [`Manager::manifests`](crate::manager::Manager::manifests) takes it
    /// from the manager's metrics address).
    #[must_use]
    pub fn metrics_port(mut self, port: u16) -> Self {
        self.metrics_port = Some(port);
        self
    }

    /// The port the operator serves `/healthz` and `/readyz` on: the Deployment gets a
    /// liveness probe on `/healthz` and a readiness probe on `/readyz` (default: none;
    /// [`Manager::manifests`](crate::manager::Manager::manifests) takes it from the
    /// manager's health probe address).
    #[must_use]
    pub fn health_probe_port(mut self, port: u16) -> Self {
        self.probe_port = Some(port);
        self
    }

    /// These ports, where no port was set.
    pub(crate) fn ports_unless_set(mut self, metrics: Option<u16>, probes: Option<u16>) -> Self {
        self.metrics_port = self.metrics_port.or(metrics);
        self.probe_port = self.probe_port.or(probes);
        self
    }

    /// An environment variable for the operator (`RUST_LOG`, say).
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }
}

/// The Lease leader election uses, for its permissions.
#[derive(Debug, Clone)]
struct Lease {
    /// Its namespace; `None` is the pod's own, the operator's namespace.
    namespace: Option<String>,
    watch: bool,
    events: bool,
}

/// Everything that installs an operator, as k8s-openapi objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifests {
    /// The operator's namespace.
    pub namespace: Namespace,
    /// The CRDs it serves.
    pub crds: Vec<CustomResourceDefinition>,
    /// The identity it runs as.
    pub service_account: ServiceAccount,
    /// Its cluster-wide rules, if it has any.
    pub cluster_role: Option<ClusterRole>,
    /// Grants `cluster_role` to the service account.
    pub cluster_role_binding: Option<ClusterRoleBinding>,
    /// Its rules limited to namespaces, one role per namespace.
    pub roles: Vec<Role>,
    /// Grant each role to the service account.
    pub role_bindings: Vec<RoleBinding>,
    /// Runs the operator.
    pub deployment: Deployment,
}

fn labels(name: &str) -> Value {
    json!({"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "windlass"})
}

fn meta(name: &str, namespace: Option<&str>, config: &Config) -> Value {
    let mut meta = json!({"name": name, "labels": labels(&config.name)});
    if let Some(ns) = namespace {
        meta["namespace"] = ns.into();
    }
    meta
}

/// Builds a k8s-openapi object from its JSON. The objects are built as JSON, not as structs,
/// because their Rust fields differ between the Kubernetes versions k8s-openapi can be built
/// for (a field that is required in one is optional in another); the JSON is the same.
fn object<K: DeserializeOwned>(value: Value) -> Result<K, DeployError> {
    serde_json::from_value(value).map_err(|e| DeployError::Build(e.to_string()))
}

fn deployment(config: &Config) -> Result<Deployment, DeployError> {
    let field = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}});
    let mut env = vec![
        field("POD_NAME", "metadata.name"),
        field("POD_NAMESPACE", "metadata.namespace"),
    ];
    env.extend(
        config
            .env
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value})),
    );
    let mut container = json!({
        "name": "operator",
        "image": config.image,
        "env": env,
        "resources": {
            "requests": {"cpu": "10m", "memory": "64Mi"},
            "limits": {"memory": "256Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
        },
    });
    if !config.args.is_empty() {
        container["args"] = json!(config.args);
    }
    let mut ports = Vec::new();
    if let Some(port) = config.metrics_port {
        ports.push(json!({"name": "metrics", "containerPort": port, "protocol": "TCP"}));
    }
    if let Some(port) = config.probe_port {
        if config.metrics_port != Some(port) {
            ports.push(json!({"name": "probes", "containerPort": port, "protocol": "TCP"}));
        }
        // kubebuilder's timings: liveness is checked less often, and only after start-up
        // has had time; readiness follows the caches syncing.
        container["livenessProbe"] = json!({
            "httpGet": {"path": "/healthz", "port": port},
            "initialDelaySeconds": 15,
            "periodSeconds": 20,
        });
        container["readinessProbe"] = json!({
            "httpGet": {"path": "/readyz", "port": port},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
        });
    }
    if !ports.is_empty() {
        container["ports"] = json!(ports);
    }
    let mut spec = json!({
        "replicas": config.replicas,
        "selector": {"matchLabels": {"app.kubernetes.io/name": config.name}},
        "template": {
            "metadata": {"labels": labels(&config.name)},
            "spec": {
                "serviceAccountName": config.name,
                "securityContext": {
                    "runAsNonRoot": true,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [container],
            },
        },
    });
    if config.leader_election.is_none() {
        // Without leader election two operators must never overlap: the old pod goes before
        // the new one starts.
        spec["strategy"] = json!({"type": "Recreate"});
    }
    object(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(&config.name, Some(&config.namespace), config),
        "spec": spec,
    }))
}

impl Manifests {
    /// The manifests for an operator with `config` whose runnables need `permissions`.
    ///
    /// # Errors
    ///
    /// [`DeployError::ReplicasWithoutLeaderElection`] if more than one replica is asked for
    /// without leader election.
    pub fn new(config: &Config, permissions: &[Permission]) -> Result<Self, DeployError> {
        if config.replicas > 1 && config.leader_election.is_none() {
            return Err(DeployError::ReplicasWithoutLeaderElection(config.replicas));
        }
        let mut permissions = permissions.to_vec();
        if let Some(lease) = &config.leader_election {
            let namespace = lease.namespace.as_deref().unwrap_or(&config.namespace);
            permissions.extend(leader_election_permissions(
                namespace,
                lease.watch,
                lease.events,
            ));
        }
        let rules = Rules::from_permissions(&permissions);
        let name = config.name.as_str();
        let subjects = json!([{
            "kind": "ServiceAccount",
            "name": name,
            "namespace": config.namespace,
        }]);
        let role_ref = |kind: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name});
        let (cluster_role, cluster_role_binding) = if rules.cluster.is_empty() {
            (None, None)
        } else {
            (
                Some(object(json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": meta(name, None, config),
                    "rules": rules.cluster,
                }))?),
                Some(object(json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": meta(name, None, config),
                    "roleRef": role_ref("ClusterRole"),
                    "subjects": subjects,
                }))?),
            )
        };
        let mut roles = Vec::new();
        let mut role_bindings = Vec::new();
        for (ns, rules) in &rules.namespaced {
            roles.push(object(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": meta(name, Some(ns), config),
                "rules": rules,
            }))?);
            role_bindings.push(object(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": meta(name, Some(ns), config),
                "roleRef": role_ref("Role"),
                "subjects": subjects,
            }))?);
        }
        Ok(Manifests {
            namespace: object(json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": meta(&config.namespace, None, config),
            }))?,
            crds: config.crds.clone(),
            service_account: object(json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": meta(name, Some(&config.namespace), config),
            }))?,
            cluster_role,
            cluster_role_binding,
            roles,
            role_bindings,
            deployment: deployment(config)?,
        })
    }

    /// Every object, as JSON, in an order they can be applied in: the namespace, CRDs,
    /// service account, roles, bindings, and the Deployment last.
    ///
    /// # Errors
    ///
    /// [`DeployError::Yaml`] if an object does not serialize, which k8s-openapi's do.
    pub fn objects(&self) -> Result<Vec<serde_json::Value>, DeployError> {
        let mut out = Vec::new();
        let mut push = |obj: &dyn erased::Serialize| -> Result<(), DeployError> {
            out.push(
                obj.to_json()
                    .map_err(|e| DeployError::Yaml(e.to_string()))?,
            );
            Ok(())
        };
        push(&self.namespace)?;
        for crd in &self.crds {
            push(crd)?;
        }
        push(&self.service_account)?;
        if let Some(role) = &self.cluster_role {
            push(role)?;
        }
        if let Some(binding) = &self.cluster_role_binding {
            push(binding)?;
        }
        for role in &self.roles {
            push(role)?;
        }
        for binding in &self.role_bindings {
            push(binding)?;
        }
        push(&self.deployment)?;
        Ok(out)
    }

    /// The whole install as one multi-document YAML stream, for `kubectl apply -f -`.
    ///
    /// # Errors
    ///
    /// [`DeployError::Yaml`] if the YAML writer fails.
    pub fn to_yaml(&self) -> Result<String, DeployError> {
        let mut out = String::new();
        for obj in self.objects()? {
            out.push_str("---\n");
            let doc =
                serde_saphyr::to_string(&obj).map_err(|e| DeployError::Yaml(e.to_string()))?;
            out.push_str(&doc);
            if !doc.ends_with('\n') {
                out.push('\n');
            }
        }
        Ok(out)
    }
}

/// Serializing objects of different types through one list.
mod erased {
    pub(super) trait Serialize {
        fn to_json(&self) -> Result<serde_json::Value, serde_json::Error>;
    }

    impl<T: super::Serialize> Serialize for T {
        fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
            serde_json::to_value(self)
        }
    }
}
