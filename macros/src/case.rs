//! Names: serde's `rename_all` rules, default plurals, and "did you mean".

/// The serialized name of a field called `field` under `#[serde(rename_all = rule)]`; `None`
/// for a rule serde does not know (serde reports that itself).
pub(crate) fn rename(field: &str, rule: &str) -> Option<String> {
    let words: Vec<&str> = field.split('_').filter(|w| !w.is_empty()).collect();
    let capitalized = |w: &str| {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    Some(match rule {
        "lowercase" => field.to_ascii_lowercase(),
        "UPPERCASE" => field.to_ascii_uppercase(),
        "PascalCase" => words.iter().map(|w| capitalized(w)).collect(),
        "camelCase" => {
            let pascal: String = words.iter().map(|w| capitalized(w)).collect();
            let mut c = pascal.chars();
            c.next()
                .map(|f| f.to_lowercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
        "snake_case" => field.to_string(),
        "SCREAMING_SNAKE_CASE" => field.to_ascii_uppercase(),
        "kebab-case" => field.replace('_', "-"),
        "SCREAMING-KEBAB-CASE" => field.to_ascii_uppercase().replace('_', "-"),
        _ => return None,
    })
}

/// The default plural of a lowercase kind, with English's regular rules (controller-gen's
/// default; irregular plurals are set with `plural = "..."`).
pub(crate) fn pluralize(singular: &str) -> String {
    if singular.ends_with('s')
        || singular.ends_with('x')
        || singular.ends_with('z')
        || singular.ends_with("ch")
        || singular.ends_with("sh")
    {
        format!("{singular}es")
    } else if let Some(stem) = singular.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
        && !stem.is_empty()
    {
        format!("{stem}ies")
    } else {
        format!("{singular}s")
    }
}

/// `name` in UpperCamelCase, for suggesting a kind.
pub(crate) fn upper_camel(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The closest of `candidates` to `word`, if close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    // An abbreviation (`int` for `integer`) is as likely as a typo.
    if word.len() >= 3
        && let Some(full) = candidates.iter().find(|c| c.starts_with(word))
    {
        return Some(full);
    }
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_all_rules_match_serdes() {
        assert_eq!(
            rename("replica_count", "camelCase").unwrap(),
            "replicaCount"
        );
        assert_eq!(
            rename("replica_count", "PascalCase").unwrap(),
            "ReplicaCount"
        );
        assert_eq!(
            rename("replica_count", "kebab-case").unwrap(),
            "replica-count"
        );
        assert_eq!(
            rename("replica_count", "SCREAMING_SNAKE_CASE").unwrap(),
            "REPLICA_COUNT"
        );
        assert_eq!(rename("replicas", "camelCase").unwrap(), "replicas");
        assert!(rename("x", "Camel").is_none());
    }

    #[test]
    fn plurals_follow_englishs_regular_rules() {
        assert_eq!(pluralize("widget"), "widgets");
        assert_eq!(pluralize("policy"), "policies");
        assert_eq!(pluralize("gateway"), "gateways");
        assert_eq!(pluralize("ingress"), "ingresses");
        assert_eq!(pluralize("box"), "boxes");
        assert_eq!(pluralize("patch"), "patches");
    }

    #[test]
    fn typos_get_a_suggestion_and_unrelated_words_do_not() {
        let names = ["group", "version", "kind", "namespaced", "shortname"];
        assert_eq!(did_you_mean("grup", &names), Some("group"));
        assert_eq!(did_you_mean("namespace", &names), Some("namespaced"));
        assert_eq!(did_you_mean("short_name", &names), Some("shortname"));
        assert_eq!(did_you_mean("replicas", &names), None);
        assert_eq!(did_you_mean("int", &["integer", "number"]), Some("integer"));
        assert_eq!(
            did_you_mean("bool", &["integer", "boolean"]),
            Some("boolean")
        );
    }

    #[test]
    fn kinds_are_suggested_in_upper_camel_case() {
        assert_eq!(upper_camel("my-widget"), "MyWidget");
        assert_eq!(upper_camel("widget"), "Widget");
    }
}
