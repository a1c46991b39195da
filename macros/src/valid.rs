//! The rules that a value or several attributes together must follow, checked before any code
//! is written so that every mistake is reported at once, at the tokens at fault.

use proc_macro2::Span;
use syn::{DeriveInput, LitStr};

use crate::attr::{self, Container, Field, PrintColumn, Serde, Validation};
use crate::case::{did_you_mean, pluralize, rename, upper_camel};
use crate::ctxt::Ctxt;

/// A checked custom resource, ready to expand.
pub(crate) struct Resource {
    pub(crate) attrs: Container,
    pub(crate) group: LitStr,
    pub(crate) version: LitStr,
    pub(crate) kind: LitStr,
    pub(crate) plural: String,
    pub(crate) singular: String,
    /// Field-level rules, by the field's serialized name.
    pub(crate) field_validations: Vec<(String, Validation)>,
    pub(crate) doc: Option<String>,
}

const COLUMN_TYPES: &[&str] = &["integer", "number", "string", "boolean", "date"];
const COLUMN_FORMATS: &[&str] = &[
    "int32",
    "int64",
    "float",
    "double",
    "byte",
    "binary",
    "date",
    "date-time",
    "password",
];

/// Check the input and its attributes, reporting every problem found.
pub(crate) fn check(input: &DeriveInput) -> syn::Result<Resource> {
    let mut cx = Ctxt::default();
    let fields = match &input.data {
        syn::Data::Struct(s) => match &s.fields {
            syn::Fields::Named(named) => Some(named),
            syn::Fields::Unnamed(_) | syn::Fields::Unit => {
                cx.error_spanned_by(
                    &input.ident,
                    "CustomResource needs a struct with named fields (the spec, as `{ field: Type, .. }`); \
                     tuple and unit structs have no field names to put in the schema",
                );
                None
            }
        },
        syn::Data::Enum(e) => {
            cx.error_spanned_by(
                e.enum_token,
                "CustomResource can only be derived for a struct (the spec); put this enum in a field of a spec struct",
            );
            None
        }
        syn::Data::Union(u) => {
            cx.error_spanned_by(
                u.union_token,
                "CustomResource can only be derived for a struct (the spec), not a union",
            );
            None
        }
    };
    if !input.generics.params.is_empty() {
        cx.error_spanned_by(
            &input.generics,
            "CustomResource does not support generic spec structs; a CRD has one schema, so use concrete types",
        );
    }
    let attrs = Container::from_attrs(&mut cx, &input.attrs);
    let anchor = attrs.first.unwrap_or_else(|| input.ident.span());

    let group = required(&mut cx, &attrs.group, "group", "example.com", anchor);
    let version = required(&mut cx, &attrs.version, "version", "v1", anchor);
    let kind = required(&mut cx, &attrs.kind, "kind", "Widget", anchor);
    if let Some(g) = &group {
        dns_subdomain(&mut cx, g);
    }
    if let Some(v) = &version {
        dns_label(&mut cx, v, "version", "v1alpha1");
    }
    if let Some(k) = &kind {
        upper_camel_case(&mut cx, k);
        if input.ident == k.value() {
            cx.error_spanned_by(
                &input.ident,
                format!(
                    "the spec struct cannot be named `{}`: the derive generates the `{}` type itself; rename this struct to `{}Spec`",
                    k.value(),
                    k.value(),
                    k.value()
                ),
            );
        }
    }
    for (lit, what) in [(&attrs.plural, "plural"), (&attrs.singular, "singular")] {
        if let Some(l) = lit {
            dns_label(&mut cx, l, what, "widgets");
        }
    }
    for s in &attrs.shortnames {
        dns_label(&mut cx, s, "shortname", "wd");
    }
    for c in &attrs.categories {
        dns_label(&mut cx, c, "category", "all");
    }
    for col in &attrs.printcolumns {
        printcolumn(&mut cx, col);
    }
    if let Some(scale) = &attrs.scale {
        for (lit, what, example) in [
            (
                &scale.spec_replicas_path,
                "spec_replicas_path",
                ".spec.replicas",
            ),
            (
                &scale.status_replicas_path,
                "status_replicas_path",
                ".status.replicas",
            ),
        ] {
            match lit {
                None => cx.error_at(
                    scale.span,
                    format!("`scale` needs `{what}`, such as `{what} = \"{example}\"`"),
                ),
                Some(l) => json_path(&mut cx, l, what, Some(prefix(example))),
            }
        }
        if let Some(l) = &scale.label_selector_path {
            json_path(&mut cx, l, "label_selector_path", None);
        }
        if attrs.status.is_none() {
            cx.error_at(
                scale.span,
                "the scale subresource reads the replica count from the status; add `status = YourStatus`",
            );
        }
    }
    for s in &attrs.selectable {
        json_path(&mut cx, s, "selectable", None);
    }
    for v in &attrs.validations {
        validation(&mut cx, v);
    }
    if let Some(d) = &attrs.deprecated
        && let Some(w) = &d.warning
        && w.value().trim().is_empty()
    {
        cx.error_spanned_by(
            w,
            "the deprecation warning is empty; write one or use plain `deprecated`",
        );
    }

    let mut field_validations = Vec::new();
    if let Some(fields) = fields {
        let container_serde = Serde::from_attrs(&input.attrs);
        for field in &fields.named {
            let f = Field::from_attrs(&mut cx, &field.attrs);
            if f.validations.is_empty() {
                continue;
            }
            let serde = Serde::from_attrs(&field.attrs);
            if serde.flatten {
                cx.error_spanned_by(
                    field.ident.as_ref(),
                    "a validation on a `#[serde(flatten)]` field has no property to go on; put it on the fields of the flattened struct's own type or on the spec",
                );
                continue;
            }
            let ident = field
                .ident
                .as_ref()
                .map(|i| i.to_string().trim_start_matches("r#").to_string())
                .unwrap_or_default();
            let name = serde.rename.unwrap_or_else(|| {
                container_serde
                    .rename_all
                    .as_deref()
                    .and_then(|rule| rename(&ident, rule))
                    .unwrap_or(ident)
            });
            for v in f.validations {
                validation(&mut cx, &v);
                field_validations.push((name.clone(), v));
            }
        }
    }

    cx.check()?;
    let (Some(group), Some(version), Some(kind)) = (group, version, kind) else {
        // Already reported above; `cx.check()` returned them.
        return Err(syn::Error::new(anchor, "missing group, version or kind"));
    };
    let singular = attrs
        .singular
        .as_ref()
        .map_or_else(|| kind.value().to_ascii_lowercase(), LitStr::value);
    let plural = attrs.plural.as_ref().map_or_else(
        || pluralize(&kind.value().to_ascii_lowercase()),
        LitStr::value,
    );
    Ok(Resource {
        doc: attr::doc(&input.attrs),
        attrs,
        group,
        version,
        kind,
        plural,
        singular,
        field_validations,
    })
}

