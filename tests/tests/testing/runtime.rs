//! kube-runtime against the server: `watcher` and `reflector` through closed streams and
//! expired history with both initial-list strategies, `finalizer()`, and `await_condition`.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{conditions, wait::await_condition, watcher};
use serde_json::json;
use windlass::testing::{ApiServer, Verb};

use super::support::*;

type Events =
    futures::stream::BoxStream<'static, Result<watcher::Event<ConfigMap>, watcher::Error>>;

fn reflect(api: Api<ConfigMap>, config: watcher::Config) -> (Store<ConfigMap>, Events) {
    let (reader, writer) = reflector::store();
    (
        reader,
        reflector::reflector(writer, watcher(api, config)).boxed(),
    )
}

/// The server's configmaps in `default`, as (name, resourceVersion), sorted.
async fn server_state(api: &Api<ConfigMap>) -> Vec<(String, String)> {
    let mut v: Vec<_> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| (c.name_any(), c.resource_version().unwrap()))
        .collect();
    v.sort();
    v
}

fn store_state(store: &Store<ConfigMap>) -> Vec<(String, String)> {
    let mut v: Vec<_> = store
        .state()
        .iter()
        .map(|c| (c.name_any(), c.resource_version().unwrap()))
        .collect();
    v.sort();
    v
}

/// Drives the watcher until its initial list is done.
async fn until_init_done(events: &mut Events) {
    for _ in 0..100 {
        if let watcher::Event::InitDone = next_item(events).await.unwrap() {
            return;
        }
    }
    panic!("the initial list never completed");
}

/// Drives the watcher, collecting (type, name, rv) of applied/deleted objects, until the
/// store matches the server.
async fn until_in_sync(
    events: &mut Events,
    store: &Store<ConfigMap>,
    api: &Api<ConfigMap>,
) -> Vec<(String, String, String)> {
    let want = server_state(api).await;
    let mut seen = Vec::new();
    for _ in 0..200 {
        if store_state(store) == want {
            return seen;
        }
        match next_item(events).await {
            Ok(watcher::Event::Apply(o)) => {
                seen.push(("apply".into(), o.name_any(), o.resource_version().unwrap()))
            }
            Ok(watcher::Event::Delete(o)) => {
                seen.push(("delete".into(), o.name_any(), o.resource_version().unwrap()))
            }
            Ok(_) | Err(_) => {}
        }
    }
    panic!(
        "the reflector never caught up: {:?} vs {want:?}",
        store_state(store)
    );
}

/// Writes a sequence of changes through `api`; returns what each write did as (type, name, rv).
async fn churn(server: &ApiServer, api: &Api<ConfigMap>) -> Vec<(String, String, String)> {
    let mut writes = Vec::new();
    for i in 0..3 {
        let c = api
            .create(&PostParams::default(), &cm(&format!("new-{i}")))
            .await
            .unwrap();
        writes.push((
            "apply".to_string(),
            c.name_any(),
            c.resource_version().unwrap(),
        ));
    }
    let p = api
        .patch(
            "old-0",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": "2"}})),
        )
        .await
        .unwrap();
    writes.push(("apply".into(), p.name_any(), p.resource_version().unwrap()));
    api.delete("old-1", &DeleteParams::default()).await.unwrap();
    writes.push((
        "delete".into(),
        "old-1".into(),
        server.resource_version().to_string(),
    ));
    writes
}

/// The server, an `Api` for the test's own reads and writes, and one for the informer, whose
/// requests are logged under the client name `informer`.
fn setup() -> (ApiServer, Api<ConfigMap>, Api<ConfigMap>) {
    let server = ApiServer::new();
    let api = Api::namespaced(server.client(), "default");
    let informer = Api::namespaced(server.client_named("informer").client(), "default");
    (server, api, informer)
}

fn informer_requests(server: &ApiServer, verb: Verb) -> Vec<windlass::testing::RequestRecord> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.client == "informer" && r.verb == Some(verb))
        .collect()
}

