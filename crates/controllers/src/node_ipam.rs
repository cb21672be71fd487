//! Node IPAM (upstream's range allocator): every Node without
//! `spec.podCIDR` gets the next free /node_cidr_mask_size block of the
//! cluster CIDR as `spec.podCIDR` and `spec.podCIDRs`. A block is never
//! handed out twice while its node exists and is released when the node is
//! deleted. When the range is exhausted the node gets a `CIDRNotAvailable`
//! event and waits until a block frees up.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;
use tokio::sync::mpsc;

use crate::node_informer::Informer;
use crate::{Context, Error};

/// Hands out fixed-size IPv4 blocks of one cluster CIDR.
#[derive(Debug)]
pub struct CidrAllocator {
    base: u32,
    cluster_prefix: u8,
    node_prefix: u8,
    used: BTreeSet<u32>,
    /// Where the next search starts, so released blocks are reused last.
    next: u32,
}

impl CidrAllocator {
    /// An allocator of /`node_prefix` blocks out of `cluster_cidr`
    /// (`a.b.c.d/n`, IPv4 only).
    pub fn new(cluster_cidr: &str, node_prefix: u8) -> Result<CidrAllocator, String> {
        let (addr, prefix) = cluster_cidr
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("cluster CIDR {cluster_cidr:?} has no prefix length"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("cluster CIDR {cluster_cidr:?} is not an IPv4 CIDR"))?;
        let cluster_prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("cluster CIDR {cluster_cidr:?} has a bad prefix length"))?;
        if cluster_prefix > 32 || node_prefix > 32 || node_prefix < cluster_prefix {
            return Err(format!(
                "node CIDR mask /{node_prefix} does not fit in cluster CIDR {cluster_cidr}"
            ));
        }
        if node_prefix - cluster_prefix > 24 {
            return Err(format!(
                "cluster CIDR {cluster_cidr} holds too many /{node_prefix} blocks"
            ));
        }
        Ok(CidrAllocator {
            base: u32::from(addr) & prefix_mask(cluster_prefix),
            cluster_prefix,
            node_prefix,
            used: BTreeSet::new(),
            next: 0,
        })
    }

    /// How many node blocks the cluster CIDR holds.
    pub fn capacity(&self) -> u32 {
        1u32 << (self.node_prefix - self.cluster_prefix)
    }

    fn block(&self, index: u32) -> String {
        let shift = 32 - u32::from(self.node_prefix);
        let start = self.base + ((index as u64) << shift) as u32;
        format!("{}/{}", Ipv4Addr::from(start), self.node_prefix)
    }

    /// The block index of `cidr` if it is one of ours.
    fn index_of(&self, cidr: &str) -> Option<u32> {
        let (addr, prefix) = cidr.trim().split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        if prefix.parse::<u8>().ok()? != self.node_prefix {
            return None;
        }
        let addr = u32::from(addr);
        if addr & prefix_mask(self.cluster_prefix) != self.base {
            return None;
        }
        let index = (addr - self.base) >> (32 - u32::from(self.node_prefix));
        (index < self.capacity()).then_some(index)
    }

    /// Mark a block some node already has as taken; false if it is not a
    /// block of this range.
    pub fn occupy(&mut self, cidr: &str) -> bool {
        match self.index_of(cidr) {
            Some(index) => {
                self.used.insert(index);
                true
            }
            None => false,
        }
    }

    /// The next free block, or None when the range is exhausted.
    pub fn allocate(&mut self) -> Option<String> {
        let capacity = self.capacity();
        // Without this a full range costs a probe of every block per
        // node still waiting, on every pass.
        if self.used.len() >= capacity as usize {
            return None;
        }
        for step in 0..capacity {
            let index = (self.next + step) % capacity;
            if self.used.insert(index) {
                self.next = (index + 1) % capacity;
                return Some(self.block(index));
            }
        }
        None
    }

    /// Give a block back.
    pub fn release(&mut self, cidr: &str) {
        if let Some(index) = self.index_of(cidr) {
            self.used.remove(&index);
        }
    }
}

