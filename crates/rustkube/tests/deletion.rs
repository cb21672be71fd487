//! Deletion semantics the garbage collector and eviction rely on, and the
//! pod admission plugins (Priority, DefaultTolerationSeconds). The server
//! runs without its controller manager here, so what the API server itself
//! does stays visible.

mod support;

use support::{json, Server};

fn server() -> Server {
    Server::start(&["--disable-controller-manager", "--disable-scheduler"])
}

fn delete_with(server: &Server, path: &str, body: &str) -> (u16, serde_json::Value) {
    let (code, out) = server.curl_admin(&[
        "-X",
        "DELETE",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        body,
        path,
    ]);
    (code, json(&out))
}

fn get(server: &Server, path: &str) -> (u16, serde_json::Value) {
    let (code, out) = server.curl_admin(&[path]);
    (code, json(&out))
}

#[test]
fn propagation_policies_set_the_garbage_collector_finalizers() {
    let server = server();
    for name in ["fg", "orphan", "bg"] {
        server.kubectl_ok("1.33", &["create", "configmap", name]);
    }
    let base = "/api/v1/namespaces/default/configmaps";
    let (code, fg) = delete_with(
        &server,
        &format!("{base}/fg"),
        r#"{"propagationPolicy":"Foreground"}"#,
    );
    assert_eq!(code, 200, "{fg}");
    assert_eq!(
        fg["metadata"]["finalizers"],
        serde_json::json!(["foregroundDeletion"])
    );
    assert!(fg["metadata"]["deletionTimestamp"].is_string(), "{fg}");

    // kubectl's --cascade=orphan sends propagationPolicy=Orphan.
    server.kubectl_ok(
        "1.33",
        &[
            "delete",
            "configmap",
            "orphan",
            "--cascade=orphan",
            "--wait=false",
        ],
    );
    let (_, orphan) = get(&server, &format!("{base}/orphan"));
    assert_eq!(
        orphan["metadata"]["finalizers"],
        serde_json::json!(["orphan"])
    );

    // Background (kubectl's default) removes the object at once.
    server.kubectl_ok("1.33", &["delete", "configmap", "bg"]);
    assert_eq!(get(&server, &format!("{base}/bg")).0, 404);

    // Switching an object being deleted to Background drops the finalizer,
    // and with none left it goes.
    let (code, _) = delete_with(
        &server,
        &format!("{base}/fg?propagationPolicy=Background"),
        "",
    );
    assert_eq!(code, 200);
    assert_eq!(get(&server, &format!("{base}/fg")).0, 404);

    let (code, bad) = delete_with(
        &server,
        &format!("{base}/orphan"),
        r#"{"propagationPolicy":"Sideways"}"#,
    );
    assert_eq!(code, 422, "{bad}");
    assert_eq!(bad["details"]["causes"][0]["field"], "propagationPolicy");
    let (code, both) = delete_with(
        &server,
        &format!("{base}/orphan"),
        r#"{"propagationPolicy":"Orphan","orphanDependents":true}"#,
    );
    assert_eq!(code, 422, "{both}");
}

fn running_pod(server: &Server, name: &str, labels: &str) {
    let (code, out) = support::post_json(
        server,
        "/api/v1/namespaces/default/pods",
        &format!(
            r#"{{"metadata":{{"name":"{name}","labels":{labels}}},"spec":{{"nodeName":"n1","containers":[{{"name":"c","image":"busybox"}}]}}}}"#
        ),
    );
    assert_eq!(code, 201, "{out}");
    let mut pod = json(&out);
    pod["status"]["phase"] = "Running".into();
    pod["status"]["conditions"] = serde_json::json!([{"type": "Ready", "status": "True"}]);
    let (code, out) = support::put_json(
        server,
        &format!("/api/v1/namespaces/default/pods/{name}/status"),
        &pod.to_string(),
    );
    assert_eq!(code, 200, "{out}");
}

