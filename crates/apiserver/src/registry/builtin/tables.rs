//! Helpers for table cells: reading an object held as JSON the way
//! upstream's printers read the typed object (a missing field is the Go
//! zero value), and the formatting the printers share (label selectors,
//! container lists, "+ N more..." lists, ages).

use apimachinery::meta;
use serde_json::Value;
use time::OffsetDateTime;

use crate::table::Column;

/// A column shown by default.
pub fn col(name: &'static str, kind: &'static str, description: &'static str) -> Column {
    Column::new(name, kind, description)
}

/// A column shown only with `-o wide`.
pub fn wide(name: &'static str, kind: &'static str, description: &'static str) -> Column {
    Column {
        priority: 1,
        ..Column::new(name, kind, description)
    }
}

/// The string at a JSON pointer, or "" (Go's zero value).
pub fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The string at a JSON pointer, if it is set and not empty.
pub fn non_empty<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The integer at a JSON pointer, or 0.
pub fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The boolean at a JSON pointer, if set.
pub fn flag(obj: &Value, pointer: &str) -> Option<bool> {
    obj.pointer(pointer).and_then(Value::as_bool)
}

/// The array at a JSON pointer, or an empty slice.
pub fn list<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A resource quantity as printed (`Quantity.String()`); a missing one is "0".
pub fn quantity(obj: &Value, pointer: &str) -> String {
    match obj.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".into(),
    }
}

/// Time since an RFC 3339 timestamp, as `kubectl get` prints ages.
pub fn since(timestamp: Option<&str>, now: OffsetDateTime) -> String {
    match timestamp.and_then(meta::parse_timestamp) {
        Some(t) => meta::human_duration((now - t).whole_seconds()),
        None => "<unknown>".into(),
    }
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key, or `<none>`.
pub fn format_labels(map: Option<&Value>) -> String {
    let mut pairs: Vec<String> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: requirements sorted by
/// key; `Err` when the selector is malformed.
pub fn selector_string(selector: Option<&Value>) -> Result<String, ()> {
    let Some(sel) = selector.filter(|s| !s.is_null()) else {
        return Ok(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(labels) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for expr in list(sel, "/matchExpressions") {
        let key = text(expr, "/key");
        let mut values: Vec<&str> = list(expr, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        let rendered = match text(expr, "/operator") {
            "In" | "NotIn" if values.is_empty() => return Err(()),
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" | "DoesNotExist" if !values.is_empty() => return Err(()),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return Err(()),
        };
        reqs.push((key.to_string(), rendered));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: `<none>` when empty, `<error>` when malformed.
pub fn format_label_selector(selector: Option<&Value>) -> String {
    match selector_string(selector) {
        Ok(s) if s.is_empty() => "<none>".into(),
        Ok(s) => s,
        Err(()) => "<error>".into(),
    }
}

/// Container names and images of a pod spec, each comma-joined.
pub fn containers(pod_spec: Option<&Value>) -> (String, String) {
    let containers = pod_spec.map_or(&[][..], |s| list(s, "/containers"));
    let names: Vec<&str> = containers.iter().map(|c| text(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// Up to `max` items, then " + N more...", or `<unset>` when there are none.
pub fn list_with_more(items: &[String], max: usize) -> String {
    let shown = items[..items.len().min(max)].join(",");
    if items.len() > max {
        format!("{shown} + {} more...", items.len() - max)
    } else if shown.is_empty() {
        "<unset>".into()
    } else {
        shown
    }
}

/// Load-balancer ingress points (IP, else hostname), sorted and unique.
pub fn load_balancer_ingress(status: Option<&Value>) -> String {
    let mut points: Vec<&str> = status
        .map_or(&[][..], |s| list(s, "/ingress"))
        .iter()
        .filter_map(|i| non_empty(i, "/ip").or_else(|| non_empty(i, "/hostname")))
        .collect();
    points.sort_unstable();
    points.dedup();
    points.join(",")
}

/// Whether the object is being deleted.
pub fn terminating(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// `"True"`, `"False"`, or `"<unset>"` for a missing boolean.
pub fn bool_text(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    }
}

/// Access modes in upstream's short form ("RWO,ROX,RWX,RWOP").
pub fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors_print_sorted_requirements() {
        let sel = json!({
            "matchLabels": {"tier": "web", "app": "nginx"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "zone", "operator": "DoesNotExist"},
            ],
        });
        assert_eq!(
            format_label_selector(Some(&sel)),
            "app=nginx,env in (dev,prod),tier=web,!zone"
        );
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
        assert_eq!(format_label_selector(None), "<none>");
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "In"}]});
        assert_eq!(format_label_selector(Some(&bad)), "<error>");
    }

    #[test]
    fn label_maps_print_sorted_or_none() {
        assert_eq!(format_labels(Some(&json!({"b": "2", "a": "1"}))), "a=1,b=2");
        assert_eq!(format_labels(Some(&json!({}))), "<none>");
    }

    #[test]
    fn long_lists_are_cut_after_max_items() {
        let items: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        assert_eq!(list_with_more(&items, 3), "a,b,c + 2 more...");
        assert_eq!(list_with_more(&[], 3), "<unset>");
    }

    #[test]
    fn access_modes_print_in_upstream_order() {
        let modes = json!(["ReadWriteMany", "ReadWriteOnce"]);
        assert_eq!(access_modes(modes.as_array().unwrap()), "RWO,RWX");
    }
}
