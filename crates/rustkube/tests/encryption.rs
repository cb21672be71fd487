//! Secrets encrypted at rest: with `--encryption-provider-config`, a
//! Secret's value never appears in the datastore's files, clients still
//! read it back, and other resources stay plain. Every provider upstream
//! ships locally (aesgcm, aescbc, secretbox) works, and keys rotate the
//! documented way.

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
    std::fs::write(&config, CONFIG.replace("aesgcm", "kms")).unwrap();
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
    assert!(err.contains("kms provider is not supported"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// An EncryptionConfiguration for secrets with the given providers, each
/// `(provider, key name, base64 secret)`, in order.
fn config_with(providers: &[(&str, &str, &str)]) -> String {
    let mut text = String::from(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n\
         resources:\n  - resources: [\"secrets\"]\n    providers:\n",
    );
    for (provider, name, secret) in providers {
        text.push_str(&format!(
            "      - {provider}:\n          keys:\n            - name: {name}\n              secret: {secret}\n"
        ));
    }
    text.push_str("      - identity: {}\n");
    text
}

const CBC_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const BOX_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn password(server: &Server, name: &str) -> String {
    server
        .kubectl_ok(
            "1.33",
            &["get", "secret", name, "-o", "jsonpath={.data.password}"],
        )
        .trim()
        .to_string()
}

#[test]
fn aescbc_rotates_to_secretbox_and_secrets_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("encryption.yaml");
    std::fs::write(&config, config_with(&[("aescbc", "cbc1", CBC_KEY)])).unwrap();
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
            "first",
            "--from-literal=password=CbcSecretValue42",
        ],
    );
    assert_eq!(password(&server, "first"), "Q2JjU2VjcmV0VmFsdWU0Mg==");
    let raw = datastore_bytes(&server);
    assert!(contains(&raw, "k8s:enc:aescbc:v1:cbc1:"));
    assert!(!contains(&raw, "CbcSecretValue42"));
    assert!(!contains(&raw, "Q2JjU2VjcmV0VmFsdWU0Mg=="));

    // 1. The new key is added second: old data reads, writes stay aescbc.
    std::fs::write(
        &config,
        config_with(&[("aescbc", "cbc1", CBC_KEY), ("secretbox", "box1", BOX_KEY)]),
    )
    .unwrap();
    server.restart();
    assert_eq!(password(&server, "first"), "Q2JjU2VjcmV0VmFsdWU0Mg==");

    // 2. The new key first; every secret is re-written with it. (Each one
    // is touched: an update that changes nothing is not written at all;
    // see docs/ARCHITECTURE.md.)
    std::fs::write(
        &config,
        config_with(&[("secretbox", "box1", BOX_KEY), ("aescbc", "cbc1", CBC_KEY)]),
    )
    .unwrap();
    server.restart();
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "secret",
            "generic",
            "second",
            "--from-literal=password=BoxSecretValue42",
        ],
    );
    let mut all =
        support::json(&server.kubectl_ok("1.33", &["get", "secrets", "-A", "-o", "json"]));
    for item in all["items"].as_array_mut().unwrap() {
        item["metadata"]["annotations"]["example.com/rotated-to"] = "box1".into();
    }
    let listed = dir.path().join("secrets.json");
    std::fs::write(&listed, all.to_string()).unwrap();
    server.kubectl_ok("1.33", &["replace", "-f", listed.to_str().unwrap()]);
    let raw = datastore_bytes(&server);
    assert!(contains(&raw, "k8s:enc:secretbox:v1:box1:"));
    assert!(!contains(&raw, "BoxSecretValue42"));

    // 3. The old key is dropped: everything still reads.
    std::fs::write(&config, config_with(&[("secretbox", "box1", BOX_KEY)])).unwrap();
    server.restart();
    assert_eq!(password(&server, "first"), "Q2JjU2VjcmV0VmFsdWU0Mg==");
    assert_eq!(password(&server, "second"), "Qm94U2VjcmV0VmFsdWU0Mg==");
}
