//! JSON patch (RFC 6902) and JSON merge patch (RFC 7386), as the API server applies them.
//!
//! This module owns the `application/json-patch+json` and `application/merge-patch+json` bodies
//! of a PATCH: decoding them, applying them to the stored object's JSON, and the Status (code,
//! reason, message) the server answers when that fails. It does not own strategic merge or
//! server-side apply, nor what happens after a patch applies (decoding the result into the kind,
//! validation, preconditions, retries).
//!
//! The apiserver applies both with the Go library `gopkg.in/evanphx/json-patch.v4`, whose
//! semantics differ from the RFCs in ways clients rely on, so they are reproduced here:
//! a `test` of an absent member against `null` succeeds (kube-runtime's `finalizer()` adds its
//! first finalizer that way), `replace` of an absent object member adds it, array indices may be
//! negative (counted from the end), a path's first segment is ignored rather than required to be
//! empty, and a merge patch drops `null` members inside objects in arrays it writes.
//!
//! Decoding errors are 400s with Go's `encoding/json` texts, reproduced for syntax and type
//! errors. A patch that does not apply is a 422 whose message says nothing more than "the server
//! rejected our request due to an error in our request": the real server throws the library's
//! explanation away, and clients that must tell a failed `test` from a bad path re-read the object.

use std::fmt;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::{Map, Value};

use super::validation::push_go_escaped;

/// The message of every JSON patch that decodes but does not apply (`NewGenericServerResponse`
/// for a 422 without details).
const NOT_APPLIED: &str = "the server rejected our request due to an error in our request";

/// The apiserver's cap on the operations of one JSON patch.
const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Go's `encoding/json` nesting limit.
const MAX_NESTING_DEPTH: usize = 10_000;

/// Why a patch was refused, as the Status the API server answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PatchError {
    /// The HTTP status: 400, 413 or 422.
    pub(crate) code: u16,
    /// The Status `reason`: `BadRequest`, `RequestEntityTooLarge` or `Invalid`.
    pub(crate) reason: &'static str,
    /// The Status `message`.
    pub(crate) message: String,
}

impl PatchError {
    pub(crate) fn bad_request(message: String) -> Self {
        Self {
            code: 400,
            reason: "BadRequest",
            message,
        }
    }

    /// The apiserver's pre-decoding of a patch body (its default `fieldValidation=Warn` path).
    pub(crate) fn decoding(detail: impl fmt::Display) -> Self {
        Self::bad_request(format!("error decoding patch: {detail}"))
    }

    fn not_applied() -> Self {
        Self {
            code: 422,
            reason: "Invalid",
            message: NOT_APPLIED.to_owned(),
        }
    }
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PatchError {}

/// Applies an RFC 6902 JSON patch to `doc`, atomically: the result is either the fully patched
/// document or an error, and `doc` itself is never modified.
///
/// # Errors
///
/// - 400 `BadRequest` `error decoding patch: ...` when the body is not JSON, not an array (or
///   `null`), or an operation's `op`, `path` or `from` is not a string;
/// - 413 `RequestEntityTooLarge` past 10000 operations;
/// - 422 `Invalid` `the server rejected our request due to an error in our request` when an
///   operation does not apply: a failed `test`, a missing path, an unknown `op`.
pub(crate) fn apply_json_patch(doc: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch = decode(body)?;
    let operations: Vec<Option<&Map<String, Value>>> = match &patch {
        // Go decodes `null` into an empty patch, which applies cleanly.
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().map(Value::as_object).collect(),
        other => {
            return Err(PatchError::decoding(format!(
                "json: cannot unmarshal {} into Go value of type []handlers.jsonPatchOp",
                json_kind(other)
            )));
        }
    };
    if let Value::Array(items) = &patch {
        check_operation_types(items)?;
    }
    if operations.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError {
            code: 413,
            reason: "RequestEntityTooLarge",
            message: format!(
                "Request entity too large: The allowed maximum operations in a JSON patch is \
                 {MAX_JSON_PATCH_OPERATIONS}, got {}",
                operations.len()
            ),
        });
    }
    // Working on a copy makes the patch atomic: an operation that fails discards all before it.
    let mut patched = doc.clone();
    for operation in operations {
        apply_operation(&mut patched, operation).map_err(|_detail| PatchError::not_applied())?;
    }
    Ok(patched)
}

/// The types the apiserver's strict pre-decoding (into `[]jsonPatchOp`) insists on.
fn check_operation_types(items: &[Value]) -> Result<(), PatchError> {
    for item in items {
        let operation = match item {
            Value::Null => continue,
            Value::Object(operation) => operation,
            other => {
                return Err(PatchError::decoding(format!(
                    "json: cannot unmarshal {} into Go value of type handlers.jsonPatchOp",
                    json_kind(other)
                )));
            }
        };
        for member in ["op", "path", "from"] {
            if let Some(value) = operation.get(member)
                && !matches!(value, Value::String(_) | Value::Null)
            {
                return Err(PatchError::decoding(format!(
                    "json: cannot unmarshal {} into Go struct field jsonPatchOp.{member} of type \
                     string",
                    json_kind(value)
                )));
            }
        }
    }
    Ok(())
}

