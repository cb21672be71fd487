//! The Deployment controller: rolls a Deployment's pod template out through
//! ReplicaSets it owns, as upstream does.
//!
//! Each distinct template gets a ReplicaSet named `<deployment>-<hash>`
//! whose pods carry the `pod-template-hash` label. RollingUpdate scales the
//! new ReplicaSet up and the old ones down within maxSurge/maxUnavailable;
//! Recreate scales the old ones to zero, waits for their pods to go, then
//! scales the new one up. ReplicaSets carry `deployment.kubernetes.io/
//! revision` (so `kubectl rollout history/undo` work), `desired-replicas`
//! and `max-replicas`; scaling a Deployment mid-rollout is proportional.
//! Status reports replicas, updated/ready/available/unavailable replicas,
//! observedGeneration and the Available and Progressing conditions
//! (including the progress deadline). Old ReplicaSets beyond
//! revisionHistoryLimit are deleted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;

use crate::workload_util::{
    controller_owner_ref, controller_ref, is_conflict, is_not_found, is_ready, run_loop,
    selector_is_empty, selector_matches, self_trigger, zero_free,
};
use crate::{Context, Error};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// Deployment annotations never copied onto its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
const TIMED_OUT: &str = "ProgressDeadlineExceeded";

struct State {
    ctx: Context,
    deployments: Store<Deployment>,
    replica_sets: Store<ReplicaSet>,
    pods: Store<Pod>,
}

pub async fn run(ctx: Context) -> Result<(), Error> {
    let _client = ctx.client.clone();
    let (deployments, deployment_events) = ctx.informers.reflect::<Deployment>();
    let (replica_sets, rs_events) = ctx.informers.reflect::<ReplicaSet>();
    let (pods, pod_events) = ctx.informers.reflect::<Pod>();

    let for_rs = deployments.clone();
    let rs_trigger = rs_events
        .flat_map(move |rs| futures::stream::iter(deployments_of_replica_set(&for_rs, &rs)))
        .boxed();
    // Pods matter only to Recreate, which waits for old pods to be gone.
    let (for_pods, rs_for_pods) = (deployments.clone(), replica_sets.clone());
    let pod_trigger = pod_events
        .flat_map(move |pod| {
            let owner = controller_ref(&pod.metadata)
                .filter(|r| r.kind == "ReplicaSet")
                .and_then(|r| {
                    rs_for_pods.get(
                        &ObjectRef::new(&r.name)
                            .within(pod.metadata.namespace.as_deref().unwrap_or_default()),
                    )
                });
            let refs = owner
                .map(|rs| deployments_of_replica_set(&for_pods, &rs))
                .unwrap_or_default();
            futures::stream::iter(refs)
        })
        .boxed();
    let state = Arc::new(State {
        ctx,
        deployments: deployments.clone(),
        replica_sets,
        pods,
    });
    run_loop(
        "deployment",
        deployments,
        vec![self_trigger(deployment_events), rs_trigger, pod_trigger],
        reconcile,
        state,
    )
    .await;
    Ok(())
}

fn deployments_of_replica_set(
    deployments: &Store<Deployment>,
    rs: &ReplicaSet,
) -> Vec<ObjectRef<Deployment>> {
    let namespace = rs.metadata.namespace.clone().unwrap_or_default();
    if let Some(owner) = controller_ref(&rs.metadata) {
        if owner.kind == "Deployment" {
            return vec![ObjectRef::new(&owner.name).within(&namespace)];
        }
        return Vec::new();
    }
    let labels = rs.metadata.labels.clone().unwrap_or_default();
    deployments
        .state()
        .iter()
        .filter(|d| d.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .filter(|d| {
            d.spec.as_ref().is_some_and(|s| {
                !selector_is_empty(&s.selector) && selector_matches(&s.selector, &labels)
            })
        })
        .map(|d| ObjectRef::from_obj(d.as_ref()))
        .collect()
}

// ---------------------------------------------------------------------------
// Pure arithmetic (unit tested below).

/// An int-or-percent of `total`, rounded up or down as upstream's
/// `GetScaledValueFromIntOrPercent`.
pub fn scaled_value(value: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    match value {
        None => 0,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            let Some(percent) = s
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<i64>().ok())
            else {
                return s.parse().unwrap_or(0);
            };
            let product = percent * i64::from(total);
            let value = if round_up {
                (product + 99).div_euclid(100)
            } else {
                product.div_euclid(100)
            };
            value as i32
        }
    }
}

