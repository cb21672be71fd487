//! StatefulSet `spec.ordinals.start` end to end (GA in 1.31): a set runs
//! ordinals `start` .. `start + replicas - 1`, so its pods and their claims
//! are named from `start`; scaling adds and removes at the top of that
//! range; moving `start` creates the pods missing from the new range and
//! removes those left outside it (with their claims under `whenScaled:
//! Delete`); a rolling update's `partition` counts positions from `start`;
//! a pod that ends (Failed or Succeeded) is replaced under its ordinal.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use support::{create_stateful_set, get_json, labelled, name_of, patch_stateful_set, Server};

const KUBECTL: &str = "1.33";
const LONG: Duration = Duration::from_secs(120);

/// The objects of `kind` labelled `app=<app>`, by name.
fn by_name(server: &Server, kind: &str, app: &str) -> BTreeMap<String, Value> {
    labelled(server, kind, app)
        .into_iter()
        .map(|o| (name_of(&o), o))
        .collect()
}

/// The ordinals of the pods of set `app` (whatever their state).
fn ordinals(server: &Server, app: &str) -> Vec<i32> {
    let mut ordinals: Vec<i32> = by_name(server, "pods", app)
        .keys()
        .filter_map(|n| n.strip_prefix(&format!("{app}-"))?.parse().ok())
        .collect();
    ordinals.sort();
    ordinals
}

/// Whether the pods of set `app` are exactly `wanted`, every one Running
/// and not being deleted.
fn running_exactly(server: &Server, app: &str, wanted: &[i32]) -> bool {
    let pods = by_name(server, "pods", app);
    ordinals(server, app) == wanted
        && pods.values().all(|p| {
            p["metadata"]["deletionTimestamp"].is_null() && p["status"]["phase"] == "Running"
        })
}

fn claim_names(server: &Server, app: &str) -> Vec<String> {
    by_name(server, "pvc", app).into_keys().collect()
}

