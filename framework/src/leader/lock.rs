//! The lock: a `coordination.k8s.io/v1` Lease, read and written with client-go's field
//! semantics (its `LeaseLock` and `LeaderElectionRecord`).
//!
//! This module owns the mapping between a Lease's spec and the election record, and the three
//! requests the algorithm makes: get, create, and update with the resourceVersion last seen as
//! the precondition, so a write based on a stale view fails with 409 instead of overwriting
//! another replica's. It makes no decisions; the [elector](super::elector) does.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{Timestamp, TimestampRound, Unit};
use kube::api::{Api, PostParams};

/// What a Lease says about who leads: client-go's `LeaderElectionRecord`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Record {
    /// Who holds the lease; empty when nobody does (after a release).
    pub(crate) holder: String,
    /// How long, in seconds, a candidate waits after last seeing the record change.
    pub(crate) lease_duration_seconds: i32,
    /// When the current holder acquired it; kept across renewals.
    pub(crate) acquire_time: Option<Timestamp>,
    /// When the holder last renewed it. For people; no replica compares it with its clock.
    pub(crate) renew_time: Option<Timestamp>,
    /// How many times the holder changed.
    pub(crate) transitions: i32,
    /// Coordinated leader election's fields, kept as found.
    pub(crate) strategy: Option<String>,
    pub(crate) preferred_holder: Option<String>,
}

impl Record {
    /// client-go's `LeaseSpecToLeaderElectionRecord`: unset fields read as empty or zero.
    pub(crate) fn from_lease(lease: &Lease) -> Self {
        let Some(spec) = lease.spec.as_ref() else {
            return Self::default();
        };
        Self {
            holder: spec.holder_identity.clone().unwrap_or_default(),
            lease_duration_seconds: spec.lease_duration_seconds.unwrap_or_default(),
            acquire_time: spec.acquire_time.as_ref().map(|t| t.0),
            renew_time: spec.renew_time.as_ref().map(|t| t.0),
            transitions: spec.lease_transitions.unwrap_or_default(),
            strategy: spec.strategy.clone(),
            preferred_holder: spec.preferred_holder.clone(),
        }
    }

    /// client-go's `LeaderElectionRecordToLeaseSpec`: every field written, the holder even
    /// when empty.
    pub(crate) fn to_spec(&self) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.holder.clone()),
            lease_duration_seconds: Some(self.lease_duration_seconds),
            acquire_time: self.acquire_time.map(MicroTime),
            renew_time: self.renew_time.map(MicroTime),
            lease_transitions: Some(self.transitions),
            strategy: self.strategy.clone(),
            preferred_holder: self.preferred_holder.clone(),
        }
    }

    /// Whether someone holds the lease.
    pub(crate) fn is_held(&self) -> bool {
        !self.holder.is_empty()
    }
}

/// Now, to the microsecond (a MicroTime's precision), so what is written is what is read back.
pub(crate) fn now_micros() -> Timestamp {
    let now = Timestamp::now();
    now.round(
        TimestampRound::new()
            .smallest(Unit::Microsecond)
            .mode(k8s_openapi::jiff::RoundMode::Trunc),
    )
    .unwrap_or(now)
}

/// A Lease as the lock: its API and the object last read or written (whose resourceVersion
/// guards the next update).
pub(crate) struct LeaseLock {
    api: Api<Lease>,
    name: String,
    namespace: String,
    /// The Lease as last seen, from a get, a create, an update or the watch.
    pub(crate) lease: Option<Lease>,
}

impl LeaseLock {
    pub(crate) fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            namespace: namespace.to_string(),
            lease: None,
        }
    }

    /// `namespace/name`, for logs and errors.
    pub(crate) fn describe(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn namespace(&self) -> &str {
        &self.namespace
    }

    pub(crate) fn api(&self) -> &Api<Lease> {
        &self.api
    }

    /// Reads the Lease; `None` when it does not exist.
    pub(crate) async fn get(&mut self) -> Result<Option<Lease>, kube::Error> {
        let lease = self.api.get_opt(&self.name).await?;
        if let Some(l) = &lease {
            self.lease = Some(l.clone());
        }
        Ok(lease)
    }

    /// Creates the Lease with `record` (fails with 409 if another replica created it first).
    pub(crate) async fn create(&mut self, record: &Record) -> Result<Lease, kube::Error> {
        let mut lease = Lease::default();
        lease.metadata.name = Some(self.name.clone());
        lease.metadata.namespace = Some(self.namespace.clone());
        lease.spec = Some(record.to_spec());
        let created = self.api.create(&PostParams::default(), &lease).await?;
        self.lease = Some(created.clone());
        Ok(created)
    }

    /// Writes `record` over the Lease last seen, with its resourceVersion as the precondition:
    /// if anyone wrote the Lease since, this fails with 409 Conflict and changes nothing.
    pub(crate) async fn update(&mut self, record: &Record) -> Result<Lease, UpdateError> {
        let Some(mut lease) = self.lease.clone() else {
            return Err(UpdateError::NotInitialized);
        };
        lease.spec = Some(record.to_spec());
        // managedFields are the server's to keep; sending them back is noise.
        lease.metadata.managed_fields = None;
        let updated = self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map_err(UpdateError::Api)?;
        self.lease = Some(updated.clone());
        Ok(updated)
    }
}

/// Why an update of the lock failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpdateError {
    /// client-go's "lease not initialized, call get or create first".
    #[error("the lease has not been read yet")]
    NotInitialized,
    /// The API answered with an error (409 when the Lease changed since it was read).
    #[error(transparent)]
    Api(kube::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_a_round_trip_through_a_lease_spec() {
        let t = now_micros();
        let record = Record {
            holder: "a".into(),
            lease_duration_seconds: 15,
            acquire_time: Some(t),
            renew_time: Some(t),
            transitions: 3,
            strategy: None,
            preferred_holder: None,
        };
        let lease = Lease {
            spec: Some(record.to_spec()),
            ..Lease::default()
        };
        assert_eq!(Record::from_lease(&lease), record);
    }

    #[test]
    fn a_released_record_writes_an_empty_holder() {
        let record = Record {
            lease_duration_seconds: 1,
            ..Record::default()
        };
        let spec = record.to_spec();
        assert_eq!(spec.holder_identity.as_deref(), Some(""));
        assert_eq!(spec.lease_duration_seconds, Some(1));
        assert!(!record.is_held());
    }

    #[test]
    fn an_unset_spec_reads_as_an_empty_record() {
        assert_eq!(Record::from_lease(&Lease::default()), Record::default());
    }

    #[test]
    fn times_are_written_to_the_microsecond() {
        let t = now_micros();
        assert_eq!(t.subsec_nanosecond() % 1000, 0);
    }
}
