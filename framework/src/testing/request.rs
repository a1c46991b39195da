//! Reading a request: which endpoint its path names, its query parameters (tolerating kube's
//! leading `&` and empty pairs) and what its `Accept` header asks for.
//!
//! This module owns parsing only; nothing here looks at stored state.

use bytes::Bytes;
use http::{HeaderMap, Method};

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Version,
    Health,
    /// `/api`: the core group's versions.
    CoreVersions,
    /// `/apis`: every other group.
    Groups,
    /// `/apis/{group}`.
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`.
    GroupVersion(String, String),
    /// `/openapi/v2`, `/openapi/v3[/...]`.
    OpenApi,
    Resource(ResourcePath),
    /// Nothing is served here: the real server answers a plain-text `404 page not found`.
    NotFound,
}

/// A path under a group version that names a resource collection, object or subresource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ResourcePath {
    pub(crate) group: String,
    pub(crate) version: String,
    pub(crate) plural: String,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) subresource: Option<String>,
}

/// Parses a request path (no query string) into a route.
pub(crate) fn route(path: &str) -> Route {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["openapi", ..] => Route::OpenApi,
        ["api"] => Route::CoreVersions,
        ["api", v] => Route::GroupVersion(String::new(), v.to_string()),
        ["api", v, rest @ ..] => resource_route("", v, rest),
        ["apis"] => Route::Groups,
        ["apis", g] => Route::Group(g.to_string()),
        ["apis", g, v] => Route::GroupVersion(g.to_string(), v.to_string()),
        ["apis", g, v, rest @ ..] => resource_route(g, v, rest),
        _ => Route::NotFound,
    }
}

/// Subresources of a namespace object, which share the `namespaces/{name}/...` shape with
/// namespaced collections.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let base = ResourcePath {
        group: group.into(),
        version: version.into(),
        ..Default::default()
    };
    let with = |plural: &str, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        Route::Resource(ResourcePath {
            plural: plural.into(),
            namespace: ns.map(String::from),
            name: name.map(String::from),
            subresource: sub.map(String::from),
            ..base.clone()
        })
    };
    match rest {
        ["namespaces", ns, sub] if group.is_empty() && NAMESPACE_SUBRESOURCES.contains(sub) => {
            with("namespaces", None, Some(ns), Some(sub))
        }
        ["namespaces", ns, plural] => with(plural, Some(ns), None, None),
        ["namespaces", ns, plural, name] => with(plural, Some(ns), Some(name), None),
        ["namespaces", ns, plural, name, sub] => with(plural, Some(ns), Some(name), Some(sub)),
        [plural] => with(plural, None, None, None),
        [plural, name] => with(plural, None, Some(name), None),
        [plural, name, sub] => with(plural, None, Some(name), Some(sub)),
        _ => Route::NotFound,
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query parameters, in order. Repeated keys keep every value; lookups take the first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(query: Option<&str>) -> Self {
        let pairs = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .filter(|(k, _)| !k.is_empty())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Query(pairs)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A non-empty value.
    pub(crate) fn value(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// A boolean parameter as apimachinery converts query values: absent, `0` and `false` (in
    /// any case) are false; anything else, even an empty value or `maybe`, is true.
    pub(crate) fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"))
    }

    /// An integer parameter (`limit`, `timeoutSeconds`): the 400 message is Go's
    /// `strconv.ParseInt` error, as the apiserver reports it.
    pub(crate) fn int(&self, key: &str) -> Result<Option<i64>, String> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("strconv.ParseInt: parsing {v:?}: invalid syntax"));
        }
        v.parse::<i64>()
            .map(Some)
            .map_err(|_| format!("strconv.ParseInt: parsing {v:?}: value out of range"))
    }

    pub(crate) fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The body shape a client asked for in `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wants {
    /// Plain JSON objects and lists.
    Json,
    /// `as=PartialObjectMetadata` / `as=PartialObjectMetadataList` in `meta.k8s.io/v1`.
    Metadata,
    /// Aggregated discovery (`as=APIGroupDiscoveryList`, `apidiscovery.k8s.io/v2`).
    AggregatedDiscovery,
    /// `as=Table` in `meta.k8s.io/v1`: rows of columns, for `kubectl get`.
    Table,
    /// Only representations this server cannot produce (406).
    Unsupported,
}

/// Picks the first representation in `Accept` that the server can produce.
pub(crate) fn negotiate(headers: &HeaderMap) -> Wants {
    negotiate_with(headers, true)
}

/// Like [`negotiate`], for endpoints that serve no `Table` (built-in kinds, watches).
pub(crate) fn negotiate_without_table(headers: &HeaderMap) -> Wants {
    negotiate_with(headers, false)
}

fn negotiate_with(headers: &HeaderMap, table: bool) -> Wants {
    let accept: Vec<&str> = headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if accept.is_empty() {
        return Wants::Json;
    }
    for media in accept.iter().flat_map(|a| a.split(',')) {
        let mut parts = media.split(';').map(str::trim);
        let mime = parts.next().unwrap_or_default().to_ascii_lowercase();
        let params: Vec<(String, String)> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let param = |k: &str| {
            params
                .iter()
                .find(|(pk, _)| pk == k)
                .map(|(_, v)| v.as_str())
        };
        if !matches!(mime.as_str(), "application/json" | "application/*" | "*/*") {
            continue;
        }
        match param("as") {
            None => return Wants::Json,
            Some("PartialObjectMetadata" | "PartialObjectMetadataList")
                if param("g") == Some("meta.k8s.io") && param("v") == Some("v1") =>
            {
                return Wants::Metadata;
            }
            Some("APIGroupDiscoveryList")
                if param("g") == Some("apidiscovery.k8s.io") && param("v") == Some("v2") =>
            {
                return Wants::AggregatedDiscovery;
            }
            Some("Table")
                if table
                    && param("g") == Some("meta.k8s.io")
                    && matches!(param("v"), Some("v1" | "v1beta1")) =>
            {
                return Wants::Table;
            }
            // v2beta1 discovery and anything else: try the next alternative.
            Some(_) => continue,
        }
    }
    Wants::Unsupported
}

