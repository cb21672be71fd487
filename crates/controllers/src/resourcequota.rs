//! The resource quota controller: every ResourceQuota's status. It sets
//! `status.hard` to `spec.hard` and recomputes `status.used` from the
//! objects in the quota's namespace (what each charges comes from
//! `apimachinery::quota`, as in the admission plugin) when a quota is new or
//! its `spec.hard` changed, when a counted object appears, goes, or changes
//! what it charges (a pod turning terminal, a Service changing type), and
//! for every quota every five minutes (upstream's resync period).
//!
//! Counted objects are watched only for the resources some quota names; a
//! watch remembers a fingerprint of each object's charge rather than the
//! object. Writes go through `resourcequotas/<name>/status` with the
//! resourceVersion the usage was computed against, so a charge the
//! admission plugin made meanwhile is never overwritten (the sync is
//! retried instead).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use apimachinery::quota::{self, ResourceList};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::gc::{discover, Served};
use crate::node_informer::Informer;
use crate::workload_util::is_not_found;
use crate::{Context, Error};

/// Upstream's `--resource-quota-sync-period`.
const RESYNC: Duration = Duration::from_secs(300);
const BATCH: Duration = Duration::from_millis(200);
/// How often discovery may be re-read for a resource a quota names.
const REDISCOVERY: Duration = Duration::from_secs(30);

/// A (group, plural) pair a quota can count.
type GroupResource = (String, String);

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Maintain ResourceQuota status until a fatal error.
pub async fn run(ctx: Context) -> Result<(), Error> {
    let (quota_events_tx, mut quota_events) = mpsc::unbounded_channel();
    let quotas: Informer<ResourceQuota> = Informer::spawn(
        Api::all(ctx.client.clone()),
        watcher::Config::default(),
        Some(quota_events_tx),
    );
    quotas.ready().await?;
    let (changed_tx, mut changed_namespaces) = mpsc::unbounded_channel::<String>();
    let mut resources = Resources::default();
    let mut monitors: HashMap<GroupResource, tokio::task::JoinHandle<()>> = HashMap::new();
    // Quotas to sync ("namespace/name") and namespaces whose quotas to sync.
    let mut dirty_quotas: HashSet<(String, String)> = HashSet::new();
    let mut dirty_namespaces: HashSet<String> = HashSet::new();
    let mut seen_hard: HashMap<(String, String), Value> = HashMap::new();
    let mut everything = true;
    let mut batch = tokio::time::interval(BATCH);
    let mut resync = tokio::time::interval(RESYNC);
    let result = loop {
        tokio::select! {
            event = quota_events.recv() => {
                let Some(event) = event else {
                    break Err(Error::Other("resource quota informer stopped".into()));
                };
                match event {
                    Event::Apply(q) | Event::InitApply(q) => {
                        let key = quota_key(&q);
                        let hard = json!(q.spec.as_ref().and_then(|s| s.hard.clone()));
                        // Status writes (ours or admission's) need no sync;
                        // a new quota or a changed spec.hard does.
                        if seen_hard.get(&key) != Some(&hard) || needs_status(&q) {
                            dirty_quotas.insert(key.clone());
                        }
                        seen_hard.insert(key, hard);
                    }
                    Event::Delete(q) => {
                        seen_hard.remove(&quota_key(&q));
                    }
                    Event::Init | Event::InitDone => {}
                }
            }
            namespace = changed_namespaces.recv() => {
                dirty_namespaces.extend(namespace);
            }
            _ = resync.tick() => everything = true,
            _ = batch.tick() => {
                if !everything && dirty_quotas.is_empty() && dirty_namespaces.is_empty() {
                    continue;
                }
                let all = std::mem::take(&mut everything);
                let namespaces = std::mem::take(&mut dirty_namespaces);
                let named = std::mem::take(&mut dirty_quotas);
                let current = quotas.store.state();
                // Watch what the quotas count, so that frees are noticed.
                let mut wanted: HashSet<GroupResource> = HashSet::new();
                for q in &current {
                    wanted.extend(quota::resources_of_hard(&spec_hard(q)).into_keys());
                }
                for gr in wanted {
                    if monitors.contains_key(&gr) {
                        continue;
                    }
                    if let Some(served) = resources.find(&ctx.client, &gr).await {
                        let task = tokio::spawn(monitor(ctx.client.clone(), served, changed_tx.clone()));
                        monitors.insert(gr, task);
                    }
                }
                for q in current {
                    let key = quota_key(&q);
                    if all || named.contains(&key) || namespaces.contains(&key.0) {
                        match sync(&ctx, &mut resources, &q).await {
                            Ok(()) => {}
                            Err(err) => {
                                tracing::debug!(namespace = %key.0, quota = %key.1, %err, "quota sync failed; retrying");
                                dirty_quotas.insert(key);
                            }
                        }
                    }
                }
            }
        }
    };
    for task in monitors.values() {
        task.abort();
    }
    result
}

