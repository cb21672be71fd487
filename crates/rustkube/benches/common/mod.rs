//! What the benchmarks share: the real server started on loopback and
//! stopped by PID, and a small HTTP/2 + TLS client authenticating with the
//! admin client certificate (or a bearer token).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http2::SendRequest;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

pub type Result<T> = std::result::Result<T, String>;

pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- server

pub struct Server {
    pub child: Option<Child>,
    pub data_dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub log: PathBuf,
    pub port: u16,
}

impl Server {
    pub fn start(dir: &Path, extra_args: &[String]) -> Result<Server> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let config = dir.join("config.yaml");
        std::fs::write(&config, "").map_err(|e| e.to_string())?;
        let data_dir = dir.join("data");
        let kubeconfig = dir.join("kubeconfig.yaml");
        let log = dir.join("server.log");
        let port = free_port();
        let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = Command::new(env!("CARGO_BIN_EXE_rustkube"))
            .arg("server")
            .arg(format!("--config={}", config.display()))
            .arg(format!("--data-dir={}", data_dir.display()))
            .arg(format!("--write-kubeconfig={}", kubeconfig.display()))
            .arg(format!("--https-listen-port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            .args(extra_args)
            .env_remove("RUSTKUBE_CONFIG")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("spawn rustkube: {e}"))?;
        let mut server = Server {
            child: Some(child),
            data_dir,
            kubeconfig,
            log,
            port,
        };
        let begin = Instant::now();
        while !(server.kubeconfig.exists() && server.tls_file("client-admin.key").exists()) {
            if let Some(Ok(Some(status))) = server.child.as_mut().map(|c| c.try_wait()) {
                return Err(format!(
                    "server exited early: {status}\n{}",
                    server.log_tail()
                ));
            }
            if begin.elapsed() > Duration::from_secs(60) {
                return Err(format!("server not ready in 60 s\n{}", server.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(server)
    }

    pub fn tls_file(&self, name: &str) -> PathBuf {
        self.data_dir.join("server/tls").join(name)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGTERM, then SIGKILL after 10 s, by PID.
pub fn terminate(mut child: Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// User + system CPU seconds of a process so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------- client

/// TLS that verifies the server but presents no client certificate (for
/// bearer-token clients).
pub fn tls_config_without_cert(server: &Server) -> Result<Arc<rustls::ClientConfig>> {
    let pem = std::fs::read(server.tls_file("server-ca.crt")).map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

pub fn tls_config(server: &Server) -> Result<Arc<rustls::ClientConfig>> {
    let read =
        |name: &str| std::fs::read(server.tls_file(name)).map_err(|e| format!("read {name}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut read("server-ca.crt")?.as_slice()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let certs = rustls_pemfile::certs(&mut read("client-admin.crt")?.as_slice())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let key = rustls_pemfile::private_key(&mut read("client-admin.key")?.as_slice())
        .map_err(|e| e.to_string())?
        .ok_or("no private key in client-admin.key")?;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_client_auth_cert(certs, key)
    .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// One or more HTTP/2 connections; requests are spread round-robin and
/// multiplex as streams on each.
pub struct Client {
    pub senders: Vec<SendRequest<Full<Bytes>>>,
    pub drivers: Vec<JoinHandle<()>>,
    pub next: AtomicUsize,
    pub base: String,
    /// `Authorization` header value, for clients without a certificate.
    pub authorization: Option<String>,
}

impl Client {
    pub async fn connect(
        tls: Arc<rustls::ClientConfig>,
        port: u16,
        conns: usize,
    ) -> Result<Client> {
        let mut senders = Vec::new();
        let mut drivers = Vec::new();
        for _ in 0..conns {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .map_err(|e| format!("connect: {e}"))?;
            tcp.set_nodelay(true).map_err(|e| e.to_string())?;
            let name = ServerName::try_from("127.0.0.1").unwrap().to_owned();
            let stream = TlsConnector::from(tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
                return Err("server did not negotiate h2".into());
            }
            let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("h2 handshake: {e}"))?;
            drivers.push(tokio::spawn(async move {
                let _ = conn.await;
            }));
            senders.push(sender);
        }
        Ok(Client {
            senders,
            drivers,
            next: AtomicUsize::new(0),
            base: format!("https://127.0.0.1:{port}"),
            authorization: None,
        })
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Response<Incoming>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.senders.len();
        let mut sender = self.senders[i].clone();
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("accept", "application/json");
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        if let Some(value) = &self.authorization {
            req = req.header("authorization", value.as_str());
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| e.to_string())?;
        sender
            .send_request(req)
            .await
            .map_err(|e| format!("{path}: {e}"))
    }

    /// A request with its whole response body, bounded by REQUEST_TIMEOUT.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes)> {
        let fut = async {
            let resp = self.send(method, path, body).await?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("{path}: body: {e}"))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| format!("{path}: timed out after {REQUEST_TIMEOUT:?}"))?
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        for d in &self.drivers {
            d.abort();
        }
    }
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn sort(v: &mut [f64]) {
    v.sort_by(|a, b| a.total_cmp(b));
}

pub fn show(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    s.chars().take(600).collect()
}
