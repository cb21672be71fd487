//! API throughput of `rustkube server` over HTTP/2 + TLS (issue 3).
//! Prints figures; asserts nothing (see docs/BENCHMARKS.md).
//!
//! Run: `cargo bench -p rustkube --bench api`
//!
//! Starts the real server binary on loopback, without its in-process
//! controller manager and scheduler (embedded SQLite, then a
//! throwaway single-member etcd started in the same run), authenticates with
//! the admin client certificate and drives it from this process with one
//! shared HTTP/2 client whose requests multiplex over a few connections:
//!
//! 1. creates/s: `RUSTKUBE_BENCH_PODS` (default 10,000) ~2 KiB pods, 64
//!    concurrent tasks;
//! 2. gets/s: 64 concurrent tasks reading random pods for a few seconds;
//! 3. LIST of every pod in the namespace (median of 5, no limit);
//! 4. watch delivery latency: 1,000 watches opened from the LIST's
//!    resourceVersion, then pods created at a moderate rate; latency is the
//!    time from the create's response to the event's arrival at each watcher;
//! 5. server RSS after the creates, against the pods' total JSON size;
//! 6. authorization overhead: a bearer-token user reading pods through one
//!    RoleBinding among 10,000, with `--authorization-mode=Node,RBAC`
//!    against the same requests with authorization off (`AlwaysAllow`).
//!
//! Every phase has a timeout; the server is stopped by PID (SIGTERM, then
//! SIGKILL) and etcd is killed when its handle drops.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use storage::testing::EtcdProcess;

const CONCURRENCY: usize = 64;
const GET_SECONDS: f64 = 5.0;
const LIST_RUNS: usize = 5;
const WATCHERS: usize = 1000;
/// Streams per connection for the watches; the server allows 200.
const WATCHES_PER_CONN: usize = 125;
const WATCH_EVENTS: usize = 150;
const WATCH_WRITES_PER_SEC: f64 = 20.0;
const CRUD_CONNS: usize = 4;
const NS: &str = "default";

mod common;

use common::{
    cpu_seconds, percentile, proc_status_kib, show, sort, tls_config, tls_config_without_cert,
    Client, Result, Server,
};

// ---------------------------------------------------------------- pods

/// A realistic pod of about 2 KiB: labels, annotations, two containers with
/// env, ports, resources, probes and volume mounts, two volumes.
fn pod_json(name: &str) -> Bytes {
    let container = |cname: &str, image: &str, port: u16| {
        serde_json::json!({
            "name": cname,
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "args": ["--listen=:".to_string() + &port.to_string(), "--log-format=json"],
            "ports": [
                {"name": "http", "containerPort": port, "protocol": "TCP"},
                {"name": "metrics", "containerPort": port + 1000, "protocol": "TCP"}
            ],
            "env": [
                {"name": "LOG_LEVEL", "value": "info"},
                {"name": "SERVICE_NAME", "value": cname},
                {"name": "CACHE_DIR", "value": "/var/cache/app"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
            ],
            "resources": {
                "requests": {"cpu": "100m", "memory": "128Mi"},
                "limits": {"cpu": "500m", "memory": "512Mi"}
            },
            "livenessProbe": {
                "httpGet": {"path": "/healthz", "port": port},
                "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 2
            },
            "readinessProbe": {
                "httpGet": {"path": "/readyz", "port": port},
                "periodSeconds": 5, "failureThreshold": 3
            },
            "volumeMounts": [
                {"name": "config", "mountPath": "/etc/app", "readOnly": true},
                {"name": "cache", "mountPath": "/var/cache/app"}
            ]
        })
    };
    let pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {
                "app.kubernetes.io/name": "web",
                "app.kubernetes.io/instance": "web-prod",
                "app.kubernetes.io/version": "1.24.3",
                "app.kubernetes.io/component": "frontend",
                "team": "platform"
            },
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9080",
                "checksum/config": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "kubernetes.io/change-cause": "deploy web 1.24.3 to production"
            }
        },
        "spec": {
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "containers": [
                container("web", "registry.example.com/platform/web:1.24.3", 8080),
                container("log-shipper", "registry.example.com/platform/log-shipper:0.9.1", 8081)
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": "web-config"}},
                {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}}
            ]
        }
    });
    Bytes::from(serde_json::to_vec(&pod).unwrap())
}

