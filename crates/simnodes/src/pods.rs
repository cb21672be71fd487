//! The pod side of the simulated kubelets: ONE watch over all pods, of which
//! those bound to our nodes are driven through their lifecycle.
//!
//! - A new pod is started at once: phase Running, conditions
//!   PodReadyToStartContainers/Initialized/Ready/ContainersReady/PodScheduled
//!   True, host and pod IPs, startTime, a running status per container.
//! - A pod whose restartPolicy is Never or OnFailure completes after
//!   job_run_seconds (annotation [`RUN_SECONDS_ANNOTATION`] overrides it):
//!   phase Succeeded, or Failed if annotation [`EXIT_CODE_ANNOTATION`] is a
//!   non-zero exit code. For the pods of Indexed Jobs,
//!   [`EXIT_CODE_BY_INDEX_ANNOTATION`] and [`RUN_SECONDS_BY_INDEX_ANNOTATION`]
//!   (`"1=42,3=1"`: completion index = value) override both per index.
//! - A pod with a deletionTimestamp that is not yet terminal has its
//!   containers killed, as the kubelet does: after
//!   [`TERMINATION_SECONDS_ANNOTATION`] seconds (how long the containers
//!   take to stop; default 0, never beyond the deletion's grace period)
//!   every container is reported terminated with exit code 137 and reason
//!   `Error` (containerd's reason for a non-zero exit) and the pod phase
//!   Failed. The pod is then deleted with gracePeriodSeconds=0 and a uid
//!   precondition, as the kubelet finishes a graceful deletion. A pod that
//!   had already succeeded or failed keeps its status.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::Resource;
use serde_json::{json, Value};

use crate::addresses;
use crate::fleet::Fleet;
use crate::{status_code, Error};

pub const RUN_SECONDS_ANNOTATION: &str = "sim.rustkube.io/run-seconds";
pub const EXIT_CODE_ANNOTATION: &str = "sim.rustkube.io/exit-code";
pub const EXIT_CODE_BY_INDEX_ANNOTATION: &str = "sim.rustkube.io/exit-code-by-index";
pub const RUN_SECONDS_BY_INDEX_ANNOTATION: &str = "sim.rustkube.io/run-seconds-by-index";
pub const TERMINATION_SECONDS_ANNOTATION: &str = "sim.rustkube.io/termination-seconds";
/// What a container killed by the kubelet exits with: 128 + SIGKILL.
pub const KILLED_EXIT_CODE: i32 = 137;
const COMPLETION_INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";

/// Where a pod is in its simulated life, by pod uid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Starting,
    Running,
    Finishing,
    Terminating,
    Done,
}

#[derive(Default)]
struct Tracker {
    stages: Mutex<HashMap<String, Stage>>,
}

impl Tracker {
    fn get(&self, uid: &str) -> Option<Stage> {
        self.stages.lock().ok().and_then(|s| s.get(uid).copied())
    }

    fn set(&self, uid: &str, stage: Stage) {
        if let Ok(mut stages) = self.stages.lock() {
            stages.insert(uid.to_string(), stage);
        }
    }

    /// Move `uid` from `from` to `to`; false if it was no longer in `from`.
    fn advance(&self, uid: &str, from: Stage, to: Stage) -> bool {
        let Ok(mut stages) = self.stages.lock() else {
            return false;
        };
        match stages.get_mut(uid) {
            Some(stage) if *stage == from => {
                *stage = to;
                true
            }
            _ => false,
        }
    }

    fn remove(&self, uid: &str) {
        if let Ok(mut stages) = self.stages.lock() {
            stages.remove(uid);
        }
    }

    fn retain(&self, keep: &HashSet<String>) {
        if let Ok(mut stages) = self.stages.lock() {
            stages.retain(|uid, _| keep.contains(uid));
        }
    }
}

