//! Leader failover (BENCHMARKS.md S7): how long an operator goes without a leader when the
//! leader shuts down gracefully, crashes (no release), or is cut off from the API server; and
//! whether two leaders ever overlap.
//!
//! Two replicas run against the same in-process `windlass::testing` server, each with its own
//! client. windlass's side is two `Manager`s with leader election and a ConfigMap controller
//! that is always busy (20 objects, each reconciled every 50 ms), so an overlap would show.
//! The baseline is a line-by-line port of client-go's `leaderelection` (written below: the
//! `kube-leader-election` crate depends on kube 4, not the kube 5 windlass is built on, and its
//! API is a single `try_acquire_or_renew` call, with expiry judged by comparing `renewTime`
//! with the local wall clock). The baseline elects only; its figure is the time until the new
//! replica holds the lease, which windlass reports too, next to its time to first reconcile.
//!
//! Times are wall time, from the trigger (shutdown call, task abort, client disconnect) or,
//! for crash and cut-off, from the old leader's last renewal as seen by a watch, since that
//! is what the lease duration counts from.
//!
//! ```sh
//! cargo bench -p windlass --features testing --bench leader
//! WINDLASS_BENCH_QUICK=1 cargo bench -p windlass --features testing --bench leader
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;
use windlass::controller::{Action, Context, Controller, reconciler_fn};
use windlass::leader::{LeaderElectionConfig, LeadershipHandle};
use windlass::manager::{Config, Manager, ShutdownHandle};
use windlass::testing::{ApiServer, TestClient};

const LEASE: &str = "bench";

#[derive(Clone, Copy)]
struct Durations {
    lease: Duration,
    renew: Duration,
    retry: Duration,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Trigger {
    Graceful,
    Crash,
    CutOff,
}

/// What one failover measured.
#[derive(Clone, Copy, Debug, Default)]
struct Failover {
    /// From the trigger until the new replica held the lease.
    to_lease: Duration,
    /// From the old leader's last renewal until the new replica held the lease.
    from_renewal: Duration,
    /// From the trigger until the new leader's first reconcile (windlass only).
    to_reconcile: Duration,
    /// Reconciles that started while another replica had one in flight (windlass only).
    overlaps: usize,
}

// ---------------------------------------------------------------------------------------
// Observing the Lease.

/// The instant each write by `holder` was seen.
#[derive(Clone, Default)]
struct LeaseLog(Arc<Mutex<Vec<(Instant, String)>>>);

impl LeaseLog {
    fn start(server: &ApiServer) -> (Self, tokio::task::JoinHandle<()>) {
        let log = Self::default();
        let api: Api<Lease> = Api::namespaced(server.client(), "default");
        let config = watcher::Config::default().fields(&format!("metadata.name={LEASE}"));
        let l = log.clone();
        let task = tokio::spawn(async move {
            let mut s = watcher::watcher(api, config).default_backoff().boxed();
            while let Some(e) = s.next().await {
                if let Ok(watcher::Event::Apply(lease) | watcher::Event::InitApply(lease)) = e {
                    let holder = lease
                        .spec
                        .and_then(|s| s.holder_identity)
                        .unwrap_or_default();
                    l.0.lock().push((Instant::now(), holder));
                }
            }
        });
        (log, task)
    }

    /// Waits for the next write by `holder` after now; returns when it was seen.
    async fn next_by(&self, holder: &str) -> Instant {
        let since = self.0.lock().len();
        loop {
            if let Some((t, _)) = self.0.lock()[since..].iter().find(|(_, h)| h == holder) {
                return *t;
            }
            sleep(Duration::from_millis(1)).await;
        }
    }

