//! The Job controller, and the TTL-after-finished cleanup of Jobs.
//!
//! Runs pods until `completions` succeed (NonIndexed), or until every index
//! in `0..completions` has a succeeded pod (Indexed: pods carry the
//! `batch.kubernetes.io/job-completion-index` annotation and label, a
//! `<job>-<index>` hostname and the `JOB_COMPLETION_INDEX` variable), with
//! at most `parallelism` active. Failures count against `backoffLimit`;
//! replacements wait out upstream's exponential back-off (10 s doubling per
//! failure, at most 6 min), counted from the failures since the Job's last
//! successful pod (see [`BackoffRecord`]); `activeDeadlineSeconds` bounds
//! the run. Terminal states go through FailureTarget or
//! SuccessCriteriaMet first, then Failed or Complete once no pod runs.
//!
//! Pods are tracked with the `batch.kubernetes.io/job-tracking` finalizer:
//! a finished pod is first recorded in `status.uncountedTerminatedPods`,
//! then its finalizer removed, then it moves into `succeeded`/`failed`, so
//! a pod deleted early (or garbage collected) is never lost or counted
//! twice. `ttlSecondsAfterFinished` deletes a finished Job (foreground).
//!
//! `podFailurePolicy` decides per failed pod (first matching rule by exit
//! code or pod condition): FailJob, Ignore (not counted), Count, or
//! FailIndex. Indexed Jobs with `backoffLimitPerIndex` count failures per
//! index (pod annotation `batch.kubernetes.io/job-index-failure-count`),
//! give up on an index past its limit (`status.failedIndexes`) and fail
//! once `maxFailedIndexes` is exceeded or every index is decided.
//! `successPolicy` declares an Indexed Job succeeded early.
//!
//! `podReplacementPolicy` says when a deleted pod is replaced:
//! `TerminatingOrFailed` (the default) counts it failed and replaces it
//! (after the back-off) as soon as it is deleted; `Failed` (implied by a
//! `podFailurePolicy`) waits until the pod has reached phase Failed, and
//! only then counts the failure. `status.terminating` counts the deleted
//! pods not yet terminal; Failed and Complete wait for it to reach zero.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::{
    Job, JobCondition, JobSpec, JobStatus, PodFailurePolicy, SuccessPolicy, UncountedTerminatedPods,
};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;

use crate::workload_util::{
    controller_owner_ref, controller_ref, create_controlled_pod, is_not_found, is_pod_ready,
    is_ready, key_of, pod_from_template, run_loop, self_trigger, slow_start_batch,
    sort_for_deletion, Expectations, BURST_REPLICAS,
};
use crate::{Context, Error};

pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
pub const INDEX_IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-ignored-failure-count";

/// Upstream's pod-failure back-off: 10 s doubling per failure, at most 6 min.
const BACKOFF_BASE: i64 = 10;
const BACKOFF_MAX: i64 = 360;

struct State {
    ctx: Context,
    jobs: Store<Job>,
    pods: Store<Pod>,
    expectations: Expectations,
    backoffs: BackoffStore,
}

pub async fn run(ctx: Context) -> Result<(), Error> {
    let _client = ctx.client.clone();
    let (jobs, job_events) = ctx.informers.reflect::<Job>();
    let (pods, pod_events) = ctx.informers.reflect::<Pod>();
    let pod_trigger = pod_events
        .filter_map(|pod| async move {
            let owner = controller_ref(&pod.metadata).filter(|r| r.kind == "Job")?;
            Some(ObjectRef::<Job>::new(&owner.name).within(pod.metadata.namespace.as_deref()?))
        })
        .boxed();
    let state = Arc::new(State {
        ctx,
        jobs: jobs.clone(),
        pods,
        expectations: Expectations::default(),
        backoffs: BackoffStore::default(),
    });
    run_loop(
        "job",
        jobs,
        vec![self_trigger(job_events), pod_trigger],
        reconcile,
        state,
    )
    .await;
    Ok(())
}

// ---------------------------------------------------------------------------
// Pure parts.

/// Parse a `completedIndexes` string ("1,3-5") into indexes.
pub fn parse_indexes(text: &str) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(i) = part.parse() {
                    out.insert(i);
                }
            }
        }
    }
    out
}

/// Format indexes as upstream does: ascending, runs of 2+ as `a-b`.
pub fn format_indexes(indexes: &BTreeSet<i32>) -> String {
    let mut parts = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        if end > start {
            parts.push(format!("{start}-{end}"));
        } else {
            parts.push(start.to_string());
        }
    }
    parts.join(",")
}

/// Seconds to wait before creating a replacement after `failures` failures.
pub fn backoff_seconds(failures: i32) -> i64 {
    if failures <= 0 {
        return 0;
    }
    let shift = (failures - 1).min(10) as u32;
    (BACKOFF_BASE << shift).min(BACKOFF_MAX)
}

/// Upstream's back-off record of a Job: how many of its pods failed since
/// the last one that succeeded, and when the latest of those failed. Only
/// the delay before replacements comes from it; `backoffLimit` counts
/// every failure (`status.failed`).
///
/// Like upstream's it lives in the controller's memory, fed by the pods
/// each sync newly records as finished: a success resets it, and a
/// restarted controller starts from an empty record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackoffRecord {
    pub failures_after_last_success: i32,
    pub last_failure: Option<Timestamp>,
}

impl BackoffRecord {
    /// The record once pods newly finished at `succeeded` and `failed`
    /// (their finish times) are taken in. Without a new success the new
    /// failures add up; with one, only the failures after the latest new
    /// success remain.
    pub fn advance(self, succeeded: &[Timestamp], failed: &[Timestamp]) -> BackoffRecord {
        let after = match succeeded.iter().max() {
            None if failed.is_empty() => return self,
            None => {
                return BackoffRecord {
                    failures_after_last_success: self.failures_after_last_success
                        + failed.len() as i32,
                    last_failure: failed.iter().max().copied(),
                }
            }
            Some(success) => failed.iter().filter(|at| *at > success),
        };
        let after: Vec<Timestamp> = after.copied().collect();
        BackoffRecord {
            failures_after_last_success: after.len() as i32,
            last_failure: after.iter().max().copied(),
        }
    }

