//! Node leases: one `coordination.k8s.io/v1` Lease per node in
//! `kube-node-lease`, named after the node, held by it, renewed every
//! lease_renew_interval. The node lifecycle controller reads renewTime as
//! the node's heartbeat.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use crate::fleet::{self, Fleet, SimNode};
use crate::{status_code, Error};

pub const NAMESPACE: &str = "kube-node-lease";
/// What kubelets announce: the lease counts as lost after 40 s.
pub const LEASE_DURATION_SECONDS: i32 = 40;

/// The Lease of `node` renewed at `now`.
pub fn lease_object(node: &SimNode, now: Timestamp) -> Value {
    let mut metadata = json!({"name": node.name, "namespace": NAMESPACE});
    if let Some(uid) = node.uid() {
        // As the kubelet does: the lease goes away with its Node.
        metadata["ownerReferences"] = json!([{
            "apiVersion": "v1",
            "kind": "Node",
            "name": node.name,
            "uid": uid,
        }]);
    }
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {
            "holderIdentity": node.name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": MicroTime(now),
        },
    })
}

/// Renew every node's lease once per lease_renew_interval, spread evenly.
pub async fn run(fleet: Arc<Fleet>) -> Result<(), Error> {
    let interval = fleet.options.lease_renew_interval;
    fleet::spread_over_interval(fleet, interval, |node| &node.lease_busy, renew).await;
    Ok(())
}

async fn renew(fleet: Arc<Fleet>, index: usize) {
    let node = &fleet.nodes[index];
    if node.registering.load(Ordering::Acquire) {
        return;
    }
    let api: Api<Lease> = Api::namespaced(fleet.client.clone(), NAMESPACE);
    let object = lease_object(node, Timestamp::now());
    let patch = json!({"spec": object["spec"]});
    let result = fleet
        .request(api.patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch)))
        .await;
    match result {
        Ok(_) => {}
        Err(err) if status_code(&err) == Some(404) => create(&fleet, node).await,
        Err(err) => tracing::debug!(node = %node.name, %err, "renewing the node lease failed"),
    }
}

/// Create `node`'s Lease, as a kubelet does as soon as it starts, rather
/// than at the node's first turn in the renewal round. One that already
/// exists (we restarted) is the renewals' to take over.
pub async fn create(fleet: &Fleet, node: &SimNode) {
    let api: Api<Lease> = Api::namespaced(fleet.client.clone(), NAMESPACE);
    let Ok(lease) = serde_json::from_value::<Lease>(lease_object(node, Timestamp::now())) else {
        return;
    };
    match fleet
        .request(api.create(&PostParams::default(), &lease))
        .await
    {
        Ok(_) => {}
        Err(err) if status_code(&err) == Some(409) => {}
        Err(err) => tracing::debug!(node = %node.name, %err, "creating the node lease failed"),
    }
}
