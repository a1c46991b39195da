//! Building a controller: the primary kind and its informer, owned children, mapped watches,
//! predicates, concurrency, resync, timeout and name; cleanup, events, and the permissions
//! all that needs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kube::Resource;
use kube::core::PartialObjectMeta;

use super::context::{EventKind, ReconcileReason, Related};
use super::enqueue::Enqueuer;
use super::predicate::Predicate;
use super::reconciler::Reconciler;
use crate::finalizer::{Cleanup, Finalized, finalizer_name};
use crate::informer::{Cache, Cacheable, EventHandler, InformerConfig, ObjectKey, namespaced};
use crate::queue::Priority;
use crate::rbac::{self, Permission};

/// How many objects a controller reconciles at once unless told otherwise.
///
/// Bounded, so a flood of events cannot open unbounded concurrent API requests; 8 keeps a
/// typical reconcile (a few API calls) limited by the API server's client-side rate limit
/// rather than by the workers, while one slow object cannot stall the rest.
pub const DEFAULT_MAX_CONCURRENT_RECONCILES: usize = 8;

/// A source of reconcile requests besides the primary kind: owned children, mapped watches.
pub(crate) trait Source<K>: Send + Sync {
    /// Creates the source's informer in the cache (without a handler), so the cache knows
    /// about it before the controller runs.
    fn prepare(&self, cache: &Cache);
    /// Registers the source's informer and handler; returns a way to wait for its sync.
    fn register(&self, cache: &Cache, enqueuer: Arc<Enqueuer>) -> SyncWaiter;
    /// What the controller needs to read (and, for children, write) the source's kind.
    fn permissions(&self) -> Vec<Permission>;
    /// Whether the source's objects are children the controller owns.
    fn owns_children(&self) -> bool {
        false
    }
}

/// Waits for one informer's first list.
pub(crate) type SyncWaiter = Box<dyn Fn() -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

fn waiter<O>(informer: Arc<crate::informer::Informer<O>>) -> SyncWaiter
where
    O: Resource + Clone + Send + Sync + 'static,
{
    Box::new(move || {
        let informer = informer.clone();
        Box::pin(async move { informer.wait_synced().await })
    })
}

/// A controller: reconciles objects of `R::Object` with `R`, driven by changes to them, to
/// the children they own and to anything mapped to them.
///
/// ```no_run
/// use std::sync::Arc;
/// use k8s_openapi::api::apps::v1::Deployment;
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use windlass::controller::{reconciler_fn, Action, Context, Controller, GenerationChanged};
///
/// let controller = Controller::new(reconciler_fn(
///     |d: Arc<Deployment>, _ctx: Context<Deployment>| async move {
///         Ok::<_, kube::Error>(Action::await_change())
///     },
/// ))
/// .name("deployment-config")
/// .owns::<ConfigMap>()
/// .with_predicate(GenerationChanged)
/// .max_concurrent_reconciles(4);
/// # let _ = controller;
/// ```
pub struct Controller<R: Reconciler> {
    pub(crate) reconciler: Arc<R>,
    pub(crate) name: String,
    pub(crate) informer: InformerConfig,
    pub(crate) predicates: Vec<Arc<dyn Predicate<R::Object>>>,
    pub(crate) sources: Vec<Box<dyn Source<R::Object>>>,
    pub(crate) max_concurrent: usize,
    pub(crate) resync: Option<Duration>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) cleanup: bool,
    pub(crate) record_events: bool,
    pub(crate) extra_permissions: Vec<Permission>,
}

impl<R: Reconciler> fmt::Debug for Controller<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Controller")
            .field("name", &self.name)
            .field("sources", &self.sources.len())
            .field("max_concurrent", &self.max_concurrent)
            .field("resync", &self.resync)
            .field("timeout", &self.timeout)
            .field("cleanup", &self.cleanup)
            .field("record_events", &self.record_events)
            .finish()
    }
}

