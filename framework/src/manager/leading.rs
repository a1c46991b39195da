//! The runnables that need leadership: started when this replica wins the lease, stopped when
//! it loses it or shuts down.
//!
//! This module owns only that hook between the [manager](super) and the
//! [elector](crate::leader::LeaderElector). The election (campaign, renewals, release, the
//! renew deadline, what is written) is the elector's; the manager sees one task that returns
//! when leadership ends.

use tokio::task::JoinSet;

use super::{RunContext, Runnable, TaskResult, spawn_runnable};
use crate::leader::LeaderElector;

/// The name failures of the election itself are reported under.
pub(super) const NAME: &str = "leader election";

/// Campaigns, then runs `runnables` while leading.
///
/// They get a shutdown token that is cancelled on the manager's shutdown, and drain
/// gracefully then; after they have all stopped the lease is released. When the lease is lost,
/// the elector cancels the token and drops them at that instant. Returns the first runnable's
/// error, or the loss of the lease.
pub(super) async fn run(
    elector: LeaderElector,
    runnables: Vec<Box<dyn Runnable>>,
    ctx: RunContext,
) -> TaskResult {
    let hot_standby = elector.hot_standby();
    let shutdown = ctx.shutdown.clone();
    if let Some(metrics) = ctx.metrics.clone() {
        // `leader_election_master_status{name}` follows the elector's status: 0 while
        // campaigning or after losing, 1 while leading. The task ends with the elector.
        let handle = elector.handle();
        let name = handle.lease_name().to_string();
        let mut status = handle.subscribe();
        metrics.set_leader(&name, status.borrow_and_update().leading);
        tokio::spawn(async move {
            while status.changed().await.is_ok() {
                let leading = status.borrow_and_update().leading;
                metrics.set_leader(&name, leading);
            }
            metrics.set_leader(&name, false);
        });
    }
    let outcome = elector
        .run(shutdown, move |stop| async move {
            if !hot_standby {
                // A cold standby lists and watches only once it leads.
                ctx.cache.start();
            } else {
                // A hot standby's watch may have been failing (and backing off) while the
                // previous leader changed things: no controller acts on such a cache until it
                // has listed again.
                tokio::select! {
                    _ = ctx.cache.refresh_failing() => {}
                    _ = stop.cancelled() => return None,
                }
            }
            let mut tasks = JoinSet::new();
            for runnable in runnables {
                let ctx = RunContext {
                    shutdown: stop.clone(),
                    ..ctx.clone()
                };
                spawn_runnable(&mut tasks, runnable, ctx);
            }
            let mut failure = None;
            while let Some(done) = tasks.join_next().await {
                if let Ok(Err(error)) = done
                    && failure.is_none()
                {
                    // The manager shuts down on this error; the others stop first, so the
                    // lease is released only after all of them have.
                    stop.cancel();
                    failure = Some(error);
                }
            }
            if failure.is_none() {
                // Runnables that end on their own do not end leadership: the replica leads
                // (and keeps its lease) until shutdown.
                stop.cancelled().await;
            }
            failure
        })
        .await;
    match outcome {
        Ok(None | Some(None)) => Ok(()),
        Ok(Some(Some(error))) => Err(error),
        Err(lost) => Err((NAME.to_string(), Box::new(lost))),
    }
}
