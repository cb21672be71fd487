//! ResourceQuota end to end: the admission plugin refuses what exceeds a
//! quota (in upstream's words) and charges `status.used`; the resource
//! quota controller fills `status.hard` and gives usage back when objects
//! go. The scheduler is off, so pods stay Pending and deletions are
//! immediate.

mod support;

use std::time::Duration;

use support::{json, output_text, Server};

fn server() -> Server {
    Server::start(&["--disable-scheduler"])
}

/// `status` of a quota, as `kubectl get quota -o json` reports it.
fn quota_status(server: &Server, version: &str, ns: &str, name: &str) -> serde_json::Value {
    let out = server.kubectl(version, &["get", "quota", name, "-n", ns, "-o", "json"]);
    if !out.status.success() {
        return serde_json::Value::Null;
    }
    json(&String::from_utf8_lossy(&out.stdout))["status"].clone()
}

fn wait_used(server: &Server, version: &str, ns: &str, name: &str, want: serde_json::Value) {
    let mut last = serde_json::Value::Null;
    server.wait_for(
        &format!("quota {ns}/{name} used to be {want}"),
        Duration::from_secs(30),
        || {
            last = quota_status(server, version, ns, name);
            last["used"] == want
        },
    );
}

/// A namespace whose `kube-root-ca.crt` ConfigMap already exists, so the
/// ConfigMap count is settled before a quota is made.
fn namespace(server: &Server, version: &str, ns: &str) {
    server.kubectl_ok(version, &["create", "namespace", ns]);
    server.wait_for("kube-root-ca.crt", Duration::from_secs(30), || {
        server
            .kubectl(version, &["get", "configmap", "kube-root-ca.crt", "-n", ns])
            .status
            .success()
    });
}

fn run_pod(
    server: &Server,
    version: &str,
    ns: &str,
    name: &str,
    cpu: Option<&str>,
) -> (bool, String) {
    let resources = match cpu {
        Some(cpu) => serde_json::json!({"requests": {"cpu": cpu}}),
        None => serde_json::json!({}),
    };
    let overrides = serde_json::json!({"spec": {"containers": [
        {"name": name, "image": "registry.k8s.io/pause:3.9", "resources": resources}
    ]}});
    let out = server.kubectl(
        version,
        &[
            "run",
            name,
            "-n",
            ns,
            "--image=registry.k8s.io/pause:3.9",
            "--restart=Never",
            &format!("--overrides={overrides}"),
        ],
    );
    (out.status.success(), output_text(&out))
}

