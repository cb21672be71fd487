//! Shared informers: one watch and one in-memory cache per resource kind
//! for the whole controller manager, as upstream's shared informer factory.
//!
//! Without them every controller that needs pods opened its own pod watch
//! and kept its own copy of every pod: a dozen watches decoding the same
//! event a dozen times and a dozen copies in memory. Here the first
//! controller to ask for a kind starts its reflector; later ones share the
//! same [`Store`] and subscribe to its events.
//!
//! A subscriber always sees a consistent story: a subscriber that arrives
//! after the first list gets that list replayed from the cache (`Init`,
//! `InitApply` for every object, `InitDone`) before live events, as a new
//! watch would, and one that falls too far behind is resynchronised the
//! same way instead of silently missing events. Only unfiltered watches
//! (every object of the kind) are shared; a controller watching through a
//! selector keeps its own.
//!
//! Wait for a shared cache's first list with [`SharedInformers::synced`],
//! never with `Store::wait_until_ready`: kube-runtime's readiness signal is
//! a oneshot channel that keeps a single waker, so when several tasks await
//! the same store only the last one to poll it is woken and the others wait
//! forever (the node-side controllers once did exactly that on the shared
//! pod and node caches).

use std::any::{Any, TypeId};
use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::stream::BoxStream;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Resource;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};

/// Events buffered per subscriber before it is resynchronised from the
/// cache.
const BUFFER: usize = 16 * 1024;

/// What a shared informer's kind must be.
pub trait Kind:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

impl<K> Kind for K where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

/// One kind's reflector: its cache, its event fan-out, and whether the
/// first list has been sent to subscribers.
struct Shared<K: Kind> {
    store: Store<K>,
    /// Boxed so the channel's preallocated slots stay small.
    events: broadcast::Sender<Arc<Event<K>>>,
    synced: watch::Receiver<bool>,
    /// Held while the first `InitDone` is sent and `synced` set, and while
    /// a subscriber joins and reads `synced`: a subscriber joining between
    /// the two would otherwise miss that `InitDone` yet see `synced`
    /// false, and wait for a list that never comes.
    publish: Arc<Mutex<()>>,
}

impl<K: Kind> Clone for Shared<K> {
    fn clone(&self) -> Self {
        Shared {
            store: self.store.clone(),
            events: self.events.clone(),
            synced: self.synced.clone(),
            publish: self.publish.clone(),
        }
    }
}

/// Whether a shared cache has had its first list; any number of tasks may
/// wait on it at once.
#[derive(Clone)]
pub struct Synced(watch::Receiver<bool>);

impl Synced {
    /// Wait until the first list is in the cache. Errors once the
    /// informers are dropped.
    pub async fn wait(&mut self) -> Result<(), crate::Error> {
        self.0
            .wait_for(|synced| *synced)
            .await
            .map(|_| ())
            .map_err(|_| crate::Error::Other("informer stopped".into()))
    }

    pub fn is_synced(&self) -> bool {
        *self.0.borrow()
    }
}

/// The controller manager's informers, one per kind, started on first use
/// and stopped when this is dropped.
pub struct SharedInformers {
    client: kube::Client,
    kinds: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for SharedInformers {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().unwrap_or_else(|e| e.into_inner()) {
            task.abort();
        }
    }
}

impl SharedInformers {
    pub fn new(client: kube::Client) -> SharedInformers {
        SharedInformers {
            client,
            kinds: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
        }
    }

    fn shared<K: Kind>(&self) -> Shared<K> {
        let client = self.client.clone();
        self.shared_from(move || {
            // Pods are most of the watch traffic: skip decoding their
            // managedFields rather than dropping them after.
            if TypeId::of::<K>() == TypeId::of::<Pod>() {
                let pods: BoxStream<'static, Result<Event<Pod>, watcher::Error>> =
                    clientkit::lean::pod_watcher(
                        Api::all(client.clone()),
                        watcher::Config::default(),
                    )
                    .default_backoff()
                    .boxed();
                let any: Box<dyn Any> = Box::new(pods);
                if let Ok(pods) =
                    any.downcast::<BoxStream<'static, Result<Event<K>, watcher::Error>>>()
                {
                    return *pods;
                }
            }
            watcher::watcher(Api::<K>::all(client), watcher::Config::default())
                .default_backoff()
                .modify(clientkit::trim_managed_fields)
                .boxed()
        })
    }

