//! Label and field selectors, parsed and matched as the API server does.
//!
//! This module owns the `labelSelector` and `fieldSelector` query parameters: their syntax
//! (apimachinery's `labels.Parse` and `fields.ParseSelector`), the exact error texts the server
//! answers with in a 400 BadRequest Status, and matching against an object. It does not own
//! which fields a kind supports: callers check [`FieldSelector::requirements`] against their
//! kind and answer [`field_not_supported`] (or [`field_not_known`]) for the first stranger.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::validation::{go_quote, is_qualified_name, is_valid_label_value};

/// A parsed `labelSelector`: requirements that must all hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted and deduplicated, as apimachinery keeps them in a string set.
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    In,
    NotIn,
    Equals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

impl LabelSelector {
    /// Parses a label selector. The error is the message the API server puts in its 400 Status,
    /// e.g. `unable to parse requirement: <nil>: Invalid value: "a$": name part must consist of
    /// ...` or `found ',', expected: !, identifier, or 'end of string'`.
    pub(crate) fn parse(selector: &str) -> Result<Self, String> {
        let mut parser = Parser::new(selector);
        let mut requirements = parser.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { requirements })
    }

    /// True for the empty selector, which selects everything.
    pub(crate) fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object with these labels is selected. `!=` and `notin` select objects that
    /// lack the key; `>` and `<` need the label to be an integer.
    pub(crate) fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl Requirement {
    fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let value = labels.and_then(|l| l.get(&self.key)).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match (self.operator, value) {
            (Operator::In | Operator::Equals, Some(v)) => has(&v),
            (Operator::In | Operator::Equals, None) => false,
            (Operator::NotIn | Operator::NotEquals, Some(v)) => !has(&v),
            (Operator::NotIn | Operator::NotEquals, None) => true,
            (Operator::Exists, v) => v.is_some(),
            (Operator::DoesNotExist, v) => v.is_none(),
            (Operator::GreaterThan | Operator::LessThan, Some(v)) => {
                let (Ok(actual), Some(Ok(wanted))) = (
                    v.parse::<i64>(),
                    self.values.first().map(|w| w.parse::<i64>()),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
            (Operator::GreaterThan | Operator::LessThan, None) => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// A run of special characters that is no operator. apimachinery's lexer cannot actually
    /// produce one (every single special character is an operator), but it has the case.
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn special_token(symbol: &[u8]) -> Option<Token> {
    Some(match symbol {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

/// apimachinery's label-selector lexer, byte for byte: a NUL byte reads like the end of input.
struct Lexer<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn read(&mut self) -> u8 {
        match self.input.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn lex(&mut self) -> (Token, String) {
        let mut ch = self.read();
        while is_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special(ch) {
            self.scan_special()
        } else {
            self.scan_identifier()
        }
    }

    fn scan_identifier(&mut self) -> (Token, String) {
        let mut buffer = Vec::new();
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special(ch) || is_whitespace(ch) {
                self.unread();
                break;
            }
            buffer.push(ch);
        }
        let literal = String::from_utf8_lossy(&buffer).into_owned();
        let token = match literal.as_str() {
            "in" => Token::In,
            "notin" => Token::NotIn,
            _ => Token::Identifier,
        };
        (token, literal)
    }

    /// The longest operator made of the special characters ahead (`!=` over `!`).
    fn scan_special(&mut self) -> (Token, String) {
        let mut buffer = Vec::new();
        let mut last: Option<(Token, String)> = None;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if !is_special(ch) {
                self.unread();
                break;
            }
            buffer.push(ch);
            match special_token(&buffer) {
                Some(token) => last = Some((token, String::from_utf8_lossy(&buffer).into_owned())),
                None if last.is_some() => {
                    self.unread();
                    break;
                }
                None => {}
            }
        }
        last.unwrap_or_else(|| {
            let found = String::from_utf8_lossy(&buffer);
            (
                Token::Error,
                format!("error expected: keyword found '{found}'"),
            )
        })
    }
}

/// Whether `in` and `notin` read as operators or, where a value is expected, as plain words.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

impl Parser {
    fn new(selector: &str) -> Self {
        let mut lexer = Lexer {
            input: selector.as_bytes(),
            pos: 0,
        };
        let mut items = Vec::new();
        loop {
            let item = lexer.lex();
            let end = item.0 == Token::EndOfString;
            items.push(item);
            if end {
                break;
            }
        }
        Self { items, position: 0 }
    }

    fn lookahead(&self, context: Context) -> (Token, String) {
        let (token, literal) = self
            .items
            .get(self.position)
            .cloned()
            .unwrap_or((Token::EndOfString, String::new()));
        match token {
            Token::In | Token::NotIn if context == Context::Values => (Token::Identifier, literal),
            _ => (token, literal),
        }
    }

    fn consume(&mut self, context: Context) -> (Token, String) {
        let item = self.lookahead(context);
        self.position = (self.position + 1).min(self.items.len());
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let requirement = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{literal}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!(
                                "found '{literal}', expected: ',' or 'end of string'"
                            ));
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(operator) = inferred {
            return new_requirement(key, operator, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        new_requirement(key, operator, values.into_iter().collect())
    }

    /// The key, and the operator when the key alone makes the requirement (`k`, `!k`).
    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let (mut token, mut literal) = self.consume(Context::Values);
        let mut operator = None;
        if token == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        let errs = is_qualified_name(&literal);
        if !errs.is_empty() {
            // The parser has no field path, and Go prints a nil path as `<nil>`.
            return Err(format!(
                "<nil>: Invalid value: {}: {}",
                go_quote(&literal),
                errs.join("; ")
            ));
        }
        let (next, _) = self.lookahead(Context::Values);
        if matches!(next, Token::EndOfString | Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals | Token::DoubleEquals => Operator::Equals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(format!(
                    "found '{literal}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        })
    }

    fn parse_values(&mut self) -> Result<BTreeSet<String>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                let (token, _) = self.consume(Context::Values);
                if token != Token::ClosedPar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(values)
            }
            // `k in ()` holds the empty string.
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(format!(
                "found '{literal}', expected: ',', ')' or identifier"
            )),
        }
    }

    /// Comma-separated values, where an empty slot (`(a,,b)`, `(,a)`, `(a,)`) is the empty string.
    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, String> {
        let mut values = BTreeSet::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    values.insert(literal);
                    let (next, literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => {}
                        Token::ClosedPar => return Ok(values),
                        _ => return Err(format!("found '{literal}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.insert(String::new());
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        values.insert(String::new());
                        return Ok(values);
                    }
                    if next == Token::Comma {
                        values.insert(String::new());
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    /// The value after `=`, `==`, `!=`, `>` or `<`; nothing (`k=`) means the empty string.
    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, String> {
        let (next, _) = self.lookahead(Context::Values);
        if matches!(next, Token::EndOfString | Token::Comma) {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            return Ok(BTreeSet::from([literal]));
        }
        Err(format!("found '{literal}', expected: identifier"))
    }
}

/// apimachinery's `NewRequirement` checks, with its aggregate error formatting.
fn new_requirement(
    key: String,
    operator: Operator,
    values: Vec<String>,
) -> Result<Requirement, String> {
    let mut errs: Vec<String> = Vec::new();
    if matches!(operator, Operator::GreaterThan | Operator::LessThan) {
        for (i, value) in values.iter().enumerate() {
            if value.parse::<i64>().is_err() {
                errs.push(format!(
                    "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be \
                     an integer",
                    go_quote(value)
                ));
            }
        }
    }
    for (i, value) in values.iter().enumerate() {
        let value_errs = is_valid_label_value(value);
        if !value_errs.is_empty() {
            errs.push(format!(
                "values[{i}][{key}]: Invalid value: {}: {}",
                go_quote(value),
                value_errs.join("; ")
            ));
        }
    }
    // Like `ToAggregate`, a message that repeats is reported once.
    let mut unique: Vec<String> = Vec::new();
    for err in errs {
        if !unique.contains(&err) {
            unique.push(err);
        }
    }
    match unique.as_slice() {
        [] => Ok(Requirement {
            key,
            operator,
            values,
        }),
        [one] => Err(one.clone()),
        many => Err(format!("[{}]", many.join(", "))),
    }
}

/// A parsed `fieldSelector`: terms that must all hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldRequirement {
    /// The dotted field path, e.g. `metadata.name` (not validated by the parser).
    pub(crate) field: String,
    /// `=` and `==` (equal) or `!=`.
    pub(crate) operator: FieldOperator,
    /// The value with its `\,` `\=` `\\` escapes resolved.
    pub(crate) value: String,
}

/// How a field term compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldOperator {
    /// `=` or `==`.
    Equals,
    /// `!=`.
    NotEquals,
}

impl FieldSelector {
    /// Parses a field selector. The error is the message the API server puts in its 400 Status,
    /// e.g. `invalid selector: 'a'; can't understand 'a'`.
    pub(crate) fn parse(selector: &str) -> Result<Self, String> {
        let mut terms = split_terms(selector);
        // apimachinery sorts the raw terms, so errors name the first bad term in that order.
        terms.sort_unstable();
        let mut requirements = Vec::new();
        for term in terms.into_iter().filter(|t| !t.is_empty()) {
            let (field, operator, raw) = split_term(term).ok_or_else(|| {
                format!("invalid selector: '{selector}'; can't understand '{term}'")
            })?;
            let value = unescape_value(raw)?;
            requirements.push(FieldRequirement {
                field: field.to_owned(),
                operator,
                value,
            });
        }
        Ok(Self { requirements })
    }

    /// The terms, sorted as apimachinery keeps them, so the caller can check each field name
    /// against the kind's supported fields.
    pub(crate) fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// True for the empty selector, which selects everything.
    pub(crate) fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The name for a single-object watch: the value of the first `metadata.name=` term.
    #[cfg(test)]
    pub(crate) fn single_name(&self) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == "metadata.name" && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }

    /// Whether `object` is selected, reading each field by its dotted path (see [`field_value`]).
    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.matches_with(|field| field_value(object, field))
    }

    /// Whether an object is selected, with the caller resolving field values (for kinds whose
    /// field set is computed, like a Pod's `spec.hostNetwork` that defaults to `false`).
    pub(crate) fn matches_with(&self, mut value_of: impl FnMut(&str) -> String) -> bool {
        self.requirements.iter().all(|r| {
            let actual = value_of(&r.field);
            match r.operator {
                FieldOperator::Equals => actual == r.value,
                FieldOperator::NotEquals => actual != r.value,
            }
        })
    }
}

/// The value a field selector compares for `field` (a dotted path such as `spec.nodeName`): a
/// string as it is, another scalar by its JSON text (`true`, `3`), and a missing field or
/// `null` as the empty string, the way the apiserver's field sets hold them.
pub(crate) fn field_value(object: &Value, field: &str) -> String {
    let mut current = object;
    for segment in field.split('.') {
        match current.get(segment) {
            Some(next) => current = next,
            None => return String::new(),
        }
    }
    match current {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The 400 message for a field the kind does not support, as custom resources and built-ins with
/// their own field conversions (Pod, Secret, Event, Namespace, Node, ...) answer it.
pub(crate) fn field_not_supported(field: &str) -> String {
    format!("field label not supported: {field}")
}

/// The 400 message for a field of a built-in kind that only supports the two metadata fields
/// (ConfigMap, Deployment, Ingress, ...): apimachinery's default field-label conversion.
pub(crate) fn field_not_known(field: &str) -> String {
    format!(
        "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
        go_quote(field)
    )
}

/// Splits on commas that are not escaped; escapes are left in place for [`unescape_value`].
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits at the first operator; the field itself supports no escapes.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (symbol, operator) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(symbol) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

fn unescape_value(raw: &str) -> Result<String, String> {
    let mut value = String::with_capacity(raw.len());
    let mut in_slash = false;
    for c in raw.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                ));
            }
            value.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            // apimachinery prints the rune with %v, which is its number (61 for `=`).
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescapedRune character in value: {}",
                    c as u32
                ));
            }
            c => value.push(c),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_owned());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NAME_PART: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', \
        and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or \
        '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

    fn labels(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn selects(selector: &str, object_labels: Value) -> bool {
        let parsed = LabelSelector::parse(selector).unwrap_or_else(|e| panic!("{selector}: {e}"));
        parsed.matches(Some(&labels(object_labels)))
    }

    fn label_error(selector: &str) -> String {
        LabelSelector::parse(selector).expect_err(selector)
    }

    #[test]
    fn the_empty_selector_selects_everything() {
        for selector in ["", "  "] {
            let parsed = LabelSelector::parse(selector).unwrap();
            assert!(parsed.is_empty());
            assert!(parsed.matches(None));
        }
    }

    #[test]
    fn equality_and_existence_requirements_match_labels() {
        let object = json!({"app": "web", "tier": "front"});
        assert!(selects("app=web", object.clone()));
        assert!(selects("app==web,tier", object.clone()));
        assert!(selects("!release", object.clone()));
        assert!(!selects("app=db", object.clone()));
        assert!(!selects("!app", object.clone()));
        assert!(!selects("release", object.clone()));
        assert!(selects("release=", json!({"release": ""})));
    }

    #[test]
    fn not_equal_matches_objects_without_the_key() {
        assert!(selects("app!=web", json!({})));
        assert!(selects("app!=web", json!({"app": "db"})));
        assert!(!selects("app!=web", json!({"app": "web"})));
        assert!(LabelSelector::parse("app!=web").unwrap().matches(None));
    }

    #[test]
    fn notin_matches_objects_without_the_key() {
        assert!(selects("env notin (prod,staging)", json!({})));
        assert!(selects("env notin (prod,staging)", json!({"env": "dev"})));
        assert!(!selects("env notin (prod,staging)", json!({"env": "prod"})));
    }

    #[test]
    fn in_matches_any_listed_value_and_empty_slots_are_the_empty_string() {
        assert!(selects("env in (prod, staging)", json!({"env": "staging"})));
        assert!(!selects("env in (prod)", json!({})));
        assert!(selects("env in ()", json!({"env": ""})));
        assert!(selects("env in (a,,b)", json!({"env": ""})));
        assert!(selects("env in (a,)", json!({"env": ""})));
        assert!(!selects("env in (a,b)", json!({"env": ""})));
    }

    #[test]
    fn whitespace_is_tolerated_around_operators_and_values() {
        let object = json!({"a": "b", "c": "x"});
        assert!(selects(" a = b ,\tc in ( x , y ) ,\n!d ", object.clone()));
        assert!(selects("a!=c,c notin(y)", object));
    }

    #[test]
    fn in_and_notin_are_plain_words_where_a_value_is_expected() {
        assert!(selects("in=notin", json!({"in": "notin"})));
        assert!(selects("x in (in,notin)", json!({"x": "in"})));
    }

    #[test]
    fn greater_and_less_than_compare_integer_labels() {
        assert!(selects("replicas>2", json!({"replicas": "3"})));
        assert!(selects("replicas < 10", json!({"replicas": "3"})));
        assert!(!selects("replicas>2", json!({"replicas": "2"})));
        assert!(!selects("replicas>2", json!({"replicas": "three"})));
        assert!(!selects("replicas>2", json!({})));
    }

    #[test]
    fn an_invalid_key_is_reported_with_a_nil_path_as_the_api_server_does() {
        assert_eq!(
            label_error("a$"),
            format!("unable to parse requirement: <nil>: Invalid value: \"a$\": {NAME_PART}")
        );
        // kubectl's `-l "app: nginx"` typo, as it comes back from a real server.
        assert_eq!(
            label_error("app: nginx"),
            format!("unable to parse requirement: <nil>: Invalid value: \"app:\": {NAME_PART}")
        );
        assert_eq!(
            label_error("app.kubernetes_io/name=x"),
            "unable to parse requirement: <nil>: Invalid value: \"app.kubernetes_io/name\": prefix \
             part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
             characters, '-' or '.', and must start and end with an alphanumeric character (e.g. \
             'example.com', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
    }

    #[test]
    fn syntax_errors_carry_apimachinery_parser_messages() {
        let cases = [
            (
                ",",
                "found ',', expected: !, identifier, or 'end of string'",
            ),
            ("a,", "found '', expected: identifier after ','"),
            (
                "a b",
                "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
            ),
            ("a=b c", "found 'c', expected: ',' or 'end of string'"),
            (
                "a in b",
                "unable to parse requirement: found 'b' expected: '('",
            ),
            (
                "a in (b c)",
                "unable to parse requirement: found 'c', expected: ',' or ')'",
            ),
            (
                "a in (b",
                "unable to parse requirement: found '', expected: ',' or ')'",
            ),
            (
                "a in =",
                "unable to parse requirement: found '=' expected: '('",
            ),
            (
                "a in (=)",
                "unable to parse requirement: found '=', expected: ',', ')' or identifier",
            ),
            (
                "a==(",
                "unable to parse requirement: found '(', expected: identifier",
            ),
            (
                "!",
                "unable to parse requirement: found '', expected: identifier",
            ),
            ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ];
        for (selector, message) in cases {
            assert_eq!(label_error(selector), message, "{selector:?}");
        }
    }

    #[test]
    fn values_are_validated_like_label_values() {
        assert_eq!(
            label_error("a>b"),
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' \
             operators, the value must be an integer"
        );
        let bad_value = label_error("a=b$");
        assert!(
            bad_value.starts_with(
                "unable to parse requirement: values[0][a]: Invalid value: \"b$\": a valid label \
                 must be an empty string"
            ),
            "{bad_value}"
        );
        // `-1` is an integer but no label value, so `>` cannot take it.
        assert!(label_error("a>-1").contains("values[0][a]: Invalid value: \"-1\""));
        let both = label_error("a in (x$,y$)");
        assert!(
            both.starts_with("unable to parse requirement: [values[0][a]:"),
            "{both}"
        );
        assert!(
            both.contains(", values[1][a]: Invalid value: \"y$\""),
            "{both}"
        );
    }

    #[test]
    fn field_selectors_match_dotted_paths() {
        let pod = json!({
            "metadata": {"name": "web-1", "namespace": "prod"},
            "spec": {"nodeName": "node-a", "replicas": 3, "unschedulable": true},
            "status": {"phase": "Running"},
        });
        let matches = |s: &str| FieldSelector::parse(s).unwrap().matches(&pod);
        assert!(matches("metadata.name=web-1,metadata.namespace==prod"));
        assert!(matches("spec.nodeName=node-a,status.phase!=Pending"));
        assert!(!matches("status.phase=Pending"));
        assert!(matches("spec.replicas=3,spec.unschedulable=true"));
        let event = json!({"type": "Warning", "involvedObject": {"kind": "Pod"}});
        let parsed = FieldSelector::parse("type=Warning,involvedObject.kind=Pod").unwrap();
        assert!(parsed.matches(&event));
    }

    #[test]
    fn a_missing_field_compares_as_the_empty_string() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": null}});
        assert!(
            FieldSelector::parse("spec.nodeName=")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            !FieldSelector::parse("spec.nodeName!=")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            FieldSelector::parse("status.phase!=Running")
                .unwrap()
                .matches(&pod)
        );
        let computed = FieldSelector::parse("spec.hostNetwork=false").unwrap();
        assert!(computed.matches_with(|_| "false".to_owned()));
    }

    #[test]
    fn escaped_commas_equals_and_backslashes_belong_to_the_value() {
        let parsed = FieldSelector::parse(r"metadata.name=a\,b\=c\\d,type=x").unwrap();
        let values: Vec<&str> = parsed
            .requirements()
            .iter()
            .map(|r| r.value.as_str())
            .collect();
        assert_eq!(values, [r"a,b=c\d", "x"]);
        assert!(parsed.matches(&json!({"metadata": {"name": r"a,b=c\d"}, "type": "x"})));
    }

    #[test]
    fn field_selector_errors_carry_apimachinery_messages() {
        let error = |s: &str| FieldSelector::parse(s).expect_err(s);
        assert_eq!(error("a"), "invalid selector: 'a'; can't understand 'a'");
        // Terms are sorted before parsing, so the first bad one in that order is reported.
        assert_eq!(
            error("z,b=1,a"),
            "invalid selector: 'z,b=1,a'; can't understand 'a'"
        );
        assert_eq!(
            error("a=b=c"),
            "invalid field selector: unescapedRune character in value: 61"
        );
        assert_eq!(
            error(r"a=b\x"),
            r"invalid field selector: invalid escape sequence: \x"
        );
        assert_eq!(
            error(r"a=b\"),
            r"invalid field selector: invalid escape sequence: \"
        );
        assert_eq!(
            error("a==b,c=d,e"),
            "invalid selector: 'a==b,c=d,e'; can't understand 'e'"
        );
    }

    #[test]
    fn requirements_come_sorted_for_field_checks() {
        let parsed = FieldSelector::parse("spec.foo=1,,metadata.name!=x").unwrap();
        let fields: Vec<(&str, FieldOperator)> = parsed
            .requirements()
            .iter()
            .map(|r| (r.field.as_str(), r.operator))
            .collect();
        assert_eq!(
            fields,
            [
                ("metadata.name", FieldOperator::NotEquals),
                ("spec.foo", FieldOperator::Equals)
            ]
        );
        assert!(FieldSelector::parse("").unwrap().is_empty());
        assert_eq!(
            field_not_supported("spec.foo"),
            "field label not supported: spec.foo"
        );
        assert_eq!(
            field_not_known("foo.bar"),
            "\"foo.bar\" is not a known field selector: only \"metadata.name\", \
             \"metadata.namespace\""
        );
    }

    #[test]
    fn single_name_is_the_metadata_name_equality() {
        let name = |s: &str| {
            FieldSelector::parse(s)
                .unwrap()
                .single_name()
                .map(str::to_owned)
        };
        assert_eq!(name("metadata.name=web"), Some("web".to_owned()));
        assert_eq!(
            name("metadata.namespace=a,metadata.name==web"),
            Some("web".to_owned())
        );
        assert_eq!(name("metadata.name!=web"), None);
        assert_eq!(name(""), None);
    }

    #[test]
    fn parsers_never_panic_on_random_input() {
        let alphabet: Vec<char> = "ab=!(),<> \\\tin notin\0é$-./".chars().collect();
        let mut state: u64 = 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let object = json!({"metadata": {"name": "a", "labels": {"a": "b", "in": "1"}}});
        for _ in 0..600 {
            let len = (next() % 40) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if let Ok(parsed) = LabelSelector::parse(&text) {
                let _ = parsed.matches(object["metadata"]["labels"].as_object());
            }
            if let Ok(parsed) = FieldSelector::parse(&text) {
                let _ = parsed.matches(&object);
                let _ = parsed.single_name();
            }
        }
    }
}
