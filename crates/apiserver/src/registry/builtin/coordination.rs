//! coordination.k8s.io/v1 Leases.

use apimachinery::meta;
use apimachinery::resource::{ResourceInfo, Scope, ALL_VERBS};
use k8s_openapi::api::coordination::v1 as api;
use serde_json::{json, Value};

use super::docs;
use super::tables::{col, text};
use crate::registry::generic::GenericStrategy;
use crate::table::Column;
use crate::typed::codec;

pub fn kinds() -> Vec<GenericStrategy> {
    vec![GenericStrategy {
        info: ResourceInfo {
            group: "coordination.k8s.io",
            version: "v1",
            kind: "Lease",
            plural: "leases",
            singular: "lease",
            scope: Scope::Namespaced,
            short_names: &[],
            categories: &[],
            verbs: ALL_VERBS,
            subresources: &[],
        },
        decode: codec::<api::Lease>(),
        name_rule: meta::dns1123_subdomain_errors,
        initial_status: None,
        generation: false,
        spec_rules: None,
        columns: lease_columns,
        cells: lease_cells,
    }]
}

fn lease_columns() -> Vec<Column> {
    vec![col("Holder", "string", docs::LEASE_HOLDER)]
}

fn lease_cells(lease: &Value) -> Vec<Value> {
    vec![json!(text(lease, "/spec/holderIdentity"))]
}
