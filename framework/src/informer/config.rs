//! How one informer watches: the namespace, kube's `watcher::Config` (selectors, initial-list
//! strategy, page size, bookmarks) and whether `managedFields` are kept in the cache.

use kube::runtime::watcher;

/// Configuration of one informer. Informers with the same kind, namespace and selectors are
/// shared, whatever else their configurations say (the first one registered wins).
#[derive(Debug, Clone)]
pub struct InformerConfig {
    pub(crate) namespace: Option<String>,
    pub(crate) watcher: watcher::Config,
    pub(crate) strip_managed_fields: bool,
}

impl Default for InformerConfig {
    fn default() -> Self {
        Self {
            namespace: None,
            watcher: watcher::Config::default(),
            strip_managed_fields: true,
        }
    }
}

impl InformerConfig {
    /// Watch only this namespace (default: all namespaces).
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// kube's watcher configuration: selectors, initial-list strategy (list+watch or streaming
    /// lists), page size, bookmarks, timeout. Default: `watcher::Config::default()`.
    #[must_use]
    pub fn watcher(mut self, config: watcher::Config) -> Self {
        self.watcher = config;
        self
    }

    /// Only objects matching this label selector.
    #[must_use]
    pub fn labels(mut self, selector: &str) -> Self {
        self.watcher = self.watcher.labels(selector);
        self
    }

    /// Only objects matching this field selector.
    #[must_use]
    pub fn fields(mut self, selector: &str) -> Self {
        self.watcher = self.watcher.fields(selector);
        self
    }

    /// Whether `metadata.managedFields` is dropped from cached objects (default: true). Field
    /// ownership is rarely read by controllers and is often half of an object's size; keep it
    /// only if your reconciler reads it. Dropped fields are skipped while decoding, so they
    /// cost neither memory nor the time to build them (a malformed `managedFields` then no
    /// longer makes its object malformed).
    #[must_use]
    pub fn strip_managed_fields(mut self, strip: bool) -> Self {
        self.strip_managed_fields = strip;
        self
    }

    pub(crate) fn describe(&self, kind: &str) -> String {
        let mut name = kind.to_string();
        if let Some(ns) = &self.namespace {
            name.push_str(&format!(" in {ns}"));
        }
        if let Some(l) = &self.watcher.label_selector {
            name.push_str(&format!(" labels {l:?}"));
        }
        if let Some(f) = &self.watcher.field_selector {
            name.push_str(&format!(" fields {f:?}"));
        }
        name
    }
}
