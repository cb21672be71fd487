//! DefaultPreemption (PostFilter): when no node fits, find nodes where
//! evicting lower-priority pods would let the pod fit, keep as many of
//! those pods as possible (PodDisruptionBudget-protected ones first), and
//! pick the node whose victims hurt least. Pure over the cache; the
//! scheduler carries out the decision (nominate, delete victims).

use std::cmp::Ordering;
use std::sync::Arc;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use crate::cache::{Cache, NodeInfo};
use crate::config::Profile;
use crate::framework::{fit_error_message, run_filters, CycleState, Diagnosis, Rng};
use crate::plugins::{Code, Rejection, DEFAULT_PREEMPTION};
use crate::podinfo::{PodInfo, Selector};

pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// A PodDisruptionBudget as preemption needs it.
#[derive(Debug, Clone)]
pub struct Pdb {
    pub namespace: String,
    pub selector: Selector,
    pub disruptions_allowed: i64,
    pub disrupted_pods: Vec<String>,
}

impl Pdb {
    pub fn from_object(pdb: &PodDisruptionBudget) -> Pdb {
        let spec = pdb.spec.as_ref();
        let status = pdb.status.as_ref();
        Pdb {
            namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
            // policy/v1: an empty selector selects every pod of the namespace.
            selector: Selector::from_label_selector(spec.and_then(|s| s.selector.as_ref())),
            disruptions_allowed: status.map_or(0, |s| i64::from(s.disruptions_allowed)),
            disrupted_pods: status
                .and_then(|s| s.disrupted_pods.as_ref())
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Candidate {
    pub node: String,
    /// Most important first.
    pub victims: Vec<Arc<PodInfo>>,
    pub pdb_violations: usize,
}

#[derive(Debug)]
pub enum Outcome {
    Candidate(Candidate),
    /// Preemption cannot help; the message follows "preemption: ".
    Failed(String),
}

/// Higher priority first, then the pod that started earlier.
fn more_important(a: &PodInfo, b: &PodInfo) -> Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| match (a.start_time, b.start_time) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
}

fn eligibility(state: &CycleState, cache: &Cache) -> Result<(), String> {
    let spec = state.pod.pod.spec.as_ref();
    if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return Err("not eligible due to preemptionPolicy=Never.".into());
    }
    let nominated = state
        .pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref());
    if let Some(node) = nominated.and_then(|n| cache.node(n)) {
        if node
            .pods
            .iter()
            .any(|p| p.pod.metadata.deletion_timestamp.is_some() && p.priority < state.pod.priority)
        {
            return Err("not eligible due to a terminating pod on the nominated node.".into());
        }
    }
    Ok(())
}

pub fn preempt(
    profile: &Profile,
    cache: &Cache,
    state: &mut CycleState,
    diagnosis: &Diagnosis,
    pdbs: &[Pdb],
    rng: &mut Rng,
) -> Outcome {
    if let Err(msg) = eligibility(state, cache) {
        return Outcome::Failed(msg);
    }
    let all = diagnosis.num_all_nodes;
    let mut statuses: Vec<Rejection> = Vec::new();
    let mut potential: Vec<&NodeInfo> = Vec::new();
    for node in cache.nodes() {
        match diagnosis.rejection(&node.name) {
            Some(r) if r.code == Code::Unschedulable => potential.push(node),
            _ => statuses.push(Rejection::new(
                DEFAULT_PREEMPTION,
                Code::UnschedulableAndUnresolvable,
                NOT_HELPFUL,
            )),
        }
    }
    if potential.is_empty() {
        return Outcome::Failed(fit_error_message(all, statuses.iter()));
    }
    let wanted = ((potential.len() as i64 * profile.min_candidate_nodes_percentage / 100)
        .max(profile.min_candidate_nodes_absolute)
        .max(1) as usize)
        .min(potential.len());
    let offset = rng.below(potential.len());
    let mut candidates = Vec::new();
    for i in 0..potential.len() {
        let node = potential[(offset + i) % potential.len()];
        match select_victims_on_node(cache, state, node, pdbs) {
            Ok(c) => {
                candidates.push(c);
                if candidates.len() >= wanted {
                    break;
                }
            }
            Err(r) => statuses.push(r),
        }
    }
    match pick_one(candidates) {
        Some(c) => Outcome::Candidate(c),
        None => Outcome::Failed(fit_error_message(all, statuses.iter())),
    }
}

