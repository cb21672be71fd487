//! Auditing end to end: with `--audit-policy-file` and `--audit-log-path`
//! every request the policy selects is one line in the log (the
//! `RequestReceived` stage omitted by the policy), at the level the first
//! matching rule chose.

mod support;

use std::time::Duration;

use support::Server;

const POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    users: ["system:kube-controller-manager", "system:kube-scheduler"]
  - level: None
    nonResourceURLs: ["/readyz*", "/healthz*", "/livez*", "/api*", "/openapi*", "/version"]
  - level: RequestResponse
    resources:
      - group: ""
        resources: ["secrets"]
  - level: None
    resources:
      - group: ""
        resources: ["events"]
  - level: Metadata
"#;

fn events(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON event"))
        .collect()
}

/// The test's own Secret (the server also creates its join token's Secret
/// in kube-system).
fn secret_created_in_default(e: &serde_json::Value) -> bool {
    e["verb"] == "create"
        && e["objectRef"]["resource"] == "secrets"
        && e["objectRef"]["namespace"] == "default"
}

#[test]
fn each_request_is_one_audit_event_at_the_level_the_policy_chose() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let log = dir.path().join("audit").join("audit.log");
    let server = Server::start(&[
        &format!("--audit-policy-file={}", policy.display()),
        &format!("--audit-log-path={}", log.display()),
        "--disable-scheduler",
    ]);
    server.kubectl_ok("1.33", &["create", "configmap", "audited"]);
    server.kubectl_ok(
        "1.33",
        &["create", "secret", "generic", "s1", "--from-literal=k=v"],
    );
    let denied = server.kubectl("1.33", &["get", "configmap", "audited", "--as=jane"]);
    assert!(!denied.status.success());

    let mut all = Vec::new();
    server.wait_for("the audit events", Duration::from_secs(10), || {
        all = events(&log);
        all.iter().filter(|e| secret_created_in_default(e)).count() == 1
    });
    for e in &all {
        assert_eq!(e["apiVersion"], "audit.k8s.io/v1");
        assert_eq!(e["kind"], "Event");
        assert_eq!(e["stage"], "ResponseComplete", "{e}");
        assert_ne!(e["level"], "None");
        assert_ne!(e["user"]["username"], "system:kube-controller-manager");
    }
    let created: Vec<_> = all
        .iter()
        .filter(|e| e["verb"] == "create" && e["objectRef"]["resource"] == "configmaps")
        .collect();
    assert_eq!(created.len(), 1, "{created:?}");
    let created = created[0];
    assert_eq!(created["level"], "Metadata");
    assert_eq!(created["user"]["username"], "system:admin");
    assert_eq!(created["objectRef"]["namespace"], "default");
    assert_eq!(created["responseStatus"]["code"], 201);
    assert_eq!(
        created["annotations"]["authorization.k8s.io/decision"],
        "allow"
    );
    assert!(created["userAgent"]
        .as_str()
        .unwrap()
        .starts_with("kubectl"));
    assert_eq!(created["sourceIPs"][0], "127.0.0.1");

    let secret = all.iter().find(|e| secret_created_in_default(e)).unwrap();
    assert_eq!(secret["level"], "RequestResponse");

    let forbidden = all
        .iter()
        .find(|e| e["impersonatedUser"]["username"] == "jane")
        .expect("the impersonated request is audited");
    assert_eq!(forbidden["responseStatus"]["code"], 403);
    assert_eq!(
        forbidden["annotations"]["authorization.k8s.io/decision"],
        "forbid"
    );
    assert_eq!(forbidden["user"]["username"], "system:admin");

    // Every event is its own request.
    let mut ids: Vec<&str> = all.iter().map(|e| e["auditID"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len());
}

