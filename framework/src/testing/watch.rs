//! Watch streams: synthetic ADDED events or streaming lists (`sendInitialEvents`) to start,
//! then every change in resourceVersion order, filtered by namespace and selectors with the
//! real server's transitions (an object that stops matching is DELETED), periodic bookmarks,
//! a clean end at the timeout, and the in-stream 410 `ERROR` for a too-old resourceVersion.
//!
//! A stream holds no buffer of its own beyond one batch: it reads the resource's history from
//! its last position whenever the store says something changed, so a slow reader never loses
//! events (it gets 410 once the history it needs has been compacted, like a real watcher).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::faults::Faults;
use super::kinds::{GroupResource, ResourceType};
use super::read::{
    forbidden, list_options_invalid, not_supported, parse_rv, render, selected, selectors,
    to_bytes, wait_for_revision,
};
use super::request::Query;
use super::request::Wants;
use super::selector::{FieldSelector, LabelSelector};
use super::server::{Ctx, Inner, Reply};
use super::status::ApiError;
use super::store::{Event, EventType, Stored, TooOld};

/// One watch line: `{"type":T,"object":O}\n`, splicing already-serialized object bytes.
fn line(kind: &str, object: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(object.len() + 32);
    out.put_slice(b"{\"type\":\"");
    out.put_slice(kind.as_bytes());
    out.put_slice(b"\",\"object\":");
    out.put_slice(object);
    out.put_slice(b"}\n");
    out.freeze()
}

fn expired_line(message: String) -> Bytes {
    line("ERROR", &to_bytes(&ApiError::expired(message).to_status()))
}

/// The answer to a watch a fault rule expires: 200, one 410 ERROR event, end of stream.
pub(crate) fn expired_stream() -> Reply {
    let event = expired_line("too old resource version: injected fault".into());
    let stream = futures::stream::iter([Ok::<_, Infallible>(Frame::data(event))]);
    Reply::Stream(StreamBody::new(stream).boxed_unsync())
}

/// How a watch starts, once its options are validated and defaulted.
struct Start {
    /// `sendInitialEvents`: `Some(true)` streams the current state then a bookmark,
    /// `Some(false)` starts from the resourceVersion without initial events, `None` is the
    /// legacy behaviour (synthetic ADDED events for resourceVersion unset or "0").
    send_initial: Option<bool>,
}

