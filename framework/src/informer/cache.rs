//! The manager's cache: one shared informer per (kind, namespace, selectors), created on first
//! use, started with the manager (or at once when the manager already runs), and read by
//! controllers and reconcilers alike.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt::{self, Debug};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::ClusterResourceScope;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use super::config::InformerConfig;
use super::decoded::{Decoded, Stripped};
use super::shared::{ErasedInformer, EventStream, Informer, InformerStats};
use super::store::Store;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct InformerKey {
    type_id: TypeId,
    namespace: Option<String>,
    labels: Option<String>,
    fields: Option<String>,
}

impl InformerKey {
    fn new<K: 'static>(config: &InformerConfig) -> Self {
        Self {
            type_id: TypeId::of::<K>(),
            namespace: config.namespace.clone(),
            labels: config.watcher.label_selector.clone(),
            fields: config.watcher.field_selector.clone(),
        }
    }
}

struct Inner {
    client: Client,
    informers: Mutex<HashMap<InformerKey, Arc<dyn ErasedInformer>>>,
    started: AtomicBool,
}

/// Shared informers for every kind the manager's controllers watch or read.
///
/// Cloning is cheap; clones share the informers.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .inner
            .informers
            .lock()
            .values()
            .map(|i| i.name().to_string())
            .collect();
        f.debug_struct("Cache").field("informers", &names).finish()
    }
}

/// The bounds a kind needs to be cached.
pub trait Cacheable: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static {}

impl<K> Cacheable for K
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default,
{
}

/// Whether objects of kind `K` live in namespaces (dynamically scoped kinds count as namespaced).
pub(crate) fn namespaced<K: Resource + 'static>() -> bool {
    TypeId::of::<K::Scope>() != TypeId::of::<ClusterResourceScope>()
}

/// The `Api` an informer of `K` lists and watches through, with items decoded as `T`
/// ([`Decoded<K>`] or [`Stripped<K>`]).
fn api<K, T>(client: &Client, config: &InformerConfig) -> Api<T>
where
    K: Cacheable,
    K::DynamicType: Default,
    T: Resource<DynamicType = K::DynamicType, Scope = kube::core::DynamicResourceScope>,
{
    let dt = K::DynamicType::default();
    match &config.namespace {
        Some(ns) if namespaced::<K>() => Api::namespaced_with(client.clone(), ns, &dt),
        _ => Api::all_with(client.clone(), &dt),
    }
}

/// kube 5 makes every request of an `Api<PartialObjectMeta<_>>` a metadata-only request.
fn metadata_api<K>(client: &Client, config: &InformerConfig) -> Api<PartialObjectMeta<Decoded<K>>>
where
    K: Cacheable,
    K::DynamicType: Default,
{
    let dt = K::DynamicType::default();
    match &config.namespace {
        Some(ns) if namespaced::<K>() => Api::namespaced_with(client.clone(), ns, &dt),
        _ => Api::all_with(client.clone(), &dt),
    }
}

