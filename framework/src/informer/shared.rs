//! One informer: a kube `watcher` (list, watch, resume, relist on 410, kube's default backoff)
//! feeding a [`Store`], and telling registered handlers what changed.
//!
//! A relist only reports what actually changed: objects whose resourceVersion is unchanged
//! raise no event, and objects missing from the new list are reported deleted. A malformed
//! object is counted, logged and skipped; the informer keeps running.

use std::any::Any;
use std::collections::HashSet;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use kube::Resource;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::config::InformerConfig;
use super::decoded::Decoded;
use super::store::{IndexFn, ObjectKey, Store};

/// Something told about every change an informer sees.
///
/// Handlers run on the informer's task, one event at a time, in the order the changes happened;
/// they should be quick (a controller's handler only puts keys in its queue).
pub trait EventHandler<K>: Send + Sync {
    /// An object appeared. `initial` is true for objects from the informer's first list, and
    /// for every existing object replayed to a handler added after the informer started.
    fn on_add(&self, obj: &Arc<K>, initial: bool);
    /// An object changed (its resourceVersion moved).
    fn on_update(&self, old: &Arc<K>, new: &Arc<K>);
    /// An object was deleted (or dropped out of the informer's selector).
    fn on_delete(&self, obj: &Arc<K>);
}

/// Counters of what an informer has been through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InformerStats {
    /// Objects in the cache now.
    pub objects: u64,
    /// Failed list or watch calls (each retried with backoff).
    pub watch_errors: u64,
    /// Relists after the first list (after a 410, or a watch that could not resume).
    pub relists: u64,
    /// Objects that did not decode and were skipped.
    pub malformed: u64,
}

pub(crate) type EventStream<K> = BoxStream<'static, Result<Event<Decoded<K>>, watcher::Error>>;
type Source<K> = Box<dyn Fn() -> EventStream<K> + Send + Sync>;

/// A shared, cached view of one kind (in one namespace or all, with one selector).
///
/// Informers are created and started by the manager's [`Cache`](super::Cache); every controller
/// and every cache read of the same kind, scope and selector shares one informer, one watch and
/// one copy of each object.
pub struct Informer<K> {
    name: String,
    store: Store<K>,
    /// Registered handlers. The lock is also held while a change is applied and dispatched, so a
    /// handler added concurrently sees each object exactly once (replayed or as an event).
    handlers: Mutex<Vec<Arc<dyn EventHandler<K>>>>,
    synced: watch::Sender<bool>,
    /// How many lists have been stored (the first, and every relist since).
    lists: watch::Sender<u64>,
    /// Whether the last thing the watch did was fail: it is waiting out a backoff, and the
    /// cache may be as old as the failure (kube's backoff grows to 30 s).
    failing: AtomicBool,
    watch_errors: AtomicU64,
    relists: AtomicU64,
    malformed: AtomicU64,
    strip_managed_fields: bool,
    source: Source<K>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl<K> fmt::Debug for Informer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Informer")
            .field("name", &self.name)
            .field("synced", &*self.synced.borrow())
            .finish_non_exhaustive()
    }
}

