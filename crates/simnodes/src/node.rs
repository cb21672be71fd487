//! Node objects: what a simulated kubelet registers (labels, capacity,
//! conditions, addresses, nodeInfo), the periodic status heartbeat, and
//! re-registration when the Node is deleted behind our back.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use serde_json::{json, Value};

use crate::addresses::{self, Ipv4Cidr};
use crate::fleet::{self, Fleet, SimNode, MAX_IN_FLIGHT};
use crate::{status_code, Error};

pub const KUBELET_VERSION: &str = "v1.33.0";

/// The Node a simulated kubelet registers.
pub fn node_object(fleet: &Fleet, node: &SimNode, now: Timestamp) -> Value {
    let options = &fleet.options;
    let mut labels = serde_json::Map::new();
    for (key, value) in [
        ("beta.kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("kubernetes.io/hostname", node.name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("node.kubernetes.io/instance-type", "sim"),
    ] {
        labels.insert(key.into(), json!(value));
    }
    if let Some(zone) = &node.zone {
        labels.insert("topology.kubernetes.io/zone".into(), json!(zone));
    }
    for (key, value) in &options.labels {
        labels.insert(key.clone(), json!(value));
    }
    let resources = json!({
        "cpu": options.cpu,
        "memory": options.memory,
        "pods": options.pods.to_string(),
        "ephemeral-storage": "100Gi",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    });
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": conditions(now, fleet.started),
            "addresses": [
                {"type": "InternalIP", "address": node.internal_ip.to_string()},
                {"type": "Hostname", "address": node.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": addresses::fake_digest(&node.name)[..32],
                "systemUUID": system_uuid(&node.name),
                "bootID": system_uuid(&format!("{}{}", node.name, fleet.started)),
                "kernelVersion": "6.1.0-sim",
                "osImage": "rustkube simulated node",
                "containerRuntimeVersion": "sim://1.0.0",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    })
}

fn system_uuid(seed: &str) -> String {
    let hex = addresses::fake_digest(seed);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A healthy kubelet's node conditions, heartbeat `now`, healthy `since`.
pub fn conditions(now: Timestamp, since: Timestamp) -> Value {
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": Time(now),
            "lastTransitionTime": Time(since),
        })
    };
    json!([
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status"
        ),
    ])
}

/// Register every node, a bounded number at a time.
pub async fn register_all(fleet: &Arc<Fleet>) {
    futures::stream::iter(0..fleet.nodes.len())
        .for_each_concurrent(MAX_IN_FLIGHT, |index| register(fleet.clone(), index))
        .await;
}

