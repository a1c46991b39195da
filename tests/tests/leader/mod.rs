//! Leader election and high availability: several replicas of one operator, each a `Manager`
//! with its own client, against `windlass::testing`, under a paused clock.

mod conflicts;
mod crash;
mod election;
mod handover;
mod partition;
mod standby;
mod support;