impl<K> Informer<K>
where
    K: Resource + Clone + Send + Sync + 'static,
{
    pub(crate) fn new(name: String, config: &InformerConfig, source: Source<K>) -> Self {
        Self {
            name,
            store: Store::new(),
            handlers: Mutex::new(Vec::new()),
            synced: watch::Sender::new(false),
            lists: watch::Sender::new(0),
            failing: AtomicBool::new(false),
            watch_errors: AtomicU64::new(0),
            relists: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            strip_managed_fields: config.strip_managed_fields,
            source,
            task: Mutex::new(None),
        }
    }

    /// A name for logs: the kind, and the namespace and selectors when set.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cache this informer fills.
    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// Whether the first list has been stored.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits until the first list has been stored.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        // The sender lives as long as `self`, so this cannot fail while we hold `&self`.
        let _ = rx.wait_for(|synced| *synced).await;
    }

    /// Counters of what the informer has been through.
    pub fn stats(&self) -> InformerStats {
        InformerStats {
            objects: self.store.len() as u64,
            watch_errors: self.watch_errors.load(Ordering::Relaxed),
            relists: self.relists.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
        }
    }

    /// Adds a named index over the cached objects (queryable with [`Store::by_index`]).
    pub fn add_index(&self, name: &str, func: impl Fn(&K) -> Vec<String> + Send + Sync + 'static) {
        let func: IndexFn<K> = Arc::new(func);
        let _dispatch = self.handlers.lock();
        self.store.add_index(name, func);
    }

    /// Registers a handler. Objects already cached are replayed to it as initial adds.
    pub fn add_handler(&self, handler: Arc<dyn EventHandler<K>>) {
        let mut handlers = self.handlers.lock();
        for obj in self.store.list() {
            self.guarded(|| handler.on_add(&obj, true));
        }
        handlers.push(handler);
    }

    /// Starts the watch task (once; later calls do nothing).
    pub(crate) fn start(self: &Arc<Self>) {
        let mut task = self.task.lock();
        if task.is_none() {
            let this = self.clone();
            *task = Some(tokio::spawn(async move { this.run().await }));
        }
    }

    /// Stops the watch task. The cache keeps its contents. Returns the aborted task, which
    /// ends (dropping what it holds) once the runtime next polls it.
    pub(crate) fn stop(&self) -> Option<JoinHandle<()>> {
        let task = self.task.lock().take();
        if let Some(task) = &task {
            task.abort();
        }
        task
    }

    /// Whether the watch's last attempt failed, so the cache may be stale until a retry,
    /// which kube's backoff may put off for up to 30 s.
    pub(crate) fn is_failing(&self) -> bool {
        self.failing.load(Ordering::SeqCst)
    }

    /// Lists again now, cutting short any backoff, and waits until the new list is stored:
    /// the cache is then at least as new as the moment this was called. Only for a started
    /// informer (a stopped one keeps waiting until it is started).
    pub(crate) async fn relist(self: &Arc<Self>) {
        let mut lists = self.lists.subscribe();
        let before = *lists.borrow_and_update();
        let restart = {
            let mut task = self.task.lock();
            match task.take() {
                Some(running) => {
                    running.abort();
                    true
                }
                None => false,
            }
        };
        if restart {
            self.start();
        }
        // The sender lives as long as `self`.
        let _ = lists.wait_for(|n| *n > before).await;
    }

    async fn run(self: Arc<Self>) {
        let mut stream = Box::pin((self.source)().default_backoff());
        // Keys seen since the current (re)list began; what is not seen by its end is gone.
        let mut seen: Option<HashSet<ObjectKey>> = None;
        while let Some(item) = stream.next().await {
            if item.is_ok() {
                self.failing.store(false, Ordering::SeqCst);
            }
            match item {
                Err(error) => {
                    self.failing.store(true, Ordering::SeqCst);
                    self.watch_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(informer = %self.name, %error, "list or watch failed; retrying with backoff");
                }
                Ok(Event::Init) => {
                    if self.is_synced() {
                        self.relists.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(informer = %self.name, "relisting");
                    }
                    seen = Some(HashSet::new());
                }
                Ok(Event::InitApply(obj)) => {
                    let initial = !self.is_synced();
                    if let Some((key, obj)) = self.accept(obj, seen.as_mut()) {
                        self.apply(key, obj, initial);
                    }
                }
                Ok(Event::InitDone) => {
                    if let Some(seen) = seen.take() {
                        for key in self.store.keys() {
                            if !seen.contains(&key) {
                                self.delete(&key);
                            }
                        }
                    }
                    if !self.is_synced() {
                        tracing::debug!(informer = %self.name, objects = self.store.len(), "synced");
                        self.synced.send_replace(true);
                    }
                    self.lists.send_modify(|n| *n += 1);
                }
                Ok(Event::Apply(obj)) => {
                    if let Some((key, obj)) = self.accept(obj, None) {
                        self.apply(key, obj, false);
                    }
                }
                Ok(Event::Delete(obj)) => {
                    let key = ObjectKey::of(&obj);
                    self.delete(&key);
                }
            }
        }
    }

    /// The object to cache, or `None` (counted and logged) when it did not decode.
    fn accept(
        &self,
        obj: Decoded<K>,
        seen: Option<&mut HashSet<ObjectKey>>,
    ) -> Option<(ObjectKey, Arc<K>)> {
        let key = ObjectKey::of(&obj);
        if let Some(seen) = seen {
            // A malformed object is still "seen": skipping it must not delete the last good
            // version the cache holds.
            seen.insert(key.clone());
        }
        match obj {
            Decoded::Ok(mut k) => {
                if self.strip_managed_fields {
                    k.meta_mut().managed_fields = None;
                }
                Some((key, Arc::new(k)))
            }
            Decoded::Malformed { error, .. } => {
                self.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(informer = %self.name, object = %key, %error, "skipping an object that does not decode");
                None
            }
        }
    }

    fn apply(&self, key: ObjectKey, obj: Arc<K>, initial: bool) {
        let handlers = self.handlers.lock();
        match self.store.upsert(key, obj.clone()) {
            None => handlers
                .iter()
                .for_each(|h| self.guarded(|| h.on_add(&obj, initial))),
            Some(old) if old.meta().resource_version == obj.meta().resource_version => {}
            Some(old) => handlers
                .iter()
                .for_each(|h| self.guarded(|| h.on_update(&old, &obj))),
        }
    }

    fn delete(&self, key: &ObjectKey) {
        let handlers = self.handlers.lock();
        if let Some(old) = self.store.remove(key) {
            handlers
                .iter()
                .for_each(|h| self.guarded(|| h.on_delete(&old)));
        }
    }

    /// Runs one handler call, containing a panic in it (user code: a controller's map
    /// function or predicate). Unwinding out of the informer's task would end its watch for
    /// good, and with it every controller sharing the informer; instead only the handler's
    /// view of this one event is lost.
    fn guarded(&self, call: impl FnOnce()) {
        if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(call)) {
            tracing::error!(
                informer = %self.name,
                panic = %panic_message(payload.as_ref()),
                "an event handler panicked; it misses this event"
            );
        }
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".into())
}

