//! `rustkube server`: PKI, datastore and API server, wired together.
//!
//! Start-up order: certificates (generated once, reused after), the
//! datastore, the API server; only once the API answers is the admin
//! kubeconfig written, so its existence means the cluster is usable.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pki::files::load_or_generate_ca;
use pki::{load_or_issue, CertPaths, Kubeconfig, LeafSpec};
use storage::etcd::{EtcdConfig, EtcdStore};
use storage::sqlite::SqliteStore;
use storage::Store;

use crate::cli::ServerArgs;
use crate::components;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("certificates: {0}")]
    Pki(#[from] pki::PkiError),
    #[error("datastore: {0}")]
    Store(#[from] storage::StorageError),
    #[error("{0}")]
    Start(#[from] apiserver::StartError),
    #[error("{0}")]
    Io(String),
}

pub fn default_data_dir() -> PathBuf {
    if is_root() {
        PathBuf::from("/var/lib/rustkube")
    } else {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".rustkube")
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc_geteuid() == 0 }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_ascii_lowercase())
        .unwrap_or_else(|_| "localhost".into())
}

/// The address other machines would reach us on: the source address of a
/// route to the outside (no packet is sent), else loopback.
fn primary_address() -> IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| {
        s.connect("192.0.2.1:9")?;
        s.local_addr()
    });
    match probe {
        Ok(addr) if !addr.ip().is_unspecified() => addr.ip(),
        _ => IpAddr::from([127, 0, 0, 1]),
    }
}

/// The certificates and keys of the control plane, under `<data-dir>/server/tls`.
pub struct ServerPki {
    pub server_ca_pem: String,
    pub client_ca_pem: String,
    /// The CA keys the controller manager's CSR signer issues with.
    pub signing: controllers::ClusterSigning,
    pub serving: pki::IssuedCert,
    pub admin: pki::IssuedCert,
    pub controller_manager: pki::IssuedCert,
    pub scheduler: pki::IssuedCert,
}

pub fn ensure_pki(
    tls_dir: &Path,
    args: &ServerArgs,
    advertise: IpAddr,
) -> Result<ServerPki, pki::PkiError> {
    let server_ca =
        load_or_generate_ca(&CertPaths::new(tls_dir, "server-ca"), "rustkube-server-ca")?;
    let client_ca =
        load_or_generate_ca(&CertPaths::new(tls_dir, "client-ca"), "rustkube-client-ca")?;
    // The etcd CA signs etcd's serving/peer certificates and the API
    // server's etcd client certificate when rustkube runs etcd itself.
    load_or_generate_ca(
        &CertPaths::new(&tls_dir.join("etcd"), "etcd-ca"),
        "rustkube-etcd-ca",
    )?;
    let sa_key = tls_dir.join("service.key");
    if !sa_key.exists() {
        let (private, public) = pki::generate_key_pair_pem()?;
        pki::files::write_atomic(&sa_key, private.as_bytes(), 0o600)?;
        pki::files::write_atomic(&tls_dir.join("service.pub"), public.as_bytes(), 0o644)?;
    }

    let domain = &args.cluster_domain;
    let mut dns = vec![
        "localhost".to_string(),
        hostname(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        format!("kubernetes.default.svc.{domain}"),
    ];
    let mut ips = vec![
        IpAddr::from([127, 0, 0, 1]),
        advertise,
        args.service_cidr.first_ip(),
    ];
    if !args.bind_address.is_unspecified() {
        ips.push(args.bind_address);
    }
    for san in &args.tls_san {
        match san.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => dns.push(san.to_ascii_lowercase()),
        }
    }
    dns.dedup();
    let mut seen = Vec::new();
    ips.retain(|ip| {
        let new = !seen.contains(ip);
        seen.push(*ip);
        new
    });
    let mut seen_dns = Vec::new();
    dns.retain(|d| {
        let new = !seen_dns.contains(d);
        seen_dns.push(d.clone());
        new
    });
    let serving = load_or_issue(
        &CertPaths::new(tls_dir, "serving-kube-apiserver"),
        &server_ca,
        &LeafSpec::server("kube-apiserver", dns, ips),
    )?;
    let admin = load_or_issue(
        &CertPaths::new(tls_dir, "client-admin"),
        &client_ca,
        &LeafSpec::client("system:admin", &["system:masters"]),
    )?;
    // Each built-in component has its own identity, limited by RBAC to
    // upstream's role for it.
    let controller_manager = load_or_issue(
        &CertPaths::new(tls_dir, "client-controller-manager"),
        &client_ca,
        &LeafSpec::client("system:kube-controller-manager", &[]),
    )?;
    let scheduler = load_or_issue(
        &CertPaths::new(tls_dir, "client-scheduler"),
        &client_ca,
        &LeafSpec::client("system:kube-scheduler", &[]),
    )?;
    // Identities of the components still to come (service proxy, cluster
    // DNS) and of the API server towards kubelets, each bound to its own
    // role by the default RBAC policy.
    for (file, user) in [
        ("client-kube-proxy", "system:kube-proxy"),
        ("client-dns", "system:rustkube:dns"),
        (
            "client-kube-apiserver-kubelet-client",
            "system:kube-apiserver-kubelet-client",
        ),
    ] {
        load_or_issue(
            &CertPaths::new(tls_dir, file),
            &client_ca,
            &LeafSpec::client(user, &[]),
        )?;
    }
    Ok(ServerPki {
        server_ca_pem: server_ca.cert_pem().to_string(),
        client_ca_pem: client_ca.cert_pem().to_string(),
        signing: controllers::ClusterSigning {
            client_ca_cert_pem: client_ca.cert_pem().to_string(),
            client_ca_key_pem: client_ca.key_pem().to_string(),
            serving_ca_cert_pem: server_ca.cert_pem().to_string(),
            serving_ca_key_pem: server_ca.key_pem().to_string(),
        },
        serving,
        admin,
        controller_manager,
        scheduler,
    })
}