fn pods_path() -> String {
    format!("/api/v1/namespaces/{NS}/pods")
}

// ---------------------------------------------------------------- phases

#[derive(Default, Clone)]
struct Figures {
    creates_per_s: Option<f64>,
    create_p50_p99_ms: Option<(f64, f64)>,
    gets_per_s: Option<f64>,
    list_ms: Option<f64>,
    list_mib: Option<f64>,
    watch_p50_p99_ms: Option<(f64, f64)>,
    watch_missing: Option<usize>,
    rss_mib: Option<f64>,
    json_mib: Option<f64>,
    datastore_rss_mib: Option<f64>,
    errors: Vec<String>,
}

/// Phase 1: create `n` pods with 64 concurrent tasks. Returns (elapsed,
/// total JSON bytes as stored, latencies in ms).
async fn creates(client: &Arc<Client>, n: usize) -> Result<(Duration, u64, Vec<f64>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let json_bytes = Arc::new(AtomicU64::new(0));
    let begin = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let client = client.clone();
        let next = next.clone();
        let json_bytes = json_bytes.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, String>(lat);
                }
                let body = pod_json(&format!("bench-{i:06}"));
                let t = Instant::now();
                let (status, resp) = client
                    .call(Method::POST, &pods_path(), Some(body.clone()))
                    .await?;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                if status != StatusCode::CREATED {
                    next.store(n, Ordering::Relaxed);
                    return Err(format!(
                        "POST {} ({} bytes: {}) -> {status}: {}",
                        pods_path(),
                        body.len(),
                        show(&body),
                        show(&resp)
                    ));
                }
                json_bytes.fetch_add(resp.len() as u64, Ordering::Relaxed);
            }
        }));
    }
    let mut lat = Vec::new();
    let mut err = None;
    for t in tasks {
        match t.await.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(l) => lat.extend(l),
            Err(e) => err = err.or(Some(e)),
        }
    }
    let elapsed = begin.elapsed();
    if let Some(e) = err {
        return Err(e);
    }
    Ok((elapsed, json_bytes.load(Ordering::Relaxed), lat))
}

/// Phase 2: GET random existing pods with 64 concurrent tasks.
async fn gets(client: &Arc<Client>, n: usize) -> Result<f64> {
    let stop_at = Instant::now() + Duration::from_secs_f64(GET_SECONDS);
    let begin = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..CONCURRENCY {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut x: u64 =
                0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let mut done = 0u64;
            while Instant::now() < stop_at {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x % n as u64) as usize;
                let path = format!("{}/bench-{i:06}", pods_path());
                let (status, body) = client.call(Method::GET, &path, None).await?;
                if status != StatusCode::OK {
                    return Err(format!("GET {path} -> {status}: {}", show(&body)));
                }
                done += 1;
            }
            Ok::<_, String>(done)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.map_err(|e| e.to_string())??;
    }
    Ok(total as f64 / begin.elapsed().as_secs_f64())
}

/// Phase 3: LIST everything, median of LIST_RUNS. Returns (median ms,
/// body bytes, resourceVersion, item count).
async fn lists(client: &Arc<Client>) -> Result<(f64, usize, String, usize)> {
    let mut times = Vec::new();
    let mut last = Bytes::new();
    for _ in 0..LIST_RUNS {
        let t = Instant::now();
        let (status, body) = client.call(Method::GET, &pods_path(), None).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if status != StatusCode::OK {
            return Err(format!("GET {} -> {status}: {}", pods_path(), show(&body)));
        }
        last = body;
    }
    sort(&mut times);
    let v: serde_json::Value =
        serde_json::from_slice(&last).map_err(|e| format!("LIST body: {e}"))?;
    let rv = v["metadata"]["resourceVersion"]
        .as_str()
        .ok_or("LIST without metadata.resourceVersion")?
        .to_string();
    let items = v["items"].as_array().map(|a| a.len()).unwrap_or(0);
    Ok((times[times.len() / 2], last.len(), rv, items))
}

