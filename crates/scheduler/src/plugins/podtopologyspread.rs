//! PodTopologySpread: keep matching pods evenly spread over topology
//! domains. DoNotSchedule constraints filter (skew = pods in the node's
//! domain + self - pods in the emptiest domain must not exceed maxSkew);
//! ScheduleAnyway constraints score. Pods without constraints of their own
//! get the default constraints when they belong to a Service, ReplicaSet,
//! StatefulSet or ReplicationController.

use std::collections::HashMap;

use super::basic::NodeAffinityState;
use super::{Code, FilterResult, Rejection, MAX_NODE_SCORE, POD_TOPOLOGY_SPREAD};
use crate::cache::{Cache, NodeInfo, HOSTNAME_LABEL, ZONE_LABEL};
use crate::podinfo::{tolerated_by_any, Op, PodInfo, Requirement, Selector};

pub const ERR_CONSTRAINTS: &str = "node(s) didn't match pod topology spread constraints";
pub const ERR_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    pub max_skew: i64,
    pub topology_key: String,
    pub do_not_schedule: bool,
    pub selector: Selector,
    pub min_domains: i64,
    /// nodeAffinityPolicy Honor (default): only nodes the pod could go to count.
    pub honor_node_affinity: bool,
    /// nodeTaintsPolicy Honor: only nodes whose taints the pod tolerates count.
    pub honor_node_taints: bool,
}

/// A default constraint from the profile (`PodTopologySpreadArgs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultConstraint {
    pub max_skew: i64,
    pub topology_key: String,
    pub do_not_schedule: bool,
}

/// Upstream's system defaults: 3 per host, 5 per zone, both soft.
pub fn system_default_constraints() -> Vec<DefaultConstraint> {
    vec![
        DefaultConstraint {
            max_skew: 3,
            topology_key: HOSTNAME_LABEL.into(),
            do_not_schedule: false,
        },
        DefaultConstraint {
            max_skew: 5,
            topology_key: ZONE_LABEL.into(),
            do_not_schedule: false,
        },
    ]
}

/// The constraints that apply to a pod, and whether they came from
/// defaults (nodes lacking a default key are then not ignored).
#[derive(Clone, Debug, Default)]
pub struct Constraints {
    pub list: Vec<Constraint>,
    pub system_defaulted: bool,
}

impl Constraints {
    /// `default_selector` is the selector built from the pod's Services and
    /// controllers; used only when the pod has no constraints itself.
    pub fn for_pod(
        pod: &PodInfo,
        defaults: &[DefaultConstraint],
        defaults_are_system: bool,
        default_selector: impl FnOnce() -> Option<Selector>,
    ) -> Constraints {
        let own = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_ref())
            .filter(|c| !c.is_empty());
        if let Some(own) = own {
            let list = own
                .iter()
                .map(|c| {
                    let mut selector = Selector::from_label_selector(c.label_selector.as_ref());
                    for key in c.match_label_keys.iter().flatten() {
                        if let Some(v) = pod.labels.get(key) {
                            selector.requirements.push(Requirement {
                                key: key.clone(),
                                op: Op::In,
                                values: vec![v.clone()],
                            });
                        }
                    }
                    Constraint {
                        max_skew: i64::from(c.max_skew),
                        topology_key: c.topology_key.clone(),
                        do_not_schedule: c.when_unsatisfiable == "DoNotSchedule",
                        selector,
                        min_domains: i64::from(c.min_domains.unwrap_or(1)),
                        honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                        honor_node_taints: c.node_taints_policy.as_deref() == Some("Honor"),
                    }
                })
                .collect();
            return Constraints {
                list,
                system_defaulted: false,
            };
        }
        if defaults.is_empty() {
            return Constraints::default();
        }
        let Some(selector) = default_selector().filter(|s| !s.is_empty() && !s.nothing) else {
            return Constraints::default();
        };
        Constraints {
            list: defaults
                .iter()
                .map(|d| Constraint {
                    max_skew: d.max_skew,
                    topology_key: d.topology_key.clone(),
                    do_not_schedule: d.do_not_schedule,
                    selector: selector.clone(),
                    min_domains: 1,
                    honor_node_affinity: true,
                    honor_node_taints: false,
                })
                .collect(),
            system_defaulted: defaults_are_system,
        }
    }
}

fn has_keys(node: &NodeInfo, constraints: &[Constraint]) -> bool {
    constraints
        .iter()
        .all(|c| node.label(&c.topology_key).is_some())
}

