//! discovery.k8s.io/v1 EndpointSlices.

use apimachinery::meta;
use apimachinery::resource::{ResourceInfo, Scope, ALL_VERBS};
use k8s_openapi::api::discovery::v1 as api;
use serde_json::{json, Value};

use super::docs;
use super::tables::{col, list, list_with_more, text};
use crate::registry::generic::GenericStrategy;
use crate::table::Column;
use crate::typed::codec;

pub fn kinds() -> Vec<GenericStrategy> {
    vec![GenericStrategy {
        info: ResourceInfo {
            group: "discovery.k8s.io",
            version: "v1",
            kind: "EndpointSlice",
            plural: "endpointslices",
            singular: "endpointslice",
            scope: Scope::Namespaced,
            short_names: &[],
            categories: &[],
            verbs: ALL_VERBS,
            subresources: &[],
        },
        decode: codec::<api::EndpointSlice>(),
        name_rule: meta::dns1123_subdomain_errors,
        initial_status: None,
        // Upstream also bumps generation when labels change.
        generation: true,
        spec_rules: None,
        columns: endpoint_slice_columns,
        cells: endpoint_slice_cells,
    }]
}

fn endpoint_slice_columns() -> Vec<Column> {
    vec![
        col("AddressType", "string", docs::EPS_ADDRESS_TYPE),
        col("Ports", "string", docs::EPS_PORTS),
        col("Endpoints", "string", docs::EPS_ENDPOINTS),
    ]
}

fn endpoint_slice_cells(slice: &Value) -> Vec<Value> {
    let ports: Vec<String> = list(slice, "/ports")
        .iter()
        .map(
            |p| match (p.get("port").and_then(Value::as_i64), p.get("name")) {
                (Some(port), _) => port.to_string(),
                (None, Some(Value::String(name))) => name.clone(),
                _ => "*".into(),
            },
        )
        .collect();
    let addresses: Vec<String> = list(slice, "/endpoints")
        .iter()
        .flat_map(|e| list(e, "/addresses"))
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    vec![
        json!(text(slice, "/addressType")),
        json!(list_with_more(&ports, 3)),
        json!(list_with_more(&addresses, 3)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_slice_cells_list_ports_and_addresses() {
        let slice = json!({
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80}, {"name": "named"}, {}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]}],
        });
        assert_eq!(
            endpoint_slice_cells(&slice),
            vec![
                json!("IPv4"),
                json!("80,named,*"),
                json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."),
            ]
        );
        assert_eq!(
            endpoint_slice_cells(&json!({"addressType": "IPv4"}))[1..],
            [json!("<unset>"), json!("<unset>")]
        );
    }
}
