//! The watch cache: every API object in memory, kept current by ONE
//! datastore watch over `/registry/`, plus a ring of recent events. Lists
//! and watches are served from here, so any number of clients cost one
//! datastore watch, and the cache's revision is the datastore's (every
//! write advances it, whatever resource it touches).
//!
//! At start the cache lists everything at one revision, then applies the
//! datastore's events in order. Watchers
//! get the ring's events after their resourceVersion (or a snapshot of
//! ADDED events when they give none), then live events. A watcher whose
//! resourceVersion is older than the ring is told 410 Expired; a watcher
//! that falls behind the live stream catches up from the ring (and gets
//! 410 only if the ring has moved past it). Live events go out on one
//! channel per resource, so a watcher wakes only for its own resource's
//! changes, however busy the others are.
//! If the datastore watch itself breaks (e.g. compaction overtook it), the
//! cache re-lists and every watcher is cut off.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apimachinery::ApiError;
use futures::StreamExt;
use serde_json::Value;
use storage::{EventType, RangeRequest, Revision, Store};
use tokio::sync::{broadcast, Notify};

use crate::rest::{decode_stored, storage_error};

/// Events kept for watchers resuming from a resourceVersion.
pub const RING_CAPACITY: usize = 32 * 1024;
/// Live events of one resource buffered for its watchers; one that falls
/// further behind catches up from the ring.
const LIVE_BUFFER: usize = 2048;
/// How long a request waits for the cache to reach a revision.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheEventType {
    Put,
    Delete,
}

/// One object as the cache holds it: the JSON clients are sent
/// (resourceVersion included), made once when it enters the cache so that
/// GETs, lists and watch events copy bytes instead of encoding the object
/// for every reader, and a skeleton of the fields selectors look at.
///
/// The decoded object is not kept: a `serde_json::Value` takes several
/// times its JSON's size, and most readers only need the bytes. Those that
/// need the object ([`Cached::decode`]) parse it again.
#[derive(Debug)]
pub struct Cached {
    json: bytes::Bytes,
    selectable: Selectable,
}

/// The [`SKELETON`] fields an object has, each by its index there: what
/// selectors and the cache's own bookkeeping read. A flat list rather than
/// a `Value` tree: the tree's maps took more memory than the JSON they
/// summarised (3.4 KiB for a 3.2 KiB pod), and the cache keeps one for
/// every version of every object in its ring.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selectable(Box<[(u8, Value)]>);

impl Selectable {
    /// From (pointer, value) pairs whose pointers are [`SKELETON`]'s.
    fn from_fields(fields: Vec<(&str, Value)>) -> Selectable {
        let mut indexed: Vec<(u8, Value)> = fields
            .into_iter()
            .filter_map(|(pointer, value)| {
                let i = SKELETON.iter().position(|p| *p == pointer)?;
                Some((i as u8, value))
            })
            .collect();
        indexed.sort_by_key(|(i, _)| *i);
        Selectable(indexed.into_boxed_slice())
    }

    /// The value at a JSON pointer at or below one of [`SKELETON`]'s, as
    /// `Value::pointer` would find it in the object.
    pub fn pointer(&self, pointer: &str) -> Option<&Value> {
        self.0.iter().find_map(
            |(i, value)| match pointer.strip_prefix(SKELETON[*i as usize])? {
                "" => Some(value),
                rest if rest.starts_with('/') => value.pointer(rest),
                _ => None,
            },
        )
    }

    fn text(&self, pointer: &str) -> &str {
        self.pointer(pointer).and_then(Value::as_str).unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.text("/metadata/name")
    }

    pub fn namespace(&self) -> &str {
        self.text("/metadata/namespace")
    }

    pub fn resource_version(&self) -> &str {
        self.text("/metadata/resourceVersion")
    }

