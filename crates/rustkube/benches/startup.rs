//! Start-up time and idle memory of `rustkube server` on the embedded
//! datastore. Prints figures; asserts nothing (see docs/BENCHMARKS.md).
//!
//! Run: `cargo bench -p rustkube --bench startup`
//!
//! "Ready" is the moment the admin kubeconfig appears: the server writes it
//! only after the API answers requests and the system namespaces exist.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 5;

fn start(data_dir: &Path, kubeconfig: &Path, port: u16) -> (Child, Duration) {
    let _ = std::fs::remove_file(kubeconfig);
    let config = data_dir.with_extension("config.yaml");
    std::fs::write(&config, "").unwrap();
    let begin = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rustkube"))
        .arg("server")
        .arg(format!("--config={}", config.display()))
        .arg(format!("--data-dir={}", data_dir.display()))
        .arg(format!("--write-kubeconfig={}", kubeconfig.display()))
        .arg(format!("--https-listen-port={port}"))
        .arg("--bind-address=127.0.0.1")
        .arg("--advertise-address=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while !kubeconfig.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("server exited early: {status}");
        }
        assert!(
            begin.elapsed() < Duration::from_secs(60),
            "server did not become ready"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    (child, begin.elapsed())
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let mut first = Vec::new();
    let mut again = Vec::new();
    let mut rss = Vec::new();
    for run in 0..RUNS {
        let data = tmp.path().join(format!("data-{run}"));
        let kubeconfig = tmp.path().join(format!("kc-{run}.yaml"));
        let port = free_port();
        let (child, t) = start(&data, &kubeconfig, port);
        first.push(t.as_secs_f64() * 1000.0);
        stop(child);
        let (child, t) = start(&data, &kubeconfig, port);
        again.push(t.as_secs_f64() * 1000.0);
        if run == 0 {
            std::thread::sleep(Duration::from_secs(5));
            rss.push(rss_kib(child.id()) as f64 / 1024.0);
        }
        stop(child);
    }
    println!("rustkube server start-up ({RUNS} runs, embedded SQLite, ready = kubeconfig written)");
    println!(
        "  first start incl. PKI generation: median {:.0} ms (all: {:?})",
        median(first.clone()),
        first.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
    println!(
        "  restart on existing data dir:     median {:.0} ms (all: {:?})",
        median(again.clone()),
        again.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
    println!("  idle RSS 5 s after start:         {:.1} MiB", rss[0]);
}
