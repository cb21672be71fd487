//! The API-facing side: watchers that keep the cache and queue current,
//! the scheduling loop, and the asynchronous actions it starts (bind,
//! status and event updates, preemption's evictions). This is the only
//! module that talks to the API server.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::ready;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{
    Binding, Namespace, Node, ObjectReference, Pod, ReplicationController, Service,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use serde_json::json;
use tokio::sync::{oneshot, Semaphore};

use clientkit::events::{reference, NORMAL, WARNING};
use clientkit::EventRecorder;

use crate::cache::{Cache, NodeChange};
use crate::config::{Config, Profile};
use crate::framework::{schedule, CycleState, Rng};
use crate::plugins::*;
use crate::podinfo::{PodInfo, Requirement, Selector};
use crate::preemption::{self, Candidate, Pdb};
use crate::queue::{QueuedPod, SchedulingQueue};
use crate::Error;

/// Binds in flight at once: enough to hide API latency, bounded so a
/// burst cannot exhaust connections or memory.
pub const MAX_BINDS_IN_FLIGHT: usize = 64;
/// Events in flight at once; beyond that, events are dropped (as
/// client-go's broadcaster drops when its queue is full).
pub const MAX_EVENTS_IN_FLIGHT: usize = 256;

/// Objects that only shape decisions, kept by kube-runtime reflectors.
#[derive(Clone)]
struct Stores {
    pdbs: Store<PodDisruptionBudget>,
    services: Store<Service>,
    replica_sets: Store<ReplicaSet>,
    stateful_sets: Store<StatefulSet>,
    controllers: Store<ReplicationController>,
}

/// Counters reported in the periodic progress log line.
#[derive(Default)]
struct Stats {
    attempts: AtomicU64,
    bound: AtomicU64,
    bind_failures: AtomicU64,
    unschedulable: AtomicU64,
    /// Summed bind latency in microseconds.
    bind_micros: AtomicU64,
}

struct Shared {
    stats: Stats,
    client: kube::Client,
    config: Config,
    cache: Mutex<Cache>,
    queue: SchedulingQueue,
    stores: Stores,
    recorders: HashMap<String, EventRecorder>,
    binds: Arc<Semaphore>,
    events: Arc<Semaphore>,
}

impl Shared {
    fn cache(&self) -> MutexGuard<'_, Cache> {
        // Cache mutations are small and leave it consistent even if a
        // holder panicked; keep scheduling rather than dying.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn responsible_for(&self, pod: &Pod) -> bool {
        let name = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or(crate::config::DEFAULT_SCHEDULER_NAME);
        self.config.profile(name).is_some()
    }

    /// spec.priority, which the Priority admission plugin fills in from
    /// the pod's PriorityClass (as upstream, the scheduler reads no classes).
    fn priority(&self, pod: &Pod) -> i32 {
        pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
    }

    fn record(
        &self,
        profile: &str,
        object: ObjectReference,
        type_: &str,
        reason: &str,
        msg: String,
    ) {
        let Some(recorder) = self.recorders.get(profile).cloned() else {
            return;
        };
        let Ok(permit) = self.events.clone().try_acquire_owned() else {
            tracing::debug!(reason, "event dropped: too many in flight");
            return;
        };
        let type_ = type_.to_string();
        let reason = reason.to_string();
        tokio::spawn(async move {
            recorder.record(&object, &type_, &reason, &msg).await;
            drop(permit);
        });
    }
}

