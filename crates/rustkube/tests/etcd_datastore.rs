//! `rustkube server` on an external etcd, plain and with mutual TLS: the
//! same API behaviour as on the embedded datastore, with every object kept
//! in etcd under `/registry/<resource>/[<namespace>/]<name>` and its
//! resourceVersion equal to the key's etcd mod revision.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use storage::etcd::EtcdConfig;
use storage::testing::{EtcdProcess, EtcdTls};
use support::{json, Server};

/// How long a server may take to give up on a datastore it cannot use.
const REFUSAL_LIMIT: Duration = Duration::from_secs(30);

#[test]
fn api_smoke_passes_on_plain_etcd() {
    let etcd = start_etcd(None);
    let config = etcd.client_config();
    let server = start_server(&datastore_args(&config));

    support::api_smoke(&server);
    objects_live_under_registry_keys(&server, &config);
}

#[test]
fn api_smoke_passes_on_mtls_etcd() {
    let etcd = start_etcd(Some(mtls_certificates()));
    let config = etcd.client_config();
    assert!(
        etcd.endpoint().starts_with("https://"),
        "{}",
        etcd.endpoint()
    );
    let server = start_server(&datastore_args(&config));

    support::api_smoke(&server);
    objects_live_under_registry_keys(&server, &config);
}

#[test]
fn server_without_a_client_certificate_for_mtls_etcd_exits_non_zero() {
    let etcd = start_etcd(Some(mtls_certificates()));
    let with_ca_only = EtcdConfig {
        cert_file: None,
        key_file: None,
        ..etcd.client_config()
    };

    match run_until_exit(&datastore_args(&with_ca_only), REFUSAL_LIMIT) {
        Exited(status, log) => {
            assert!(!status.success(), "server exited successfully:\n{log}");
            assert!(log.contains("datastore"), "the error should name the datastore:\n{log}");
        }
        StillRunning(log) => panic!(
            "server still running {REFUSAL_LIMIT:?} after start without a client certificate for an mTLS etcd:\n{log}"
        ),
    }
}

#[test]
fn restart_on_etcd_keeps_data() {
    let etcd = start_etcd(None);
    let config = etcd.client_config();
    let mut server = start_server(&datastore_args(&config));
    let base = "/api/v1/namespaces/kube-system/configmaps";
    let (code, body) = support::post_json(
        &server,
        base,
        r#"{"metadata":{"name":"survivor"},"data":{"a":"b"}}"#,
    );
    assert_eq!(code, 201, "{body}");
    let created = json(&body);

    server.restart();

    let (code, body) = server.curl_admin(&[&format!("{base}/survivor")]);
    assert_eq!(code, 200, "{body}");
    let read = json(&body);
    assert_eq!(read["data"]["a"], "b");
    assert_eq!(read["metadata"]["uid"], created["metadata"]["uid"]);
    assert_eq!(
        read["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
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
    // Everything lives in etcd: no embedded database was created.
    assert!(!server.data_dir.join("server/db/state.db").exists());
}

/// The namespaces the server creates and a configmap created over the API
/// are etcd keys; the stored value is the object, at the mod revision the
/// API reported as its resourceVersion.
fn objects_live_under_registry_keys(server: &Server, config: &EtcdConfig) {
    let keys = registry_keys(config);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let key = format!("/registry/namespaces/{ns}");
        assert!(keys.contains(&key), "{key} missing from {keys:#?}");
    }
    // The smoke test deleted its configmap; etcd no longer has it (the
    // root CA publisher's kube-root-ca.crt ConfigMaps are the only ones).
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with("/registry/configmaps/") && !k.ends_with("/kube-root-ca.crt")),
        "{keys:#?}"
    );

    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"in-etcd"},"data":{"k":"stored"}}"#;
    let (code, body) = support::post_json(server, "/api/v1/namespaces/kube-public/configmaps", cm);
    assert_eq!(code, 201, "{body}");
    let resource_version = json(&body)["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    let key = "/registry/configmaps/kube-public/in-etcd";
    assert!(
        registry_keys(config).iter().any(|k| k == key),
        "{key} missing"
    );
    let stored = json(&etcdctl(config, &["get", key, "--print-value-only"]));
    assert_eq!(stored["metadata"]["name"], "in-etcd");
    assert_eq!(stored["metadata"]["namespace"], "kube-public");
    assert_eq!(stored["data"]["k"], "stored");
    let described = json(&etcdctl(config, &["get", key, "--write-out=json"]));
    let mod_revision = described["kvs"][0]["mod_revision"].as_u64().unwrap();
    assert_eq!(resource_version, mod_revision.to_string());
}

