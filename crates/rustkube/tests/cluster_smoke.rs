//! `rustkube server` on the embedded datastore, driven by kubectl and curl.

mod support;

use std::process::Command;

use support::{json, Server};

#[test]
fn kubectl_and_curl_work_against_the_embedded_datastore() {
    let server = Server::start(&[]);
    support::api_smoke(&server);
}

#[test]
fn malformed_and_oversized_bodies_get_status_errors() {
    let server = Server::start(&[]);
    let path = "/api/v1/namespaces/default/configmaps";
    let cases: &[(&str, &str, u16)] = &[
        ("application/json", "{\"metadata\": ", 400),
        ("application/json", "[1,2]", 400),
        ("application/yaml", "metadata: [unclosed", 400),
        ("application/json", "{\"apiVersion\":\"v2\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x\"}}", 400),
        ("text/plain", "hello", 415),
    ];
    for (content_type, body, want) in cases {
        let (code, resp) = server.curl_admin(&["-X", "POST", "-H", &format!("Content-Type: {content_type}"), "--data-binary", body, path]);
        assert_eq!(code, *want, "{content_type} {body}: {resp}");
        let status = json(&resp);
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["code"].as_u64(), Some(*want as u64));
    }
    // Over 3 MiB: 413, whether or not the length is declared up front.
    let big = std::env::temp_dir().join(format!("rustkube-big-{}.json", std::process::id()));
    let payload = format!("{{\"metadata\":{{\"name\":\"big\"}},\"data\":{{\"k\":\"{}\"}}}}", "x".repeat(3 * 1024 * 1024 + 10));
    std::fs::write(&big, payload).unwrap();
    let file_arg = format!("@{}", big.display());
    let (code, resp) = server.curl_admin(&["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", &file_arg, path]);
    assert_eq!(code, 413, "{resp}");
    assert_eq!(json(&resp)["reason"], "RequestEntityTooLarge");
    let (code, resp) = server.curl_admin(&["-X", "POST", "-H", "Content-Type: application/json", "-H", "Transfer-Encoding: chunked", "--data-binary", &file_arg, path]);
    assert_eq!(code, 413, "{resp}");
    std::fs::remove_file(&big).unwrap();
    // The server is still healthy and nothing was stored.
    let (code, body) = server.curl_admin(&[path]);
    assert_eq!(code, 200);
    assert!(support::item_names(&body).is_empty(), "{body}");
}

#[test]
fn restart_keeps_data_ca_and_kubeconfig_and_a_fresh_dir_gets_a_new_ca() {
    let mut server = Server::start(&[]);
    server.kubectl_ok("1.33", &["get", "ns"]);
    let (code, _) = server.curl_admin(&["-X", "POST", "-H", "Content-Type: application/yaml", "--data-binary", "metadata:\n  name: survivor\ndata:\n  a: b\n", "/api/v1/namespaces/kube-system/configmaps"]);
    assert_eq!(code, 201);
    let ca_before = std::fs::read_to_string(server.tls_file("server-ca.crt")).unwrap();
    let kubeconfig_before = std::fs::read_to_string(&server.kubeconfig).unwrap();

    server.restart();
    assert_eq!(std::fs::read_to_string(server.tls_file("server-ca.crt")).unwrap(), ca_before);
    // The kubeconfig written before the restart still works as it is.
    std::fs::write(&server.kubeconfig, &kubeconfig_before).unwrap();
    let out = server.kubectl_ok("1.33", &["get", "configmap", "survivor", "-n", "kube-system", "-o", "jsonpath={.data.a}"]);
    assert_eq!(out, "b");

    let other = Server::start(&[]);
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
        vec!["server".into(), format!("--config={}", bad_config.display())],
        vec!["server".into(), format!("--config={}", unknown_key.display())],
        vec!["server".into(), "--config=/nonexistent/c.yaml".into()],
    ];
    for args in cases {
        let out = Command::new(bin).args(&args).env("RUSTKUBE_DATA_DIR", dir.path()).output().unwrap();
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
    let out = Command::new(bin).args(["server", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config", "--data-dir", "--bind-address", "--advertise-address", "--https-listen-port", "--tls-san",
        "--write-kubeconfig", "--write-kubeconfig-mode", "--datastore-endpoint", "--datastore-cafile",
        "--datastore-certfile", "--datastore-keyfile", "--cluster-cidr", "--service-cidr", "--cluster-dns",
        "--cluster-domain", "--disable-agent",
    ] {
        assert!(help.contains(flag), "{flag} missing from help:\n{help}");
    }
}

#[test]
fn environment_and_config_file_set_flags_and_kubeconfig_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&[]);
    // Restart the same server with settings from the environment and file.
    server.stop();
    let config = dir.path().join("c.yaml");
    std::fs::write(&config, "tls-san:\n  - api.example.test\n  - 192.0.2.10\nwrite-kubeconfig-mode: \"0640\"\n").unwrap();
    server.extra_args = vec![format!("--config={}", config.display())];
    server.relaunch();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&server.kubeconfig).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let cert = std::fs::read_to_string(server.tls_file("serving-kube-apiserver.crt")).unwrap();
    let info = pki::cert_info_pem(&cert).unwrap();
    assert!(info.dns_names.contains(&"api.example.test".to_string()), "{info:?}");
    assert!(info.dns_names.contains(&"kubernetes.default.svc.cluster.local".to_string()));
    let ips: Vec<String> = info.ips.iter().map(|i| i.to_string()).collect();
    for ip in ["127.0.0.1", "10.43.0.1", "192.0.2.10"] {
        assert!(ips.contains(&ip.to_string()), "{ips:?}");
    }
}
