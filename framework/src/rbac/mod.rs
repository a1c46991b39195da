//! RBAC: the permissions an operator needs, declared by what its controllers do, and reduced
//! to the fewest, narrowest rules.
//!
//! Every [`Runnable`](crate::manager::Runnable) declares the [`Permission`]s it needs. A
//! [`Controller`](crate::controller::Controller) declares them from how it was built:
//!
//! | what | rules |
//! |---|---|
//! | its kind | `get`, `list`, `watch`; `patch` too with [cleanup](crate::finalizer) (the finalizer) |
//! | its kind's `status` | `get`, `update`, `patch`, for custom resources (a controller of a built-in kind rarely owns its status; add the rule if yours does) |
//! | its kind's `finalizers` | `update`, when it owns children (their `blockOwnerDeletion`) |
//! | each kind it [`owns`](crate::controller::Controller::owns) | `get`, `list`, `watch`, `create`, `update`, `patch`, `delete` |
//! | each kind it [`watches`](crate::controller::Controller::watches) | `get`, `list`, `watch` |
//! | `events` (core and `events.k8s.io`) | `create`, `patch`, unless [`record_events(false)`](crate::controller::Controller::record_events) |
//! | anything else it touches | what you add with [`Controller::permission`](crate::controller::Controller::permission) |
//!
//! A permission is cluster-wide, or limited to a namespace when the informer it serves is
//! (`InformerConfig::namespace`). [`Rules::from_permissions`] merges them: verbs of one
//! resource are joined, resources with the same verbs share a rule, and namespaced rules
//! the cluster-wide ones already cover are dropped; what remains cluster-wide goes in a
//! `ClusterRole`, the rest in one `Role` per namespace. [`deploy`](crate::deploy) turns them
//! into manifests.
//!
//! Leader election ([`crate::leader`]) needs `get`, `create` and `update` on `leases` in the
//! `coordination.k8s.io` group, `list` and `watch` too when candidates watch the Lease, and
//! `create` on core `events` for its `became leader` events, all in the namespace the Lease
//! lives in ([`leader_election_permissions`]).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::Resource;

use crate::informer::namespaced;

/// Reading: `get`, `list`, `watch`.
pub const READ: &[&str] = &["get", "list", "watch"];
/// Everything a controller does to the children it owns.
pub const READ_WRITE: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

/// One rule, cluster-wide or in one namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Permission {
    namespace: Option<String>,
    rule: PolicyRule,
}

impl Permission {
    /// `rule` in every namespace (and for cluster-scoped resources).
    pub fn cluster(rule: PolicyRule) -> Self {
        Self {
            namespace: None,
            rule,
        }
    }

    /// `rule` in `namespace` only.
    pub fn namespaced(namespace: impl Into<String>, rule: PolicyRule) -> Self {
        Self {
            namespace: Some(namespace.into()),
            rule,
        }
    }

    /// `verbs` on kind `K` (or its `subresource`), in `namespace` when given and `K` is
    /// namespaced, else cluster-wide.
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::Secret;
    /// use windlass::rbac::Permission;
    ///
    /// let p = Permission::of::<Secret>(None, Some("team-a"), &["get"]);
    /// assert_eq!(p.namespace(), Some("team-a"));
    /// assert_eq!(p.rule().resources, Some(vec!["secrets".to_string()]));
    /// ```
    pub fn of<K>(subresource: Option<&str>, namespace: Option<&str>, verbs: &[&str]) -> Self
    where
        K: Resource + 'static,
        K::DynamicType: Default,
    {
        let dt = K::DynamicType::default();
        let plural = K::plural(&dt);
        let resource = match subresource {
            Some(sub) => format!("{plural}/{sub}"),
            None => plural.into_owned(),
        };
        let rule = rule(&K::group(&dt), &[&resource], verbs);
        match namespace {
            Some(ns) if namespaced::<K>() => Self::namespaced(ns, rule),
            _ => Self::cluster(rule),
        }
    }

    /// The namespace, or `None` for cluster-wide.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The rule.
    pub fn rule(&self) -> &PolicyRule {
        &self.rule
    }
}

/// A rule granting `verbs` on `resources` of `api_group` (`""` for the core group).
pub fn rule(api_group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![api_group.to_string()]),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..PolicyRule::default()
    }
}

/// Whether `group` is one of Kubernetes' own API groups (the core group, `apps`, `batch`,
/// `autoscaling`, `policy`, or any `*.k8s.io`), as opposed to a custom resource's.
pub fn is_builtin_group(group: &str) -> bool {
    group.is_empty()
        || group.ends_with(".k8s.io")
        || ["apps", "batch", "autoscaling", "policy"].contains(&group)
}

