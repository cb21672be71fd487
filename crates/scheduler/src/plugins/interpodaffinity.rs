//! InterPodAffinity: required pod affinity and anti-affinity of the
//! incoming pod, required anti-affinity of pods already placed (which
//! must not be broken by the newcomer), and the preferred terms of both
//! sides as a score. Counts are kept per topology pair (label key, value)
//! and computed once per cycle, so the per-node check is a few lookups.

use std::collections::HashMap;

use super::{Code, FilterResult, Rejection, INTER_POD_AFFINITY, MAX_NODE_SCORE};
use crate::cache::{Cache, NodeInfo};
use crate::podinfo::{AffinityTerm, PodInfo};

pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// topology key -> topology value -> count (or score).
type TopologyCounts = HashMap<String, HashMap<String, i64>>;

fn bump(map: &mut TopologyCounts, key: &str, value: &str, delta: i64) {
    *map.entry(key.to_string())
        .or_default()
        .entry(value.to_string())
        .or_default() += delta;
}

fn count(map: &TopologyCounts, key: &str, value: &str) -> i64 {
    map.get(key)
        .and_then(|m| m.get(value))
        .copied()
        .unwrap_or(0)
}

fn term_matches(term: &AffinityTerm, pod: &PodInfo, cache: &Cache) -> bool {
    let ns_labels = if term.namespace_selector.is_some() {
        cache.namespace_labels(&pod.namespace)
    } else {
        None
    };
    term.matches(pod, ns_labels)
}

#[derive(Clone, Debug, Default)]
pub struct FilterState {
    /// Pairs where a placed pod's required anti-affinity selects the incoming pod.
    existing_anti: TopologyCounts,
    /// Pairs holding pods that satisfy all the incoming pod's affinity terms.
    affinity: TopologyCounts,
    /// Pairs holding pods selected by an incoming anti-affinity term.
    anti: TopologyCounts,
    /// Whether the incoming pod matches all its own affinity terms.
    self_match: bool,
}

impl FilterState {
    pub fn new(pod: &PodInfo, cache: &Cache) -> FilterState {
        let mut state = FilterState {
            self_match: pod
                .required_affinity
                .iter()
                .all(|t| term_matches(t, pod, cache)),
            ..Default::default()
        };
        let incoming = !pod.required_affinity.is_empty() || !pod.required_anti_affinity.is_empty();
        if !incoming && !cache.any_required_anti_affinity() {
            return state;
        }
        for node in cache.nodes() {
            if !incoming && node.pods_with_required_anti_affinity == 0 {
                continue;
            }
            for existing in &node.pods {
                state.update(pod, existing, node, 1, cache, incoming);
            }
        }
        state
    }

    fn update(
        &mut self,
        pod: &PodInfo,
        existing: &PodInfo,
        node: &NodeInfo,
        delta: i64,
        cache: &Cache,
        incoming: bool,
    ) {
        if existing.key == pod.key {
            return;
        }
        for term in &existing.required_anti_affinity {
            if let Some(v) = node.label(&term.topology_key) {
                if term_matches(term, pod, cache) {
                    bump(&mut self.existing_anti, &term.topology_key, v, delta);
                }
            }
        }
        if !incoming {
            return;
        }
        if !pod.required_affinity.is_empty()
            && pod
                .required_affinity
                .iter()
                .all(|t| term_matches(t, existing, cache))
        {
            for term in &pod.required_affinity {
                if let Some(v) = node.label(&term.topology_key) {
                    bump(&mut self.affinity, &term.topology_key, v, delta);
                }
            }
        }
        for term in &pod.required_anti_affinity {
            if let Some(v) = node.label(&term.topology_key) {
                if term_matches(term, existing, cache) {
                    bump(&mut self.anti, &term.topology_key, v, delta);
                }
            }
        }
    }

    /// Account for `existing` joining (+1) or leaving (-1) `node` (preemption).
    pub fn add_or_remove(
        &mut self,
        pod: &PodInfo,
        existing: &PodInfo,
        node: &NodeInfo,
        delta: i64,
        cache: &Cache,
    ) {
        self.update(pod, existing, node, delta, cache, true);
    }

