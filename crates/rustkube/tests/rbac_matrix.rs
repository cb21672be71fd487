//! The RBAC matrix: a table of identities (the admin, a namespaced editor
//! and viewer, a service account, a node, each built-in component, a user
//! with nothing, no credential and a bad one) against a table of requests;
//! every allow and deny must be what upstream's default policy decides:
//! 401 without a valid credential, 403 when authenticated but not allowed.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::Server;

/// How a row of the matrix authenticates.
enum Credential {
    Cert(&'static str),
    Token(String),
    Nothing,
}

struct Identity {
    name: &'static str,
    credential: Credential,
}

fn request(server: &Server, who: &Identity, method: &str, path: &str) -> u16 {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "30",
        "-X",
        method,
    ])
    .arg("--cacert")
    .arg(server.tls_file("server-ca.crt"));
    match &who.credential {
        Credential::Cert(file) => {
            cmd.arg("--cert")
                .arg(server.tls_file(&format!("{file}.crt")))
                .arg("--key")
                .arg(server.tls_file(&format!("{file}.key")));
        }
        Credential::Token(token) => {
            cmd.arg("-H").arg(format!("Authorization: Bearer {token}"));
        }
        Credential::Nothing => {}
    }
    if method == "POST" {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary"]);
        cmd.arg(body_for(path));
    }
    let out = cmd.arg(server.url(path)).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn body_for(path: &str) -> String {
    if path.ends_with("/configmaps") {
        r#"{"metadata":{"generateName":"m-"}}"#.to_string()
    } else if path.ends_with("/binding") {
        r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"n1"}}"#.into()
    } else if path.ends_with("/clusterrolebindings") {
        r#"{"metadata":{"generateName":"x-"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},"subjects":[{"kind":"User","name":"x"}]}"#.into()
    } else {
        "{}".into()
    }
}

fn node_cert(server: &Server) {
    // Into the tls dir, where the matrix finds every identity's files.
    let dir = server.data_dir.join("server/tls");
    server.openssl_client_cert(&dir, "test-node-n1", "/O=system:nodes/CN=system:node:n1");
}

