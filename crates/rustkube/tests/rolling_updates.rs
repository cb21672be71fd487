//! Rolling-update strategies end to end against simulated nodes:
//! DaemonSet `maxSurge`.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::{get_json, Server};

const KUBECTL: &str = "1.33";
const LONG: Duration = Duration::from_secs(120);

/// Live (not terminating) pods labelled app=`app`, by the node they are
/// for: their images.
fn images_by_node(server: &Server, app: &str) -> BTreeMap<String, Vec<String>> {
    let pods = get_json(server, &["pods", "-l", &format!("app={app}")]);
    let mut by_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pod in pods["items"].as_array().into_iter().flatten() {
        if pod["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        // The node a daemon pod is for, bound yet or not.
        let node = pod["spec"]["affinity"]["nodeAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
            ["matchFields"][0]["values"][0]
            .as_str()
            .unwrap_or("")
            .to_string();
        let image = pod["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or("")
            .to_string();
        by_node.entry(node).or_default().push(image);
    }
    for images in by_node.values_mut() {
        images.sort();
    }
    by_node
}

#[test]
fn a_daemonset_with_max_surge_starts_the_new_pod_before_deleting_the_old_one() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=2"]);
    server.wait_for("two nodes", LONG, || {
        get_json(&server, &["nodes"])["items"]
            .as_array()
            .is_some_and(|n| n.len() == 2)
    });
    // minReadySeconds keeps each new pod unavailable for a while, so the
    // overlap of old and new pod on a node is long enough to observe.
    let ds = r#"{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"agent"},
      "spec":{"selector":{"matchLabels":{"app":"agent"}},"minReadySeconds":3,
      "updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1,"maxUnavailable":0}},
      "template":{"metadata":{"labels":{"app":"agent"}},
      "spec":{"containers":[{"name":"agent","image":"busybox:1"}]}}}}"#;
    let (code, body) =
        support::post_json(&server, "/apis/apps/v1/namespaces/default/daemonsets", ds);
    assert_eq!(code, 201, "{body}");
    server.wait_for("both daemon pods available", LONG, || {
        get_json(&server, &["daemonset", "agent"])["status"]["numberAvailable"] == 2
    });

    server.kubectl_ok(
        KUBECTL,
        &["set", "image", "daemonset/agent", "agent=busybox:2"],
    );
    let old_and_new = vec!["busybox:1".to_string(), "busybox:2".to_string()];
    let mut overlapped = false;
    server.wait_for("every node on the new image", LONG, || {
        let by_node = images_by_node(&server, "agent");
        // maxUnavailable 0: no node is ever without a pod, and at most one
        // (maxSurge 1) runs two.
        assert_eq!(by_node.len(), 2, "{by_node:?}");
        assert!(
            by_node.values().filter(|i| i.len() > 1).count() <= 1,
            "{by_node:?}"
        );
        overlapped |= by_node.values().any(|images| *images == old_and_new);
        by_node.values().all(|images| *images == ["busybox:2"])
    });
    assert!(
        overlapped,
        "no node ever ran the old and the new pod together"
    );
    server.wait_for("the rollout status", LONG, || {
        let status = &get_json(&server, &["daemonset", "agent"])["status"];
        status["updatedNumberScheduled"] == 2 && status["numberAvailable"] == 2
    });
}
