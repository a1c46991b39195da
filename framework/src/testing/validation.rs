//! Object metadata validation, with the messages the real API server writes.
//!
//! This module owns the checks every kind shares (apimachinery's `ValidateObjectMetaAccessor`
//! and `ValidateObjectMetaAccessorUpdate`), the name and label syntax validators they are built
//! from (`IsDNS1123Subdomain`, `IsQualifiedName`, ...), the [`Cause`] type that mirrors
//! `metav1.StatusCause`, and the formatting of an `Invalid` Status message (`NewInvalid`). It also
//! expands `generateName` the way the apiserver's `SimpleNameGenerator` does.
//!
//! It does not own kind-specific validation (a Pod's containers, a CRD's schema), the
//! `resourceVersion` preconditions of an update (the store checks those, with its own message),
//! nor the silent resets the apiserver applies before validating an update (generation,
//! creationTimestamp and deletionTimestamp are copied from the old object first; see
//! [`validate_object_meta_update`]).
//!
//! Messages follow Kubernetes 1.35+: label keys are "a valid label key" and their lengths are
//! counted in "bytes", while object and namespace names still say "characters", exactly as the
//! two apimachinery packages that produce them do.

use serde_json::{Map, Value};

/// `FieldValueInvalid`: a malformed value (rendered as `Invalid value: ...`).
pub(crate) const FIELD_VALUE_INVALID: &str = "FieldValueInvalid";
/// `FieldValueRequired`: a missing value (rendered as `Required value`).
pub(crate) const FIELD_VALUE_REQUIRED: &str = "FieldValueRequired";
/// `FieldValueForbidden`: a value not allowed here (rendered as `Forbidden`).
pub(crate) const FIELD_VALUE_FORBIDDEN: &str = "FieldValueForbidden";
/// `FieldValueDuplicate`: a value that must be unique (rendered as `Duplicate value: ...`).
pub(crate) const FIELD_VALUE_DUPLICATE: &str = "FieldValueDuplicate";
/// `FieldValueNotSupported`: a value outside an enumeration (rendered as `Unsupported value`).
pub(crate) const FIELD_VALUE_NOT_SUPPORTED: &str = "FieldValueNotSupported";
/// `FieldValueTooLong`: a value over its length limit (rendered as `Too long`).
pub(crate) const FIELD_VALUE_TOO_LONG: &str = "FieldValueTooLong";

/// Total bytes of annotation keys and values an object may carry (apimachinery's
/// `TotalAnnotationSizeLimitB`).
pub(crate) const TOTAL_ANNOTATION_SIZE_LIMIT_B: usize = 256 * 1024;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_KEY_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and \
                                 must start and end with an alphanumeric character";

/// The finalizers Kubernetes itself defines; the only ones that may omit a `/`.
const STANDARD_FINALIZERS: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];

/// One field-level validation failure, as the API server reports it in `details.causes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cause {
    /// The machine-readable type, e.g. `FieldValueInvalid`.
    pub(crate) reason: &'static str,
    /// The human-readable body, e.g. `Invalid value: "Foo": a lowercase RFC 1123 ...`.
    pub(crate) message: String,
    /// The JSON path of the field, e.g. `metadata.name`.
    pub(crate) field: String,
}

impl Cause {
    /// A cause with an already rendered message body.
    pub(crate) fn new(reason: &'static str, field: &str, message: String) -> Self {
        Self { reason, message, field: field.to_owned() }
    }

    /// `field.Invalid`: `value` is already rendered (see [`go_quote`] and [`go_json`]), because
    /// Go prints strings quoted, numbers bare and structs as JSON.
    pub(crate) fn invalid(field: &str, value: &str, detail: &str) -> Self {
        Self::new(FIELD_VALUE_INVALID, field, with_detail(format!("Invalid value: {value}"), detail))
    }

    /// `field.Required`; an empty `detail` renders as just `Required value`.
    pub(crate) fn required(field: &str, detail: &str) -> Self {
        Self::new(FIELD_VALUE_REQUIRED, field, with_detail("Required value".to_owned(), detail))
    }

