//! scheduling.k8s.io/v1 PriorityClasses.

use apimachinery::meta;
use apimachinery::resource::{ResourceInfo, Scope, ALL_VERBS};
use k8s_openapi::api::scheduling::v1 as api;
use serde_json::{json, Value};

use super::docs;
use super::tables::{col, flag, int, text};
use crate::registry::generic::GenericStrategy;
use crate::table::Column;
use crate::typed::codec;

pub fn kinds() -> Vec<GenericStrategy> {
    vec![GenericStrategy {
        info: ResourceInfo {
            group: "scheduling.k8s.io",
            version: "v1",
            kind: "PriorityClass",
            plural: "priorityclasses",
            singular: "priorityclass",
            scope: Scope::Cluster,
            short_names: &["pc"],
            categories: &[],
            verbs: ALL_VERBS,
            subresources: &[],
        },
        decode: codec::<api::PriorityClass>(),
        // Upstream also reserves the "system-" prefix for its two built-in
        // classes, which depends on the value, not only the name.
        name_rule: meta::dns1123_subdomain_errors,
        initial_status: None,
        generation: false,
        spec_rules: None,
        columns: priority_class_columns,
        cells: priority_class_cells,
    }]
}

fn priority_class_columns() -> Vec<Column> {
    vec![
        col("Value", "integer", docs::PC_VALUE),
        col("Global-Default", "boolean", docs::PC_GLOBAL_DEFAULT),
        // Upstream places Age here, before PreemptionPolicy.
        col("PreemptionPolicy", "string", docs::PC_PREEMPTION),
    ]
}

fn priority_class_cells(pc: &Value) -> Vec<Value> {
    vec![
        json!(int(pc, "/value")),
        json!(flag(pc, "/globalDefault").unwrap_or(false)),
        json!(text(pc, "/preemptionPolicy")),
    ]
}