    /// How long new pods must still wait at `now`: the back-off for the
    /// failures counted, less the time since the last of them.
    pub fn remaining(&self, now: Timestamp) -> Duration {
        let Some(last) = self.last_failure else {
            return Duration::ZERO;
        };
        let backoff_ms = backoff_seconds(self.failures_after_last_success) * 1000;
        let left_ms = last.as_millisecond() + backoff_ms - now.as_millisecond();
        Duration::from_millis(left_ms.max(0) as u64)
    }
}

/// The back-off records of the Jobs this controller runs, by `ns/name`
/// with the Job's uid (a Job created again under the same name starts
/// afresh).
#[derive(Default)]
struct BackoffStore {
    records: Mutex<HashMap<String, (String, BackoffRecord)>>,
}

impl BackoffStore {
    fn get(&self, key: &str, uid: &str) -> BackoffRecord {
        self.records
            .lock()
            .ok()
            .and_then(|records| {
                let (owner, record) = records.get(key)?;
                (owner == uid).then_some(*record)
            })
            .unwrap_or_default()
    }

    /// Store `record`, and drop the records of Jobs `exists` no longer
    /// knows (deleted before they finished).
    fn put(
        &self,
        key: &str,
        uid: &str,
        record: BackoffRecord,
        exists: impl Fn(&str, &str) -> bool,
    ) {
        if let Ok(mut records) = self.records.lock() {
            records.retain(|k, (owner, _)| k == key || exists(k, owner));
            if record == BackoffRecord::default() {
                records.remove(key);
            } else {
                records.insert(key.into(), (uid.into(), record));
            }
        }
    }

    fn remove(&self, key: &str) {
        if let Ok(mut records) = self.records.lock() {
            records.remove(key);
        }
    }
}

/// How many pods a NonIndexed job wants active.
pub fn want_active(parallelism: i32, completions: Option<i32>, succeeded: i32, active: i32) -> i32 {
    match completions {
        Some(c) => (c - succeeded).clamp(0, parallelism),
        // Work-queue jobs: once any pod succeeded, no new pods start.
        None if succeeded > 0 => active.min(parallelism),
        None => parallelism,
    }
}

/// What a Job's pod failure policy says about one failed pod.
#[derive(Debug, PartialEq, Eq)]
pub struct FailureMatch {
    /// Set when a FailJob rule matched: the Job's failure message.
    pub fail_job: Option<String>,
    /// Whether the failure counts against the backoff limits.
    pub counted: bool,
    /// The matching rule's action, if any rule matched.
    pub action: Option<String>,
}

/// The first rule of `policy` matching failed `pod`, as upstream's
/// `matchPodFailurePolicy`.
pub fn match_pod_failure_policy(policy: &PodFailurePolicy, pod: &Pod) -> FailureMatch {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    for (index, rule) in policy.rules.iter().enumerate() {
        let subject = if let Some(requirement) = &rule.on_exit_codes {
            let matching = |statuses: &Option<Vec<k8s_openapi::api::core::v1::ContainerStatus>>| {
                statuses.iter().flatten().find_map(|c| {
                    let code = c.state.as_ref()?.terminated.as_ref()?.exit_code;
                    let named = requirement
                        .container_name
                        .as_ref()
                        .is_none_or(|n| *n == c.name);
                    let listed = requirement.values.contains(&code);
                    let operator_matches = match requirement.operator.as_str() {
                        "In" => listed,
                        "NotIn" => !listed,
                        _ => false,
                    };
                    (named && code != 0 && operator_matches).then(|| (c.name.clone(), code))
                })
            };
            matching(&status.container_statuses)
                .or_else(|| matching(&status.init_container_statuses))
                .map(|(container, code)| {
                    format!(
                        "Container {container} for pod {namespace}/{name} failed with exit code {code} matching {} rule at index {index}",
                        rule.action
                    )
                })
        } else if let Some(patterns) = &rule.on_pod_conditions {
            status.conditions.iter().flatten().find_map(|c| {
                patterns
                    .iter()
                    .any(|p| p.type_ == c.type_ && p.status == c.status)
                    .then(|| {
                        format!(
                            "Pod {namespace}/{name} has condition {} matching {} rule at index {index}",
                            c.type_, rule.action
                        )
                    })
            })
        } else {
            None
        };
        let Some(message) = subject else { continue };
        let (fail_job, counted) = match rule.action.as_str() {
            "FailJob" => (Some(message), true),
            "Ignore" => (None, false),
            "Count" | "FailIndex" => (None, true),
            _ => continue,
        };
        return FailureMatch {
            fail_job,
            counted,
            action: Some(rule.action.clone()),
        };
    }
    FailureMatch {
        fail_job: None,
        counted: true,
        action: None,
    }
}

/// The message of the first rule of `policy` the succeeded indexes
/// satisfy, as upstream's `matchSuccessPolicy`.
pub fn match_success_policy(
    policy: &SuccessPolicy,
    completions: i32,
    succeeded: &BTreeSet<i32>,
) -> Option<String> {
    if succeeded.is_empty() {
        return None;
    }
    for (index, rule) in policy.rules.iter().enumerate() {
        let met = match (&rule.succeeded_indexes, rule.succeeded_count) {
            (Some(indexes), count) => {
                let required: BTreeSet<i32> = parse_indexes(indexes)
                    .into_iter()
                    .filter(|i| (0..completions).contains(i))
                    .collect();
                if required.is_empty() {
                    continue;
                }
                let done = required.intersection(succeeded).count();
                match count {
                    Some(count) => done as i32 >= count,
                    None => done == required.len(),
                }
            }
            (None, Some(count)) => succeeded.len() as i32 >= count,
            (None, None) => false,
        };
        if met {
            return Some(format!("Matched rules at index {index}"));
        }
    }
    None
}

// ---------------------------------------------------------------------------

fn has_condition(status: &JobStatus, type_: &str) -> bool {
    status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == type_ && c.status == "True")
}

