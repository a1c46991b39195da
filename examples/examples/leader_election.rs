//! Two replicas of one operator, one leader: a handover.
//!
//! Two managers run in this process, each with its own client of windlass's embedded API
//! server, as two pods of one Deployment would. Both start their caches; only the one that
//! holds the Lease runs its controller. Then the leader shuts down gracefully, releasing the
//! lease, and the other replica takes over within a few milliseconds: it was watching the
//! Lease, and its cache is already synced. No cluster is needed; it exits by itself.
//!
//! ```sh
//! cargo run --example leader_election
//! RUST_LOG=windlass=info cargo run --example leader_election   # with the election's logs
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use windlass::controller::{Action, Context, Controller, reconciler_fn};
use windlass::leader::LeaderElectionConfig;
use windlass::manager::{Config, Manager};
use windlass::testing::ApiServer;

// ANCHOR: config
/// The election every replica takes part in. Short durations so the example is quick; the
/// defaults (15 s lease, 10 s renew deadline, 2 s retry period) suit a real cluster.
fn election(identity: &str) -> LeaderElectionConfig {
    LeaderElectionConfig::new("configmap-operator")
        .namespace("default")
        // Unset, the identity is the host name (the pod name) and a random suffix.
        .identity(identity)
        .lease_duration(Duration::from_secs(2))
        .renew_deadline(Duration::from_secs(1))
        .retry_period(Duration::from_millis(250))
}
// ANCHOR_END: config

// ANCHOR: replica
/// One replica: a manager with leader election and a controller that needs leadership.
fn replica(client: kube::Client, identity: &'static str) -> Manager {
    let controller = Controller::new(reconciler_fn(
        move |cm: Arc<ConfigMap>, _ctx: Context<ConfigMap>| async move {
            println!("  {identity} reconciled configmap/{}", cm.name_any());
            Ok::<_, kube::Error>(Action::await_change())
        },
    ));
    let config = Config::default()
        .handle_signals(false) // this example stops its replicas itself
        .leader_election(election(identity));
    Manager::with_config(client, config).add(controller)
}
// ANCHOR_END: replica

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_target(false)
        .init();

    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for name in ["alpha", "beta", "gamma"] {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cms.create(&PostParams::default(), &cm).await?;
    }

    // ANCHOR: start
    let a = replica(server.client_named("replica-a").client(), "replica-a");
    let b = replica(server.client_named("replica-b").client(), "replica-b");
    let (a_leads, b_leads) = (a.leadership().unwrap(), b.leadership().unwrap());
    let (a_stop, b_stop) = (a.shutdown_handle(), b.shutdown_handle());
    let a_run = tokio::spawn(a.run());
    let b_run = tokio::spawn(b.run());
    // ANCHOR_END: start

    println!("two replicas started; waiting for one to lead");
    tokio::select! {
        _ = a_leads.wait_leading() => {}
        _ = b_leads.wait_leading() => {}
    }
    let (leader, follower, leader_stop, follower_stop) = if a_leads.is_leader() {
        (a_leads, b_leads, a_stop, b_stop)
    } else {
        (b_leads, a_leads, b_stop, a_stop)
    };
    println!(
        "{} leads; {} stands by",
        leader.identity(),
        follower.identity()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    // ANCHOR: handover
    println!("{} shuts down gracefully", leader.identity());
    let began = Instant::now();
    leader_stop.shutdown();
    follower.wait_leading().await;
    println!(
        "{} took over {:?} after the shutdown began",
        follower.identity(),
        began.elapsed()
    );
    // ANCHOR_END: handover
    tokio::time::sleep(Duration::from_millis(200)).await;

    let lease = Api::<Lease>::namespaced(server.client(), "default")
        .get("configmap-operator")
        .await?;
    let spec = lease.spec.unwrap_or_default();
    println!(
        "lease default/configmap-operator: holder {}, {} transition(s), lease duration {} s",
        spec.holder_identity.unwrap_or_default(),
        spec.lease_transitions.unwrap_or_default(),
        spec.lease_duration_seconds.unwrap_or_default(),
    );

    follower_stop.shutdown();
    let (first, second) = if follower.identity() == "replica-a" {
        (b_run, a_run)
    } else {
        (a_run, b_run)
    };
    first.await??;
    second.await??;
    println!("both replicas stopped; the lease is released");
    Ok(())
}
