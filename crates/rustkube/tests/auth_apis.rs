//! The authentication and authorization APIs through real kubectl:
//! `auth whoami`, `auth can-i` (and `--list`), `create token`,
//! impersonation with `--as`/`--as-group`, bootstrap tokens, legacy and
//! bound service-account tokens, TokenReview/SubjectAccessReview, and the
//! OIDC discovery documents.

mod support;

use support::{json, Server};

const VERSIONS: &[&str] = &["1.29", "1.33"];

fn server() -> Server {
    Server::start(&["--disable-scheduler"])
}

#[test]
fn whoami_and_can_i_answer_for_the_admin_and_for_impersonated_users() {
    let server = server();
    for v in VERSIONS {
        let me = server.kubectl_ok(v, &["auth", "whoami", "-o", "json"]);
        let me = json(&me);
        assert_eq!(me["kind"], "SelfSubjectReview");
        assert_eq!(me["status"]["userInfo"]["username"], "system:admin");
        let groups = me["status"]["userInfo"]["groups"].to_string();
        assert!(
            groups.contains("system:masters") && groups.contains("system:authenticated"),
            "{groups}"
        );

        assert_eq!(
            server
                .kubectl_ok(v, &["auth", "can-i", "create", "pods"])
                .trim(),
            "yes"
        );
        let no = server.kubectl(v, &["auth", "can-i", "list", "pods", "--as=jane"]);
        assert_eq!(String::from_utf8_lossy(&no.stdout).trim(), "no");
        assert!(!no.status.success());
    }
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "rolebinding",
            "jane-view",
            "--clusterrole=view",
            "--user=jane",
        ],
    );
    server.wait_for("jane's binding", std::time::Duration::from_secs(10), || {
        server
            .kubectl("1.33", &["auth", "can-i", "list", "pods", "--as=jane"])
            .status
            .success()
    });
    for v in VERSIONS {
        assert_eq!(
            server
                .kubectl_ok(v, &["auth", "can-i", "list", "pods", "--as=jane"])
                .trim(),
            "yes"
        );
        assert_eq!(
            String::from_utf8_lossy(
                &server
                    .kubectl(v, &["auth", "can-i", "delete", "pods", "--as=jane"])
                    .stdout
            )
            .trim(),
            "no"
        );
        assert_eq!(
            String::from_utf8_lossy(
                &server
                    .kubectl(
                        v,
                        &[
                            "auth",
                            "can-i",
                            "list",
                            "pods",
                            "--as=jane",
                            "-n",
                            "kube-system"
                        ]
                    )
                    .stdout
            )
            .trim(),
            "no"
        );
        let list = server.kubectl_ok(v, &["auth", "can-i", "--list", "--as=jane"]);
        assert!(
            list.lines()
                .any(|l| l.starts_with("pods ") && l.contains("[get list watch]")),
            "{list}"
        );
        assert!(
            list.contains("selfsubjectreviews.authentication.k8s.io"),
            "{list}"
        );

        // Impersonated requests are authorized as the impersonated user.
        let whoami = server.kubectl_ok(
            v,
            &["auth", "whoami", "--as=jane", "--as-group=qa", "-o", "json"],
        );
        let whoami = json(&whoami);
        assert_eq!(whoami["status"]["userInfo"]["username"], "jane");
        assert_eq!(
            whoami["status"]["userInfo"]["groups"],
            serde_json::json!(["qa", "system:authenticated"])
        );
        server.kubectl_ok(v, &["get", "pods", "--as=jane"]);
        let denied = server.kubectl(v, &["get", "secrets", "--as=jane"]);
        assert!(!denied.status.success());
        assert!(
            support::output_text(&denied).contains(r#"User "jane" cannot list resource "secrets" in API group "" in the namespace "default""#),
            "{}",
            support::output_text(&denied)
        );
    }
    // A group without a user is refused.
    let (code, body) = server.curl_admin(&["-H", "Impersonate-Group: qa", "/api/v1/namespaces"]);
    assert_eq!(code, 500, "{body}");
}

