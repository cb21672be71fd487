//! The ReplicaSet controller, and the ReplicationController controller,
//! which is the same loop over the older kind: keep `spec.replicas` active
//! pods matching the selector, adopting matching orphans and releasing
//! owned pods that no longer match, and report `status` (replicas,
//! fullyLabeledReplicas, readyReplicas, availableReplicas,
//! observedGeneration, the ReplicaFailure condition).
//!
//! Pods are created from the template with a controller ownerReference
//! and `generateName: <owner>-`, in slow-start batches; surplus pods are
//! deleted in upstream's victim order. Expectations keep a slow watch from
//! causing double creation.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::workload_util::{
    controller_owner_ref, controller_ref, create_controlled_pod, is_not_found, is_pod_active,
    is_pod_available, is_pod_ready, is_ready, key_of, pod_from_template, run_loop,
    selector_is_empty, selector_matches, self_trigger, slow_start_batch, sort_for_deletion,
    Expectations, BURST_REPLICAS,
};
use crate::{Context, Error};

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// What the loop needs from a ReplicaSet or a ReplicationController.
pub trait ReplicaOwner:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    fn selector(&self) -> LabelSelector;
    fn replicas(&self) -> i32;
    fn min_ready_seconds(&self) -> i32;
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// The current status as JSON, to skip writes that change nothing.
    fn status_json(&self) -> serde_json::Value;
}

impl ReplicaOwner for ReplicaSet {
    fn selector(&self) -> LabelSelector {
        self.spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default()
    }
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }
    fn status_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.status).unwrap_or_default()
    }
}

impl ReplicaOwner for ReplicationController {
    fn selector(&self) -> LabelSelector {
        // An RC without a selector selects its template's labels (the API
        // server defaults it, but older objects may lack it).
        let labels = self
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .or_else(|| {
                self.template()
                    .and_then(|t| t.metadata.as_ref())
                    .and_then(|m| m.labels.clone())
            });
        LabelSelector {
            match_labels: labels,
            match_expressions: None,
        }
    }
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }
    fn status_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.status).unwrap_or_default()
    }
}

struct State<K: ReplicaOwner> {
    ctx: Context,
    owners: Store<K>,
    pods: Store<Pod>,
    expectations: Expectations,
}

/// Run the ReplicaSet and ReplicationController loops.
pub async fn run(ctx: Context) -> Result<(), Error> {
    tokio::join!(
        run_for::<ReplicaSet>(ctx.clone()),
        run_for::<ReplicationController>(ctx)
    );
    Ok(())
}

async fn run_for<K: ReplicaOwner>(ctx: Context) {
    let (pods, pod_events) = ctx.informers.reflect::<Pod>();
    let (owners, owner_events) = ctx.informers.reflect::<K>();
    let owners_for_pods = owners.clone();
    let pod_trigger = pod_events
        .flat_map(move |pod| futures::stream::iter(owners_of_pod::<K>(&owners_for_pods, &pod)))
        .boxed();
    let state = Arc::new(State {
        ctx,
        owners: owners.clone(),
        pods,
        expectations: Expectations::default(),
    });
    let name = K::kind(&()).into_owned();
    run_loop(
        &name,
        owners,
        vec![self_trigger(owner_events), pod_trigger],
        reconcile::<K>,
        state,
    )
    .await;
}

/// The owners a pod event concerns: its controller if it is one of ours,
/// else (an orphan) every owner whose selector matches it.
fn owners_of_pod<K: ReplicaOwner>(owners: &Store<K>, pod: &Pod) -> Vec<ObjectRef<K>> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    if let Some(owner) = controller_ref(&pod.metadata) {
        if owner.kind == K::kind(&()) {
            return vec![ObjectRef::new(&owner.name).within(&namespace)];
        }
        return Vec::new();
    }
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    owners
        .state()
        .iter()
        .filter(|o| o.meta().namespace.as_deref() == Some(namespace.as_str()))
        .filter(|o| {
            let selector = o.selector();
            !selector_is_empty(&selector) && selector_matches(&selector, &labels)
        })
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

