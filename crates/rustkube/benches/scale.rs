//! Scheduling and controller throughput end to end on simulated nodes
//! (issue 5). Prints figures; asserts nothing (see docs/BENCHMARKS.md).
//!
//! Run: `cargo bench -p rustkube --bench scale`
//!
//! For each node count (`RUSTKUBE_SCALE_NODES`, default `1000,5000`) a fresh
//! `rustkube server` (embedded SQLite, controller manager and scheduler
//! in-process, as shipped) and a `rustkube sim-nodes --count N` process
//! start on loopback. Once every node is Ready the benchmark:
//!
//! 1. creates `RUSTKUBE_SCALE_PODS` (default 10,000) small pods as fast as
//!    the API accepts them (64 concurrent creates) while one watch on their
//!    namespace notes when each pod is bound (`spec.nodeName` set) and when
//!    it runs (`status.phase=Running`). Reported: create rate, pods bound
//!    per second (first create sent to last pod bound), create-to-bound
//!    and create-to-running latency p50/p99;
//! 2. on the first node count only, creates one Deployment of
//!    `RUSTKUBE_SCALE_REPLICAS` (default 1,000) replicas and reports the time
//!    from its create to every replica Running.
//!
//! Also printed: the CPU share and peak RSS of the server and of the
//! sim-nodes process. With `RUSTKUBE_SCALE_SPLIT=1` the controller manager
//! and scheduler run as their own processes (`rustkube controller-manager`,
//! `rustkube scheduler`) instead of inside the server, so each one's cost
//! shows separately. Every process is stopped by PID.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    cpu_seconds, percentile, proc_status_kib, show, sort, tls_config, Client, Result, Server,
};
use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use serde_json::Value;

const CONCURRENCY: usize = 64;
const CONNS: usize = 4;
const NS: &str = "scale";

/// When each pod was created, bound and seen Running, relative to the
/// benchmark's clock.
#[derive(Default)]
struct PodTimes {
    created: HashMap<String, Instant>,
    bound: HashMap<String, Instant>,
    running: HashMap<String, Instant>,
}

/// What the benchmark's pod watch reads of an event.
#[derive(serde::Deserialize)]
struct WatchedPod {
    object: PodFacts,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct PodFacts {
    metadata: PodMeta,
    spec: PodSpecFacts,
    status: PodStatusFacts,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct PodMeta {
    name: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PodSpecFacts {
    node_name: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct PodStatusFacts {
    phase: Option<String>,
}

/// A `rustkube` subcommand run as its own process against the server.
struct Component {
    child: Option<Child>,
}

impl Component {
    fn start(server: &Server, dir: &Path, subcommand: &str, args: &[String]) -> Result<Component> {
        let log = std::fs::File::create(dir.join(format!("{subcommand}.log")))
            .map_err(|e| e.to_string())?;
        let child = Command::new(env!("CARGO_BIN_EXE_rustkube"))
            .arg(subcommand)
            .arg(format!("--kubeconfig={}", server.kubeconfig.display()))
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn {subcommand}: {e}"))?;
        Ok(Component { child: Some(child) })
    }

    fn sim_nodes(server: &Server, dir: &Path, count: usize) -> Result<Component> {
        let args = [
            format!("--count={count}"),
            // Upstream kubelets renew their Lease every 10 s and report an
            // unchanged status every 5 minutes.
            "--lease-renew-interval=10".into(),
            "--status-update-interval=300".into(),
        ];
        Component::start(server, dir, "sim-nodes", &args)
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// CPU seconds so far and peak RSS in MiB.
    fn usage(&self) -> (f64, f64) {
        (
            cpu_seconds(self.pid()),
            proc_status_kib(self.pid(), "VmHWM:") as f64 / 1024.0,
        )
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            common::terminate(child);
        }
    }
}

fn pod_body(i: usize) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": format!("pod-{i:06}"), "labels": {"app": "scale"}},
            "spec": {"containers": [{
                "name": "main",
                "image": "busybox",
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}
            }]}
        })
        .to_string(),
    )
}

