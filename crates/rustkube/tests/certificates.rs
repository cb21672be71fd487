//! The certificates API end to end: a CSR made with openssl, approved or
//! denied with real kubectl, signed by the controller manager, and the
//! issued certificate authenticating; the kubelet TLS bootstrap with a
//! bootstrap token and automatic approval.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::{json, Server};

fn csr_manifest(name: &str, request: &str, signer: &str, usages: &[&str]) -> String {
    serde_json::json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": request, "signerName": signer, "usages": usages, "expirationSeconds": 86400},
    })
    .to_string()
}

fn apply(server: &Server, manifest: &str, dir: &Path) {
    let file = dir.join("manifest.json");
    std::fs::write(&file, manifest).unwrap();
    server.kubectl_ok("1.33", &["create", "-f", file.to_str().unwrap()]);
}

/// Wait for the signer to put a certificate into the CSR; write it out.
fn issued_certificate(server: &Server, name: &str, dir: &Path) -> std::path::PathBuf {
    let mut cert = String::new();
    server.wait_for(
        "the certificate to be issued",
        Duration::from_secs(30),
        || {
            cert = server.kubectl_ok(
                "1.33",
                &["get", "csr", name, "-o", "jsonpath={.status.certificate}"],
            );
            !cert.is_empty()
        },
    );
    let pem =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, cert.trim()).unwrap();
    let path = dir.join(format!("{name}.crt"));
    std::fs::write(&path, pem).unwrap();
    path
}

