//! The node-local plugins: NodeName, NodeUnschedulable, NodePorts,
//! TaintToleration (filter and score) and NodeAffinity (filter and score).

use k8s_openapi::api::core::v1::{Node, Taint, Toleration};

use super::{Code, FilterResult, Rejection};
use super::{NODE_AFFINITY, NODE_NAME, NODE_PORTS, NODE_UNSCHEDULABLE, TAINT_TOLERATION};
use crate::cache::{host_ports, NodeInfo};
use crate::podinfo::{compile_term, term_matches, tolerated_by_any, NodeSelectorMatcher};
use crate::podinfo::{PodInfo, Requirement};

pub const ERR_NODE_NAME: &str = "node(s) didn't match the requested node name";
pub const ERR_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const ERR_NODE_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
pub const ERR_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
pub const UNSCHEDULABLE_TAINT_KEY: &str = "node.kubernetes.io/unschedulable";

pub fn node_name(pod: &PodInfo, node: &NodeInfo) -> FilterResult {
    match pod.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        Some(wanted) if !wanted.is_empty() && wanted != node.name => Err(Rejection::new(
            NODE_NAME,
            Code::UnschedulableAndUnresolvable,
            ERR_NODE_NAME,
        )),
        _ => Ok(()),
    }
}

pub fn node_unschedulable(pod: &PodInfo, node: &NodeInfo) -> FilterResult {
    if !node.unschedulable() {
        return Ok(());
    }
    let taint = Taint {
        key: UNSCHEDULABLE_TAINT_KEY.into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    if tolerated_by_any(pod.tolerations(), &taint) {
        return Ok(());
    }
    Err(Rejection::new(
        NODE_UNSCHEDULABLE,
        Code::UnschedulableAndUnresolvable,
        ERR_UNSCHEDULABLE,
    ))
}

pub fn node_ports(wanted: &[(String, String, i32)], node: &NodeInfo) -> FilterResult {
    let conflict = wanted.iter().any(|(proto, ip, port)| {
        node.used_ports.iter().any(|(p2, ip2, port2)| {
            proto == p2 && port == port2 && (ip == ip2 || ip == "0.0.0.0" || ip2 == "0.0.0.0")
        })
    });
    if conflict {
        Err(Rejection::new(
            NODE_PORTS,
            Code::Unschedulable,
            ERR_NODE_PORTS,
        ))
    } else {
        Ok(())
    }
}

/// The host ports of the incoming pod (computed once per cycle).
pub fn wanted_ports(pod: &PodInfo) -> Vec<(String, String, i32)> {
    host_ports(pod)
}

pub fn taint_toleration(pod: &PodInfo, node: &NodeInfo) -> FilterResult {
    let tolerations = pod.tolerations();
    for taint in node.taints() {
        if (taint.effect == "NoSchedule" || taint.effect == "NoExecute")
            && !tolerated_by_any(tolerations, taint)
        {
            return Err(Rejection::new(
                TAINT_TOLERATION,
                Code::UnschedulableAndUnresolvable,
                format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    taint.key,
                    taint.value.as_deref().unwrap_or("")
                ),
            ));
        }
    }
    Ok(())
}

/// Raw score: how many PreferNoSchedule taints the pod does not tolerate
/// (normalised reversed: fewer is better).
pub fn taint_toleration_score(prefer_tolerations: &[Toleration], node: &NodeInfo) -> i64 {
    node.taints()
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule" && !tolerated_by_any(prefer_tolerations, t))
        .count() as i64
}

/// Tolerations that count for PreferNoSchedule scoring.
pub fn prefer_no_schedule_tolerations(pod: &PodInfo) -> Vec<Toleration> {
    pod.tolerations()
        .iter()
        .filter(|t| {
            matches!(
                t.effect.as_deref(),
                None | Some("") | Some("PreferNoSchedule")
            )
        })
        .cloned()
        .collect()
}

/// The pod's nodeSelector and node affinity, compiled once per cycle.
#[derive(Clone, Debug, Default)]
pub struct NodeAffinityState {
    node_selector: Vec<(String, String)>,
    required: Option<NodeSelectorMatcher>,
    preferred: Vec<(i64, Vec<Requirement>, Vec<Requirement>)>,
}

