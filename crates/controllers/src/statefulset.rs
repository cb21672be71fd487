//! The StatefulSet controller: pods with stable names `<set>-<ordinal>`
//! (hostname the pod name, subdomain the governing service), each with its
//! own PersistentVolumeClaims `<template>-<set>-<ordinal>` from
//! volumeClaimTemplates.
//!
//! The ordinals a set runs are `spec.ordinals.start` (0 when unset) up to
//! `start + replicas - 1`; a pod of the set outside that range is
//! condemned, whether a scale-down or a change of `start` put it there, so
//! moving `start` creates the pods missing from the new range and removes
//! those left outside it.
//!
//! OrderedReady creates pods one at a time in ordinal order, each only
//! once every lower one is Running and Ready, and removes condemned pods
//! from the highest ordinal down, one at a time; Parallel does both at
//! once. Template versions are ControllerRevisions (shared with the
//! DaemonSet controller); RollingUpdate replaces pods whose position in the
//! range (ordinal minus `start`) is at or above `partition`, from the
//! highest ordinal down, one at a time, each after the previous is ready
//! again; OnDelete leaves that to the user. Status reports replicas,
//! ready/available/current/updated replicas and the current and update
//! revisions.
//!
//! `persistentVolumeClaimRetentionPolicy` is carried out through the
//! claims' ownerReferences, as upstream does, so the garbage collector does
//! the deleting: `whenDeleted: Delete` makes the set the claims' controller
//! (they go with the set); `whenScaled: Delete` makes a condemned pod (one
//! outside the ordinal range) its claims' controller before the pod is deleted
//! (they go with the pod); `Retain` removes those references. Every
//! reconcile brings the claims of existing pods in line with the current
//! policy, so a policy change reaches claims made before it.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;

use crate::daemonset::{current_revision, owned_revisions, revision_template, REVISION_HASH};
use crate::informers::Synced;
use crate::workload_util::{
    controller_owner_ref, controller_ref, is_conflict, is_not_found, is_pod_available,
    is_pod_ready, is_ready, pod_phase, run_loop, self_trigger,
};
use crate::{Context, Error};

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The ordinal of a pod named `<set>-<n>`.
pub fn ordinal_of(set: &str, pod: &str) -> Option<i32> {
    let rest = pod.strip_prefix(set)?.strip_prefix('-')?;
    if rest.is_empty() || (rest.len() > 1 && rest.starts_with('0')) {
        return None;
    }
    rest.parse().ok()
}

/// The ordinals a set's pods should have: `spec.ordinals.start` (0 when
/// unset) and the `replicas` after it, as upstream's `getStartOrdinal` and
/// `getEndOrdinal`.
pub fn ordinal_range(spec: &StatefulSetSpec) -> Range<i32> {
    let start = spec
        .ordinals
        .as_ref()
        .and_then(|o| o.start)
        .unwrap_or(0)
        .max(0);
    let replicas = spec.replicas.unwrap_or(1).max(0);
    start..start.saturating_add(replicas)
}

/// Whether ordinal `ordinal` runs the update revision under a rolling
/// update with `partition`: the partition counts positions in the range,
/// so with `start` 5 and partition 1 the update begins at ordinal 6.
pub fn past_partition(range: &Range<i32>, partition: i32, ordinal: i32) -> bool {
    i64::from(ordinal) - i64::from(range.start) >= i64::from(partition)
}

/// The next step of an OrderedReady scale: the lowest missing ordinal of
/// `range` to create if all below it are healthy, else the highest
/// condemned one (outside `range`, above or below) to delete if all others
/// are healthy. `existing[o]` says whether the pod of ordinal `o` is
/// healthy.
#[derive(Debug, PartialEq)]
pub enum Step {
    Create(i32),
    Delete(i32),
    Wait,
    Done,
}

pub fn ordered_step(range: Range<i32>, existing: &BTreeMap<i32, bool>) -> Step {
    for ordinal in range.clone() {
        match existing.get(&ordinal) {
            None => return Step::Create(ordinal),
            Some(false) => return Step::Wait,
            Some(true) => {}
        }
    }
    if let Some(&highest) = existing.keys().rev().find(|o| !range.contains(o)) {
        let others_healthy = existing
            .iter()
            .filter(|(o, _)| **o != highest)
            .all(|(_, healthy)| *healthy);
        return if others_healthy {
            Step::Delete(highest)
        } else {
            Step::Wait
        };
    }
    Step::Done
}