fn prefix_mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn pod_cidr(node: &Node) -> Option<String> {
    node.spec
        .as_ref()
        .and_then(|spec| spec.pod_cidr.clone())
        .filter(|cidr| !cidr.is_empty())
}

/// Pod CIDR writes in flight at once.
const WRITES_IN_FLIGHT: usize = 16;
/// How soon changes are acted on: node registrations come in bursts, and
/// one pass assigns a whole burst with concurrent writes.
const PASS_DELAY: Duration = Duration::from_millis(250);
/// Nodes still without a CIDR are retried this often.
const RETRY: Duration = Duration::from_secs(5);

/// The allocator and what it has promised to whom.
struct Ipam {
    allocator: CidrAllocator,
    /// Which block each node holds: what to release when it goes away.
    assigned: HashMap<String, String>,
    /// Nodes already told CIDRNotAvailable: told once, not on every retry.
    reported: HashSet<String>,
    /// When we last wrote a node's CIDR, so the pass does not write it
    /// again before the node's update reaches our cache.
    written: HashMap<String, Instant>,
}

/// Assign pod CIDRs until a fatal error; does nothing without a cluster CIDR.
pub async fn run(ctx: Context) -> Result<(), Error> {
    let Some(cluster_cidr) = ctx.options.cluster_cidr.clone() else {
        return Ok(());
    };
    let allocator =
        CidrAllocator::new(&cluster_cidr, ctx.options.node_cidr_mask_size).map_err(Error::Other)?;
    let mut ipam = Ipam {
        allocator,
        assigned: HashMap::new(),
        reported: HashSet::new(),
        written: HashMap::new(),
    };
    let api: Api<Node> = Api::all(ctx.client.clone());
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let nodes = Informer::<Node>::shared(&ctx.informers, Some(events_tx));
    let mut listing = true;
    let mut pending = false;
    let mut last_pass = Instant::now();
    let mut ticker = tokio::time::interval(PASS_DELAY);
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else {
                    return Err(Error::Other("node informer stopped".into()));
                };
                match event {
                    watcher::Event::Init => listing = true,
                    watcher::Event::InitApply(node) | watcher::Event::Apply(node) => {
                        let Some(name) = node.metadata.name.clone() else { continue };
                        match pod_cidr(&node) {
                            Some(cidr) => {
                                if ipam.assigned.get(&name) != Some(&cidr) {
                                    ipam.allocator.occupy(&cidr);
                                    ipam.assigned.insert(name.clone(), cidr);
                                }
                                ipam.written.remove(&name);
                            }
                            None => pending = true,
                        }
                    }
                    watcher::Event::InitDone => {
                        listing = false;
                        pending = true;
                        // Nodes deleted while we were not watching.
                        let present: HashSet<String> = nodes.store.state().iter()
                            .filter_map(|n| n.metadata.name.clone()).collect();
                        let gone: Vec<String> = ipam.assigned.keys()
                            .filter(|name| !present.contains(*name)).cloned().collect();
                        for name in gone {
                            ipam.forget(&name);
                        }
                    }
                    watcher::Event::Delete(node) => {
                        if let Some(name) = &node.metadata.name {
                            ipam.forget(name);
                        }
                    }
                }
            }
            _ = ticker.tick(), if !listing => {
                if pending || last_pass.elapsed() >= RETRY {
                    pending = false;
                    last_pass = Instant::now();
                    ipam.assign_missing(&ctx, &api, &nodes).await;
                }
            }
        }
    }
}

impl Ipam {
    fn forget(&mut self, name: &str) {
        self.reported.remove(name);
        self.written.remove(name);
        if let Some(cidr) = self.assigned.remove(name) {
            self.allocator.release(&cidr);
        }
    }

