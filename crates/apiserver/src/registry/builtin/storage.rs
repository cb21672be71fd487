//! storage.k8s.io/v1 kinds.

use apimachinery::meta;
use apimachinery::resource::{ResourceInfo, Scope, ALL_VERBS};
use k8s_openapi::api::storage::v1 as api;
use serde_json::{json, Value};

use super::docs;
use super::names;
use super::tables::{col, flag, list, non_empty, text};
use crate::registry::generic::GenericStrategy;
use crate::table::Column;
use crate::typed::codec;

/// In upstream's discovery order (alphabetical by resource).
pub fn kinds() -> Vec<GenericStrategy> {
    vec![
        GenericStrategy {
            info: info("CSIDriver", "csidrivers", "csidriver", &[], &[]),
            decode: codec::<api::CSIDriver>(),
            name_rule: names::csi_driver_name_errors,
            initial_status: None,
            generation: false,
            spec_rules: None,
            columns: csi_driver_columns,
            cells: csi_driver_cells,
        },
        GenericStrategy {
            info: info("CSINode", "csinodes", "csinode", &[], &[]),
            decode: codec::<api::CSINode>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: None,
            generation: false,
            spec_rules: None,
            columns: csi_node_columns,
            cells: csi_node_cells,
        },
        GenericStrategy {
            info: info(
                "StorageClass",
                "storageclasses",
                "storageclass",
                &["sc"],
                &[],
            ),
            decode: codec::<api::StorageClass>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: None,
            generation: false,
            spec_rules: None,
            columns: storage_class_columns,
            cells: storage_class_cells,
        },
        GenericStrategy {
            info: info(
                "VolumeAttachment",
                "volumeattachments",
                "volumeattachment",
                &[],
                &["status"],
            ),
            decode: codec::<api::VolumeAttachment>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: Some(|| json!({"attached": false})),
            generation: false,
            spec_rules: None,
            columns: volume_attachment_columns,
            cells: volume_attachment_cells,
        },
    ]
}

/// A cluster-scoped storage.k8s.io/v1 resource with every verb.
fn info(
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    subresources: &'static [&'static str],
) -> ResourceInfo {
    ResourceInfo {
        group: "storage.k8s.io",
        version: "v1",
        kind,
        plural,
        singular,
        scope: Scope::Cluster,
        short_names,
        categories: &[],
        verbs: ALL_VERBS,
        subresources,
    }
}

fn storage_class_columns() -> Vec<Column> {
    vec![
        col("Provisioner", "string", docs::SC_PROVISIONER),
        col("ReclaimPolicy", "string", docs::SC_RECLAIM_POLICY),
        col("VolumeBindingMode", "string", docs::SC_BINDING_MODE),
        col("AllowVolumeExpansion", "string", docs::SC_ALLOW_EXPANSION),
    ]
}

/// Upstream also appends " (default)" to the Name cell of the default
/// class; the Name cell is not this strategy's to change.
fn storage_class_cells(sc: &Value) -> Vec<Value> {
    vec![
        json!(text(sc, "/provisioner")),
        json!(non_empty(sc, "/reclaimPolicy").unwrap_or("Delete")),
        json!(non_empty(sc, "/volumeBindingMode").unwrap_or("Immediate")),
        json!(flag(sc, "/allowVolumeExpansion").unwrap_or(false)),
    ]
}

fn csi_driver_columns() -> Vec<Column> {
    vec![
        col("AttachRequired", "boolean", docs::CSIDRIVER_ATTACH_REQUIRED),
        col("PodInfoOnMount", "boolean", docs::CSIDRIVER_POD_INFO),
        col(
            "StorageCapacity",
            "boolean",
            docs::CSIDRIVER_STORAGE_CAPACITY,
        ),
        col("TokenRequests", "string", docs::CSIDRIVER_TOKEN_REQUESTS),
        col("RequiresRepublish", "boolean", docs::CSIDRIVER_REPUBLISH),
        col("Modes", "string", docs::CSIDRIVER_MODES),
    ]
}

fn csi_driver_cells(driver: &Value) -> Vec<Value> {
    let token_requests = match driver.pointer("/spec/tokenRequests") {
        Some(Value::Array(requests)) => requests
            .iter()
            .map(|r| text(r, "/audience"))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<unset>".into(),
    };
    let modes: Vec<&str> = list(driver, "/spec/volumeLifecycleModes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let modes = if modes.is_empty() {
        "<none>".to_string()
    } else {
        modes.join(",")
    };
    vec![
        json!(flag(driver, "/spec/attachRequired").unwrap_or(true)),
        json!(flag(driver, "/spec/podInfoOnMount").unwrap_or(false)),
        json!(flag(driver, "/spec/storageCapacity").unwrap_or(false)),
        json!(token_requests),
        json!(flag(driver, "/spec/requiresRepublish").unwrap_or(false)),
        json!(modes),
    ]
}

fn csi_node_columns() -> Vec<Column> {
    vec![col(
        "Drivers",
        "integer",
        "Drivers indicates the number of CSI drivers registered on the node",
    )]
}

fn csi_node_cells(node: &Value) -> Vec<Value> {
    vec![json!(list(node, "/spec/drivers").len())]
}

fn volume_attachment_columns() -> Vec<Column> {
    vec![
        Column {
            format: "name",
            ..col("Attacher", "string", docs::VA_ATTACHER)
        },
        col("PV", "string", docs::VA_PV),
        col("Node", "string", docs::VA_NODE),
        col("Attached", "boolean", docs::VA_ATTACHED),
    ]
}

fn volume_attachment_cells(va: &Value) -> Vec<Value> {
    vec![
        json!(text(va, "/spec/attacher")),
        json!(text(va, "/spec/source/persistentVolumeName")),
        json!(text(va, "/spec/nodeName")),
        json!(flag(va, "/status/attached").unwrap_or(false)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_class_cells_default_policy_and_binding_mode() {
        let sc = json!({"provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
        assert_eq!(
            storage_class_cells(&sc),
            vec![
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false),
            ]
        );
    }

    #[test]
    fn csi_driver_cells_follow_upstream_defaults() {
        let driver = json!({"spec": {"volumeLifecycleModes": ["Persistent", "Ephemeral"], "tokenRequests": [{"audience": "vault"}]}});
        assert_eq!(
            csi_driver_cells(&driver),
            vec![
                json!(true),
                json!(false),
                json!(false),
                json!("vault"),
                json!(false),
                json!("Persistent,Ephemeral"),
            ]
        );
    }
}