fn start_etcd(tls: Option<EtcdTls>) -> EtcdProcess {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(EtcdProcess::start(tls))
        .unwrap_or_else(|e| panic!("cannot start etcd: {e}"))
}

/// A CA, a server certificate for 127.0.0.1 and localhost, and a client
/// certificate, all for an etcd that requires client certificates.
fn mtls_certificates() -> EtcdTls {
    let ca = pki::CertificateAuthority::generate("rustkube-test-etcd-ca").unwrap();
    let server = ca
        .issue(&pki::LeafSpec::server(
            "etcd",
            vec!["localhost".to_string()],
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        ))
        .unwrap();
    let client = ca
        .issue(&pki::LeafSpec::client("kube-apiserver-etcd-client", &[]))
        .unwrap();
    EtcdTls {
        ca_cert_pem: ca.cert_pem().to_string(),
        server_cert_pem: server.cert_pem,
        server_key_pem: server.key_pem,
        client_cert_pem: client.cert_pem,
        client_key_pem: client.key_pem,
    }
}

/// The `--datastore-*` flags that point the server at `config`.
fn datastore_args(config: &EtcdConfig) -> Vec<String> {
    let mut args = vec![format!(
        "--datastore-endpoint={}",
        config.endpoints.join(",")
    )];
    for (flag, file) in [
        ("--datastore-cafile", &config.ca_file),
        ("--datastore-certfile", &config.cert_file),
        ("--datastore-keyfile", &config.key_file),
    ] {
        if let Some(file) = file {
            args.push(format!("{flag}={}", file.display()));
        }
    }
    args
}

/// The API server alone on etcd: these tests check the datastore, so no
/// controller writes behind their back.
fn start_server(args: &[String]) -> Server {
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend(["--disable-controller-manager", "--disable-scheduler"]);
    Server::start(&args)
}

/// etcdctl (API v3) against `config`, which must succeed; returns stdout.
fn etcdctl(config: &EtcdConfig, args: &[&str]) -> String {
    let mut cmd = Command::new("/usr/bin/etcdctl");
    for (var, _) in std::env::vars_os() {
        // etcdctl reads every ETCDCTL_* variable as a flag.
        if var.to_string_lossy().starts_with("ETCDCTL_") {
            cmd.env_remove(var);
        }
    }
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", config.endpoints.join(",")));
    for (flag, file) in [
        ("--cacert", &config.ca_file),
        ("--cert", &config.cert_file),
        ("--key", &config.key_file),
    ] {
        if let Some(file) = file {
            cmd.arg(format!("{flag}={}", file.display()));
        }
    }
    let out = support::run(cmd.args(args));
    assert!(
        out.status.success(),
        "etcdctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every key under `/registry/`.
fn registry_keys(config: &EtcdConfig) -> Vec<String> {
    etcdctl(config, &["get", "--prefix", "--keys-only", "/registry/"])
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

enum RunOutcome {
    Exited(ExitStatus, String),
    StillRunning(String),
}
use RunOutcome::{Exited, StillRunning};

/// Start `rustkube server` with `extra_args` on a fresh data dir and wait
/// up to `limit` for it to exit; a server still running then is killed.
/// Either way the outcome carries its log.
fn run_until_exit(extra_args: &[String], limit: Duration) -> RunOutcome {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "").unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rustkube"))
        .arg("server")
        .arg(format!("--config={}", config.display()))
        .arg(format!("--data-dir={}", dir.path().join("data").display()))
        .arg(format!(
            "--write-kubeconfig={}",
            dir.path().join("kubeconfig.yaml").display()
        ))
        .arg(format!("--https-listen-port={}", support::free_port()))
        .arg("--bind-address=127.0.0.1")
        .arg("--advertise-address=127.0.0.1")
        .args(extra_args)
        .env_remove("RUSTKUBE_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut child = KilledOnDrop(child);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(child);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    match status {
        Some(status) => Exited(status, log),
        None => StillRunning(log),
    }
}

/// A child process that is SIGKILLed (by PID) and reaped when dropped,
/// also when the test fails.
struct KilledOnDrop(Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