const BODY_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    users: ["system:kube-controller-manager", "system:kube-scheduler"]
  - level: None
    nonResourceURLs: ["/readyz*", "/healthz*", "/livez*", "/api*", "/openapi*", "/version"]
  - level: RequestResponse
    omitManagedFields: true
    resources:
      - group: ""
        resources: ["secrets"]
  - level: Request
    resources:
      - group: ""
        resources: ["configmaps"]
  - level: Metadata
"#;

fn audited_server(dir: &std::path::Path, policy_text: &str) -> (Server, std::path::PathBuf) {
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, policy_text).unwrap();
    let log = dir.join("audit").join("audit.log");
    let server = Server::start(&[
        &format!("--audit-policy-file={}", policy.display()),
        &format!("--audit-log-path={}", log.display()),
        "--disable-scheduler",
    ]);
    (server, log)
}

#[test]
fn request_level_events_carry_the_request_and_response_objects_and_creates_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = audited_server(dir.path(), BODY_POLICY);
    server.kubectl_ok(
        "1.33",
        &["create", "secret", "generic", "s1", "--from-literal=k=v"],
    );
    server.kubectl_ok("1.29", &["create", "configmap", "c1", "--from-literal=a=b"]);
    let (code, _) = support::post_json(
        &server,
        "/api/v1/namespaces/default/configmaps",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"gen-"}}"#,
    );
    assert_eq!(code, 201);
    let missing = server.kubectl("1.33", &["get", "configmap", "nothing-here"]);
    assert!(!missing.status.success());

    let mut all = Vec::new();
    server.wait_for("the audit events", Duration::from_secs(10), || {
        all = events(&log);
        all.iter()
            .any(|e| e["verb"] == "get" && e["objectRef"]["name"] == "nothing-here")
    });
    let secret = all.iter().find(|e| secret_created_in_default(e)).unwrap();
    assert_eq!(secret["level"], "RequestResponse");
    assert_eq!(secret["objectRef"]["name"], "s1", "{secret}");
    let response = &secret["responseObject"];
    assert_eq!(response["kind"], "Secret", "{secret}");
    assert_eq!(response["metadata"]["name"], "s1");
    assert_eq!(response["data"]["k"], "dg==");
    assert!(
        response["metadata"].get("managedFields").is_none(),
        "omitManagedFields: {response}"
    );

    let configmap = all
        .iter()
        .find(|e| e["verb"] == "create" && e["objectRef"]["name"] == "c1")
        .expect("the create names its object");
    assert_eq!(configmap["level"], "Request");
    assert!(configmap.get("responseObject").is_none(), "{configmap}");
    assert_eq!(configmap["requestObject"]["data"]["a"], "b", "{configmap}");
    // kubectl 1.33 sent the Secret as protobuf; the event holds it as JSON.
    assert_eq!(secret["requestObject"]["kind"], "Secret", "{secret}");
    assert_eq!(
        secret["requestObject"]["metadata"]["name"], "s1",
        "{secret}"
    );

    let generated = all
        .iter()
        .find(|e| {
            e["verb"] == "create"
                && e["objectRef"]["resource"] == "configmaps"
                && e["objectRef"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("gen-") && n.len() > 4)
        })
        .expect("a generateName create is named after the generated name");
    assert_eq!(generated["responseStatus"]["code"], 201);

    let not_found = all
        .iter()
        .find(|e| e["verb"] == "get" && e["objectRef"]["name"] == "nothing-here")
        .unwrap();
    let status = &not_found["responseStatus"];
    assert_eq!(status["code"], 404);
    assert_eq!(status["reason"], "NotFound");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["message"], "configmaps \"nothing-here\" not found");
}

