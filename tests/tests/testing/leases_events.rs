//! Leases (MicroTime fields, optimistic concurrency) and Events (kube-runtime's `Recorder`,
//! series, validation, and the two shapes of one storage).

use http::Method;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::events::{Event as Published, EventType, Recorder, Reporter};
use kube::{Resource, ResourceExt};
use serde_json::json;
use windlass::testing::ApiServer;

use super::support::*;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";

fn lease(name: &str, renew: &str) -> serde_json::Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
        "spec": {"holderIdentity": "replica-a", "leaseDurationSeconds": 15,
                 "acquireTime": "2026-01-02T03:04:00.000001Z", "renewTime": renew},
    })
}

#[tokio::test]
async fn a_lease_keeps_its_micro_times_to_the_microsecond() {
    let server = ApiServer::new();
    let client = server.client();
    let res = request(
        &client,
        Method::POST,
        LEASES,
        Some(lease("l", "2026-01-02T03:04:05.123456Z")),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let stored = get(&client, &format!("{LEASES}/l")).await.json();
    assert_eq!(stored["spec"]["renewTime"], "2026-01-02T03:04:05.123456Z");
    assert_eq!(stored["spec"]["acquireTime"], "2026-01-02T03:04:00.000001Z");
    // Like metav1.MicroTime, fewer digits are written back with all six.
    let res = request(
        &client,
        Method::POST,
        LEASES,
        Some(lease("m", "2026-01-02T03:04:05.5Z")),
    )
    .await;
    assert_eq!(
        res.json()["spec"]["renewTime"],
        "2026-01-02T03:04:05.500000Z"
    );
}

#[tokio::test]
async fn lease_renewals_are_guarded_by_resource_versions() {
    let server = ApiServer::new();
    let leases: Api<Lease> = Api::namespaced(server.client(), "kube-node-lease");
    let created = leases
        .create(
            &PostParams::default(),
            &serde_json::from_value(lease("l", "2026-01-02T03:04:05.000000Z")).unwrap(),
        )
        .await
        .unwrap();
    let mut mine = created.clone();
    mine.spec.as_mut().unwrap().lease_transitions = Some(1);
    leases
        .replace("l", &PostParams::default(), &mine)
        .await
        .unwrap();
    let mut theirs = created;
    theirs.spec.as_mut().unwrap().holder_identity = Some("replica-b".into());
    let err = api_err(leases.replace("l", &PostParams::default(), &theirs).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        r#"Operation cannot be fulfilled on leases.coordination.k8s.io "l": the object has been modified; please apply your changes to the latest version and try again"#
    );
    assert_eq!(
        leases
            .get("l")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("replica-a")
    );
    leases.delete("l", &DeleteParams::default()).await.unwrap();
    assert!(leases.get_opt("l").await.unwrap().is_none());
}

fn published(reason: &str) -> Published {
    Published {
        type_: EventType::Normal,
        reason: reason.into(),
        note: Some("something happened".into()),
        action: "Reconcile".into(),
        secondary: None,
    }
}

#[tokio::test]
async fn the_recorder_publishes_an_event_and_turns_a_repeat_into_a_series() {
    let server = ApiServer::new();
    let client = server.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let target = cms
        .create(&PostParams::default(), &cm("target"))
        .await
        .unwrap();
    let reporter = Reporter {
        controller: "windlass-test".into(),
        instance: Some("replica-a".into()),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let reference = target.object_ref(&());
    recorder
        .publish(&published("Synced"), &reference)
        .await
        .unwrap();
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let list = events.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let e = &list.items[0];
    assert_eq!(e.reason.as_deref(), Some("Synced"));
    assert_eq!(e.note.as_deref(), Some("something happened"));
    assert_eq!(e.action.as_deref(), Some("Reconcile"));
    assert_eq!(e.type_.as_deref(), Some("Normal"));
    assert_eq!(e.reporting_controller.as_deref(), Some("windlass-test"));
    assert_eq!(e.reporting_instance.as_deref(), Some("replica-a"));
    assert_eq!(
        e.regarding.as_ref().unwrap().name.as_deref(),
        Some("target")
    );
    assert!(e.series.is_none());
    recorder
        .publish(&published("Synced"), &reference)
        .await
        .unwrap();
    let list = events.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1, "a repeat updates the same event");
    let series = list.items[0].series.as_ref().expect("a series");
    assert_eq!(series.count, 2);
    let by_regarding = events
        .list(&ListParams::default().fields("regarding.name=target,reason=Synced"))
        .await
        .unwrap();
    assert_eq!(by_regarding.items.len(), 1);
    assert_eq!(by_regarding.items[0].name_any(), list.items[0].name_any());
}

#[tokio::test]
async fn an_events_k8s_io_event_must_name_its_reporter_time_type_action_and_reason() {
    let server = ApiServer::new();
    let client = server.client();
    let res = request(
        &client,
        Method::POST,
        "/apis/events.k8s.io/v1/namespaces/default/events",
        Some(json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "type": "Sometimes"})),
    )
    .await;
    let body = res.assert_status(422, "Invalid");
    let fields: Vec<&str> = body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    for field in [
        "eventTime",
        "type",
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
    ] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    let series = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
        "eventTime": "2026-01-02T03:04:05.000000Z", "type": "Normal", "reportingController": "windlass-test",
        "reportingInstance": "a", "action": "A", "reason": "R", "series": {"count": 1, "lastObservedTime": "2026-01-02T03:04:06.000000Z"}});
    let res = request(
        &client,
        Method::POST,
        "/apis/events.k8s.io/v1/namespaces/default/events",
        Some(series),
    )
    .await;
    let body = res.assert_status(422, "Invalid");
    assert_eq!(body["details"]["causes"][0]["field"], "series.count");
}

