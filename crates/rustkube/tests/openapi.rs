//! OpenAPI: `kubectl explain` (v3, and v2 protobuf for kubectl 1.27's
//! `plaintext-openapiv2` output), field validation of `kubectl create`,
//! and the shape of the served documents.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::{json, output_text, Server};

/// kubectl with its own cache dir; returns success and stdout+stderr.
fn kubectl(server: &Server, version: &str, args: &[&str]) -> (bool, String) {
    let cache = server.data_dir.join(format!("kubectl-cache-{version}"));
    let out = Command::new(support::kubectl_bin(version))
        .arg(format!("--kubeconfig={}", server.kubeconfig.display()))
        .arg(format!("--cache-dir={}", cache.display()))
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), output_text(&out))
}

fn explain(server: &Server, version: &str, args: &[&str]) -> String {
    let mut all = vec!["explain"];
    all.extend_from_slice(args);
    let (ok, text) = kubectl(server, version, &all);
    assert!(ok, "kubectl {version} explain {args:?} failed:\n{text}");
    text
}

fn assert_probe_explained(text: &str, who: &str) {
    // The field's own description, then its type's fields.
    assert!(
        text.contains("Periodic probe of container liveness"),
        "{who}:\n{text}"
    );
    assert!(text.contains("FIELDS:"), "{who}:\n{text}");
    for field in [
        "httpGet",
        "initialDelaySeconds",
        "failureThreshold",
        "tcpSocket",
    ] {
        assert!(text.contains(field), "{who} lacks {field}:\n{text}");
    }
    assert!(text.contains("<HTTPGetAction>"), "{who}:\n{text}");
}

#[test]
fn kubectl_explain_prints_a_nested_fields_description_and_its_sub_fields() {
    let server = Server::start(&[]);
    for version in ["1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33"] {
        let text = explain(&server, version, &["pod.spec.containers.livenessProbe"]);
        assert_probe_explained(&text, version);
        assert!(text.contains("KIND:") && text.contains("Pod"), "{text}");
    }
    let text = explain(&server, "1.33", &["svc.spec.ports"]);
    assert!(text.contains("ServicePort"), "{text}");
    assert!(text.contains("targetPort"), "{text}");
    assert!(text.contains("<IntOrString>"), "{text}");
}

#[test]
fn kubectl_1_27_explains_from_the_protobuf_openapi_v2_document() {
    // `plaintext-openapiv2` makes kubectl 1.27 read /openapi/v2, which it
    // asks for as gnostic protobuf.
    let server = Server::start(&[]);
    let v2 = ["--output=plaintext-openapiv2"];
    let text = explain(
        &server,
        "1.27",
        &["pod.spec.containers.livenessProbe", v2[0]],
    );
    assert!(text.contains("RESOURCE: livenessProbe <Object>"), "{text}");
    assert!(
        text.contains("Periodic probe of container liveness"),
        "{text}"
    );
    assert!(text.contains("Probe describes a health check"), "{text}");
    assert!(text.contains("httpGet\t<Object>"), "{text}");
    let text = explain(
        &server,
        "1.27",
        &["deployments", "--api-version=apps/v1", v2[0]],
    );
    assert!(text.contains("VERSION:  apps/v1"), "{text}");
    assert!(
        text.contains("Deployment enables declarative updates"),
        "{text}"
    );
    assert!(text.contains("spec\t<Object>"), "{text}");
}

#[test]
fn kubectl_explain_deployments_by_api_version_and_recursively() {
    let server = Server::start(&[]);
    for version in ["1.27", "1.33"] {
        let text = explain(&server, version, &["deployments", "--api-version=apps/v1"]);
        assert!(
            text.contains("Deployment enables declarative updates"),
            "{version}:\n{text}"
        );
        // 1.27 prints `VERSION: apps/v1`, 1.33 `GROUP: apps` and `VERSION: v1`.
        assert!(text.contains("apps"), "{version}:\n{text}");
        assert!(
            !text.contains("-required-"),
            "{version}: nothing is required of a Deployment:\n{text}"
        );
        for field in ["apiVersion", "metadata", "spec", "status"] {
            assert!(text.contains(field), "{version} lacks {field}:\n{text}");
        }
    }
    let text = explain(&server, "1.33", &["deployment", "--recursive"]);
    for nested in [
        "revisionHistoryLimit",
        "containers",
        "livenessProbe",
        "matchExpressions",
    ] {
        assert!(text.contains(nested), "--recursive lacks {nested}:\n{text}");
    }
}