/// Run the scheduler until a fatal error.
pub async fn run(client: kube::Client, config: Config) -> Result<(), Error> {
    let (pdbs, pdb_writer) = reflector::store::<PodDisruptionBudget>();
    let (services, svc_writer) = reflector::store::<Service>();
    let (replica_sets, rs_writer) = reflector::store::<ReplicaSet>();
    let (stateful_sets, ss_writer) = reflector::store::<StatefulSet>();
    let (controllers, rc_writer) = reflector::store::<ReplicationController>();
    let recorders = config
        .profiles
        .iter()
        .map(|p| {
            (
                p.scheduler_name.clone(),
                EventRecorder::new(client.clone(), &p.scheduler_name),
            )
        })
        .collect();
    let shared = Arc::new(Shared {
        stats: Stats::default(),
        queue: SchedulingQueue::new(config.pod_initial_backoff, config.pod_max_backoff),
        cache: Mutex::new(Cache::new()),
        stores: Stores {
            pdbs,
            services,
            replica_sets,
            stateful_sets,
            controllers,
        },
        recorders,
        binds: Arc::new(Semaphore::new(MAX_BINDS_IN_FLIGHT)),
        events: Arc::new(Semaphore::new(MAX_EVENTS_IN_FLIGHT)),
        config,
        client: client.clone(),
    });

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(drive(reflector::reflector(
        pdb_writer,
        watch::<PodDisruptionBudget>(&client),
    )));
    tasks.spawn(drive(reflector::reflector(
        svc_writer,
        watch::<Service>(&client),
    )));
    tasks.spawn(drive(reflector::reflector(
        rs_writer,
        watch::<ReplicaSet>(&client),
    )));
    tasks.spawn(drive(reflector::reflector(
        ss_writer,
        watch::<StatefulSet>(&client),
    )));
    tasks.spawn(drive(reflector::reflector(
        rc_writer,
        watch::<ReplicationController>(&client),
    )));

    let (nodes_ready, nodes_synced) = oneshot::channel();
    let (pods_ready, pods_synced) = oneshot::channel();
    tasks.spawn(watch_namespaces(shared.clone()));
    tasks.spawn(watch_nodes(shared.clone(), nodes_ready));
    tasks.spawn(watch_pods(shared.clone(), pods_ready));
    let s = shared.clone();
    tasks.spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            s.queue.flush(Instant::now());
        }
    });
    tasks.spawn(report_progress(shared.clone()));
    let s = shared.clone();
    tasks.spawn(async move {
        // Decisions on a half-listed cluster would be wrong.
        let _ = nodes_synced.await;
        let _ = pods_synced.await;
        tracing::info!("scheduler caches synced; scheduling");
        scheduling_loop(s).await
    });
    match tasks.join_next().await {
        Some(Ok(Ok(()))) | None => Err(Error::Other("a scheduler task stopped".into())),
        Some(Ok(Err(e))) => Err(e),
        Some(Err(join)) => Err(Error::Other(format!("scheduler task failed: {join}"))),
    }
}

/// Every 10 s with activity: what was done since the last line.
async fn report_progress(shared: Arc<Shared>) -> Result<(), Error> {
    let mut last = [0u64; 5];
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let st = &shared.stats;
        let now = [
            st.attempts.load(Relaxed),
            st.bound.load(Relaxed),
            st.bind_failures.load(Relaxed),
            st.unschedulable.load(Relaxed),
            st.bind_micros.load(Relaxed),
        ];
        if now[0] == last[0] && now[1] == last[1] {
            continue;
        }
        let bound = now[1] - last[1];
        tracing::info!(
            attempts = now[0] - last[0],
            bound,
            bound_per_second = bound / 10,
            bind_failures = now[2] - last[2],
            unschedulable = now[3] - last[3],
            mean_bind_ms = (now[4] - last[4]) / bound.max(1) / 1000,
            pending = shared.queue.len(),
            "scheduling progress (last 10s)"
        );
        last = now;
    }
}

fn watch<K>(client: &kube::Client) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    watcher::watcher(Api::<K>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .modify(clientkit::trim_managed_fields)
}

async fn drive<S, T>(stream: S) -> Result<(), Error>
where
    S: Stream<Item = Result<T, watcher::Error>> + Send,
{
    stream
        .for_each(|r| {
            if let Err(e) = r {
                tracing::warn!(%e, "scheduler watch error (retrying)");
            }
            ready(())
        })
        .await;
    Err(Error::Other("a watch stream ended".into()))
}

fn key_of(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

async fn watch_namespaces(shared: Arc<Shared>) -> Result<(), Error> {
    let mut stream = std::pin::pin!(watch::<Namespace>(&shared.client));
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Apply(ns) | Event::InitApply(ns)) => {
                let name = ns.metadata.name.clone().unwrap_or_default();
                shared
                    .cache()
                    .set_namespace(&name, ns.metadata.labels.clone().unwrap_or_default());
            }
            Ok(Event::Delete(ns)) => {
                shared
                    .cache()
                    .remove_namespace(ns.metadata.name.as_deref().unwrap_or(""));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(%e, "namespace watch error (retrying)"),
        }
    }
    Err(Error::Other("namespace watch ended".into()))
}