/// Which lower-priority pods must go from `node` for the pod to fit.
pub fn select_victims_on_node(
    cache: &Cache,
    state: &mut CycleState,
    node: &NodeInfo,
    pdbs: &[Pdb],
) -> Result<Candidate, Rejection> {
    let pod = state.pod.clone();
    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(Rejection::new(
            DEFAULT_PREEMPTION,
            Code::UnschedulableAndUnresolvable,
            NO_VICTIMS,
        ));
    }
    let mut scratch = node.clone();
    for v in &potential {
        remove(state, cache, &mut scratch, v);
    }
    if let Err(r) = run_filters(state, &scratch, cache) {
        for v in &potential {
            add(state, cache, &mut scratch, v);
        }
        return Err(r);
    }
    potential.sort_by(|a, b| more_important(a, b));
    let (violating, non_violating) = split_by_pdb(&potential, pdbs);
    let mut victims = Vec::new();
    let mut pdb_violations = 0;
    for (list, violates) in [(violating, true), (non_violating, false)] {
        for p in list {
            // Try to keep the pod; it is a victim only if the preemptor no
            // longer fits with it back.
            add(state, cache, &mut scratch, &p);
            if run_filters(state, &scratch, cache).is_err() {
                remove(state, cache, &mut scratch, &p);
                if violates {
                    pdb_violations += 1;
                }
                victims.push(p);
            }
        }
    }
    // Leave the shared state as it was for the next node.
    for v in &victims {
        add(state, cache, &mut scratch, v);
    }
    victims.sort_by(|a, b| more_important(a, b));
    Ok(Candidate {
        node: node.name.clone(),
        victims,
        pdb_violations,
    })
}

fn remove(state: &mut CycleState, cache: &Cache, node: &mut NodeInfo, victim: &Arc<PodInfo>) {
    node.remove_pod(&victim.key);
    let pod = state.pod.clone();
    if let Some(s) = state.ipa.as_mut() {
        s.add_or_remove(&pod, victim, node, -1, cache);
    }
    if let Some(s) = state.pts.as_mut() {
        s.add_or_remove(&pod, &state.affinity, victim, node, -1);
    }
}

fn add(state: &mut CycleState, cache: &Cache, node: &mut NodeInfo, victim: &Arc<PodInfo>) {
    node.add_pod(victim.clone());
    let pod = state.pod.clone();
    if let Some(s) = state.ipa.as_mut() {
        s.add_or_remove(&pod, victim, node, 1, cache);
    }
    if let Some(s) = state.pts.as_mut() {
        s.add_or_remove(&pod, &state.affinity, victim, node, 1);
    }
}

/// Pods whose eviction would break a budget, and the rest (order kept).
fn split_by_pdb(pods: &[Arc<PodInfo>], pdbs: &[Pdb]) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i64> = pdbs.iter().map(|p| p.disruptions_allowed).collect();
    let mut violating = Vec::new();
    let mut fine = Vec::new();
    for p in pods {
        let mut violates = false;
        for (i, pdb) in pdbs.iter().enumerate() {
            if pdb.namespace != p.namespace
                || pdb.selector.nothing
                || !pdb.selector.matches(&p.labels)
                || pdb.disrupted_pods.contains(&p.name)
            {
                continue;
            }
            allowed[i] -= 1;
            if allowed[i] < 0 {
                violates = true;
            }
        }
        if violates {
            violating.push(p.clone());
        } else {
            fine.push(p.clone());
        }
    }
    (violating, fine)
}