impl<R: Reconciler> Controller<R>
where
    <R::Object as Resource>::DynamicType: Default,
{
    /// A controller for `reconciler`'s kind, in all namespaces, named after the kind.
    pub fn new(reconciler: R) -> Self {
        let kind = R::Object::kind(&Default::default()).to_ascii_lowercase();
        Self {
            reconciler: Arc::new(reconciler),
            name: kind,
            informer: InformerConfig::default(),
            predicates: Vec::new(),
            sources: Vec::new(),
            max_concurrent: DEFAULT_MAX_CONCURRENT_RECONCILES,
            resync: None,
            timeout: None,
            cleanup: false,
            record_events: true,
            extra_permissions: Vec::new(),
        }
    }

    /// The controller's name, used in logs, metrics and events (default: the kind, lowercase).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How the primary kind is watched (namespace, selectors, list strategy).
    #[must_use]
    pub fn informer(mut self, config: InformerConfig) -> Self {
        self.informer = config;
        self
    }

    /// Reconciles the owner of a child of kind `C` when the child changes. The owner is found
    /// through the child's controller owner reference; children are watched metadata-only.
    #[must_use]
    pub fn owns<C>(self) -> Self
    where
        C: Cacheable,
        C::DynamicType: Default,
    {
        self.owns_with::<C>(InformerConfig::default())
    }

    /// Like [`owns`](Self::owns), with the child informer's configuration.
    #[must_use]
    pub fn owns_with<C>(mut self, config: InformerConfig) -> Self
    where
        C: Cacheable,
        C::DynamicType: Default,
    {
        self.sources.push(Box::new(Owns::<C> {
            config,
            _kind: std::marker::PhantomData,
        }));
        self
    }

    /// Reconciles the objects `map` returns whenever an object of kind `W` changes (both the
    /// old and the new version are mapped on updates).
    #[must_use]
    pub fn watches<W, F>(self, map: F) -> Self
    where
        W: Cacheable,
        W::DynamicType: Default,
        F: Fn(&W) -> Vec<ObjectKey> + Send + Sync + 'static,
    {
        self.watches_with::<W, F>(InformerConfig::default(), map)
    }

    /// Like [`watches`](Self::watches), with the watched informer's configuration.
    #[must_use]
    pub fn watches_with<W, F>(mut self, config: InformerConfig, map: F) -> Self
    where
        W: Cacheable,
        W::DynamicType: Default,
        F: Fn(&W) -> Vec<ObjectKey> + Send + Sync + 'static,
    {
        self.sources.push(Box::new(Watches {
            config,
            map: Arc::new(map),
        }));
        self
    }

    /// Only updates the predicate allows are reconciled (all predicates added must allow).
    /// Additions, deletions of children and mapped objects, resyncs and retries always are.
    #[must_use]
    pub fn with_predicate(mut self, predicate: impl Predicate<R::Object> + 'static) -> Self {
        self.predicates.push(Arc::new(predicate));
        self
    }

    /// How many objects are reconciled at once (default
    /// [`DEFAULT_MAX_CONCURRENT_RECONCILES`]; at least 1). One object is never reconciled by
    /// two workers at once, whatever this says.
    #[must_use]
    pub fn max_concurrent_reconciles(mut self, workers: usize) -> Self {
        self.max_concurrent = workers.max(1);
        self
    }

    /// Reconciles every cached object again every `period` (±10 % jitter, so controllers
    /// started together do not resync together), at low priority, so drift in the world is
    /// corrected even without events. Off by default; a zero period turns it off (as a zero
    /// resync period does in client-go) rather than resyncing continuously.
    #[must_use]
    pub fn resync_period(mut self, period: Duration) -> Self {
        self.resync = (!period.is_zero()).then_some(period);
        self
    }

    /// Gives up on a reconcile that runs longer than `timeout` (it counts as an error and is
    /// retried with backoff). Off by default.
    #[must_use]
    pub fn reconcile_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Runs the reconciler's [`Cleanup`] when an object is deleted, holding the object with a
    /// finalizer until cleanup succeeds (see [`finalizer`](crate::finalizer)). The finalizer
    /// is named after the controller: [`finalizer`](Self::finalizer) tells which.
    ///
    /// The controller then runs [`Finalized<R>`](Finalized), which manages the finalizer
    /// around `R`'s reconcile and cleanup; everything configured so far is kept.
    #[must_use]
    pub fn with_cleanup(self) -> Controller<Finalized<R>>
    where
        R: Cleanup,
    {
        Controller {
            reconciler: Arc::new(Finalized::new(self.reconciler)),
            name: self.name,
            informer: self.informer,
            predicates: self.predicates,
            sources: self.sources,
            max_concurrent: self.max_concurrent,
            resync: self.resync,
            timeout: self.timeout,
            cleanup: true,
            record_events: self.record_events,
            extra_permissions: self.extra_permissions,
        }
    }

    /// The finalizer the controller manages, when it has [cleanup](Self::with_cleanup):
    /// [`finalizer_name`] of its kind's group and its name.
    pub fn finalizer(&self) -> Option<String> {
        self.cleanup
            .then(|| finalizer_name(&R::Object::group(&Default::default()), &self.name))
    }

    /// Whether [`Context::recorder`](super::Context::recorder) publishes events (default:
    /// true). Off, it publishes nothing and the generated roles grant nothing on events.
    #[must_use]
    pub fn record_events(mut self, on: bool) -> Self {
        self.record_events = on;
        self
    }

    /// Declares a permission the reconciler needs beyond what the controller watches and
    /// owns (reading a Secret it is pointed to, say), for the generated roles (see
    /// [`rbac`](crate::rbac)).
    #[must_use]
    pub fn permission(mut self, permission: Permission) -> Self {
        self.extra_permissions.push(permission);
        self
    }

    /// Everything the controller needs to be allowed to do: see [`rbac`](crate::rbac) for
    /// what each part of the builder adds.
    pub fn permissions(&self) -> Vec<Permission> {
        type K<R> = <R as Reconciler>::Object;
        let ns = self.informer.namespace.as_deref();
        let owns = self.sources.iter().any(|s| s.owns_children());
        let mut verbs = rbac::READ.to_vec();
        if self.cleanup {
            verbs.push("patch");
        }
        let mut out = vec![Permission::of::<K<R>>(None, ns, &verbs)];
        if !rbac::is_builtin_group(&K::<R>::group(&Default::default())) {
            out.push(Permission::of::<K<R>>(
                Some("status"),
                ns,
                &["get", "update", "patch"],
            ));
        }
        if owns {
            out.push(Permission::of::<K<R>>(Some("finalizers"), ns, &["update"]));
        }
        for source in &self.sources {
            out.extend(source.permissions());
        }
        if self.record_events {
            // Events go to the namespace of the object they are about (`default` for
            // cluster-scoped ones, which need the rule everywhere).
            let events_ns = ns.filter(|_| namespaced::<K<R>>());
            out.extend(rbac::event_permissions(events_ns));
        }
        out.extend(self.extra_permissions.iter().cloned());
        out
    }
}