    fn last_by(&self, holder: &str) -> Option<Instant> {
        self.0
            .lock()
            .iter()
            .rev()
            .find(|(_, h)| h == holder)
            .map(|(t, _)| *t)
    }
}

// ---------------------------------------------------------------------------------------
// windlass's side.

/// Reconcile bookkeeping shared by the replicas of one run.
#[derive(Default)]
struct Activity {
    in_flight: [AtomicUsize; 2],
    overlaps: AtomicUsize,
    first: Mutex<[Option<Instant>; 2]>,
}

struct WindlassReplica {
    client: TestClient,
    leadership: LeadershipHandle,
    shutdown: ShutdownHandle,
    task: tokio::task::JoinHandle<()>,
}

fn windlass_replica(
    server: &ApiServer,
    d: Durations,
    i: usize,
    act: &Arc<Activity>,
) -> WindlassReplica {
    let name = ["a", "b"][i];
    let client = server.client_named(name);
    let act = act.clone();
    let controller = Controller::new(reconciler_fn(
        move |_cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| {
            let act = act.clone();
            async move {
                act.first.lock()[i].get_or_insert_with(Instant::now);
                act.in_flight[i].fetch_add(1, Ordering::SeqCst);
                if act.in_flight[1 - i].load(Ordering::SeqCst) > 0 {
                    act.overlaps.fetch_add(1, Ordering::SeqCst);
                }
                tokio::task::yield_now().await;
                act.in_flight[i].fetch_sub(1, Ordering::SeqCst);
                Ok::<_, kube::Error>(Action::requeue(Duration::from_millis(50)))
            }
        },
    ));
    let election = LeaderElectionConfig::new(LEASE)
        .namespace("default")
        .identity(name)
        .lease_duration(d.lease)
        .renew_deadline(d.renew)
        .retry_period(d.retry);
    let manager = Manager::with_config(
        client.client(),
        Config::default()
            .handle_signals(false)
            .leader_election(election),
    )
    .add(controller);
    let leadership = manager.leadership().expect("configured");
    let shutdown = manager.shutdown_handle();
    let task = tokio::spawn(async move {
        let _ = manager.run().await;
    });
    WindlassReplica {
        client,
        leadership,
        shutdown,
        task,
    }
}

async fn windlass_failover(server: &ApiServer, d: Durations, trigger: Trigger) -> Failover {
    let act = Arc::new(Activity::default());
    let (log, observer) = LeaseLog::start(server);
    let a = windlass_replica(server, d, 0, &act);
    a.leadership.wait_leading().await;
    let b = windlass_replica(server, d, 1, &act);
    sleep(Duration::from_millis(300)).await; // b syncs its cache and watches the Lease
    let renewal = log.next_by("a").await;
    let t0 = Instant::now();
    match trigger {
        Trigger::Graceful => a.shutdown.shutdown(),
        Trigger::Crash => a.task.abort(),
        Trigger::CutOff => a.client.faults().disconnect(),
    }
    b.leadership.wait_leading().await;
    let leads = Instant::now();
    let first = loop {
        if let Some(t) = act.first.lock()[1] {
            break t;
        }
        sleep(Duration::from_micros(200)).await;
    };
    sleep(Duration::from_millis(100)).await;
    let out = Failover {
        to_lease: leads - t0,
        from_renewal: leads - log.last_by("a").unwrap_or(renewal).min(t0).max(renewal),
        to_reconcile: first - t0,
        overlaps: act.overlaps.load(Ordering::SeqCst),
    };
    a.shutdown.shutdown();
    b.shutdown.shutdown();
    a.task.abort();
    let _ = b.task.await;
    observer.abort();
    cleanup(server).await;
    out
}

async fn cleanup(server: &ApiServer) {
    server.faults().clear();
    let api: Api<Lease> = Api::namespaced(server.client(), "default");
    let _ = api.delete(LEASE, &DeleteParams::default()).await;
}

// ---------------------------------------------------------------------------------------
// The baseline: client-go's leaderelection, ported as it is (v0.31, `leaderelection.go`).

struct GoElector {
    api: Api<Lease>,
    id: String,
    d: Durations,
    /// observedRecord (holder, duration, raw spec to compare), observedTime.
    observed: Option<(LeaseSpec, Instant)>,
    lease: Option<Lease>,
    leading: watch::Sender<bool>,
}

fn now_micro() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

impl GoElector {
    fn is_leader(&self) -> bool {
        self.observed
            .as_ref()
            .and_then(|(s, _)| s.holder_identity.as_deref())
            == Some(self.id.as_str())
    }

    fn set_observed(&mut self, lease: Lease) {
        let spec = lease.spec.clone().unwrap_or_default();
        self.observed = Some((spec, Instant::now()));
        self.lease = Some(lease);
    }

    async fn update(&mut self, spec: LeaseSpec) -> bool {
        let Some(mut lease) = self.lease.clone() else {
            return false;
        };
        lease.spec = Some(spec);
        match self
            .api
            .replace(LEASE, &PostParams::default(), &lease)
            .await
        {
            Ok(l) => {
                self.set_observed(l);
                true
            }
            Err(_) => false,
        }
    }