/// `persistentVolumeClaimRetentionPolicy`: whether claims are deleted with
/// the set (`whenDeleted`) and with condemned pods (`whenScaled`). Anything
/// but `Delete` (unset, `Retain`, an unknown value) retains, as upstream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    pub delete_with_set: bool,
    pub delete_when_scaled: bool,
}

impl Retention {
    pub fn of(spec: &StatefulSetSpec) -> Retention {
        let policy = spec.persistent_volume_claim_retention_policy.as_ref();
        Retention {
            delete_with_set: policy.and_then(|p| p.when_deleted.as_deref()) == Some("Delete"),
            delete_when_scaled: policy.and_then(|p| p.when_scaled.as_deref()) == Some("Delete"),
        }
    }

    fn retains_all(self) -> bool {
        !self.delete_with_set && !self.delete_when_scaled
    }
}

/// An object a claim may name as owner: the set or the claim's pod.
#[derive(Clone, Copy, Debug)]
pub struct ClaimOwner<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

impl ClaimOwner<'_> {
    /// Whether `reference` names this object (by kind and name; the uid may
    /// be an older incarnation's).
    fn named_by(&self, reference: &OwnerReference) -> bool {
        reference.api_version == self.api_version
            && reference.kind == self.kind
            && reference.name == self.name
    }

    fn controller_ref(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version.into(),
            kind: self.kind.into(),
            name: self.name.into(),
            uid: self.uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }
}

/// The ownerReferences a claim of `pod` must carry under `retention`, or
/// None when it already carries them or must be left alone. `scaled_down`
/// says the pod's ordinal is outside the set's ordinal range.
///
/// As upstream: references to the set and the pod are replaced by what the
/// policy wants (the set as controller for `whenDeleted: Delete`, the pod
/// as controller for a scaled-down pod under `whenScaled: Delete`, which
/// then takes the set's place); other owners stay. A claim naming an
/// earlier set or pod of the same name (another uid) is not touched, nor is
/// one with another controller, beyond dropping our own references.
pub fn claim_owner_refs(
    refs: &[OwnerReference],
    set: &ClaimOwner,
    pod: &ClaimOwner,
    retention: Retention,
    scaled_down: bool,
) -> Option<Vec<OwnerReference>> {
    let stale = |owner: &ClaimOwner| {
        refs.iter()
            .find(|r| owner.named_by(r))
            .is_some_and(|r| r.uid != owner.uid)
    };
    if stale(set) || stale(pod) {
        return None;
    }
    let ours = |r: &OwnerReference| set.named_by(r) || pod.named_by(r);
    // Under a Retain/Retain policy any other controller is fine.
    let other_controller =
        !retention.retains_all() && refs.iter().any(|r| !ours(r) && r.controller == Some(true));
    let mut wanted: Vec<OwnerReference> = refs.iter().filter(|r| !ours(r)).cloned().collect();
    if !other_controller {
        let owner = if retention.delete_when_scaled && scaled_down {
            Some(pod)
        } else if retention.delete_with_set {
            Some(set)
        } else {
            None
        };
        wanted.extend(owner.map(ClaimOwner::controller_ref));
    }
    (wanted != refs).then_some(wanted)
}

struct State {
    ctx: Context,
    sets: Store<StatefulSet>,
    pods: Store<Pod>,
    claims: Store<PersistentVolumeClaim>,
    claims_synced: Synced,
}

