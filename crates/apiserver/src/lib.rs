//! The Kubernetes API server: the hub every component talks to.
//!
//! A request flows through [`server`] (TLS with optional client
//! certificates, HTTP/2 and HTTP/1.1) into [`pipeline::handle`], which runs
//! the named stages in order -- recover panics, resolve [`request_info`],
//! [`authn`], [`authz`], then route to [`discovery`], [`health`] or the
//! generic REST handlers in [`rest`] (decode, admit, validate, store).
//! [`registry`] says which resources exist and holds each kind's strategy
//! (defaulting, validation, table columns).
//!
//! Start reading at [`start`]. This crate is the only one that talks to
//! the datastore ([`storage::Store`]); nothing here may reach into other
//! components' state except through the API.

pub mod admission;
pub mod allocator;
pub mod audit;
pub mod authn;
pub mod authz;
pub mod bootstrap;
pub mod bootstrap_policy;
pub mod cacher;
pub mod conversion;
pub mod defaults;
pub mod discovery;
pub mod health;
pub mod impersonation;
pub mod openapi;
pub mod pipeline;
pub mod pod_security;
pub mod query;
pub mod quota;
pub mod recent;
pub mod registry;
pub mod request_info;
pub mod response;
pub mod rest;
pub mod reviews;
pub mod server;
pub mod table;
pub mod token_request;
pub mod typed;
pub mod watch;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use storage::Store;

/// The largest request body accepted (upstream's limit for most writes).
pub const MAX_REQUEST_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Everything the API server needs to run.
pub struct Config {
    pub bind_address: IpAddr,
    pub port: u16,
    /// The address clients are told to use (discovery, the kubernetes
    /// Service's endpoints).
    pub advertise_address: IpAddr,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    /// CA whose certificates authenticate clients (CN = user, O = groups).
    pub client_ca_pem: String,
    pub store: Arc<dyn Store>,
    /// Authenticators beyond client certificates.
    pub authenticators: authn::Authenticators,
    /// The CA clients verify this server with (put into service-account
    /// token Secrets as `ca.crt`).
    pub cluster_ca_pem: Option<String>,
    /// Audit policy and log (`--audit-policy-file`, `--audit-log-path`).
    pub audit: Option<Arc<audit::Auditor>>,
    /// `--authorization-mode`, in order.
    pub authorization_modes: Vec<authz::Mode>,
    /// Service ClusterIP network (address, prefix length).
    pub service_cidr: (IpAddr, u8),
    /// NodePort range, inclusive.
    pub service_node_port_range: (u16, u16),
}

/// Shared state of a running server, handed to every request.
pub struct ApiServer {
    pub store: Arc<dyn Store>,
    pub registry: registry::Registry,
    pub advertise: SocketAddr,
    /// Set once the post-start bootstrap (system namespaces) is done.
    pub bootstrapped: AtomicBool,
    pub authenticators: authn::Authenticators,
    pub service_ips: allocator::IpRange,
    pub node_ports: allocator::Range,
    pub node_port_base: u16,
    /// The watch cache every list and watch is served from.
    pub cache: Arc<cacher::Cacher>,
    /// The pods this server bound last, decoded, for the status writes
    /// that follow.
    pub recent: recent::RecentWrites,
    pub cluster_ca_pem: Option<String>,
    pub audit: Option<Arc<audit::Auditor>>,
    pub authorization_modes: Vec<authz::Mode>,
    /// RBAC grants by subject, rebuilt when RBAC objects change.
    pub rbac_index: std::sync::Mutex<Option<Arc<authz::rbac::RbacIndex>>>,
    /// Held while the RBAC index is rebuilt, so concurrent requests wait
    /// for one build instead of each building their own.
    pub rbac_index_build: tokio::sync::Mutex<()>,
    /// Unique among the servers of this process (for per-thread caches).
    pub instance: u64,
}

/// A started server: where it listens, and a handle to stop it.
pub struct RunningServer {
    pub local_addr: SocketAddr,
    pub state: Arc<ApiServer>,
    shutdown: tokio::sync::watch::Sender<bool>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    pub fn hooks(&self) -> registry::HookContext<'_> {
        registry::HookContext {
            store: &self.store,
            service_ips: &self.service_ips,
            node_ports: &self.node_ports,
            node_port_base: self.node_port_base,
        }
    }
}

impl RunningServer {
    /// Stop accepting connections and wait for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.accept_task.await;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("datastore: {0}")]
    Store(#[from] storage::StorageError),
    #[error("bootstrap: {0}")]
    Bootstrap(String),
}

/// Bind, start serving, and run the post-start bootstrap. Returns once the
/// API answers requests and the system namespaces exist.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    let tls = server::tls_config(
        &config.serving_cert_pem,
        &config.serving_key_pem,
        &config.client_ca_pem,
    )?;
    let addr = SocketAddr::new(config.bind_address, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    // Fail early if the datastore is unreachable.
    config.store.current_revision().await?;
    let cache = cacher::Cacher::unstarted(cacher::RING_CAPACITY);
    let state = Arc::new(ApiServer {
        store: config.store,
        registry: registry::Registry::builtin(),
        advertise: SocketAddr::new(config.advertise_address, local_addr.port()),
        bootstrapped: AtomicBool::new(false),
        cache,
        recent: recent::RecentWrites::default(),
        authenticators: config.authenticators,
        cluster_ca_pem: config.cluster_ca_pem,
        audit: config.audit,
        authorization_modes: config.authorization_modes,
        rbac_index: std::sync::Mutex::new(None),
        rbac_index_build: tokio::sync::Mutex::new(()),
        instance: {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        },
        service_ips: allocator::IpRange::new(config.service_cidr.0, config.service_cidr.1),
        node_ports: allocator::Range {
            key: "/registry/ranges/servicenodeports".into(),
            spec: format!(
                "{}-{}",
                config.service_node_port_range.0, config.service_node_port_range.1
            ),
            size: u64::from(
                config
                    .service_node_port_range
                    .1
                    .saturating_sub(config.service_node_port_range.0),
            ) + 1,
        },
        node_port_base: config.service_node_port_range.0,
    });
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let accept_task = tokio::spawn(server::accept_loop(
        listener,
        tls,
        state.clone(),
        shutdown_rx,
    ));
    bootstrap::run(&state)
        .await
        .map_err(|e| StartError::Bootstrap(e.message))?;
    // The watch cache starts once the bootstrap objects exist, as
    // upstream's caches start at the revision of their first list.
    state.cache.clone().spawn(state.store.clone());
    state.cache.ready().await;
    Ok(RunningServer {
        local_addr,
        state,
        shutdown,
        accept_task,
    })
}
