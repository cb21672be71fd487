//! When a Job replaces a deleted pod, end to end: `podReplacementPolicy`
//! (`TerminatingOrFailed` by default, `Failed` on request), the
//! `status.terminating` count, and terminal conditions that wait for the
//! last pod to terminate. Simulated nodes kill a deleted pod's containers
//! after the pod's `sim.rustkube.io/termination-seconds`, reporting them
//! exited 137 (`Error`) and the pod Failed, as a kubelet does.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};
use support::{get_json, Server};

const LONG: Duration = Duration::from_secs(120);
/// A finalizer of the test's own, so a deleted pod stays readable after
/// the node has finished with it (and, whatever the Job controller does
/// with its own finalizer, the pod stays until the node has).
const HOLD: &str = "test.rustkube.io/hold";

fn create_job(server: &Server, name: &str, spec: Value, annotations: Value, finalizers: Value) {
    let mut spec = spec;
    spec["template"] = json!({
        "metadata": {"annotations": annotations, "finalizers": finalizers},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "main", "image": "busybox"}]},
    });
    let job = json!({"apiVersion": "batch/v1", "kind": "Job",
                     "metadata": {"name": name}, "spec": spec});
    let (code, body) = support::post_json(
        server,
        "/apis/batch/v1/namespaces/default/jobs",
        &job.to_string(),
    );
    assert_eq!(code, 201, "{body}");
}

fn pods_of(server: &Server, job: &str) -> Vec<Value> {
    get_json(
        server,
        &["pods", "-l", &format!("batch.kubernetes.io/job-name={job}")],
    )["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn pod(server: &Server, name: &str) -> Option<Value> {
    let out = server.kubectl("1.33", &["get", "pod", name, "-o", "json"]);
    out.status
        .success()
        .then(|| support::json(&String::from_utf8_lossy(&out.stdout)))
}

fn name_of(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn job_status(server: &Server, job: &str) -> Value {
    get_json(server, &["job", job])["status"].clone()
}

fn count(status: &Value, field: &str) -> i64 {
    status[field].as_i64().unwrap_or(0)
}

/// The lastTransitionTime of a Job's True condition of `type_`.
fn condition_time(status: &Value, type_: &str) -> Option<Timestamp> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_ && c["status"] == "True")?["lastTransitionTime"]
        .as_str()?
        .parse()
        .ok()
}

fn timestamp(value: &Value) -> Timestamp {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a timestamp: {value}"))
}

/// Wait for the Job's only pod to run; its name.
fn running_pod(server: &Server, job: &str) -> String {
    server.wait_for(&format!("{job}'s pod running"), LONG, || {
        let pods = pods_of(server, job);
        pods.len() == 1 && pods[0]["status"]["phase"] == "Running"
    });
    name_of(&pods_of(server, job)[0])
}

fn delete_pod(server: &Server, name: &str) {
    server.kubectl_ok("1.33", &["delete", "pod", name, "--wait=false"]);
}

#[test]
fn with_pod_replacement_policy_failed_a_deleted_pod_is_replaced_only_once_it_has_failed() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=1"]);
    create_job(
        &server,
        "patient",
        json!({"podReplacementPolicy": "Failed", "backoffLimit": 6}),
        json!({"sim.rustkube.io/run-seconds": "600",
               "sim.rustkube.io/termination-seconds": "8"}),
        json!([HOLD]),
    );
    let first = running_pod(&server, "patient");
    delete_pod(&server, &first);
    let deleted_at = Instant::now();

    // While its containers stop, the pod is terminating: counted as such,
    // neither active nor failed, and not replaced.
    server.wait_for("the terminating pod to be counted", LONG, || {
        let status = job_status(&server, "patient");
        count(&status, "terminating") == 1 && count(&status, "active") == 0
    });
    while deleted_at.elapsed() < Duration::from_secs(5) {
        let pods = pods_of(&server, "patient");
        assert_eq!(
            pods.iter().map(name_of).collect::<Vec<_>>(),
            std::slice::from_ref(&first),
            "replaced while still terminating"
        );
        assert_eq!(pods[0]["status"]["phase"], "Running", "{}", pods[0]);
        assert_eq!(count(&job_status(&server, "patient"), "failed"), 0);
        std::thread::sleep(Duration::from_millis(300));
    }

    // The node kills the containers: exit 137, reason Error, pod Failed.
    server.wait_for("the deleted pod to fail", LONG, || {
        pod(&server, &first).is_some_and(|p| p["status"]["phase"] == "Failed")
    });
    let failed = pod(&server, &first).unwrap_or_default();
    let terminated = &failed["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 137, "{failed}");
    assert_eq!(terminated["reason"], "Error", "{failed}");
    let failed_at = timestamp(&terminated["finishedAt"]);

    // Only now is it a failure, and replaced (after the 10 s back-off).
    server.wait_for("a replacement", LONG, || {
        pods_of(&server, "patient").len() == 2
    });
    let replacement = pods_of(&server, "patient")
        .into_iter()
        .find(|p| name_of(p) != first)
        .unwrap_or_default();
    assert!(
        timestamp(&replacement["metadata"]["creationTimestamp"]) >= failed_at,
        "replacement {replacement} created before the pod failed at {failed_at}"
    );
    server.wait_for("the failure counted", LONG, || {
        let status = job_status(&server, "patient");
        count(&status, "failed") == 1
            && count(&status, "terminating") == 0
            && count(&status, "active") == 1
    });
}