/// The index of `"wpod-NNNNNN"` in one watch event line (ADDED only).
fn event_index(line: &[u8]) -> Option<usize> {
    const TYPE: &[u8] = b"\"type\":\"ADDED\"";
    line.windows(TYPE.len()).position(|w| w == TYPE)?;
    const NEEDLE: &[u8] = b"\"wpod-";
    let at = line.windows(NEEDLE.len()).position(|w| w == NEEDLE)? + NEEDLE.len();
    let digits = &line[at..(at + 6).min(line.len())];
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Phase 4: 1,000 watches, WATCH_EVENTS creates at a moderate rate.
/// Returns (sorted latencies in ms, missing deliveries, arrivals before the
/// create's response).
async fn watches(
    tls: Arc<rustls::ClientConfig>,
    port: u16,
    writer: &Arc<Client>,
    rv: &str,
) -> Result<(Vec<f64>, usize, usize)> {
    let conns = WATCHERS.div_ceil(WATCHES_PER_CONN);
    let wclient = Arc::new(Client::connect(tls, port, conns).await?);
    let ready = Arc::new(AtomicUsize::new(0));
    let epoch = Instant::now();
    // Generous: the writer needs WATCH_EVENTS / rate seconds plus set-up.
    let deadline =
        epoch + Duration::from_secs_f64(60.0 + WATCH_EVENTS as f64 / WATCH_WRITES_PER_SEC * 2.0);
    let mut tasks = Vec::new();
    for _ in 0..WATCHERS {
        let wclient = wclient.clone();
        let ready = ready.clone();
        let path = format!("{}?watch=true&resourceVersion={rv}", pods_path());
        tasks.push(tokio::spawn(async move {
            // arrival[i] = time of event i since epoch, in seconds.
            let mut arrival = vec![f64::NAN; WATCH_EVENTS];
            let fut = async {
                let resp = wclient.send(Method::GET, &path, None).await?;
                if resp.status() != StatusCode::OK {
                    let status = resp.status();
                    let body = resp
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    return Err(format!("GET {path} -> {status}: {}", show(&body)));
                }
                ready.fetch_add(1, Ordering::Relaxed);
                let mut body = resp.into_body();
                let mut buf: Vec<u8> = Vec::new();
                let mut got = 0;
                while got < WATCH_EVENTS {
                    let Some(frame) = body.frame().await else {
                        return Err("watch stream ended".into());
                    };
                    let frame = frame.map_err(|e| format!("watch body: {e}"))?;
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let now = epoch.elapsed().as_secs_f64();
                    buf.extend_from_slice(&data);
                    while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                        if let Some(i) = event_index(&buf[..nl]) {
                            if i < WATCH_EVENTS && arrival[i].is_nan() {
                                arrival[i] = now;
                                got += 1;
                            }
                        }
                        buf.drain(..=nl);
                    }
                }
                Ok::<_, String>(())
            };
            let r = tokio::time::timeout_at(deadline.into(), fut).await;
            let err = match r {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => None, // missing events are counted by the caller
            };
            (arrival, err)
        }));
    }
    // Wait until every watch is established (response headers received).
    let wait_until = Instant::now() + Duration::from_secs(30);
    while ready.load(Ordering::Relaxed) < WATCHERS && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let established = ready.load(Ordering::Relaxed);
    if established < WATCHERS {
        println!(
            "    only {established}/{WATCHERS} watches established after 30 s; writing anyway"
        );
    }
    // Let the server finish registering the watchers.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut written = vec![f64::NAN; WATCH_EVENTS];
    let interval = Duration::from_secs_f64(1.0 / WATCH_WRITES_PER_SEC);
    let mut tick = tokio::time::interval(interval);
    let mut write_err = None;
    for (i, slot) in written.iter_mut().enumerate() {
        tick.tick().await;
        let body = pod_json(&format!("wpod-{i:06}"));
        match writer
            .call(Method::POST, &pods_path(), Some(body.clone()))
            .await
        {
            Ok((StatusCode::CREATED, _)) => *slot = epoch.elapsed().as_secs_f64(),
            Ok((status, resp)) => {
                write_err = Some(format!(
                    "POST {} ({}) -> {status}: {}",
                    pods_path(),
                    show(&body),
                    show(&resp)
                ));
                break;
            }
            Err(e) => {
                write_err = Some(e);
                break;
            }
        }
    }
    let mut lat = Vec::new();
    let mut missing = 0;
    let mut early = 0;
    let mut first_err = None;
    for t in tasks {
        let (arrival, err) = t.await.map_err(|e| e.to_string())?;
        if first_err.is_none() {
            first_err = err;
        }
        for (i, a) in arrival.iter().enumerate() {
            if written[i].is_nan() {
                continue;
            }
            if a.is_nan() {
                missing += 1;
            } else {
                let d = (a - written[i]) * 1000.0;
                if d < 0.0 {
                    early += 1;
                }
                lat.push(d.max(0.0));
            }
        }
    }
    drop(wclient);
    if let Some(e) = write_err {
        return Err(e);
    }
    if let Some(e) = first_err {
        println!("    first watcher error: {e}");
    }
    sort(&mut lat);
    Ok((lat, missing, early))
}

