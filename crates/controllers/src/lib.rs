//! The controller manager: every upstream control loop rustkube runs, each a
//! client of the API server through `kube::Client` (watchers and
//! reflectors from kube-runtime), never touching storage directly.
//!
//! A newcomer starts at [`run`], which starts every controller as a task
//! sharing one [`Context`]. Each controller lives in its own module and
//! exposes `pub async fn run(ctx: Context) -> Result<(), Error>`, which
//! returns only on a fatal error.

pub mod certificates;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod gc;
pub mod informers;
pub mod job;
pub mod namespace;
mod node_informer;
pub mod node_ipam;
pub mod node_lifecycle;
mod node_podutil;
mod node_services;
pub mod podgc;
pub mod replicaset;
pub mod resourcequota;
pub mod serviceaccount;
pub mod statefulset;
pub mod token_cleaner;
mod workload_util;

use std::sync::Arc;
use std::time::Duration;

pub use clientkit::EventRecorder;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("watch failed: {0}")]
    Watch(#[from] kube::runtime::watcher::Error),
    #[error("{0}")]
    Other(String),
}

/// Settings of the controller manager (flags of `rustkube server` and
/// `rustkube controller-manager`).
#[derive(Clone, Debug)]
pub struct Options {
    /// Pod CIDR nodes get their `podCIDR` from (node IPAM); None disables it.
    pub cluster_cidr: Option<String>,
    /// Prefix length of each node's pod CIDR.
    pub node_cidr_mask_size: u8,
    /// A node whose heartbeat is older than this goes Ready=Unknown.
    pub node_monitor_grace_period: Duration,
    /// Default tolerationSeconds for the not-ready/unreachable taints.
    pub default_not_ready_toleration_seconds: i64,
    /// Terminated pods above this count are garbage collected.
    pub terminated_pod_gc_threshold: usize,
    /// PEM of the cluster CA published as `kube-root-ca.crt` in every namespace.
    pub root_ca_pem: Option<String>,
    /// CA certificates and keys the CSR signer issues with; None: no signing.
    pub cluster_signing: Option<ClusterSigning>,
}

/// The CAs behind the built-in signers: the client CA for the
/// `kube-apiserver-client*` signers, the serving CA for `kubelet-serving`.
#[derive(Clone)]
pub struct ClusterSigning {
    pub client_ca_cert_pem: String,
    pub client_ca_key_pem: String,
    pub serving_ca_cert_pem: String,
    pub serving_ca_key_pem: String,
}

impl std::fmt::Debug for ClusterSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print private keys.
        f.write_str("ClusterSigning { .. }")
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cluster_cidr: Some("10.42.0.0/16".into()),
            node_cidr_mask_size: 24,
            node_monitor_grace_period: Duration::from_secs(40),
            default_not_ready_toleration_seconds: 300,
            terminated_pod_gc_threshold: 12500,
            root_ca_pem: None,
            cluster_signing: None,
        }
    }
}

/// What every controller gets.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    /// One watch and cache per kind, shared by every controller.
    pub informers: Arc<informers::SharedInformers>,
    pub recorder: EventRecorder,
    pub options: Arc<Options>,
}

/// Start every controller and run until one fails.
pub async fn run(client: kube::Client, options: Options) -> Result<(), Error> {
    let ctx = Context {
        recorder: EventRecorder::new(client.clone(), "controller-manager"),
        informers: Arc::new(informers::SharedInformers::new(client.clone())),
        client,
        options: Arc::new(options),
    };
    let mut tasks = tokio::task::JoinSet::new();
    let _ = &ctx;
    // Each controller registers here: tasks.spawn(module::run(ctx.clone()));
    tasks.spawn(certificates::run(ctx.clone()));
    tasks.spawn(token_cleaner::run(ctx.clone()));
    tasks.spawn(node_ipam::run(ctx.clone()));
    tasks.spawn(node_lifecycle::run(ctx.clone()));
    tasks.spawn(endpoints::run(ctx.clone()));
    tasks.spawn(endpointslice::run(ctx.clone()));
    tasks.spawn(podgc::run(ctx.clone()));
    tasks.spawn(disruption::run(ctx.clone()));
    tasks.spawn(replicaset::run(ctx.clone()));
    tasks.spawn(deployment::run(ctx.clone()));
    tasks.spawn(gc::run(ctx.clone()));
    tasks.spawn(namespace::run(ctx.clone()));
    tasks.spawn(serviceaccount::run(ctx.clone()));
    tasks.spawn(job::run(ctx.clone()));
    tasks.spawn(cronjob::run(ctx.clone()));
    tasks.spawn(daemonset::run(ctx.clone()));
    tasks.spawn(statefulset::run(ctx.clone()));
    tasks.spawn(resourcequota::run(ctx.clone()));
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(err),
            Err(join) => return Err(Error::Other(format!("controller task failed: {join}"))),
        }
    }
    std::future::pending().await
}
