//! The garbage collector: follows `metadata.ownerReferences` across every
//! resource the API server serves.
//!
//! It keeps a graph of every object's uid, owners and finalizers, fed by
//! one metadata-only watch per listable, deletable resource found through
//! discovery (rediscovered periodically, so CRDs join). From that graph:
//! - a dependent whose owners are all gone (checked with a live read, as
//!   upstream does, since the graph may lag) is deleted in the background;
//!   one with only some owners gone loses those references;
//! - an owner being deleted with the `foregroundDeletion` finalizer gets
//!   its dependents deleted (those that block it, in the foreground too)
//!   and the finalizer removed once no blocking dependent remains;
//! - an owner with the `orphan` finalizer has its reference removed from
//!   every dependent, then the finalizer removed.
//!
//! Events are ignored, as upstream ignores them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clientkit::lean::LeanMetadata;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::core::ApiResource;
use kube::discovery::{ApiCapabilities, Discovery, Scope};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use serde_json::json;
use tokio::sync::mpsc;

use crate::workload_util::{is_conflict, is_not_found};
use crate::{Context, Error};

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

/// How often discovery is re-read to pick up new resources (CRDs).
const REDISCOVERY: Duration = Duration::from_secs(30);

/// A listable, watchable, deletable resource and whether it is namespaced.
#[derive(Clone, Debug)]
pub struct Served {
    pub resource: ApiResource,
    pub namespaced: bool,
    pub verbs: Vec<String>,
}

/// Every top-level resource in its group's preferred version.
pub async fn discover(client: &kube::Client) -> Result<Vec<Served>, kube::Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    Ok(discovery
        .groups()
        .flat_map(|group| group.recommended_resources())
        .map(|(resource, caps): (ApiResource, ApiCapabilities)| Served {
            namespaced: caps.scope == Scope::Namespaced,
            verbs: caps.operations.clone(),
            resource,
        })
        .collect())
}

fn is_event(resource: &ApiResource) -> bool {
    resource.plural == "events" && (resource.group.is_empty() || resource.group == "events.k8s.io")
}

#[derive(Clone, Debug)]
struct Node {
    resource: Arc<Served>,
    namespace: Option<String>,
    name: String,
    owners: Vec<OwnerReference>,
    finalizers: Vec<String>,
    deleting: bool,
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    /// owner uid -> dependent uids
    dependents: HashMap<String, HashSet<String>>,
    /// kind@apiVersion -> resource, for reading owners.
    kinds: HashMap<(String, String), Arc<Served>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Work {
    /// Check whether a dependent's owners still exist.
    AttemptToDelete(String),
    /// Run the foreground/orphan finalizer of an owner being deleted.
    DeletingOwner(String),
}

impl Graph {
    fn upsert(&mut self, uid: String, node: Node, queue: &mut Vec<Work>) {
        if let Some(old) = self.nodes.get(&uid) {
            for owner in &old.owners {
                if let Some(set) = self.dependents.get_mut(&owner.uid) {
                    set.remove(&uid);
                }
            }
        }
        for owner in &node.owners {
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(uid.clone());
        }
        let owner_missing = node.owners.iter().any(|o| !self.nodes.contains_key(&o.uid));
        let owner_deleting = node
            .owners
            .iter()
            .any(|o| self.nodes.get(&o.uid).is_some_and(|n| n.deleting));
        if owner_missing {
            queue.push(Work::AttemptToDelete(uid.clone()));
        }
        if owner_deleting {
            for owner in &node.owners {
                queue.push(Work::DeletingOwner(owner.uid.clone()));
            }
        }
        if node.deleting
            && node
                .finalizers
                .iter()
                .any(|f| f == FOREGROUND || f == ORPHAN)
        {
            queue.push(Work::DeletingOwner(uid.clone()));
        }
        self.nodes.insert(uid, node);
    }