/// Watch bound pods and drive those bound to our nodes.
pub async fn run(fleet: Arc<Fleet>) -> Result<(), Error> {
    let tracker = Arc::new(Tracker::default());
    // Like a kubelet, which watches `spec.nodeName=<its node>`: pods not
    // yet scheduled are none of a node's business, and skipping them
    // spares the server and us a third of a pod's watch events.
    let bound = watcher::Config::default().fields("spec.nodeName!=");
    let mut events = clientkit::lean::pod_watcher(Api::all(fleet.client.clone()), bound)
        .default_backoff()
        .boxed();
    // Uids seen during a re-list, to forget pods deleted while disconnected.
    let mut relisted: HashSet<String> = HashSet::new();
    loop {
        let event = match events.try_next().await {
            Ok(Some(event)) => event,
            Ok(None) => return Ok(()),
            Err(err) => {
                tracing::debug!(%err, "pod watch error");
                continue;
            }
        };
        match event {
            watcher::Event::Init => relisted.clear(),
            watcher::Event::InitApply(pod) => {
                if let Some(uid) = &pod.metadata.uid {
                    relisted.insert(uid.clone());
                }
                observe(&fleet, &tracker, pod);
            }
            watcher::Event::InitDone => tracker.retain(&relisted),
            watcher::Event::Apply(pod) => observe(&fleet, &tracker, pod),
            watcher::Event::Delete(pod) => {
                if let Some(uid) = &pod.metadata.uid {
                    tracker.remove(uid);
                }
            }
        }
    }
}

fn observe(fleet: &Arc<Fleet>, tracker: &Arc<Tracker>, pod: Pod) {
    let Some(node_name) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
        return;
    };
    if fleet.node(&node_name).is_none() {
        return;
    }
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    let current = tracker.get(&uid);
    if pod.metadata.deletion_timestamp.is_some() {
        if current != Some(Stage::Terminating) {
            tracker.set(&uid, Stage::Terminating);
            tokio::spawn(terminate(fleet.clone(), tracker.clone(), pod, node_name));
        }
        return;
    }
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending");
    if phase == "Succeeded" || phase == "Failed" {
        tracker.set(&uid, Stage::Done);
        return;
    }
    if current.is_some() {
        return;
    }
    if phase == "Running" {
        // Started by an earlier incarnation of this process.
        tracker.set(&uid, Stage::Running);
        if runs_to_completion(&pod) {
            let started = pod
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0)
                .unwrap_or_else(Timestamp::now);
            let elapsed = Timestamp::now()
                .duration_since(started)
                .as_secs_f64()
                .max(0.0);
            let remaining = (run_seconds(fleet, &pod) - elapsed).max(0.0);
            tokio::spawn(finish_after(
                fleet.clone(),
                tracker.clone(),
                pod,
                node_name,
                remaining,
            ));
        }
        return;
    }
    tracker.set(&uid, Stage::Starting);
    tokio::spawn(start(fleet.clone(), tracker.clone(), pod, node_name));
}

/// Pods the kubelet would not restart after a successful exit.
fn runs_to_completion(pod: &Pod) -> bool {
    matches!(
        pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()),
        Some("Never") | Some("OnFailure")
    )
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// This pod's entry in a per-index annotation (`"1=42,3=1"`).
fn by_index<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    let index = annotation(pod, COMPLETION_INDEX_ANNOTATION)?.trim();
    annotation(pod, key)?
        .split(',')
        .filter_map(|entry| entry.split_once('='))
        .find(|(i, _)| i.trim() == index)
        .map(|(_, value)| value)
}

fn run_seconds(fleet: &Fleet, pod: &Pod) -> f64 {
    by_index(pod, RUN_SECONDS_BY_INDEX_ANNOTATION)
        .or_else(|| annotation(pod, RUN_SECONDS_ANNOTATION))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .unwrap_or(fleet.options.job_run_seconds)
}