fn set_condition(status: &mut JobStatus, type_: &str, reason: &str, message: &str, now: Timestamp) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.status != "True" {
            c.status = "True".into();
            c.last_transition_time = Some(Time(now));
        }
        c.reason = Some(reason.into());
        c.message = Some(message.into());
        c.last_probe_time = Some(Time(now));
        return;
    }
    conditions.push(JobCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    });
}

fn set_false(status: &mut JobStatus, type_: &str, reason: &str, message: &str, now: Timestamp) {
    if let Some(c) = status
        .conditions
        .iter_mut()
        .flatten()
        .find(|c| c.type_ == type_ && c.status == "True")
    {
        c.status = "False".into();
        c.reason = Some(reason.into());
        c.message = Some(message.into());
        c.last_transition_time = Some(Time(now));
        c.last_probe_time = Some(Time(now));
    }
}

fn finished_condition(status: &JobStatus) -> Option<Timestamp> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| {
            c.last_transition_time
                .as_ref()
                .map(|t| t.0)
                .unwrap_or(Timestamp::UNIX_EPOCH)
        })
}

fn pod_index(pod: &Pod) -> Option<i32> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(COMPLETION_INDEX)?
        .parse()
        .ok()
}

fn is_finished_pod(pod: &Pod) -> bool {
    matches!(crate::workload_util::pod_phase(pod), "Succeeded" | "Failed")
        || pod.metadata.deletion_timestamp.is_some()
}

/// Whether replacements wait until a pod has failed rather than only for
/// its deletion: `podReplacementPolicy: Failed`, which a `podFailurePolicy`
/// implies (upstream's `onlyReplaceFailedPods`).
pub fn only_replace_failed(spec: &JobSpec) -> bool {
    spec.pod_replacement_policy.as_deref() == Some("Failed") || spec.pod_failure_policy.is_some()
}

/// Whether a pod counts as failed (upstream's `isPodFailed`): phase
/// Failed, or, unless only failed pods are replaced, deleted before it
/// succeeded (an orphan may never reach a terminal phase).
fn is_failed_pod(pod: &Pod, only_failed: bool) -> bool {
    let phase = crate::workload_util::pod_phase(pod);
    phase == "Failed"
        || (!only_failed && pod.metadata.deletion_timestamp.is_some() && phase != "Succeeded")
}

/// Deleted but not yet terminal: what `status.terminating` counts.
fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
        && !matches!(crate::workload_util::pod_phase(pod), "Succeeded" | "Failed")
}

fn annotation_count(pod: &Pod, key: &str) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// When a failed pod ended, as upstream's `getFinishedTime`: the last end
/// of its containers if every one has ended, else when Ready turned False,
/// else when it was deleted (deletionTimestamp less the grace period),
/// else its creation.
fn finished_at(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref();
    let containers: Vec<Option<Timestamp>> = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|c| {
            let terminated = c.state.as_ref()?.terminated.as_ref()?;
            terminated.finished_at.as_ref().map(|t| t.0)
        })
        .collect();
    let all_ended = if containers.iter().all(Option::is_some) {
        containers.into_iter().flatten().max()
    } else {
        None
    };
    let not_ready_since = || {
        status?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready" && c.status == "False")?
            .last_transition_time
            .as_ref()
            .map(|t| t.0)
    };
    let deleted_at = || {
        let at = pod.metadata.deletion_timestamp.as_ref()?.0;
        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
        at.checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(grace))
            .ok()
    };
    all_ended
        .or_else(not_ready_since)
        .or_else(deleted_at)
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// The most recently created failed pod of `index`.
fn last_failed_of_index(pods: &[Pod], index: i32, only_failed: bool) -> Option<&Pod> {
    pods.iter()
        .filter(|p| is_failed_pod(p, only_failed) && pod_index(p) == Some(index))
        .max_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// The (failure, ignored failure) counts the replacement of failed `pod`
/// carries.
fn next_failure_counts(pod: &Pod, counted: bool) -> (i32, i32) {
    let failures = annotation_count(pod, INDEX_FAILURE_COUNT);
    let ignored = annotation_count(pod, INDEX_IGNORED_FAILURE_COUNT);
    if counted {
        (failures + 1, ignored)
    } else {
        (failures, ignored + 1)
    }
}

/// One pod to create: its completion index (Indexed Jobs) and, with a
/// per-index backoff limit, its index's failure counts.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    index: Option<i32>,
    failure_counts: Option<(i32, i32)>,
}

impl Slot {
    fn index(index: i32) -> Slot {
        Slot {
            index: Some(index),
            failure_counts: None,
        }
    }
}

/// The sooner of a planned wake-up and `after`.
fn earliest(wake: Option<Duration>, after: Duration) -> Option<Duration> {
    Some(wake.map_or(after, |w| w.min(after)))
}

fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