async fn open_datastore(args: &ServerArgs, data_dir: &Path) -> Result<Arc<dyn Store>, ServerError> {
    if args.datastore_endpoint.is_empty() {
        let db_dir = data_dir.join("server").join("db");
        std::fs::create_dir_all(&db_dir)
            .map_err(|e| ServerError::Io(format!("{}: {e}", db_dir.display())))?;
        let path = db_dir.join("state.db");
        let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
            .await
            .map_err(|e| ServerError::Io(e.to_string()))??;
        let store = Arc::new(store);
        storage::spawn_compactor(&store, Duration::from_secs(5 * 60), 1000);
        return Ok(store);
    }
    let config = EtcdConfig {
        endpoints: args
            .datastore_endpoint
            .split(',')
            .map(str::to_string)
            .collect(),
        ca_file: args.datastore_cafile.clone(),
        cert_file: args.datastore_certfile.clone(),
        key_file: args.datastore_keyfile.clone(),
    };
    let store = Arc::new(EtcdStore::connect(config).await?);
    storage::spawn_compactor(&store, Duration::from_secs(5 * 60), 1000);
    Ok(store)
}

fn kubeconfig_path(args: &ServerArgs, data_dir: &Path) -> PathBuf {
    match &args.write_kubeconfig {
        Some(p) => p.clone(),
        None if is_root() => PathBuf::from("/etc/rustkube/rustkube.yaml"),
        None => data_dir.join("rustkube.yaml"),
    }
}

pub async fn run(args: ServerArgs) -> Result<(), ServerError> {
    let started = Instant::now();
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let advertise = args.advertise_address.unwrap_or_else(primary_address);
    let tls_dir = data_dir.join("server").join("tls");
    let pki = {
        let args = args.clone();
        let tls_dir = tls_dir.clone();
        tokio::task::spawn_blocking(move || ensure_pki(&tls_dir, &args, advertise))
            .await
            .map_err(|e| ServerError::Io(e.to_string()))??
    };
    let mut store = open_datastore(&args, &data_dir).await?;
    if let Some(path) = &args.encryption_provider_config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServerError::Io(format!("--encryption-provider-config: {e}")))?;
        let config = storage::encryption::EncryptionConfig::parse(&text)
            .map_err(|e| ServerError::Io(format!("--encryption-provider-config: {e}")))?;
        store = Arc::new(storage::encryption::EncryptedStore::new(store, config));
    }
    tracing::info!(backend = store.backend_name(), data_dir = %data_dir.display(), "datastore ready");

    let token_file = match &args.token_auth_file {
        Some(path) => Some(
            apiserver::authn::token_file::TokenFile::load(path)
                .map_err(|e| ServerError::Io(format!("--token-auth-file: {e}")))?,
        ),
        None => None,
    };
    let basic_auth = match &args.basic_auth_file {
        Some(path) => {
            tracing::warn!(
                "--basic-auth-file is deprecated: HTTP basic authentication sends passwords with every request; prefer client certificates or tokens"
            );
            Some(
                apiserver::authn::token_file::TokenFile::load(path)
                    .map_err(|e| ServerError::Io(format!("--basic-auth-file: {e}")))?,
            )
        }
        None => None,
    };
    let service_accounts = {
        let key = std::fs::read_to_string(tls_dir.join("service.key"))
            .map_err(|e| ServerError::Io(format!("service-account key: {e}")))?;
        let issuer = format!("https://kubernetes.default.svc.{}", args.cluster_domain);
        apiserver::authn::service_account::ServiceAccountTokens::new(&key, &issuer)
            .map_err(|e| ServerError::Io(format!("service-account key: {e}")))?
    };
    let audit = match (&args.audit_policy_file, &args.audit_log_path) {
        (Some(policy), Some(log)) => Some(Arc::new(
            apiserver::audit::Auditor::open(
                policy,
                log,
                args.audit_log_maxsize,
                args.audit_log_maxbackup,
            )
            .map_err(|e| ServerError::Io(e.to_string()))?,
        )),
        _ => None,
    };
    let server = apiserver::start(apiserver::Config {
        bind_address: args.bind_address,
        port: args.https_listen_port,
        advertise_address: advertise,
        serving_cert_pem: pki.serving.cert_pem.clone(),
        serving_key_pem: pki.serving.key_pem.clone(),
        client_ca_pem: pki.client_ca_pem.clone(),
        store,
        authenticators: apiserver::authn::Authenticators {
            token_file,
            basic_auth,
            service_accounts: Some(service_accounts),
            anonymous: args.anonymous_auth,
        },
        cluster_ca_pem: Some(pki.server_ca_pem.clone()),
        audit,
        authorization_modes: apiserver::authz::Mode::parse_list(&args.authorization_mode)
            .map_err(ServerError::Io)?,
        service_cidr: (args.service_cidr.addr, args.service_cidr.prefix),
        service_node_port_range: args.service_node_port_range,
    })
    .await?;

    let host = if args.bind_address.is_unspecified() || args.bind_address.is_loopback() {
        "127.0.0.1".to_string()
    } else {
        match args.bind_address {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        }
    };
    let url = format!("https://{host}:{}", server.local_addr.port());
    let kubeconfig = Kubeconfig::with_client_cert(
        "default",
        &url,
        &pki.server_ca_pem,
        &pki.admin.cert_pem,
        &pki.admin.key_pem,
    );
    let cred_dir = data_dir.join("server").join("cred");
    kubeconfig.write(&cred_dir.join("admin.kubeconfig"), 0o600)?;
    start_components(&args, &pki, &url, &cred_dir)?;
    if let Err(err) = ensure_join_token(&data_dir, &pki.server_ca_pem, &cred_dir).await {
        tracing::warn!(%err, "could not set up the join token");
    }
    let path = kubeconfig_path(&args, &data_dir);
    kubeconfig.write(&path, args.write_kubeconfig_mode)?;
    tracing::info!(
        listen = %server.local_addr,
        kubeconfig = %path.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "rustkube server is ready; use it with: kubectl --kubeconfig {} get namespaces",
        path.display()
    );

    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// The server's join token (`<data-dir>/server/token`, mode 0600): a