#[test]
fn only_users_granted_impersonate_may_impersonate() {
    let server = server();
    // jane may read pods but not impersonate.
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "clusterrolebinding",
            "jane-view",
            "--clusterrole=view",
            "--user=jane",
        ],
    );
    server.wait_for("jane's binding", std::time::Duration::from_secs(10), || {
        server
            .kubectl("1.33", &["auth", "can-i", "list", "pods", "--as=jane"])
            .status
            .success()
    });
    // The admin impersonates jane, who in turn tries to impersonate bob:
    // headers carry only one level, so check with a direct request as jane.
    let tokens = server.data_dir.join("tokens.csv");
    std::fs::write(&tokens, "jane-token,jane,uid-jane,\n").unwrap();
    let mut server = server;
    server.stop();
    server
        .extra_args
        .push(format!("--token-auth-file={}", tokens.display()));
    server.relaunch();
    let out = server.kubectl_with_token("1.33", "jane-token", &["get", "pods", "--as=bob"]);
    assert!(!out.status.success());
    assert!(
        support::output_text(&out).contains(r#"users "bob" is forbidden: User "jane" cannot impersonate resource "users" in API group "" at the cluster scope"#),
        "{}",
        support::output_text(&out)
    );
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "clusterrole",
            "impersonator",
            "--verb=impersonate",
            "--resource=users,groups",
        ],
    );
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "clusterrolebinding",
            "jane-impersonates",
            "--clusterrole=impersonator",
            "--user=jane",
        ],
    );
    server.wait_for(
        "jane may impersonate",
        std::time::Duration::from_secs(10),
        || {
            server
                .kubectl_with_token("1.33", "jane-token", &["auth", "whoami", "--as=bob"])
                .status
                .success()
        },
    );
    let out = server.kubectl_with_token(
        "1.33",
        "jane-token",
        &[
            "auth",
            "whoami",
            "--as=bob",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bob");
}

#[test]
fn service_account_tokens_authenticate_until_what_they_are_bound_to_is_gone() {
    let server = server();
    server.kubectl_ok("1.33", &["create", "serviceaccount", "robot"]);
    for v in VERSIONS {
        let token = server.kubectl_ok(v, &["create", "token", "robot", "--duration=15m"]);
        let token = token.trim();
        let out = server.kubectl_with_token(v, token, &["auth", "whoami", "-o", "json"]);
        assert!(out.status.success(), "{}", support::output_text(&out));
        let me = json(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(
            me["status"]["userInfo"]["username"],
            "system:serviceaccount:default:robot"
        );
        let groups = me["status"]["userInfo"]["groups"].to_string();
        assert!(
            groups.contains("system:serviceaccounts:default"),
            "{groups}"
        );
        assert!(
            me["status"]["userInfo"]["extra"]["authentication.kubernetes.io/credential-id"][0]
                .as_str()
                .unwrap()
                .starts_with("JTI=")
        );
        // Authenticated but not authorized to list secrets.
        let out = server.kubectl_with_token(v, token, &["get", "secrets"]);
        assert!(
            support::output_text(&out).contains("Forbidden")
                || support::output_text(&out).contains("forbidden"),
            "{}",
            support::output_text(&out)
        );
    }
    // A token for another audience is not accepted by the API server.
    let other = server.kubectl_ok("1.33", &["create", "token", "robot", "--audience=vault"]);
    let out = server.kubectl_with_token("1.33", other.trim(), &["auth", "whoami"]);
    assert!(
        support::output_text(&out).contains("Unauthorized"),
        "{}",
        support::output_text(&out)
    );

    // Bound to a pod: valid while the pod exists.
    let (code, pod) = support::post_json(
        &server,
        "/api/v1/namespaces/default/pods",
        r#"{"metadata":{"name":"holder"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#,
    );
    assert_eq!(code, 201, "{pod}");
    let bound = server.kubectl_ok(
        "1.33",
        &[
            "create",
            "token",
            "robot",
            "--bound-object-kind=Pod",
            "--bound-object-name=holder",
        ],
    );
    let bound = bound.trim();
    let out = server.kubectl_with_token("1.33", bound, &["auth", "whoami", "-o", "json"]);
    assert!(out.status.success(), "{}", support::output_text(&out));
    let me = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        me["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-name"][0],
        "holder"
    );
    server.kubectl_ok(
        "1.33",
        &["delete", "pod", "holder", "--grace-period=0", "--force"],
    );
    server.wait_for(
        "the bound token to be refused",
        std::time::Duration::from_secs(10),
        || {
            support::output_text(&server.kubectl_with_token("1.33", bound, &["auth", "whoami"]))
                .contains("Unauthorized")
        },
    );

    // Deleting the service account ends its tokens too.
    let token = server.kubectl_ok("1.33", &["create", "token", "robot"]);
    server.kubectl_ok("1.33", &["delete", "serviceaccount", "robot"]);
    server.wait_for(
        "the token to be refused",
        std::time::Duration::from_secs(10),
        || {
            support::output_text(&server.kubectl_with_token(
                "1.33",
                token.trim(),
                &["auth", "whoami"],
            ))
            .contains("Unauthorized")
        },
    );

    // Lifetimes under ten minutes are invalid.
    server.kubectl_ok("1.33", &["create", "serviceaccount", "short"]);
    let out = server.kubectl("1.33", &["create", "token", "short", "--duration=5m"]);
    assert!(
        support::output_text(&out).contains("may not specify a duration less than 10 minutes"),
        "{}",
        support::output_text(&out)
    );
}

#[test]
fn legacy_token_secrets_are_filled_in_and_authenticate() {
    let server = server();
    server.kubectl_ok("1.33", &["create", "serviceaccount", "builder"]);
    let (code, out) = support::post_json(
        &server,
        "/api/v1/namespaces/default/secrets",
        r#"{"metadata":{"name":"builder-token","annotations":{"kubernetes.io/service-account.name":"builder"}},"type":"kubernetes.io/service-account-token"}"#,
    );
    assert_eq!(code, 201, "{out}");
    let secret = json(&out);
    let token = secret["data"]["token"].as_str().expect("token filled in");
    assert!(secret["data"]["ca.crt"].is_string());
    assert!(secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"].is_string());
    let token = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, token).unwrap(),
    )
    .unwrap();
    let out = server.kubectl_with_token(
        "1.33",
        &token,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "system:serviceaccount:default:builder",
        "{}",
        support::output_text(&out)
    );
    server.kubectl_ok("1.33", &["delete", "secret", "builder-token"]);
    server.wait_for(
        "the legacy token to be refused",
        std::time::Duration::from_secs(10),
        || {
            support::output_text(&server.kubectl_with_token("1.33", &token, &["auth", "whoami"]))
                .contains("Unauthorized")
        },
    );
}

