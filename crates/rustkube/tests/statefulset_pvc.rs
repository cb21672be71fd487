//! StatefulSet `persistentVolumeClaimRetentionPolicy` end to end: the
//! claims made from volumeClaimTemplates go with the set (`whenDeleted:
//! Delete`), with the pods a scale-down removes (`whenScaled: Delete`), or
//! stay (`Retain`, the default). The controller only sets the claims'
//! ownerReferences; the garbage collector does the deleting.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{get_json, labelled, name_of, patch_stateful_set, Server};

const KUBECTL: &str = "1.33";
const LONG: Duration = Duration::from_secs(120);

/// A set of busybox pods named `name`, each with one claim `data-<pod>`.
fn create_set(server: &Server, name: &str, replicas: i32, extra: Value) {
    let mut spec = extra;
    spec["replicas"] = json!(replicas);
    spec["volumeClaimTemplates"] = json!([{"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}}}]);
    support::create_stateful_set(server, name, spec);
}

/// The claims of set `app` (the controller copies the selector's labels
/// onto them).
fn claims(server: &Server, app: &str) -> Vec<Value> {
    labelled(server, "pvc", app)
}

fn claim_names(server: &Server, app: &str) -> Vec<String> {
    claims(server, app).iter().map(name_of).collect()
}

/// Names of the pods of set `app` that are not being deleted and run.
fn running_pods(server: &Server, app: &str) -> Vec<String> {
    labelled(server, "pods", app)
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| p["status"]["phase"] == "Running")
        .map(name_of)
        .collect()
}

fn pod_names(server: &Server, app: &str) -> Vec<String> {
    labelled(server, "pods", app).iter().map(name_of).collect()
}

/// (kind, name, controller) of each owner of a claim.
fn owners(claim: &Value) -> Vec<(String, String, bool)> {
    claim["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["kind"].as_str().unwrap_or_default().to_string(),
                r["name"].as_str().unwrap_or_default().to_string(),
                r["controller"] == true,
            )
        })
        .collect()
}

fn wait_running(server: &Server, app: &str, expected: &[&str]) {
    server.wait_for(&format!("pods {expected:?} running"), LONG, || {
        running_pods(server, app) == expected && claim_names(server, app).len() >= expected.len()
    });
}

#[test]
fn scaling_down_deletes_the_claims_of_removed_ordinals_only_under_when_scaled_delete() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=2"]);
    // OrderedReady (the default): pods go one at a time from the top.
    create_set(
        &server,
        "web",
        3,
        json!({"persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete"}}),
    );
    create_set(
        &server,
        "keep",
        3,
        json!({"podManagementPolicy": "Parallel"}),
    );
    wait_running(&server, "web", &["web-0", "web-1", "web-2"]);
    wait_running(&server, "keep", &["keep-0", "keep-1", "keep-2"]);
    assert_eq!(
        claim_names(&server, "web"),
        ["data-web-0", "data-web-1", "data-web-2"]
    );
    // Pods in range leave their claims unowned (whenDeleted is Retain).
    for claim in claims(&server, "web")
        .iter()
        .chain(&claims(&server, "keep"))
    {
        assert!(owners(claim).is_empty(), "{claim}");
    }

    for set in ["statefulset/web", "statefulset/keep"] {
        server.kubectl_ok(KUBECTL, &["scale", set, "--replicas=1"]);
    }
    server.wait_for("web down to web-0 and its claim", LONG, || {
        pod_names(&server, "web") == ["web-0"] && claim_names(&server, "web") == ["data-web-0"]
    });
    let kept = &claims(&server, "web")[0];
    assert!(owners(kept).is_empty(), "{kept}");
    assert!(kept["metadata"]["deletionTimestamp"].is_null(), "{kept}");

    // Retain: the pods go, every claim stays, still unowned.
    server.wait_for("keep down to keep-0", LONG, || {
        pod_names(&server, "keep") == ["keep-0"]
    });
    // Long enough for the garbage collector to have acted on web's claims.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        claim_names(&server, "keep"),
        ["data-keep-0", "data-keep-1", "data-keep-2"]
    );
    for claim in claims(&server, "keep") {
        assert!(owners(&claim).is_empty(), "{claim}");
    }

    // Scaling up again makes fresh claims for the fresh pods.
    server.kubectl_ok(KUBECTL, &["scale", "statefulset/web", "--replicas=2"]);
    wait_running(&server, "web", &["web-0", "web-1"]);
    assert_eq!(claim_names(&server, "web"), ["data-web-0", "data-web-1"]);
}

