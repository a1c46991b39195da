//! Reliability under faults: a realistic operator, run as several replicas against one API
//! server while faults are injected through `windlass::testing`, then checked against five
//! invariants once the faults stop:
//!
//! 1. convergence: every site's Deployment, Service and status match its spec, within a
//!    bounded time; deleted sites are gone, their children collected, their cleanup done;
//! 2. exclusivity: no key is reconciled by two workers at once, no two replicas reconcile at
//!    once, and no reconcile starts on a replica that does not lead;
//! 3. no lost work: the last change of every site was reconciled (or, for a site that fails
//!    forever, attempted), and every periodic requeue still fires;
//! 4. bounded resources: a queue holds each key at most once, a cache at most the objects
//!    that exist, no task outlives the operator, and shutdown finishes within its grace;
//! 5. clear errors: no replica crashes or fails for any reason but a lost lease, every
//!    failed reconcile is counted and logged exactly once, every panic is caught.
//!
//! `harness.rs` runs the cluster and the workload, `invariants.rs` checks them, `operator.rs`
//! is the operator under test, `schedule.rs` the faults, `report.rs` the numbers, and
//! `scenarios.rs` one test per scenario plus the soak mode (`WINDLASS_CHAOS_SOAK=<seconds>`);
//! `regressions.rs` pins down the bugs the scenarios found. A failure prints its seed; replay it with
//! `WINDLASS_CHAOS_SEED=<seed>`.

mod harness;
mod invariants;
mod logs;
mod operator;
mod regressions;
mod report;
mod scenarios;
mod schedule;
