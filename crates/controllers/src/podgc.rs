//! The pod garbage collector (upstream's PodGC), every few seconds:
//!
//! - terminated pods (Succeeded/Failed) beyond terminated_pod_gc_threshold
//!   are deleted, oldest first (threshold 0 disables this);
//! - pods bound to a Node that does not exist, once it has been missing for
//!   the quarantine period (checked again with a fresh GET, so a node that
//!   is merely slow to appear in our cache is not mistaken), are marked
//!   Failed with a DisruptionTarget condition and force-deleted;
//! - terminating pods never scheduled to a node are force-deleted;
//! - terminating pods on a NotReady node carrying the
//!   `node.kubernetes.io/out-of-service` taint are force-deleted.
//!
//! Force deletion means gracePeriodSeconds=0, as upstream's PodGC does.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};

use crate::node_informer::Informer;
use crate::node_podutil;
use crate::{Context, Error};

/// Upstream's quarantine before an orphaned pod is collected.
const QUARANTINE: Duration = Duration::from_secs(40);
/// Upstream's gcCheckPeriod.
const CHECK_PERIOD: Duration = Duration::from_secs(20);
pub const OUT_OF_SERVICE_TAINT: &str = "node.kubernetes.io/out-of-service";

/// Which terminated pods go when there are more than `threshold`: the
/// oldest by creation time (names break ties, for a stable order).
pub fn terminated_to_delete(pods: &[Arc<Pod>], threshold: usize) -> Vec<Arc<Pod>> {
    if threshold == 0 {
        return Vec::new();
    }
    let mut terminated: Vec<Arc<Pod>> = pods
        .iter()
        .filter(|p| node_podutil::is_terminal(p) && p.metadata.deletion_timestamp.is_none())
        .cloned()
        .collect();
    if terminated.len() <= threshold {
        return Vec::new();
    }
    terminated.sort_by(|a, b| {
        let key = |p: &Pod| {
            (
                p.metadata.creation_timestamp.as_ref().map(|t| t.0),
                p.metadata.namespace.clone(),
                p.metadata.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    let excess = terminated.len() - threshold;
    terminated.truncate(excess);
    terminated
}

fn out_of_service_and_not_ready(node: &Node) -> bool {
    let tainted = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == OUT_OF_SERVICE_TAINT));
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    tainted && !ready
}

/// Collect pods until a fatal error.
pub async fn run(ctx: Context) -> Result<(), Error> {
    let pods = Informer::<Pod>::shared(&ctx.informers, None);
    let nodes = Informer::<Node>::shared(&ctx.informers, None);
    pods.ready().await?;
    nodes.ready().await?;
    // A short node grace period (tests) shortens the quarantine with it.
    let quarantine = QUARANTINE.min(ctx.options.node_monitor_grace_period);
    let period = CHECK_PERIOD.min(quarantine / 2).max(Duration::from_secs(1));
    // When each missing node was first noticed missing.
    let mut missing_since: HashMap<String, Instant> = HashMap::new();
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let all_pods = pods.store.state();
        let node_names: HashSet<String> = nodes
            .store
            .state()
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();

        for pod in terminated_to_delete(&all_pods, ctx.options.terminated_pod_gc_threshold) {
            force_delete(&ctx, &pod).await;
        }

        let now = Instant::now();
        let mut still_missing: HashSet<String> = HashSet::new();
        for pod in &all_pods {
            let Some(node) = node_podutil::node_name(pod) else {
                if pod.metadata.deletion_timestamp.is_some() {
                    force_delete(&ctx, pod).await;
                }
                continue;
            };
            if node_names.contains(node) {
                continue;
            }
            still_missing.insert(node.to_string());
            let since = *missing_since.entry(node.to_string()).or_insert(now);
            if now.duration_since(since) < quarantine {
                continue;
            }
            if node_exists(&ctx, node).await {
                continue;
            }
            if !node_podutil::is_terminal(pod) {
                mark_failed(&ctx, pod, "PodGC: node no longer exists").await;
            }
            force_delete(&ctx, pod).await;
        }
        missing_since.retain(|node, _| still_missing.contains(node));

        for node in nodes.store.state() {
            if !out_of_service_and_not_ready(&node) {
                continue;
            }
            let Some(name) = node.metadata.name.as_deref() else {
                continue;
            };
            for pod in all_pods.iter().filter(|p| {
                node_podutil::node_name(p) == Some(name) && p.metadata.deletion_timestamp.is_some()
            }) {
                if !node_podutil::is_terminal(pod) {
                    mark_failed(&ctx, pod, "PodGC: node is out of service").await;
                }
                force_delete(&ctx, pod).await;
            }
        }
    }
}

/// Whether the node exists according to the API server itself.
async fn node_exists(ctx: &Context, name: &str) -> bool {
    let api: Api<Node> = Api::all(ctx.client.clone());
    // On errors other than "not found", assume it exists: deleting pods on
    // a guess is worse than waiting for the next pass.
    !matches!(api.get(name).await, Err(kube::Error::Api(s)) if s.code == 404)
}

async fn mark_failed(ctx: &Context, pod: &Pod, message: &str) {
    let (Some(ns), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
        return;
    };
    let mut patch = node_podutil::condition_patch(
        pod,
        "DisruptionTarget",
        "True",
        "DeletionByPodGC",
        message,
        Timestamp::now(),
    );
    patch["status"]["phase"] = serde_json::json!("Failed");
    if let Some(map) = patch.as_object_mut() {
        map.remove("metadata");
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    if let Err(err) = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::debug!(pod = %name, %err, "marking pod Failed failed");
    }
}

async fn force_delete(ctx: &Context, pod: &Pod) {
    let (Some(ns), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
        return;
    };
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => tracing::info!(pod = %name, namespace = %ns, "garbage-collected pod"),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
        Err(err) => tracing::debug!(pod = %name, %err, "deleting pod failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, phase: &str, created: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns", "creationTimestamp": created},
                "status": {"phase": phase},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn oldest_terminated_pods_above_the_threshold_are_collected() {
        let pods = vec![
            pod("new", "Succeeded", "2024-01-03T00:00:00Z"),
            pod("running", "Running", "2024-01-01T00:00:00Z"),
            pod("old", "Failed", "2024-01-01T00:00:00Z"),
            pod("mid", "Succeeded", "2024-01-02T00:00:00Z"),
        ];
        let names = |pods: Vec<Arc<Pod>>| -> Vec<String> {
            pods.iter()
                .map(|p| p.metadata.name.clone().unwrap())
                .collect()
        };
        assert_eq!(names(terminated_to_delete(&pods, 1)), vec!["old", "mid"]);
        assert_eq!(names(terminated_to_delete(&pods, 3)), Vec::<String>::new());
        assert!(
            terminated_to_delete(&pods, 0).is_empty(),
            "0 disables collection"
        );
    }

    #[test]
    fn only_not_ready_out_of_service_nodes_release_terminating_pods() {
        let node = |ready: &str, taint: bool| -> Node {
            let taints = if taint {
                json!([{"key": OUT_OF_SERVICE_TAINT, "effect": "NoExecute"}])
            } else {
                json!(null)
            };
            serde_json::from_value(json!({
                "metadata": {"name": "n"},
                "spec": {"taints": taints},
                "status": {"conditions": [{"type": "Ready", "status": ready}]},
            }))
            .unwrap()
        };
        assert!(out_of_service_and_not_ready(&node("False", true)));
        assert!(!out_of_service_and_not_ready(&node("True", true)));
        assert!(!out_of_service_and_not_ready(&node("Unknown", false)));
    }
}