fn bootstrap_secret(id: &str, secret: &str, expiration: &str) -> String {
    format!(
        r#"{{"metadata":{{"name":"bootstrap-token-{id}","namespace":"kube-system"}},"type":"bootstrap.kubernetes.io/token","stringData":{{"token-id":"{id}","token-secret":"{secret}","expiration":"{expiration}","usage-bootstrap-authentication":"true","auth-extra-groups":"system:bootstrappers:worker"}}}}"#
    )
}

#[test]
fn bootstrap_tokens_authenticate_until_they_expire() {
    let server = server();
    let (code, out) = support::post_json(
        &server,
        "/api/v1/namespaces/kube-system/secrets",
        &bootstrap_secret("abcdef", "0123456789abcdef", "2999-01-01T00:00:00Z"),
    );
    assert_eq!(code, 201, "{out}");
    let (code, out) = support::post_json(
        &server,
        "/api/v1/namespaces/kube-system/secrets",
        &bootstrap_secret("expird", "0123456789abcdef", "2020-01-01T00:00:00Z"),
    );
    assert_eq!(code, 201, "{out}");
    server.wait_for(
        "the bootstrap token",
        std::time::Duration::from_secs(10),
        || {
            server
                .kubectl_with_token("1.33", "abcdef.0123456789abcdef", &["auth", "whoami"])
                .status
                .success()
        },
    );
    let out = server.kubectl_with_token(
        "1.33",
        "abcdef.0123456789abcdef",
        &["auth", "whoami", "-o", "json"],
    );
    let me = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        me["status"]["userInfo"]["username"],
        "system:bootstrap:abcdef"
    );
    assert_eq!(
        me["status"]["userInfo"]["groups"],
        serde_json::json!([
            "system:bootstrappers",
            "system:bootstrappers:worker",
            "system:authenticated"
        ])
    );
    // Wrong secret and expired tokens are 401.
    for token in ["abcdef.0123456789abcdee", "expird.0123456789abcdef"] {
        let out = server.kubectl_with_token("1.33", token, &["auth", "whoami"]);
        assert!(
            support::output_text(&out).contains("Unauthorized"),
            "{token}: {}",
            support::output_text(&out)
        );
    }
}

