//! node.k8s.io/v1 RuntimeClasses.

use apimachinery::meta;
use apimachinery::resource::{ResourceInfo, Scope, ALL_VERBS};
use k8s_openapi::api::node::v1 as api;
use serde_json::{json, Value};

use super::tables::{col, text};
use crate::registry::generic::GenericStrategy;
use crate::table::Column;
use crate::typed::codec;

pub fn kinds() -> Vec<GenericStrategy> {
    vec![GenericStrategy {
        info: ResourceInfo {
            group: "node.k8s.io",
            version: "v1",
            kind: "RuntimeClass",
            plural: "runtimeclasses",
            singular: "runtimeclass",
            scope: Scope::Cluster,
            short_names: &[],
            categories: &[],
            verbs: ALL_VERBS,
            subresources: &[],
        },
        decode: codec::<api::RuntimeClass>(),
        name_rule: meta::dns1123_subdomain_errors,
        initial_status: None,
        generation: false,
        spec_rules: None,
        columns: runtime_class_columns,
        cells: runtime_class_cells,
    }]
}

fn runtime_class_columns() -> Vec<Column> {
    // Upstream looks the description up under a key ObjectMeta does not
    // have, so it is empty.
    vec![col("Handler", "string", "")]
}

fn runtime_class_cells(rc: &Value) -> Vec<Value> {
    vec![json!(text(rc, "/handler"))]
}
