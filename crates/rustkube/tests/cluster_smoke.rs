//! `rustkube server` on the embedded datastore, driven by kubectl and curl.

mod support;

/// The API server alone: these tests check its own behaviour, so no
/// controller (for example the root CA publisher, adding a ConfigMap to
/// every namespace, or the namespace controller) changes what they see.
fn api_server() -> Server {
    Server::start(&["--disable-controller-manager", "--disable-scheduler"])
}

use std::process::Command;

use support::{json, Server};

#[test]
fn kubectl_and_curl_work_against_the_embedded_datastore() {
    let server = api_server();
    support::api_smoke(&server);
}

/// Patches start from the watch cache's copy, which may lag the datastore;
/// racing patches of one object must still all land (a stale copy makes
/// the write conflict and the server retries from the datastore).
#[test]
fn racing_patches_of_one_object_all_land() {
    let server = api_server();
    let path = "/api/v1/namespaces/default/configmaps";
    let (code, body) = support::post_json(
        &server,
        path,
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"race"}}"#,
    );
    assert_eq!(code, 201, "{body}");
    let object = format!("{path}/race");
    std::thread::scope(|scope| {
        for writer in 0..4 {
            let (server, object) = (&server, &object);
            scope.spawn(move || {
                for i in 0..10 {
                    let patch = format!(r#"{{"data":{{"w{writer}-{i}":"x"}}}}"#);
                    let (code, body) =
                        support::patch_json(server, object, "application/merge-patch+json", &patch);
                    assert_eq!(code, 200, "{body}");
                }
            });
        }
    });
    let (code, body) = server.curl_admin(&[&object]);
    assert_eq!(code, 200, "{body}");
    let data = json(&body)["data"].clone();
    for writer in 0..4 {
        for i in 0..10 {
            assert_eq!(data[format!("w{writer}-{i}")], "x", "{data}");
        }
    }
    // Pinned to the resourceVersion the previous write returned, with no
    // other writer: always accepted. (Whether the cache lags here depends
    // on timing; the server retries a pinned patch from the datastore when
    // the cache's copy was stale.)
    let mut rv = json(&body)["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..20 {
        let pinned =
            format!(r#"{{"metadata":{{"resourceVersion":"{rv}"}},"data":{{"p{i}":"y"}}}}"#);
        let (code, body) =
            support::patch_json(&server, &object, "application/merge-patch+json", &pinned);
        assert_eq!(code, 200, "{body}");
        rv = json(&body)["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
    }
}

#[test]
fn malformed_and_oversized_bodies_get_status_errors() {
    let server = api_server();
    let path = "/api/v1/namespaces/default/configmaps";
    let cases: &[(&str, &str, u16)] = &[
        ("application/json", "{\"metadata\": ", 400),
        ("application/json", "[1,2]", 400),
        ("application/yaml", "metadata: [unclosed", 400),
        (
            "application/json",
            "{\"apiVersion\":\"v2\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x\"}}",
            400,
        ),
        ("text/plain", "hello", 415),
    ];
    for (content_type, body, want) in cases {
        let (code, resp) = server.curl_admin(&[
            "-X",
            "POST",
            "-H",
            &format!("Content-Type: {content_type}"),
            "--data-binary",
            body,
            path,
        ]);
        assert_eq!(code, *want, "{content_type} {body}: {resp}");
        let status = json(&resp);
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["code"].as_u64(), Some(*want as u64));
    }
    // Over 3 MiB: 413, whether or not the length is declared up front.
    let big = std::env::temp_dir().join(format!("rustkube-big-{}.json", std::process::id()));
    let payload = format!(
        "{{\"metadata\":{{\"name\":\"big\"}},\"data\":{{\"k\":\"{}\"}}}}",
        "x".repeat(3 * 1024 * 1024 + 10)
    );
    std::fs::write(&big, payload).unwrap();
    let file_arg = format!("@{}", big.display());
    let (code, resp) = support::post_json(&server, path, &file_arg);
    assert_eq!(code, 413, "{resp}");
    assert_eq!(json(&resp)["reason"], "RequestEntityTooLarge");
    let (code, resp) = server.curl_admin(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &file_arg,
        path,
    ]);
    assert_eq!(code, 413, "{resp}");
    std::fs::remove_file(&big).unwrap();
    // The server is still healthy and nothing was stored.
    let (code, body) = server.curl_admin(&[path]);
    assert_eq!(code, 200);
    assert!(support::item_names(&body).is_empty(), "{body}");
}