/// Upstream's order: fewest budget violations, lowest highest-priority
/// victim, smallest priority sum, fewest victims, latest start among the
/// highest-priority victims, then the first.
pub fn pick_one(candidates: Vec<Candidate>) -> Option<Candidate> {
    let key = |c: &Candidate| -> (usize, i64, i64, usize, Option<k8s_openapi::jiff::Timestamp>) {
        let top = c
            .victims
            .first()
            .map_or(i64::MIN, |v| i64::from(v.priority));
        // Shift each priority to be positive, as upstream does, so that
        // negative priorities still add up sensibly.
        let sum: i64 = c
            .victims
            .iter()
            .map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1)
            .sum();
        let earliest_top = c
            .victims
            .iter()
            .filter(|v| i64::from(v.priority) == top)
            .filter_map(|v| v.start_time)
            .min();
        (c.pdb_violations, top, sum, c.victims.len(), earliest_top)
    };
    type Key = (usize, i64, i64, usize, Option<k8s_openapi::jiff::Timestamp>);
    let mut best: Option<(Candidate, Key)> = None;
    for c in candidates {
        let k = key(&c);
        let better = match &best {
            None => true,
            Some((_, bk)) => {
                (k.0, k.1, k.2, k.3)
                    .cmp(&(bk.0, bk.1, bk.2, bk.3))
                    .then_with(|| bk.4.cmp(&k.4))
                    == Ordering::Less
            }
        };
        if better {
            best = Some((c, k));
        }
    }
    best.map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::schedule;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::json;

    fn node(name: &str) -> Node {
        serde_json::from_value(
            json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}}}),
        )
        .unwrap()
    }

    fn pod(name: &str, cpu: &str, priority: i32, extra: serde_json::Value) -> Arc<PodInfo> {
        let mut spec =
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]});
        if let Some(o) = extra.as_object() {
            for (k, v) in o {
                spec[k] = v.clone();
            }
        }
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
            "spec": spec}))
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(p), priority))
    }

    fn run(cache: &Cache, p: Arc<PodInfo>, pdbs: &[Pdb]) -> Outcome {
        let profile = Profile::default_named("default-scheduler");
        let mut state = CycleState::new(&profile, cache, p, || None);
        let d = schedule(&profile, None, cache, &state, &mut 0, &mut Rng::new(3)).unwrap_err();
        preempt(&profile, cache, &mut state, &d, pdbs, &mut Rng::new(3))
    }

    #[test]
    fn only_as_many_lower_priority_pods_as_needed_are_evicted() {
        let mut c = Cache::new();
        c.add_or_update_node(node("n1"));
        c.assume(pod("low-a", "500m", 1, json!({})), "n1");
        c.assume(pod("low-b", "500m", 2, json!({})), "n1");
        c.assume(pod("low-c", "1", 3, json!({})), "n1");
        let Outcome::Candidate(cand) = run(&c, pod("vip", "1", 100, json!({})), &[]) else {
            panic!("expected a candidate");
        };
        assert_eq!(cand.node, "n1");
        // Keeping low-c (most important) and one 500m pod leaves 500m: not
        // enough. Keeping low-c alone frees 1 cpu: low-a and low-b go.
        let names: Vec<&str> = cand.victims.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["low-b", "low-a"]);
    }

    #[test]
    fn the_node_with_lower_priority_victims_is_chosen() {
        let mut c = Cache::new();
        c.add_or_update_node(node("n1"));
        c.add_or_update_node(node("n2"));
        c.assume(pod("mid", "2", 50, json!({})), "n1");
        c.assume(pod("low", "2", 10, json!({})), "n2");
        let Outcome::Candidate(cand) = run(&c, pod("vip", "1", 100, json!({})), &[]) else {
            panic!("expected a candidate");
        };
        assert_eq!(cand.node, "n2");
    }

    #[test]
    fn nodes_where_a_budget_would_break_lose_to_nodes_where_none_would() {
        let mut c = Cache::new();
        c.add_or_update_node(node("n1"));
        c.add_or_update_node(node("n2"));
        c.assume(pod("guarded", "2", 1, json!({})), "n1");
        c.assume(pod("free", "2", 5, json!({})), "n2");
        let pdb = Pdb {
            namespace: "default".into(),
            selector: Selector::from_map(&[("app".to_string(), "guarded".to_string())].into()),
            disruptions_allowed: 0,
            disrupted_pods: vec![],
        };
        let Outcome::Candidate(cand) = run(&c, pod("vip", "1", 100, json!({})), &[pdb]) else {
            panic!("expected a candidate");
        };
        assert_eq!((cand.node.as_str(), cand.pdb_violations), ("n2", 0));
    }

    #[test]
    fn failure_messages_explain_why_preemption_cannot_help() {
        let mut c = Cache::new();
        c.add_or_update_node(node("n1"));
        c.assume(pod("peer", "2", 100, json!({})), "n1");
        let Outcome::Failed(msg) = run(&c, pod("vip", "1", 100, json!({})), &[]) else {
            panic!("equal priority pods are not victims");
        };
        assert_eq!(
            msg,
            "0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );

        let Outcome::Failed(msg) = run(&c, pod("huge", "3", 1000, json!({})), &[]) else {
            panic!("a request beyond the node cannot be helped");
        };
        assert_eq!(
            msg,
            "0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );

        let never = pod("never", "1", 1000, json!({"preemptionPolicy": "Never"}));
        let Outcome::Failed(msg) = run(&c, never, &[]) else {
            panic!("policy Never");
        };
        assert_eq!(msg, "not eligible due to preemptionPolicy=Never.");
    }

    #[test]
    fn anti_affinity_conflicts_are_resolved_by_evicting_the_conflicting_pod() {
        let mut c = Cache::new();
        c.add_or_update_node(node("n1"));
        c.assume(pod("web", "100m", 1, json!({})), "n1");
        let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
        let Outcome::Candidate(cand) = run(&c, pod("vip", "100m", 10, anti), &[]) else {
            panic!("expected a candidate");
        };
        assert_eq!(cand.victims.len(), 1);
        assert_eq!(cand.victims[0].name, "web");
    }
}
