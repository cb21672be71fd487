//! `metadata` of objects held as JSON, name validation and timestamps.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::status::StatusCause;

/// Read a string at `metadata.<field>`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

pub fn namespace(obj: &Value) -> &str {
    meta_str(obj, "namespace").unwrap_or("")
}

pub fn resource_version(obj: &Value) -> &str {
    meta_str(obj, "resourceVersion").unwrap_or("")
}

/// The object's `metadata` map, created if missing or not an object.
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let map = obj.as_object_mut().expect("just made an object");
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("just made an object")
}

pub fn set_meta(obj: &mut Value, field: &str, value: Value) {
    metadata_mut(obj).insert(field.to_string(), value);
}

pub fn remove_meta(obj: &mut Value, field: &str) {
    metadata_mut(obj).remove(field);
}

/// Now, as Kubernetes writes timestamps: RFC 3339, whole seconds, UTC.
pub fn now_rfc3339() -> String {
    format_timestamp(OffsetDateTime::now_utc())
}

pub fn format_timestamp(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

pub fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// An age as kubectl prints it ("45s", "3m20s", "5h", "12d").
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if h < 24 * 365 * 8 {
        let y = d / 365;
        if d % 365 == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{}d", d % 365)
        }
    } else {
        format!("{}y", d / 365)
    }
}

/// Age of an object from its creationTimestamp, for table cells.
pub fn age(obj: &Value) -> String {
    match meta_str(obj, "creationTimestamp").and_then(parse_timestamp) {
        Some(t) => human_duration((OffsetDateTime::now_utc() - t).whole_seconds()),
        None => "<unknown>".into(),
    }
}

fn is_dns_label_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

/// RFC 1123 label: lower-case alphanumerics and '-', alphanumeric at both
/// ends, at most 63 characters. Returns the problems found.
pub fn dns1123_label_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    let ok = !value.is_empty()
        && value.chars().all(is_dns_label_char)
        && !value.starts_with('-')
        && !value.ends_with('-');
    if !ok {
        errs.push("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_string());
    }
    errs
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    let ok = !value.is_empty()
        && value.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(is_dns_label_char)
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    if !ok {
        errs.push("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string());
    }
    errs
}

/// A qualified name as used for label keys: optional DNS-subdomain prefix
/// and '/', then a name of at most 63 alphanumerics, '-', '_' or '.',
/// alphanumeric at both ends.
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let (prefix, name) = match value.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, value),
    };
    let mut errs = Vec::new();
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push("prefix part must be non-empty".to_string());
        } else {
            errs.extend(
                dns1123_subdomain_errors(p)
                    .into_iter()
                    .map(|e| format!("prefix part {e}")),
            );
        }
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else {
        if name.len() > 63 {
            errs.push("name part must be no more than 63 characters".to_string());
        }
        if !label_value_ok(name) {
            errs.push("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_string());
        }
    }
    errs
}

fn label_value_ok(v: &str) -> bool {
    v.is_empty()
        || (v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// A label value: empty, or at most 63 characters shaped like a name part.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !label_value_ok(value) {
        errs.push("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string());
    }
    errs
}

/// Validation of the `metadata` every object shares: name (by the given
/// rule), labels and annotations. Namespace presence is the caller's job.
pub fn validate_object_meta(obj: &Value, name_rule: fn(&str) -> Vec<String>) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    let meta = obj.get("metadata");
    let name = name(obj);
    if name.is_empty() {
        if meta_str(obj, "generateName").is_none() {
            causes.push(StatusCause::required("metadata.name"));
        }
    } else {
        for e in name_rule(name) {
            causes.push(StatusCause::invalid(
                "metadata.name",
                &Value::from(name),
                &e,
            ));
        }
    }
    if let Some(labels) = meta.and_then(|m| m.get("labels")) {
        match labels.as_object() {
            Some(map) => {
                for (k, v) in map {
                    for e in qualified_name_errors(k) {
                        causes.push(StatusCause::invalid(
                            "metadata.labels",
                            &Value::from(k.as_str()),
                            &e,
                        ));
                    }
                    match v.as_str() {
                        Some(s) => {
                            for e in label_value_errors(s) {
                                causes.push(StatusCause::invalid("metadata.labels", v, &e));
                            }
                        }
                        None => causes.push(StatusCause::invalid(
                            "metadata.labels",
                            v,
                            "must be a string",
                        )),
                    }
                }
            }
            None if labels.is_null() => {}
            None => causes.push(StatusCause::invalid(
                "metadata.labels",
                labels,
                "must be an object",
            )),
        }
    }
    if let Some(annotations) = meta.and_then(|m| m.get("annotations")) {
        match annotations.as_object() {
            Some(map) => {
                let mut total = 0usize;
                for (k, v) in map {
                    for e in qualified_name_errors(&k.to_ascii_lowercase()) {
                        causes.push(StatusCause::invalid(
                            "metadata.annotations",
                            &Value::from(k.as_str()),
                            &e,
                        ));
                    }
                    total += k.len() + v.as_str().map(str::len).unwrap_or(0);
                    if !v.is_string() {
                        causes.push(StatusCause::invalid(
                            "metadata.annotations",
                            v,
                            "must be a string",
                        ));
                    }
                }
                if total > 256 * 1024 {
                    causes.push(StatusCause {
                        reason: "FieldValueTooLong".into(),
                        message: "Too long: must have at most 262144 bytes".into(),
                        field: "metadata.annotations".into(),
                    });
                }
            }
            None if annotations.is_null() => {}
            None => causes.push(StatusCause::invalid(
                "metadata.annotations",
                annotations,
                "must be an object",
            )),
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn human_duration_matches_kubectl_ages() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(4 * 3600 + 60), "4h1m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(40 * 86400), "40d");
    }

    #[test]
    fn names_are_validated_as_rfc1123() {
        assert!(dns1123_label_errors("kube-system").is_empty());
        assert!(!dns1123_label_errors("Kube").is_empty());
        assert!(!dns1123_label_errors("a.b").is_empty());
        assert!(dns1123_subdomain_errors("a.b-c").is_empty());
        assert!(!dns1123_subdomain_errors("-a").is_empty());
        assert!(!dns1123_subdomain_errors(&"a".repeat(254)).is_empty());
    }

    #[test]
    fn object_meta_reports_bad_labels_and_missing_name() {
        let obj = json!({"metadata": {"labels": {"ok": "v", "bad key!": "v", "k": "-x"}}});
        let causes = validate_object_meta(&obj, dns1123_subdomain_errors);
        assert_eq!(causes[0].field, "metadata.name");
        assert_eq!(causes.len(), 3);
    }

    #[test]
    fn timestamps_round_trip_in_whole_seconds() {
        let s = now_rfc3339();
        assert!(s.ends_with('Z'));
        assert!(!s.contains('.'));
        assert!(parse_timestamp(&s).is_some());
    }
}
