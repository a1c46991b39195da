//! The manager: runs controllers and other runnables over one client and one shared cache,
//! from start to graceful shutdown.
//!
//! This module owns process lifecycle: start order (caches, then runnables that do not need
//! leadership, then controllers), shutdown on SIGTERM/SIGINT or a [`ShutdownHandle`] (stop
//! taking work, let in-flight reconciles finish within a grace period, stop in reverse order;
//! a second signal forces the exit), and readiness (all caches synced). With leader election
//! ([`Config::leader_election`]), runnables that need leadership run only while this replica
//! leads (`leading.rs`; the election itself is [`crate::leader`]'s).
//!
//! Observability hangs off the manager too, in submodules: `server.rs` serves `/metrics`
//! and the `/healthz` and `/readyz` probes (started first, stopped last), and `healthz.rs`
//! holds the checks behind the probes. See [`Config::metrics_bind_address`],
//! [`Config::health_probe_bind_address`] and [`Manager::add_readyz_check`].

mod healthz;
mod leading;
mod server;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use kube::Client;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::controller::{Controller, Reconciler};
use crate::informer::{Cache, panic_message};
use crate::leader::{LeaderElectionConfig, LeaderElectionError, LeaderElector, LeadershipHandle};
use crate::metrics::Metrics;

pub use healthz::Check;

/// How long `run` waits, after the grace period, for the tasks it aborted to end.
const ABORTED_TASKS_WAIT: Duration = Duration::from_secs(1);

/// An error a runnable ends with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a runnable gets to run with.
#[derive(Clone)]
pub struct RunContext {
    /// The manager's client.
    pub client: Client,
    /// The manager's shared cache.
    pub cache: Cache,
    /// Cancelled when the manager shuts down; a runnable should then return promptly.
    pub shutdown: CancellationToken,
    /// The manager's metrics registry, unless metrics are off.
    pub metrics: Option<Metrics>,
}

impl fmt::Debug for RunContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunContext")
            .field("cache", &self.cache)
            .field("shutting_down", &self.shutdown.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// Something the manager runs: controllers, and anything else that lives as long as the
/// operator (a webhook server, a periodic job).
#[async_trait]
pub trait Runnable: Send + 'static {
    /// A name for logs.
    fn name(&self) -> String;

    /// Whether it may only run on the replica holding the leader lease (controllers: yes).
    fn needs_leader_election(&self) -> bool {
        true
    }

    /// Called once when the runnable is added to a manager, before anything runs: the place
    /// to create the informers it will read (controllers do), so the manager is not
    /// [ready](Manager::readiness) until they have synced. Does nothing by default.
    fn register(&self, cache: &Cache) {
        let _ = cache;
    }

    /// What it needs to be allowed to do in the cluster, for the generated roles (see
    /// [`rbac`](crate::rbac)). Nothing by default.
    fn permissions(&self) -> Vec<crate::rbac::Permission> {
        Vec::new()
    }

    /// Runs until `ctx.shutdown` is cancelled.
    ///
    /// # Errors
    ///
    /// An error makes the manager shut everything down and return it.
    async fn run(self: Box<Self>, ctx: RunContext) -> Result<(), BoxError>;
}

#[async_trait]
impl<R: Reconciler> Runnable for Controller<R>
where
    <R::Object as kube::Resource>::DynamicType: Default,
{
    fn name(&self) -> String {
        self.name.clone()
    }

    fn register(&self, cache: &Cache) {
        self.prepare(cache);
    }

    fn permissions(&self) -> Vec<crate::rbac::Permission> {
        Controller::permissions(self)
    }

    async fn run(self: Box<Self>, ctx: RunContext) -> Result<(), BoxError> {
        (*self)
            .run(ctx.client, ctx.cache, ctx.shutdown, ctx.metrics)
            .await;
        Ok(())
    }
}

/// How a [`Manager`] behaves.
#[derive(Debug, Clone)]
pub struct Config {
    graceful_shutdown_timeout: Duration,
    handle_signals: bool,
    /// Metrics and probes; their setters are in `server.rs`.
    serving: server::Settings,
    leader_election: Option<LeaderElectionConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            graceful_shutdown_timeout: Duration::from_secs(30),
            handle_signals: true,
            serving: server::Settings::default(),
            leader_election: None,
        }
    }
}