/// A running pod with a finalizer, deleted with a 30 s grace period;
/// returns its path.
fn terminating_pod_held_by_a_finalizer(server: &Server, name: &str) -> String {
    running_pod(server, name, &format!(r#"{{"app":"{name}"}}"#));
    let path = format!("/api/v1/namespaces/default/pods/{name}");
    let (code, out) = support::patch_json(
        server,
        &path,
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    );
    assert_eq!(code, 200, "{out}");
    let (code, pod) = delete_with(server, &path, r#"{"gracePeriodSeconds":30}"#);
    assert_eq!(code, 200, "{pod}");
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 30, "{pod}");
    path
}

fn remove_finalizers(server: &Server, path: &str) {
    let (code, out) = support::patch_json(
        server,
        path,
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":null}}"#,
    );
    assert_eq!(code, 200, "{out}");
}

#[test]
fn a_grace_zero_delete_ends_the_grace_period_of_a_pod_held_by_a_finalizer() {
    let server = server();
    let path = &terminating_pod_held_by_a_finalizer(&server, "held");

    // The node's final delete (grace 0) ends the grace period while the
    // finalizer holds the pod.
    let (code, pod) = delete_with(&server, path, r#"{"gracePeriodSeconds":0}"#);
    assert_eq!(code, 200, "{pod}");
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 0, "{pod}");
    remove_finalizers(&server, path);
    assert_eq!(get(&server, path).0, 404, "gone with its last finalizer");
}

#[test]
fn a_terminating_pod_is_kept_after_its_last_finalizer_while_its_grace_period_runs() {
    let server = server();
    let path = &terminating_pod_held_by_a_finalizer(&server, "kept");

    // The last finalizer goes; the node has not finished with the pod.
    remove_finalizers(&server, path);
    let (code, pod) = get(&server, path);
    assert_eq!(code, 200, "the pod is still terminating: {pod}");
    assert!(pod["metadata"]["deletionTimestamp"].is_string(), "{pod}");

    // A status update while it terminates keeps it too.
    let mut failed = pod.clone();
    failed["status"]["phase"] = "Failed".into();
    let (code, out) = support::put_json(&server, &format!("{path}/status"), &failed.to_string());
    assert_eq!(code, 200, "{out}");
    assert_eq!(get(&server, path).0, 200);

    // The node's final delete with grace 0 removes it.
    let (code, out) = delete_with(&server, path, r#"{"gracePeriodSeconds":0}"#);
    assert_eq!(code, 200, "{out}");
    assert_eq!(get(&server, path).0, 404);
}

fn evict(server: &Server, name: &str) -> (u16, serde_json::Value) {
    let (code, out) = support::post_json(
        server,
        &format!("/api/v1/namespaces/default/pods/{name}/eviction"),
        &format!(
            r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{name}"}},"deleteOptions":{{"gracePeriodSeconds":0}}}}"#
        ),
    );
    (code, json(&out))
}

#[test]
fn eviction_honours_the_pod_disruption_budget() {
    let server = server();
    running_pod(&server, "a", r#"{"app":"db"}"#);
    running_pod(&server, "b", r#"{"app":"db"}"#);
    let (code, out) = support::post_json(
        &server,
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
        r#"{"metadata":{"name":"db"},"spec":{"minAvailable":1,"selector":{"matchLabels":{"app":"db"}}}}"#,
    );
    assert_eq!(code, 201, "{out}");
    let mut pdb = json(&out);
    // What the disruption controller would report: one disruption allowed.
    pdb["status"] = serde_json::json!({
        "observedGeneration": pdb["metadata"]["generation"],
        "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2,
        "disruptionsAllowed": 1,
    });
    let (code, out) = support::put_json(
        &server,
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets/db/status",
        &pdb.to_string(),
    );
    assert_eq!(code, 200, "{out}");

    let (code, out) = evict(&server, "a");
    assert_eq!(code, 201, "{out}");
    assert_eq!(get(&server, "/api/v1/namespaces/default/pods/a").0, 404);
    let (_, pdb) = get(
        &server,
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets/db",
    );
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0, "{pdb}");
    assert!(pdb["status"]["disruptedPods"]["a"].is_string(), "{pdb}");

    let (code, refused) = evict(&server, "b");
    assert_eq!(code, 429, "{refused}");
    assert_eq!(refused["reason"], "TooManyRequests");
    assert_eq!(
        refused["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(
        refused["details"]["causes"][0]["reason"],
        "DisruptionBudget"
    );
    assert_eq!(get(&server, "/api/v1/namespaces/default/pods/b").0, 200);

    // A pending pod is not protected by the budget.
    let (code, out) = support::post_json(
        &server,
        "/api/v1/namespaces/default/pods",
        r#"{"metadata":{"name":"p","labels":{"app":"db"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#,
    );
    assert_eq!(code, 201, "{out}");
    assert_eq!(evict(&server, "p").0, 201);
}

#[test]
fn pods_get_their_priority_and_default_tolerations_at_admission() {
    let server = server();
    let classes = server.kubectl_ok("1.33", &["get", "priorityclasses", "-o", "name"]);
    assert!(classes.contains("system-node-critical"), "{classes}");
    assert!(classes.contains("system-cluster-critical"), "{classes}");

    let (code, out) = support::post_json(
        &server,
        "/api/v1/namespaces/default/pods",
        r#"{"metadata":{"name":"crit"},"spec":{"priorityClassName":"system-node-critical","containers":[{"name":"c","image":"busybox"}]}}"#,
    );
    assert_eq!(code, 201, "{out}");
    let pod = json(&out);
    assert_eq!(pod["spec"]["priority"], 2_000_001_000);
    assert_eq!(pod["spec"]["preemptionPolicy"], "PreemptLowerPriority");
    let tolerations = pod["spec"]["tolerations"].as_array().unwrap();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        assert!(
            tolerations.iter().any(|t| t["key"] == key
                && t["tolerationSeconds"] == 300
                && t["effect"] == "NoExecute"),
            "{tolerations:?}"
        );
    }

    // ServiceAccount admission: the default account and its token volume.
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    let volume = &pod["spec"]["volumes"][0];
    let volume_name = volume["name"].as_str().unwrap();
    assert!(volume_name.starts_with("kube-api-access-"), "{volume}");
    assert_eq!(
        volume["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
        3607
    );
    assert_eq!(
        volume["projected"]["sources"][1]["configMap"]["name"],
        "kube-root-ca.crt"
    );
    let mount = &pod["spec"]["containers"][0]["volumeMounts"][0];
    assert_eq!(mount["name"], volume_name);
    assert_eq!(
        mount["mountPath"],
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    assert_eq!(mount["readOnly"], true);
    let (code, out) = support::post_json(
        &server,
        "/api/v1/namespaces/default/pods",
        r#"{"metadata":{"name":"ghost"},"spec":{"serviceAccountName":"ghost","containers":[{"name":"c","image":"busybox"}]}}"#,
    );
    assert_eq!(code, 403, "{out}");
    assert!(
        json(&out)["message"]
            .as_str()
            .unwrap()
            .ends_with("serviceaccount \"ghost\" not found"),
        "{out}"
    );
    let (code, out) = support::post_json(
        &server,
        "/api/v1/namespaces/default/pods",
        r#"{"metadata":{"name":"quiet"},"spec":{"automountServiceAccountToken":false,"containers":[{"name":"c","image":"busybox"}]}}"#,
    );
    assert_eq!(code, 201, "{out}");
    assert!(json(&out)["spec"]["volumes"].is_null(), "{out}");

    let (code, out) = support::post_json(
        &server,
        "/api/v1/namespaces/default/pods",
        r#"{"metadata":{"name":"nope"},"spec":{"priorityClassName":"gold","containers":[{"name":"c","image":"busybox"}]}}"#,
    );
    assert_eq!(code, 403, "{out}");
    assert!(
        out.contains("no PriorityClass with name gold was found"),
        "{out}"
    );

    // A global default class applies to pods that name none.
    let (code, out) = support::post_json(
        &server,
        "/apis/scheduling.k8s.io/v1/priorityclasses",
        r#"{"metadata":{"name":"normal"},"value":1000,"globalDefault":true}"#,
    );
    assert_eq!(code, 201, "{out}");
    let (code, out) = support::post_json(
        &server,
        "/api/v1/namespaces/default/pods",
        r#"{"metadata":{"name":"plain"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#,
    );
    assert_eq!(code, 201, "{out}");
    let pod = json(&out);
    assert_eq!(pod["spec"]["priority"], 1000);
    assert_eq!(pod["spec"]["priorityClassName"], "normal");
}

#[test]
fn limit_ranges_fill_in_and_bound_container_resources() {
    let server = server();
    let (code, out) = support::post_json(
        &server,
        "/api/v1/namespaces/default/limitranges",
        r#"{"metadata":{"name":"bounds"},"spec":{"limits":[{"type":"Container","default":{"cpu":"500m"},"defaultRequest":{"cpu":"100m"},"min":{"cpu":"50m"},"max":{"cpu":"1"}}]}}"#,
    );
    assert_eq!(code, 201, "{out}");
    let pod = |name: &str, resources: &str| {
        support::post_json(
            &server,
            "/api/v1/namespaces/default/pods",
            &format!(
                r#"{{"metadata":{{"name":"{name}"}},"spec":{{"containers":[{{"name":"c","image":"busybox","resources":{resources}}}]}}}}"#
            ),
        )
    };
    let (code, out) = pod("plain", "{}");
    assert_eq!(code, 201, "{out}");
    let created = json(&out);
    let resources = &created["spec"]["containers"][0]["resources"];
    assert_eq!(resources["limits"]["cpu"], "500m", "{created}");
    assert_eq!(resources["requests"]["cpu"], "100m", "{created}");
    assert_eq!(
        created["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu limit for container c; cpu request for container c"
    );
    let (code, out) = pod("greedy", r#"{"limits":{"cpu":"2"}}"#);
    assert_eq!(code, 403, "{out}");
    assert!(
        json(&out)["message"]
            .as_str()
            .unwrap()
            .contains("maximum cpu usage per Container is 1, but limit is 2"),
        "{out}"
    );
    let (code, out) = pod("tiny", r#"{"requests":{"cpu":"10m"}}"#);
    assert_eq!(code, 403, "{out}");
    assert!(
        out.contains("minimum cpu usage per Container is 50m, but request is 10m"),
        "{out}"
    );
}
