//! Pods and selectors in the form the hot path wants: a [`PodInfo`] is
//! computed once per pod (requests, priority, parsed affinity terms) so the
//! per-node checks never re-parse API objects, and [`Selector`] /
//! [`NodeSelectorMatcher`] are compiled label and node selectors.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodAffinityTerm, Taint,
    Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::Timestamp;

use crate::resources::{pod_requests, Resource};

pub type Labels = BTreeMap<String, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            "Gt" => Op::Gt,
            "Lt" => Op::Lt,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

impl Requirement {
    fn matches_value(&self, value: Option<&str>) -> bool {
        match (self.op, value) {
            (Op::In, Some(v)) => self.values.iter().any(|x| x == v),
            (Op::In, None) => false,
            (Op::NotIn, Some(v)) => !self.values.iter().any(|x| x == v),
            (Op::NotIn, None) => true,
            (Op::Exists, v) => v.is_some(),
            (Op::DoesNotExist, v) => v.is_none(),
            (Op::Gt | Op::Lt, None) => false,
            (op, Some(v)) => {
                let (Ok(have), Some(Ok(want))) = (
                    v.parse::<i64>(),
                    self.values.first().map(|x| x.parse::<i64>()),
                ) else {
                    return false;
                };
                if op == Op::Gt {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.key).map(String::as_str))
    }
}

/// A compiled label selector. `nothing` is the nil selector, which matches
/// no object; an empty selector matches every object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
    pub nothing: bool,
}

impl Selector {
    pub fn nothing() -> Selector {
        Selector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    pub fn everything() -> Selector {
        Selector {
            requirements: Vec::new(),
            nothing: false,
        }
    }

    /// From a map selector (Services, ReplicationControllers): an empty map
    /// selects nothing there, as upstream treats it.
    pub fn from_map(map: &BTreeMap<String, String>) -> Selector {
        if map.is_empty() {
            return Selector::nothing();
        }
        Selector {
            requirements: map
                .iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    op: Op::In,
                    values: vec![v.clone()],
                })
                .collect(),
            nothing: false,
        }
    }

    /// From a metav1.LabelSelector; None is the nil selector. An invalid
    /// operator makes the selector match nothing, as upstream's conversion
    /// error does.
    pub fn from_label_selector(selector: Option<&LabelSelector>) -> Selector {
        let Some(s) = selector else {
            return Selector::nothing();
        };
        let mut requirements = Vec::new();
        for (k, v) in s.match_labels.iter().flatten() {
            requirements.push(Requirement {
                key: k.clone(),
                op: Op::In,
                values: vec![v.clone()],
            });
        }
        for e in s.match_expressions.iter().flatten() {
            let Some(op) = Op::parse(&e.operator).filter(|op| !matches!(op, Op::Gt | Op::Lt))
            else {
                return Selector::nothing();
            };
            requirements.push(Requirement {
                key: e.key.clone(),
                op,
                values: e.values.clone().unwrap_or_default(),
            });
        }
        Selector {
            requirements,
            nothing: false,
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }
}

/// A compiled `v1.NodeSelector`: terms are ORed, requirements inside a
/// term ANDed; a term with no requirements matches no node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeSelectorMatcher {
    terms: Vec<(Vec<Requirement>, Vec<Requirement>)>,
}

impl NodeSelectorMatcher {
    pub fn new(selector: &NodeSelector) -> NodeSelectorMatcher {
        NodeSelectorMatcher {
            terms: selector
                .node_selector_terms
                .iter()
                .map(compile_term)
                .collect(),
        }
    }

    pub fn matches(&self, node: &Node) -> bool {
        self.terms
            .iter()
            .any(|(exprs, fields)| term_matches(exprs, fields, node))
    }
}

fn compile_requirements(list: Option<&Vec<NodeSelectorRequirement>>) -> Option<Vec<Requirement>> {
    list.into_iter()
        .flatten()
        .map(|r| {
            Some(Requirement {
                key: r.key.clone(),
                op: Op::parse(&r.operator)?,
                values: r.values.clone().unwrap_or_default(),
            })
        })
        .collect()
}

/// A term whose requirements cannot be parsed compiles to an empty term,
/// which matches nothing.
pub fn compile_term(term: &NodeSelectorTerm) -> (Vec<Requirement>, Vec<Requirement>) {
    match (
        compile_requirements(term.match_expressions.as_ref()),
        compile_requirements(term.match_fields.as_ref()),
    ) {
        (Some(e), Some(f)) => (e, f),
        _ => (Vec::new(), Vec::new()),
    }
}

pub fn term_matches(exprs: &[Requirement], fields: &[Requirement], node: &Node) -> bool {
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let empty = Labels::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let name = node.metadata.name.as_deref();
    exprs.iter().all(|r| r.matches(labels))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && r.matches_value(name))
}

/// One (anti-)affinity term with its namespaces resolved as far as they
/// can be without the namespace objects.
#[derive(Clone, Debug)]
pub struct AffinityTerm {
    pub selector: Selector,
    pub topology_key: String,
    /// Explicit namespaces, plus the pod's own when neither a list nor a
    /// namespace selector is given.
    pub namespaces: BTreeSet<String>,
    /// None: no namespace selector. Some(empty) selects every namespace.
    pub namespace_selector: Option<Selector>,
}