    /// `K`'s shared informer, started on `source`'s watch events if no
    /// controller asked for `K` before.
    fn shared_from<K: Kind>(
        &self,
        source: impl FnOnce() -> BoxStream<'static, Result<Event<K>, watcher::Error>>,
    ) -> Shared<K> {
        let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shared) = kinds
            .get(&TypeId::of::<K>())
            .and_then(|any| any.downcast_ref::<Shared<K>>())
        {
            return shared.clone();
        }
        let (store, writer) = reflector::store::<K>();
        let (events, _) = broadcast::channel(BUFFER);
        let (synced_tx, synced) = watch::channel(false);
        let publish = Arc::new(Mutex::new(()));
        let shared = Shared {
            store,
            events: events.clone(),
            synced,
            publish: publish.clone(),
        };
        let source = source();
        let task = tokio::spawn(async move {
            let mut stream = reflector::reflector(writer, source).boxed();
            while let Some(item) = stream.next().await {
                match item {
                    Ok(event) => {
                        let first_list_done =
                            matches!(event, Event::InitDone) && !*synced_tx.borrow();
                        let _publishing = first_list_done
                            .then(|| publish.lock().unwrap_or_else(|e| e.into_inner()));
                        // No subscriber yet is fine: they replay the cache.
                        let _ = events.send(Arc::new(event));
                        if first_list_done {
                            synced_tx.send_replace(true);
                        }
                    }
                    Err(err) => {
                        tracing::debug!(%err, kind = %K::kind(&()), "watch failed; retrying")
                    }
                }
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
        kinds.insert(TypeId::of::<K>(), Box::new(shared.clone()));
        shared
    }

    /// Whether `K`'s shared cache has had its first list.
    pub fn synced<K: Kind>(&self) -> Synced {
        Synced(self.shared::<K>().synced)
    }

    /// The shared cache of every `K`.
    pub fn store<K: Kind>(&self) -> Store<K> {
        self.shared::<K>().store
    }

    /// The shared cache of every `K` and a stream of its watch events, the
    /// first list included however late the subscriber comes.
    pub fn events<K: Kind>(&self) -> (Store<K>, BoxStream<'static, Event<K>>) {
        let shared = self.shared::<K>();
        let (live, synced) = {
            let _publishing = shared.publish.lock().unwrap_or_else(|e| e.into_inner());
            (shared.events.subscribe(), *shared.synced.borrow())
        };
        let subscriber = Subscriber {
            waiting_for_list: !synced,
            pending: VecDeque::new(),
            live,
            store: shared.store.clone(),
        };
        let subscriber = if subscriber.waiting_for_list {
            subscriber
        } else {
            subscriber.replayed()
        };
        let stream = futures::stream::unfold(subscriber, |mut s| async move {
            let event = s.next().await?;
            Some((event, s))
        })
        .boxed();
        (shared.store, stream)
    }
}

impl SharedInformers {
    /// The shared cache of every `K` and a stream of the objects each
    /// event touched (applied, listed or deleted), for reconcile triggers.
    pub fn reflect<K: Kind>(&self) -> (Store<K>, BoxStream<'static, K>) {
        let (store, events) = self.events::<K>();
        let touched = events
            .filter_map(|event| async move {
                match event {
                    Event::Apply(o) | Event::InitApply(o) | Event::Delete(o) => Some(o),
                    Event::Init | Event::InitDone => None,
                }
            })
            .boxed();
        (store, touched)
    }
}

struct Subscriber<K: Kind> {
    /// Subscribed before the first list was complete: live events are
    /// skipped up to its `InitDone`, then the list is replayed whole.
    waiting_for_list: bool,
    pending: VecDeque<Event<K>>,
    live: broadcast::Receiver<Arc<Event<K>>>,
    store: Store<K>,
}

impl<K: Kind> Subscriber<K> {
    /// Queue the cache's content as a fresh list.
    fn replayed(mut self) -> Self {
        self.waiting_for_list = false;
        self.pending.clear();
        self.pending.push_back(Event::Init);
        for object in self.store.state() {
            self.pending
                .push_back(Event::InitApply(object.as_ref().clone()));
        }
        self.pending.push_back(Event::InitDone);
        self
    }

    async fn next(&mut self) -> Option<Event<K>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            match self.live.recv().await.map(Arc::unwrap_or_clone) {
                Ok(Event::InitDone) if self.waiting_for_list => {
                    let this = std::mem::replace(self, self.placeholder());
                    *self = this.replayed();
                }
                Ok(_) if self.waiting_for_list => {}
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, kind = %K::kind(&()), "informer subscriber fell behind; replaying the cache");
                    if !self.waiting_for_list {
                        let this = std::mem::replace(self, self.placeholder());
                        *self = this.replayed();
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// A value to stand in while `self` is rebuilt.
    fn placeholder(&self) -> Self {
        Subscriber {
            waiting_for_list: self.waiting_for_list,
            pending: VecDeque::new(),
            live: self.live.resubscribe(),
            store: self.store.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_informer::Informer;
    use futures::channel::mpsc;
    use k8s_openapi::api::core::v1::Pod;
    use std::time::Duration;

    type Feed<K> = mpsc::UnboundedSender<Result<Event<K>, watcher::Error>>;

    /// Informers whose client points nowhere: every kind a test uses is
    /// fed by the test through [`fed`].
    fn informers() -> SharedInformers {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        SharedInformers::new(kube::Client::try_from(config).unwrap())
    }

    /// Start `K`'s shared informer on watch events sent by the test.
    fn fed<K: Kind>(informers: &SharedInformers) -> Feed<K> {
        let (tx, rx) = mpsc::unbounded();
        informers.shared_from::<K>(move || rx.boxed());
        tx
    }

    fn pod(name: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "uid": name}
        }))
        .unwrap()
    }

    fn list(feed: &Feed<Pod>, names: &[&str]) {
        feed.unbounded_send(Ok(Event::Init)).unwrap();
        for name in names {
            feed.unbounded_send(Ok(Event::InitApply(pod(name))))
                .unwrap();
        }
        feed.unbounded_send(Ok(Event::InitDone)).unwrap();
    }

    /// Let every other task of this (current-thread) runtime run.
    async fn let_others_run() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    fn names(events: &[Event<Pod>]) -> Vec<String> {
        events
            .iter()
            .map(|event| match event {
                Event::Init => "Init".to_string(),
                Event::InitApply(p) => format!("InitApply {}", p.metadata.name.as_deref().unwrap()),
                Event::InitDone => "InitDone".to_string(),
                Event::Apply(p) => format!("Apply {}", p.metadata.name.as_deref().unwrap()),
                Event::Delete(p) => format!("Delete {}", p.metadata.name.as_deref().unwrap()),
            })
            .collect()
    }

    async fn take(stream: &mut BoxStream<'static, Event<Pod>>, n: usize) -> Vec<Event<Pod>> {
        let mut events = Vec::new();
        for _ in 0..n {
            let next = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
            events.push(next.expect("no event within 10 s").expect("stream ended"));
        }
        events
    }

    #[tokio::test]
    async fn every_controller_waiting_for_a_shared_cache_wakes_when_the_first_list_is_in() {
        let informers = informers();
        let feed = fed::<Pod>(&informers);
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let pods = Informer::<Pod>::shared(&informers, None);
                tokio::spawn(async move {
                    pods.ready().await?;
                    Ok::<_, crate::Error>(pods.store.len())
                })
            })
            .collect();
        let_others_run().await;
        // A workload controller checking readiness in passing.
        assert!(!crate::workload_util::is_ready(&informers.store::<Pod>()));
        assert!(!informers.synced::<Pod>().is_synced());

        list(&feed, &["a", "b"]);
        for waiter in waiters {
            let listed = tokio::time::timeout(Duration::from_secs(10), waiter)
                .await
                .expect("a waiter was never woken")
                .unwrap()
                .unwrap();
            assert_eq!(listed, 2);
        }
        assert!(informers.synced::<Pod>().is_synced());
        assert!(crate::workload_util::is_ready(&informers.store::<Pod>()));
    }

    #[tokio::test]
    async fn subscribers_before_and_after_the_first_list_both_see_it_then_live_events() {
        let informers = informers();
        let feed = fed::<Pod>(&informers);
        let (_, mut early) = informers.events::<Pod>();
        list(&feed, &["a"]);
        let first = take(&mut early, 3).await;
        assert_eq!(names(&first), ["Init", "InitApply a", "InitDone"]);

        let (_, mut late) = informers.events::<Pod>();
        feed.unbounded_send(Ok(Event::Apply(pod("b")))).unwrap();
        assert_eq!(names(&take(&mut early, 1).await), ["Apply b"]);
        assert_eq!(
            names(&take(&mut late, 4).await),
            ["Init", "InitApply a", "InitDone", "Apply b"]
        );
    }
}
