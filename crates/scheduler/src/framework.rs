//! One scheduling decision over the cache: pre-filter state, filtering a
//! (possibly partial) round-robin pass over the nodes, scoring the
//! feasible ones with the profile's weighted plugins, picking the best
//! (ties broken at random), and -- when nothing fits -- the diagnosis
//! that becomes upstream's "0/N nodes are available: ..." message.
//!
//! Everything here is synchronous and pure over the [`Cache`]; the
//! per-node work allocates nothing unless the node is rejected.

use std::collections::HashMap;
use std::sync::Arc;

use crate::cache::{Cache, NodeInfo};
use crate::config::Profile;
use crate::plugins::basic::{self, NodeAffinityState};
use crate::plugins::noderesources::{self, Nominated};
use crate::plugins::podtopologyspread::{self as pts, Constraints};
use crate::plugins::{interpodaffinity as ipa, normalize, *};
use crate::podinfo::{PodInfo, Selector};

/// Below this many nodes every node is evaluated.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The adaptive percentage never drops below this.
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: i64 = 5;

pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";

/// How many feasible nodes to find before scoring, as upstream computes it.
pub fn num_feasible_nodes_to_find(num_all_nodes: usize, percentage: Option<i32>) -> usize {
    let percentage = i64::from(percentage.unwrap_or(0));
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND || percentage >= 100 {
        return num_all_nodes;
    }
    let percentage = if percentage <= 0 {
        (50 - num_all_nodes as i64 / 125).max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    } else {
        percentage
    };
    let n = (num_all_nodes as i64 * percentage / 100) as usize;
    n.max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// A small xorshift generator: tie-breaking and start offsets need no
/// more than that, and it keeps the crate free of extra dependencies.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn from_time() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9);
        Rng::new(nanos)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// Per-pod state computed once per cycle (upstream's PreFilter/CycleState).
#[derive(Debug)]
pub struct CycleState {
    pub pod: Arc<PodInfo>,
    /// The profile's filters, in order.
    pub filters: Vec<Plugin>,
    pub affinity: NodeAffinityState,
    pub ports: Vec<(String, String, i32)>,
    pub ipa: Option<ipa::FilterState>,
    pub spread: Constraints,
    pub pts: Option<pts::FilterState>,
}

impl CycleState {
    pub fn new(
        profile: &Profile,
        cache: &Cache,
        pod: Arc<PodInfo>,
        default_selector: impl FnOnce() -> Option<Selector>,
    ) -> CycleState {
        let affinity = NodeAffinityState::new(&pod);
        let spread_used = profile.filter_enabled(POD_TOPOLOGY_SPREAD)
            || profile.score_weight(POD_TOPOLOGY_SPREAD).is_some();
        let spread = if spread_used {
            Constraints::for_pod(
                &pod,
                &profile.spread_defaults,
                profile.spread_defaults_are_system,
                default_selector,
            )
        } else {
            Constraints::default()
        };
        let pts = (profile.filter_enabled(POD_TOPOLOGY_SPREAD)
            && spread.list.iter().any(|c| c.do_not_schedule))
        .then(|| pts::FilterState::new(&pod, &spread, &affinity, cache));
        let ipa = profile
            .filter_enabled(INTER_POD_AFFINITY)
            .then(|| ipa::FilterState::new(&pod, cache));
        CycleState {
            filters: profile
                .filters
                .iter()
                .map(|n| Plugin::from_name(n))
                .collect(),
            ports: basic::wanted_ports(&pod),
            pod,
            affinity,
            ipa,
            spread,
            pts,
        }
    }
}

/// Run the profile's filters on one node, stopping at the first rejection.
pub fn run_filters(state: &CycleState, node: &NodeInfo, cache: &Cache) -> FilterResult {
    let pod = &state.pod;
    for plugin in &state.filters {
        match plugin {
            Plugin::NodeUnschedulable => basic::node_unschedulable(pod, node)?,
            Plugin::NodeName => basic::node_name(pod, node)?,
            Plugin::TaintToleration => basic::taint_toleration(pod, node)?,
            Plugin::NodeAffinity => state.affinity.filter(node)?,
            Plugin::NodePorts if !state.ports.is_empty() => basic::node_ports(&state.ports, node)?,
            Plugin::NodeResourcesFit => {
                let nominated = nominated_on(cache, pod, &node.name);
                noderesources::fit(pod, node, nominated.as_ref())?
            }
            Plugin::PodTopologySpread => {
                if let Some(s) = &state.pts {
                    s.filter(node)?
                }
            }
            Plugin::InterPodAffinity => {
                if let Some(s) = &state.ipa {
                    s.filter(pod, node)?
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// What pods nominated to `node` with at least the pod's priority claim.
fn nominated_on(cache: &Cache, pod: &PodInfo, node: &str) -> Option<Nominated> {
    let list = cache.nominated_pods(node);
    if list.is_empty() {
        return None;
    }
    let mut n = Nominated::default();
    for p in list {
        if p.key != pod.key && p.priority >= pod.priority {
            n.requests.add(&p.requests);
            n.pods += 1;
        }
    }
    (n.pods > 0).then_some(n)
}

/// Why no node fits.
#[derive(Debug, Default, Clone)]
pub struct Diagnosis {
    pub num_all_nodes: usize,
    pub rejections: Vec<(String, Rejection)>,
}

impl Diagnosis {
    pub fn message(&self) -> String {
        if self.num_all_nodes == 0 {
            return NO_NODES_AVAILABLE.to_string();
        }
        fit_error_message(self.num_all_nodes, self.rejections.iter().map(|(_, r)| r))
    }

    pub fn rejection(&self, node: &str) -> Option<&Rejection> {
        self.rejections
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, r)| r)
    }

    /// Names of the plugins that rejected some node (for re-queueing).
    pub fn plugins(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for (_, r) in &self.rejections {
            if !out.contains(&r.plugin) {
                out.push(r.plugin);
            }
        }
        out
    }
}

/// "0/N nodes are available: <count> <reason>, ...." with the reasons
/// counted over nodes and sorted as strings, as upstream's FitError does.
pub fn fit_error_message<'a>(
    num_all_nodes: usize,
    rejections: impl Iterator<Item = &'a Rejection>,
) -> String {
    let mut histogram: HashMap<&str, usize> = HashMap::new();
    for r in rejections {
        for reason in &r.reasons {
            *histogram.entry(reason.as_str()).or_default() += 1;
        }
    }
    let mut parts: Vec<String> = histogram
        .into_iter()
        .map(|(reason, count)| format!("{count} {reason}"))
        .collect();
    parts.sort();
    let mut msg = format!("0/{num_all_nodes} nodes are available:");
    if !parts.is_empty() {
        msg.push(' ');
        msg.push_str(&parts.join(", "));
        msg.push('.');
    }
    msg
}

/// The outcome of one successful decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub node: String,
    pub evaluated: usize,
    pub feasible: usize,
}

/// Decide where `state.pod` goes. `next_start` carries upstream's
/// round-robin start index between cycles.
pub fn schedule(
    profile: &Profile,
    global_percentage: Option<i32>,
    cache: &Cache,
    state: &CycleState,
    next_start: &mut usize,
    rng: &mut Rng,
) -> Result<Placement, Diagnosis> {
    let n = cache.node_count();
    if n == 0 {
        return Err(Diagnosis::default());
    }
    // A pod that preemption made room for tries its nominated node first.
    if let Some(nominated) = state
        .pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .or_else(|| cache.nominated_node_of(&state.pod.key))
    {
        if let Some(node) = cache.node(nominated) {
            if run_filters(state, node, cache).is_ok() {
                return Ok(Placement {
                    node: node.name.clone(),
                    evaluated: 1,
                    feasible: 1,
                });
            }
        }
    }
    let to_find = num_feasible_nodes_to_find(
        n,
        profile.percentage_of_nodes_to_score.or(global_percentage),
    );
    let start = *next_start % n;
    let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(to_find.min(n));
    let mut rejections = Vec::new();
    let mut processed = 0;
    for i in 0..n {
        let node = cache.node_in_order((start + i) % n);
        processed += 1;
        match run_filters(state, node, cache) {
            Ok(()) => {
                feasible.push(node);
                if feasible.len() >= to_find {
                    break;
                }
            }
            Err(r) => rejections.push((node.name.clone(), r)),
        }
    }
    *next_start = (start + processed) % n;
    if feasible.is_empty() {
        return Err(Diagnosis {
            num_all_nodes: n,
            rejections,
        });
    }
    let evaluated = processed;
    if feasible.len() == 1 || profile.scores.is_empty() {
        return Ok(Placement {
            node: feasible[0].name.clone(),
            evaluated,
            feasible: feasible.len(),
        });
    }
    let totals = score(profile, cache, state, &feasible);
    let mut best = 0;
    let mut ties = 0u64;
    for (i, total) in totals.iter().enumerate() {
        if *total > totals[best] {
            best = i;
            ties = 1;
        } else if *total == totals[best] {
            ties += 1;
            // Reservoir sampling: each tied node wins with equal chance.
            if rng.next_u64() % ties == 0 {
                best = i;
            }
        }
    }
    Ok(Placement {
        node: feasible[best].name.clone(),
        evaluated,
        feasible: feasible.len(),
    })
}

/// Weighted, normalised scores of the feasible nodes.
pub fn score(
    profile: &Profile,
    cache: &Cache,
    state: &CycleState,
    feasible: &[&NodeInfo],
) -> Vec<i64> {
    let pod = &state.pod;
    let mut totals = vec![0i64; feasible.len()];
    let mut raw = vec![0i64; feasible.len()];
    for (name, weight) in &profile.scores {
        let applied = match *name {
            TAINT_TOLERATION => {
                let tolerations = basic::prefer_no_schedule_tolerations(pod);
                for (i, n) in feasible.iter().enumerate() {
                    raw[i] = basic::taint_toleration_score(&tolerations, n);
                }
                normalize(&mut raw, true);
                true
            }
            NODE_AFFINITY if state.affinity.has_preferred() => {
                for (i, n) in feasible.iter().enumerate() {
                    raw[i] = state.affinity.score(n);
                }
                normalize(&mut raw, false);
                true
            }
            NODE_RESOURCES_FIT => {
                for (i, n) in feasible.iter().enumerate() {
                    raw[i] = noderesources::score(&profile.fit_strategy, pod, n);
                }
                true
            }
            BALANCED_ALLOCATION => {
                let mut any = false;
                for (i, n) in feasible.iter().enumerate() {
                    match noderesources::balanced_allocation(pod, n) {
                        Some(s) => {
                            raw[i] = s;
                            any = true;
                        }
                        None => raw[i] = 0,
                    }
                }
                any
            }
            INTER_POD_AFFINITY => {
                match ipa::ScoreState::new(pod, cache, profile.hard_pod_affinity_weight) {
                    Some(s) => {
                        for (i, n) in feasible.iter().enumerate() {
                            raw[i] = s.score(n);
                        }
                        ipa::normalize(&mut raw);
                        true
                    }
                    None => false,
                }
            }
            POD_TOPOLOGY_SPREAD => {
                match pts::ScoreState::new(pod, &state.spread, &state.affinity, feasible, cache) {
                    Some(s) => {
                        let r: Vec<Option<i64>> =
                            feasible.iter().map(|n| s.score(pod, n)).collect();
                        raw.copy_from_slice(&pts::normalize(&r));
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        };
        if applied {
            for (t, r) in totals.iter_mut().zip(&raw) {
                *t += r * weight;
            }
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::ZONE_LABEL;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::json;

    fn node(name: &str, extra: serde_json::Value) -> Node {
        let mut v = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}}});
        if let Some(spec) = extra.get("spec") {
            v["spec"] = spec.clone();
        }
        if let Some(labels) = extra.get("labels").and_then(|l| l.as_object()) {
            for (k, val) in labels {
                v["metadata"]["labels"][k] = val.clone();
            }
        }
        serde_json::from_value(v).unwrap()
    }

    fn pod(name: &str, spec: serde_json::Value) -> Arc<PodInfo> {
        let mut spec = spec;
        if spec.get("containers").is_none() {
            spec["containers"] = json!([{"name": "c"}]);
        }
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": name},
            "spec": spec}))
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(p), 0))
    }

    fn cpu(c: &str) -> serde_json::Value {
        json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": c}}}]})
    }

    fn decide(cache: &Cache, p: Arc<PodInfo>) -> Result<Placement, Diagnosis> {
        let profile = Profile::default_named("default-scheduler");
        let state = CycleState::new(&profile, cache, p, || None);
        schedule(&profile, None, cache, &state, &mut 0, &mut Rng::new(7))
    }

    #[test]
    fn adaptive_percentage_of_nodes_to_score_matches_upstream() {
        assert_eq!(num_feasible_nodes_to_find(50, None), 50);
        assert_eq!(num_feasible_nodes_to_find(1000, None), 420);
        assert_eq!(num_feasible_nodes_to_find(5000, None), 500);
        assert_eq!(num_feasible_nodes_to_find(6000, None), 300, "floors at 5%");
        assert_eq!(
            num_feasible_nodes_to_find(1000, Some(5)),
            100,
            "at least 100"
        );
        assert_eq!(num_feasible_nodes_to_find(1000, Some(100)), 1000);
    }

    #[test]
    fn failure_message_counts_and_sorts_reasons_like_upstream() {
        let mut c = Cache::new();
        c.add_or_update_node(node(
            "cp",
            json!({"spec": {"taints": [
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}),
        ));
        c.add_or_update_node(node("w1", json!({})));
        c.add_or_update_node(node("w2", json!({})));
        c.assume(pod("big1", cpu("1500m")), "w1");
        c.assume(pod("big2", cpu("1500m")), "w2");
        let d = decide(&c, pod("p", cpu("1"))).unwrap_err();
        assert_eq!(
            d.message(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu."
        );
        assert_eq!(Diagnosis::default().message(), NO_NODES_AVAILABLE);
    }

    #[test]
    fn the_least_allocated_node_wins() {
        let mut c = Cache::new();
        c.add_or_update_node(node("busy", json!({})));
        c.add_or_update_node(node("idle", json!({})));
        c.assume(pod("x", cpu("1")), "busy");
        assert_eq!(decide(&c, pod("p", cpu("500m"))).unwrap().node, "idle");
    }

    #[test]
    fn prefer_no_schedule_taints_and_preferred_affinity_steer_placement() {
        let mut c = Cache::new();
        c.add_or_update_node(node(
            "soft",
            json!({"spec": {"taints": [
            {"key": "k", "effect": "PreferNoSchedule"}]}}),
        ));
        c.add_or_update_node(node("plain", json!({})));
        assert_eq!(decide(&c, pod("p", json!({}))).unwrap().node, "plain");

        let mut c = Cache::new();
        c.add_or_update_node(node("a", json!({"labels": {ZONE_LABEL: "a"}})));
        c.add_or_update_node(node("b", json!({"labels": {ZONE_LABEL: "b"}})));
        let p = pod(
            "p",
            json!({"affinity": {"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "preference": {
                "matchExpressions": [{"key": ZONE_LABEL, "operator": "In", "values": ["b"]}]}}]}}}),
        );
        assert_eq!(decide(&c, p).unwrap().node, "b");
    }

    #[test]
    fn a_partial_pass_stops_after_enough_feasible_nodes_and_rotates() {
        let mut c = Cache::new();
        for i in 0..200 {
            c.add_or_update_node(node(&format!("n{i:03}"), json!({})));
        }
        let mut profile = Profile::default_named("default-scheduler");
        profile.percentage_of_nodes_to_score = Some(10);
        let state = CycleState::new(&profile, &c, pod("p", json!({})), || None);
        let mut start = 0;
        let placed = schedule(&profile, None, &c, &state, &mut start, &mut Rng::new(1)).unwrap();
        assert_eq!((placed.evaluated, placed.feasible), (100, 100));
        assert_eq!(start, 100, "the next cycle starts where this one stopped");
    }

    #[test]
    fn nominated_pods_of_higher_priority_keep_their_room() {
        let mut c = Cache::new();
        c.add_or_update_node(node("n", json!({})));
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "vip", "namespace": "default"},
            "spec": cpu("2")}))
        .unwrap();
        c.set_nominated(Arc::new(PodInfo::new(Arc::new(p), 1000)), "n");
        let d = decide(&c, pod("low", cpu("1"))).unwrap_err();
        assert_eq!(d.message(), "0/1 nodes are available: 1 Insufficient cpu.");
    }
}
