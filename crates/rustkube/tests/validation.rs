//! Spec validation of the workload kinds end to end: a bad object comes
//! back as a 422 `Status` with upstream's field causes, and kubectl prints
//! upstream's "The <Kind> "<name>" is invalid: ..." line. The server runs
//! without controllers, so nothing but the API server touches the objects.

mod support;

use serde_json::{json, Value};
use support::{output_text, post_json, put_json, Server};

fn server() -> Server {
    Server::start(&["--disable-controller-manager", "--disable-scheduler"])
}

fn deployment(name: &str, selector: Value, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": selector,
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    })
}

/// `kubectl create -f` of `obj`; returns kubectl's output and exit status.
fn kubectl_create(server: &Server, obj: &Value) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("object.json");
    std::fs::write(&file, obj.to_string()).unwrap();
    let out = server.kubectl("1.33", &["create", "-f", file.to_str().unwrap()]);
    (out.status.success(), output_text(&out))
}

/// The (reason, field, message) of each cause of a 422 `Status` body.
fn causes(body: &str) -> Vec<(String, String, String)> {
    let status: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{body}"));
    assert_eq!(status["reason"], "Invalid", "{status}");
    assert_eq!(status["code"], 422, "{status}");
    status["details"]["causes"]
        .as_array()
        .unwrap_or_else(|| panic!("no causes: {status}"))
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("reason"), s("field"), s("message"))
        })
        .collect()
}

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

#[test]
fn deployment_with_mismatched_template_labels_is_invalid_in_kubectls_words() {
    let server = server();
    let bad = deployment(
        "web",
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "x"}),
    );
    let (ok, out) = kubectl_create(&server, &bad);
    assert!(!ok, "{out}");
    assert!(
        out.contains(r#"The Deployment "web" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app":"x"}: `selector` does not match template `labels`"#),
        "{out}"
    );

    // Several causes: kubectl lists them one per line.
    let mut two = deployment(
        "web",
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    two["spec"]["replicas"] = json!(-1);
    two["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    let (ok, out) = kubectl_create(&server, &two);
    assert!(!ok, "{out}");
    assert!(
        out.contains(r#"The Deployment "web" is invalid: "#),
        "{out}"
    );
    assert!(
        out.contains("* spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        "{out}"
    );
    assert!(
        out.contains(r#"* spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always""#),
        "{out}"
    );

    // A valid Deployment from kubectl's own generator is accepted.
    server.kubectl_ok("1.33", &["create", "deployment", "ok", "--image=nginx"]);
}

#[test]
fn rejected_workloads_come_back_as_422_with_field_causes() {
    let server = server();
    let mut no_selector = deployment("web", Value::Null, json!({"app": "web"}));
    no_selector["spec"]
        .as_object_mut()
        .unwrap()
        .remove("selector");
    let (code, body) = post_json(&server, DEPLOYMENTS, &no_selector.to_string());
    assert_eq!(code, 422, "{body}");
    let got = causes(&body);
    assert_eq!(
        got[0],
        (
            "FieldValueRequired".into(),
            "spec.selector".into(),
            "Required value".into()
        )
    );

    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
        "spec": {"backoffLimit": -1, "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
    });
    let (code, body) = post_json(
        &server,
        "/apis/batch/v1/namespaces/default/jobs",
        &job.to_string(),
    );
    assert_eq!(code, 422, "{body}");
    let fields: Vec<String> = causes(&body).into_iter().map(|c| c.1).collect();
    assert_eq!(
        fields,
        ["spec.backoffLimit", "spec.template.spec.restartPolicy"]
    );
    let (ok, out) = kubectl_create(&server, &job);
    assert!(!ok);
    assert!(
        out.contains(r#"* spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never""#),
        "{out}"
    );

    let cron = json!({
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
        "spec": {
            "schedule": "every minute", "concurrencyPolicy": "Sometimes",
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}},
        },
    });
    let (code, body) = post_json(
        &server,
        "/apis/batch/v1/namespaces/default/cronjobs",
        &cron.to_string(),
    );
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        causes(&body),
        [
            (
                "FieldValueInvalid".to_string(),
                "spec.schedule".to_string(),
                r#"Invalid value: "every minute": expected exactly 5 fields, found 2: [every minute]"#.to_string()
            ),
            (
                "FieldValueNotSupported".to_string(),
                "spec.concurrencyPolicy".to_string(),
                r#"Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace""#.to_string()
            ),
        ]
    );

    let ingress = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
        "spec": {"rules": [{"host": "10.0.0.1", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]},
    });
    let (ok, out) = kubectl_create(&server, &ingress);
    assert!(!ok);
    assert!(
        out.contains(r#"The Ingress "web" is invalid: spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address"#),
        "{out}"
    );

    let rc = json!({
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
    });
    let (ok, out) = kubectl_create(&server, &rc);
    assert!(!ok);
    assert!(
        out.contains(r#"The ReplicationController "rc" is invalid: spec.selector: Required value"#),
        "{out}"
    );

    let pdb = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "budget"},
        "spec": {"minAvailable": 1, "maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    });
    let (code, body) = post_json(
        &server,
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
        &pdb.to_string(),
    );
    assert_eq!(code, 422, "{body}");
    let got = causes(&body);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, "spec");
    assert!(got[0]
        .2
        .ends_with("minAvailable and maxUnavailable cannot be both set"));
}

#[test]
fn immutable_fields_are_refused_on_update() {
    let server = server();
    let web = deployment(
        "web",
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    let (code, body) = post_json(&server, DEPLOYMENTS, &web.to_string());
    assert_eq!(code, 201, "{body}");
    let mut stored: Value = serde_json::from_str(&body).unwrap();
    stored["spec"]["selector"] = json!({"matchLabels": {"app": "web", "track": "canary"}});
    stored["spec"]["template"]["metadata"]["labels"] = json!({"app": "web", "track": "canary"});
    let (code, body) = put_json(&server, &format!("{DEPLOYMENTS}/web"), &stored.to_string());
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        causes(&body),
        [(
            "FieldValueInvalid".to_string(),
            "spec.selector".to_string(),
            r#"Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "track":"canary"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"#.to_string()
        )]
    );
    // Scaling is an ordinary update.
    server.kubectl_ok("1.33", &["scale", "deployment", "web", "--replicas=3"]);

    let set = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres"}]}},
        },
    });
    let sets = "/apis/apps/v1/namespaces/default/statefulsets";
    let (code, body) = post_json(&server, sets, &set.to_string());
    assert_eq!(code, 201, "{body}");
    let mut stored: Value = serde_json::from_str(&body).unwrap();
    stored["spec"]["serviceName"] = json!("other");
    let (code, body) = put_json(&server, &format!("{sets}/db"), &stored.to_string());
    assert_eq!(code, 422, "{body}");
    let got = causes(&body);
    assert_eq!(got[0].0, "FieldValueForbidden");
    assert_eq!(got[0].1, "spec");
    let out = server.kubectl(
        "1.33",
        &[
            "patch",
            "statefulset",
            "db",
            "-p",
            r#"{"spec":{"podManagementPolicy":"Parallel"}}"#,
        ],
    );
    assert!(!out.status.success());
    assert!(output_text(&out).contains(r#"The StatefulSet "db" is invalid: spec: Forbidden: updates to statefulset spec for fields other than"#), "{}", output_text(&out));
}