fn required(
    cx: &mut Ctxt,
    lit: &Option<LitStr>,
    name: &str,
    example: &str,
    anchor: Span,
) -> Option<LitStr> {
    if lit.is_none() {
        cx.error_at(
            anchor,
            format!("missing `{name}`; add `#[windlass({name} = \"{example}\")]`"),
        );
    }
    lit.clone()
}

fn prefix(example: &str) -> &str {
    // ".spec.replicas" -> ".spec."
    let end = example[1..].find('.').map_or(example.len(), |i| i + 2);
    &example[..end]
}

/// A DNS-1123 subdomain with at least one dot, as the apiserver requires of a CRD's group.
fn dns_subdomain(cx: &mut Ctxt, lit: &LitStr) {
    let g = lit.value();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let why = if g.len() > 253 {
        Some("it is longer than 253 characters".to_string())
    } else if !g.split('.').all(label_ok) {
        Some("it must consist of lowercase letters, digits, '-' and '.', and each dot-separated part must start and end with a letter or digit".to_string())
    } else if !g.contains('.') {
        Some("the API server requires a group with at least one dot".to_string())
    } else {
        None
    };
    if let Some(why) = why {
        let suggestion = g.to_ascii_lowercase().replace(['_', ' '], "-");
        let suggestion = if suggestion.contains('.') {
            suggestion
        } else {
            format!("{suggestion}.example.com")
        };
        cx.error_spanned_by(
            lit,
            format!("group `{g}` is not a DNS subdomain: {why}; for example `{suggestion}`"),
        );
    }
}

/// A DNS-1035 label: what the apiserver requires of versions and resource names.
fn dns_label(cx: &mut Ctxt, lit: &LitStr, what: &str, example: &str) {
    let v = lit.value();
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.starts_with(|c: char| c.is_ascii_lowercase())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.ends_with('-');
    if !ok {
        cx.error_spanned_by(
            lit,
            format!(
                "{what} `{v}` is invalid: it must be at most 63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit, like `{example}`"
            ),
        );
    }
}

