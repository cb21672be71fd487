//! The in-tree plugins of the default profile, as plain functions over a
//! [`NodeInfo`] and state computed once per scheduling cycle. Filters
//! return a [`Rejection`] carrying upstream's reason strings; scores
//! return a raw number that [`normalize`] maps to 0-100.
//!
//! Modules: [`basic`] (NodeName, NodeUnschedulable, NodePorts,
//! TaintToleration, NodeAffinity), [`noderesources`] (NodeResourcesFit,
//! NodeResourcesBalancedAllocation), [`interpodaffinity`],
//! [`podtopologyspread`].
//!
//! [`NodeInfo`]: crate::cache::NodeInfo

pub mod basic;
pub mod interpodaffinity;
pub mod noderesources;
pub mod podtopologyspread;

pub const NODE_NAME: &str = "NodeName";
pub const NODE_UNSCHEDULABLE: &str = "NodeUnschedulable";
pub const NODE_PORTS: &str = "NodePorts";
pub const TAINT_TOLERATION: &str = "TaintToleration";
pub const NODE_AFFINITY: &str = "NodeAffinity";
pub const NODE_RESOURCES_FIT: &str = "NodeResourcesFit";
pub const BALANCED_ALLOCATION: &str = "NodeResourcesBalancedAllocation";
pub const INTER_POD_AFFINITY: &str = "InterPodAffinity";
pub const POD_TOPOLOGY_SPREAD: &str = "PodTopologySpread";
pub const IMAGE_LOCALITY: &str = "ImageLocality";
pub const DEFAULT_PREEMPTION: &str = "DefaultPreemption";

/// Plugin names resolved once per cycle, so the per-node loop matches on
/// an enum rather than comparing strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plugin {
    NodeName,
    NodeUnschedulable,
    NodePorts,
    TaintToleration,
    NodeAffinity,
    NodeResourcesFit,
    BalancedAllocation,
    InterPodAffinity,
    PodTopologySpread,
    /// Accepted in configurations, does nothing here.
    NoOp,
}

impl Plugin {
    pub fn from_name(name: &str) -> Plugin {
        match name {
            NODE_NAME => Plugin::NodeName,
            NODE_UNSCHEDULABLE => Plugin::NodeUnschedulable,
            NODE_PORTS => Plugin::NodePorts,
            TAINT_TOLERATION => Plugin::TaintToleration,
            NODE_AFFINITY => Plugin::NodeAffinity,
            NODE_RESOURCES_FIT => Plugin::NodeResourcesFit,
            BALANCED_ALLOCATION => Plugin::BalancedAllocation,
            INTER_POD_AFFINITY => Plugin::InterPodAffinity,
            POD_TOPOLOGY_SPREAD => Plugin::PodTopologySpread,
            _ => Plugin::NoOp,
        }
    }
}

/// Highest score a plugin gives a node after normalisation.
pub const MAX_NODE_SCORE: i64 = 100;

/// Why a filter rejected a node. `UnschedulableAndUnresolvable` tells
/// preemption that removing pods cannot help on that node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Unschedulable,
    UnschedulableAndUnresolvable,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub plugin: &'static str,
    pub code: Code,
    pub reasons: Vec<String>,
}

impl Rejection {
    pub fn new(plugin: &'static str, code: Code, reason: impl Into<String>) -> Rejection {
        Rejection {
            plugin,
            code,
            reasons: vec![reason.into()],
        }
    }
}

pub type FilterResult = Result<(), Rejection>;

/// Upstream's default normalisation: scale so the highest raw score is
/// 100 (or, reversed, so the highest raw score is 0).
pub fn normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let mut v = MAX_NODE_SCORE * *s / max;
        if reverse {
            v = MAX_NODE_SCORE - v;
        }
        *s = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_normalisation_scales_to_the_maximum() {
        let mut s = [0, 5, 10];
        normalize(&mut s, false);
        assert_eq!(s, [0, 50, 100]);
        let mut s = [0, 5, 10];
        normalize(&mut s, true);
        assert_eq!(s, [100, 50, 0]);
        let mut s = [0, 0];
        normalize(&mut s, true);
        assert_eq!(s, [100, 100]);
    }
}
