//! events.k8s.io/v1 Events: the same objects as core/v1 Events under
//! renamed fields, printed by the same printer.

use apimachinery::meta;
use apimachinery::resource::{ResourceInfo, Scope, ALL_VERBS};
use k8s_openapi::api::events::v1 as api;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::core::{event_cells_at, event_columns};
use crate::registry::generic::GenericStrategy;
use crate::typed::codec;

pub fn kinds() -> Vec<GenericStrategy> {
    vec![GenericStrategy {
        info: ResourceInfo {
            group: "events.k8s.io",
            version: "v1",
            kind: "Event",
            plural: "events",
            singular: "event",
            scope: Scope::Namespaced,
            short_names: &["ev"],
            categories: &[],
            verbs: ALL_VERBS,
            subresources: &[],
        },
        decode: codec::<api::Event>(),
        name_rule: meta::dns1123_subdomain_errors,
        initial_status: None,
        generation: false,
        spec_rules: None,
        columns: event_columns,
        cells: event_cells,
    }]
}

/// events.k8s.io/v1 field names and their core/v1 equivalents.
const CORE_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("type", "type"),
    ("reason", "reason"),
    ("reportingController", "reportingComponent"),
    ("reportingInstance", "reportingInstance"),
];

/// The event in core/v1 shape, as upstream converts it before printing.
/// Objects written through core/v1 (stored without conversion) already
/// carry the core names; those are kept.
fn as_core_event(event: &Value) -> Value {
    let mut core = Map::new();
    for (from, to) in CORE_FIELDS {
        if let Some(v) = event.get(*from).or_else(|| event.get(*to)) {
            core.insert((*to).to_string(), v.clone());
        }
    }
    Value::Object(core)
}

fn event_cells(event: &Value) -> Vec<Value> {
    event_cells_at(&as_core_event(event), OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn new_api_events_print_like_core_events() {
        let ev = json!({
            "eventTime": "2024-05-01T11:59:00.000000Z", "type": "Normal", "reason": "Scheduled",
            "note": "Successfully assigned default/web to node-1",
            "regarding": {"kind": "Pod", "name": "web"},
            "reportingController": "default-scheduler", "reportingInstance": "default-scheduler-cp",
        });
        let now = meta::parse_timestamp("2024-05-01T12:00:00Z").unwrap();
        assert_eq!(
            event_cells_at(&as_core_event(&ev), now),
            vec![
                json!("60s"),
                json!("Normal"),
                json!("Scheduled"),
                json!("pod/web"),
                json!(""),
                json!("default-scheduler, default-scheduler-cp"),
                json!("Successfully assigned default/web to node-1"),
                json!("60s"),
                json!(1),
            ]
        );
    }

    #[test]
    fn events_stored_in_core_shape_keep_their_fields() {
        let ev = json!({
            "involvedObject": {"kind": "Pod", "name": "p1"}, "message": "hi",
            "type": "Normal", "reason": "Pulled", "count": 2,
        });
        let core = as_core_event(&ev);
        assert_eq!(core["involvedObject"]["name"], "p1");
        assert_eq!(core["message"], "hi");
        assert_eq!(core["count"], 2);
    }
}