async fn watch_nodes(shared: Arc<Shared>, ready_tx: oneshot::Sender<()>) -> Result<(), Error> {
    let mut ready_tx = Some(ready_tx);
    let mut stream = std::pin::pin!(watch::<Node>(&shared.client));
    let mut seen: HashSet<String> = HashSet::new();
    let mut listing = false;
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(%e, "node watch error (retrying)");
                continue;
            }
        };
        match event {
            Event::Init => {
                seen.clear();
                listing = true;
            }
            Event::Apply(node) | Event::InitApply(node) => {
                if listing {
                    seen.insert(node.metadata.name.clone().unwrap_or_default());
                }
                let change = shared.cache().add_or_update_node(node);
                if change != NodeChange::Irrelevant {
                    // A new or changed node can help any rejection.
                    shared.queue.move_unschedulable(|_| true);
                }
            }
            Event::Delete(node) => {
                shared
                    .cache()
                    .remove_node(node.metadata.name.as_deref().unwrap_or(""));
            }
            Event::InitDone => {
                listing = false;
                let mut cache = shared.cache();
                let gone: Vec<String> = cache
                    .node_names()
                    .filter(|n| !seen.contains(*n))
                    .map(str::to_string)
                    .collect();
                for n in gone {
                    cache.remove_node(&n);
                }
                drop(cache);
                if let Some(tx) = ready_tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    }
    Err(Error::Other("node watch ended".into()))
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// Plugins whose rejections a deleted pod can lift.
fn helped_by_pod_delete(plugins: &[&'static str]) -> bool {
    plugins.iter().any(|p| {
        matches!(
            *p,
            NODE_RESOURCES_FIT | NODE_PORTS | INTER_POD_AFFINITY | POD_TOPOLOGY_SPREAD
        )
    })
}

/// Plugins whose rejections a newly placed pod can lift.
fn helped_by_pod_add(plugins: &[&'static str]) -> bool {
    plugins
        .iter()
        .any(|p| matches!(*p, INTER_POD_AFFINITY | POD_TOPOLOGY_SPREAD))
}

/// Drop the parts of a pod no plugin reads before the pod is kept: its
/// volumes (volume plugins are no-ops here) and container statuses. Decoded,
/// they are about a third of a pod's memory, and the scheduler keeps every
/// pod in the cluster. It writes pods only through patches, so nothing
/// dropped here is ever written back.
fn drop_unread(pod: &mut Pod) {
    if let Some(spec) = pod.spec.as_mut() {
        spec.volumes = None;
    }
    if let Some(status) = pod.status.as_mut() {
        status.container_statuses = None;
        status.init_container_statuses = None;
        status.ephemeral_container_statuses = None;
    }
}

fn apply_pod(shared: &Shared, pod: Pod) {
    let key = key_of(&pod.metadata);
    let assigned = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    if assigned {
        shared.queue.delete(&key);
        if is_terminal(&pod) {
            if shared.cache().remove_pod(&key).is_some() {
                shared.queue.move_unschedulable(helped_by_pod_delete);
            }
            return;
        }
        let priority = shared.priority(&pod);
        let info = Arc::new(PodInfo::new(Arc::new(pod), priority));
        let mut cache = shared.cache();
        let new = !cache.contains_pod(&key) || cache.is_assumed(&key);
        cache.add_or_update_pod(info);
        drop(cache);
        if new {
            shared.queue.move_unschedulable(helped_by_pod_add);
        }
        return;
    }
    let gated = pod
        .spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|g| !g.is_empty());
    if !shared.responsible_for(&pod)
        || is_terminal(&pod)
        || pod.metadata.deletion_timestamp.is_some()
        || gated
    {
        shared.queue.delete(&key);
        shared.cache().remove_nominated(&key);
        return;
    }
    let nominated = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.clone())
        .filter(|n| !n.is_empty());
    let priority = shared.priority(&pod);
    let info = Arc::new(PodInfo::new(Arc::new(pod), priority));
    {
        let mut cache = shared.cache();
        // Its bind is in flight: the scheduler already decided.
        if cache.is_assumed(&key) {
            return;
        }
        match &nominated {
            Some(node) => cache.set_nominated(info.clone(), node),
            None => cache.remove_nominated(&key),
        }
    }
    shared.queue.add_or_update(info);
}

fn delete_pod(shared: &Shared, pod: &Pod) {
    let key = key_of(&pod.metadata);
    shared.queue.delete(&key);
    let removed = shared.cache().remove_pod(&key);
    if removed.is_some() {
        shared.queue.move_unschedulable(helped_by_pod_delete);
    }
}

async fn watch_pods(shared: Arc<Shared>, ready_tx: oneshot::Sender<()>) -> Result<(), Error> {
    let mut ready_tx = Some(ready_tx);
    // Pods are most of the watch traffic: skip decoding their managedFields.
    let pods =
        clientkit::lean::pod_watcher(Api::all(shared.client.clone()), watcher::Config::default())
            .default_backoff();
    let mut stream = std::pin::pin!(pods);
    let mut seen: HashSet<String> = HashSet::new();
    let mut listing = false;
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(%e, "pod watch error (retrying)");
                continue;
            }
        };
        match event {
            Event::Init => {
                seen.clear();
                listing = true;
            }
            Event::Apply(mut pod) | Event::InitApply(mut pod) => {
                if listing {
                    seen.insert(key_of(&pod.metadata));
                }
                drop_unread(&mut pod);
                apply_pod(&shared, pod);
            }
            Event::Delete(pod) => delete_pod(&shared, &pod),
            Event::InitDone => {
                listing = false;
                // Pods deleted while the watch was down.
                let stale: Vec<String> = {
                    let cache = shared.cache();
                    cache
                        .nodes()
                        .flat_map(|n| n.pods.iter())
                        .filter(|p| !seen.contains(&p.key) && !cache.is_assumed(&p.key))
                        .map(|p| p.key.clone())
                        .collect()
                };
                for key in stale {
                    shared.cache().remove_pod(&key);
                    shared.queue.delete(&key);
                }
                if let Some(tx) = ready_tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    }
    Err(Error::Other("pod watch ended".into()))
}

