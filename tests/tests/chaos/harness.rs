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
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::{conditions, wait::await_condition, watcher};
use kube::{CustomResourceExt, ResourceExt};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use windlass::controller::Controller;
use windlass::informer::{Cache, EventHandler, InformerConfig};
use windlass::leader::{LeaderElectionConfig, LeaderElectionError, LeadershipHandle};
use windlass::manager::{Config, Manager, ManagerError, ShutdownHandle};
use windlass::metrics::Metrics;
use windlass::testing::{ApiServer, TestClient};

use super::logs::Logs;
use super::operator::{Behaviour, Entry, External, Journal, Site, SiteReconciler, SiteSpec};
use super::report::Report;
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

/// What the workload last wrote for a site.
#[derive(Debug, Clone)]
pub(super) struct Expect {
    /// `None` once deleted.
    pub(super) spec: Option<SiteSpec>,
    pub(super) generation: i64,
    pub(super) uid: String,
}

/// One run of a replica's manager.
pub(super) struct Incarnation {
    pub(super) number: u32,
    pub(super) leadership: LeadershipHandle,
    pub(super) shutdown: ShutdownHandle,
    pub(super) task: JoinHandle<Result<(), ManagerError>>,
    pub(super) metrics: Metrics,
    pub(super) cache: Cache,
    pub(super) stopping: bool,
}

/// A replica of the operator: a client of its own, and its current incarnation.
pub(super) struct Replica {
    pub(super) name: String,
    pub(super) client: TestClient,
    pub(super) current: Option<Incarnation>,
    pub(super) incarnations: u32,
}

/// A cluster under chaos: see the module documentation.
pub(crate) struct Chaos {
    pub(crate) server: ApiServer,
    pub(crate) settings: Settings,
    pub(crate) rng: fastrand::Rng,
    pub(crate) journal: Journal,
    pub(crate) behaviour: Arc<Behaviour>,
    pub(crate) external: External,
    pub(super) user: kube::Client,
    pub(super) replicas: Vec<Replica>,
    /// Every incarnation's metrics and cache, for counters summed over the whole run.
    pub(super) metrics: Vec<Metrics>,
    pub(super) caches: Vec<Cache>,
    pub(super) expected: BTreeMap<String, Expect>,
    /// Sites the workload broke (a spec that does not decode); fixed when healing.
    pub(super) malformed: BTreeSet<String>,
    pub(super) crd_present: bool,
    /// Exits that are not a lost lease or a requested shutdown.
    pub(super) violations: Vec<String>,
    pub(crate) report: Report,
    pub(super) logs: Logs,
    pub(super) tasks_before: usize,
    pub(super) began: Instant,
    pub(super) healed_at: Option<Instant>,
    pub(super) _logging: tracing::subscriber::DefaultGuard,
}

/// Prints what a replica's Site cache sees (`WINDLASS_CHAOS_TRACE`).
struct TraceCache {
    who: String,
    began: Instant,
}

impl TraceCache {
    fn print(&self, what: &str, site: &Site) {
        println!(
            "{:>8.1?} {} cache: {what} {} uid {} rv {} generation {} deleting {}",
            self.began.elapsed(),
            self.who,
            site.name_any(),
            site.uid().unwrap_or_default(),
            site.resource_version().unwrap_or_default(),
            site.metadata.generation.unwrap_or_default(),
            site.metadata.deletion_timestamp.is_some()
        );
    }
}

impl EventHandler<Site> for TraceCache {
    fn on_add(&self, obj: &Arc<Site>, initial: bool) {
        self.print(if initial { "initial" } else { "add" }, obj);
    }
    fn on_update(&self, _old: &Arc<Site>, new: &Arc<Site>) {
        self.print("update", new);
    }
    fn on_delete(&self, obj: &Arc<Site>) {
        self.print("delete", obj);
    }
}

/// The informers' configuration (the controller's and its children's).
pub(crate) fn informer_config(settings: &Settings) -> InformerConfig {
    let mut informer = InformerConfig::default();
    if let Some(n) = settings.page_size {
        informer = informer.watcher(watcher::Config::default().page_size(n));
    }
    informer
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

pub(super) fn alive_tasks() -> usize {
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
            await_condition(crds, Site::crd_name(), conditions::is_crd_established()),
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
        let informer = informer_config(&self.settings);
        let controller = Controller::new(reconciler)
            .informer(informer.clone())
            .owns_with::<Deployment>(informer.clone())
            .owns_with::<Service>(informer)
            .max_concurrent_reconciles(self.settings.workers)
            .reconcile_timeout(RECONCILE_TIMEOUT)
            .with_cleanup();
        let manager = manager.add(controller);
        let cache = manager.cache().clone();
        if std::env::var_os("WINDLASS_CHAOS_TRACE").is_some() {
            cache
                .informer::<Site>(informer_config(&self.settings))
                .add_handler(Arc::new(TraceCache {
                    who: format!("{}-{number}", replica.name),
                    began: self.began,
                }));
        }
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
                ))) => {
                    println!("{:>8.1?} {who} lost the lease and exited", self.elapsed());
                    self.report.lease_losses += 1;
                }
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

    pub(super) fn names(&self) -> Vec<String> {
        (0..self.settings.sites)
            .map(|i| format!("site-{i}"))
            .collect()
    }

    pub(super) fn live(&self, name: &str) -> bool {
        self.expected.get(name).is_some_and(|e| e.spec.is_some())
    }

    fn random_spec(&mut self) -> SiteSpec {
        SiteSpec {
            image: IMAGES[self.rng.usize(..IMAGES.len())].to_string(),
            replicas: self.rng.i32(1..=5),
        }
    }

    pub(super) fn sites(&self) -> Api<Site> {
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
                self.trace(&format!(
                    "created {name} ({})",
                    site.uid().unwrap_or_default()
                ));
            }
            // The previous site of that name is still being cleaned up, or the CRD is gone.
            Err(_) => self.count_op("refused"),
        }
    }

    /// With `WINDLASS_CHAOS_TRACE` set, prints what the workload did.
    fn trace(&self, what: &str) {
        if std::env::var_os("WINDLASS_CHAOS_TRACE").is_some() {
            println!("{:>8.1?} user: {what}", self.elapsed());
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
                let generation = site.metadata.generation.unwrap_or_default();
                let e = self.expected.get_mut(name).expect("live");
                e.spec = Some(spec);
                e.generation = generation;
                self.count_op("update");
                self.trace(&format!("updated {name} to generation {generation}"));
            }
            Err(_) => self.count_op("refused"),
        }
    }

    async fn delete(&mut self, name: &str) {
        match self.sites().delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                self.expected.get_mut(name).expect("live").spec = None;
                self.count_op("delete");
                self.trace(&format!("deleted {name}"));
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
        crds.delete(Site::crd_name(), &DeleteParams::default())
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
            .get_opt(name)
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
        println!("{:>8.1?} healed", self.elapsed());
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
