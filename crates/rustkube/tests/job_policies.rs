//! Job failure and success policies end to end: `podFailurePolicy`,
//! `backoffLimitPerIndex` with `maxFailedIndexes`, and `successPolicy`,
//! against simulated nodes that end pods with the exit codes the pods'
//! `sim.rustkube.io/*` annotations ask for.

mod support;

use std::time::Duration;

use serde_json::{json as j, Value};
use support::{get_json, Server};

const LONG: Duration = Duration::from_secs(120);

fn pods_of(server: &Server, job: &str) -> Vec<Value> {
    get_json(
        server,
        &["pods", "-l", &format!("batch.kubernetes.io/job-name={job}")],
    )["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The reason and message of a Job's True condition of `type_`.
fn condition(job: &Value, type_: &str) -> Option<(String, String)> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_ && c["status"] == "True")
        .map(|c| {
            (
                c["reason"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// Create a Job of busybox pods (container `main`) that never restart.
fn create_job(server: &Server, name: &str, spec: Value, annotations: Value) {
    let mut spec = spec;
    spec["template"] = j!({
        "metadata": {"annotations": annotations},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "main", "image": "busybox"}]},
    });
    let job = j!({"apiVersion": "batch/v1", "kind": "Job",
                  "metadata": {"name": name}, "spec": spec});
    let (code, body) = support::post_json(
        server,
        "/apis/batch/v1/namespaces/default/jobs",
        &job.to_string(),
    );
    assert_eq!(code, 201, "{body}");
}

fn wait_for_condition(server: &Server, job: &str, type_: &str) -> Value {
    server.wait_for(&format!("job {job} {type_}"), LONG, || {
        condition(&get_json(server, &["job", job]), type_).is_some()
    });
    get_json(server, &["job", job])
}

#[test]
fn pod_failure_policy_fails_the_job_ignores_failures_or_gives_up_on_indexes() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=2", "--job-run-seconds=1"]);

    // FailJob: the first exit 42 fails the whole Job despite backoffLimit 6.
    create_job(
        &server,
        "fatal",
        j!({"backoffLimit": 6, "podFailurePolicy": {"rules": [
            {"action": "FailJob",
             "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}}]}}),
        j!({"sim.rustkube.io/exit-code": "42"}),
    );
    // Ignore: failures with exit 3 never count, even against backoffLimit 0.
    create_job(
        &server,
        "tolerant",
        j!({"backoffLimit": 0, "podFailurePolicy": {"rules": [
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]}}),
        j!({"sim.rustkube.io/exit-code": "3"}),
    );
    // Per index: index 1 fails twice (limit 1), index 3 hits FailIndex.
    create_job(
        &server,
        "shards",
        j!({"completionMode": "Indexed", "completions": 4, "parallelism": 4,
            "backoffLimitPerIndex": 1,
            "podFailurePolicy": {"rules": [
                {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [42]}}]}}),
        j!({"sim.rustkube.io/exit-code-by-index": "1=1,3=42"}),
    );
    // maxFailedIndexes 0: one failed index fails the Job while others run.
    create_job(
        &server,
        "strict",
        j!({"completionMode": "Indexed", "completions": 3, "parallelism": 3,
            "backoffLimitPerIndex": 2, "maxFailedIndexes": 0,
            "podFailurePolicy": {"rules": [
                {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [42]}}]}}),
        j!({"sim.rustkube.io/exit-code-by-index": "2=42",
            "sim.rustkube.io/run-seconds-by-index": "0=600,1=600"}),
    );

    let fatal = wait_for_condition(&server, "fatal", "Failed");
    let (reason, message) = condition(&fatal, "Failed").unwrap();
    assert_eq!(reason, "PodFailurePolicy", "{fatal}");
    let pod = pods_of(&server, "fatal")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        message,
        format!(
            "Container main for pod default/{pod} failed with exit code 42 matching FailJob rule at index 0"
        )
    );
    assert_eq!(
        condition(&fatal, "FailureTarget"),
        Some((reason, message)),
        "{fatal}"
    );
    assert_eq!(fatal["status"]["failed"], 1, "{fatal}");

    let strict = wait_for_condition(&server, "strict", "Failed");
    assert_eq!(
        condition(&strict, "Failed"),
        Some((
            "MaxFailedIndexesExceeded".into(),
            "Job has exceeded the specified maximal number of failed indexes".into()
        )),
        "{strict}"
    );
    assert_eq!(strict["status"]["failedIndexes"], "2", "{strict}");
    assert_eq!(
        condition(&strict, "FailureTarget").map(|c| c.0).as_deref(),
        Some("MaxFailedIndexesExceeded")
    );

    let shards = wait_for_condition(&server, "shards", "Failed");
    assert_eq!(
        condition(&shards, "Failed"),
        Some(("FailedIndexes".into(), "Job has failed indexes".into())),
        "{shards}"
    );
    assert_eq!(shards["status"]["failedIndexes"], "1,3", "{shards}");
    assert_eq!(shards["status"]["completedIndexes"], "0,2", "{shards}");
    assert_eq!(shards["status"]["succeeded"], 2, "{shards}");
    assert_eq!(shards["status"]["failed"], 3, "{shards}");
    // Index 1 ran twice; its replacement carried the index's failure count.
    let mut index_1: Vec<String> = pods_of(&server, "shards")
        .iter()
        .filter(|p| p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "1")
        .map(|p| {
            p["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    index_1.sort();
    assert_eq!(index_1, ["0", "1"]);
    // Index 3 (FailIndex) was never retried.
    let index_3 = pods_of(&server, "shards")
        .iter()
        .filter(|p| p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "3")
        .count();
    assert_eq!(index_3, 1);

    // The ignored failures of "tolerant" kept being replaced, never counted.
    server.wait_for("three ignored failures", LONG, || {
        pods_of(&server, "tolerant")
            .iter()
            .filter(|p| p["status"]["phase"] == "Failed")
            .count()
            >= 3
    });
    let tolerant = get_json(&server, &["job", "tolerant"]);
    assert!(condition(&tolerant, "Failed").is_none(), "{tolerant}");
    assert!(
        condition(&tolerant, "FailureTarget").is_none(),
        "{tolerant}"
    );
    assert_eq!(
        tolerant["status"]["failed"].as_i64().unwrap_or(0),
        0,
        "{tolerant}"
    );
}

#[test]
fn a_success_policy_completes_an_indexed_job_before_every_index_succeeds() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=1", "--job-run-seconds=1"]);
    create_job(
        &server,
        "leaders",
        j!({"completionMode": "Indexed", "completions": 3, "parallelism": 3,
            "successPolicy": {"rules": [{"succeededIndexes": "0,2"}]}}),
        j!({"sim.rustkube.io/run-seconds-by-index": "1=600"}),
    );
    let job = wait_for_condition(&server, "leaders", "Complete");
    let expected = Some((
        "SuccessPolicy".to_string(),
        "Matched rules at index 0".to_string(),
    ));
    assert_eq!(condition(&job, "SuccessCriteriaMet"), expected, "{job}");
    assert_eq!(condition(&job, "Complete"), expected, "{job}");
    assert!(job["status"]["completionTime"].is_string(), "{job}");
    let completed = job["status"]["completedIndexes"]
        .as_str()
        .unwrap_or_default();
    assert!(completed.starts_with("0"), "{job}");
    assert!(
        job["status"]["succeeded"].as_i64().unwrap_or(0) >= 2,
        "{job}"
    );
    // The index-1 pod that was still running was stopped.
    server.wait_for("the lingering index-1 pod to go", LONG, || {
        pods_of(&server, "leaders").iter().all(|p| {
            p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] != "1"
                || p["metadata"]["deletionTimestamp"].is_string()
                || p["status"]["phase"] != "Running"
        })
    });
}

/// A pod's start or finish time in seconds (RFC 3339).
fn seconds(stamp: &Value) -> i64 {
    stamp
        .as_str()
        .and_then(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| t.unix_timestamp())
        .unwrap_or_else(|| panic!("not a timestamp: {stamp}"))
}

/// Without a failure policy, each failed pod is replaced only after the
/// back-off (10 s after the first failure, doubling after each one), and
/// the Job fails with `BackoffLimitExceeded` once its failures exceed
/// `backoffLimit`.
#[test]
fn failed_pods_are_replaced_after_a_back_off_until_the_limit() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=1", "--job-run-seconds=1"]);
    create_job(
        &server,
        "flaky",
        j!({"backoffLimit": 1}),
        j!({"sim.rustkube.io/exit-code": "1"}),
    );
    let job = wait_for_condition(&server, "flaky", "Failed");
    assert_eq!(
        condition(&job, "Failed"),
        Some((
            "BackoffLimitExceeded".to_string(),
            "Job has reached the specified backoff limit".to_string()
        )),
        "{job}"
    );
    assert_eq!(job["status"]["failed"], 2, "{job}");
    let mut pods = pods_of(&server, "flaky");
    assert_eq!(pods.len(), 2, "backoffLimit 1 allows one replacement");
    pods.sort_by_key(|p| seconds(&p["metadata"]["creationTimestamp"]));
    let finished =
        seconds(&pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]);
    let replaced = seconds(&pods[1]["metadata"]["creationTimestamp"]);
    // Timestamps have whole seconds: 10 s of back-off shows as >= 9.
    assert!(
        replaced - finished >= 9,
        "replacement {replaced} only {} s after the failure {finished}",
        replaced - finished
    );
}
