//! Status conditions: the `status.conditions` list Kubernetes objects report their state in,
//! with apimachinery's `meta.SetStatusCondition` semantics.
//!
//! Conditions are k8s-openapi's [`Condition`] (`metav1.Condition`), so they serialize as the
//! API server and `kubectl wait --for=condition=Ready` expect, and have a JSON schema: a
//! `Vec<Condition>` can live in a status struct that derives `JsonSchema` for a
//! [`CustomResource`](crate::CustomResource).
//!
//! - [`set_status_condition`] adds or updates a condition; `lastTransitionTime` changes only
//!   when `status` flips, so a reconcile that sets the same condition every time writes
//!   nothing new.
//! - [`new`] builds one from a typed kind (your enum implementing [`ConditionType`]), a
//!   [`ConditionStatus`] and a reason; [`NewCondition::observed_generation_of`] records which
//!   generation of the object it describes.
//! - [`find_status_condition`], [`is_status_condition_true`], [`is_status_condition_false`],
//!   [`is_status_condition_present_and_equal`] and [`remove_status_condition`] read and drop
//!   conditions by type.
//!
//! # Example
//!
//! ```
//! use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use windlass::condition::{self, ConditionStatus, ConditionType};
//!
//! #[derive(Clone, Copy, Debug, PartialEq, Eq)]
//! enum Website {
//!     Ready,
//!     Degraded,
//! }
//!
//! impl ConditionType for Website {
//!     fn as_str(&self) -> &'static str {
//!         match self {
//!             Website::Ready => "Ready",
//!             Website::Degraded => "Degraded",
//!         }
//!     }
//! }
//!
//! let mut obj = ConfigMap::default();
//! obj.metadata.generation = Some(3);
//! let mut conditions: Vec<Condition> = Vec::new();
//! let ready = condition::new(Website::Ready, ConditionStatus::True, "Deployed")
//!     .message("all replicas are available")
//!     .observed_generation_of(&obj);
//! assert!(condition::set_status_condition(&mut conditions, ready.clone()));
//! assert!(!condition::set_status_condition(&mut conditions, ready)); // nothing changed
//! assert!(condition::is_status_condition_true(&conditions, Website::Ready));
//! assert_eq!(conditions[0].observed_generation, Some(3));
//! ```
//!
//! This module does not write the status; see [`apply`](crate::apply).

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// A kind of condition (`Ready`, `Available`, `Degraded`, …), usually a unit enum of your
/// own so a typo is a compile error. `as_str` gives the `type` it is stored under:
/// `UpperCamelCase` by convention.
///
/// String literals implement it too, for one-off conditions.
pub trait ConditionType {
    /// The condition's `type`.
    fn as_str(&self) -> &'static str;
}

impl ConditionType for &'static str {
    fn as_str(&self) -> &'static str {
        self
    }
}

/// A condition's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// The controller cannot tell (yet).
    Unknown,
}

impl ConditionStatus {
    /// The status as stored: `True`, `False` or `Unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

impl fmt::Display for ConditionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A condition to set with [`set_status_condition`]. Unlike a stored [`Condition`] its
/// `lastTransitionTime` is optional: left out, it is "now" when the status flips (Go's zero
/// time).
#[derive(Debug, Clone, PartialEq)]
pub struct NewCondition {
    type_: String,
    status: String,
    reason: String,
    message: String,
    observed_generation: Option<i64>,
    last_transition_time: Option<Time>,
}

/// A condition of kind `type_` with `status`, and `reason`: a short `UpperCamelCase` word
/// for why (the API server requires one for `metav1.Condition`).
pub fn new(
    type_: impl ConditionType,
    status: impl Into<ConditionStatus>,
    reason: impl Into<String>,
) -> NewCondition {
    NewCondition {
        type_: type_.as_str().to_string(),
        status: status.into().as_str().to_string(),
        reason: reason.into(),
        message: String::new(),
        observed_generation: None,
        last_transition_time: None,
    }
}

impl NewCondition {
    /// A human-readable message with details.
    #[must_use]
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// The generation of the object the condition was computed from.
    #[must_use]
    pub fn observed_generation(mut self, generation: i64) -> Self {
        self.observed_generation = Some(generation);
        self
    }

