//! Fault injection: failing requests with chosen statuses, adding latency, cutting a client off,
//! and breaking watch streams — for the whole server or for one handed-out client, so one
//! replica of an operator can be cut off while the others carry on.
//!
//! This module owns the rules and their bookkeeping; the server consults them per request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

/// A request's verb, as Kubernetes names them (and as RBAC and audit logs do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verb {
    /// Read one object.
    Get,
    /// Read a collection.
    List,
    /// Follow a collection's changes.
    Watch,
    /// POST a new object.
    Create,
    /// PUT a whole object.
    Update,
    /// PATCH an object.
    Patch,
    /// DELETE one object.
    Delete,
    /// DELETE a collection.
    DeleteCollection,
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        })
    }
}

/// Fails matching requests with an HTTP status.
///
/// A rule matches by verb, resource (plural), group, namespace, name and subresource; every
/// criterion left unset matches anything. It fires for the next `times` matching requests
/// (once by default), then is spent. With [`every`](Self::every) it fires only for every
/// `n`th matching request, so a fraction of the traffic fails while the rest goes through.
///
/// ```
/// use std::time::Duration;
/// use windlass::testing::{FaultRule, Verb};
///
/// // The next three updates of ConfigMaps are throttled, with a Retry-After of one second.
/// let rule = FaultRule::status(429)
///     .verb(Verb::Update)
///     .resource("configmaps")
///     .times(3)
///     .retry_after(Duration::from_secs(1));
/// # let _ = rule;
/// ```
///
/// A watch rule with status 410 answers the way a real server answers a too-old
/// resourceVersion: HTTP 200 and one `ERROR` event carrying the 410 Status.
#[derive(Debug, Clone)]
pub struct FaultRule {
    code: u16,
    verb: Option<Verb>,
    resource: Option<String>,
    group: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    times: usize,
    every: usize,
    /// Matching requests seen so far, for `every`.
    seen: usize,
    retry_after: Option<Duration>,
}

impl FaultRule {
    /// A rule answering with `code` (409, 410, 429, 500, 503, 504 get the real reasons).
    pub fn status(code: u16) -> Self {
        Self {
            code,
            verb: None,
            resource: None,
            group: None,
            namespace: None,
            name: None,
            subresource: None,
            times: 1,
            every: 1,
            seen: 0,
            retry_after: None,
        }
    }

    /// Only requests with this verb.
    #[must_use]
    pub fn verb(mut self, verb: Verb) -> Self {
        self.verb = Some(verb);
        self
    }

    /// Only requests for this resource (its plural, e.g. `configmaps`).
    #[must_use]
    pub fn resource(mut self, plural: impl Into<String>) -> Self {
        self.resource = Some(plural.into());
        self
    }

    /// Only requests in this API group (`""` for the core group).
    #[must_use]
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Only requests in this namespace.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Only requests for the object with this name.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only requests for this subresource (`status`, `scale`).
    #[must_use]
    pub fn subresource(mut self, subresource: impl Into<String>) -> Self {
        self.subresource = Some(subresource.into());
        self
    }

    /// How many matching requests fail (1 by default).
    #[must_use]
    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }

    /// Fires only for every `n`th matching request (the `n`th, `2n`th, ...; default 1: each
    /// one), letting the others through: `every(3).times(10)` fails a third of the matching
    /// requests until it has failed ten. Deterministic, so a failing test replays exactly.
    /// `0` counts as 1.
    #[must_use]
    pub fn every(mut self, n: usize) -> Self {
        self.every = n.max(1);
        self
    }

    /// Sends `Retry-After` (and `details.retryAfterSeconds`), rounded up to whole seconds.
    #[must_use]
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    fn matches(&self, r: &RequestInfo<'_>) -> bool {
        fn opt(want: &Option<String>, got: Option<&str>) -> bool {
            want.as_deref().is_none_or(|w| Some(w) == got)
        }
        self.verb.is_none_or(|v| Some(v) == r.verb)
            && opt(&self.resource, r.resource)
            && opt(&self.group, r.group)
            && opt(&self.namespace, r.namespace)
            && opt(&self.name, r.name)
            && opt(&self.subresource, r.subresource)
    }
}

/// What a fault rule can match a request on.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RequestInfo<'a> {
    pub(crate) verb: Option<Verb>,
    pub(crate) resource: Option<&'a str>,
    pub(crate) group: Option<&'a str>,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) name: Option<&'a str>,
    pub(crate) subresource: Option<&'a str>,
}

/// The failure a matched rule asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Injected {
    pub(crate) code: u16,
    pub(crate) retry_after: Option<u64>,
}

#[derive(Debug, Default)]
struct FaultState {
    rules: Vec<FaultRule>,
    latency: Option<Duration>,
    disconnected: bool,
    close_after_events: Option<usize>,
    close_every: Option<Duration>,
}