    pub fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> FilterResult {
        if !pod.required_affinity.is_empty() {
            let satisfied = pod.required_affinity.iter().all(|t| {
                node.label(&t.topology_key)
                    .is_some_and(|v| count(&self.affinity, &t.topology_key, v) > 0)
            });
            // The first pod of a group that selects itself may go anywhere.
            let first_of_group =
                self.affinity.values().all(|m| m.values().all(|c| *c <= 0)) && self.self_match;
            if !satisfied && !first_of_group {
                return Err(Rejection::new(
                    INTER_POD_AFFINITY,
                    Code::UnschedulableAndUnresolvable,
                    ERR_AFFINITY,
                ));
            }
        }
        for t in &pod.required_anti_affinity {
            if node
                .label(&t.topology_key)
                .is_some_and(|v| count(&self.anti, &t.topology_key, v) > 0)
            {
                return Err(Rejection::new(
                    INTER_POD_AFFINITY,
                    Code::Unschedulable,
                    ERR_ANTI_AFFINITY,
                ));
            }
        }
        for (key, values) in &self.existing_anti {
            if node
                .label(key)
                .is_some_and(|v| values.get(v).is_some_and(|c| *c > 0))
            {
                return Err(Rejection::new(
                    INTER_POD_AFFINITY,
                    Code::Unschedulable,
                    ERR_EXISTING_ANTI_AFFINITY,
                ));
            }
        }
        Ok(())
    }
}

/// Preferred (anti-)affinity weights per topology pair.
#[derive(Debug, Default)]
pub struct ScoreState {
    scores: TopologyCounts,
}

impl ScoreState {
    /// None when no term anywhere can influence this pod.
    pub fn new(pod: &PodInfo, cache: &Cache, hard_pod_affinity_weight: i64) -> Option<ScoreState> {
        let incoming =
            !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
        if !incoming && !cache.any_affinity() {
            return None;
        }
        let mut scores = TopologyCounts::new();
        for node in cache.nodes() {
            if !incoming && node.pods_with_affinity == 0 {
                continue;
            }
            for existing in &node.pods {
                let mut add = |term: &AffinityTerm, w: i64, target: &PodInfo| {
                    if let Some(v) = node.label(&term.topology_key) {
                        if term_matches(term, target, cache) {
                            bump(&mut scores, &term.topology_key, v, w);
                        }
                    }
                };
                for t in &pod.preferred_affinity {
                    add(&t.term, i64::from(t.weight), existing);
                }
                for t in &pod.preferred_anti_affinity {
                    add(&t.term, -i64::from(t.weight), existing);
                }
                if hard_pod_affinity_weight > 0 {
                    for t in &existing.required_affinity {
                        add(t, hard_pod_affinity_weight, pod);
                    }
                }
                for t in &existing.preferred_affinity {
                    add(&t.term, i64::from(t.weight), pod);
                }
                for t in &existing.preferred_anti_affinity {
                    add(&t.term, -i64::from(t.weight), pod);
                }
            }
        }
        if scores.is_empty() {
            None
        } else {
            Some(ScoreState { scores })
        }
    }

    pub fn score(&self, node: &NodeInfo) -> i64 {
        self.scores
            .iter()
            .filter_map(|(key, values)| node.label(key).and_then(|v| values.get(v)))
            .sum()
    }
}

