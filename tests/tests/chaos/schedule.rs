//! The faults a scenario can inject, how each is applied through `windlass::testing`, and
//! the seeded random schedules that combine them.
//!
//! Faults that concern the API go to the replicas' own clients (the user driving the
//! workload is never faulted, so every change it makes is one the operator must catch up
//! with); history compaction and closing watches are server-wide, as they are in a cluster.

use std::time::Duration;

use windlass::testing::{FaultRule, Verb};

use super::harness::{Chaos, LEASE_DURATION, RENEW_DEADLINE};

/// One fault.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    /// Every watch stream of the replicas ends after this many events.
    CloseWatchesAfter(usize),
    /// Every watch stream of the replicas ends this long after it started.
    CloseWatchesEvery(Duration),
    /// Every open watch stream (of every client) ends now.
    CloseWatchesNow,
    /// The replicas' next `n` watches answer 410 Expired (an ERROR event), and their next
    /// `n` lists 410 (as an expired continue token does).
    Expired(usize),
    /// History is compacted: every watch ends, and resuming any of them, or continuing a
    /// paged list, answers 410; every informer relists at once.
    CompactHistory,
    /// Every `every`th write of the replicas answers 409 Conflict, `times` times.
    Conflicts { every: usize, times: usize },
    /// The replicas' next `times` requests answer 429 with a Retry-After.
    Throttle { times: usize, retry_after: Duration },
    /// The replicas' next `times` requests answer `code` (500 or 503).
    ServerErrors { code: u16, times: usize },
    /// Every request of the replicas takes this long (`None` removes it).
    Latency(Option<Duration>),
    /// Every replica is cut off from the API server.
    DisconnectAll,
    /// The leader is cut off; the other replicas stay healthy.
    DisconnectLeader,
    /// Every replica reaches the API server again.
    Reconnect,
    /// The next `n` reconciles of a site (a random live one if `None`) panic.
    Panic(Option<String>, usize),
    /// The next `n` reconciles of a site hang past the reconcile timeout.
    Hang(Option<String>, usize),
    /// Every reconcile of a site fails, forever.
    FailForever(Option<String>),
    /// Every reconcile of a site fails with a terminal error.
    Terminal(Option<String>),
    /// The user writes a spec that does not decode (needs a permissive CRD).
    Malformed(Option<String>),
    /// The leader is shut down gracefully (SIGTERM); it is restarted as a new pod.
    ShutdownLeader,
    /// The CRD is deleted (its sites are cleaned up and deleted first).
    DeleteCrd,
    /// The CRD is installed again, once the deletion has finished.
    RecreateCrd,
}

impl Fault {
    /// A short name for the report.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Fault::CloseWatchesAfter(_) => "watch closed every N events",
            Fault::CloseWatchesEvery(_) => "watch closed periodically",
            Fault::CloseWatchesNow => "watch closed",
            Fault::Expired(_) => "410 expired",
            Fault::CompactHistory => "history compacted",
            Fault::Conflicts { .. } => "409 conflicts",
            Fault::Throttle { .. } => "429 throttled",
            Fault::ServerErrors { .. } => "5xx burst",
            Fault::Latency(_) => "latency",
            Fault::DisconnectAll => "API unreachable",
            Fault::DisconnectLeader => "leader cut off",
            Fault::Reconnect => "reconnect",
            Fault::Panic(..) => "reconcile panics",
            Fault::Hang(..) => "reconcile hangs",
            Fault::FailForever(_) => "reconcile fails forever",
            Fault::Terminal(_) => "reconcile fails terminally",
            Fault::Malformed(_) => "malformed object",
            Fault::ShutdownLeader => "leader shut down",
            Fault::DeleteCrd => "CRD deleted",
            Fault::RecreateCrd => "CRD recreated",
        }
    }
}