fn upper_camel_case(cx: &mut Ctxt, lit: &LitStr) {
    let k = lit.value();
    let ok = k.starts_with(|c: char| c.is_ascii_uppercase())
        && k.chars().all(|c| c.is_ascii_alphanumeric());
    if !ok {
        let suggestion = upper_camel(&k);
        let hint = if suggestion.is_empty() {
            "like `Widget`".to_string()
        } else {
            format!("write `{suggestion}`")
        };
        cx.error_spanned_by(
            lit,
            format!("kind `{k}` must be UpperCamelCase (ASCII letters and digits, starting with a capital); {hint}"),
        );
    }
}

/// A simple JSON path: starts with a dot, no array indexes or filters.
fn json_path(cx: &mut Ctxt, lit: &LitStr, what: &str, under: Option<&str>) {
    let p = lit.value();
    if !p.starts_with('.') || p.len() < 2 || p.contains(['[', ']', '*', '?', ' ']) {
        cx.error_spanned_by(
            lit,
            format!("{what} `{p}` is not a simple JSON path; write it like `.spec.replicas`"),
        );
    } else if let Some(under) = under
        && !p.starts_with(under)
    {
        cx.error_spanned_by(lit, format!("{what} `{p}` must be under `{under}`"));
    }
}

/// A printer column's JSON path. The API server only requires a leading dot there (unlike
/// scale and selectable paths), and kubectl evaluates array indexes and filters such as
/// `.status.conditions[?(@.type=="Ready")].status`, so those are allowed; brackets must pair.
fn column_json_path(cx: &mut Ctxt, lit: &LitStr) {
    let p = lit.value();
    let mut depth = 0i32;
    for c in p.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            break;
        }
    }
    if !p.starts_with('.') || p.len() < 2 || depth != 0 {
        cx.error_spanned_by(
            lit,
            format!(
                "json_path `{p}` is not a JSON path the API server accepts; write it like `.spec.replicas` or `.status.conditions[?(@.type==\"Ready\")].status`"
            ),
        );
    }
}

fn printcolumn(cx: &mut Ctxt, col: &PrintColumn) {
    for (lit, what, example) in [
        (&col.name, "name", "\"Replicas\""),
        (&col.type_, "type", "\"integer\""),
        (&col.json_path, "json_path", "\".spec.replicas\""),
    ] {
        if lit.is_none() {
            cx.error_at(
                col.span,
                format!("`printcolumn` needs `{what}`, such as `{what} = {example}`"),
            );
        }
    }
    if let Some(t) = &col.type_ {
        let v = t.value();
        if !COLUMN_TYPES.contains(&v.as_str()) {
            let hint = match did_you_mean(&v, COLUMN_TYPES) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("use one of: {}", COLUMN_TYPES.join(", ")),
            };
            cx.error_spanned_by(t, format!("invalid printcolumn type `{v}`; {hint}"));
        }
    }
    if let Some(f) = &col.format {
        let v = f.value();
        if !COLUMN_FORMATS.contains(&v.as_str()) {
            cx.error_spanned_by(
                f,
                format!(
                    "invalid printcolumn format `{v}`; use one of: {}",
                    COLUMN_FORMATS.join(", ")
                ),
            );
        }
    }
    if let Some(p) = &col.json_path {
        column_json_path(cx, p);
    }
    if let Some(p) = &col.priority
        && p.base10_parse::<i32>().map_or(true, |n| n < 0)
    {
        cx.error_spanned_by(
            p,
            "priority must be a non-negative integer (0 shows the column always)",
        );
    }
}

fn validation(cx: &mut Ctxt, v: &Validation) {
    match &v.rule {
        None => cx.error_at(
            v.span,
            "`validation` needs a `rule`, such as `rule = \"self.replicas >= 0\"`",
        ),
        Some(rule) if rule.value().trim().is_empty() => {
            cx.error_spanned_by(rule, "the validation rule is empty; write a CEL expression");
        }
        Some(rule) if v.message.is_none() && rule.value().contains(['\n', '\r']) => {
            cx.error_spanned_by(rule, "a rule with line breaks needs a `message`");
        }
        Some(_) => {}
    }
    if let Some(m) = &v.message {
        let text = m.value();
        if text.trim().is_empty() {
            cx.error_spanned_by(
                m,
                "the validation message is empty; write one or leave it out",
            );
        } else if text.contains(['\n', '\r']) {
            cx.error_spanned_by(m, "the validation message must not contain line breaks");
        }
    }
}
