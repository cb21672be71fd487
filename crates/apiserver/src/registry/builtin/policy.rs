//! policy/v1 PodDisruptionBudgets (Evictions are a pods subresource).

use apimachinery::meta;
use apimachinery::resource::{ResourceInfo, Scope, ALL_VERBS};
use k8s_openapi::api::policy::v1 as api;
use serde_json::{json, Value};

use super::tables::{col, int};
use crate::registry::generic::GenericStrategy;
use crate::registry::validation;
use crate::table::Column;
use crate::typed::codec;

pub fn kinds() -> Vec<GenericStrategy> {
    vec![GenericStrategy {
        info: ResourceInfo {
            group: "policy",
            version: "v1",
            kind: "PodDisruptionBudget",
            plural: "poddisruptionbudgets",
            singular: "poddisruptionbudget",
            scope: Scope::Namespaced,
            short_names: &["pdb"],
            categories: &[],
            verbs: ALL_VERBS,
            subresources: &["status"],
        },
        decode: codec::<api::PodDisruptionBudget>(),
        name_rule: meta::dns1123_subdomain_errors,
        initial_status: Some(
            || json!({"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0}),
        ),
        generation: true,
        spec_rules: Some(validation::policy::POD_DISRUPTION_BUDGET),
        columns: pdb_columns,
        cells: pdb_cells,
    }]
}

fn pdb_columns() -> Vec<Column> {
    vec![
        col(
            "Min Available",
            "string",
            "The minimum number of pods that must be available.",
        ),
        col(
            "Max Unavailable",
            "string",
            "The maximum number of pods that may be unavailable.",
        ),
        col(
            "Allowed Disruptions",
            "integer",
            "Calculated number of pods that may be disrupted at this time.",
        ),
    ]
}

/// An IntOrString as printed, or "N/A" when unset.
fn int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "N/A".into(),
    }
}

fn pdb_cells(pdb: &Value) -> Vec<Value> {
    vec![
        json!(int_or_string(pdb.pointer("/spec/minAvailable"))),
        json!(int_or_string(pdb.pointer("/spec/maxUnavailable"))),
        json!(int(pdb, "/status/disruptionsAllowed")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdb_cells_show_bounds_or_not_applicable() {
        let pdb = json!({"spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
        assert_eq!(pdb_cells(&pdb), vec![json!("50%"), json!("N/A"), json!(1)]);
    }
}