/// One operation, with evanphx/json-patch v4 semantics. The error explains the failure for
/// debugging; the apiserver never shows it.
fn apply_operation(doc: &mut Value, operation: Option<&Map<String, Value>>) -> Result<(), String> {
    let member = |name: &str| operation.and_then(|o| o.get(name));
    let string = |name: &str| member(name).and_then(Value::as_str);
    let kind = string("op").unwrap_or("unknown");
    let path = || string("path").ok_or_else(|| "operation missing path field".to_owned());
    let from = || string("from").ok_or_else(|| "operation, missing from field".to_owned());
    // A missing `value` adds or replaces with `null`, as the Go library stores a nil node.
    let value = member("value");
    match kind {
        "add" => add(doc, path()?, value.cloned().unwrap_or(Value::Null)),
        "remove" => remove(doc, path()?).map(drop),
        "replace" => replace(doc, path()?, value),
        "move" => {
            let moved = remove(doc, from()?)?;
            add(doc, path()?, moved)
        }
        "copy" => {
            let copied = read_for_copy(doc, from()?)?;
            add(doc, path()?, copied)
        }
        "test" => test(doc, path()?, value),
        other => Err(format!("Unexpected kind: {other}")),
    }
}

/// Where a path points: its parent container (by canonical tokens) and the final key, resolved
/// the way evanphx's `findObject` walks a document.
struct Location {
    parent: Vec<String>,
    container: Container,
    /// The final token, with `~1` and `~0` decoded.
    key: String,
}

enum Container {
    /// An object, and whether it has the key.
    Object { has_key: bool },
    /// An array of this length.
    Array(usize),
}

impl Location {
    fn pointer(&self, last: &str) -> PointerBuf {
        PointerBuf::from_tokens(self.parent.iter().map(String::as_str).chain([last]))
    }

    /// The index of an existing element, negative indices counting from the end.
    fn element(&self, len: usize) -> Result<usize, String> {
        existing_index(&self.key, len).ok_or_else(|| format!("invalid index: {}", self.key))
    }
}

fn locate(doc: &Value, path: &str) -> Result<Location, String> {
    let missing = || format!("doc is missing path: {path:?}");
    let segments: Vec<&str> = path.split('/').collect();
    // The first segment is skipped whatever it holds: evanphx never checks the leading `/`.
    let [_, middle @ .., last] = segments.as_slice() else {
        return Err(missing());
    };
    let mut parent = Vec::with_capacity(middle.len());
    let mut current = doc;
    for raw in middle {
        let segment = decode_token(raw);
        let (token, next) = match current {
            Value::Object(map) => (segment.clone(), map.get(&segment)),
            Value::Array(items) => match existing_index(&segment, items.len()) {
                Some(index) => (index.to_string(), items.get(index)),
                None => return Err(missing()),
            },
            _ => return Err(missing()),
        };
        match next {
            // `null` reads as absent, and only containers can be walked into.
            Some(next @ (Value::Object(_) | Value::Array(_))) => {
                parent.push(token);
                current = next;
            }
            _ => return Err(missing()),
        }
    }
    let key = decode_token(last);
    let container = match current {
        Value::Object(map) => Container::Object {
            has_key: map.contains_key(&key),
        },
        Value::Array(items) => Container::Array(items.len()),
        _ => return Err(missing()),
    };
    Ok(Location {
        parent,
        container,
        key,
    })
}

