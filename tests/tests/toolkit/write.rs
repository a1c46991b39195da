//! create_or_update and create_or_patch: what they report, and that they write only when
//! something changed (counted in the server's request log).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;
use windlass::apply::{Operation, WriteError, create_or_patch, create_or_update};
use windlass::condition::{self, ConditionStatus};
use windlass::owner::set_controller_reference;
use windlass::testing::ApiServer;

use super::support::{Pet, PetStatus, configmap, pet, pet_server, writes};

fn named(name: &str) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    cm
}

fn set(cm: &mut ConfigMap, key: &str, value: &str) {
    cm.data
        .get_or_insert_with(BTreeMap::new)
        .insert(key.into(), value.into());
}

#[tokio::test]
async fn create_or_update_creates_then_updates_and_writes_nothing_when_nothing_changed() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");

    let mut cm = named("settings");
    let op = create_or_update(&cms, &mut cm, |cm| {
        set(cm, "mode", "fast");
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(op, Operation::Created);
    assert!(
        cm.metadata.uid.is_some(),
        "the object is as the server stored it"
    );
    assert_eq!(writes(&server, "configmaps"), (1, 1, 0, 0));

    server.clear_requests();
    let mut again = named("settings");
    let op = create_or_update(&cms, &mut again, |cm| {
        set(cm, "mode", "fast");
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(op, Operation::Unchanged);
    assert_eq!(
        writes(&server, "configmaps"),
        (1, 0, 0, 0),
        "one read, no write"
    );
    assert_eq!(
        again.metadata.resource_version,
        cm.metadata.resource_version
    );

    server.clear_requests();
    let mut changed = named("settings");
    let op = create_or_update(&cms, &mut changed, |cm| {
        set(cm, "mode", "safe");
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(op, Operation::Updated);
    assert_eq!(writes(&server, "configmaps"), (1, 0, 1, 0));
    assert_eq!(
        cms.get("settings").await.unwrap().data.unwrap()["mode"],
        "safe"
    );
}

#[tokio::test]
async fn create_or_update_keeps_what_the_server_defaulted_and_sees_no_change_the_second_time() {
    let server = ApiServer::new();
    let deployments: Api<Deployment> = Api::namespaced(server.client(), "default");
    let desired = |d: &mut Deployment| {
        let spec: serde_json::Value = json!({
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
            }
        });
        if d.metadata.uid.is_none() {
            d.spec = serde_json::from_value(spec).unwrap();
        }
        // The one field this controller manages, set on its own.
        d.spec.replicas = Some(2);
        Ok(())
    };
    let mut d = Deployment::default();
    d.metadata.name = Some("web".into());
    assert_eq!(
        create_or_update(&deployments, &mut d, desired)
            .await
            .unwrap(),
        Operation::Created
    );
    let mut again = Deployment::default();
    again.metadata.name = Some("web".into());
    server.clear_requests();
    assert_eq!(
        create_or_update(&deployments, &mut again, desired)
            .await
            .unwrap(),
        Operation::Unchanged
    );
    assert_eq!(writes(&server, "deployments"), (1, 0, 0, 0));
    assert!(
        again.spec.strategy.is_some(),
        "the defaulted strategy is still there"
    );
}

#[tokio::test]
async fn a_failing_mutate_or_a_rename_writes_nothing() {
    let server = ApiServer::new();
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let owner = cms
        .create(&PostParams::default(), &configmap("owner", &[]))
        .await
        .unwrap();
    let other = cms
        .create(&PostParams::default(), &configmap("other", &[]))
        .await
        .unwrap();
    let mut child = named("child");
    create_or_update(&cms, &mut child, |cm| {
        set_controller_reference(&owner, cm)?;
        Ok(())
    })
    .await
    .unwrap();

    server.clear_requests();
    let mut child = named("child");
    let err = create_or_update(&cms, &mut child, |cm| {
        set(cm, "stolen", "yes");
        set_controller_reference(&other, cm)?;
        Ok(())
    })
    .await
    .unwrap_err();
    assert!(matches!(err, WriteError::Mutate { .. }), "{err}");
    assert!(
        std::error::Error::source(&err)
            .unwrap()
            .to_string()
            .contains("already controlled by ConfigMap \"owner\""),
        "{err:?}"
    );

    let mut renamed = named("child");
    let err = create_or_patch(&cms, &mut renamed, |cm| {
        cm.metadata.name = Some("elsewhere".into());
        Ok(())
    })
    .await
    .unwrap_err();
    assert!(matches!(err, WriteError::KeyChanged { .. }), "{err}");
    assert_eq!(writes(&server, "configmaps"), (2, 0, 0, 0), "only reads");
    assert!(cms.get("child").await.unwrap().data.is_none());
}

fn fed(status: &mut Option<PetStatus>, meals: i32) {
    let status = status.get_or_insert_with(PetStatus::default);
    status.meals_served = Some(meals);
    condition::set_status_condition(
        &mut status.conditions,
        condition::new("Fed", meals > 0, "Served").message(format!("{meals} meals")),
    );
}

/// What a test case does to a pet, what `create_or_patch` should report, and how many patches
/// of the object and of its status it should send.
type Case = (&'static str, fn(&mut Pet), Operation, (usize, usize));

#[tokio::test]
async fn create_or_patch_patches_the_object_and_its_status_separately_and_says_which() {
    let (server, pets) = pet_server().await;
    let patches = |server: &ApiServer| (writes(server, "pets").3, writes(server, "pets/status").3);

    server.clear_requests();
    let mut rex = pet("rex", "kibble", 2);
    let op = create_or_patch(&pets, &mut rex, |p| {
        fed(&mut p.status, 1);
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(op, Operation::Created);
    assert_eq!(writes(&server, "pets").1, 1);
    assert_eq!(
        patches(&server),
        (0, 1),
        "the status is written after the create"
    );
    assert_eq!(rex.status.as_ref().unwrap().meals_served, Some(1));

    let cases: [Case; 4] = [
        (
            "status only",
            |p| fed(&mut p.status, 2),
            Operation::UpdatedStatusOnly,
            (0, 1),
        ),
        (
            "spec only",
            |p| p.spec.meals = 3,
            Operation::Updated,
            (1, 0),
        ),
        (
            "both",
            |p| {
                p.spec.food = "fish".into();
                fed(&mut p.status, 3);
            },
            Operation::UpdatedStatus,
            (1, 1),
        ),
        (
            "nothing",
            |p| p.spec.meals = 3,
            Operation::Unchanged,
            (0, 0),
        ),
    ];
    for (what, mutate, expected, expected_patches) in cases {
        server.clear_requests();
        let mut p = pet("rex", "ignored", 0);
        let op = create_or_patch(&pets, &mut p, |p| {
            mutate(p);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(op, expected, "{what}");
        assert_eq!(patches(&server), expected_patches, "{what}");
        assert_eq!(writes(&server, "pets").0, 1, "{what}: one read");
    }
    let stored = pets.get("rex").await.unwrap();
    assert_eq!((stored.spec.food.as_str(), stored.spec.meals), ("fish", 3));
    let status = stored.status.unwrap();
    assert_eq!(status.meals_served, Some(3));
    assert!(condition::is_status_condition_present_and_equal(
        &status.conditions,
        "Fed",
        ConditionStatus::True
    ));
}
