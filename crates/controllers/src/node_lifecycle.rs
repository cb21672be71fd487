//! The node lifecycle controller (upstream's node-lifecycle-controller with
//! its taint-eviction controller).
//!
//! Health: a node's heartbeat is its Lease in `kube-node-lease` (renewTime)
//! and its Ready condition's lastHeartbeatTime. Changes are timed on OUR
//! clock when we observe them, as upstream does, so skewed node clocks do
//! not matter. A node silent for node_monitor_grace_period gets every
//! condition set to Unknown ("Kubelet stopped posting node status.") and
//! its pods marked Ready=False.
//!
//! Taints: NoSchedule taints mirror conditions (not-ready, unreachable,
//! memory/disk/pid-pressure, network-unavailable, unschedulable); the
//! NoExecute taints `node.kubernetes.io/not-ready` (Ready=False) and
//! `node.kubernetes.io/unreachable` (Ready=Unknown) are added with
//! timeAdded and removed when the node is Ready again.
//!
//! Eviction: pods on a node with NoExecute taints they do not tolerate are
//! deleted at once; pods tolerating them for tolerationSeconds are deleted
//! when that time has passed since the taint was added. Pods without any
//! toleration of the not-ready/unreachable taints are treated as if the
//! DefaultTolerationSeconds admission had given them one
//! (default_not_ready_toleration_seconds).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::node_informer::Informer;
use crate::node_podutil;
use crate::{Context, Error};

pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const TAINT_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
const LEASE_NAMESPACE: &str = "kube-node-lease";
const NO_SCHEDULE: &str = "NoSchedule";
const NO_EXECUTE: &str = "NoExecute";

/// How often every node is checked (upstream's node-monitor-period is 5 s;
/// checking more often only makes reactions more punctual).
const MONITOR_PERIOD: Duration = Duration::from_secs(1);
/// Pod updates and deletions in flight at once.
const POD_WRITES_IN_FLIGHT: usize = 8;

/// The taints this controller owns; any other taint on a node is left alone.
fn is_managed(taint: &Taint) -> bool {
    matches!(
        taint.key.as_str(),
        TAINT_NOT_READY
            | TAINT_UNREACHABLE
            | TAINT_UNSCHEDULABLE
            | TAINT_MEMORY_PRESSURE
            | TAINT_DISK_PRESSURE
            | TAINT_PID_PRESSURE
            | TAINT_NETWORK_UNAVAILABLE
    ) && (taint.effect == NO_SCHEDULE || taint.effect == NO_EXECUTE)
}

fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == type_))
}

fn ready_status(node: &Node) -> &str {
    condition(node, "Ready")
        .map(|c| c.status.as_str())
        .unwrap_or("Unknown")
}

/// The node's taints as they should be: every taint we do not own kept as
/// is, ours derived from its conditions and spec.unschedulable. A taint
/// that was already there keeps its timeAdded; new NoExecute taints get
/// `now`.
pub fn desired_taints(node: &Node, now: Timestamp) -> Vec<Taint> {
    let existing: &[Taint] = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[]);
    let mut wanted: Vec<(&str, &str)> = Vec::new();
    // A node that never reported Ready has no taint from it, as upstream.
    match condition(node, "Ready").map(|c| c.status.as_str()) {
        Some("False") => {
            wanted.push((TAINT_NOT_READY, NO_SCHEDULE));
            wanted.push((TAINT_NOT_READY, NO_EXECUTE));
        }
        Some("Unknown") => {
            wanted.push((TAINT_UNREACHABLE, NO_SCHEDULE));
            wanted.push((TAINT_UNREACHABLE, NO_EXECUTE));
        }
        _ => {}
    }
    for (type_, key) in [
        ("MemoryPressure", TAINT_MEMORY_PRESSURE),
        ("DiskPressure", TAINT_DISK_PRESSURE),
        ("PIDPressure", TAINT_PID_PRESSURE),
        ("NetworkUnavailable", TAINT_NETWORK_UNAVAILABLE),
    ] {
        if condition(node, type_).map(|c| c.status.as_str()) == Some("True") {
            wanted.push((key, NO_SCHEDULE));
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        wanted.push((TAINT_UNSCHEDULABLE, NO_SCHEDULE));
    }
    let mut taints: Vec<Taint> = existing
        .iter()
        .filter(|t| !is_managed(t))
        .cloned()
        .collect();
    for (key, effect) in wanted {
        let kept = existing
            .iter()
            .find(|t| t.key == key && t.effect == effect)
            .cloned();
        taints.push(kept.unwrap_or_else(|| Taint {
            key: key.into(),
            effect: effect.into(),
            value: None,
            time_added: (effect == NO_EXECUTE).then_some(Time(now)),
        }));
    }
    taints
}