    /// `tryAcquireOrRenew`.
    async fn try_acquire_or_renew(&mut self) -> bool {
        let now = Instant::now();
        let mut record = LeaseSpec {
            holder_identity: Some(self.id.clone()),
            lease_duration_seconds: Some(self.d.lease.as_secs() as i32),
            acquire_time: Some(now_micro()),
            renew_time: Some(now_micro()),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        };
        // 1. fast path
        if self.is_leader()
            && self
                .observed
                .as_ref()
                .is_some_and(|(_, t)| *t + self.d.lease > now)
        {
            let old = self.observed.as_ref().unwrap().0.clone();
            record.acquire_time = old.acquire_time;
            record.lease_transitions = old.lease_transitions;
            if self.update(record.clone()).await {
                return true;
            }
        }
        // 2. get or create
        let got = match self.api.get_opt(LEASE).await {
            Err(_) => return false,
            Ok(None) => {
                let mut lease = Lease::default();
                lease.metadata.name = Some(LEASE.into());
                lease.spec = Some(record);
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(l) => {
                        self.set_observed(l);
                        true
                    }
                    Err(_) => false,
                };
            }
            Ok(Some(l)) => l,
        };
        // 3. record obtained: compare raw records, check identity and time
        let spec = got.spec.clone().unwrap_or_default();
        if self.observed.as_ref().map(|(s, _)| s) != Some(&spec) {
            self.set_observed(got);
        } else {
            self.lease = Some(got);
        }
        let (old, observed_at) = self.observed.clone().unwrap();
        let duration = Duration::from_secs(old.lease_duration_seconds.unwrap_or(0).max(0) as u64);
        let expired = observed_at + duration < now;
        let holder = old.holder_identity.clone().unwrap_or_default();
        if !holder.is_empty() && !expired && !self.is_leader() {
            return false;
        }
        // 4. update
        if self.is_leader() {
            record.acquire_time = old.acquire_time;
            record.lease_transitions = old.lease_transitions;
        } else {
            record.lease_transitions = Some(old.lease_transitions.unwrap_or(0) + 1);
        }
        self.update(record).await
    }

    /// `Run`: acquire (JitterUntil with factor 1.2, sliding), then renew until it fails or
    /// `stop`, then release (ReleaseOnCancel).
    async fn run(mut self, stop: CancellationToken) {
        loop {
            if stop.is_cancelled() {
                return;
            }
            if self.try_acquire_or_renew().await {
                break;
            }
            let jitter = self.d.retry.mul_f64(fastrand::f64() * 1.2);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = sleep(self.d.retry + jitter) => {}
            }
        }
        let _ = self.leading.send(true);
        'renew: loop {
            // PollUntilContextTimeout(RetryPeriod, RenewDeadline, immediate)
            let deadline = Instant::now() + self.d.renew;
            loop {
                if stop.is_cancelled() {
                    break 'renew;
                }
                let ok = tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await;
                if ok == Ok(true) {
                    break;
                }
                if Instant::now() + self.d.retry >= deadline {
                    let _ = self.leading.send(false);
                    return;
                }
                sleep(self.d.retry).await;
            }
            tokio::select! {
                _ = stop.cancelled() => break 'renew,
                _ = sleep(self.d.retry) => {}
            }
        }
        let _ = self.leading.send(false);
        if self.is_leader() {
            let old = self.observed.clone().unwrap().0;
            let release = LeaseSpec {
                holder_identity: Some(String::new()),
                lease_duration_seconds: Some(1),
                acquire_time: Some(now_micro()),
                renew_time: Some(now_micro()),
                lease_transitions: old.lease_transitions,
                ..LeaseSpec::default()
            };
            self.update(release).await;
        }
    }
}