impl AffinityTerm {
    fn new(term: &PodAffinityTerm, pod_namespace: &str, pod_labels: &Labels) -> AffinityTerm {
        let mut selector = Selector::from_label_selector(term.label_selector.as_ref());
        // matchLabelKeys / mismatchLabelKeys take values from the incoming
        // pod's own labels.
        for key in term.match_label_keys.iter().flatten() {
            if let Some(v) = pod_labels.get(key) {
                selector.requirements.push(Requirement {
                    key: key.clone(),
                    op: Op::In,
                    values: vec![v.clone()],
                });
            }
        }
        for key in term.mismatch_label_keys.iter().flatten() {
            if let Some(v) = pod_labels.get(key) {
                selector.requirements.push(Requirement {
                    key: key.clone(),
                    op: Op::NotIn,
                    values: vec![v.clone()],
                });
            }
        }
        let mut namespaces: BTreeSet<String> = term.namespaces.iter().flatten().cloned().collect();
        let namespace_selector = term
            .namespace_selector
            .as_ref()
            .map(|s| Selector::from_label_selector(Some(s)));
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.insert(pod_namespace.to_string());
        }
        AffinityTerm {
            selector,
            topology_key: term.topology_key.clone(),
            namespaces,
            namespace_selector,
        }
    }

    /// Does this term select `pod`? `ns_labels` are the labels of the
    /// pod's namespace (needed only for a namespace selector).
    pub fn matches(&self, pod: &PodInfo, ns_labels: Option<&Labels>) -> bool {
        let ns_ok = self.namespaces.contains(&pod.namespace)
            || self.namespace_selector.as_ref().is_some_and(|s| {
                let empty = Labels::new();
                s.matches(ns_labels.unwrap_or(&empty))
            });
        ns_ok && self.selector.matches(&pod.labels)
    }
}

#[derive(Clone, Debug)]
pub struct WeightedTerm {
    pub weight: i32,
    pub term: AffinityTerm,
}

/// Everything the scheduler needs from one pod, computed once.
#[derive(Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    /// `namespace/name`.
    pub key: String,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub priority: i32,
    pub requests: Resource,
    pub non_zero: Resource,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<WeightedTerm>,
    pub preferred_anti_affinity: Vec<WeightedTerm>,
    pub node_name: Option<String>,
    pub start_time: Option<Timestamp>,
}

impl PodInfo {
    /// `priority` is the resolved priority (spec.priority, or looked up from
    /// the PriorityClass when the API server did not fill it in).
    pub fn new(pod: Arc<Pod>, priority: i32) -> PodInfo {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let (requests, non_zero) = pod_requests(&pod);
        let spec = pod.spec.as_ref();
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let req = |terms: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            terms
                .into_iter()
                .flatten()
                .map(|t| AffinityTerm::new(t, &namespace, &labels))
                .collect()
        };
        let pref = |terms: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
            terms
                .into_iter()
                .flatten()
                .map(|w| WeightedTerm {
                    weight: w.weight,
                    term: AffinityTerm::new(&w.pod_affinity_term, &namespace, &labels),
                })
                .collect::<Vec<_>>()
        };
        let required_affinity = req(pa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let required_anti_affinity = req(paa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let preferred_affinity = pref(pa.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let preferred_anti_affinity = pref(paa.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let node_name = spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        let start_time = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0)
            .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0));
        PodInfo {
            key: format!("{namespace}/{name}"),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            namespace,
            name,
            labels,
            priority,
            requests,
            non_zero,
            required_affinity,
            required_anti_affinity,
            preferred_affinity,
            preferred_anti_affinity,
            node_name,
            start_time,
            pod,
        }
    }

    pub fn has_affinity(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }

    pub fn tolerations(&self) -> &[Toleration] {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or(&[])
    }

    pub fn scheduler_name(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or("default-scheduler")
    }
}

/// Does `toleration` tolerate `taint` (upstream's ToleratesTaint)?
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

pub fn tolerated_by_any(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors_follow_upstream_semantics() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]
        }))
        .unwrap();
        let s = Selector::from_label_selector(Some(&sel));
        assert!(s.matches(&labels(&[("app", "web")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "db")])));
        assert!(!Selector::from_label_selector(None).matches(&labels(&[])));
        let empty = LabelSelector::default();
        assert!(Selector::from_label_selector(Some(&empty)).matches(&labels(&[("x", "y")])));
    }

    #[test]
    fn node_selector_terms_are_ored_and_empty_terms_match_nothing() {
        let sel: NodeSelector = serde_json::from_value(json!({"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n9"]}]},
            {}
        ]}))
        .unwrap();
        let m = NodeSelectorMatcher::new(&sel);
        let node = |name: &str, cores: &str| -> Node {
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"cores": cores}}}))
                .unwrap()
        };
        assert!(m.matches(&node("a", "8")));
        assert!(!m.matches(&node("a", "2")));
        assert!(m.matches(&node("n9", "2")));
    }

    #[test]
    fn tolerations_match_key_value_and_effect() {
        let taint = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let t = |v: serde_json::Value| -> Toleration { serde_json::from_value(v).unwrap() };
        assert!(tolerates(&t(json!({"key": "k", "value": "v"})), &taint));
        assert!(tolerates(&t(json!({"operator": "Exists"})), &taint));
        assert!(!tolerates(&t(json!({"key": "k", "value": "w"})), &taint));
        assert!(!tolerates(
            &t(json!({"key": "k", "operator": "Exists", "effect": "NoExecute"})),
            &taint
        ));
    }
}
