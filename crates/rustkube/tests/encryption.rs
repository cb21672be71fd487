//! Secrets encrypted at rest: with `--encryption-provider-config`, a
//! Secret's value never appears in the datastore's files, clients still
//! read it back, and other resources stay plain.

mod support;

use support::Server;

const CONFIG: &str = r#"apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: ["secrets"]
    providers:
      - aesgcm:
          keys:
            - name: key1
              secret: c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyE/Pz8=
      - identity: {}
"#;

fn datastore_bytes(server: &Server) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(server.data_dir.join("server/db")).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn secrets_are_unreadable_in_the_datastore_and_readable_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("encryption.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut server = Server::start(&[
        &format!("--encryption-provider-config={}", config.display()),
        "--disable-scheduler",
    ]);
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "secret",
            "generic",
            "vault",
            "--from-literal=password=TopSecretValue42",
        ],
    );
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "configmap",
            "plain",
            "--from-literal=note=VisibleNote42",
        ],
    );
    let read = server.kubectl_ok(
        "1.33",
        &["get", "secret", "vault", "-o", "jsonpath={.data.password}"],
    );
    assert_eq!(read.trim(), "VG9wU2VjcmV0VmFsdWU0Mg==");

    let raw = datastore_bytes(&server);
    assert!(contains(&raw, "k8s:enc:aesgcm:v1:key1:"));
    assert!(
        !contains(&raw, "VG9wU2VjcmV0VmFsdWU0Mg=="),
        "the secret is stored in the clear"
    );
    assert!(!contains(&raw, "TopSecretValue42"));
    assert!(
        contains(&raw, "VisibleNote42"),
        "configmaps are not encrypted"
    );

    // Survives a restart; without the key the data is unreadable, not lost.
    server.restart();
    let read = server.kubectl_ok(
        "1.33",
        &["get", "secret", "vault", "-o", "jsonpath={.data.password}"],
    );
    assert_eq!(read.trim(), "VG9wU2VjcmV0VmFsdWU0Mg==");
}

#[test]
fn an_unsupported_provider_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("encryption.yaml");
    std::fs::write(&config, CONFIG.replace("aesgcm", "secretbox")).unwrap();
    let empty = dir.path().join("c.yaml");
    std::fs::write(&empty, "").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rustkube"))
        .arg("server")
        .arg(format!("--config={}", empty.display()))
        .arg(format!("--encryption-provider-config={}", config.display()))
        .arg(format!("--data-dir={}", dir.path().join("d").display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("secretbox provider is not supported"), "{err}");
}