/// A request, read whole: the shape every handler receives, whether it came in-process or
/// over HTTP.
#[derive(Debug, Clone)]
pub(crate) struct ApiRequest {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: Query,
    pub(crate) raw_query: Option<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl ApiRequest {
    pub(crate) fn new(parts: http::request::Parts, body: Bytes) -> Self {
        let raw_query = parts.uri.query().map(String::from);
        Self {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query: Query::parse(raw_query.as_deref()),
            raw_query,
            headers: parts.headers,
            body,
        }
    }

    pub(crate) fn header(&self, name: http::header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The media type of the body, without parameters.
    pub(crate) fn content_type(&self) -> String {
        self.header(http::header::CONTENT_TYPE)
            .unwrap_or("application/json")
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }

    /// The field manager a write is recorded under: the `fieldManager` parameter, else the
    /// User-Agent up to its first `/`, as the apiserver derives it.
    pub(crate) fn field_manager(&self) -> String {
        if let Some(m) = self.query.value("fieldManager") {
            return m.to_string();
        }
        let ua = self.header(http::header::USER_AGENT).unwrap_or_default();
        let prefix = ua.split('/').next().unwrap_or_default();
        if prefix.is_empty() {
            "unknown".to_string()
        } else {
            prefix.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(g: &str, v: &str, p: &str, ns: Option<&str>, n: Option<&str>, s: Option<&str>) -> Route {
        Route::Resource(ResourcePath {
            group: g.into(),
            version: v.into(),
            plural: p.into(),
            namespace: ns.map(Into::into),
            name: n.map(Into::into),
            subresource: s.map(Into::into),
        })
    }

    #[test]
    fn paths_route_to_collections_objects_and_subresources() {
        assert_eq!(
            route("/api/v1/configmaps"),
            rp("", "v1", "configmaps", None, None, None)
        );
        assert_eq!(
            route("/api/v1/namespaces/default/configmaps/x"),
            rp("", "v1", "configmaps", Some("default"), Some("x"), None)
        );
        assert_eq!(
            route("/apis/apps/v1/namespaces/a/deployments/d/scale"),
            rp(
                "apps",
                "v1",
                "deployments",
                Some("a"),
                Some("d"),
                Some("scale")
            )
        );
        assert_eq!(
            route("/api/v1/namespaces/kube-system"),
            rp("", "v1", "namespaces", None, Some("kube-system"), None)
        );
        assert_eq!(
            route("/api/v1/namespaces/x/status"),
            rp("", "v1", "namespaces", None, Some("x"), Some("status"))
        );
        assert_eq!(route("/apis"), Route::Groups);
        assert_eq!(route("/apis/apps"), Route::Group("apps".into()));
        assert_eq!(
            route("/api/v1"),
            Route::GroupVersion(String::new(), "v1".into())
        );
        assert_eq!(route("/nope"), Route::NotFound);
    }

    #[test]
    fn queries_tolerate_a_leading_ampersand_and_empty_pairs() {
        let q = Query::parse(Some("&watch=true&&labelSelector=a%3Db&"));
        assert_eq!(q.get("watch"), Some("true"));
        assert_eq!(q.get("labelSelector"), Some("a=b"));
        assert!(q.flag("watch"));
    }

    #[test]
    fn booleans_are_false_only_when_absent_zero_or_false() {
        let q = Query::parse(Some("a=maybe&b=&c=0&d=FALSE&e=1"));
        let flags: Vec<bool> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|k| q.flag(k))
            .collect();
        assert_eq!(flags, [true, true, false, false, true, false]);
    }

    #[test]
    fn integers_answer_go_parse_errors() {
        let q = Query::parse(Some("a=12&b=abc&c=&d=99999999999999999999&e=-3"));
        assert_eq!(q.int("a"), Ok(Some(12)));
        assert_eq!(
            q.int("b").unwrap_err(),
            r#"strconv.ParseInt: parsing "abc": invalid syntax"#
        );
        assert_eq!(
            q.int("c").unwrap_err(),
            r#"strconv.ParseInt: parsing "": invalid syntax"#
        );
        assert!(q.int("d").unwrap_err().ends_with("value out of range"));
        assert_eq!(q.int("e"), Ok(Some(-3)));
        assert_eq!(q.int("f"), Ok(None));
    }

    #[test]
    fn accept_picks_metadata_tables_discovery_or_falls_back_to_json() {
        let mut h = HeaderMap::new();
        let set = |h: &mut HeaderMap, v: &'static str| {
            h.insert(http::header::ACCEPT, http::HeaderValue::from_static(v));
        };
        set(
            &mut h,
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        );
        assert_eq!(negotiate(&h), Wants::Metadata);
        set(
            &mut h,
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        );
        assert_eq!(negotiate(&h), Wants::Table);
        assert_eq!(negotiate_without_table(&h), Wants::Json);
        set(&mut h, "application/json;as=Table;v=v1;g=meta.k8s.io");
        assert_eq!(negotiate_without_table(&h), Wants::Unsupported);
        set(
            &mut h,
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        );
        assert_eq!(negotiate(&h), Wants::AggregatedDiscovery);
        set(&mut h, "application/vnd.kubernetes.protobuf, */*");
        assert_eq!(negotiate(&h), Wants::Json);
    }
}