/// Every watch stream ends after one event, so each change after the first must be picked up
/// by a new watch resuming from the last resourceVersion seen.
async fn resumes_after_closed_streams(config: watcher::Config) -> ApiServer {
    let (server, api, informer) = setup();
    for n in ["old-0", "old-1"] {
        api.create(&PostParams::default(), &cm(n)).await.unwrap();
    }
    let (store, mut events) = reflect(informer, config);
    until_init_done(&mut events).await;
    server.faults().close_watches_after(Some(1));
    // The streaming watcher's first watch is still open (without the limit): end it.
    server.faults().close_watches();
    let writes = churn(&server, &api).await;
    let seen = until_in_sync(&mut events, &store, &api).await;
    assert_eq!(seen, writes, "every change exactly once, in order");
    assert!(
        informer_requests(&server, Verb::Watch).len() >= writes.len(),
        "a new watch per change"
    );
    server
}

#[tokio::test]
async fn a_list_watch_watcher_resumes_closed_streams_without_losing_or_repeating_events() {
    let server = resumes_after_closed_streams(watcher::Config::default()).await;
    assert_eq!(
        informer_requests(&server, Verb::List).len(),
        1,
        "resuming never relists"
    );
}

#[tokio::test]
async fn a_streaming_watcher_resumes_closed_streams_without_losing_or_repeating_events() {
    let server = resumes_after_closed_streams(watcher::Config::default().streaming_lists()).await;
    let watches = informer_requests(&server, Verb::Watch);
    assert!(watches[0].query.contains("sendInitialEvents=true"));
    assert!(
        watches[1..]
            .iter()
            .all(|r| !r.query.contains("sendInitialEvents")),
        "resumed watches start from a resourceVersion"
    );
    assert!(informer_requests(&server, Verb::List).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_watcher_resumes_after_the_servers_watch_timeout() {
    let (server, api, informer) = setup();
    server.set_max_watch_timeout(std::time::Duration::from_secs(60));
    api.create(&PostParams::default(), &cm("old-0"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("old-1"))
        .await
        .unwrap();
    let (store, mut events) = reflect(informer, watcher::Config::default());
    until_init_done(&mut events).await;
    let mut writes = Vec::new();
    for i in 0..3 {
        // Each write lands after the previous watch has timed out.
        tokio::time::sleep(std::time::Duration::from_secs(90)).await;
        let c = api
            .create(&PostParams::default(), &cm(&format!("late-{i}")))
            .await
            .unwrap();
        writes.push((
            "apply".to_string(),
            c.name_any(),
            c.resource_version().unwrap(),
        ));
        let seen = until_in_sync(&mut events, &store, &api).await;
        assert_eq!(seen, writes[i..]);
    }
    assert!(informer_requests(&server, Verb::Watch).len() >= 3);
    assert_eq!(informer_requests(&server, Verb::List).len(), 1);
}

async fn relists_after_expiry(config: watcher::Config) -> ApiServer {
    let (server, api, informer) = setup();
    for n in ["old-0", "old-1"] {
        api.create(&PostParams::default(), &cm(n)).await.unwrap();
    }
    let (store, mut events) = reflect(informer, config);
    until_init_done(&mut events).await;
    // Changes the watcher has not read yet, then the history that holds them is gone.
    api.create(&PostParams::default(), &cm("new"))
        .await
        .unwrap();
    api.delete("old-0", &DeleteParams::default()).await.unwrap();
    server.expire_history();
    let mut expired = false;
    for _ in 0..50 {
        match next_item(&mut events).await {
            Err(watcher::Error::WatchError(s)) => {
                assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
                expired = true;
                break;
            }
            Ok(_) => {}
            Err(other) => panic!("unexpected watcher error {other:?}"),
        }
    }
    assert!(expired, "the watcher saw the 410");
    until_in_sync(&mut events, &store, &api).await;
    let names: Vec<String> = store_state(&store).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["new", "old-1"]);
    server
}

#[tokio::test]
async fn a_list_watch_watcher_relists_after_the_history_expires() {
    let server = relists_after_expiry(watcher::Config::default()).await;
    assert_eq!(informer_requests(&server, Verb::List).len(), 2);
}

#[tokio::test]
async fn a_streaming_watcher_restarts_its_streaming_list_after_the_history_expires() {
    let server = relists_after_expiry(watcher::Config::default().streaming_lists()).await;
    let watches = informer_requests(&server, Verb::Watch);
    let initial = watches
        .iter()
        .filter(|r| r.query.contains("sendInitialEvents=true"))
        .count();
    assert_eq!(initial, 2);
}

#[tokio::test]
async fn a_paged_initial_list_of_many_objects_fills_the_reflector() {
    let (server, api, informer) = setup();
    for i in 0..7 {
        api.create(&PostParams::default(), &cm(&format!("cm-{i}")))
            .await
            .unwrap();
    }
    let (store, mut events) = reflect(informer, watcher::Config::default().page_size(3));
    until_init_done(&mut events).await;
    assert_eq!(store_state(&store), server_state(&api).await);
    assert_eq!(
        informer_requests(&server, Verb::List).len(),
        3,
        "pages of 3, 3 and 1"
    );
}

/// The error of a reconciler that cannot fail.
#[derive(Debug)]
enum Never {}

impl std::fmt::Display for Never {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {}
    }
}

impl std::error::Error for Never {}

async fn run_finalizer(api: &Api<ConfigMap>, name: &str) -> Result<&'static str, String> {
    let obj = Arc::new(api.get(name).await.unwrap());
    let mut ran = "added finalizer";
    let outcome = finalizer(api, "example.com/cleanup", obj, |event| {
        ran = match event {
            Finalizer::Apply(_) => "apply",
            Finalizer::Cleanup(_) => "cleanup",
        };
        async { Ok::<_, Never>(Action::await_change()) }
    })
    .await;
    outcome.map(|_| ran).map_err(|e| e.to_string())
}

