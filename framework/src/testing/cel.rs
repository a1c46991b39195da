//! CEL for `x-kubernetes-validations`: compiling rules when a CRD is registered and evaluating
//! them against custom resources, with the `cel` crate.
//!
//! Kubernetes evaluates rules in an environment of the CEL standard library plus its own
//! libraries. This environment has the standard library with its macros (`has`, `all`,
//! `exists`, `exists_one`, `map`, `filter`) and cel-go's string, list and math extensions;
//! Kubernetes' own libraries (`quantity()`, `isURL()`, `ip()`, `cidr()`, `format.*`,
//! `authorizer`, ...) and timestamps are not available, and a rule that calls them fails to
//! compile, which the CRD's registration reports as the apiserver reports any rule that does
//! not compile (422).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use cel::{Context, Env, Program};
use serde_json::Value;

/// A compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    program: Program,
    /// Whether the rule reads `oldSelf` (a transition rule, only checked on updates).
    pub(crate) transition: bool,
}

fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        // Each extension declares distinct overloads; a failure would be a bug in the crate.
        let _ = env.add_extension(cel::extensions::strings);
        let _ = env.add_extension(cel::extensions::lists);
        let _ = env.add_extension(cel::extensions::math);
        Arc::new(env)
    })
}

/// The functions (and operators, by their internal names) this environment declares.
const KNOWN: &[&str] = &[
    // Standard library.
    "size",
    "has",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "type",
    "dyn",
    "matches",
    "startsWith",
    "endsWith",
    "contains",
    "optional.of",
    "optional.none",
    "optional.ofNonZeroValue",
    "hasValue",
    "value",
    "orValue",
    "or",
    "in", // Strings extension.
    "charAt",
    "indexOf",
    "lastIndexOf",
    "lowerAscii",
    "upperAscii",
    "replace",
    "split",
    "substring",
    "trim",
    "join",
    "format",
    "strings.quote",
    "reverse",
    // Lists extension.
    "distinct",
    "flatten",
    "sort",
    "sortBy",
    "slice",
    "lists.range",
    "first",
    "last",
    // Math extension.
    "math.greatest",
    "math.least",
    "math.abs",
    "math.ceil",
    "math.floor",
    "math.round",
    "math.trunc",
    "math.sign",
    "math.isNaN",
    "math.isInf",
    "math.isFinite",
    "math.sqrt",
    "math.bitAnd",
    "math.bitOr",
    "math.bitXor",
    "math.bitNot",
    "math.bitShiftLeft",
    "math.bitShiftRight",
];

/// Compiles `source`, refusing calls to functions this environment does not have.
///
/// # Errors
///
/// The apiserver's `compilation failed: ERROR: <input>:L:C: ...` text.
pub(crate) fn compile(source: &str) -> Result<Rule, String> {
    let program = env().compile(source).map_err(|e| {
        let text = e.to_string();
        let text = text.trim();
        format!("compilation failed: ERROR: <input>:1:1: Syntax error: {text}")
    })?;
    let refs = program.references();
    for f in refs.functions() {
        let identifier = f.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && f.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
        if identifier && !KNOWN.contains(&f) {
            let col = source
                .find(&format!("{}(", f.rsplit('.').next().unwrap_or(f)))
                .map_or(1, |i| i + 1);
            return Err(format!(
                "compilation failed: ERROR: <input>:1:{col}: undeclared reference to '{f}' (in container '')"
            ));
        }
    }
    let transition = refs.has_variable("oldSelf");
    Ok(Rule {
        program,
        transition,
    })
}

/// What a rule's evaluation gave.
#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    Pass,
    Fail,
    /// The rule did not evaluate to a bool, or failed to evaluate.
    Error(String),
}

/// Evaluates `rule` with `self` (and `oldSelf` for transition rules).
pub(crate) fn check(rule: &Rule, this: &Value, old: Option<&Value>) -> Outcome {
    match evaluate(rule, this, old) {
        Ok(cel::Value::Bool(true)) => Outcome::Pass,
        Ok(cel::Value::Bool(false)) => Outcome::Fail,
        Ok(other) => Outcome::Error(format!(
            "validation failed due to incorrect return type: {other:?}"
        )),
        Err(e) => Outcome::Error(e),
    }
}

/// Evaluates `rule` to a string (for `messageExpression`).
pub(crate) fn message(rule: &Rule, this: &Value, old: Option<&Value>) -> Option<String> {
    match evaluate(rule, this, old) {
        Ok(cel::Value::String(s)) => Some(s.to_string()),
        _ => None,
    }
}

fn evaluate(rule: &Rule, this: &Value, old: Option<&Value>) -> Result<cel::Value, String> {
    let mut ctx = Context::with_env(env().clone());
    ctx.add_variable_from_value("self", to_cel(this));
    if let Some(old) = old {
        ctx.add_variable_from_value("oldSelf", to_cel(old));
    }
    rule.program.execute(&ctx).map_err(|e| e.to_string())
}

/// A JSON value as CEL sees it: objects are maps with string keys, integers are `int`.
pub(crate) fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => cel::Value::Int(i),
            None => match n.as_u64() {
                Some(u) => cel::Value::UInt(u),
                None => cel::Value::Float(n.as_f64().unwrap_or_default()),
            },
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(a) => cel::Value::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(m) => {
            let map: HashMap<String, cel::Value> =
                m.iter().map(|(k, v)| (k.clone(), to_cel(v))).collect();
            cel::Value::from(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(src: &str, this: Value, old: Option<Value>) -> Outcome {
        let rule = compile(src).expect("compiles");
        check(&rule, &this, old.as_ref())
    }

    #[test]
    fn rules_see_self_and_the_standard_macros() {
        let obj = json!({"a": 1, "items": ["x", "yy"], "name": "web"});
        assert_eq!(run("self.a == 1", obj.clone(), None), Outcome::Pass);
        assert_eq!(run("has(self.b)", obj.clone(), None), Outcome::Fail);
        assert_eq!(
            run("self.items.all(i, size(i) < 3)", obj.clone(), None),
            Outcome::Pass
        );
        assert_eq!(
            run("self.items.exists(i, i == 'yy')", obj.clone(), None),
            Outcome::Pass
        );
        assert_eq!(
            run(
                "self.items.map(i, size(i)).filter(n, n > 1).size() == 1",
                obj.clone(),
                None
            ),
            Outcome::Pass
        );
        assert_eq!(
            run(
                "self.name.startsWith('w') && self.name.matches('^[a-z]+$')",
                obj,
                None
            ),
            Outcome::Pass
        );
    }

    #[test]
    fn transition_rules_compare_with_old_self() {
        let rule = compile("self >= oldSelf").unwrap();
        assert!(rule.transition);
        assert_eq!(check(&rule, &json!(3), Some(&json!(2))), Outcome::Pass);
        assert_eq!(check(&rule, &json!(1), Some(&json!(2))), Outcome::Fail);
    }

    #[test]
    fn kubernetes_library_functions_do_not_compile() {
        let err = compile("isURL(self)").unwrap_err();
        assert!(err.contains("undeclared reference to 'isURL'"), "{err}");
        assert!(compile("self.foo(").is_err());
    }
}
