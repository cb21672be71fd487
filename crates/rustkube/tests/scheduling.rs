//! The scheduler end to end: a real server (with its in-process scheduler
//! and controller manager), simulated nodes, and stock kubectl. Placement
//! follows taints and tolerations, nodeSelector, node affinity, pod
//! anti-affinity, topology spread and priority (preemption); pods that
//! cannot be placed carry upstream's FailedScheduling message.

mod support;

use std::time::Duration;

use support::{Server, SimNodes};

const KUBECTL: &str = "1.33";
const WAIT: Duration = Duration::from_secs(90);

fn apply(server: &Server, yaml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.yaml");
    std::fs::write(&path, yaml).unwrap();
    server.kubectl_ok(KUBECTL, &["apply", "-f", path.to_str().unwrap()]);
}

fn jsonpath(server: &Server, args: &[&str], path: &str) -> String {
    let out = server.kubectl(
        KUBECTL,
        &[args, &["-o", &format!("jsonpath={path}")]].concat(),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn node_of(server: &Server, pod: &str) -> String {
    jsonpath(server, &["get", "pod", pod], "{.spec.nodeName}")
}

fn wait_scheduled(server: &Server, pod: &str) -> String {
    server.wait_for(&format!("pod {pod} to be scheduled"), WAIT, || {
        !node_of(server, pod).is_empty()
    });
    node_of(server, pod)
}

fn failed_scheduling_messages(server: &Server, pod: &str) -> String {
    jsonpath(
        server,
        &[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={pod},reason=FailedScheduling"),
        ],
        "{.items[*].message}",
    )
}

fn wait_failed_scheduling(server: &Server, pod: &str) -> String {
    server.wait_for(&format!("FailedScheduling for {pod}"), WAIT, || {
        !failed_scheduling_messages(server, pod).is_empty()
    });
    failed_scheduling_messages(server, pod)
}

/// Start `count` simulated nodes and wait until all are registered and Ready.
fn nodes(server: &Server, args: &[&str], count: usize) -> SimNodes {
    let sim = server.sim_nodes(args);
    server.wait_for(&format!("{count} Ready nodes"), WAIT, || {
        let ready = jsonpath(
            server,
            &["get", "nodes"],
            "{.items[*].status.conditions[?(@.type==\"Ready\")].status}",
        );
        ready.split_whitespace().filter(|s| *s == "True").count() == count
    });
    sim
}

fn pod(name: &str, spec_extra: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  containers:
  - name: c
    image: registry.k8s.io/pause:3.10
{spec_extra}"
    )
}

#[test]
fn taints_node_selectors_and_node_affinity_decide_placement() {
    let server = Server::start(&[]);
    let _sim = nodes(
        &server,
        &["--count=3", "--name-prefix=n-", "--zones=a,b,c"],
        3,
    );
    server.kubectl_ok(
        KUBECTL,
        &["taint", "node", "n-0", "dedicated=infra:NoSchedule"],
    );
    server.kubectl_ok(KUBECTL, &["label", "node", "n-1", "disk=ssd"]);

    // Wants zone a, which only the tainted node offers: stays pending.
    apply(
        &server,
        &pod(
            "wants-a",
            "  nodeSelector:\n    topology.kubernetes.io/zone: a\n",
        ),
    );
    let msg = wait_failed_scheduling(&server, "wants-a");
    assert!(
        msg.contains(
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: infra}, \
             2 node(s) didn't match Pod's node affinity/selector. \
             preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        ),
        "{msg}"
    );
    let condition = jsonpath(
        &server,
        &["get", "pod", "wants-a"],
        "{.status.conditions[?(@.type==\"PodScheduled\")].reason}",
    );
    assert_eq!(condition, "Unschedulable");

    // With the toleration it lands on the tainted node.
    apply(
        &server,
        &pod(
            "tolerates-infra",
            "  nodeSelector:\n    topology.kubernetes.io/zone: a\n  tolerations:\n  - key: dedicated\n    operator: Equal\n    value: infra\n    effect: NoSchedule\n",
        ),
    );
    assert_eq!(wait_scheduled(&server, "tolerates-infra"), "n-0");

    apply(
        &server,
        &pod("wants-ssd", "  nodeSelector:\n    disk: ssd\n"),
    );
    assert_eq!(wait_scheduled(&server, "wants-ssd"), "n-1");

    apply(
        &server,
        &pod(
            "requires-c",
            "  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - key: topology.kubernetes.io/zone
            operator: In
            values: [c]
",
        ),
    );
    assert_eq!(wait_scheduled(&server, "requires-c"), "n-2");

    for i in 0..3 {
        let name = format!("prefers-b-{i}");
        apply(
            &server,
            &pod(
                &name,
                "  affinity:
    nodeAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        preference:
          matchExpressions:
          - key: topology.kubernetes.io/zone
            operator: In
            values: [b]
",
            ),
        );
        assert_eq!(wait_scheduled(&server, &name), "n-1");
    }

    // The Scheduled event names the node, in upstream's words.
    let scheduled = jsonpath(
        &server,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=wants-ssd,reason=Scheduled",
        ],
        "{.items[*].message}",
    );
    assert_eq!(scheduled, "Successfully assigned default/wants-ssd to n-1");
    let source = jsonpath(
        &server,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=wants-ssd,reason=Scheduled",
        ],
        "{.items[*].source.component}",
    );
    assert_eq!(source, "default-scheduler");

    // Removing the taint lets the pending pod in (a node update re-queues it).
    server.kubectl_ok(KUBECTL, &["taint", "node", "n-0", "dedicated-"]);
    assert_eq!(wait_scheduled(&server, "wants-a"), "n-0");
}