impl<R: Reconciler> Controller<R>
where
    <R::Object as Resource>::DynamicType: Default,
{
    /// Creates every informer the controller reads in `cache`, so the cache (and the
    /// manager's readiness) waits for them from the moment the controller is added.
    pub(crate) fn prepare(&self, cache: &Cache) {
        cache.informer::<R::Object>(self.informer.clone());
        for source in &self.sources {
            source.prepare(cache);
        }
    }
}

/// Handles the primary kind's events.
pub(crate) struct PrimaryHandler<K> {
    pub(crate) enqueuer: Arc<Enqueuer>,
    pub(crate) predicates: Vec<Arc<dyn Predicate<K>>>,
}

impl<K: Resource> EventHandler<K> for PrimaryHandler<K> {
    fn on_add(&self, obj: &Arc<K>, initial: bool) {
        let key = ObjectKey::of(obj.as_ref());
        if initial {
            self.enqueuer
                .enqueue(key, ReconcileReason::Startup, Priority::LOW);
        } else {
            self.enqueuer.enqueue(
                key,
                ReconcileReason::ObjectChanged(EventKind::Added),
                Priority::NORMAL,
            );
        }
    }

    fn on_update(&self, old: &Arc<K>, new: &Arc<K>) {
        if self.predicates.iter().all(|p| p.allows(old, new)) {
            let key = ObjectKey::of(new.as_ref());
            self.enqueuer.enqueue(
                key,
                ReconcileReason::ObjectChanged(EventKind::Updated),
                Priority::NORMAL,
            );
        }
    }

    // A deleted object has nothing left to reconcile (cleanup belongs in a finalizer, which
    // keeps the object around until it is done), so deletions of primaries enqueue nothing.
    fn on_delete(&self, _obj: &Arc<K>) {}
}

struct Owns<C> {
    config: InformerConfig,
    _kind: std::marker::PhantomData<fn() -> C>,
}

impl<K, C> Source<K> for Owns<C>
where
    K: Resource + 'static,
    K::DynamicType: Default,
    C: Cacheable,
    C::DynamicType: Default,
{
    fn prepare(&self, cache: &Cache) {
        cache.metadata_informer::<C>(self.config.clone());
    }

    fn permissions(&self) -> Vec<Permission> {
        vec![Permission::of::<C>(
            None,
            self.config.namespace.as_deref(),
            rbac::READ_WRITE,
        )]
    }

    fn owns_children(&self) -> bool {
        true
    }

    fn register(&self, cache: &Cache, enqueuer: Arc<Enqueuer>) -> SyncWaiter {
        let informer = cache.metadata_informer::<C>(self.config.clone());
        let dt = K::DynamicType::default();
        informer.add_handler(Arc::new(OwnerHandler {
            enqueuer,
            api_version: K::api_version(&dt).into_owned(),
            kind: K::kind(&dt).into_owned(),
            namespaced: namespaced::<K>(),
            child_kind: C::kind(&Default::default()).into_owned(),
        }));
        waiter(informer)
    }
}

struct OwnerHandler {
    enqueuer: Arc<Enqueuer>,
    api_version: String,
    kind: String,
    /// Whether the owner kind is namespaced; a cluster-scoped owner's key has no namespace.
    namespaced: bool,
    child_kind: String,
}

