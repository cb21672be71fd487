//! Test support: a throwaway single-member etcd server.
//!
//! [`EtcdProcess::start`] runs Debian's `/usr/bin/etcd` (override with
//! `RUSTKUBE_ETCD_BIN`) on ephemeral loopback ports with its data in a fresh
//! temporary directory, optionally with mutual TLS, and waits until it
//! serves requests. Dropping it kills that process by PID and removes the
//! directory. Compiled into the library so the API server's end-to-end tests
//! can reuse it; nothing in production uses it.

use std::fs;
use std::io::{self, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::etcd::{EtcdConfig, EtcdStore};

/// Where the etcd binary is unless `RUSTKUBE_ETCD_BIN` says otherwise.
pub const DEFAULT_ETCD_BIN: &str = "/usr/bin/etcd";

/// How long etcd may take to become healthy.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Certificates for an etcd that requires client certificates. All PEM.
/// The server certificate must be valid for the IP 127.0.0.1.
#[derive(Debug, Clone)]
pub struct EtcdTls {
    pub ca_cert_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    /// A client certificate signed by the same CA, used by the harness's
    /// health check and by [`EtcdProcess::client_config`].
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

/// A running etcd member; killed (by PID) and cleaned up on drop.
pub struct EtcdProcess {
    child: Child,
    dir: PathBuf,
    endpoint: String,
    tls_files: Option<TlsFiles>,
}

#[derive(Debug, Clone)]
struct TlsFiles {
    ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl EtcdProcess {
    /// Start etcd and wait until it answers requests. Fails (never skips)
    /// with a message saying what is missing if the binary is absent.
    pub async fn start(tls: Option<EtcdTls>) -> io::Result<EtcdProcess> {
        let bin = std::env::var_os("RUSTKUBE_ETCD_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ETCD_BIN));
        Self::start_with_binary(&bin, tls).await
    }

    /// [`EtcdProcess::start`] with an explicit etcd binary.
    pub async fn start_with_binary(bin: &Path, tls: Option<EtcdTls>) -> io::Result<EtcdProcess> {
        if !bin.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "etcd binary not found at {} (install Debian's etcd-server package or set RUSTKUBE_ETCD_BIN)",
                    bin.display()
                ),
            ));
        }
        // Ports are picked by binding and releasing them; another process
        // may grab one in between, so retry a few times.
        let mut last_err = None;
        for _ in 0..3 {
            match Self::start_once(bin, tls.as_ref()).await {
                Ok(process) => return Ok(process),
                Err(err) => last_err = Some(err),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("etcd did not start")))
    }

    async fn start_once(bin: &Path, tls: Option<&EtcdTls>) -> io::Result<EtcdProcess> {
        let dir = unique_dir()?;
        // From here on `guard` removes the directory if we fail.
        let guard = DirGuard(Some(dir.clone()));
        let client_port = free_port()?;
        let peer_port = free_port()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoint = format!("{scheme}://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let name = "rustkube-test";

        let mut command = Command::new(bin);
        for (var, _) in std::env::vars_os() {
            // etcd reads every ETCD_* variable as a flag.
            if var.to_string_lossy().starts_with("ETCD_") {
                command.env_remove(var);
            }
        }
        command
            .arg("--name")
            .arg(name)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--listen-client-urls")
            .arg(&endpoint)
            .arg("--advertise-client-urls")
            .arg(&endpoint)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("{name}={peer}"))
            .arg("--initial-cluster-state")
            .arg("new")
            .arg("--initial-cluster-token")
            .arg(dir.file_name().unwrap_or_default());
        let tls_files = match tls {
            Some(tls) => {
                let tls_dir = dir.join("tls");
                fs::DirBuilder::new().mode(0o700).create(&tls_dir)?;
                let ca = write_private(&tls_dir.join("ca.pem"), &tls.ca_cert_pem)?;
                let cert = write_private(&tls_dir.join("server.pem"), &tls.server_cert_pem)?;
                let key = write_private(&tls_dir.join("server-key.pem"), &tls.server_key_pem)?;
                let client_cert = write_private(&tls_dir.join("client.pem"), &tls.client_cert_pem)?;
                let client_key =
                    write_private(&tls_dir.join("client-key.pem"), &tls.client_key_pem)?;
                command
                    .arg("--cert-file")
                    .arg(cert)
                    .arg("--key-file")
                    .arg(key)
                    .arg("--trusted-ca-file")
                    .arg(&ca)
                    .arg("--client-cert-auth");
                Some(TlsFiles {
                    ca,
                    client_cert,
                    client_key,
                })
            }
            None => None,
        };
        let log = fs::File::create(dir.join("etcd.log"))?;
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = command.spawn()?;
        let mut process = EtcdProcess {
            child,
            dir: guard.disarm(),
            endpoint,
            tls_files,
        };
        process.wait_healthy().await?;
        Ok(process)
    }

    async fn wait_healthy(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "etcd exited with {status} before becoming healthy; log:\n{}",
                    self.log_tail()
                )));
            }
            let attempt = tokio::time::timeout(
                Duration::from_secs(3),
                EtcdStore::connect(self.client_config()),
            )
            .await;
            let last_err = match attempt {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(err)) => err.to_string(),
                Err(_) => "health check timed out".to_string(),
            };
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "etcd at {} not healthy after {START_TIMEOUT:?} ({last_err}); log:\n{}",
                        self.endpoint,
                        self.log_tail()
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The client URL, e.g. `https://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// How to connect, including the CA and client certificate under TLS.
    pub fn client_config(&self) -> EtcdConfig {
        EtcdConfig {
            endpoints: vec![self.endpoint.clone()],
            ca_file: self.tls_files.as_ref().map(|t| t.ca.clone()),
            cert_file: self.tls_files.as_ref().map(|t| t.client_cert.clone()),
            key_file: self.tls_files.as_ref().map(|t| t.client_key.clone()),
        }
    }

    /// A new client connection to this etcd.
    pub async fn connect(&self) -> crate::Result<EtcdStore> {
        EtcdStore::connect(self.client_config()).await
    }

    /// The PID of the etcd process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The temporary directory holding the data, certificates and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last lines etcd logged, for error messages.
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this child's PID only.
        if let Err(err) = self.child.kill() {
            if err.kind() != io::ErrorKind::InvalidInput {
                tracing::warn!(pid = self.child.id(), %err, "cannot kill etcd");
            }
        }
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Removes a directory unless disarmed.
struct DirGuard(Option<PathBuf>);

impl DirGuard {
    fn disarm(mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

fn unique_dir() -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "rustkube-etcd-{}-{nanos:x}-{n}",
        std::process::id()
    ));
    fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn write_private(path: &Path, contents: &str) -> io::Result<PathBuf> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    Ok(path.to_path_buf())
}
