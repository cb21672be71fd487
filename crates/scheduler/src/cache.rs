//! The scheduler's in-memory picture of the cluster: every node with the
//! pods bound or assumed to it and their summed requests, the pods
//! nominated to nodes by preemption, and namespace labels (for affinity
//! namespace selectors).
//!
//! It is fed by watch events and by the scheduler itself: a pod is
//! *assumed* on its node as soon as it is chosen, so the next decision
//! already sees it; the watch event of the bound pod confirms it, a failed
//! bind forgets it. Nothing here talks to the API server.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Taint};

use crate::podinfo::{Labels, PodInfo};
use crate::resources::{node_allocatable, Resource};

pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// One node and what is placed on it.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    pub name: String,
    pub allocatable: Resource,
    /// Sum of exact requests of the pods on the node.
    pub requested: Resource,
    /// Sum of requests with the scoring defaults for unset cpu/memory.
    pub non_zero_requested: Resource,
    pub pods: Vec<Arc<PodInfo>>,
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
    /// hostPorts in use: (protocol, hostIP, port).
    pub used_ports: Vec<(String, String, i32)>,
    /// `spec.unschedulable` and whether `spec.taints` has any, copied
    /// out of the Node: every filter pass reads them for hundreds of
    /// nodes, and reaching into each Node for them was a cache miss apiece.
    unschedulable: bool,
    tainted: bool,
}

static NO_LABELS: Labels = Labels::new();
static NO_TAINTS: Vec<Taint> = Vec::new();

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let mut info = NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            allocatable: node_allocatable(&node),
            node,
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            pods: Vec::new(),
            pods_with_affinity: 0,
            pods_with_required_anti_affinity: 0,
            used_ports: Vec::new(),
            unschedulable: false,
            tainted: false,
        };
        info.copy_flags();
        info
    }

    fn copy_flags(&mut self) {
        let spec = self.node.spec.as_ref();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        self.tainted = spec
            .and_then(|s| s.taints.as_ref())
            .is_some_and(|t| !t.is_empty());
    }

    pub fn labels(&self) -> &Labels {
        self.node.metadata.labels.as_ref().unwrap_or(&NO_LABELS)
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels().get(key).map(String::as_str)
    }

    pub fn taints(&self) -> &[Taint] {
        if !self.tainted {
            return &NO_TAINTS;
        }
        self.node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .unwrap_or(&NO_TAINTS)
    }

    pub fn unschedulable(&self) -> bool {
        self.unschedulable
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero);
        if pod.has_affinity() {
            self.pods_with_affinity += 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        self.used_ports.extend(host_ports(&pod));
        self.pods.push(pod);
    }

    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let index = self.pods.iter().position(|p| p.key == key)?;
        let pod = self.pods.swap_remove(index);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero);
        if pod.has_affinity() {
            self.pods_with_affinity -= 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        for port in host_ports(&pod) {
            if let Some(i) = self.used_ports.iter().position(|p| *p == port) {
                self.used_ports.swap_remove(i);
            }
        }
        Some(pod)
    }
}

/// The host ports a pod's containers ask for.
pub fn host_ports(pod: &PodInfo) -> Vec<(String, String, i32)> {
    let mut out = Vec::new();
    let Some(spec) = pod.pod.spec.as_ref() else {
        return out;
    };
    for c in &spec.containers {
        for p in c.ports.iter().flatten() {
            if let Some(hp) = p.host_port.filter(|hp| *hp > 0) {
                out.push((
                    p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
                    hp,
                ));
            }
        }
    }
    out
}

#[derive(Debug)]
struct PodEntry {
    info: Arc<PodInfo>,
    node: String,
    assumed: bool,
}

/// Pod and node state known to the scheduler.
#[derive(Default, Debug)]
pub struct Cache {
    /// Node slots; `index` maps names to slots.
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    /// Slots per zone, in arrival order.
    zones: Vec<(String, Vec<usize>)>,
    /// Slots in scheduling order: zones interleaved, as upstream's node
    /// tree does, so a partial pass over nodes still spans zones.
    order: Vec<usize>,
    /// Pods whose node object has not been seen yet.
    orphans: HashMap<String, Vec<Arc<PodInfo>>>,
    pods: HashMap<String, PodEntry>,
    nominated: HashMap<String, Vec<Arc<PodInfo>>>,
    nominated_node_of: HashMap<String, String>,
    namespaces: HashMap<String, Labels>,
    /// Placed pods with any (anti-)affinity / with required anti-affinity,
    /// so pods without terms can skip the cluster-wide scans.
    with_affinity: usize,
    with_required_anti_affinity: usize,
}