#[test]
fn anti_affinity_and_topology_spread_keep_replicas_apart() {
    let server = Server::start(&[]);
    let _sim = nodes(
        &server,
        &["--count=6", "--name-prefix=s-", "--zones=a,b,c"],
        6,
    );
    // One replica per node, at most 2 nodes taken per zone after 6 replicas.
    let anti = "  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector:
          matchLabels:
            group: solo
        topologyKey: kubernetes.io/hostname
";
    let solo = |name: &str| pod(name, anti).replace("    app: ", "    group: solo\n    app: ");
    for i in 0..6 {
        apply(&server, &solo(&format!("solo-{i}")));
    }
    let mut hosts: Vec<String> = (0..6)
        .map(|i| wait_scheduled(&server, &format!("solo-{i}")))
        .collect();
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), 6, "every replica on its own node: {hosts:?}");

    apply(&server, &solo("solo-extra"));
    let msg = wait_failed_scheduling(&server, "solo-extra");
    assert!(
        msg.contains("0/6 nodes are available: 6 node(s) didn't match pod anti-affinity rules."),
        "{msg}"
    );

    // Nine spread pods with maxSkew 1 over three zones: three per zone.
    let spread = "  topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: DoNotSchedule
    labelSelector:
      matchLabels:
        group: spread
";
    for i in 0..9 {
        let name = format!("spread-{i}");
        apply(
            &server,
            &pod(&name, spread).replace("    app: ", "    group: spread\n    app: "),
        );
    }
    let zone_of_node = |node: &str| {
        jsonpath(
            &server,
            &["get", "node", node],
            "{.metadata.labels.topology\\.kubernetes\\.io/zone}",
        )
    };
    let mut per_zone = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..9 {
        let node = wait_scheduled(&server, &format!("spread-{i}"));
        *per_zone.entry(zone_of_node(&node)).or_default() += 1;
    }
    assert_eq!(
        per_zone.into_iter().collect::<Vec<_>>(),
        [
            ("a".to_string(), 3),
            ("b".to_string(), 3),
            ("c".to_string(), 3)
        ]
    );
}

