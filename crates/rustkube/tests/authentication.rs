//! Who may talk to the API server: client certificates and static bearer
//! tokens; everything else is 401, and authenticated users without a grant
//! are 403.

mod support;

use support::{json, Server};

fn server_with_tokens() -> (Server, tempfile::TempDir) {
    server_with_tokens_and(&[])
}

fn server_with_tokens_and(extra: &[&str]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "admintoken0123456789,ops-admin,uid-1,\"system:masters,ops\"\nplaintoken0123456789,dev,uid-2\nnobodytoken0123456789,nobody,uid-3\n").unwrap();
    let arg = format!("--token-auth-file={}", tokens.display());
    let mut args = vec![arg.as_str()];
    args.extend_from_slice(extra);
    (Server::start(&args), dir)
}

#[test]
fn bearer_tokens_from_the_token_file_authenticate() {
    let (server, _dir) = server_with_tokens();
    let (code, body) = server.curl_anonymous(&[
        "-H",
        "Authorization: Bearer admintoken0123456789",
        "/api/v1/namespaces",
    ]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(support::item_names(&body).len(), 4);
    let out = std::process::Command::new(support::kubectl_bin("1.33"))
        .arg(format!("--server={}", server.url("")))
        .arg(format!(
            "--certificate-authority={}",
            server.tls_file("server-ca.crt").display()
        ))
        .args(["--token=admintoken0123456789", "get", "ns", "-o", "name"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("namespace/kube-system"));
}

#[test]
fn unknown_tokens_are_401_and_ungranted_users_403() {
    let (server, _dir) = server_with_tokens();
    for header in [
        "Authorization: Bearer wrong",
        "Authorization: Bearer admintoken012345678",
        "Authorization: Basic YTpi",
    ] {
        let (code, body) = server.curl_anonymous(&["-H", header, "/api/v1/namespaces"]);
        assert_eq!(code, 401, "{header}: {body}");
        assert_eq!(json(&body)["reason"], "Unauthorized");
    }
    let (code, body) = server.curl_anonymous(&[
        "-H",
        "Authorization: Bearer plaintoken0123456789",
        "/api/v1/namespaces/default/configmaps",
    ]);
    assert_eq!(code, 403, "{body}");
    let status = json(&body);
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(
        status["message"],
        "configmaps is forbidden: User \"dev\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );
    // Discovery and version stay readable for any authenticated user.
    let (code, _) = server.curl_anonymous(&[
        "-H",
        "Authorization: Bearer plaintoken0123456789",
        "/version",
    ]);
    assert_eq!(code, 200);
}

#[test]
fn a_malformed_token_file_stops_the_server_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "only-a-token\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rustkube"))
        .args(["server", "--config=/dev/null"])
        .arg(format!("--data-dir={}", dir.path().join("data").display()))
        .arg(format!("--token-auth-file={}", tokens.display()))
        .arg(format!("--https-listen-port={}", support::free_port()))
        .arg(format!(
            "--write-kubeconfig={}",
            dir.path().join("kc").display()
        ))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tokens.csv:1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn anonymous_requests_are_refused_unless_enabled_and_then_see_only_public_info() {
    let server = Server::start(&[]);
    let (code, _) = server.curl_anonymous(&["/version"]);
    assert_eq!(code, 401);
    let server = Server::start(&["--anonymous-auth=true"]);
    let (code, body) = server.curl_anonymous(&["/version"]);
    assert_eq!(code, 200, "{body}");
    let (code, _) = server.curl_anonymous(&["/readyz"]);
    assert_eq!(code, 200);
    let (code, body) = server.curl_anonymous(&["/api/v1/namespaces"]);
    assert_eq!(code, 403, "{body}");
    assert!(json(&body)["message"]
        .as_str()
        .unwrap()
        .contains("User \"system:anonymous\" cannot list"));
    // A bad credential is not downgraded to anonymous.
    let (code, _) = server.curl_anonymous(&["-H", "Authorization: Bearer nope", "/version"]);
    assert_eq!(code, 401);
}

#[test]
fn legacy_basic_auth_works_only_when_its_file_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("basic.csv");
    std::fs::write(&file, "s3cret,carol,uid-carol,\"system:masters\"\n").unwrap();
    let server = Server::start(&[&format!("--basic-auth-file={}", file.display())]);
    let (code, body) = server.curl_anonymous(&["-u", "carol:s3cret", "/api/v1/namespaces"]);
    assert_eq!(code, 200, "{body}");
    let (code, _) = server.curl_anonymous(&["-u", "carol:wrong", "/api/v1/namespaces"]);
    assert_eq!(code, 401);
    let (code, _) = server.curl_anonymous(&["-u", "mallory:s3cret", "/api/v1/namespaces"]);
    assert_eq!(code, 401);
    drop(server);
    let server = Server::start(&[]);
    let (code, _) = server.curl_anonymous(&["-u", "carol:s3cret", "/api/v1/namespaces"]);
    assert_eq!(code, 401);
}

#[test]
fn authorization_mode_always_allow_lets_any_authenticated_user_in() {
    let (server, _dir) = server_with_tokens_and(&["--authorization-mode=AlwaysAllow"]);
    let (code, body) = server.curl_anonymous(&[
        "-H",
        "Authorization: Bearer nobodytoken0123456789",
        "/api/v1/namespaces/kube-system/secrets",
    ]);
    assert_eq!(code, 200, "{body}");
    let (code, _) = server.curl_anonymous(&["/api/v1/namespaces"]);
    assert_eq!(code, 401);
}