#[test]
fn deleting_a_set_deletes_its_claims_only_under_when_deleted_delete() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=2"]);
    create_set(
        &server,
        "db",
        2,
        json!({"podManagementPolicy": "Parallel",
               "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"}}),
    );
    create_set(
        &server,
        "vault",
        2,
        json!({"podManagementPolicy": "Parallel"}),
    );
    wait_running(&server, "db", &["db-0", "db-1"]);
    wait_running(&server, "vault", &["vault-0", "vault-1"]);

    // The set is the controller of each of its claims.
    let set_uid = get_json(&server, &["statefulset", "db"])["metadata"]["uid"].clone();
    for claim in claims(&server, "db") {
        assert_eq!(
            owners(&claim),
            [("StatefulSet".to_string(), "db".to_string(), true)],
            "{claim}"
        );
        let reference = &claim["metadata"]["ownerReferences"][0];
        assert_eq!(reference["uid"], set_uid, "{claim}");
        assert_eq!(reference["apiVersion"], "apps/v1", "{claim}");
        assert_eq!(reference["blockOwnerDeletion"], true, "{claim}");
    }

    server.kubectl_ok(
        KUBECTL,
        &["delete", "statefulset", "db", "vault", "--wait=false"],
    );
    server.wait_for("db's claims to go with it", LONG, || {
        claims(&server, "db").is_empty() && pod_names(&server, "db").is_empty()
    });
    server.wait_for("vault's pods to go", LONG, || {
        pod_names(&server, "vault").is_empty()
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        claim_names(&server, "vault"),
        ["data-vault-0", "data-vault-1"]
    );
}

#[test]
fn a_policy_change_reaches_the_claims_made_before_it() {
    let server = Server::start(&[]);
    let _nodes = server.sim_nodes(&["--count=1"]);
    create_set(
        &server,
        "logs",
        2,
        json!({"podManagementPolicy": "Parallel"}),
    );
    wait_running(&server, "logs", &["logs-0", "logs-1"]);
    for claim in claims(&server, "logs") {
        assert!(owners(&claim).is_empty(), "{claim}");
    }

    let set_policy = |policy: Value| {
        let patch = json!({"spec": {"persistentVolumeClaimRetentionPolicy": policy}});
        patch_stateful_set(&server, "logs", &patch);
    };
    set_policy(json!({"whenDeleted": "Delete", "whenScaled": "Retain"}));
    server.wait_for("the set to own both claims", LONG, || {
        let claims = claims(&server, "logs");
        claims.len() == 2
            && claims
                .iter()
                .all(|c| owners(c) == [("StatefulSet".to_string(), "logs".to_string(), true)])
    });

    set_policy(json!({"whenDeleted": "Retain", "whenScaled": "Delete"}));
    server.wait_for("the set to let go of the claims", LONG, || {
        claims(&server, "logs").iter().all(|c| owners(c).is_empty())
    });
    // Now a scale-down takes the removed pod's claim along.
    server.kubectl_ok(KUBECTL, &["scale", "statefulset/logs", "--replicas=1"]);
    server.wait_for("logs-1 and its claim to go", LONG, || {
        pod_names(&server, "logs") == ["logs-0"] && claim_names(&server, "logs") == ["data-logs-0"]
    });
}
