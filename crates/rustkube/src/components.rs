//! The client components (controller manager, scheduler, simulated nodes)
//! as the binary runs them: each builds its own `kube::Client` from a
//! kubeconfig, so inside `rustkube server` they still reach the API server
//! over loopback HTTPS with their own certificate, exactly as they would
//! from another machine.
//!
//! The controller manager and the scheduler only work while they hold
//! their Lease (`kube-system/kube-controller-manager`,
//! `kube-system/kube-scheduler`). A component that loses its Lease stops
//! all its work at once; inside the server it then competes again, run
//! alone it exits like upstream's.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clientkit::{LeaderElection, LeaderElectionConfig};

/// Why a component stopped.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error("{0}")]
    Client(#[from] clientkit::Error),
    #[error("{0}")]
    Failed(String),
}

/// A unique candidate name: host name plus a random suffix, as upstream.
fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

/// Run `work` (made fresh for every term) whenever this candidate leads the
/// Lease `lease`, or right away without election.
async fn run_elected<F, Fut, E>(
    client: kube::Client,
    lease: &str,
    leader_elect: bool,
    work: F,
) -> Result<(), ComponentError>
where
    F: Fn(kube::Client) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    if !leader_elect {
        return work(client)
            .await
            .map_err(|e| ComponentError::Failed(e.to_string()));
    }
    let election = LeaderElection::new(
        client.clone(),
        LeaderElectionConfig::new(lease, &identity()),
    );
    match election.run(work(client)).await? {
        Ok(()) => Ok(()),
        Err(e) => Err(ComponentError::Failed(e.to_string())),
    }
}

pub async fn controller_manager(
    kubeconfig: &Path,
    options: controllers::Options,
    leader_elect: bool,
) -> Result<(), ComponentError> {
    let client = clientkit::client_from_kubeconfig(kubeconfig).await?;
    run_elected(client, "kube-controller-manager", leader_elect, |client| {
        controllers::run(client, options.clone())
    })
    .await
}

pub async fn scheduler(
    kubeconfig: &Path,
    config_file: Option<&Path>,
    leader_elect: bool,
) -> Result<(), ComponentError> {
    let config = match config_file {
        Some(path) => scheduler::Config::from_file(path)
            .map_err(|e| ComponentError::Failed(format!("{}: {e}", path.display())))?,
        None => scheduler::Config::default(),
    };
    let client = clientkit::client_from_kubeconfig(kubeconfig).await?;
    run_elected(client, "kube-scheduler", leader_elect, |client| {
        scheduler::run(client, config.clone())
    })
    .await
}

pub async fn sim_nodes(
    kubeconfig: &Path,
    options: simnodes::Options,
) -> Result<(), ComponentError> {
    let client = clientkit::client_from_kubeconfig(kubeconfig).await?;
    simnodes::run(client, options)
        .await
        .map_err(|e| ComponentError::Failed(e.to_string()))
}

/// Inside `rustkube server`: keep a component running, competing for its
/// Lease again whenever it loses it or fails.
pub fn supervise<F, Fut>(name: &'static str, kubeconfig: PathBuf, start: F)
where
    F: Fn(PathBuf) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), ComponentError>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match start(kubeconfig.clone()).await {
                Ok(()) => tracing::warn!(component = name, "stopped; starting again"),
                Err(err) => tracing::warn!(component = name, %err, "stopped; starting again"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
}
