//! Nodes end to end: simulated nodes (`rustkube sim-nodes`) against a real
//! `rustkube server` running the controller manager and scheduler, checked
//! with real kubectl: registration and readiness, node leases, pod CIDRs,
//! the pod lifecycle the simulated kubelet drives, endpoints and endpoint
//! slices, and what happens when a node stops (NotReady, taints, eviction,
//! pods recreated elsewhere).

mod support;

use std::time::Duration;

use serde_json::{json as j, Value};
use support::{get_json, json, post_json, Server};

const KUBECTL: &str = "1.33";
const LONG: Duration = Duration::from_secs(90);

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn condition<'a>(object: &'a Value, type_: &str) -> &'a Value {
    object["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

fn ready_nodes(server: &Server) -> Vec<String> {
    items(&get_json(server, &["nodes"]))
        .iter()
        .filter(|n| condition(n, "Ready")["status"] == "True")
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

fn live_pods(server: &Server, selector: &str) -> Vec<Value> {
    items(&get_json(server, &["pods", "-l", selector]))
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn running(pods: &[Value]) -> Vec<Value> {
    pods.iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .cloned()
        .collect()
}

fn create(server: &Server, path: &str, body: Value) {
    let (code, response) = post_json(server, path, &body.to_string());
    assert_eq!(code, 201, "POST {path}: {response}");
}

fn deployment(name: &str, replicas: u32, tolerations: Value) -> Value {
    j!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "tolerations": tolerations,
                    "containers": [{"name": "web", "image": "nginx:1.27",
                        "ports": [{"name": "http", "containerPort": 8080}]}],
                },
            },
        },
    })
}

fn service(name: &str) -> Value {
    j!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name},
                 "ports": [{"name": "web", "port": 80, "targetPort": "http"}]},
    })
}

/// The ready addresses of an Endpoints object with their ports.
fn endpoint_ips(server: &Server, name: &str) -> (Vec<String>, Vec<i64>) {
    let endpoints = get_json(server, &["endpoints", name]);
    let mut ips = Vec::new();
    let mut ports = Vec::new();
    for subset in endpoints["subsets"].as_array().cloned().unwrap_or_default() {
        for address in subset["addresses"].as_array().cloned().unwrap_or_default() {
            ips.push(address["ip"].as_str().unwrap_or_default().to_string());
        }
        for port in subset["ports"].as_array().cloned().unwrap_or_default() {
            ports.push(port["port"].as_i64().unwrap_or_default());
        }
    }
    ips.sort();
    (ips, ports)
}

fn pod_ips(pods: &[Value]) -> Vec<String> {
    let mut ips: Vec<String> = pods
        .iter()
        .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_string))
        .collect();
    ips.sort();
    ips
}

