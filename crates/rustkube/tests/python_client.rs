//! The PyPI `kubernetes` Python client against a real `rustkube server`:
//! runs `tests/python/test_client.py` with `KUBECONFIG` pointing at it.
//! The client package is required: install it with
//! `bash scripts/deps.sh --test`.

mod support;

use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::Server;

/// The whole script, every section included, must finish in this long.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(300);

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/test_client.py")
}

fn require_python_client() {
    let out = Command::new("python3")
        .args(["-c", "import kubernetes; print(kubernetes.__version__)"])
        .output();
    match out {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the PyPI `kubernetes` package is not installed for python3 \
             (run `bash scripts/deps.sh --test`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("cannot run python3 ({e}); run `bash scripts/deps.sh --test`"),
    }
}

#[test]
fn the_python_kubernetes_client_works_against_the_server() {
    require_python_client();
    let server = Server::start(&[]);

    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("python-client.out");
    let out = File::create(&out_path).unwrap();
    let mut child = Command::new("python3")
        .arg(script())
        .env("KUBECONFIG", &server.kubeconfig)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start python3: {e}"));

    let deadline = Instant::now() + SCRIPT_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // Stop the script we started (by its PID) before failing.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    match status {
        None => panic!(
            "python client script did not finish in {SCRIPT_DEADLINE:?}:\n{output}\n\
             --- server log ---\n{}",
            server.log_text()
        ),
        Some(status) => assert!(
            status.success(),
            "python client script failed ({status}):\n{output}\n--- server log (tail) ---\n{}",
            tail(&server.log_text(), 60)
        ),
    }
    // Show the checks even on success when run with --nocapture.
    println!("{output}");
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
