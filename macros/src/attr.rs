//! Reading `#[windlass(...)]` on the spec struct and its fields into a typed model that keeps
//! every value's span, so `valid.rs` can point at the tokens at fault.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::{Attribute, LitBool, LitInt, LitStr, Token};

use crate::case::did_you_mean;
use crate::ctxt::Ctxt;

/// The container attributes, in the order the docs list them.
pub(crate) const CONTAINER_ATTRS: &[&str] = &[
    "group",
    "version",
    "kind",
    "namespaced",
    "status",
    "plural",
    "singular",
    "shortname",
    "category",
    "printcolumn",
    "scale",
    "selectable",
    "validation",
    "storage",
    "served",
    "deprecated",
    "crate",
];

const FIELD_ATTRS: &[&str] = &["validation"];
const PRINTCOLUMN_ATTRS: &[&str] = &[
    "name",
    "type",
    "json_path",
    "description",
    "priority",
    "format",
];
const SCALE_ATTRS: &[&str] = &[
    "spec_replicas_path",
    "status_replicas_path",
    "label_selector_path",
];
const VALIDATION_ATTRS: &[&str] = &["rule", "message"];
const DEPRECATED_ATTRS: &[&str] = &["warning"];

/// `#[windlass(...)]` on the spec struct.
#[derive(Default)]
pub(crate) struct Container {
    /// The first `#[windlass]` attribute, to point at when something is missing.
    pub(crate) first: Option<Span>,
    pub(crate) group: Option<LitStr>,
    pub(crate) version: Option<LitStr>,
    pub(crate) kind: Option<LitStr>,
    pub(crate) namespaced: Option<Span>,
    pub(crate) status: Option<syn::Type>,
    pub(crate) plural: Option<LitStr>,
    pub(crate) singular: Option<LitStr>,
    pub(crate) shortnames: Vec<LitStr>,
    pub(crate) categories: Vec<LitStr>,
    pub(crate) printcolumns: Vec<PrintColumn>,
    pub(crate) scale: Option<Scale>,
    pub(crate) selectable: Vec<LitStr>,
    pub(crate) validations: Vec<Validation>,
    pub(crate) storage: Option<LitBool>,
    pub(crate) served: Option<LitBool>,
    pub(crate) deprecated: Option<Deprecated>,
    pub(crate) crate_path: Option<syn::Path>,
}

/// `printcolumn(name = .., type = .., json_path = .., ...)`.
pub(crate) struct PrintColumn {
    pub(crate) span: Span,
    pub(crate) name: Option<LitStr>,
    pub(crate) type_: Option<LitStr>,
    pub(crate) json_path: Option<LitStr>,
    pub(crate) description: Option<LitStr>,
    pub(crate) priority: Option<LitInt>,
    pub(crate) format: Option<LitStr>,
}

/// `scale(spec_replicas_path = .., status_replicas_path = .., label_selector_path = ..)`.
pub(crate) struct Scale {
    pub(crate) span: Span,
    pub(crate) spec_replicas_path: Option<LitStr>,
    pub(crate) status_replicas_path: Option<LitStr>,
    pub(crate) label_selector_path: Option<LitStr>,
}

/// `validation = "rule"` or `validation(rule = "..", message = "..")`.
pub(crate) struct Validation {
    pub(crate) span: Span,
    pub(crate) rule: Option<LitStr>,
    pub(crate) message: Option<LitStr>,
}

/// `deprecated`, `deprecated = "warning"` or `deprecated(warning = "..")`.
pub(crate) struct Deprecated {
    pub(crate) warning: Option<LitStr>,
}

/// `#[windlass(...)]` on one field of the spec struct.
#[derive(Default)]
pub(crate) struct Field {
    pub(crate) validations: Vec<Validation>,
}

/// "unknown attribute `x`", with a suggestion when `x` looks like a typo.
fn unknown(cx: &mut Ctxt, meta: &ParseNestedMeta<'_>, what: &str, known: &[&str]) {
    let name = meta
        .path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_else(|| quote::ToTokens::to_token_stream(&meta.path).to_string());
    let hint = match did_you_mean(&name, known) {
        Some(close) => format!("did you mean `{close}`?"),
        None => format!("expected one of: {}", known.join(", ")),
    };
    cx.error_spanned_by(&meta.path, format!("unknown {what} `{name}`; {hint}"));
    skip_value(meta);
}