    /// The generation of `obj` (its `metadata.generation`), as the generation the condition
    /// was computed from.
    #[must_use]
    pub fn observed_generation_of<K: kube::Resource>(mut self, obj: &K) -> Self {
        self.observed_generation = obj.meta().generation;
        self
    }

    /// The transition time to record if the status flips (default: now).
    #[must_use]
    pub fn last_transition_time(mut self, time: Time) -> Self {
        self.last_transition_time = Some(time);
        self
    }
}

impl From<Condition> for NewCondition {
    /// A stored condition, with its transition time (which [`set_status_condition`] then
    /// uses when the status flips, as Go does with a non-zero time).
    fn from(c: Condition) -> Self {
        NewCondition {
            type_: c.type_,
            status: c.status,
            reason: c.reason,
            message: c.message,
            observed_generation: c.observed_generation,
            last_transition_time: Some(c.last_transition_time),
        }
    }
}

/// Adds `new` to `conditions`, or updates the condition of its type; returns whether anything
/// changed. `lastTransitionTime` is set when the condition is added and changes only when
/// `status` does; `reason`, `message` and `observedGeneration` are overwritten. This is
/// apimachinery's `meta.SetStatusCondition`.
pub fn set_status_condition(conditions: &mut Vec<Condition>, new: impl Into<NewCondition>) -> bool {
    let new = new.into();
    // Whole seconds: `metav1.Time` is stored with second precision, so a time with
    // nanoseconds would differ from the same condition read back, and look like a change.
    let now = || Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_default());
    let Some(existing) = conditions.iter_mut().find(|c| c.type_ == new.type_) else {
        conditions.push(Condition {
            last_transition_time: new.last_transition_time.unwrap_or_else(now),
            message: new.message,
            observed_generation: new.observed_generation,
            reason: new.reason,
            status: new.status,
            type_: new.type_,
        });
        return true;
    };
    let mut changed = false;
    if existing.status != new.status {
        existing.status = new.status;
        existing.last_transition_time = new.last_transition_time.unwrap_or_else(now);
        changed = true;
    }
    if existing.reason != new.reason {
        existing.reason = new.reason;
        changed = true;
    }
    if existing.message != new.message {
        existing.message = new.message;
        changed = true;
    }
    if existing.observed_generation != new.observed_generation {
        existing.observed_generation = new.observed_generation;
        changed = true;
    }
    changed
}

/// Removes the condition of kind `type_`; returns whether there was one
/// (`meta.RemoveStatusCondition`).
pub fn remove_status_condition(conditions: &mut Vec<Condition>, type_: impl ConditionType) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_.as_str());
    conditions.len() != before
}

/// The condition of kind `type_`, if there is one (`meta.FindStatusCondition`).
pub fn find_status_condition(
    conditions: &[Condition],
    type_: impl ConditionType,
) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == type_.as_str())
}

/// Whether the condition of kind `type_` is there with status `status`
/// (`meta.IsStatusConditionPresentAndEqual`).
pub fn is_status_condition_present_and_equal(
    conditions: &[Condition],
    type_: impl ConditionType,
    status: ConditionStatus,
) -> bool {
    find_status_condition(conditions, type_).is_some_and(|c| c.status == status.as_str())
}

/// Whether the condition of kind `type_` is there and `True` (`meta.IsStatusConditionTrue`).
pub fn is_status_condition_true(conditions: &[Condition], type_: impl ConditionType) -> bool {
    is_status_condition_present_and_equal(conditions, type_, ConditionStatus::True)
}

