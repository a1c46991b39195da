//! Cleanup with a finalizer: a `Bucket` custom resource stands for a bucket in an object store
//! outside the cluster. The operator creates the bucket when a Bucket appears and deletes it
//! when the Bucket is deleted; the Bucket stays (marked for deletion) until the bucket is gone,
//! even when the store refuses the first try.
//!
//! The object store is a pretend one, in memory; everything runs against windlass's in-process
//! test API server.
//!
//! ```sh
//! cargo run --example cleanup
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::{conditions, wait::await_condition};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::info;
use windlass::controller::{Action, Context, Controller, Reconciler};
use windlass::finalizer::{Cleanup, CleanupStatus};
use windlass::manager::Manager;
use windlass::prelude::*;

/// A bucket in the object store.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[windlass(
    group = "storage.example.com",
    version = "v1",
    kind = "Bucket",
    namespaced
)]
pub struct BucketSpec {
    /// Where the bucket lives.
    pub region: String,
}

/// What went wrong talking to the object store.
#[derive(Debug, thiserror::Error)]
#[error("the object store refused: {0}")]
pub struct StoreError(&'static str);

/// A pretend object store: a set of bucket names. Its first delete fails, as a real store's
/// might while the bucket still holds objects.
#[derive(Debug, Default)]
pub struct ObjectStore {
    buckets: Mutex<BTreeSet<String>>,
    refused_once: AtomicBool,
}

impl ObjectStore {
    fn create(&self, name: &str) {
        self.buckets
            .lock()
            .expect("not poisoned")
            .insert(name.to_string());
    }

    fn delete(&self, name: &str) -> Result<(), StoreError> {
        if !self.refused_once.swap(true, Ordering::SeqCst) {
            return Err(StoreError("the bucket is not empty yet"));
        }
        self.buckets.lock().expect("not poisoned").remove(name);
        Ok(())
    }
}

// ANCHOR: reconciler
/// Keeps a bucket in the store for every Bucket, and removes it when the Bucket goes.
struct Buckets {
    store: Arc<ObjectStore>,
}

#[windlass::async_trait]
impl Reconciler for Buckets {
    type Object = Bucket;
    type Error = StoreError;

    async fn reconcile(
        &self,
        bucket: Arc<Bucket>,
        _ctx: &Context<Bucket>,
    ) -> Result<Action, StoreError> {
        // The finalizer is already on `bucket`: whatever this creates, cleanup will hear of.
        self.store.create(&bucket.name_any());
        Ok(Action::await_change())
    }
}

#[windlass::async_trait]
impl Cleanup for Buckets {
    async fn cleanup(
        &self,
        bucket: Arc<Bucket>,
        ctx: &Context<Bucket>,
    ) -> Result<CleanupStatus, StoreError> {
        if let Err(e) = self.store.delete(&bucket.name_any()) {
            ctx.recorder()
                .warning(
                    bucket.as_ref(),
                    "DeleteFailed",
                    "DeleteBucket",
                    &e.to_string(),
                )
                .await;
            // An error keeps the finalizer and retries with backoff.
            return Err(e);
        }
        ctx.recorder()
            .normal(
                bucket.as_ref(),
                "Deleted",
                "DeleteBucket",
                "the bucket is gone",
            )
            .await;
        Ok(CleanupStatus::Done)
    }
}
// ANCHOR_END: reconciler

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    windlass_examples::init_tracing();
    let server = windlass::testing::ApiServer::new();
    let client = server.client();
    let crds = Api::all(client.clone());
    crds.create(&PostParams::default(), &Bucket::crd()).await?;
    let established = await_condition(crds, Bucket::crd_name(), conditions::is_crd_established());
    tokio::time::timeout(Duration::from_secs(30), established).await??;

    // ANCHOR: run
    let store = Arc::new(ObjectStore::default());
    let controller = Controller::new(Buckets {
        store: store.clone(),
    })
    .with_cleanup();
    info!(finalizer = ?controller.finalizer(), "the controller manages a finalizer");
    let manager = Manager::new(client.clone()).add(controller);
    // ANCHOR_END: run
    let shutdown = manager.shutdown_handle();
    let running = tokio::spawn(manager.run());

    let buckets: Api<Bucket> = Api::namespaced(client.clone(), "default");
    let photos = Bucket::new(
        "photos",
        BucketSpec {
            region: "eu-west".into(),
        },
    );
    buckets.create(&PostParams::default(), &photos).await?;
    let ready = await_condition(buckets.clone(), "photos", |b: Option<&Bucket>| {
        b.is_some_and(|b| !b.finalizers().is_empty())
    });
    tokio::time::timeout(Duration::from_secs(30), ready).await??;
    let stored = buckets.get("photos").await?;
    info!(finalizers = ?stored.finalizers(), store = ?store.buckets.lock().expect("not poisoned"), "bucket created");

    buckets.delete("photos", &DeleteParams::default()).await?;
    let marked = buckets.get_opt("photos").await?;
    info!(
        marked_for_deletion = marked.is_some_and(|b| b.metadata.deletion_timestamp.is_some()),
        "user deleted the Bucket; it stays until cleanup succeeds"
    );
    let uid = stored.uid().unwrap_or_default();
    let gone = await_condition(buckets.clone(), "photos", conditions::is_deleted(&uid));
    tokio::time::timeout(Duration::from_secs(30), gone).await??;
    info!(store = ?store.buckets.lock().expect("not poisoned"), "the Bucket is gone, and so is the bucket");

    let events: Api<Event> = Api::namespaced(client, "default");
    for e in events.list(&ListParams::default()).await? {
        info!(
            r#type = e.type_.unwrap_or_default(),
            reason = e.reason.unwrap_or_default(),
            note = e.note.unwrap_or_default(),
            "event"
        );
    }
    shutdown.shutdown();
    running.await??;
    Ok(())
}
