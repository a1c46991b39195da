//! The harness: one API server, an operator of 2–3 replicas (managers with leader election,
//! each on its own client so faults can cut one off), a user driving a seeded workload of
//! creates, updates and deletes, and the checks of the five invariants once the faults stop.
//!
//! Replicas that exit because they lost the lease are restarted as a new incarnation (a new
//! pod, with a new identity), as Kubernetes restarts an operator that exits. Any other exit
//! is a violation.
//!
//! Everything runs under tokio's paused clock on the test's one thread: waits are bounded in
//! simulated time, and never used as assertions; the seed fixes the workload, the schedule
//! and windlass's own jitter, so a failure replays with `WINDLASS_CHAOS_SEED`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::{conditions, wait::await_condition, watcher};
use kube::{CustomResourceExt, ResourceExt};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use windlass::condition::is_status_condition_true;
use windlass::controller::Controller;
use windlass::informer::{Cache, InformerConfig};
use windlass::leader::{LeaderElectionConfig, LeaderElectionError, LeadershipHandle};
use windlass::manager::{Config, Manager, ManagerError, ShutdownHandle};
use windlass::metrics::Metrics;
use windlass::testing::{ApiServer, TestClient};

use super::logs::Logs;
use super::operator::{
    Behaviour, Entry, External, Journal, Outcome, Phase, REQUEUE, Site, SiteReconciler, SiteSpec,
};
use super::schedule::Fault;

/// The namespace everything lives in.
pub(crate) const NS: &str = "default";
/// The Lease the replicas compete for.
pub(crate) const LEASE: &str = "chaos-operator";
/// Election timings: client-go's ratios (15 s / 10 s / 2 s), shortened.
pub(crate) const LEASE_DURATION: Duration = Duration::from_secs(3);
pub(crate) const RENEW_DEADLINE: Duration = Duration::from_secs(2);
pub(crate) const RETRY_PERIOD: Duration = Duration::from_millis(500);
/// The controller's reconcile timeout: a hung reconcile is cut off after it.
pub(crate) const RECONCILE_TIMEOUT: Duration = Duration::from_secs(5);
/// The managers' graceful shutdown timeout.
pub(crate) const GRACE: Duration = Duration::from_secs(10);
/// How long, after the faults stop, everything may take to converge (simulated time).
pub(crate) const CONVERGE: Duration = Duration::from_secs(300);
/// Any single bounded wait for something else (a leader, a CRD, a shutdown).
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// The images the workload picks from.
const IMAGES: [&str; 3] = ["nginx:1.27", "nginx:1.28", "httpd:2.4"];

/// The seed: `WINDLASS_CHAOS_SEED` if set (to replay a failure), else the scenario's own.
pub(crate) fn seed(default: u64) -> u64 {
    match std::env::var("WINDLASS_CHAOS_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("WINDLASS_CHAOS_SEED={s:?} is not a u64")),
        Err(_) => default,
    }
}

/// How a scenario's cluster is set up.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) seed: u64,
    pub(crate) replicas: usize,
    pub(crate) sites: usize,
    /// Installs the CRD with a schema that stores any `spec`, so malformed sites reach the
    /// operator's watch.
    pub(crate) permissive: bool,
    pub(crate) workers: usize,
    /// Sites the workload never deletes (so faults aimed at them take effect).
    pub(crate) protected: BTreeSet<String>,
    /// Lists of the informers are paged by this many objects (kube's default: 500).
    pub(crate) page_size: Option<u32>,
}

impl Settings {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            seed,
            replicas: 3,
            sites: 6,
            permissive: false,
            workers: 2,
            protected: BTreeSet::new(),
            page_size: None,
        }
    }

    #[must_use]
    pub(crate) fn page_size(mut self, n: u32) -> Self {
        self.page_size = Some(n);
        self
    }

    #[must_use]
    pub(crate) fn protect(mut self, name: &str) -> Self {
        self.protected.insert(name.to_string());
        self
    }

    #[must_use]
    pub(crate) fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }

    #[must_use]
    pub(crate) fn permissive(mut self) -> Self {
        self.permissive = true;
        self
    }
}

/// What a run came to; summed over rounds in soak mode.
#[derive(Debug, Default, Clone)]
pub(crate) struct Report {
    pub(crate) faults: BTreeMap<&'static str, u64>,
    pub(crate) ops: BTreeMap<&'static str, u64>,
    pub(crate) reconciles: u64,
    pub(crate) reconciles_failed: u64,
    pub(crate) reconciles_abandoned: u64,
    pub(crate) cleanups: u64,
    pub(crate) lease_losses: u64,
    pub(crate) restarts: u64,
    pub(crate) errors_reported: u64,
    pub(crate) panics_caught: u64,
    pub(crate) timeouts: u64,
    pub(crate) relists: u64,
    pub(crate) watch_errors: u64,
    pub(crate) malformed_skipped: u64,
    pub(crate) failed_requests: u64,
    pub(crate) max_queue: u64,
    pub(crate) max_cached: u64,
    pub(crate) max_tasks: u64,
    pub(crate) checks: u64,
    pub(crate) rounds: u64,
    /// Why reconciles failed, by message (with object names blanked), most frequent first.
    pub(crate) failures: BTreeMap<String, u64>,
}