    /// The skeleton as an object holding these fields and nothing else.
    pub fn to_value(&self) -> Value {
        let mut out = Value::Object(Default::default());
        for (i, value) in self.0.iter() {
            let mut at = &mut out;
            let mut parts = SKELETON[*i as usize][1..].split('/').peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    at[part] = value.clone();
                } else {
                    if !at[part].is_object() {
                        at[part] = Value::Object(Default::default());
                    }
                    at = &mut at[part];
                }
            }
        }
        out
    }
}

/// Where the fields live that label and field selectors (and the cache's
/// own bookkeeping) read; a skeleton holds these and nothing else.
const SKELETON: &[&str] = &[
    "/metadata/name",
    "/metadata/namespace",
    "/metadata/labels",
    "/metadata/resourceVersion",
    "/metadata/uid",
    "/spec/nodeName",
    "/spec/restartPolicy",
    "/spec/schedulerName",
    "/spec/serviceAccountName",
    "/spec/hostNetwork",
    "/spec/unschedulable",
    "/spec/signerName",
    "/status/phase",
    "/status/podIP",
    "/status/nominatedNodeName",
    "/status/replicas",
    "/status/successful",
    "/involvedObject",
    "/reason",
    "/reportingComponent",
    "/source/component",
    "/type",
];

/// The [`SKELETON`] fields of `obj`.
fn skeleton(obj: &Value) -> Selectable {
    Selectable::from_fields(
        SKELETON
            .iter()
            .filter_map(|pointer| Some((*pointer, obj.pointer(pointer)?.clone())))
            .collect(),
    )
}

/// The [`SKELETON`] fields, read straight from JSON: serde skips
/// everything else without building it.
#[derive(serde::Deserialize)]
struct Skeleton {
    metadata: Option<SkeletonPart>,
    spec: Option<SkeletonPart>,
    status: Option<SkeletonPart>,
    #[serde(rename = "involvedObject")]
    involved_object: Option<Value>,
    reason: Option<Value>,
    #[serde(rename = "reportingComponent")]
    reporting_component: Option<Value>,
    source: Option<SkeletonPart>,
    #[serde(rename = "type")]
    kind_of: Option<Value>,
}

/// The members of `metadata`, `spec`, `status` or `source` a skeleton
/// keeps.
#[derive(serde::Deserialize)]
struct SkeletonPart {
    name: Option<Value>,
    namespace: Option<Value>,
    labels: Option<Value>,
    uid: Option<Value>,
    #[serde(rename = "nodeName")]
    node_name: Option<Value>,
    #[serde(rename = "restartPolicy")]
    restart_policy: Option<Value>,
    #[serde(rename = "schedulerName")]
    scheduler_name: Option<Value>,
    #[serde(rename = "serviceAccountName")]
    service_account_name: Option<Value>,
    #[serde(rename = "hostNetwork")]
    host_network: Option<Value>,
    unschedulable: Option<Value>,
    #[serde(rename = "signerName")]
    signer_name: Option<Value>,
    phase: Option<Value>,
    #[serde(rename = "podIP")]
    pod_ip: Option<Value>,
    #[serde(rename = "nominatedNodeName")]
    nominated_node_name: Option<Value>,
    replicas: Option<Value>,
    successful: Option<Value>,
    component: Option<Value>,
}

impl Skeleton {
    fn into_selectable(self, revision: Revision) -> Selectable {
        let mut fields: Vec<(&str, Value)> = Vec::with_capacity(12);
        let mut put = |pointer: &'static str, value: Option<Value>| {
            if let Some(value) = value {
                fields.push((pointer, value));
            }
        };
        if let Some(m) = self.metadata {
            put("/metadata/name", m.name);
            put("/metadata/namespace", m.namespace);
            put("/metadata/labels", m.labels);
            put("/metadata/uid", m.uid);
        }
        put(
            "/metadata/resourceVersion",
            Some(Value::String(revision.to_string())),
        );
        if let Some(s) = self.spec {
            put("/spec/nodeName", s.node_name);
            put("/spec/restartPolicy", s.restart_policy);
            put("/spec/schedulerName", s.scheduler_name);
            put("/spec/serviceAccountName", s.service_account_name);
            put("/spec/hostNetwork", s.host_network);
            put("/spec/unschedulable", s.unschedulable);
            put("/spec/signerName", s.signer_name);
        }
        if let Some(s) = self.status {
            put("/status/phase", s.phase);
            put("/status/podIP", s.pod_ip);
            put("/status/nominatedNodeName", s.nominated_node_name);
            put("/status/replicas", s.replicas);
            put("/status/successful", s.successful);
        }
        if let Some(s) = self.source {
            put("/source/component", s.component);
        }
        put("/involvedObject", self.involved_object);
        put("/reason", self.reason);
        put("/reportingComponent", self.reporting_component);
        put("/type", self.kind_of);
        Selectable::from_fields(fields)
    }
}

