//! The Job controller, and the TTL-after-finished cleanup of Jobs.
//!
//! Runs pods until `completions` succeed (NonIndexed), or until every index
//! in `0..completions` has a succeeded pod (Indexed: pods carry the
//! `batch.kubernetes.io/job-completion-index` annotation and label, a
//! `<job>-<index>` hostname and the `JOB_COMPLETION_INDEX` variable), with
//! at most `parallelism` active. Failures count against `backoffLimit` with
//! upstream's exponential back-off before replacements; `activeDeadlineSeconds`
//! bounds the run. Terminal states go through FailureTarget or
//! SuccessCriteriaMet first, then Failed or Complete once no pod runs.
//!
//! Pods are tracked with the `batch.kubernetes.io/job-tracking` finalizer:
//! a finished pod is first recorded in `status.uncountedTerminatedPods`,
//! then its finalizer removed, then it moves into `succeeded`/`failed`, so
//! a pod deleted early (or garbage collected) is never lost or counted
//! twice. `ttlSecondsAfterFinished` deletes a finished Job (foreground).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
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

/// Upstream's pod-failure back-off: 10 s doubling per failure, at most 6 min.
const BACKOFF_BASE: i64 = 10;
const BACKOFF_MAX: i64 = 360;

struct State {
    ctx: Context,
    jobs: Store<Job>,
    pods: Store<Pod>,
    expectations: Expectations,
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

/// How many pods a NonIndexed job wants active.
pub fn want_active(parallelism: i32, completions: Option<i32>, succeeded: i32, active: i32) -> i32 {
    match completions {
        Some(c) => (c - succeeded).clamp(0, parallelism),
        // Work-queue jobs: once any pod succeeded, no new pods start.
        None if succeeded > 0 => active.min(parallelism),
        None => parallelism,
    }
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
    let mut newly_failed = 0;
    let mut last_failure: Option<Timestamp> = None;
    for pod in pods
        .iter()
        .filter(|p| has_finalizer(p) && is_finished_pod(p))
    {
        let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
        if succeeded_uids.contains(&pod_uid) || failed_uids.contains(&pod_uid) {
            continue;
        }
        if crate::workload_util::pod_phase(pod) == "Succeeded" {
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
        } else {
            failed_uids.insert(pod_uid);
            newly_failed += 1;
        }
    }
    for pod in pods
        .iter()
        .filter(|p| crate::workload_util::pod_phase(p) == "Failed")
    {
        let finished = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
                    .map(|t| t.0)
                    .max()
            })
            .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0));
        last_failure = last_failure.max(finished);
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
    if status != original {
        status = write_status(&jobs_api, &name, &status).await?;
    }

    // 2. Remove the tracking finalizer from pods recorded as uncounted.
    let recorded: BTreeSet<&String> = succeeded_uids.iter().chain(failed_uids.iter()).collect();
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
    let terminating = pods
        .iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_some()
                && !matches!(crate::workload_util::pod_phase(p), "Succeeded" | "Failed")
        })
        .count() as i32;
    let succeeded = status.succeeded.unwrap_or(0);
    let failed = status.failed.unwrap_or(0);
    let parallelism = spec.parallelism.unwrap_or(1);
    let backoff_limit = spec.backoff_limit.unwrap_or(6);

    // Terminal decisions.
    let mut failure: Option<(&str, &str)> = None;
    if failed > backoff_limit {
        failure = Some((
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ));
    } else if let (Some(deadline), Some(start)) =
        (spec.active_deadline_seconds, status.start_time.as_ref())
    {
        if now.as_second() - start.0.as_second() >= deadline && !spec.suspend.unwrap_or(false) {
            failure = Some((
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            ));
        }
    }
    if has_condition(&status, "FailureTarget") {
        let c = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "FailureTarget")
            .cloned();
        if let Some(c) = c {
            failure = Some(match c.reason.as_deref() {
                Some("DeadlineExceeded") => (
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                ),
                _ => (
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                ),
            });
        }
    }
    let success = has_condition(&status, "SuccessCriteriaMet")
        || match (indexed, spec.completions) {
            (true, Some(c)) => completed.len() as i32 >= c,
            (false, Some(c)) => succeeded >= c,
            (false, None) => succeeded > 0 && active.is_empty(),
            (true, None) => false,
        };

    let mut action = Action::requeue(Duration::from_secs(300));
    if let Some((reason, message)) = failure {
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
    } else if success {
        if !has_condition(&status, "SuccessCriteriaMet") {
            set_condition(
                &mut status,
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            );
        }
        delete_pods(&state, &pods_api, &key, &reference, &active).await;
        if active.is_empty() && terminating == 0 {
            set_condition(
                &mut status,
                "Complete",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            );
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
        if satisfied {
            // Exponential back-off after failures before replacing pods.
            let wait = last_failure
                .map(|at| at.as_second() + backoff_seconds(failed + newly_failed) - now.as_second())
                .unwrap_or(0);
            if failed > 0 && wait > 0 {
                action = Action::requeue(Duration::from_secs(wait as u64));
            } else if indexed {
                let completions = spec.completions.unwrap_or(0);
                let running: BTreeSet<i32> = active.iter().filter_map(pod_index).collect();
                let room = (parallelism - active.len() as i32).max(0) as usize;
                let wanted: Vec<i32> = (0..completions)
                    .filter(|i| !completed.contains(i) && !running.contains(i))
                    .take(room.min(BURST_REPLICAS))
                    .collect();
                create_pods(
                    &state,
                    &job,
                    &pods_api,
                    &key,
                    &reference,
                    &wanted.iter().map(|i| Some(*i)).collect::<Vec<_>>(),
                )
                .await;
            } else {
                let want = want_active(
                    parallelism,
                    spec.completions,
                    succeeded,
                    active.len() as i32,
                );
                let diff = want - active.len() as i32;
                if diff > 0 {
                    let slots = vec![None; (diff as usize).min(BURST_REPLICAS)];
                    create_pods(&state, &job, &pods_api, &key, &reference, &slots).await;
                } else if diff < 0 {
                    let mut victims = active.clone();
                    sort_for_deletion(&mut victims);
                    victims.truncate((-diff) as usize);
                    delete_pods(&state, &pods_api, &key, &reference, &victims).await;
                }
            }
        } else {
            action = Action::requeue(Duration::from_secs(2));
        }
        if let (Some(deadline), Some(start)) =
            (spec.active_deadline_seconds, status.start_time.as_ref())
        {
            let left = start.0.as_second() + deadline - now.as_second();
            if left > 0 {
                action = Action::requeue(Duration::from_secs(left as u64));
            }
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
    slots: &[Option<i32>],
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
        if let Some(index) = slot {
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

    #[test]
    fn active_pods_are_bounded_by_parallelism_and_remaining_completions() {
        assert_eq!(want_active(3, Some(5), 0, 0), 3);
        assert_eq!(want_active(3, Some(5), 4, 3), 1);
        assert_eq!(want_active(3, Some(5), 5, 0), 0);
        // Work queue: no new pods once one succeeded.
        assert_eq!(want_active(3, None, 0, 0), 3);
        assert_eq!(want_active(3, None, 1, 2), 2);
    }
}