impl Chaos {
    /// Applies one fault now.
    pub(crate) async fn inject(&mut self, fault: Fault) {
        let replicas = self.replica_faults();
        let all = |rule: FaultRule| {
            for f in &replicas {
                f.fail(rule.clone());
            }
        };
        match &fault {
            Fault::CloseWatchesAfter(n) => replicas
                .iter()
                .for_each(|f| f.close_watches_after(Some(*n))),
            Fault::CloseWatchesEvery(d) => replicas
                .iter()
                .for_each(|f| f.close_watches_every(Some(*d))),
            Fault::CloseWatchesNow => self.server.faults().close_watches(),
            Fault::Expired(n) => {
                all(FaultRule::status(410).verb(Verb::Watch).times(*n));
                all(FaultRule::status(410).verb(Verb::List).times(*n));
            }
            Fault::CompactHistory => self.server.expire_history(),
            Fault::Conflicts { every, times } => {
                for verb in [Verb::Patch, Verb::Update, Verb::Create] {
                    all(FaultRule::status(409)
                        .verb(verb)
                        .every(*every)
                        .times(*times));
                }
            }
            Fault::Throttle { times, retry_after } => {
                all(FaultRule::status(429)
                    .times(*times)
                    .retry_after(*retry_after));
            }
            Fault::ServerErrors { code, times } => all(FaultRule::status(*code).times(*times)),
            Fault::Latency(d) => replicas.iter().for_each(|f| f.set_latency(*d)),
            Fault::DisconnectAll => replicas.iter().for_each(|f| f.disconnect()),
            Fault::DisconnectLeader => match self.leader() {
                Some(i) => self.faults_of(i).disconnect(),
                None => return,
            },
            Fault::Reconnect => replicas.iter().for_each(|f| f.reconnect()),
            Fault::Panic(name, n) | Fault::Hang(name, n) => {
                let Some(name) = name.clone().or_else(|| self.random_live()) else {
                    return;
                };
                if matches!(fault, Fault::Panic(..)) {
                    self.behaviour.panic_in(&name, *n);
                } else {
                    self.behaviour.hang_in(&name, *n);
                }
            }
            Fault::FailForever(name) => {
                let Some(name) = name.clone().or_else(|| self.random_live()) else {
                    return;
                };
                self.behaviour.fail_forever(&name);
            }
            Fault::Terminal(name) => {
                let Some(name) = name.clone().or_else(|| self.random_live()) else {
                    return;
                };
                self.behaviour.fail_terminally(&name);
            }
            Fault::Malformed(name) => {
                let Some(name) = name.clone().or_else(|| self.random_live()) else {
                    return;
                };
                self.break_site(&name).await;
            }
            Fault::ShutdownLeader => {
                if self.shutdown_leader().is_none() {
                    return;
                }
            }
            Fault::DeleteCrd => {
                if !self.crd_present() {
                    return;
                }
                self.delete_crd().await;
            }
            Fault::RecreateCrd => {
                if self.crd_present() {
                    return;
                }
                self.recreate_crd().await;
            }
        }
        println!("{:>8.1?} fault: {fault:?}", self.elapsed());
        self.count_fault(fault.kind());
    }
}

/// A seeded random schedule over `span`: a mix of every kind of fault (but the CRD's
/// deletion, which has a scenario of its own), each at a random offset, with outages healed
/// before they end every replica's lease for good.
pub(crate) fn random(
    rng: &mut fastrand::Rng,
    span: Duration,
    faults: usize,
    malformed: bool,
) -> Vec<(Duration, Fault)> {
    let mut out = Vec::new();
    let ms = span.as_millis() as u64;
    for _ in 0..faults {
        let at = Duration::from_millis(rng.u64(..ms));
        let fault = match rng.u8(..17) {
            0 => Fault::CloseWatchesAfter(rng.usize(1..6)),
            1 => Fault::CloseWatchesEvery(Duration::from_millis(rng.u64(200..3000))),
            2 => Fault::CloseWatchesNow,
            3 => Fault::Expired(rng.usize(1..4)),
            4 => Fault::CompactHistory,
            5 => Fault::Conflicts {
                every: rng.usize(2..5),
                times: rng.usize(1..20),
            },
            6 => Fault::Throttle {
                times: rng.usize(1..10),
                retry_after: Duration::from_millis(rng.u64(100..2000)),
            },
            7 => Fault::ServerErrors {
                code: if rng.bool() { 500 } else { 503 },
                times: rng.usize(1..20),
            },
            8 => Fault::Latency(Some(Duration::from_millis(rng.u64(5..300)))),
            9 => Fault::DisconnectAll,
            10 => Fault::DisconnectLeader,
            11 => Fault::Panic(None, rng.usize(1..3)),
            12 => Fault::Hang(None, 1),
            13 if malformed => Fault::Malformed(None),
            14 => Fault::FailForever(None),
            15 => Fault::Terminal(None),
            _ => Fault::ShutdownLeader,
        };
        if matches!(fault, Fault::DisconnectAll | Fault::DisconnectLeader) {
            // Longer than the renew deadline, sometimes longer than the lease.
            let outage = RENEW_DEADLINE
                + Duration::from_millis(rng.u64(..3 * LEASE_DURATION.as_millis() as u64));
            out.push((at + outage, Fault::Reconnect));
        }
        out.push((at, fault));
    }
    out.sort_by_key(|(at, _)| *at);
    out
}