impl Config {
    /// How long in-flight work may take to finish after shutdown starts (default 30 s, the
    /// same as Kubernetes' default termination grace period, so a pod's reconciles finish
    /// before the kubelet kills it).
    #[must_use]
    pub fn graceful_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.graceful_shutdown_timeout = timeout;
        self
    }

    /// Whether SIGTERM and SIGINT (Ctrl-C) start a graceful shutdown, and a second one forces
    /// it (default: true; tests turn it off and use a [`ShutdownHandle`]).
    #[must_use]
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.handle_signals = on;
        self
    }

    /// Runs more than one replica safely (default: off, every runnable runs at once). With
    /// leader election, runnables that [need it](Runnable::needs_leader_election) (controllers)
    /// run only while this replica holds the Lease; the others, and the caches (unless
    /// [`hot_standby`](LeaderElectionConfig::hot_standby) is off), run on every replica.
    ///
    /// If the lease is lost, leader-only runnables are stopped at that instant (reconciles in
    /// flight are abandoned, not drained) and [`Manager::run`] returns
    /// [`ManagerError::LeaderElection`]: let the process exit and
    /// restart, as controller-runtime does (or build a new `Manager` and run it to campaign
    /// again in the same process). On shutdown the lease is released after they have stopped.
    ///
    /// The Lease is written with [`LeaderElectionConfig::client`] if set, else with a clone of
    /// the client the manager was given.
    #[must_use]
    pub fn leader_election(mut self, config: LeaderElectionConfig) -> Self {
        self.leader_election = Some(config);
        self
    }
}

/// Why [`Manager::run`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// A runnable returned an error; everything else was shut down.
    #[error("runnable {name} failed")]
    Runnable {
        /// The runnable's name.
        name: String,
        /// Its error.
        #[source]
        source: BoxError,
    },
    /// In-flight work did not finish within the graceful shutdown timeout; it was aborted.
    #[error(
        "in-flight work did not finish within the graceful shutdown timeout of {0:?}; it was aborted"
    )]
    GracePeriodExceeded(Duration),
    /// A second signal arrived during the graceful shutdown; in-flight work was aborted.
    #[error("shutdown forced by a second signal; in-flight work was aborted")]
    Forced,
    /// The metrics or health probe address could not be bound (it was bound when the
    /// manager was created; `run` reports the failure before starting anything).
    #[error("cannot serve {what} on {address}")]
    Listen {
        /// What was to be served there.
        what: &'static str,
        /// The address.
        address: SocketAddr,
        /// Why it could not be bound.
        #[source]
        source: std::io::Error,
    },
    /// Leader election is misconfigured, or this replica lost the lease (its leader-only
    /// runnables were stopped first; everything else was shut down).
    #[error(transparent)]
    LeaderElection(LeaderElectionError),
}

impl ManagerError {
    /// The error for a task that failed: a runnable's, or the election's.
    fn failed(name: String, source: BoxError) -> Self {
        match source.downcast::<LeaderElectionError>() {
            Ok(election) => ManagerError::LeaderElection(*election),
            Err(source) => ManagerError::Runnable { name, source },
        }
    }
}

/// Starts a graceful shutdown of a running manager from anywhere. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(CancellationToken);

impl ShutdownHandle {
    /// Starts the graceful shutdown.
    pub fn shutdown(&self) {
        self.0.cancel();
    }

    /// Whether shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// Tells whether a manager is ready (its caches are synced). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Readiness {
    cache: Cache,
    running: Arc<AtomicBool>,
}

impl Readiness {
    /// Whether the manager runs, is not shutting down, and every cache its runnables read
    /// has its first list.
    pub fn is_ready(&self) -> bool {
        self.running.load(Ordering::SeqCst) && self.cache.is_synced()
    }
}