fn pods_and_cpu_are_limited_and_freed_on_delete(version: &str) {
    let server = server();
    let ns = "team";
    namespace(&server, version, ns);
    server.kubectl_ok(
        version,
        &[
            "create",
            "quota",
            "q",
            "-n",
            ns,
            "--hard=pods=2,requests.cpu=1,count/configmaps=3",
        ],
    );
    wait_used(
        &server,
        version,
        ns,
        "q",
        serde_json::json!({"count/configmaps": "1", "pods": "0", "requests.cpu": "0"}),
    );
    let status = quota_status(&server, version, ns, "q");
    assert_eq!(
        status["hard"],
        serde_json::json!({"count/configmaps": "3", "pods": "2", "requests.cpu": "1"})
    );

    // Admission charges each pod at once.
    for (name, cpu) in [("a", "200m"), ("b", "300m")] {
        let (ok, text) = run_pod(&server, version, ns, name, Some(cpu));
        assert!(ok, "{text}");
    }
    // Admission charged both; the controller's own recount may briefly
    // lag behind (as upstream's can: it may count before the second pod
    // exists and write that), then settles on the same figures.
    wait_used(
        &server,
        version,
        ns,
        "q",
        serde_json::json!({"count/configmaps": "1", "pods": "2", "requests.cpu": "500m"}),
    );
    let describe = server.kubectl_ok(version, &["describe", "quota", "q", "-n", ns]);
    let row = |resource: &str| {
        describe
            .lines()
            .find(|l| l.split_whitespace().next() == Some(resource))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(row("pods"), ["pods", "2", "2"], "{describe}");
    assert_eq!(
        row("requests.cpu"),
        ["requests.cpu", "500m", "1"],
        "{describe}"
    );
    let table = server.kubectl_ok(version, &["get", "quota", "-n", ns]);
    assert!(
        table.contains("count/configmaps: 1/3, pods: 2/2, requests.cpu: 500m/1"),
        "{table}"
    );

    let (ok, text) = run_pod(&server, version, ns, "c", Some("100m"));
    assert!(!ok);
    assert!(
        text.contains(
            "Error from server (Forbidden): pods \"c\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
        ),
        "{text}"
    );
    let (ok, text) = run_pod(&server, version, ns, "nocpu", None);
    assert!(!ok);
    assert!(
        text.contains(
            "pods \"nocpu\" is forbidden: failed quota: q: must specify requests.cpu for: nocpu"
        ),
        "{text}"
    );

    // The controller gives a deleted pod's usage back.
    server.kubectl_ok(version, &["delete", "pod", "a", "-n", ns, "--wait=false"]);
    wait_used(
        &server,
        version,
        ns,
        "q",
        serde_json::json!({"count/configmaps": "1", "pods": "1", "requests.cpu": "300m"}),
    );
    let (ok, text) = run_pod(&server, version, ns, "c", Some("800m"));
    assert!(!ok, "300m + 800m is over 1 cpu");
    assert!(
        text.contains("exceeded quota: q, requested: requests.cpu=800m, used: requests.cpu=300m, limited: requests.cpu=1"),
        "{text}"
    );
    let (ok, text) = run_pod(&server, version, ns, "c", Some("700m"));
    assert!(ok, "{text}");

    // Object counts: a server-side dry run is checked but not charged.
    server.kubectl_ok(version, &["create", "configmap", "one", "-n", ns]);
    server.kubectl_ok(
        version,
        &["create", "configmap", "dry", "-n", ns, "--dry-run=server"],
    );
    assert_eq!(
        quota_status(&server, version, ns, "q")["used"]["count/configmaps"],
        "2"
    );
    server.kubectl_ok(version, &["create", "configmap", "two", "-n", ns]);
    let out = server.kubectl(version, &["create", "configmap", "three", "-n", ns]);
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains(
            "configmaps \"three\" is forbidden: exceeded quota: q, requested: count/configmaps=1, used: count/configmaps=3, limited: count/configmaps=3"
        ),
        "{}",
        output_text(&out)
    );

    // A pod that finished no longer counts (but still does as an object).
    server.kubectl_ok(
        version,
        &[
            "patch",
            "pod",
            "b",
            "-n",
            ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Succeeded"}}"#,
        ],
    );
    wait_used(
        &server,
        version,
        ns,
        "q",
        serde_json::json!({"count/configmaps": "3", "pods": "1", "requests.cpu": "700m"}),
    );
}

#[test]
fn pods_and_cpu_are_limited_and_freed_on_delete_kubectl_1_33() {
    pods_and_cpu_are_limited_and_freed_on_delete("1.33");
}

#[test]
fn pods_and_cpu_are_limited_and_freed_on_delete_kubectl_1_29() {
    pods_and_cpu_are_limited_and_freed_on_delete("1.29");
}