    /// `field.Forbidden`.
    pub(crate) fn forbidden(field: &str, detail: &str) -> Self {
        Self::new(FIELD_VALUE_FORBIDDEN, field, with_detail("Forbidden".to_owned(), detail))
    }

    /// `field.Duplicate`, with `value` already rendered.
    pub(crate) fn duplicate(field: &str, value: &str) -> Self {
        Self::new(FIELD_VALUE_DUPLICATE, field, format!("Duplicate value: {value}"))
    }

    /// `field.NotSupported`, with `value` already rendered and the supported values quoted.
    pub(crate) fn not_supported(field: &str, value: &str, supported: &[&str]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        let body = with_detail(format!("Unsupported value: {value}"), &detail);
        Self::new(FIELD_VALUE_NOT_SUPPORTED, field, body)
    }

    /// `field.TooLong`: the value itself is never shown.
    pub(crate) fn too_long(field: &str, max_bytes: usize) -> Self {
        let unit = if max_bytes == 1 { "byte" } else { "bytes" };
        let body = format!("Too long: may not be more than {max_bytes} {unit}");
        Self::new(FIELD_VALUE_TOO_LONG, field, body)
    }

    /// The `{"reason","message","field"}` object of a Status's `details.causes`; like Go's
    /// `omitempty`, empty members are left out.
    pub(crate) fn to_json(&self) -> Value {
        let mut cause = Map::new();
        for (key, value) in [("reason", self.reason), ("message", &self.message), ("field", &self.field)]
        {
            if !value.is_empty() {
                cause.insert(key.to_owned(), Value::String(value.to_owned()));
            }
        }
        Value::Object(cause)
    }

    /// `field.Error.Error()`: `<field>: <message>`.
    fn error_string(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

fn with_detail(mut body: String, detail: &str) -> String {
    if !detail.is_empty() {
        body.push_str(": ");
        body.push_str(detail);
    }
    body
}

/// The message of an `Invalid` (422) Status, as apimachinery's `NewInvalid` builds it:
/// `ConfigMap "Foo" is invalid: metadata.name: Invalid value: ...` for one cause and
/// `... is invalid: [a, b]` for several. `kind` is the qualified kind as Go prints a GroupKind:
/// `ConfigMap` for the core group, `Widget.example.com` otherwise. Causes whose text repeats are
/// listed once, as `ToAggregate` does.
pub(crate) fn invalid_message(kind: &str, name: &str, causes: &[Cause]) -> String {
    let mut unique: Vec<String> = Vec::new();
    for cause in causes {
        let text = cause.error_string();
        if !unique.contains(&text) {
            unique.push(text);
        }
    }
    let head = format!("{kind} {} is invalid", go_quote(name));
    match unique.as_slice() {
        [] => head,
        [one] => format!("{head}: {one}"),
        many => format!("{head}: [{}]", many.join(", ")),
    }
}

/// Which syntax an object's name must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// RFC 1123 subdomain (most kinds: ConfigMap, Secret, Deployment, custom resources).
    DnsSubdomain,
    /// RFC 1123 label (Namespace).
    DnsLabel,
    /// RFC 1035 label (Service; a label that starts with a letter). Kubernetes' alpha
    /// `RelaxedServiceNameValidation` gate switches Services to [`NameRule::DnsLabel`].
    Dns1035Label,
    /// Only usable as a URL path segment (RBAC roles and bindings): no `/`, no `%`, not `.` or `..`.
    PathSegment,
}

impl NameRule {
    /// The name's errors; `prefix` is true for a `generateName`, which may end in `-` because
    /// random characters follow it.
    pub(crate) fn check(self, name: &str, prefix: bool) -> Vec<String> {
        // apimachinery's maskTrailingDash drops the last *two* characters and appends an `a`;
        // the quirk is kept because it decides which prefixes pass.
        let masked;
        let name = if prefix && self != NameRule::PathSegment && name.len() > 1 && name.ends_with('-')
        {
            let mut bytes = name.as_bytes()[..name.len() - 2].to_vec();
            bytes.push(b'a');
            // Go slices bytes; a cut through a multi-byte character stays invalid either way.
            masked = String::from_utf8_lossy(&bytes).into_owned();
            masked.as_str()
        } else {
            name
        };
        match self {
            NameRule::DnsSubdomain => is_dns1123_subdomain(name),
            NameRule::DnsLabel => is_dns1123_label(name),
            NameRule::Dns1035Label => is_dns1035_label(name),
            NameRule::PathSegment if prefix => path_segment_errors(name, false),
            NameRule::PathSegment => path_segment_errors(name, true),
        }
    }
}

/// Errors of a name that must be an RFC 1123 subdomain (apimachinery's `IsDNS1123Subdomain`).
pub(crate) fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    dns1123_subdomain(value, "characters")
}