/// What publishing events needs: `create` and `patch` on `events` in both API groups, in
/// `namespace` (or everywhere).
pub fn event_permissions(namespace: Option<&str>) -> Vec<Permission> {
    let rules = [
        rule("", &["events"], &["create", "patch"]),
        rule("events.k8s.io", &["events"], &["create", "patch"]),
    ];
    rules
        .into_iter()
        .map(|r| match namespace {
            Some(ns) => Permission::namespaced(ns, r),
            None => Permission::cluster(r),
        })
        .collect()
}

/// What leader election with a `Lease` in `namespace` needs: `get`, `create` and `update` on
/// `leases` in `coordination.k8s.io`; `list` and `watch` when candidates `watch` the Lease
/// (windlass's default); and `create` on core `events` when it writes its `became leader` and
/// `stopped leading` events (also the default).
pub fn leader_election_permissions(namespace: &str, watch: bool, events: bool) -> Vec<Permission> {
    let mut verbs = vec!["get", "create", "update"];
    if watch {
        verbs.extend(["list", "watch"]);
    }
    let mut out = vec![Permission::namespaced(
        namespace,
        rule("coordination.k8s.io", &["leases"], &verbs),
    )];
    if events {
        out.push(Permission::namespaced(
            namespace,
            rule("", &["events"], &["create"]),
        ));
    }
    out
}

/// Where a verb sorts: the usual order of `kubectl create role --verb`, then by name.
fn verb_rank(verb: &str) -> (usize, &str) {
    const ORDER: [&str; 9] = [
        "*",
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ];
    (
        ORDER.iter().position(|v| *v == verb).unwrap_or(ORDER.len()),
        verb,
    )
}

fn sorted_verbs(verbs: &BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = verbs.iter().cloned().collect();
    out.sort_by(|a, b| verb_rank(a).cmp(&verb_rank(b)));
    out
}

/// Verbs per (API group, resource), and rules that cannot be merged (with resource names or
/// non-resource URLs), kept as they are.
#[derive(Debug, Default, Clone)]
struct Grants {
    verbs: BTreeMap<(String, String), BTreeSet<String>>,
    other: Vec<PolicyRule>,
}

impl Grants {
    fn add(&mut self, rule: &PolicyRule) {
        let mergeable = rule.resource_names.as_ref().is_none_or(Vec::is_empty)
            && rule.non_resource_urls.as_ref().is_none_or(Vec::is_empty);
        if !mergeable {
            if !self.other.contains(rule) {
                self.other.push(rule.clone());
            }
            return;
        }
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                self.verbs
                    .entry((group.clone(), resource.clone()))
                    .or_default()
                    .extend(rule.verbs.iter().cloned());
            }
        }
    }

    fn covers(&self, group: &str, resource: &str, verb: &str) -> bool {
        let has = |g: &str, r: &str| {
            self.verbs
                .get(&(g.to_string(), r.to_string()))
                .is_some_and(|v| v.contains(verb) || v.contains("*"))
        };
        has(group, resource) || has(group, "*") || has("*", resource) || has("*", "*")
    }

    /// The fewest rules: resources of one group with the same verbs share a rule.
    fn rules(&self) -> Vec<PolicyRule> {
        let mut shared: BTreeMap<(String, Vec<String>), Vec<String>> = BTreeMap::new();
        for ((group, resource), verbs) in &self.verbs {
            if verbs.is_empty() {
                continue;
            }
            shared
                .entry((group.clone(), sorted_verbs(verbs)))
                .or_default()
                .push(resource.clone());
        }
        let mut rules: Vec<PolicyRule> = shared
            .into_iter()
            .map(|((group, verbs), resources)| PolicyRule {
                api_groups: Some(vec![group]),
                resources: Some(resources),
                verbs,
                ..PolicyRule::default()
            })
            .collect();
        rules.sort_by(|a, b| (&a.api_groups, &a.resources).cmp(&(&b.api_groups, &b.resources)));
        rules.extend(self.other.iter().cloned());
        rules
    }
}

/// The rules of an operator: cluster-wide ones for a `ClusterRole`, and the rest per namespace
/// for `Role`s.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    /// Rules that apply in every namespace.
    pub cluster: Vec<PolicyRule>,
    /// Rules per namespace, without what `cluster` already grants.
    pub namespaced: BTreeMap<String, Vec<PolicyRule>>,
}

