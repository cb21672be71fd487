//! Every kubectl binary present (1.27 ... 1.33) against a real server:
//! the commands that work so far, checked by their output.

mod support;

use support::{json, Server};

const VERSIONS: &[&str] = &["1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33"];

fn present_versions() -> Vec<&'static str> {
    let found: Vec<&str> = VERSIONS
        .iter()
        .copied()
        .filter(|v| {
            std::path::Path::new(support::KUBECTL_DIR)
                .join(format!("kubectl.{v}"))
                .is_file()
        })
        .collect();
    if found.is_empty() {
        vec!["1.33"] // falls back to Debian's kubectl
    } else {
        found
    }
}

#[test]
fn create_from_file_get_and_delete_work_with_every_kubectl() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    for version in present_versions() {
        let name = format!("from-file-{}", version.replace('.', "-"));
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels:\n    v: \"{version}\"\ndata:\n  greeting: hello\n")).unwrap();
        let f = file.to_str().unwrap();
        let out = server.kubectl_ok(version, &["create", "-f", f]);
        assert_eq!(
            out.trim(),
            format!("configmap/{name} created"),
            "kubectl {version}"
        );
        let out = server.kubectl_ok(
            version,
            &["get", "cm", &name, "-o", "jsonpath={.data.greeting}"],
        );
        assert_eq!(out, "hello", "kubectl {version}");
        let out = server.kubectl_ok(
            version,
            &["get", "cm", "-l", &format!("v={version}"), "-o", "name"],
        );
        assert_eq!(out.trim(), format!("configmap/{name}"), "kubectl {version}");
        let out = server.kubectl(version, &["create", "-f", f]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("AlreadyExists"),
            "kubectl {version}: {err}"
        );
        let out = server.kubectl_ok(version, &["delete", "-f", f]);
        assert!(
            out.contains(&format!("configmap \"{name}\" deleted")),
            "kubectl {version}: {out}"
        );
        let out = server.kubectl(version, &["get", "cm", &name]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("configmaps \"{name}\" not found")),
            "kubectl {version}: {err}"
        );
    }
}

#[test]
fn unknown_fields_are_rejected_by_strict_validation_and_dropped_on_warn() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\n  labelz: {}\ndatta:\n  a: b\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    for version in present_versions() {
        let out = server.kubectl(version, &["create", "-f", f]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "kubectl {version} accepted unknown fields"
        );
        assert!(
            err.contains("unknown field \"datta\"")
                && err.contains("unknown field \"metadata.labelz\""),
            "kubectl {version}: {err}"
        );
    }
    let out = server.kubectl("1.33", &["create", "-f", f, "--validate=warn"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Warning: unknown field \"datta\""), "{err}");
    let stored = server.kubectl_ok("1.33", &["get", "cm", "typo", "-o", "json"]);
    assert!(
        !stored.contains("datta") && !stored.contains("labelz"),
        "{stored}"
    );
}

#[test]
fn server_side_dry_run_stores_nothing() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cm.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dry\n",
    )
    .unwrap();
    let out = server.kubectl_ok(
        "1.33",
        &["create", "-f", file.to_str().unwrap(), "--dry-run=server"],
    );
    assert!(
        out.contains("configmap/dry created (server dry run)"),
        "{out}"
    );
    let out = server.kubectl("1.33", &["get", "cm", "dry"]);
    assert!(!out.status.success());
}

#[test]
fn version_and_api_discovery_commands_work() {
    let server = Server::start(&[]);
    let out = server.kubectl_ok("1.33", &["version", "-o", "json"]);
    let v = support::json(&out);
    assert_eq!(v["serverVersion"]["minor"], "33");
    let out = server.kubectl_ok("1.33", &["api-resources", "--api-group="]);
    assert!(
        out.contains("configmaps") && out.contains("cm") && out.contains("namespaces"),
        "{out}"
    );
    let out = server.kubectl_ok("1.33", &["api-versions"]);
    assert!(out.lines().any(|l| l == "v1"), "{out}");
}