fn node_counts(
    c: &Constraint,
    pod: &PodInfo,
    affinity: &NodeAffinityState,
    node: &NodeInfo,
) -> bool {
    if c.honor_node_affinity && !affinity.required_matches(&node.node) {
        return false;
    }
    if c.honor_node_taints {
        let tolerations = pod.tolerations();
        if node.taints().iter().any(|t| {
            (t.effect == "NoSchedule" || t.effect == "NoExecute")
                && !tolerated_by_any(tolerations, t)
        }) {
            return false;
        }
    }
    true
}

fn matches(c: &Constraint, pod: &PodInfo, existing: &PodInfo) -> bool {
    existing.namespace == pod.namespace
        && existing.pod.metadata.deletion_timestamp.is_none()
        && c.selector.matches(&existing.labels)
}

fn matching_on(c: &Constraint, pod: &PodInfo, node: &NodeInfo) -> i64 {
    node.pods.iter().filter(|p| matches(c, pod, p)).count() as i64
}

#[derive(Clone, Debug, Default)]
pub struct FilterState {
    constraints: Vec<Constraint>,
    /// Per constraint: topology value -> matching pods.
    counts: Vec<HashMap<String, i64>>,
    min: Vec<i64>,
    self_match: Vec<bool>,
}

impl FilterState {
    pub fn new(
        pod: &PodInfo,
        constraints: &Constraints,
        affinity: &NodeAffinityState,
        cache: &Cache,
    ) -> FilterState {
        let list: Vec<Constraint> = constraints
            .list
            .iter()
            .filter(|c| c.do_not_schedule)
            .cloned()
            .collect();
        let mut state = FilterState {
            counts: vec![HashMap::new(); list.len()],
            min: vec![0; list.len()],
            self_match: list
                .iter()
                .map(|c| c.selector.matches(&pod.labels))
                .collect(),
            constraints: list,
        };
        if state.constraints.is_empty() {
            return state;
        }
        for node in cache.nodes() {
            if !has_keys(node, &state.constraints) {
                continue;
            }
            for (i, c) in state.constraints.iter().enumerate() {
                if !node_counts(c, pod, affinity, node) {
                    continue;
                }
                let value = node.label(&c.topology_key).unwrap_or_default();
                *state.counts[i].entry(value.to_string()).or_default() += matching_on(c, pod, node);
            }
        }
        state.recompute_min();
        state
    }

    fn recompute_min(&mut self) {
        for (i, c) in self.constraints.iter().enumerate() {
            let domains = self.counts[i].len() as i64;
            self.min[i] = if domains < c.min_domains {
                0
            } else {
                self.counts[i].values().copied().min().unwrap_or(0)
            };
        }
    }

    pub fn is_empty(&self) -> bool {
        self.constraints.is_empty()
    }

    pub fn filter(&self, node: &NodeInfo) -> FilterResult {
        for (i, c) in self.constraints.iter().enumerate() {
            let Some(value) = node.label(&c.topology_key) else {
                return Err(Rejection::new(
                    POD_TOPOLOGY_SPREAD,
                    Code::UnschedulableAndUnresolvable,
                    ERR_MISSING_LABEL,
                ));
            };
            let in_domain = self.counts[i].get(value).copied().unwrap_or(0);
            let skew = in_domain + i64::from(self.self_match[i]) - self.min[i];
            if skew > c.max_skew {
                return Err(Rejection::new(
                    POD_TOPOLOGY_SPREAD,
                    Code::Unschedulable,
                    ERR_CONSTRAINTS,
                ));
            }
        }
        Ok(())
    }

    /// Account for `existing` joining (+1) or leaving (-1) `node` (preemption).
    pub fn add_or_remove(
        &mut self,
        pod: &PodInfo,
        affinity: &NodeAffinityState,
        existing: &PodInfo,
        node: &NodeInfo,
        delta: i64,
    ) {
        if self.constraints.is_empty() || !has_keys(node, &self.constraints) {
            return;
        }
        for (i, c) in self.constraints.iter().enumerate() {
            if node_counts(c, pod, affinity, node) && matches(c, pod, existing) {
                let value = node.label(&c.topology_key).unwrap_or_default();
                *self.counts[i].entry(value.to_string()).or_default() += delta;
            }
        }
        self.recompute_min();
    }
}

#[derive(Debug)]
pub struct ScoreState {
    constraints: Vec<Constraint>,
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
    require_all: bool,
}

