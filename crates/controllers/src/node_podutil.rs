//! Small pod helpers shared by the node-side controllers (node lifecycle,
//! pod GC, endpoints): readiness, terminal phases, and status patches that
//! set one pod condition while keeping the others.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

/// The pod's phase, "Pending" when it has none yet.
pub(crate) fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// Succeeded or Failed: its containers will never run again.
pub(crate) fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// The status of condition `type_`, if the pod has it.
pub(crate) fn condition_status<'a>(pod: &'a Pod, type_: &str) -> Option<&'a str> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == type_))
        .map(|c| c.status.as_str())
}

/// Ready=True, as upstream's `IsPodReady`.
pub(crate) fn is_ready(pod: &Pod) -> bool {
    condition_status(pod, "Ready") == Some("True")
}

pub(crate) fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// A merge patch for pods/status setting condition `type_` (other
/// conditions kept; the transition time moves only if the status changes),
/// guarded by the pod's resourceVersion so a concurrent kubelet update is
/// not overwritten.
pub(crate) fn condition_patch(
    pod: &Pod,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Value {
    let mut conditions: Vec<Value> = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|c| {
            c.iter()
                .filter_map(|c| serde_json::to_value(c).ok())
                .collect()
        })
        .unwrap_or_default();
    let mut updated = json!({
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": Time(now),
    });
    match conditions.iter_mut().find(|c| c["type"] == type_) {
        Some(existing) => {
            if existing["status"] == status && !existing["lastTransitionTime"].is_null() {
                updated["lastTransitionTime"] = existing["lastTransitionTime"].clone();
            }
            *existing = updated;
        }
        None => conditions.push(updated),
    }
    let mut patch = json!({"status": {"conditions": conditions}});
    if let Some(rv) = &pod.metadata.resource_version {
        patch["metadata"] = json!({"resourceVersion": rv});
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_patch_replaces_only_the_named_condition() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "resourceVersion": "7"},
            "status": {"phase": "Running", "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"},
            ]},
        }))
        .unwrap();
        assert!(is_ready(&pod));
        let patch = condition_patch(&pod, "Ready", "False", "NodeNotReady", "", Timestamp::now());
        let conditions = patch["status"]["conditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[0]["type"], "PodScheduled");
        assert_eq!(conditions[1]["status"], "False");
        assert_ne!(conditions[1]["lastTransitionTime"], "2024-01-01T00:00:00Z");
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
        let added = condition_patch(&pod, "DisruptionTarget", "True", "X", "y", Timestamp::now());
        assert_eq!(added["status"]["conditions"].as_array().unwrap().len(), 3);
    }
}