/// Consume whatever follows an attribute name we report and ignore, so parsing goes on.
fn skip_value(meta: &ParseNestedMeta<'_>) {
    let _ = meta.input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            if matches!(&tt, proc_macro2::TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    });
}

fn name_of(meta: &ParseNestedMeta<'_>) -> String {
    meta.path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Set a once-only value, reporting a duplicate at the second one.
fn set_once<T>(cx: &mut Ctxt, slot: &mut Option<T>, value: T, meta: &ParseNestedMeta<'_>) {
    if slot.is_some() {
        cx.error_spanned_by(
            &meta.path,
            format!("duplicate `{}` attribute; give it once", name_of(meta)),
        );
    } else {
        *slot = Some(value);
    }
}

fn string(cx: &mut Ctxt, meta: &ParseNestedMeta<'_>) -> Option<LitStr> {
    let name = name_of(meta);
    match meta.value().and_then(|input| input.parse()) {
        Ok(lit) => Some(lit),
        Err(_) => {
            cx.error_spanned_by(
                &meta.path,
                format!("expected `{name} = \"...\"` with a string literal"),
            );
            skip_value(meta);
            None
        }
    }
}

/// A flag that may also be written `name = true|false`.
fn boolean(cx: &mut Ctxt, meta: &ParseNestedMeta<'_>) -> Option<LitBool> {
    if !meta.input.peek(Token![=]) {
        return Some(LitBool::new(true, meta.path.span_or_call_site()));
    }
    let name = name_of(meta);
    match meta.value().and_then(|input| input.parse()) {
        Ok(lit) => Some(lit),
        Err(_) => {
            cx.error_spanned_by(
                &meta.path,
                format!("expected `{name}` or `{name} = true|false`"),
            );
            skip_value(meta);
            None
        }
    }
}

trait SpanOf {
    fn span_or_call_site(&self) -> Span;
}

impl SpanOf for syn::Path {
    fn span_or_call_site(&self) -> Span {
        self.segments
            .first()
            .map(|s| s.ident.span())
            .unwrap_or_else(Span::call_site)
    }
}

/// Run `each` over every `name = value` / `name(...)` inside a parenthesized list.
fn nested(
    cx: &mut Ctxt,
    meta: &ParseNestedMeta<'_>,
    mut each: impl FnMut(&mut Ctxt, &ParseNestedMeta<'_>),
) {
    let name = name_of(meta);
    if !meta.input.peek(syn::token::Paren) {
        cx.error_spanned_by(&meta.path, format!("expected `{name}(...)`"));
        skip_value(meta);
        return;
    }
    let result = meta.parse_nested_meta(|inner| {
        each(cx, &inner);
        Ok(())
    });
    if let Err(err) = result {
        cx.push(err);
    }
}

fn validation(cx: &mut Ctxt, meta: &ParseNestedMeta<'_>) -> Validation {
    let span = meta.path.span_or_call_site();
    let mut out = Validation {
        span,
        rule: None,
        message: None,
    };
    if meta.input.peek(Token![=]) {
        out.rule = string(cx, meta);
        return out;
    }
    nested(cx, meta, |cx, inner| match name_of(inner).as_str() {
        "rule" => {
            if let Some(v) = string(cx, inner) {
                set_once(cx, &mut out.rule, v, inner);
            }
        }
        "message" => {
            if let Some(v) = string(cx, inner) {
                set_once(cx, &mut out.message, v, inner);
            }
        }
        _ => unknown(cx, inner, "validation attribute", VALIDATION_ATTRS),
    });
    out
}

fn printcolumn(cx: &mut Ctxt, meta: &ParseNestedMeta<'_>) -> PrintColumn {
    let mut col = PrintColumn {
        span: meta.path.span_or_call_site(),
        name: None,
        type_: None,
        json_path: None,
        description: None,
        priority: None,
        format: None,
    };
    nested(cx, meta, |cx, inner| {
        let name = name_of(inner);
        let slot = match name.as_str() {
            "name" => &mut col.name,
            "type" => &mut col.type_,
            "json_path" => &mut col.json_path,
            "description" => &mut col.description,
            "format" => &mut col.format,
            "priority" => {
                match inner.value().and_then(|input| input.parse::<LitInt>()) {
                    Ok(lit) => set_once(cx, &mut col.priority, lit, inner),
                    Err(_) => {
                        cx.error_spanned_by(
                            &inner.path,
                            "expected `priority = N` with an integer (0 shows the column always)",
                        );
                        skip_value(inner);
                    }
                }
                return;
            }
            _ => return unknown(cx, inner, "printcolumn attribute", PRINTCOLUMN_ATTRS),
        };
        if let Some(v) = string(cx, inner) {
            set_once(cx, slot, v, inner);
        }
    });
    col
}

fn scale(cx: &mut Ctxt, meta: &ParseNestedMeta<'_>) -> Scale {
    let mut scale = Scale {
        span: meta.path.span_or_call_site(),
        spec_replicas_path: None,
        status_replicas_path: None,
        label_selector_path: None,
    };
    nested(cx, meta, |cx, inner| {
        let slot = match name_of(inner).as_str() {
            "spec_replicas_path" => &mut scale.spec_replicas_path,
            "status_replicas_path" => &mut scale.status_replicas_path,
            "label_selector_path" => &mut scale.label_selector_path,
            _ => return unknown(cx, inner, "scale attribute", SCALE_ATTRS),
        };
        if let Some(v) = string(cx, inner) {
            set_once(cx, slot, v, inner);
        }
    });
    scale
}

fn deprecated(cx: &mut Ctxt, meta: &ParseNestedMeta<'_>) -> Deprecated {
    let mut out = Deprecated { warning: None };
    if meta.input.peek(Token![=]) {
        out.warning = string(cx, meta);
    } else if meta.input.peek(syn::token::Paren) {
        nested(cx, meta, |cx, inner| match name_of(inner).as_str() {
            "warning" => {
                if let Some(v) = string(cx, inner) {
                    set_once(cx, &mut out.warning, v, inner);
                }
            }
            _ => unknown(cx, inner, "deprecated attribute", DEPRECATED_ATTRS),
        });
    }
    out
}

/// `status = Type` or `status = "Type"`.
fn type_value(cx: &mut Ctxt, meta: &ParseNestedMeta<'_>) -> Option<syn::Type> {
    let parsed = meta.value().and_then(|input| {
        if input.peek(LitStr) {
            input.parse::<LitStr>()?.parse::<syn::Type>()
        } else {
            input.parse::<syn::Type>()
        }
    });
    match parsed {
        Ok(ty) => Some(ty),
        Err(_) => {
            cx.error_spanned_by(
                &meta.path,
                "expected `status = TypeName`, the status struct",
            );
            skip_value(meta);
            None
        }
    }
}

/// `crate = path` or `crate = "path"`.
fn path_value(cx: &mut Ctxt, meta: &ParseNestedMeta<'_>) -> Option<syn::Path> {
    let parsed = meta.value().and_then(|input| {
        if input.peek(LitStr) {
            input.parse::<LitStr>()?.parse::<syn::Path>()
        } else {
            syn::Path::parse_mod_style(input)
        }
    });
    match parsed {
        Ok(path) => Some(path),
        Err(_) => {
            cx.error_spanned_by(
                &meta.path,
                "expected `crate = path::to::windlass`, where windlass is re-exported",
            );
            skip_value(meta);
            None
        }
    }
}

impl Container {
    /// Read every `#[windlass(...)]` of the spec struct.
    pub(crate) fn from_attrs(cx: &mut Ctxt, attrs: &[Attribute]) -> Self {
        let mut c = Container::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("windlass")) {
            c.first
                .get_or_insert_with(|| attr.path().span_or_call_site());
            let result = attr.parse_nested_meta(|meta| {
                c.one(cx, &meta);
                Ok(())
            });
            if let Err(err) = result {
                cx.push(err);
            }
        }
        c
    }

    fn one(&mut self, cx: &mut Ctxt, meta: &ParseNestedMeta<'_>) {
        match name_of(meta).as_str() {
            "group" => {
                if let Some(v) = string(cx, meta) {
                    set_once(cx, &mut self.group, v, meta);
                }
            }
            "version" => {
                if let Some(v) = string(cx, meta) {
                    set_once(cx, &mut self.version, v, meta);
                }
            }
            "kind" => {
                if let Some(v) = string(cx, meta) {
                    set_once(cx, &mut self.kind, v, meta);
                }
            }
            "plural" => {
                if let Some(v) = string(cx, meta) {
                    set_once(cx, &mut self.plural, v, meta);
                }
            }
            "singular" => {
                if let Some(v) = string(cx, meta) {
                    set_once(cx, &mut self.singular, v, meta);
                }
            }
            "namespaced" => {
                if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
                    cx.error_spanned_by(
                        &meta.path,
                        "`namespaced` takes no value; write `namespaced`",
                    );
                    skip_value(meta);
                } else {
                    let span = meta.path.span_or_call_site();
                    set_once(cx, &mut self.namespaced, span, meta);
                }
            }
            "status" => {
                if let Some(ty) = type_value(cx, meta) {
                    set_once(cx, &mut self.status, ty, meta);
                }
            }
            "shortname" => self.shortnames.extend(string(cx, meta)),
            "category" => self.categories.extend(string(cx, meta)),
            "selectable" => self.selectable.extend(string(cx, meta)),
            "printcolumn" => {
                let col = printcolumn(cx, meta);
                self.printcolumns.push(col);
            }
            "scale" => {
                let scale = scale(cx, meta);
                set_once(cx, &mut self.scale, scale, meta);
            }
            "validation" => {
                let v = validation(cx, meta);
                self.validations.push(v);
            }
            "storage" => {
                if let Some(b) = boolean(cx, meta) {
                    set_once(cx, &mut self.storage, b, meta);
                }
            }
            "served" => {
                if let Some(b) = boolean(cx, meta) {
                    set_once(cx, &mut self.served, b, meta);
                }
            }
            "deprecated" => {
                let d = deprecated(cx, meta);
                set_once(cx, &mut self.deprecated, d, meta);
            }
            "crate" => {
                if let Some(p) = path_value(cx, meta) {
                    set_once(cx, &mut self.crate_path, p, meta);
                }
            }
            _ => unknown(cx, meta, "windlass attribute", CONTAINER_ATTRS),
        }
    }
}