#[test]
fn events_carry_the_authorization_decision_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = audited_server(dir.path(), BODY_POLICY);
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "rolebinding",
            "jane-view",
            "--clusterrole=view",
            "--user=jane",
        ],
    );
    server.kubectl_ok("1.33", &["get", "configmaps", "--as=jane"]);
    let denied = server.kubectl("1.33", &["get", "secrets", "--as=jane"]);
    assert!(!denied.status.success());

    let mut all = Vec::new();
    server.wait_for("the audit events", Duration::from_secs(10), || {
        all = events(&log);
        all.iter().any(|e| {
            e["impersonatedUser"]["username"] == "jane" && e["objectRef"]["resource"] == "secrets"
        })
    });
    let as_jane = |resource: &str| {
        all.iter()
            .find(|e| {
                e["impersonatedUser"]["username"] == "jane"
                    && e["verb"] == "list"
                    && e["objectRef"]["resource"] == resource
            })
            .unwrap_or_else(|| panic!("jane's list of {resource} is audited"))
    };
    let allowed = &as_jane("configmaps")["annotations"];
    assert_eq!(allowed["authorization.k8s.io/decision"], "allow");
    assert_eq!(
        allowed["authorization.k8s.io/reason"],
        "RBAC: allowed by RoleBinding \"jane-view/default\" of ClusterRole \"view\" to User \"jane\""
    );
    let forbidden = &as_jane("secrets")["annotations"];
    assert_eq!(forbidden["authorization.k8s.io/decision"], "forbid");
    let admin = all
        .iter()
        .find(|e| e["verb"] == "create" && e["objectRef"]["resource"] == "rolebindings")
        .unwrap();
    // system:masters is allowed before RBAC is asked: no reason given.
    assert_eq!(admin["annotations"]["authorization.k8s.io/reason"], "");
}

#[test]
fn a_watch_is_audited_when_it_starts_and_again_when_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = audited_server(
        dir.path(),
        &BODY_POLICY.replace("omitStages: [\"RequestReceived\"]\n", ""),
    );
    let (code, _) =
        server.curl_admin(&["/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1"]);
    assert_eq!(code, 200);
    let mut stages: Vec<(String, serde_json::Value)> = Vec::new();
    server.wait_for("the watch's audit events", Duration::from_secs(10), || {
        stages = events(&log)
            .into_iter()
            .filter(|e| e["verb"] == "watch" && e["user"]["username"] == "system:admin")
            .map(|e| (e["stage"].as_str().unwrap_or("").to_string(), e))
            .collect();
        stages.len() >= 3
    });
    let names: Vec<&str> = stages.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        names,
        ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    );
    let ids: Vec<&serde_json::Value> = stages.iter().map(|(_, e)| &e["auditID"]).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one request: {ids:?}");
    // Completed when the stream ended (the server closes it after 1 s).
    let seconds = |e: &serde_json::Value| {
        let t = e["stageTimestamp"].as_str().unwrap();
        let clock = t.split('T').nth(1).unwrap().trim_end_matches('Z');
        let parts: Vec<f64> = clock.split(':').map(|p| p.parse().unwrap()).collect();
        parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
    };
    let streamed = seconds(&stages[2].1) - seconds(&stages[1].1);
    assert!(streamed >= 0.9, "completed {streamed}s after it started");
    assert_eq!(stages[1].1["responseStatus"]["code"], 200);
    assert_eq!(stages[2].1["responseStatus"]["code"], 200);
    // A short request has no ResponseStarted stage.
    assert!(!events(&log)
        .iter()
        .any(|e| e["verb"] == "list" && e["stage"] == "ResponseStarted"));
}

#[test]
fn a_bad_audit_policy_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Loud}]\n",
    )
    .unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rustkube"))
        .arg("server")
        .arg(format!("--config={}", config.display()))
        .arg(format!("--data-dir={}", dir.path().join("data").display()))
        .arg(format!(
            "--write-kubeconfig={}",
            dir.path().join("kc").display()
        ))
        .arg(format!("--audit-policy-file={}", policy.display()))
        .arg(format!(
            "--audit-log-path={}",
            dir.path().join("a.log").display()
        ))
        .arg(format!("--https-listen-port={}", support::free_port()))
        .arg("--bind-address=127.0.0.1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not a valid audit policy"), "{err}");
}