/// Register one node, retrying until the API server takes it: create it,
/// or if it already exists (a restart) take it over and post our status;
/// then create its Lease.
pub async fn register(fleet: Arc<Fleet>, index: usize) {
    let node = &fleet.nodes[index];
    if node.registering.swap(true, Ordering::AcqRel) {
        return;
    }
    let mut delay = Duration::from_millis(200);
    loop {
        match try_register(&fleet, node).await {
            Ok(()) => break,
            Err(err) => {
                tracing::warn!(node = %node.name, %err, "registering node failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
    node.registering.store(false, Ordering::Release);
}

async fn try_register(fleet: &Fleet, node: &SimNode) -> Result<(), kube::Error> {
    let api: Api<Node> = Api::all(fleet.client.clone());
    let object = node_object(fleet, node, Timestamp::now());
    let typed: Node = serde_json::from_value(object.clone()).map_err(kube::Error::SerdeError)?;
    let created = fleet
        .request(api.create(&PostParams::default(), &typed))
        .await;
    let registered = match created {
        Ok(node) => node,
        Err(err) if status_code(&err) == Some(409) => {
            // Already registered (we restarted): reclaim labels and status.
            let labels = json!({"metadata": {"labels": object["metadata"]["labels"]}});
            fleet
                .request(api.patch(&node.name, &PatchParams::default(), &Patch::Merge(&labels)))
                .await?;
            let status = json!({"status": object["status"]});
            fleet
                .request(api.patch_status(
                    &node.name,
                    &PatchParams::default(),
                    &Patch::Merge(&status),
                ))
                .await?
        }
        Err(err) => return Err(err),
    };
    observe(node, &registered);
    crate::lease::create(fleet, node).await;
    tracing::debug!(node = %node.name, "registered");
    Ok(())
}

/// Remember what the API server says about one of our nodes.
fn observe(node: &SimNode, object: &Node) {
    node.set_uid(object.metadata.uid.clone());
    let cidr = object
        .spec
        .as_ref()
        .and_then(|spec| spec.pod_cidr.as_deref())
        .and_then(Ipv4Cidr::parse);
    if cidr.is_some() {
        node.set_pod_cidr(cidr);
    }
}

/// Post every node's status heartbeat once per status_update_interval.
pub async fn run_status_updates(fleet: Arc<Fleet>) -> Result<(), Error> {
    let interval = fleet.options.status_update_interval;
    fleet::spread_over_interval(fleet, interval, |node| &node.status_busy, post_status).await;
    Ok(())
}

async fn post_status(fleet: Arc<Fleet>, index: usize) {
    let node = &fleet.nodes[index];
    if node.registering.load(Ordering::Acquire) {
        return;
    }
    let api: Api<Node> = Api::all(fleet.client.clone());
    let patch = json!({"status": {"conditions": conditions(Timestamp::now(), fleet.started)}});
    let result = fleet
        .request(api.patch_status(&node.name, &PatchParams::default(), &Patch::Merge(&patch)))
        .await;
    match result {
        Ok(object) => observe(node, &object),
        Err(err) if status_code(&err) == Some(404) => {
            tracing::info!(node = %node.name, "node is gone; registering it again");
            tokio::spawn(register(fleet.clone(), index));
        }
        Err(err) => tracing::debug!(node = %node.name, %err, "node status update failed"),
    }
}

/// One watch over all Nodes: learn uids and podCIDRs of ours, and register
/// a node again when it is deleted, as a kubelet would.
pub async fn watch_nodes(fleet: Arc<Fleet>) -> Result<(), Error> {
    let api: Api<Node> = Api::all(fleet.client.clone());
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    loop {
        let event = match events.try_next().await {
            Ok(Some(event)) => event,
            Ok(None) => return Ok(()),
            Err(err) => {
                tracing::debug!(%err, "node watch error");
                continue;
            }
        };
        match event {
            watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
                let Some(name) = object.metadata.name.as_deref() else {
                    continue;
                };
                let Some(index) = fleet.index_of(name) else {
                    continue;
                };
                observe(&fleet.nodes[index], &object);
                // Someone (the node lifecycle controller) says we are not
                // Ready while we are alive: correct it now, as a kubelet
                // does on its next sync, instead of a full interval later.
                let ready = object
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                    .map(|c| c.status.as_str());
                let node = &fleet.nodes[index];
                if ready != Some("True") && !node.status_busy.swap(true, Ordering::AcqRel) {
                    let fleet = fleet.clone();
                    tokio::spawn(async move {
                        post_status(fleet.clone(), index).await;
                        fleet.nodes[index]
                            .status_busy
                            .store(false, Ordering::Release);
                    });
                }
            }
            watcher::Event::Delete(object) => {
                let Some(name) = object.metadata.name.as_deref() else {
                    continue;
                };
                let Some(index) = fleet.index_of(name) else {
                    continue;
                };
                let node = &fleet.nodes[index];
                if node.uid().is_some() && node.uid() != object.metadata.uid {
                    continue;
                }
                node.set_uid(None);
                node.set_pod_cidr(None);
                let fleet = fleet.clone();
                tokio::spawn(async move {
                    // A kubelet notices on its next sync, not instantly.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    tracing::info!(node = %fleet.nodes[index].name, "node was deleted; registering it again");
                    register(fleet, index).await;
                });
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;

    fn fleet(options: Options) -> Fleet {
        let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        Fleet::new(client, options)
    }

    #[tokio::test]
    async fn registered_node_is_ready_with_capacity_labels_and_zone() {
        let fleet = fleet(Options {
            count: 3,
            zones: vec!["a".into(), "b".into()],
            labels: vec![("team".into(), "blue".into())],
            ..Options::default()
        });
        let object = node_object(&fleet, &fleet.nodes[1], Timestamp::now());
        let node: Node = serde_json::from_value(object).unwrap();
        assert_eq!(node.metadata.name.as_deref(), Some("sim-node-1"));
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "sim-node-1");
        assert_eq!(labels["topology.kubernetes.io/zone"], "b");
        assert_eq!(labels["team"], "blue");
        assert_eq!(labels["node.kubernetes.io/instance-type"], "sim");
        let status = node.status.unwrap();
        assert_eq!(status.capacity.as_ref().unwrap()["pods"].0, "110");
        assert_eq!(status.allocatable.as_ref().unwrap()["memory"].0, "16Gi");
        let ready = status
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("True", Some("KubeletReady"))
        );
        assert_eq!(status.node_info.unwrap().kubelet_version, "v1.33.0");
        let addresses = status.addresses.unwrap();
        assert_eq!(addresses[0].type_, "InternalIP");
        assert_eq!(addresses[1].address, "sim-node-1");
    }
}