impl ScoreState {
    /// `feasible` are the nodes that passed filtering.
    pub fn new(
        pod: &PodInfo,
        constraints: &Constraints,
        affinity: &NodeAffinityState,
        feasible: &[&NodeInfo],
        cache: &Cache,
    ) -> Option<ScoreState> {
        let list: Vec<Constraint> = constraints
            .list
            .iter()
            .filter(|c| !c.do_not_schedule)
            .cloned()
            .collect();
        if list.is_empty() {
            return None;
        }
        let require_all = !constraints.system_defaulted;
        let mut counts = vec![HashMap::<String, i64>::new(); list.len()];
        let mut sizes = vec![0usize; list.len()];
        let mut considered = 0usize;
        for node in feasible {
            if require_all && !has_keys(node, &list) {
                continue;
            }
            considered += 1;
            for (i, c) in list.iter().enumerate() {
                if c.topology_key == HOSTNAME_LABEL {
                    continue;
                }
                if let Some(v) = node.label(&c.topology_key) {
                    if !counts[i].contains_key(v) {
                        counts[i].insert(v.to_string(), 0);
                        sizes[i] += 1;
                    }
                }
            }
        }
        // Every node of the cluster, for every pod scored: the cheap tests
        // (does the node hold a counted topology value, any pods at all)
        // come before the policy checks.
        let by_hostname: Vec<bool> = list
            .iter()
            .map(|c| c.topology_key == HOSTNAME_LABEL)
            .collect();
        for node in cache.nodes() {
            if node.pods.is_empty() || (require_all && !has_keys(node, &list)) {
                continue;
            }
            for (i, c) in list.iter().enumerate() {
                if by_hostname[i] {
                    continue;
                }
                let Some(v) = node.label(&c.topology_key) else {
                    continue;
                };
                let Some(slot) = counts[i].get_mut(v) else {
                    continue;
                };
                if node_counts(c, pod, affinity, node) {
                    *slot += matching_on(c, pod, node);
                }
            }
        }
        let weights = list
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let size = if c.topology_key == HOSTNAME_LABEL {
                    considered
                } else {
                    sizes[i]
                };
                ((size + 2) as f64).ln()
            })
            .collect();
        Some(ScoreState {
            constraints: list,
            counts,
            weights,
            require_all,
        })
    }

    /// Raw score (lower is better); None for nodes that are ignored.
    pub fn score(&self, pod: &PodInfo, node: &NodeInfo) -> Option<i64> {
        if self.require_all && !has_keys(node, &self.constraints) {
            return None;
        }
        let mut score = 0f64;
        for (i, c) in self.constraints.iter().enumerate() {
            let Some(v) = node.label(&c.topology_key) else {
                continue;
            };
            let count = if c.topology_key == HOSTNAME_LABEL {
                matching_on(c, pod, node)
            } else {
                self.counts[i].get(v).copied().unwrap_or(0)
            };
            score += count as f64 * self.weights[i] + (c.max_skew - 1) as f64;
        }
        Some(score.round() as i64)
    }
}

