//! [`RestMapper`]: from a kind to the resource and scope the API server serves it under.

use std::collections::HashMap;
use std::sync::Arc;

use kube::core::discovery::Scope;
use kube::core::{ApiResource, GroupVersion, GroupVersionKind, GroupVersionResource};
use parking_lot::RwLock;

use super::Scheme;

/// Why a [`RestMapper`] found no mapping.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestMapperError {
    /// Neither the scheme nor the API server knows the kind (kubectl's wording).
    #[error("no matches for kind {kind:?} in version {api_version:?}", kind = .0.kind, api_version = GroupVersion::gv(&.0.group, &.0.version).api_version())]
    NoKindMatch(GroupVersionKind),
    /// Neither the scheme nor the API server knows the resource (kubectl's wording).
    #[error("the server doesn't have a resource type {resource:?} in version {api_version:?}", resource = .0.resource, api_version = GroupVersion::gv(&.0.group, &.0.version).api_version())]
    NoResourceMatch(GroupVersionResource),
    /// Discovery failed for another reason than the group version not being served.
    #[error("discovery failed")]
    Discovery(#[source] kube::Error),
}

/// Where a kind is served: its resource (plural) and whether it is namespaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestMapping {
    /// The group, version and kind.
    pub gvk: GroupVersionKind,
    /// The group, version and resource (plural) it is served under.
    pub resource: GroupVersionResource,
    /// Whether objects of the kind live in namespaces.
    pub scope: Scope,
}

impl RestMapping {
    /// kube's description of the resource, for `Api::<DynamicObject>::all_with`.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(&self.gvk, &self.resource.resource)
    }

    fn new(gvk: GroupVersionKind, plural: &str, scope: Scope) -> Self {
        let resource = GroupVersionResource::gvr(&gvk.group, &gvk.version, plural);
        Self {
            gvk,
            resource,
            scope,
        }
    }
}

/// Maps kinds to resources and scopes, and back: controller-runtime's `RESTMapper`.
///
/// Kinds registered in the [`Scheme`] it was built from are answered without a request. For
/// other kinds, a mapper made [`with_discovery`](RestMapper::with_discovery) asks the API
/// server's discovery for the kind's group version, caches the answer per group version, and
/// asks again when a kind is missing from the cache (a CRD may have been installed since), like
/// controller-runtime's lazy mapper.
///
/// Clones share the cache.
///
/// # Example
///
/// ```
/// use k8s_openapi::api::apps::v1::Deployment;
/// use windlass::object::{Object, RestMapper, Scheme, Scope};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut scheme = Scheme::new();
/// scheme.register::<Deployment>()?;
/// let mapper = RestMapper::new(&scheme);
/// let mapping = mapper.rest_mapping(&Deployment::type_gvk()).await?;
/// assert_eq!(mapping.resource.resource, "deployments");
/// assert_eq!(mapping.scope, Scope::Namespaced);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct RestMapper {
    known: Arc<Vec<RestMapping>>,
    client: Option<kube::Client>,
    discovered: Arc<RwLock<HashMap<GroupVersion, Vec<RestMapping>>>>,
}

