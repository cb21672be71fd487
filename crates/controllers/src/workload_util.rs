//! Helpers shared by the workload controllers (replicaset, deployment, job,
//! daemonset, statefulset, ...): label selector matching, controller
//! ownerReferences, pod readiness and availability, the order in which
//! surplus pods are deleted, creation expectations, and slow-start batches.
//!
//! Everything here is pure or works on values the caller passes in; the
//! controllers own their watches and API calls.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use kube::api::Api;
use kube::runtime::controller::{applier, Action, Config as ControllerConfig};
use kube::runtime::reflector::{self, Lookup, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
use serde::de::DeserializeOwned;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

/// Upstream's limit on pods created or deleted in one sync of one owner.
pub const BURST_REPLICAS: usize = 500;

/// Whether `selector` selects an object with `labels`. An empty selector
/// (no matchLabels and no matchExpressions) selects everything, as
/// upstream's `LabelSelectorAsSelector` does; callers that must treat it
/// as "nothing" check [`selector_is_empty`] first.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    if let Some(match_labels) = &selector.match_labels {
        for (key, value) in match_labels {
            if labels.get(key) != Some(value) {
                return false;
            }
        }
    }
    for requirement in selector.match_expressions.iter().flatten() {
        let actual = labels.get(&requirement.key);
        let values = requirement.values.as_deref().unwrap_or_default();
        let ok = match requirement.operator.as_str() {
            "In" => actual.is_some_and(|v| values.contains(v)),
            "NotIn" => actual.is_none_or(|v| !values.contains(v)),
            "Exists" => actual.is_some(),
            "DoesNotExist" => actual.is_none(),
            // An operator we do not know selects nothing, like an invalid selector.
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

pub fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|m| m.is_empty())
}

/// The owner reference marked `controller: true`, if any.
pub fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// The reference a controller puts on what it creates: controller=true and
/// blockOwnerDeletion=true, so foreground deletion of the owner waits for it.
pub fn controller_owner_ref(
    api_version: &str,
    kind: &str,
    meta: &ObjectMeta,
) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// A pod built from a template for an owner, named `<generate_name>xxxxx`
/// by the API server.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    generate_name: &str,
    owner: OwnerReference,
) -> Pod {
    let template_meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name.into()),
            namespace: Some(namespace.into()),
            labels: template_meta.labels,
            annotations: template_meta.annotations,
            finalizers: template_meta.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