impl Cached {
    /// An object read from the datastore. Its JSON is the stored bytes with
    /// the resourceVersion spliced in, when they allow it.
    pub fn from_stored(kv: &storage::KeyValue) -> Result<Cached, ApiError> {
        // The common case reads only the skeleton's fields out of the bytes.
        if let Some(json) = crate::rest::stored_json_with_revision(&kv.value, kv.mod_revision) {
            if let Ok(skel) = serde_json::from_slice::<Skeleton>(&kv.value) {
                return Ok(Cached {
                    json: json.into(),
                    selectable: skel.into_selectable(kv.mod_revision),
                });
            }
        }
        let value = decode_stored(kv)?;
        Ok(Cached {
            json: serde_json::to_vec(&value).unwrap_or_default().into(),
            selectable: skeleton(&value),
        })
    }

    /// An object from elsewhere (tests, synthesised objects).
    pub fn new(value: Value) -> Cached {
        let json = serde_json::to_vec(&value).unwrap_or_default().into();
        Cached {
            json,
            selectable: skeleton(&value),
        }
    }

    /// The object's name, namespace, labels, resourceVersion, uid and the
    /// fields field selectors support: what filters read.
    pub fn selectable(&self) -> &Selectable {
        &self.selectable
    }

    /// The whole object, decoded again from its JSON.
    pub fn decode(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    /// The object's `metadata` alone, read from its JSON without building
    /// the rest (what `PartialObjectMetadata` answers need).
    pub fn metadata(&self) -> Value {
        #[derive(serde::Deserialize)]
        struct OnlyMetadata {
            #[serde(default)]
            metadata: Value,
        }
        serde_json::from_slice::<OnlyMetadata>(&self.json)
            .map(|o| o.metadata)
            .unwrap_or(Value::Null)
    }

    /// The object's `apiVersion`, read from its JSON without building it.
    pub fn api_version(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct OnlyApiVersion {
            #[serde(rename = "apiVersion")]
            api_version: Option<String>,
        }
        serde_json::from_slice::<OnlyApiVersion>(&self.json)
            .ok()?
            .api_version
    }

    /// The object's JSON encoding.
    pub fn json(&self) -> &bytes::Bytes {
        &self.json
    }
}

/// One committed change, shared by every watcher.
#[derive(Debug)]
pub struct CacheEvent {
    pub revision: Revision,
    pub event_type: CacheEventType,
    /// For a put, the new object; for a delete, the last state with the
    /// deleting revision as its resourceVersion.
    pub object: Arc<Cached>,
    /// The object before this event, if it existed.
    pub prev: Option<Arc<Cached>>,
    pub key: String,
}

impl CacheEvent {
    pub fn new(
        revision: Revision,
        event_type: CacheEventType,
        object: Arc<Cached>,
        prev: Option<Arc<Cached>>,
        key: String,
    ) -> Self {
        CacheEvent {
            revision,
            event_type,
            object,
            prev,
            key,
        }
    }
}

struct State {
    ring_capacity: usize,
    objects: BTreeMap<String, Arc<Cached>>,
    /// The revision the cache reflects.
    revision: Revision,
    /// Every event with revision > `oldest` is in `ring`.
    oldest: Revision,
    ring: VecDeque<Arc<CacheEvent>>,
    /// Live events by resource (the key's first segment under
    /// `/registry/`), made when the resource's first watcher comes.
    live: HashMap<String, broadcast::Sender<Arc<CacheEvent>>>,
    ready: bool,
}

pub struct Cacher {
    prefix: String,
    state: Mutex<State>,
    changed: Notify,
    /// Bumped whenever an RBAC object changes, so the authorizer knows
    /// when to rebuild its index.
    rbac_generation: std::sync::atomic::AtomicU64,
}

/// Datastore prefixes of the RBAC kinds.
const RBAC_PREFIXES: [&str; 4] = [
    "/registry/clusterroles/",
    "/registry/clusterrolebindings/",
    "/registry/roles/",
    "/registry/rolebindings/",
];

/// Where a watcher starts.
pub struct WatchStart {
    /// Events to send before live ones, in order.
    pub backlog: Vec<Arc<CacheEvent>>,
    pub live: broadcast::Receiver<Arc<CacheEvent>>,
    /// The revision the backlog brings the watcher to.
    pub revision: Revision,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave the maps half-updated in
    // a way later readers would misread, so a poisoned lock is still used.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cacher {
    fn new(prefix: String, ring_capacity: usize) -> Arc<Cacher> {
        Arc::new(Cacher {
            prefix,
            state: Mutex::new(State {
                ring_capacity: ring_capacity.max(1),
                objects: BTreeMap::new(),
                revision: 0,
                oldest: 0,
                ring: VecDeque::new(),
                live: HashMap::new(),
                ready: false,
            }),
            changed: Notify::new(),
            rbac_generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Keep the cache in sync with the datastore until the store is gone.
    async fn run(self: Arc<Self>, store: Arc<dyn Store>) {
        loop {
            let Err(e) = self.sync_once(store.as_ref()).await;
            tracing::warn!(prefix = %self.prefix, error = %e.message, "watch cache resyncing");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// List, then follow the datastore watch. Returns Err to re-list.
    async fn sync_once(&self, store: &dyn Store) -> Result<std::convert::Infallible, ApiError> {
        let mut objects = BTreeMap::new();
        let mut revision = 0;
        let mut start_key = None;
        loop {
            let page = store
                .range(RangeRequest {
                    prefix: self.prefix.clone(),
                    start_key: start_key.clone(),
                    limit: 1000,
                    revision,
                })
                .await
                .map_err(|e| storage_error(e, "", "", ""))?;
            revision = page.revision;
            for kv in &page.kvs {
                objects.insert(kv.key.clone(), Arc::new(Cached::from_stored(kv)?));
            }
            if !page.more {
                break;
            }
            start_key = page.kvs.last().map(|kv| format!("{}\u{0}", kv.key));
        }
        let mut events = store
            .watch(&self.prefix, revision + 1)
            .await
            .map_err(|e| storage_error(e, "", "", ""))?;
        {
            let mut st = lock(&self.state);
            st.objects = objects;
            st.revision = revision;
            st.oldest = revision;
            st.ring.clear();
            // Cut off every watcher of the previous incarnation.
            st.live.clear();
            st.ready = true;
        }
        self.rbac_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.changed.notify_waiters();
        while let Some(ev) = events.next().await {
            let ev = ev.map_err(|e| storage_error(e, "", "", ""))?;
            let object = Arc::new(Cached::from_stored(&ev.kv)?);
            let rbac_changed = RBAC_PREFIXES.iter().any(|p| ev.kv.key.starts_with(p));
            let mut st = lock(&self.state);
            let prev = match ev.event_type {
                EventType::Put => st.objects.insert(ev.kv.key.clone(), object.clone()),
                EventType::Delete => st.objects.remove(&ev.kv.key),
            };
            let event_type = match ev.event_type {
                EventType::Put => CacheEventType::Put,
                EventType::Delete => CacheEventType::Delete,
            };
            let event = Arc::new(CacheEvent::new(
                ev.kv.mod_revision,
                event_type,
                object,
                prev,
                ev.kv.key,
            ));
            st.revision = event.revision;
            if st.ring.len() >= st.ring_capacity {
                if let Some(dropped) = st.ring.pop_front() {
                    st.oldest = dropped.revision;
                }
            }
            st.ring.push_back(event.clone());
            let resource = resource_of(&event.key);
            if let Some(live) = st.live.get(resource) {
                if live.send(event.clone()).is_err() {
                    // Its last watcher has gone.
                    let resource = resource.to_string();
                    st.live.remove(&resource);
                }
            }
            drop(st);
            // After the object is in: an index built for this generation
            // always sees it.
            if rbac_changed {
                self.rbac_generation
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            }
            self.changed.notify_waiters();
        }
        Err(ApiError::unavailable("datastore watch ended"))
    }

    /// Wait (without limit) until the first list is in.
    pub async fn ready(&self) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if lock(&self.state).ready {
                return;
            }
            notified.await;
        }
    }

    /// Wait until the cache has reached `revision` (and is initialised).
    async fn wait_for(&self, revision: Revision) -> Result<(), ApiError> {
        let deadline = tokio::time::Instant::now() + CATCH_UP_TIMEOUT;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = lock(&self.state);
                if st.ready && st.revision >= revision {
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(ApiError::new(
                    504,
                    apimachinery::StatusReason::Timeout,
                    format!("Too large resource version: {revision}, the cache has not caught up in time"),
                ));
            }
        }
    }

    /// The revision the cache reflects now. Every event up to it has been
    /// sent to its resource's live channel.
    pub fn revision_now(&self) -> Revision {
        lock(&self.state).revision
    }

    /// Changes whenever an RBAC object changed (a relist counts).
    pub fn rbac_generation(&self) -> u64 {
        self.rbac_generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// One object by datastore key, as the cache holds it now (no
    /// consistency wait: for lookups that upstream serves from informers).
    pub fn get_now(&self, key: &str) -> Option<Arc<Cached>> {
        lock(&self.state).objects.get(key).cloned()
    }

    /// Every object under `prefix` as the cache holds it now (no
    /// consistency wait).
    pub fn list_now(&self, prefix: &str) -> Vec<Arc<Cached>> {
        let st = lock(&self.state);
        st.objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// One object by datastore key once the cache is at least at
    /// `min_revision`.
    pub async fn get(
        &self,
        key: &str,
        min_revision: Revision,
    ) -> Result<Option<Arc<Cached>>, ApiError> {
        self.wait_for(min_revision).await?;
        Ok(lock(&self.state).objects.get(key).cloned())
    }

    /// Every object under `prefix` (a namespace or the whole resource) once
    /// the cache is at least at `min_revision`, with the cache's revision.
    pub async fn list(
        &self,
        prefix: &str,
        min_revision: Revision,
    ) -> Result<(Vec<Arc<Cached>>, Revision), ApiError> {
        self.wait_for(min_revision).await?;
        let st = lock(&self.state);
        let items = st
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        Ok((items, st.revision))
    }

    /// Start a watch after `from` (None: from a snapshot of now).
    pub async fn watch(
        &self,
        prefix: &str,
        from: Option<Revision>,
    ) -> Result<WatchStart, ApiError> {
        self.wait_for(from.unwrap_or(0)).await?;
        let mut st = lock(&self.state);
        let live = st
            .live
            .entry(resource_of(prefix).to_string())
            .or_insert_with(|| broadcast::channel(LIVE_BUFFER).0)
            .subscribe();
        let backlog: Vec<Arc<CacheEvent>> = match from {
            None => st
                .objects
                .range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| {
                    Arc::new(CacheEvent::new(
                        st.revision,
                        CacheEventType::Put,
                        v.clone(),
                        None,
                        k.clone(),
                    ))
                })
                .collect(),
            Some(rv) if rv < st.oldest => {
                return Err(ApiError::expired(format!(
                    "too old resource version: {rv} ({})",
                    st.oldest + 1
                )));
            }
            Some(rv) => st
                .ring
                .iter()
                .filter(|e| e.revision > rv && e.key.starts_with(prefix))
                .cloned()
                .collect(),
        };
        Ok(WatchStart {
            backlog,
            live,
            revision: st.revision,
        })
    }
}

/// The datastore prefix every API object lives under.
pub const REGISTRY_PREFIX: &str = "/registry/";

/// The resource a datastore key or prefix belongs to: its first segment
/// under `/registry/` (`pods` for `/registry/pods/ns/name`).
fn resource_of(key: &str) -> &str {
    let rest = key.strip_prefix(REGISTRY_PREFIX).unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

impl Cacher {
    /// Start the cache of everything under `/registry/`: one datastore
    /// watch for the whole API, so the cache's revision follows the
    /// datastore's and every write is also a progress notification.
    pub fn start(store: Arc<dyn Store>) -> Arc<Cacher> {
        Self::start_with_ring(store, RING_CAPACITY)
    }

    /// [`Cacher::start`] keeping `ring_capacity` events of history.
    pub fn start_with_ring(store: Arc<dyn Store>, ring_capacity: usize) -> Arc<Cacher> {
        let cacher = Self::unstarted(ring_capacity);
        cacher.clone().spawn(store);
        cacher
    }

    /// A cache that serves nothing until [`Cacher::spawn`]: requests wait.
    pub fn unstarted(ring_capacity: usize) -> Arc<Cacher> {
        Cacher::new(REGISTRY_PREFIX.to_string(), ring_capacity)
    }

    /// Start following the datastore. Its history begins at the revision
    /// of this first list: watches from older revisions get 410.
    pub fn spawn(self: Arc<Self>, store: Arc<dyn Store>) {
        tokio::spawn(self.run(store));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn put(store: &Arc<dyn Store>, key: &str) -> Revision {
        let body = format!(r#"{{"metadata":{{"name":"{key}"}}}}"#).into_bytes();
        store
            .create(&format!("/registry/things/{key}"), body)
            .await
            .unwrap()
            .mod_revision
    }

    #[tokio::test]
    async fn watches_resume_from_the_ring_and_older_revisions_are_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(storage::sqlite::SqliteStore::open(&dir.path().join("db")).unwrap());
        let cache = Cacher::start_with_ring(store.clone(), 4);
        // History starts at the first list: make it precede the writes.
        cache.ready().await;
        let first = put(&store, "a").await;
        let mut last = first;
        for key in ["b", "c", "d", "e", "f"] {
            last = put(&store, key).await;
        }
        let (items, rev) = cache.list("/registry/things/", last).await.unwrap();
        assert_eq!((items.len(), rev), (6, last));
        // The last four events are kept: resuming after the second-to-last
        // of them replays the rest in order.
        let start = cache
            .watch("/registry/things/", Some(last - 2))
            .await
            .unwrap();
        let replayed: Vec<Revision> = start.backlog.iter().map(|e| e.revision).collect();
        assert_eq!(replayed, vec![last - 1, last]);
        // Older than the ring: 410 Expired.
        let err = cache
            .watch("/registry/things/", Some(first))
            .await
            .err()
            .unwrap();
        assert_eq!(
            (err.code, err.reason),
            (410, apimachinery::StatusReason::Expired)
        );
        // No resourceVersion: a snapshot of every object.
        let start = cache.watch("/registry/things/", None).await.unwrap();
        assert_eq!(start.backlog.len(), 6);
    }

    #[tokio::test]
    async fn a_watch_hears_only_its_own_resource() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(storage::sqlite::SqliteStore::open(&dir.path().join("db")).unwrap());
        let cache = Cacher::start(store.clone());
        cache.ready().await;
        let mut things = cache.watch("/registry/things/", None).await.unwrap();
        let other = store
            .create(
                "/registry/others/x",
                br#"{"metadata":{"name":"x"}}"#.to_vec(),
            )
            .await
            .unwrap()
            .mod_revision;
        let mine = put(&store, "a").await;
        assert!(mine > other);
        cache.get("/registry/things/a", mine).await.unwrap();
        let ev = things.live.try_recv().unwrap();
        assert_eq!((ev.key.as_str(), ev.revision), ("/registry/things/a", mine));
        assert!(things.live.is_empty());
        // Every event up to the cache's revision has gone out, so an empty
        // channel means this watcher has seen everything up to it.
        assert_eq!(cache.revision_now(), mine);
    }

    #[test]
    fn a_skeleton_answers_pointers_as_the_object_does_for_its_fields() {
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "d", "labels": {"a": "b"}, "uid": "u",
                         "resourceVersion": "4", "annotations": {"x": "y"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c"}]},
            "status": {"phase": "Running"}});
        let event = serde_json::json!({"kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec"}, "type": "Normal"});
        for obj in [pod, event] {
            let sel = Cached::new(obj.clone()).selectable().clone();
            for pointer in [
                "/metadata/name",
                "/metadata/namespace",
                "/metadata/labels",
                "/metadata/labels/a",
                "/metadata/resourceVersion",
                "/spec/nodeName",
                "/status/phase",
                "/involvedObject/name",
                "/involvedObject/fieldPath",
                "/type",
            ] {
                assert_eq!(
                    sel.pointer(pointer),
                    obj.pointer(pointer),
                    "{pointer} in {obj}"
                );
            }
            // Only the skeleton's fields are kept, and a pointer that merely
            // starts like one of them finds nothing.
            assert_eq!(sel.pointer("/metadata/annotations"), None);
            assert_eq!(sel.pointer("/spec/containers"), None);
            assert_eq!(sel.pointer("/metadata/nam"), None);
            assert_eq!(sel.pointer("/typeX"), None);
            assert_eq!(sel.name(), apimachinery::meta::name(&obj));
            assert_eq!(sel.namespace(), apimachinery::meta::namespace(&obj));
            // As an object it is the original cut down to those fields.
            let whole = sel.to_value();
            for pointer in SKELETON {
                assert_eq!(whole.pointer(pointer), obj.pointer(pointer), "{pointer}");
            }
        }
    }

    #[test]
    fn the_skeleton_read_from_bytes_is_the_one_taken_from_the_object() {
        let objects = [
            serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "d", "labels": {"a": "b"}, "uid": "u", "annotations": {"x": "y"}},
                "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "s", "serviceAccountName": "sa",
                         "hostNetwork": true, "containers": [{"name": "c", "image": "i"}]},
                "status": {"phase": "Running", "podIP": "10.0.0.1", "nominatedNodeName": "n2", "conditions": []}}),
            serde_json::json!({"kind": "Event", "metadata": {"name": "e"},
                "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Scheduled",
                "reportingComponent": "sched", "source": {"component": "sched", "host": "h"}, "type": "Normal"}),
            serde_json::json!({"kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque", "data": {}}),
            serde_json::json!({"kind": "Node", "metadata": {"name": "n"}, "spec": {"unschedulable": true}}),
            serde_json::json!({"kind": "Job", "metadata": {"name": "j"}, "status": {"successful": 3}}),
            serde_json::json!({"kind": "ReplicaSet", "metadata": {"name": "r"}, "status": {"replicas": 2}}),
            serde_json::json!({"kind": "CSR", "metadata": {"name": "c"}, "spec": {"signerName": "x/y"}}),
        ];
        for obj in objects {
            let kv = storage::KeyValue {
                key: "/registry/x".into(),
                value: serde_json::to_vec(&obj).unwrap(),
                create_revision: 1,
                mod_revision: 9,
            };
            let fast = Cached::from_stored(&kv).unwrap();
            let slow = skeleton(&decode_stored(&kv).unwrap());
            assert_eq!(fast.selectable(), &slow, "{obj}");
            assert_eq!(fast.decode(), decode_stored(&kv).unwrap());
        }
    }
}
