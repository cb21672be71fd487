//! NodeResourcesFit (filter: does the pod's request fit next to what is
//! already on the node; score: LeastAllocated, MostAllocated or
//! RequestedToCapacityRatio) and NodeResourcesBalancedAllocation.

use super::{Code, FilterResult, Rejection, MAX_NODE_SCORE, NODE_RESOURCES_FIT};
use crate::cache::NodeInfo;
use crate::podinfo::PodInfo;
use crate::resources::Resource;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyType {
    LeastAllocated,
    MostAllocated,
    RequestedToCapacityRatio,
}

/// `NodeResourcesFitArgs.scoringStrategy`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoringStrategy {
    pub type_: StrategyType,
    /// (resource name, weight).
    pub resources: Vec<(String, i64)>,
    /// RequestedToCapacityRatio shape: (utilization 0-100, score 0-10).
    pub shape: Vec<(i64, i64)>,
}

impl Default for ScoringStrategy {
    fn default() -> Self {
        ScoringStrategy {
            type_: StrategyType::LeastAllocated,
            resources: vec![("cpu".into(), 1), ("memory".into(), 1)],
            shape: Vec::new(),
        }
    }
}

/// Resources already claimed on the node by pods nominated there (with a
/// priority not below the incoming pod's), which the pod must leave room for.
#[derive(Default, Debug, Clone)]
pub struct Nominated {
    pub requests: Resource,
    pub pods: i64,
}

pub fn fit(pod: &PodInfo, node: &NodeInfo, nominated: Option<&Nominated>) -> FilterResult {
    let mut reasons = Vec::new();
    let mut unresolvable = false;
    let extra_pods = nominated.map_or(0, |n| n.pods);
    if node.pods.len() as i64 + 1 + extra_pods > node.allocatable.allowed_pod_number {
        reasons.push("Too many pods".to_string());
    }
    let req = &pod.requests;
    if !req.is_zero() {
        let mut used = node.requested.clone();
        if let Some(n) = nominated {
            used.add(&n.requests);
        }
        let mut check = |name: &str, want: i64, have: i64, used: i64| {
            if want > 0 && want > have - used {
                reasons.push(format!("Insufficient {name}"));
                if want > have {
                    unresolvable = true;
                }
            }
        };
        check(
            "cpu",
            req.milli_cpu,
            node.allocatable.milli_cpu,
            used.milli_cpu,
        );
        check("memory", req.memory, node.allocatable.memory, used.memory);
        check(
            "ephemeral-storage",
            req.ephemeral_storage,
            node.allocatable.ephemeral_storage,
            used.ephemeral_storage,
        );
        for (name, want) in &req.scalar {
            check(
                name,
                *want,
                node.allocatable.scalar(name),
                used.scalar(name),
            );
        }
    }
    if reasons.is_empty() {
        return Ok(());
    }
    Err(Rejection {
        plugin: NODE_RESOURCES_FIT,
        code: if unresolvable {
            Code::UnschedulableAndUnresolvable
        } else {
            Code::Unschedulable
        },
        reasons,
    })
}

/// What the node would have requested with the pod on it, for scoring:
/// non-zero defaults for cpu and memory, exact amounts otherwise.
fn requested_with(pod: &PodInfo, node: &NodeInfo, name: &str, non_zero: bool) -> i64 {
    if non_zero && (name == "cpu" || name == "memory") {
        node.non_zero_requested.get(name) + pod.non_zero.get(name)
    } else {
        node.requested.get(name) + pod.requests.get(name)
    }
}

/// NodeResourcesFit score (raw score is already 0-100).
pub fn score(strategy: &ScoringStrategy, pod: &PodInfo, node: &NodeInfo) -> i64 {
    let mut total = 0;
    let mut weights = 0;
    for (name, weight) in &strategy.resources {
        let allocatable = node.allocatable.get(name);
        let is_extended = !matches!(name.as_str(), "cpu" | "memory" | "ephemeral-storage");
        // Extended resources the pod does not ask for are not scored.
        if is_extended && pod.requests.get(name) == 0 {
            continue;
        }
        let requested = requested_with(pod, node, name, true);
        let s = if allocatable == 0 {
            0
        } else {
            match strategy.type_ {
                StrategyType::LeastAllocated => {
                    if requested > allocatable {
                        0
                    } else {
                        (allocatable - requested) * MAX_NODE_SCORE / allocatable
                    }
                }
                StrategyType::MostAllocated => {
                    requested.min(allocatable) * MAX_NODE_SCORE / allocatable
                }
                StrategyType::RequestedToCapacityRatio => {
                    let utilization = requested.min(allocatable) * 100 / allocatable;
                    shape_score(&strategy.shape, utilization)
                }
            }
        };
        total += s * weight;
        weights += weight;
    }
    if weights == 0 {
        0
    } else {
        total / weights
    }
}