#[test]
fn review_apis_answer_for_other_subjects_and_the_issuer_is_discoverable() {
    let server = server();
    server.kubectl_ok("1.33", &["create", "serviceaccount", "robot"]);
    let token = server.kubectl_ok("1.33", &["create", "token", "robot"]);
    let (code, out) = support::post_json(
        &server,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        &format!(
            r#"{{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{{"token":"{}"}}}}"#,
            token.trim()
        ),
    );
    assert_eq!(code, 201, "{out}");
    let review = json(&out);
    assert_eq!(review["status"]["authenticated"], true, "{review}");
    assert_eq!(
        review["status"]["user"]["username"],
        "system:serviceaccount:default:robot"
    );
    let (_, out) = support::post_json(
        &server,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"nonsense"}}"#,
    );
    assert!(
        json(&out)["status"]["authenticated"].is_null()
            || json(&out)["status"]["authenticated"] == false
    );

    let sar = |spec: &str| {
        let (code, out) = support::post_json(
            &server,
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            &format!(
                r#"{{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{spec}}}"#
            ),
        );
        (code, json(&out))
    };
    let (code, yes) = sar(
        r#"{"user":"x","groups":["system:masters"],"resourceAttributes":{"verb":"delete","resource":"nodes"}}"#,
    );
    assert_eq!(code, 201);
    assert_eq!(yes["status"]["allowed"], true);
    let (_, no) = sar(
        r#"{"user":"x","resourceAttributes":{"verb":"get","resource":"secrets","namespace":"default"}}"#,
    );
    assert_eq!(no["status"]["allowed"], false);
    let (_, health) = sar(
        r#"{"user":"x","groups":["system:authenticated"],"nonResourceAttributes":{"verb":"get","path":"/healthz"}}"#,
    );
    assert_eq!(health["status"]["allowed"], true);
    let (code, invalid) = sar(r#"{"user":"x"}"#);
    assert_eq!(code, 422, "{invalid}");
    let (code, invalid) = sar(r#"{"resourceAttributes":{"verb":"get","resource":"pods"}}"#);
    assert_eq!(code, 422, "{invalid}");

    // Service accounts may read the issuer documents.
    let config = server.kubectl_with_token(
        "1.33",
        token.trim(),
        &["get", "--raw", "/.well-known/openid-configuration"],
    );
    assert!(config.status.success(), "{}", support::output_text(&config));
    let config = json(&String::from_utf8_lossy(&config.stdout));
    assert_eq!(
        config["issuer"],
        "https://kubernetes.default.svc.cluster.local"
    );
    let jwks = json(&server.kubectl_ok("1.33", &["get", "--raw", "/openid/v1/jwks"]));
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    assert_eq!(jwks["keys"][0]["kty"], "EC");
}

#[test]
fn users_cannot_grant_permissions_they_do_not_hold() {
    let server = server();
    // jane manages roles and bindings in default and may read pods there.
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "role",
            "rbac-manager",
            "--verb=create,get,list,update,delete",
            "--resource=roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io",
        ],
    );
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "role",
            "pod-reader",
            "--verb=get",
            "--resource=pods",
        ],
    );
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "rolebinding",
            "jane-rbac",
            "--role=rbac-manager",
            "--user=jane",
        ],
    );
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "rolebinding",
            "jane-pods",
            "--role=pod-reader",
            "--user=jane",
        ],
    );
    server.wait_for(
        "jane's bindings",
        std::time::Duration::from_secs(10),
        || {
            server
                .kubectl("1.33", &["auth", "can-i", "create", "roles", "--as=jane"])
                .status
                .success()
        },
    );
    for v in VERSIONS {
        let name = format!("reader-{}", v.replace('.', ""));
        server.kubectl_ok(
            v,
            &[
                "create",
                "role",
                &name,
                "--verb=get",
                "--resource=pods",
                "--as=jane",
            ],
        );
        let out = server.kubectl(
            v,
            &[
                "create",
                "role",
                "secret-reader",
                "--verb=get",
                "--resource=secrets",
                "--as=jane",
            ],
        );
        assert!(
            support::output_text(&out)
                .contains("is attempting to grant RBAC permissions not currently held")
                && support::output_text(&out).contains(r#"Resources:["secrets"]"#),
            "{}",
            support::output_text(&out)
        );
        let out = server.kubectl(
            v,
            &[
                "create",
                "rolebinding",
                "bob-admin",
                "--clusterrole=admin",
                "--user=bob",
                "--as=jane",
            ],
        );
        assert!(
            support::output_text(&out)
                .contains("is attempting to grant RBAC permissions not currently held"),
            "{}",
            support::output_text(&out)
        );
        server.kubectl_ok(
            v,
            &[
                "create",
                "rolebinding",
                &format!("bob-{name}"),
                &format!("--role={name}"),
                "--user=bob",
                "--as=jane",
            ],
        );
    }
    // With `bind` on the admin ClusterRole she may bind it.
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "clusterrole",
            "admin-binder",
            "--verb=bind",
            "--resource=clusterroles",
            "--resource-name=admin",
        ],
    );
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "clusterrolebinding",
            "jane-binds-admin",
            "--clusterrole=admin-binder",
            "--user=jane",
        ],
    );
    server.wait_for(
        "jane may bind admin",
        std::time::Duration::from_secs(10),
        || {
            server
                .kubectl(
                    "1.33",
                    &[
                        "create",
                        "rolebinding",
                        "bob-admin",
                        "--clusterrole=admin",
                        "--user=bob",
                        "--as=jane",
                    ],
                )
                .status
                .success()
        },
    );
}