/// RFC 6901 unescaping, left to right (`~01` is `~1`); unknown escapes stay as they are.
fn decode_token(raw: &str) -> String {
    if !raw.contains('~') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("~1") {
            out.push('/');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("~0") {
            out.push('~');
            rest = after;
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// An array index as Go's `strconv.Atoi` reads it (sign and leading zeros allowed).
fn parse_index(token: &str) -> Option<i128> {
    token.parse::<i64>().ok().map(i128::from)
}

fn existing_index(token: &str, len: usize) -> Option<usize> {
    let len = i128::try_from(len).ok()?;
    let mut index = parse_index(token)?;
    if index < 0 {
        index += len;
    }
    if (0..len).contains(&index) {
        usize::try_from(index).ok()
    } else {
        None
    }
}

/// Where `add` inserts: `-` appends, and negative indices count from the end of the array
/// with the new element in it (so `-1` also appends).
fn insert_index(token: &str, len: usize) -> Option<String> {
    if token == "-" {
        return Some("-".to_owned());
    }
    let slots = i128::try_from(len).ok()? + 1;
    let mut index = parse_index(token)?;
    if index < 0 {
        index += slots;
    }
    (0..slots).contains(&index).then(|| index.to_string())
}

/// Runs one RFC operation whose path is already resolved, through the `json-patch` crate.
fn run(doc: &mut Value, operation: PatchOperation) -> Result<(), String> {
    json_patch::patch_unsafe(doc, &[operation]).map_err(|e| e.to_string())
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let location = locate(doc, path)?;
    let last = match location.container {
        Container::Object { .. } => location.key.clone(),
        Container::Array(len) => insert_index(&location.key, len)
            .ok_or_else(|| format!("invalid index: {}", location.key))?,
    };
    let path = location.pointer(&last);
    run(doc, PatchOperation::Add(AddOperation { path, value }))
}

/// Removes and returns the value at `path`, which must exist.
fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let location = locate(doc, path)?;
    let last = match location.container {
        Container::Object { has_key: true } => location.key.clone(),
        Container::Object { has_key: false } => {
            return Err(format!(
                "Unable to remove nonexistent key: {}",
                location.key
            ));
        }
        Container::Array(len) => location.element(len)?.to_string(),
    };
    let path = location.pointer(&last);
    let removed = doc.pointer(path.as_str()).cloned().unwrap_or(Value::Null);
    run(doc, PatchOperation::Remove(RemoveOperation { path }))?;
    Ok(removed)
}

fn replace(doc: &mut Value, path: &str, value: Option<&Value>) -> Result<(), String> {
    if path.is_empty() {
        return match value {
            Some(whole @ (Value::Object(_) | Value::Array(_))) => {
                *doc = whole.clone();
                Ok(())
            }
            _ => Err("replace operation value must be object or array".to_owned()),
        };
    }
    let location = locate(doc, path)?;
    let value = value.cloned().unwrap_or(Value::Null);
    match location.container {
        // The Go library never checks that an object member exists before replacing it.
        Container::Object { has_key: false } => {
            let path = location.pointer(&location.key);
            run(doc, PatchOperation::Add(AddOperation { path, value }))
        }
        Container::Object { has_key: true } => {
            let path = location.pointer(&location.key);
            run(
                doc,
                PatchOperation::Replace(ReplaceOperation { path, value }),
            )
        }
        Container::Array(len) => {
            let path = location.pointer(&location.element(len)?.to_string());
            run(
                doc,
                PatchOperation::Replace(ReplaceOperation { path, value }),
            )
        }
    }
}

/// The value `copy` duplicates; an absent object member copies as `null`.
fn read_for_copy(doc: &Value, from: &str) -> Result<Value, String> {
    let location = locate(doc, from)?;
    let last = match location.container {
        Container::Object { .. } => location.key.clone(),
        Container::Array(len) => location.element(len)?.to_string(),
    };
    Ok(doc
        .pointer(location.pointer(&last).as_str())
        .cloned()
        .unwrap_or(Value::Null))
}

fn test(doc: &Value, path: &str, expected: Option<&Value>) -> Result<(), String> {
    let failed = || Err(format!("testing value {path} failed: test failed"));
    if path.is_empty() {
        return if expected == Some(doc) {
            Ok(())
        } else {
            failed()
        };
    }
    let location = locate(doc, path)?;
    let last = match location.container {
        Container::Object { .. } => location.key.clone(),
        Container::Array(len) => location.element(len)?.to_string(),
    };
    let actual = doc
        .pointer(location.pointer(&last).as_str())
        .filter(|v| !v.is_null());
    match (actual, expected) {
        // The Go library reads an absent member like a `null` one, so testing it against `null`
        // succeeds; kube-runtime's finalizer helper depends on this.
        (None, Some(Value::Null)) => Ok(()),
        (Some(actual), Some(expected)) if actual == expected => Ok(()),
        // A missing `value` crashes the Go library's request handler; here it just fails.
        _ => failed(),
    }
}

/// Applies an RFC 7386 JSON merge patch to `doc`, returning the merged document.
///
/// Like the apiserver's library, members set to `null` are deleted, and `null` members are
/// also dropped from objects the patch writes in place of something else, including objects
/// inside arrays (RFC 7386 leaves arrays alone; the `json-patch` crate's `merge` does too, which
/// is why this does not use it).
///
/// # Errors
///
/// 400 `BadRequest`: `error decoding patch: ...` when the body is not JSON or not an object,
/// `Invalid JSON Patch` when it is `null`.
pub(crate) fn apply_merge_patch(doc: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch = match decode(body)? {
        Value::Object(patch) => patch,
        Value::Null => return Err(PatchError::bad_request("Invalid JSON Patch".to_owned())),
        other => {
            return Err(PatchError::decoding(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(&other)
            )));
        }
    };
    Ok(match doc {
        Value::Object(doc) => {
            let mut merged = doc.clone();
            merge_objects(&mut merged, patch);
            Value::Object(merged)
        }
        // A document that is not an object is replaced by the patch.
        _ => {
            let mut replacement = Value::Object(patch);
            prune_nulls(&mut replacement);
            replacement
        }
    })
}

fn merge_objects(doc: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            doc.remove(&key);
            continue;
        }
        match doc.get_mut(&key) {
            Some(current) if !current.is_null() => {
                let merged = merge_values(std::mem::take(current), value);
                *current = merged;
            }
            _ => {
                let mut value = value;
                prune_nulls(&mut value);
                doc.insert(key, value);
            }
        }
    }
}

