//! Post-start work: objects every cluster has from its first second.

use std::sync::atomic::Ordering;

use apimachinery::ApiError;
use serde_json::json;

use crate::ApiServer;

/// The namespaces upstream creates at start.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

pub async fn run(state: &ApiServer) -> Result<(), ApiError> {
    let strategy = state
        .registry
        .lookup("", "v1", "namespaces")
        .cloned()
        .ok_or_else(|| ApiError::internal("namespaces are not registered"))?;
    for name in SYSTEM_NAMESPACES {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        match crate::rest::create_object(
            state,
            strategy.as_ref(),
            "",
            obj,
            &crate::rest::WriteOptions::INTERNAL,
            &mut Vec::new(),
        )
        .await
        {
            Ok(_) => tracing::info!(namespace = name, "created system namespace"),
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    state.bootstrapped.store(true, Ordering::Release);
    Ok(())
}