#[test]
fn restart_keeps_data_ca_and_kubeconfig_and_a_fresh_dir_gets_a_new_ca() {
    let mut server = api_server();
    server.kubectl_ok("1.33", &["get", "ns"]);
    let (code, _) = server.curl_admin(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/yaml",
        "--data-binary",
        "metadata:\n  name: survivor\ndata:\n  a: b\n",
        "/api/v1/namespaces/kube-system/configmaps",
    ]);
    assert_eq!(code, 201);
    let ca_before = std::fs::read_to_string(server.tls_file("server-ca.crt")).unwrap();
    let kubeconfig_before = std::fs::read_to_string(&server.kubeconfig).unwrap();

    server.restart();
    assert_eq!(
        std::fs::read_to_string(server.tls_file("server-ca.crt")).unwrap(),
        ca_before
    );
    // The kubeconfig written before the restart still works as it is.
    std::fs::write(&server.kubeconfig, &kubeconfig_before).unwrap();
    let out = server.kubectl_ok(
        "1.33",
        &[
            "get",
            "configmap",
            "survivor",
            "-n",
            "kube-system",
            "-o",
            "jsonpath={.data.a}",
        ],
    );
    assert_eq!(out, "b");

    let other = api_server();
    let other_ca = std::fs::read_to_string(other.tls_file("server-ca.crt")).unwrap();
    assert_ne!(other_ca, ca_before);
    // The first cluster's credentials are not accepted by the second.
    let out = Command::new(support::kubectl_bin("1.33"))
        .arg(format!("--kubeconfig={}", server.kubeconfig.display()))
        .arg(format!("--server=https://127.0.0.1:{}", other.port))
        .args(["get", "ns"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn bad_flags_and_config_exit_2_with_one_line() {
    let bin = env!("CARGO_BIN_EXE_rustkube");
    let dir = tempfile::tempdir().unwrap();
    let bad_config = dir.path().join("config.yaml");
    std::fs::write(&bad_config, "https-listen-port: [1, 2]\n").unwrap();
    let unknown_key = dir.path().join("unknown.yaml");
    std::fs::write(&unknown_key, "no-such-flag: true\n").unwrap();
    let cases: Vec<Vec<String>> = vec![
        vec!["server".into(), "--no-such-flag".into()],
        vec!["server".into(), "--https-listen-port=99999".into()],
        vec!["server".into(), "--service-cidr=10.43.0.0".into()],
        vec![
            "server".into(),
            format!("--config={}", bad_config.display()),
        ],
        vec![
            "server".into(),
            format!("--config={}", unknown_key.display()),
        ],
        vec!["server".into(), "--config=/nonexistent/c.yaml".into()],
    ];
    for args in cases {
        let out = Command::new(bin)
            .args(&args)
            .env("RUSTKUBE_DATA_DIR", dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn version_and_server_help_list_everything() {
    let bin = env!("CARGO_BIN_EXE_rustkube");
    let out = Command::new(bin).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("v1.33"));
    let out = Command::new(bin)
        .args(["server", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--data-dir",
        "--bind-address",
        "--advertise-address",
        "--https-listen-port",
        "--tls-san",
        "--write-kubeconfig",
        "--write-kubeconfig-mode",
        "--datastore-endpoint",
        "--datastore-cafile",
        "--datastore-certfile",
        "--datastore-keyfile",
        "--cluster-cidr",
        "--service-cidr",
        "--cluster-dns",
        "--cluster-domain",
        "--disable-agent",
    ] {
        assert!(help.contains(flag), "{flag} missing from help:\n{help}");
    }
}

#[test]
fn config_file_sets_serving_sans_and_kubeconfig_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = api_server();
    // Restart the same server with settings from the environment and file.
    server.stop();
    let config = dir.path().join("c.yaml");
    std::fs::write(
        &config,
        "tls-san:\n  - api.example.test\n  - 192.0.2.10\nwrite-kubeconfig-mode: \"0640\"\n",
    )
    .unwrap();
    server.extra_args = vec![format!("--config={}", config.display())];
    // The old kubeconfig (mode 0600) must go, or the readiness wait could
    // see it before the new server has rewritten it with the new mode.
    std::fs::remove_file(&server.kubeconfig).unwrap();
    server.relaunch();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&server.kubeconfig)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);
    let cert = std::fs::read_to_string(server.tls_file("serving-kube-apiserver.crt")).unwrap();
    let info = pki::cert_info_pem(&cert).unwrap();
    assert!(
        info.dns_names.contains(&"api.example.test".to_string()),
        "{info:?}"
    );
    assert!(info
        .dns_names
        .contains(&"kubernetes.default.svc.cluster.local".to_string()));
    let ips: Vec<String> = info.ips.iter().map(|i| i.to_string()).collect();
    for ip in ["127.0.0.1", "10.43.0.1", "192.0.2.10"] {
        assert!(ips.contains(&ip.to_string()), "{ips:?}");
    }
}

fn create_cm(server: &Server, ns: &str, name: &str) -> u16 {
    let body = format!(r#"{{"metadata":{{"name":"{name}"}},"data":{{"k":"v"}}}}"#);
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    server
        .curl_admin(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body,
            &path,
        ])
        .0
}

#[test]
fn lists_paginate_with_limit_and_continue_at_one_revision() {
    let server = api_server();
    for i in 0..5 {
        assert_eq!(create_cm(&server, "default", &format!("page-{i}")), 201);
    }
    let (code, body) = server.curl_admin(&["/api/v1/namespaces/default/configmaps?limit=2"]);
    assert_eq!(code, 200, "{body}");
    let first = json(&body);
    assert_eq!(support::item_names(&body), ["page-0", "page-1"]);
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    // A write between pages does not show up in later pages.
    assert_eq!(create_cm(&server, "default", "page-9"), 201);
    let mut names = support::item_names(&body);
    let mut token = first["metadata"]["continue"].as_str().unwrap().to_string();
    while !token.is_empty() {
        let (code, body) = server.curl_admin(&[&format!(
            "/api/v1/namespaces/default/configmaps?limit=2&continue={token}"
        )]);
        assert_eq!(code, 200, "{body}");
        let page = json(&body);
        assert_eq!(
            page["metadata"]["resourceVersion"].as_str(),
            Some(rv.as_str())
        );
        names.extend(support::item_names(&body));
        token = page["metadata"]["continue"]
            .as_str()
            .unwrap_or("")
            .to_string();
    }
    assert_eq!(names, ["page-0", "page-1", "page-2", "page-3", "page-4"]);
    let (code, body) =
        server.curl_admin(&["/api/v1/namespaces/default/configmaps?limit=2&continue=garbage"]);
    assert_eq!(code, 400, "{body}");
}

#[test]
fn kubectl_tables_yaml_and_field_selectors_work_for_configmaps() {
    let server = api_server();
    assert_eq!(create_cm(&server, "kube-public", "shown"), 201);
    let out = server.kubectl_ok("1.33", &["get", "configmaps", "-A"]);
    assert!(
        out.starts_with("NAMESPACE") && out.contains("DATA") && out.contains("shown"),
        "{out}"
    );
    let out = server.kubectl_ok(
        "1.27",
        &["get", "cm", "shown", "-n", "kube-public", "-o", "yaml"],
    );
    assert!(out.contains("name: shown") && out.contains("k: v"), "{out}");
    let (code, body) = server.curl_admin(&[
        "-H",
        "Accept: application/yaml",
        "/api/v1/namespaces/kube-public/configmaps/shown",
    ]);
    assert_eq!(code, 200);
    assert!(body.contains("kind: ConfigMap"), "{body}");
    let (_, body) =
        server.curl_admin(&["/api/v1/configmaps?fieldSelector=metadata.namespace%3Dkube-public"]);
    assert_eq!(support::item_names(&body), ["shown"]);
    let (code, body) = server.curl_admin(&["/api/v1/configmaps?fieldSelector=data.k%3Dv"]);
    assert_eq!(code, 400, "{body}");
}

#[test]
fn namespace_lifecycle_guards_content_and_system_namespaces() {
    let server = api_server();
    assert_eq!(create_cm(&server, "missing", "x"), 404);
    let (code, body) = server.curl_admin(&["-X", "DELETE", "/api/v1/namespaces/kube-system"]);
    assert_eq!(code, 403, "{body}");
    let (code, _) = support::post_json(
        &server,
        "/api/v1/namespaces",
        r#"{"metadata":{"name":"doomed"}}"#,
    );
    assert_eq!(code, 201);
    let (code, body) = server.curl_admin(&["-X", "DELETE", "/api/v1/namespaces/doomed"]);
    assert_eq!(code, 200, "{body}");
    let ns = json(&body);
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert!(ns["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(create_cm(&server, "doomed", "late"), 403);
    // Finalizing (what the namespace controller does once it is empty)
    // removes the namespace.
    let (code, body) = server.curl_admin(&["-X", "PUT", "-H", "Content-Type: application/json", "--data-binary", r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"doomed"},"spec":{"finalizers":[]}}"#, "/api/v1/namespaces/doomed/finalize"]);
    assert_eq!(code, 200, "{body}");
    let (code, _) = server.curl_admin(&["/api/v1/namespaces/doomed"]);
    assert_eq!(code, 404);
    // Status is written only through /status, and /status writes only status.
    let (code, body) = support::put_json(
        &server,
        "/api/v1/namespaces/default",
        r#"{"metadata":{"name":"default","labels":{"x":"y"}},"status":{"phase":"Terminating"}}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["status"]["phase"], "Active");
    let (code, body) = server.curl_admin(&["-X", "PUT", "-H", "Content-Type: application/json", "--data-binary", r#"{"metadata":{"name":"default","labels":{"z":"w"}},"status":{"phase":"Active","conditions":[]}}"#, "/api/v1/namespaces/default/status"]);
    assert_eq!(code, 200, "{body}");
    let ns = json(&body);
    assert_eq!(ns["metadata"]["labels"]["x"], "y");
    assert!(ns["metadata"]["labels"].get("z").is_none(), "{body}");
    let (code, _) = server.curl_admin(&["-X", "DELETE", "/api/v1/namespaces/default/status"]);
    assert_eq!(code, 405);
    let (code, _) = support::post_json(
        &server,
        "/api/v1/namespaces",
        r#"{"metadata":{"name":"Not_A_Label"}}"#,
    );
    assert_eq!(code, 422);
}

#[test]
fn watch_without_resource_version_starts_with_existing_objects() {
    let server = api_server();
    assert_eq!(create_cm(&server, "default", "early"), 201);
    let (code, body) =
        server.curl_admin(&["/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1"]);
    assert_eq!(code, 200);
    let first = json(body.lines().next().unwrap());
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["metadata"]["name"], "early");
    // A watch from a resourceVersion replays what followed it (expiry of
    // older ones is covered by the watch cache's own tests); an unparsable
    // one is a 400.
    let rv: i64 = first["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let path = format!(
        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={}&timeoutSeconds=1",
        rv - 1
    );
    let (code, body) = server.curl_admin(&[&path]);
    assert_eq!(code, 200);
    let event = json(body.lines().next().unwrap());
    assert_eq!(event["type"], "ADDED", "{body}");
    assert_eq!(event["object"]["metadata"]["name"], "early");
    let (code, _) =
        server.curl_admin(&["/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=abc"]);
    assert_eq!(code, 400);
}

/// `kubectl create -f` of a List of ConfigMaps in `ns`, each with `size`
/// bytes of data.
fn create_configmaps(
    server: &Server,
    dir: &std::path::Path,
    ns: &str,
    names: &[String],
    size: usize,
) {
    let items: Vec<serde_json::Value> = names
        .iter()
        .map(|name| {
            serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns},
                "data": {"blob": "x".repeat(size)}
            })
        })
        .collect();
    let file = dir.join(format!("{ns}-{}.json", names.len()));
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    std::fs::write(&file, list.to_string()).unwrap();
    server.kubectl_ok(
        "1.33",
        &["create", "-f", file.to_str().unwrap(), "-o", "name"],
    );
}

#[test]
fn a_watcher_that_falls_behind_catches_up_from_the_watch_cache_instead_of_being_cut_off() {
    let server = api_server();
    let dir = tempfile::tempdir().unwrap();
    server.kubectl_ok("1.33", &["create", "namespace", "watched"]);
    server.kubectl_ok("1.33", &["create", "namespace", "noise"]);
    let list = json(&server.kubectl_ok(
        "1.33",
        &["get", "--raw", "/api/v1/namespaces/watched/configmaps"],
    ));
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    // A watcher that reads nothing for a while: curl's output goes to a
    // pipe this test leaves unread, so the server's send path fills up.
    let mut curl = Command::new("curl")
        .args(["-s", "-N", "--http1.1", "--max-time", "120", "--cacert"])
        .arg(server.tls_file("server-ca.crt"))
        .arg("--cert")
        .arg(server.tls_file("client-admin.crt"))
        .arg("--key")
        .arg(server.tls_file("client-admin.key"))
        .arg(server.url(&format!(
            "/api/v1/namespaces/watched/configmaps?watch=1&resourceVersion={rv}"
        )))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // 40 MiB of events for the watcher: more than the pipe, the sockets and
    // the server's buffers hold, so its stream stops moving...
    let big: Vec<String> = (0..80).map(|i| format!("big-{i:02}")).collect();
    create_configmaps(&server, dir.path(), "watched", &big, 512 << 10);
    // ...while more events than the live stream buffers (4,096) go by.
    for batch in 0..5 {
        let names: Vec<String> = (0..1000).map(|i| format!("n-{batch}-{i:04}")).collect();
        create_configmaps(&server, dir.path(), "noise", &names, 16);
    }
    server.kubectl_ok("1.33", &["create", "configmap", "last", "-n", "watched"]);

    // Reading now, the watcher gets every event in order and the stream
    // goes on: no gap, no early end, no 410.
    let stdout = curl.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut names = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let event = json(&line);
            let name = event["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            names.push(format!("{} {name}", event["type"].as_str().unwrap_or("")));
            if name == "last" {
                break;
            }
        }
        names
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while !reader.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = curl.kill();
    let _ = curl.wait();
    let names = reader.join().unwrap();
    let mut expected: Vec<String> = big.iter().map(|n| format!("ADDED {n}")).collect();
    expected.push("ADDED last".into());
    assert_eq!(names, expected);
}