fn same_taints(a: &[Taint], b: &[Taint]) -> bool {
    let key = |t: &Taint| (t.key.clone(), t.effect.clone(), t.value.clone());
    let mut a: Vec<_> = a.iter().map(key).collect();
    let mut b: Vec<_> = b.iter().map(key).collect();
    a.sort();
    b.sort();
    a == b
}

/// Upstream's ToleratesTaint.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    if let Some(key) = toleration.key.as_deref().filter(|k| !k.is_empty()) {
        if key != taint.key {
            return false;
        }
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// When a pod on a node with these NoExecute taints must go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eviction {
    /// A taint is not tolerated at all.
    Now,
    /// Every taint is tolerated, the shortest for this many seconds.
    After(i64),
    /// Every taint is tolerated forever.
    Never,
}

/// Upstream's rule: a taint without a matching toleration evicts at once;
/// otherwise the smallest tolerationSeconds among the tolerations used
/// decides (none set: never). The not-ready and unreachable taints count as
/// tolerated for `default_seconds` when the pod has no toleration for them.
pub fn eviction(tolerations: &[Toleration], taints: &[Taint], default_seconds: i64) -> Eviction {
    let mut shortest: Option<i64> = None;
    for taint in taints.iter().filter(|t| t.effect == NO_EXECUTE) {
        let used: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        let seconds: Vec<Option<i64>> = if used.is_empty() {
            if taint.key == TAINT_NOT_READY || taint.key == TAINT_UNREACHABLE {
                vec![Some(default_seconds)]
            } else {
                return Eviction::Now;
            }
        } else {
            used.iter().map(|t| t.toleration_seconds).collect()
        };
        for limit in seconds.into_iter().flatten() {
            let limit = limit.max(0);
            shortest = Some(shortest.map_or(limit, |s: i64| s.min(limit)));
        }
    }
    match shortest {
        Some(seconds) => Eviction::After(seconds),
        None => Eviction::Never,
    }
}

/// The conditions a silent node is left with: everything Unknown, the
/// heartbeat times kept; conditions the kubelet never posted are added.
pub fn unknown_conditions(node: &Node, now: Timestamp) -> Vec<NodeCondition> {
    let mut conditions: Vec<NodeCondition> = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    for condition in conditions.iter_mut() {
        if condition.status != "Unknown" {
            condition.status = "Unknown".into();
            condition.reason = Some("NodeStatusUnknown".into());
            condition.message = Some("Kubelet stopped posting node status.".into());
            condition.last_transition_time = Some(Time(now));
        }
    }
    let created = node.metadata.creation_timestamp.clone();
    for type_ in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        if !conditions.iter().any(|c| c.type_ == type_) {
            conditions.push(NodeCondition {
                type_: type_.into(),
                status: "Unknown".into(),
                reason: Some("NodeStatusNeverUpdated".into()),
                message: Some("Kubelet never posted node status.".into()),
                last_heartbeat_time: created.clone(),
                last_transition_time: Some(Time(now)),
            });
        }
    }
    conditions
}

/// What we know of one node's health.
struct Health {
    /// Everything that counts as a heartbeat, as last seen.
    probe: String,
    /// When we saw `probe` change.
    observed: Instant,
    /// The Ready status last seen, for NodeReady/NodeNotReady events.
    ready: String,
}