pub async fn run(ctx: Context) -> Result<(), Error> {
    let _client = ctx.client.clone();
    let (sets, set_events) = ctx.informers.reflect::<StatefulSet>();
    let (pods, pod_events) = ctx.informers.reflect::<Pod>();
    let pod_trigger = pod_events
        .filter_map(|pod| async move {
            let owner = controller_ref(&pod.metadata).filter(|r| r.kind == "StatefulSet")?;
            Some(
                ObjectRef::<StatefulSet>::new(&owner.name)
                    .within(pod.metadata.namespace.as_deref()?),
            )
        })
        .boxed();
    // Claims are only read from the cache (upstream does not resync a set
    // on claim events either): pod and set events drive the reconciles.
    let claims = ctx.informers.store::<PersistentVolumeClaim>();
    let claims_synced = ctx.informers.synced::<PersistentVolumeClaim>();
    let state = Arc::new(State {
        ctx,
        sets: sets.clone(),
        pods,
        claims,
        claims_synced,
    });
    run_loop(
        "statefulset",
        sets,
        vec![self_trigger(set_events), pod_trigger],
        reconcile,
        state,
    )
    .await;
    Ok(())
}

fn healthy(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && pod_phase(pod) == "Running" && is_pod_ready(pod)
}

fn revision_of(pod: &Pod) -> Option<&String> {
    pod.metadata.labels.as_ref()?.get(REVISION_HASH)
}