#[test]
fn every_identity_gets_exactly_what_the_default_policy_grants() {
    let dir = tempfile::tempdir().unwrap();
    let tokens: PathBuf = dir.path().join("tokens.csv");
    std::fs::write(
        &tokens,
        "editor-token,jane,1,\nviewer-token,vic,2,\nnobody-token,nobody,3,\n",
    )
    .unwrap();
    let server = Server::start(&[
        &format!("--token-auth-file={}", tokens.display()),
        "--disable-scheduler",
        "--disable-controller-manager",
    ]);
    server.kubectl_ok("1.33", &["create", "namespace", "team"]);
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "rolebinding",
            "jane-edit",
            "--clusterrole=edit",
            "--user=jane",
            "-n",
            "team",
        ],
    );
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "rolebinding",
            "vic-view",
            "--clusterrole=view",
            "--user=vic",
            "-n",
            "team",
        ],
    );
    server.kubectl_ok("1.33", &["create", "serviceaccount", "robot", "-n", "team"]);
    server.kubectl_ok("1.33", &["run", "p", "--image=busybox", "-n", "team"]);
    let (code, out) = support::post_json(&server, "/api/v1/nodes", r#"{"metadata":{"name":"n1"}}"#);
    assert_eq!(code, 201, "{out}");
    let robot = server.kubectl_ok("1.33", &["create", "token", "robot", "-n", "team"]);
    node_cert(&server);
    server.wait_for("the bindings", Duration::from_secs(10), || {
        server
            .kubectl(
                "1.33",
                &["auth", "can-i", "get", "pods", "-n", "team", "--as=vic"],
            )
            .status
            .success()
    });

    let ids = [
        Identity {
            name: "admin",
            credential: Credential::Cert("client-admin"),
        },
        Identity {
            name: "editor",
            credential: Credential::Token("editor-token".into()),
        },
        Identity {
            name: "viewer",
            credential: Credential::Token("viewer-token".into()),
        },
        Identity {
            name: "serviceaccount",
            credential: Credential::Token(robot.trim().to_string()),
        },
        Identity {
            name: "node",
            credential: Credential::Cert("test-node-n1"),
        },
        Identity {
            name: "controller-manager",
            credential: Credential::Cert("client-controller-manager"),
        },
        Identity {
            name: "scheduler",
            credential: Credential::Cert("client-scheduler"),
        },
        Identity {
            name: "kube-proxy",
            credential: Credential::Cert("client-kube-proxy"),
        },
        Identity {
            name: "dns",
            credential: Credential::Cert("client-dns"),
        },
        Identity {
            name: "kubelet-client",
            credential: Credential::Cert("client-kube-apiserver-kubelet-client"),
        },
        Identity {
            name: "nobody",
            credential: Credential::Token("nobody-token".into()),
        },
        Identity {
            name: "anonymous",
            credential: Credential::Nothing,
        },
        Identity {
            name: "bad-token",
            credential: Credential::Token("forged".into()),
        },
    ];
    // Columns: the identities above, in order. Y = allowed (2xx), N = 403,
    // U = 401.
    #[rustfmt::skip]
    let matrix: &[(&str, &str, &str)] = &[
        //                                                              adm edt vwr sa  nod cm  sch prx dns kc  nob ano bad
        ("GET",  "/api/v1/namespaces/team/pods",                       "Y   Y   Y   N   N   Y   Y   N   N   N   N   U   U"),
        ("GET",  "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1",      "Y   N   N   N   Y   Y   Y   N   N   N   N   U   U"),
        ("POST", "/api/v1/namespaces/team/configmaps",                 "Y   Y   N   N   N   Y   N   N   N   N   N   U   U"),
        ("GET",  "/api/v1/namespaces/team/secrets",                    "Y   Y   N   N   N   Y   N   N   N   N   N   U   U"),
        ("GET",  "/api/v1/namespaces/kube-system/secrets",             "Y   N   N   N   N   Y   N   N   N   N   N   U   U"),
        ("GET",  "/api/v1/nodes",                                      "Y   N   N   N   N   Y   Y   Y   N   Y   N   U   U"),
        ("GET",  "/api/v1/nodes/n1",                                   "Y   N   N   N   Y   Y   Y   Y   N   Y   N   U   U"),
        ("GET",  "/api/v1/services",                                   "Y   N   N   N   Y   Y   Y   Y   Y   N   N   U   U"),
        ("GET",  "/apis/discovery.k8s.io/v1/endpointslices",           "Y   N   N   N   N   Y   N   Y   Y   N   N   U   U"),
        ("POST", "/api/v1/namespaces/team/pods/p/binding",             "Y   N   N   N   N   N   Y   N   N   N   N   U   U"),
        ("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "Y N   N   N   N   N   N   N   N   N   N   U   U"),
        ("GET",  "/healthz",                                           "Y   Y   Y   Y   Y   Y   Y   Y   Y   Y   Y   U   U"),
        ("GET",  "/apis",                                              "Y   Y   Y   Y   Y   Y   Y   Y   Y   Y   Y   U   U"),
    ];
    let mut wrong = Vec::new();
    for (method, path, row) in matrix {
        let expected: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(expected.len(), ids.len(), "{path}");
        for (who, want) in ids.iter().zip(expected) {
            let code = request(&server, who, method, path);
            let got = match code {
                // 409: authorized, but the object was already bound by an
                // earlier row.
                200..=299 | 409 => "Y",
                403 => "N",
                401 => "U",
                other => {
                    wrong.push(format!(
                        "{method} {path} as {}: unexpected {other}",
                        who.name
                    ));
                    continue;
                }
            };
            if got != want {
                wrong.push(format!(
                    "{method} {path} as {}: want {want}, got {got} ({code})",
                    who.name
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
