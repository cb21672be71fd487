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
        assert!(
            err.contains(
                "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: "
            ),
            "kubectl {version}: {err}"
        );
    }
    // Server-side apply cannot type the configuration at all.
    let out = server.kubectl("1.33", &["apply", "--server-side", "-f", f]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("failed to create typed patch object (")
            && err.contains("typo; /v1, Kind=ConfigMap): errors:")
            && err.contains(".datta: field not declared in schema")
            && err.contains(".metadata.labelz: field not declared in schema"),
        "{err}"
    );
    // Items of a list merged by key are named by their key.
    let pod_file = dir.path().join("pod.yaml");
    std::fs::write(
        &pod_file,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: typo\nspec:\n  containers:\n  - name: c\n    image: busybox\n    imagePulPolicy: Always\n",
    )
    .unwrap();
    let out = server.kubectl(
        "1.33",
        &["apply", "--server-side", "-f", pod_file.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(r#".spec.containers[name="c"].imagePulPolicy: field not declared in schema"#),
        "{err}"
    );
    let out = server.kubectl("1.33", &["create", "-f", f, "--validate=warn"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Warning: unknown field \"datta\""), "{err}");
    let stored = server.kubectl_ok("1.33", &["get", "cm", "typo", "-o", "json"]);
    assert!(
        !stored.contains("datta") && !stored.contains("labelz"),
        "{stored}"
    );
    // An update (PUT) judges unknown fields the same way.
    let out = server.kubectl("1.33", &["replace", "-f", f]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "replace accepted unknown fields");
    assert!(
        err.contains("strict decoding error: ") && err.contains("unknown field \"datta\""),
        "{err}"
    );
    let out = server.kubectl("1.33", &["replace", "-f", f, "--validate=warn"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Warning: unknown field \"datta\""), "{err}");
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

#[test]
fn everyday_commands_get_describe_replace_edit_diff_wait_and_delete_work() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    for (name, app) in [("p1", "p"), ("p2", "q"), ("p3", "q")] {
        server.kubectl_ok(
            "1.33",
            &["run", name, "--image=busybox", "-l", &format!("app={app}")],
        );
    }
    let all = server.kubectl_ok("1.33", &["get", "all"]);
    assert!(
        all.contains("pod/p1") && all.contains("service/kubernetes"),
        "{all}"
    );
    let described = server.kubectl_ok("1.33", &["describe", "pod", "p1"]);
    assert!(
        described.contains("Name:")
            && described.contains("p1")
            && described.contains("Image:")
            && described.contains("busybox"),
        "{described}"
    );
    for version in ["1.27", "1.33"] {
        let sorted = server.kubectl_ok(
            version,
            &[
                "get",
                "pods",
                "--sort-by=.metadata.name",
                "--chunk-size=1",
                "-o",
                "name",
            ],
        );
        assert_eq!(
            sorted.lines().collect::<Vec<_>>(),
            ["pod/p1", "pod/p2", "pod/p3"],
            "kubectl {version}"
        );
        let by_field = server.kubectl_ok(
            version,
            &[
                "get",
                "pods",
                "--field-selector=metadata.name=p2",
                "-o",
                "name",
            ],
        );
        assert_eq!(by_field.trim(), "pod/p2", "kubectl {version}");
    }
    let custom = server.kubectl_ok(
        "1.33",
        &[
            "get",
            "pods",
            "-l",
            "app=q",
            "-o",
            "custom-columns=NAME:.metadata.name,IMAGE:.spec.containers[0].image",
        ],
    );
    assert!(
        custom.contains("NAME")
            && custom.contains("p2")
            && custom.contains("busybox")
            && !custom.contains("p1"),
        "{custom}"
    );
    let deleted = server.kubectl_ok("1.33", &["delete", "pods", "-l", "app=q"]);
    assert!(
        deleted.contains("pod \"p2\" deleted") && deleted.contains("pod \"p3\" deleted"),
        "{deleted}"
    );

    let file = dir.path().join("p1.yaml");
    std::fs::write(
        &file,
        server.kubectl_ok("1.33", &["get", "pod", "p1", "-o", "yaml"]),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    assert!(server
        .kubectl_ok("1.33", &["replace", "-f", f])
        .contains("pod/p1 replaced"));
    let uid_before = server.kubectl_ok(
        "1.33",
        &["get", "pod", "p1", "-o", "jsonpath={.metadata.uid}"],
    );
    let forced = server.kubectl_ok("1.33", &["replace", "--force", "-f", f]);
    assert!(
        forced.contains("deleted") && forced.contains("replaced"),
        "{forced}"
    );
    let uid_after = server.kubectl_ok(
        "1.33",
        &["get", "pod", "p1", "-o", "jsonpath={.metadata.uid}"],
    );
    assert_ne!(uid_before, uid_after);

    // A non-interactive editor: edit adds a label.
    let out = std::process::Command::new(support::kubectl_bin("1.33"))
        .arg(format!("--kubeconfig={}", server.kubeconfig.display()))
        .args(["edit", "pod", "p1"])
        .env(
            "EDITOR",
            "sed -i -e 's/^  labels:$/  labels:\\n    edited: \"yes\"/'",
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let labels = server.kubectl_ok(
        "1.33",
        &[
            "get",
            "pod",
            "p1",
            "-o",
            "jsonpath={.metadata.labels.edited}",
        ],
    );
    assert_eq!(labels, "yes");

    let cm = dir.path().join("cm.yaml");
    std::fs::write(
        &cm,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: differ\ndata:\n  a: b\n",
    )
    .unwrap();
    server.kubectl_ok("1.33", &["apply", "-f", cm.to_str().unwrap()]);
    std::fs::write(
        &cm,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: differ\ndata:\n  a: c\n",
    )
    .unwrap();
    let out = server.kubectl("1.33", &["diff", "-f", cm.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "diff exits 1 when there are differences"
    );
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(
        diff.contains("-  a: b") && diff.contains("+  a: c"),
        "{diff}"
    );
    // diff runs a server-side dry run: nothing changed.
    assert_eq!(
        server.kubectl_ok("1.33", &["get", "cm", "differ", "-o", "jsonpath={.data.a}"]),
        "b"
    );

    let waited = server.kubectl_ok(
        "1.33",
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Pending",
            "pod/p1",
            "--timeout=10s",
        ],
    );
    assert!(waited.contains("condition met"), "{waited}");
    assert!(server
        .kubectl_ok("1.33", &["delete", "pods", "--all"])
        .contains("pod \"p1\" deleted"));
    let none = server.kubectl("1.33", &["get", "pods"]);
    assert!(String::from_utf8_lossy(&none.stderr).contains("No resources found"));
}

#[test]
fn kubectl_create_subcommands_work_over_protobuf_and_json() {
    let server = Server::start(&[]);
    // kubectl 1.32+ sends these bodies as protobuf, older ones as JSON.
    for version in ["1.33", "1.31"] {
        let ns = format!("create-{}", version.replace('.', "-"));
        server.kubectl_ok(version, &["create", "namespace", &ns]);
        let commands: &[&[&str]] = &[
            &[
                "configmap",
                "c1",
                "--from-literal=a=b",
                "--from-literal=empty=",
            ],
            &["secret", "generic", "s1", "--from-literal=a=b"],
            &["serviceaccount", "sa1"],
            &["service", "clusterip", "svc1", "--tcp=80:8080"],
            &["deployment", "d1", "--image=busybox", "--replicas=2"],
            &["job", "j1", "--image=busybox"],
            &[
                "cronjob",
                "cj1",
                "--image=busybox",
                "--schedule=*/5 * * * *",
            ],
            &["quota", "q1", "--hard=pods=2"],
            &["role", "r1", "--verb=get", "--resource=pods"],
            &["rolebinding", "rb1", "--clusterrole=view", "--user=u"],
            &[
                "poddisruptionbudget",
                "pdb1",
                "--selector=a=b",
                "--min-available=1",
            ],
            &["ingress", "i1", "--rule=a.example/=svc1:80"],
        ];
        for args in commands {
            let mut full = vec!["create", "-n", ns.as_str()];
            full.extend_from_slice(args);
            let out = server.kubectl_ok(version, &full);
            assert!(out.contains("created"), "kubectl {version} {args:?}: {out}");
        }
        let data = json(&server.kubectl_ok(
            "1.33",
            &["get", "cm", "c1", "-n", &ns, "-o", "jsonpath={.data}"],
        ));
        assert_eq!(
            data,
            serde_json::json!({"a": "b", "empty": ""}),
            "kubectl {version}"
        );
        let secret = server.kubectl_ok(
            "1.33",
            &["get", "secret", "s1", "-n", &ns, "-o", "jsonpath={.data.a}"],
        );
        assert_eq!(secret, "Yg==", "kubectl {version}");
        let replicas = server.kubectl_ok(
            "1.33",
            &[
                "get",
                "deploy",
                "d1",
                "-n",
                &ns,
                "-o",
                "jsonpath={.spec.replicas}",
            ],
        );
        assert_eq!(replicas, "2", "kubectl {version}");
        let port = server.kubectl_ok(
            "1.33",
            &[
                "get",
                "svc",
                "svc1",
                "-n",
                &ns,
                "-o",
                "jsonpath={.spec.ports[0].targetPort}",
            ],
        );
        assert_eq!(port, "8080", "kubectl {version}");
    }
    let pc = server.kubectl_ok("1.33", &["create", "priorityclass", "pc1", "--value=10"]);
    assert!(pc.contains("created"), "{pc}");
}

#[test]
fn server_side_apply_tracks_owners_conflicts_and_force() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cm.yaml");
    let f = file.to_str().unwrap();
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"1\"\n  b: \"2\"\n",
    )
    .unwrap();
    assert!(server
        .kubectl_ok("1.33", &["apply", "--server-side", "-f", f])
        .contains("serverside-applied"));
    let managed = json(&server.kubectl_ok(
        "1.33",
        &["get", "cm", "ssa", "-o", "json", "--show-managed-fields"],
    ));
    assert_eq!(
        managed["metadata"]["managedFields"][0]["manager"],
        "kubectl"
    );
    assert_eq!(
        managed["metadata"]["managedFields"][0]["operation"],
        "Apply"
    );
    // Another manager changes a field the applier owns: the next apply conflicts.
    server.kubectl_ok(
        "1.33",
        &["patch", "cm", "ssa", "-p", r#"{"data":{"a":"changed"}}"#],
    );
    let out = server.kubectl("1.33", &["apply", "--server-side", "-f", f]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "Apply failed with 1 conflict: conflict with \"kubectl-patch\" using v1: .data.a"
        ),
        "{err}"
    );
    server.kubectl_ok(
        "1.33",
        &["apply", "--server-side", "--force-conflicts", "-f", f],
    );
    assert_eq!(
        server.kubectl_ok("1.33", &["get", "cm", "ssa", "-o", "jsonpath={.data.a}"]),
        "1"
    );
    // Dropping a field from the applied configuration removes it.
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"1\"\n",
    )
    .unwrap();
    server.kubectl_ok("1.33", &["apply", "--server-side", "-f", f]);
    let data = json(&server.kubectl_ok("1.33", &["get", "cm", "ssa", "-o", "jsonpath={.data}"]));
    assert_eq!(data, serde_json::json!({"a": "1"}));
    // Apply creates, and requires a field manager.
    let (code, body) = server.curl_admin(&[
        "-X",
        "PATCH",
        "-H",
        "Content-Type: application/apply-patch+yaml",
        "--data-binary",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: new\n",
        "/api/v1/namespaces/default/configmaps/new",
    ]);
    assert_eq!(code, 400, "{body}");
    let (code, body) = server.curl_admin(&[
        "-X",
        "PATCH",
        "-H",
        "Content-Type: application/apply-patch+yaml",
        "--data-binary",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: new\n",
        "/api/v1/namespaces/default/configmaps/new?fieldManager=tester",
    ]);
    assert_eq!(code, 201, "{body}");
}