async fn reconcile(set: Arc<StatefulSet>, state: Arc<State>) -> Result<Action, Error> {
    if !is_ready(&state.sets) || !is_ready(&state.pods) || !state.claims_synced.is_synced() {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    if set.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ctx = &state.ctx;
    let now = Timestamp::now();
    let namespace = set.metadata.namespace.clone().unwrap_or_default();
    let name = set.metadata.name.clone().unwrap_or_default();
    let uid = set.metadata.uid.clone().unwrap_or_default();
    let spec = set.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1);
    let range = ordinal_range(&spec);
    let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let sets_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let reference = clientkit::events::reference(set.as_ref());
    let status = set.status.clone().unwrap_or_default();

    // Revisions: the update revision is the template's; the current one
    // is what status says pods below the partition run.
    let collision = status.collision_count;
    let update_hash = match current_revision(
        ctx,
        "StatefulSet",
        &set.metadata,
        &spec.template,
        collision,
    )
    .await
    {
        Ok(hash) => hash,
        Err(Error::Other(message)) if message.contains("collision") => {
            let patch = json!({"status": {"collisionCount": collision.unwrap_or(0) + 1}});
            sets_api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        Err(err) => return Err(err),
    };
    let update_revision = format!("{name}-{update_hash}");
    let revisions = owned_revisions(ctx, &set.metadata).await?;
    let current_revision_name = status
        .current_revision
        .clone()
        .filter(|r| {
            revisions
                .iter()
                .any(|x| x.metadata.name.as_deref() == Some(r.as_str()))
        })
        .unwrap_or_else(|| update_revision.clone());
    let current = revisions
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(current_revision_name.as_str()));
    let current_hash = current
        .and_then(|r| r.metadata.labels.as_ref()?.get(REVISION_HASH).cloned())
        .unwrap_or_else(|| update_hash.clone());
    let current_template = current
        .and_then(revision_template)
        .unwrap_or_else(|| spec.template.clone());

    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        != Some("OnDelete");
    let partition = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    // Which revision ordinal `i` should run.
    let target_for = |ordinal: i32| -> (&String, &PodTemplateSpec) {
        if (rolling && past_partition(&range, partition, ordinal)) || current_hash == update_hash {
            (&update_hash, &spec.template)
        } else {
            (&current_hash, &current_template)
        }
    };

    let mut pods: BTreeMap<i32, Pod> = BTreeMap::new();
    for pod in state.pods.state() {
        if pod.metadata.namespace.as_deref() != Some(namespace.as_str())
            || controller_ref(&pod.metadata).is_none_or(|r| r.uid != uid)
        {
            continue;
        }
        if let Some(ordinal) = pod
            .metadata
            .name
            .as_deref()
            .and_then(|n| ordinal_of(&name, n))
        {
            pods.insert(ordinal, pod.as_ref().clone());
        }
    }

    // Claims get the owners the retention policy wants before any pod is
    // deleted below, so a condemned pod takes its claims along.
    sync_claim_owners(&state, &set, &pods, &range).await?;

    // Pods that ended (Failed or Succeeded) are deleted, to be recreated.
    for pod in pods.values() {
        if has_ended(pod) && pod.metadata.deletion_timestamp.is_none() {
            delete_pod(ctx, &pods_api, &reference, &name, pod).await?;
        }
    }
    // A terminating pod still holds its ordinal (unhealthy) until it is
    // gone, whatever its last phase: a deleted pod ends Failed.
    let existing: BTreeMap<i32, bool> = pods
        .iter()
        .filter(|(_, p)| p.metadata.deletion_timestamp.is_some() || !has_ended(p))
        .map(|(o, p)| (*o, healthy(p)))
        .collect();

    let mut to_create: Vec<i32> = Vec::new();
    let mut to_delete: Vec<i32> = Vec::new();
    if parallel {
        to_create.extend(range.clone().filter(|o| !existing.contains_key(o)));
        to_delete.extend(existing.keys().filter(|o| !range.contains(o)).copied());
    } else {
        match ordered_step(range.clone(), &existing) {
            Step::Create(o) => to_create.push(o),
            Step::Delete(o) => to_delete.push(o),
            Step::Wait | Step::Done => {}
        }
    }
    // Rolling update: once everything exists and is healthy, replace the
    // highest-ordinal pod on an old revision (at or above the partition,
    // counted from the start of the range).
    // One pod at a time: `rollingUpdate.maxUnavailable` belongs to the
    // alpha MaxUnavailableStatefulSet gate, off by default in 1.33, so it is
    // ignored here as upstream ignores it.
    let all_healthy = range.clone().all(|o| existing.get(&o) == Some(&true));
    if rolling && to_create.is_empty() && to_delete.is_empty() && all_healthy {
        if let Some((ordinal, _)) = pods
            .iter()
            .rev()
            .filter(|(o, _)| range.contains(o) && past_partition(&range, partition, **o))
            .find(|(_, p)| revision_of(p) != Some(&update_hash))
        {
            to_delete.push(*ordinal);
        }
    }

    for ordinal in to_create {
        let (hash, template) = target_for(ordinal);
        create_pod(ctx, &set, &pods_api, &reference, ordinal, hash, template).await?;
    }
    for ordinal in to_delete {
        if let Some(pod) = pods.get(&ordinal) {
            if pod.metadata.deletion_timestamp.is_none() {
                delete_pod(ctx, &pods_api, &reference, &name, pod).await?;
            }
        }
    }

    // Status.
    let live: Vec<&Pod> = pods
        .values()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && !has_ended(p))
        .collect();
    let ready = live.iter().filter(|p| is_pod_ready(p)).count() as i32;
    let available = live
        .iter()
        .filter(|p| is_pod_available(p, min_ready, now))
        .count() as i32;
    let updated = live
        .iter()
        .filter(|p| revision_of(p) == Some(&update_hash))
        .count() as i32;
    let mut current_count = live
        .iter()
        .filter(|p| revision_of(p) == Some(&current_hash))
        .count() as i32;
    let mut current_revision_out = current_revision_name.clone();
    // A finished rollout makes the update revision current.
    if updated == replicas && live.len() as i32 == replicas && ready == replicas {
        current_revision_out = update_revision.clone();
        current_count = updated;
    }
    let new_status = json!({
        "observedGeneration": set.metadata.generation.unwrap_or(0),
        "replicas": live.len(),
        "readyReplicas": ready,
        "availableReplicas": available,
        "currentReplicas": current_count,
        "updatedReplicas": updated,
        "currentRevision": current_revision_out,
        "updateRevision": update_revision,
    });
    let old = serde_json::to_value(&set.status).unwrap_or_default();
    let changed = new_status
        .as_object()
        .into_iter()
        .flatten()
        .any(|(k, v)| old.get(k).cloned().unwrap_or(json!(0)) != *v);
    if changed {
        match sets_api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": new_status })),
            )
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(err.into()),
        }
    }
    if min_ready > 0 && ready > available {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// Bring the claims of every pod of `set` in line with the retention
/// policy (upstream's `UpdatePodClaimForRetentionPolicy`). Claims not in
/// the cache yet are left for a later reconcile.
async fn sync_claim_owners(
    state: &State,
    set: &StatefulSet,
    pods: &BTreeMap<i32, Pod>,
    range: &Range<i32>,
) -> Result<(), Error> {
    let Some(spec) = set.spec.as_ref() else {
        return Ok(());
    };
    let templates = spec.volume_claim_templates.as_deref().unwrap_or_default();
    if templates.is_empty() {
        return Ok(());
    }
    let namespace = set.metadata.namespace.as_deref().unwrap_or_default();
    let set_owner = ClaimOwner {
        api_version: "apps/v1",
        kind: "StatefulSet",
        name: set.metadata.name.as_deref().unwrap_or_default(),
        uid: set.metadata.uid.as_deref().unwrap_or_default(),
    };
    let retention = Retention::of(spec);
    let claims_api: Api<PersistentVolumeClaim> =
        Api::namespaced(state.ctx.client.clone(), namespace);
    for (ordinal, pod) in pods {
        let (Some(pod_name), Some(pod_uid)) =
            (pod.metadata.name.as_deref(), pod.metadata.uid.as_deref())
        else {
            continue;
        };
        let pod_owner = ClaimOwner {
            api_version: "v1",
            kind: "Pod",
            name: pod_name,
            uid: pod_uid,
        };
        for template in templates {
            let template_name = template.metadata.name.as_deref().unwrap_or_default();
            let claim_name = format!("{template_name}-{pod_name}");
            let Some(claim) = state
                .claims
                .get(&ObjectRef::new(&claim_name).within(namespace))
            else {
                continue;
            };
            if claim.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let refs = claim.metadata.owner_references.clone().unwrap_or_default();
            let Some(wanted) = claim_owner_refs(
                &refs,
                &set_owner,
                &pod_owner,
                retention,
                !range.contains(ordinal),
            ) else {
                continue;
            };
            // Merge patch replaces the list whole; the resourceVersion makes
            // it conditional on the claim we judged.
            let patch = json!({"metadata": {
                "resourceVersion": claim.metadata.resource_version,
                "ownerReferences": if wanted.is_empty() { json!(null) } else { json!(wanted) },
            }});
            match claims_api
                .patch(&claim_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok(())
}

async fn create_pod(
    ctx: &Context,
    set: &StatefulSet,
    pods_api: &Api<Pod>,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    ordinal: i32,
    hash: &str,
    template: &PodTemplateSpec,
) -> Result<(), Error> {
    let name = set.metadata.name.clone().unwrap_or_default();
    let namespace = set.metadata.namespace.clone().unwrap_or_default();
    let spec = set.spec.clone().unwrap_or_default();
    let pod_name = format!("{name}-{ordinal}");
    let Some(owner) = controller_owner_ref("apps/v1", "StatefulSet", &set.metadata) else {
        return Ok(());
    };

    // Claims first, so the pod never starts without its volumes.
    let claims_api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &namespace);
    // A new pod is in range: only `whenDeleted: Delete` gives its claims an
    // owner (the set), as `claim_owner_refs` would.
    let delete_with_set = Retention::of(&spec).delete_with_set;
    let mut claim_volumes = Vec::new();
    for template_claim in spec.volume_claim_templates.iter().flatten() {
        let template_name = template_claim.metadata.name.clone().unwrap_or_default();
        let claim_name = format!("{template_name}-{pod_name}");
        claim_volumes.push(Volume {
            name: template_name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name.clone(),
                read_only: None,
            }),
            ..Default::default()
        });
        if claims_api.get_opt(&claim_name).await?.is_some() {
            continue;
        }
        let mut labels = template_claim.metadata.labels.clone().unwrap_or_default();
        labels.extend(spec.selector.match_labels.clone().unwrap_or_default());
        let claim = PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(claim_name.clone()),
                namespace: Some(namespace.clone()),
                labels: Some(labels),
                annotations: template_claim.metadata.annotations.clone(),
                owner_references: delete_with_set.then(|| {
                    vec![OwnerReference {
                        controller: Some(true),
                        block_owner_deletion: Some(true),
                        ..owner.clone()
                    }]
                }),
                ..Default::default()
            },
            spec: template_claim.spec.clone(),
            status: None,
        };
        match claims_api.create(&PostParams::default(), &claim).await {
            Ok(_) => {
                ctx.recorder
                    .record(
                        reference,
                        clientkit::events::NORMAL,
                        "SuccessfulCreate",
                        &format!(
                        "create Claim {claim_name} Pod {pod_name} in StatefulSet {name} success"
                    ),
                    )
                    .await
            }
            Err(err) if is_conflict(&err) => {}
            Err(err) => {
                ctx.recorder
                    .record(
                        reference,
                        clientkit::events::WARNING,
                        "FailedCreate",
                        &format!("create Claim {claim_name} for Pod {pod_name} in StatefulSet {name} failed error: {err}"),
                    )
                    .await;
                return Err(err.into());
            }
        }
    }

    let mut template = template.clone();
    let labels = template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(BTreeMap::new);
    labels.insert(REVISION_HASH.into(), hash.into());
    labels.insert(POD_NAME_LABEL.into(), pod_name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    let mut pod = crate::workload_util::pod_from_template(&template, &namespace, "", owner);
    pod.metadata.generate_name = None;
    pod.metadata.name = Some(pod_name.clone());
    if let Some(pod_spec) = pod.spec.as_mut() {
        pod_spec.hostname = Some(pod_name.clone());
        if !spec.service_name.as_deref().unwrap_or("").is_empty() {
            pod_spec.subdomain = spec.service_name.clone();
        }
        let volumes = pod_spec.volumes.get_or_insert_with(Vec::new);
        for claim_volume in claim_volumes {
            volumes.retain(|v| v.name != claim_volume.name);
            volumes.push(claim_volume);
        }
    }
    match pods_api.create(&PostParams::default(), &pod).await {
        Ok(_) => {
            ctx.recorder
                .record(
                    reference,
                    clientkit::events::NORMAL,
                    "SuccessfulCreate",
                    &format!("create Pod {pod_name} in StatefulSet {name} successful"),
                )
                .await;
            Ok(())
        }
        // Our cache has not seen it yet.
        Err(err) if is_conflict(&err) => Ok(()),
        Err(err) => {
            ctx.recorder
                .record(
                    reference,
                    clientkit::events::WARNING,
                    "FailedCreate",
                    &format!("create Pod {pod_name} in StatefulSet {name} failed error: {err}"),
                )
                .await;
            Err(err.into())
        }
    }
}