/// A handle on fault injection, for the whole server ([`ApiServer::faults`]) or for one client
/// ([`TestClient::faults`]). Cheap to clone; clones control the same faults.
///
/// [`ApiServer::faults`]: super::ApiServer::faults
/// [`TestClient::faults`]: super::TestClient::faults
#[derive(Clone)]
pub struct Faults {
    state: Arc<Mutex<FaultState>>,
    /// Bumped to end every open watch stream this handle governs.
    close_watches: Arc<watch::Sender<u64>>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.lock();
        f.debug_struct("Faults")
            .field("rules", &s.rules.len())
            .field("latency", &s.latency)
            .field("disconnected", &s.disconnected)
            .finish()
    }
}

impl Default for Faults {
    fn default() -> Self {
        Self::new()
    }
}

impl Faults {
    pub(crate) fn new() -> Self {
        Self {
            state: Arc::default(),
            close_watches: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Adds a rule; rules are consulted in the order they were added.
    pub fn fail(&self, rule: FaultRule) {
        if rule.times > 0 {
            self.state.lock().rules.push(rule);
        }
    }

    /// Delays every request by `latency` before it is served (`None` removes the delay).
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.state.lock().latency = latency;
    }

    /// Cuts the client(s) off: every request fails as a transport error (no HTTP answer at
    /// all, as when the API server is unreachable) and open watch streams end.
    pub fn disconnect(&self) {
        self.state.lock().disconnected = true;
        self.close_watches();
    }

    /// Undoes [`disconnect`](Self::disconnect).
    pub fn reconnect(&self) {
        self.state.lock().disconnected = false;
    }

    /// Whether requests currently fail as if the server were unreachable.
    pub fn is_disconnected(&self) -> bool {
        self.state.lock().disconnected
    }

    /// Ends every open watch stream now, cleanly, as a server does at its watch timeout.
    pub fn close_watches(&self) {
        self.close_watches.send_modify(|n| *n += 1);
    }

    /// Ends each watch stream after it has sent `events` events (bookmarks included).
    pub fn close_watches_after(&self, events: Option<usize>) {
        self.state.lock().close_after_events = events;
    }

    /// Ends each watch stream `period` after it started.
    pub fn close_watches_every(&self, period: Option<Duration>) {
        self.state.lock().close_every = period;
    }

    /// Removes every rule, latency, disconnection and watch-breaking setting.
    pub fn clear(&self) {
        *self.state.lock() = FaultState::default();
    }

    /// Consumes the first matching rule that fires for this request, if any. A rule with
    /// [`FaultRule::every`] counts the request even when it lets it through.
    pub(crate) fn take(&self, info: &RequestInfo<'_>) -> Option<Injected> {
        let mut s = self.state.lock();
        let mut fired = None;
        for (i, rule) in s.rules.iter_mut().enumerate() {
            if !rule.matches(info) {
                continue;
            }
            rule.seen += 1;
            if rule.seen % rule.every != 0 {
                continue;
            }
            rule.times -= 1;
            fired = Some((
                i,
                Injected {
                    code: rule.code,
                    retry_after: rule
                        .retry_after
                        .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0)),
                },
            ));
            break;
        }
        let (i, injected) = fired?;
        if s.rules[i].times == 0 {
            s.rules.remove(i);
        }
        Some(injected)
    }

    pub(crate) fn latency(&self) -> Option<Duration> {
        self.state.lock().latency
    }

    pub(crate) fn close_after_events(&self) -> Option<usize> {
        self.state.lock().close_after_events
    }

    pub(crate) fn close_every(&self) -> Option<Duration> {
        self.state.lock().close_every
    }

    pub(crate) fn watch_closer(&self) -> watch::Receiver<u64> {
        self.close_watches.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_fire_the_given_number_of_times_then_are_spent() {
        let f = Faults::new();
        f.fail(
            FaultRule::status(503)
                .verb(Verb::List)
                .resource("configmaps")
                .times(2),
        );
        let list_cm = RequestInfo {
            verb: Some(Verb::List),
            resource: Some("configmaps"),
            ..Default::default()
        };
        let get_cm = RequestInfo {
            verb: Some(Verb::Get),
            resource: Some("configmaps"),
            ..Default::default()
        };
        assert!(f.take(&get_cm).is_none());
        assert_eq!(f.take(&list_cm).unwrap().code, 503);
        assert_eq!(f.take(&list_cm).unwrap().code, 503);
        assert!(f.take(&list_cm).is_none());
    }

    #[test]
    fn a_rule_with_every_fails_every_nth_matching_request_and_lets_the_others_through() {
        let f = Faults::new();
        f.fail(FaultRule::status(409).verb(Verb::Patch).every(3).times(2));
        let patch = RequestInfo {
            verb: Some(Verb::Patch),
            ..Default::default()
        };
        let get = RequestInfo {
            verb: Some(Verb::Get),
            ..Default::default()
        };
        let fired: Vec<bool> = (0..9).map(|_| f.take(&patch).is_some()).collect();
        assert_eq!(
            fired,
            [false, false, true, false, false, true, false, false, false]
        );
        // Requests the rule does not match are not counted.
        assert!(f.take(&get).is_none());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let f = Faults::new();
        f.fail(FaultRule::status(429).retry_after(Duration::from_millis(1500)));
        assert_eq!(
            f.take(&RequestInfo::default()).unwrap().retry_after,
            Some(2)
        );
    }
}
