//! Workload controllers end to end: `rustkube server` (controller manager
//! and scheduler in-process) plus simulated nodes, driven by real kubectl.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{get_json, Server};

const KUBECTL: &str = "1.33";
const LONG: Duration = Duration::from_secs(90);

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

/// Pods matching a label selector in a namespace.
fn pods(server: &Server, namespace: &str, selector: &str) -> Vec<Value> {
    items(&get_json(
        server,
        &["pods", "-n", namespace, "-l", selector],
    ))
}

fn running_and_bound(pods: &[Value]) -> usize {
    pods.iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| p["spec"]["nodeName"].is_string() && p["status"]["phase"] == "Running")
        .count()
}

fn live(pods: &[Value]) -> Vec<Value> {
    pods.iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .cloned()
        .collect()
}

fn images(pods: &[Value]) -> Vec<String> {
    pods.iter()
        .map(|p| {
            p["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn rollout_status(server: &Server, namespace: &str, what: &str) -> String {
    server.kubectl_ok(
        KUBECTL,
        &["rollout", "status", what, "-n", namespace, "--timeout=90s"],
    )
}

#[test]
fn a_deployment_scales_rolls_out_rolls_back_and_is_garbage_collected() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=3"]);
    server.kubectl_ok(
        KUBECTL,
        &[
            "create",
            "deployment",
            "web",
            "--image=busybox",
            "--replicas=5",
        ],
    );
    server.wait_for("5 running pods", LONG, || {
        running_and_bound(&pods(&server, "default", "app=web")) == 5
    });
    let out = rollout_status(&server, "default", "deployment/web");
    assert!(out.contains("successfully rolled out"), "{out}");

    // Every pod is controlled by the one ReplicaSet, which the deployment controls.
    let rs_list = items(&get_json(&server, &["rs", "-l", "app=web"]));
    assert_eq!(rs_list.len(), 1);
    let rs = &rs_list[0];
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    assert_eq!(rs["metadata"]["ownerReferences"][0]["controller"], true);
    let rs_name = rs["metadata"]["name"].as_str().unwrap().to_string();
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(rs_name, format!("web-{hash}"));
    for pod in pods(&server, "default", "app=web") {
        assert_eq!(
            pod["metadata"]["ownerReferences"][0]["name"],
            rs_name.as_str()
        );
        assert_eq!(
            pod["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
            true
        );
        assert_eq!(
            pod["metadata"]["labels"]["pod-template-hash"],
            hash.as_str()
        );
        assert!(pod["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{rs_name}-")));
    }
    let d = get_json(&server, &["deployment", "web"]);
    assert_eq!(d["status"]["availableReplicas"], 5, "{d}");
    assert_eq!(d["status"]["updatedReplicas"], 5, "{d}");
    let conditions = d["status"]["conditions"].as_array().unwrap();
    let reason = |t: &str| {
        conditions
            .iter()
            .find(|c| c["type"] == t)
            .map(|c| c["reason"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(
        reason("Available").as_deref(),
        Some("MinimumReplicasAvailable")
    );
    assert_eq!(
        reason("Progressing").as_deref(),
        Some("NewReplicaSetAvailable")
    );

    // Scale up.
    server.kubectl_ok(KUBECTL, &["scale", "deployment/web", "--replicas=8"]);
    server.wait_for("8 running pods", LONG, || {
        running_and_bound(&pods(&server, "default", "app=web")) == 8
    });
    rollout_status(&server, "default", "deployment/web");

    // A new image rolls out through a second ReplicaSet.
    server.kubectl_ok(
        KUBECTL,
        &["set", "image", "deployment/web", "busybox=busybox:1.36"],
    );
    let out = rollout_status(&server, "default", "deployment/web");
    assert!(out.contains("successfully rolled out"), "{out}");
    server.wait_for("only new pods", LONG, || {
        let p = live(&pods(&server, "default", "app=web"));
        p.len() == 8 && images(&p).iter().all(|i| i == "busybox:1.36")
    });
    assert_eq!(items(&get_json(&server, &["rs", "-l", "app=web"])).len(), 2);
    let history = server.kubectl_ok(KUBECTL, &["rollout", "history", "deployment/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");

    // Undo goes back to the first template, reusing its ReplicaSet as revision 3.
    server.kubectl_ok(KUBECTL, &["rollout", "undo", "deployment/web"]);
    rollout_status(&server, "default", "deployment/web");
    server.wait_for("pods back on the old image", LONG, || {
        let p = live(&pods(&server, "default", "app=web"));
        p.len() == 8 && images(&p).iter().all(|i| i == "busybox")
    });
    let first = get_json(&server, &["rs", &rs_name]);
    assert_eq!(
        first["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    assert_eq!(first["spec"]["replicas"], 8);

    // Restart makes a new rollout.
    server.kubectl_ok(KUBECTL, &["rollout", "restart", "deployment/web"]);
    rollout_status(&server, "default", "deployment/web");
    assert_eq!(items(&get_json(&server, &["rs", "-l", "app=web"])).len(), 3);

    // Deleting the deployment deletes its ReplicaSets and their pods.
    server.kubectl_ok(KUBECTL, &["delete", "deployment", "web"]);
    server.wait_for("replicasets and pods gone", LONG, || {
        items(&get_json(&server, &["rs", "-l", "app=web"])).is_empty()
            && pods(&server, "default", "app=web").is_empty()
    });
}

#[test]
fn foreground_and_orphan_deletion_follow_owner_references() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=2"]);
    for name in ["fg", "orphaned"] {
        server.kubectl_ok(
            KUBECTL,
            &[
                "create",
                "deployment",
                name,
                "--image=busybox",
                "--replicas=2",
            ],
        );
    }
    for name in ["fg", "orphaned"] {
        rollout_status(&server, "default", &format!("deployment/{name}"));
    }

    // Foreground: the deployment stays (with the finalizer) until its
    // ReplicaSet and pods are gone, then goes.
    server.kubectl_ok(
        KUBECTL,
        &[
            "delete",
            "deployment",
            "fg",
            "--cascade=foreground",
            "--wait=false",
        ],
    );
    server.wait_for("foreground deletion to finish", LONG, || {
        !server
            .kubectl(KUBECTL, &["get", "deployment", "fg"])
            .status
            .success()
    });
    assert!(items(&get_json(&server, &["rs", "-l", "app=fg"])).is_empty());
    server.wait_for("fg pods gone", LONG, || {
        pods(&server, "default", "app=fg").is_empty()
    });

    // Orphan: the ReplicaSet and pods stay, without the owner reference.
    server.kubectl_ok(
        KUBECTL,
        &["delete", "deployment", "orphaned", "--cascade=orphan"],
    );
    server.wait_for("the orphaned ReplicaSet to lose its owner", LONG, || {
        let rs = items(&get_json(&server, &["rs", "-l", "app=orphaned"]));
        rs.len() == 1 && rs[0]["metadata"]["ownerReferences"].is_null()
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(live(&pods(&server, "default", "app=orphaned")).len(), 2);
}

#[test]
fn a_replicaset_replaces_deleted_pods_and_adopts_matching_orphans() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=1"]);
    let rs = r#"{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"front"},
      "spec":{"replicas":3,"selector":{"matchLabels":{"tier":"front"}},
      "template":{"metadata":{"labels":{"tier":"front"}},
      "spec":{"containers":[{"name":"c","image":"busybox"}]}}}}"#;
    let (code, body) =
        support::post_json(&server, "/apis/apps/v1/namespaces/default/replicasets", rs);
    assert_eq!(code, 201, "{body}");
    server.wait_for("3 ready replicas", LONG, || {
        get_json(&server, &["rs", "front"])["status"]["readyReplicas"] == 3
    });
    let victim = pods(&server, "default", "tier=front")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    server.kubectl_ok(KUBECTL, &["delete", "pod", &victim, "--wait=false"]);
    server.wait_for("a replacement pod", LONG, || {
        let p = live(&pods(&server, "default", "tier=front"));
        p.len() == 3 && p.iter().all(|p| p["metadata"]["name"] != victim.as_str())
    });

    // A bare pod with matching labels is adopted, and the surplus removed.
    let orphan = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"stray","labels":{"tier":"front"}},
      "spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
    let (code, body) = support::post_json(&server, "/api/v1/namespaces/default/pods", orphan);
    assert_eq!(code, 201, "{body}");
    server.wait_for("3 pods again", LONG, || {
        live(&pods(&server, "default", "tier=front")).len() == 3
    });
    let events = server.kubectl_ok(
        KUBECTL,
        &[
            "get",
            "events",
            "--field-selector=involvedObject.name=front",
        ],
    );
    assert!(events.contains("SuccessfulCreate"), "{events}");
    assert!(events.contains("SuccessfulDelete"), "{events}");
}

#[test]
fn deleting_a_namespace_deletes_its_content_then_the_namespace() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=1"]);
    server.kubectl_ok(KUBECTL, &["create", "namespace", "team"]);
    server.wait_for("the default ServiceAccount and root CA", LONG, || {
        server
            .kubectl(KUBECTL, &["get", "serviceaccount", "default", "-n", "team"])
            .status
            .success()
            && server
                .kubectl(
                    KUBECTL,
                    &["get", "configmap", "kube-root-ca.crt", "-n", "team"],
                )
                .status
                .success()
    });
    let cm = get_json(&server, &["configmap", "kube-root-ca.crt", "-n", "team"]);
    assert!(cm["data"]["ca.crt"]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    // A tampered root CA is repaired; a deleted one comes back.
    server.kubectl_ok(
        KUBECTL,
        &[
            "patch",
            "configmap",
            "kube-root-ca.crt",
            "-n",
            "team",
            "-p",
            r#"{"data":{"ca.crt":"x"}}"#,
        ],
    );
    server.wait_for("the root CA repaired", LONG, || {
        get_json(&server, &["configmap", "kube-root-ca.crt", "-n", "team"])["data"]["ca.crt"]
            .as_str()
            .is_some_and(|c| c.contains("BEGIN CERTIFICATE"))
    });

    server.kubectl_ok(
        KUBECTL,
        &[
            "create",
            "deployment",
            "app",
            "--image=busybox",
            "--replicas=2",
            "-n",
            "team",
        ],
    );
    server.kubectl_ok(
        KUBECTL,
        &[
            "create",
            "configmap",
            "settings",
            "--from-literal=a=b",
            "-n",
            "team",
        ],
    );
    rollout_status(&server, "team", "deployment/app");

    server.kubectl_ok(KUBECTL, &["delete", "namespace", "team", "--wait=false"]);
    server.wait_for("the namespace to go", LONG, || {
        !server
            .kubectl(KUBECTL, &["get", "namespace", "team"])
            .status
            .success()
    });
    // Everything in it went first.
    let (code, body) = server.curl_admin(&["/api/v1/namespaces/team/configmaps"]);
    assert!(code == 200 || code == 404, "{code} {body}");
    assert!(support::item_names(&body).is_empty(), "{body}");
    let (_, body) = server.curl_admin(&["/api/v1/namespaces/team/pods"]);
    assert!(support::item_names(&body).is_empty(), "{body}");
}

/// Pods whose controller is the named owner.
fn pods_of(server: &Server, owner: &str) -> Vec<Value> {
    items(&get_json(server, &["pods"]))
        .into_iter()
        .filter(|p| p["metadata"]["ownerReferences"][0]["name"] == owner)
        .collect()
}

fn condition_true(object: &Value, type_: &str) -> bool {
    object["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    })
}

#[test]
fn jobs_run_to_completion_and_cronjobs_instantiate_jobs() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=2", "--job-run-seconds=1"]);

    // NonIndexed: 4 completions, 2 at a time.
    let job = r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"crunch"},
      "spec":{"completions":4,"parallelism":2,
      "template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}}"#;
    let (code, body) = support::post_json(&server, "/apis/batch/v1/namespaces/default/jobs", job);
    assert_eq!(code, 201, "{body}");
    server.kubectl_ok(
        KUBECTL,
        &[
            "wait",
            "--for=condition=complete",
            "job/crunch",
            "--timeout=90s",
        ],
    );
    let job = get_json(&server, &["job", "crunch"]);
    assert_eq!(job["status"]["succeeded"], 4, "{job}");
    assert!(condition_true(&job, "SuccessCriteriaMet"), "{job}");
    assert!(job["status"]["completionTime"].is_string(), "{job}");
    let job_pods = pods_of(&server, "crunch");
    assert_eq!(job_pods.len(), 4);
    for pod in &job_pods {
        assert_eq!(pod["status"]["phase"], "Succeeded");
        // The tracking finalizer is released once the pod is counted.
        assert!(pod["metadata"]["finalizers"].is_null(), "{pod}");
    }

    // Indexed: each index gets its own pod.
    let indexed = r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"shards"},
      "spec":{"completions":3,"parallelism":3,"completionMode":"Indexed",
      "template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}}"#;
    let (code, body) =
        support::post_json(&server, "/apis/batch/v1/namespaces/default/jobs", indexed);
    assert_eq!(code, 201, "{body}");
    server.kubectl_ok(
        KUBECTL,
        &[
            "wait",
            "--for=condition=complete",
            "job/shards",
            "--timeout=90s",
        ],
    );
    let job = get_json(&server, &["job", "shards"]);
    assert_eq!(job["status"]["completedIndexes"], "0-2", "{job}");
    let mut indexes: Vec<String> = pods_of(&server, "shards")
        .iter()
        .map(|p| {
            p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2"]);

    // A CronJob instantiated by hand runs like any job it owns.
    server.kubectl_ok(
        KUBECTL,
        &[
            "create",
            "cronjob",
            "nightly",
            "--image=busybox",
            "--schedule=0 3 * * *",
        ],
    );
    server.kubectl_ok(
        KUBECTL,
        &["create", "job", "manual", "--from=cronjob/nightly"],
    );
    server.kubectl_ok(
        KUBECTL,
        &[
            "wait",
            "--for=condition=complete",
            "job/manual",
            "--timeout=90s",
        ],
    );
    let manual = get_json(&server, &["job", "manual"]);
    assert_eq!(manual["metadata"]["ownerReferences"][0]["kind"], "CronJob");

    // ttlSecondsAfterFinished removes a finished job.
    let short = r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"brief"},
      "spec":{"ttlSecondsAfterFinished":1,
      "template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}}"#;
    let (code, body) = support::post_json(&server, "/apis/batch/v1/namespaces/default/jobs", short);
    assert_eq!(code, 201, "{body}");
    server.wait_for("the finished job to expire", LONG, || {
        !server
            .kubectl(KUBECTL, &["get", "job", "brief"])
            .status
            .success()
    });
}

#[test]
fn a_cronjob_creates_a_job_on_schedule() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=1", "--job-run-seconds=1"]);
    server.kubectl_ok(
        KUBECTL,
        &[
            "create",
            "cronjob",
            "tick",
            "--image=busybox",
            "--schedule=*/1 * * * *",
        ],
    );
    let mut job_name = String::new();
    server.wait_for("a scheduled job", Duration::from_secs(100), || {
        let jobs = items(&get_json(&server, &["jobs"]));
        if let Some(job) = jobs.first() {
            job_name = job["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            true
        } else {
            false
        }
    });
    // Named after the scheduled minute, which the annotation records.
    let minutes: i64 = job_name.trim_start_matches("tick-").parse().unwrap();
    let job = get_json(&server, &["job", &job_name]);
    let stamp = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(stamp.ends_with(":00Z"), "{stamp}");
    server.kubectl_ok(
        KUBECTL,
        &[
            "wait",
            "--for=condition=complete",
            &format!("job/{job_name}"),
            "--timeout=90s",
        ],
    );
    server.wait_for("lastSuccessfulTime", LONG, || {
        get_json(&server, &["cronjob", "tick"])["status"]["lastSuccessfulTime"].is_string()
    });
    let cj = get_json(&server, &["cronjob", "tick"]);
    let last = cj["status"]["lastScheduleTime"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(minutes > 0 && last.ends_with(":00Z"), "{cj}");
}

#[test]
fn a_daemonset_runs_one_pod_per_node_including_nodes_added_later() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=2"]);
    server.wait_for("two nodes", LONG, || {
        items(&get_json(&server, &["nodes"])).len() == 2
    });
    let ds = r#"{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"agent"},
      "spec":{"selector":{"matchLabels":{"app":"agent"}},
      "template":{"metadata":{"labels":{"app":"agent"}},
      "spec":{"containers":[{"name":"agent","image":"busybox"}]}}}}"#;
    let (code, body) =
        support::post_json(&server, "/apis/apps/v1/namespaces/default/daemonsets", ds);
    assert_eq!(code, 201, "{body}");
    let out = rollout_status(&server, "default", "daemonset/agent");
    assert!(out.contains("successfully rolled out"), "{out}");
    let nodes_of = |server: &Server| {
        let mut nodes: Vec<String> = live(&pods(server, "default", "app=agent"))
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .map(|p| {
                p["spec"]["nodeName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        nodes.sort();
        nodes
    };
    assert_eq!(nodes_of(&server), ["sim-node-0", "sim-node-1"]);
    let pod = &pods(&server, "default", "app=agent")[0];
    let term = &pod["spec"]["affinity"]["nodeAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchFields"]
        [0];
    assert_eq!(term["key"], "metadata.name", "{pod}");
    let tolerations = pod["spec"]["tolerations"].to_string();
    assert!(
        tolerations.contains("node.kubernetes.io/unschedulable"),
        "{tolerations}"
    );

    // A node joining later gets its pod.
    let _more = server.sim_nodes(&["--count=1", "--start-index=2"]);
    server.wait_for("a pod on the new node", LONG, || {
        nodes_of(&server) == ["sim-node-0", "sim-node-1", "sim-node-2"]
    });
    let ds = get_json(&server, &["daemonset", "agent"]);
    assert_eq!(ds["status"]["desiredNumberScheduled"], 3, "{ds}");

    // A new template rolls out to every node, recorded as revision 2.
    server.kubectl_ok(
        KUBECTL,
        &["set", "image", "daemonset/agent", "agent=busybox:1.36"],
    );
    rollout_status(&server, "default", "daemonset/agent");
    server.wait_for("every pod on the new image", LONG, || {
        let p = live(&pods(&server, "default", "app=agent"));
        p.len() == 3 && images(&p).iter().all(|i| i == "busybox:1.36")
    });
    let history = server.kubectl_ok(KUBECTL, &["rollout", "history", "daemonset/agent"]);
    assert!(history.contains('2'), "{history}");
    assert_eq!(items(&get_json(&server, &["controllerrevisions"])).len(), 2);
}

#[test]
fn a_statefulset_creates_ordered_pods_with_claims_and_rolls_from_the_top() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=2"]);
    let sts = r#"{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db"},
      "spec":{"replicas":3,"serviceName":"db","selector":{"matchLabels":{"app":"db"}},
      "template":{"metadata":{"labels":{"app":"db"}},
      "spec":{"containers":[{"name":"db","image":"busybox"}]}}}}"#;
    let (code, body) = support::post_json(
        &server,
        "/apis/apps/v1/namespaces/default/statefulsets",
        sts,
    );
    assert_eq!(code, 201, "{body}");
    let out = rollout_status(&server, "default", "statefulset/db");
    assert!(
        out.contains("complete") || out.contains("rolled out"),
        "{out}"
    );
    let mut names: Vec<String> = live(&pods(&server, "default", "app=db"))
        .iter()
        .map(|p| {
            p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["db-0", "db-1", "db-2"]);
    let db1 = get_json(&server, &["pod", "db-1"]);
    assert_eq!(db1["spec"]["hostname"], "db-1");
    assert_eq!(db1["spec"]["subdomain"], "db");
    assert_eq!(
        db1["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
        "1"
    );
    // OrderedReady: each pod was created after the previous one was ready.
    let created = |n: &str| {
        get_json(&server, &["pod", n])["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(created("db-0") <= created("db-1") && created("db-1") <= created("db-2"));

    // A new image replaces every pod, highest ordinal first.
    server.kubectl_ok(
        KUBECTL,
        &["set", "image", "statefulset/db", "db=busybox:1.36"],
    );
    rollout_status(&server, "default", "statefulset/db");
    server.wait_for("every pod on the new image", LONG, || {
        let p = live(&pods(&server, "default", "app=db"));
        p.len() == 3 && images(&p).iter().all(|i| i == "busybox:1.36")
    });
    let s = get_json(&server, &["statefulset", "db"]);
    assert_eq!(
        s["status"]["currentRevision"], s["status"]["updateRevision"],
        "{s}"
    );

    // Scale down removes the highest ordinals.
    server.kubectl_ok(KUBECTL, &["scale", "statefulset/db", "--replicas=1"]);
    server.wait_for("only db-0 left", LONG, || {
        let p = pods(&server, "default", "app=db");
        p.len() == 1 && p[0]["metadata"]["name"] == "db-0"
    });

    // Claims come from volumeClaimTemplates, one per pod.
    let with_claims = r#"{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"store"},
      "spec":{"replicas":2,"serviceName":"store","podManagementPolicy":"Parallel",
      "selector":{"matchLabels":{"app":"store"}},
      "template":{"metadata":{"labels":{"app":"store"}},
      "spec":{"containers":[{"name":"s","image":"busybox"}]}},
      "volumeClaimTemplates":[{"metadata":{"name":"data"},
      "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}]}}"#;
    let (code, body) = support::post_json(
        &server,
        "/apis/apps/v1/namespaces/default/statefulsets",
        with_claims,
    );
    assert_eq!(code, 201, "{body}");
    server.wait_for("claims and pods", LONG, || {
        let claims = items(&get_json(&server, &["pvc"]));
        let mut names: Vec<String> = claims
            .iter()
            .map(|c| {
                c["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        names.sort();
        names == ["data-store-0", "data-store-1"]
            && pods(&server, "default", "app=store").len() == 2
    });
    let pod = get_json(&server, &["pod", "store-0"]);
    let volumes = pod["spec"]["volumes"].to_string();
    assert!(volumes.contains("data-store-0"), "{volumes}");
}

#[test]
fn recreate_pause_and_the_progress_deadline_behave_as_upstream() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=2"]);
    let progressing = |name: &str| {
        let d = get_json(&server, &["deployment", name]);
        d["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Progressing").cloned())
            .map(|c| c["reason"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };

    // Recreate: the old ReplicaSet is scaled to zero before the new one grows.
    server.kubectl_ok(
        KUBECTL,
        &[
            "create",
            "deployment",
            "rc",
            "--image=busybox",
            "--replicas=3",
        ],
    );
    server.kubectl_ok(
        KUBECTL,
        &[
            "patch",
            "deployment",
            "rc",
            "-p",
            r#"{"spec":{"strategy":{"type":"Recreate","rollingUpdate":null}}}"#,
        ],
    );
    rollout_status(&server, "default", "deployment/rc");
    server.kubectl_ok(
        KUBECTL,
        &["set", "image", "deployment/rc", "busybox=busybox:2"],
    );
    rollout_status(&server, "default", "deployment/rc");
    let events = server.kubectl_ok(
        KUBECTL,
        &[
            "get",
            "events",
            "--field-selector=involvedObject.name=rc",
            "--sort-by=.firstTimestamp",
        ],
    );
    let down = events.find("Scaled down").expect("a scale down event");
    let second_up = events.rfind("Scaled up").expect("a scale up event");
    assert!(down < second_up, "{events}");

    // Paused: template changes wait for resume.
    server.kubectl_ok(KUBECTL, &["rollout", "pause", "deployment/rc"]);
    server.kubectl_ok(
        KUBECTL,
        &["set", "image", "deployment/rc", "busybox=busybox:3"],
    );
    server.wait_for("the paused condition", LONG, || {
        progressing("rc") == "DeploymentPaused"
    });
    assert_eq!(items(&get_json(&server, &["rs", "-l", "app=rc"])).len(), 2);
    server.kubectl_ok(KUBECTL, &["rollout", "resume", "deployment/rc"]);
    rollout_status(&server, "default", "deployment/rc");
    assert_eq!(items(&get_json(&server, &["rs", "-l", "app=rc"])).len(), 3);
    assert_eq!(progressing("rc"), "NewReplicaSetAvailable");

    // A rollout that cannot progress exceeds its deadline, and rollout
    // status says so.
    server.kubectl_ok(
        KUBECTL,
        &[
            "create",
            "deployment",
            "stuck",
            "--image=busybox",
            "--replicas=2",
        ],
    );
    rollout_status(&server, "default", "deployment/stuck");
    server.kubectl_ok(
        KUBECTL,
        &["patch", "deployment", "stuck", "-p",
          r#"{"spec":{"progressDeadlineSeconds":3,"template":{"spec":{"nodeSelector":{"nowhere":"x"}}}}}"#],
    );
    server.wait_for("the deadline to pass", LONG, || {
        progressing("stuck") == "ProgressDeadlineExceeded"
    });
    let out = server.kubectl(
        KUBECTL,
        &["rollout", "status", "deployment/stuck", "--timeout=20s"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exceeded its progress deadline"),
        "{stderr}"
    );
}

#[test]
fn failing_jobs_stop_at_the_backoff_limit_or_the_active_deadline() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=1", "--job-run-seconds=1"]);
    let failing = |name: &str, extra: &str| {
        format!(
            r#"{{"apiVersion":"batch/v1","kind":"Job","metadata":{{"name":"{name}"}},
              "spec":{{{extra}
              "template":{{"metadata":{{"annotations":{{"sim.rustkube.io/exit-code":"1"}}}},
              "spec":{{"restartPolicy":"Never","containers":[{{"name":"c","image":"busybox"}}]}}}}}}}}"#
        )
    };
    let reason_of = |name: &str, type_: &str| {
        let job = get_json(&server, &["job", name]);
        job["status"]["conditions"]
            .as_array()
            .and_then(|c| {
                c.iter()
                    .find(|c| c["type"] == type_ && c["status"] == "True")
                    .cloned()
            })
            .map(|c| c["reason"].as_str().unwrap_or_default().to_string())
    };

    let (code, body) = support::post_json(
        &server,
        "/apis/batch/v1/namespaces/default/jobs",
        &failing("flaky", r#""backoffLimit":1,"#),
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = support::post_json(
        &server,
        "/apis/batch/v1/namespaces/default/jobs",
        &failing("slow", r#""backoffLimit":100,"activeDeadlineSeconds":4,"#),
    );
    assert_eq!(code, 201, "{body}");

    server.wait_for("the deadline failure", LONG, || {
        reason_of("slow", "Failed").as_deref() == Some("DeadlineExceeded")
    });
    assert_eq!(
        reason_of("slow", "FailureTarget").as_deref(),
        Some("DeadlineExceeded")
    );

    // Two failures (the second after the 10 s back-off) exceed backoffLimit 1.
    server.wait_for("the backoff failure", LONG, || {
        reason_of("flaky", "Failed").as_deref() == Some("BackoffLimitExceeded")
    });
    let job = get_json(&server, &["job", "flaky"]);
    assert_eq!(job["status"]["failed"], 2, "{job}");
    assert!(reason_of("flaky", "Complete").is_none());
    assert!(pods_of(&server, "flaky")
        .iter()
        .all(|p| p["metadata"]["finalizers"].is_null()));
}

#[test]
fn a_replication_controller_keeps_its_replicas_like_a_replicaset() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=1"]);
    let rc = r#"{"apiVersion":"v1","kind":"ReplicationController","metadata":{"name":"legacy"},
      "spec":{"replicas":2,"selector":{"app":"legacy"},
      "template":{"metadata":{"labels":{"app":"legacy"}},
      "spec":{"containers":[{"name":"c","image":"busybox"}]}}}}"#;
    let (code, body) = support::post_json(
        &server,
        "/api/v1/namespaces/default/replicationcontrollers",
        rc,
    );
    assert_eq!(code, 201, "{body}");
    server.wait_for("2 ready replicas", LONG, || {
        get_json(&server, &["rc", "legacy"])["status"]["readyReplicas"] == 2
    });
    server.kubectl_ok(KUBECTL, &["scale", "rc/legacy", "--replicas=1"]);
    server.wait_for("1 pod", LONG, || {
        live(&pods(&server, "default", "app=legacy")).len() == 1
    });
    let rc = get_json(&server, &["rc", "legacy"]);
    assert_eq!(
        rc["status"]["observedGeneration"], rc["metadata"]["generation"],
        "{rc}"
    );
    let pod = &live(&pods(&server, "default", "app=legacy"))[0];
    assert_eq!(
        pod["metadata"]["ownerReferences"][0]["kind"],
        "ReplicationController"
    );
}