/// Piecewise-linear shape: utilization 0-100 to score 0-10, scaled to 0-100.
fn shape_score(shape: &[(i64, i64)], utilization: i64) -> i64 {
    let scaled: Vec<(i64, i64)> = shape.iter().map(|(u, s)| (*u, s * 10)).collect();
    let Some(first) = scaled.first() else {
        return 0;
    };
    if utilization <= first.0 {
        return first.1;
    }
    for pair in scaled.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if utilization <= b.0 {
            return a.1 + (b.1 - a.1) * (utilization - a.0) / (b.0 - a.0).max(1);
        }
    }
    scaled.last().map_or(0, |l| l.1)
}

/// NodeResourcesBalancedAllocation: nodes whose cpu and memory fractions
/// are close score higher. None for pods requesting neither (skipped).
pub fn balanced_allocation(pod: &PodInfo, node: &NodeInfo) -> Option<i64> {
    if pod.requests.milli_cpu == 0 && pod.requests.memory == 0 {
        return None;
    }
    let mut fractions = [0f64; 2];
    for (i, name) in ["cpu", "memory"].iter().enumerate() {
        let allocatable = node.allocatable.get(name);
        let requested = requested_with(pod, node, name, false);
        fractions[i] = if allocatable == 0 {
            1.0
        } else {
            (requested as f64 / allocatable as f64).min(1.0)
        };
    }
    let std = ((fractions[0] - fractions[1]) / 2.0).abs();
    Some(((1.0 - std) * MAX_NODE_SCORE as f64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn pod(name: &str, requests: serde_json::Value) -> Arc<PodInfo> {
        let p = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": requests}}]}
        }))
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(p), 0))
    }

    fn node(cpu: &str, memory: &str, pods: &str) -> NodeInfo {
        NodeInfo::new(Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": "n"},
                "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods,
                                           "example.com/gpu": "1"}}
            }))
            .unwrap(),
        ))
    }

    #[test]
    fn fit_reports_every_insufficient_resource() {
        let mut n = node("2", "4Gi", "110");
        n.add_pod(pod("a", json!({"cpu": "1500m", "memory": "3Gi"})));
        let err = fit(&pod("b", json!({"cpu": "1", "memory": "2Gi"})), &n, None).unwrap_err();
        assert_eq!(err.reasons, ["Insufficient cpu", "Insufficient memory"]);
        assert_eq!(err.code, Code::Unschedulable, "preemption could free room");
        assert!(fit(&pod("c", json!({"cpu": "500m"})), &n, None).is_ok());
    }

    #[test]
    fn fit_is_unresolvable_when_the_request_exceeds_the_whole_node() {
        let n = node("2", "4Gi", "110");
        let err = fit(&pod("b", json!({"cpu": "3"})), &n, None).unwrap_err();
        assert_eq!(err.code, Code::UnschedulableAndUnresolvable);
    }

    #[test]
    fn fit_counts_pods_extended_resources_and_nominated_pods() {
        let mut n = node("2", "4Gi", "1");
        n.add_pod(pod("a", json!({})));
        let err = fit(&pod("b", json!({})), &n, None).unwrap_err();
        assert_eq!(err.reasons, ["Too many pods"]);

        let n = node("2", "4Gi", "110");
        let gpu2 = pod("g", json!({"example.com/gpu": "2"}));
        assert_eq!(
            fit(&gpu2, &n, None).unwrap_err().reasons,
            ["Insufficient example.com/gpu"]
        );

        let nominated = Nominated {
            requests: pod("x", json!({"cpu": "2"})).requests.clone(),
            pods: 1,
        };
        let err = fit(&pod("b", json!({"cpu": "1"})), &n, Some(&nominated)).unwrap_err();
        assert_eq!(err.reasons, ["Insufficient cpu"]);
    }

    #[test]
    fn least_allocated_prefers_emptier_nodes_and_most_allocated_fuller_ones() {
        let mut busy = node("4", "8Gi", "110");
        busy.add_pod(pod("a", json!({"cpu": "2", "memory": "4Gi"})));
        let empty = node("4", "8Gi", "110");
        let p = pod("p", json!({"cpu": "1", "memory": "2Gi"}));
        let least = ScoringStrategy::default();
        assert_eq!(score(&least, &p, &empty), 75);
        assert_eq!(score(&least, &p, &busy), 25);
        let most = ScoringStrategy {
            type_: StrategyType::MostAllocated,
            ..Default::default()
        };
        assert_eq!(score(&most, &p, &busy), 75);
    }

    #[test]
    fn requested_to_capacity_ratio_follows_the_shape() {
        let strategy = ScoringStrategy {
            type_: StrategyType::RequestedToCapacityRatio,
            resources: vec![("cpu".into(), 1)],
            shape: vec![(0, 10), (100, 0)],
        };
        let n = node("4", "8Gi", "110");
        assert_eq!(score(&strategy, &pod("p", json!({"cpu": "1"})), &n), 75);
    }

    #[test]
    fn balanced_allocation_scores_equal_fractions_highest() {
        let n = node("4", "8Gi", "110");
        let balanced = pod("p", json!({"cpu": "2", "memory": "4Gi"}));
        let skewed = pod("q", json!({"cpu": "2", "memory": "0"}));
        assert_eq!(balanced_allocation(&balanced, &n), Some(100));
        assert_eq!(balanced_allocation(&skewed, &n), Some(75));
        assert_eq!(balanced_allocation(&pod("e", json!({})), &n), None);
    }
}