/// Runs controllers and runnables over one client and one shared cache.
///
/// ```no_run
/// use std::sync::Arc;
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use windlass::controller::{reconciler_fn, Action, Context, Controller};
/// use windlass::manager::Manager;
///
/// # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
/// let client = kube::Client::try_default().await?;
/// let controller = Controller::new(reconciler_fn(|cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| async move {
///     Ok::<_, kube::Error>(Action::await_change())
/// }));
/// Manager::new(client).add(controller).run().await?;
/// # Ok(())
/// # }
/// ```
pub struct Manager {
    client: Client,
    cache: Cache,
    config: Config,
    runnables: Vec<Box<dyn Runnable>>,
    shutdown: CancellationToken,
    /// Whether `run` has started and not begun shutting down (half of readiness).
    running: Arc<AtomicBool>,
    /// Metrics, the bound metrics and probe listeners, and the health checks.
    serving: server::Serving,
    /// The elector, when leader election is configured (or why it cannot be).
    elector: Option<Result<LeaderElector, LeaderElectionError>>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("config", &self.config)
            .field(
                "runnables",
                &self.runnables.iter().map(|r| r.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

type SignalFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How a runnable's task ends: its name with its error, if it failed.
type TaskResult = Result<(), (String, BoxError)>;

/// Runs `runnable` in `tasks`, turning a panic into an error that names it.
fn spawn_runnable(tasks: &mut JoinSet<TaskResult>, runnable: Box<dyn Runnable>, ctx: RunContext) {
    let name = runnable.name();
    tracing::debug!(runnable = %name, "starting");
    tasks.spawn(async move {
        // Caught here, where the runnable's name is known, so the error says which
        // runnable panicked.
        match AssertUnwindSafe(runnable.run(ctx)).catch_unwind().await {
            Ok(result) => result.map_err(|e| (name, e)),
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                Err((name, format!("panicked: {message}").into()))
            }
        }
    });
}

fn signal() -> SignalFuture {
    Box::pin(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            if let Ok(mut term) = signal(SignalKind::terminate()) {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
        }
        let _ = tokio::signal::ctrl_c().await;
    })
}

impl Manager {
    /// A manager with the default [`Config`].
    pub fn new(client: Client) -> Self {
        Self::with_config(client, Config::default())
    }

    /// A manager with the given configuration.
    ///
    /// The metrics and health probe addresses of `config` are bound now, so
    /// [`metrics_address`](Self::metrics_address) is known before the manager runs; a failure
    /// to bind is returned by [`run`](Self::run).
    pub fn with_config(client: Client, config: Config) -> Self {
        let cache = Cache::new(client.clone());
        let shutdown = CancellationToken::new();
        let serving = server::Serving::new(&config.serving, &cache, &shutdown);
        let elector = config
            .leader_election
            .clone()
            .map(|election| LeaderElector::new(client.clone(), election));
        Self {
            elector,
            cache,
            client,
            config,
            runnables: Vec::new(),
            shutdown,
            running: Arc::new(AtomicBool::new(false)),
            serving,
        }
    }

    /// Adds a controller or any other runnable.
    // Named after controller-runtime's `mgr.Add`; a manager is not a number.
    #[allow(clippy::should_implement_trait)]
    #[must_use]
    pub fn add(mut self, runnable: impl Runnable) -> Self {
        runnable.register(&self.cache);
        self.runnables.push(Box::new(runnable));
        self
    }

    /// The manager's client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The manager's shared cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Everything the manager's runnables need to be allowed to do (see
    /// [`rbac`](crate::rbac)).
    pub fn permissions(&self) -> Vec<crate::rbac::Permission> {
        self.runnables
            .iter()
            .flat_map(|r| r.permissions())
            .collect()
    }

    /// The manifests that install this operator: namespace, CRDs, service account, the
    /// minimal roles for what its runnables declare, bindings and Deployment (see
    /// [`deploy`](crate::deploy)). `manager.manifests(&config)?.to_yaml()?` is the whole
    /// install. The Deployment declares the ports of the manager's metrics and health probe
    /// addresses, and probes the latter, unless `config` names ports of its own; with the
    /// manager's [leader election](Config::leader_election), the roles grant its Lease (and
    /// more than one replica may be asked for).
    ///
    /// # Errors
    ///
    /// As [`Manifests::new`](crate::deploy::Manifests::new).
    pub fn manifests(
        &self,
        config: &crate::deploy::Config,
    ) -> Result<crate::deploy::Manifests, crate::deploy::DeployError> {
        let mut config = config.clone().ports_unless_set(
            self.metrics_address().map(|a| a.port()),
            self.health_probe_address().map(|a| a.port()),
        );
        if let Some(election) = &self.config.leader_election {
            config = config.lease_unless_set(
                election.namespace.clone(),
                election.watch,
                election.events,
            );
        }
        crate::deploy::Manifests::new(&config, &self.permissions())
    }

    /// A handle that starts a graceful shutdown.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }

    /// A handle that tells whether the caches are synced.
    pub fn readiness(&self) -> Readiness {
        Readiness {
            cache: self.cache.clone(),
            running: self.running.clone(),
        }
    }

    /// Whether this replica leads, when leader election is configured (and valid).
    pub fn leadership(&self) -> Option<LeadershipHandle> {
        match &self.elector {
            Some(Ok(elector)) => Some(elector.handle()),
            _ => None,
        }
    }