#[test]
fn label_annotate_patch_and_apply_edit_objects_like_upstream() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cm.yaml");
    std::fs::write(&file, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: edited\ndata:\n  keep: \"1\"\n  drop: \"2\"\n").unwrap();
    let f = file.to_str().unwrap();
    assert!(server
        .kubectl_ok("1.33", &["apply", "-f", f])
        .contains("configmap/edited created"));
    assert!(server
        .kubectl_ok("1.33", &["label", "cm", "edited", "app=web"])
        .contains("labeled"));
    assert!(server
        .kubectl_ok("1.33", &["label", "cm", "edited", "app=web"])
        .contains("not labeled"));
    assert!(server
        .kubectl_ok("1.29", &["annotate", "cm", "edited", "note=hi"])
        .contains("annotated"));
    let out = server.kubectl("1.33", &["label", "cm", "edited", "app=db"]);
    assert!(
        !out.status.success(),
        "relabel without --overwrite must fail"
    );
    server.kubectl_ok("1.33", &["label", "cm", "edited", "app=db", "--overwrite"]);
    server.kubectl_ok(
        "1.33",
        &[
            "patch",
            "cm",
            "edited",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/data/json","value":"j"}]"#,
        ],
    );
    server.kubectl_ok(
        "1.33",
        &[
            "patch",
            "cm",
            "edited",
            "--type=merge",
            "-p",
            r#"{"data":{"merge":"m"}}"#,
        ],
    );
    server.kubectl_ok(
        "1.33",
        &[
            "patch",
            "cm",
            "edited",
            "--type=strategic",
            "-p",
            r#"{"data":{"strategic":"s"}}"#,
        ],
    );
    let out = server.kubectl(
        "1.33",
        &[
            "patch",
            "cm",
            "edited",
            "--type=json",
            "-p",
            r#"[{"op":"test","path":"/data/json","value":"no"}]"#,
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("the server rejected our request due to an error in our request"));
    // Client-side apply removes a field dropped from the file (three-way merge).
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: edited\ndata:\n  keep: \"1\"\n",
    )
    .unwrap();
    assert!(server
        .kubectl_ok("1.33", &["apply", "-f", f])
        .contains("configured"));
    let data = json(&server.kubectl_ok("1.33", &["get", "cm", "edited", "-o", "jsonpath={.data}"]));
    assert_eq!(
        data,
        serde_json::json!({"keep": "1", "json": "j", "merge": "m", "strategic": "s"})
    );
    let labels = server.kubectl_ok(
        "1.33",
        &["get", "cm", "edited", "--show-labels", "--no-headers"],
    );
    assert!(labels.contains("app=db"), "{labels}");
    server.kubectl_ok("1.33", &["label", "cm", "edited", "app-"]);
    let labels = server.kubectl_ok(
        "1.33",
        &["get", "cm", "edited", "-o", "jsonpath={.metadata.labels}"],
    );
    assert!(!labels.contains("app"), "{labels}");
    // Applying the same file again changes nothing.
    let rv = server.kubectl_ok(
        "1.33",
        &[
            "get",
            "cm",
            "edited",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    );
    assert!(server
        .kubectl_ok("1.33", &["apply", "-f", f])
        .contains("unchanged"));
    let again = server.kubectl_ok(
        "1.33",
        &[
            "get",
            "cm",
            "edited",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    );
    assert_eq!(rv, again);
}

#[test]
fn deployments_can_be_applied_and_their_image_set() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dep.yaml");
    std::fs::write(&file, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: busybox\n").unwrap();
    server.kubectl_ok("1.33", &["apply", "-f", file.to_str().unwrap()]);
    server.kubectl_ok("1.33", &["set", "image", "deployment/web", "web=busybox:2"]);
    let dep = json(&server.kubectl_ok("1.33", &["get", "deploy", "web", "-o", "json"]));
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        "busybox:2"
    );
    assert_eq!(dep["metadata"]["generation"], 2);
    let wide = server.kubectl_ok("1.33", &["get", "deploy", "-o", "wide"]);
    assert!(
        wide.contains("IMAGES") && wide.contains("busybox:2"),
        "{wide}"
    );
    for (version, replicas) in [("1.33", "5"), ("1.27", "4")] {
        let out = server.kubectl_ok(
            version,
            &[
                "scale",
                "deployment",
                "web",
                &format!("--replicas={replicas}"),
            ],
        );
        assert!(out.contains("deployment.apps/web scaled"), "{out}");
        let got = server.kubectl_ok(
            "1.33",
            &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"],
        );
        assert_eq!(got, replicas, "kubectl {version}");
    }
    let (code, body) =
        server.curl_admin(&["/apis/apps/v1/namespaces/default/deployments/web/scale"]);
    assert_eq!(code, 200, "{body}");
    let scale = json(&body);
    assert_eq!(
        (scale["kind"].as_str(), scale["spec"]["replicas"].as_i64()),
        (Some("Scale"), Some(4))
    );
    assert_eq!(scale["status"]["selector"], "app=web");
}
