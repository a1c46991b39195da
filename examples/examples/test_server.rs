//! The test API server (`windlass::testing`) on its own: typed calls, a watch, a fault, and
//! serving over HTTP for kubectl.
//!
//! ```sh
//! cargo run --example test_server
//! ```

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use windlass::testing::{ApiServer, FaultRule, Verb};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ANCHOR: start
    let server = ApiServer::new();
    let configmaps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    // ANCHOR_END: start

    // ANCHOR: typed
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("settings".into());
    cm.data = Some([("mode".to_string(), "fast".to_string())].into());
    let created = configmaps.create(&PostParams::default(), &cm).await?;
    println!(
        "created configmap/settings: uid {}, resourceVersion {}",
        created.metadata.uid.as_deref().unwrap_or_default(),
        created
            .metadata
            .resource_version
            .as_deref()
            .unwrap_or_default()
    );
    match configmaps.create(&PostParams::default(), &cm).await {
        Err(kube::Error::Api(status)) => {
            println!("second create: {} {}", status.code, status.message)
        }
        other => println!("second create unexpectedly gave {other:?}"),
    }
    // ANCHOR_END: typed

    // ANCHOR: watch
    let events = watcher(configmaps.clone(), watcher::Config::default()).applied_objects();
    futures::pin_mut!(events);
    let first = events
        .try_next()
        .await?
        .expect("the watch lists what exists");
    println!(
        "watch saw configmap/{}",
        first.metadata.name.unwrap_or_default()
    );
    // ANCHOR_END: watch

    // ANCHOR: faults
    let replica = server.client_named("replica-a");
    replica.faults().fail(
        FaultRule::status(503)
            .verb(Verb::List)
            .resource("configmaps")
            .times(2),
    );
    let replica_api: Api<ConfigMap> = Api::namespaced(replica.client(), "default");
    for attempt in 1..=3 {
        match replica_api.list(&ListParams::default()).await {
            Ok(list) => println!("list attempt {attempt}: {} configmaps", list.items.len()),
            Err(e) => println!("list attempt {attempt}: {e}"),
        }
    }
    // ANCHOR_END: faults

    // ANCHOR: serve
    let http = server.serve(([127, 0, 0, 1], 0).into()).await?;
    println!(
        "serving over HTTP at {} (kubeconfig: see ServeHandle::kubeconfig_yaml)",
        http.url()
    );
    http.shutdown().await;
    // ANCHOR_END: serve
    Ok(())
}
