//! The Node authorizer and NodeRestriction with a real node identity
//! (`system:node:<name>` in `system:nodes`, a client certificate signed
//! by the cluster's client CA): a kubelet reads only what its own pods
//! use, and writes only its own Node, Lease and pods.

mod support;

use std::path::PathBuf;
use std::process::Output;

use support::{json, Server};

struct Node<'a> {
    server: &'a Server,
    cert: PathBuf,
    key: PathBuf,
}

impl Node<'_> {
    fn kubectl(&self, args: &[&str]) -> Output {
        self.server
            .kubectl_with_cert("1.33", &self.cert, &self.key, args)
    }

    fn allowed(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "{args:?} should be allowed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn forbidden(&self, args: &[&str]) {
        let out = self.kubectl(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && (err.contains("Forbidden") || err.contains("forbidden")),
            "{args:?} should be forbidden: {err}"
        );
    }
}

fn pod(server: &Server, name: &str, node: &str, secret: &str) {
    let (code, out) = support::post_json(
        server,
        "/api/v1/namespaces/default/pods",
        &format!(
            r#"{{"metadata":{{"name":"{name}"}},"spec":{{"nodeName":"{node}","automountServiceAccountToken":false,"volumes":[{{"name":"s","secret":{{"secretName":"{secret}"}}}}],"containers":[{{"name":"c","image":"busybox"}}]}}}}"#
        ),
    );
    assert_eq!(code, 201, "{out}");
}

#[test]
fn a_node_reads_only_what_its_own_pods_use_and_writes_only_its_own_objects() {
    let server = Server::start(&["--disable-scheduler", "--disable-controller-manager"]);
    let dir = tempfile::tempdir().unwrap();
    for name in ["n1", "n2"] {
        server.kubectl_ok(
            "1.33",
            &[
                "create",
                "secret",
                "generic",
                &format!("secret-{name}"),
                "--from-literal=k=v",
            ],
        );
        let (code, out) = support::post_json(
            &server,
            "/api/v1/nodes",
            &format!(r#"{{"metadata":{{"name":"{name}"}}}}"#),
        );
        assert_eq!(code, 201, "{out}");
        pod(
            &server,
            &format!("pod-{name}"),
            name,
            &format!("secret-{name}"),
        );
    }
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "secret",
            "generic",
            "unused",
            "--from-literal=k=v",
        ],
    );
    let (cert, key) =
        server.openssl_client_cert(dir.path(), "n1", "/O=system:nodes/CN=system:node:n1");
    let n1 = Node {
        server: &server,
        cert,
        key,
    };

    // Reads: its own pods and what they reference, nothing else.
    n1.allowed(&["get", "secret", "secret-n1"]);
    n1.forbidden(&["get", "secret", "secret-n2"]);
    n1.forbidden(&["get", "secret", "unused"]);
    n1.forbidden(&["get", "secrets"]);
    n1.allowed(&["get", "pod", "pod-n1"]);
    n1.forbidden(&["get", "pod", "pod-n2"]);
    let mine = n1.allowed(&[
        "get",
        "pods",
        "-A",
        "--field-selector=spec.nodeName=n1",
        "-o",
        "name",
    ]);
    assert_eq!(mine.trim(), "pod/pod-n1");
    n1.forbidden(&["get", "pods", "-A"]);
    n1.allowed(&["get", "node", "n1"]);
    n1.forbidden(&["get", "node", "n2"]);
    n1.forbidden(&["get", "configmaps", "-n", "kube-system"]);

    // Writes: its own Node (but no restricted labels), its pods' status,
    // its own Lease.
    n1.allowed(&["label", "node", "n1", "example.com/disk=ssd"]);
    n1.forbidden(&["label", "node", "n2", "example.com/disk=ssd"]);
    let out = n1.kubectl(&[
        "label",
        "node",
        "n1",
        "node-restriction.kubernetes.io/pool=gold",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not allowed to modify labels: node-restriction.kubernetes.io/pool"),
        "{err}"
    );
    n1.forbidden(&["taint", "node", "n1", "dedicated=me:NoSchedule"]);
    n1.forbidden(&["delete", "pod", "pod-n2"]);
    n1.forbidden(&["run", "rogue", "--image=busybox"]);
    let lease = dir.path().join("lease.json");
    for (name, allowed) in [("n1", true), ("n2", false)] {
        std::fs::write(
            &lease,
            format!(r#"{{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{{"name":"{name}","namespace":"kube-node-lease"}},"spec":{{"holderIdentity":"{name}"}}}}"#),
        )
        .unwrap();
        if allowed {
            n1.allowed(&["create", "-f", lease.to_str().unwrap()]);
        } else {
            n1.forbidden(&["create", "-f", lease.to_str().unwrap()]);
        }
    }
    n1.allowed(&["delete", "pod", "pod-n1", "--grace-period=0", "--force"]);

    // Something calling itself a node without the group is not one.
    let (cert, key) = server.openssl_client_cert(dir.path(), "fake", "/CN=system:node:n1");
    let fake = Node {
        server: &server,
        cert,
        key,
    };
    fake.forbidden(&["get", "secret", "secret-n1"]);
    let whoami = json(&fake.allowed(&["auth", "whoami", "-o", "json"]));
    assert_eq!(whoami["status"]["userInfo"]["username"], "system:node:n1");
}