#[test]
fn auth_reconcile_creates_and_extends_rbac_objects() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rbac.yaml");
    let manifest = |verbs: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: reconciled\n  namespace: default\nrules:\n- apiGroups: [\"\"]\n  resources: [\"pods\"]\n  verbs: [{verbs}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: reconciled\n  namespace: default\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: reconciled\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: rita\n"
        )
    };
    for v in VERSIONS {
        std::fs::write(&file, manifest("\"get\"")).unwrap();
        let out = server.kubectl_ok(v, &["auth", "reconcile", "-f", file.to_str().unwrap()]);
        assert!(out.contains("reconciled"), "{out}");
        std::fs::write(&file, manifest("\"get\", \"list\"")).unwrap();
        server.kubectl_ok(v, &["auth", "reconcile", "-f", file.to_str().unwrap()]);
        let role =
            support::json(&server.kubectl_ok(v, &["get", "role", "reconciled", "-o", "json"]));
        let verbs = role["rules"].to_string();
        assert!(verbs.contains("\"list\""), "{role}");
        server.wait_for("rita's grant", std::time::Duration::from_secs(10), || {
            server
                .kubectl(v, &["auth", "can-i", "list", "pods", "--as=rita"])
                .status
                .success()
        });
        server.kubectl_ok(v, &["delete", "rolebinding,role", "reconciled"]);
    }
}