/// The label-key prefix flavour: apimachinery's newer `content` package counts bytes.
fn dns1123_subdomain(value: &str, unit: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253, unit));
    }
    if !is_subdomain_syntax(value) {
        let msg = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
                   characters, '-' or '.', and must start and end with an alphanumeric character";
        errs.push(regex_error(msg, DNS1123_SUBDOMAIN_FMT, &["example.com"]));
    }
    errs
}

/// Errors of a name that must be an RFC 1123 label (apimachinery's `IsDNS1123Label`).
pub(crate) fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63, "characters"));
    }
    if !is_label_syntax(value, |b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
        if is_subdomain_syntax(value) {
            // A valid subdomain that is not a label can only be failing on its dots.
            errs.push("must not contain dots".to_owned());
        } else {
            let msg = "a lowercase RFC 1123 label must consist of lower case alphanumeric \
                       characters or '-', and must start and end with an alphanumeric character";
            errs.push(regex_error(msg, DNS1123_LABEL_FMT, &["my-name", "123-abc"]));
        }
    }
    errs
}

/// Errors of a name that must be an RFC 1035 label (apimachinery's `IsDNS1035Label`).
pub(crate) fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63, "characters"));
    }
    let starts_with_letter = value.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    if !starts_with_letter
        || !is_label_syntax(value, |b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        let msg = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', \
                   start with an alphabetic character, and end with an alphanumeric character";
        errs.push(regex_error(msg, DNS1035_LABEL_FMT, &["my-name", "abc-123"]));
    }
    errs
}

/// Errors of a qualified name: label and annotation keys, finalizers (apimachinery's
/// `IsQualifiedName`, an optional DNS-subdomain prefix and `/`, then a name of at most 63 bytes).
pub(crate) fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_owned());
            } else {
                for msg in dns1123_subdomain(prefix, "bytes") {
                    errs.push(format!("prefix part {msg}"));
                }
            }
            *name
        }
        _ => {
            let msg = regex_error(
                &format!("a valid label key {LABEL_KEY_ERR_MSG}"),
                LABEL_KEY_FMT,
                &["MyName", "my.name", "123-abc"],
            );
            errs.push(format!(
                "{msg} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63, "bytes")));
    }
    // Go checks the pattern even after the emptiness check, so an empty name reports both.
    if !is_label_syntax(name, |b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') {
        let msg = regex_error(LABEL_KEY_ERR_MSG, LABEL_KEY_FMT, &["MyName", "my.name", "123-abc"]);
        errs.push(format!("name part {msg}"));
    }
    errs
}

/// Errors of a label value: empty, or at most 63 bytes of the label-key alphabet.
pub(crate) fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63, "bytes"));
    }
    if !value.is_empty()
        && !is_label_syntax(value, |b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    {
        let msg = "a valid label must be an empty string or consist of alphanumeric characters, \
                   '-', '_' or '.', and must start and end with an alphanumeric character";
        errs.push(regex_error(msg, LABEL_VALUE_FMT, &["MyValue", "my_value", "12345"]));
    }
    errs
}