/// Min-max normalisation to 0-100 (scores may be negative).
pub fn normalize(scores: &mut [i64]) {
    let max = scores.iter().copied().max().unwrap_or(0);
    let min = scores.iter().copied().min().unwrap_or(0);
    let diff = max - min;
    for s in scores.iter_mut() {
        *s = if diff > 0 {
            MAX_NODE_SCORE * (*s - min) / diff
        } else {
            0
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{HOSTNAME_LABEL, ZONE_LABEL};
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::json;
    use std::sync::Arc;

    fn node(name: &str, zone: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": {
            ZONE_LABEL: zone, HOSTNAME_LABEL: name}},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}))
        .unwrap()
    }

    fn pod(name: &str, labels: serde_json::Value, affinity: serde_json::Value) -> Arc<PodInfo> {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": {"containers": [{"name": "c"}], "affinity": affinity}
        }))
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(p), 0))
    }

    fn cluster() -> Cache {
        let mut c = Cache::new();
        c.add_or_update_node(node("a1", "a"));
        c.add_or_update_node(node("a2", "a"));
        c.add_or_update_node(node("b1", "b"));
        c
    }

    fn place(c: &mut Cache, p: Arc<PodInfo>, n: &str) {
        c.assume(p, n);
    }

    fn term(key: &str, app: &str) -> serde_json::Value {
        json!({"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key})
    }

    #[test]
    fn required_affinity_needs_a_matching_pod_in_the_same_topology_domain() {
        let mut c = cluster();
        place(&mut c, pod("db", json!({"app": "db"}), json!(null)), "a1");
        let web = pod(
            "web",
            json!({"app": "web"}),
            json!({"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [term(ZONE_LABEL, "db")]}}),
        );
        let s = FilterState::new(&web, &c);
        assert!(
            s.filter(&web, c.node("a2").unwrap()).is_ok(),
            "same zone as db"
        );
        let err = s.filter(&web, c.node("b1").unwrap()).unwrap_err();
        assert_eq!(
            (err.code, err.reasons[0].as_str()),
            (Code::UnschedulableAndUnresolvable, ERR_AFFINITY)
        );
    }

    #[test]
    fn the_first_pod_of_a_self_selecting_affinity_group_may_go_anywhere() {
        let c = cluster();
        let p = pod(
            "w",
            json!({"app": "w"}),
            json!({"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [term(ZONE_LABEL, "w")]}}),
        );
        let s = FilterState::new(&p, &c);
        assert!(s.filter(&p, c.node("b1").unwrap()).is_ok());
    }

    #[test]
    fn required_anti_affinity_keeps_replicas_apart_both_ways() {
        let mut c = cluster();
        let anti = json!({"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [term(HOSTNAME_LABEL, "web")]}});
        place(&mut c, pod("w1", json!({"app": "web"}), anti.clone()), "a1");
        let w2 = pod("w2", json!({"app": "web"}), anti);
        let s = FilterState::new(&w2, &c);
        assert_eq!(
            s.filter(&w2, c.node("a1").unwrap()).unwrap_err().reasons,
            [ERR_ANTI_AFFINITY]
        );
        assert!(s.filter(&w2, c.node("a2").unwrap()).is_ok());

        // A pod without rules of its own still may not break w1's rule.
        let plain = pod("x", json!({"app": "web"}), json!(null));
        let s = FilterState::new(&plain, &c);
        assert_eq!(
            s.filter(&plain, c.node("a1").unwrap()).unwrap_err().reasons,
            [ERR_EXISTING_ANTI_AFFINITY]
        );
    }

    #[test]
    fn anti_affinity_respects_namespaces() {
        let mut c = cluster();
        let other: Pod = serde_json::from_value(json!({
            "metadata": {"name": "o", "namespace": "other", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c"}]}}))
        .unwrap();
        place(&mut c, Arc::new(PodInfo::new(Arc::new(other), 0)), "a1");
        let p = pod(
            "p",
            json!({}),
            json!({"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [term(HOSTNAME_LABEL, "web")]}}),
        );
        let s = FilterState::new(&p, &c);
        assert!(
            s.filter(&p, c.node("a1").unwrap()).is_ok(),
            "only its own namespace counts"
        );
    }

    #[test]
    fn removing_a_pod_lifts_its_anti_affinity() {
        let mut c = cluster();
        let w1 = pod("w1", json!({"app": "web"}), json!(null));
        place(&mut c, w1.clone(), "a1");
        let p = pod(
            "p",
            json!({}),
            json!({"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [term(HOSTNAME_LABEL, "web")]}}),
        );
        let mut s = FilterState::new(&p, &c);
        assert!(s.filter(&p, c.node("a1").unwrap()).is_err());
        s.add_or_remove(&p, &w1, c.node("a1").unwrap(), -1, &c);
        assert!(s.filter(&p, c.node("a1").unwrap()).is_ok());
    }

    #[test]
    fn preferred_terms_score_domains_with_matching_pods() {
        let mut c = cluster();
        place(&mut c, pod("db", json!({"app": "db"}), json!(null)), "b1");
        place(
            &mut c,
            pod("cache", json!({"app": "cache"}), json!(null)),
            "a1",
        );
        let p = pod(
            "p",
            json!({}),
            json!({
            "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "podAffinityTerm": term(ZONE_LABEL, "db")}]},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 5, "podAffinityTerm": term(ZONE_LABEL, "cache")}]}}),
        );
        let s = ScoreState::new(&p, &c, 1).unwrap();
        let mut scores: Vec<i64> = ["a1", "a2", "b1"]
            .iter()
            .map(|n| s.score(c.node(n).unwrap()))
            .collect();
        assert_eq!(scores, [-5, -5, 10]);
        normalize(&mut scores);
        assert_eq!(scores, [0, 0, 100]);
    }
}
