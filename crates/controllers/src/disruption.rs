//! The disruption controller: the status of every PodDisruptionBudget.
//!
//! For each PDB, from the pods its selector matches (in its namespace) and
//! the scale of their controllers: expectedPods (the pods the controllers
//! want, or simply the matching pods for an integer minAvailable),
//! desiredHealthy (minAvailable, or expectedPods minus maxUnavailable;
//! percentages round up), currentHealthy (Ready pods not being deleted and
//! not in disruptedPods), disruptionsAllowed, observedGeneration and the
//! DisruptionAllowed condition (SufficientPods / InsufficientPods, or
//! SyncFailed when the expected count cannot be worked out). Entries of
//! disruptedPods (written by the eviction API) are dropped once the pod is
//! being deleted, gone, or the entry is older than two minutes.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::node_informer::Informer;
use crate::node_podutil;
use crate::{Context, Error};

/// Upstream's DeletionTimeout: an eviction not followed by a deletion
/// within this time no longer counts.
const DISRUPTED_POD_TIMEOUT: Duration = Duration::from_secs(120);
const RESYNC: Duration = Duration::from_secs(30);
const BATCH: Duration = Duration::from_millis(200);

/// Whether `labels` satisfy a LabelSelector (matchLabels and
/// matchExpressions with In, NotIn, Exists, DoesNotExist).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or(&[]);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// An int or a percentage of `total`, rounded up.
fn scaled(value: &IntOrString, total: i32) -> Result<i32, String> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(text) => {
            let percent: i64 = text
                .strip_suffix('%')
                .and_then(|p| p.trim().parse().ok())
                .ok_or_else(|| format!("invalid value {text:?}: not an integer or percentage"))?;
            Ok(((percent * i64::from(total) + 99) / 100) as i32)
        }
    }
}

/// What the PDB's numbers come out as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    pub expected_pods: i32,
    pub desired_healthy: i32,
    pub current_healthy: i32,
    pub disruptions_allowed: i32,
}

/// Upstream's arithmetic, given the matching pods' count, the pods counted
/// healthy and the controllers' total scale (None when some pod has no
/// scalable controller, which only matters when the scale is needed).
pub fn budget(
    pdb: &PodDisruptionBudget,
    matching_pods: i32,
    current_healthy: i32,
    controllers_scale: Result<i32, String>,
) -> Result<Budget, String> {
    let spec = pdb.spec.clone().unwrap_or_default();
    let (expected_pods, desired_healthy) = match (&spec.max_unavailable, &spec.min_available) {
        (Some(max_unavailable), _) => {
            let expected = controllers_scale?;
            let unavailable = scaled(max_unavailable, expected)?;
            (expected, (expected - unavailable).max(0))
        }
        (None, Some(IntOrString::Int(min))) => (matching_pods, *min),
        (None, Some(min @ IntOrString::String(_))) => {
            let expected = controllers_scale?;
            (expected, scaled(min, expected)?)
        }
        // Neither set (policy/v1 has no default): nothing may be disrupted.
        (None, None) => (0, 0),
    };
    let mut disruptions_allowed = current_healthy - desired_healthy;
    if expected_pods <= 0 || disruptions_allowed <= 0 {
        disruptions_allowed = 0;
    }
    Ok(Budget {
        expected_pods,
        desired_healthy,
        current_healthy,
        disruptions_allowed,
    })
}

struct Listers {
    pods: Informer<Pod>,
    replica_sets: Informer<ReplicaSet>,
    deployments: Informer<Deployment>,
    stateful_sets: Informer<StatefulSet>,
    replication_controllers: Informer<ReplicationController>,
}

fn find<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<Arc<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    store.get(&ObjectRef::new(name).within(namespace))
}

