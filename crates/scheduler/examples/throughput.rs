//! Scheduling decisions per second over the in-memory cache, without an
//! API server: `cargo run --release -p scheduler --example throughput --
//! [nodes] [pods]`. Each decision is followed by an assume, as in the
//! real loop, so later pods see earlier ones.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{Node, Pod};
use scheduler::cache::Cache;
use scheduler::config::Profile;
use scheduler::framework::{schedule, CycleState, Rng};
use scheduler::podinfo::PodInfo;
use serde_json::json;

fn main() {
    let mut args = std::env::args().skip(1);
    let nodes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let pods: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20000);
    let mut cache = Cache::new();
    let zones = ["a", "b", "c"];
    for i in 0..nodes {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": format!("node-{i}"), "labels": {
                "kubernetes.io/hostname": format!("node-{i}"),
                "topology.kubernetes.io/zone": zones[i % 3]}},
            "status": {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"}}
        }))
        .expect("node");
        cache.add_or_update_node(node);
    }
    let profile = Profile::default_named("default-scheduler");
    let mut rng = Rng::new(42);
    let mut next_start = 0;
    let infos: Vec<Arc<PodInfo>> = (0..pods)
        .map(|i| {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": format!("pod-{i}"), "namespace": "default",
                             "labels": {"app": "bench"}},
                "spec": {"containers": [{"name": "c", "image": "pause",
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}
            }))
            .expect("pod");
            Arc::new(PodInfo::new(Arc::new(pod), 0))
        })
        .collect();
    let start = Instant::now();
    let mut placed = 0;
    for info in infos {
        let state = CycleState::new(&profile, &cache, info.clone(), || None);
        if let Ok(p) = schedule(&profile, None, &cache, &state, &mut next_start, &mut rng) {
            cache.assume(info, &p.node);
            placed += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{nodes} nodes, {placed}/{pods} pods placed in {secs:.2}s: {:.0} decisions/s",
        pods as f64 / secs
    );
}