#[test]
fn kubectl_proxy_forwards_requests_with_the_kubeconfig_credentials() {
    let server = Server::start(&[]);
    let port = support::free_port();
    let mut proxy = std::process::Command::new(support::kubectl_bin("1.33"))
        .arg(format!("--kubeconfig={}", server.kubeconfig.display()))
        .args(["proxy", &format!("--port={port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/api/v1/namespaces");
    let mut body = String::new();
    for _ in 0..100 {
        let out = std::process::Command::new("curl")
            .args(["-s", "--max-time", "5", &url])
            .output()
            .unwrap();
        body = String::from_utf8_lossy(&out.stdout).into_owned();
        if body.contains("NamespaceList") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = proxy.kill();
    let _ = proxy.wait();
    assert!(
        support::item_names(&body).contains(&"kube-system".to_string()),
        "{body}"
    );
}

#[test]
fn kubectl_debug_adds_ephemeral_containers_that_can_never_be_changed_or_removed() {
    let server = Server::start(&[]);
    server.kubectl_ok(
        "1.33",
        &["run", "target", "--image=busybox", "--restart=Never"],
    );
    let mut expected = Vec::new();
    for version in present_versions() {
        let name = format!("dbg-{}", version.replace('.', "-"));
        server.kubectl_ok(
            version,
            &["debug", "target", "--image=busybox", "-c", &name],
        );
        expected.push(name);
        let names = server.kubectl_ok(
            version,
            &[
                "get",
                "pod",
                "target",
                "-o",
                "jsonpath={.spec.ephemeralContainers[*].name}",
            ],
        );
        assert_eq!(
            names.split_whitespace().collect::<Vec<_>>(),
            expected,
            "kubectl {version}"
        );
    }
    let images = server.kubectl_ok(
        "1.33",
        &[
            "get",
            "pod",
            "target",
            "-o",
            "jsonpath={.spec.ephemeralContainers[0].image}",
        ],
    );
    assert_eq!(images, "busybox");

    let path = "/api/v1/namespaces/default/pods/target/ephemeralcontainers";
    let (code, body) = server.curl_admin(&[path]);
    assert_eq!(code, 200, "{body}");
    let mut pod = json(&body);
    assert_eq!(pod["kind"], "Pod");
    // Removing one is refused, as is changing one.
    let mut removed = pod.clone();
    removed["spec"]["ephemeralContainers"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    let (code, body) = support::put_json(&server, path, &removed.to_string());
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("may not be removed"), "{body}");
    let mut changed = pod.clone();
    changed["spec"]["ephemeralContainers"][0]["image"] = "busybox:2".into();
    let (code, body) = support::put_json(&server, path, &changed.to_string());
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("may not be changed"), "{body}");
    // What containers may have and ephemeral ones may not.
    pod["spec"]["ephemeralContainers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "with-port", "image": "busybox", "ports": [{"containerPort": 80}], "targetContainerName": "nope"}));
    let (code, body) = support::put_json(&server, path, &pod.to_string());
    assert_eq!(code, 422, "{body}");
    let status = json(&body);
    let fields: Vec<&str> = status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    let last = expected.len();
    assert!(
        fields.contains(&format!("spec.ephemeralContainers[{last}].ports").as_str())
            && fields.contains(
                &format!("spec.ephemeralContainers[{last}].targetContainerName").as_str()
            ),
        "{body}"
    );
    // The subresource changes ephemeral containers only: a label in the
    // same body is ignored.
    pod["spec"]["ephemeralContainers"][last] =
        serde_json::json!({"name": "plain", "image": "busybox"});
    pod["metadata"]["labels"] = serde_json::json!({"sneaky": "yes"});
    let (code, body) = support::put_json(&server, path, &pod.to_string());
    assert_eq!(code, 200, "{body}");
    let labels = server.kubectl_ok(
        "1.33",
        &["get", "pod", "target", "-o", "jsonpath={.metadata.labels}"],
    );
    assert!(!labels.contains("sneaky"), "{labels}");
}

#[test]
fn metadata_only_gets_lists_and_watches_carry_nothing_but_metadata() {
    let server = Server::start(&["--disable-controller-manager", "--disable-scheduler"]);
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "configmap",
            "meta",
            "--from-literal=key=hiddenvalue",
        ],
    );
    let accept = "Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
    let base = "/api/v1/namespaces/default/configmaps";
    let (code, body) = server.curl_admin(&["-H", accept, base]);
    assert_eq!(code, 200, "{body}");
    let list = json(&body);
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    let item = &list["items"][0];
    assert_eq!(item["kind"], "PartialObjectMetadata", "{list}");
    assert_eq!(item["metadata"]["name"], "meta");
    assert!(item["metadata"]["uid"].is_string(), "{item}");
    assert!(
        item.get("data").is_none() && !body.contains("hiddenvalue"),
        "{body}"
    );

    let accept_one = "Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
    let (code, body) = server.curl_admin(&[
        "-H",
        accept_one,
        &format!("{base}?watch=true&timeoutSeconds=1"),
    ]);
    assert_eq!(code, 200, "{body}");
    let first = json(body.lines().next().unwrap_or_default());
    assert_eq!(first["type"], "ADDED", "{body}");
    assert_eq!(first["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(first["object"]["metadata"]["name"], "meta");
    assert!(!body.contains("hiddenvalue"), "{body}");
}
