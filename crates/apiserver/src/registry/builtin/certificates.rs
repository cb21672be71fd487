//! certificates.k8s.io/v1 CertificateSigningRequests.

use apimachinery::meta;
use apimachinery::resource::{ResourceInfo, Scope, ALL_VERBS};
use k8s_openapi::api::certificates::v1 as api;
use serde_json::{json, Value};

use super::docs;
use super::tables::{col, list, non_empty, text};
use crate::registry::generic::{path_segment_name_errors, GenericStrategy};
use crate::table::Column;
use crate::typed::codec;

pub fn kinds() -> Vec<GenericStrategy> {
    vec![GenericStrategy {
        info: ResourceInfo {
            group: "certificates.k8s.io",
            version: "v1",
            kind: "CertificateSigningRequest",
            plural: "certificatesigningrequests",
            singular: "certificatesigningrequest",
            scope: Scope::Cluster,
            short_names: &["csr"],
            categories: &[],
            verbs: ALL_VERBS,
            // Upstream also serves certificatesigningrequests/approval.
            subresources: &["status"],
        },
        decode: codec::<api::CertificateSigningRequest>(),
        // Upstream does not restrict CSR names beyond the path-segment rule.
        name_rule: path_segment_name_errors,
        // Upstream also overwrites spec.username/uid/groups/extra with the
        // requesting user, which this hook cannot see.
        initial_status: Some(|| json!({})),
        generation: false,
        spec_rules: None,
        columns: csr_columns,
        cells: csr_cells,
    }]
}

fn csr_columns() -> Vec<Column> {
    // Upstream places Age first, right after Name.
    vec![
        col("SignerName", "string", docs::CSR_SIGNER_NAME),
        col("Requestor", "string", docs::CSR_REQUEST),
        col("RequestedDuration", "string", docs::CSR_EXPIRATION_SECONDS),
        col("Condition", "string", docs::CSR_CONDITIONS),
    ]
}

/// "Approved,Issued", "Denied", "Pending", ... (upstream's `extractCSRStatus`).
fn csr_condition(csr: &Value) -> String {
    let has = |kind: &str| {
        list(csr, "/status/conditions")
            .iter()
            .any(|c| text(c, "/type") == kind)
    };
    let mut status = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if has("Failed") {
        status.push_str(",Failed");
    }
    if non_empty(csr, "/status/certificate").is_some() {
        status.push_str(",Issued");
    }
    status
}

fn csr_cells(csr: &Value) -> Vec<Value> {
    let duration = csr
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .map_or("<none>".to_string(), meta::human_duration);
    vec![
        json!(non_empty(csr, "/spec/signerName").unwrap_or("<none>")),
        json!(text(csr, "/spec/username")),
        json!(duration),
        json!(csr_condition(csr)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_cells_show_signer_requestor_and_condition() {
        let csr = json!({
            "spec": {"signerName": "kubernetes.io/kube-apiserver-client", "username": "alice", "expirationSeconds": 86400, "request": "LS0t"},
            "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"},
        });
        assert_eq!(
            csr_cells(&csr),
            vec![
                json!("kubernetes.io/kube-apiserver-client"),
                json!("alice"),
                json!("24h"),
                json!("Approved,Issued"),
            ]
        );
        assert_eq!(csr_cells(&json!({}))[3], json!("Pending"));
    }
}