/// What the cache needs from an informer of any kind.
pub(crate) trait ErasedInformer: Send + Sync {
    fn start(self: Arc<Self>);
    fn stop(&self) -> Option<JoinHandle<()>>;
    fn is_failing(&self) -> bool;
    fn relist(self: Arc<Self>) -> futures::future::BoxFuture<'static, ()>;
    fn is_synced(&self) -> bool;
    fn wait_synced(&self) -> futures::future::BoxFuture<'_, ()>;
    fn name(&self) -> &str;
    fn stats(&self) -> InformerStats;
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<K> ErasedInformer for Informer<K>
where
    K: Resource + Clone + Send + Sync + 'static,
{
    fn start(self: Arc<Self>) {
        Informer::start(&self);
    }
    fn stop(&self) -> Option<JoinHandle<()>> {
        Informer::stop(self)
    }
    fn is_failing(&self) -> bool {
        Informer::is_failing(self)
    }
    fn relist(self: Arc<Self>) -> futures::future::BoxFuture<'static, ()> {
        async move { Informer::relist(&self).await }.boxed()
    }
    fn is_synced(&self) -> bool {
        Informer::is_synced(self)
    }
    fn wait_synced(&self) -> futures::future::BoxFuture<'_, ()> {
        Informer::wait_synced(self).boxed()
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn stats(&self) -> InformerStats {
        Informer::stats(self)
    }
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}