#[tokio::test]
async fn kube_runtime_finalizer_adds_its_finalizer_applies_cleans_up_and_lets_the_object_go() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &cm("x")).await.unwrap();
    // First pass: the finalizer is added with a JSON patch that tests the absent list against null.
    assert_eq!(run_finalizer(&api, "x").await.unwrap(), "added finalizer");
    assert_eq!(
        api.get("x").await.unwrap().finalizers(),
        ["example.com/cleanup"]
    );
    assert_eq!(run_finalizer(&api, "x").await.unwrap(), "apply");
    let uid = api.get("x").await.unwrap().uid().unwrap();
    api.delete("x", &DeleteParams::default()).await.unwrap();
    assert!(
        api.get("x")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    assert_eq!(run_finalizer(&api, "x").await.unwrap(), "cleanup");
    let gone = await_condition(api.clone(), "x", conditions::is_deleted(&uid));
    tokio::time::timeout(WAIT, gone).await.unwrap().unwrap();
    assert!(api.get_opt("x").await.unwrap().is_none());
}

#[tokio::test]
async fn kube_runtime_finalizer_appends_to_existing_finalizers() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut c = cm("x");
    c.metadata.finalizers = Some(vec!["example.com/other".into()]);
    api.create(&PostParams::default(), &c).await.unwrap();
    assert_eq!(run_finalizer(&api, "x").await.unwrap(), "added finalizer");
    assert_eq!(
        api.get("x").await.unwrap().finalizers(),
        ["example.com/other", "example.com/cleanup"]
    );
}

#[tokio::test]
async fn kube_runtime_finalizer_fails_to_add_when_the_finalizers_changed_underneath() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &cm("x")).await.unwrap();
    let stale = Arc::new(api.get("x").await.unwrap());
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/other"]}})),
    )
    .await
    .unwrap();
    let outcome = finalizer(&api, "example.com/cleanup", stale, |_| async {
        Ok::<_, Never>(Action::await_change())
    })
    .await;
    match outcome {
        Err(kube::runtime::finalizer::Error::AddFinalizer(kube::Error::Api(s))) => {
            assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
        }
        other => panic!("expected the JSON patch test to fail, got {other:?}"),
    }
    assert_eq!(
        api.get("x").await.unwrap().finalizers(),
        ["example.com/other"]
    );
}