struct GoReplica {
    client: TestClient,
    leading: watch::Receiver<bool>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn go_replica(server: &ApiServer, d: Durations, name: &str) -> GoReplica {
    let client = server.client_named(name);
    let (tx, leading) = watch::channel(false);
    let elector = GoElector {
        api: Api::namespaced(client.client(), "default"),
        id: name.into(),
        d,
        observed: None,
        lease: None,
        leading: tx,
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(elector.run(stop.clone()));
    GoReplica {
        client,
        leading,
        stop,
        task,
    }
}

async fn go_failover(server: &ApiServer, d: Durations, trigger: Trigger) -> Failover {
    let (log, observer) = LeaseLog::start(server);
    let a = go_replica(server, d, "a");
    let mut a_leading = a.leading.clone();
    let _ = a_leading.wait_for(|l| *l).await;
    let b = go_replica(server, d, "b");
    sleep(Duration::from_millis(300)).await;
    let renewal = log.next_by("a").await;
    let t0 = Instant::now();
    match trigger {
        Trigger::Graceful => a.stop.cancel(),
        Trigger::Crash => a.task.abort(),
        Trigger::CutOff => a.client.faults().disconnect(),
    }
    let mut b_leading = b.leading.clone();
    let _ = b_leading.wait_for(|l| *l).await;
    let leads = Instant::now();
    let out = Failover {
        to_lease: leads - t0,
        from_renewal: leads - log.last_by("a").unwrap_or(renewal).min(t0).max(renewal),
        ..Failover::default()
    };
    a.stop.cancel();
    b.stop.cancel();
    a.task.abort();
    let _ = b.task.await;
    observer.abort();
    cleanup(server).await;
    out
}

// ---------------------------------------------------------------------------------------

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(name: &str, pairs: &[(f64, f64)]) {
    let ratios: Vec<f64> = pairs.iter().map(|(w, k)| w / k).collect();
    let lo = ratios.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().cloned().fold(0.0, f64::max);
    let w: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let (wlo, whi) = (
        w.iter().cloned().fold(f64::INFINITY, f64::min),
        w.iter().cloned().fold(0.0, f64::max),
    );
    println!(
        "| {name} | {:.1} ms ({wlo:.1}–{whi:.1}) | {:.1} ms | {:.3} ({lo:.3}–{hi:.3}) |",
        median(w),
        median(pairs.iter().map(|p| p.1).collect()),
        median(ratios),
    );
}

#[tokio::main]
async fn main() {
    let quick = std::env::var_os("WINDLASS_BENCH_QUICK").is_some();
    let pairs = if quick { 1 } else { 5 };
    let d = if quick {
        Durations {
            lease: Duration::from_secs(1),
            renew: Duration::from_millis(500),
            retry: Duration::from_millis(200),
        }
    } else {
        Durations {
            lease: Duration::from_secs(3),
            renew: Duration::from_secs(2),
            retry: Duration::from_millis(400),
        }
    };
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for i in 0..20 {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(format!("cm-{i:02}"));
        cms.create(&PostParams::default(), &cm)
            .await
            .expect("create");
    }
    println!(
        "S7 leader failover: windlass vs a port of client-go's leaderelection, {pairs} interleaved pairs; lease {:?}, renew deadline {:?}, retry period {:?}",
        d.lease, d.renew, d.retry
    );
    println!(
        "| scenario | windlass, median (min–max) | client-go port, median | ratio windlass/client-go (min–max) |"
    );
    println!("|---|---|---|---|");
    for trigger in [Trigger::Graceful, Trigger::Crash, Trigger::CutOff] {
        let mut lease = Vec::new();
        let mut renewal = Vec::new();
        let mut reconcile = Vec::new();
        let mut overlaps = 0;
        for _ in 0..pairs {
            let w = windlass_failover(&server, d, trigger).await;
            let g = go_failover(&server, d, trigger).await;
            lease.push((ms(w.to_lease), ms(g.to_lease)));
            renewal.push((ms(w.from_renewal), ms(g.from_renewal)));
            reconcile.push(ms(w.to_reconcile));
            overlaps += w.overlaps;
        }
        let name = format!("{trigger:?}");
        report(
            &format!("{name}: trigger to new leader holding the lease"),
            &lease,
        );
        if trigger != Trigger::Graceful {
            report(
                &format!("{name}: last renewal to new leader holding the lease"),
                &renewal,
            );
        }
        let (lo, hi) = (
            reconcile.iter().cloned().fold(f64::INFINITY, f64::min),
            reconcile.iter().cloned().fold(0.0, f64::max),
        );
        println!(
            "| {name}: trigger to the new leader's first reconcile | {:.1} ms ({lo:.1}–{hi:.1}) | | |",
            median(reconcile.clone())
        );
        println!("| {name}: reconciles overlapping another replica's | {overlaps} | | |");
        assert_eq!(overlaps, 0, "two leaders reconciled at once");
    }
}