    fn remove(&mut self, uid: &str, queue: &mut Vec<Work>) {
        let Some(node) = self.nodes.remove(uid) else {
            return;
        };
        for owner in &node.owners {
            if let Some(set) = self.dependents.get_mut(&owner.uid) {
                set.remove(uid);
            }
            if self.nodes.get(&owner.uid).is_some_and(|n| n.deleting) {
                queue.push(Work::DeletingOwner(owner.uid.clone()));
            }
        }
        for dependent in self.dependents.get(uid).into_iter().flatten() {
            queue.push(Work::AttemptToDelete(dependent.clone()));
        }
    }
}

struct Collector {
    client: kube::Client,
    graph: Mutex<Graph>,
    queue: mpsc::UnboundedSender<Work>,
}

pub async fn run(ctx: Context) -> Result<(), Error> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let collector = Arc::new(Collector {
        client: ctx.client.clone(),
        graph: Mutex::new(Graph::default()),
        queue: tx,
    });
    let watching = Arc::new(Mutex::new(HashSet::<String>::new()));
    let synced = Arc::new(tokio::sync::Notify::new());

    // Discovery loop: start a watch for each new resource.
    let discoverer = {
        let collector = collector.clone();
        let synced = synced.clone();
        async move {
            let mut first = true;
            loop {
                match discover(&collector.client).await {
                    Ok(resources) => {
                        let mut pending = Vec::new();
                        for served in resources {
                            if is_event(&served.resource)
                                || !["list", "watch", "delete"]
                                    .iter()
                                    .all(|v| served.verbs.iter().any(|s| s == v))
                            {
                                continue;
                            }
                            let served = Arc::new(served);
                            if let Ok(mut graph) = collector.graph.lock() {
                                graph.kinds.insert(
                                    (
                                        served.resource.kind.clone(),
                                        served.resource.api_version.clone(),
                                    ),
                                    served.clone(),
                                );
                            }
                            let key = format!(
                                "{}/{}",
                                served.resource.api_version, served.resource.plural
                            );
                            let new = watching.lock().map(|mut w| w.insert(key)).unwrap_or(false);
                            if new {
                                let (done_tx, done_rx) = tokio::sync::oneshot::channel();
                                pending.push(done_rx);
                                tokio::spawn(watch_resource(collector.clone(), served, done_tx));
                            }
                        }
                        if first {
                            // Work starts once every first list is in, so a
                            // dependent listed before its owner is not
                            // judged an orphan by a graph that lacks it.
                            let wait = futures::future::join_all(pending);
                            let _ = tokio::time::timeout(Duration::from_secs(30), wait).await;
                            synced.notify_one();
                            first = false;
                        }
                    }
                    Err(err) => tracing::debug!(%err, "garbage collector discovery failed"),
                }
                tokio::time::sleep(REDISCOVERY).await;
            }
        }
    };
    tokio::spawn(discoverer);
    synced.notified().await;