struct Monitor {
    ctx: Context,
    health: HashMap<String, Health>,
    /// Pods whose eviction was already issued.
    evicted: HashSet<String>,
    events: Arc<Semaphore>,
}

/// Watch node health and act on it until a fatal error.
pub async fn run(ctx: Context) -> Result<(), Error> {
    let nodes = Informer::<Node>::shared(&ctx.informers, None);
    let leases = Informer::<Lease>::spawn(
        Api::namespaced(ctx.client.clone(), LEASE_NAMESPACE),
        watcher::Config::default(),
        None,
    );
    let pods = Informer::<Pod>::shared(&ctx.informers, None);
    nodes.ready().await?;
    leases.ready().await?;
    pods.ready().await?;
    let mut monitor = Monitor {
        ctx,
        health: HashMap::new(),
        evicted: HashSet::new(),
        events: Arc::new(Semaphore::new(4)),
    };
    let mut ticker = tokio::time::interval(MONITOR_PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        monitor.pass(&nodes, &leases, &pods).await;
    }
}

impl Monitor {
    /// Record an event without holding up the monitor loop.
    fn event(
        &self,
        reference: k8s_openapi::api::core::v1::ObjectReference,
        type_: &'static str,
        reason: &'static str,
        message: String,
    ) {
        let recorder = self.ctx.recorder.clone();
        let permits = self.events.clone();
        tokio::spawn(async move {
            let _permit = permits.acquire().await;
            recorder.record(&reference, type_, reason, &message).await;
        });
    }

    async fn pass(
        &mut self,
        nodes: &Informer<Node>,
        leases: &Informer<Lease>,
        pods: &Informer<Pod>,
    ) {
        let grace = self.ctx.options.node_monitor_grace_period;
        let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for pod in pods.store.state() {
            if let Some(name) = node_podutil::node_name(&pod) {
                by_node
                    .entry(name.to_string())
                    .or_default()
                    .push(pod.clone());
            }
        }
        let all_nodes = nodes.store.state();
        let names: HashSet<String> = all_nodes
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        self.health.retain(|name, _| names.contains(name));
        let live_pods: HashSet<String> = pods
            .store
            .state()
            .iter()
            .filter_map(|p| p.metadata.uid.clone())
            .collect();
        self.evicted.retain(|uid| live_pods.contains(uid));

        for node in all_nodes {
            let Some(name) = node.metadata.name.clone() else {
                continue;
            };
            let lease = leases
                .store
                .get(&ObjectRef::new(&name).within(LEASE_NAMESPACE));
            let renew = lease
                .as_ref()
                .and_then(|l| l.spec.as_ref())
                .and_then(|s| s.renew_time.as_ref())
                .map(|t| t.0.to_string())
                .unwrap_or_default();
            let ready = condition(&node, "Ready");
            let probe = format!(
                "{renew}|{}|{}",
                ready.map(|c| c.status.as_str()).unwrap_or(""),
                ready
                    .and_then(|c| c.last_heartbeat_time.as_ref())
                    .map(|t| t.0.to_string())
                    .unwrap_or_default()
            );
            let status = ready_status(&node).to_string();
            let now = Instant::now();
            let health = self.health.entry(name.clone()).or_insert_with(|| Health {
                probe: probe.clone(),
                observed: now,
                ready: status.clone(),
            });
            if health.probe != probe {
                health.probe = probe;
                health.observed = now;
            }
            let silent = now.duration_since(health.observed) > grace;
            let previous_ready = std::mem::replace(&mut health.ready, status.clone());

            if previous_ready != status {
                let reference = clientkit::events::reference(node.as_ref());
                let reason = if status == "True" {
                    "NodeReady"
                } else {
                    "NodeNotReady"
                };
                self.event(
                    reference,
                    clientkit::events::NORMAL,
                    reason,
                    format!("Node {name} status is now: {reason}"),
                );
            }

            if silent && status != "Unknown" {
                // Our cache may lag behind a busy API server: before
                // declaring the node dead, read its Lease directly.
                if self.lease_renewed_since(&name, &renew).await {
                    if let Some(health) = self.health.get_mut(&name) {
                        health.observed = Instant::now();
                    }
                    continue;
                }
                self.mark_unknown(&node).await;
                // The next pass sees the Unknown node and taints it.
                continue;
            }
            if status != "True" {
                self.mark_pods_not_ready(
                    &name,
                    by_node.get(&name).map(Vec::as_slice).unwrap_or(&[]),
                )
                .await;
            }
            self.reconcile_taints(&node).await;
            self.evict(&node, by_node.get(&name).map(Vec::as_slice).unwrap_or(&[]))
                .await;
        }
    }

