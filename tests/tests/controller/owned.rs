//! Children owned through a controller owner reference reconcile their owner.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use windlass::controller::{Controller, EventKind, ReconcileReason, Related};
use windlass::informer::ObjectKey;
use windlass::testing::ApiServer;

use super::support::{
    Recorder, Running, controller_ref, create_cm, manager, next, next_of, recording, recording_of,
    secret, set_label,
};

fn owned_by(child: &str, event: EventKind) -> ReconcileReason {
    ReconcileReason::OwnedChanged {
        child: Related {
            kind: "Secret".into(),
            key: ObjectKey::new(Some("default"), child),
        },
        event,
    }
}

#[tokio::test]
async fn adding_changing_and_deleting_an_owned_child_reconciles_its_owner() {
    let server = ApiServer::new();
    let client = server.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let owner = create_cm(&cms, "owner", "1").await;

    let (rec, mut rx) = Recorder::new();
    let controller = Controller::new(recording(rec.clone())).owns::<Secret>();
    let running = Running::start(manager(client).add(controller));
    assert_eq!(next(&mut rx).await.reason, ReconcileReason::Startup);

    secrets
        .create(
            &PostParams::default(),
            &secret("child", vec![controller_ref(&owner)], &[]),
        )
        .await
        .unwrap();
    let added = next(&mut rx).await;
    assert_eq!(
        (added.name.as_str(), &added.reason),
        ("owner", &owned_by("child", EventKind::Added))
    );

    set_label(&secrets, "child", "touched", "yes").await;
    let updated = next(&mut rx).await;
    assert_eq!(
        (updated.name.as_str(), &updated.reason),
        ("owner", &owned_by("child", EventKind::Updated))
    );

    secrets
        .delete("child", &DeleteParams::default())
        .await
        .unwrap();
    let deleted = next(&mut rx).await;
    assert_eq!(
        (deleted.name.as_str(), &deleted.reason),
        ("owner", &owned_by("child", EventKind::Deleted))
    );

    running.stop().await.unwrap();
    assert_eq!(rec.count("owner"), 4);
}

#[tokio::test]
async fn a_child_without_a_controller_reference_does_not_reconcile_its_owner() {
    let server = ApiServer::new();
    let client = server.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let owner = create_cm(&cms, "owner", "1").await;
    let other = create_cm(&cms, "other", "1").await;

    let (rec, mut rx) = Recorder::new();
    let controller = Controller::new(recording(rec.clone()))
        .owns::<Secret>()
        .max_concurrent_reconciles(1);
    let running = Running::start(manager(client).add(controller));
    next(&mut rx).await;
    next(&mut rx).await;

    let mut not_controller = controller_ref(&owner);
    not_controller.controller = Some(false);
    secrets
        .create(
            &PostParams::default(),
            &secret("plain", vec![not_controller], &[]),
        )
        .await
        .unwrap();
    // With one worker, a reconcile queued for the first child would run before the second's.
    secrets
        .create(
            &PostParams::default(),
            &secret("sentinel", vec![controller_ref(&other)], &[]),
        )
        .await
        .unwrap();
    let run = next(&mut rx).await;
    assert_eq!(
        (run.name.as_str(), &run.reason),
        ("other", &owned_by("sentinel", EventKind::Added))
    );

    running.stop().await.unwrap();
    assert_eq!(
        rec.count("owner"),
        1,
        "only the start-up reconcile of the owner ran"
    );
}

#[tokio::test]
async fn a_child_of_a_cluster_scoped_owner_reconciles_it() {
    let server = ApiServer::new();
    let client = server.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let team: Namespace = serde_json::from_value(json!({"metadata": {"name": "team-a"}})).unwrap();
    let team = namespaces
        .create(&PostParams::default(), &team)
        .await
        .unwrap();

    let (rec, mut rx) = Recorder::new();
    let controller = Controller::new(recording_of::<Namespace>(rec.clone())).owns::<ConfigMap>();
    let running = Running::start(manager(client.clone()).add(controller));
    let (startup, _) = next_of(&mut rx, "team-a").await;
    assert_eq!(startup.reason, ReconcileReason::Startup);

    let cms: Api<ConfigMap> = Api::namespaced(client, "team-a");
    let mut quota: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "quota"}})).unwrap();
    quota.metadata.owner_references = Some(vec![controller_ref(&team)]);
    cms.create(&PostParams::default(), &quota).await.unwrap();

    let (run, _) = next_of(&mut rx, "team-a").await;
    assert_eq!(
        run.reason,
        ReconcileReason::OwnedChanged {
            child: Related {
                kind: "ConfigMap".into(),
                key: ObjectKey::new(Some("team-a"), "quota")
            },
            event: EventKind::Added,
        }
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_child_handed_to_another_owner_reconciles_both() {
    let server = ApiServer::new();
    let client = server.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let old_owner = create_cm(&cms, "old-owner", "1").await;
    let new_owner = create_cm(&cms, "new-owner", "1").await;
    let child = secret("child", vec![controller_ref(&old_owner)], &[]);
    secrets
        .create(&PostParams::default(), &child)
        .await
        .unwrap();

    let (rec, mut rx) = Recorder::new();
    let controller = Controller::new(recording(rec.clone())).owns::<Secret>();
    let running = Running::start(manager(client).add(controller));
    next(&mut rx).await;
    next(&mut rx).await;

    let mut child = secrets.get("child").await.unwrap();
    child.metadata.owner_references = Some(vec![controller_ref(&new_owner)]);
    secrets
        .replace("child", &PostParams::default(), &child)
        .await
        .unwrap();
    let mut runs = [next(&mut rx).await, next(&mut rx).await];
    runs.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(runs[0].name, "new-owner");
    assert_eq!(
        runs[1].name, "old-owner",
        "the old owner learns it lost the child"
    );
    for run in &runs {
        assert_eq!(run.reason, owned_by("child", EventKind::Updated));
    }
    running.stop().await.unwrap();
}