    // Worker: process work items, a few at a time, deduplicated.
    let queued = Arc::new(Mutex::new(HashSet::<Work>::new()));
    let (work_tx, work_rx) = mpsc::unbounded_channel::<Work>();
    let dedupe = {
        let queued = queued.clone();
        async move {
            while let Some(work) = rx.recv().await {
                let fresh = queued
                    .lock()
                    .map(|mut q| q.insert(work.clone()))
                    .unwrap_or(true);
                if fresh && work_tx.send(work).is_err() {
                    break;
                }
            }
        }
    };
    tokio::spawn(dedupe);
    tokio_stream_from(work_rx)
        .for_each_concurrent(8, |work| {
            let collector = collector.clone();
            let queued = queued.clone();
            async move {
                if let Ok(mut q) = queued.lock() {
                    q.remove(&work);
                }
                let result = match &work {
                    Work::AttemptToDelete(uid) => collector.attempt_to_delete(uid).await,
                    Work::DeletingOwner(uid) => collector.process_deleting_owner(uid).await,
                };
                match result {
                    Ok(true) => {}
                    Ok(false) => collector.retry(work, Duration::from_secs(1)),
                    Err(err) => {
                        tracing::debug!(%err, ?work, "garbage collection failed; retrying");
                        collector.retry(work, Duration::from_secs(2));
                    }
                }
            }
        })
        .await;
    Ok(())
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn node_of(served: &Arc<Served>, object: &LeanMetadata) -> Option<(String, Node)> {
    let meta = &object.metadata;
    Some((
        meta.uid.clone()?,
        Node {
            resource: served.clone(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone()?,
            owners: meta.owner_references.clone().unwrap_or_default(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
        },
    ))
}

async fn watch_resource(
    collector: Arc<Collector>,
    served: Arc<Served>,
    done: tokio::sync::oneshot::Sender<()>,
) {
    let api: Api<LeanMetadata> = Api::all_with(collector.client.clone(), &served.resource);
    let mut stream =
        std::pin::pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
    let mut done = Some(done);
    let mut relisted: Option<HashSet<String>> = None;
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                tracing::debug!(%err, resource = %served.resource.plural, "gc watch failed; retrying");
                continue;
            }
        };
        let mut work = Vec::new();
        if let Ok(mut graph) = collector.graph.lock() {
            match event {
                Event::Init => relisted = Some(HashSet::new()),
                Event::InitApply(object) => {
                    if let Some((uid, node)) = node_of(&served, &object) {
                        if let Some(seen) = relisted.as_mut() {
                            seen.insert(uid.clone());
                        }
                        graph.upsert(uid, node, &mut work);
                    }
                }
                Event::InitDone => {
                    // Whatever of this resource the relist did not return
                    // was deleted while we were not watching.
                    if let Some(seen) = relisted.take() {
                        let gone: Vec<String> = graph
                            .nodes
                            .iter()
                            .filter(|(uid, n)| {
                                Arc::ptr_eq(&n.resource, &served) && !seen.contains(*uid)
                            })
                            .map(|(uid, _)| uid.clone())
                            .collect();
                        for uid in gone {
                            graph.remove(&uid, &mut work);
                        }
                    }
                    if let Some(done) = done.take() {
                        let _ = done.send(());
                    }
                }
                Event::Apply(object) => {
                    if let Some((uid, node)) = node_of(&served, &object) {
                        graph.upsert(uid, node, &mut work);
                    }
                }
                Event::Delete(object) => {
                    if let Some(uid) = object.metadata.uid.clone() {
                        graph.remove(&uid, &mut work);
                    }
                }
            }
        }
        for item in work {
            let _ = collector.queue.send(item);
        }
    }
}

fn api_for(client: &kube::Client, served: &Served, namespace: Option<&str>) -> Api<DynamicObject> {
    match (served.namespaced, namespace) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &served.resource),
        _ => Api::all_with(client.clone(), &served.resource),
    }
}

fn delete_params(uid: &str, policy: PropagationPolicy) -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(policy),
        preconditions: Some(Preconditions {
            uid: Some(uid.into()),
            resource_version: None,
        }),
        ..Default::default()
    }
}

