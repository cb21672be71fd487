//! What every in-cluster client component shares: building a `kube::Client`
//! from a kubeconfig, electing a leader through a `coordination.k8s.io`
//! Lease, and recording Events the way upstream components do.
//!
//! The controller manager, the scheduler and the simulated nodes are real
//! third-party clients of the API server: they reach it only through
//! `kube::Client` over HTTPS with their own identity. This crate must never
//! depend on `apiserver` or `storage`.
//!
//! Modules: [`leader`] (Lease-based leader election), [`events`] (an Event
//! recorder), [`lean`] (pods and metadata-watch objects decoded without managedFields).

pub mod events;
pub mod leader;
pub mod lean;

use std::path::Path;

pub use events::EventRecorder;
pub use leader::{LeaderElection, LeaderElectionConfig};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("building a client from {path}: {source}")]
    Client { path: String, source: kube::Error },
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("lost the leader lease {0}")]
    LostLease(String),
}

/// Drop `metadata.managedFields` from an object a watch delivered, as
/// upstream's controller manager and scheduler trim their informers: no
/// controller reads them, they are often the largest part of a cached
/// object, and an update without them keeps the stored ones.
/// Use as `watcher(..).modify(clientkit::trim_managed_fields)`.
pub fn trim_managed_fields<K: kube::Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

/// A client for the cluster a kubeconfig file describes (its current
/// context), with the timeouts our components want.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client, Error> {
    let shown = path.display().to_string();
    let kubeconfig =
        kube::config::Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
            path: shown.clone(),
            source,
        })?;
    let mut config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(|source| Error::Kubeconfig {
        path: shown.clone(),
        source,
    })?;
    // Watches are long; kube's default read timeout would cut them.
    config.read_timeout = None;
    kube::Client::try_from(config).map_err(|source| Error::Client {
        path: shown,
        source,
    })
}