async fn delete_pod(
    ctx: &Context,
    pods_api: &Api<Pod>,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    set: &str,
    pod: &Pod,
) -> Result<(), Error> {
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    match pods_api.delete(&pod_name, &DeleteParams::default()).await {
        Ok(_) => {
            ctx.recorder
                .record(
                    reference,
                    clientkit::events::NORMAL,
                    "SuccessfulDelete",
                    &format!("delete Pod {pod_name} in StatefulSet {set} successful"),
                )
                .await;
            Ok(())
        }
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// A pod whose containers will not run again: a set replaces it.
fn has_ended(pod: &Pod) -> bool {
    matches!(pod_phase(pod), "Failed" | "Succeeded")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: ClaimOwner = ClaimOwner {
        api_version: "apps/v1",
        kind: "StatefulSet",
        name: "web",
        uid: "set-uid",
    };
    const POD: ClaimOwner = ClaimOwner {
        api_version: "v1",
        kind: "Pod",
        name: "web-2",
        uid: "pod-uid",
    };

    fn retention(delete_with_set: bool, delete_when_scaled: bool) -> Retention {
        Retention {
            delete_with_set,
            delete_when_scaled,
        }
    }

    fn owners(refs: &[OwnerReference]) -> Vec<(&str, bool)> {
        refs.iter()
            .map(|r| (r.kind.as_str(), r.controller == Some(true)))
            .collect()
    }

    #[test]
    fn the_retention_policy_decides_who_owns_a_claim() {
        let want = |r: Retention, scaled_down: bool| {
            claim_owner_refs(&[], &SET, &POD, r, scaled_down).unwrap_or_default()
        };
        // Retain/Retain: nobody.
        assert!(want(retention(false, false), true).is_empty());
        // whenDeleted Delete: the set, scaled down or not.
        assert_eq!(
            owners(&want(retention(true, false), false)),
            [("StatefulSet", true)]
        );
        assert_eq!(
            owners(&want(retention(true, false), true)),
            [("StatefulSet", true)]
        );
        // whenScaled Delete: the pod once condemned, else nobody.
        assert!(want(retention(false, true), false).is_empty());
        assert_eq!(owners(&want(retention(false, true), true)), [("Pod", true)]);
        // Both: the set while in range, the pod (instead) once condemned.
        assert_eq!(
            owners(&want(retention(true, true), false)),
            [("StatefulSet", true)]
        );
        assert_eq!(owners(&want(retention(true, true), true)), [("Pod", true)]);
        let pod_ref = &want(retention(true, true), true)[0];
        assert_eq!(
            (
                pod_ref.api_version.as_str(),
                pod_ref.name.as_str(),
                pod_ref.uid.as_str()
            ),
            ("v1", "web-2", "pod-uid")
        );
        assert_eq!(pod_ref.block_owner_deletion, Some(true));
    }

    #[test]
    fn claims_already_owned_as_wanted_are_left_alone_and_retain_drops_our_refs() {
        let owned_by_set = vec![SET.controller_ref()];
        assert_eq!(
            claim_owner_refs(&owned_by_set, &SET, &POD, retention(true, false), false),
            None
        );
        // Back to Retain: the set's reference goes, another owner stays.
        let other = OwnerReference {
            api_version: "example.com/v1".into(),
            kind: "Backup".into(),
            name: "nightly".into(),
            uid: "backup-uid".into(),
            controller: None,
            block_owner_deletion: None,
        };
        let refs = vec![other.clone(), SET.controller_ref()];
        assert_eq!(
            claim_owner_refs(&refs, &SET, &POD, retention(false, false), false),
            Some(vec![other])
        );
        // A non-controller reference to the set becomes a controller one.
        let mut loose = SET.controller_ref();
        loose.controller = None;
        assert_eq!(
            claim_owner_refs(&[loose], &SET, &POD, retention(true, false), false),
            Some(vec![SET.controller_ref()])
        );
    }

    #[test]
    fn claims_of_another_incarnation_or_controller_are_not_taken_over() {
        let mut earlier_pod = POD.controller_ref();
        earlier_pod.uid = "old-pod-uid".into();
        assert_eq!(
            claim_owner_refs(&[earlier_pod], &SET, &POD, retention(true, true), false),
            None
        );
        let foreign = OwnerReference {
            api_version: "example.com/v1".into(),
            kind: "Operator".into(),
            name: "op".into(),
            uid: "op-uid".into(),
            controller: Some(true),
            block_owner_deletion: None,
        };
        assert_eq!(
            claim_owner_refs(
                std::slice::from_ref(&foreign),
                &SET,
                &POD,
                retention(true, true),
                true
            ),
            None
        );
        // Our own references still go from under another controller.
        assert_eq!(
            claim_owner_refs(
                &[foreign.clone(), SET.controller_ref()],
                &SET,
                &POD,
                retention(true, true),
                true
            ),
            Some(vec![foreign])
        );
    }

    #[test]
    fn ordinals_come_from_the_name_suffix() {
        assert_eq!(ordinal_of("web", "web-0"), Some(0));
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("web", "web-01"), None);
        assert_eq!(ordinal_of("web", "webby-1"), None);
        assert_eq!(ordinal_of("web", "web-x"), None);
    }

    #[test]
    fn ordered_ready_creates_in_order_and_waits_for_health() {
        let mut existing = BTreeMap::new();
        assert_eq!(ordered_step(0..3, &existing), Step::Create(0));
        existing.insert(0, false);
        assert_eq!(ordered_step(0..3, &existing), Step::Wait);
        existing.insert(0, true);
        assert_eq!(ordered_step(0..3, &existing), Step::Create(1));
        existing.insert(1, true);
        existing.insert(2, true);
        assert_eq!(ordered_step(0..3, &existing), Step::Done);
    }

    #[test]
    fn ordered_ready_scales_down_from_the_highest_ordinal_when_the_rest_are_healthy() {
        let existing: BTreeMap<i32, bool> = [(0, true), (1, true), (2, true), (3, true)].into();
        assert_eq!(ordered_step(0..2, &existing), Step::Delete(3));
        let unhealthy: BTreeMap<i32, bool> = [(0, false), (1, true), (2, true)].into();
        assert_eq!(ordered_step(0..1, &unhealthy), Step::Wait);
    }

    fn spec(value: serde_json::Value) -> StatefulSetSpec {
        let mut base = json!({
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}},
        });
        if let (Some(base), Some(extra)) = (base.as_object_mut(), value.as_object()) {
            base.extend(extra.clone());
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn the_ordinal_range_starts_at_ordinals_start_and_holds_replicas_ordinals() {
        assert_eq!(ordinal_range(&spec(json!({"replicas": 3}))), 0..3);
        assert_eq!(
            ordinal_range(&spec(json!({"replicas": 3, "ordinals": {"start": 5}}))),
            5..8
        );
        // An empty ordinals object means start 0; replicas defaults to 1.
        assert_eq!(ordinal_range(&spec(json!({"ordinals": {}}))), 0..1);
        assert_eq!(
            ordinal_range(&spec(json!({"replicas": 0, "ordinals": {"start": 5}}))),
            5..5
        );
    }

    #[test]
    fn ordered_ready_with_a_start_ordinal_creates_from_start_upwards() {
        let mut existing = BTreeMap::new();
        assert_eq!(ordered_step(5..8, &existing), Step::Create(5));
        existing.insert(5, true);
        assert_eq!(ordered_step(5..8, &existing), Step::Create(6));
        existing.insert(6, true);
        existing.insert(7, true);
        assert_eq!(ordered_step(5..8, &existing), Step::Done);
        // Scaling down to 2 condemns ordinal 7, not ordinal 2.
        assert_eq!(ordered_step(5..7, &existing), Step::Delete(7));
    }

    #[test]
    fn moving_start_creates_the_new_range_first_then_removes_the_old_from_the_top() {
        // start 0 -> 2 with 3 replicas: 0,1,2 exist; 2,3,4 wanted.
        let mut existing: BTreeMap<i32, bool> = [(0, true), (1, true), (2, true)].into();
        assert_eq!(ordered_step(2..5, &existing), Step::Create(3));
        existing.insert(3, false);
        assert_eq!(ordered_step(2..5, &existing), Step::Wait);
        existing.insert(3, true);
        assert_eq!(ordered_step(2..5, &existing), Step::Create(4));
        existing.insert(4, true);
        // Condemned ordinals below the range go highest first.
        assert_eq!(ordered_step(2..5, &existing), Step::Delete(1));
        existing.remove(&1);
        assert_eq!(ordered_step(2..5, &existing), Step::Delete(0));
        existing.remove(&0);
        assert_eq!(ordered_step(2..5, &existing), Step::Done);
        // Condemned pods above and below the range: the highest goes first.
        let both: BTreeMap<i32, bool> = [(1, true), (3, true), (4, true), (9, true)].into();
        assert_eq!(ordered_step(3..5, &both), Step::Delete(9));
        // An unhealthy pod elsewhere blocks the deletion.
        let blocked: BTreeMap<i32, bool> = [(1, false), (3, true), (4, true), (9, true)].into();
        assert_eq!(ordered_step(3..5, &blocked), Step::Wait);
    }

    #[test]
    fn the_partition_counts_positions_from_the_start_ordinal() {
        // start 5, partition 1: ordinal 5 stays, 6 and 7 are updated.
        let range = 5..8;
        assert!(!past_partition(&range, 1, 5));
        assert!(past_partition(&range, 1, 6));
        assert!(past_partition(&range, 1, 7));
        // Partition 0 updates every pod; a partition past the range none.
        assert!(past_partition(&range, 0, 5));
        assert!(!past_partition(&range, 3, 7));
        // Without a start the partition is the ordinal itself.
        assert!(!past_partition(&(0..3), 2, 1));
        assert!(past_partition(&(0..3), 2, 2));
    }
}