pub fn pod_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// Not terminated and not being deleted: counts towards replicas.
pub fn is_pod_active(pod: &Pod) -> bool {
    let phase = pod_phase(pod);
    phase != "Succeeded" && phase != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

/// When the pod's Ready condition turned True, if it is True.
pub fn pod_ready_since(pod: &Pod) -> Option<Timestamp> {
    let condition = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    if condition.status != "True" {
        return None;
    }
    Some(
        condition
            .last_transition_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(Timestamp::UNIX_EPOCH),
    )
}

pub fn is_pod_ready(pod: &Pod) -> bool {
    pod_ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` at `now`.
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match pod_ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(since) => since.as_second() + i64::from(min_ready_seconds) <= now.as_second(),
    }
}

fn phase_rank(pod: &Pod) -> u8 {
    match pod_phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

fn deletion_cost(pod: &Pod) -> i64 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("controller.kubernetes.io/pod-deletion-cost"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .map(|c| c.restart_count)
        .sum()
}

fn created(pod: &Pod) -> Timestamp {
    pod.metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Sort pods so that the ones to delete first come first, as upstream
/// ranks them: unscheduled before scheduled, Pending before Unknown before
/// Running, not ready before ready, more pods of the same owner on the same
/// node first, lower `pod-deletion-cost` first, ready for a shorter time
/// first, more restarts first, newer first.
pub fn sort_for_deletion<P: Borrow<Pod>>(pods: &mut [P]) {
    let mut per_node: HashMap<String, i64> = HashMap::new();
    for pod in pods.iter().map(Borrow::borrow) {
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
            *per_node.entry(node).or_default() += 1;
        }
    }
    let rank = |pod: &Pod| {
        pod.spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .and_then(|n| per_node.get(n).copied())
            .unwrap_or(0)
    };
    pods.sort_by(|a, b| {
        let (a, b) = (a.borrow(), b.borrow());
        let a_assigned = a.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
        let b_assigned = b.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
        a_assigned
            .cmp(&b_assigned)
            .then(phase_rank(a).cmp(&phase_rank(b)))
            .then(is_pod_ready(a).cmp(&is_pod_ready(b)))
            .then(rank(b).cmp(&rank(a)))
            .then(deletion_cost(a).cmp(&deletion_cost(b)))
            // Ready more recently (later timestamp) goes first.
            .then(pod_ready_since(b).cmp(&pod_ready_since(a)))
            .then(restarts(b).cmp(&restarts(a)))
            .then(created(b).cmp(&created(a)))
    });
}

/// Creations and deletions a controller has made but not yet seen in its
/// watch cache. While any are outstanding the controller must not count
/// pods again, or a slow watch would make it create (or delete) twice.
/// Entries expire after five minutes, as upstream's do, so a lost event
/// cannot wedge an owner forever.
#[derive(Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
}

struct Pending {
    creations: HashSet<String>,
    deletions: HashSet<String>,
    since: Instant,
}

const EXPECTATIONS_TTL: Duration = Duration::from_secs(300);

impl Expectations {
    /// Remember that the pod named `name` was created for `key`.
    pub fn expect_creation(&self, key: &str, name: &str) {
        self.with_entry(key, |p| {
            p.creations.insert(name.into());
        });
    }

    /// Remember that the pod named `name` was deleted for `key`.
    pub fn expect_deletion(&self, key: &str, name: &str) {
        self.with_entry(key, |p| {
            p.deletions.insert(name.into());
        });
    }

    fn with_entry(&self, key: &str, f: impl FnOnce(&mut Pending)) {
        if let Ok(mut pending) = self.pending.lock() {
            let entry = pending.entry(key.into()).or_insert_with(|| Pending {
                creations: HashSet::new(),
                deletions: HashSet::new(),
                since: Instant::now(),
            });
            entry.since = Instant::now();
            f(entry);
        }
    }

    /// Whether everything expected for `key` has been observed. `seen`
    /// says whether a pod name is in the cache; `gone` whether it is absent
    /// or being deleted there.
    pub fn satisfied(
        &self,
        key: &str,
        seen: impl Fn(&str) -> bool,
        gone: impl Fn(&str) -> bool,
    ) -> bool {
        let Ok(mut pending) = self.pending.lock() else {
            return true;
        };
        let Some(entry) = pending.get_mut(key) else {
            return true;
        };
        entry.creations.retain(|name| !seen(name));
        entry.deletions.retain(|name| !gone(name));
        if entry.creations.is_empty() && entry.deletions.is_empty()
            || entry.since.elapsed() > EXPECTATIONS_TTL
        {
            pending.remove(key);
            return true;
        }
        false
    }
}

/// Run `count` calls of `create` in batches of 1, 2, 4, ... (upstream's
/// slow start), stopping after the first batch with a failure, so a
/// quota or admission rejection costs one call rather than hundreds.
/// Returns how many succeeded and the first error.
pub async fn slow_start_batch<F, Fut, E>(count: usize, create: F) -> (usize, Option<E>)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut done = 0usize;
    let mut batch = 1usize;
    while done < count {
        let size = batch.min(count - done);
        let results = futures::future::join_all((done..done + size).map(&create)).await;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(()) => done += 1,
                Err(err) if first_error.is_none() => first_error = Some(err),
                Err(_) => {}
            }
        }
        if first_error.is_some() {
            return (done, first_error);
        }
        batch *= 2;
    }
    (done, None)
}

/// A JSON value without Go's zero values (false, 0, "", empty lists and
/// maps, null), so templates compare the way upstream's semantic equality
/// compares Go structs: a field sent as `false` equals one left out.
pub fn zero_free(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let is_zero = |v: &Value| match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    };
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, zero_free(v)))
                .filter(|(_, v)| !is_zero(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(zero_free).collect()),
        other => other,
    }
}

/// upstream's `SafeEncodeString` of an FNV-1a hash (with an optional
/// collision count): the form of `pod-template-hash` and
/// `controller-revision-hash` values.
pub fn safe_hash(data: &[u8], collision_count: Option<i32>) -> String {
    const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut hash: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u32::from(*b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    feed(data);
    if let Some(count) = collision_count {
        feed(&(count as u32).to_le_bytes());
    }
    hash.to_string()
        .bytes()
        .map(|b| SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// `ns/name` of an object, the key expectations and logs use.
pub fn key_of(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

/// Whether an API error is a 404.
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}

/// Whether an API error is a 409 (AlreadyExists or Conflict).
pub fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409)
}

/// A reflector over `api`: the store it fills, and the stream of objects
/// it touched (applied or deleted), which must be polled to keep the store
/// current. Watch errors are logged and retried with backoff.
pub fn reflect<T>(api: Api<T>, config: watcher::Config) -> (Store<T>, BoxStream<'static, T>)
where
    T: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store::<T>();
    let stream = reflector::reflector(
        writer,
        watcher::watcher(api, config).modify(clientkit::trim_managed_fields),
    )
    .default_backoff()
    .touched_objects()
    .filter_map(|result| async move {
        match result {
            Ok(object) => Some(object),
            Err(err) => {
                tracing::debug!(%err, kind = %T::kind(&()), "watch failed; retrying");
                None
            }
        }
    })
    .boxed();
    (store, stream)
}

/// Whether a reflector has finished its first list. Reconciling before
/// then would mistake a partial cache for the truth (and, say, create
/// every replica again after a restart).
pub fn is_ready<T: Lookup + Clone + 'static>(store: &Store<T>) -> bool
where
    T::DynamicType: Eq + std::hash::Hash + Clone,
{
    store
        .wait_until_ready()
        .now_or_never()
        .is_some_and(|r| r.is_ok())
}

/// Run a reconcile loop over the objects in `store`, triggered by every
/// stream in `triggers` (kube-runtime's applier: one reconcile per object
/// at a time, deduplicated, with requeues as the reconciler asks).
pub async fn run_loop<K, Ctx, F, Fut>(
    name: &str,
    store: Store<K>,
    triggers: Vec<BoxStream<'static, ObjectRef<K>>>,
    reconcile: F,
    ctx: Arc<Ctx>,
) where
    K: Resource<DynamicType = ()> + Clone + Debug + Send + Sync + 'static,
    Ctx: Send + Sync + 'static,
    F: Fn(Arc<K>, Arc<Ctx>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Action, crate::Error>> + Send + 'static,
{
    let queue = futures::stream::select_all(triggers).map(Ok::<_, std::convert::Infallible>);
    let stream = applier(
        move |object, ctx| Box::pin(reconcile(object, ctx)),
        |_, err, _| {
            tracing::debug!(%err, "sync failed; retrying");
            Action::requeue(Duration::from_secs(5))
        },
        ctx,
        store,
        queue,
        ControllerConfig::default(),
    );
    let mut stream = std::pin::pin!(stream);
    while let Some(result) = stream.next().await {
        if let Err(err) = result {
            tracing::debug!(controller = name, %err, "reconcile failed");
        }
    }
}

/// The trigger stream for a loop's own objects.
pub fn self_trigger<K>(stream: BoxStream<'static, K>) -> BoxStream<'static, ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Send + 'static,
{
    stream.map(|object| ObjectRef::from_obj(&object)).boxed()
}

/// Create one pod for a controller: on success the expectations learn its
/// name and a `SuccessfulCreate` event is recorded; on failure a
/// `FailedCreate` event with the API's message. Returns that message.
pub async fn create_controlled_pod(
    recorder: &clientkit::EventRecorder,
    expectations: &Expectations,
    key: &str,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    pods: &Api<Pod>,
    pod: &Pod,
) -> Result<(), String> {
    match pods.create(&kube::api::PostParams::default(), pod).await {
        Ok(created) => {
            let name = created.metadata.name.unwrap_or_default();
            expectations.expect_creation(key, &name);
            recorder
                .record(
                    reference,
                    clientkit::events::NORMAL,
                    "SuccessfulCreate",
                    &format!("Created pod: {name}"),
                )
                .await;
            Ok(())
        }
        Err(err) => {
            let message = match &err {
                kube::Error::Api(status) => status.message.clone(),
                other => other.to_string(),
            };
            recorder
                .record(
                    reference,
                    clientkit::events::WARNING,
                    "FailedCreate",
                    &format!("Error creating: {message}"),
                )
                .await;
            Err(message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, Time};

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pod(name: &str, node: Option<&str>, phase: &str, ready: bool, created_s: i64) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(
                    Timestamp::from_second(created_s).unwrap_or(Timestamp::UNIX_EPOCH),
                )),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(String::from),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn match_labels_and_expressions_must_all_hold() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["front".into(), "edge".into()]),
                },
                LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert!(selector_matches(
            &selector,
            &labels(&[("app", "web"), ("tier", "edge")])
        ));
        assert!(!selector_matches(
            &selector,
            &labels(&[("app", "web"), ("tier", "back")])
        ));
        assert!(!selector_matches(
            &selector,
            &labels(&[("app", "web"), ("tier", "edge"), ("canary", "1")])
        ));
    }

    #[test]
    fn unscheduled_pending_not_ready_and_newer_pods_are_deleted_first() {
        let mut pods = vec![
            pod("running-ready-old", Some("n1"), "Running", true, 10),
            pod("unscheduled", None, "Pending", false, 5),
            pod("running-not-ready", Some("n2"), "Running", false, 10),
            pod("pending-on-node", Some("n3"), "Pending", false, 10),
            pod("running-ready-new", Some("n4"), "Running", true, 20),
        ];
        sort_for_deletion(&mut pods);
        let order: Vec<_> = pods
            .iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            order,
            [
                "unscheduled",
                "pending-on-node",
                "running-not-ready",
                "running-ready-new",
                "running-ready-old"
            ]
        );
    }

    #[test]
    fn pods_sharing_a_node_are_deleted_before_lone_ones() {
        let mut pods = vec![
            pod("alone", Some("n1"), "Running", true, 10),
            pod("crowded-a", Some("n2"), "Running", true, 10),
            pod("crowded-b", Some("n2"), "Running", true, 10),
        ];
        sort_for_deletion(&mut pods);
        assert_eq!(pods[2].metadata.name.as_deref(), Some("alone"));
    }

    #[test]
    fn expectations_hold_until_the_cache_shows_the_pods() {
        let expectations = Expectations::default();
        expectations.expect_creation("ns/rs", "rs-a");
        expectations.expect_deletion("ns/rs", "rs-b");
        assert!(!expectations.satisfied("ns/rs", |_| false, |_| false));
        assert!(!expectations.satisfied("ns/rs", |n| n == "rs-a", |_| false));
        assert!(expectations.satisfied("ns/rs", |_| false, |n| n == "rs-b"));
        assert!(expectations.satisfied("ns/other", |_| false, |_| false));
    }

    #[tokio::test]
    async fn slow_start_grows_batches_and_stops_after_a_failing_batch() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let (done, err) = slow_start_batch(10, |i| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                if i == 4 {
                    Err("quota")
                } else {
                    Ok(())
                }
            }
        })
        .await;
        // Batches 1 (i=0), 2 (i=1,2), 4 (i=3..6, one fails): nothing after.
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 7);
        assert_eq!(done, 6);
        assert_eq!(err, Some("quota"));
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let mut p = pod("p", Some("n"), "Running", true, 0);
        if let Some(c) = p
            .status
            .as_mut()
            .and_then(|s| s.conditions.as_mut())
            .and_then(|c| c.first_mut())
        {
            c.last_transition_time = Some(Time(Timestamp::from_second(100).unwrap()));
        }
        let at = |s| Timestamp::from_second(s).unwrap();
        assert!(is_pod_available(&p, 0, at(100)));
        assert!(!is_pod_available(&p, 10, at(105)));
        assert!(is_pod_available(&p, 10, at(110)));
    }
}