impl Listers {
    /// The desired replicas of the scalable controller of `pod`, with a key
    /// identifying that controller (pods of one controller count it once).
    fn controller_scale(&self, pod: &Pod) -> Result<(String, i32), String> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let owner = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .ok_or_else(|| format!("found no controller ref for pod {name:?}"))?;
        let replicas = |r: Option<i32>| r.unwrap_or(1);
        match (owner.kind.as_str(), owner.api_version.split('/').next()) {
            ("ReplicaSet", Some("apps")) => {
                let rs = find(&self.replica_sets.store, namespace, &owner.name)
                    .filter(|rs| rs.metadata.uid.as_deref() == Some(owner.uid.as_str()))
                    .ok_or_else(|| format!("replicaset {} not found", owner.name))?;
                let deployment = rs
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .find(|o| o.controller == Some(true) && o.kind == "Deployment");
                if let Some(d) = deployment {
                    if let Some(d) = find(&self.deployments.store, namespace, &d.name) {
                        return Ok((
                            format!("Deployment/{}", d.metadata.uid.clone().unwrap_or_default()),
                            replicas(d.spec.as_ref().and_then(|s| s.replicas)),
                        ));
                    }
                }
                Ok((
                    format!("ReplicaSet/{}", owner.uid),
                    replicas(rs.spec.as_ref().and_then(|s| s.replicas)),
                ))
            }
            ("StatefulSet", Some("apps")) => {
                let sts = find(&self.stateful_sets.store, namespace, &owner.name)
                    .ok_or_else(|| format!("statefulset {} not found", owner.name))?;
                Ok((
                    format!("StatefulSet/{}", owner.uid),
                    replicas(sts.spec.as_ref().and_then(|s| s.replicas)),
                ))
            }
            ("ReplicationController", Some("v1")) => {
                let rc = find(&self.replication_controllers.store, namespace, &owner.name)
                    .ok_or_else(|| format!("replicationcontroller {} not found", owner.name))?;
                Ok((
                    format!("ReplicationController/{}", owner.uid),
                    replicas(rc.spec.as_ref().and_then(|s| s.replicas)),
                ))
            }
            (kind, _) => Err(format!(
                "pod {name:?} is controlled by a {kind}, which has no scale this controller knows"
            )),
        }
    }
}

/// Maintain PodDisruptionBudget status until a fatal error.
pub async fn run(ctx: Context) -> Result<(), Error> {
    let (tx, mut changes) = mpsc::unbounded_channel::<String>();
    let namespace_of = |tx: &mpsc::UnboundedSender<String>| {
        let tx = tx.clone();
        move |ns: Option<String>| {
            let _ = tx.send(ns.unwrap_or_default());
        }
    };
    let pdbs: Informer<PodDisruptionBudget> = spawn_notifying(&ctx, namespace_of(&tx));
    let listers = Listers {
        pods: spawn_notifying(&ctx, namespace_of(&tx)),
        replica_sets: spawn_notifying(&ctx, namespace_of(&tx)),
        deployments: spawn_notifying(&ctx, namespace_of(&tx)),
        stateful_sets: spawn_notifying(&ctx, namespace_of(&tx)),
        replication_controllers: spawn_notifying(&ctx, namespace_of(&tx)),
    };
    pdbs.ready().await?;
    listers.pods.ready().await?;
    listers.replica_sets.ready().await?;
    listers.deployments.ready().await?;
    listers.stateful_sets.ready().await?;
    listers.replication_controllers.ready().await?;
    let mut dirty: HashSet<String> = HashSet::new();
    let mut everything = true;
    let mut batch = tokio::time::interval(BATCH);
    let mut resync = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            namespace = changes.recv() => {
                dirty.extend(namespace);
            }
            _ = resync.tick() => everything = true,
            _ = batch.tick() => {
                if !everything && dirty.is_empty() {
                    continue;
                }
                let all = std::mem::take(&mut everything);
                let namespaces = std::mem::take(&mut dirty);
                for pdb in pdbs.store.state() {
                    let ns = pdb.metadata.namespace.clone().unwrap_or_default();
                    if all || namespaces.contains(&ns) {
                        sync(&ctx, &listers, &pdb).await;
                    }
                }
            }
        }
    }
}