impl Report {
    pub(crate) fn faults_injected(&self) -> u64 {
        self.faults.values().sum()
    }

    pub(crate) fn add(&mut self, other: &Report) {
        for (k, v) in &other.faults {
            *self.faults.entry(k).or_default() += v;
        }
        for (k, v) in &other.ops {
            *self.ops.entry(k).or_default() += v;
        }
        self.reconciles += other.reconciles;
        self.reconciles_failed += other.reconciles_failed;
        self.reconciles_abandoned += other.reconciles_abandoned;
        self.cleanups += other.cleanups;
        self.lease_losses += other.lease_losses;
        self.restarts += other.restarts;
        self.errors_reported += other.errors_reported;
        self.panics_caught += other.panics_caught;
        self.timeouts += other.timeouts;
        self.relists += other.relists;
        self.watch_errors += other.watch_errors;
        self.malformed_skipped += other.malformed_skipped;
        self.failed_requests += other.failed_requests;
        self.max_queue = self.max_queue.max(other.max_queue);
        self.max_cached = self.max_cached.max(other.max_cached);
        self.max_tasks = self.max_tasks.max(other.max_tasks);
        self.checks += other.checks;
        self.rounds += other.rounds;
        for (k, v) in &other.failures {
            *self.failures.entry(k.clone()).or_default() += v;
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "rounds:              {}", self.rounds)?;
        writeln!(
            f,
            "faults injected:     {} {:?}",
            self.faults_injected(),
            self.faults
        )?;
        writeln!(f, "requests failed:     {}", self.failed_requests)?;
        writeln!(f, "workload operations: {:?}", self.ops)?;
        writeln!(
            f,
            "reconciles:          {} ({} failed, {} abandoned), cleanups {}",
            self.reconciles, self.reconciles_failed, self.reconciles_abandoned, self.cleanups
        )?;
        writeln!(
            f,
            "errors reported:     {} (panics caught {}, timeouts {})",
            self.errors_reported, self.panics_caught, self.timeouts
        )?;
        writeln!(
            f,
            "leases lost:         {}, replica restarts {}",
            self.lease_losses, self.restarts
        )?;
        writeln!(
            f,
            "informers:           {} relists, {} watch errors, {} malformed objects skipped",
            self.relists, self.watch_errors, self.malformed_skipped
        )?;
        writeln!(
            f,
            "bounds:              queue <= {}, cached objects <= {}, tasks <= {}",
            self.max_queue, self.max_cached, self.max_tasks
        )?;
        let mut failures: Vec<_> = self.failures.iter().collect();
        failures.sort_by(|a, b| b.1.cmp(a.1));
        for (why, n) in failures.iter().take(6) {
            writeln!(f, "  {n:>5} x {why}")?;
        }
        write!(
            f,
            "invariant checks:    {} passed, 0 violated; nothing lost",
            self.checks
        )
    }
}

/// What the workload last wrote for a site.
#[derive(Debug, Clone)]
struct Expect {
    /// `None` once deleted.
    spec: Option<SiteSpec>,
    generation: i64,
    uid: String,
}

/// One run of a replica's manager.
struct Incarnation {
    number: u32,
    leadership: LeadershipHandle,
    shutdown: ShutdownHandle,
    task: JoinHandle<Result<(), ManagerError>>,
    metrics: Metrics,
    cache: Cache,
    stopping: bool,
}

/// A replica of the operator: a client of its own, and its current incarnation.
struct Replica {
    name: String,
    client: TestClient,
    current: Option<Incarnation>,
    incarnations: u32,
}

/// A cluster under chaos: see the module documentation.
pub(crate) struct Chaos {
    pub(crate) server: ApiServer,
    pub(crate) settings: Settings,
    pub(crate) rng: fastrand::Rng,
    pub(crate) journal: Journal,
    pub(crate) behaviour: Arc<Behaviour>,
    pub(crate) external: External,
    user: kube::Client,
    replicas: Vec<Replica>,
    /// Every incarnation's metrics and cache, for counters summed over the whole run.
    metrics: Vec<Metrics>,
    caches: Vec<Cache>,
    expected: BTreeMap<String, Expect>,
    /// Sites the workload broke (a spec that does not decode); fixed when healing.
    malformed: BTreeSet<String>,
    crd_present: bool,
    /// Exits that are not a lost lease or a requested shutdown.
    violations: Vec<String>,
    pub(crate) report: Report,
    logs: Logs,
    tasks_before: usize,
    began: Instant,
    healed_at: Option<Instant>,
    _logging: tracing::subscriber::DefaultGuard,
}

