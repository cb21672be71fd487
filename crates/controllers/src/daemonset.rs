//! The DaemonSet controller: one pod per eligible node.
//!
//! A node is eligible when the pod template's nodeSelector and required
//! node affinity match it and its NoSchedule/NoExecute taints are
//! tolerated (counting the tolerations upstream adds to every daemon pod);
//! a pod keeps running while its NoExecute taints are tolerated. Daemon
//! pods get the same tolerations and a required node affinity on
//! `metadata.name` for their node, and are bound by the scheduler like
//! any other pod. Template versions are ControllerRevisions
//! (`<ds>-<hash>`, pods labelled `controller-revision-hash`), which
//! `kubectl rollout history/undo` read; RollingUpdate replaces old pods
//! within maxUnavailable, or with maxSurge starts the new pod on a node
//! first and deletes the old one once the new one is available; OnDelete
//! waits for old pods to be deleted. Status
//! reports the scheduled/misscheduled/ready/available/updated counts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, PodTemplateSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;

use crate::deployment::scaled_value;
use crate::workload_util::{
    controller_owner_ref, controller_ref, create_controlled_pod, is_conflict, is_not_found,
    is_pod_available, is_pod_ready, is_ready, key_of, pod_from_template, pod_phase, run_loop,
    safe_hash, self_trigger, slow_start_batch, zero_free, Expectations, BURST_REPLICAS,
};
use crate::{Context, Error};

pub const REVISION_HASH: &str = "controller-revision-hash";
pub const TEMPLATE_GENERATION: &str = "pod-template-generation";

// ---------------------------------------------------------------------------
// Node eligibility (pure).

/// The tolerations upstream adds to every daemon pod, so daemons run on
/// nodes that are not ready, unreachable, under pressure or cordoned.
pub fn daemon_tolerations(host_network: bool) -> Vec<Toleration> {
    let t = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    let mut out = vec![
        t("node.kubernetes.io/not-ready", "NoExecute"),
        t("node.kubernetes.io/unreachable", "NoExecute"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
        t("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        out.push(t("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    out
}

pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if toleration
        .effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => key.is_empty() || key == taint.key,
        _ => {
            key == taint.key
                && toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
    }
}

fn requirement_matches(req: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = req.values.as_deref().unwrap_or_default();
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if req.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            let value = if r.key == "metadata.name" {
                node.metadata.name.as_deref()
            } else {
                None
            };
            requirement_matches(r, value)
        })
}

/// Whether a pod with this spec should run on the node (`should_run`) and,
/// if one runs there, may keep running (`should_continue`).
pub fn node_should_run(spec: &PodSpec, node: &Node) -> (bool, bool) {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let affinity_ok = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_none_or(|sel| {
            sel.node_selector_terms
                .iter()
                .any(|t| term_matches(t, node))
        });
    if !selector_ok || !affinity_ok {
        return (false, false);
    }
    let mut tolerations = spec.tolerations.clone().unwrap_or_default();
    tolerations.extend(daemon_tolerations(spec.host_network.unwrap_or(false)));
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let untolerated = |effect: &str| {
        taints
            .iter()
            .filter(|t| t.effect == effect)
            .any(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
    };
    let no_execute = untolerated("NoExecute");
    let no_schedule = untolerated("NoSchedule");
    (!no_execute && !no_schedule, !no_execute)
}

/// Required node affinity pinning a pod to one node, replacing any
/// required terms the template had (they were checked already).
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let selector = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.into()]),
            }]),
        }],
    };
    let mut affinity = affinity.unwrap_or_default();
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(selector);
    affinity
}

/// The node a daemon pod is for: its nodeName, else the node its
/// affinity pins it to.
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(node) = spec.node_name.clone().filter(|n| !n.is_empty()) {
        return Some(node);
    }
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")
        .and_then(|r| r.values.as_ref()?.first().cloned())
}

// ---------------------------------------------------------------------------

struct State {
    ctx: Context,
    daemon_sets: Store<DaemonSet>,
    nodes: Store<Node>,
    pods: Store<Pod>,
    expectations: Expectations,
}