/// An informer whose every event reports the object's namespace.
fn spawn_notifying<K>(
    ctx: &Context,
    notify: impl Fn(Option<String>) + Send + 'static,
) -> Informer<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<watcher::Event<K>>();
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            match event {
                watcher::Event::Apply(o) | watcher::Event::Delete(o) => {
                    notify(o.meta().namespace.clone())
                }
                _ => {}
            }
        }
    });
    Informer::shared(&ctx.informers, Some(tx))
}

/// Compute and write one PDB's status (only when it changed).
async fn sync(ctx: &Context, listers: &Listers, pdb: &PodDisruptionBudget) {
    let (Some(namespace), Some(name)) = (&pdb.metadata.namespace, &pdb.metadata.name) else {
        return;
    };
    let now = Timestamp::now();
    let selector = pdb.spec.as_ref().and_then(|s| s.selector.clone());
    let empty = BTreeMap::new();
    let pods: Vec<Arc<Pod>> = match &selector {
        // A missing selector selects nothing (policy/v1).
        None => Vec::new(),
        Some(selector) => listers.pods.store.state_filter(|p| {
            p.metadata.namespace.as_ref() == Some(namespace)
                && selector_matches(selector, p.metadata.labels.as_ref().unwrap_or(&empty))
        }),
    };
    let status = pdb.status.clone().unwrap_or_default();
    // Evictions still in flight: the pod exists, is not being deleted,
    // and the entry is recent.
    let mut disrupted: BTreeMap<String, Time> = BTreeMap::new();
    for (pod_name, when) in status.disrupted_pods.clone().unwrap_or_default() {
        let live = pods.iter().any(|p| {
            p.metadata.name.as_deref() == Some(pod_name.as_str())
                && p.metadata.deletion_timestamp.is_none()
        });
        let fresh = now.duration_since(when.0).as_secs_f64() < DISRUPTED_POD_TIMEOUT.as_secs_f64();
        if live && fresh {
            disrupted.insert(pod_name, when);
        }
    }
    let current_healthy = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| !disrupted.contains_key(p.metadata.name.as_deref().unwrap_or_default()))
        .filter(|p| node_podutil::is_ready(p))
        .count() as i32;
    let scale = (|| {
        let mut seen: HashSet<String> = HashSet::new();
        let mut total = 0;
        for pod in &pods {
            let (key, replicas) = listers.controller_scale(pod)?;
            if seen.insert(key) {
                total += replicas;
            }
        }
        Ok::<i32, String>(total)
    })();
    let generation = pdb.metadata.generation;
    let (numbers, condition) = match budget(pdb, pods.len() as i32, current_healthy, scale) {
        Ok(numbers) => {
            let allowed = numbers.disruptions_allowed > 0;
            (
                numbers.clone(),
                (
                    if allowed { "True" } else { "False" },
                    if allowed {
                        "SufficientPods"
                    } else {
                        "InsufficientPods"
                    },
                    String::new(),
                ),
            )
        }
        Err(message) => {
            ctx.recorder
                .record(
                    &clientkit::events::reference(pdb),
                    clientkit::events::WARNING,
                    "CalculateExpectedPodCountFailed",
                    &format!("Failed to calculate the number of expected pods: {message}"),
                )
                .await;
            (
                Budget {
                    expected_pods: status.expected_pods,
                    desired_healthy: status.desired_healthy,
                    current_healthy,
                    disruptions_allowed: 0,
                },
                ("False", "SyncFailed", message),
            )
        }
    };
    let old_condition = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionAllowed");
    let transition = match old_condition {
        Some(old) if old.status == condition.0 => old.last_transition_time.clone(),
        _ => Time(now),
    };
    let unchanged = status.current_healthy == numbers.current_healthy
        && status.desired_healthy == numbers.desired_healthy
        && status.expected_pods == numbers.expected_pods
        && status.disruptions_allowed == numbers.disruptions_allowed
        && status.observed_generation == generation
        && status.disrupted_pods.clone().unwrap_or_default() == disrupted
        && old_condition.is_some_and(|c| {
            c.status == condition.0 && c.reason == condition.1 && c.message == condition.2
        });
    if unchanged {
        return;
    }
    // Merge patch: entries dropped from disruptedPods are set to null.
    let mut disrupted_patch = serde_json::Map::new();
    for key in status.disrupted_pods.iter().flatten().map(|(k, _)| k) {
        disrupted_patch.insert(key.clone(), Value::Null);
    }
    for (key, when) in &disrupted {
        disrupted_patch.insert(key.clone(), json!(when));
    }
    let patch = json!({"status": {
        "currentHealthy": numbers.current_healthy,
        "desiredHealthy": numbers.desired_healthy,
        "expectedPods": numbers.expected_pods,
        "disruptionsAllowed": numbers.disruptions_allowed,
        "observedGeneration": generation,
        "disruptedPods": if disrupted_patch.is_empty() { Value::Null } else { Value::Object(disrupted_patch) },
        "conditions": [{
            "type": "DisruptionAllowed",
            "status": condition.0,
            "reason": condition.1,
            "message": condition.2,
            "lastTransitionTime": transition,
            "observedGeneration": generation,
        }],
    }});
    let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), namespace);
    if let Err(err) = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::debug!(pdb = %name, %namespace, %err, "updating PDB status failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdb(spec: Value) -> PodDisruptionBudget {
        serde_json::from_value(json!({"metadata": {"name": "b", "namespace": "ns"}, "spec": spec}))
            .unwrap()
    }

    #[test]
    fn integer_min_available_counts_matching_pods() {
        let b = budget(
            &pdb(json!({"minAvailable": 2})),
            3,
            3,
            Err("no scale".into()),
        )
        .unwrap();
        assert_eq!(
            b,
            Budget {
                expected_pods: 3,
                desired_healthy: 2,
                current_healthy: 3,
                disruptions_allowed: 1
            }
        );
        let short = budget(&pdb(json!({"minAvailable": 2})), 3, 1, Err("x".into())).unwrap();
        assert_eq!(short.disruptions_allowed, 0);
    }

    #[test]
    fn max_unavailable_uses_the_controllers_scale_and_rounds_percentages_up() {
        let b = budget(&pdb(json!({"maxUnavailable": "25%"})), 5, 5, Ok(5)).unwrap();
        // 25% of 5 = 1.25, rounded up to 2 unavailable.
        assert_eq!(
            (b.expected_pods, b.desired_healthy, b.disruptions_allowed),
            (5, 3, 2)
        );
        let b = budget(&pdb(json!({"maxUnavailable": 1})), 2, 2, Ok(4)).unwrap();
        assert_eq!(
            (b.expected_pods, b.desired_healthy, b.disruptions_allowed),
            (4, 3, 0)
        );
        assert!(budget(
            &pdb(json!({"maxUnavailable": 1})),
            2,
            2,
            Err("no controller".into())
        )
        .is_err());
    }

    #[test]
    fn percentage_min_available_rounds_up_against_the_scale() {
        let b = budget(&pdb(json!({"minAvailable": "50%"})), 3, 3, Ok(3)).unwrap();
        assert_eq!((b.desired_healthy, b.disruptions_allowed), (2, 1));
        assert!(budget(&pdb(json!({"minAvailable": "half"})), 3, 3, Ok(3)).is_err());
    }

    #[test]
    fn no_expected_pods_means_no_disruptions() {
        let b = budget(&pdb(json!({"maxUnavailable": 1})), 0, 0, Ok(0)).unwrap();
        assert_eq!(b.disruptions_allowed, 0);
    }

    #[test]
    fn label_selectors_match_labels_and_expressions() {
        let selector: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        }))
        .unwrap();
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
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
            &labels(&[("app", "web"), ("tier", "front"), ("canary", "1")])
        ));
        assert!(selector_matches(
            &LabelSelector::default(),
            &labels(&[("any", "x")])
        ));
    }
}
