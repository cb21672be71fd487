//! Informers for the node-side controllers: a reflector (an in-memory
//! cache of one resource, fed by one watch) run as a background task,
//! optionally forwarding every watch event to its controller so that it can
//! react to changes instead of polling. The task stops when the
//! [`Informer`] is dropped.

use std::fmt::Debug;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::Resource;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::informers::{SharedInformers, Synced};

pub(crate) struct Informer<K: Resource<DynamicType = ()> + Clone + 'static> {
    pub store: Store<K>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Set for a shared store, whose own readiness signal must not be
    /// awaited (see `informers`).
    synced: Option<Synced>,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Drop for Informer<K> {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// Cache `api` (filtered by `config`), sending each event to `events`
    /// if given.
    pub fn spawn(
        api: Api<K>,
        config: watcher::Config,
        events: Option<mpsc::UnboundedSender<watcher::Event<K>>>,
    ) -> Informer<K> {
        let (store, writer) = reflector::store();
        let task = tokio::spawn(async move {
            let mut stream = reflector::reflector(
                writer,
                watcher(api, config)
                    .default_backoff()
                    .modify(clientkit::trim_managed_fields),
            )
            .boxed();
            while let Some(item) = stream.next().await {
                match item {
                    Ok(event) => {
                        if let Some(events) = &events {
                            if events.send(event).is_err() {
                                return;
                            }
                        }
                    }
                    Err(err) => tracing::debug!(%err, kind = %K::kind(&()), "watch error"),
                }
            }
        });
        Informer {
            store,
            task: Some(task),
            synced: None,
        }
    }

    /// The controller manager's shared informer of every `K`, sending each
    /// event to `events` if given.
    pub fn shared(
        informers: &SharedInformers,
        events: Option<mpsc::UnboundedSender<watcher::Event<K>>>,
    ) -> Informer<K> {
        let synced = Some(informers.synced::<K>());
        let Some(events) = events else {
            return Informer {
                store: informers.store(),
                task: None,
                synced,
            };
        };
        let (store, mut stream) = informers.events::<K>();
        let task = tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                if events.send(event).is_err() {
                    return;
                }
            }
        });
        Informer {
            store,
            task: Some(task),
            synced,
        }
    }

    /// Wait until the first list has filled the cache.
    pub async fn ready(&self) -> Result<(), crate::Error> {
        if let Some(synced) = &self.synced {
            return synced.clone().wait().await;
        }
        self.store
            .wait_until_ready()
            .await
            .map_err(|_| crate::Error::Other(format!("{} informer stopped", K::kind(&()))))
    }
}
