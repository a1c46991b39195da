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
//! Messages follow recent releases (as real 1.3x servers answer): label keys are "a valid label
//! key" and their lengths are counted in "bytes", while object and namespace names still say
//! "characters", exactly as the two apimachinery packages that produce them do.

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
        Self {
            reason,
            message,
            field: field.to_owned(),
        }
    }

    /// `field.Invalid`: `value` is already rendered (see [`go_quote`] and [`go_json`]), because
    /// Go prints strings quoted, numbers bare and structs as JSON.
    pub(crate) fn invalid(field: &str, value: &str, detail: &str) -> Self {
        Self::new(
            FIELD_VALUE_INVALID,
            field,
            with_detail(format!("Invalid value: {value}"), detail),
        )
    }

    /// `field.Required`; an empty `detail` renders as just `Required value`.
    pub(crate) fn required(field: &str, detail: &str) -> Self {
        Self::new(
            FIELD_VALUE_REQUIRED,
            field,
            with_detail("Required value".to_owned(), detail),
        )
    }

    /// `field.Forbidden`.
    pub(crate) fn forbidden(field: &str, detail: &str) -> Self {
        Self::new(
            FIELD_VALUE_FORBIDDEN,
            field,
            with_detail("Forbidden".to_owned(), detail),
        )
    }

    /// `field.Duplicate`, with `value` already rendered.
    pub(crate) fn duplicate(field: &str, value: &str) -> Self {
        Self::new(
            FIELD_VALUE_DUPLICATE,
            field,
            format!("Duplicate value: {value}"),
        )
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
        for (key, value) in [
            ("reason", self.reason),
            ("message", &self.message),
            ("field", &self.field),
        ] {
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
    /// Only usable as a URL path segment (RBAC roles and bindings): no `/`, no `%`, not `.` or
    /// `..`.
    PathSegment,
}

impl NameRule {
    /// The name's errors; `prefix` is true for a `generateName`, which may end in `-` because
    /// random characters follow it.
    pub(crate) fn check(self, name: &str, prefix: bool) -> Vec<String> {
        // apimachinery's maskTrailingDash drops the last *two* characters and appends an `a`;
        // the quirk is kept because it decides which prefixes pass.
        let masked;
        let name =
            if prefix && self != NameRule::PathSegment && name.len() > 1 && name.ends_with('-') {
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
            NameRule::PathSegment => is_valid_path_segment_name(name),
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
    if !is_label_syntax(name, |b| {
        b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
    }) {
        let msg = regex_error(
            LABEL_KEY_ERR_MSG,
            LABEL_KEY_FMT,
            &["MyName", "my.name", "123-abc"],
        );
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
        && !is_label_syntax(value, |b| {
            b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
        })
    {
        let msg = "a valid label must be an empty string or consist of alphanumeric characters, \
                   '-', '_' or '.', and must start and end with an alphanumeric character";
        errs.push(regex_error(
            msg,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
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

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`-shaped labels, with `alnum` deciding the alphabet allowed at
/// both ends (and, with `-`, in between).
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
    value
        .split('.')
        .all(|label| is_label_syntax(label, |b| b.is_ascii_lowercase() || b.is_ascii_digit()))
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
pub(crate) fn validate_object_meta(
    meta: &Value,
    namespaced: bool,
    name_rule: NameRule,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    let generate_name = str_member(meta, "generateName");
    if !generate_name.is_empty() {
        for msg in name_rule.check(generate_name, true) {
            causes.push(Cause::invalid(
                "metadata.generateName",
                &go_quote(generate_name),
                &msg,
            ));
        }
    }
    let name = str_member(meta, "name");
    if name.is_empty() {
        causes.push(Cause::required(
            "metadata.name",
            "name or generateName is required",
        ));
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
                causes.push(Cause::invalid(
                    "metadata.namespace",
                    &go_quote(namespace),
                    &msg,
                ));
            }
        }
    } else if !namespace.is_empty() {
        causes.push(Cause::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    if let Some(generation) = meta.get("generation").and_then(Value::as_i64)
        && generation < 0
    {
        let value = generation.to_string();
        causes.push(Cause::invalid(
            "metadata.generation",
            &value,
            "must be greater than or equal to 0",
        ));
    }
    causes.extend(validate_labels(meta.get("labels"), "metadata.labels"));
    causes.extend(validate_annotations(
        meta.get("annotations"),
        "metadata.annotations",
    ));
    causes.extend(validate_owner_references(
        meta.get("ownerReferences"),
        "metadata.ownerReferences",
    ));
    causes.extend(validate_finalizers(
        meta.get("finalizers"),
        "metadata.finalizers",
    ));
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
            causes.push(Cause::invalid(
                &field,
                &go_quote(api_version),
                "version must not be empty",
            ));
        }
        for (member, value) in [("kind", kind), ("name", name), ("uid", uid)] {
            if value.is_empty() {
                causes.push(Cause::invalid(
                    &format!("{field}.{member}"),
                    "\"\"",
                    "must not be empty",
                ));
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
                    causes.push(Cause::invalid(
                        field,
                        &format!("[{}]", all.join(",")),
                        &detail,
                    ));
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
        out.push_str(&format!(
            "\"{key}\":{}",
            go_json(&Value::String(str_member(owner, key).to_owned()))
        ));
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
    let old = old_meta
        .map(|m| string_list(m.get("finalizers")))
        .unwrap_or_default();
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
        causes.push(Cause::invalid(
            "metadata.generation",
            &value,
            "must not be decremented",
        ));
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
        causes.push(Cause::invalid(
            "metadata.creationTimestamp",
            &value,
            "field is immutable",
        ));
    }
    let deleted = |m| non_empty_str(m, "deletionTimestamp");
    if deleted(new) != deleted(old) {
        let value = deleted(new).map_or_else(|| "null".to_owned(), go_time);
        causes.push(Cause::invalid(
            "metadata.deletionTimestamp",
            &value,
            "field is immutable",
        ));
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
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
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
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect()
        })
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
        alphanumeric characters, '-' or '.', and must start and end with an alphanumeric \
        character (e.g. 'example.com', regex used for validation is \
        '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

    fn meta_causes(meta: Value) -> Vec<Cause> {
        validate_object_meta(&meta, true, NameRule::DnsSubdomain)
    }

    fn messages(causes: &[Cause]) -> Vec<String> {
        causes.iter().map(Cause::error_string).collect()
    }

    #[test]
    fn invalid_name_message_matches_the_api_server() {
        let causes = meta_causes(json!({"name": "Foo", "namespace": "default"}));
        assert_eq!(
            invalid_message("ConfigMap", "Foo", &causes),
            format!(
                "ConfigMap \"Foo\" is invalid: metadata.name: Invalid value: \"Foo\": \
                 {SUBDOMAIN_MSG}"
            )
        );
        assert_eq!(
            causes[0].to_json(),
            json!({
                "reason": "FieldValueInvalid",
                "message": format!("Invalid value: \"Foo\": {SUBDOMAIN_MSG}"),
                "field": "metadata.name",
            })
        );
    }

    #[test]
    fn several_causes_are_bracketed_and_repeated_ones_listed_once() {
        let name = "a".repeat(254) + "_";
        let mut causes = meta_causes(json!({"name": name, "namespace": "default"}));
        causes.push(causes[0].clone());
        let quoted = go_quote(&name);
        assert_eq!(
            invalid_message("Widget.example.com", &name, &causes),
            format!(
                "Widget.example.com {quoted} is invalid: [metadata.name: Invalid value: {quoted}: \
                 must be no more than 253 characters, metadata.name: Invalid value: {quoted}: \
                 {SUBDOMAIN_MSG}]"
            )
        );
        assert_eq!(
            invalid_message("ConfigMap", "x", &[]),
            "ConfigMap \"x\" is invalid"
        );
    }

    #[test]
    fn missing_name_and_generate_name_is_a_required_value() {
        let causes = meta_causes(json!({"namespace": "default"}));
        assert_eq!(
            invalid_message("ConfigMap", "", &causes),
            "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is \
             required"
        );
        assert_eq!(causes[0].reason, FIELD_VALUE_REQUIRED);
    }

    #[test]
    fn namespace_is_required_for_namespaced_kinds_and_forbidden_for_cluster_scoped_ones() {
        let missing = meta_causes(json!({"name": "a"}));
        assert_eq!(messages(&missing), ["metadata.namespace: Required value"]);
        assert_eq!(
            missing[0].to_json(),
            json!({
                "reason": "FieldValueRequired",
                "message": "Required value",
                "field": "metadata.namespace",
            })
        );
        let cluster = validate_object_meta(
            &json!({"name": "a", "namespace": "x"}),
            false,
            NameRule::DnsLabel,
        );
        assert_eq!(
            messages(&cluster),
            ["metadata.namespace: Forbidden: not allowed on this type"]
        );
        let bad = meta_causes(json!({"name": "a", "namespace": "my.ns"}));
        assert_eq!(
            messages(&bad),
            ["metadata.namespace: Invalid value: \"my.ns\": must not contain dots"]
        );
    }

    #[test]
    fn generate_name_may_end_with_a_dash_but_must_otherwise_be_a_valid_name() {
        let ok =
            meta_causes(json!({"generateName": "web-", "name": "web-x7k2p", "namespace": "d"}));
        assert!(ok.is_empty(), "{ok:?}");
        let bad =
            meta_causes(json!({"generateName": "Web-", "name": "Web-x7k2p", "namespace": "d"}));
        let fields: Vec<&str> = bad.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["metadata.generateName", "metadata.name"]);
        assert!(
            bad[0]
                .message
                .starts_with("Invalid value: \"Web-\": a lowercase RFC 1123")
        );
        assert!(!NameRule::DnsSubdomain.check("-", true).is_empty());
        assert!(NameRule::DnsLabel.check("a-", true).is_empty());
    }

    #[test]
    fn each_name_rule_reports_its_own_messages() {
        assert_eq!(is_dns1123_label("a.b"), ["must not contain dots"]);
        assert_eq!(
            is_dns1123_label("A"),
            [
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \
              '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or \
              '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
        assert_eq!(
            is_dns1035_label("1abc"),
            [
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start \
              with an alphabetic character, and end with an alphanumeric character (e.g. \
              'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
        assert_eq!(
            is_dns1123_subdomain(&"a".repeat(254)),
            ["must be no more than 253 characters"]
        );
        assert_eq!(is_dns1123_subdomain(""), [SUBDOMAIN_MSG]);
        assert!(is_dns1123_subdomain("example.com").is_empty());
        assert!(is_dns1123_subdomain("a..b").len() == 1);
    }

    #[test]
    fn path_segment_names_only_forbid_slashes_percents_and_dot_names() {
        assert!(
            NameRule::PathSegment
                .check("System:Admin_Role", false)
                .is_empty()
        );
        assert_eq!(
            is_valid_path_segment_name("a/b%c"),
            ["may not contain '/'", "may not contain '%'"]
        );
        assert_eq!(is_valid_path_segment_name(".."), ["may not be '..'"]);
        assert!(NameRule::PathSegment.check("..", true).is_empty());
    }

    #[test]
    fn qualified_names_report_apimachinery_label_key_messages() {
        let name_part = "name part must consist of alphanumeric characters, '-', '_' or '.', and \
            must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or \
            '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        assert!(is_qualified_name("example.com/My_Name.1").is_empty());
        assert_eq!(is_qualified_name("-a"), [name_part]);
        assert_eq!(
            is_qualified_name("a/"),
            [
                "name part must be non-empty".to_owned(),
                name_part.to_owned()
            ]
        );
        assert_eq!(is_qualified_name("/a"), ["prefix part must be non-empty"]);
        assert_eq!(
            is_qualified_name(&"a".repeat(64)),
            ["name part must be no more than 63 bytes"]
        );
        assert_eq!(
            is_qualified_name("a/b/c"),
            [
                "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and \
              must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  \
              or '123-abc', regex used for validation is \
              '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') \
              with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ]
        );
        assert_eq!(
            is_qualified_name("app.kubernetes_io/name"),
            [format!("prefix part {SUBDOMAIN_MSG}")]
        );
    }

    #[test]
    fn label_values_may_be_empty_but_must_start_and_end_alphanumeric() {
        assert!(is_valid_label_value("").is_empty());
        assert!(is_valid_label_value("v1.2_3-x").is_empty());
        assert_eq!(
            is_valid_label_value("-x"),
            [
                "a valid label must be an empty string or consist of alphanumeric characters, '-', \
              '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  \
              or 'my_value',  or '12345', regex used for validation is \
              '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            ]
        );
        assert_eq!(
            is_valid_label_value(&"a".repeat(64)),
            ["must be no more than 63 bytes"]
        );
    }

    #[test]
    fn label_and_annotation_errors_are_reported_at_the_map_field() {
        let causes = meta_causes(json!({
            "name": "a",
            "namespace": "d",
            "labels": {"ok": "yes", "bad key": "v", "k": "bad value"},
            "annotations": {"Example.COM/Upper": "fine", "a b": "x"},
        }));
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            ["metadata.labels", "metadata.labels", "metadata.annotations"]
        );
        assert!(
            causes[0]
                .message
                .starts_with("Invalid value: \"bad key\": name part must")
        );
        assert!(
            causes[1]
                .message
                .starts_with("Invalid value: \"bad value\": a valid label")
        );
        assert!(
            causes[2]
                .message
                .starts_with("Invalid value: \"a b\": name part must")
        );
    }

    #[test]
    fn annotations_over_256_kib_in_total_are_too_long() {
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_B / 2);
        let fits =
            json!({"name": "a", "namespace": "d", "annotations": {"a": big[1..], "b": big[1..]}});
        assert!(meta_causes(fits).is_empty());
        let over = json!({"name": "a", "namespace": "d", "annotations": {"a": big, "b": big}});
        let causes = meta_causes(over);
        assert_eq!(
            messages(&causes),
            ["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
        assert_eq!(causes[0].reason, FIELD_VALUE_TOO_LONG);
    }

    #[test]
    fn a_second_controller_reference_is_rejected_with_the_real_message() {
        let causes = meta_causes(json!({"name": "a", "namespace": "d", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "one", "uid": "u1",
             "controller": true},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "two", "uid": "u2",
             "controller": true, "blockOwnerDeletion": true},
        ]}));
        assert_eq!(
            messages(&causes),
            ["metadata.ownerReferences: Invalid value: \
              [{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"one\",\
              \"uid\":\"u1\",\"controller\":true},{\"apiVersion\":\"apps/v1\",\
              \"kind\":\"ReplicaSet\",\"name\":\"two\",\"uid\":\"u2\",\"controller\":true,\
              \"blockOwnerDeletion\":true}]: \
              Only one reference can have Controller set to true. Found \"true\" in references for \
              ReplicaSet/one and ReplicaSet/two"]
        );
    }

    #[test]
    fn owner_references_need_a_version_kind_name_and_uid() {
        let causes = meta_causes(json!({"name": "a", "namespace": "d", "ownerReferences": [
            {"apiVersion": "apps/", "kind": "", "name": "x"},
        ]}));
        assert_eq!(
            messages(&causes),
            [
                "metadata.ownerReferences.apiVersion: Invalid value: \"apps/\": version must not \
                 be empty",
                "metadata.ownerReferences.kind: Invalid value: \"\": must not be empty",
                "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty",
            ]
        );
    }

    #[test]
    fn a_core_event_cannot_own_objects() {
        let causes = meta_causes(json!({"name": "a", "namespace": "d", "ownerReferences": [
            {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u"},
        ]}));
        assert_eq!(
            messages(&causes),
            [
                "metadata.ownerReferences: Invalid value: {\"apiVersion\":\"v1\",\
                 \"kind\":\"Event\",\
              \"name\":\"e\",\"uid\":\"u\"}: /v1, Kind=Event is disallowed from being an owner"
            ]
        );
    }

    #[test]
    fn finalizers_must_be_qualified_and_not_orphan_and_foreground_together() {
        let causes = meta_causes(json!({"name": "a", "namespace": "d",
            "finalizers": ["example.com/ok", "cleanup", "a/b/c", "orphan", "foregroundDeletion"]}));
        assert_eq!(causes.len(), 2, "{causes:?}");
        assert!(
            causes[0]
                .message
                .starts_with("Invalid value: \"a/b/c\": a valid label key")
        );
        assert_eq!(
            causes[1].error_string(),
            "metadata.finalizers: Invalid value: [\"example.com/ok\",\"cleanup\",\"a/b/c\",\
             \"orphan\",\"foregroundDeletion\"]: finalizer orphan and foregroundDeletion cannot be \
             both set"
        );
    }

    #[test]
    fn an_unqualified_custom_finalizer_is_only_a_warning() {
        let new = json!({"name": "a", "namespace": "d",
            "finalizers": ["cleanup", "kubernetes", "example.com/x"]});
        assert!(meta_causes(new.clone()).is_empty());
        assert_eq!(
            finalizer_warnings(&new, None),
            [
                "metadata.finalizers: \"cleanup\": prefer a domain-qualified finalizer name \
                 including \
              a path (/) to avoid accidental conflicts with other finalizer writers"
            ]
        );
        let old = json!({"finalizers": ["cleanup"]});
        assert!(finalizer_warnings(&new, Some(&old)).is_empty());
    }

    #[test]
    fn an_update_cannot_add_finalizers_while_the_object_is_being_deleted() {
        let deleted = "2024-05-01T10:00:00Z";
        let old = json!({"name": "a", "finalizers": ["x/a"], "deletionTimestamp": deleted});
        let new =
            json!({"name": "a", "finalizers": ["x/c", "x/a", "x/b"], "deletionTimestamp": deleted});
        assert_eq!(
            messages(&validate_object_meta_update(&old, &new)),
            [
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is \
                 being \
              deleted, found new finalizers []string{\"x/b\", \"x/c\"}"
            ]
        );
        let removing = json!({"name": "a", "deletionTimestamp": deleted});
        assert!(validate_object_meta_update(&old, &removing).is_empty());
    }

    #[test]
    fn an_update_cannot_change_identity_or_deletion_fields() {
        let created = "2024-05-01T10:00:00Z";
        let old = json!({"name": "a", "namespace": "d", "uid": "u1", "creationTimestamp": created});
        let new = json!({"name": "b", "namespace": "e", "uid": "u2", "creationTimestamp": created,
            "deletionTimestamp": "2024-05-02T11:30:00Z", "deletionGracePeriodSeconds": 0});
        assert_eq!(
            messages(&validate_object_meta_update(&old, &new)),
            [
                "metadata.name: Invalid value: \"b\": field is immutable",
                "metadata.namespace: Invalid value: \"e\": field is immutable",
                "metadata.uid: Invalid value: \"u2\": field is immutable",
                "metadata.deletionTimestamp: Invalid value: 2024-05-02 11:30:00 +0000 UTC: field \
                 is immutable",
                "metadata.deletionGracePeriodSeconds: Invalid value: 0: field is immutable",
            ]
        );
        let moved = json!({"name": "a", "namespace": "d", "uid": "u1",
            "creationTimestamp": "2024-05-01T10:00:00.5Z"});
        assert_eq!(
            messages(&validate_object_meta_update(&old, &moved)),
            [
                "metadata.creationTimestamp: Invalid value: 2024-05-01 10:00:00.5 +0000 UTC: field \
                 is immutable"
            ]
        );
    }

    #[test]
    fn generation_must_not_decrease_or_be_negative() {
        let old = json!({"name": "a", "generation": 3});
        let new = json!({"name": "a", "generation": 2});
        assert_eq!(
            messages(&validate_object_meta_update(&old, &new)),
            ["metadata.generation: Invalid value: 2: must not be decremented"]
        );
        let causes = meta_causes(json!({"name": "a", "namespace": "d", "generation": -1}));
        assert_eq!(
            messages(&causes),
            ["metadata.generation: Invalid value: -1: must be greater than or equal to 0"]
        );
    }

    #[test]
    fn generated_names_use_the_apimachinery_alphabet_and_fit_in_63_characters() {
        let mut state = 7;
        let first = generate_name_suffix(&mut state);
        let second = generate_name_suffix(&mut state);
        assert_eq!(first.len(), 5);
        assert_ne!(first, second);
        assert!(first.bytes().all(|b| SUFFIX_ALPHABET.contains(&b)));
        let long = generate_name(&"p".repeat(70), &mut state);
        assert_eq!(long.len(), 63);
        assert!(long.starts_with(&"p".repeat(58)));
        assert!(generate_name(&"é".repeat(40), &mut state).len() <= 63);
    }

    #[test]
    fn go_quote_escapes_like_strconv_quote() {
        assert_eq!(
            go_quote("a\"b\\c\n\u{7}\u{1}é\u{a0}"),
            "\"a\\\"b\\\\c\\n\\a\\x01é\\u00a0\""
        );
        assert_eq!(go_json(&json!("<&>")), "\"\\u003c\\u0026\\u003e\"");
        let required = Cause::required("", "");
        assert_eq!(
            required.to_json(),
            json!({"reason": "FieldValueRequired", "message": "Required value"})
        );
        let unsupported = Cause::not_supported("spec.type", "\"x\"", &["A", "B"]);
        assert_eq!(
            unsupported.message,
            "Unsupported value: \"x\": supported values: \"A\", \"B\""
        );
        assert_eq!(
            Cause::duplicate("f", "\"x\"").message,
            "Duplicate value: \"x\""
        );
    }

    #[test]
    fn validators_never_panic_on_random_input() {
        let alphabet: Vec<char> = "aZ09-_./%~ :é\u{0}\"\\\n".chars().collect();
        let mut state = 42;
        for _ in 0..500 {
            let len = (next_random(&mut state) % 80) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(next_random(&mut state) % alphabet.len() as u64) as usize])
                .collect();
            for rule in [
                NameRule::DnsSubdomain,
                NameRule::DnsLabel,
                NameRule::Dns1035Label,
                NameRule::PathSegment,
            ] {
                let _ = rule.check(&text, true);
                let _ = rule.check(&text, false);
            }
            let _ = is_qualified_name(&text);
            let _ = is_valid_label_value(&text);
            let meta = json!({"name": text, "generateName": text, "namespace": text,
                "labels": {text.clone(): text}, "finalizers": [text],
                "ownerReferences": [{"apiVersion": text}],
                "deletionTimestamp": text, "creationTimestamp": text});
            let _ = validate_object_meta(&meta, true, NameRule::DnsSubdomain);
            let _ = validate_object_meta_update(&meta, &json!({"finalizers": [text, "x"]}));
            let _ = generate_name(&text, &mut state);
        }
        let _ = validate_object_meta(&json!(null), false, NameRule::DnsLabel);
        let _ = validate_object_meta(
            &json!({"name": 5, "labels": [1], "ownerReferences": {}}),
            true,
            NameRule::DnsLabel,
        );
    }
}
