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
    crate::bootstrap_policy::ensure(state).await?;
    system_priority_classes(state).await?;
    kubernetes_service(state).await?;
    state.bootstrapped.store(true, Ordering::Release);
    Ok(())
}

/// The two PriorityClasses upstream creates at start.
async fn system_priority_classes(state: &ApiServer) -> Result<(), ApiError> {
    let strategy = state
        .registry
        .lookup("scheduling.k8s.io", "v1", "priorityclasses")
        .cloned()
        .ok_or_else(|| ApiError::internal("priorityclasses are not registered"))?;
    let classes = [
        (
            "system-node-critical",
            2_000_001_000,
            "Used for system critical pods that must not be moved from their current node.",
        ),
        (
            "system-cluster-critical",
            2_000_000_000,
            "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
        ),
    ];
    for (name, value, description) in classes {
        let obj = json!({
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
            "description": description,
        });
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
            Ok(_) | Err(ApiError { code: 409, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The `default/kubernetes` Service (the first ClusterIP, port 443) and
/// its Endpoints pointing at this API server, as upstream's endpoint
/// reconciler keeps them.
async fn kubernetes_service(state: &ApiServer) -> Result<(), ApiError> {
    let Some(services) = state.registry.lookup("", "v1", "services").cloned() else {
        return Ok(());
    };
    let opts = crate::rest::WriteOptions::INTERNAL;
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": state.service_ips.ip(0).to_string(),
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": state.advertise.port()}],
            "sessionAffinity": "None",
        },
    });
    // Allocation happens before the existence check of a create, so look first.
    match crate::rest::get_object(state, services.as_ref(), "default", "kubernetes").await {
        Ok(_) => {}
        Err(e) if e.code == 404 => {
            crate::rest::create_object(
                state,
                services.as_ref(),
                "default",
                service,
                &opts,
                &mut Vec::new(),
            )
            .await?;
            tracing::info!("created the kubernetes service");
        }
        Err(e) => return Err(e),
    }
    let Some(endpoints) = state.registry.lookup("", "v1", "endpoints").cloned() else {
        return Ok(());
    };
    let subsets = json!([{
        "addresses": [{"ip": state.advertise.ip().to_string()}],
        "ports": [{"name": "https", "port": state.advertise.port(), "protocol": "TCP"}],
    }]);
    let desired = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": subsets,
    });
    let s = endpoints.as_ref();
    match crate::rest::get_object(state, s, "default", "kubernetes").await {
        Ok((current, _)) if current.get("subsets") == Some(&subsets) => Ok(()),
        Ok(_) => crate::rest::update_object(
            state,
            s,
            "default",
            "kubernetes",
            desired,
            crate::rest::Subresource::None,
            &opts,
            &mut Vec::new(),
        )
        .await
        .map(|_| ()),
        Err(e) if e.code == 404 => {
            crate::rest::create_object(state, s, "default", desired, &opts, &mut Vec::new())
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    }
}
