//! The Kubernetes Events leader election writes on its Lease, as client-go's does:
//! `<identity> became leader` and `<identity> stopped leading`, reason `LeaderElection`.
//!
//! They are core `v1` Events, written directly through the lease client; a general event
//! recorder is not this module's job.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};
use kube::{Resource, ResourceExt};

use super::lock::now_micros;

/// The reason client-go gives its leader election events.
pub(crate) const REASON: &str = "LeaderElection";

/// The Event `"<identity> <what>"` about `lease`, named as client-go's recorder names events
/// (`<object name>.<unix nanoseconds in hex>`).
pub(crate) fn event(lease: &Lease, identity: &str, what: &str) -> Event {
    let now = now_micros();
    let mut event = Event::default();
    event.metadata.name = Some(format!("{}.{:x}", lease.name_any(), now.as_nanosecond()));
    event.metadata.namespace = lease.namespace();
    event.involved_object = ObjectReference {
        api_version: Some(Lease::api_version(&()).into_owned()),
        kind: Some(Lease::kind(&()).into_owned()),
        name: lease.metadata.name.clone(),
        namespace: lease.metadata.namespace.clone(),
        uid: lease.metadata.uid.clone(),
        resource_version: lease.metadata.resource_version.clone(),
        field_path: None,
    };
    event.reason = Some(REASON.into());
    event.message = Some(format!("{identity} {what}"));
    event.type_ = Some("Normal".into());
    // controller-runtime records these "for" the identity.
    event.source = Some(EventSource {
        component: Some(identity.to_string()),
        host: None,
    });
    event.first_timestamp = Some(Time(now));
    event.last_timestamp = Some(Time(now));
    event.count = Some(1);
    event
}

/// Writes the event; a failure is logged and otherwise ignored (an event is never worth
/// holding up leadership for).
pub(crate) async fn publish(client: kube::Client, lease: &Lease, identity: &str, what: &str) {
    let Some(namespace) = lease.namespace() else {
        return;
    };
    let api: Api<Event> = Api::namespaced(client, &namespace);
    if let Err(error) = api
        .create(&PostParams::default(), &event(lease, identity, what))
        .await
    {
        tracing::debug!(%error, what, "could not write the leader election event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_names_the_lease_and_says_who_did_what() {
        let mut lease = Lease::default();
        lease.metadata.name = Some("op".into());
        lease.metadata.namespace = Some("ns".into());
        lease.metadata.uid = Some("u-1".into());
        let e = event(&lease, "host_1", "became leader");
        assert!(e.metadata.name.as_deref().unwrap().starts_with("op."));
        assert_eq!(e.message.as_deref(), Some("host_1 became leader"));
        assert_eq!(e.reason.as_deref(), Some("LeaderElection"));
        assert_eq!(e.involved_object.kind.as_deref(), Some("Lease"));
        assert_eq!(
            e.involved_object.api_version.as_deref(),
            Some("coordination.k8s.io/v1")
        );
        assert_eq!(e.involved_object.uid.as_deref(), Some("u-1"));
        assert_eq!(e.metadata.namespace.as_deref(), Some("ns"));
    }
}
