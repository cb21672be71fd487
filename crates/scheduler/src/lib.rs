//! The scheduler: assigns pending pods to nodes the way upstream
//! kube-scheduler 1.33 does, as a client of the API server through
//! `kube::Client` only (watches of nodes, pods and the objects that shape
//! decisions; binding through `pods/binding`). It never depends on
//! `apiserver` or `storage`, and leader election is the caller's job.
//!
//! A newcomer starts at [`run`] (in [`scheduler`]): watchers feed the
//! [`cache::Cache`] and the [`queue::SchedulingQueue`]; one loop pops the
//! most important pod, decides with [`framework::schedule`] (plugins in
//! [`plugins`]), assumes the pod in the cache and binds it asynchronously;
//! when nothing fits, [`preemption`] may evict lower-priority pods.
//!
//! Modules: [`config`] (KubeSchedulerConfiguration), [`resources`]
//! (quantities, pod requests), [`podinfo`] (pods and selectors in
//! precomputed form), [`cache`], [`queue`], [`plugins`], [`framework`],
//! [`preemption`], [`scheduler`] (the API-facing loop).

pub mod cache;
pub mod config;
pub mod framework;
pub mod plugins;
pub mod podinfo;
pub mod preemption;
pub mod queue;
pub mod resources;
pub mod scheduler;

pub use config::{Config, Profile};
pub use scheduler::run;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("scheduler configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Other(String),
}