pub async fn run(ctx: Context) -> Result<(), Error> {
    let _client = ctx.client.clone();
    let (daemon_sets, ds_events) = ctx.informers.reflect::<DaemonSet>();
    let (nodes, node_events) = ctx.informers.reflect::<Node>();
    let (pods, pod_events) = ctx.informers.reflect::<Pod>();
    let pod_trigger = pod_events
        .filter_map(|pod| async move {
            let owner = controller_ref(&pod.metadata).filter(|r| r.kind == "DaemonSet")?;
            Some(
                ObjectRef::<DaemonSet>::new(&owner.name).within(pod.metadata.namespace.as_deref()?),
            )
        })
        .boxed();
    // A node change may concern every DaemonSet.
    let all = daemon_sets.clone();
    let node_trigger = node_events
        .flat_map(move |_| {
            futures::stream::iter(
                all.state()
                    .iter()
                    .map(|ds| ObjectRef::from_obj(ds.as_ref()))
                    .collect::<Vec<_>>(),
            )
        })
        .boxed();
    let state = Arc::new(State {
        ctx,
        daemon_sets: daemon_sets.clone(),
        nodes,
        pods,
        expectations: Expectations::default(),
    });
    run_loop(
        "daemonset",
        daemon_sets,
        vec![self_trigger(ds_events), pod_trigger, node_trigger],
        reconcile,
        state,
    )
    .await;
    Ok(())
}

/// The revision data upstream stores: the template, marked to replace.
pub fn revision_data(template: &PodTemplateSpec) -> serde_json::Value {
    let mut template = serde_json::to_value(template).unwrap_or_default();
    if let Some(obj) = template.as_object_mut() {
        obj.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// The template a revision's data holds.
pub fn revision_template(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision.data.as_ref()?.0.pointer("/spec/template")?.clone();
    if let Some(obj) = template.as_object_mut() {
        obj.remove("$patch");
    }
    serde_json::from_value(template).ok()
}

/// An owner's ControllerRevisions, oldest revision first.
pub async fn owned_revisions(
    ctx: &Context,
    meta: &ObjectMeta,
) -> Result<Vec<ControllerRevision>, Error> {
    let namespace = meta.namespace.clone().unwrap_or_default();
    let uid = meta.uid.clone().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut owned: Vec<ControllerRevision> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|r| controller_ref(&r.metadata).is_some_and(|o| o.uid == uid))
        .collect();
    owned.sort_by_key(|r| r.revision);
    Ok(owned)
}

/// Find or create the ControllerRevision of an owner's current template
/// (bumping an old one's revision number when rolling back to it).
/// Returns its hash; the revision is named `<owner>-<hash>`. A hash
/// collision is [`Error::Collision`]: the caller bumps collisionCount.
pub async fn current_revision(
    ctx: &Context,
    kind: &str,
    meta: &ObjectMeta,
    template: &PodTemplateSpec,
    collision: Option<i32>,
) -> Result<String, Error> {
    let namespace = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &namespace);
    let owned = owned_revisions(ctx, meta).await?;
    let data = revision_data(template);
    let max = owned.iter().map(|r| r.revision).max().unwrap_or(0);
    let wanted = zero_free(data.clone());
    if let Some(existing) = owned.iter().rev().find(|r| {
        r.data
            .as_ref()
            .is_some_and(|d| zero_free(d.0.clone()) == wanted)
    }) {
        let hash = existing
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_HASH).cloned())
            .unwrap_or_default();
        if existing.revision < max {
            let patch = json!({"revision": max + 1});
            api.patch(
                existing.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        }
        return Ok(hash);
    }
    let bytes = serde_json::to_vec(&data).map_err(|e| Error::Other(e.to_string()))?;
    let hash = safe_hash(&bytes, collision);
    let mut labels: BTreeMap<String, String> = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(REVISION_HASH.into(), hash.clone());
    let revision = ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{hash}")),
            namespace: Some(namespace.clone()),
            labels: Some(labels),
            owner_references: controller_owner_ref("apps/v1", kind, meta).map(|r| vec![r]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision: max + 1,
    };
    match api.create(&PostParams::default(), &revision).await {
        Ok(_) => Ok(hash),
        Err(err) if is_conflict(&err) => Err(Error::Other(format!(
            "controller revision hash collision for {name}"
        ))),
        Err(err) => Err(err.into()),
    }
}

/// Delete old ControllerRevisions no pod uses beyond revisionHistoryLimit.
async fn truncate_history(
    ctx: &Context,
    ds: &DaemonSet,
    pods: &[Pod],
    current: &str,
) -> Result<(), Error> {
    let namespace = ds.metadata.namespace.clone().unwrap_or_default();
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let limit = ds
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10)
        .max(0) as usize;
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &namespace);
    let in_use: Vec<String> = pods
        .iter()
        .filter_map(|p| p.metadata.labels.as_ref()?.get(REVISION_HASH).cloned())
        .collect();
    let mut old: Vec<ControllerRevision> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|r| controller_ref(&r.metadata).is_some_and(|o| o.uid == uid))
        .filter(|r| {
            let hash = r
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(REVISION_HASH));
            hash.is_none_or(|h| h != current && !in_use.contains(h))
        })
        .collect();
    if old.len() <= limit {
        return Ok(());
    }
    old.sort_by_key(|r| r.revision);
    for revision in old.iter().take(old.len() - limit) {
        let name = revision.metadata.name.clone().unwrap_or_default();
        if let Err(err) = api.delete(&name, &DeleteParams::default()).await {
            if !is_not_found(&err) {
                return Err(err.into());
            }
        }
    }
    Ok(())
}