/// Whether a node change can make pending pods fit.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum NodeChange {
    Added,
    /// Labels, taints, allocatable or schedulability changed.
    Relevant,
    Irrelevant,
}

fn zone_key(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |k: &str| labels.and_then(|l| l.get(k)).map_or("", |v| v.as_str());
    format!("{}:{}", get(REGION_LABEL), get(ZONE_LABEL))
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    /// Node names in scheduling order.
    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(|i| self.nodes[*i].name.as_str())
    }

    /// The node at position `i` of the scheduling order.
    pub fn node_in_order(&self, i: usize) -> &NodeInfo {
        &self.nodes[self.order[i]]
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    pub fn node_mut(&mut self, name: &str) -> Option<&mut NodeInfo> {
        let i = *self.index.get(name)?;
        Some(&mut self.nodes[i])
    }

    pub fn node_count(&self) -> usize {
        self.order.len()
    }

    pub fn nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.order.iter().map(|i| &self.nodes[*i])
    }

    /// Whether any placed pod has (anti-)affinity terms.
    pub fn any_affinity(&self) -> bool {
        self.with_affinity > 0
    }

    /// Whether any placed pod has required anti-affinity terms.
    pub fn any_required_anti_affinity(&self) -> bool {
        self.with_required_anti_affinity > 0
    }

    fn count(&mut self, pod: &PodInfo, add: bool) {
        let (a, r) = (
            usize::from(pod.has_affinity()),
            usize::from(!pod.required_anti_affinity.is_empty()),
        );
        if add {
            self.with_affinity += a;
            self.with_required_anti_affinity += r;
        } else {
            self.with_affinity -= a;
            self.with_required_anti_affinity -= r;
        }
    }

    pub fn namespace_labels(&self, namespace: &str) -> Option<&Labels> {
        self.namespaces.get(namespace)
    }

    pub fn set_namespace(&mut self, name: &str, labels: Labels) {
        self.namespaces.insert(name.to_string(), labels);
    }

    pub fn remove_namespace(&mut self, name: &str) {
        self.namespaces.remove(name);
    }

    pub fn add_or_update_node(&mut self, node: Node) -> NodeChange {
        let node = Arc::new(node);
        let name = node.metadata.name.clone().unwrap_or_default();
        match self.index.get(&name).copied() {
            Some(slot) => {
                let info = &mut self.nodes[slot];
                let old = &info.node;
                let relevant = old.metadata.labels != node.metadata.labels
                    || old.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
                        != node.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
                    || info.allocatable != node_allocatable(&node);
                let old_zone = zone_key(old);
                let new_zone = zone_key(&node);
                info.allocatable = node_allocatable(&node);
                info.node = node;
                info.copy_flags();
                if old_zone != new_zone {
                    self.unzone(&old_zone, slot);
                    self.zone(new_zone, slot);
                    self.rebuild_order();
                }
                if relevant {
                    NodeChange::Relevant
                } else {
                    NodeChange::Irrelevant
                }
            }
            None => {
                let zone = zone_key(&node);
                let mut info = NodeInfo::new(node);
                for pod in self.orphans.remove(&name).into_iter().flatten() {
                    self.count(&pod, true);
                    info.add_pod(pod);
                }
                let slot = self.nodes.len();
                self.nodes.push(info);
                self.index.insert(name, slot);
                self.zone(zone, slot);
                self.rebuild_order();
                NodeChange::Added
            }
        }
    }

    fn zone(&mut self, zone: String, slot: usize) {
        match self.zones.iter_mut().find(|(z, _)| *z == zone) {
            Some((_, list)) => list.push(slot),
            None => self.zones.push((zone, vec![slot])),
        }
    }

    fn unzone(&mut self, zone: &str, slot: usize) {
        if let Some(pos) = self.zones.iter().position(|(z, _)| z == zone) {
            self.zones[pos].1.retain(|s| *s != slot);
            if self.zones[pos].1.is_empty() {
                self.zones.remove(pos);
            }
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        let Some(slot) = self.index.remove(name) else {
            return;
        };
        let zone = zone_key(&self.nodes[slot].node);
        self.unzone(&zone, slot);
        let last = self.nodes.len() - 1;
        let info = self.nodes.swap_remove(slot);
        if slot != last {
            // The last node moved into the freed slot.
            let moved = self.nodes[slot].name.clone();
            self.index.insert(moved, slot);
            for (_, list) in self.zones.iter_mut() {
                for s in list.iter_mut() {
                    if *s == last {
                        *s = slot;
                    }
                }
            }
        }
        for pod in &info.pods {
            self.count(pod, false);
        }
        // Pods stay known until their own deletion arrives.
        if !info.pods.is_empty() {
            self.orphans.insert(name.to_string(), info.pods);
        }
        self.rebuild_order();
    }

    fn rebuild_order(&mut self) {
        self.order.clear();
        let longest = self.zones.iter().map(|(_, l)| l.len()).max().unwrap_or(0);
        for i in 0..longest {
            for (_, list) in &self.zones {
                if let Some(slot) = list.get(i) {
                    self.order.push(*slot);
                }
            }
        }
    }

    fn place(&mut self, node: &str, info: Arc<PodInfo>) {
        match self.index.get(node).copied() {
            Some(slot) => {
                self.count(&info, true);
                self.nodes[slot].add_pod(info);
            }
            None => self.orphans.entry(node.to_string()).or_default().push(info),
        }
    }

    fn unplace(&mut self, node: &str, key: &str) {
        if let Some(slot) = self.index.get(node).copied() {
            if let Some(pod) = self.nodes[slot].remove_pod(key) {
                self.count(&pod, false);
            }
        } else if let Some(list) = self.orphans.get_mut(node) {
            list.retain(|p| p.key != key);
            if list.is_empty() {
                self.orphans.remove(node);
            }
        }
    }

    /// A bound pod seen on the watch (confirms an assumed one).
    pub fn add_or_update_pod(&mut self, info: Arc<PodInfo>) {
        let Some(node) = info.node_name.clone() else {
            return;
        };
        self.remove_nominated(&info.key);
        if let Some(old) = self.pods.remove(&info.key) {
            self.unplace(&old.node, &info.key);
        }
        self.place(&node, info.clone());
        self.pods.insert(
            info.key.clone(),
            PodEntry {
                info,
                node,
                assumed: false,
            },
        );
    }

    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        self.remove_nominated(key);
        let old = self.pods.remove(key)?;
        self.unplace(&old.node, key);
        Some(old.info)
    }

    /// Place a pod the scheduler just chose, before the bind completes.
    pub fn assume(&mut self, info: Arc<PodInfo>, node: &str) {
        self.remove_nominated(&info.key);
        if let Some(old) = self.pods.remove(&info.key) {
            self.unplace(&old.node, &info.key);
        }
        self.place(node, info.clone());
        self.pods.insert(
            info.key.clone(),
            PodEntry {
                info,
                node: node.to_string(),
                assumed: true,
            },
        );
    }

    /// Undo [`Cache::assume`] after a failed bind; a pod the watch has
    /// confirmed meanwhile is left alone.
    pub fn forget(&mut self, key: &str) {
        if self.pods.get(key).is_some_and(|e| e.assumed) {
            self.remove_pod(key);
        }
    }

    pub fn is_assumed(&self, key: &str) -> bool {
        self.pods.get(key).is_some_and(|e| e.assumed)
    }

    pub fn contains_pod(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    pub fn pod(&self, key: &str) -> Option<&Arc<PodInfo>> {
        self.pods.get(key).map(|e| &e.info)
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// Record that `info` waits for `node` (status.nominatedNodeName).
    pub fn set_nominated(&mut self, info: Arc<PodInfo>, node: &str) {
        self.remove_nominated(&info.key);
        self.nominated_node_of
            .insert(info.key.clone(), node.to_string());
        self.nominated
            .entry(node.to_string())
            .or_default()
            .push(info);
    }

    pub fn remove_nominated(&mut self, key: &str) {
        if let Some(node) = self.nominated_node_of.remove(key) {
            if let Some(list) = self.nominated.get_mut(&node) {
                list.retain(|p| p.key != key);
                if list.is_empty() {
                    self.nominated.remove(&node);
                }
            }
        }
    }

    pub fn nominated_pods(&self, node: &str) -> &[Arc<PodInfo>] {
        if self.nominated.is_empty() {
            return &[];
        }
        self.nominated.get(node).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn nominated_node_of(&self, key: &str) -> Option<&str> {
        self.nominated_node_of.get(key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub fn node(name: &str, zone: &str) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {ZONE_LABEL: zone}},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}
        }))
        .unwrap()
    }

    fn pod(name: &str, node: &str, cpu: &str) -> Arc<PodInfo> {
        let p = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [
                {"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
        }))
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(p), 0))
    }

    #[test]
    fn node_order_interleaves_zones() {
        let mut c = Cache::new();
        for (n, z) in [
            ("a1", "a"),
            ("a2", "a"),
            ("a3", "a"),
            ("b1", "b"),
            ("b2", "b"),
        ] {
            c.add_or_update_node(node(n, z));
        }
        assert_eq!(
            c.node_names().collect::<Vec<_>>(),
            ["a1", "b1", "a2", "b2", "a3"]
        );
        c.remove_node("a1");
        assert_eq!(c.node_names().collect::<Vec<_>>(), ["a2", "b1", "a3", "b2"]);
        assert_eq!(c.node("b2").unwrap().name, "b2", "slots stay consistent");
    }

    #[test]
    fn assumed_pods_count_until_forgotten_and_confirmed_pods_stay() {
        let mut c = Cache::new();
        c.add_or_update_node(node("n1", "a"));
        c.assume(pod("p", "n1", "1"), "n1");
        assert_eq!(c.node("n1").unwrap().requested.milli_cpu, 1000);
        c.forget("default/p");
        assert_eq!(c.node("n1").unwrap().requested.milli_cpu, 0);

        c.assume(pod("q", "n1", "1"), "n1");
        c.add_or_update_pod(pod("q", "n1", "1"));
        assert!(!c.is_assumed("default/q"));
        c.forget("default/q");
        assert_eq!(
            c.node("n1").unwrap().requested.milli_cpu,
            1000,
            "a confirmed pod is not forgotten"
        );
    }

    #[test]
    fn pods_seen_before_their_node_are_placed_when_it_arrives() {
        let mut c = Cache::new();
        c.add_or_update_pod(pod("p", "late", "500m"));
        c.add_or_update_node(node("late", "a"));
        assert_eq!(c.node("late").unwrap().pods.len(), 1);
        assert_eq!(c.node("late").unwrap().requested.milli_cpu, 500);
    }

    #[test]
    fn heartbeat_only_node_updates_are_irrelevant() {
        let mut c = Cache::new();
        assert_eq!(c.add_or_update_node(node("n", "a")), NodeChange::Added);
        assert_eq!(c.add_or_update_node(node("n", "a")), NodeChange::Irrelevant);
        let mut tainted = node("n", "a");
        tainted.spec = Some(serde_json::from_value(json!({"unschedulable": true})).unwrap());
        assert_eq!(c.add_or_update_node(tainted), NodeChange::Relevant);
    }

    #[test]
    fn a_node_cordoned_or_tainted_later_shows_it_and_uncordoned_stops() {
        let mut c = Cache::new();
        c.add_or_update_node(node("n", "a"));
        let n = c.node("n").unwrap();
        assert!(!n.unschedulable());
        assert!(n.taints().is_empty());
        let mut changed = node("n", "a");
        changed.spec = Some(
            serde_json::from_value(json!({"unschedulable": true,
                "taints": [{"key": "k", "effect": "NoSchedule"}]}))
            .unwrap(),
        );
        c.add_or_update_node(changed);
        let n = c.node("n").unwrap();
        assert!(n.unschedulable());
        assert_eq!(n.taints().len(), 1);
        assert_eq!(n.taints()[0].key, "k");
        c.add_or_update_node(node("n", "a"));
        let n = c.node("n").unwrap();
        assert!(!n.unschedulable());
        assert!(n.taints().is_empty());
    }
}
