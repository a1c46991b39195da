//! Status conditions written by a reconciler into a derived status struct: accepted by the
//! CRD's schema, with the transition time moving only when the status flips and the observed
//! generation following the object.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use windlass::apply::{WriteError, create_or_patch};
use windlass::condition::{self, ConditionType, find_status_condition};
use windlass::controller::{Action, Context, Controller, reconciler_fn};

use super::support::{Pet, PetStatus, Running, manager, pet, pet_server, until};

/// The conditions a pet reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PetCondition {
    Fed,
}

impl ConditionType for PetCondition {
    fn as_str(&self) -> &'static str {
        match self {
            PetCondition::Fed => "Fed",
        }
    }
}

fn fed(pet: Option<&Pet>) -> Option<Condition> {
    let status = pet?.status.as_ref()?;
    find_status_condition(&status.conditions, PetCondition::Fed).cloned()
}

const LONG_AGO: &str = "2020-01-01T00:00:00Z";

#[tokio::test]
async fn a_reconciler_sets_conditions_whose_transition_time_moves_only_when_the_status_flips() {
    let (server, pets) = pet_server().await;
    let controller = Controller::new(reconciler_fn(|p: Arc<Pet>, ctx: Context<Pet>| async move {
        let api: Api<Pet> = Api::namespaced(ctx.client().clone(), "default");
        let mut current = pet(&p.name_any(), "", 0);
        let ready = p.spec.meals > 0;
        create_or_patch(&api, &mut current, |stored| {
            let status = stored.status.get_or_insert_with(PetStatus::default);
            condition::set_status_condition(
                &mut status.conditions,
                condition::new(
                    PetCondition::Fed,
                    ready,
                    if ready { "MealsPlanned" } else { "NoMeals" },
                )
                .message(format!("{} meals a day", p.spec.meals))
                .observed_generation_of(p.as_ref()),
            );
            Ok(())
        })
        .await?;
        Ok::<_, WriteError>(Action::await_change())
    }));
    let running = Running::start(manager(server.client()).add(controller));

    pets.create(&Default::default(), &pet("rex", "kibble", 0))
        .await
        .unwrap();
    until(&pets, "rex", "Fed is False for generation 1", |p| {
        fed(p).is_some_and(|c| c.status == "False" && c.observed_generation == Some(1))
    })
    .await;
    assert_eq!(
        fed(Some(&pets.get("rex").await.unwrap())).unwrap().reason,
        "NoMeals"
    );

    // Date the transition back, so a new one cannot go unnoticed within the same second.
    let mut dated = pets.get("rex").await.unwrap().status.unwrap();
    dated.conditions[0].last_transition_time = serde_json::from_value(json!(LONG_AGO)).unwrap();
    pets.patch_status(
        "rex",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": dated})),
    )
    .await
    .unwrap();

    // A new generation with the same status: observed, but no transition.
    pets.patch(
        "rex",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"food": "fish"}})),
    )
    .await
    .unwrap();
    until(&pets, "rex", "generation 2 is observed", |p| {
        fed(p).is_some_and(|c| c.observed_generation == Some(2))
    })
    .await;
    let unflipped = fed(Some(&pets.get("rex").await.unwrap())).unwrap();
    assert_eq!(unflipped.status, "False");
    assert_eq!(
        serde_json::to_value(&unflipped.last_transition_time).unwrap(),
        LONG_AGO
    );

    // The status flips: a new transition time.
    pets.patch(
        "rex",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"meals": 2}})),
    )
    .await
    .unwrap();
    until(&pets, "rex", "Fed is True for generation 3", |p| {
        fed(p).is_some_and(|c| c.status == "True" && c.observed_generation == Some(3))
    })
    .await;
    let flipped = fed(Some(&pets.get("rex").await.unwrap())).unwrap();
    assert_eq!(flipped.reason, "MealsPlanned");
    assert_eq!(flipped.message, "2 meals a day");
    assert_ne!(
        serde_json::to_value(&flipped.last_transition_time).unwrap(),
        LONG_AGO
    );
    running.stop().await.unwrap();
}