fn merge_values(current: Value, patch: Value) -> Value {
    match (current, patch) {
        (Value::Object(mut current), Value::Object(patch)) => {
            merge_objects(&mut current, patch);
            Value::Object(current)
        }
        // The Go library returns a non-object patch over an object as it is, nulls and all...
        (Value::Object(_), patch) => patch,
        // ...but prunes it when it replaces anything else.
        (_, mut patch) => {
            prune_nulls(&mut patch);
            patch
        }
    }
}

/// Drops `null` members of objects, recursively, including objects inside arrays; `null`
/// array elements stay.
fn prune_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(prune_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

/// Decodes a patch body, failing with Go's `encoding/json` message as the apiserver does.
pub(crate) fn decode(body: &[u8]) -> Result<Value, PatchError> {
    if let Some(syntax_error) = go_syntax_error(body) {
        return Err(PatchError::decoding(syntax_error));
    }
    // Go replaces invalid UTF-8 inside strings rather than failing.
    let text = String::from_utf8_lossy(body);
    serde_json::from_str(&text).map_err(PatchError::decoding)
}

/// How Go's `UnmarshalTypeError` names a JSON value's type.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go `encoding/json`'s syntax error for `data`, if any: the same state machine as its scanner,
/// so the same texts (`invalid character 'x' looking for beginning of value`, `unexpected end of
/// JSON input`, ...).
pub(crate) fn go_syntax_error(data: &[u8]) -> Option<String> {
    let mut scanner = GoScanner {
        state: Scan::BeginValue,
        stack: Vec::new(),
        end_top: false,
    };
    for &c in data {
        if let Err(e) = scanner.step(c) {
            return Some(e);
        }
    }
    if scanner.end_top {
        return None;
    }
    // Like Go, feed a space at the end: it completes a trailing number and reports a number
    // cut short (`1.`) as an invalid ' '.
    if let Err(e) = scanner.step(b' ') {
        return Some(e);
    }
    (!scanner.end_top).then(|| "unexpected end of JSON input".to_owned())
}

#[derive(Clone, Copy)]
enum Scan {
    BeginValue,
    BeginValueOrEmpty,
    BeginStringOrEmpty,
    BeginString,
    EndValue,
    EndTop,
    InString,
    InStringEsc,
    InStringEscU(u8),
    Neg,
    One,
    Zero,
    Dot,
    Dot0,
    E,
    ESign,
    E0,
    Literal {
        rest: &'static [u8],
        name: &'static str,
    },
}

#[derive(Clone, Copy)]
enum Nest {
    ObjectKey,
    ObjectValue,
    ArrayValue,
}

struct GoScanner {
    state: Scan,
    stack: Vec<Nest>,
    end_top: bool,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// `invalid character 'c' <context>`, with the byte quoted as Go's `quoteChar` does (a byte of
/// a multi-byte character shows as the Latin-1 character of that value).
fn syntax_error(c: u8, context: &str) -> String {
    let quoted = match c {
        b'\'' => "'\\''".to_owned(),
        b'"' => "'\"'".to_owned(),
        c => {
            let mut quoted = String::from("'");
            push_go_escaped(&mut quoted, char::from(c), '"');
            quoted.push('\'');
            quoted
        }
    };
    format!("invalid character {quoted} {context}")
}

impl GoScanner {
    fn step(&mut self, c: u8) -> Result<(), String> {
        match self.state {
            Scan::BeginValue => self.begin_value(c),
            Scan::BeginValueOrEmpty => match c {
                c if is_space(c) => Ok(()),
                b']' => self.end_value(c),
                c => self.begin_value(c),
            },
            Scan::BeginStringOrEmpty => match c {
                c if is_space(c) => Ok(()),
                b'}' => {
                    if let Some(top) = self.stack.last_mut() {
                        *top = Nest::ObjectValue;
                    }
                    self.end_value(c)
                }
                c => self.begin_string(c),
            },
            Scan::BeginString => self.begin_string(c),
            Scan::EndValue => self.end_value(c),
            Scan::EndTop if is_space(c) => Ok(()),
            Scan::EndTop => Err(syntax_error(c, "after top-level value")),
            Scan::InString => {
                match c {
                    b'"' => self.state = Scan::EndValue,
                    b'\\' => self.state = Scan::InStringEsc,
                    c if c < 0x20 => return Err(syntax_error(c, "in string literal")),
                    _ => {}
                }
                Ok(())
            }
            Scan::InStringEsc => {
                self.state = match c {
                    b'b' | b'f' | b'n' | b'r' | b't' | b'\\' | b'/' | b'"' => Scan::InString,
                    b'u' => Scan::InStringEscU(0),
                    c => return Err(syntax_error(c, "in string escape code")),
                };
                Ok(())
            }
            Scan::InStringEscU(seen) if c.is_ascii_hexdigit() => {
                self.state = if seen == 3 {
                    Scan::InString
                } else {
                    Scan::InStringEscU(seen + 1)
                };
                Ok(())
            }
            Scan::InStringEscU(_) => Err(syntax_error(c, "in \\u hexadecimal character escape")),
            Scan::Neg => {
                self.state = match c {
                    b'0' => Scan::Zero,
                    b'1'..=b'9' => Scan::One,
                    c => return Err(syntax_error(c, "in numeric literal")),
                };
                Ok(())
            }
            Scan::One if c.is_ascii_digit() => Ok(()),
            Scan::One | Scan::Zero => match c {
                b'.' => {
                    self.state = Scan::Dot;
                    Ok(())
                }
                b'e' | b'E' => {
                    self.state = Scan::E;
                    Ok(())
                }
                c => self.end_value(c),
            },
            Scan::Dot if c.is_ascii_digit() => {
                self.state = Scan::Dot0;
                Ok(())
            }
            Scan::Dot => Err(syntax_error(c, "after decimal point in numeric literal")),
            Scan::Dot0 => match c {
                c if c.is_ascii_digit() => Ok(()),
                b'e' | b'E' => {
                    self.state = Scan::E;
                    Ok(())
                }
                c => self.end_value(c),
            },
            Scan::E if c == b'+' || c == b'-' => {
                self.state = Scan::ESign;
                Ok(())
            }
            Scan::E | Scan::ESign if c.is_ascii_digit() => {
                self.state = Scan::E0;
                Ok(())
            }
            Scan::E | Scan::ESign => Err(syntax_error(c, "in exponent of numeric literal")),
            Scan::E0 if c.is_ascii_digit() => Ok(()),
            Scan::E0 => self.end_value(c),
            Scan::Literal { rest, name } => match rest.split_first() {
                Some((&wanted, tail)) if c == wanted => {
                    self.state = if tail.is_empty() {
                        Scan::EndValue
                    } else {
                        Scan::Literal { rest: tail, name }
                    };
                    Ok(())
                }
                Some((&wanted, _)) => {
                    let context = format!("in literal {name} (expecting '{}')", char::from(wanted));
                    Err(syntax_error(c, &context))
                }
                None => self.end_value(c),
            },
        }
    }

    fn begin_value(&mut self, c: u8) -> Result<(), String> {
        self.state = match c {
            c if is_space(c) => return Ok(()),
            b'{' => {
                self.push(Nest::ObjectKey, c)?;
                Scan::BeginStringOrEmpty
            }
            b'[' => {
                self.push(Nest::ArrayValue, c)?;
                Scan::BeginValueOrEmpty
            }
            b'"' => Scan::InString,
            b'-' => Scan::Neg,
            b'0' => Scan::Zero,
            b'1'..=b'9' => Scan::One,
            b't' => Scan::Literal {
                rest: b"rue",
                name: "true",
            },
            b'f' => Scan::Literal {
                rest: b"alse",
                name: "false",
            },
            b'n' => Scan::Literal {
                rest: b"ull",
                name: "null",
            },
            c => return Err(syntax_error(c, "looking for beginning of value")),
        };
        Ok(())
    }

    fn begin_string(&mut self, c: u8) -> Result<(), String> {
        match c {
            c if is_space(c) => Ok(()),
            b'"' => {
                self.state = Scan::InString;
                Ok(())
            }
            c => Err(syntax_error(
                c,
                "looking for beginning of object key string",
            )),
        }
    }

    fn push(&mut self, nest: Nest, c: u8) -> Result<(), String> {
        self.stack.push(nest);
        if self.stack.len() > MAX_NESTING_DEPTH {
            return Err(syntax_error(c, "exceeded max depth"));
        }
        Ok(())
    }

    fn pop(&mut self) -> Result<(), String> {
        self.stack.pop();
        if self.stack.is_empty() {
            self.state = Scan::EndTop;
            self.end_top = true;
        } else {
            self.state = Scan::EndValue;
        }
        Ok(())
    }

    fn end_value(&mut self, c: u8) -> Result<(), String> {
        let Some(top) = self.stack.last_mut() else {
            self.state = Scan::EndTop;
            self.end_top = true;
            return self.step(c);
        };
        if is_space(c) {
            self.state = Scan::EndValue;
            return Ok(());
        }
        match (*top, c) {
            (Nest::ObjectKey, b':') => {
                *top = Nest::ObjectValue;
                self.state = Scan::BeginValue;
                Ok(())
            }
            (Nest::ObjectKey, c) => Err(syntax_error(c, "after object key")),
            (Nest::ObjectValue, b',') => {
                *top = Nest::ObjectKey;
                self.state = Scan::BeginString;
                Ok(())
            }
            (Nest::ObjectValue, b'}') | (Nest::ArrayValue, b']') => self.pop(),
            (Nest::ObjectValue, c) => Err(syntax_error(c, "after object key:value pair")),
            (Nest::ArrayValue, b',') => {
                self.state = Scan::BeginValue;
                Ok(())
            }
            (Nest::ArrayValue, c) => Err(syntax_error(c, "after array element")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn json_patch(doc: &Value, patch: Value) -> Result<Value, PatchError> {
        apply_json_patch(doc, patch.to_string().as_bytes())
    }

    fn assert_not_applied(result: Result<Value, PatchError>) {
        assert_eq!(
            result,
            Err(PatchError {
                code: 422,
                reason: "Invalid",
                message: "the server rejected our request due to an error in our request"
                    .to_owned(),
            })
        );
    }

    fn config_map() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "a", "labels": {"x": "1"}},
            "data": {"k": "v"},
            "items": [1, 2, 3],
        })
    }

    #[test]
    fn testing_an_absent_member_against_null_succeeds() {
        // kube-runtime's finalizer() adds the first finalizer exactly like this.
        let patched = json_patch(
            &config_map(),
            json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/cleanup"]},
            ]),
        )
        .unwrap();
        assert_eq!(
            patched["metadata"]["finalizers"],
            json!(["example.com/cleanup"])
        );
        let explicit_null = json!({"metadata": {"finalizers": null}});
        let test_null = json!([{"op": "test", "path": "/metadata/finalizers", "value": null}]);
        assert!(json_patch(&explicit_null, test_null).is_ok());
    }

    #[test]
    fn testing_a_present_member_against_null_fails() {
        let doc = json!({"metadata": {"finalizers": ["a/b"]}});
        assert_not_applied(json_patch(
            &doc,
            json!([{"op": "test", "path": "/metadata/finalizers", "value": null}]),
        ));
        // Without a parent to look in, even a test against null fails.
        assert_not_applied(json_patch(
            &doc,
            json!([{"op": "test", "path": "/spec/x", "value": null}]),
        ));
        // So does a test that leaves out its value.
        assert_not_applied(json_patch(
            &doc,
            json!([{"op": "test", "path": "/metadata/finalizers"}]),
        ));
    }

    #[test]
    fn a_failed_test_discards_the_operations_before_it() {
        let doc = config_map();
        let result = json_patch(
            &doc,
            json!([
                {"op": "add", "path": "/metadata/labels/y", "value": "2"},
                {"op": "remove", "path": "/data/k"},
                {"op": "test", "path": "/metadata/name", "value": "other"},
            ]),
        );
        assert_not_applied(result);
        assert_eq!(doc, config_map());
    }

    #[test]
    fn kube_finalizer_removal_tests_then_removes_by_index() {
        let doc = json!({"metadata": {"finalizers": ["a/one", "b/two"]}});
        let patched = json_patch(
            &doc,
            json!([
                {"op": "test", "path": "/metadata/finalizers/1", "value": "b/two"},
                {"op": "remove", "path": "/metadata/finalizers/1"},
            ]),
        )
        .unwrap();
        assert_eq!(patched, json!({"metadata": {"finalizers": ["a/one"]}}));
        assert_not_applied(json_patch(
            &doc,
            json!([
                {"op": "test", "path": "/metadata/finalizers/1", "value": "a/one"},
                {"op": "remove", "path": "/metadata/finalizers/1"},
            ]),
        ));
    }

    #[test]
    fn removing_a_missing_member_or_walking_a_missing_parent_is_not_applied() {
        let doc = config_map();
        assert_not_applied(json_patch(
            &doc,
            json!([{"op": "remove", "path": "/data/missing"}]),
        ));
        assert_not_applied(json_patch(
            &doc,
            json!([{"op": "remove", "path": "/items/3"}]),
        ));
        assert_not_applied(json_patch(
            &doc,
            json!([{"op": "replace", "path": "/spec/x", "value": 1}]),
        ));
        assert_not_applied(json_patch(
            &doc,
            json!([{"op": "add", "path": "/spec/x", "value": 1}]),
        ));
        assert_not_applied(json_patch(
            &doc,
            json!([{"op": "replace", "path": "/items/3", "value": 1}]),
        ));
        assert_not_applied(json_patch(
            &doc,
            json!([{"op": "add", "path": "/items/4", "value": 1}]),
        ));
        assert_not_applied(json_patch(
            &doc,
            json!([{"op": "add", "path": "/data/k/x", "value": 1}]),
        ));
        assert_not_applied(json_patch(
            &doc,
            json!([{"op": "add", "path": "", "value": {}}]),
        ));
        assert_not_applied(json_patch(&doc, json!([{"op": "delete", "path": "/data"}])));
        assert_not_applied(json_patch(&doc, json!([{"path": "/data"}])));
        assert_not_applied(json_patch(&doc, json!([{"op": "remove"}])));
        assert_not_applied(json_patch(&doc, json!([null])));
    }

    #[test]
    fn replacing_an_absent_object_member_adds_it() {
        let patched = json_patch(
            &config_map(),
            json!([{"op": "replace", "path": "/data/new", "value": "x"}]),
        );
        assert_eq!(patched.unwrap()["data"], json!({"k": "v", "new": "x"}));
    }

    #[test]
    fn negative_array_indices_count_from_the_end() {
        let doc = config_map();
        let removed = json_patch(&doc, json!([{"op": "remove", "path": "/items/-1"}])).unwrap();
        assert_eq!(removed["items"], json!([1, 2]));
        let replaced = json_patch(
            &doc,
            json!([{"op": "replace", "path": "/items/-3", "value": 0}]),
        )
        .unwrap();
        assert_eq!(replaced["items"], json!([0, 2, 3]));
        // For add, -1 is the slot after the last element.
        let added = json_patch(
            &doc,
            json!([{"op": "add", "path": "/items/-1", "value": 4}]),
        )
        .unwrap();
        assert_eq!(added["items"], json!([1, 2, 3, 4]));
        let appended =
            json_patch(&doc, json!([{"op": "add", "path": "/items/-", "value": 4}])).unwrap();
        assert_eq!(appended["items"], json!([1, 2, 3, 4]));
        assert_not_applied(json_patch(
            &doc,
            json!([{"op": "remove", "path": "/items/-4"}]),
        ));
    }

    #[test]
    fn move_copy_and_escaped_paths_follow_the_go_library() {
        let doc = json!({"metadata": {"annotations": {"example.com/a~b": "1"}}, "spec": {}});
        let moved = json_patch(&doc, json!([
            {"op": "move", "from": "/metadata/annotations/example.com~1a~0b", "path": "/spec/x"},
        ]))
        .unwrap();
        assert_eq!(
            moved,
            json!({"metadata": {"annotations": {}}, "spec": {"x": "1"}})
        );
        // Copying an absent member copies null.
        let copied = json_patch(
            &doc,
            json!([{"op": "copy", "from": "/spec/none", "path": "/spec/y"}]),
        );
        assert_eq!(copied.unwrap()["spec"], json!({"y": null}));
        assert_not_applied(json_patch(
            &doc,
            json!([{"op": "move", "from": "/spec/none", "path": "/spec/y"}]),
        ));
        assert_not_applied(json_patch(&doc, json!([{"op": "copy", "path": "/spec/y"}])));
        // The leading slash is never checked: the first segment is skipped.
        let sloppy = json_patch(&doc, json!([{"op": "add", "path": "x/z", "value": 1}])).unwrap();
        assert_eq!(sloppy["z"], json!(1));
    }

    #[test]
    fn replacing_the_whole_document_needs_an_object_or_array() {
        let replaced = json_patch(
            &config_map(),
            json!([{"op": "replace", "path": "", "value": {"a": 1}}]),
        );
        assert_eq!(replaced.unwrap(), json!({"a": 1}));
        assert_not_applied(json_patch(
            &config_map(),
            json!([{"op": "replace", "path": "", "value": 1}]),
        ));
        assert!(
            json_patch(
                &config_map(),
                json!([{"op": "test", "path": "", "value": config_map()}])
            )
            .is_ok()
        );
    }

    #[test]
    fn an_empty_or_null_patch_changes_nothing() {
        assert_eq!(
            apply_json_patch(&config_map(), b"[]").unwrap(),
            config_map()
        );
        assert_eq!(
            apply_json_patch(&config_map(), b" null ").unwrap(),
            config_map()
        );
    }

    #[test]
    fn a_body_that_is_not_a_json_patch_is_a_bad_request() {
        let error = |body: &[u8]| apply_json_patch(&config_map(), body).unwrap_err();
        let bad = error(b"x");
        assert_eq!((bad.code, bad.reason), (400, "BadRequest"));
        assert_eq!(
            bad.message,
            "error decoding patch: invalid character 'x' looking for beginning of value"
        );
        assert_eq!(
            error(b"").message,
            "error decoding patch: unexpected end of JSON input"
        );
        assert_eq!(
            error(b"{\"op\":\"add\"}").message,
            "error decoding patch: json: cannot unmarshal object into Go value of type \
             []handlers.jsonPatchOp"
        );
        assert_eq!(
            error(b"[1]").message,
            "error decoding patch: json: cannot unmarshal number into Go value of type \
             handlers.jsonPatchOp"
        );
        assert_eq!(
            error(b"[{\"op\":true,\"path\":\"/a\"}]").message,
            "error decoding patch: json: cannot unmarshal bool into Go struct field jsonPatchOp.op \
             of type string"
        );
    }

    #[test]
    fn more_than_ten_thousand_operations_are_too_large() {
        let operations = vec![json!({"op": "test", "path": "/kind", "value": "ConfigMap"}); 10_001];
        let error = json_patch(&config_map(), Value::Array(operations)).unwrap_err();
        assert_eq!((error.code, error.reason), (413, "RequestEntityTooLarge"));
        assert_eq!(
            error.message,
            "Request entity too large: The allowed maximum operations in a JSON patch is 10000, \
             got 10001"
        );
    }

    #[test]
    fn syntax_errors_use_go_encoding_json_texts() {
        let cases: [(&[u8], &str); 14] = [
            (b"{", "unexpected end of JSON input"),
            (
                b"[1,]",
                "invalid character ']' looking for beginning of value",
            ),
            (b"{\"a\" 1}", "invalid character '1' after object key"),
            (
                b"{\"a\":1 \"b\"}",
                "invalid character '\"' after object key:value pair",
            ),
            (b"[1 2]", "invalid character '2' after array element"),
            (b"{} x", "invalid character 'x' after top-level value"),
            (
                b"tru",
                "invalid character ' ' in literal true (expecting 'e')",
            ),
            (
                b"nul!",
                "invalid character '!' in literal null (expecting 'l')",
            ),
            (
                b"1.",
                "invalid character ' ' after decimal point in numeric literal",
            ),
            (b"-x", "invalid character 'x' in numeric literal"),
            (
                b"{'a':1}",
                "invalid character '\\'' looking for beginning of object key string",
            ),
            (
                "é".as_bytes(),
                "invalid character 'Ã' looking for beginning of value",
            ),
            (b"\"a\tb\"", "invalid character '\\t' in string literal"),
            (
                b"\"\\u12x\"",
                "invalid character 'x' in \\u hexadecimal character escape",
            ),
        ];
        for (body, message) in cases {
            assert_eq!(
                go_syntax_error(body).as_deref(),
                Some(message),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for valid in [
            &b" [ ] "[..],
            b"0",
            b"-1.5e+3",
            b"{\"a\":[true,false,null,\"\\u00e9\"]}",
        ] {
            assert_eq!(go_syntax_error(valid), None);
        }
        let deep = "[".repeat(10_001);
        assert_eq!(
            go_syntax_error(deep.as_bytes()).as_deref(),
            Some("invalid character '[' exceeded max depth")
        );
    }

    #[test]
    fn merge_patch_sets_deletes_and_merges_members() {
        let merged = apply_merge_patch(
            &config_map(),
            br#"{"metadata":{"labels":{"x":null,"y":"2"}},"data":{"k2":"v2"},"items":[9]}"#,
        )
        .unwrap();
        assert_eq!(
            merged["metadata"],
            json!({"name": "a", "labels": {"y": "2"}})
        );
        assert_eq!(merged["data"], json!({"k": "v", "k2": "v2"}));
        assert_eq!(merged["items"], json!([9]));
        let removed = apply_merge_patch(&config_map(), br#"{"data":null,"missing":null}"#).unwrap();
        assert!(removed.get("data").is_none() && removed.get("missing").is_none());
    }

    #[test]
    fn merge_patch_drops_nulls_inside_objects_it_writes_even_within_arrays() {
        let doc = json!({"spec": {"obj": {"a": 1}, "scalar": 1}});
        let merged = apply_merge_patch(
            &doc,
            concat!(
                r#"{"spec":{"new":{"a":null,"b":[null,{"c":null,"d":1}]},"#,
                r#""scalar":[{"e":null}],"obj":[{"f":null}]}}"#,
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(merged["spec"]["new"], json!({"b": [null, {"d": 1}]}));
        assert_eq!(merged["spec"]["scalar"], json!([{}]));
        // Over an object, the Go library keeps the patch's array as it is.
        assert_eq!(merged["spec"]["obj"], json!([{"f": null}]));
    }

    #[test]
    fn a_merge_patch_that_is_not_an_object_is_a_bad_request() {
        let error = |body: &[u8]| apply_merge_patch(&config_map(), body).unwrap_err();
        assert_eq!(
            error(b"null"),
            PatchError::bad_request("Invalid JSON Patch".to_owned())
        );
        assert_eq!(
            error(b"[]").message,
            "error decoding patch: json: cannot unmarshal array into Go value of type \
             map[string]interface {}"
        );
        assert_eq!(
            error(b"{").message,
            "error decoding patch: unexpected end of JSON input"
        );
        assert_eq!(error(b"{\"a\":1}}").code, 400);
    }

    #[test]
    fn patching_never_panics_on_random_bodies() {
        let pieces = [
            "[",
            "]",
            "{",
            "}",
            ",",
            ":",
            "\"op\"",
            "\"add\"",
            "\"remove\"",
            "\"replace\"",
            "\"move\"",
            "\"copy\"",
            "\"test\"",
            "\"path\"",
            "\"from\"",
            "\"value\"",
            "\"/a\"",
            "\"/a/0\"",
            "\"/a/-\"",
            "\"/a/-9\"",
            "\"\"",
            "\"/\"",
            "\"/b/c~1d\"",
            "null",
            "1",
            "-1",
            "true",
            "\"x\"",
            " ",
            "é",
        ];
        let doc = json!({"a": [1, {"b": null}], "b": {"c/d": 2}});
        let mut state: u64 = 0x9e37_79b9;
        for round in 0..800 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let count = (state >> 59) as usize;
            let mut body = String::new();
            let mut local = state;
            for _ in 0..count * 3 {
                local = local
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(round);
                body.push_str(pieces[(local >> 33) as usize % pieces.len()]);
            }
            let _ = apply_json_patch(&doc, body.as_bytes());
            let _ = apply_merge_patch(&doc, body.as_bytes());
            // Also well-formed operations with random paths.
            let op = pieces[6 + (state >> 40) as usize % 7].trim_matches('"');
            let path = pieces[16 + (state >> 20) as usize % 7].trim_matches('"');
            let from = pieces[16 + (state >> 10) as usize % 7].trim_matches('"');
            let patch = json!([{"op": op, "path": path, "from": from, "value": round}]);
            let _ = json_patch(&doc, patch);
        }
        let _ = apply_json_patch(&doc, &[0xff, 0xfe]);
        let _ = apply_merge_patch(&json!([1]), b"{\"a\":null}");
    }
}