async fn run_backend(
    label: &str,
    dir: &Path,
    extra_args: Vec<String>,
    datastore_pid: Option<u32>,
    n: usize,
) -> Figures {
    let mut fig = Figures::default();
    println!("\n== {label} ==");
    // The API server alone: an in-process scheduler would try (and fail,
    // there are no nodes) to place every benchmark pod, writing events and
    // conditions that compete with the requests measured here.
    let mut args = vec![
        "--disable-controller-manager".to_string(),
        "--disable-scheduler".to_string(),
    ];
    args.extend(extra_args);
    let mut server = match Server::start(dir, &args) {
        Ok(s) => s,
        Err(e) => {
            println!("  server failed to start: {e}");
            fig.errors.push(e);
            return fig;
        }
    };
    let result = async {
        let tls = tls_config(&server)?;
        let client = Arc::new(Client::connect(tls.clone(), server.port, CRUD_CONNS).await?);
        // Ready = /readyz answers 200 with the admin certificate.
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            match client.call(Method::GET, "/readyz", None).await {
                Ok((StatusCode::OK, _)) => break,
                _ if Instant::now() > until => {
                    return Err(format!("/readyz not 200 in 60 s\n{}", server.log_tail()))
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let rss_idle = proc_status_kib(server.pid(), "VmRSS:") as f64 / 1024.0;
        println!(
            "  server pid {}, idle RSS {rss_idle:.1} MiB, pod JSON sent {} bytes",
            server.pid(),
            pod_json("bench-000000").len()
        );

        // Server CPU per create is steadier than the rate on a shared
        // machine, where neighbours take cores away.
        let cpu_before = cpu_seconds(server.pid());
        match creates(&client, n).await {
            Ok((elapsed, json, mut lat)) => {
                let cpu_us = (cpu_seconds(server.pid()) - cpu_before) * 1e6 / n as f64;
                sort(&mut lat);
                let rate = n as f64 / elapsed.as_secs_f64();
                let p = (percentile(&lat, 0.5), percentile(&lat, 0.99));
                println!(
                    "  creates: {n} pods in {:.2} s = {rate:.0}/s (latency p50 {:.2} ms, p99 {:.2} ms); server CPU {cpu_us:.0} us per create",
                    elapsed.as_secs_f64(),
                    p.0,
                    p.1
                );
                fig.creates_per_s = Some(rate);
                fig.create_p50_p99_ms = Some(p);
                fig.json_mib = Some(json as f64 / 1048576.0);
                // Give the allocator and any background work a moment.
                tokio::time::sleep(Duration::from_secs(2)).await;
                let rss = proc_status_kib(server.pid(), "VmRSS:") as f64 / 1024.0;
                fig.rss_mib = Some(rss);
                let json_mib = json as f64 / 1048576.0;
                println!(
                    "  RSS after creates: {rss:.1} MiB; stored JSON of the {n} pods: {json_mib:.1} MiB; goal 2 x {json_mib:.1} + 40 = {:.1} MiB",
                    2.0 * json_mib + 40.0
                );
                if let Some(pid) = datastore_pid {
                    let d = proc_status_kib(pid, "VmRSS:") as f64 / 1024.0;
                    fig.datastore_rss_mib = Some(d);
                    println!("  etcd RSS (separate process): {d:.1} MiB");
                }
            }
            Err(e) => {
                println!("  creates FAILED: {e}");
                fig.errors.push(e.clone());
                return Err(e);
            }
        }

        match gets(&client, n).await {
            Ok(rate) => {
                println!("  gets: {rate:.0}/s (64 concurrent, {GET_SECONDS} s)");
                fig.gets_per_s = Some(rate);
            }
            Err(e) => {
                println!("  gets FAILED: {e}");
                fig.errors.push(e);
            }
        }

        let rv = match lists(&client).await {
            Ok((ms, bytes, rv, items)) => {
                println!(
                    "  LIST of {items} pods: median {ms:.1} ms of {LIST_RUNS}, {:.1} MiB body, rv {rv}",
                    bytes as f64 / 1048576.0
                );
                fig.list_ms = Some(ms);
                fig.list_mib = Some(bytes as f64 / 1048576.0);
                rv
            }
            Err(e) => {
                println!("  LIST FAILED: {e}");
                fig.errors.push(e.clone());
                return Err(e);
            }
        };

        match watches(tls.clone(), server.port, &client, &rv).await {
            Ok((lat, missing, early)) => {
                let p = (percentile(&lat, 0.5), percentile(&lat, 0.99));
                println!(
                    "  watch: {WATCHERS} watchers x {WATCH_EVENTS} creates at {WATCH_WRITES_PER_SEC}/s: {} deliveries, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {missing} missing, {early} arrived before the create's response",
                    lat.len(),
                    p.0,
                    p.1,
                    lat.last().copied().unwrap_or(f64::NAN)
                );
                fig.watch_p50_p99_ms = Some(p);
                fig.watch_missing = Some(missing);
            }
            Err(e) => {
                println!("  watch FAILED: {e}");
                fig.errors.push(e);
            }
        }
        let hwm = proc_status_kib(server.pid(), "VmHWM:") as f64 / 1024.0;
        println!("  server peak RSS (VmHWM) over the run: {hwm:.1} MiB");
        Ok(())
    };
    let r = tokio::time::timeout(Duration::from_secs(600), result).await;
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            if !fig.errors.contains(&e) {
                println!("  FAILED: {e}");
                fig.errors.push(e);
            }
        }
        Err(_) => {
            println!("  TIMED OUT after 600 s");
            fig.errors.push("timeout".into());
        }
    }
    server.stop();
    fig
}