#[test]
fn count_quota_limits_deployments_and_node_port_quota_limits_services() {
    let server = server();
    let version = "1.33";
    let ns = "apps";
    namespace(&server, version, ns);
    server.kubectl_ok(
        version,
        &[
            "create",
            "quota",
            "objects",
            "-n",
            ns,
            "--hard=count/deployments.apps=1,services.nodeports=2",
        ],
    );
    wait_used(
        &server,
        version,
        ns,
        "objects",
        serde_json::json!({"count/deployments.apps": "0", "services.nodeports": "0"}),
    );
    server.kubectl_ok(
        "1.29",
        &[
            "create",
            "deployment",
            "web",
            "-n",
            ns,
            "--image=registry.k8s.io/pause:3.9",
        ],
    );
    let out = server.kubectl(
        "1.29",
        &[
            "create",
            "deployment",
            "api",
            "-n",
            ns,
            "--image=registry.k8s.io/pause:3.9",
        ],
    );
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains(
            "deployments.apps \"api\" is forbidden: exceeded quota: objects, requested: count/deployments.apps=1, used: count/deployments.apps=1, limited: count/deployments.apps=1"
        ),
        "{}",
        output_text(&out)
    );

    // Node ports: one per port of a NodePort Service, on create and when
    // an update changes the type.
    server.kubectl_ok(
        version,
        &[
            "create",
            "service",
            "nodeport",
            "one",
            "-n",
            ns,
            "--tcp=80:80",
        ],
    );
    server.kubectl_ok(
        version,
        &[
            "create",
            "service",
            "clusterip",
            "two",
            "-n",
            ns,
            "--tcp=80:80,443:443",
        ],
    );
    let out = server.kubectl(
        version,
        &[
            "patch",
            "service",
            "two",
            "-n",
            ns,
            "-p",
            r#"{"spec":{"type":"NodePort"}}"#,
        ],
    );
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains(
            "services \"two\" is forbidden: exceeded quota: objects, requested: services.nodeports=2, used: services.nodeports=1, limited: services.nodeports=2"
        ),
        "{}",
        output_text(&out)
    );
    // Turning the first back into a ClusterIP Service frees its port.
    server.kubectl_ok(
        version,
        &["patch", "service", "one", "-n", ns, "-p", r#"{"spec":{"type":"ClusterIP","ports":[{"port":80,"targetPort":80,"nodePort":null}]}}"#],
    );
    wait_used(
        &server,
        version,
        ns,
        "objects",
        serde_json::json!({"count/deployments.apps": "1", "services.nodeports": "0"}),
    );
    server.kubectl_ok(
        version,
        &[
            "patch",
            "service",
            "two",
            "-n",
            ns,
            "-p",
            r#"{"spec":{"type":"NodePort"}}"#,
        ],
    );
    assert_eq!(
        quota_status(&server, version, ns, "objects")["used"]["services.nodeports"],
        "2"
    );
}

#[test]
fn concurrent_creates_never_exceed_a_quota() {
    let server = server();
    let version = "1.33";
    let ns = "race";
    namespace(&server, version, ns);
    server.kubectl_ok(
        version,
        &["create", "quota", "four", "-n", ns, "--hard=configmaps=4"],
    );
    wait_used(
        &server,
        version,
        ns,
        "four",
        serde_json::json!({"configmaps": "1"}),
    );
    let results: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let server = &server;
                scope.spawn(move || {
                    server
                        .kubectl(
                            version,
                            &["create", "configmap", &format!("cm{i}"), "-n", ns],
                        )
                        .status
                        .success()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|ok| **ok).count(), 3, "{results:?}");
    let out = server.kubectl_ok(version, &["get", "configmaps", "-n", ns, "-o", "name"]);
    assert_eq!(out.lines().count(), 4, "{out}");
    assert_eq!(
        quota_status(&server, version, ns, "four")["used"]["configmaps"],
        "4"
    );
}

#[test]
fn a_best_effort_scoped_quota_counts_only_best_effort_pods() {
    let server = server();
    let version = "1.29";
    let ns = "scoped";
    namespace(&server, version, ns);
    server.kubectl_ok(
        version,
        &[
            "create",
            "quota",
            "be",
            "-n",
            ns,
            "--hard=pods=1",
            "--scopes=BestEffort",
        ],
    );
    wait_used(&server, version, ns, "be", serde_json::json!({"pods": "0"}));
    let (ok, text) = run_pod(&server, version, ns, "first", None);
    assert!(ok, "{text}");
    let (ok, text) = run_pod(&server, version, ns, "second", None);
    assert!(!ok);
    assert!(
        text.contains("pods \"second\" is forbidden: exceeded quota: be, requested: pods=1, used: pods=1, limited: pods=1"),
        "{text}"
    );
    // A pod that asks for cpu is Burstable: out of the quota's scope.
    let (ok, text) = run_pod(&server, version, ns, "burstable", Some("100m"));
    assert!(ok, "{text}");
    assert_eq!(
        quota_status(&server, version, ns, "be")["used"],
        serde_json::json!({"pods": "1"})
    );
}
