//! Replicas of one operator in one test process: each a `Manager` with leader election, its own
//! named client (so faults can cut one off), and a ConfigMap controller that records every
//! reconcile as a window (replica, start, end) on a shared, process-wide order; plus an
//! observer of the Lease and a sampler of who believes it leads.
//!
//! The reconcile windows are the ground truth the tests check: no two replicas may ever
//! reconcile in overlapping windows. Windows are ordered by a global sequence number as well
//! as by the (paused) clock, because under a paused clock a handover can take no simulated time
//! at all, and then only the order of events tells whether two windows overlapped.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use windlass::controller::{Action, Context, Controller, Reconciler, reconciler_fn};
use windlass::leader::{LeaderElectionConfig, LeadershipHandle};
use windlass::manager::{Config, Manager};
use windlass::testing::{ApiServer, TestClient};

pub(crate) use crate::controller::support::{Running, WAIT, create_cm};

/// The Lease every replica competes for, in `default`.
pub(crate) const LEASE: &str = "windlass-test";
/// Short durations (the ratios of client-go's defaults, 15 s / 10 s / 2 s, roughly kept).
pub(crate) const LEASE_DURATION: Duration = Duration::from_secs(3);
pub(crate) const RENEW_DEADLINE: Duration = Duration::from_secs(2);
pub(crate) const RETRY_PERIOD: Duration = Duration::from_millis(500);
/// How long a reconcile takes, and how soon an object is reconciled again: the leader is
/// always reconciling something, so a second leader would show up as an overlap.
pub(crate) const WORK: Duration = Duration::from_millis(50);
pub(crate) const AGAIN: Duration = Duration::from_millis(20);

/// A process-wide order of events, finer than a paused clock.
static SEQ: AtomicU64 = AtomicU64::new(0);

pub(crate) fn seq() -> u64 {
    SEQ.fetch_add(1, Ordering::SeqCst)
}

/// The election settings every test replica uses, with its identity.
pub(crate) fn election(identity: &str) -> LeaderElectionConfig {
    LeaderElectionConfig::new(LEASE)
        .namespace("default")
        .identity(identity)
        .lease_duration(LEASE_DURATION)
        .renew_deadline(RENEW_DEADLINE)
        .retry_period(RETRY_PERIOD)
}

/// One reconcile, as a window of time on one replica.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    pub(crate) replica: String,
    pub(crate) object: String,
    pub(crate) start: Instant,
    pub(crate) start_seq: u64,
    pub(crate) end: Instant,
    pub(crate) end_seq: u64,
}

/// Every reconcile window of every replica.
#[derive(Clone, Default)]
pub(crate) struct Windows(Arc<Mutex<Vec<Window>>>);

/// Records a window when dropped: when the reconcile returns, or when its task is aborted
/// (a crash), so a window cut short still counts up to the moment it ended.
struct Open {
    windows: Windows,
    replica: String,
    object: String,
    start: Instant,
    start_seq: u64,
}

impl Drop for Open {
    fn drop(&mut self) {
        let window = Window {
            replica: self.replica.clone(),
            object: std::mem::take(&mut self.object),
            start: self.start,
            start_seq: self.start_seq,
            end: Instant::now(),
            end_seq: seq(),
        };
        self.windows.0.lock().push(window);
    }
}

impl Windows {
    pub(crate) fn all(&self) -> Vec<Window> {
        let mut all = self.0.lock().clone();
        all.sort_by_key(|w| w.start_seq);
        all
    }

    pub(crate) fn of(&self, replica: &str) -> Vec<Window> {
        self.all()
            .into_iter()
            .filter(|w| w.replica == replica)
            .collect()
    }

    pub(crate) fn count(&self, replica: &str) -> usize {
        self.of(replica).len()
    }

    pub(crate) fn first_start(&self, replica: &str) -> Option<Instant> {
        self.of(replica).iter().map(|w| w.start).min()
    }

    pub(crate) fn last_end(&self, replica: &str) -> Option<Instant> {
        self.of(replica).iter().map(|w| w.end).max()
    }

    /// The replicas that reconciled, in the order they first did.
    pub(crate) fn replicas(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for w in self.all() {
            if !out.contains(&w.replica) {
                out.push(w.replica);
            }
        }
        out
    }

