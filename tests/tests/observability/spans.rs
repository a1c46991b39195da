//! The reconcile span and its logs, as `tracing-subscriber`'s formatter prints them: one span
//! per reconcile naming the controller, object, reason, attempt and outcome, and each failure
//! logged once with its whole error chain.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::mpsc;
use windlass::controller::{Action, Context, Controller, reconciler_fn};
use windlass::manager::{Config, Manager};
use windlass::testing::ApiServer;

/// Collects everything the formatter writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().clone())
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("updating the status of default/web")]
struct Updating(#[source] std::io::Error);

#[tokio::test(start_paused = true)]
async fn each_failure_is_logged_once_with_its_chain_in_a_span_saying_what_ran_and_how_it_ended() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "web", "namespace": "default"},
    }))
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();

    let (tx, mut rx) = mpsc::unbounded_channel();
    let controller = Controller::new(reconciler_fn(
        move |_cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(ctx.attempt());
                if ctx.attempt() == 1 {
                    Err(Updating(std::io::Error::other("connection reset by peer")))
                } else {
                    Ok(Action::await_change())
                }
            }
        },
    ))
    .name("websites");
    let manager = Manager::with_config(server.client(), Config::default().handle_signals(false))
        .add(controller);
    let shutdown = manager.shutdown_handle();
    let task = tokio::spawn(manager.run());
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    shutdown.shutdown();
    task.await.unwrap().unwrap();

    let lines = captured.lines();
    let failures: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("connection reset by peer"))
        .collect();
    assert_eq!(failures.len(), 1, "logged once: {lines:#?}");
    assert_eq!(
        failures[0].trim(),
        "ERROR reconcile{controller=websites object=default/web reason=start-up attempt=1 \
         outcome=\"error\"}: reconcile failed; retrying with backoff \
         error=updating the status of default/web: connection reset by peer"
    );
    let succeeded: Vec<&String> = lines.iter().filter(|l| l.contains("reconciled")).collect();
    assert_eq!(succeeded.len(), 1, "{lines:#?}");
    assert_eq!(
        succeeded[0].trim(),
        "DEBUG reconcile{controller=websites object=default/web reason=retry (attempt 2) \
         attempt=2 outcome=\"success\"}: reconciled"
    );
}