#[test]
fn sim_nodes_register_ready_get_pod_cidrs_and_run_pods_behind_endpoints() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=3", "--zones=a,b"]);
    server.wait_for("3 ready sim nodes", LONG, || {
        ready_nodes(&server)
            .iter()
            .filter(|n| n.starts_with("sim-node-"))
            .count()
            == 3
    });
    let table = server.kubectl_ok(KUBECTL, &["get", "nodes"]);
    assert!(
        table.contains("sim-node-0") && table.contains("Ready"),
        "{table}"
    );
    assert!(table.contains("v1.33.0"), "{table}");

    // Node IPAM: distinct /24s out of the cluster CIDR.
    server.wait_for("pod CIDRs on every node", LONG, || {
        items(&get_json(&server, &["nodes"]))
            .iter()
            .filter(|n| {
                n["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("sim-node-")
            })
            .all(|n| n["spec"]["podCIDR"].is_string())
    });
    let nodes = items(&get_json(&server, &["nodes"]));
    let mut cidrs: Vec<String> = nodes
        .iter()
        .filter(|n| {
            n["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .starts_with("sim-node-")
        })
        .map(|n| {
            assert_eq!(n["spec"]["podCIDRs"][0], n["spec"]["podCIDR"], "{n}");
            n["spec"]["podCIDR"].as_str().unwrap().to_string()
        })
        .collect();
    cidrs.sort();
    cidrs.dedup();
    assert_eq!(cidrs.len(), 3, "{cidrs:?}");
    assert!(
        cidrs
            .iter()
            .all(|c| c.starts_with("10.42.") && c.ends_with("/24")),
        "{cidrs:?}"
    );
    let zone = &nodes
        .iter()
        .find(|n| n["metadata"]["name"] == "sim-node-1")
        .unwrap()["metadata"]["labels"]["topology.kubernetes.io/zone"];
    assert_eq!(zone, "b");

    // Node leases are held and renewed by their nodes.
    let lease = get_json(&server, &["lease", "-n", "kube-node-lease", "sim-node-0"]);
    assert_eq!(lease["spec"]["holderIdentity"], "sim-node-0");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
    assert!(lease["spec"]["renewTime"].is_string());
    // Every node made its lease when it registered, as a kubelet does when
    // it starts, not at its first turn in the 10 s renewal round.
    for name in ["sim-node-1", "sim-node-2"] {
        let lease = get_json(&server, &["lease", "-n", "kube-node-lease", name]);
        assert_eq!(lease["spec"]["holderIdentity"], name, "{lease}");
        assert_eq!(
            lease["metadata"]["ownerReferences"][0]["kind"], "Node",
            "{lease}"
        );
    }

    // Pods of a Deployment run, with IPs from their node's pod CIDR.
    create(
        &server,
        "/apis/apps/v1/namespaces/default/deployments",
        deployment("web", 3, j!([])),
    );
    create(
        &server,
        "/api/v1/namespaces/default/services",
        service("web"),
    );
    server.wait_for("3 running web pods", LONG, || {
        running(&live_pods(&server, "app=web")).len() == 3
    });
    let pods = running(&live_pods(&server, "app=web"));
    for pod in &pods {
        let node = pod["spec"]["nodeName"].as_str().unwrap();
        let node = nodes
            .iter()
            .find(|n| n["metadata"]["name"] == node)
            .unwrap();
        let prefix = node["spec"]["podCIDR"]
            .as_str()
            .unwrap()
            .trim_end_matches("0/24");
        assert!(
            pod["status"]["podIP"].as_str().unwrap().starts_with(prefix),
            "{pod}"
        );
        assert_eq!(condition(pod, "Ready")["status"], "True", "{pod}");
        assert_eq!(
            pod["status"]["containerStatuses"][0]["ready"], true,
            "{pod}"
        );
        assert!(pod["status"]["containerStatuses"][0]["state"]["running"].is_object());
        assert!(pod["status"]["hostIP"].is_string());
    }

    // Endpoints and EndpointSlices list the running pods on the named port.
    server.wait_for("endpoints of web", LONG, || {
        endpoint_ips(&server, "web").0 == pod_ips(&pods)
    });
    assert_eq!(endpoint_ips(&server, "web").1, vec![8080]);
    let slices = items(&get_json(
        &server,
        &["endpointslices", "-l", "kubernetes.io/service-name=web"],
    ));
    assert_eq!(slices.len(), 1, "{slices:?}");
    let slice = &slices[0];
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(slice["ports"][0]["port"], 8080);
    assert_eq!(slice["endpoints"].as_array().unwrap().len(), 3, "{slice}");
    assert_eq!(
        slice["endpoints"][0]["conditions"]["ready"], true,
        "{slice}"
    );
    assert!(slice["endpoints"][0]["zone"].is_string(), "{slice}");
    // The API server's own Service is left alone.
    let kubernetes = get_json(&server, &["endpoints", "kubernetes"]);
    assert!(
        kubernetes["subsets"][0]["addresses"].is_array(),
        "{kubernetes}"
    );

    // A PodDisruptionBudget over them allows one disruption.
    create(
        &server,
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
        j!({"metadata": {"name": "web"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}),
    );
    server.wait_for("PDB status", LONG, || {
        get_json(&server, &["pdb", "web"])["status"]["observedGeneration"] == 1
    });
    let pdb = get_json(&server, &["pdb", "web"]);
    assert_eq!(pdb["status"]["currentHealthy"], 3, "{pdb}");
    assert_eq!(pdb["status"]["desiredHealthy"], 2, "{pdb}");
    assert_eq!(pdb["status"]["expectedPods"], 3, "{pdb}");
    assert_eq!(pdb["status"]["disruptionsAllowed"], 1, "{pdb}");
    let allowed = condition(&pdb, "DisruptionAllowed");
    assert_eq!(
        (allowed["status"].as_str(), allowed["reason"].as_str()),
        (Some("True"), Some("SufficientPods")),
        "{pdb}"
    );

    // Run-to-completion pods succeed, or fail with the exit-code annotation.
    for (name, exit_code) in [("job-ok", "0"), ("job-fail", "1")] {
        create(
            &server,
            "/api/v1/namespaces/default/pods",
            j!({"metadata": {"name": name, "annotations": {
                    "sim.rustkube.io/run-seconds": "0.5", "sim.rustkube.io/exit-code": exit_code}},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "main", "image": "busybox"}]}}),
        );
    }
    server.wait_for("job pods finished", LONG, || {
        let ok = get_json(&server, &["pod", "job-ok"]);
        let failed = get_json(&server, &["pod", "job-fail"]);
        ok["status"]["phase"] == "Succeeded" && failed["status"]["phase"] == "Failed"
    });
    let failed = get_json(&server, &["pod", "job-fail"]);
    let terminated = &failed["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 1, "{failed}");
    assert_eq!(terminated["reason"], "Error", "{failed}");

    // Graceful deletion is finished by the node: the pod goes away.
    server.kubectl_ok(KUBECTL, &["delete", "pod", "job-ok", "--wait=false"]);
    server.wait_for("job-ok deleted", LONG, || {
        !server
            .kubectl(KUBECTL, &["get", "pod", "job-ok"])
            .status
            .success()
    });

    // A deleted Node registers again.
    let old_uid = get_json(&server, &["node", "sim-node-2"])["metadata"]["uid"].clone();
    server.kubectl_ok(KUBECTL, &["delete", "node", "sim-node-2"]);
    server.wait_for("sim-node-2 registered again", LONG, || {
        let out = server.kubectl(KUBECTL, &["get", "node", "sim-node-2", "-o", "json"]);
        out.status.success()
            && json(&String::from_utf8_lossy(&out.stdout))["metadata"]["uid"] != old_uid
    });
}