/// The selector default spreading uses: the pod's Services,
/// ReplicationControllers, ReplicaSets and StatefulSets that select it.
fn default_selector(stores: &Stores, pod: &PodInfo) -> Option<Selector> {
    let ns = pod.namespace.as_str();
    let in_ns = |m: &ObjectMeta| m.namespace.as_deref() == Some(ns);
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    let mut requirements: Vec<Requirement> = Vec::new();
    let mut merge_map = |sel: Option<&BTreeMap<String, String>>| {
        if let Some(sel) = sel.filter(|s| !s.is_empty()) {
            if Selector::from_map(sel).matches(&pod.labels) {
                labels.extend(sel.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
    };
    for svc in stores.services.state_filter(|s| in_ns(&s.metadata)) {
        merge_map(svc.spec.as_ref().and_then(|s| s.selector.as_ref()));
    }
    for rc in stores.controllers.state_filter(|s| in_ns(&s.metadata)) {
        merge_map(rc.spec.as_ref().and_then(|s| s.selector.as_ref()));
    }
    let mut add_selector = |sel: Selector| {
        if !sel.nothing && !sel.requirements.is_empty() && sel.matches(&pod.labels) {
            requirements.extend(sel.requirements);
        }
    };
    for rs in stores.replica_sets.state_filter(|s| in_ns(&s.metadata)) {
        add_selector(Selector::from_label_selector(
            rs.spec.as_ref().map(|s| &s.selector),
        ));
    }
    for ss in stores.stateful_sets.state_filter(|s| in_ns(&s.metadata)) {
        add_selector(Selector::from_label_selector(
            ss.spec.as_ref().map(|s| &s.selector),
        ));
    }
    if labels.is_empty() && requirements.is_empty() {
        return None;
    }
    let mut selector = Selector::from_map(&labels);
    selector.nothing = false;
    selector.requirements.extend(requirements);
    Some(selector)
}

/// What the loop decided for one pod, carried out outside the cache lock.
enum Decision {
    Bind {
        node: String,
    },
    Unschedulable {
        message: String,
        preemption: Option<Candidate>,
        lower_nominated: Vec<Arc<PodInfo>>,
    },
}

async fn scheduling_loop(shared: Arc<Shared>) -> Result<(), Error> {
    let mut rng = Rng::from_time();
    let mut next_start = 0usize;
    loop {
        let queued = shared.queue.pop().await;
        let Some(profile) = shared.config.profile(queued.info.scheduler_name()).cloned() else {
            shared.queue.delete(&queued.info.key);
            continue;
        };
        shared.stats.attempts.fetch_add(1, Relaxed);
        let decision = decide(&shared, &profile, &queued, &mut next_start, &mut rng);
        match decision {
            Decision::Bind { node } => {
                shared.queue.done(&queued.info.key);
                let permit = shared.binds.clone().acquire_owned().await;
                let Ok(permit) = permit else {
                    return Err(Error::Other("bind semaphore closed".into()));
                };
                let s = shared.clone();
                let name = profile.scheduler_name.clone();
                tokio::spawn(async move {
                    bind(&s, &name, queued.info, &node).await;
                    drop(permit);
                });
            }
            Decision::Unschedulable {
                message,
                preemption,
                lower_nominated,
            } => {
                shared.stats.unschedulable.fetch_add(1, Relaxed);
                let s = shared.clone();
                let info = queued.info.clone();
                let name = profile.scheduler_name.clone();
                tokio::spawn(async move {
                    report_unschedulable(&s, &name, &info, &message, preemption, lower_nominated)
                        .await;
                });
            }
        }
    }
}

fn decide(
    shared: &Shared,
    profile: &Profile,
    queued: &QueuedPod,
    next_start: &mut usize,
    rng: &mut Rng,
) -> Decision {
    let info = queued.info.clone();
    let mut cache = shared.cache();
    let mut state = CycleState::new(profile, &cache, info.clone(), || {
        default_selector(&shared.stores, &info)
    });
    let result = schedule(
        profile,
        shared.config.percentage_of_nodes_to_score,
        &cache,
        &state,
        next_start,
        rng,
    );
    match result {
        Ok(placement) => {
            cache.assume(info, &placement.node);
            Decision::Bind {
                node: placement.node,
            }
        }
        Err(diagnosis) => {
            let mut message = diagnosis.message();
            let mut candidate = None;
            let mut lower_nominated = Vec::new();
            if profile.preemption && diagnosis.num_all_nodes > 0 {
                let pdbs: Vec<Pdb> = shared
                    .stores
                    .pdbs
                    .state()
                    .iter()
                    .map(|p| Pdb::from_object(p))
                    .collect();
                match preemption::preempt(profile, &cache, &mut state, &diagnosis, &pdbs, rng) {
                    preemption::Outcome::Candidate(c) => {
                        lower_nominated = cache
                            .nominated_pods(&c.node)
                            .iter()
                            .filter(|p| p.priority < info.priority && p.key != info.key)
                            .cloned()
                            .collect();
                        for p in &lower_nominated {
                            cache.remove_nominated(&p.key);
                        }
                        cache.set_nominated(info.clone(), &c.node);
                        candidate = Some(c);
                    }
                    preemption::Outcome::Failed(m) => {
                        message = format!("{message} preemption: {m}");
                    }
                }
            }
            drop(cache);
            shared.queue.unschedulable(queued, diagnosis.plugins());
            Decision::Unschedulable {
                message,
                preemption: candidate,
                lower_nominated,
            }
        }
    }
}

async fn bind(shared: &Shared, profile: &str, info: Arc<PodInfo>, node: &str) {
    let api: Api<Pod> = Api::namespaced(shared.client.clone(), &info.namespace);
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(info.name.clone()),
            namespace: Some(info.namespace.clone()),
            uid: Some(info.uid.clone()).filter(|u| !u.is_empty()),
            ..Default::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..Default::default()
        },
    };
    let started = Instant::now();
    // The answer (a Status) is skipped, not decoded: only success counts.
    let result = api
        .create_subresource::<_, serde::de::IgnoredAny>(
            "binding",
            &info.name,
            &PostParams::default(),
            &binding,
        )
        .await;
    shared
        .stats
        .bind_micros
        .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
    match result {
        Ok(_) => {
            shared.stats.bound.fetch_add(1, Relaxed);
            shared.record(
                profile,
                reference(info.pod.as_ref()),
                NORMAL,
                "Scheduled",
                format!("Successfully assigned {} to {}", info.key, node),
            );
        }
        Err(err) => {
            shared.stats.bind_failures.fetch_add(1, Relaxed);
            tracing::info!(pod = %info.key, node, %err, "binding failed");
            shared.cache().forget(&info.key);
            let gone = matches!(&err, kube::Error::Api(s) if s.code == 404);
            if !gone {
                shared.record(
                    profile,
                    reference(info.pod.as_ref()),
                    WARNING,
                    "FailedScheduling",
                    format!("Binding rejected: {err}"),
                );
                // A 409 means someone else bound it; the watch will tell.
                let conflict = matches!(&err, kube::Error::Api(s) if s.code == 409);
                if !conflict {
                    shared.queue.retry_after_backoff(info);
                }
            }
        }
    }
}

async fn report_unschedulable(
    shared: &Shared,
    profile: &str,
    info: &Arc<PodInfo>,
    message: &str,
    preemption: Option<Candidate>,
    lower_nominated: Vec<Arc<PodInfo>>,
) {
    let nominated_node = preemption.as_ref().map(|c| c.node.clone());
    if let Some(candidate) = preemption {
        for victim in &candidate.victims {
            evict(shared, profile, info, victim, &candidate.node).await;
        }
        for p in &lower_nominated {
            let api: Api<Pod> = Api::namespaced(shared.client.clone(), &p.namespace);
            let patch = json!({"status": {"nominatedNodeName": null}});
            if let Err(e) = api
                .patch_status(&p.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::debug!(pod = %p.key, %e, "clearing nominatedNodeName failed");
            }
        }
    }
    shared.record(
        profile,
        reference(info.pod.as_ref()),
        WARNING,
        "FailedScheduling",
        message.to_string(),
    );
    update_pod_scheduled_condition(shared, info, message, nominated_node).await;
}

/// Set PodScheduled=False/Unschedulable (and nominatedNodeName), unless
/// the pod already says exactly that.
async fn update_pod_scheduled_condition(
    shared: &Shared,
    info: &PodInfo,
    message: &str,
    nominated_node: Option<String>,
) {
    let status = info.pod.status.as_ref();
    let current = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
    let same = current.is_some_and(|c| {
        c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
            && c.message.as_deref() == Some(message)
    });
    let current_nominated = status.and_then(|s| s.nominated_node_name.clone());
    if same && (nominated_node.is_none() || nominated_node == current_nominated) {
        return;
    }
    let mut condition = json!({
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastProbeTime": null,
    });
    if current.is_none_or(|c| c.status != "False") {
        condition["lastTransitionTime"] = json!(Time(Timestamp::now()));
    }
    let mut patch = json!({"status": {"conditions": [condition]}});
    if let Some(node) = nominated_node {
        patch["status"]["nominatedNodeName"] = json!(node);
    }
    let api: Api<Pod> = Api::namespaced(shared.client.clone(), &info.namespace);
    if let Err(e) = api
        .patch_status(
            &info.name,
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
    {
        tracing::debug!(pod = %info.key, %e, "updating PodScheduled failed");
    }
}

/// Preempt one victim: mark why (DisruptionTarget), delete it, tell its owner.
async fn evict(shared: &Shared, profile: &str, preemptor: &PodInfo, victim: &PodInfo, node: &str) {
    let api: Api<Pod> = Api::namespaced(shared.client.clone(), &victim.namespace);
    let patch = json!({"status": {"conditions": [{
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "PreemptionByScheduler",
        "message": format!("{profile}: preempting to accommodate a higher priority pod"),
        "lastTransitionTime": Time(Timestamp::now()),
    }]}});
    if let Err(e) = api
        .patch_status(
            &victim.name,
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
    {
        tracing::debug!(pod = %victim.key, %e, "setting DisruptionTarget failed");
    }
    match api.delete(&victim.name, &DeleteParams::default()).await {
        Ok(_) => shared.record(
            profile,
            reference(victim.pod.as_ref()),
            NORMAL,
            "Preempted",
            format!("Preempted by pod {} on node {}", preemptor.uid, node),
        ),
        Err(e) => tracing::info!(pod = %victim.key, %e, "deleting a preemption victim failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_without_its_unread_parts_is_the_same_pod_to_the_plugins() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "d", "uid": "u", "labels": {"app": "web"}},
            "spec": {
                "nodeName": "n1",
                "containers": [{"name": "c", "image": "i",
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                    "ports": [{"containerPort": 80, "hostPort": 8080}],
                    "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
                "volumes": [{"name": "v", "projected": {"sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}],
                "tolerations": [{"key": "k", "operator": "Exists"}],
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}]}}
            },
            "status": {"phase": "Running", "startTime": "2026-11-24T04:00:00Z",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "c", "image": "i", "imageID": "x", "ready": true,
                    "restartCount": 0}]}
        }))
        .unwrap();
        let mut lean = pod.clone();
        drop_unread(&mut lean);
        assert!(lean.spec.as_ref().unwrap().volumes.is_none());
        assert!(lean.status.as_ref().unwrap().container_statuses.is_none());
        let full = PodInfo::new(Arc::new(pod.clone()), 7);
        let kept = PodInfo::new(Arc::new(lean.clone()), 7);
        let computed = |p: &PodInfo| {
            format!(
                "{:?}",
                (
                    &p.key,
                    &p.uid,
                    &p.labels,
                    p.priority,
                    &p.requests,
                    &p.non_zero,
                    &p.required_affinity,
                    &p.required_anti_affinity,
                    &p.preferred_affinity,
                    &p.preferred_anti_affinity,
                    &p.node_name,
                    &p.start_time,
                )
            )
        };
        assert_eq!(computed(&full), computed(&kept));
        // Everything else of the pod is as it was.
        let (mut spec, mut status) = (pod.spec.unwrap(), pod.status.unwrap());
        spec.volumes = None;
        status.container_statuses = None;
        assert_eq!(lean.spec.unwrap(), spec);
        assert_eq!(lean.status.unwrap(), status);
        assert_eq!(lean.metadata, pod.metadata);
    }

    fn stores(objects: Vec<serde_json::Value>) -> Stores {
        let (pdbs, _) = reflector::store::<PodDisruptionBudget>();
        let (services, mut svc) = reflector::store::<Service>();
        let (replica_sets, mut rs) = reflector::store::<ReplicaSet>();
        let (stateful_sets, _) = reflector::store::<StatefulSet>();
        let (controllers, _) = reflector::store::<ReplicationController>();
        for o in objects {
            match o["kind"].as_str() {
                Some("Service") => {
                    svc.apply_watcher_event(&Event::Apply(serde_json::from_value(o).unwrap()))
                }
                Some("ReplicaSet") => {
                    rs.apply_watcher_event(&Event::Apply(serde_json::from_value(o).unwrap()))
                }
                _ => unreachable!(),
            }
        }
        Stores {
            pdbs,
            services,
            replica_sets,
            stateful_sets,
            controllers,
        }
    }

    fn pod(ns: &str, labels: serde_json::Value) -> PodInfo {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": ns, "labels": labels},
            "spec": {"containers": [{"name": "c"}]}}))
        .unwrap();
        PodInfo::new(Arc::new(p), 0)
    }

    #[test]
    fn default_spreading_selects_by_the_services_and_replica_sets_of_the_pod() {
        let s = stores(vec![
            json!({"kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                   "spec": {"selector": {"app": "web"}}}),
            json!({"kind": "Service", "metadata": {"name": "db", "namespace": "default"},
                   "spec": {"selector": {"app": "db"}}}),
            json!({"kind": "ReplicaSet", "metadata": {"name": "web-1", "namespace": "default"},
                   "spec": {"selector": {"matchLabels": {"app": "web", "hash": "1"}}}}),
            json!({"kind": "Service", "metadata": {"name": "web", "namespace": "other"},
                   "spec": {"selector": {"tier": "x"}}}),
        ]);
        let web = pod("default", json!({"app": "web", "hash": "1", "tier": "x"}));
        let sel = default_selector(&s, &web).unwrap();
        let keys: Vec<&str> = sel.requirements.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["app", "app", "hash"]);
        assert!(sel.matches(&web.labels));
        let lonely = pod("default", json!({"app": "batch"}));
        assert!(default_selector(&s, &lonely).is_none());
    }

    #[test]
    fn bound_pod_additions_and_deletions_wake_the_right_rejections() {
        assert!(helped_by_pod_delete(&[NODE_RESOURCES_FIT]));
        assert!(!helped_by_pod_delete(&[TAINT_TOLERATION]));
        assert!(helped_by_pod_add(&[INTER_POD_AFFINITY]));
        assert!(!helped_by_pod_add(&[NODE_RESOURCES_FIT]));
    }
}
