//! The five invariants, checked once the faults have stopped: convergence (1), no lost work
//! (3), bounded resources (4) and clear errors (5) while the operator still runs
//! ([`Chaos::check`]); exclusivity (2) over the whole journal, shutdown and leaked tasks at the
//! end ([`Chaos::finish`]).

use std::sync::atomic::Ordering;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use tokio::time::Instant;
use windlass::condition::is_status_condition_true;

use super::harness::{CONVERGE, Chaos, GRACE, NS, WAIT, alive_tasks, informer_config, metric};
use super::operator::{Entry, Outcome, Phase, REQUEUE, Site};
use super::report::Report;

impl Chaos {
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
                        "deleted site {name} ({}) was not cleaned up; its last windows:\n{}",
                        e.uid,
                        last_of(&self.journal.all(), &e.uid, self.began)
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
                // A site that fails forever never gets Ready: it has converged once its last
                // change has been attempted.
                let attempted = self.journal.all().iter().any(|x| {
                    x.uid == e.uid && x.phase == Phase::Reconcile && x.generation == e.generation
                });
                if !attempted {
                    return Some(format!(
                        "failing site {name} was not attempted at generation {}",
                        e.generation
                    ));
                }
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
                refs.is_some_and(|r: &Vec<OwnerReference>| {
                    r.iter()
                        .any(|o| o.uid == e.uid && o.controller == Some(true))
                })
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
            self.print_caches();
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
                    "seed {seed}: the last change of {name} (generation {}) was never attempted; its last attempts:\n{}",
                    e.generation,
                    last_of(&entries, &e.uid, self.began)
                ),
                Some(_) => assert!(
                    saw(Phase::Reconcile, true),
                    "seed {seed}: the last change of {name} (generation {}) was never reconciled; its last attempts:\n{}",
                    e.generation,
                    last_of(&entries, &e.uid, self.began)
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
        // A terminal error is not retried (with backoff) until the object changes: the attempt
        // after a terminal failure is never the retry that failure would have scheduled. (A
        // requeue or retry scheduled before it still fires, as in controller-runtime, a child's
        // change is a change, and a new leader's start-up pass reconciles everything once.)
        for name in self.behaviour.terminal() {
            let Some(e) = self.expected.get(&name) else {
                continue;
            };
            let of: Vec<&Entry> = entries.iter().filter(|x| x.uid == e.uid).collect();
            for pair in of.windows(2) {
                self.report.checks += 1;
                let terminal =
                    matches!(&pair[0].outcome, Outcome::Failed(m) if m.starts_with("terminal"));
                let its_retry = format!("retry (attempt {})", pair[0].attempt + 1);
                assert!(
                    !(terminal && pair[1].reason == its_retry),
                    "seed {seed}: site {name} failed terminally and was retried:\n{}",
                    last_of(&entries, &e.uid, self.began)
                );
            }
            let again: Vec<&str> = entries
                .iter()
                .filter(|x| x.uid == e.uid && x.start >= since)
                .map(|x| x.reason.as_str())
                .collect();
            if !again.is_empty() {
                println!("terminally failing {name} ran again after healing: {again:?}");
            }
        }
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

        // 5. Clear errors. A replica that logged its lost lease exits after stepping down
        // (bounded by the retry period): wait for that before counting.
        let deadline = Instant::now() + WAIT;
        while self.logs.count("stopped leading") > self.report.lease_losses
            && Instant::now() < deadline
        {
            self.supervise().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.check_errors();
    }

    /// What each running replica's caches hold, for a convergence failure.
    fn print_caches(&self) {
        for r in &self.replicas {
            let Some(c) = &r.current else { continue };
            println!(
                "replica {}-{} (leading: {}): {:?}",
                r.name,
                c.number,
                c.leadership.is_leader(),
                c.cache.stats()
            );
            let sites = c.cache.informer::<Site>(informer_config(&self.settings));
            for s in sites.store().list() {
                println!(
                    "  cached {} uid {:?} rv {:?} generation {:?} deleting {}",
                    s.name_any(),
                    s.uid(),
                    s.resource_version(),
                    s.metadata.generation,
                    s.metadata.deletion_timestamp.is_some()
                );
            }
        }
        println!(
            "server at resourceVersion {}",
            self.server.resource_version()
        );
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
            .filter(|r| matches!(r.status, 0 | 409 | 410 | 429) || r.status >= 500)
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
}

/// The last few journal entries of the object `uid`, one line each, for a failure message.
fn last_of(entries: &[Entry], uid: &str, began: Instant) -> String {
    let of: Vec<&Entry> = entries.iter().filter(|e| e.uid == uid).collect();
    of[of.len().saturating_sub(8)..]
        .iter()
        .map(|e| {
            format!(
                "  {}-{} {:?} ({}) generation {} from {:.1?} to {:.1?}: {:?}",
                e.replica,
                e.incarnation,
                e.phase,
                e.reason,
                e.generation,
                e.start - began,
                e.end - began,
                e.outcome
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
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
        // The Lease as the replica last saw it names the replica itself.
        let identity = format!("{}-{}", a.replica, a.incarnation);
        if a.holder.as_deref() != Some(identity.as_str()) {
            return Err(format!(
                "replica {identity} reconciled {} while it saw {:?} holding the lease: {a:?}",
                a.key, a.holder
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(replica: &str, key: &str, start_seq: u64, end_seq: u64, leading: bool) -> Entry {
        let now = Instant::now();
        Entry {
            replica: replica.into(),
            incarnation: 1,
            phase: Phase::Reconcile,
            key: key.into(),
            uid: String::new(),
            generation: 1,
            reason: "start-up".into(),
            attempt: 1,
            leading,
            holder: Some(format!("{replica}-1")),
            start: now,
            start_seq,
            end: now,
            end_seq,
            outcome: Outcome::Done,
        }
    }

    fn check(entries: &[Entry]) -> Result<(), String> {
        check_exclusive(entries, &mut 0)
    }

    #[tokio::test]
    async fn the_exclusivity_check_passes_one_replica_reconciling_two_keys_at_once() {
        assert!(check(&[entry("a", "x", 1, 4, true), entry("a", "y", 2, 3, true)]).is_ok());
    }

    #[tokio::test]
    async fn the_exclusivity_check_catches_one_key_reconciled_twice_at_once() {
        let err = check(&[entry("a", "x", 1, 4, true), entry("a", "x", 2, 3, true)]).unwrap_err();
        assert!(err.contains("reconciled twice at once"), "{err}");
    }

    #[tokio::test]
    async fn the_exclusivity_check_catches_two_replicas_reconciling_at_once() {
        let err = check(&[entry("a", "x", 1, 4, true), entry("b", "y", 3, 5, true)]).unwrap_err();
        assert!(err.contains("two replicas reconciled at once"), "{err}");
        assert!(check(&[entry("a", "x", 1, 2, true), entry("b", "y", 3, 5, true)]).is_ok());
    }

    #[tokio::test]
    async fn the_exclusivity_check_catches_a_reconcile_while_another_holder_was_seen() {
        let mut e = entry("a", "x", 1, 2, true);
        e.holder = Some("b-1".into());
        let err = check(&[e]).unwrap_err();
        assert!(err.contains("holding the lease"), "{err}");
    }

    #[tokio::test]
    async fn the_exclusivity_check_catches_a_reconcile_on_a_replica_that_does_not_lead() {
        let err = check(&[entry("a", "x", 1, 2, false)]).unwrap_err();
        assert!(err.contains("without leading"), "{err}");
    }
}