/// bootstrap token that never expires, in the join form that pins the
/// cluster CA. Created on first start, its Secret re-created if missing.
async fn ensure_join_token(data_dir: &Path, ca_pem: &str, cred_dir: &Path) -> Result<(), String> {
    let path = data_dir.join("server").join("token");
    let existing = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().rsplit("::").next().map(str::to_string))
        .filter(|t| apiserver::authn::bootstrap_token::parse(t).is_some());
    let token = existing.unwrap_or_else(crate::token::generate);
    let client = clientkit::client_from_kubeconfig(&cred_dir.join("admin.kubeconfig"))
        .await
        .map_err(|e| e.to_string())?;
    let groups = vec![crate::token::DEFAULT_GROUP.to_string()];
    crate::token::ensure(
        client,
        &crate::token::TokenSpec {
            token: &token,
            ttl: None,
            description: "rustkube join token",
            groups: &groups,
        },
    )
    .await?;
    pki::files::write_atomic(
        &path,
        format!("{}\n", crate::token::join_token(ca_pem, &token)).as_bytes(),
        0o600,
    )
    .map_err(|e| e.to_string())
}

/// Start the controller manager and the scheduler as tasks, each with its
/// own kubeconfig (and so its own client certificate) under `cred_dir`.
fn start_components(
    args: &ServerArgs,
    pki: &ServerPki,
    url: &str,
    cred_dir: &Path,
) -> Result<(), ServerError> {
    if !args.disable_controller_manager {
        let path = cred_dir.join("controller-manager.kubeconfig");
        Kubeconfig::with_client_cert(
            "default",
            url,
            &pki.server_ca_pem,
            &pki.controller_manager.cert_pem,
            &pki.controller_manager.key_pem,
        )
        .write(&path, 0o600)?;
        let options = controllers::Options {
            cluster_cidr: Some(args.cluster_cidr.to_string()),
            node_monitor_grace_period: Duration::from_secs(args.node_monitor_grace_period),
            root_ca_pem: Some(pki.server_ca_pem.clone()),
            cluster_signing: Some(pki.signing.clone()),
            ..Default::default()
        };
        components::supervise("controller-manager", path, move |path| {
            let options = options.clone();
            async move { components::controller_manager(&path, options, true).await }
        });
    }
    if !args.disable_scheduler {
        let path = cred_dir.join("scheduler.kubeconfig");
        Kubeconfig::with_client_cert(
            "default",
            url,
            &pki.server_ca_pem,
            &pki.scheduler.cert_pem,
            &pki.scheduler.key_pem,
        )
        .write(&path, 0o600)?;
        let config_file = args.scheduler_config.clone();
        components::supervise("scheduler", path, move |path| {
            let config_file = config_file.clone();
            async move { components::scheduler(&path, config_file.as_deref(), true).await }
        });
    }
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