async fn wait_ready(client: &Client) -> Result<()> {
    let until = Instant::now() + Duration::from_secs(60);
    while client.call(Method::GET, "/readyz", None).await.map(|r| r.0) != Ok(StatusCode::OK) {
        if Instant::now() > until {
            return Err("/readyz not 200 in 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Nodes whose Ready condition is True.
async fn ready_nodes(client: &Client) -> Result<usize> {
    let (status, body) = client.call(Method::GET, "/api/v1/nodes", None).await?;
    if status != StatusCode::OK {
        return Err(format!("list nodes: {status}: {}", show(&body)));
    }
    let list: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    Ok(items
        .iter()
        .filter(|n| {
            n.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
        .count())
}

/// One watch on the namespace's pods from `rv`, noting first binding and
/// first Running per pod until cancelled.
async fn watch_pods(client: Arc<Client>, rv: String, times: Arc<Mutex<PodTimes>>) -> Result<()> {
    let path =
        format!("/api/v1/namespaces/{NS}/pods?watch=true&resourceVersion={rv}&timeoutSeconds=3600");
    let resp = client.send(Method::GET, &path, None).await?;
    if resp.status() != StatusCode::OK {
        return Err(format!("watch: {}", resp.status()));
    }
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("watch body: {e}"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            // Only the three fields timed are decoded: the benchmark's own
            // client should cost the shared cores as little as it can.
            let Ok(event) = serde_json::from_slice::<WatchedPod>(&line) else {
                continue;
            };
            let now = Instant::now();
            let pod = event.object;
            let Some(name) = pod.metadata.name else {
                continue;
            };
            let mut t = times.lock().unwrap();
            if pod.spec.node_name.is_some() {
                t.bound.entry(name.clone()).or_insert(now);
            }
            if pod.status.phase.as_deref() == Some("Running") {
                t.running.entry(name).or_insert(now);
            }
        }
    }
    Ok(())
}

async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let body = format!(r#"{{"metadata":{{"name":"{name}"}}}}"#);
    let (status, resp) = client
        .call(Method::POST, "/api/v1/namespaces", Some(Bytes::from(body)))
        .await?;
    if status != StatusCode::CREATED {
        return Err(format!("create namespace: {status}: {}", show(&resp)));
    }
    // The namespace's default ServiceAccount must exist before pods.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let path = format!("/api/v1/namespaces/{name}/serviceaccounts/default");
        if client.call(Method::GET, &path, None).await?.0 == StatusCode::OK {
            return Ok(());
        }
        if Instant::now() > until {
            return Err("no default ServiceAccount in 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Phase 1: `n` pods created with 64 concurrent tasks; scheduling figures.
async fn pods_phase(client: &Arc<Client>, n: usize) -> Result<()> {
    create_namespace(client, NS).await?;
    let (_, list) = client
        .call(Method::GET, &format!("/api/v1/namespaces/{NS}/pods"), None)
        .await?;
    let list: Value = serde_json::from_slice(&list).map_err(|e| e.to_string())?;
    let rv = list
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("0")
        .to_string();
    let times = Arc::new(Mutex::new(PodTimes::default()));
    let watcher = tokio::spawn(watch_pods(client.clone(), rv, times.clone()));

    let begin = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, next, times) = (client.clone(), next.clone(), times.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, String>(());
                }
                let sent = Instant::now();
                times
                    .lock()
                    .unwrap()
                    .created
                    .insert(format!("pod-{i:06}"), sent);
                let path = format!("/api/v1/namespaces/{NS}/pods");
                let (status, resp) = client.call(Method::POST, &path, Some(pod_body(i))).await?;
                if status != StatusCode::CREATED {
                    next.store(n, Ordering::Relaxed);
                    return Err(format!("create pod {i}: {status}: {}", show(&resp)));
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let created_in = begin.elapsed();
    let bound_by_then = times.lock().unwrap().bound.len();
    println!(
        "  created {n} pods in {:.1} s = {:.0} creates/s",
        created_in.as_secs_f64(),
        n as f64 / created_in.as_secs_f64()
    );

    let until = Instant::now() + Duration::from_secs(900);
    let mut last_report = Instant::now();
    loop {
        let (bound, running) = {
            let t = times.lock().unwrap();
            (t.bound.len(), t.running.len())
        };
        if running >= n {
            break;
        }
        if watcher.is_finished() {
            return Err("the pod watch ended early".into());
        }
        if Instant::now() > until {
            return Err(format!(
                "after 900 s only {bound} bound, {running} running of {n}"
            ));
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            println!(
                "    {:.0} s: {bound} bound, {running} running",
                begin.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watcher.abort();

    let t = times.lock().unwrap();
    let latencies = |done: &HashMap<String, Instant>| {
        let mut v: Vec<f64> = done
            .iter()
            .filter_map(|(name, at)| {
                t.created
                    .get(name)
                    .map(|c| ms(at.saturating_duration_since(*c)))
            })
            .collect();
        sort(&mut v);
        v
    };
    let last = |done: &HashMap<String, Instant>| done.values().max().copied().unwrap_or(begin);
    let bound_in = last(&t.bound).duration_since(begin);
    let running_in = last(&t.running).duration_since(begin);
    let to_bound = latencies(&t.bound);
    let to_running = latencies(&t.running);
    println!(
        "  all bound {:.1} s after the first create: {:.0} pods bound/s",
        bound_in.as_secs_f64(),
        n as f64 / bound_in.as_secs_f64()
    );
    // Where the scheduler lags: binding shares the machine with the
    // creates until they end, then has it to itself.
    let after = bound_in.saturating_sub(created_in).as_secs_f64();
    println!(
        "    {bound_by_then} bound while creating; the other {} in {after:.1} s after: {:.0} pods bound/s",
        n - bound_by_then,
        (n - bound_by_then) as f64 / after.max(0.001)
    );
    println!(
        "  create-to-bound latency p50 {:.0} ms, p99 {:.0} ms",
        percentile(&to_bound, 0.5),
        percentile(&to_bound, 0.99)
    );
    println!(
        "  all Running {:.1} s after the first create; create-to-running p50 {:.0} ms, p99 {:.0} ms",
        running_in.as_secs_f64(),
        percentile(&to_running, 0.5),
        percentile(&to_running, 0.99)
    );
    Ok(())
}

/// Phase 2: a Deployment of `replicas` from create to every pod Running.
async fn deployment_phase(client: &Arc<Client>, replicas: usize) -> Result<()> {
    let ns = "scale-deploy";
    create_namespace(client, ns).await?;
    let body = serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "big"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "big"}},
            "template": {
                "metadata": {"labels": {"app": "big"}},
                "spec": {"containers": [{
                    "name": "main",
                    "image": "busybox",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}
                }]}
            }
        }
    });
    let begin = Instant::now();
    let path = format!("/apis/apps/v1/namespaces/{ns}/deployments");
    let (status, resp) = client
        .call(Method::POST, &path, Some(Bytes::from(body.to_string())))
        .await?;
    if status != StatusCode::CREATED {
        return Err(format!("create deployment: {status}: {}", show(&resp)));
    }
    let until = Instant::now() + Duration::from_secs(900);
    let mut last_report = Instant::now();
    loop {
        let (_, resp) = client
            .call(Method::GET, &format!("{path}/big"), None)
            .await?;
        let d: Value = serde_json::from_slice(&resp).map_err(|e| e.to_string())?;
        let available = d
            .pointer("/status/availableReplicas")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if available as usize >= replicas {
            break;
        }
        if Instant::now() > until {
            return Err(format!(
                "after 900 s only {available} of {replicas} available"
            ));
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            println!(
                "    {:.0} s: {available} available",
                begin.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // availableReplicas counts ready pods; confirm every pod is Running.
    let (_, list) = client
        .call(
            Method::GET,
            &format!("/api/v1/namespaces/{ns}/pods?labelSelector=app%3Dbig"),
            None,
        )
        .await?;
    let list: Value = serde_json::from_slice(&list).map_err(|e| e.to_string())?;
    let running = list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|p| p["status"]["phase"] == "Running")
                .count()
        })
        .unwrap_or(0);
    println!(
        "  deployment of {replicas}: all available {:.1} s after its create ({running} pods Running)",
        begin.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn run(
    dir: &Path,
    nodes: usize,
    pods: usize,
    replicas: Option<usize>,
    split: bool,
) -> Result<()> {
    println!("\n== {nodes} simulated nodes ==");
    // The default 10.42.0.0/16 holds 256 nodes' /24 blocks; like any
    // cluster of thousands of nodes, this one gets a range that fits them.
    let mut args = vec!["--cluster-cidr=10.64.0.0/10".to_string()];
    if split {
        args.push("--disable-controller-manager".into());
        args.push("--disable-scheduler".into());
    }
    let mut server = Server::start(dir, &args)?;
    let client = Arc::new(Client::connect(tls_config(&server)?, server.port, CONNS).await?);
    wait_ready(&client).await?;
    // The separate components, when asked for: (name, process).
    let mut components = Vec::new();
    if split {
        components.push((
            "controller-manager",
            Component::start(&server, dir, "controller-manager", &[])?,
        ));
        components.push((
            "scheduler",
            Component::start(&server, dir, "scheduler", &[])?,
        ));
    }
    let sim = Component::sim_nodes(&server, dir, nodes)?;
    let begin = Instant::now();
    let until = begin + Duration::from_secs(600);
    loop {
        let ready = ready_nodes(&client).await.unwrap_or(0);
        if ready >= nodes {
            break;
        }
        if Instant::now() > until {
            return Err(format!("only {ready} of {nodes} nodes Ready after 600 s"));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!(
        "  {nodes} nodes Ready in {:.1} s",
        begin.elapsed().as_secs_f64()
    );
    components.push(("sim-nodes", sim));
    let server_cpu = cpu_seconds(server.pid());
    let cpu_before: Vec<f64> = components.iter().map(|(_, c)| c.usage().0).collect();
    let phases = Instant::now();
    let mut result = pods_phase(&client, pods).await;
    if let (Ok(()), Some(replicas)) = (&result, replicas) {
        result = deployment_phase(&client, replicas).await;
    }
    let wall = phases.elapsed().as_secs_f64();
    let mut line = format!(
        "  during the phases ({wall:.0} s): server {:.0}% CPU, peak RSS {:.0} MiB",
        (cpu_seconds(server.pid()) - server_cpu) / wall * 100.0,
        proc_status_kib(server.pid(), "VmHWM:") as f64 / 1024.0,
    );
    for ((name, component), before) in components.iter().zip(cpu_before) {
        let (cpu, rss) = component.usage();
        line += &format!(
            "; {name} {:.0}% CPU, peak RSS {rss:.0} MiB",
            (cpu - before) / wall * 100.0
        );
    }
    println!("{line}");
    drop(components);
    server.stop();
    result
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let nodes: Vec<usize> = std::env::var("RUSTKUBE_SCALE_NODES")
        .unwrap_or_else(|_| "1000,5000".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let pods = env_or("RUSTKUBE_SCALE_PODS", 10_000usize);
    let replicas = env_or("RUSTKUBE_SCALE_REPLICAS", 1_000usize);
    let split = env_or("RUSTKUBE_SCALE_SPLIT", 0u8) == 1;
    println!(
        "rustkube scale benchmark: release server (embedded SQLite, controllers and scheduler in-process), sim-nodes {nodes:?}, {pods} pods, {CONCURRENCY} concurrent creates, {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for (i, n) in nodes.iter().enumerate() {
        let deploy = (i == 0 && replicas > 0).then_some(replicas);
        let dir = tmp.path().join(format!("nodes-{n}"));
        if let Err(e) = rt.block_on(run(&dir, *n, pods, deploy, split)) {
            println!("  error: {e}");
        }
    }
    rt.shutdown_timeout(Duration::from_secs(5));
}