#[tokio::test]
async fn an_events_k8s_io_event_update_may_change_its_series_but_not_its_note() {
    let server = ApiServer::new();
    let client = server.client();
    const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events";
    let event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
        "eventTime": "2026-01-02T03:04:05.000000Z", "type": "Normal", "reportingController": "windlass-test",
        "reportingInstance": "a", "action": "A", "reason": "R", "note": "first"});
    let res = request(&client, Method::POST, EVENTS, Some(event)).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let series = r#"{"series":{"count":2,"lastObservedTime":"2026-01-02T03:04:09.000000Z"}}"#;
    let res = request_bytes(
        &client,
        Method::PATCH,
        &format!("{EVENTS}/e"),
        "application/merge-patch+json",
        series,
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["series"]["count"], 2);
    let res = request_bytes(
        &client,
        Method::PATCH,
        &format!("{EVENTS}/e"),
        "application/merge-patch+json",
        r#"{"note":"rewritten"}"#,
    )
    .await;
    let body = res.assert_status(422, "Invalid");
    assert_eq!(
        body["details"]["causes"][0],
        json!({"reason": "FieldValueInvalid", "message": "Invalid value: \"rewritten\": field is immutable", "field": "note"})
    );
}

#[tokio::test]
async fn core_and_events_k8s_io_events_are_one_storage_in_two_shapes() {
    let server = ApiServer::new();
    let client = server.client();
    let target = Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &cm("target"))
        .await
        .unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "windlass-test".into(),
            instance: Some("a".into()),
        },
    );
    recorder
        .publish(&published("Synced"), &target.object_ref(&()))
        .await
        .unwrap();
    let core: Api<CoreEvent> = Api::namespaced(client, "default");
    let list = core.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let e = &list.items[0];
    assert_eq!(e.message.as_deref(), Some("something happened"));
    assert_eq!(e.involved_object.name.as_deref(), Some("target"));
    assert_eq!(e.reporting_component.as_deref(), Some("windlass-test"));
    assert_eq!(e.reason.as_deref(), Some("Synced"));
}