/// Whether the condition of kind `type_` is there and `False` (`meta.IsStatusConditionFalse`).
pub fn is_status_condition_false(conditions: &[Condition], type_: impl ConditionType) -> bool {
    is_status_condition_present_and_equal(conditions, type_, ConditionStatus::False)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::SignedDuration;

    use super::*;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn adding_a_condition_stamps_it_now_unless_a_time_is_given() {
        let mut conditions = Vec::new();
        let before = Timestamp::now() - SignedDuration::from_secs(1);
        assert!(set_status_condition(
            &mut conditions,
            new("Ready", false, "Starting")
        ));
        assert!(conditions[0].last_transition_time.0 >= before);
        assert!(set_status_condition(
            &mut conditions,
            new("Synced", ConditionStatus::Unknown, "Pending").last_transition_time(at(10))
        ));
        assert_eq!(conditions[1].last_transition_time, at(10));
        assert_eq!(conditions[1].status, "Unknown");
    }

    #[test]
    fn the_transition_time_moves_only_when_the_status_flips() {
        let mut conditions = vec![];
        set_status_condition(
            &mut conditions,
            new("Ready", false, "Starting").last_transition_time(at(10)),
        );
        // Same status, new reason and message: changed, but the transition time stays.
        assert!(set_status_condition(
            &mut conditions,
            new("Ready", false, "Waiting")
                .message("1 of 3 ready")
                .last_transition_time(at(20))
        ));
        assert_eq!(conditions[0].last_transition_time, at(10));
        assert_eq!(conditions[0].reason, "Waiting");
        // Flipped: the given time is the transition time.
        assert!(set_status_condition(
            &mut conditions,
            new("Ready", true, "Available").last_transition_time(at(30))
        ));
        assert_eq!(conditions[0].last_transition_time, at(30));
        // Flipped without a time: now.
        let before = Timestamp::now() - SignedDuration::from_secs(1);
        assert!(set_status_condition(
            &mut conditions,
            new("Ready", false, "Lost")
        ));
        assert!(conditions[0].last_transition_time.0 > before);
        assert_eq!(conditions.len(), 1);
    }

    #[test]
    fn setting_the_same_condition_again_changes_nothing() {
        let mut conditions = vec![];
        let c = new("Ready", true, "Available").observed_generation(2);
        assert!(set_status_condition(&mut conditions, c.clone()));
        let stored = conditions.clone();
        assert!(!set_status_condition(&mut conditions, c));
        assert_eq!(conditions, stored);
        // A new generation alone is a change.
        assert!(set_status_condition(
            &mut conditions,
            new("Ready", true, "Available").observed_generation(3)
        ));
        assert_eq!(conditions[0].observed_generation, Some(3));
    }

    #[test]
    fn transition_times_are_whole_seconds_as_the_api_server_stores_them() {
        let mut conditions = vec![];
        set_status_condition(&mut conditions, new("Ready", true, "Available"));
        assert_eq!(conditions[0].last_transition_time.0.subsec_nanosecond(), 0);
    }

    #[test]
    fn lookups_and_removal_go_by_type() {
        let mut conditions = vec![];
        set_status_condition(&mut conditions, new("Ready", true, "Available"));
        set_status_condition(&mut conditions, new("Degraded", false, "Healthy"));
        assert!(is_status_condition_true(&conditions, "Ready"));
        assert!(is_status_condition_false(&conditions, "Degraded"));
        assert!(!is_status_condition_true(&conditions, "Degraded"));
        assert!(!is_status_condition_false(&conditions, "Missing"));
        assert!(is_status_condition_present_and_equal(
            &conditions,
            "Ready",
            ConditionStatus::True
        ));
        assert_eq!(
            find_status_condition(&conditions, "Degraded").map(|c| c.reason.as_str()),
            Some("Healthy")
        );
        assert!(remove_status_condition(&mut conditions, "Ready"));
        assert!(!remove_status_condition(&mut conditions, "Ready"));
        assert!(find_status_condition(&conditions, "Ready").is_none());
    }

    #[test]
    fn a_stored_condition_keeps_its_own_time_when_set_elsewhere() {
        let stored = Condition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: "Available".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: at(5),
        };
        let mut conditions = vec![];
        set_status_condition(&mut conditions, stored.clone());
        assert_eq!(conditions, vec![stored]);
    }
}