/// maxSurge (rounded up) and maxUnavailable (rounded down) for `desired`
/// replicas; both zero would deadlock, so unavailable becomes one.
pub fn fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> (i32, i32) {
    let default = IntOrString::String("25%".into());
    let surge = scaled_value(Some(max_surge.unwrap_or(&default)), desired, true);
    let unavailable = scaled_value(Some(max_unavailable.unwrap_or(&default)), desired, false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// How many replicas the new ReplicaSet may have during a rolling update,
/// given the sum of all ReplicaSets' `spec.replicas`.
pub fn new_rs_replicas_rolling(
    desired: i32,
    max_surge: i32,
    current_total: i32,
    new_rs: i32,
) -> i32 {
    let max_total = desired + max_surge;
    if current_total >= max_total {
        return new_rs;
    }
    let scale_up = (max_total - current_total).min(desired - new_rs).max(0);
    new_rs + scale_up
}

/// How many old replicas may be scaled down now: what keeps at least
/// `desired - max_unavailable` available, not counting new pods that are
/// not available yet.
pub fn max_scaled_down(
    all_pods: i32,
    desired: i32,
    max_unavailable: i32,
    new_rs_replicas: i32,
    new_rs_available: i32,
) -> i32 {
    let min_available = desired - max_unavailable;
    let new_unavailable = new_rs_replicas - new_rs_available;
    all_pods - min_available - new_unavailable
}

const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The `pod-template-hash` of a template: FNV-1a over its JSON form and
/// the collision count, written with upstream's vowel-free alphabet.
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u32::from(*b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    feed(
        serde_json::to_string(template)
            .unwrap_or_default()
            .as_bytes(),
    );
    if let Some(count) = collision_count {
        feed(&(count as u32).to_le_bytes());
    }
    hash.to_string()
        .bytes()
        .map(|b| SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// Whether two templates are the same apart from `pod-template-hash`.
fn same_template(a: Option<&PodTemplateSpec>, b: Option<&PodTemplateSpec>) -> bool {
    let strip = |t: Option<&PodTemplateSpec>| {
        let mut t = t.cloned().unwrap_or_default();
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH);
        }
        zero_free(serde_json::to_value(t).unwrap_or_default())
    };
    strip(a) == strip(b)
}

fn annotation(meta: &ObjectMeta, key: &str) -> Option<String> {
    meta.annotations.as_ref()?.get(key).cloned()
}

fn revision(rs: &ReplicaSet) -> i64 {
    annotation(&rs.metadata, REVISION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn status_of(
    rs: &ReplicaSet,
    f: impl Fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> Option<i32>,
) -> i32 {
    rs.status.as_ref().and_then(f).unwrap_or(0)
}

fn created(meta: &ObjectMeta) -> (Timestamp, String) {
    (
        meta.creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(Timestamp::UNIX_EPOCH),
        meta.name.clone().unwrap_or_default(),
    )
}

// ---------------------------------------------------------------------------
// One sync.

/// A deployment being synced: the object, its ReplicaSets (updated in
/// place as we scale them) and the status conditions we are building.
struct Sync<'a> {
    state: &'a State,
    d: Deployment,
    namespace: String,
    name: String,
    desired: i32,
    max_surge: i32,
    max_unavailable: i32,
    rolling: bool,
    replica_sets: Vec<ReplicaSet>,
    conditions: Vec<DeploymentCondition>,
    collision_count: Option<i32>,
}

async fn reconcile(d: Arc<Deployment>, state: Arc<State>) -> Result<Action, Error> {
    if !is_ready(&state.replica_sets) || !is_ready(&state.pods) || !is_ready(&state.deployments) {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let d = d.as_ref().clone();
    let spec = d.spec.clone().unwrap_or_default();
    let namespace = d.metadata.namespace.clone().unwrap_or_default();
    let name = d.metadata.name.clone().unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1);
    let rolling = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) != Some("Recreate");
    let (max_surge, max_unavailable) = if rolling {
        let ru = spec
            .strategy
            .as_ref()
            .and_then(|s| s.rolling_update.as_ref());
        fenceposts(
            ru.and_then(|r| r.max_surge.as_ref()),
            ru.and_then(|r| r.max_unavailable.as_ref()),
            desired,
        )
    } else {
        (0, 0)
    };
    let status = d.status.clone().unwrap_or_default();
    let mut sync = Sync {
        state: &state,
        namespace,
        name,
        desired,
        max_surge,
        max_unavailable: max_unavailable.min(desired),
        rolling,
        replica_sets: Vec::new(),
        conditions: status.conditions.clone().unwrap_or_default(),
        collision_count: status.collision_count,
        d,
    };
    if selector_is_empty(&spec.selector) {
        state
            .ctx
            .recorder
            .record(
                &clientkit::events::reference(&sync.d),
                clientkit::events::WARNING,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            )
            .await;
        return Ok(Action::await_change());
    }
    sync.claim_replica_sets().await;

    if sync.d.metadata.deletion_timestamp.is_some() {
        sync.write_status(false).await?;
        return Ok(Action::await_change());
    }
    let paused = spec.paused.unwrap_or(false);
    sync.check_paused_condition(paused);
    if paused {
        sync.scale().await?;
        sync.cleanup().await;
        sync.write_status(false).await?;
        return Ok(Action::await_change());
    }
    if sync.is_scaling_event() {
        sync.scale().await?;
        sync.write_status(false).await?;
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    if sync.rolling {
        sync.rollout_rolling().await
    } else {
        sync.rollout_recreate().await
    }
}

impl Sync<'_> {
    fn uid(&self) -> String {
        self.d.metadata.uid.clone().unwrap_or_default()
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.d.spec.as_ref().map(|s| &s.template)
    }

    fn rs_api(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.state.ctx.client.clone(), &self.namespace)
    }

    /// Owned ReplicaSets that match, plus adopted matching orphans;
    /// owned ones that no longer match are released.
    async fn claim_replica_sets(&mut self) {
        let uid = self.uid();
        let selector = self
            .d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        let api = self.rs_api();
        let deleting = self.d.metadata.deletion_timestamp.is_some();
        for rs in self.state.replica_sets.state() {
            if rs.metadata.namespace.as_deref() != Some(self.namespace.as_str()) {
                continue;
            }
            let labels = rs.metadata.labels.clone().unwrap_or_default();
            let matches = selector_matches(&selector, &labels);
            let rs_name = rs.metadata.name.clone().unwrap_or_default();
            match controller_ref(&rs.metadata) {
                Some(r) if r.uid == uid => {
                    if matches {
                        self.replica_sets.push(rs.as_ref().clone());
                    } else if !deleting {
                        let refs: Vec<_> = rs
                            .metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .filter(|r| r.uid != uid)
                            .cloned()
                            .collect();
                        let patch = json!({"metadata": {"ownerReferences": if refs.is_empty() { json!(null) } else { json!(refs) }, "uid": rs.metadata.uid}});
                        let _ = api
                            .patch(&rs_name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await;
                    }
                }
                Some(_) => {}
                None if matches && !deleting && rs.metadata.deletion_timestamp.is_none() => {
                    let Some(owner) =
                        controller_owner_ref("apps/v1", "Deployment", &self.d.metadata)
                    else {
                        continue;
                    };
                    let mut refs = rs.metadata.owner_references.clone().unwrap_or_default();
                    refs.push(owner);
                    let patch = json!({"metadata": {"ownerReferences": if refs.is_empty() { json!(null) } else { json!(refs) }, "uid": rs.metadata.uid}});
                    if let Ok(adopted) = api
                        .patch(&rs_name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        self.replica_sets.push(adopted);
                    }
                }
                None => {}
            }
        }
        self.replica_sets.sort_by_key(|rs| created(&rs.metadata));
    }

    /// Index of the ReplicaSet whose template is the deployment's (the
    /// oldest, if several are).
    fn new_rs_index(&self) -> Option<usize> {
        self.replica_sets.iter().position(|rs| {
            same_template(
                rs.spec.as_ref().and_then(|s| s.template.as_ref()),
                self.template(),
            )
        })
    }

    fn old_indices(&self) -> Vec<usize> {
        let new = self.new_rs_index();
        (0..self.replica_sets.len())
            .filter(|i| Some(*i) != new)
            .collect()
    }

    fn set_condition(&mut self, type_: &str, status: &str, reason: &str, message: &str) {
        let now = Time(Timestamp::now());
        if let Some(existing) = self.conditions.iter_mut().find(|c| c.type_ == type_) {
            if existing.status == status && existing.reason.as_deref() == Some(reason) {
                if existing.message.as_deref() != Some(message) {
                    existing.message = Some(message.into());
                    existing.last_update_time = Some(now);
                }
                return;
            }
        }
        // A changed condition moves to the end, as upstream's
        // SetDeploymentCondition does; its transition time survives a
        // change of reason alone.
        let since = self
            .conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        self.conditions.retain(|c| c.type_ != type_);
        self.conditions.push(DeploymentCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_update_time: Some(now),
            last_transition_time: Some(since),
        });
    }

    fn condition(&self, type_: &str) -> Option<&DeploymentCondition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    fn has_progress_deadline(&self) -> bool {
        self.d
            .spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .is_some_and(|s| s != i32::MAX)
    }

    fn check_paused_condition(&mut self, paused: bool) {
        if !self.has_progress_deadline() {
            return;
        }
        let paused_now = self
            .condition("Progressing")
            .is_some_and(|c| c.reason.as_deref() == Some("DeploymentPaused"));
        if paused && !paused_now {
            self.set_condition(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
            );
        } else if !paused && paused_now {
            self.set_condition(
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed",
            );
        }
    }

    /// Copy the deployment's annotations and revision onto a ReplicaSet's
    /// metadata; returns whether anything changed.
    fn set_new_rs_annotations(&self, meta: &mut ObjectMeta, new_revision: i64) -> bool {
        let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
        let mut changed = false;
        for (key, value) in self.d.metadata.annotations.iter().flatten() {
            if NOT_COPIED.contains(&key.as_str()) {
                continue;
            }
            if annotations.get(key) != Some(value) {
                annotations.insert(key.clone(), value.clone());
                changed = true;
            }
        }
        let old: i64 = annotations
            .get(REVISION)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if old < new_revision {
            if old > 0 {
                let history = match annotations.get(REVISION_HISTORY) {
                    Some(h) if !h.is_empty() => format!("{h},{old}"),
                    _ => old.to_string(),
                };
                annotations.insert(REVISION_HISTORY.into(), history);
            }
            annotations.insert(REVISION.into(), new_revision.to_string());
            changed = true;
        }
        changed
    }

    fn replicas_annotations(&self) -> [(&'static str, String); 2] {
        [
            (DESIRED_REPLICAS, self.desired.to_string()),
            (MAX_REPLICAS, (self.desired + self.max_surge).to_string()),
        ]
    }

    /// Find (and bring up to date) or create the new ReplicaSet. Returns
    /// its index.
    async fn get_new_rs(&mut self, create: bool) -> Result<Option<usize>, Error> {
        let max_old_revision = self
            .old_indices()
            .iter()
            .map(|i| revision(&self.replica_sets[*i]))
            .max()
            .unwrap_or(0);
        let new_revision = max_old_revision + 1;
        if let Some(index) = self.new_rs_index() {
            let mut meta = self.replica_sets[index].metadata.clone();
            let annotations_changed = self.set_new_rs_annotations(&mut meta, new_revision);
            let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            let rs_min_ready = self.replica_sets[index]
                .spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds);
            if annotations_changed || min_ready.unwrap_or(0) != rs_min_ready.unwrap_or(0) {
                let patch = json!({
                    "metadata": {"annotations": meta.annotations},
                    "spec": {"minReadySeconds": min_ready.unwrap_or(0)},
                });
                let name = meta.name.clone().unwrap_or_default();
                let updated = self
                    .rs_api()
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                self.replica_sets[index] = updated;
            }
            let rs_revision = annotation(&self.replica_sets[index].metadata, REVISION);
            self.sync_deployment_revision(rs_revision).await?;
            if self.has_progress_deadline() && self.condition("Progressing").is_none() {
                let message = format!(
                    "Found new replica set \"{}\"",
                    meta.name.unwrap_or_default()
                );
                self.set_condition("Progressing", "True", "FoundNewReplicaSet", &message);
            }
            return Ok(Some(index));
        }
        if !create {
            return Ok(None);
        }
        let Some(template) = self.template().cloned() else {
            return Ok(None);
        };
        let hash = template_hash(&template, self.collision_count);
        let mut new_template = template.clone();
        new_template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector = self
            .d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let current_total: i32 = self.replica_sets.iter().map(spec_replicas).sum();
        let replicas = if self.rolling {
            new_rs_replicas_rolling(self.desired, self.max_surge, current_total, 0)
        } else {
            self.desired
        };
        let rs_name = format!("{}-{}", self.name, hash);
        let mut labels = new_template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        labels.insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut meta = ObjectMeta {
            name: Some(rs_name.clone()),
            namespace: Some(self.namespace.clone()),
            labels: Some(labels),
            owner_references: controller_owner_ref("apps/v1", "Deployment", &self.d.metadata)
                .map(|r| vec![r]),
            ..Default::default()
        };
        self.set_new_rs_annotations(&mut meta, new_revision);
        if let Some(annotations) = meta.annotations.as_mut() {
            for (key, value) in self.replicas_annotations() {
                annotations.insert(key.into(), value);
            }
        }
        let rs = ReplicaSet {
            metadata: meta,
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                min_ready_seconds: self.d.spec.as_ref().and_then(|s| s.min_ready_seconds),
                selector,
                template: Some(new_template),
            }),
            status: None,
        };
        let created = match self.rs_api().create(&PostParams::default(), &rs).await {
            Ok(created) => created,
            Err(err) if is_conflict(&err) => {
                // A ReplicaSet of that name exists: ours with our template
                // (our cache lags) or a hash collision, which a bumped
                // collisionCount resolves on the next sync.
                let existing = self.rs_api().get(&rs_name).await?;
                let ours = controller_ref(&existing.metadata).is_some_and(|r| r.uid == self.uid());
                if ours
                    && same_template(
                        existing.spec.as_ref().and_then(|s| s.template.as_ref()),
                        self.template(),
                    )
                {
                    self.replica_sets.push(existing);
                    return Ok(Some(self.replica_sets.len() - 1));
                }
                self.collision_count = Some(self.collision_count.unwrap_or(0) + 1);
                self.write_status(false).await?;
                return Err(Error::Other(format!(
                    "hash collision for ReplicaSet {rs_name}; retrying with a new collisionCount"
                )));
            }
            Err(err) => {
                if self.has_progress_deadline() {
                    let message = format!("Failed to create new replica set \"{rs_name}\": {err}");
                    self.set_condition("Progressing", "False", "ReplicaSetCreateError", &message);
                    self.write_status(false).await?;
                }
                return Err(err.into());
            }
        };
        self.sync_deployment_revision(annotation(&created.metadata, REVISION))
            .await?;
        if replicas > 0 {
            self.event(&format!(
                "Scaled up replica set {rs_name} from 0 to {replicas}"
            ))
            .await;
        }
        if self.has_progress_deadline() {
            let message = format!("Created new replica set \"{rs_name}\"");
            self.set_condition("Progressing", "True", "NewReplicaSetCreated", &message);
        }
        self.replica_sets.push(created);
        Ok(Some(self.replica_sets.len() - 1))
    }

    /// The deployment carries its current revision too (kubectl's
    /// rollback replaces `/metadata/annotations`, which must exist).
    async fn sync_deployment_revision(&mut self, revision: Option<String>) -> Result<(), Error> {
        let Some(revision) = revision else {
            return Ok(());
        };
        if annotation(&self.d.metadata, REVISION).as_deref() == Some(revision.as_str()) {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(self.state.ctx.client.clone(), &self.namespace);
        let patch = json!({"metadata": {"annotations": {REVISION: revision}}});
        match api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(updated) => {
                self.d.metadata.annotations = updated.metadata.annotations;
                Ok(())
            }
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    async fn event(&self, message: &str) {
        self.state
            .ctx
            .recorder
            .record(
                &clientkit::events::reference(&self.d),
                clientkit::events::NORMAL,
                "ScalingReplicaSet",
                message,
            )
            .await;
    }

    /// Set a ReplicaSet's replicas (and the replicas annotations). Returns
    /// whether it changed.
    async fn scale_rs(&mut self, index: usize, replicas: i32) -> Result<bool, Error> {
        let rs = &self.replica_sets[index];
        let current = spec_replicas(rs);
        let annotations_ok = self
            .replicas_annotations()
            .iter()
            .all(|(k, v)| annotation(&rs.metadata, k).as_deref() == Some(v.as_str()));
        if current == replicas && annotations_ok {
            return Ok(false);
        }
        let rs_name = rs.metadata.name.clone().unwrap_or_default();
        let annotations: BTreeMap<&str, String> = self.replicas_annotations().into_iter().collect();
        let patch = json!({
            "metadata": {"annotations": annotations},
            "spec": {"replicas": replicas},
        });
        let updated = self
            .rs_api()
            .patch(&rs_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        self.replica_sets[index] = updated;
        if current != replicas {
            let direction = if replicas > current { "up" } else { "down" };
            self.event(&format!(
                "Scaled {direction} replica set {rs_name} from {current} to {replicas}"
            ))
            .await;
        }
        Ok(current != replicas)
    }

    fn is_scaling_event(&self) -> bool {
        self.replica_sets
            .iter()
            .filter(|rs| spec_replicas(rs) > 0)
            .any(|rs| {
                annotation(&rs.metadata, DESIRED_REPLICAS)
                    .and_then(|v| v.parse::<i32>().ok())
                    .is_some_and(|v| v != self.desired)
            })
    }

    /// Proportional scaling: spread a change of `spec.replicas` over the
    /// active ReplicaSets in proportion to their size.
    async fn scale(&mut self) -> Result<(), Error> {
        let new = self.get_new_rs(false).await?;
        let active: Vec<usize> = (0..self.replica_sets.len())
            .filter(|i| spec_replicas(&self.replica_sets[*i]) > 0)
            .collect();
        let single = match active.len() {
            0 => new.or_else(|| self.old_indices().last().copied()),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(index) = single {
            self.scale_rs(index, self.desired).await?;
            return Ok(());
        }
        if let Some(index) = new {
            let rs = &self.replica_sets[index];
            let saturated = spec_replicas(rs) == self.desired
                && annotation(&rs.metadata, DESIRED_REPLICAS) == Some(self.desired.to_string())
                && status_of(rs, |s| s.available_replicas) == self.desired;
            if saturated {
                for old in self.old_indices() {
                    self.scale_rs(old, 0).await?;
                }
                return Ok(());
            }
        }
        if !self.rolling {
            return Ok(());
        }
        let total: i32 = active
            .iter()
            .map(|i| spec_replicas(&self.replica_sets[*i]))
            .sum();
        let allowed = if self.desired > 0 {
            self.desired + self.max_surge
        } else {
            0
        };
        let to_add = allowed - total;
        let mut order = active.clone();
        // Growing favours the biggest and newest; shrinking the biggest and oldest.
        order.sort_by(|a, b| {
            let (ra, rb) = (&self.replica_sets[*a], &self.replica_sets[*b]);
            let by_size = spec_replicas(rb).cmp(&spec_replicas(ra));
            if to_add > 0 {
                by_size.then(created(&rb.metadata).cmp(&created(&ra.metadata)))
            } else {
                by_size.then(created(&ra.metadata).cmp(&created(&rb.metadata)))
            }
        });
        let mut targets: Vec<(usize, i32)> = Vec::new();
        let mut added = 0;
        for index in &order {
            let rs = &self.replica_sets[*index];
            let mut proportion = 0;
            if to_add != 0 {
                let annotated = annotation(&rs.metadata, MAX_REPLICAS)
                    .and_then(|v| v.parse::<i32>().ok())
                    .unwrap_or_else(|| {
                        self.d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0)
                    });
                let fraction = if self.desired == 0 || annotated == 0 {
                    -spec_replicas(rs)
                } else {
                    let size = f64::from(spec_replicas(rs))
                        * f64::from(self.desired + self.max_surge)
                        / f64::from(annotated);
                    size.round() as i32 - spec_replicas(rs)
                };
                let allowed = to_add - added;
                proportion = if to_add > 0 {
                    fraction.min(allowed)
                } else {
                    fraction.max(allowed)
                };
            }
            added += proportion;
            targets.push((*index, spec_replicas(rs) + proportion));
        }
        if let Some(first) = targets.first_mut() {
            first.1 = (first.1 + to_add - added).max(0);
        }
        for (index, replicas) in targets {
            self.scale_rs(index, replicas.max(0)).await?;
        }
        Ok(())
    }

    async fn rollout_rolling(&mut self) -> Result<Action, Error> {
        let Some(new) = self.get_new_rs(true).await? else {
            return self.sync_rollout_status().await;
        };
        // Scale the new ReplicaSet up within maxSurge.
        let new_replicas = spec_replicas(&self.replica_sets[new]);
        if new_replicas != self.desired {
            let target = if new_replicas > self.desired {
                self.desired
            } else {
                let total: i32 = self.replica_sets.iter().map(spec_replicas).sum();
                new_rs_replicas_rolling(self.desired, self.max_surge, total, new_replicas)
            };
            if self.scale_rs(new, target).await? {
                return self.sync_rollout_status().await;
            }
        }
        if self.reconcile_old_replica_sets(new).await? {
            return self.sync_rollout_status().await;
        }
        if self.complete_by(self.d.status.as_ref()) {
            self.cleanup().await;
        }
        self.sync_rollout_status().await
    }

    /// Scale old ReplicaSets down, unhealthy replicas first, never below
    /// the minimum availability. Returns whether anything was scaled.
    async fn reconcile_old_replica_sets(&mut self, new: usize) -> Result<bool, Error> {
        let olds = self.old_indices();
        let old_total: i32 = olds
            .iter()
            .map(|i| spec_replicas(&self.replica_sets[*i]))
            .sum();
        if old_total == 0 {
            return Ok(false);
        }
        let all: i32 = self.replica_sets.iter().map(spec_replicas).sum();
        let new_rs = &self.replica_sets[new];
        let mut budget = max_scaled_down(
            all,
            self.desired,
            self.max_unavailable,
            spec_replicas(new_rs),
            status_of(new_rs, |s| s.available_replicas),
        );
        if budget <= 0 {
            return Ok(false);
        }
        let mut scaled = 0;
        // First, unavailable replicas of old ReplicaSets: removing them
        // costs no availability.
        for index in &olds {
            if budget <= 0 {
                break;
            }
            let rs = &self.replica_sets[*index];
            let replicas = spec_replicas(rs);
            let available = status_of(rs, |s| s.available_replicas);
            if replicas == 0 || replicas <= available {
                continue;
            }
            let cut = budget.min(replicas - available);
            self.scale_rs(*index, replicas - cut).await?;
            budget -= cut;
            scaled += cut;
        }
        // Then available ones, down to the minimum availability.
        let min_available = self.desired - self.max_unavailable;
        let available_total: i32 = self
            .replica_sets
            .iter()
            .map(|rs| status_of(rs, |s| s.available_replicas))
            .sum();
        let mut remaining = available_total - min_available;
        for index in &olds {
            if remaining <= 0 {
                break;
            }
            let replicas = spec_replicas(&self.replica_sets[*index]);
            if replicas == 0 {
                continue;
            }
            let cut = remaining.min(replicas);
            self.scale_rs(*index, replicas - cut).await?;
            remaining -= cut;
            scaled += cut;
        }
        Ok(scaled > 0)
    }

    async fn rollout_recreate(&mut self) -> Result<Action, Error> {
        let mut scaled_down = false;
        for index in self.old_indices() {
            if spec_replicas(&self.replica_sets[index]) > 0 {
                scaled_down |= self.scale_rs(index, 0).await?;
            }
        }
        if scaled_down || self.old_pods_running() {
            return self.sync_rollout_status().await;
        }
        let Some(new) = self.get_new_rs(true).await? else {
            return self.sync_rollout_status().await;
        };
        if spec_replicas(&self.replica_sets[new]) != self.desired {
            self.scale_rs(new, self.desired).await?;
            return self.sync_rollout_status().await;
        }
        if self.complete_by(self.d.status.as_ref()) {
            self.cleanup().await;
        }
        self.sync_rollout_status().await
    }

    /// Whether any pod of an old ReplicaSet still exists and has not
    /// terminated.
    fn old_pods_running(&self) -> bool {
        let olds = self.old_indices();
        if olds
            .iter()
            .any(|i| status_of(&self.replica_sets[*i], |s| Some(s.replicas)) > 0)
        {
            return true;
        }
        let old_uids: Vec<String> = olds
            .iter()
            .filter_map(|i| self.replica_sets[*i].metadata.uid.clone())
            .collect();
        self.state.pods.state().iter().any(|pod| {
            controller_ref(&pod.metadata).is_some_and(|r| old_uids.contains(&r.uid))
                && !matches!(crate::workload_util::pod_phase(pod), "Failed" | "Succeeded")
        })
    }

    /// Delete old, fully scaled-down ReplicaSets beyond revisionHistoryLimit.
    async fn cleanup(&mut self) {
        let limit = self
            .d
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10)
            .max(0) as usize;
        let mut cleanable: Vec<&ReplicaSet> = self
            .old_indices()
            .into_iter()
            .map(|i| &self.replica_sets[i])
            .filter(|rs| {
                spec_replicas(rs) == 0
                    && status_of(rs, |s| Some(s.replicas)) == 0
                    && rs.metadata.deletion_timestamp.is_none()
                    && rs.status.as_ref().and_then(|s| s.observed_generation)
                        >= rs.metadata.generation
            })
            .collect();
        if cleanable.len() <= limit {
            return;
        }
        cleanable.sort_by_key(|rs| (revision(rs), created(&rs.metadata)));
        let excess = cleanable.len() - limit;
        let names: Vec<String> = cleanable
            .iter()
            .take(excess)
            .filter_map(|rs| rs.metadata.name.clone())
            .collect();
        let api = self.rs_api();
        for name in names {
            if let Err(err) = api.delete(&name, &DeleteParams::default()).await {
                if !is_not_found(&err) {
                    tracing::debug!(%err, rs = %name, "deleting an old ReplicaSet failed");
                }
            }
        }
    }

    fn calculate_status(&mut self) -> DeploymentStatus {
        let new = self.new_rs_index();
        let sum = |f: &dyn Fn(&ReplicaSet) -> i32| -> i32 { self.replica_sets.iter().map(f).sum() };
        let replicas = sum(&|rs| status_of(rs, |s| Some(s.replicas)));
        let ready = sum(&|rs| status_of(rs, |s| s.ready_replicas));
        let available = sum(&|rs| status_of(rs, |s| s.available_replicas));
        let total_spec = sum(&spec_replicas);
        let updated = new
            .map(|i| status_of(&self.replica_sets[i], |s| Some(s.replicas)))
            .unwrap_or(0);
        if available >= self.desired - self.max_unavailable {
            self.set_condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            );
        } else {
            self.set_condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            );
        }
        DeploymentStatus {
            observed_generation: self.d.metadata.generation,
            replicas: Some(replicas),
            updated_replicas: Some(updated),
            ready_replicas: Some(ready),
            available_replicas: Some(available),
            unavailable_replicas: Some((total_spec - available).max(0)),
            collision_count: self.collision_count,
            conditions: None,
            terminating_replicas: None,
        }
    }

    fn complete_by(&self, status: Option<&DeploymentStatus>) -> bool {
        let Some(s) = status else { return false };
        s.updated_replicas.unwrap_or(0) == self.desired
            && s.replicas.unwrap_or(0) == self.desired
            && s.available_replicas.unwrap_or(0) == self.desired
            && s.observed_generation.unwrap_or(0) >= self.d.metadata.generation.unwrap_or(0)
    }

    /// Status plus the Progressing condition (progress, completion,
    /// deadline), and a requeue for when the deadline would pass.
    async fn sync_rollout_status(&mut self) -> Result<Action, Error> {
        let status = self.calculate_status();
        let new_name = self
            .new_rs_index()
            .and_then(|i| self.replica_sets[i].metadata.name.clone())
            .unwrap_or_default();
        let mut requeue = None;
        let complete = self.complete_by(Some(&status));
        if self.has_progress_deadline() {
            let old = self.d.status.clone().unwrap_or_default();
            let old_olds = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
            let new_olds = status.replicas.unwrap_or(0) - status.updated_replicas.unwrap_or(0);
            let progressing = status.updated_replicas > old.updated_replicas
                || new_olds < old_olds
                || status.ready_replicas > old.ready_replicas
                || status.available_replicas > old.available_replicas;
            let deadline = i64::from(
                self.d
                    .spec
                    .as_ref()
                    .and_then(|s| s.progress_deadline_seconds)
                    .unwrap_or(600),
            );
            if complete {
                let message = format!("ReplicaSet \"{new_name}\" has successfully progressed.");
                self.set_condition("Progressing", "True", NEW_RS_AVAILABLE, &message);
            } else if progressing {
                let message = format!("ReplicaSet \"{new_name}\" is progressing.");
                // Progress always refreshes lastUpdateTime (the deadline
                // counts from the last progress).
                self.set_condition("Progressing", "True", "ReplicaSetUpdated", &message);
                if let Some(c) = self
                    .conditions
                    .iter_mut()
                    .find(|c| c.type_ == "Progressing")
                {
                    c.last_update_time = Some(Time(Timestamp::now()));
                }
            } else if let Some(cond) = self.condition("Progressing").cloned() {
                let reason = cond.reason.as_deref().unwrap_or_default();
                if reason != NEW_RS_AVAILABLE && reason != TIMED_OUT {
                    let from = cond
                        .last_update_time
                        .as_ref()
                        .map(|t| t.0.as_second())
                        .unwrap_or(0);
                    let left = from + deadline - Timestamp::now().as_second();
                    if left < 0 {
                        let message =
                            format!("ReplicaSet \"{new_name}\" has timed out progressing.");
                        self.set_condition("Progressing", "False", TIMED_OUT, &message);
                    } else {
                        requeue = Some(Duration::from_secs(left as u64 + 1));
                    }
                }
            }
            if !complete && requeue.is_none() {
                if let Some(cond) = self.condition("Progressing") {
                    if cond.reason.as_deref() != Some(TIMED_OUT) {
                        requeue = Some(Duration::from_secs(deadline as u64 + 1));
                    }
                }
            }
        }
        self.write(status).await?;
        Ok(match requeue {
            Some(after) => Action::requeue(after),
            None if complete => Action::await_change(),
            None => Action::requeue(Duration::from_secs(30)),
        })
    }

    async fn write_status(&mut self, _: bool) -> Result<(), Error> {
        let status = self.calculate_status();
        self.write(status).await
    }

    async fn write(&mut self, mut status: DeploymentStatus) -> Result<(), Error> {
        status.conditions = if self.conditions.is_empty() {
            None
        } else {
            Some(self.conditions.clone())
        };
        let current = self.d.status.clone().unwrap_or_default();
        let same = |a: &DeploymentStatus, b: &DeploymentStatus| {
            a.observed_generation == b.observed_generation
                && a.replicas.unwrap_or(0) == b.replicas.unwrap_or(0)
                && a.updated_replicas.unwrap_or(0) == b.updated_replicas.unwrap_or(0)
                && a.ready_replicas.unwrap_or(0) == b.ready_replicas.unwrap_or(0)
                && a.available_replicas.unwrap_or(0) == b.available_replicas.unwrap_or(0)
                && a.unavailable_replicas.unwrap_or(0) == b.unavailable_replicas.unwrap_or(0)
                && a.collision_count == b.collision_count
                && a.conditions == b.conditions
        };
        if same(&status, &current) {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(self.state.ctx.client.clone(), &self.namespace);
        match api
            .patch_status(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": status })),
            )
            .await
        {
            Ok(updated) => {
                self.d.status = updated.status;
                Ok(())
            }
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    #[test]
    fn percentages_round_surge_up_and_unavailable_down() {
        assert_eq!(fenceposts(Some(&pct("25%")), Some(&pct("25%")), 5), (2, 1));
        assert_eq!(fenceposts(Some(&pct("25%")), Some(&pct("25%")), 10), (3, 2));
        assert_eq!(fenceposts(Some(&pct("30%")), Some(&pct("30%")), 1), (1, 0));
        assert_eq!(
            fenceposts(Some(&IntOrString::Int(3)), Some(&IntOrString::Int(2)), 10),
            (3, 2)
        );
    }

    #[test]
    fn zero_surge_and_zero_unavailable_still_allow_one_unavailable() {
        assert_eq!(
            fenceposts(Some(&IntOrString::Int(0)), Some(&pct("0%")), 3),
            (0, 1)
        );
        assert_eq!(fenceposts(Some(&pct("10%")), Some(&pct("10%")), 4), (1, 0));
    }

    #[test]
    fn new_replica_set_grows_only_within_max_surge() {
        // 5 desired, surge 2: from 5 old pods the new RS may start with 2.
        assert_eq!(new_rs_replicas_rolling(5, 2, 5, 0), 2);
        // Already at 7 total: no more room.
        assert_eq!(new_rs_replicas_rolling(5, 2, 7, 2), 2);
        // Never beyond the desired count.
        assert_eq!(new_rs_replicas_rolling(5, 2, 5, 4), 5);
        // Fresh deployment: straight to desired.
        assert_eq!(new_rs_replicas_rolling(5, 2, 0, 0), 5);
    }

    #[test]
    fn old_replicas_are_scaled_down_only_while_availability_holds() {
        // 5 desired, maxUnavailable 1, 7 pods, new RS has 2 not yet available.
        assert_eq!(max_scaled_down(7, 5, 1, 2, 0), 1);
        // New pods available: three may go.
        assert_eq!(max_scaled_down(7, 5, 1, 2, 2), 3);
        assert!(max_scaled_down(5, 5, 0, 1, 0) <= 0);
    }

    #[test]
    fn template_hash_is_stable_changes_with_the_template_and_collisions() {
        let mut t = PodTemplateSpec::default();
        let a = template_hash(&t, None);
        assert_eq!(a, template_hash(&t, None));
        assert!(a.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
        assert_ne!(a, template_hash(&t, Some(1)));
        t.metadata = Some(ObjectMeta {
            labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        });
        assert_ne!(a, template_hash(&t, None));
    }

    #[test]
    fn templates_differing_only_in_pod_template_hash_are_the_same() {
        let plain = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            spec: None,
        };
        let mut hashed = plain.clone();
        if let Some(labels) = hashed.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.insert(POD_TEMPLATE_HASH.into(), "abc".into());
        }
        assert!(same_template(Some(&plain), Some(&hashed)));
        let mut other = plain.clone();
        if let Some(labels) = other.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.insert("app".into(), "api".into());
        }
        assert!(!same_template(Some(&plain), Some(&other)));
    }

    #[test]
    fn templates_differing_only_in_zero_values_are_the_same() {
        use k8s_openapi::api::core::v1::{Container, PodSpec};
        let container = Container {
            name: "c".into(),
            image: Some("busybox".into()),
            ..Default::default()
        };
        let a = PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers: vec![container.clone()],
                ..Default::default()
            }),
        };
        let b = PodTemplateSpec {
            metadata: Some(ObjectMeta::default()),
            spec: Some(PodSpec {
                containers: vec![Container {
                    stdin: Some(false),
                    tty: Some(false),
                    ..container
                }],
                host_network: Some(false),
                ..Default::default()
            }),
        };
        assert!(same_template(Some(&a), Some(&b)));
    }

    #[test]
    fn percent_of_zero_and_plain_integers_in_strings() {
        assert_eq!(scaled_value(Some(&pct("50%")), 0, true), 0);
        assert_eq!(scaled_value(Some(&pct("3")), 10, true), 3);
        assert_eq!(scaled_value(None, 10, true), 0);
    }
}