impl Collector {
    fn retry(&self, work: Work, after: Duration) {
        let queue = self.queue.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = queue.send(work);
        });
    }

    fn node(&self, uid: &str) -> Option<Node> {
        self.graph.lock().ok()?.nodes.get(uid).cloned()
    }

    /// Whether the owner a reference names still exists (same uid). Reads
    /// the API server when the graph does not know the owner.
    async fn owner_exists(
        &self,
        owner: &OwnerReference,
        namespace: Option<&str>,
    ) -> Result<bool, Error> {
        let served = {
            let Ok(graph) = self.graph.lock() else {
                return Ok(true);
            };
            if graph.nodes.contains_key(&owner.uid) {
                return Ok(true);
            }
            graph
                .kinds
                .get(&(owner.kind.clone(), owner.api_version.clone()))
                .cloned()
        };
        // An owner of a kind nobody serves cannot be checked; leave the
        // dependent alone rather than delete on a guess.
        let Some(served) = served else {
            return Ok(true);
        };
        let api = api_for(&self.client, &served, namespace);
        match api.get_metadata_opt(&owner.name).await? {
            Some(found) => Ok(found.metadata.uid.as_deref() == Some(owner.uid.as_str())),
            None => Ok(false),
        }
    }

    /// Returns Ok(true) when done, Ok(false) to retry shortly.
    async fn attempt_to_delete(&self, uid: &str) -> Result<bool, Error> {
        let Some(node) = self.node(uid) else {
            return Ok(true);
        };
        if node.owners.is_empty() || node.deleting {
            return Ok(true);
        }
        let mut dangling = Vec::new();
        for owner in &node.owners {
            if !self.owner_exists(owner, node.namespace.as_deref()).await? {
                dangling.push(owner.uid.clone());
            }
        }
        if dangling.is_empty() {
            return Ok(true);
        }
        let api = api_for(&self.client, &node.resource, node.namespace.as_deref());
        if dangling.len() == node.owners.len() {
            let policy = if node.finalizers.iter().any(|f| f == ORPHAN) {
                PropagationPolicy::Orphan
            } else if node.finalizers.iter().any(|f| f == FOREGROUND) {
                PropagationPolicy::Foreground
            } else {
                PropagationPolicy::Background
            };
            tracing::debug!(name = %node.name, kind = %node.resource.resource.kind, "deleting an object whose owners are gone");
            return match api.delete(&node.name, &delete_params(uid, policy)).await {
                Ok(_) => Ok(true),
                Err(err) if is_not_found(&err) || is_conflict(&err) => Ok(true),
                Err(err) => Err(err.into()),
            };
        }
        let remaining: Vec<&OwnerReference> = node
            .owners
            .iter()
            .filter(|o| !dangling.contains(&o.uid))
            .collect();
        self.patch_owner_refs(&api, &node.name, uid, &remaining)
            .await
    }

    async fn patch_owner_refs(
        &self,
        api: &Api<DynamicObject>,
        name: &str,
        uid: &str,
        remaining: &[&OwnerReference],
    ) -> Result<bool, Error> {
        // An empty list is dropped (null), as Go's omitempty would leave it.
        let refs = if remaining.is_empty() {
            json!(null)
        } else {
            json!(remaining)
        };
        let patch = json!({"metadata": {"ownerReferences": refs, "uid": uid}});
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if is_not_found(&err) => Ok(true),
            Err(err) => Err(err.into()),
        }
    }

    async fn process_deleting_owner(&self, uid: &str) -> Result<bool, Error> {
        let Some(node) = self.node(uid) else {
            return Ok(true);
        };
        if !node.deleting {
            return Ok(true);
        }
        let dependents: Vec<(String, Node)> = self
            .graph
            .lock()
            .map(|g| {
                g.dependents
                    .get(uid)
                    .into_iter()
                    .flatten()
                    .filter_map(|d| g.nodes.get(d).map(|n| (d.clone(), n.clone())))
                    .collect()
            })
            .unwrap_or_default();
        if node.finalizers.iter().any(|f| f == ORPHAN) {
            for (dep_uid, dep) in &dependents {
                let remaining: Vec<&OwnerReference> =
                    dep.owners.iter().filter(|o| o.uid != uid).collect();
                let api = api_for(&self.client, &dep.resource, dep.namespace.as_deref());
                self.patch_owner_refs(&api, &dep.name, dep_uid, &remaining)
                    .await?;
            }
            return self.remove_finalizer(&node, uid, ORPHAN).await;
        }
        if node.finalizers.iter().any(|f| f == FOREGROUND) {
            let mut blocking = 0;
            for (dep_uid, dep) in &dependents {
                let blocks = dep
                    .owners
                    .iter()
                    .any(|o| o.uid == uid && o.block_owner_deletion == Some(true));
                if blocks {
                    blocking += 1;
                }
                if dep.deleting {
                    continue;
                }
                let policy = if blocks {
                    PropagationPolicy::Foreground
                } else {
                    PropagationPolicy::Background
                };
                let api = api_for(&self.client, &dep.resource, dep.namespace.as_deref());
                match api.delete(&dep.name, &delete_params(dep_uid, policy)).await {
                    Ok(_) => {}
                    Err(err) if is_not_found(&err) || is_conflict(&err) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            if blocking > 0 {
                // Each dependent's disappearance queues this owner again.
                return Ok(true);
            }
            return self.remove_finalizer(&node, uid, FOREGROUND).await;
        }
        Ok(true)
    }

    async fn remove_finalizer(
        &self,
        node: &Node,
        uid: &str,
        finalizer: &str,
    ) -> Result<bool, Error> {
        let api = api_for(&self.client, &node.resource, node.namespace.as_deref());
        // Read fresh so other finalizers added meanwhile are kept.
        let Some(current) = api.get_metadata_opt(&node.name).await? else {
            return Ok(true);
        };
        if current.metadata.uid.as_deref() != Some(uid) {
            return Ok(true);
        }
        let finalizers: Vec<String> = current
            .metadata
            .finalizers
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f != finalizer)
            .collect();
        let finalizers = if finalizers.is_empty() {
            json!(null)
        } else {
            json!(finalizers)
        };
        let patch = json!({"metadata": {
            "finalizers": finalizers,
            "resourceVersion": current.metadata.resource_version,
        }});
        match api
            .patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if is_not_found(&err) => Ok(true),
            Err(err) if is_conflict(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served() -> Arc<Served> {
        Arc::new(Served {
            resource: ApiResource {
                group: "apps".into(),
                version: "v1".into(),
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                plural: "replicasets".into(),
            },
            namespaced: true,
            verbs: vec![],
        })
    }

    fn node(owners: &[&str], finalizers: &[&str], deleting: bool) -> Node {
        Node {
            resource: served(),
            namespace: Some("default".into()),
            name: "x".into(),
            owners: owners
                .iter()
                .map(|uid| OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "Deployment".into(),
                    name: "d".into(),
                    uid: uid.to_string(),
                    block_owner_deletion: Some(true),
                    controller: Some(true),
                })
                .collect(),
            finalizers: finalizers.iter().map(|f| f.to_string()).collect(),
            deleting,
        }
    }

    #[test]
    fn a_dependent_whose_owner_is_unknown_is_checked() {
        let mut graph = Graph::default();
        let mut work = Vec::new();
        graph.upsert("dep".into(), node(&["owner"], &[], false), &mut work);
        assert_eq!(work, vec![Work::AttemptToDelete("dep".into())]);
    }

    #[test]
    fn deleting_an_owner_queues_its_dependents() {
        let mut graph = Graph::default();
        let mut work = Vec::new();
        graph.upsert("owner".into(), node(&[], &[], false), &mut work);
        graph.upsert("dep".into(), node(&["owner"], &[], false), &mut work);
        assert!(work.is_empty());
        graph.remove("owner", &mut work);
        assert_eq!(work, vec![Work::AttemptToDelete("dep".into())]);
    }

    #[test]
    fn an_owner_with_the_foreground_finalizer_is_queued_and_requeued_as_dependents_go() {
        let mut graph = Graph::default();
        let mut work = Vec::new();
        graph.upsert("dep".into(), node(&["owner"], &[], false), &mut work);
        work.clear();
        graph.upsert("owner".into(), node(&[], &[FOREGROUND], true), &mut work);
        assert_eq!(work, vec![Work::DeletingOwner("owner".into())]);
        work.clear();
        graph.remove("dep", &mut work);
        assert_eq!(work, vec![Work::DeletingOwner("owner".into())]);
    }
}