async fn reconcile(job: Arc<Job>, state: Arc<State>) -> Result<Action, Error> {
    if !is_ready(&state.jobs) || !is_ready(&state.pods) {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let now = Timestamp::now();
    let namespace = job.metadata.namespace.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let key = key_of(&job.metadata);
    let client = &state.ctx.client;
    let jobs_api: Api<Job> = Api::namespaced(client.clone(), &namespace);
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let spec = job.spec.clone().unwrap_or_default();
    let reference = clientkit::events::reference(job.as_ref());
    let original = job.status.clone().unwrap_or_default();
    let mut status = original.clone();

    // TTL after finished.
    if let Some(finished_at) = finished_condition(&status) {
        state.backoffs.remove(&key);
        if let Some(ttl) = spec.ttl_seconds_after_finished {
            let at = status
                .completion_time
                .as_ref()
                .map(|t| t.0)
                .unwrap_or(finished_at);
            let left = at.as_second() + i64::from(ttl) - now.as_second();
            if left <= 0 && job.metadata.deletion_timestamp.is_none() {
                let params = DeleteParams {
                    propagation_policy: Some(PropagationPolicy::Foreground),
                    preconditions: Some(kube::api::Preconditions {
                        uid: Some(uid.clone()),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                match jobs_api.delete(&name, &params).await {
                    Ok(_) => {}
                    Err(err) if is_not_found(&err) => {}
                    Err(err) => return Err(err.into()),
                }
            } else if left > 0 {
                // Still finish pod bookkeeping below; come back at expiry.
                track_only(&job, &pods_api).await?;
                return Ok(Action::requeue(Duration::from_secs(left as u64 + 1)));
            }
        }
        track_only(&job, &pods_api).await?;
        return Ok(Action::await_change());
    }

    let pods: Vec<Pod> = state
        .pods
        .state()
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .filter(|p| controller_ref(&p.metadata).is_some_and(|r| r.uid == uid))
        .map(|p| p.as_ref().clone())
        .collect();
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let policy = spec.pod_failure_policy.as_ref();
    let per_index_limit = spec.backoff_limit_per_index.filter(|_| indexed);
    let completions = spec.completions.unwrap_or(0);
    let only_failed = only_replace_failed(&spec);
    // A failed pod's verdict under the pod failure policy (without one,
    // every failure counts).
    let verdict = |pod: &Pod| -> FailureMatch {
        match policy {
            Some(policy) => match_pod_failure_policy(policy, pod),
            None => FailureMatch {
                fail_job: None,
                counted: true,
                action: None,
            },
        }
    };

    // 1. Record newly finished pods as uncounted (with completed indexes).
    let mut uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
    let mut succeeded_uids: BTreeSet<String> = uncounted
        .succeeded
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut failed_uids: BTreeSet<String> = uncounted
        .failed
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut completed = parse_indexes(status.completed_indexes.as_deref().unwrap_or(""));
    // Pods whose finalizer goes without being counted: failures the policy
    // ignores, and pods still running once the Job met its success criteria.
    let mut ignored_uids: BTreeSet<String> = BTreeSet::new();
    // Finish times of the pods newly recorded this sync, for the back-off
    // record (upstream's `getNewFinishedPods`: every failure, counted or
    // not, of a pod with a valid index).
    let mut new_succeeded_at: Vec<Timestamp> = Vec::new();
    let mut new_failed_at: Vec<Timestamp> = Vec::new();
    let valid_index = |pod: &Pod| !indexed || pod_index(pod).is_some_and(|i| i < completions);
    // Once the Job is failing, a pod that has not succeeded counts as
    // failed whatever its state, as upstream counts it.
    let failing = has_condition(&original, "FailureTarget");
    let succeeding = has_condition(&original, "SuccessCriteriaMet");
    for pod in pods.iter().filter(|p| has_finalizer(p)) {
        let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
        if succeeded_uids.contains(&pod_uid) || failed_uids.contains(&pod_uid) {
            continue;
        }
        let finished = finished_at(pod).filter(|_| valid_index(pod));
        if crate::workload_util::pod_phase(pod) == "Succeeded" {
            new_succeeded_at.extend(finished);
            if indexed {
                match pod_index(pod) {
                    Some(i) if i < spec.completions.unwrap_or(0) && !completed.contains(&i) => {
                        completed.insert(i);
                        succeeded_uids.insert(pod_uid);
                    }
                    // A second success of an index completes nothing more.
                    _ => {
                        succeeded_uids.insert(pod_uid);
                    }
                }
            } else {
                succeeded_uids.insert(pod_uid);
            }
        } else if is_failed_pod(pod, only_failed) || failing {
            if is_failed_pod(pod, only_failed) {
                new_failed_at.extend(finished);
            }
            if verdict(pod).counted {
                failed_uids.insert(pod_uid);
            } else {
                ignored_uids.insert(pod_uid);
            }
        } else if succeeding {
            ignored_uids.insert(pod_uid);
        }
        // Otherwise still running, or terminating with podReplacementPolicy
        // Failed: it counts (as failed) only once it reaches a phase.
    }
    // Indexes given up on: a FailIndex verdict, or a counted failure at
    // the per-index limit.
    let mut failed_indexes = parse_indexes(status.failed_indexes.as_deref().unwrap_or(""));
    if let Some(limit) = per_index_limit {
        for pod in pods.iter().filter(|p| is_failed_pod(p, only_failed)) {
            let Some(index) = pod_index(pod).filter(|i| (0..completions).contains(i)) else {
                continue;
            };
            let verdict = verdict(pod);
            if verdict.action.as_deref() == Some("FailIndex")
                || (verdict.counted && annotation_count(pod, INDEX_FAILURE_COUNT) >= limit)
            {
                failed_indexes.insert(index);
            }
        }
        status.failed_indexes = Some(format_indexes(&failed_indexes));
    }
    if indexed {
        status.completed_indexes = Some(format_indexes(&completed));
    }
    uncounted.succeeded = Some(succeeded_uids.iter().cloned().collect());
    uncounted.failed = Some(failed_uids.iter().cloned().collect());
    status.uncounted_terminated_pods = Some(uncounted.clone());
    if status.start_time.is_none() && !spec.suspend.unwrap_or(false) {
        status.start_time = Some(Time(now));
    }
    let backoff = state
        .backoffs
        .get(&key, &uid)
        .advance(&new_succeeded_at, &new_failed_at);
    if status != original {
        status = write_status(&jobs_api, &name, &status).await?;
        // As upstream, the record is kept once the pods behind it are
        // recorded in the status: a failure the pod failure policy ignores
        // (never recorded) delays only the sync that sees it.
        let jobs = &state.jobs;
        state.backoffs.put(&key, &uid, backoff, |k, owner| {
            let Some((ns, n)) = k.split_once('/') else {
                return false;
            };
            jobs.get(&ObjectRef::new(n).within(ns))
                .is_some_and(|j| j.metadata.uid.as_deref() == Some(owner))
        });
    }

    // 2. Remove the tracking finalizer from pods recorded as uncounted.
    let recorded: BTreeSet<&String> = succeeded_uids
        .iter()
        .chain(failed_uids.iter())
        .chain(ignored_uids.iter())
        .collect();
    for pod in pods.iter().filter(|p| has_finalizer(p)) {
        let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
        if recorded.contains(&pod_uid) {
            remove_finalizer(&pods_api, pod).await?;
        }
    }

    // 3. Move uncounted pods into the counters once their finalizer is gone.
    let moved_succeeded = succeeded_uids.len() as i32;
    let moved_failed = failed_uids.len() as i32;
    let mut counted = status.clone();
    counted.succeeded = Some(counted.succeeded.unwrap_or(0) + moved_succeeded);
    counted.failed = Some(counted.failed.unwrap_or(0) + moved_failed);
    if indexed {
        counted.succeeded = Some(completed.len() as i32);
    }
    counted.uncounted_terminated_pods = Some(UncountedTerminatedPods {
        succeeded: Some(vec![]),
        failed: Some(vec![]),
    });
    let mut status = counted;

    // The pods still running.
    let active: Vec<Pod> = pods
        .iter()
        .filter(|p| !is_finished_pod(p))
        .cloned()
        .collect();
    let terminating = pods.iter().filter(|p| is_terminating(p)).count() as i32;
    // With podReplacementPolicy Failed a terminating pod still holds its
    // place: no replacement until it has failed.
    let held: Vec<&Pod> = if only_failed {
        pods.iter().filter(|p| is_terminating(p)).collect()
    } else {
        Vec::new()
    };
    let succeeded = status.succeeded.unwrap_or(0);
    let failed = status.failed.unwrap_or(0);
    let parallelism = spec.parallelism.unwrap_or(1);
    let backoff_limit = spec.backoff_limit.unwrap_or(6);

    // Terminal decisions, in upstream's order.
    let condition_of = |type_: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_ && c.status == "True")
            .map(|c| {
                (
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default(),
                )
            })
    };
    let mut failure: Option<(String, String)> = condition_of("FailureTarget");
    if failure.is_none() {
        failure = pods
            .iter()
            .filter(|p| is_failed_pod(p, only_failed))
            .find_map(|p| verdict(p).fail_job)
            .map(|message| ("PodFailurePolicy".to_string(), message));
    }
    if failure.is_none() && failed > backoff_limit {
        failure = Some((
            "BackoffLimitExceeded".into(),
            "Job has reached the specified backoff limit".into(),
        ));
    }
    if let (None, Some(deadline), Some(start)) = (
        &failure,
        spec.active_deadline_seconds,
        status.start_time.as_ref(),
    ) {
        if now.as_second() - start.0.as_second() >= deadline && !spec.suspend.unwrap_or(false) {
            failure = Some((
                "DeadlineExceeded".into(),
                "Job was active longer than specified deadline".into(),
            ));
        }
    }
    if failure.is_none() && per_index_limit.is_some() {
        let failed_count = failed_indexes.len() as i32;
        if spec
            .max_failed_indexes
            .is_some_and(|max| failed_count > max)
        {
            failure = Some((
                "MaxFailedIndexesExceeded".into(),
                "Job has exceeded the specified maximal number of failed indexes".into(),
            ));
        } else if failed_count > 0 && failed_indexes.union(&completed).count() as i32 >= completions
        {
            failure = Some(("FailedIndexes".into(), "Job has failed indexes".into()));
        }
    }
    let mut success: Option<(String, String)> = condition_of("SuccessCriteriaMet");
    if success.is_none() && indexed {
        success = spec
            .success_policy
            .as_ref()
            .and_then(|p| match_success_policy(p, completions, &completed))
            .map(|message| ("SuccessPolicy".to_string(), message));
    }
    let completions_reached = match (indexed, spec.completions) {
        (true, Some(c)) => completed.len() as i32 >= c,
        (false, Some(c)) => succeeded >= c,
        (false, None) => succeeded > 0 && active.is_empty(),
        (true, None) => false,
    };
    if success.is_none() && completions_reached {
        success = Some((
            "CompletionsReached".into(),
            "Reached expected number of succeeded pods".into(),
        ));
    }

    let mut action = Action::requeue(Duration::from_secs(300));
    if let Some((reason, message)) = &failure {
        if !has_condition(&status, "FailureTarget") {
            set_condition(&mut status, "FailureTarget", reason, message, now);
            state
                .ctx
                .recorder
                .record(&reference, clientkit::events::WARNING, reason, message)
                .await;
        }
        delete_pods(&state, &pods_api, &key, &reference, &active).await;
        if active.is_empty() && terminating == 0 {
            set_condition(&mut status, "Failed", reason, message, now);
        } else {
            action = Action::requeue(Duration::from_secs(1));
        }
    } else if let Some((reason, message)) = &success {
        if !has_condition(&status, "SuccessCriteriaMet") {
            set_condition(&mut status, "SuccessCriteriaMet", reason, message, now);
        }
        delete_pods(&state, &pods_api, &key, &reference, &active).await;
        if active.is_empty() && terminating == 0 {
            set_condition(&mut status, "Complete", reason, message, now);
            status.completion_time = Some(Time(now));
            state
                .ctx
                .recorder
                .record(
                    &reference,
                    clientkit::events::NORMAL,
                    "Completed",
                    "Job completed",
                )
                .await;
        } else {
            action = Action::requeue(Duration::from_secs(1));
        }
    } else if spec.suspend.unwrap_or(false) {
        delete_pods(&state, &pods_api, &key, &reference, &active).await;
        if !has_condition(&status, "Suspended") {
            set_condition(
                &mut status,
                "Suspended",
                "JobSuspended",
                "Job suspended",
                now,
            );
            state
                .ctx
                .recorder
                .record(
                    &reference,
                    clientkit::events::NORMAL,
                    "Suspended",
                    "Job suspended",
                )
                .await;
        }
    } else {
        if has_condition(&status, "Suspended") {
            set_false(&mut status, "Suspended", "JobResumed", "Job resumed", now);
            status.start_time = Some(Time(now));
            state
                .ctx
                .recorder
                .record(
                    &reference,
                    clientkit::events::NORMAL,
                    "Resumed",
                    "Job resumed",
                )
                .await;
        }
        let store = &state.pods;
        let in_store = |n: &str| store.get(&ObjectRef::new(n).within(&namespace));
        let satisfied = state.expectations.satisfied(
            &key,
            |n| in_store(n).is_some(),
            |n| in_store(n).is_none_or(|p| p.metadata.deletion_timestamp.is_some()),
        );
        // When to come back: the earliest of the back-off's end and the
        // active deadline.
        let mut wake: Option<Duration> = None;
        if satisfied {
            // New pods wait out the back-off for the failures since the last
            // success (with a per-index limit each index has its own).
            let backoff_wait = if per_index_limit.is_none() {
                backoff.remaining(now)
            } else {
                Duration::ZERO
            };
            if indexed {
                // Pods of indexes given up on stop.
                let abandoned: Vec<Pod> = active
                    .iter()
                    .filter(|p| pod_index(p).is_some_and(|i| failed_indexes.contains(&i)))
                    .cloned()
                    .collect();
                delete_pods(&state, &pods_api, &key, &reference, &abandoned).await;
                let running: BTreeSet<i32> = active
                    .iter()
                    .chain(held.iter().copied())
                    .filter_map(pod_index)
                    .collect();
                let occupied = active.len() - abandoned.len() + held.len();
                let room = (parallelism - occupied as i32).max(0) as usize;
                let mut slots = Vec::new();
                for index in (0..completions).filter(|i| {
                    !completed.contains(i) && !running.contains(i) && !failed_indexes.contains(i)
                }) {
                    if slots.len() >= room.min(BURST_REPLICAS) {
                        break;
                    }
                    if per_index_limit.is_none() {
                        slots.push(Slot::index(index));
                        continue;
                    }
                    // Per-index back-off from the index's last failure.
                    let last = last_failed_of_index(&pods, index, only_failed);
                    let counts = last.map(|p| next_failure_counts(p, verdict(p).counted));
                    let wait = last
                        .and_then(finished_at)
                        .map(|at| {
                            at.as_second() + backoff_seconds(counts.map_or(0, |c| c.0))
                                - now.as_second()
                        })
                        .unwrap_or(0);
                    if wait > 0 {
                        wake = earliest(wake, Duration::from_secs(wait as u64));
                        continue;
                    }
                    slots.push(Slot {
                        index: Some(index),
                        failure_counts: Some(counts.unwrap_or((0, 0))),
                    });
                }
                if !slots.is_empty() && !backoff_wait.is_zero() {
                    wake = earliest(wake, backoff_wait);
                } else {
                    create_pods(&state, &job, &pods_api, &key, &reference, &slots).await;
                }
            } else {
                let want = want_active(
                    parallelism,
                    spec.completions,
                    succeeded,
                    active.len() as i32,
                );
                let surplus = active.len() as i32 - want;
                let missing = want - active.len() as i32 - held.len() as i32;
                if surplus > 0 {
                    let mut victims = active.clone();
                    sort_for_deletion(&mut victims);
                    victims.truncate(surplus as usize);
                    delete_pods(&state, &pods_api, &key, &reference, &victims).await;
                } else if missing > 0 && !backoff_wait.is_zero() {
                    wake = earliest(wake, backoff_wait);
                } else if missing > 0 {
                    let slots = vec![Slot::default(); (missing as usize).min(BURST_REPLICAS)];
                    create_pods(&state, &job, &pods_api, &key, &reference, &slots).await;
                }
            }
        } else {
            wake = Some(Duration::from_secs(2));
        }
        if let (Some(deadline), Some(start)) =
            (spec.active_deadline_seconds, status.start_time.as_ref())
        {
            let left = start.0.as_second() + deadline - now.as_second();
            if left > 0 {
                wake = earliest(wake, Duration::from_secs(left as u64));
            }
        }
        if let Some(wake) = wake {
            action = Action::requeue(wake);
        }
    }
    status.active = Some(active.len() as i32);
    status.ready = Some(active.iter().filter(|p| is_pod_ready(p)).count() as i32);
    status.terminating = Some(terminating);
    let current = job.status.clone().unwrap_or_default();
    if status != current {
        write_status(&jobs_api, &name, &status).await?;
    }
    Ok(action)
}

/// For a finished job: stop what still runs and release every pod's
/// tracking finalizer (the counts are final).
async fn track_only(job: &Job, pods_api: &Api<Pod>) -> Result<(), Error> {
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let pods = pods_api.list(&kube::api::ListParams::default()).await?;
    for pod in pods
        .items
        .iter()
        .filter(|p| controller_ref(&p.metadata).is_some_and(|r| r.uid == uid))
        .filter(|p| has_finalizer(p))
    {
        if !is_finished_pod(pod) {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let _ = pods_api.delete(&name, &DeleteParams::default()).await;
        }
        remove_finalizer(pods_api, pod).await?;
    }
    Ok(())
}

async fn write_status(api: &Api<Job>, name: &str, status: &JobStatus) -> Result<JobStatus, Error> {
    match api
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await
    {
        Ok(job) => Ok(job.status.unwrap_or_default()),
        Err(err) if is_not_found(&err) => Ok(status.clone()),
        Err(err) => Err(err.into()),
    }
}

async fn remove_finalizer(pods_api: &Api<Pod>, pod: &Pod) -> Result<(), Error> {
    let finalizers: Vec<&String> = pod
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != TRACKING_FINALIZER)
        .collect();
    // An emptied list is removed (null), as Go's omitempty would leave it.
    let finalizers = if finalizers.is_empty() {
        json!(null)
    } else {
        json!(finalizers)
    };
    let patch = json!({"metadata": {"finalizers": finalizers, "uid": pod.metadata.uid}});
    match pods_api
        .patch(
            pod.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

async fn create_pods(
    state: &State,
    job: &Job,
    pods_api: &Api<Pod>,
    key: &str,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    slots: &[Slot],
) {
    let Some(template) = job.spec.as_ref().map(|s| s.template.clone()) else {
        return;
    };
    let Some(owner) = controller_owner_ref("batch/v1", "Job", &job.metadata) else {
        return;
    };
    let name = job.metadata.name.clone().unwrap_or_default();
    let namespace = job.metadata.namespace.clone().unwrap_or_default();
    slow_start_batch(slots.len(), |i| {
        let slot = slots[i];
        let mut pod = pod_from_template(&template, &namespace, &format!("{name}-"), owner.clone());
        pod.metadata
            .finalizers
            .get_or_insert_with(Vec::new)
            .push(TRACKING_FINALIZER.into());
        if let Some((failures, ignored)) = slot.failure_counts {
            let annotations = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
            annotations.insert(INDEX_FAILURE_COUNT.into(), failures.to_string());
            if ignored > 0 {
                annotations.insert(INDEX_IGNORED_FAILURE_COUNT.into(), ignored.to_string());
            }
        }
        if let Some(index) = slot.index {
            pod.metadata.generate_name = Some(format!("{name}-{index}-"));
            pod.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(COMPLETION_INDEX.into(), index.to_string());
            pod.metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(COMPLETION_INDEX.into(), index.to_string());
            if let Some(spec) = pod.spec.as_mut() {
                spec.hostname = Some(format!("{name}-{index}"));
                let env = EnvVar {
                    name: "JOB_COMPLETION_INDEX".into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            api_version: Some("v1".into()),
                            field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                        }),
                        ..Default::default()
                    }),
                };
                for container in spec
                    .containers
                    .iter_mut()
                    .chain(spec.init_containers.iter_mut().flatten())
                {
                    container.env.get_or_insert_with(Vec::new).push(env.clone());
                }
            }
        }
        let pods_api = pods_api.clone();
        async move {
            create_controlled_pod(
                &state.ctx.recorder,
                &state.expectations,
                key,
                reference,
                &pods_api,
                &pod,
            )
            .await
        }
    })
    .await;
}

