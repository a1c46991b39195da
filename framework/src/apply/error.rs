//! What writing an object can fail with.

/// An error from a mutate closure: any error, boxed (`?` converts into it).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why [`create_or_update`](super::create_or_update), [`create_or_patch`](super::create_or_patch),
/// [`apply`](super::apply) or [`apply_status`](super::apply_status) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The object to write has no `metadata.name`.
    #[error("the {kind} to write has no metadata.name; set it before writing")]
    MissingName {
        /// The object's kind.
        kind: &'static str,
    },
    /// The mutate closure changed the object's name or namespace, which would write another
    /// object than the one read.
    #[error(
        "the mutate function changed the {kind}'s name or namespace from {before} to {after}; \
         it must not (build another object instead)"
    )]
    KeyChanged {
        /// The object's kind.
        kind: &'static str,
        /// `namespace/name` before.
        before: String,
        /// `namespace/name` after.
        after: String,
    },
    /// The mutate closure returned an error; nothing was written.
    #[error("the mutate function for {kind} {name} failed")]
    Mutate {
        /// The object's kind.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// What it returned.
        #[source]
        source: BoxError,
    },
    /// The object did not encode as JSON (a hand-written `Serialize` that fails).
    #[error("encoding {kind} {name} as JSON")]
    Encode {
        /// The object's kind.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// The API server refused a request (a 409 Conflict among them: see
    /// [`retry_on_conflict`](super::retry_on_conflict)).
    #[error("{action} {kind} {name}")]
    Api {
        /// What was being done: `reading`, `creating`, `updating`, `patching`, `applying`, …
        action: &'static str,
        /// The object's kind.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// The API server's answer, or the transport's error.
        #[source]
        source: kube::Error,
    },
}

impl WriteError {
    /// The API error, when the API server refused a request.
    pub fn api_error(&self) -> Option<&kube::Error> {
        match self {
            WriteError::Api { source, .. } => Some(source),
            _ => None,
        }
    }
}