// ------------------------------------------------- authorization overhead

const AUTH_PODS: usize = 1000;
const AUTH_BINDINGS: usize = 10_000;

/// GETs/s of a bearer-token user who may read pods through one RoleBinding
/// among `AUTH_BINDINGS`, with `mode` as `--authorization-mode`.
async fn token_gets(dir: &Path, mode: &str, seed: bool) -> Result<f64> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let tokens = dir.join("tokens.csv");
    std::fs::write(&tokens, "reader-token-0123456789,reader,uid-reader,\n")
        .map_err(|e| e.to_string())?;
    let args = vec![
        format!("--token-auth-file={}", tokens.display()),
        format!("--authorization-mode={mode}"),
        "--disable-controller-manager".into(),
        "--disable-scheduler".into(),
    ];
    // A restart on the same data dir: the old kubeconfig must not pass for
    // readiness.
    let _ = std::fs::remove_file(dir.join("kubeconfig.yaml"));
    let mut server = Server::start(dir, &args)?;
    let admin = Arc::new(Client::connect(tls_config(&server)?, server.port, CRUD_CONNS).await?);
    let until = Instant::now() + Duration::from_secs(60);
    while admin.call(Method::GET, "/readyz", None).await.map(|r| r.0) != Ok(StatusCode::OK) {
        if Instant::now() > until {
            return Err("server not ready".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if seed {
        creates(&admin, AUTH_PODS).await?;
        let path = format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/rolebindings");
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..CONCURRENCY {
            let (admin, next, path) = (admin.clone(), next.clone(), path.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= AUTH_BINDINGS {
                        return Ok::<_, String>(());
                    }
                    let user = if i == AUTH_BINDINGS - 1 { "reader".to_string() } else { format!("user-{i}") };
                    let body = format!(
                        r#"{{"metadata":{{"name":"b-{i}"}},"roleRef":{{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"}},"subjects":[{{"kind":"User","name":"{user}"}}]}}"#
                    );
                    let (status, resp) = admin.call(Method::POST, &path, Some(Bytes::from(body))).await?;
                    if status != StatusCode::CREATED {
                        return Err(format!("rolebinding {i}: {status}: {}", show(&resp)));
                    }
                }
            }));
        }
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
    }
    let mut reader =
        Client::connect(tls_config_without_cert(&server)?, server.port, CRUD_CONNS).await?;
    reader.authorization = Some("Bearer reader-token-0123456789".into());
    let reader = Arc::new(reader);
    let rate = gets(&reader, AUTH_PODS).await;
    server.stop();
    rate
}