#[test]
fn a_high_priority_pod_preempts_a_low_priority_pod_on_a_full_cluster() {
    let server = Server::start(&[]);
    let _sim = nodes(&server, &["--count=2", "--name-prefix=p-", "--cpu=2"], 2);
    apply(
        &server,
        "apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: low
value: 100
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: high
value: 1000
",
    );
    let requests = |class: &str, cpu: &str| {
        format!(
            "    resources:\n      requests:\n        cpu: {cpu}\n  priorityClassName: {class}\n"
        )
    };
    apply(&server, &pod("low-0", &requests("low", "1500m")));
    apply(&server, &pod("low-1", &requests("low", "1500m")));
    wait_scheduled(&server, "low-0");
    wait_scheduled(&server, "low-1");
    let low_uids: Vec<String> = ["low-0", "low-1"]
        .iter()
        .map(|p| jsonpath(&server, &["get", "pod", p], "{.metadata.uid}"))
        .collect();

    apply(&server, &pod("vip", &requests("high", "1")));
    let node = wait_scheduled(&server, "vip");

    // Exactly one low pod made room: the one that was on that node.
    let gone: Vec<&str> = ["low-0", "low-1"]
        .into_iter()
        .zip(&low_uids)
        .filter(|(name, uid)| uid_gone(&server, name, uid))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(gone.len(), 1, "one victim: {gone:?}");
    let victim = gone[0];
    let survivor = if victim == "low-0" { "low-1" } else { "low-0" };
    assert_ne!(node_of(&server, survivor), node, "the other low pod stays");

    let preempted = jsonpath(
        &server,
        &[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={victim},reason=Preempted"),
        ],
        "{.items[*].message}",
    );
    let vip_uid = jsonpath(&server, &["get", "pod", "vip"], "{.metadata.uid}");
    assert_eq!(
        preempted,
        format!("Preempted by pod {vip_uid} on node {node}")
    );

    // Before the victim left, the preemptor was told why it had to wait.
    let msg = failed_scheduling_messages(&server, "vip");
    assert!(
        msg.contains("0/2 nodes are available: 2 Insufficient cpu."),
        "{msg}"
    );
}

/// The pod named `name` with `uid` no longer exists.
fn uid_gone(server: &Server, name: &str, uid: &str) -> bool {
    let current = jsonpath(
        server,
        &["get", "pod", name, "--ignore-not-found"],
        "{.metadata.uid}",
    );
    current != uid
}

#[test]
fn profiles_from_the_config_file_and_foreign_scheduler_names() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("scheduler.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packer
  plugins:
    score:
      disabled:
      - name: NodeResourcesBalancedAllocation
      enabled:
      - name: NodeResourcesFit
        weight: 5
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
",
    )
    .unwrap();
    let server = Server::start(&[&format!("--scheduler-config={}", config.display())]);
    let _sim = nodes(&server, &["--count=2", "--name-prefix=b-"], 2);

    let cpu = "    resources:\n      requests:\n        cpu: \"1\"\n";
    apply(
        &server,
        &pod(
            "first",
            &format!("{cpu}  nodeSelector:\n    kubernetes.io/hostname: b-1\n"),
        ),
    );
    assert_eq!(wait_scheduled(&server, "first"), "b-1");
    for i in 0..2 {
        let name = format!("packed-{i}");
        apply(
            &server,
            &pod(&name, &format!("{cpu}  schedulerName: bin-packer\n")),
        );
        assert_eq!(wait_scheduled(&server, &name), "b-1", "MostAllocated packs");
    }
    let source = jsonpath(
        &server,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=packed-0,reason=Scheduled",
        ],
        "{.items[*].source.component}",
    );
    assert_eq!(source, "bin-packer");

    // Nobody here answers to this name: the pod is left alone.
    apply(&server, &pod("foreign", "  schedulerName: someone-else\n"));
    apply(&server, &pod("after-foreign", ""));
    wait_scheduled(&server, "after-foreign");
    assert_eq!(node_of(&server, "foreign"), "");
    assert_eq!(failed_scheduling_messages(&server, "foreign"), "");
}
