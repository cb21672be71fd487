//! rbac.authorization.k8s.io/v1 kinds. Names are path segments (they often
//! contain ':', as in "system:node").

use apimachinery::resource::{ResourceInfo, Scope, ALL_VERBS};
use k8s_openapi::api::rbac::v1 as api;
use serde_json::{json, Value};

use super::docs;
use super::tables::{col, list, text, wide};
use crate::registry::generic::{no_cells, no_columns, path_segment_name_errors, GenericStrategy};
use crate::table::Column;
use crate::typed::codec;

/// In upstream's discovery order (alphabetical by resource).
pub fn kinds() -> Vec<GenericStrategy> {
    vec![
        GenericStrategy {
            info: info(
                "ClusterRoleBinding",
                "clusterrolebindings",
                "clusterrolebinding",
                Scope::Cluster,
            ),
            decode: codec::<api::ClusterRoleBinding>(),
            name_rule: path_segment_name_errors,
            initial_status: None,
            generation: false,
            spec_rules: None,
            columns: cluster_role_binding_columns,
            cells: binding_cells,
        },
        GenericStrategy {
            info: info("ClusterRole", "clusterroles", "clusterrole", Scope::Cluster),
            decode: codec::<api::ClusterRole>(),
            name_rule: path_segment_name_errors,
            initial_status: None,
            generation: false,
            // Upstream has no printer: its default table is Name and
            // "Created At" (RFC 3339), not Age.
            spec_rules: None,
            columns: no_columns,
            cells: no_cells,
        },
        GenericStrategy {
            info: info(
                "RoleBinding",
                "rolebindings",
                "rolebinding",
                Scope::Namespaced,
            ),
            decode: codec::<api::RoleBinding>(),
            name_rule: path_segment_name_errors,
            initial_status: None,
            generation: false,
            spec_rules: None,
            columns: role_binding_columns,
            cells: binding_cells,
        },
        GenericStrategy {
            info: info("Role", "roles", "role", Scope::Namespaced),
            decode: codec::<api::Role>(),
            name_rule: path_segment_name_errors,
            initial_status: None,
            generation: false,
            // Default table, as for ClusterRoles.
            spec_rules: None,
            columns: no_columns,
            cells: no_cells,
        },
    ]
}

fn info(
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    scope: Scope,
) -> ResourceInfo {
    ResourceInfo {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind,
        plural,
        singular,
        scope,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
    }
}

fn role_binding_columns() -> Vec<Column> {
    vec![
        col("Role", "string", docs::ROLEBINDING_ROLE_REF),
        // Upstream places Age here.
        wide("Users", "string", "Users in the roleBinding"),
        wide("Groups", "string", "Groups in the roleBinding"),
        wide(
            "ServiceAccounts",
            "string",
            "ServiceAccounts in the roleBinding",
        ),
    ]
}

fn cluster_role_binding_columns() -> Vec<Column> {
    vec![
        col("Role", "string", docs::CLUSTERROLEBINDING_ROLE_REF),
        // Upstream places Age here.
        wide("Users", "string", "Users in the clusterRoleBinding"),
        wide("Groups", "string", "Groups in the clusterRoleBinding"),
        wide(
            "ServiceAccounts",
            "string",
            "ServiceAccounts in the clusterRoleBinding",
        ),
    ]
}

/// The role reference and the subjects by kind (`rbac.SubjectsStrings`).
fn binding_cells(binding: &Value) -> Vec<Value> {
    let (mut users, mut groups, mut service_accounts) = (Vec::new(), Vec::new(), Vec::new());
    for s in list(binding, "/subjects") {
        match text(s, "/kind") {
            "User" => users.push(text(s, "/name").to_string()),
            "Group" => groups.push(text(s, "/name").to_string()),
            "ServiceAccount" => {
                service_accounts.push(format!("{}/{}", text(s, "/namespace"), text(s, "/name")))
            }
            _ => {}
        }
    }
    vec![
        json!(format!(
            "{}/{}",
            text(binding, "/roleRef/kind"),
            text(binding, "/roleRef/name")
        )),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(service_accounts.join(", ")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_cells_group_subjects_by_kind() {
        let binding = json!({
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [
                {"kind": "User", "name": "alice"},
                {"kind": "Group", "name": "devs"},
                {"kind": "ServiceAccount", "namespace": "kube-system", "name": "default"},
                {"kind": "User", "name": "bob"},
            ],
        });
        assert_eq!(
            binding_cells(&binding),
            vec![
                json!("ClusterRole/view"),
                json!("alice, bob"),
                json!("devs"),
                json!("kube-system/default"),
            ]
        );
    }
}
