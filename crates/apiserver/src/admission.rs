//! Admission: checks and mutations after authorization, before storage.
//! Upstream order: NamespaceLifecycle, ServiceAccount, NodeRestriction,
//! LimitRanger, ResourceQuota, then webhooks. Only NamespaceLifecycle
//! exists so far; [`admit`] is where the others join, in that order.

use apimachinery::ApiError;
use serde_json::Value;

use crate::registry::Strategy;
use crate::ApiServer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// Namespaces that exist for the cluster's own use and may not be deleted.
const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

pub async fn admit(
    state: &ApiServer,
    op: Operation,
    strategy: &dyn Strategy,
    namespace: &str,
    name: &str,
) -> Result<(), ApiError> {
    namespace_lifecycle(state, op, strategy, namespace, name).await
}

/// NamespaceLifecycle: no new content in a missing or terminating
/// namespace; the system namespaces cannot be deleted.
async fn namespace_lifecycle(
    state: &ApiServer,
    op: Operation,
    strategy: &dyn Strategy,
    namespace: &str,
    name: &str,
) -> Result<(), ApiError> {
    let info = strategy.info();
    if info.plural == "namespaces" && info.group.is_empty() {
        if op == Operation::Delete && IMMORTAL_NAMESPACES.contains(&name) {
            return Err(ApiError::forbidden_message(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        return Ok(());
    }
    if !info.namespaced() || op != Operation::Create {
        return Ok(());
    }
    let key = crate::registry::namespace_key(namespace);
    let (kv, _) = state
        .store
        .get(&key)
        .await
        .map_err(|e| crate::rest::storage_error(e, "namespaces", "", namespace))?;
    let Some(kv) = kv else {
        return Err(ApiError::not_found("namespaces", "", namespace));
    };
    let ns: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
    if ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating") {
        return Err(ApiError::forbidden_message(format!(
            "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
            info.plural
        )));
    }
    Ok(())
}