#[test]
fn by_default_a_deleted_pod_is_a_failure_at_once_and_replaced_while_it_terminates() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=1"]);
    // No podReplacementPolicy: TerminatingOrFailed.
    create_job(
        &server,
        "eager",
        json!({"backoffLimit": 6}),
        json!({"sim.rustkube.io/run-seconds": "600",
               "sim.rustkube.io/termination-seconds": "28"}),
        json!([HOLD]),
    );
    let first = running_pod(&server, "eager");
    delete_pod(&server, &first);
    let deleted_at = Instant::now();

    server.wait_for("the deletion counted as a failure", LONG, || {
        let status = job_status(&server, "eager");
        count(&status, "failed") == 1 && count(&status, "terminating") == 1
    });
    // The replacement comes after the back-off, not after the old pod.
    server.wait_for("a replacement", LONG, || {
        pods_of(&server, "eager").len() == 2
    });
    assert!(
        deleted_at.elapsed() < Duration::from_secs(25),
        "replaced only after {:?}",
        deleted_at.elapsed()
    );
    let old = pod(&server, &first).unwrap_or_default();
    assert!(old["metadata"]["deletionTimestamp"].is_string(), "{old}");
    assert_eq!(old["status"]["phase"], "Running", "{old}");
    let status = job_status(&server, "eager");
    assert_eq!(
        (count(&status, "active"), count(&status, "terminating")),
        (1, 1),
        "{status}"
    );
    // Once the old pod has failed too, it is not counted twice.
    server.wait_for("the old pod failed", LONG, || {
        pod(&server, &first).is_some_and(|p| p["status"]["phase"] == "Failed")
    });
    std::thread::sleep(Duration::from_secs(2));
    let status = job_status(&server, "eager");
    assert_eq!(count(&status, "failed"), 1, "{status}");
    assert_eq!(count(&status, "terminating"), 0, "{status}");
}

#[test]
fn a_failing_job_is_failed_only_once_its_last_pod_has_terminated() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=1"]);
    // Index 0 fails at once; index 1 runs on and takes 6 s to stop.
    create_job(
        &server,
        "doomed",
        json!({"completionMode": "Indexed", "completions": 2, "parallelism": 2,
               "backoffLimit": 0, "podReplacementPolicy": "Failed"}),
        json!({"sim.rustkube.io/exit-code-by-index": "0=1",
               "sim.rustkube.io/run-seconds-by-index": "0=1,1=600",
               "sim.rustkube.io/termination-seconds": "6"}),
        json!([HOLD]),
    );
    server.wait_for("the failure target", LONG, || {
        condition_time(&job_status(&server, "doomed"), "FailureTarget").is_some()
    });
    let status = job_status(&server, "doomed");
    assert!(condition_time(&status, "Failed").is_none(), "{status}");
    server.wait_for("index 1 terminating", LONG, || {
        let status = job_status(&server, "doomed");
        count(&status, "terminating") == 1 || condition_time(&status, "Failed").is_some()
    });
    let status = job_status(&server, "doomed");
    assert!(
        condition_time(&status, "Failed").is_none(),
        "Failed while a pod still terminates: {status}"
    );

    server.wait_for("the Failed condition", LONG, || {
        condition_time(&job_status(&server, "doomed"), "Failed").is_some()
    });
    let status = job_status(&server, "doomed");
    let target = condition_time(&status, "FailureTarget").unwrap_or(Timestamp::UNIX_EPOCH);
    let failed = condition_time(&status, "Failed").unwrap_or(Timestamp::UNIX_EPOCH);
    assert!(
        failed.as_second() - target.as_second() >= 4,
        "Failed did not wait for the terminating pod: {status}"
    );
    // The pod stopped by the failure counts as failed too.
    assert_eq!(count(&status, "failed"), 2, "{status}");
    assert_eq!(count(&status, "terminating"), 0, "{status}");
    assert_eq!(count(&status, "active"), 0, "{status}");
}