const POD_WITH_UNKNOWN_FIELD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: validated
spec:
  containers:
  - name: c
    image: busybox
    bogusField: 1
"#;

fn create_from_stdin(server: &Server, version: &str, extra: &[&str]) -> (bool, String) {
    let cache = server.data_dir.join(format!("kubectl-cache-{version}"));
    let mut child = Command::new(support::kubectl_bin(version))
        .arg(format!("--kubeconfig={}", server.kubeconfig.display()))
        .arg(format!("--cache-dir={}", cache.display()))
        .args(["create", "-f", "-"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(POD_WITH_UNKNOWN_FIELD.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), output_text(&out))
}

#[test]
fn kubectl_create_rejects_unknown_fields_unless_validation_is_off() {
    let server = Server::start(&[]);
    let (ok, text) = create_from_stdin(&server, "1.28", &[]);
    assert!(!ok, "{text}");
    assert!(text.contains("unknown field"), "{text}");
    assert!(text.contains("bogusField"), "{text}");
    let (code, _) = server.curl_admin(&["/api/v1/namespaces/default/pods/validated"]);
    assert_eq!(code, 404, "a rejected object must not be stored");

    let (ok, text) = create_from_stdin(&server, "1.28", &["--validate=false"]);
    assert!(ok, "{text}");
    assert!(text.contains("pod/validated created"), "{text}");
}

#[test]
fn openapi_v3_index_links_the_apps_v1_document_with_the_deployment_kind() {
    let server = Server::start(&[]);
    let (code, body) = server.curl_admin(&["/openapi/v3"]);
    assert_eq!(code, 200, "{body}");
    let index = json(&body);
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap_or_else(|| panic!("no apps/v1 in {index}"))
        .to_string();
    assert!(url.contains("?hash="), "{url}");
    let (code, body) = server.curl_admin(&[&url]);
    assert_eq!(code, 200);
    let doc = json(&body);
    let deployment = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deployment["x-kubernetes-group-version-kind"],
        serde_json::json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    let containers =
        &doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
}

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: a
        image: nginx:1
        env: [{name: X, value: "1"}]
      - name: b
        image: busybox
"#;

fn apply(server: &Server, version: &str, dir: &std::path::Path, manifest: &str) {
    let file = dir.join("deployment.yaml");
    std::fs::write(&file, manifest).unwrap();
    let (ok, text) = kubectl(server, version, &["apply", "-f", file.to_str().unwrap()]);
    assert!(ok, "kubectl {version} apply: {text}");
}

#[test]
fn kubectl_apply_merges_containers_by_name_as_the_published_patch_strategies_say() {
    // kubectl computes apply patches from the OpenAPI patch extensions
    // (1.27 from v2, 1.33 from v3). Merging `containers` and `env` by
    // name keeps an env var another client added; replacing the lists
    // would drop it.
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    for version in ["1.27", "1.33"] {
        apply(&server, version, dir.path(), DEPLOYMENT);
        let patch = r#"{"spec":{"template":{"spec":{"containers":[{"name":"a","env":[{"name":"ADDED","value":"y"}]}]}}}}"#;
        let (ok, text) = kubectl(
            &server,
            version,
            &["patch", "deployment", "web", "-p", patch],
        );
        assert!(ok, "{text}");
        let changed = DEPLOYMENT
            .replace("nginx:1", "nginx:2")
            .replace("- name: b", "- name: c");
        apply(&server, version, dir.path(), &changed);
        let (ok, text) = kubectl(
            &server,
            version,
            &["get", "deployment", "web", "-o", "json"],
        );
        assert!(ok, "{text}");
        let containers = json(&text)["spec"]["template"]["spec"]["containers"].clone();
        let names: Vec<&str> = containers
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "c"], "{version}: {containers}");
        assert_eq!(containers[0]["image"], "nginx:2", "{version}");
        let env = containers[0]["env"].to_string();
        assert!(
            env.contains("ADDED") && env.contains("\"X\""),
            "{version}: {env}"
        );
        let (ok, text) = kubectl(&server, version, &["delete", "deployment", "web"]);
        assert!(ok, "{text}");
    }
}