impl Cache {
    /// A cache reading through `client`. Informers start when [`start`](Self::start) is called.
    pub fn new(client: Client) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                informers: Mutex::new(HashMap::new()),
                started: AtomicBool::new(false),
            }),
        }
    }

    /// The client informers list and watch with.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    fn get_or_create<O: Send + Sync + 'static>(
        &self,
        key: InformerKey,
        create: impl FnOnce() -> Arc<Informer<O>>,
    ) -> Arc<Informer<O>>
    where
        Informer<O>: ErasedInformer,
    {
        let mut informers = self.inner.informers.lock();
        if let Some(existing) = informers.get(&key)
            && let Ok(informer) = existing.clone().as_any().downcast::<Informer<O>>()
        {
            return informer;
        }
        let informer = create();
        informers.insert(key, informer.clone());
        if self.inner.started.load(Ordering::SeqCst) {
            ErasedInformer::start(informer.clone());
        }
        informer
    }

    /// The informer for full objects of kind `K` with this configuration (shared: created on
    /// first use).
    pub fn informer<K>(&self, config: InformerConfig) -> Arc<Informer<K>>
    where
        K: Cacheable,
        K::DynamicType: Default,
    {
        let key = InformerKey::new::<K>(&config);
        self.get_or_create(key, || {
            let client = self.inner.client.clone();
            let cfg = config.clone();
            let source = Box::new(move || -> EventStream<K> {
                if cfg.strip_managed_fields {
                    watcher::watcher(api::<K, Stripped<K>>(&client, &cfg), cfg.watcher.clone())
                        .map_ok(|event| map_event(event, |s| s.0))
                        .boxed()
                } else {
                    watcher::watcher(api::<K, Decoded<K>>(&client, &cfg), cfg.watcher.clone())
                        .boxed()
                }
            });
            Arc::new(Informer::new(
                config.describe(&K::kind(&Default::default())),
                &config,
                source,
            ))
        })
    }

    /// The informer for the metadata of kind `K` only (`PartialObjectMetadata`): what a
    /// controller needs of the children it owns, at a fraction of the memory.
    pub fn metadata_informer<K>(
        &self,
        config: InformerConfig,
    ) -> Arc<Informer<PartialObjectMeta<K>>>
    where
        K: Cacheable,
        K::DynamicType: Default,
    {
        let key = InformerKey::new::<PartialObjectMeta<K>>(&config);
        self.get_or_create(key, || {
            let client = self.inner.client.clone();
            let cfg = config.clone();
            let source = Box::new(move || -> EventStream<PartialObjectMeta<K>> {
                watcher::watcher(metadata_api::<K>(&client, &cfg), cfg.watcher.clone())
                    .map_ok(|event| map_event(event, retype))
                    .boxed()
            });
            let name = format!(
                "{} (metadata)",
                config.describe(&K::kind(&Default::default()))
            );
            Arc::new(Informer::new(name, &config, source))
        })
    }

    /// The synced store of the default informer of `K` (all namespaces, no selector), created
    /// and started if needed.
    pub async fn store<K>(&self) -> Store<K>
    where
        K: Cacheable,
        K::DynamicType: Default,
    {
        let informer = self.informer::<K>(InformerConfig::default());
        if !self.inner.started.load(Ordering::SeqCst) {
            // Reads before the manager starts still work: this informer starts now.
            ErasedInformer::start(informer.clone());
        }
        informer.wait_synced().await;
        informer.store().clone()
    }

    /// The cached object `namespace/name` of kind `K` (waits for the kind's cache to sync).
    pub async fn get<K>(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>>
    where
        K: Cacheable,
        K::DynamicType: Default,
    {
        self.store::<K>().await.get_named(namespace, name)
    }

    /// Every cached object of kind `K` (waits for the kind's cache to sync).
    pub async fn list<K>(&self) -> Vec<Arc<K>>
    where
        K: Cacheable,
        K::DynamicType: Default,
    {
        self.store::<K>().await.list()
    }

    /// Starts every informer, and every informer created from now on.
    pub fn start(&self) {
        self.inner.started.store(true, Ordering::SeqCst);
        let informers: Vec<_> = self.inner.informers.lock().values().cloned().collect();
        for informer in informers {
            informer.start();
        }
    }

    /// Stops every informer's watch.
    pub fn stop(&self) {
        drop(self.stop_tasks());
    }

    /// Stops every informer's watch and waits until their tasks have ended, so nothing but
    /// the cache's own handles keeps its contents alive.
    pub(crate) async fn stop_and_wait(&self) {
        for task in self.stop_tasks() {
            // An aborted task ends with a cancellation error: that is the point.
            let _ = task.await;
        }
    }

    fn stop_tasks(&self) -> Vec<tokio::task::JoinHandle<()>> {
        self.inner.started.store(false, Ordering::SeqCst);
        self.inner
            .informers
            .lock()
            .values()
            .filter_map(|informer| informer.stop())
            .collect()
    }

    /// Makes the cache at least as new as now where it may be stale: every informer whose
    /// watch is failing (waiting out a backoff after errors, so its contents may be as old as
    /// the first error) lists again at once, and this waits until they all have. Informers
    /// whose watch is healthy are left alone.
    ///
    /// A manager calls it when its replica becomes the leader with a hot-standby cache, so the
    /// new leader does not act on objects that were deleted or changed while its watches were
    /// down (an API outage puts kube's watch backoff up to 30 s).
    pub(crate) async fn refresh_failing(&self) {
        let failing: Vec<_> = self
            .inner
            .informers
            .lock()
            .values()
            .filter(|i| i.is_failing())
            .cloned()
            .collect();
        if !failing.is_empty() {
            tracing::info!(
                informers = failing.len(),
                "relisting informers whose watch is failing before acting on their cache"
            );
        }
        futures::future::join_all(failing.into_iter().map(ErasedInformer::relist)).await;
    }

    /// Whether every informer has stored its first list.
    pub fn is_synced(&self) -> bool {
        self.inner.informers.lock().values().all(|i| i.is_synced())
    }

    /// Waits until every informer existing now has stored its first list.
    pub async fn wait_synced(&self) {
        let informers: Vec<_> = self.inner.informers.lock().values().cloned().collect();
        for informer in informers {
            informer.wait_synced().await;
        }
    }

    /// A handle that does not keep the cache alive (what the metrics registry holds).
    pub(crate) fn downgrade(&self) -> WeakCache {
        WeakCache(Arc::downgrade(&self.inner))
    }

    /// Each informer's name and counters.
    pub fn stats(&self) -> Vec<(String, InformerStats)> {
        let mut out: Vec<_> = self
            .inner
            .informers
            .lock()
            .values()
            .map(|i| (i.name().to_string(), i.stats()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// A [`Cache`] that may have been dropped.
#[derive(Clone)]
pub(crate) struct WeakCache(Weak<Inner>);

impl WeakCache {
    /// The cache, if it still exists.
    pub(crate) fn upgrade(&self) -> Option<Cache> {
        self.0.upgrade().map(|inner| Cache { inner })
    }
}

fn retype<K>(m: PartialObjectMeta<Decoded<K>>) -> Decoded<PartialObjectMeta<K>> {
    Decoded::Ok(PartialObjectMeta {
        types: m.types,
        metadata: m.metadata,
        _phantom: Default::default(),
    })
}

fn map_event<A, B>(event: Event<A>, f: impl Fn(A) -> B) -> Event<B> {
    match event {
        Event::Apply(a) => Event::Apply(f(a)),
        Event::Delete(a) => Event::Delete(f(a)),
        Event::Init => Event::Init,
        Event::InitApply(a) => Event::InitApply(f(a)),
        Event::InitDone => Event::InitDone,
    }
}