    /// Exactly one leader at every instant: no window of one replica overlaps a window of
    /// another, neither in the process's order of events nor in (paused) time.
    pub(crate) fn assert_one_leader_at_a_time(&self) {
        let all = self.all();
        assert!(!all.is_empty(), "no reconcile was recorded");
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                if a.replica == b.replica {
                    continue;
                }
                // b started after a (by sequence): it must also start after a ended.
                assert!(
                    b.start_seq > a.end_seq && b.start >= a.end,
                    "two replicas reconciled at once:\n  {a:?}\n  {b:?}"
                );
            }
        }
    }
}

/// A ConfigMap controller that records a window per reconcile on `replica`, takes [`WORK`],
/// and asks to run again after [`AGAIN`].
pub(crate) fn recording_controller(
    windows: Windows,
    replica: &str,
) -> Controller<impl Reconciler<Object = ConfigMap>> {
    let replica = replica.to_string();
    Controller::new(reconciler_fn(
        move |cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| {
            let (windows, replica) = (windows.clone(), replica.clone());
            async move {
                let _open = Open {
                    windows,
                    replica,
                    object: cm.metadata.name.clone().unwrap_or_default(),
                    start: Instant::now(),
                    start_seq: seq(),
                };
                tokio::time::sleep(WORK).await;
                Ok::<_, kube::Error>(Action::requeue(AGAIN))
            }
        },
    ))
}

/// One replica: a running manager with leader election and a recording controller.
pub(crate) struct Replica {
    pub(crate) name: String,
    pub(crate) client: TestClient,
    pub(crate) leadership: LeadershipHandle,
    pub(crate) running: Running,
}

impl Replica {
    /// Starts replica `name` with the test election settings, changed by `tweak`.
    pub(crate) fn start_with(
        server: &ApiServer,
        windows: &Windows,
        name: &str,
        tweak: impl FnOnce(LeaderElectionConfig) -> LeaderElectionConfig,
    ) -> Replica {
        let client = server.client_named(name);
        let config = Config::default()
            .handle_signals(false)
            .graceful_shutdown_timeout(Duration::from_secs(10))
            .leader_election(tweak(election(name)));
        let manager = Manager::with_config(client.client(), config)
            .add(recording_controller(windows.clone(), name));
        let leadership = manager.leadership().expect("leader election is configured");
        Replica {
            name: name.to_string(),
            client,
            leadership,
            running: Running::start(manager),
        }
    }

    pub(crate) fn start(server: &ApiServer, windows: &Windows, name: &str) -> Replica {
        Self::start_with(server, windows, name, |c| c)
    }

    pub(crate) fn is_leader(&self) -> bool {
        self.leadership.is_leader()
    }
}

/// A server with three ConfigMaps to reconcile.
pub(crate) async fn server() -> ApiServer {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for name in ["a", "b", "c"] {
        create_cm(&api, name, "1").await;
    }
    server
}

/// Waits (bounded) until one of `replicas` leads; returns its index.
pub(crate) async fn leader(replicas: &[&Replica]) -> usize {
    let waits = replicas
        .iter()
        .map(|r| Box::pin(r.leadership.wait_leading()));
    let (_, index, _) = tokio::time::timeout(WAIT, futures::future::select_all(waits))
        .await
        .expect("a replica leads within the wait limit");
    index
}

/// Waits (bounded) for `d` of (paused) time.
pub(crate) async fn run_for(d: Duration) {
    tokio::time::sleep(d).await;
}

/// What the Lease said, and when an observer saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) at: Instant,
    pub(crate) holder: String,
    pub(crate) duration: i32,
    pub(crate) transitions: i32,
    pub(crate) acquire: Option<String>,
    pub(crate) renew: Option<String>,
}

/// Watches the Lease from a client of its own and keeps every version it sees.
pub(crate) struct LeaseLog {
    seen: Arc<Mutex<Vec<Seen>>>,
    rx: mpsc::UnboundedReceiver<Seen>,
    task: JoinHandle<()>,
}