fn quota_key(q: &ResourceQuota) -> (String, String) {
    (
        q.metadata.namespace.clone().unwrap_or_default(),
        q.metadata.name.clone().unwrap_or_default(),
    )
}

fn spec_hard(q: &ResourceQuota) -> ResourceList {
    let hard = q
        .spec
        .as_ref()
        .and_then(|s| s.hard.as_ref())
        .map(|h| json!(h));
    quota::parse_list(hard.as_ref())
}

/// A quota whose status does not yet reflect its spec, or lacks a usage.
fn needs_status(q: &ResourceQuota) -> bool {
    let status = q.status.as_ref();
    let status_hard = status.and_then(|s| s.hard.as_ref()).map(|h| json!(h));
    let used = status.and_then(|s| s.used.as_ref());
    let spec = spec_hard(q);
    quota::parse_list(status_hard.as_ref()) != spec
        || spec
            .keys()
            .any(|k| used.is_none_or(|u| !u.contains_key(k.as_str())))
}

/// Discovery, re-read (at most every 30 s) when a quota names a resource
/// it does not know yet (a CRD installed later).
#[derive(Default)]
struct Resources {
    served: Vec<Served>,
    read_at: Option<Instant>,
}

impl Resources {
    async fn find(&mut self, client: &kube::Client, gr: &GroupResource) -> Option<Served> {
        let lookup = |served: &[Served]| {
            served
                .iter()
                .find(|s| s.namespaced && s.resource.group == gr.0 && s.resource.plural == gr.1)
                .cloned()
        };
        if let Some(found) = lookup(&self.served) {
            return Some(found);
        }
        if self.read_at.is_some_and(|t| t.elapsed() < REDISCOVERY) {
            return None;
        }
        self.read_at = Some(Instant::now());
        match discover(client).await {
            Ok(served) => self.served = served,
            Err(err) => tracing::debug!(%err, "discovery for quota failed"),
        }
        lookup(&self.served)
    }
}

