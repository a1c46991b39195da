//! The manager's shared cache: one watch per kind, indexes, and reads from a reconcile.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use tokio::sync::mpsc;
use windlass::controller::{Action, Context, Controller, reconciler_fn};
use windlass::informer::{Cache, InformerConfig};
use windlass::testing::{ApiServer, Verb};

use super::support::{
    Recorder, Run, Running, Wakeups, configmap, create_cm, data_v, labels_of, manager, next,
    recording, secret, set_label, until,
};

fn requests(server: &ApiServer, verb: Verb, resource: &str) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.verb == Some(verb) && r.resource.as_deref() == Some(resource))
        .count()
}

#[tokio::test]
async fn two_controllers_and_a_cache_read_of_one_kind_share_one_watch() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "shared", "1").await;

    let (first, mut first_rx) = Recorder::new();
    let (second, mut second_rx) = Recorder::new();
    let manager = manager(client)
        .add(Controller::new(recording(first)).name("first"))
        .add(Controller::new(recording(second)).name("second"));
    let cache = manager.cache().clone();
    let running = Running::start(manager);

    assert_eq!(next(&mut first_rx).await.name, "shared");
    assert_eq!(next(&mut second_rx).await.name, "shared");
    let read = cache.get::<ConfigMap>(Some("default"), "shared").await;
    assert_eq!(data_v(&read.expect("the object is cached")), "1");

    // Both controllers see changes through the one watch.
    create_cm(&api, "later", "1").await;
    assert_eq!(next(&mut first_rx).await.name, "later");
    assert_eq!(next(&mut second_rx).await.name, "later");

    assert_eq!(
        requests(&server, Verb::Watch, "configmaps"),
        1,
        "{:#?}",
        server.requests()
    );
    assert_eq!(requests(&server, Verb::List, "configmaps"), 1);
    running.stop().await.unwrap();
}

fn by_team(cm: &ConfigMap) -> Vec<String> {
    cm.labels().get("team").cloned().into_iter().collect()
}

fn names(objects: Vec<Arc<ConfigMap>>) -> Vec<String> {
    let mut names: Vec<String> = objects.iter().map(|o| o.name_any()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn an_index_follows_creates_updates_and_deletes() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut blue = configmap("blue", "1");
    blue.metadata.labels = Some(labels_of(&[("team", "a")]));
    api.create(&PostParams::default(), &blue).await.unwrap();

    let (rec, _rx) = Recorder::new();
    let manager = manager(client).add(Controller::new(recording(rec)));
    let informer = manager
        .cache()
        .informer::<ConfigMap>(InformerConfig::default());
    informer.add_index("by-team", by_team);
    let (tx, mut wakeups) = mpsc::unbounded_channel();
    informer.add_handler(Arc::new(Wakeups(tx)));
    let store = informer.store().clone();
    let team = |t: &str| names(store.by_index("by-team", t).unwrap());
    let running = Running::start(manager);

    until(&mut wakeups, "blue is indexed", || team("a") == ["blue"]).await;

    let mut green = configmap("green", "1");
    green.metadata.labels = Some(labels_of(&[("team", "a")]));
    api.create(&PostParams::default(), &green).await.unwrap();
    until(&mut wakeups, "green is indexed", || {
        team("a") == ["blue", "green"]
    })
    .await;

    set_label(&api, "blue", "team", "b").await;
    until(&mut wakeups, "blue moves to team b", || {
        team("a") == ["green"] && team("b") == ["blue"]
    })
    .await;

    api.delete("green", &DeleteParams::default()).await.unwrap();
    until(&mut wakeups, "green is gone", || team("a").is_empty()).await;
    assert_eq!(team("b"), ["blue"]);
    assert!(
        store.by_index("by-owner", "x").is_err(),
        "an index never added is an error"
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_reconcile_can_read_another_kind_from_the_cache() {
    let server = ApiServer::new();
    let client = server.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &secret("creds", vec![], &[("tier", "gold")]),
        )
        .await
        .unwrap();
    create_cm(&cms, "app", "creds").await;

    let (rec, mut rx) = Recorder::new();
    let reconciler = {
        let rec = rec.clone();
        reconciler_fn(move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
            let rec = rec.clone();
            async move {
                // data.v names a Secret; record its tier label as the run's value.
                let name = data_v(&cm);
                let secret = ctx.cache().get::<Secret>(Some("default"), &name).await;
                let tier = secret
                    .map(|s| s.labels()["tier"].clone())
                    .unwrap_or_default();
                rec.record(Run {
                    value: tier,
                    ..Run::of(cm.as_ref(), &ctx)
                });
                Ok::<_, kube::Error>(Action::await_change())
            }
        })
    };
    let manager = manager(client).add(Controller::new(reconciler));
    let cache = manager.cache().clone();
    let running = Running::start(manager);

    assert_eq!(next(&mut rx).await.value, "gold");
    assert!(
        cache
            .stats()
            .iter()
            .any(|(name, stats)| name == "Secret" && stats.objects == 1),
        "the Secret informer was created on first read: {:?}",
        cache.stats()
    );
    // Later reads see that informer's cache kept current by its watch.
    let informer = cache.informer::<Secret>(InformerConfig::default());
    let (tx, mut wakeups) = mpsc::unbounded_channel();
    informer.add_handler(Arc::new(Wakeups(tx)));
    set_label(&secrets, "creds", "tier", "silver").await;
    until(&mut wakeups, "the cached Secret is silver", || {
        informer
            .store()
            .get_named(Some("default"), "creds")
            .is_some_and(|s| s.labels()["tier"] == "silver")
    })
    .await;
    set_label(&cms, "app", "poke", "1").await;
    assert_eq!(next(&mut rx).await.value, "silver");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn cached_objects_drop_managed_fields_unless_told_to_keep_them() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = create_cm(&api, "owned", "1").await;
    assert!(
        created.metadata.managed_fields.is_some(),
        "the server records the creator"
    );

    let default = Cache::new(client.clone());
    let cached = default.get::<ConfigMap>(Some("default"), "owned").await;
    let cached = cached.expect("the object is cached");
    assert_eq!(cached.metadata.managed_fields, None);
    assert_eq!(data_v(&cached), "1");
    assert_eq!(
        cached.metadata.resource_version,
        created.metadata.resource_version
    );

    let keeping = Cache::new(client);
    let informer =
        keeping.informer::<ConfigMap>(InformerConfig::default().strip_managed_fields(false));
    keeping.start();
    keeping.wait_synced().await;
    let kept = informer.store().get_named(Some("default"), "owned");
    let kept = kept.expect("the object is cached");
    assert_eq!(
        kept.metadata.managed_fields,
        created.metadata.managed_fields
    );
    default.stop();
    keeping.stop();
}