impl std::fmt::Debug for RestMapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestMapper")
            .field("known", &self.known)
            .field("discovery", &self.client.is_some())
            .field(
                "discovered",
                &self.discovered.read().keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl RestMapper {
    /// A mapper that knows only the kinds registered in `scheme`.
    pub fn new(scheme: &Scheme) -> Self {
        let known = scheme
            .kinds()
            .filter_map(|gvk| {
                let (plural, scope) = scheme.resource_of(gvk)?;
                Some(RestMapping::new(gvk.clone(), plural, scope))
            })
            .collect();
        Self {
            known: Arc::new(known),
            client: None,
            discovered: Arc::default(),
        }
    }

    /// A mapper that knows the kinds registered in `scheme` and asks the API server's discovery
    /// about the others.
    pub fn with_discovery(scheme: &Scheme, client: kube::Client) -> Self {
        Self {
            client: Some(client),
            ..Self::new(scheme)
        }
    }

    /// Where `gvk` is served.
    ///
    /// # Errors
    ///
    /// [`RestMapperError::NoKindMatch`] when neither the scheme nor discovery knows the kind,
    /// [`RestMapperError::Discovery`] when discovery itself fails.
    pub async fn rest_mapping(
        &self,
        gvk: &GroupVersionKind,
    ) -> Result<RestMapping, RestMapperError> {
        let find = |mappings: &[RestMapping]| mappings.iter().find(|m| &m.gvk == gvk).cloned();
        if let Some(mapping) = find(&self.known) {
            return Ok(mapping);
        }
        let gv = GroupVersion::gv(&gvk.group, &gvk.version);
        if let Some(mapping) = self.discovered.read().get(&gv).and_then(|m| find(m)) {
            return Ok(mapping);
        }
        let mappings = self.discover(&gv).await?;
        find(&mappings).ok_or_else(|| RestMapperError::NoKindMatch(gvk.clone()))
    }

    /// The kind served as `gvr`.
    ///
    /// # Errors
    ///
    /// [`RestMapperError::NoResourceMatch`] when neither the scheme nor discovery knows the
    /// resource, [`RestMapperError::Discovery`] when discovery itself fails.
    pub async fn kind_for(
        &self,
        gvr: &GroupVersionResource,
    ) -> Result<GroupVersionKind, RestMapperError> {
        let find = |mappings: &[RestMapping]| {
            mappings
                .iter()
                .find(|m| &m.resource == gvr)
                .map(|m| m.gvk.clone())
        };
        if let Some(gvk) = find(&self.known) {
            return Ok(gvk);
        }
        let gv = GroupVersion::gv(&gvr.group, &gvr.version);
        if let Some(gvk) = self.discovered.read().get(&gv).and_then(|m| find(m)) {
            return Ok(gvk);
        }
        let mappings = self.discover(&gv).await?;
        find(&mappings).ok_or_else(|| RestMapperError::NoResourceMatch(gvr.clone()))
    }

    /// Forget what discovery said, so the next lookups ask again.
    pub fn reset(&self) {
        self.discovered.write().clear();
    }

    /// Ask discovery for one group version and cache the answer; a group version the server
    /// does not serve is cached as empty until the next miss asks again.
    async fn discover(&self, gv: &GroupVersion) -> Result<Vec<RestMapping>, RestMapperError> {
        let Some(client) = &self.client else {
            return Ok(Vec::new());
        };
        let mappings = match kube::discovery::pinned_group(client, gv).await {
            Ok(group) => group
                .versioned_resources(&gv.version)
                .into_iter()
                .map(|(ar, caps)| {
                    RestMapping::new(
                        GroupVersionKind::gvk(&ar.group, &ar.version, &ar.kind),
                        &ar.plural,
                        caps.scope,
                    )
                })
                .collect(),
            Err(kube::Error::Api(status)) if status.code == 404 => Vec::new(),
            Err(err) => return Err(RestMapperError::Discovery(err)),
        };
        self.discovered.write().insert(gv.clone(), mappings.clone());
        Ok(mappings)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Namespace, Pod};

    use super::*;
    use crate::object::Object;

    fn mapper() -> RestMapper {
        let mut scheme = Scheme::new();
        scheme
            .register::<Pod>()
            .unwrap()
            .register::<Namespace>()
            .unwrap();
        RestMapper::new(&scheme)
    }

    #[tokio::test]
    async fn kinds_in_the_scheme_map_to_their_plural_and_scope() {
        let mapper = mapper();
        let pod = mapper.rest_mapping(&Pod::type_gvk()).await.unwrap();
        assert_eq!(pod.resource, GroupVersionResource::gvr("", "v1", "pods"));
        assert_eq!(pod.scope, Scope::Namespaced);
        let ns = mapper.rest_mapping(&Namespace::type_gvk()).await.unwrap();
        assert_eq!(ns.scope, Scope::Cluster);
        assert_eq!(ns.api_resource().plural, "namespaces");
    }

    #[tokio::test]
    async fn resources_in_the_scheme_map_back_to_their_kind() {
        let gvk = mapper()
            .kind_for(&GroupVersionResource::gvr("", "v1", "namespaces"))
            .await
            .unwrap();
        assert_eq!(gvk, Namespace::type_gvk());
    }

    #[tokio::test]
    async fn an_unknown_kind_without_discovery_is_no_match_in_kubectls_words() {
        let err = mapper()
            .rest_mapping(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no matches for kind \"Widget\" in version \"example.com/v1\""
        );
    }
}