fn uid(pod: &Value) -> String {
    pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn image(pod: &Value) -> String {
    pod["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_set_starting_at_ordinal_5_runs_web_5_to_web_7_and_moving_start_moves_its_pods() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=2"]);
    // OrderedReady (the default), one claim per pod, claims of condemned
    // pods deleted with them.
    create_stateful_set(
        &server,
        "web",
        json!({
            "replicas": 3,
            "ordinals": {"start": 5},
            "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete"},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}}}],
        }),
    );
    server.wait_for("web-5, web-6 and web-7 running", LONG, || {
        running_exactly(&server, "web", &[5, 6, 7])
    });
    assert_eq!(
        claim_names(&server, "web"),
        ["data-web-5", "data-web-6", "data-web-7"]
    );
    let pods = by_name(&server, "pods", "web");
    let web5 = &pods["web-5"];
    assert_eq!(web5["spec"]["hostname"], "web-5", "{web5}");
    assert_eq!(web5["spec"]["subdomain"], "web", "{web5}");
    // The index label is the ordinal itself, not its position.
    assert_eq!(
        web5["metadata"]["labels"]["apps.kubernetes.io/pod-index"], "5",
        "{web5}"
    );
    assert_eq!(
        web5["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"], "web-5",
        "{web5}"
    );
    let volumes = web5["spec"]["volumes"].to_string();
    assert!(
        volumes.contains("\"claimName\":\"data-web-5\""),
        "{volumes}"
    );
    // Created in ordinal order from the start.
    let created = |n: &str| {
        pods[n]["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(created("web-5") <= created("web-6") && created("web-6") <= created("web-7"));
    server.wait_for("status.readyReplicas 3", LONG, || {
        get_json(&server, &["statefulset", "web"])["status"]["readyReplicas"] == 3
    });

    // Scaling down removes the top ordinal (web-7), not web-2, and its
    // claim; the others are untouched.
    server.kubectl_ok(KUBECTL, &["scale", "statefulset/web", "--replicas=2"]);
    server.wait_for("web down to web-5 and web-6", LONG, || {
        ordinals(&server, "web") == [5, 6] && claim_names(&server, "web").len() == 2
    });
    assert_eq!(claim_names(&server, "web"), ["data-web-5", "data-web-6"]);
    let after_down = by_name(&server, "pods", "web");
    for name in ["web-5", "web-6"] {
        assert_eq!(
            uid(&after_down[name]),
            uid(&pods[name]),
            "{name} was replaced"
        );
    }

    // Scaling up adds at the top again.
    server.kubectl_ok(KUBECTL, &["scale", "statefulset/web", "--replicas=4"]);
    server.wait_for("web-5 .. web-8 running", LONG, || {
        running_exactly(&server, "web", &[5, 6, 7, 8])
    });
    let before_move = by_name(&server, "pods", "web");

    // start 5 -> 7 with 4 replicas: 7 and 8 stay, 9 and 10 come, 5 and 6
    // (now below the range) go, with their claims.
    patch_stateful_set(&server, "web", &json!({"spec": {"ordinals": {"start": 7}}}));
    server.wait_for(
        "web-7 .. web-10 running, web-5 and web-6 gone",
        LONG,
        || {
            running_exactly(&server, "web", &[7, 8, 9, 10])
                && claim_names(&server, "web").len() == 4
        },
    );
    assert_eq!(
        claim_names(&server, "web"),
        ["data-web-10", "data-web-7", "data-web-8", "data-web-9"]
    );
    let moved = by_name(&server, "pods", "web");
    for name in ["web-7", "web-8"] {
        assert_eq!(
            uid(&moved[name]),
            uid(&before_move[name]),
            "{name} was replaced"
        );
    }
    assert_eq!(
        moved["web-10"]["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
        "10"
    );
    server.wait_for("status.replicas 4", LONG, || {
        let status = &get_json(&server, &["statefulset", "web"])["status"];
        status["replicas"] == 4 && status["readyReplicas"] == 4
    });
}

#[test]
fn the_partition_of_a_rolling_update_counts_from_the_start_ordinal() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=2"]);
    create_stateful_set(
        &server,
        "part",
        json!({
            "replicas": 3,
            "ordinals": {"start": 5},
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
        }),
    );
    server.wait_for("part-5 .. part-7 running", LONG, || {
        running_exactly(&server, "part", &[5, 6, 7])
    });
    let before = by_name(&server, "pods", "part");

    // Partition 1 is the second position of the range: ordinal 6 and up
    // take the new template, ordinal 5 keeps the old one.
    server.kubectl_ok(
        KUBECTL,
        &["set", "image", "statefulset/part", "c=busybox:1.36"],
    );
    server.wait_for("part-6 and part-7 on the new image", LONG, || {
        let pods = by_name(&server, "pods", "part");
        running_exactly(&server, "part", &[5, 6, 7])
            && ["part-6", "part-7"]
                .iter()
                .all(|n| pods.get(*n).map(image).as_deref() == Some("busybox:1.36"))
    });
    // Long enough for a wrong partition to have reached part-5 too.
    std::thread::sleep(Duration::from_secs(3));
    let pods = by_name(&server, "pods", "part");
    assert_eq!(image(&pods["part-5"]), "busybox", "{}", pods["part-5"]);
    assert_eq!(uid(&pods["part-5"]), uid(&before["part-5"]));
    let status = &get_json(&server, &["statefulset", "part"])["status"];
    assert_eq!(status["updatedReplicas"], 2, "{status}");
    assert_ne!(
        status["currentRevision"], status["updateRevision"],
        "{status}"
    );

    // Partition 0 finishes the rollout.
    patch_stateful_set(
        &server,
        "part",
        &json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}),
    );
    server.wait_for("part-5 on the new image", LONG, || {
        let pods = by_name(&server, "pods", "part");
        running_exactly(&server, "part", &[5, 6, 7])
            && pods.values().all(|p| image(p) == "busybox:1.36")
    });
    server.wait_for("the update revision to become current", LONG, || {
        let status = &get_json(&server, &["statefulset", "part"])["status"];
        status["currentRevision"] == status["updateRevision"] && status["updatedReplicas"] == 3
    });
}

#[test]
fn a_pod_that_ends_is_replaced_whether_it_failed_or_succeeded() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=1"]);
    // Pods of a set restart their containers (restartPolicy Always); they
    // end only when something outside them does, e.g. a node shutting down
    // marks them Failed or Succeeded. Here an admin's status write does.
    for (app, phase) in [("ok", "Succeeded"), ("bad", "Failed")] {
        create_stateful_set(
            &server,
            app,
            json!({"replicas": 1, "ordinals": {"start": 2}}),
        );
        let pod = format!("{app}-2");
        server.wait_for(&format!("{pod} running"), LONG, || {
            running_exactly(&server, app, &[2])
        });
        let first_uid = uid(&by_name(&server, "pods", app)[&pod]);
        let (code, body) = support::patch_json(
            &server,
            &format!("/api/v1/namespaces/default/pods/{pod}/status"),
            "application/merge-patch+json",
            &json!({"status": {"phase": phase}}).to_string(),
        );
        assert_eq!(code, 200, "{body}");
        server.wait_for(
            &format!("{pod} replaced after it ended {phase}"),
            LONG,
            || {
                by_name(&server, "pods", app)
                    .get(&pod)
                    .is_some_and(|p| uid(p) != first_uid && p["status"]["phase"] == "Running")
            },
        );
    }
}