/// How long the containers take to stop once the pod is deleted: the
/// annotation's value, bounded by the deletion's grace period.
fn termination_seconds(pod: &Pod) -> f64 {
    let wanted = annotation(pod, TERMINATION_SECONDS_ANNOTATION)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .unwrap_or(0.0);
    let grace = pod
        .metadata
        .deletion_grace_period_seconds
        .unwrap_or(30)
        .max(0) as f64;
    wanted.min(grace)
}

fn exit_code(pod: &Pod) -> i32 {
    by_index(pod, EXIT_CODE_BY_INDEX_ANNOTATION)
        .or_else(|| annotation(pod, EXIT_CODE_ANNOTATION))
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(0)
}

async fn start(fleet: Arc<Fleet>, tracker: Arc<Tracker>, pod: Pod, node_name: String) {
    let (Some(namespace), Some(name), Some(uid)) = (
        pod.metadata.namespace.clone(),
        pod.metadata.name.clone(),
        pod.metadata.uid.clone(),
    ) else {
        return;
    };
    let Some(node) = fleet.node(&node_name) else {
        return;
    };
    let host_ip = node.internal_ip.to_string();
    let host_network = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false);
    let pod_ip = if host_network {
        host_ip.clone()
    } else {
        node.next_pod_ip().to_string()
    };
    let status = running_status(&pod, &host_ip, &pod_ip, Timestamp::now());
    let mut delay = Duration::from_millis(200);
    loop {
        if tracker.get(&uid) != Some(Stage::Starting) {
            return;
        }
        let result = patch_status(&fleet, &namespace, &name, &status).await;
        match result {
            Ok(_) => break,
            Err(err) if status_code(&err) == Some(404) => return,
            Err(err) => {
                tracing::debug!(pod = %name, %err, "starting pod failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
    if !tracker.advance(&uid, Stage::Starting, Stage::Running) {
        return;
    }
    if runs_to_completion(&pod) {
        let seconds = run_seconds(&fleet, &pod);
        finish_after(fleet, tracker, pod, node_name, seconds).await;
    }
}

async fn finish_after(
    fleet: Arc<Fleet>,
    tracker: Arc<Tracker>,
    pod: Pod,
    node_name: String,
    seconds: f64,
) {
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let (Some(namespace), Some(name), Some(uid)) = (
        pod.metadata.namespace.clone(),
        pod.metadata.name.clone(),
        pod.metadata.uid.clone(),
    ) else {
        return;
    };
    if !tracker.advance(&uid, Stage::Running, Stage::Finishing) {
        return;
    }
    let _ = node_name;
    let code = exit_code(&pod);
    let status = terminated_status(&pod, code, Timestamp::now());
    let mut delay = Duration::from_millis(200);
    loop {
        if tracker.get(&uid) != Some(Stage::Finishing) {
            return;
        }
        let result = patch_status(&fleet, &namespace, &name, &status).await;
        match result {
            Ok(_) => {
                tracker.advance(&uid, Stage::Finishing, Stage::Done);
                return;
            }
            Err(err) if status_code(&err) == Some(404) => return,
            Err(err) => {
                tracing::debug!(pod = %name, %err, "completing pod failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Finish a graceful deletion: containers killed (the pod Failed), then the
/// final delete.
async fn terminate(fleet: Arc<Fleet>, tracker: Arc<Tracker>, pod: Pod, node_name: String) {
    let (Some(namespace), Some(name), Some(uid)) = (
        pod.metadata.namespace.clone(),
        pod.metadata.name.clone(),
        pod.metadata.uid.clone(),
    ) else {
        return;
    };
    let _ = node_name;
    let api: Api<Pod> = Api::namespaced(fleet.client.clone(), &namespace);
    let already_terminal = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    );
    if !already_terminal {
        let seconds = termination_seconds(&pod);
        if seconds > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
            // Removed meanwhile (a forced deletion): nothing left to report.
            if tracker.get(&uid) != Some(Stage::Terminating) {
                return;
            }
        }
        let status = terminated_status(&pod, KILLED_EXIT_CODE, Timestamp::now());
        if let Err(err) = patch_status(&fleet, &namespace, &name, &status).await {
            if status_code(&err) == Some(404) {
                return;
            }
            tracing::debug!(pod = %name, %err, "marking containers terminated failed");
        }
    }
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let mut delay = Duration::from_millis(200);
    for _ in 0..8 {
        let result = fleet.request(api.delete(&name, &params)).await;
        match result {
            Ok(_) => return,
            // Gone, or a new pod of the same name: nothing left to do.
            Err(err) if matches!(status_code(&err), Some(404) | Some(409)) => return,
            Err(err) => {
                tracing::debug!(pod = %name, %err, "deleting terminated pod failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

fn condition(type_: &str, status: &str, reason: Option<&str>, now: Timestamp) -> Value {
    let mut condition = json!({
        "type": type_,
        "status": status,
        "lastProbeTime": null,
        "lastTransitionTime": Time(now),
    });
    if let Some(reason) = reason {
        condition["reason"] = json!(reason);
    }
    condition
}

/// The pod's conditions with `ours` replacing those of the same type; other
/// conditions (PodScheduled from the scheduler, readiness gates,
/// DisruptionTarget) are kept, and an unchanged status keeps its
/// lastTransitionTime.
fn merge_conditions(pod: &Pod, ours: Vec<Value>) -> Value {
    let existing: Vec<Value> = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|conditions| {
            conditions
                .iter()
                .filter_map(|c| serde_json::to_value(c).ok())
                .collect()
        })
        .unwrap_or_default();
    let mut merged: Vec<Value> = Vec::new();
    for mut condition in ours {
        if let Some(old) = existing.iter().find(|c| c["type"] == condition["type"]) {
            if old["status"] == condition["status"] && !old["lastTransitionTime"].is_null() {
                condition["lastTransitionTime"] = old["lastTransitionTime"].clone();
            }
        }
        merged.push(condition);
    }
    for old in existing {
        if !merged.iter().any(|c| c["type"] == old["type"]) {
            merged.push(old);
        }
    }
    Value::Array(merged)
}

fn image_id(image: &str) -> String {
    let repository = match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => image,
    };
    let repository = repository.split('@').next().unwrap_or(repository);
    format!("{repository}@sha256:{}", addresses::fake_digest(image))
}

fn container_id(pod_uid: &str, container: &str) -> String {
    format!(
        "containerd://{}",
        addresses::fake_digest(&format!("{pod_uid}/{container}"))
    )
}

/// Merge-patch a pod's status. The answer, the whole pod, is skipped
/// rather than decoded: nothing here reads it.
async fn patch_status(
    fleet: &Fleet,
    namespace: &str,
    name: &str,
    status: &Value,
) -> Result<(), kube::Error> {
    let request = kube::core::Request::new(Pod::url_path(&(), Some(namespace)))
        .patch_subresource(
            "status",
            name,
            &PatchParams::default(),
            &Patch::Merge(status),
        )
        .map_err(kube::Error::BuildRequest)?;
    let call = fleet.client.request::<serde::de::IgnoredAny>(request);
    fleet.request(call).await.map(|_| ())
}

/// The status patch of a pod whose containers all started at `now`.
pub fn running_status(pod: &Pod, host_ip: &str, pod_ip: &str, now: Timestamp) -> Value {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let no_spec = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&no_spec);
    let containers: Vec<Value> = spec
        .containers
        .iter()
        .map(|c| {
            let image = c.image.clone().unwrap_or_default();
            json!({
                "name": c.name,
                "image": image,
                "imageID": image_id(&image),
                "containerID": container_id(&uid, &c.name),
                "ready": true,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": Time(now)}},
            })
        })
        .collect();
    let mut status = json!({
        "phase": "Running",
        "conditions": merge_conditions(pod, vec![
            condition("PodReadyToStartContainers", "True", None, now),
            condition("Initialized", "True", None, now),
            condition("Ready", "True", None, now),
            condition("ContainersReady", "True", None, now),
            condition("PodScheduled", "True", None, now),
        ]),
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": Time(now),
        "containerStatuses": containers,
    });
    if let Some(init) = spec.init_containers.as_ref().filter(|i| !i.is_empty()) {
        status["initContainerStatuses"] = Value::Array(
            init.iter()
                .map(|c| {
                    let image = c.image.clone().unwrap_or_default();
                    json!({
                        "name": c.name,
                        "image": image,
                        "imageID": image_id(&image),
                        "containerID": container_id(&uid, &c.name),
                        "ready": true,
                        "started": false,
                        "restartCount": 0,
                        "state": {"terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "startedAt": Time(now),
                            "finishedAt": Time(now),
                            "containerID": container_id(&uid, &c.name),
                        }},
                    })
                })
                .collect(),
        );
    }
    json!({ "status": status })
}

/// The status patch of a pod whose containers all exited with `exit_code`
/// at `now`: phase Succeeded for 0, Failed otherwise.
pub fn terminated_status(pod: &Pod, exit_code: i32, now: Timestamp) -> Value {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let no_spec = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&no_spec);
    let started = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0)
        .unwrap_or(now);
    let (phase, reason) = if exit_code == 0 {
        ("Succeeded", "Completed")
    } else {
        ("Failed", "Error")
    };
    let containers: Vec<Value> = spec
        .containers
        .iter()
        .map(|c| {
            let image = c.image.clone().unwrap_or_default();
            json!({
                "name": c.name,
                "image": image,
                "imageID": image_id(&image),
                "containerID": container_id(&uid, &c.name),
                "ready": false,
                "started": false,
                "restartCount": 0,
                "state": {"terminated": {
                    "exitCode": exit_code,
                    "reason": reason,
                    "startedAt": Time(started),
                    "finishedAt": Time(now),
                    "containerID": container_id(&uid, &c.name),
                }},
            })
        })
        .collect();
    json!({"status": {
        "phase": phase,
        "conditions": merge_conditions(pod, vec![
            condition("PodReadyToStartContainers", "False", None, now),
            condition("Initialized", "True", None, now),
            condition("Ready", "False", Some("PodCompleted"), now),
            condition("ContainersReady", "False", Some("PodCompleted"), now),
            condition("PodScheduled", "True", None, now),
        ]),
        "containerStatuses": containers,
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(restart_policy: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u1",
                          "annotations": {RUN_SECONDS_ANNOTATION: "2.5", EXIT_CODE_ANNOTATION: "1"}},
            "spec": {"nodeName": "sim-node-0", "restartPolicy": restart_policy,
                     "containers": [{"name": "app", "image": "nginx:1.27"}]},
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}
            ]},
        }))
        .unwrap()
    }

    #[test]
    fn running_status_is_ready_with_ips_and_a_running_container() {
        let patch = running_status(&pod("Always"), "10.128.0.1", "10.42.0.2", Timestamp::now());
        let typed: Pod = serde_json::from_value(patch).unwrap();
        let status = typed.status.unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.pod_ip.as_deref(), Some("10.42.0.2"));
        assert_eq!(status.host_ip.as_deref(), Some("10.128.0.1"));
        let conditions = status.conditions.unwrap();
        for type_ in ["Ready", "ContainersReady", "Initialized", "PodScheduled"] {
            assert!(
                conditions
                    .iter()
                    .any(|c| c.type_ == type_ && c.status == "True"),
                "{type_}"
            );
        }
        // The scheduler's PodScheduled transition time is kept.
        let scheduled = conditions
            .iter()
            .find(|c| c.type_ == "PodScheduled")
            .unwrap();
        assert_eq!(
            scheduled
                .last_transition_time
                .as_ref()
                .unwrap()
                .0
                .to_string(),
            "2024-01-01T00:00:00Z"
        );
        let container = &status.container_statuses.unwrap()[0];
        assert!(container.ready);
        assert!(container.state.as_ref().unwrap().running.is_some());
        assert!(container.image_id.starts_with("nginx@sha256:"));
        assert!(container
            .container_id
            .as_deref()
            .unwrap()
            .starts_with("containerd://"));
    }

    #[test]
    fn per_index_annotations_override_the_exit_code_for_listed_indexes() {
        let indexed = |index: &str| -> Pod {
            serde_json::from_value(json!({"metadata": {"annotations": {
                COMPLETION_INDEX_ANNOTATION: index,
                EXIT_CODE_ANNOTATION: "3",
                EXIT_CODE_BY_INDEX_ANNOTATION: "1=42, 2=0",
            }}}))
            .unwrap()
        };
        assert_eq!(exit_code(&indexed("0")), 3);
        assert_eq!(exit_code(&indexed("1")), 42);
        assert_eq!(exit_code(&indexed("2")), 0);
    }

    #[test]
    fn failing_exit_code_makes_the_pod_failed_with_terminated_containers() {
        let pod = pod("Never");
        assert!(runs_to_completion(&pod));
        assert_eq!(exit_code(&pod), 1);
        let typed: Pod =
            serde_json::from_value(terminated_status(&pod, 1, Timestamp::now())).unwrap();
        let status = typed.status.unwrap();
        assert_eq!(status.phase.as_deref(), Some("Failed"));
        let terminated = status.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap();
        assert_eq!(
            (terminated.exit_code, terminated.reason.as_deref()),
            (1, Some("Error"))
        );
        let ok: Pod = serde_json::from_value(terminated_status(&pod, 0, Timestamp::now())).unwrap();
        assert_eq!(ok.status.unwrap().phase.as_deref(), Some("Succeeded"));
    }

    #[test]
    fn a_killed_pod_fails_with_exit_code_137_and_reason_error() {
        let typed: Pod = serde_json::from_value(terminated_status(
            &pod("Always"),
            KILLED_EXIT_CODE,
            Timestamp::now(),
        ))
        .unwrap();
        let status = typed.status.unwrap();
        assert_eq!(status.phase.as_deref(), Some("Failed"));
        let terminated = status.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap();
        assert_eq!(
            (terminated.exit_code, terminated.reason.as_deref()),
            (137, Some("Error"))
        );
        let ready = status
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("False", Some("PodCompleted"))
        );
    }

    #[test]
    fn containers_stop_within_the_deletion_grace_period() {
        let deleting = |seconds: &str, grace: Option<i64>| -> Pod {
            serde_json::from_value(json!({"metadata": {
                "annotations": {TERMINATION_SECONDS_ANNOTATION: seconds},
                "deletionGracePeriodSeconds": grace,
            }}))
            .unwrap()
        };
        assert_eq!(termination_seconds(&deleting("5", Some(30))), 5.0);
        assert_eq!(termination_seconds(&deleting("50", Some(30))), 30.0);
        assert_eq!(termination_seconds(&deleting("5", Some(0))), 0.0);
        assert_eq!(termination_seconds(&deleting("x", Some(30))), 0.0);
        assert_eq!(termination_seconds(&pod("Always")), 0.0);
    }

    #[test]
    fn only_never_and_on_failure_pods_run_to_completion() {
        assert!(!runs_to_completion(&pod("Always")));
        assert!(runs_to_completion(&pod("OnFailure")));
    }

    #[test]
    fn image_ids_name_the_repository_without_tag() {
        assert!(image_id("registry.k8s.io/pause:3.9").starts_with("registry.k8s.io/pause@sha256:"));
        assert!(image_id("localhost:5000/app").starts_with("localhost:5000/app@sha256:"));
    }
}
