//! Durable write throughput: embedded SQLite vs. a local single-member etcd.
//!
//! 64 concurrent writers create distinct keys with 1 KiB values for a fixed
//! time on each backend (each acknowledged write is fsynced: SQLite with
//! `synchronous=FULL`, etcd by default), then prints ops/s and the ratio.
//!
//! `cargo bench -p storage --bench write_throughput -- [--seconds N] [--writers N]`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use storage::sqlite::SqliteStore;
use storage::testing::EtcdProcess;
use storage::Store;

struct Args {
    seconds: f64,
    writers: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        seconds: 3.0,
        writers: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                if let Some(v) = it.next().and_then(|v| v.parse().ok()) {
                    args.seconds = v;
                }
            }
            "--writers" => {
                if let Some(v) = it.next().and_then(|v| v.parse().ok()) {
                    args.writers = v;
                }
            }
            // `cargo bench` passes --bench; ignore anything else too.
            _ => {}
        }
    }
    args
}

struct Outcome {
    ops: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Outcome {
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

async fn run(store: Arc<dyn Store>, args: &Args) -> Outcome {
    let value = vec![0x5a_u8; 1024];
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let ops = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..args.writers)
        .map(|w| {
            let store = store.clone();
            let value = value.clone();
            let ops = ops.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let began = Instant::now();
                    store
                        .create(&format!("/bench/w{w:03}/{i:09}"), value.clone())
                        .await
                        .expect("create failed");
                    latencies.push(began.elapsed());
                    ops.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("writer panicked"));
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Outcome {
        ops: ops.load(Ordering::Relaxed),
        elapsed,
        p50: pick(0.5),
        p99: pick(0.99),
    }
}

fn report(name: &str, outcome: &Outcome) {
    println!(
        "{name:>7}: {:>9.0} ops/s  ({} creates in {:.2}s, p50 {:.2} ms, p99 {:.2} ms)",
        outcome.ops_per_sec(),
        outcome.ops,
        outcome.elapsed.as_secs_f64(),
        outcome.p50.as_secs_f64() * 1e3,
        outcome.p99.as_secs_f64() * 1e3,
    );
}

fn main() {
    let args = parse_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        println!(
            "write throughput: {} writers, 1 KiB values, durable creates, {}s per backend",
            args.writers, args.seconds
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("bench.db")).expect("open sqlite"));
        let sqlite_outcome = run(sqlite.clone(), &args).await;
        report("sqlite", &sqlite_outcome);
        drop(sqlite);

        let etcd = EtcdProcess::start(None)
            .await
            .unwrap_or_else(|err| panic!("cannot start etcd: {err}"));
        let client: Arc<dyn Store> = Arc::new(etcd.connect().await.expect("connect etcd"));
        let etcd_outcome = run(client, &args).await;
        report("etcd", &etcd_outcome);
        drop(etcd);

        println!(
            "  ratio: sqlite / etcd = {:.2}x",
            sqlite_outcome.ops_per_sec() / etcd_outcome.ops_per_sec()
        );
    });
}
