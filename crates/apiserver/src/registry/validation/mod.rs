//! Spec validation of the built-in kinds, as upstream's
//! `pkg/apis/<group>/validation` answers it: field paths, reasons and
//! messages a client sees in a 422 `Status`.
//!
//! This module holds the pieces every kind shares (field errors, the way
//! upstream prints a bad value, label selectors, IntOrString, immutable
//! fields); one submodule per API group holds that group's kind rules,
//! which `builtin/` attaches to its kinds as [`SpecRules`]. Pod specs are
//! validated in one place, [`crate::registry::pods::validate_pod_spec`].

pub mod apps;
pub mod batch;
pub mod core;
pub mod networking;
pub mod policy;

use std::collections::BTreeMap;

use apimachinery::{meta, StatusCause};
use serde_json::{json, Value};

pub use crate::registry::generic::SpecRules;

/// "Required value", with upstream's optional detail after it.
pub fn required(field: &str, detail: &str) -> StatusCause {
    let mut cause = StatusCause::required(field);
    if !detail.is_empty() {
        cause.message = format!("Required value: {detail}");
    }
    cause
}

/// "Invalid value: <value>: <detail>" with the value already printed the
/// way upstream prints it (see the `go_*` helpers).
pub fn invalid_printed(field: &str, printed: &str, detail: &str) -> StatusCause {
    StatusCause {
        reason: "FieldValueInvalid".into(),
        message: if detail.is_empty() {
            format!("Invalid value: {printed}")
        } else {
            format!("Invalid value: {printed}: {detail}")
        },
        field: field.into(),
    }
}

/// "Unsupported value: <value>: supported values: "a", "b"".
pub fn not_supported(field: &str, printed: &str, supported: &[&str]) -> StatusCause {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    StatusCause {
        reason: "FieldValueNotSupported".into(),
        message: format!(
            "Unsupported value: {printed}: supported values: {}",
            list.join(", ")
        ),
        field: field.into(),
    }
}

/// "Duplicate value: <value>".
pub fn duplicate(field: &str, value: &str) -> StatusCause {
    StatusCause {
        reason: "FieldValueDuplicate".into(),
        message: format!("Duplicate value: {value:?}"),
        field: field.into(),
    }
}

/// A string as upstream prints it: Go-quoted.
pub fn go_string(s: &str) -> String {
    format!("{s:?}")
}

/// A JSON scalar as upstream prints it (numbers and booleans bare, strings
/// quoted); anything else as JSON.
pub fn go_scalar(v: &Value) -> String {
    match v {
        Value::String(s) => go_string(s),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// A `map[string]string` as Go's `%#v` prints it: keys sorted,
/// `map[string]string(nil)` when absent.
pub fn go_string_map(map: Option<&Value>) -> String {
    match map.and_then(Value::as_object) {
        None => "map[string]string(nil)".into(),
        Some(m) => {
            let mut entries: Vec<(&String, String)> = m
                .iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
                .collect();
            entries.sort();
            let body: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}:{}", go_string(k), go_string(v)))
                .collect();
            format!("map[string]string{{{}}}", body.join(", "))
        }
    }
}

fn go_string_slice(values: Option<&Value>) -> String {
    match values.and_then(Value::as_array) {
        None => "[]string(nil)".into(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|v| go_string(v.as_str().unwrap_or_default()))
                .collect();
            format!("[]string{{{}}}", items.join(", "))
        }
    }
}

/// A `*metav1.LabelSelector` as upstream prints it in a field error.
pub fn go_label_selector(selector: Option<&Value>) -> String {
    let Some(sel) = selector.filter(|s| s.is_object()) else {
        return "null".into();
    };
    let expressions = match sel.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|e| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_string(text(e, "key")),
                        go_string(text(e, "operator")),
                        go_string_slice(e.get("values"))
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}",
        go_string_map(sel.get("matchLabels")),
        expressions
    )
}

/// An `intstr.IntOrString` as upstream prints it in a field error.
pub fn go_int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            go_string(s)
        ),
        other => format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            other.as_i64().unwrap_or(0)
        ),
    }
}

