//! What a run came to: the numbers a scenario prints, the book quotes and soak mode sums.

use std::collections::BTreeMap;
use std::fmt;

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
