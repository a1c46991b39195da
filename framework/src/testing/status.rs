//! Failure answers in the apiserver's shape: a `Status` object with a code, a reason, a message
//! and details, worded the way the real server words them (clients and people grep for these).
//!
//! This module owns building those answers; deciding *when* to fail is left to the handlers.

use serde_json::{Value, json};

use super::kinds::ResourceType;
use super::validation::{Cause, invalid_message};

/// An answer that is not a success: everything the server needs to write a `Status` body.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    pub(crate) details: Option<Box<Value>>,
    /// Seconds for a `Retry-After` header (429 and 503 answers).
    pub(crate) retry_after: Option<u64>,
    /// List metadata (an expired continue token's answer carries a fresh token here).
    pub(crate) metadata: Option<Box<Value>>,
}

impl ApiError {
    pub(crate) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
            metadata: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// `configmaps "x" not found`, with details naming the plural resource.
    pub(crate) fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.qualified_plural()),
        )
        .with_details(details(rt, name, &rt.plural))
    }

    /// A namespace that does not exist (creating into it, or asking for it).
    pub(crate) fn namespace_not_found(ns: &str) -> Self {
        Self::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
            .with_details(json!({"name": ns, "kind": "namespaces"}))
    }

    pub(crate) fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified_plural()),
        )
        .with_details(details(rt, name, &rt.plural))
    }

    /// The optimistic-concurrency conflict every controller meets.
    pub(crate) fn conflict(rt: &ResourceType, name: &str) -> Self {
        Self::conflict_with(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// `Operation cannot be fulfilled on <plural> "<name>": <why>`.
    pub(crate) fn conflict_with(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                rt.qualified_plural()
            ),
        )
        .with_details(details(rt, name, &rt.plural))
    }

    /// 422 with one cause per violation; `details.kind` is the Kind, as the real server does.
    pub(crate) fn invalid(rt: &ResourceType, name: &str, causes: &[Cause]) -> Self {
        Self::invalid_kind(&rt.group, &rt.kind, name, causes)
    }

    /// 422 for a kind that is not a served resource (`ListOptions`, `DeleteOptions`).
    pub(crate) fn invalid_kind(group: &str, kind: &str, name: &str, causes: &[Cause]) -> Self {
        let mut d = json!({
            "name": name,
            "kind": kind,
            "causes": causes.iter().map(Cause::to_json).collect::<Vec<_>>(),
        });
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        Self::new(422, "Invalid", invalid_message(&qualified, name, causes)).with_details(d)
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// A method no route of the path serves, as go-restful's error handler answers it.
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(json!({}))
    }

    /// A path under a served resource that no route serves (an undeclared subresource).
    pub(crate) fn route_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    /// A verb the resource does not support in its current state (the CRD handler's answer
    /// to creates while the CRD is terminating).
    pub(crate) fn method_not_supported(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// A body of a media type the endpoint does not accept (`NewUnsupportedMediaTypeError`).
    pub(crate) fn unsupported_media_type(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    pub(crate) fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    pub(crate) fn forbidden(rt: &ResourceType, name: &str, why: &str) -> Self {
        let what = if name.is_empty() {
            rt.qualified_plural()
        } else {
            format!("{} \"{name}\"", rt.qualified_plural())
        };
        Self::new(403, "Forbidden", format!("{what} is forbidden: {why}"))
            .with_details(details(rt, name, &rt.plural))
    }

    /// The in-stream and list answer for a resourceVersion older than the kept history.
    pub(crate) fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// A get or list asked for a resourceVersion the store has not reached.
    pub(crate) fn too_large_resource_version(asked: u64, current: u64) -> Self {
        let mut e = Self::new(
            504,
            "Timeout",
            // NewTimeoutError prefixes its message with "Timeout: ".
            format!("Timeout: Too large resource version: {asked}, current: {current}"),
        );
        e.details = Some(Box::new(json!({
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        })));
        e.retry_after = Some(1);
        e
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// An error status chosen by a fault-injection rule.
    pub(crate) fn injected(code: u16, retry_after: Option<u64>) -> Self {
        let (reason, message) = match code {
            409 => (
                "Conflict",
                "the object has been modified; please apply your changes to the latest version and try again (injected fault)",
            ),
            410 => ("Expired", "too old resource version (injected fault)"),
            429 => (
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later (injected fault)",
            ),
            500 => (
                "InternalError",
                "an error on the server has prevented the request from succeeding (injected fault)",
            ),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request (injected fault)",
            ),
            504 => (
                "Timeout",
                "the server was unable to return a response in the time allotted (injected fault)",
            ),
            404 => (
                "NotFound",
                "the server could not find the requested resource (injected fault)",
            ),
            403 => ("Forbidden", "forbidden (injected fault)"),
            _ => ("InternalError", "injected fault"),
        };
        let mut e = Self::new(code, reason, message);
        e.retry_after = retry_after;
        if let Some(secs) = retry_after {
            e.details = Some(Box::new(json!({"retryAfterSeconds": secs})));
        }
        e
    }

    /// The `Status` object for this error.
    pub(crate) fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.reason.is_empty() {
            // StatusReasonUnknown is the empty string, which `omitempty` leaves out.
            if let Some(o) = status.as_object_mut() {
                o.remove("reason");
            }
        }
        if let Some(d) = &self.details {
            status["details"] = (**d).clone();
        }
        if let Some(m) = &self.metadata {
            status["metadata"] = (**m).clone();
        }
        status
    }
}

/// `details` for errors about one named object: the group, and the plural (or Kind) as `kind`.
fn details(rt: &ResourceType, name: &str, kind: &str) -> Value {
    let mut d = json!({"name": name, "kind": kind});
    if !rt.group.is_empty() {
        d["group"] = json!(rt.group);
    }
    d
}

/// The `Status` a successful delete answers with.
pub(crate) fn success_status(rt: &ResourceType, name: &str, uid: Option<&str>) -> Value {
    let mut d = details(rt, name, &rt.plural);
    if let Some(uid) = uid {
        d["uid"] = json!(uid);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": d,
    })
}