    /// Runs everything until shutdown.
    ///
    /// It returns once the tasks it started have ended (waiting up to a second for those it
    /// had to abort after the grace period) and the informers' watches have stopped, so a
    /// manager built next, after losing the lease for instance, does not share the process
    /// with this one's caches.
    ///
    /// # Errors
    ///
    /// When a runnable fails, when in-flight work outlives the graceful shutdown timeout, when
    /// a second signal forces the exit, when the metrics or probe address could not be bound,
    /// or when leader election is misconfigured or the lease is lost.
    pub async fn run(self) -> Result<(), ManagerError> {
        let Manager {
            client,
            cache,
            config,
            runnables,
            shutdown,
            running,
            serving,
            elector,
        } = self;
        let elector = elector.transpose().map_err(ManagerError::LeaderElection)?;
        let metrics = serving.metrics().cloned();
        // Serving starts first and stops last, so probes and scrapes see start-up and
        // shutdown too.
        let server = serving.start()?;
        let mut signals: Option<SignalFuture> = config.handle_signals.then(signal);
        // Hot standby: a candidate's caches sync before it wins, so it reconciles at once.
        if elector.as_ref().is_none_or(LeaderElector::hot_standby) {
            cache.start();
        }
        running.store(true, Ordering::SeqCst);

        // Runnables that need no leadership start first, then the ones that do
        // (controllers): at once, or while this replica leads.
        let (free, leader): (Vec<_>, Vec<_>) = runnables
            .into_iter()
            .partition(|r| !r.needs_leader_election());
        let mut tasks: JoinSet<TaskResult> = JoinSet::new();
        let ctx = RunContext {
            client,
            cache: cache.clone(),
            shutdown: shutdown.clone(),
            metrics: metrics.clone(),
        };
        for runnable in free {
            spawn_runnable(&mut tasks, runnable, ctx.clone());
        }
        match elector {
            Some(elector) => {
                tasks.spawn(leading::run(elector, leader, ctx));
            }
            None => {
                for runnable in leader {
                    spawn_runnable(&mut tasks, runnable, ctx.clone());
                }
            }
        }

        let mut failure: Option<ManagerError> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = async { signals.as_mut().expect("guarded").await }, if signals.is_some() => {
                    tracing::info!("signal received; shutting down gracefully");
                    signals = Some(signal());
                    break;
                }
                done = tasks.join_next(), if !tasks.is_empty() => {
                    // Panics come back as errors too (caught in the task); a runnable that
                    // returns Ok early just ends.
                    if let Some(Ok(Err((name, source)))) = done {
                        tracing::error!(runnable = %name, error = %source, "runnable failed; shutting down");
                        failure = Some(ManagerError::failed(name, source));
                        break;
                    }
                }
            }
        }
        running.store(false, Ordering::SeqCst);
        shutdown.cancel();

        // Graceful: runnables stop taking work and finish what is in flight.
        let grace = config.graceful_shutdown_timeout;
        // A runnable can still fail while it drains (the lease lost because the API server
        // became unreachable, abandoning what was in flight): that is the outcome to report,
        // not a clean shutdown.
        let mut drain_failure: Option<ManagerError> = None;
        let drained = async {
            while let Some(done) = tasks.join_next().await {
                if let Ok(Err((name, source))) = done {
                    tracing::error!(runnable = %name, error = %source, "runnable failed while shutting down");
                    drain_failure.get_or_insert(ManagerError::failed(name, source));
                }
            }
        };
        let outcome = tokio::select! {
            _ = tokio::time::timeout(grace, drained) => None,
            _ = async { signals.as_mut().expect("guarded").await }, if signals.is_some() => Some(ManagerError::Forced),
        };
        let outcome = match outcome {
            Some(forced) => Some(forced),
            None if !tasks.is_empty() => Some(ManagerError::GracePeriodExceeded(grace)),
            None => None,
        };
        // What outlived the grace period is aborted, and `run` returns only once the aborted
        // tasks have ended and the informers' watches are stopped: a caller that builds a new
        // manager next (after losing the lease, say) does not hold two caches at once. The
        // wait is bounded: a task blocking its thread ends only when it next yields.
        tasks.abort_all();
        let stopped = async {
            while tasks.join_next().await.is_some() {}
            cache.stop_and_wait().await;
        };
        if tokio::time::timeout(ABORTED_TASKS_WAIT, stopped)
            .await
            .is_err()
        {
            tracing::warn!(
                waited = ?ABORTED_TASKS_WAIT,
                "some aborted tasks have not ended (blocking their thread?); returning without them"
            );
        }
        server.stop().await;
        match failure.or(drain_failure).or(outcome) {
            Some(e) => Err(e),
            None => {
                tracing::info!("shut down");
                Ok(())
            }
        }
    }
}