/// Token-authenticated GETs with `Node,RBAC` against the same with
/// authorization off (`AlwaysAllow`), 10,000 RoleBindings present. The
/// two modes alternate for `RUSTKUBE_BENCH_AUTH_ROUNDS` rounds (default
/// 4) on restarts of one data dir, and each figure is the median of its
/// rounds, so a noisy moment on the machine does not decide the result.
async fn authorization_overhead(dir: &Path) -> Result<(f64, f64)> {
    let rounds: usize = std::env::var("RUSTKUBE_BENCH_AUTH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
        .max(1);
    let (mut rbac, mut open) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // ABBA order, so a drift of the machine's speed over the run
        // weighs on both modes alike.
        if round % 2 == 0 {
            rbac.push(token_gets(dir, "Node,RBAC", round == 0).await?);
            open.push(token_gets(dir, "AlwaysAllow", false).await?);
        } else {
            open.push(token_gets(dir, "AlwaysAllow", false).await?);
            rbac.push(token_gets(dir, "Node,RBAC", false).await?);
        }
        println!(
            "  authorization round {}: Node,RBAC {:.0} gets/s, AlwaysAllow {:.0} gets/s",
            round + 1,
            rbac[round],
            open[round]
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[(v.len() - 1) / 2] + v[v.len() / 2]) / 2.0
    };
    Ok((median(&mut rbac), median(&mut open)))
}

fn fmt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "n/a".into())
}

/// Phases 1-5 on embedded SQLite, then on a real etcd.
fn backends(rt: &tokio::runtime::Runtime, tmp: &Path, n: usize) -> (Figures, Figures) {
    let embedded = rt.block_on(run_backend(
        "embedded SQLite",
        &tmp.join("sqlite"),
        vec![],
        None,
        n,
    ));
    let etcd = rt.block_on(async {
        let etcd = match EtcdProcess::start(None).await {
            Ok(e) => e,
            Err(e) => {
                println!("\n== etcd ==\n  etcd failed to start: {e}");
                return Figures {
                    errors: vec![e.to_string()],
                    ..Default::default()
                };
            }
        };
        let args = vec![format!("--datastore-endpoint={}", etcd.endpoint())];
        let label = format!("etcd ({})", etcd.endpoint());
        let fig = run_backend(&label, &tmp.join("etcd"), args, Some(etcd.pid()), n).await;
        drop(etcd);
        fig
    });
    (embedded, etcd)
}

