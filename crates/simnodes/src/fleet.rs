//! The shared state of one process's simulated nodes: who they are, what
//! the API server last told us about them (uid, podCIDR), and the request
//! budget every API call draws from.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use k8s_openapi::jiff::Timestamp;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::addresses::{self, Ipv4Cidr};
use crate::Options;

/// Requests in flight at once across all simulated nodes. Enough to keep
/// thousands of heartbeats on schedule, few enough not to starve other
/// clients of a small API server.
pub const MAX_IN_FLIGHT: usize = 128;
/// Longest wait for one API call.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub struct Fleet {
    pub client: kube::Client,
    pub options: Options,
    pub nodes: Vec<SimNode>,
    by_name: HashMap<String, usize>,
    budget: Semaphore,
    /// When this process started: the kubelet's "ready since" time.
    pub started: Timestamp,
}

/// One simulated node.
pub struct SimNode {
    pub name: String,
    pub ordinal: u32,
    pub zone: Option<String>,
    pub internal_ip: Ipv4Addr,
    /// The Node's uid once registered (Lease owner references need it).
    pub uid: Mutex<Option<String>>,
    /// `spec.podCIDR` once node IPAM assigned one.
    pub pod_cidr: Mutex<Option<Ipv4Cidr>>,
    next_pod: AtomicU64,
    /// Set while a lease renewal is in flight, so a slow server cannot pile
    /// up renewals for the same node.
    pub lease_busy: AtomicBool,
    pub status_busy: AtomicBool,
    /// Set while the node is being (re-)registered.
    pub registering: AtomicBool,
}

impl Fleet {
    pub fn new(client: kube::Client, options: Options) -> Fleet {
        let nodes: Vec<SimNode> = (0..options.count)
            .map(|i| {
                let index = options.start_index + i;
                let ordinal = addresses::node_ordinal(&options.name_prefix, index);
                SimNode {
                    name: format!("{}{}", options.name_prefix, index),
                    ordinal,
                    zone: (!options.zones.is_empty())
                        .then(|| options.zones[i % options.zones.len()].clone()),
                    internal_ip: addresses::node_internal_ip(ordinal),
                    uid: Mutex::new(None),
                    pod_cidr: Mutex::new(None),
                    next_pod: AtomicU64::new(0),
                    lease_busy: AtomicBool::new(false),
                    status_busy: AtomicBool::new(false),
                    registering: AtomicBool::new(false),
                }
            })
            .collect();
        let by_name = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| (node.name.clone(), i))
            .collect();
        Fleet {
            client,
            options,
            nodes,
            by_name,
            budget: Semaphore::new(MAX_IN_FLIGHT),
            started: Timestamp::now(),
        }
    }

    /// The simulated node called `name`, if it is one of ours.
    pub fn node(&self, name: &str) -> Option<&SimNode> {
        self.by_name.get(name).map(|&i| &self.nodes[i])
    }

    /// The position of our node called `name` in [`Fleet::nodes`].
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Run one API call within the request budget, giving up after
    /// [`REQUEST_TIMEOUT`] so a request the server never answers cannot
    /// hold a slot forever.
    pub async fn request<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, kube::Error> {
        let _permit: Option<SemaphorePermit<'_>> = self.budget.acquire().await.ok();
        match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
            Ok(result) => result,
            Err(_) => Err(kube::Error::Service(Box::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request timed out",
            )))),
        }
    }
}

impl SimNode {
    pub fn uid(&self) -> Option<String> {
        self.uid.lock().ok().and_then(|uid| uid.clone())
    }

    pub fn set_uid(&self, uid: Option<String>) {
        if let Ok(mut slot) = self.uid.lock() {
            *slot = uid;
        }
    }

    pub fn set_pod_cidr(&self, cidr: Option<Ipv4Cidr>) {
        if let Ok(mut slot) = self.pod_cidr.lock() {
            *slot = cidr;
        }
    }

    /// A fresh pod IP on this node.
    pub fn next_pod_ip(&self) -> Ipv4Addr {
        let cidr = self
            .pod_cidr
            .lock()
            .ok()
            .and_then(|cidr| *cidr)
            .unwrap_or_else(|| addresses::fallback_pod_cidr(self.ordinal));
        cidr.pod_ip(self.next_pod.fetch_add(1, Ordering::Relaxed))
    }
}

/// Run `action` for every node once per `interval`, spread evenly over the
/// interval (a few nodes per tick) so thousands of nodes make a steady
/// trickle of requests instead of a burst. A node whose previous action is
/// still in flight (its `busy` flag is set) is skipped this round.
pub async fn spread_over_interval<F, Fut>(
    fleet: std::sync::Arc<Fleet>,
    interval: std::time::Duration,
    busy: fn(&SimNode) -> &AtomicBool,
    action: F,
) where
    F: Fn(std::sync::Arc<Fleet>, usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let count = fleet.nodes.len().max(1);
    let (tick, per_tick) = spread_schedule(count, interval);
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next = 0usize;
    loop {
        ticker.tick().await;
        for _ in 0..per_tick {
            let index = next;
            next = (next + 1) % count;
            if busy(&fleet.nodes[index]).swap(true, Ordering::AcqRel) {
                continue;
            }
            let work = action(fleet.clone(), index);
            let fleet = fleet.clone();
            tokio::spawn(async move {
                work.await;
                busy(&fleet.nodes[index]).store(false, Ordering::Release);
            });
        }
    }
}

/// Tick length and nodes handled per tick so that `count` nodes are all
/// visited once per `interval`; ticks are never shorter than 20 ms.
pub fn spread_schedule(
    count: usize,
    interval: std::time::Duration,
) -> (std::time::Duration, usize) {
    let floor = std::time::Duration::from_millis(20);
    let tick = (interval / count.max(1) as u32)
        .max(floor)
        .min(interval.max(floor));
    let per_tick =
        (count as f64 * tick.as_secs_f64() / interval.as_secs_f64().max(1e-3)).ceil() as usize;
    (tick, per_tick.clamp(1, count.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn spread_schedule_visits_every_node_once_per_interval() {
        for (count, secs) in [(1usize, 10u64), (3, 10), (5000, 10), (10_000, 1)] {
            let interval = Duration::from_secs(secs);
            let (tick, per_tick) = spread_schedule(count, interval);
            let ticks_per_interval = interval.as_secs_f64() / tick.as_secs_f64();
            let visits = ticks_per_interval * per_tick as f64;
            assert!(
                visits >= count as f64 && visits < count as f64 * 1.5 + 1.0,
                "count {count}: {visits} visits per interval"
            );
            assert!(tick >= Duration::from_millis(20));
        }
    }
}