/// Errors of a name used as a URL path segment (apimachinery's `IsValidPathSegmentName`).
pub(crate) fn is_valid_path_segment_name(value: &str) -> Vec<String> {
    path_segment_errors(value, true)
}

fn path_segment_errors(value: &str, whole_name: bool) -> Vec<String> {
    if whole_name {
        for banned in [".", ".."] {
            if value == banned {
                return vec![format!("may not be '{banned}'")];
            }
        }
    }
    ["/", "%"]
        .iter()
        .filter(|banned| value.contains(**banned))
        .map(|banned| format!("may not contain '{banned}'"))
        .collect()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`-shaped labels, with `inner` deciding the non-dash alphabet.
fn is_label_syntax(value: &str, alnum: impl Fn(u8) -> bool) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            alnum(first) && alnum(last) && bytes.iter().all(|&b| alnum(b) || b == b'-')
        }
        _ => false,
    }
}

fn is_subdomain_syntax(value: &str) -> bool {
    value.split('.').all(|label| is_label_syntax(label, |b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

fn max_len_error(max: usize, unit: &str) -> String {
    format!("must be no more than {max} {unit}")
}

/// apimachinery's `RegexError`, including its doubled spaces between examples.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut out = msg.to_owned();
    if examples.is_empty() {
        out.push_str(&format!(" (regex used for validation is '{fmt}')"));
        return out;
    }
    out.push_str(" (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{example}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

/// Validates `metadata` on create and update (apimachinery's `ValidateObjectMetaAccessor`).
///
/// Like the apiserver, expand `generateName` into `name` first (see [`generate_name`]): a prefix
/// is still checked on its own, but only the generated name satisfies "name is required".
/// `metadata` is expected to have ObjectMeta's shape (the HTTP layer answers 400 for a body that
/// does not decode); members of the wrong JSON type are treated as absent.
pub(crate) fn validate_object_meta(meta: &Value, namespaced: bool, name_rule: NameRule) -> Vec<Cause> {
    let mut causes = Vec::new();
    let generate_name = str_member(meta, "generateName");
    if !generate_name.is_empty() {
        for msg in name_rule.check(generate_name, true) {
            causes.push(Cause::invalid("metadata.generateName", &go_quote(generate_name), &msg));
        }
    }
    let name = str_member(meta, "name");
    if name.is_empty() {
        causes.push(Cause::required("metadata.name", "name or generateName is required"));
    } else {
        for msg in name_rule.check(name, false) {
            causes.push(Cause::invalid("metadata.name", &go_quote(name), &msg));
        }
    }
    let namespace = str_member(meta, "namespace");
    if namespaced {
        if namespace.is_empty() {
            causes.push(Cause::required("metadata.namespace", ""));
        } else {
            for msg in is_dns1123_label(namespace) {
                causes.push(Cause::invalid("metadata.namespace", &go_quote(namespace), &msg));
            }
        }
    } else if !namespace.is_empty() {
        causes.push(Cause::forbidden("metadata.namespace", "not allowed on this type"));
    }
    if let Some(generation) = meta.get("generation").and_then(Value::as_i64)
        && generation < 0
    {
        let value = generation.to_string();
        causes.push(Cause::invalid("metadata.generation", &value, "must be greater than or equal to 0"));
    }
    causes.extend(validate_labels(meta.get("labels"), "metadata.labels"));
    causes.extend(validate_annotations(meta.get("annotations"), "metadata.annotations"));
    causes.extend(validate_owner_references(meta.get("ownerReferences"), "metadata.ownerReferences"));
    causes.extend(validate_finalizers(meta.get("finalizers"), "metadata.finalizers"));
    causes
}

/// Validates a labels map (`v1validation.ValidateLabels`): qualified-name keys, label values.
/// Every error is reported at `field` itself, not at the key.
pub(crate) fn validate_labels(labels: Option<&Value>, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (key, value) in string_map(labels) {
        for msg in is_qualified_name(key) {
            causes.push(Cause::invalid(field, &go_quote(key), &msg));
        }
        for msg in is_valid_label_value(value) {
            causes.push(Cause::invalid(field, &go_quote(value), &msg));
        }
    }
    causes
}

/// Validates an annotations map: keys are qualified names once lowercased, and keys plus
/// values may total at most 256 KiB.
pub(crate) fn validate_annotations(annotations: Option<&Value>, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut total = 0usize;
    for (key, value) in string_map(annotations) {
        // Case does not matter for annotation keys, so they are checked in lower case but
        // reported as written.
        for msg in is_qualified_name(&key.to_lowercase()) {
            causes.push(Cause::invalid(field, &go_quote(key), &msg));
        }
        total = total.saturating_add(key.len()).saturating_add(value.len());
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_B {
        causes.push(Cause::too_long(field, TOTAL_ANNOTATION_SIZE_LIMIT_B));
    }
    causes
}

/// Validates `ownerReferences`: apiVersion (with a version), kind, name and uid are required, a
/// core `Event` cannot own anything, and at most one reference may have `controller: true`.
pub(crate) fn validate_owner_references(refs: Option<&Value>, field: &str) -> Vec<Cause> {
    let Some(list) = refs.and_then(Value::as_array) else {
        return Vec::new();
    };
    let refs: Vec<&Value> = list.iter().filter(|r| r.is_object()).collect();
    let mut causes = Vec::new();
    let mut first_controller: Option<String> = None;
    for owner in &refs {
        let api_version = str_member(owner, "apiVersion");
        let kind = str_member(owner, "kind");
        let name = str_member(owner, "name");
        let uid = str_member(owner, "uid");
        // schema.ParseGroupVersion: "v1" is the core group; more than one `/` parses to nothing.
        let (group, version) = match api_version.split_once('/') {
            _ if api_version.matches('/').count() > 1 => ("", ""),
            Some((group, version)) => (group, version),
            None => ("", api_version),
        };
        if version.is_empty() {
            let field = format!("{field}.apiVersion");
            causes.push(Cause::invalid(&field, &go_quote(api_version), "version must not be empty"));
        }
        for (member, value) in [("kind", kind), ("name", name), ("uid", uid)] {
            if value.is_empty() {
                causes.push(Cause::invalid(&format!("{field}.{member}"), "\"\"", "must not be empty"));
            }
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            let detail = "/v1, Kind=Event is disallowed from being an owner";
            causes.push(Cause::invalid(field, &owner_reference_json(owner), detail));
        }
        if owner.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{kind}/{name}");
            match &first_controller {
                Some(first) => {
                    let all: Vec<String> = refs.iter().map(|r| owner_reference_json(r)).collect();
                    let detail = format!(
                        "Only one reference can have Controller set to true. Found \"true\" in \
                         references for {first} and {current}"
                    );
                    causes.push(Cause::invalid(field, &format!("[{}]", all.join(",")), &detail));
                }
                None => first_controller = Some(current),
            }
        }
    }
    causes
}

/// An owner reference as Go's `json.Marshal` prints the typed struct: fields in declaration
/// order, optional booleans only when set, unknown members dropped.
fn owner_reference_json(owner: &Value) -> String {
    let mut out = String::from("{");
    for (i, key) in ["apiVersion", "kind", "name", "uid"].iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("\"{key}\":{}", go_json(&Value::String(str_member(owner, key).to_owned()))));
    }
    for key in ["controller", "blockOwnerDeletion"] {
        if let Some(flag) = owner.get(key).and_then(Value::as_bool) {
            out.push_str(&format!(",\"{key}\":{flag}"));
        }
    }
    out.push('}');
    out
}

/// Validates `finalizers`: each a qualified name, and not both `orphan` and `foregroundDeletion`.
pub(crate) fn validate_finalizers(finalizers: Option<&Value>, field: &str) -> Vec<Cause> {
    let names = string_list(finalizers);
    let mut causes = Vec::new();
    for name in &names {
        for msg in is_qualified_name(name) {
            causes.push(Cause::invalid(field, &go_quote(name), &msg));
        }
    }
    if names.contains(&"orphan") && names.contains(&"foregroundDeletion") {
        let value = go_json(&Value::from(names.clone()));
        let detail = "finalizer orphan and foregroundDeletion cannot be both set";
        causes.push(Cause::invalid(field, &value, detail));
    }
    causes
}

/// The `Warning` header texts the apiserver sends (for custom resources) when an object gains a
/// finalizer without a `/` that Kubernetes does not define itself. This is a warning, not an
/// error: the write succeeds. `old_meta` is the stored object's metadata on update.
pub(crate) fn finalizer_warnings(new_meta: &Value, old_meta: Option<&Value>) -> Vec<String> {
    let old = old_meta.map(|m| string_list(m.get("finalizers"))).unwrap_or_default();
    let mut added: Vec<&str> = string_list(new_meta.get("finalizers"))
        .into_iter()
        .filter(|f| !old.contains(f))
        .collect();
    added.sort_unstable();
    added.dedup();
    added
        .into_iter()
        .filter(|f| !f.contains('/') && !STANDARD_FINALIZERS.contains(f))
        .map(|f| {
            format!(
                "metadata.finalizers: {}: prefer a domain-qualified finalizer name including a \
                 path (/) to avoid accidental conflicts with other finalizer writers",
                go_quote(f)
            )
        })
        .collect()
}

/// Validates what an update may not change (apimachinery's `ValidateObjectMetaAccessorUpdate`,
/// without its repeat of the label, annotation and owner checks: run [`validate_object_meta`] on
/// the new metadata too, as the apiserver does, and append these causes after its causes).
///
/// The apiserver copies generation, creationTimestamp and a set deletionTimestamp from the old
/// object before validating, so through its REST API only setting a new deletionTimestamp,
/// renaming, moving namespace, changing the uid and adding finalizers to a deleting object
/// surface as errors; this function checks all the rules regardless.
pub(crate) fn validate_object_meta_update(old: &Value, new: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if non_empty_str(old, "deletionTimestamp").is_some() {
        let old_finalizers = string_list(old.get("finalizers"));
        let mut extra: Vec<&str> = string_list(new.get("finalizers"))
            .into_iter()
            .filter(|f| !old_finalizers.contains(f))
            .collect();
        extra.sort_unstable();
        extra.dedup();
        if !extra.is_empty() {
            let quoted: Vec<String> = extra.iter().map(|f| go_quote(f)).collect();
            let detail = format!(
                "no new finalizers can be added if the object is being deleted, found new \
                 finalizers []string{{{}}}",
                quoted.join(", ")
            );
            causes.push(Cause::forbidden("metadata.finalizers", &detail));
        }
    }
    let generation = |m: &Value| m.get("generation").and_then(Value::as_i64).unwrap_or(0);
    if generation(new) < generation(old) {
        let value = generation(new).to_string();
        causes.push(Cause::invalid("metadata.generation", &value, "must not be decremented"));
    }
    for member in ["name", "namespace", "uid"] {
        let (new_value, old_value) = (str_member(new, member), str_member(old, member));
        if new_value != old_value {
            let field = format!("metadata.{member}");
            // A UID is a named string type, which Go renders as JSON rather than with %q.
            let value = if member == "uid" {
                go_json(&Value::String(new_value.to_owned()))
            } else {
                go_quote(new_value)
            };
            causes.push(Cause::invalid(&field, &value, "field is immutable"));
        }
    }
    let created = |m| non_empty_str(m, "creationTimestamp");
    if created(new) != created(old) {
        let value = go_time(created(new).unwrap_or("0001-01-01T00:00:00Z"));
        causes.push(Cause::invalid("metadata.creationTimestamp", &value, "field is immutable"));
    }
    let deleted = |m| non_empty_str(m, "deletionTimestamp");
    if deleted(new) != deleted(old) {
        let value = deleted(new).map_or_else(|| "null".to_owned(), go_time);
        causes.push(Cause::invalid("metadata.deletionTimestamp", &value, "field is immutable"));
    }
    let grace = |m: &Value| m.get("deletionGracePeriodSeconds").and_then(Value::as_i64);
    if grace(new) != grace(old) {
        let value = grace(new).map_or_else(|| "null".to_owned(), |g| g.to_string());
        let field = "metadata.deletionGracePeriodSeconds";
        causes.push(Cause::invalid(field, &value, "field is immutable"));
    }
    causes
}

fn non_empty_str<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A timestamp as Go's `time.Time.String()` prints it (how a metav1.Time shows in a message),
/// for the UTC timestamps the apiserver writes; anything else is shown quoted.
fn go_time(rfc3339: &str) -> String {
    match rfc3339.strip_suffix('Z').and_then(|t| t.split_once('T')) {
        Some((date, time)) if date.len() == 10 && time.len() >= 8 => {
            // Go prints the fraction without trailing zeros, and no dot for whole seconds.
            let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                format!("{date} {clock} +0000 UTC")
            } else {
                format!("{date} {clock}.{fraction} +0000 UTC")
            }
        }
        _ => go_quote(rfc3339),
    }
}

/// The string member `key` of an object, or `""` when absent or not a string.
fn str_member<'a>(object: &'a Value, key: &str) -> &'a str {
    object.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The string-valued entries of a JSON object (labels, annotations).
fn string_map(map: Option<&Value>) -> Vec<(&str, &str)> {
    map.and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.as_str(), v.as_str()?))).collect())
        .unwrap_or_default()
}

/// The string elements of a JSON array (finalizers).
fn string_list(list: Option<&Value>) -> Vec<&str> {
    list.and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A string quoted as Go's `%q` (`strconv.Quote`) prints it: printable characters as they are,
/// `"` and `\` escaped, control and other invisible characters as escapes.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_go_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// Appends `c` escaped as `strconv.Quote` would, with `quote` as the delimiter to escape.
pub(crate) fn push_go_escaped(out: &mut String, c: char, quote: char) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if is_go_printable(c) => out.push(c),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// An approximation of Go's `strconv.IsPrint`: everything but control characters, non-ASCII
/// spaces and the common invisible format characters.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    let code = c as u32;
    let format_char = matches!(
        code,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f | 0x2028..=0x202e
            | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff | 0xfff9..=0xfffb
    );
    !(c.is_control() || c.is_whitespace() || format_char)
}

