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

use std::any::{Any, TypeId};
use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::stream::BoxStream;
use futures::StreamExt;
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
}

impl<K: Kind> Clone for Shared<K> {
    fn clone(&self) -> Self {
        Shared {
            store: self.store.clone(),
            events: self.events.clone(),
            synced: self.synced.clone(),
        }
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

    /// The client the informers watch with.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    fn shared<K: Kind>(&self) -> Shared<K> {
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
        let shared = Shared {
            store,
            events: events.clone(),
            synced,
        };
        let api = Api::<K>::all(self.client.clone());
        let task = tokio::spawn(async move {
            let mut stream = reflector::reflector(
                writer,
                watcher::watcher(api, watcher::Config::default()).default_backoff(),
            )
            .boxed();
            while let Some(item) = stream.next().await {
                match item {
                    Ok(event) => {
                        let done = matches!(event, Event::InitDone);
                        // No subscriber yet is fine: they replay the cache.
                        let _ = events.send(Arc::new(event));
                        if done {
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

    /// The shared cache of every `K`.
    pub fn store<K: Kind>(&self) -> Store<K> {
        self.shared::<K>().store
    }

    /// The shared cache of every `K` and a stream of its watch events, the
    /// first list included however late the subscriber comes.
    pub fn events<K: Kind>(&self) -> (Store<K>, BoxStream<'static, Event<K>>) {
        let shared = self.shared::<K>();
        let live = shared.events.subscribe();
        let subscriber = Subscriber {
            waiting_for_list: !*shared.synced.borrow(),
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