impl Field {
    /// Read every `#[windlass(...)]` of one field.
    pub(crate) fn from_attrs(cx: &mut Ctxt, attrs: &[Attribute]) -> Self {
        let mut f = Field::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("windlass")) {
            let result = attr.parse_nested_meta(|meta| {
                match name_of(&meta).as_str() {
                    "validation" => {
                        let v = validation(cx, &meta);
                        f.validations.push(v);
                    }
                    _ => unknown(cx, &meta, "windlass field attribute", FIELD_ATTRS),
                }
                Ok(())
            });
            if let Err(err) = result {
                cx.push(err);
            }
        }
        f
    }
}

/// The serde attributes that decide a field's serialized name.
#[derive(Default)]
pub(crate) struct Serde {
    pub(crate) rename: Option<String>,
    pub(crate) rename_all: Option<String>,
    pub(crate) flatten: bool,
}

impl Serde {
    /// Read what matters of `#[serde(...)]`, ignoring the rest (serde checks it).
    pub(crate) fn from_attrs(attrs: &[Attribute]) -> Self {
        let mut s = Serde::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
            let _ = attr.parse_nested_meta(|meta| {
                let name = name_of(&meta);
                match name.as_str() {
                    "rename" | "rename_all" => {
                        let value = if meta.input.peek(Token![=]) {
                            meta.value()?.parse::<LitStr>().ok().map(|l| l.value())
                        } else {
                            // `rename(serialize = "..", deserialize = "..")`: the schema
                            // describes what is deserialized.
                            let mut de = None;
                            meta.parse_nested_meta(|inner| {
                                let v = inner.value()?.parse::<LitStr>()?.value();
                                if inner.path.is_ident("deserialize") {
                                    de = Some(v);
                                }
                                Ok(())
                            })?;
                            de
                        };
                        if name == "rename" {
                            s.rename = value;
                        } else {
                            s.rename_all = value;
                        }
                    }
                    "flatten" => s.flatten = true,
                    _ => skip_value(&meta),
                }
                Ok(())
            });
        }
        s
    }
}

/// The doc comment of an item, one string.
pub(crate) fn doc(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|line| {
            line.strip_prefix(' ')
                .unwrap_or(&line)
                .trim_end()
                .to_string()
        })
        .collect();
    let text = lines.join("\n").trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Tokens for an optional string literal: `Some("..")` or `None`.
pub(crate) fn opt_str(lit: Option<&LitStr>) -> TokenStream {
    match lit {
        Some(l) => quote::quote!(::core::option::Option::Some(#l)),
        None => quote::quote!(::core::option::Option::None),
    }
}
