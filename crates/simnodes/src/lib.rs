//! Simulated nodes: kubelets without containers, for exercising the control
//! plane at scale (thousands of nodes, tens of thousands of pods) in one
//! process.
//!
//! Like a kubelet, [`run`] registers Nodes, keeps one Lease per node fresh
//! in `kube-node-lease`, posts node status heartbeats, and drives the pods
//! bound to its nodes through their lifecycle (Running, then Succeeded or
//! Failed for run-to-completion pods, graceful deletion). It is a plain
//! client of the API server through `kube::Client`; it must never depend on
//! `apiserver` or `storage`.
//!
//! Modules: [`fleet`] (the shared state of all simulated nodes and the
//! request budget), [`node`] (Node objects, registration, status
//! heartbeats, re-registration), [`lease`] (node leases), [`pods`] (the
//! single pod watch and the pod lifecycle), [`addresses`] (fake node and
//! pod IP ranges).
//!
//! Scaling rules: one watch over all pods and one over all nodes (never per
//! node), heartbeats spread evenly over their interval, and every request
//! goes through one bounded budget so a burst cannot swamp the API server.

pub mod addresses;
pub mod fleet;
pub mod lease;
pub mod node;
pub mod pods;

use std::sync::Arc;
use std::time::Duration;

/// How the simulated nodes look and behave (flags of `rustkube sim-nodes`).
#[derive(Clone, Debug)]
pub struct Options {
    /// How many nodes to simulate.
    pub count: usize,
    /// Node names are `<name_prefix><index>`.
    pub name_prefix: String,
    /// Index of the first node (several processes can share one prefix).
    pub start_index: usize,
    /// Capacity and allocatable CPU of each node.
    pub cpu: String,
    /// Capacity and allocatable memory of each node.
    pub memory: String,
    /// Maximum pods per node.
    pub pods: u32,
    /// Extra labels on every node.
    pub labels: Vec<(String, String)>,
    /// Zones assigned round-robin as `topology.kubernetes.io/zone`.
    pub zones: Vec<String>,
    /// How often each node renews its Lease.
    pub lease_renew_interval: Duration,
    /// How often each node posts its status.
    pub status_update_interval: Duration,
    /// How long run-to-completion pods run before they succeed.
    pub job_run_seconds: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            count: 1,
            name_prefix: "sim-node-".into(),
            start_index: 0,
            cpu: "4".into(),
            memory: "16Gi".into(),
            pods: 110,
            labels: Vec::new(),
            zones: Vec::new(),
            lease_renew_interval: Duration::from_secs(10),
            status_update_interval: Duration::from_secs(60),
            job_run_seconds: 1.0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("invalid options: {0}")]
    Options(String),
    #[error("simulated node task failed: {0}")]
    Task(String),
}

/// Simulate the nodes `options` describes until killed or a fatal error.
pub async fn run(client: kube::Client, options: Options) -> Result<(), Error> {
    if options.count == 0 {
        return Err(Error::Options("count must be at least 1".into()));
    }
    if options.lease_renew_interval.is_zero() || options.status_update_interval.is_zero() {
        return Err(Error::Options("intervals must be positive".into()));
    }
    if !options.job_run_seconds.is_finite() || options.job_run_seconds < 0.0 {
        return Err(Error::Options("job run seconds must be >= 0".into()));
    }
    let fleet = Arc::new(fleet::Fleet::new(client, options));
    tracing::info!(nodes = fleet.nodes.len(), "registering simulated nodes");
    node::register_all(&fleet).await;

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(lease::run(fleet.clone()));
    tasks.spawn(node::run_status_updates(fleet.clone()));
    tasks.spawn(node::watch_nodes(fleet.clone()));
    tasks.spawn(pods::run(fleet.clone()));
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(err),
            Err(join) => return Err(Error::Task(join.to_string())),
        }
    }
    Ok(())
}

/// The HTTP status code of an API error, if the server answered with one.
pub(crate) fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}
