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

use super::kinds::{GroupResource, ResourceType};
use super::read::{list_options_invalid, matches, parse_rv, render, selectors, to_bytes};
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

pub(crate) fn watch(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let q = &ctx.req.query;
    let settings = ctx.inner.settings();
    let send_initial = match q.value("sendInitialEvents") {
        None => None,
        Some(_) => Some(q.flag("sendInitialEvents").map_err(ApiError::bad_request)?),
    };
    let bookmarks = q
        .flag("allowWatchBookmarks")
        .map_err(ApiError::bad_request)?;
    let rv_match = q.value("resourceVersionMatch");
    if let Some(initial) = send_initial {
        if !settings.watch_list {
            return Err(list_options_invalid(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
            ));
        }
        if rv_match != Some("NotOlderThan") {
            return Err(list_options_invalid(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if initial && !bookmarks {
            return Err(list_options_invalid(
                "allowWatchBookmarks",
                "sendInitialEvents requires setting allowWatchBookmarks to true",
            ));
        }
    } else if rv_match.is_some() {
        return Err(list_options_invalid(
            "resourceVersionMatch",
            "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ));
    }
    let (labels, fields) = selectors(q, ctx.rt)?;
    let rv = parse_rv(q)?;
    let timeout = match q.value("timeoutSeconds") {
        None => settings.max_watch_timeout,
        Some(t) => match t.parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs).min(settings.max_watch_timeout),
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "invalid timeoutSeconds {t:?}"
                )));
            }
        },
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
        let current = state.store.revision();
        let rs = state.store.resource_ref(&gr);
        let start_from_state = send_initial == Some(true) || rv.is_none_or(|rv| rv == 0);
        if start_from_state {
            if let Some(rs) = rs {
                if let Ok(snapshot) = rs.snapshot(current, None, ctx.namespace) {
                    for (_, obj) in snapshot.iter() {
                        if matches(&obj.value, &stream.labels, &stream.fields) {
                            stream
                                .pending
                                .push_back(line("ADDED", &render(obj, ctx.rt, ctx.wants)));
                        }
                    }
                }
            }
            stream.pos = current;
            if send_initial == Some(true) {
                let bookmark = stream.bookmark(Some(json!({"k8s.io/initial-events-end": "true"})));
                stream.pending.push_back(bookmark);
            }
        } else {
            let rv = rv.unwrap_or(current);
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
                    // The resource's storage was dropped (its CRD is gone): end the watch.
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
        let Some(rs) = state.store.resource_ref(&self.gr) else {
            self.done = true;
            return;
        };
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
        matches(&obj.value, &self.labels, &self.fields)
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