/// Sums every series of a metric family (counters and gauges).
pub(crate) fn metric(metrics: &Metrics, family: &str) -> f64 {
    metrics
        .registry()
        .gather()
        .iter()
        .filter(|f| f.name() == family)
        .flat_map(|f| f.get_metric().iter())
        .map(|m| m.get_counter().get_value() + m.get_gauge().get_value())
        .sum()
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// The Site CRD; with `permissive`, its `spec` stores anything.
pub(crate) fn site_crd(permissive: bool) -> CustomResourceDefinition {
    let mut crd = serde_json::to_value(Site::crd()).unwrap();
    if permissive {
        let schema = crd
            .pointer_mut("/spec/versions/0/schema/openAPIV3Schema/properties/spec")
            .expect("the CRD has a spec schema");
        *schema = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["required"] = json!([]);
    }
    serde_json::from_value(crd).unwrap()
}

impl Chaos {
    /// Starts the server, installs the CRD, starts the replicas and waits for a leader.
    pub(crate) async fn start(settings: Settings) -> Chaos {
        println!(
            "chaos seed {} (replay with WINDLASS_CHAOS_SEED={})",
            settings.seed, settings.seed
        );
        // windlass's jitter (leader election, resync) draws from this thread's generator.
        fastrand::seed(settings.seed);
        let (logs, logging) = Logs::install();
        let tasks_before = alive_tasks();
        let server = ApiServer::new();
        let user = server.client_named("user").client();
        let mut chaos = Chaos {
            rng: fastrand::Rng::with_seed(settings.seed),
            replicas: (0..settings.replicas)
                .map(|i| {
                    let name = ["a", "b", "c", "d", "e"][i % 5].to_string();
                    Replica {
                        client: server.client_named(&name),
                        name,
                        current: None,
                        incarnations: 0,
                    }
                })
                .collect(),
            server,
            settings,
            journal: Journal::default(),
            behaviour: Arc::default(),
            external: External::default(),
            user,
            metrics: Vec::new(),
            caches: Vec::new(),
            expected: BTreeMap::new(),
            malformed: BTreeSet::new(),
            crd_present: false,
            violations: Vec::new(),
            report: Report {
                rounds: 1,
                ..Report::default()
            },
            logs,
            tasks_before,
            began: Instant::now(),
            healed_at: None,
            _logging: logging,
        };
        chaos.install_crd().await;
        for i in 0..chaos.replicas.len() {
            chaos.start_incarnation(i);
        }
        chaos.wait_leader().await;
        chaos
    }

    async fn install_crd(&mut self) {
        let crds: Api<CustomResourceDefinition> = Api::all(self.user.clone());
        crds.create(&PostParams::default(), &site_crd(self.settings.permissive))
            .await
            .expect("the CRD is accepted");
        tokio::time::timeout(
            WAIT,
            await_condition(crds, &Site::crd_name(), conditions::is_crd_established()),
        )
        .await
        .expect("the CRD is established in time")
        .expect("waiting for the CRD works");
        self.crd_present = true;
    }

    fn start_incarnation(&mut self, i: usize) {
        let replica = &mut self.replicas[i];
        replica.incarnations += 1;
        let number = replica.incarnations;
        let identity = format!("{}-{number}", replica.name);
        let metrics = Metrics::new();
        let election = LeaderElectionConfig::new(LEASE)
            .namespace(NS)
            .identity(identity)
            .lease_duration(LEASE_DURATION)
            .renew_deadline(RENEW_DEADLINE)
            .retry_period(RETRY_PERIOD);
        let config = Config::default()
            .handle_signals(false)
            .graceful_shutdown_timeout(GRACE)
            .metrics(Some(metrics.clone()))
            .leader_election(election);
        let manager = Manager::with_config(replica.client.client(), config);
        let leadership = manager.leadership().expect("leader election is configured");
        let reconciler = SiteReconciler {
            replica: replica.name.clone(),
            incarnation: number,
            journal: self.journal.clone(),
            behaviour: self.behaviour.clone(),
            external: self.external.clone(),
            leadership: leadership.clone(),
        };
        let mut informer = InformerConfig::default();
        if let Some(n) = self.settings.page_size {
            informer = informer.watcher(watcher::Config::default().page_size(n));
        }
        let controller = Controller::new(reconciler)
            .informer(informer.clone())
            .owns_with::<Deployment>(informer.clone())
            .owns_with::<Service>(informer)
            .max_concurrent_reconciles(self.settings.workers)
            .reconcile_timeout(RECONCILE_TIMEOUT)
            .with_cleanup();
        let manager = manager.add(controller);
        let cache = manager.cache().clone();
        let shutdown = manager.shutdown_handle();
        replica.current = Some(Incarnation {
            number,
            leadership,
            shutdown,
            task: tokio::spawn(manager.run()),
            metrics: metrics.clone(),
            cache: cache.clone(),
            stopping: false,
        });
        self.metrics.push(metrics);
        self.caches.push(cache);
    }

    /// Restarts every replica whose manager has exited, judging why it exited.
    pub(crate) async fn supervise(&mut self) {
        for i in 0..self.replicas.len() {
            let finished = self.replicas[i]
                .current
                .as_ref()
                .is_some_and(|c| c.task.is_finished());
            if !finished {
                continue;
            }
            let inc = self.replicas[i].current.take().expect("checked");
            let who = format!("replica {}-{}", self.replicas[i].name, inc.number);
            match inc.task.await {
                Ok(Ok(())) if inc.stopping => {}
                Ok(Ok(())) => self
                    .violations
                    .push(format!("{who} returned without being asked to stop")),
                Ok(Err(ManagerError::LeaderElection(
                    LeaderElectionError::RenewDeadlineExceeded { .. }
                    | LeaderElectionError::LeaseTaken { .. },
                ))) => self.report.lease_losses += 1,
                Ok(Err(e)) => self.violations.push(format!("{who} failed: {e}")),
                Err(e) => self.violations.push(format!("{who} panicked: {e}")),
            }
            self.report.restarts += 1;
            self.start_incarnation(i);
        }
    }

    /// The replica that leads now, if any.
    pub(crate) fn leader(&self) -> Option<usize> {
        self.replicas
            .iter()
            .position(|r| r.current.as_ref().is_some_and(|c| c.leadership.is_leader()))
    }

    /// Waits (bounded) until a replica leads; restarts replicas meanwhile.
    pub(crate) async fn wait_leader(&mut self) -> usize {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(i) = self.leader() {
                return i;
            }
            assert!(
                Instant::now() < deadline,
                "seed {}: no replica leads within {WAIT:?}",
                self.settings.seed
            );
            self.supervise().await;
            tokio::time::sleep(RETRY_PERIOD / 5).await;
        }
    }

    /// Every replica's own fault handle.
    pub(crate) fn replica_faults(&self) -> Vec<windlass::testing::Faults> {
        self.replicas
            .iter()
            .map(|r| r.client.faults().clone())
            .collect()
    }

    /// The replica `i`'s fault handle.
    pub(crate) fn faults_of(&self, i: usize) -> windlass::testing::Faults {
        self.replicas[i].client.faults().clone()
    }

    /// Asks the leader to shut down gracefully (as on SIGTERM); the harness restarts it.
    /// Returns its index and incarnation.
    pub(crate) fn shutdown_leader(&mut self) -> Option<(usize, u32)> {
        let i = self.leader()?;
        let inc = self.replicas[i].current.as_mut()?;
        inc.stopping = true;
        inc.shutdown.shutdown();
        Some((i, inc.number))
    }

    /// Waits (bounded) for replica `i`'s current incarnation to exit, and returns how long
    /// it took and what it returned; the harness then restarts it.
    pub(crate) async fn wait_exit(&mut self, i: usize) -> (Duration, Result<(), String>) {
        let inc = self.replicas[i].current.take().expect("the replica runs");
        let start = Instant::now();
        let result = tokio::time::timeout(WAIT, inc.task)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "seed {}: a replica did not exit in {WAIT:?}",
                    self.settings.seed
                )
            });
        let took = start.elapsed();
        let result = match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("panicked: {e}")),
        };
        self.report.restarts += 1;
        self.start_incarnation(i);
        (took, result)
    }

    fn names(&self) -> Vec<String> {
        (0..self.settings.sites)
            .map(|i| format!("site-{i}"))
            .collect()
    }

    fn live(&self, name: &str) -> bool {
        self.expected.get(name).is_some_and(|e| e.spec.is_some())
    }

    fn random_spec(&mut self) -> SiteSpec {
        SiteSpec {
            image: IMAGES[self.rng.usize(..IMAGES.len())].to_string(),
            replicas: self.rng.i32(1..=5),
        }
    }

    fn sites(&self) -> Api<Site> {
        Api::namespaced(self.user.clone(), NS)
    }

    fn count_op(&mut self, op: &'static str) {
        *self.report.ops.entry(op).or_default() += 1;
    }

    /// A live site chosen at random (one the workload has not broken).
    pub(crate) fn random_live(&mut self) -> Option<String> {
        let live: Vec<String> = self
            .names()
            .into_iter()
            .filter(|n| self.live(n) && !self.malformed.contains(n))
            .collect();
        (!live.is_empty()).then(|| live[self.rng.usize(..live.len())].clone())
    }

    /// Creates every site that does not exist (at the start of a scenario).
    pub(crate) async fn create_all(&mut self) {
        for name in self.names() {
            if !self.live(&name) {
                self.create(&name).await;
            }
        }
    }

    async fn create(&mut self, name: &str) {
        let spec = self.random_spec();
        match self
            .sites()
            .create(&PostParams::default(), &Site::new(name, spec.clone()))
            .await
        {
            Ok(site) => {
                self.expected.insert(
                    name.to_string(),
                    Expect {
                        spec: Some(spec),
                        generation: site.metadata.generation.unwrap_or_default(),
                        uid: site.uid().unwrap_or_default(),
                    },
                );
                self.count_op("create");
            }
            // The previous site of that name is still being cleaned up, or the CRD is gone.
            Err(_) => self.count_op("refused"),
        }
    }

    async fn update(&mut self, name: &str) {
        let spec = self.random_spec();
        let patch = json!({"spec": spec});
        match self
            .sites()
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(site) => {
                let e = self.expected.get_mut(name).expect("live");
                e.spec = Some(spec);
                e.generation = site.metadata.generation.unwrap_or_default();
                self.count_op("update");
            }
            Err(_) => self.count_op("refused"),
        }
    }

    async fn delete(&mut self, name: &str) {
        match self.sites().delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                self.expected.get_mut(name).expect("live").spec = None;
                self.count_op("delete");
            }
            Err(_) => self.count_op("refused"),
        }
    }

    /// One random workload operation.
    pub(crate) async fn op(&mut self) {
        if !self.crd_present {
            return;
        }
        let names = self.names();
        let name = names[self.rng.usize(..names.len())].clone();
        if self.malformed.contains(&name) {
            return;
        }
        if !self.live(&name) {
            self.create(&name).await;
        } else if self.rng.u8(..100) < 75 || self.settings.protected.contains(&name) {
            self.update(&name).await;
        } else {
            self.delete(&name).await;
        }
    }

    /// Writes a spec that does not decode as a `SiteSpec` (needs a permissive CRD).
    pub(crate) async fn break_site(&mut self, name: &str) {
        assert!(
            self.settings.permissive,
            "malformed sites need a permissive CRD"
        );
        let patch = json!({"spec": {"replicas": "many", "image": 42}});
        // Untyped: the answer does not decode as a Site either.
        let untyped: Api<DynamicObject> =
            Api::namespaced_with(self.user.clone(), NS, &ApiResource::erase::<Site>(&()));
        untyped
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .expect("a permissive CRD stores a malformed spec");
        self.malformed.insert(name.to_string());
    }

    /// Deletes the CRD (the API server deletes every site first, through their finalizers).
    pub(crate) async fn delete_crd(&mut self) {
        let crds: Api<CustomResourceDefinition> = Api::all(self.user.clone());
        crds.delete(&Site::crd_name(), &DeleteParams::default())
            .await
            .expect("the CRD can be deleted");
        self.crd_present = false;
        for e in self.expected.values_mut() {
            e.spec = None;
        }
        self.malformed.clear();
    }

    /// Waits (bounded) until the CRD is gone (every site cleaned up), then installs it again.
    pub(crate) async fn recreate_crd(&mut self) {
        let crds: Api<CustomResourceDefinition> = Api::all(self.user.clone());
        let name = Site::crd_name();
        let deadline = Instant::now() + CONVERGE;
        while crds
            .get_opt(&name)
            .await
            .expect("reading CRDs works")
            .is_some()
        {
            assert!(
                Instant::now() < deadline,
                "seed {}: the CRD was not deleted within {CONVERGE:?}: its sites were not cleaned up",
                self.settings.seed
            );
            self.supervise().await;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.install_crd().await;
    }

    pub(crate) fn crd_present(&self) -> bool {
        self.crd_present
    }

    /// Samples the bounded resources: queue length and cached objects per incarnation,
    /// tasks in the runtime.
    pub(crate) fn sample(&mut self) {
        for r in &self.replicas {
            if let Some(c) = &r.current {
                let queue = metric(&c.metrics, "workqueue_depth") as u64;
                let cached: u64 = c.cache.stats().iter().map(|(_, s)| s.objects).sum();
                self.report.max_queue = self.report.max_queue.max(queue);
                self.report.max_cached = self.report.max_cached.max(cached);
            }
        }
        self.report.max_tasks = self.report.max_tasks.max(alive_tasks() as u64);
    }

    /// Runs the workload for `duration` (simulated), injecting each fault of `schedule` at its
    /// offset from now.
    pub(crate) async fn run(&mut self, schedule: &[(Duration, Fault)], duration: Duration) {
        let start = Instant::now();
        let end = start + duration;
        let mut next = 0;
        let mut next_op = start;
        for _ in 0..1_000_000 {
            let now = Instant::now();
            if now >= end {
                break;
            }
            // Faults land at their own instants, not only between workload operations.
            while next < schedule.len() && start + schedule[next].0 <= now {
                let fault = schedule[next].1.clone();
                self.inject(fault).await;
                next += 1;
            }
            if now >= next_op {
                self.op().await;
                self.supervise().await;
                self.sample();
                next_op = Instant::now() + Duration::from_millis(self.rng.u64(100..500));
            }
            let mut wake = next_op.min(end);
            if let Some((at, _)) = schedule.get(next) {
                wake = wake.min(start + *at);
            }
            tokio::time::sleep_until(wake).await;
        }
    }

    /// Simulated time since the start.
    pub(crate) fn elapsed(&self) -> Duration {
        self.began.elapsed()
    }

    /// Counts a fault as injected.
    pub(crate) fn count_fault(&mut self, kind: &'static str) {
        *self.report.faults.entry(kind).or_default() += 1;
    }

    /// Stops every fault: rules, latency, disconnections, watch breaking, misbehaviour; fixes
    /// the sites the workload broke and reinstalls a deleted CRD.
    pub(crate) async fn heal(&mut self) {
        self.server.faults().clear();
        for f in self.replica_faults() {
            f.clear();
        }
        self.behaviour.heal();
        if !self.crd_present {
            self.recreate_crd().await;
        }
        for name in std::mem::take(&mut self.malformed) {
            // The user notices and writes a valid spec over the broken one.
            let spec = self.random_spec();
            let site = self
                .sites()
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": spec})),
                )
                .await
                .expect("fixing a malformed site works");
            let e = self.expected.get_mut(&name).expect("a broken site is live");
            e.spec = Some(spec);
            e.generation = site.metadata.generation.unwrap_or_default();
            self.count_op("fix");
        }
        self.healed_at = Some(Instant::now());
    }

    /// Why the cluster does not match what the workload asked for, if it does not.
    async fn diverged(&self) -> Option<String> {
        let sites = self.sites();
        let deployments: Api<Deployment> = Api::namespaced(self.user.clone(), NS);
        let services: Api<Service> = Api::namespaced(self.user.clone(), NS);
        let failing = self.behaviour.failing();
        let listed = match sites.list(&ListParams::default()).await {
            Ok(l) => l.items,
            Err(e) => return Some(format!("listing sites: {e}")),
        };
        for s in &listed {
            if !self.live(&s.name_any()) {
                return Some(format!("site {} still exists", s.name_any()));
            }
        }
        for (name, e) in &self.expected {
            let Some(spec) = &e.spec else {
                if self.external.has(&e.uid) {
                    return Some(format!(
                        "deleted site {name} ({}) was not cleaned up",
                        e.uid
                    ));
                }
                continue;
            };
            let Some(site) = listed.iter().find(|s| &s.name_any() == name) else {
                return Some(format!("site {name} is missing"));
            };
            if site.uid().as_deref() != Some(e.uid.as_str()) {
                return Some(format!("site {name} has another uid"));
            }
            if site.metadata.generation != Some(e.generation) {
                return Some(format!("site {name} is at another generation"));
            }
            if failing.contains(name) {
                continue;
            }
            let status = site.status.clone().unwrap_or_default();
            if status.observed_generation != e.generation
                || !is_status_condition_true(&status.conditions, "Ready")
                || status
                    .conditions
                    .iter()
                    .any(|c| c.observed_generation != Some(e.generation))
            {
                return Some(format!(
                    "site {name}: status {status:?} is not Ready at generation {}",
                    e.generation
                ));
            }
            if site.finalizers().is_empty() {
                return Some(format!("site {name} has no finalizer"));
            }
            if !self.external.has(&e.uid) {
                return Some(format!("site {name} is not registered outside the cluster"));
            }
            let owned = |refs: Option<&Vec<_>>| {
                refs.is_some_and(
                    |r: &Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>| {
                        r.iter()
                            .any(|o| o.uid == e.uid && o.controller == Some(true))
                    },
                )
            };
            match deployments.get_opt(name).await {
                Ok(Some(d)) => {
                    let replicas = d.spec.replicas;
                    let image = d
                        .spec
                        .template
                        .spec
                        .as_ref()
                        .and_then(|p| p.containers.first())
                        .and_then(|c| c.image.clone());
                    if replicas != Some(spec.replicas)
                        || image.as_deref() != Some(spec.image.as_str())
                        || !owned(d.metadata.owner_references.as_ref())
                    {
                        return Some(format!("deployment {name} does not match {spec:?}"));
                    }
                }
                Ok(None) => return Some(format!("deployment {name} is missing")),
                Err(e) => return Some(format!("reading deployment {name}: {e}")),
            }
            match services.get_opt(name).await {
                Ok(Some(s)) if owned(s.metadata.owner_references.as_ref()) => {}
                Ok(_) => return Some(format!("service {name} is missing or not owned")),
                Err(e) => return Some(format!("reading service {name}: {e}")),
            }
        }
        // Children of deleted sites are collected with them.
        for name in self.names() {
            if self.live(&name) {
                continue;
            }
            if let Ok(Some(_)) = deployments.get_opt(&name).await {
                return Some(format!("deployment {name} outlived its site"));
            }
            if let Ok(Some(_)) = services.get_opt(&name).await {
                return Some(format!("service {name} outlived its site"));
            }
        }
        None
    }

    /// Heals, then checks invariants 1 (convergence), 3 (no lost work, no lost requeue),
    /// 4 (bounded queue and cache) and 5 (errors reported, never a crash).
    pub(crate) async fn check(&mut self) {
        if self.healed_at.is_none() {
            self.heal().await;
        }
        let seed = self.settings.seed;
        // 1. Convergence, within a bound.
        let healed = Instant::now();
        let mut last = None;
        for _ in 0..100_000 {
            self.supervise().await;
            self.sample();
            last = self.diverged().await;
            if last.is_none() || healed.elapsed() > CONVERGE {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if let Some(why) = last {
            panic!(
                "seed {seed}: not converged {CONVERGE:?} after the faults stopped: {why}\n{}",
                self.report
            );
        }
        let converged_in = healed.elapsed();
        self.report.checks += self.expected.len() as u64;
        println!("converged {converged_in:?} after healing");

        // 3. No lost work: the last change of every site was seen by a reconcile (a
        // successful one unless it fails forever); every deleted site that was reconciled
        // was cleaned up.
        let entries = self.journal.all();
        let failing = self.behaviour.failing();
        for (name, e) in &self.expected {
            self.report.checks += 1;
            let saw = |phase: Phase, ok: bool| {
                entries.iter().any(|x| {
                    x.uid == e.uid
                        && x.phase == phase
                        && (phase == Phase::Cleanup || x.generation == e.generation)
                        && (!ok || x.outcome == Outcome::Done)
                })
            };
            match &e.spec {
                Some(_) if failing.contains(name) => assert!(
                    saw(Phase::Reconcile, false),
                    "seed {seed}: the last change of {name} (generation {}) was never attempted",
                    e.generation
                ),
                Some(_) => assert!(
                    saw(Phase::Reconcile, true),
                    "seed {seed}: the last change of {name} (generation {}) was never reconciled",
                    e.generation
                ),
                None => {
                    assert!(
                        !self.external.has(&e.uid),
                        "seed {seed}: deleted site {name} was not cleaned up"
                    );
                    if saw(Phase::Reconcile, true) {
                        assert!(
                            saw(Phase::Cleanup, true),
                            "seed {seed}: deleted site {name} was released without its cleanup"
                        );
                    }
                }
            }
        }
        // ... and no periodic requeue was dropped: every live site is reconciled again
        // within its requeue period (plus the jitter of a takeover).
        let since = Instant::now();
        let window = REQUEUE * 2;
        while since.elapsed() < window {
            self.supervise().await;
            self.sample();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let entries = self.journal.all();
        for (name, e) in &self.expected {
            if e.spec.is_none() || failing.contains(name) {
                continue;
            }
            self.report.checks += 1;
            assert!(
                entries
                    .iter()
                    .any(|x| x.uid == e.uid && x.phase == Phase::Reconcile && x.start >= since),
                "seed {seed}: site {name} was not reconciled again within {window:?}: a requeue was lost"
            );
        }

        // 4. Bounded resources: a key is queued at most once, and a cache holds at most the
        // sites and their two children.
        self.sample();
        let sites = self.settings.sites as u64;
        self.report.checks += 2;
        assert!(
            self.report.max_queue <= sites,
            "seed {seed}: a queue held {} keys for {sites} sites",
            self.report.max_queue
        );
        assert!(
            self.report.max_cached <= 3 * sites,
            "seed {seed}: a cache held {} objects for {sites} sites",
            self.report.max_cached
        );

        // 5. Clear errors.
        self.check_errors();
    }

    /// Invariant 5: no replica crashed or failed for another reason than a lost lease; every
    /// failed reconcile was counted and logged once; every panic was caught and counted;
    /// every lost lease was logged.
    fn check_errors(&mut self) {
        let seed = self.settings.seed;
        self.report.checks += 4;
        assert!(
            self.violations.is_empty(),
            "seed {seed}: replicas exited badly: {:?}",
            self.violations
        );
        let sum =
            |family: &str| -> u64 { self.metrics.iter().map(|m| metric(m, family) as u64).sum() };
        let errors = sum("controller_runtime_reconcile_errors_total");
        let panics = sum("controller_runtime_reconcile_panics_total");
        let timeouts = sum("controller_runtime_reconcile_timeouts_total");
        let logged = self.logs.count("reconcile failed")
            + self.logs.count("conflict: the object changed")
            + self.logs.count("reconcile panicked")
            + self.logs.count("reconcile timed out");
        assert_eq!(
            errors, logged,
            "seed {seed}: {errors} failed reconciles were counted but {logged} logged"
        );
        let injected_panics = self.behaviour.panics.load(Ordering::SeqCst);
        assert_eq!(
            panics, injected_panics,
            "seed {seed}: {injected_panics} reconciles panicked but {panics} were caught and counted"
        );
        assert_eq!(
            self.logs.count("reconcile panicked"),
            panics,
            "seed {seed}: every caught panic is logged"
        );
        // Not only hung reconciles time out: a slow enough API server makes a reconcile's
        // round trips outlast the timeout too.
        assert_eq!(
            self.logs.count("reconcile timed out"),
            timeouts,
            "seed {seed}: every timeout is logged"
        );
        assert_eq!(
            self.logs.count("stopped leading"),
            self.report.lease_losses,
            "seed {seed}: every lost lease is logged"
        );
        self.report.errors_reported = errors;
        self.report.panics_caught = panics;
        self.report.timeouts = timeouts;
    }

    /// Shuts every replica down (bounded by the grace period), checks invariant 2
    /// (exclusivity) over the whole journal and invariant 4's task count, and returns the
    /// report.
    pub(crate) async fn finish(mut self) -> Report {
        let seed = self.settings.seed;
        if self.healed_at.is_none() {
            self.check().await;
        }
        self.supervise().await;
        let mut stopping = Vec::new();
        for r in &mut self.replicas {
            if let Some(mut inc) = r.current.take() {
                inc.stopping = true;
                inc.shutdown.shutdown();
                stopping.push((format!("{}-{}", r.name, inc.number), inc));
            }
        }
        let start = Instant::now();
        for (who, inc) in stopping {
            let result = tokio::time::timeout(GRACE + Duration::from_secs(5), inc.task)
                .await
                .unwrap_or_else(|_| panic!("seed {seed}: replica {who} did not shut down"));
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("seed {seed}: replica {who} shut down with an error: {e}"),
                Err(e) => panic!("seed {seed}: replica {who} panicked: {e}"),
            }
        }
        self.report.checks += 1;
        assert!(
            start.elapsed() <= GRACE,
            "seed {seed}: shutdown took {:?}",
            start.elapsed()
        );

        // 2. Exclusivity.
        let entries = self.journal.all();
        check_exclusive(&entries, &mut self.report.checks)
            .unwrap_or_else(|why| panic!("seed {seed}: {why}"));

        self.report.reconciles = entries
            .iter()
            .filter(|e| e.phase == Phase::Reconcile)
            .count() as u64;
        self.report.reconciles_failed = entries
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Failed(_)))
            .count() as u64;
        self.report.reconciles_abandoned = entries
            .iter()
            .filter(|e| e.outcome == Outcome::Abandoned)
            .count() as u64;
        for prefix in [
            "reconcile failed",
            "conflict: the object changed",
            "reconcile panicked",
            "reconcile timed out",
        ] {
            for (line, n) in self.logs.lines(prefix) {
                let mut line = line;
                for name in self.names() {
                    line = line.replace(&format!("\"{name}\""), "\"<site>\"");
                    line = line.replace(&name, "<site>");
                }
                *self.report.failures.entry(line).or_default() += n;
            }
        }
        self.report.cleanups = entries.iter().filter(|e| e.phase == Phase::Cleanup).count() as u64;
        for cache in &self.caches {
            for (_, s) in cache.stats() {
                self.report.relists += s.relists;
                self.report.watch_errors += s.watch_errors;
                self.report.malformed_skipped += s.malformed;
            }
        }
        let requests = self.server.requests();
        self.report.failed_requests = requests
            .iter()
            .filter(|r| r.status == 0 || r.status >= 500 || r.status == 429 || r.status == 410)
            .count() as u64;

        // 4. No task outlives the operator and the server.
        let report = self.report.clone();
        let before = self.tasks_before;
        let Chaos {
            replicas,
            metrics,
            caches,
            server,
            user,
            ..
        } = self;
        drop((replicas, metrics, caches, server, user));
        let deadline = Instant::now() + WAIT;
        while alive_tasks() > before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let left = alive_tasks();
        assert!(
            left <= before,
            "seed {seed}: {left} tasks alive after shutdown, {before} before the start: a task leaked"
        );
        let mut report = report;
        report.checks += 1;
        println!("{report}");
        report
    }

    /// Whether `name` is replica `i`'s name.
    pub(crate) fn is_replica(&self, i: usize, name: &str) -> bool {
        self.replicas[i].name == name
    }

    /// Lists that continued a paged list and were answered 410 Expired.
    pub(crate) fn expired_continues(&self) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| {
                r.verb == Some(windlass::testing::Verb::List)
                    && r.query.contains("continue=")
                    && r.status == 410
            })
            .count()
    }

    /// The journal entries so far.
    pub(crate) fn entries(&self) -> Vec<Entry> {
        self.journal.all()
    }
}

/// Invariant 2 over a journal: every window opened while its replica led; no two windows
/// of one key overlap; no two replicas (incarnations) reconcile at the same time. Windows are
/// compared by the process-wide sequence of events, which orders them even where the paused
/// clock does not move.
pub(crate) fn check_exclusive(entries: &[Entry], checks: &mut u64) -> Result<(), String> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by_key(|e| e.start_seq);
    for (i, a) in sorted.iter().enumerate() {
        *checks += 1;
        if !a.leading {
            return Err(format!(
                "replica {}-{} reconciled {} without leading: {a:?}",
                a.replica, a.incarnation, a.key
            ));
        }
        for b in &sorted[i + 1..] {
            if b.start_seq > a.end_seq {
                break;
            }
            *checks += 1;
            if a.key == b.key {
                return Err(format!(
                    "{} was reconciled twice at once:\n  {a:?}\n  {b:?}",
                    a.key
                ));
            }
            if (&a.replica, a.incarnation) != (&b.replica, b.incarnation) {
                return Err(format!(
                    "two replicas reconciled at once:\n  {a:?}\n  {b:?}"
                ));
            }
        }
    }
    Ok(())
}