impl OwnerHandler {
    fn enqueue_owner<C: Resource>(&self, child: &C, event: EventKind, initial: bool) {
        let meta = child.meta();
        let Some(owner) = meta.owner_references.as_ref().and_then(|refs| {
            refs.iter().find(|r| {
                r.controller == Some(true)
                    && r.kind == self.kind
                    && same_group(&r.api_version, &self.api_version)
            })
        }) else {
            return;
        };
        // Owner references never cross namespaces, so a namespaced owner lives in its child's
        // namespace; a cluster-scoped owner (a cluster-wide custom resource owning namespaced
        // children) lives in none.
        let namespace = if self.namespaced {
            meta.namespace.clone()
        } else {
            None
        };
        let key = ObjectKey {
            namespace,
            name: owner.name.clone(),
        };
        let child = Related {
            kind: self.child_kind.clone(),
            key: ObjectKey::of(child),
        };
        let priority = if initial {
            Priority::LOW
        } else {
            Priority::NORMAL
        };
        let reason = if initial {
            ReconcileReason::Startup
        } else {
            ReconcileReason::OwnedChanged { child, event }
        };
        self.enqueuer.enqueue(key, reason, priority);
    }
}

/// Owner references name a group version; any version of the owner's group is the owner.
fn same_group(a: &str, b: &str) -> bool {
    let group = |s: &str| {
        s.rsplit_once('/')
            .map(|(g, _)| g.to_string())
            .unwrap_or_default()
    };
    group(a) == group(b)
}

impl<C: Resource> EventHandler<PartialObjectMeta<C>> for OwnerHandler {
    fn on_add(&self, obj: &Arc<PartialObjectMeta<C>>, initial: bool) {
        self.enqueue_owner(obj.as_ref(), EventKind::Added, initial);
    }
    fn on_update(&self, old: &Arc<PartialObjectMeta<C>>, new: &Arc<PartialObjectMeta<C>>) {
        // A child that changed owners tells both.
        if old.metadata.owner_references != new.metadata.owner_references {
            self.enqueue_owner(old.as_ref(), EventKind::Updated, false);
        }
        self.enqueue_owner(new.as_ref(), EventKind::Updated, false);
    }
    fn on_delete(&self, obj: &Arc<PartialObjectMeta<C>>) {
        self.enqueue_owner(obj.as_ref(), EventKind::Deleted, false);
    }
}

type MapFn<W> = Arc<dyn Fn(&W) -> Vec<ObjectKey> + Send + Sync>;

struct Watches<W> {
    config: InformerConfig,
    map: MapFn<W>,
}

impl<K, W> Source<K> for Watches<W>
where
    K: Resource,
    W: Cacheable,
    W::DynamicType: Default,
{
    fn prepare(&self, cache: &Cache) {
        cache.informer::<W>(self.config.clone());
    }

    fn permissions(&self) -> Vec<Permission> {
        vec![Permission::of::<W>(
            None,
            self.config.namespace.as_deref(),
            rbac::READ,
        )]
    }

    fn register(&self, cache: &Cache, enqueuer: Arc<Enqueuer>) -> SyncWaiter {
        let informer = cache.informer::<W>(self.config.clone());
        informer.add_handler(Arc::new(MapHandler {
            enqueuer,
            map: self.map.clone(),
            kind: W::kind(&Default::default()).into_owned(),
        }));
        waiter(informer)
    }
}

struct MapHandler<W> {
    enqueuer: Arc<Enqueuer>,
    map: MapFn<W>,
    kind: String,
}

impl<W: Resource> MapHandler<W> {
    fn enqueue(&self, obj: &W, event: EventKind, initial: bool) {
        let source = Related {
            kind: self.kind.clone(),
            key: ObjectKey::of(obj),
        };
        for key in (self.map)(obj) {
            let (reason, priority) = if initial {
                (ReconcileReason::Startup, Priority::LOW)
            } else {
                (
                    ReconcileReason::Mapped {
                        source: source.clone(),
                        event,
                    },
                    Priority::NORMAL,
                )
            };
            self.enqueuer.enqueue(key, reason, priority);
        }
    }
}

impl<W: Resource + Send + Sync> EventHandler<W> for MapHandler<W> {
    fn on_add(&self, obj: &Arc<W>, initial: bool) {
        self.enqueue(obj.as_ref(), EventKind::Added, initial);
    }
    fn on_update(&self, old: &Arc<W>, new: &Arc<W>) {
        self.enqueue(old.as_ref(), EventKind::Updated, false);
        self.enqueue(new.as_ref(), EventKind::Updated, false);
    }
    fn on_delete(&self, obj: &Arc<W>) {
        self.enqueue(obj.as_ref(), EventKind::Deleted, false);
    }
}