impl Drop for LeaseLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LeaseLog {
    pub(crate) fn start(server: &ApiServer) -> LeaseLog {
        let api: Api<Lease> = Api::namespaced(server.client_named("observer").client(), "default");
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let log = seen.clone();
        let config = watcher::Config::default().fields(&format!("metadata.name={LEASE}"));
        let task = tokio::spawn(async move {
            let mut stream = watcher::watcher(api, config).default_backoff().boxed();
            while let Some(event) = stream.next().await {
                let (watcher::Event::Apply(lease) | watcher::Event::InitApply(lease)) = (match event
                {
                    Ok(e) => e,
                    Err(_) => continue,
                }) else {
                    continue;
                };
                let spec = lease.spec.unwrap_or_default();
                let time =
                    |t: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime>| {
                        t.map(|t| {
                            serde_json::to_value(t)
                                .unwrap()
                                .as_str()
                                .unwrap()
                                .to_string()
                        })
                    };
                let s = Seen {
                    at: Instant::now(),
                    holder: spec.holder_identity.unwrap_or_default(),
                    duration: spec.lease_duration_seconds.unwrap_or_default(),
                    transitions: spec.lease_transitions.unwrap_or_default(),
                    acquire: time(spec.acquire_time),
                    renew: time(spec.renew_time),
                };
                log.lock().push(s.clone());
                let _ = tx.send(s);
            }
        });
        LeaseLog { seen, rx, task }
    }

    /// Forgets the versions seen but not yet waited for, so the next wait is for a write
    /// that happens from now on.
    pub(crate) fn skip_backlog(&mut self) {
        while self.rx.try_recv().is_ok() {}
    }

    /// Every version seen so far.
    pub(crate) fn all(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }

    /// Waits (bounded) for the next version written by (or for) `holder`, oldest unseen
    /// first.
    pub(crate) async fn next_by(&mut self, holder: &str) -> Seen {
        let wait = async {
            loop {
                let s = self.rx.recv().await.expect("the observer runs");
                if s.holder == holder {
                    return s;
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("no write by {holder} within the wait limit"))
    }

    /// The last version `holder` wrote.
    pub(crate) fn last_by(&self, holder: &str) -> Option<Seen> {
        self.all().into_iter().rev().find(|s| s.holder == holder)
    }

    /// The holders, in order, without repeats (`""` for a released lease).
    pub(crate) fn holders(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in self.all() {
            if out.last() != Some(&s.holder) {
                out.push(s.holder);
            }
        }
        out
    }
}

/// Samples every few milliseconds how many replicas believe they lead, for as long as it
/// runs; [`Sampler::max`] is the most seen at once.
pub(crate) struct Sampler {
    max: Arc<AtomicU64>,
    samples: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Sampler {
    pub(crate) fn start(handles: Vec<LeadershipHandle>) -> Sampler {
        let max = Arc::new(AtomicU64::new(0));
        let samples = Arc::new(AtomicU64::new(0));
        let (m, n) = (max.clone(), samples.clone());
        let task = tokio::spawn(async move {
            loop {
                let leading = handles.iter().filter(|h| h.is_leader()).count() as u64;
                m.fetch_max(leading, Ordering::SeqCst);
                n.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Sampler { max, samples, task }
    }

    /// The most replicas seen leading at once.
    pub(crate) fn max(&self) -> u64 {
        self.max.load(Ordering::SeqCst)
    }

    /// Asserts that no sample ever saw two leaders (and that it sampled at all).
    pub(crate) fn assert_never_two_leaders(&self) {
        assert!(self.samples.load(Ordering::SeqCst) > 0);
        assert!(
            self.max() <= 1,
            "{} replicas believed they led at once",
            self.max()
        );
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[test]
#[should_panic(expected = "two replicas reconciled at once")]
fn the_overlap_check_catches_two_replicas_reconciling_at_once() {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(async {
            let windows = Windows::default();
            let open = |replica: &str| Open {
                windows: windows.clone(),
                replica: replica.into(),
                object: "x".into(),
                start: Instant::now(),
                start_seq: seq(),
            };
            let a = open("a");
            let b = open("b");
            drop(a);
            drop(b);
            windows.assert_one_leader_at_a_time();
        });
}