impl NodeAffinityState {
    pub fn new(pod: &PodInfo) -> NodeAffinityState {
        let spec = pod.pod.spec.as_ref();
        let node_selector = spec
            .and_then(|s| s.node_selector.as_ref())
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let na = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref());
        let required = na
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(NodeSelectorMatcher::new);
        let preferred = na
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .filter(|p| p.weight != 0)
            .map(|p| {
                let (e, f) = compile_term(&p.preference);
                (i64::from(p.weight), e, f)
            })
            .collect();
        NodeAffinityState {
            node_selector,
            required,
            preferred,
        }
    }

    /// nodeSelector and required node affinity both hold.
    pub fn required_matches(&self, node: &Node) -> bool {
        // Most pods ask nothing of the node: say so without loading it.
        if self.node_selector.is_empty() && self.required.is_none() {
            return true;
        }
        let labels = node.metadata.labels.as_ref();
        self.node_selector
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            && self.required.as_ref().is_none_or(|r| r.matches(node))
    }

    pub fn filter(&self, node: &NodeInfo) -> FilterResult {
        if self.required_matches(&node.node) {
            Ok(())
        } else {
            Err(Rejection::new(
                NODE_AFFINITY,
                Code::UnschedulableAndUnresolvable,
                ERR_NODE_AFFINITY,
            ))
        }
    }

    pub fn has_preferred(&self) -> bool {
        !self.preferred.is_empty()
    }

    /// Raw score: the summed weights of the preferred terms the node meets.
    pub fn score(&self, node: &NodeInfo) -> i64 {
        self.preferred
            .iter()
            .filter(|(_, e, f)| term_matches(e, f, &node.node))
            .map(|(w, _, _)| *w)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn pod(spec: serde_json::Value) -> PodInfo {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "c"}]);
        let p = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default"}, "spec": spec
        }))
        .unwrap();
        PodInfo::new(Arc::new(p), 0)
    }

    fn node(v: serde_json::Value) -> NodeInfo {
        let mut v = v;
        v["metadata"]["name"] = json!("n1");
        NodeInfo::new(Arc::new(serde_json::from_value(v).unwrap()))
    }

    #[test]
    fn node_name_filter_rejects_other_nodes() {
        let p = pod(json!({"nodeName": "n2"}));
        let err = node_name(&p, &node(json!({}))).unwrap_err();
        assert_eq!(err.reasons, [ERR_NODE_NAME]);
        assert!(node_name(&pod(json!({})), &node(json!({}))).is_ok());
    }

    #[test]
    fn unschedulable_nodes_reject_pods_without_the_unschedulable_toleration() {
        let n = node(json!({"spec": {"unschedulable": true}}));
        let err = node_unschedulable(&pod(json!({})), &n).unwrap_err();
        assert_eq!(err.reasons, [ERR_UNSCHEDULABLE]);
        let tolerant = pod(json!({"tolerations": [
            {"key": UNSCHEDULABLE_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]}));
        assert!(node_unschedulable(&tolerant, &n).is_ok());
    }

    #[test]
    fn untolerated_no_schedule_taints_reject_with_the_taint_in_the_reason() {
        let n = node(json!({"spec": {"taints": [
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
            {"key": "soft", "effect": "PreferNoSchedule"}]}}));
        let err = taint_toleration(&pod(json!({})), &n).unwrap_err();
        assert_eq!(err.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(
            err.reasons,
            ["node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"]
        );
        let tolerant = pod(json!({"tolerations": [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}));
        assert!(taint_toleration(&tolerant, &n).is_ok());
        assert_eq!(
            taint_toleration_score(&prefer_no_schedule_tolerations(&tolerant), &n),
            1,
            "the PreferNoSchedule taint is not tolerated"
        );
    }

    #[test]
    fn node_affinity_needs_node_selector_and_required_terms() {
        let p = pod(json!({
            "nodeSelector": {"disk": "ssd"},
            "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}
                ]},
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 7, "preference": {"matchExpressions": [
                        {"key": "zone", "operator": "In", "values": ["b"]}]}}
                ]
            }}
        }));
        let state = NodeAffinityState::new(&p);
        let a = node(json!({"metadata": {"labels": {"disk": "ssd", "zone": "a"}}}));
        let b = node(json!({"metadata": {"labels": {"disk": "ssd", "zone": "b"}}}));
        let c = node(json!({"metadata": {"labels": {"disk": "hdd", "zone": "b"}}}));
        assert!(state.filter(&a).is_ok());
        assert!(state.filter(&b).is_ok());
        assert_eq!(state.filter(&c).unwrap_err().reasons, [ERR_NODE_AFFINITY]);
        assert_eq!((state.score(&a), state.score(&b)), (0, 7));
    }

    #[test]
    fn host_port_conflicts_reject_the_node() {
        let mut n = node(json!({}));
        n.used_ports.push(("TCP".into(), "0.0.0.0".into(), 8080));
        let want = vec![("TCP".to_string(), "10.0.0.1".to_string(), 8080)];
        assert_eq!(node_ports(&want, &n).unwrap_err().reasons, [ERR_NODE_PORTS]);
        let other = vec![("UDP".to_string(), "0.0.0.0".to_string(), 8080)];
        assert!(node_ports(&other, &n).is_ok());
    }
}
