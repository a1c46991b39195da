//! Watched objects reconcile the objects a map function points them at.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use windlass::controller::{Controller, EventKind, ReconcileReason, Related};
use windlass::informer::ObjectKey;
use windlass::testing::ApiServer;

use super::support::{
    Recorder, Running, create_cm, manager, next, next_n, recording, secret, set_label,
};

/// Secrets labelled `for: <name>` are mapped to the ConfigMap `<name>` in their namespace.
fn by_for_label(s: &Secret) -> Vec<ObjectKey> {
    s.labels()
        .get("for")
        .map(|target| ObjectKey::new(s.namespace().as_deref(), target))
        .into_iter()
        .collect()
}

fn mapped(source: &str, event: EventKind) -> ReconcileReason {
    ReconcileReason::Mapped {
        source: Related {
            kind: "Secret".into(),
            key: ObjectKey::new(Some("default"), source),
        },
        event,
    }
}

#[tokio::test]
async fn adding_changing_and_deleting_a_watched_object_reconciles_what_it_maps_to() {
    let server = ApiServer::new();
    let client = server.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    create_cm(&cms, "app", "1").await;

    let (rec, mut rx) = Recorder::new();
    let controller = Controller::new(recording(rec.clone())).watches::<Secret, _>(by_for_label);
    let running = Running::start(manager(client).add(controller));
    assert_eq!(next(&mut rx).await.reason, ReconcileReason::Startup);

    let creds = secret("creds", vec![], &[("for", "app")]);
    secrets
        .create(&PostParams::default(), &creds)
        .await
        .unwrap();
    let added = next(&mut rx).await;
    assert_eq!(
        (added.name.as_str(), added.reason),
        ("app", mapped("creds", EventKind::Added))
    );

    set_label(&secrets, "creds", "rotated", "yes").await;
    let updated = next(&mut rx).await;
    assert_eq!(
        (updated.name.as_str(), updated.reason),
        ("app", mapped("creds", EventKind::Updated))
    );

    secrets
        .delete("creds", &DeleteParams::default())
        .await
        .unwrap();
    let deleted = next(&mut rx).await;
    assert_eq!(
        (deleted.name.as_str(), deleted.reason),
        ("app", mapped("creds", EventKind::Deleted))
    );

    running.stop().await.unwrap();
    assert_eq!(rec.count("app"), 4);
}

#[tokio::test]
async fn a_watched_object_that_changes_target_reconciles_the_old_and_the_new_one() {
    let server = ApiServer::new();
    let client = server.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    create_cm(&cms, "blue", "1").await;
    create_cm(&cms, "green", "1").await;
    let creds = secret("creds", vec![], &[("for", "blue")]);
    secrets
        .create(&PostParams::default(), &creds)
        .await
        .unwrap();

    let (rec, mut rx) = Recorder::new();
    let controller = Controller::new(recording(rec.clone())).watches::<Secret, _>(by_for_label);
    let running = Running::start(manager(client).add(controller));
    next_n(&mut rx, 2).await;

    set_label(&secrets, "creds", "for", "green").await;
    let mut runs = next_n(&mut rx, 2).await;
    runs.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        runs[0].name, "blue",
        "the old target learns it lost the secret"
    );
    assert_eq!(runs[1].name, "green", "the new target learns it got it");
    for run in &runs {
        assert_eq!(run.reason, mapped("creds", EventKind::Updated));
    }
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_map_function_that_panics_on_one_object_does_not_stop_the_others() {
    let server = ApiServer::new();
    let client = server.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    create_cm(&cms, "app", "1").await;

    let (rec, mut rx) = Recorder::new();
    let controller = Controller::new(recording(rec.clone())).watches::<Secret, _>(|s: &Secret| {
        assert!(
            s.name_any() != "poison",
            "the map function cannot handle {}",
            s.name_any()
        );
        by_for_label(s)
    });
    let running = Running::start(manager(client).add(controller));
    next(&mut rx).await;

    let poison = secret("poison", vec![], &[("for", "app")]);
    secrets
        .create(&PostParams::default(), &poison)
        .await
        .unwrap();
    let creds = secret("creds", vec![], &[("for", "app")]);
    secrets
        .create(&PostParams::default(), &creds)
        .await
        .unwrap();
    let run = next(&mut rx).await;
    assert_eq!(
        (run.name.as_str(), run.reason),
        ("app", mapped("creds", EventKind::Added))
    );

    // The primary's own informer is unaffected too.
    super::support::set_cm(&cms, "app", "2").await;
    let run = next(&mut rx).await;
    assert_eq!(
        run.reason,
        ReconcileReason::ObjectChanged(EventKind::Updated)
    );
    running.stop().await.unwrap();
}