async fn reconcile<K: ReplicaOwner>(owner: Arc<K>, state: Arc<State<K>>) -> Result<Action, Error> {
    if !is_ready(&state.pods) || !is_ready(&state.owners) {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let meta = owner.meta();
    let namespace = meta.namespace.clone().unwrap_or_default();
    let key = key_of(meta);
    let uid = meta.uid.clone().unwrap_or_default();
    let client = &state.ctx.client;
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let selector = owner.selector();

    // Claim pods: owned ones that still match, plus matching orphans.
    let mut claimed = Vec::new();
    for pod in &state
        .pods
        .state_filter(|p| p.metadata.namespace.as_deref() == Some(namespace.as_str()))
    {
        let labels = pod.metadata.labels.as_ref().unwrap_or(&NO_LABELS);
        let matches = !selector_is_empty(&selector) && selector_matches(&selector, labels);
        match controller_ref(&pod.metadata) {
            Some(r) if r.uid == uid => {
                if matches {
                    claimed.push(pod.clone());
                } else if meta.deletion_timestamp.is_none() {
                    release(&pods_api, pod, &uid).await;
                }
            }
            Some(_) => {}
            None => {
                if matches
                    && meta.deletion_timestamp.is_none()
                    && pod.metadata.deletion_timestamp.is_none()
                    && adopt::<K>(&pods_api, pod, owner.as_ref()).await
                {
                    claimed.push(pod.clone());
                }
            }
        }
    }
    let active: Vec<Arc<Pod>> = claimed.into_iter().filter(|p| is_pod_active(p)).collect();

    let store = &state.pods;
    let in_store = |name: &str| store.get(&ObjectRef::new(name).within(&namespace));
    let satisfied = state.expectations.satisfied(
        &key,
        |name| in_store(name).is_some(),
        |name| {
            in_store(name)
                .map(|p| p.metadata.deletion_timestamp.is_some())
                .unwrap_or(true)
        },
    );

    let mut failure: Option<String> = None;
    if satisfied && meta.deletion_timestamp.is_none() {
        failure = manage_replicas(&state, owner.as_ref(), &key, &active).await;
    }

    update_status(&state, owner.as_ref(), &active, failure).await?;

    // Availability changes with time alone when minReadySeconds is set.
    let min_ready = owner.min_ready_seconds();
    let now = Timestamp::now();
    if min_ready > 0
        && active
            .iter()
            .any(|p| is_pod_ready(p) && !is_pod_available(p, min_ready, now))
    {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    if !satisfied {
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// Create or delete pods so `active` reaches `spec.replicas`. Returns the
/// message of a failed creation, for the ReplicaFailure condition.
async fn manage_replicas<K: ReplicaOwner>(
    state: &State<K>,
    owner: &K,
    key: &str,
    active: &[Arc<Pod>],
) -> Option<String> {
    let meta = owner.meta();
    let namespace = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    let pods_api: Api<Pod> = Api::namespaced(state.ctx.client.clone(), &namespace);
    let diff = active.len() as i64 - i64::from(owner.replicas());
    let reference = clientkit::events::reference(owner);
    if diff < 0 {
        let Some(template) = owner.template() else {
            return Some("the pod template is missing".into());
        };
        let owner_ref = controller_owner_ref(&K::api_version(&()), &K::kind(&()), meta)?;
        let pod = pod_from_template(template, &namespace, &format!("{name}-"), owner_ref);
        let count = ((-diff) as usize).min(BURST_REPLICAS);
        let (_, err) = slow_start_batch(count, |_| {
            let pods_api = pods_api.clone();
            let pod = pod.clone();
            let reference = reference.clone();
            async move {
                create_controlled_pod(
                    &state.ctx.recorder,
                    &state.expectations,
                    key,
                    &reference,
                    &pods_api,
                    &pod,
                )
                .await
            }
        })
        .await;
        return err;
    }
    if diff > 0 {
        let mut victims = active.to_vec();
        sort_for_deletion(&mut victims);
        victims.truncate((diff as usize).min(BURST_REPLICAS));
        let deletions = victims.iter().map(|pod| {
            let pods_api = pods_api.clone();
            let reference = reference.clone();
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            async move {
                state.expectations.expect_deletion(key, &pod_name);
                match pods_api.delete(&pod_name, &DeleteParams::default()).await {
                    Ok(_) => {
                        state
                            .ctx
                            .recorder
                            .record(
                                &reference,
                                clientkit::events::NORMAL,
                                "SuccessfulDelete",
                                &format!("Deleted pod: {pod_name}"),
                            )
                            .await
                    }
                    Err(err) if is_not_found(&err) => {}
                    Err(err) => {
                        state
                            .ctx
                            .recorder
                            .record(
                                &reference,
                                clientkit::events::WARNING,
                                "FailedDelete",
                                &format!("Error deleting: {err}"),
                            )
                            .await
                    }
                }
            }
        });
        futures::future::join_all(deletions).await;
    }
    None
}

async fn update_status<K: ReplicaOwner>(
    state: &State<K>,
    owner: &K,
    active: &[Arc<Pod>],
    failure: Option<String>,
) -> Result<(), Error> {
    let now = Timestamp::now();
    let template_labels: BTreeMap<String, String> = owner
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully_labeled = active
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.as_ref().unwrap_or(&NO_LABELS);
            template_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
        })
        .count();
    let ready = active.iter().filter(|p| is_pod_ready(p)).count();
    let available = active
        .iter()
        .filter(|p| is_pod_available(p, owner.min_ready_seconds(), now))
        .count();
    let current = owner.status_json();
    let mut conditions: Vec<serde_json::Value> = current
        .get("conditions")
        .and_then(|c| c.as_array())
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.get("type").and_then(|t| t.as_str()) != Some("ReplicaFailure"))
        .collect();
    if let Some(message) = &failure {
        let previous = current
            .get("conditions")
            .and_then(|c| c.as_array())
            .and_then(|c| {
                c.iter()
                    .find(|c| c.get("type").and_then(|t| t.as_str()) == Some("ReplicaFailure"))
            });
        let since = previous
            .and_then(|p| p.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(now.to_string()));
        conditions.push(json!({
            "type": "ReplicaFailure",
            "status": "True",
            "reason": "FailedCreate",
            "message": message,
            "lastTransitionTime": since,
        }));
    }
    let status = json!({
        "replicas": active.len(),
        "fullyLabeledReplicas": fully_labeled,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": owner.meta().generation.unwrap_or(0),
        "conditions": if conditions.is_empty() { serde_json::Value::Null } else { json!(conditions) },
    });
    let unchanged = [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ]
    .iter()
    .all(|f| {
        current.get(*f).and_then(|v| v.as_i64()).unwrap_or(0) == status[*f].as_i64().unwrap_or(0)
    }) && current
        .get("conditions")
        .cloned()
        .unwrap_or(serde_json::Value::Null)
        == status["conditions"];
    if unchanged {
        return Ok(());
    }
    let meta = owner.meta();
    let api: Api<K> = Api::namespaced(
        state.ctx.client.clone(),
        meta.namespace.as_deref().unwrap_or_default(),
    );
    match api
        .patch_status(
            meta.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Put our controller reference on a matching orphan. Returns whether the
/// pod is ours now.
async fn adopt<K: ReplicaOwner>(pods: &Api<Pod>, pod: &Pod, owner: &K) -> bool {
    let Some(owner_ref) = controller_owner_ref(&K::api_version(&()), &K::kind(&()), owner.meta())
    else {
        return false;
    };
    let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
    refs.push(owner_ref);
    let patch = json!({"metadata": {"ownerReferences": if refs.is_empty() { json!(null) } else { json!(refs) }, "uid": pod.metadata.uid}});
    pods.patch(
        pod.metadata.name.as_deref().unwrap_or_default(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .is_ok()
}

/// Drop our reference from a pod whose labels no longer match.
async fn release(pods: &Api<Pod>, pod: &Pod, uid: &str) {
    let refs: Vec<_> = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != uid)
        .cloned()
        .collect();
    let patch = json!({"metadata": {"ownerReferences": if refs.is_empty() { json!(null) } else { json!(refs) }, "uid": pod.metadata.uid}});
    if let Err(err) = pods
        .patch(
            pod.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        tracing::debug!(%err, "releasing a pod failed");
    }
}
