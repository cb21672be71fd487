//! RBAC authorization, deny by default: a user may do only what a
//! ClusterRoleBinding or a RoleBinding in the request's namespace grants,
//! and the default policy lets every authenticated user read discovery
//! and version information.

mod support;

use std::time::{Duration, Instant};

use support::{json, Server};

const DEV: &str = "Authorization: Bearer devtoken01234567890";

fn server_with_dev_user() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "devtoken01234567890,dev,uid-dev\n").unwrap();
    let arg = format!("--token-auth-file={}", tokens.display());
    (Server::start(&[&arg]), dir)
}

fn as_dev(server: &Server, args: &[&str]) -> (u16, String) {
    let mut all = vec!["-H", DEV];
    all.extend_from_slice(args);
    server.curl_anonymous(&all)
}

/// Bindings reach the authorizer through the watch cache, a moment after
/// they are written: poll, as clients of upstream's API server must.
fn eventually_as_dev(server: &Server, args: &[&str], want: u16) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = as_dev(server, args);
        if code == want || Instant::now() > deadline {
            return (code, body);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bind_in_default(server: &Server, binding: &str, cluster_role: &str) {
    let body = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": binding, "namespace": "default"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "dev"}],
    })
    .to_string();
    let (code, out) = server.curl_admin(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        &body,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
    ]);
    assert_eq!(code, 201, "{out}");
}

fn create_configmap_body(name: &str) -> String {
    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
        .to_string()
}

#[test]
fn the_default_policy_exists_and_is_labelled_as_bootstrap_defaults() {
    let server = Server::start(&[]);
    let (code, body) = server
        .curl_admin(&["/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/cluster-admin"]);
    assert_eq!(code, 200, "{body}");
    let binding = json(&body);
    assert_eq!(binding["subjects"][0]["kind"], "Group");
    assert_eq!(binding["subjects"][0]["name"], "system:masters");
    assert_eq!(
        binding["metadata"]["labels"]["kubernetes.io/bootstrapping"],
        "rbac-defaults"
    );
    let names = server.kubectl_ok("1.33", &["get", "clusterroles", "-o", "name"]);
    for role in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:basic-user",
        "system:discovery",
        "system:public-info-viewer",
    ] {
        assert!(
            names
                .lines()
                .any(|l| l == format!("clusterrole.rbac.authorization.k8s.io/{role}")),
            "{role} missing from {names}"
        );
    }
}

#[test]
fn a_user_without_bindings_reads_discovery_but_no_resources() {
    let (server, _dir) = server_with_dev_user();
    let (code, body) = as_dev(&server, &["/api/v1/namespaces/default/pods"]);
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        json(&body)["message"],
        "pods is forbidden: User \"dev\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    for path in ["/version", "/api", "/apis", "/api/v1"] {
        let (code, body) = as_dev(&server, &[path]);
        assert_eq!(code, 200, "{path}: {body}");
    }
    let (code, body) = as_dev(&server, &["/metrics"]);
    assert_eq!(code, 403, "{body}");
}

#[test]
fn view_bound_in_a_namespace_allows_reading_there_only_and_no_writes() {
    let (server, _dir) = server_with_dev_user();
    bind_in_default(&server, "dev-view", "view");
    let (code, body) = eventually_as_dev(&server, &["/api/v1/namespaces/default/pods"], 200);
    assert_eq!(code, 200, "{body}");
    let (code, body) = as_dev(&server, &["/api/v1/namespaces/kube-system/pods"]);
    assert_eq!(code, 403, "{body}");
    let (code, body) = as_dev(&server, &["/api/v1/pods"]);
    assert_eq!(code, 403, "{body}");
    let (code, body) = as_dev(&server, &["/api/v1/namespaces/default/secrets"]);
    assert_eq!(code, 403, "{body}");
    let cm = create_configmap_body("from-view");
    let (code, body) = as_dev(
        &server,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            &cm,
            "/api/v1/namespaces/default/configmaps",
        ],
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        json(&body)["message"],
        "configmaps is forbidden: User \"dev\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );
}

#[test]
fn edit_bound_in_a_namespace_allows_creating_configmaps_there() {
    let (server, _dir) = server_with_dev_user();
    bind_in_default(&server, "dev-edit", "edit");
    let cm = create_configmap_body("from-edit");
    let args = [
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        &cm,
        "/api/v1/namespaces/default/configmaps",
    ];
    let (code, body) = eventually_as_dev(&server, &args, 201);
    assert_eq!(code, 201, "{body}");
    let (code, body) = as_dev(
        &server,
        &["/api/v1/namespaces/default/configmaps/from-edit"],
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = as_dev(
        &server,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            &cm,
            "/api/v1/namespaces/kube-system/configmaps",
        ],
    );
    assert_eq!(code, 403, "{body}");
}