/// A JSON value as Go's `json.Marshal` prints it (how structs and lists show in messages):
/// compact, with `<`, `>`, `&`, U+2028 and U+2029 escaped.
pub(crate) fn go_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The alphabet of apimachinery's random suffixes: no vowels (no accidental words) and no
/// look-alikes (`0`/`o`, `1`/`l`, `3`/`e`).
const SUFFIX_ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";

/// Five random characters for a `generateName`, drawn from apimachinery's alphabet using the
/// caller's PRNG state (a SplitMix64 sequence; seed it with anything).
pub(crate) fn generate_name_suffix(state: &mut u64) -> String {
    let mut suffix = String::with_capacity(5);
    while suffix.len() < 5 {
        let mut bits = next_random(state);
        // Like apimachinery, take five bits at a time and reject the values past the alphabet,
        // so every character is equally likely.
        for _ in 0..12 {
            let index = (bits & 0x1f) as usize;
            bits >>= 5;
            if let Some(&c) = SUFFIX_ALPHABET.get(index) {
                suffix.push(char::from(c));
                if suffix.len() == 5 {
                    break;
                }
            }
        }
    }
    suffix
}

/// `generateName` expanded as the apiserver's `SimpleNameGenerator` does: the prefix cut to 58
/// bytes (so the result fits 63) followed by [`generate_name_suffix`].
pub(crate) fn generate_name(prefix: &str, state: &mut u64) -> String {
    let mut cut = prefix.len().min(58);
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{}", &prefix[..cut], generate_name_suffix(state))
}

/// SplitMix64: tiny, fast, and good enough for names.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