#[test]
fn an_approved_client_csr_yields_a_certificate_that_authenticates() {
    let server = Server::start(&["--disable-scheduler"]);
    let dir = tempfile::tempdir().unwrap();
    for (version, name) in [("1.29", "jane-29"), ("1.33", "jane-33")] {
        let (request, key) = support::openssl_csr(dir.path(), name, "/CN=jane/O=dev/O=qa");
        apply(
            &server,
            &csr_manifest(
                name,
                &request,
                "kubernetes.io/kube-apiserver-client",
                &["client auth"],
            ),
            dir.path(),
        );
        let pending = server.kubectl_ok(version, &["get", "csr", name]);
        assert!(pending.contains("Pending"), "{pending}");
        // Approving needs `approve` on the signer: jane cannot.
        let refused = server.kubectl(version, &["certificate", "approve", name, "--as=jane"]);
        assert!(!refused.status.success());
        server.kubectl_ok(version, &["certificate", "approve", name]);
        let cert = issued_certificate(&server, name, dir.path());
        let listed = server.kubectl_ok(version, &["get", "csr", name]);
        assert!(listed.contains("Approved,Issued"), "{listed}");
        let out = server.kubectl_with_cert("1.33", &cert, &key, &["auth", "whoami", "-o", "json"]);
        assert!(out.status.success(), "{}", support::output_text(&out));
        let me = json(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(me["status"]["userInfo"]["username"], "jane");
        assert_eq!(
            me["status"]["userInfo"]["groups"],
            serde_json::json!(["dev", "qa", "system:authenticated"])
        );
    }

    // A denied request is never signed.
    let (request, _) = support::openssl_csr(dir.path(), "mallory", "/CN=mallory");
    apply(
        &server,
        &csr_manifest(
            "mallory",
            &request,
            "kubernetes.io/kube-apiserver-client",
            &["client auth"],
        ),
        dir.path(),
    );
    server.kubectl_ok("1.33", &["certificate", "deny", "mallory"]);
    let csr = json(&server.kubectl_ok("1.33", &["get", "csr", "mallory", "-o", "json"]));
    assert_eq!(csr["status"]["conditions"][0]["type"], "Denied");
    std::thread::sleep(Duration::from_millis(500));
    let cert = server.kubectl_ok(
        "1.33",
        &[
            "get",
            "csr",
            "mallory",
            "-o",
            "jsonpath={.status.certificate}",
        ],
    );
    assert!(cert.is_empty());

    // The signer refuses to mint system:masters.
    let (request, _) = support::openssl_csr(dir.path(), "root", "/CN=root/O=system:masters");
    apply(
        &server,
        &csr_manifest(
            "root",
            &request,
            "kubernetes.io/kube-apiserver-client",
            &["client auth"],
        ),
        dir.path(),
    );
    server.kubectl_ok("1.33", &["certificate", "approve", "root"]);
    server.wait_for(
        "the masters request to fail",
        Duration::from_secs(30),
        || {
            server
                .kubectl_ok(
                    "1.33",
                    &[
                        "get",
                        "csr",
                        "root",
                        "-o",
                        "jsonpath={.status.conditions[*].type}",
                    ],
                )
                .contains("Failed")
        },
    );
}

#[test]
fn a_bootstrap_token_gets_a_node_client_certificate_approved_automatically_and_nothing_else() {
    let server = Server::start(&["--disable-scheduler"]);
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = support::post_json(
        &server,
        "/api/v1/namespaces/kube-system/secrets",
        r#"{"metadata":{"name":"bootstrap-token-k8node"},"type":"bootstrap.kubernetes.io/token","stringData":{"token-id":"k8node","token-secret":"0123456789abcdef","usage-bootstrap-authentication":"true","expiration":"2999-01-01T00:00:00Z"}}"#,
    );
    assert_eq!(code, 201, "{out}");
    let token = "k8node.0123456789abcdef";
    server.wait_for("the bootstrap token", Duration::from_secs(10), || {
        server
            .kubectl_with_token("1.33", token, &["auth", "whoami"])
            .status
            .success()
    });
    // The bootstrap identity may not read the cluster.
    for args in [
        &["get", "pods"][..],
        &["get", "secrets", "-n", "kube-system"],
        &["get", "nodes"],
    ] {
        let out = server.kubectl_with_token("1.33", token, args);
        assert!(
            support::output_text(&out).contains("Forbidden")
                || support::output_text(&out).contains("forbidden"),
            "{args:?}: {}",
            support::output_text(&out)
        );
    }
    let (request, key) =
        support::openssl_csr(dir.path(), "node-n1", "/O=system:nodes/CN=system:node:n1");
    let file = dir.path().join("csr.json");
    std::fs::write(
        &file,
        csr_manifest(
            "node-csr-n1",
            &request,
            "kubernetes.io/kube-apiserver-client-kubelet",
            &["digital signature", "client auth"],
        ),
    )
    .unwrap();
    let out = server.kubectl_with_token("1.33", token, &["create", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", support::output_text(&out));
    let cert = issued_certificate(&server, "node-csr-n1", dir.path());
    let csr = json(&server.kubectl_ok("1.33", &["get", "csr", "node-csr-n1", "-o", "json"]));
    assert_eq!(csr["spec"]["username"], "system:bootstrap:k8node");
    assert_eq!(csr["status"]["conditions"][0]["reason"], "AutoApproved");
    let out = server.kubectl_with_cert(
        "1.33",
        &cert,
        &key,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "system:node:n1",
        "{}",
        support::output_text(&out)
    );

    // A client certificate for an ordinary user is not auto-approved.
    let (request, _) = support::openssl_csr(dir.path(), "sneaky", "/CN=sneaky");
    std::fs::write(
        &file,
        csr_manifest(
            "sneaky",
            &request,
            "kubernetes.io/kube-apiserver-client",
            &["client auth"],
        ),
    )
    .unwrap();
    let out = server.kubectl_with_token("1.33", token, &["create", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", support::output_text(&out));
    std::thread::sleep(Duration::from_secs(1));
    let status = server.kubectl_ok("1.33", &["get", "csr", "sneaky"]);
    assert!(status.contains("Pending"), "{status}");
}

fn rustkube(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rustkube"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn token_commands_manage_bootstrap_tokens_in_the_join_form() {
    let server = Server::start(&["--disable-scheduler"]);
    let kubeconfig = format!("--kubeconfig={}", server.kubeconfig.display());
    let out = rustkube(&[
        "token",
        "create",
        "--ttl=1h",
        "--description=rack 7",
        &kubeconfig,
    ]);
    assert!(out.status.success(), "{}", support::output_text(&out));
    let join = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (hash, token) = join.strip_prefix("K10").unwrap().split_once("::").unwrap();
    // The hash pins the cluster CA.
    let sum = Command::new("sha256sum")
        .arg(server.tls_file("server-ca.crt"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&sum.stdout)
            .split_whitespace()
            .next(),
        Some(hash)
    );
    server.wait_for("the new token", Duration::from_secs(10), || {
        server
            .kubectl_with_token("1.33", token, &["auth", "whoami"])
            .status
            .success()
    });
    let id = token.split('.').next().unwrap();
    let me = server.kubectl_with_token(
        "1.33",
        token,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&me.stdout),
        format!("system:bootstrap:{id}")
    );

    let list = rustkube(&["token", "list", &kubeconfig]);
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(list.starts_with("TOKEN"), "{list}");
    let row = list.lines().find(|l| l.starts_with(token)).expect("listed");
    assert!(
        row.contains("rack 7") && row.contains("authentication,signing"),
        "{row}"
    );
    assert!(
        row.contains("system:bootstrappers:rustkube:default-node-token"),
        "{row}"
    );

    let out = rustkube(&["token", "delete", id, &kubeconfig]);
    assert!(out.status.success(), "{}", support::output_text(&out));
    server.wait_for(
        "the deleted token to be refused",
        Duration::from_secs(10),
        || {
            support::output_text(&server.kubectl_with_token("1.33", token, &["auth", "whoami"]))
                .contains("Unauthorized")
        },
    );
    let bad = rustkube(&["token", "create", "NOT-A-TOKEN", &kubeconfig]);
    assert!(!bad.status.success());

    // The server's own join token is written at start and works.
    let join = std::fs::read_to_string(server.data_dir.join("server/token")).unwrap();
    let (_, token) = join.trim().split_once("::").unwrap();
    server.wait_for("the join token", Duration::from_secs(10), || {
        server
            .kubectl_with_token("1.33", token, &["auth", "whoami"])
            .status
            .success()
    });
}