    /// Whether the node's Lease, read from the API server rather than our
    /// cache, was renewed after `seen` (the renewTime we last observed).
    async fn lease_renewed_since(&self, node: &str, seen: &str) -> bool {
        let api: Api<Lease> = Api::namespaced(self.ctx.client.clone(), LEASE_NAMESPACE);
        match api.get_opt(node).await {
            Ok(Some(lease)) => lease
                .spec
                .and_then(|s| s.renew_time)
                .is_some_and(|t| t.0.to_string() != seen),
            _ => false,
        }
    }

    async fn mark_unknown(&self, node: &Node) {
        let Some(name) = node.metadata.name.as_deref() else {
            return;
        };
        let conditions = unknown_conditions(node, Timestamp::now());
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "status": {"conditions": conditions},
        });
        let api: Api<Node> = Api::all(self.ctx.client.clone());
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => tracing::info!(node = name, "node stopped posting status; marked Unknown"),
            Err(err) => tracing::debug!(node = name, %err, "marking node Unknown failed"),
        }
    }

    async fn mark_pods_not_ready(&self, node: &str, pods: &[Arc<Pod>]) {
        let ready: Vec<&Arc<Pod>> = pods
            .iter()
            .filter(|p| node_podutil::is_ready(p) && !node_podutil::is_terminal(p))
            .collect();
        futures::stream::iter(ready)
            .for_each_concurrent(POD_WRITES_IN_FLIGHT, |pod| async move {
                let (Some(ns), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
                    return;
                };
                let patch = node_podutil::condition_patch(
                    pod,
                    "Ready",
                    "False",
                    "NodeNotReady",
                    "",
                    Timestamp::now(),
                );
                let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
                match api
                    .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => self.event(
                        clientkit::events::reference(pod.as_ref()),
                        clientkit::events::WARNING,
                        "NodeNotReady",
                        "Node is not ready".into(),
                    ),
                    Err(err) => {
                        tracing::debug!(pod = %name, node, %err, "marking pod not ready failed")
                    }
                }
            })
            .await;
    }

    async fn reconcile_taints(&self, node: &Node) {
        let Some(name) = node.metadata.name.as_deref() else {
            return;
        };
        let current = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let desired = desired_taints(node, Timestamp::now());
        if same_taints(&current, &desired) {
            return;
        }
        let taints = if desired.is_empty() {
            serde_json::Value::Null
        } else {
            json!(desired)
        };
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": taints},
        });
        let api: Api<Node> = Api::all(self.ctx.client.clone());
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => tracing::info!(node = name, ?desired, "node taints updated"),
            Err(err) => tracing::debug!(node = name, %err, "updating node taints failed"),
        }
    }

    async fn evict(&mut self, node: &Node, pods: &[Arc<Pod>]) {
        let taints: Vec<Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .map(|t| {
                t.iter()
                    .filter(|t| t.effect == NO_EXECUTE)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if taints.is_empty() {
            return;
        }
        // Tolerations count from when the earliest NoExecute taint appeared.
        let tainted_at = taints
            .iter()
            .filter_map(|t| t.time_added.as_ref().map(|t| t.0))
            .min()
            .unwrap_or_else(Timestamp::now);
        let now = Timestamp::now();
        let default_seconds = self.ctx.options.default_not_ready_toleration_seconds;
        let mut due: Vec<Arc<Pod>> = Vec::new();
        for pod in pods {
            let Some(uid) = &pod.metadata.uid else {
                continue;
            };
            if pod.metadata.deletion_timestamp.is_some() || self.evicted.contains(uid) {
                continue;
            }
            let tolerations = pod
                .spec
                .as_ref()
                .and_then(|s| s.tolerations.as_deref())
                .unwrap_or(&[]);
            let go = match eviction(tolerations, &taints, default_seconds) {
                Eviction::Now => true,
                Eviction::After(seconds) => {
                    now.duration_since(tainted_at).as_secs_f64() >= seconds as f64
                }
                Eviction::Never => false,
            };
            if go {
                self.evicted.insert(uid.clone());
                due.push(pod.clone());
            }
        }
        let this = &*self;
        futures::stream::iter(due)
            .for_each_concurrent(POD_WRITES_IN_FLIGHT, |pod| async move {
                this.evict_pod(&pod).await;
            })
            .await;
    }

    async fn evict_pod(&self, pod: &Pod) {
        let (Some(ns), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
            return;
        };
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        self.event(
            clientkit::events::reference(pod),
            clientkit::events::NORMAL,
            "TaintManagerEviction",
            format!("Marking for deletion Pod {ns}/{name}"),
        );
        // As upstream: say why before deleting, for PDB-aware clients.
        let mut patch = node_podutil::condition_patch(
            pod,
            "DisruptionTarget",
            "True",
            "DeletionByTaintManager",
            "Taint manager: deleting due to NoExecute taint",
            Timestamp::now(),
        );
        if let Some(map) = patch.as_object_mut() {
            map.remove("metadata");
        }
        if let Err(err) = api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::debug!(pod = %name, %err, "adding DisruptionTarget failed");
        }
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => tracing::info!(pod = %name, namespace = %ns, "evicted for a NoExecute taint"),
            Err(err) => tracing::debug!(pod = %name, %err, "taint eviction failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ready: Option<&str>, taints: serde_json::Value) -> Node {
        let mut conditions = vec![json!({"type": "MemoryPressure", "status": "False"})];
        if let Some(status) = ready {
            conditions.push(json!({"type": "Ready", "status": status,
                "lastHeartbeatTime": "2024-01-01T00:00:00Z"}));
        }
        serde_json::from_value(json!({
            "metadata": {"name": "n1"},
            "spec": {"taints": taints},
            "status": {"conditions": conditions},
        }))
        .unwrap()
    }

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            value: None,
            time_added: None,
        }
    }

    fn toleration(value: serde_json::Value) -> Toleration {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn unknown_node_gets_unreachable_noschedule_and_noexecute_taints() {
        let now = Timestamp::now();
        let taints = desired_taints(&node(Some("Unknown"), json!(null)), now);
        assert_eq!(taints.len(), 2);
        assert!(taints.iter().all(|t| t.key == TAINT_UNREACHABLE));
        let no_execute = taints.iter().find(|t| t.effect == NO_EXECUTE).unwrap();
        assert_eq!(no_execute.time_added, Some(Time(now)));
        let no_schedule = taints.iter().find(|t| t.effect == NO_SCHEDULE).unwrap();
        assert_eq!(no_schedule.time_added, None);
    }

    #[test]
    fn not_ready_node_gets_not_ready_taints_and_ready_node_loses_them() {
        let taints = desired_taints(&node(Some("False"), json!(null)), Timestamp::now());
        assert!(taints.iter().all(|t| t.key == TAINT_NOT_READY));
        assert_eq!(taints.len(), 2);
        let recovered = node(
            Some("True"),
            json!([
                {"key": TAINT_NOT_READY, "effect": "NoExecute"},
                {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
            ]),
        );
        let taints = desired_taints(&recovered, Timestamp::now());
        assert_eq!(taints.len(), 1, "only the foreign taint stays");
        assert_eq!(taints[0].key, "dedicated");
    }

    #[test]
    fn existing_taints_keep_their_time_added() {
        let tainted = node(
            Some("Unknown"),
            json!([{"key": TAINT_UNREACHABLE, "effect": "NoExecute", "timeAdded": "2024-01-01T00:00:00Z"}]),
        );
        let taints = desired_taints(&tainted, Timestamp::now());
        let no_execute = taints.iter().find(|t| t.effect == NO_EXECUTE).unwrap();
        assert_eq!(
            no_execute.time_added.as_ref().unwrap().0.to_string(),
            "2024-01-01T00:00:00Z"
        );
        assert!(same_taints(
            &taints,
            &desired_taints(&tainted, Timestamp::now())
        ));
    }

    #[test]
    fn unschedulable_and_pressure_conditions_add_noschedule_taints() {
        let mut pressured = node(Some("True"), json!(null));
        pressured.spec.as_mut().unwrap().unschedulable = Some(true);
        pressured
            .status
            .as_mut()
            .unwrap()
            .conditions
            .as_mut()
            .unwrap()[0]
            .status = "True".into();
        let keys: Vec<String> = desired_taints(&pressured, Timestamp::now())
            .into_iter()
            .map(|t| t.key)
            .collect();
        assert_eq!(keys, vec![TAINT_MEMORY_PRESSURE, TAINT_UNSCHEDULABLE]);
    }

    #[test]
    fn toleration_matching_follows_operator_key_and_effect() {
        let t = taint(TAINT_UNREACHABLE, NO_EXECUTE);
        assert!(tolerates(&toleration(json!({"operator": "Exists"})), &t));
        assert!(tolerates(
            &toleration(
                json!({"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute"})
            ),
            &t
        ));
        assert!(!tolerates(
            &toleration(
                json!({"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"})
            ),
            &t
        ));
        assert!(!tolerates(
            &toleration(json!({"key": "other", "operator": "Exists"})),
            &t
        ));
        let mut valued = taint("dedicated", NO_EXECUTE);
        valued.value = Some("gpu".into());
        assert!(tolerates(
            &toleration(json!({"key": "dedicated", "value": "gpu"})),
            &valued
        ));
        assert!(!tolerates(
            &toleration(json!({"key": "dedicated", "value": "cpu"})),
            &valued
        ));
    }

    #[test]
    fn untolerated_taint_evicts_now_and_toleration_seconds_delay_eviction() {
        let taints = [taint("dedicated", NO_EXECUTE)];
        assert_eq!(eviction(&[], &taints, 300), Eviction::Now);
        let unreachable = [taint(TAINT_UNREACHABLE, NO_EXECUTE)];
        assert_eq!(eviction(&[], &unreachable, 300), Eviction::After(300));
        let short = toleration(json!({"key": TAINT_UNREACHABLE, "operator": "Exists",
            "effect": "NoExecute", "tolerationSeconds": 5}));
        assert_eq!(eviction(&[short], &unreachable, 300), Eviction::After(5));
        let forever = toleration(json!({"operator": "Exists"}));
        assert_eq!(eviction(&[forever], &unreachable, 300), Eviction::Never);
        let negative = toleration(json!({"operator": "Exists", "tolerationSeconds": -4}));
        assert_eq!(eviction(&[negative], &unreachable, 300), Eviction::After(0));
        // NoSchedule taints never evict.
        assert_eq!(
            eviction(&[], &[taint("x", NO_SCHEDULE)], 300),
            Eviction::Never
        );
    }

    #[test]
    fn silent_node_conditions_all_become_unknown_keeping_heartbeats() {
        let now = Timestamp::now();
        let conditions = unknown_conditions(&node(Some("True"), json!(null)), now);
        let ready = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            ready.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        assert_eq!(
            ready.last_heartbeat_time.as_ref().unwrap().0.to_string(),
            "2024-01-01T00:00:00Z"
        );
        assert!(conditions.iter().all(|c| c.status == "Unknown"));
        // Conditions never posted are added as NodeStatusNeverUpdated.
        let disk = conditions
            .iter()
            .find(|c| c.type_ == "DiskPressure")
            .unwrap();
        assert_eq!(disk.reason.as_deref(), Some("NodeStatusNeverUpdated"));
    }
}