#[test]
fn a_stopped_node_goes_not_ready_is_tainted_and_its_pods_are_recreated_elsewhere() {
    let server = Server::start(&["--node-monitor-grace-period=4"]);
    let fast = ["--lease-renew-interval=1", "--status-update-interval=2"];
    let mut lonely =
        server.sim_nodes(&[&["--count=1", "--name-prefix=lonely-"][..], &fast[..]].concat());
    server.wait_for("lonely-0 ready", LONG, || {
        ready_nodes(&server).contains(&"lonely-0".to_string())
    });
    let tolerations = j!([
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2},
    ]);
    create(
        &server,
        "/apis/apps/v1/namespaces/default/deployments",
        deployment("app", 2, tolerations),
    );
    create(
        &server,
        "/api/v1/namespaces/default/services",
        service("app"),
    );
    server.wait_for("2 running pods on lonely-0", LONG, || {
        let pods = running(&live_pods(&server, "app=app"));
        pods.len() == 2 && pods.iter().all(|p| p["spec"]["nodeName"] == "lonely-0")
    });

    // Healthy nodes join, then lonely-0 loses power.
    let _others = server.sim_nodes(&[&["--count=2"][..], &fast[..]].concat());
    server.wait_for("2 more ready nodes", LONG, || {
        ready_nodes(&server).len() >= 3
    });
    lonely.stop();

    server.wait_for("lonely-0 NotReady", LONG, || {
        let node = get_json(&server, &["node", "lonely-0"]);
        condition(&node, "Ready")["status"] == "Unknown"
    });
    let node = get_json(&server, &["node", "lonely-0"]);
    let ready = condition(&node, "Ready");
    assert_eq!(ready["reason"], "NodeStatusUnknown", "{node}");
    assert_eq!(
        ready["message"], "Kubelet stopped posting node status.",
        "{node}"
    );
    assert_eq!(
        condition(&node, "MemoryPressure")["status"],
        "Unknown",
        "{node}"
    );
    let table = server.kubectl_ok(KUBECTL, &["get", "node", "lonely-0"]);
    assert!(table.contains("NotReady"), "{table}");
    server.wait_for("unreachable taints on lonely-0", LONG, || {
        let node = get_json(&server, &["node", "lonely-0"]);
        let taints = node["spec"]["taints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        ["NoSchedule", "NoExecute"].iter().all(|effect| {
            taints
                .iter()
                .any(|t| t["key"] == "node.kubernetes.io/unreachable" && t["effect"] == *effect)
        })
    });

    // Its pods are evicted after their 2 s toleration and replaced elsewhere.
    server.wait_for("2 running pods on other nodes", LONG, || {
        let pods = running(&live_pods(&server, "app=app"));
        pods.len() == 2 && pods.iter().all(|p| p["spec"]["nodeName"] != "lonely-0")
    });
    let events = server.kubectl_ok(
        KUBECTL,
        &[
            "get",
            "events",
            "--field-selector",
            "reason=TaintManagerEviction",
            "-o",
            "json",
        ],
    );
    let events = items(&json(&events));
    assert!(!events.is_empty(), "no TaintManagerEviction events");
    assert!(
        events[0]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("Marking for deletion Pod default/app-"),
        "{:?}",
        events[0]
    );

    // The Service now points at the replacements only.
    server.wait_for("endpoints of app follow the new pods", LONG, || {
        let pods = running(&live_pods(&server, "app=app"));
        endpoint_ips(&server, "app").0 == pod_ips(&pods)
    });

    // The evicted pods stay terminating: no kubelet confirms their end.
    // Once the dead Node is deleted, the pod GC collects them.
    let on_lonely = |server: &Server| -> usize {
        items(&get_json(server, &["pods", "-l", "app=app"]))
            .iter()
            .filter(|p| p["spec"]["nodeName"] == "lonely-0")
            .count()
    };
    assert!(
        on_lonely(&server) > 0,
        "evicted pods should still be terminating"
    );
    server.kubectl_ok(KUBECTL, &["delete", "node", "lonely-0"]);
    server.wait_for("pods of the deleted node collected", LONG, || {
        on_lonely(&server) == 0
    });
}
