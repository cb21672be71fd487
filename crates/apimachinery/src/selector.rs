//! Label and field selectors, parsed from query strings and matched against
//! objects.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// A parsed selector: every requirement must hold. The empty selector
/// matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
}

/// Split on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn check_key(key: &str) -> Result<String, String> {
    let errs = crate::meta::qualified_name_errors(key);
    if errs.is_empty() {
        Ok(key.to_string())
    } else {
        Err(format!("invalid label key \"{key}\": {}", errs.join("; ")))
    }
}

fn check_value(value: &str) -> Result<String, String> {
    let errs = crate::meta::label_value_errors(value);
    if errs.is_empty() {
        Ok(value.to_string())
    } else {
        Err(format!(
            "invalid label value: \"{value}\": {}",
            errs.join("; ")
        ))
    }
}

fn parse_set(rest: &str) -> Result<Vec<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesised set of values, found '{rest}'"))?;
    inner.split(',').map(|v| check_value(v.trim())).collect()
}

impl Selector {
    /// Parse a label selector (`a=b,c!=d,e in (x,y),f notin (z),g,!h`).
    pub fn parse_labels(input: &str) -> Result<Selector, String> {
        let mut requirements = Vec::new();
        if input.trim().is_empty() {
            return Ok(Selector { requirements });
        }
        for raw in split_top_level(input) {
            let term = raw.trim();
            if term.is_empty() {
                return Err(format!(
                    "found '', expected: identifier in selector \"{input}\""
                ));
            }
            let req = if let Some(key) = term.strip_prefix('!') {
                Requirement::DoesNotExist(check_key(key.trim())?)
            } else if let Some((k, v)) = term.split_once("!=") {
                Requirement::NotEquals(check_key(k.trim())?, check_value(v.trim())?)
            } else if let Some((k, v)) = term.split_once("==") {
                Requirement::Equals(check_key(k.trim())?, check_value(v.trim())?)
            } else if let Some((k, v)) = term.split_once('=') {
                Requirement::Equals(check_key(k.trim())?, check_value(v.trim())?)
            } else if let Some(idx) = term.find(" notin ").or_else(|| term.find(" notin(")) {
                let (k, rest) = term.split_at(idx);
                let rest = rest.trim_start().trim_start_matches("notin");
                Requirement::NotIn(check_key(k.trim())?, parse_set(rest)?)
            } else if let Some(idx) = term.find(" in ").or_else(|| term.find(" in(")) {
                let (k, rest) = term.split_at(idx);
                let rest = rest.trim_start().trim_start_matches("in");
                Requirement::In(check_key(k.trim())?, parse_set(rest)?)
            } else if term.contains(['<', '>']) {
                return Err(format!("unsupported operator in selector term '{term}'"));
            } else {
                Requirement::Exists(check_key(term)?)
            };
            requirements.push(req);
        }
        Ok(Selector { requirements })
    }

    /// Parse a field selector (`metadata.name=x,status.phase!=Running`);
    /// only `=`, `==` and `!=` exist for fields.
    pub fn parse_fields(input: &str) -> Result<Selector, String> {
        let mut requirements = Vec::new();
        if input.trim().is_empty() {
            return Ok(Selector { requirements });
        }
        for raw in input.split(',') {
            let term = raw.trim();
            let req = if let Some((k, v)) = term.split_once("!=") {
                Requirement::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = term.split_once("==") {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = term.split_once('=') {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else {
                return Err(format!(
                    "invalid field selector: '{term}': expected an operator"
                ));
            };
            requirements.push(req);
        }
        Ok(Selector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, set: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(set))
    }

    /// The field names a field selector refers to.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.requirements.iter().map(|r| match r {
            Requirement::Equals(k, _)
            | Requirement::NotEquals(k, _)
            | Requirement::In(k, _)
            | Requirement::NotIn(k, _)
            | Requirement::Exists(k)
            | Requirement::DoesNotExist(k) => k.as_str(),
        })
    }
}

/// An object's labels as a map.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    labels_in(obj.get("metadata").and_then(|m| m.get("labels")))
}

/// A `metadata.labels` map's string entries.
pub fn labels_in(labels: Option<&Value>) -> BTreeMap<String, String> {
    labels
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a structured `metav1.LabelSelector` (matchLabels and
/// matchExpressions, all ANDed) selects these labels. An empty selector
/// selects everything; an unknown operator selects nothing.
pub fn label_selector_matches(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    if let Some(match_labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (key, value) in match_labels {
            if labels.get(key).map(String::as_str) != value.as_str() {
                return false;
            }
        }
    }
    let expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    expressions.iter().all(|expr| {
        let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> = expr
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let actual = labels.get(key).map(String::as_str);
        match expr.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => actual.is_some_and(|a| values.contains(&a)),
            "NotIn" => actual.is_none_or(|a| !values.contains(&a)),
            "Exists" => actual.is_some(),
            "DoesNotExist" => actual.is_none(),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_selectors_and_match_labels_with_expressions() {
        let labels = set(&[("app", "web"), ("tier", "front")]);
        let sel = serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "back"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ]
        });
        assert!(label_selector_matches(&sel, &labels));
        assert!(label_selector_matches(&serde_json::json!({}), &labels));
        let no = serde_json::json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]});
        assert!(!label_selector_matches(&no, &labels));
        let bad = serde_json::json!({"matchExpressions": [{"key": "tier", "operator": "Gt", "values": ["1"]}]});
        assert!(!label_selector_matches(&bad, &labels));
    }

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_label_operator_matches_as_upstream() {
        let l = set(&[("app", "web"), ("tier", "front")]);
        let ok = |s: &str| Selector::parse_labels(s).unwrap().matches(&l);
        assert!(ok("app=web"));
        assert!(ok("app==web,tier"));
        assert!(ok("app!=db"));
        assert!(ok("tier in (front, back)"));
        assert!(ok("tier notin (back)"));
        assert!(ok("!missing"));
        assert!(ok("missing notin (x)"));
        assert!(!ok("missing in (x)"));
        assert!(!ok("app=db"));
        assert!(!ok("!app"));
        assert!(ok(""));
    }

    #[test]
    fn malformed_selectors_are_rejected() {
        assert!(Selector::parse_labels("a=b,,c").is_err());
        assert!(Selector::parse_labels("a in x").is_err());
        assert!(Selector::parse_labels("a>1").is_err());
        assert!(Selector::parse_labels("bad key=1").is_err());
        assert!(Selector::parse_fields("metadata.name").is_err());
    }
}