async fn reconcile(ds: Arc<DaemonSet>, state: Arc<State>) -> Result<Action, Error> {
    if !is_ready(&state.daemon_sets) || !is_ready(&state.nodes) || !is_ready(&state.pods) {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let now = Timestamp::now();
    let ctx = &state.ctx;
    let namespace = ds.metadata.namespace.clone().unwrap_or_default();
    let name = ds.metadata.name.clone().unwrap_or_default();
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let key = key_of(&ds.metadata);
    let spec = ds.spec.clone().unwrap_or_default();
    let template_spec = spec.template.spec.clone().unwrap_or_default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let reference = clientkit::events::reference(ds.as_ref());

    let collision = ds.status.as_ref().and_then(|s| s.collision_count);
    let hash =
        match current_revision(ctx, "DaemonSet", &ds.metadata, &spec.template, collision).await {
            Ok(hash) => hash,
            Err(Error::Other(message)) if message.contains("collision") => {
                let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &namespace);
                let patch = json!({"status": {"collisionCount": collision.unwrap_or(0) + 1}});
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                return Ok(Action::requeue(Duration::from_secs(1)));
            }
            Err(err) => return Err(err),
        };

    let pods: Vec<Pod> = state
        .pods
        .state()
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .filter(|p| controller_ref(&p.metadata).is_some_and(|r| r.uid == uid))
        .map(|p| p.as_ref().clone())
        .collect();
    let mut by_node: HashMap<String, Vec<Pod>> = HashMap::new();
    for pod in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        if let Some(node) = target_node(pod) {
            by_node.entry(node).or_default().push(pod.clone());
        }
    }
    let is_updated = |p: &Pod| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_HASH))
            .is_some_and(|h| *h == hash)
    };

    let store = &state.pods;
    let in_store = |n: &str| store.get(&ObjectRef::new(n).within(&namespace));
    let satisfied = state.expectations.satisfied(
        &key,
        |n| in_store(n).is_some(),
        |n| in_store(n).is_none_or(|p| p.metadata.deletion_timestamp.is_some()),
    );

    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        != Some("OnDelete");
    let rolling_update = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let nodes = state.nodes.state();
    let eligible = nodes
        .iter()
        .filter(|n| node_should_run(&template_spec, n).0)
        .count() as i32;
    let max_surge = if rolling {
        scaled_value(
            rolling_update.and_then(|r| r.max_surge.as_ref()),
            eligible,
            true,
        )
    } else {
        0
    };
    let surging = max_surge > 0;
    // With surge: per node, its oldest updated and oldest old pod.
    let mut surge_nodes: Vec<(String, Option<Pod>, Option<Pod>)> = Vec::new();
    let mut to_create: Vec<String> = Vec::new();
    let mut to_delete: Vec<Pod> = Vec::new();
    let (mut desired, mut current, mut misscheduled) = (0, 0, 0);
    let (mut ready, mut available, mut updated) = (0, 0, 0);
    let mut failed_seen = false;
    for node in &nodes {
        let node_name = node.metadata.name.clone().unwrap_or_default();
        let (should_run, should_continue) = node_should_run(&template_spec, node);
        let mut here = by_node.remove(&node_name).unwrap_or_default();
        if should_run {
            desired += 1;
        }
        if !here.is_empty() {
            if should_run {
                current += 1;
            } else {
                misscheduled += 1;
            }
        }
        // Failed daemon pods are killed (and replaced below).
        let (failed, live): (Vec<Pod>, Vec<Pod>) =
            here.drain(..).partition(|p| pod_phase(p) == "Failed");
        for pod in failed {
            failed_seen = true;
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            ctx.recorder
                .record(
                    &reference,
                    clientkit::events::WARNING,
                    "FailedDaemonPod",
                    &format!("Found failed daemon pod {namespace}/{pod_name} on node {node_name}, will try to kill it"),
                )
                .await;
            to_delete.push(pod);
        }
        let mut live = live;
        if should_run {
            if live.is_empty() {
                to_create.push(node_name.clone());
            } else {
                // Keep the oldest (with surge, the oldest updated and the
                // oldest old one); extras go.
                live.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
                let new = live.iter().position(&is_updated);
                let old = live.iter().position(|p| !is_updated(p));
                let keep = |i: usize| i == 0 || (surging && (Some(i) == new || Some(i) == old));
                for (i, pod) in live.iter().enumerate() {
                    if !keep(i) {
                        to_delete.push(pod.clone());
                    }
                }
                if surging {
                    surge_nodes.push((
                        node_name.clone(),
                        new.map(|i| live[i].clone()),
                        old.map(|i| live[i].clone()),
                    ));
                }
                let pod = &live[0];
                if is_pod_ready(pod) {
                    ready += 1;
                }
                if is_pod_available(pod, min_ready, now) {
                    available += 1;
                }
                if is_updated(pod) {
                    updated += 1;
                }
            }
        } else if !should_continue {
            to_delete.extend(live);
        }
    }
    // Pods for nodes that no longer exist.
    for (_, orphaned) in by_node {
        to_delete.extend(orphaned);
    }

    // Rolling update with surge: a new pod next to the old one (at once
    // where the old one is unavailable, else within maxSurge), and the old
    // one deleted once the new one is available.
    // Surge pods not available yet (they become so with time alone).
    let mut surged = 0;
    if rolling && satisfied && surging {
        let mut allowed: Vec<String> = Vec::new();
        let mut candidates: Vec<String> = Vec::new();
        for (node_name, new, old) in &surge_nodes {
            match (new, old) {
                (_, None) => {}
                (None, Some(old)) => {
                    if !is_pod_available(old, min_ready, now) {
                        allowed.push(node_name.clone());
                    } else if surged < max_surge {
                        candidates.push(node_name.clone());
                    }
                }
                (Some(new), Some(old)) => {
                    if is_pod_available(new, min_ready, now) {
                        to_delete.push(old.clone());
                    } else {
                        surged += 1;
                    }
                }
            }
        }
        let room = ((max_surge - surged).max(0) as usize).min(candidates.len());
        to_create.extend(allowed);
        to_create.extend(candidates.into_iter().take(room));
    }
    // Rolling update: replace old pods within maxUnavailable.
    if rolling && satisfied && !surging {
        let max_unavailable = scaled_value(
            rolling_update
                .and_then(|r| r.max_unavailable.as_ref())
                .or(Some(
                    &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1),
                )),
            desired,
            true,
        )
        .max(1);
        let unavailable = desired - available;
        let old: Vec<Pod> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && pod_phase(p) != "Failed")
            .filter(|p| !is_updated(p))
            .filter(|p| !to_delete.iter().any(|d| d.metadata.uid == p.metadata.uid))
            .cloned()
            .collect();
        // Unavailable old pods cost nothing to replace; then available
        // ones while the budget allows.
        let (old_unavailable, old_available): (Vec<Pod>, Vec<Pod>) = old
            .into_iter()
            .partition(|p| !is_pod_available(p, min_ready, now));
        to_delete.extend(old_unavailable);
        let budget = (max_unavailable - unavailable).max(0) as usize;
        to_delete.extend(old_available.into_iter().take(budget));
    }

    let mut action = Action::requeue(Duration::from_secs(300));
    if satisfied {
        let generation = ds.metadata.generation.unwrap_or(0);
        let owner = controller_owner_ref("apps/v1", "DaemonSet", &ds.metadata);
        if let Some(owner) = owner.filter(|_| !to_create.is_empty()) {
            to_create.truncate(BURST_REPLICAS);
            let mut template = spec.template.clone();
            let labels = template
                .metadata
                .get_or_insert_with(Default::default)
                .labels
                .get_or_insert_with(BTreeMap::new);
            labels.insert(REVISION_HASH.into(), hash.clone());
            labels.insert(TEMPLATE_GENERATION.into(), generation.to_string());
            let base = pod_from_template(&template, &namespace, &format!("{name}-"), owner);
            slow_start_batch(to_create.len(), |i| {
                let mut pod = base.clone();
                if let Some(spec) = pod.spec.as_mut() {
                    spec.affinity = Some(pin_to_node(spec.affinity.take(), &to_create[i]));
                    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
                    for t in daemon_tolerations(spec.host_network.unwrap_or(false)) {
                        if !tolerations.contains(&t) {
                            tolerations.push(t);
                        }
                    }
                }
                let pods_api = pods_api.clone();
                let reference = reference.clone();
                let key = key.clone();
                let state = state.clone();
                async move {
                    create_controlled_pod(
                        &state.ctx.recorder,
                        &state.expectations,
                        &key,
                        &reference,
                        &pods_api,
                        &pod,
                    )
                    .await
                }
            })
            .await;
        }
        for pod in &to_delete {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            state.expectations.expect_deletion(&key, &pod_name);
            match pods_api.delete(&pod_name, &DeleteParams::default()).await {
                Ok(_) => {
                    ctx.recorder
                        .record(
                            &reference,
                            clientkit::events::NORMAL,
                            "SuccessfulDelete",
                            &format!("Deleted pod: {pod_name}"),
                        )
                        .await
                }
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(err.into()),
            }
        }
        if failed_seen {
            // Replacements of failed pods back off a little, as upstream's do.
            action = Action::requeue(Duration::from_secs(2));
        }
    } else {
        action = Action::requeue(Duration::from_secs(2));
    }
    if min_ready > 0 && (ready > available || surged > 0) {
        action = Action::requeue(Duration::from_secs(1));
    }

    truncate_history(ctx, &ds, &pods, &hash).await?;

    let status = json!({
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "desiredNumberScheduled": desired,
        "numberReady": ready,
        "observedGeneration": ds.metadata.generation.unwrap_or(0),
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
        "numberUnavailable": (desired - available).max(0),
    });
    let old = serde_json::to_value(&ds.status).unwrap_or_default();
    let changed =
        status.as_object().into_iter().flatten().any(|(k, v)| {
            old.get(k).and_then(|o| o.as_i64()).unwrap_or(0) != v.as_i64().unwrap_or(0)
        });
    if changed {
        let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &namespace);
        match api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": status })),
            )
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;

    fn node(name: &str, labels: &[(&str, &str)], taints: Vec<Taint>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(taints),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            value: None,
            time_added: None,
        }
    }

    #[test]
    fn node_selector_must_match_node_labels() {
        let spec = PodSpec {
            node_selector: Some([("disk".to_string(), "ssd".to_string())].into()),
            ..Default::default()
        };
        assert_eq!(
            node_should_run(&spec, &node("a", &[("disk", "ssd")], vec![])),
            (true, true)
        );
        assert_eq!(
            node_should_run(&spec, &node("b", &[("disk", "hdd")], vec![])),
            (false, false)
        );
    }

    #[test]
    fn untolerated_taints_keep_daemons_off_but_daemon_tolerations_apply() {
        let spec = PodSpec::default();
        let dedicated = node("a", &[], vec![taint("dedicated", "NoSchedule")]);
        assert_eq!(node_should_run(&spec, &dedicated), (false, true));
        let evicting = node("b", &[], vec![taint("dedicated", "NoExecute")]);
        assert_eq!(node_should_run(&spec, &evicting), (false, false));
        // Cordoned and not-ready nodes still run daemons.
        let cordoned = node(
            "c",
            &[],
            vec![
                taint("node.kubernetes.io/unschedulable", "NoSchedule"),
                taint("node.kubernetes.io/not-ready", "NoExecute"),
            ],
        );
        assert_eq!(node_should_run(&spec, &cordoned), (true, true));
        // PreferNoSchedule never blocks.
        let soft = node("d", &[], vec![taint("x", "PreferNoSchedule")]);
        assert_eq!(node_should_run(&spec, &soft), (true, true));
        let tolerant = PodSpec {
            tolerations: Some(vec![Toleration {
                key: Some("dedicated".into()),
                operator: Some("Exists".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(node_should_run(&tolerant, &evicting), (true, true));
    }

    #[test]
    fn required_node_affinity_is_honoured_and_then_pinned_to_the_node() {
        let affinity = Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: "zone".into(),
                            operator: "In".into(),
                            values: Some(vec!["a".into()]),
                        }]),
                        match_fields: None,
                    }],
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let spec = PodSpec {
            affinity: Some(affinity.clone()),
            ..Default::default()
        };
        assert!(node_should_run(&spec, &node("n1", &[("zone", "a")], vec![])).0);
        assert!(!node_should_run(&spec, &node("n2", &[("zone", "b")], vec![])).0);

        let pinned = pin_to_node(Some(affinity), "n1");
        let pod = Pod {
            spec: Some(PodSpec {
                affinity: Some(pinned),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(target_node(&pod).as_deref(), Some("n1"));
        let pinned_spec = pod.spec.clone().unwrap();
        assert!(node_should_run(&pinned_spec, &node("n1", &[], vec![])).0);
        assert!(!node_should_run(&pinned_spec, &node("n2", &[], vec![])).0);
    }
}