/// apimachinery's `SetListOptionsDefaults` then `validateWatchOptions`: with the WatchList
/// gate on, a watch from resourceVersion unset or "0" that asks for nothing else becomes a
/// streaming list (so it also ends its initial events with a bookmark when bookmarks are
/// allowed); violations are one 422 with every cause.
fn watch_options(q: &Query, watch_list: bool) -> Result<Start, ApiError> {
    let mut send_initial = q
        .get("sendInitialEvents")
        .map(|_| q.flag("sendInitialEvents"));
    let mut rv_match = q.value("resourceVersionMatch");
    let legacy_rv = matches!(q.value("resourceVersion"), None | Some("0"));
    if watch_list && send_initial.is_none() && rv_match.is_none() && legacy_rv {
        send_initial = Some(true);
        rv_match = Some("NotOlderThan");
    }
    let mut causes = Vec::new();
    if send_initial.is_some() {
        if rv_match != Some("NotOlderThan") {
            causes.push(forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !watch_list {
            causes.push(forbidden(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
            ));
        }
    }
    if let Some(m) = rv_match {
        if send_initial.is_none() {
            causes.push(forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        if m != "NotOlderThan" {
            causes.push(not_supported("resourceVersionMatch", m, &["NotOlderThan"]));
        }
        if q.value("continue").is_some() {
            causes.push(forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
    }
    if !causes.is_empty() {
        return Err(list_options_invalid(&causes));
    }
    Ok(Start { send_initial })
}

pub(crate) async fn watch(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let q = &ctx.req.query;
    let settings = ctx.inner.settings();
    let timeout = q.int("timeoutSeconds").map_err(ApiError::bad_request)?;
    let Start { send_initial } = watch_options(q, settings.watch_list)?;
    let bookmarks = q.flag("allowWatchBookmarks");
    let (labels, fields) = selectors(q, ctx.rt)?;
    let rv = parse_rv(q)?;
    // A streaming list from a resourceVersion the store has not reached waits for it first.
    if let (Some(true), Some(n)) = (send_initial, rv.filter(|n| *n > 0)) {
        wait_for_revision(ctx.inner, n).await?;
    }
    // No timeout (or 0) means the server's own, which is long; a negative one ends at once.
    let timeout = match timeout {
        None | Some(0) => settings.max_watch_timeout,
        Some(secs) => {
            Duration::from_secs(u64::try_from(secs).unwrap_or(0)).min(settings.max_watch_timeout)
        }
    };
    let close_every = [
        ctx.inner.faults.close_every(),
        ctx.client.faults.close_every(),
    ]
    .into_iter()
    .flatten()
    .min();
    let close_after = [
        ctx.inner.faults.close_after_events(),
        ctx.client.faults.close_after_events(),
    ]
    .into_iter()
    .flatten()
    .min();
    let now = Instant::now();
    let deadline = now + close_every.map_or(timeout, |p| p.min(timeout));

    let gr = ctx.rt.group_resource();
    let mut stream = WatchStream {
        inner: ctx.inner.clone(),
        gr: gr.clone(),
        rt: ctx.rt.clone(),
        wants: ctx.wants,
        namespace: ctx.namespace.map(String::from),
        labels,
        fields,
        pos: 0,
        pending: VecDeque::new(),
        changed: watch::Sender::new(0).subscribe(),
        closers: [
            ctx.inner.faults.watch_closer(),
            ctx.client.faults.watch_closer(),
        ],
        _faults: [ctx.inner.faults.clone(), ctx.client.faults.clone()],
        incarnation: 0,
        bookmarks,
        bookmark_interval: settings.bookmark_interval.max(Duration::from_millis(1)),
        next_bookmark: now + settings.bookmark_interval,
        deadline,
        deadline_bookmark_sent: false,
        sent: 0,
        close_after,
        done: false,
    };
    {
        let mut state = ctx.inner.state.lock();
        stream.changed = state.store.subscribe(&gr);
        stream.incarnation = state.store.resource(&gr).incarnation();
        let current = state.store.revision();
        let rs = state.store.resource_ref(&gr);
        let start_from_state = match send_initial {
            Some(initial) => initial,
            None => rv.is_none_or(|rv| rv == 0),
        };
        if start_from_state {
            if let Some(rs) = rs
                && let Ok(snapshot) = rs.snapshot(current, None, ctx.namespace)
            {
                for (_, obj) in snapshot.iter() {
                    if selected(&obj.value, ctx.rt, &stream.labels, &stream.fields) {
                        stream
                            .pending
                            .push_back(line("ADDED", &render(obj, ctx.rt, ctx.wants)));
                    }
                }
            }
            stream.pos = current;
            if send_initial == Some(true) && bookmarks {
                let bookmark = stream.bookmark(Some(json!({"k8s.io/initial-events-end": "true"})));
                stream.pending.push_back(bookmark);
            }
        } else {
            let rv = rv.filter(|rv| *rv > 0).unwrap_or(current);
            if let Some(Err(TooOld { oldest })) = rs.map(|rs| rs.events_after(rv)) {
                stream.pending.push_back(expired_line(format!(
                    "too old resource version: {rv} ({oldest})"
                )));
                stream.done = true;
            }
            stream.pos = rv;
        }
    }
    let body = futures::stream::unfold(stream, |mut s| async move {
        s.next()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), s))
    })
    .boxed();
    Ok(Reply::Stream(StreamBody::new(body).boxed_unsync()))
}

struct WatchStream {
    inner: Arc<Inner>,
    gr: GroupResource,
    rt: Arc<ResourceType>,
    wants: Wants,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    /// Every change of the resource up to this revision has been read.
    pos: u64,
    pending: VecDeque<Bytes>,
    changed: watch::Receiver<u64>,
    closers: [watch::Receiver<u64>; 2],
    /// The incarnation of the resource this watch follows.
    incarnation: u64,
    /// The fault handles the closers listen to, kept so a stream outlives the client that
    /// started it (a response body being read keeps its connection, as with a real client).
    _faults: [Faults; 2],
    bookmarks: bool,
    bookmark_interval: Duration,
    next_bookmark: Instant,
    deadline: Instant,
    deadline_bookmark_sent: bool,
    sent: usize,
    close_after: Option<usize>,
    done: bool,
}

impl WatchStream {
    async fn next(&mut self) -> Option<Bytes> {
        // Bounded: each pass either returns, or waits for a change, a timer or a close.
        loop {
            if self.close_after.is_some_and(|n| self.sent >= n) {
                return None;
            }
            // A stream the server has closed (its timeout passed, or a fault closed it) sends
            // nothing more, even changes it has not delivered yet: the client resumes from the
            // last resourceVersion it saw, as it would after a real connection ends.
            let [global, client] = &self.closers;
            let closed =
                global.has_changed().unwrap_or(true) || client.has_changed().unwrap_or(true);
            if closed || Instant::now() >= self.deadline {
                return None;
            }
            if let Some(b) = self.pending.pop_front() {
                self.sent += 1;
                return Some(b);
            }
            if self.done {
                return None;
            }
            self.read_history();
            if !self.pending.is_empty() || self.done {
                continue;
            }
            let now = Instant::now();
            if now >= self.deadline {
                return None;
            }
            // Real servers send a last bookmark shortly before the deadline, so a client can
            // resume from the freshest revision.
            let before_deadline = self.deadline.checked_sub(Duration::from_secs(2));
            let mut bookmark_at = self.next_bookmark;
            if let Some(t) = before_deadline.filter(|t| *t > now && !self.deadline_bookmark_sent) {
                bookmark_at = bookmark_at.min(t);
            }
            let [global, client] = &mut self.closers;
            tokio::select! {
                changed = self.changed.changed() => {
                    // A replaced incarnation's sender is gone or says so: end the watch. A
                    // dropped resource (its CRD is gone) is drained by `read_history` first.
                    if changed.is_err() || *self.changed.borrow() == u64::MAX {
                        self.done = true;
                    }
                }
                _ = sleep_until(self.deadline) => return None,
                _ = sleep_until(bookmark_at), if self.bookmarks => {
                    if before_deadline.is_some_and(|t| bookmark_at >= t) {
                        self.deadline_bookmark_sent = true;
                    }
                    self.next_bookmark = Instant::now() + self.bookmark_interval;
                    self.read_history();
                    if !self.done {
                        let b = self.bookmark(None);
                        self.pending.push_back(b);
                    }
                }
                _ = global.changed() => return None,
                _ = client.changed() => return None,
            }
        }
    }

    /// Queues every relevant change after `pos`, or the 410 if the history is gone.
    fn read_history(&mut self) {
        let state = self.inner.state.lock();
        let Some(rs) = state
            .store
            .resource_ref(&self.gr)
            .filter(|rs| rs.incarnation() == self.incarnation)
        else {
            self.done = true;
            return;
        };
        if rs.is_closed() {
            // What happened before the resource went away is still delivered, then the end.
            self.done = true;
        }
        match rs.events_after(self.pos) {
            Err(TooOld { oldest }) => {
                self.pending.push_back(expired_line(format!(
                    "too old resource version: {} ({oldest})",
                    self.pos
                )));
                self.done = true;
            }
            Ok(events) => {
                for e in &events {
                    if let Some(line) = self.event_line(e) {
                        self.pending.push_back(line);
                    }
                }
                self.pos = self.pos.max(state.store.revision());
            }
        }
    }

    fn matches(&self, obj: &Stored) -> bool {
        selected(&obj.value, &self.rt, &self.labels, &self.fields)
    }

    /// How this watcher sees a change: selectors turn entries and exits into ADDED/DELETED.
    fn event_line(&self, e: &Event) -> Option<Bytes> {
        if self.namespace.as_deref().is_some_and(|ns| ns != e.key.0) {
            return None;
        }
        let was = e.prev.as_deref().is_some_and(|p| self.matches(p));
        match e.kind {
            EventType::Added if self.matches(&e.object) => {
                Some(line("ADDED", &render(&e.object, &self.rt, self.wants)))
            }
            EventType::Added => None,
            EventType::Modified => match (was, self.matches(&e.object)) {
                (true, true) => Some(line("MODIFIED", &render(&e.object, &self.rt, self.wants))),
                (false, true) => Some(line("ADDED", &render(&e.object, &self.rt, self.wants))),
                (true, false) => {
                    // The old content, stamped with the revision at which it stopped matching.
                    let mut old = e.prev.as_ref()?.value.clone();
                    old["metadata"]["resourceVersion"] = json!(e.rv.to_string());
                    Some(line(
                        "DELETED",
                        &render(&Stored::new(old, e.rv), &self.rt, self.wants),
                    ))
                }
                (false, false) => None,
            },
            EventType::Deleted if was => {
                Some(line("DELETED", &render(&e.object, &self.rt, self.wants)))
            }
            EventType::Deleted => None,
        }
    }

    fn bookmark(&self, annotations: Option<Value>) -> Bytes {
        let mut metadata = json!({"resourceVersion": self.pos.to_string()});
        if let Some(a) = annotations {
            metadata["annotations"] = a;
        }
        let object = match self.wants {
            Wants::Metadata => json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
            }),
            _ => {
                json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": metadata})
            }
        };
        line("BOOKMARK", &to_bytes(&object))
    }
}
