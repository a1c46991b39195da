//! Health checks and the `/healthz` and `/readyz` endpoints, with controller-runtime's
//! conventions (its `pkg/healthz`, itself drawn from the API server's).
//!
//! This file owns the named checks and what the endpoints answer; it does not own the HTTP
//! server that routes requests to them (see `server.rs`).
//!
//! - `GET /readyz` runs every check: 200 `ok` when all pass, 500 with one line per check
//!   (`[+]name ok`, `[-]name failed: reason withheld`) and `healthz check failed` otherwise.
//! - `?verbose` lists the checks on success too, ending with `healthz check passed`.
//! - `?exclude=name` (repeatable) skips a check (`[+]name excluded: ok`); excluding an unknown
//!   name adds a `warn:` line.
//! - `GET /readyz/name` runs one check: 200 `ok`, or 500 `internal server error: <error>`;
//!   404 for an unknown name.
//!
//! The aggregated endpoints withhold the reasons, as controller-runtime's do, since probes are
//! usually reachable by anyone who can reach the pod; the single-check endpoint gives it.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use http::StatusCode;

use super::BoxError;
use crate::controller::display_chain;
use crate::informer::panic_message;

/// A health check: `Ok` when healthy, otherwise an error saying why not.
///
/// Checks run on every probe request, on the server's task: they should only read state
/// (an atomic, a timestamp), not do I/O.
pub type Check = Arc<dyn Fn() -> Result<(), BoxError> + Send + Sync>;

/// What an endpoint answers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: String,
}

/// The checks behind one endpoint (`/healthz` or `/readyz`), by name.
#[derive(Clone, Default)]
pub(crate) struct Checks {
    /// Sorted by name, as the verbose output lists them.
    checks: Vec<(String, Check)>,
}

impl std::fmt::Debug for Checks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.checks.iter().map(|(n, _)| n))
            .finish()
    }
}

impl Checks {
    /// Adds `check` as `name`, replacing a check of the same name.
    pub(crate) fn add(&mut self, name: String, check: Check) {
        match self.checks.binary_search_by(|(n, _)| n.as_str().cmp(&name)) {
            Ok(i) => {
                tracing::warn!(check = %name, "a health check of this name was already added; replacing it");
                self.checks[i].1 = check;
            }
            Err(i) => self.checks.insert(i, (name, check)),
        }
    }

    /// The answer to a request for `path` (what follows `/healthz` or `/readyz`) with the
    /// query string `query`.
    pub(crate) fn serve(&self, path: &str, query: Option<&str>) -> Answer {
        let name = path.trim_matches('/');
        if name.is_empty() {
            return self.aggregated(query.unwrap_or_default());
        }
        match self.checks.iter().find(|(n, _)| n == name) {
            None => Answer {
                status: StatusCode::NOT_FOUND,
                body: "404 page not found\n".into(),
            },
            Some((name, check)) => match run(name, check) {
                Ok(()) => Answer {
                    status: StatusCode::OK,
                    body: "ok".into(),
                },
                Err(error) => Answer {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: format!("internal server error: {error}\n"),
                },
            },
        }
    }

    fn aggregated(&self, query: &str) -> Answer {
        let mut verbose = false;
        let mut excluded = BTreeSet::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "verbose" => verbose = true,
                "exclude" => {
                    excluded.insert(value.into_owned());
                }
                _ => {}
            }
        }
        let mut lines = String::new();
        let mut failed = false;
        for (name, check) in &self.checks {
            if excluded.remove(name) {
                let _ = writeln!(lines, "[+]{name} excluded: ok");
            } else if run(name, check).is_ok() {
                let _ = writeln!(lines, "[+]{name} ok");
            } else {
                failed = true;
                let _ = writeln!(lines, "[-]{name} failed: reason withheld");
            }
        }
        if self.checks.is_empty() {
            lines.push_str("[+]ping ok\n");
        }
        let status = if failed {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        };
        if !failed && !verbose {
            return Answer {
                status,
                body: "ok".into(),
            };
        }
        if !excluded.is_empty() {
            let names: Vec<String> = excluded.iter().map(|n| format!("{n:?}")).collect();
            let _ = writeln!(
                lines,
                "warn: some health checks cannot be excluded: no matches for {}",
                names.join(",")
            );
        }
        lines.push_str(if failed {
            "healthz check failed\n"
        } else {
            "healthz check passed\n"
        });
        Answer {
            status,
            body: lines,
        }
    }
}

/// Runs one check; a panic in it is a failure, not the end of the server.
fn run(name: &str, check: &Check) -> Result<(), String> {
    let result = match std::panic::catch_unwind(AssertUnwindSafe(|| check())) {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(error)) => display_chain(error.as_ref()),
        Err(payload) => format!("panicked: {}", panic_message(payload.as_ref())),
    };
    tracing::debug!(check = %name, error = %result, "health check failed");
    Err(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(entries: &[(&str, bool)]) -> Checks {
        let mut checks = Checks::default();
        for &(name, healthy) in entries {
            checks.add(
                name.into(),
                Arc::new(move || {
                    if healthy {
                        Ok(())
                    } else {
                        Err("database unreachable".into())
                    }
                }),
            );
        }
        checks
    }

    #[test]
    fn all_passing_answers_a_bare_ok() {
        let answer = checks(&[("b", true), ("a", true)]).serve("", None);
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body, "ok");
    }

    #[test]
    fn verbose_lists_checks_sorted_and_says_passed() {
        let answer = checks(&[("b", true), ("a", true)]).serve("/", Some("verbose"));
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body, "[+]a ok\n[+]b ok\nhealthz check passed\n");
    }

    #[test]
    fn a_failure_is_always_verbose_and_withholds_the_reason() {
        let answer = checks(&[("db", false), ("cache", true)]).serve("", None);
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            answer.body,
            "[+]cache ok\n[-]db failed: reason withheld\nhealthz check failed\n"
        );
    }

    #[test]
    fn excluding_a_failing_check_passes_and_unknown_excludes_warn() {
        let c = checks(&[("db", false), ("cache", true)]);
        assert_eq!(c.serve("", Some("exclude=db")).body, "ok");
        let answer = c.serve("", Some("exclude=db&exclude=nope&verbose=1"));
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.body,
            "[+]cache ok\n[+]db excluded: ok\n\
             warn: some health checks cannot be excluded: no matches for \"nope\"\n\
             healthz check passed\n"
        );
    }

    #[test]
    fn one_check_by_name_gives_its_reason() {
        let c = checks(&[("db", false), ("cache", true)]);
        assert_eq!(
            c.serve("/cache", None),
            Answer {
                status: StatusCode::OK,
                body: "ok".into()
            }
        );
        assert_eq!(
            c.serve("/db", None),
            Answer {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: "internal server error: database unreachable\n".into()
            }
        );
        assert_eq!(c.serve("/nope", None).status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn no_checks_answers_with_ping() {
        let answer = Checks::default().serve("", Some("verbose"));
        assert_eq!(answer.body, "[+]ping ok\nhealthz check passed\n");
    }

    #[test]
    fn a_panicking_check_fails_instead_of_unwinding() {
        let mut c = Checks::default();
        c.add("boom".into(), Arc::new(|| panic!("check exploded")));
        let answer = c.serve("/boom", None);
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            answer.body,
            "internal server error: panicked: check exploded\n"
        );
    }
}