impl Rules {
    /// Merges `permissions` into the fewest rules (see the [module docs](self)).
    pub fn from_permissions(permissions: &[Permission]) -> Self {
        let mut cluster = Grants::default();
        let mut namespaced: BTreeMap<String, Grants> = BTreeMap::new();
        for p in permissions {
            match &p.namespace {
                None => cluster.add(&p.rule),
                Some(ns) => namespaced.entry(ns.clone()).or_default().add(&p.rule),
            }
        }
        let namespaced = namespaced
            .into_iter()
            .filter_map(|(ns, mut grants)| {
                for ((group, resource), verbs) in grants.verbs.iter_mut() {
                    verbs.retain(|v| !cluster.covers(group, resource, v));
                }
                grants.other.retain(|r| !cluster.other.contains(r));
                let rules = grants.rules();
                (!rules.is_empty()).then_some((ns, rules))
            })
            .collect();
        Rules {
            cluster: cluster.rules(),
            namespaced,
        }
    }

    /// Whether these rules allow `verb` on `resource` (`plural` or `plural/subresource`) of
    /// `api_group`, in `namespace` (`None`: cluster-wide).
    pub fn allows(
        &self,
        verb: &str,
        api_group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> bool {
        let matches = |rules: &[PolicyRule]| {
            rules.iter().any(|r| {
                let any = |list: &Option<Vec<String>>, want: &str| {
                    list.iter().flatten().any(|x| x == want || x == "*")
                };
                r.resource_names.as_ref().is_none_or(Vec::is_empty)
                    && any(&r.api_groups, api_group)
                    && any(&r.resources, resource)
                    && r.verbs.iter().any(|v| v == verb || v == "*")
            })
        };
        matches(&self.cluster)
            || namespace
                .and_then(|ns| self.namespaced.get(ns))
                .is_some_and(|rules| matches(rules))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};

    use super::*;

    #[test]
    fn verbs_of_one_resource_merge_and_resources_with_the_same_verbs_share_a_rule() {
        let rules = Rules::from_permissions(&[
            Permission::of::<ConfigMap>(None, None, READ),
            Permission::of::<ConfigMap>(None, None, &["patch"]),
            Permission::of::<Secret>(None, None, &["patch", "get", "watch", "list"]),
            Permission::of::<Deployment>(None, None, READ),
        ]);
        assert_eq!(
            rules.cluster,
            vec![
                rule(
                    "",
                    &["configmaps", "secrets"],
                    &["get", "list", "watch", "patch"]
                ),
                rule("apps", &["deployments"], READ),
            ]
        );
        assert!(rules.namespaced.is_empty());
    }

    #[test]
    fn namespaced_rules_the_cluster_role_covers_are_dropped() {
        let rules = Rules::from_permissions(&[
            Permission::of::<ConfigMap>(None, None, READ),
            Permission::of::<ConfigMap>(None, Some("team-a"), &["get", "create"]),
            Permission::of::<Secret>(None, Some("team-a"), READ),
        ]);
        assert_eq!(
            rules.namespaced["team-a"],
            vec![
                rule("", &["configmaps"], &["create"]),
                rule("", &["secrets"], READ),
            ]
        );
        assert!(rules.allows("create", "", "configmaps", Some("team-a")));
        assert!(!rules.allows("create", "", "configmaps", Some("team-b")));
        assert!(rules.allows("list", "", "configmaps", Some("team-b")));
    }

    #[test]
    fn cluster_scoped_kinds_are_granted_cluster_wide_even_when_asked_in_a_namespace() {
        let p = Permission::of::<Namespace>(None, Some("team-a"), READ);
        assert_eq!(p.namespace(), None);
    }

    #[test]
    fn subresources_are_resources_of_their_own() {
        let p = Permission::of::<Deployment>(Some("status"), None, &["update"]);
        let rules = Rules::from_permissions(&[p]);
        assert!(rules.allows("update", "apps", "deployments/status", None));
        assert!(!rules.allows("update", "apps", "deployments", None));
    }

    #[test]
    fn rules_with_resource_names_are_kept_as_they_are() {
        let mut named = rule("", &["configmaps"], &["get"]);
        named.resource_names = Some(vec!["settings".into()]);
        let rules = Rules::from_permissions(&[
            Permission::cluster(named.clone()),
            Permission::cluster(named.clone()),
        ]);
        assert_eq!(rules.cluster, vec![named]);
        assert!(!rules.allows("get", "", "configmaps", None));
    }
}