fn main() {
    let n: usize = std::env::var("RUSTKUBE_BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    println!(
        "rustkube API benchmark: HTTP/2 + TLS, admin client cert, {n} pods, {CONCURRENCY} concurrent clients, {CRUD_CONNS} connections ({} cores)",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    // RUSTKUBE_BENCH_ONLY=auth runs only the authorization phase,
    // RUSTKUBE_BENCH_ONLY=sqlite only phases 1-5 on embedded SQLite.
    let only = std::env::var("RUSTKUBE_BENCH_ONLY").unwrap_or_default();
    let (embedded, etcd) = match only.as_str() {
        "auth" => (Figures::default(), Figures::default()),
        "sqlite" => (
            rt.block_on(run_backend(
                "embedded SQLite",
                &tmp.path().join("sqlite"),
                vec![],
                None,
                n,
            )),
            Figures::default(),
        ),
        _ => backends(&rt, tmp.path(), n),
    };
    let auth = if only == "sqlite" {
        Err("skipped".to_string())
    } else {
        rt.block_on(authorization_overhead(&tmp.path().join("auth")))
    };
    rt.shutdown_timeout(Duration::from_secs(5));

    println!("\nsummary ({n} pods; RSS goal is for 100,000 pods: 2 x their JSON + 40 MiB)");
    println!("| figure | embedded SQLite | etcd | goal |");
    println!("|---|---|---|---|");
    let row = |name: &str, f: &dyn Fn(&Figures) -> String, goal: &str| {
        println!("| {name} | {} | {} | {goal} |", f(&embedded), f(&etcd));
    };
    row(
        "creates/s (64 concurrent)",
        &|f| fmt(f.creates_per_s, |v| format!("{v:.0}")),
        ">= 5,000",
    );
    row(
        "create latency p50 / p99",
        &|f| fmt(f.create_p50_p99_ms, |(a, b)| format!("{a:.1} / {b:.1} ms")),
        "",
    );
    row(
        "gets/s (64 concurrent)",
        &|f| fmt(f.gets_per_s, |v| format!("{v:.0}")),
        ">= 20,000",
    );
    row(
        "LIST all pods (median of 5)",
        &|f| {
            fmt(f.list_ms.zip(f.list_mib), |(ms, mib)| {
                format!("{ms:.0} ms ({mib:.1} MiB)")
            })
        },
        "< 150 ms for 10,000",
    );
    row(
        "watch latency p50 / p99 (1,000 watchers)",
        &|f| {
            fmt(f.watch_p50_p99_ms.zip(f.watch_missing), |((a, b), m)| {
                format!("{a:.1} / {b:.1} ms ({m} missing)")
            })
        },
        "p99 < 50 ms",
    );
    row(
        "server RSS after creates",
        &|f| {
            fmt(f.rss_mib.zip(f.json_mib), |(r, j)| {
                format!("{r:.1} MiB (JSON {j:.1} MiB, limit {:.1})", 2.0 * j + 40.0)
            })
        },
        "< 2 x JSON + 40 MiB",
    );
    row(
        "etcd RSS",
        &|f| fmt(f.datastore_rss_mib, |v| format!("{v:.1} MiB")),
        "",
    );
    match auth {
        Ok((rbac, open)) => {
            println!(
                "\nauthorization overhead (embedded SQLite, bearer token, {AUTH_BINDINGS} RoleBindings, {AUTH_PODS} pods):"
            );
            println!("| authorization | gets/s (64 concurrent) |");
            println!("|---|---|");
            println!("| Node,RBAC | {rbac:.0} |");
            println!("| AlwaysAllow (off) | {open:.0} |");
            println!(
                "| throughput loss | {:.1}% (goal < 5%) |",
                (1.0 - rbac / open) * 100.0
            );
        }
        Err(e) => println!("error (authorization overhead): {e}"),
    }
    for (name, f) in [("embedded", &embedded), ("etcd", &etcd)] {
        for e in &f.errors {
            println!("error ({name}): {e}");
        }
    }
}