/// Recompute one quota's status and write it if it changed.
async fn sync(ctx: &Context, resources: &mut Resources, q: &ResourceQuota) -> Result<(), Error> {
    let (namespace, name) = quota_key(q);
    let quota_json = serde_json::to_value(q).map_err(|e| Error::Other(e.to_string()))?;
    let hard = spec_hard(q);
    let previous = quota::parse_list(quota_json.pointer("/status/used"));
    // Usage this controller cannot measure (an unknown resource) is kept.
    let mut used = quota::mask(&previous, hard.keys().map(String::as_str));
    let now = now_unix();
    for (gr, names) in quota::resources_of_hard(&hard) {
        let Some(served) = resources.find(&ctx.client, &gr).await else {
            continue;
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &namespace, &served.resource);
        let list = api.list(&ListParams::default()).await?;
        let objects: Vec<Value> = list
            .items
            .iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect();
        let names = quota::matching_resources(&gr.0, &gr.1, names.iter().map(String::as_str));
        let measured = quota::usage_stats(&gr.0, &gr.1, &quota_json, &names, &objects, now);
        used.extend(measured);
    }
    let status = json!({
        "hard": quota::list_to_json(&hard),
        "used": quota::list_to_json(&used),
    });
    let current = json!({
        "hard": quota::list_to_json(&quota::parse_list(quota_json.pointer("/status/hard"))),
        "used": quota::list_to_json(&previous),
    });
    if status == current && quota_json.pointer("/status/hard").is_some() {
        return Ok(());
    }
    let mut body = quota_json;
    body["status"] = status;
    let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &namespace);
    let updated: ResourceQuota =
        serde_json::from_value(body).map_err(|e| Error::Other(e.to_string()))?;
    match api
        .replace_status(&name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        // On a conflict (admission charged the quota meanwhile) the
        // informer brings the new version and the sync is retried.
        Err(err) => Err(err.into()),
    }
}

/// A fingerprint of what an object charges and which scopes it falls in.
fn charge_fingerprint(served: &Served, obj: &Value) -> u64 {
    let (group, plural) = (&served.resource.group, &served.resource.plural);
    let mut hasher = DefaultHasher::new();
    quota::pretty_print(&quota::usage(group, plural, obj, now_unix())).hash(&mut hasher);
    if group.is_empty() && plural == "pods" {
        quota::is_terminating(obj).hash(&mut hasher);
        quota::is_best_effort(obj).hash(&mut hasher);
        obj.pointer("/spec/priorityClassName")
            .map(Value::to_string)
            .hash(&mut hasher);
    }
    hasher.finish()
}

/// Watch one counted resource; report the namespace of every object that
/// appears, goes, or changes what it charges.
async fn monitor(client: kube::Client, served: Served, changed: mpsc::UnboundedSender<String>) {
    let api: Api<DynamicObject> = Api::all_with(client, &served.resource);
    let mut stream =
        std::pin::pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
    // uid -> (namespace, fingerprint)
    let mut known: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut relisted: Option<HashSet<String>> = None;
    let mut listed_once = false;
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                tracing::debug!(%err, resource = %served.resource.plural, "quota monitor watch failed; retrying");
                continue;
            }
        };
        let report = |namespace: &str| {
            let _ = changed.send(namespace.to_string());
        };
        let mut observe = |obj: &DynamicObject, notify: bool| {
            let (Some(uid), Some(namespace)) = (&obj.metadata.uid, &obj.metadata.namespace) else {
                return None;
            };
            let value = serde_json::to_value(obj).ok()?;
            let print = charge_fingerprint(&served, &value);
            let before = known.insert(uid.clone(), (namespace.clone(), print));
            if notify && before.is_none_or(|(_, p)| p != print) {
                report(namespace);
            }
            Some(uid.clone())
        };
        match event {
            Event::Init => relisted = Some(HashSet::new()),
            Event::InitApply(obj) => {
                // The first list only learns; later relists report changes.
                if let Some(uid) = observe(&obj, listed_once) {
                    if let Some(seen) = relisted.as_mut() {
                        seen.insert(uid);
                    }
                }
            }
            Event::InitDone => {
                if let Some(seen) = relisted.take() {
                    let gone: Vec<String> = known
                        .keys()
                        .filter(|uid| !seen.contains(*uid))
                        .cloned()
                        .collect();
                    for uid in gone {
                        if let Some((namespace, _)) = known.remove(&uid) {
                            let _ = changed.send(namespace);
                        }
                    }
                }
                listed_once = true;
            }
            Event::Apply(obj) => {
                observe(&obj, true);
            }
            Event::Delete(obj) => {
                if let Some(uid) = &obj.metadata.uid {
                    known.remove(uid);
                }
                if let Some(namespace) = &obj.metadata.namespace {
                    let _ = changed.send(namespace.clone());
                }
            }
        }
    }
}