/// Fewer matching pods is better; ignored nodes (None) score 0.
pub fn normalize(raw: &[Option<i64>]) -> Vec<i64> {
    let present = raw.iter().flatten();
    let max = present.clone().copied().max().unwrap_or(0);
    let min = present.copied().min().unwrap_or(0);
    raw.iter()
        .map(|s| match s {
            None => 0,
            Some(_) if max == 0 => MAX_NODE_SCORE,
            Some(s) => MAX_NODE_SCORE * (max + min - s) / max,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::json;
    use std::sync::Arc;

    fn node(name: &str, zone: Option<&str>) -> Node {
        let mut labels = json!({HOSTNAME_LABEL: name});
        if let Some(z) = zone {
            labels[ZONE_LABEL] = json!(z);
        }
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}))
        .unwrap()
    }

    fn pod(name: &str, spec_extra: serde_json::Value) -> Arc<PodInfo> {
        let mut spec = json!({"containers": [{"name": "c"}]});
        if let Some(obj) = spec_extra.as_object() {
            for (k, v) in obj {
                spec[k] = v.clone();
            }
        }
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
            "spec": spec}))
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(p), 0))
    }

    fn spread(when: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut c = json!({"maxSkew": 1, "topologyKey": ZONE_LABEL, "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": {"app": "web"}}});
        if let Some(obj) = extra.as_object() {
            for (k, v) in obj {
                c[k] = v.clone();
            }
        }
        json!({"topologySpreadConstraints": [c]})
    }

    fn cluster() -> Cache {
        let mut c = Cache::new();
        c.add_or_update_node(node("a1", Some("a")));
        c.add_or_update_node(node("b1", Some("b")));
        c.add_or_update_node(node("nozone", None));
        c
    }

    fn filter_state(p: &PodInfo, c: &Cache) -> FilterState {
        let cons = Constraints::for_pod(p, &[], true, || None);
        FilterState::new(p, &cons, &NodeAffinityState::new(p), c)
    }

    #[test]
    fn hard_spread_rejects_the_fuller_zone_and_nodes_without_the_key() {
        let mut c = cluster();
        c.assume(pod("w1", json!({})), "a1");
        let p = pod("w2", spread("DoNotSchedule", json!({})));
        let s = filter_state(&p, &c);
        assert_eq!(
            s.filter(c.node("a1").unwrap()).unwrap_err().reasons,
            [ERR_CONSTRAINTS]
        );
        assert!(s.filter(c.node("b1").unwrap()).is_ok());
        let err = s.filter(c.node("nozone").unwrap()).unwrap_err();
        assert_eq!(
            (err.code, err.reasons[0].as_str()),
            (Code::UnschedulableAndUnresolvable, ERR_MISSING_LABEL)
        );
    }

    #[test]
    fn min_domains_treats_missing_domains_as_empty() {
        let mut c = cluster();
        c.assume(pod("w1", json!({})), "a1");
        c.assume(pod("w2", json!({})), "b1");
        let p = pod("w3", spread("DoNotSchedule", json!({"minDomains": 3})));
        let s = filter_state(&p, &c);
        // Only 2 domains exist, so the global minimum counts as 0: skew 2 > 1.
        assert!(s.filter(c.node("a1").unwrap()).is_err());
        let p = pod("w3", spread("DoNotSchedule", json!({})));
        assert!(filter_state(&p, &c).filter(c.node("a1").unwrap()).is_ok());
    }

    #[test]
    fn node_affinity_policy_ignore_counts_nodes_the_pod_cannot_use() {
        let mut c = cluster();
        c.add_or_update_node(node("c1", Some("c")));
        c.assume(pod("w1", json!({})), "a1");
        c.assume(pod("w2", json!({})), "b1");
        let mut extra = spread("DoNotSchedule", json!({}));
        extra["nodeSelector"] = json!({ZONE_LABEL: "a"});
        // Honor: only zone a counts, so a1 (1 pod) is the minimum: skew 1.
        let p = pod("w3", extra.clone());
        assert!(filter_state(&p, &c).filter(c.node("a1").unwrap()).is_ok());
        // Ignore: empty zone c counts, skew 2.
        extra["topologySpreadConstraints"][0]["nodeAffinityPolicy"] = json!("Ignore");
        let p = pod("w3", extra);
        assert!(filter_state(&p, &c).filter(c.node("a1").unwrap()).is_err());
    }

    #[test]
    fn soft_spread_scores_emptier_domains_higher() {
        let mut c = cluster();
        c.assume(pod("w1", json!({})), "a1");
        let p = pod("w2", spread("ScheduleAnyway", json!({})));
        let cons = Constraints::for_pod(&p, &[], true, || None);
        let aff = NodeAffinityState::new(&p);
        let feasible: Vec<&NodeInfo> = c.nodes().collect();
        let s = ScoreState::new(&p, &cons, &aff, &feasible, &c).unwrap();
        let raw: Vec<Option<i64>> = feasible.iter().map(|n| s.score(&p, n)).collect();
        let names: Vec<&str> = feasible.iter().map(|n| n.name.as_str()).collect();
        let scores = normalize(&raw);
        let by = |n: &str| scores[names.iter().position(|x| *x == n).unwrap()];
        assert!(by("b1") > by("a1"));
        assert_eq!(by("nozone"), 0, "nodes without the key are ignored");
    }

    #[test]
    fn default_constraints_apply_only_with_a_selector_from_owners() {
        let p = pod("w", json!({}));
        let defaults = system_default_constraints();
        assert!(Constraints::for_pod(&p, &defaults, true, || None)
            .list
            .is_empty());
        let sel = Selector::from_map(&[("app".to_string(), "web".to_string())].into());
        let cons = Constraints::for_pod(&p, &defaults, true, || Some(sel));
        assert_eq!(cons.list.len(), 2);
        assert!(cons.system_defaulted);
        assert!(cons.list.iter().all(|c| !c.do_not_schedule));
    }
}