    /// Give every node without a podCIDR a block (the one it was already
    /// promised, if any), writing them concurrently.
    async fn assign_missing(&mut self, ctx: &Context, api: &Api<Node>, nodes: &Informer<Node>) {
        let mut plan: Vec<(Arc<Node>, String)> = Vec::new();
        for node in nodes.store.state() {
            let Some(name) = node.metadata.name.clone() else {
                continue;
            };
            if pod_cidr(&node).is_some()
                || self
                    .written
                    .get(&name)
                    .is_some_and(|at| at.elapsed() < RETRY * 2)
            {
                continue;
            }
            let cidr = match self.assigned.get(&name) {
                Some(cidr) => cidr.clone(),
                None => match self.allocator.allocate() {
                    Some(cidr) => {
                        self.assigned.insert(name.clone(), cidr.clone());
                        cidr
                    }
                    None => {
                        if self.reported.insert(name.clone()) {
                            ctx.recorder
                                .record(
                                    &clientkit::events::reference(node.as_ref()),
                                    clientkit::events::NORMAL,
                                    "CIDRNotAvailable",
                                    &format!("Node {name} status is now: CIDRNotAvailable"),
                                )
                                .await;
                        }
                        continue;
                    }
                },
            };
            plan.push((node, cidr));
        }
        let results: Vec<(Arc<Node>, String, Result<(), kube::Error>)> =
            futures::stream::iter(plan)
                .map(|(node, cidr)| async move {
                    let name = node.metadata.name.clone().unwrap_or_default();
                    let patch = json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
                    let result = api
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map(|_| ());
                    (node, cidr, result)
                })
                .buffer_unordered(WRITES_IN_FLIGHT)
                .collect()
                .await;
        for (node, cidr, result) in results {
            let name = node.metadata.name.clone().unwrap_or_default();
            match result {
                Ok(()) => {
                    tracing::info!(node = %name, %cidr, "assigned pod CIDR");
                    self.written.insert(name, Instant::now());
                }
                Err(kube::Error::Api(status)) if status.code == 404 => self.forget(&name),
                Err(err) => {
                    // Kept as promised to this node; a later pass retries.
                    tracing::warn!(node = %name, %err, "assigning pod CIDR failed");
                    ctx.recorder
                        .record(
                            &clientkit::events::reference(node.as_ref()),
                            clientkit::events::WARNING,
                            "CIDRAssignmentFailed",
                            &format!("Node {name} status is now: CIDRAssignmentFailed"),
                        )
                        .await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_handed_out_in_order_and_never_twice() {
        let mut allocator = CidrAllocator::new("10.42.0.0/16", 24).unwrap();
        assert_eq!(allocator.capacity(), 256);
        assert_eq!(allocator.allocate().as_deref(), Some("10.42.0.0/24"));
        assert_eq!(allocator.allocate().as_deref(), Some("10.42.1.0/24"));
        let mut seen = BTreeSet::new();
        while let Some(cidr) = allocator.allocate() {
            assert!(seen.insert(cidr));
        }
        assert_eq!(seen.len(), 254);
    }

    #[test]
    fn existing_assignments_are_skipped() {
        let mut allocator = CidrAllocator::new("10.42.0.0/16", 24).unwrap();
        assert!(allocator.occupy("10.42.0.0/24"));
        assert!(allocator.occupy("10.42.1.0/24"));
        assert!(
            !allocator.occupy("10.43.0.0/24"),
            "outside the cluster CIDR"
        );
        assert!(!allocator.occupy("10.42.2.0/25"), "wrong block size");
        assert_eq!(allocator.allocate().as_deref(), Some("10.42.2.0/24"));
    }

    #[test]
    fn exhausted_range_allocates_nothing_until_a_block_is_released() {
        let mut allocator = CidrAllocator::new("10.42.0.0/23", 24).unwrap();
        assert_eq!(allocator.allocate().as_deref(), Some("10.42.0.0/24"));
        assert_eq!(allocator.allocate().as_deref(), Some("10.42.1.0/24"));
        assert_eq!(allocator.allocate(), None);
        allocator.release("10.42.0.0/24");
        assert_eq!(allocator.allocate().as_deref(), Some("10.42.0.0/24"));
    }

    #[test]
    fn bad_cluster_cidrs_are_rejected() {
        assert!(CidrAllocator::new("10.42.0.0", 24).is_err());
        assert!(CidrAllocator::new("fd00::/48", 64).is_err());
        assert!(CidrAllocator::new("10.42.0.0/24", 16).is_err());
        assert!(CidrAllocator::new("10.42.0.5/16", 24).is_ok());
    }
}
