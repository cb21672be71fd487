//! Leader election through a `coordination.k8s.io/v1` Lease, with
//! upstream's timing (lease 15 s, renew deadline 10 s, retry every 2 s).
//!
//! A candidate takes the Lease when it is free or when its record has not
//! changed for a whole lease duration *as observed on this candidate's own
//! clock* (so clock skew between servers does not matter), and the leader
//! renews it every retry period. Every write is a compare-and-swap on the
//! Lease's resourceVersion, so two candidates can never both win.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::Mutex;

use crate::Error;

#[derive(Clone, Debug)]
pub struct LeaderElectionConfig {
    pub namespace: String,
    pub name: String,
    /// Unique per candidate, e.g. `<hostname>_<uuid>`.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaderElectionConfig {
    /// Upstream's defaults for a lock named `name` in kube-system.
    pub fn new(name: &str, identity: &str) -> Self {
        LeaderElectionConfig {
            namespace: "kube-system".into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What this candidate last saw of the Lease, and when it saw it change.
struct Observed {
    resource_version: Option<String>,
    at: Instant,
}

pub struct LeaderElection {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    observed: Mutex<Option<Observed>>,
}

impl LeaderElection {
    pub fn new(client: kube::Client, config: LeaderElectionConfig) -> Self {
        LeaderElection {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: Mutex::new(None),
        }
    }

    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    /// Run `work` once this candidate leads, for as long as it leads.
    /// Returns `work`'s own result if it ends first, or
    /// [`Error::LostLease`] (with `work` dropped) when renewal fails for
    /// longer than the renew deadline; a component then exits, as
    /// upstream's do, so it never acts without the lease.
    pub async fn run<F, E>(&self, work: F) -> Result<Result<(), E>, Error>
    where
        F: Future<Output = Result<(), E>>,
    {
        self.acquire().await;
        tracing::info!(lease = %self.config.name, identity = %self.config.identity, "became leader");
        tokio::select! {
            result = work => {
                self.release().await;
                Ok(result)
            }
            lost = self.keep_renewing() => Err(lost),
        }
    }

    /// Wait until this candidate holds the Lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(err) => tracing::debug!(%err, "leader election attempt failed"),
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Renew every retry period; returns only when leadership is lost.
    pub async fn keep_renewing(&self) -> Error {
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewed = Instant::now(),
                Ok(false) => return Error::LostLease(self.config.name.clone()),
                Err(err) => tracing::warn!(%err, "renewing the leader lease failed"),
            }
            if last_renewed.elapsed() > self.config.renew_deadline {
                return Error::LostLease(self.config.name.clone());
            }
        }
    }

    /// Give the Lease up on a clean shutdown so another candidate need not
    /// wait a whole lease duration.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        let _ = self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await;
    }

    /// One attempt: Ok(true) when this candidate holds the Lease afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, Error> {
        let now = MicroTime(Timestamp::now());
        let duration_seconds = self.config.lease_duration.as_secs() as i32;
        let me = self.config.identity.as_str();
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.to_string()),
                    lease_duration_seconds: Some(duration_seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(&created).await;
                    Ok(true)
                }
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(err) => Err(err.into()),
            };
        };
        let expired = self.observe(&lease).await;
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let held_by_me = holder == me;
        if !held_by_me && !holder.is_empty() && !expired {
            return Ok(false);
        }
        if !held_by_me {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(me.to_string());
        spec.lease_duration_seconds = Some(duration_seconds);
        spec.renew_time = Some(now);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                self.observe(&updated).await;
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Record what we saw; true when the record has not changed for longer
    /// than its lease duration on our clock.
    async fn observe(&self, lease: &Lease) -> bool {
        let mut observed = self.observed.lock().await;
        let version = lease.metadata.resource_version.clone();
        let changed = observed
            .as_ref()
            .is_none_or(|o| o.resource_version != version);
        if changed {
            *observed = Some(Observed {
                resource_version: version,
                at: Instant::now(),
            });
            return false;
        }
        let seconds = lease
            .spec
            .as_ref()
            .and_then(|s| s.lease_duration_seconds)
            .unwrap_or(self.config.lease_duration.as_secs() as i32)
            .max(1) as u64;
        observed
            .as_ref()
            .is_some_and(|o| o.at.elapsed() > Duration::from_secs(seconds))
    }
}