/// A struct value upstream would print with `%#v`; we print its JSON.
pub fn printed_json(v: &Value) -> String {
    v.to_string()
}

/// An object's `spec` (`null` when absent).
pub fn spec(obj: &Value) -> &Value {
    obj.get("spec").unwrap_or(&Value::Null)
}

/// A field's value when it is set: present and not null.
pub fn set(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

/// The string at `key` of `v`, or "".
pub fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `ValidateNonnegativeField`: the integer at `pointer` (if set) is >= 0.
pub fn nonnegative(obj: &Value, pointer: &str, field: &str, causes: &mut Vec<StatusCause>) {
    if let Some(n) = obj.pointer(pointer).and_then(Value::as_i64) {
        if n < 0 {
            causes.push(invalid_printed(
                field,
                &n.to_string(),
                "must be greater than or equal to 0",
            ));
        }
    }
}

/// [`nonnegative`] for each of `fields` (dotted paths below `spec`, e.g.
/// `ordinals.start`), reported at `<at>.<field>`, in the order given.
pub fn nonnegative_fields(spec: &Value, at: &str, fields: &[&str], causes: &mut Vec<StatusCause>) {
    for field in fields {
        let pointer = format!("/{}", field.replace('.', "/"));
        nonnegative(spec, &pointer, &format!("{at}.{field}"), causes);
    }
}

/// Drop nulls, empty maps and empty lists, recursively: what upstream's
/// semantic equality does not tell apart from an absent field.
pub fn semantic(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), semantic(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(list) => Value::Array(list.iter().map(semantic).collect()),
        other => other.clone(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// `ValidateImmutableField`: "field is immutable" when the value at
/// `pointer` changed; `print` renders the new value as upstream does.
pub fn immutable(
    new: &Value,
    old: &Value,
    pointer: &str,
    field: &str,
    print: fn(Option<&Value>) -> String,
    causes: &mut Vec<StatusCause>,
) {
    let (a, b) = (new.pointer(pointer), old.pointer(pointer));
    let norm = |v: Option<&Value>| v.map(semantic).filter(|v| !v.is_null());
    if norm(a) != norm(b) {
        causes.push(invalid_printed(field, &print(a), "field is immutable"));
    }
}

/// A scalar (or absent, printed `null`) for [`immutable`].
pub fn print_scalar(v: Option<&Value>) -> String {
    v.map_or_else(|| "null".into(), go_scalar)
}

/// Any value as JSON for [`immutable`].
pub fn print_json(v: Option<&Value>) -> String {
    v.map_or_else(|| "null".into(), printed_json)
}

/// `ValidateLabels` for a labels map at `field` (e.g. a pod template's).
pub fn validate_labels(labels: Option<&Value>, field: &str) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    let Some(map) = labels.and_then(Value::as_object) else {
        return causes;
    };
    for (k, v) in map {
        for e in meta::qualified_name_errors(k) {
            causes.push(StatusCause::invalid(field, &json!(k), &e));
        }
        for e in meta::label_value_errors(v.as_str().unwrap_or_default()) {
            causes.push(StatusCause::invalid(field, v, &e));
        }
    }
    causes
}

/// Upstream's cap on the total size of an object's annotations.
const TOTAL_ANNOTATION_BYTES: usize = 256 * 1024;

/// `ValidateAnnotations` for an annotations map at `field` (e.g. a pod
/// template's): qualified-name keys and at most 256 KiB in all.
pub fn validate_annotations(annotations: Option<&Value>, field: &str) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    let Some(map) = annotations.and_then(Value::as_object) else {
        return causes;
    };
    let mut total = 0usize;
    for (k, v) in map {
        for e in meta::qualified_name_errors(&k.to_ascii_lowercase()) {
            causes.push(StatusCause::invalid(field, &json!(k), &e));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_BYTES {
        causes.push(StatusCause {
            reason: "FieldValueTooLong".into(),
            message: format!("Too long: may not be more than {TOTAL_ANNOTATION_BYTES} bytes"),
            field: field.into(),
        });
    }
    causes
}

/// `ValidateLabelSelector`: operators, their values, and label keys and
/// values, under `field` (e.g. `spec.selector`).
pub fn validate_label_selector(selector: Option<&Value>, field: &str) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    let Some(sel) = selector.filter(|s| s.is_object()) else {
        return causes;
    };
    let expressions = sel.get("matchExpressions").and_then(Value::as_array);
    for (i, expr) in expressions.into_iter().flatten().enumerate() {
        let at = format!("{field}.matchExpressions[{i}]");
        let values = expr
            .get("values")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        match text(expr, "operator") {
            "In" | "NotIn" if values == 0 => causes.push(required(
                &format!("{at}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if values > 0 => causes.push(StatusCause::forbidden(
                &format!("{at}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => causes.push(invalid_printed(
                &format!("{at}.operator"),
                &go_string(other),
                "not a valid selector operator",
            )),
        }
        let key = text(expr, "key");
        for e in meta::qualified_name_errors(key) {
            causes.push(StatusCause::invalid(&format!("{at}.key"), &json!(key), &e));
        }
    }
    causes.extend(validate_labels(
        sel.get("matchLabels"),
        &format!("{field}.matchLabels"),
    ));
    causes
}

/// Upstream's error when a controller's selector does not select the
/// `labels` of its `spec.template`.
pub fn template_labels_not_selected(labels: Option<&Value>) -> StatusCause {
    invalid_printed(
        "spec.template.metadata.labels",
        &go_string_map(labels),
        "`selector` does not match template `labels`",
    )
}

/// What the pods of every long-running controller share: restartPolicy
/// Always and no activeDeadlineSeconds in `spec.template` (`kind` as
/// upstream names it in the message).
pub fn always_restarting_template(spec: &Value, kind: &str, causes: &mut Vec<StatusCause>) {
    let policy = spec
        .pointer("/template/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("");
    if policy != "Always" {
        causes.push(not_supported(
            "spec.template.spec.restartPolicy",
            &go_string(policy),
            &["Always"],
        ));
    }
    if set(spec.pointer("/template/spec/activeDeadlineSeconds")).is_some() {
        causes.push(StatusCause::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            &format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
}

/// Whether a selector names no requirement at all (selects everything).
pub fn selector_is_empty(selector: &Value) -> bool {
    let count = |k: &str| match selector.get(k) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    };
    count("matchLabels") + count("matchExpressions") == 0
}

/// Whether `selector` selects the labels at `labels` (a string map).
/// An absent selector selects nothing, as `LabelSelectorAsSelector(nil)`.
pub fn selector_matches(selector: Option<&Value>, labels: Option<&Value>) -> bool {
    let Some(sel) = selector.filter(|s| s.is_object()) else {
        return false;
    };
    let set: BTreeMap<String, String> = labels
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default();
    apimachinery::selector::label_selector_matches(sel, &set)
}

/// Whether the selector converts to a label selector at all (known
/// operators only), as `LabelSelectorAsSelector` requires.
pub fn selector_converts(selector: Option<&Value>) -> bool {
    selector
        .and_then(|s| s.get("matchExpressions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|e| {
            matches!(
                text(e, "operator"),
                "In" | "NotIn" | "Exists" | "DoesNotExist"
            )
        })
}

/// `IsValidPercent`'s message.
const PERCENT_MESSAGE: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";

/// The number in a valid percent string ("25%" -> 25).
fn percent_value(s: &str) -> Option<i64> {
    let digits = s.strip_suffix('%')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `ValidatePositiveIntOrPercent` for the IntOrString at `pointer`, if
/// set: a percent string or a non-negative integer.
pub fn int_or_percent(obj: &Value, pointer: &str, field: &str, causes: &mut Vec<StatusCause>) {
    match obj.pointer(pointer) {
        None | Some(Value::Null) => {}
        Some(v @ Value::String(s)) => {
            if percent_value(s).is_none() {
                causes.push(invalid_printed(
                    field,
                    &go_int_or_string(v),
                    PERCENT_MESSAGE,
                ));
            }
        }
        Some(other) => {
            let n = other.as_i64().unwrap_or(0);
            if n < 0 {
                causes.push(invalid_printed(
                    field,
                    &n.to_string(),
                    "must be greater than or equal to 0",
                ));
            }
        }
    }
}

/// `IsNotMoreThan100Percent` for the IntOrString at `pointer`, if set.
pub fn not_more_than_100_percent(
    obj: &Value,
    pointer: &str,
    field: &str,
    causes: &mut Vec<StatusCause>,
) {
    if let Some(v @ Value::String(s)) = obj.pointer(pointer) {
        if percent_value(s).is_some_and(|p| p > 100) {
            causes.push(invalid_printed(
                field,
                &go_int_or_string(v),
                "must not be greater than 100%",
            ));
        }
    }
}

/// The number an IntOrString stands for (a percent counts as its number),
/// 0 when absent or malformed, as upstream's `getIntOrPercentValue`.
pub fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) => percent_value(s).unwrap_or(0),
        Some(other) => other.as_i64().unwrap_or(0),
        None => 0,
    }
}

/// The fields of `causes`, in order: what the kinds' tests compare.
#[cfg(test)]
pub fn fields(causes: &[StatusCause]) -> Vec<&str> {
    causes.iter().map(|c| c.field.as_str()).collect()
}

/// That `causes` are at exactly `expected`, in order, and the first says
/// `message`.
#[cfg(test)]
#[track_caller]
pub fn assert_causes(causes: &[StatusCause], expected: &[&str], message: &str) {
    assert_eq!(fields(causes), expected);
    assert_eq!(causes[0].message, message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_as_upstream_prints_them() {
        assert_eq!(
            go_string_map(Some(&json!({"b": "2", "a": "1"}))),
            r#"map[string]string{"a":"1", "b":"2"}"#
        );
        assert_eq!(go_string_map(None), "map[string]string(nil)");
        assert_eq!(
            go_label_selector(Some(&json!({"matchLabels": {"app": "y"}}))),
            r#"v1.LabelSelector{MatchLabels:map[string]string{"app":"y"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"#
        );
        assert_eq!(
            go_int_or_string(&json!("150%")),
            r#"intstr.IntOrString{Type:1, IntVal:0, StrVal:"150%"}"#
        );
    }

    #[test]
    fn selectors_with_bad_operators_or_values_are_invalid() {
        let sel = json!({"matchExpressions": [
            {"key": "a", "operator": "In"},
            {"key": "b", "operator": "Exists", "values": ["x"]},
            {"key": "c", "operator": "Gt", "values": ["1"]},
        ]});
        let causes = validate_label_selector(Some(&sel), "spec.selector");
        assert_eq!(
            fields(&causes),
            [
                "spec.selector.matchExpressions[0].values",
                "spec.selector.matchExpressions[1].values",
                "spec.selector.matchExpressions[2].operator",
            ]
        );
        assert!(!selector_converts(Some(&sel)));
    }

    #[test]
    fn percentages_above_100_and_negative_counts_are_invalid() {
        let obj = json!({"a": "150%", "b": -1, "c": "x%", "d": "25%"});
        let mut causes = Vec::new();
        for p in ["a", "b", "c", "d"] {
            int_or_percent(&obj, &format!("/{p}"), p, &mut causes);
            not_more_than_100_percent(&obj, &format!("/{p}"), p, &mut causes);
        }
        assert_eq!(fields(&causes), ["a", "b", "c"]);
        assert_eq!(int_or_percent_value(obj.get("d")), 25);
    }

    #[test]
    fn immutable_fields_ignore_empty_versus_absent() {
        let old =
            json!({"spec": {"selector": {"matchLabels": {"a": "b"}, "matchExpressions": []}}});
        let same = json!({"spec": {"selector": {"matchLabels": {"a": "b"}}}});
        let changed = json!({"spec": {"selector": {"matchLabels": {"a": "c"}}}});
        let mut causes = Vec::new();
        immutable(
            &same,
            &old,
            "/spec/selector",
            "spec.selector",
            go_label_selector,
            &mut causes,
        );
        assert!(causes.is_empty());
        immutable(
            &changed,
            &old,
            "/spec/selector",
            "spec.selector",
            go_label_selector,
            &mut causes,
        );
        assert_eq!(
            causes[0].message,
            r#"Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"a":"c"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"#
        );
    }
}