async fn delete_pods(
    state: &State,
    pods_api: &Api<Pod>,
    key: &str,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    pods: &[Pod],
) {
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        state.expectations.expect_deletion(key, &name);
        match pods_api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                state
                    .ctx
                    .recorder
                    .record(
                        reference,
                        clientkit::events::NORMAL,
                        "SuccessfulDelete",
                        &format!("Deleted pod: {name}"),
                    )
                    .await
            }
            Err(err) if is_not_found(&err) => {}
            Err(err) => tracing::debug!(%err, pod = %name, "deleting a job pod failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_indexes_round_trip_with_ranges() {
        let set: BTreeSet<i32> = [0, 1, 2, 4, 6, 7].into();
        assert_eq!(format_indexes(&set), "0-2,4,6-7");
        assert_eq!(parse_indexes("0-2,4,6-7"), set);
        assert_eq!(parse_indexes(""), BTreeSet::new());
    }

    #[test]
    fn failures_back_off_exponentially_up_to_six_minutes() {
        assert_eq!(backoff_seconds(0), 0);
        assert_eq!(backoff_seconds(1), 10);
        assert_eq!(backoff_seconds(2), 20);
        assert_eq!(backoff_seconds(3), 40);
        assert_eq!(backoff_seconds(10), 360);
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    #[test]
    fn the_backoff_record_counts_failures_since_the_last_success() {
        let none = BackoffRecord::default();
        assert_eq!(none.advance(&[], &[]), none);
        // Failures add up across syncs; the latest one dates the record.
        let one = none.advance(&[], &[at(10)]);
        assert_eq!(one.failures_after_last_success, 1);
        let three = one.advance(&[], &[at(30), at(20)]);
        assert_eq!(
            three,
            BackoffRecord {
                failures_after_last_success: 3,
                last_failure: Some(at(30)),
            }
        );
        // A success resets it.
        assert_eq!(three.advance(&[at(40)], &[]), none);
        // Failures in the same batch count only when after the success.
        let mixed = three.advance(&[at(50), at(40)], &[at(45), at(55), at(60)]);
        assert_eq!(
            mixed,
            BackoffRecord {
                failures_after_last_success: 2,
                last_failure: Some(at(60)),
            }
        );
        let before = three.advance(&[at(50)], &[at(45), at(50)]);
        assert_eq!(before, none);
    }

    #[test]
    fn the_remaining_backoff_runs_from_the_last_failure() {
        let record = |failures, last| BackoffRecord {
            failures_after_last_success: failures,
            last_failure: Some(last),
        };
        assert_eq!(BackoffRecord::default().remaining(at(0)), Duration::ZERO);
        // One failure: 10 s; three: 40 s; many: at most 6 min.
        assert_eq!(record(1, at(0)).remaining(at(4)), Duration::from_secs(6));
        assert_eq!(record(1, at(0)).remaining(at(10)), Duration::ZERO);
        assert_eq!(record(1, at(0)).remaining(at(11)), Duration::ZERO);
        assert_eq!(record(3, at(0)).remaining(at(5)), Duration::from_secs(35));
        assert_eq!(record(30, at(0)).remaining(at(0)), Duration::from_secs(360));
        // After a success only the failures after it count: one failure
        // is 10 s again, where the total (4) would have been 80 s.
        let after_success = record(3, at(0)).advance(&[at(1)], &[at(2)]);
        assert_eq!(after_success.remaining(at(2)), Duration::from_secs(10));
    }

    #[test]
    fn backoff_records_belong_to_one_incarnation_of_a_job() {
        let store = BackoffStore::default();
        let record = BackoffRecord {
            failures_after_last_success: 2,
            last_failure: Some(at(0)),
        };
        store.put("ns/a", "uid-1", record, |_, _| true);
        assert_eq!(store.get("ns/a", "uid-1"), record);
        // The same name with another uid is a new Job.
        assert_eq!(store.get("ns/a", "uid-2"), BackoffRecord::default());
        // Records of Jobs gone are dropped on the next write.
        store.put("ns/b", "uid-3", record, |key, _| key != "ns/a");
        assert_eq!(store.get("ns/a", "uid-1"), BackoffRecord::default());
        assert_eq!(store.get("ns/b", "uid-3"), record);
        store.remove("ns/b");
        assert_eq!(store.get("ns/b", "uid-3"), BackoffRecord::default());
    }

    #[test]
    fn active_pods_are_bounded_by_parallelism_and_remaining_completions() {
        assert_eq!(want_active(3, Some(5), 0, 0), 3);
        assert_eq!(want_active(3, Some(5), 4, 3), 1);
        assert_eq!(want_active(3, Some(5), 5, 0), 0);
        // Work queue: no new pods once one succeeded.
        assert_eq!(want_active(3, None, 0, 0), 3);
        assert_eq!(want_active(3, None, 1, 2), 2);
    }

    fn failed_pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    fn exited(code: i32) -> Pod {
        failed_pod(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "status": {"phase": "Failed", "containerStatuses": [
                {"name": "sidecar", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0}}},
                {"name": "main", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": code}}},
            ]},
        }))
    }

    fn policy(rules: serde_json::Value) -> PodFailurePolicy {
        serde_json::from_value(serde_json::json!({ "rules": rules })).unwrap()
    }

    #[test]
    fn the_first_matching_pod_failure_rule_decides_with_upstreams_message() {
        let p = policy(serde_json::json!([
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}},
        ]));
        let m = match_pod_failure_policy(&p, &exited(42));
        assert_eq!(
            m.fail_job.as_deref(),
            Some("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1")
        );
        assert!(m.counted);
        // Exit code 0 never matches, so 1 falls through every rule: counted.
        let m = match_pod_failure_policy(&p, &exited(1));
        assert_eq!((m.fail_job, m.counted, m.action), (None, true, None));
        let m = match_pod_failure_policy(&p, &exited(7));
        assert_eq!(m.action.as_deref(), Some("Count"));

        let mut disrupted = exited(42);
        disrupted.status.as_mut().unwrap().conditions = Some(vec![serde_json::from_value(
            serde_json::json!({"type": "DisruptionTarget", "status": "True"}),
        )
        .unwrap()]);
        let m = match_pod_failure_policy(&p, &disrupted);
        assert_eq!((m.fail_job, m.counted), (None, false));
        assert_eq!(m.action.as_deref(), Some("Ignore"));

        let on_condition = policy(serde_json::json!([
            {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        ]));
        assert_eq!(
            match_pod_failure_policy(&on_condition, &disrupted)
                .fail_job
                .as_deref(),
            Some("Pod ns/p has condition DisruptionTarget matching FailJob rule at index 0")
        );
    }

    #[test]
    fn a_deleted_pod_is_a_failure_at_once_only_under_terminating_or_failed() {
        let spec = |value: serde_json::Value| -> JobSpec { serde_json::from_value(value).unwrap() };
        let template = serde_json::json!({"spec": {"containers": []}});
        assert!(!only_replace_failed(&spec(
            serde_json::json!({"template": template})
        )));
        assert!(only_replace_failed(&spec(
            serde_json::json!({"template": template, "podReplacementPolicy": "Failed"})
        )));
        // A pod failure policy implies Failed.
        assert!(only_replace_failed(&spec(serde_json::json!({
            "template": template, "podFailurePolicy": {"rules": []}
        }))));

        let deleted_running = failed_pod(serde_json::json!({
            "metadata": {"name": "p", "deletionTimestamp": "2024-01-01T00:00:30Z",
                         "deletionGracePeriodSeconds": 30},
            "status": {"phase": "Running"},
        }));
        assert!(is_terminating(&deleted_running));
        assert!(is_failed_pod(&deleted_running, false));
        assert!(!is_failed_pod(&deleted_running, true));
        // Its failure dates from the delete request, not its deadline.
        assert_eq!(
            finished_at(&deleted_running)
                .map(|t| t.to_string())
                .as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        let killed = exited(137);
        assert!(!is_terminating(&killed));
        assert!(is_failed_pod(&killed, true));
    }

    #[test]
    fn a_failure_dates_from_its_containers_end_else_from_readiness_lost() {
        let ended = failed_pod(serde_json::json!({
            "metadata": {"name": "p", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"phase": "Failed",
                "conditions": [{"type": "Ready", "status": "False",
                                "lastTransitionTime": "2024-01-01T00:00:09Z"}],
                "containerStatuses": [
                    {"name": "a", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                     "state": {"terminated": {"exitCode": 1, "finishedAt": "2024-01-01T00:00:05Z"}}},
                    {"name": "b", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                     "state": {"terminated": {"exitCode": 0, "finishedAt": "2024-01-01T00:00:07Z"}}},
                ]},
        }));
        assert_eq!(
            finished_at(&ended).map(|t| t.to_string()).as_deref(),
            Some("2024-01-01T00:00:07Z")
        );
        // One container never ended: the Ready condition's change decides.
        let mut partly = ended.clone();
        if let Some(statuses) = partly
            .status
            .as_mut()
            .and_then(|s| s.container_statuses.as_mut())
        {
            statuses[1].state = None;
        }
        assert_eq!(
            finished_at(&partly).map(|t| t.to_string()).as_deref(),
            Some("2024-01-01T00:00:09Z")
        );
    }

    #[test]
    fn success_policy_rules_match_by_indexes_and_counts_in_order() {
        let p: SuccessPolicy = serde_json::from_value(serde_json::json!({"rules": [
            {"succeededIndexes": "0,2-3"},
            {"succeededIndexes": "4-9", "succeededCount": 2},
            {"succeededCount": 5},
        ]}))
        .unwrap();
        let set = |v: &[i32]| v.iter().copied().collect::<BTreeSet<i32>>();
        assert_eq!(match_success_policy(&p, 10, &set(&[])), None);
        assert_eq!(match_success_policy(&p, 10, &set(&[0, 2])), None);
        assert_eq!(
            match_success_policy(&p, 10, &set(&[0, 2, 3])).as_deref(),
            Some("Matched rules at index 0")
        );
        assert_eq!(
            match_success_policy(&p, 10, &set(&[1, 5, 9])).as_deref(),
            Some("Matched rules at index 1")
        );
        assert_eq!(
            match_success_policy(&p, 12, &set(&[0, 1, 2, 4, 10])).as_deref(),
            Some("Matched rules at index 2")
        );
        // Required indexes beyond completions are not required.
        assert_eq!(
            match_success_policy(&p, 3, &set(&[0, 2])).as_deref(),
            Some("Matched rules at index 0")
        );
    }
}
