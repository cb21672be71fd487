//! The conformance suite on a real etcd (Debian's /usr/bin/etcd) started on
//! loopback for this test, over plain HTTP and over mutual TLS. A missing
//! etcd binary fails these tests; it does not skip them.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use pki::{CertificateAuthority, LeafSpec, Usage};
use storage::etcd::{EtcdConfig, EtcdStore};
use storage::testing::{EtcdProcess, EtcdTls};
use storage::Store;

async fn start_etcd(tls: Option<EtcdTls>) -> EtcdProcess {
    match EtcdProcess::start(tls).await {
        Ok(etcd) => etcd,
        Err(err) => panic!("cannot start etcd for the conformance suite: {err}"),
    }
}

fn leaf(common_name: &str, usage: Usage) -> LeafSpec {
    LeafSpec {
        common_name: common_name.to_string(),
        organizations: vec![],
        dns_names: vec!["localhost".to_string()],
        ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        usage,
        validity: Duration::from_secs(24 * 3600),
    }
}

fn mutual_tls() -> (EtcdTls, CertificateAuthority) {
    let ca = CertificateAuthority::generate("rustkube-test-etcd-ca").unwrap();
    let server = ca
        .issue(&leaf("etcd-server", Usage::ServerAndClient))
        .unwrap();
    let client = ca
        .issue(&leaf("rustkube-apiserver-etcd-client", Usage::Client))
        .unwrap();
    let tls = EtcdTls {
        ca_cert_pem: ca.cert_pem().to_string(),
        server_cert_pem: server.cert_pem,
        server_key_pem: server.key_pem,
        client_cert_pem: client.cert_pem,
        client_key_pem: client.key_pem,
    };
    (tls, ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_store_passes_conformance_suite_over_plain_http() {
    let etcd = start_etcd(None).await;
    let store = etcd.connect().await.unwrap();
    assert_eq!(store.backend_name(), "etcd");
    storage::conformance::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_store_passes_conformance_suite_over_mutual_tls() {
    let (tls, _ca) = mutual_tls();
    let etcd = start_etcd(Some(tls)).await;
    assert!(etcd.endpoint().starts_with("https://127.0.0.1:"));
    let store = EtcdStore::connect(etcd.client_config()).await.unwrap();
    storage::conformance::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_with_client_cert_auth_refuses_clients_without_a_trusted_cert() {
    let (tls, _ca) = mutual_tls();
    let etcd = start_etcd(Some(tls)).await;

    // CA only, no client certificate.
    let no_cert = EtcdConfig {
        cert_file: None,
        key_file: None,
        ..etcd.client_config()
    };
    match tokio::time::timeout(Duration::from_secs(20), EtcdStore::connect(no_cert)).await {
        Ok(Ok(_)) => panic!("etcd accepted a client without a certificate"),
        Ok(Err(err)) => println!("no client certificate: refused with {err}"),
        Err(_) => println!("no client certificate: refused (timed out)"),
    }

    // A client certificate from another CA.
    let (other, _) = mutual_tls();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("client.pem");
    let key = dir.path().join("client-key.pem");
    std::fs::write(&cert, other.client_cert_pem).unwrap();
    std::fs::write(&key, other.client_key_pem).unwrap();
    let foreign = EtcdConfig {
        cert_file: Some(cert),
        key_file: Some(key),
        ..etcd.client_config()
    };
    match tokio::time::timeout(Duration::from_secs(20), EtcdStore::connect(foreign)).await {
        Ok(Ok(_)) => panic!("etcd accepted a client certificate from another CA"),
        Ok(Err(err)) => println!("foreign client certificate: refused with {err}"),
        Err(_) => println!("foreign client certificate: refused (timed out)"),
    }
}

#[tokio::test]
async fn harness_fails_clearly_when_the_etcd_binary_is_missing() {
    let missing = Path::new("/nonexistent/rustkube-test/etcd");
    let err = match EtcdProcess::start_with_binary(missing, None).await {
        Ok(_) => panic!("started an etcd that does not exist"),
        Err(err) => err,
    };
    assert!(
        err.to_string().contains("etcd binary not found"),
        "unclear error: {err}"
    );
}

#[tokio::test]
async fn harness_kills_etcd_and_removes_its_directory_on_drop() {
    let etcd = start_etcd(None).await;
    let pid = etcd.pid();
    let dir = etcd.dir().to_path_buf();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    drop(etcd);
    assert!(!dir.exists(), "{} left behind", dir.display());
    // The PID is reaped; if it exists again it is another process.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(!stat.contains("etcd"), "etcd {pid} still running");
}
