//! End-to-end test support: a real `rustkube server` process on an
//! ephemeral loopback port, driven by real clients (kubectl, curl).
//! Every process started here is stopped by PID when its handle drops.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";

/// The versioned kubectl binary (`1.33` -> kubectl.1.33), or Debian's
/// kubectl when the versioned ones are absent.
pub fn kubectl_bin(version: &str) -> PathBuf {
    let versioned = Path::new(KUBECTL_DIR).join(format!("kubectl.{version}"));
    if versioned.is_file() {
        return versioned;
    }
    let debian = PathBuf::from("/usr/bin/kubectl");
    assert!(
        debian.is_file(),
        "no kubectl {version} at {} and no /usr/bin/kubectl",
        versioned.display()
    );
    debian
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running server. The data dir outlives restarts; the process does not.
pub struct Server {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub port: u16,
    pub extra_args: Vec<String>,
    log: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Start on a fresh data dir.
    pub fn start(extra_args: &[&str]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let mut server = Server {
            child: None,
            data_dir: tmp.path().join("data"),
            kubeconfig: tmp.path().join("kubeconfig.yaml"),
            port: free_port(),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            log: tmp.path().join("server.log"),
            _tmp: Some(tmp),
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        // An empty config file of the test's own, so the machine's
        // /etc/rustkube/config.yaml never leaks in.
        let config = self.log.with_file_name("config.yaml");
        if !config.exists() {
            std::fs::write(&config, "").unwrap();
        }
        let child = Command::new(env!("CARGO_BIN_EXE_rustkube"))
            .arg("server")
            .arg(format!("--config={}", config.display()))
            .arg(format!("--data-dir={}", self.data_dir.display()))
            .arg(format!("--write-kubeconfig={}", self.kubeconfig.display()))
            .arg(format!("--https-listen-port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            .args(&self.extra_args)
            .env_remove("RUSTKUBE_CONFIG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready();
    }

    /// Poll /readyz with the admin certificate until it answers 200.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("server exited with {status}:\n{}", self.log_text());
                }
            }
            if self.kubeconfig.exists() && self.tls_file("server-ca.crt").exists() {
                let (code, _) = self.curl_admin(&["/readyz"]);
                if code == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "server not ready in time:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL the process (a crash) and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
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
    }

    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Start again after a crash (the process must already be gone).
    pub fn relaunch(&mut self) {
        assert!(self.child.is_none());
        self.launch();
    }

    pub fn tls_file(&self, name: &str) -> PathBuf {
        self.data_dir.join("server/tls").join(name)
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub fn kubectl(&self, version: &str, args: &[&str]) -> Output {
        Command::new(kubectl_bin(version))
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(args)
            .output()
            .unwrap()
    }

    /// kubectl that must succeed; returns stdout.
    pub fn kubectl_ok(&self, version: &str, args: &[&str]) -> String {
        let out = self.kubectl(version, args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// curl with the cluster CA verified and no client credentials.
    /// `args` ends with the path; returns (HTTP code, body).
    pub fn curl_anonymous(&self, args: &[&str]) -> (u16, String) {
        self.curl(false, args)
    }

    /// curl as system:admin (the admin client certificate).
    pub fn curl_admin(&self, args: &[&str]) -> (u16, String) {
        self.curl(true, args)
    }

    fn curl(&self, admin: bool, args: &[&str]) -> (u16, String) {
        let (path, opts) = args.split_last().unwrap();
        let mut cmd = Command::new("curl");
        cmd.args([
            "-s",
            "-S",
            "--max-time",
            "30",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
        ])
        .arg("--cacert")
        .arg(self.tls_file("server-ca.crt"));
        if admin {
            cmd.arg("--cert").arg(self.tls_file("client-admin.crt"));
            cmd.arg("--key").arg(self.tls_file("client-admin.key"));
        }
        let out = cmd.args(opts).arg(self.url(path)).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A `rustkube sim-nodes` process against a server, as system:admin.
/// Stopped by PID when dropped (or earlier with [`SimNodes::stop`]).
pub struct SimNodes {
    child: Option<Child>,
    log: PathBuf,
}

impl Server {
    /// Start simulated nodes with these flags (e.g. `--count=3`).
    pub fn sim_nodes(&self, args: &[&str]) -> SimNodes {
        let log = self
            .log
            .with_file_name(format!("sim-nodes-{}.log", free_port()));
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_rustkube"))
            .arg("sim-nodes")
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(args)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        SimNodes {
            child: Some(child),
            log,
        }
    }

    /// Poll `check` every 200 ms until it returns true; panics with `what`
    /// (and the server log) after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !check() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl SimNodes {
    /// Stop the process at once (kill -9), like a node losing power.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SimNodes {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `items[].metadata.name` of a list response.
pub fn item_names(list_json: &str) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(list_json).unwrap_or_else(|e| panic!("{e}: {list_json}"));
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Run a command and return its output, failing the test if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// The API behaviour every datastore must give: kubectl and curl against
/// namespaces and configmaps, over verified TLS.
pub fn api_smoke(server: &Server) {
    // kubectl (two versions) lists the system namespaces, TLS verified.
    for version in ["1.33", "1.29"] {
        let out = server.kubectl_ok(version, &["get", "ns", "-o", "name"]);
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            assert!(
                out.contains(&format!("namespace/{ns}")),
                "kubectl {version}: {out}"
            );
        }
    }
    let table = server.kubectl_ok("1.33", &["get", "ns"]);
    assert!(
        table.starts_with("NAME") && table.contains("STATUS") && table.contains("Active"),
        "{table}"
    );
    let readyz = server.kubectl_ok("1.33", &["get", "--raw", "/readyz?verbose"]);
    assert!(
        readyz.contains("[+]etcd ok") && readyz.contains("readyz check passed"),
        "{readyz}"
    );

    // No credentials: 401 with a Status body. Admin certificate: the list.
    let (code, body) = server.curl_anonymous(&["/api/v1/namespaces"]);
    assert_eq!(code, 401, "{body}");
    let status = json(&body);
    assert_eq!(
        (
            status["kind"].as_str(),
            status["code"].as_u64(),
            status["reason"].as_str()
        ),
        (Some("Status"), Some(401), Some("Unauthorized"))
    );
    let (code, body) = server.curl_admin(&["/api/v1/namespaces"]);
    assert_eq!(code, 200, "{body}");
    let mut names = item_names(&body);
    names.sort();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );

    let (code, body) = server.curl_admin(&["/version"]);
    assert_eq!(code, 200);
    let v = json(&body);
    assert_eq!(
        (v["major"].as_str(), v["minor"].as_str()),
        (Some("1"), Some("33"))
    );
    assert!(
        v["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1.33.0+rustkube."),
        "{body}"
    );

    configmap_lifecycle(server);
}

/// POST a JSON body as system:admin; returns (HTTP code, body).
pub fn post_json(server: &Server, path: &str, body: &str) -> (u16, String) {
    server.curl_admin(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        body,
        path,
    ])
}

/// `kubectl get <args> -o json` (kubectl 1.33), parsed.
pub fn get_json(server: &Server, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    json(&server.kubectl_ok("1.33", &all))
}

/// PUT a JSON body as system:admin; returns (HTTP code, body).
pub fn put_json(server: &Server, path: &str, body: &str) -> (u16, String) {
    server.curl_admin(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        body,
        path,
    ])
}

/// PATCH with the given patch content type as system:admin; returns (HTTP
/// code, body).
pub fn patch_json(server: &Server, path: &str, content_type: &str, body: &str) -> (u16, String) {
    server.curl_admin(&[
        "-X",
        "PATCH",
        "-H",
        &format!("Content-Type: {content_type}"),
        "--data-binary",
        body,
        path,
    ])
}

/// An object's `metadata.name` ("" when it has none).
pub fn name_of(object: &serde_json::Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The objects of `kind` labelled `app=<app>` (kubectl 1.33), by name.
pub fn labelled(server: &Server, kind: &str, app: &str) -> Vec<serde_json::Value> {
    let mut items = get_json(server, &[kind, "-l", &format!("app={app}")])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    items.sort_by_key(name_of);
    items
}

/// Create StatefulSet `name` in `default`: busybox pods labelled
/// `app=<name>` under service `name`, with `spec` merged over that.
pub fn create_stateful_set(server: &Server, name: &str, spec: serde_json::Value) {
    let mut full = serde_json::json!({
        "serviceName": name,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
    });
    if let (Some(full), Some(spec)) = (full.as_object_mut(), spec.as_object()) {
        full.extend(spec.clone());
    }
    let set = serde_json::json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                                 "metadata": {"name": name}, "spec": full});
    let (code, body) = post_json(
        server,
        "/apis/apps/v1/namespaces/default/statefulsets",
        &set.to_string(),
    );
    assert_eq!(code, 201, "{body}");
}

/// `kubectl patch statefulset <name> --type=merge -p <patch>` (kubectl 1.33).
pub fn patch_stateful_set(server: &Server, name: &str, patch: &serde_json::Value) {
    server.kubectl_ok(
        "1.33",
        &[
            "patch",
            "statefulset",
            name,
            "--type=merge",
            "-p",
            &patch.to_string(),
        ],
    );
}

fn configmap_lifecycle(server: &Server) {
    let base = "/api/v1/namespaces/default/configmaps";
    let (code, body) = server.curl_admin(&[base]);
    assert_eq!(code, 200, "{body}");
    let list_rv = json(&body)["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    // A watch from the list's revision sees the create that follows.
    let watch = Command::new("curl")
        .args(["-s", "-N", "--max-time", "20", "--cacert"])
        .arg(server.tls_file("server-ca.crt"))
        .arg("--cert")
        .arg(server.tls_file("client-admin.crt"))
        .arg("--key")
        .arg(server.tls_file("client-admin.key"))
        .arg(server.url(&format!(
            "{base}?watch=true&resourceVersion={list_rv}&timeoutSeconds=3"
        )))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();

    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"smoke","labels":{"app":"smoke"}},"data":{"k":"v1"}}"#;
    let (code, body) = post_json(server, base, cm);
    assert_eq!(code, 201, "{body}");
    let created = json(&body);
    let rv1 = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!created["metadata"]["uid"].as_str().unwrap().is_empty());
    assert_eq!(created["metadata"]["namespace"], "default");

    let (code, body) = post_json(server, base, cm);
    assert_eq!(
        (code, json(&body)["reason"].as_str()),
        (409, Some("AlreadyExists")),
        "{body}"
    );

    let (code, body) = server.curl_admin(&[&format!("{base}/smoke")]);
    assert_eq!(code, 200);
    assert_eq!(json(&body)["data"]["k"], "v1");

    // Update at the current revision succeeds and moves the revision; the
    // stale revision then conflicts; a no-op update keeps it.
    let update = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"smoke","resourceVersion":"{rv1}","labels":{{"app":"smoke"}}}},"data":{{"k":"v2"}}}}"#
    );
    let (code, body) = put_json(server, &format!("{base}/smoke"), &update);
    assert_eq!(code, 200, "{body}");
    let rv2 = json(&body)["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(rv1, rv2);
    let (code, body) = put_json(server, &format!("{base}/smoke"), &update);
    assert_eq!(
        (code, json(&body)["reason"].as_str()),
        (409, Some("Conflict")),
        "{body}"
    );
    assert!(json(&body)["message"]
        .as_str()
        .unwrap()
        .contains("the object has been modified"));
    let same = update.replace(&rv1, &rv2);
    let (code, body) = put_json(server, &format!("{base}/smoke"), &same);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        json(&body)["metadata"]["resourceVersion"].as_str(),
        Some(rv2.as_str())
    );

    // Label selectors filter lists.
    let (_, body) = server.curl_admin(&[&format!("{base}?labelSelector=app%3Dsmoke")]);
    assert_eq!(item_names(&body), ["smoke"]);
    // (`app` as well, so the kube-root-ca.crt ConfigMap, unlabelled, is out.)
    let (_, body) = server.curl_admin(&[&format!("{base}?labelSelector=app%2Capp%21%3Dsmoke")]);
    assert!(item_names(&body).is_empty(), "{body}");

    // Validation: 422 with causes.
    let (code, body) = post_json(
        server,
        base,
        r#"{"metadata":{"name":"Bad_Name"},"data":{"bad key":"x"}}"#,
    );
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        json(&body)["details"]["causes"].as_array().unwrap().len(),
        2,
        "{body}"
    );

    let (code, body) = server.curl_admin(&["-X", "DELETE", &format!("{base}/smoke")]);
    assert_eq!(code, 200, "{body}");
    let (code, body) = server.curl_admin(&[&format!("{base}/smoke")]);
    assert_eq!(
        (code, json(&body)["reason"].as_str()),
        (404, Some("NotFound")),
        "{body}"
    );

    let out = watch.wait_with_output().unwrap();
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(json)
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "DELETED"], "{events:?}");
    assert_eq!(
        events[0]["object"]["metadata"]["resourceVersion"].as_str(),
        Some(rv1.as_str())
    );
}

// ------------------------------------------------ other clients' credentials

impl Server {
    /// kubectl with no kubeconfig: the server's CA and `credential` flags
    /// (e.g. `--token=...`, or `--client-certificate=` and `--client-key=`).
    pub fn kubectl_as(&self, version: &str, credential: &[String], args: &[&str]) -> Output {
        Command::new(kubectl_bin(version))
            .arg("--kubeconfig=/dev/null")
            .arg(format!("--server=https://127.0.0.1:{}", self.port))
            .arg(format!(
                "--certificate-authority={}",
                self.tls_file("server-ca.crt").display()
            ))
            .args(credential)
            .args(args)
            .output()
            .unwrap()
    }

    /// kubectl with only a bearer token.
    pub fn kubectl_with_token(&self, version: &str, token: &str, args: &[&str]) -> Output {
        self.kubectl_as(version, &[format!("--token={token}")], args)
    }

    /// kubectl with a client certificate and key of its own.
    pub fn kubectl_with_cert(
        &self,
        version: &str,
        cert: &Path,
        key: &Path,
        args: &[&str],
    ) -> Output {
        let credential = [
            format!("--client-certificate={}", cert.display()),
            format!("--client-key={}", key.display()),
        ];
        self.kubectl_as(version, &credential, args)
    }

    /// A client certificate for `subject` (`/O=group/CN=user`) signed by
    /// the server's client CA with openssl, written to `dir` as
    /// `<name>.crt` and `<name>.key`.
    pub fn openssl_client_cert(&self, dir: &Path, name: &str, subject: &str) -> (PathBuf, PathBuf) {
        let (_, key) = openssl_csr(dir, name, subject);
        let crt = dir.join(format!("{name}.crt"));
        // Extensions make it an X.509 v3 client certificate, as TLS requires.
        let ext = dir.join(format!("{name}.ext"));
        std::fs::write(
            &ext,
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        let out = Command::new("openssl")
            .args(["x509", "-req", "-days", "1", "-CAcreateserial"])
            .arg("-extfile")
            .arg(&ext)
            .arg("-in")
            .arg(dir.join(format!("{name}.csr")))
            .arg("-CA")
            .arg(self.tls_file("client-ca.crt"))
            .arg("-CAkey")
            .arg(self.tls_file("client-ca.key"))
            .arg("-out")
            .arg(&crt)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (crt, key)
    }
}

/// A P-256 key and a CSR for `subject` made with openssl in `dir`
/// (`<name>.key`, `<name>.csr`); returns the CSR PEM in base64 (as the
/// certificates API wants it) and the key's path.
pub fn openssl_csr(dir: &Path, name: &str, subject: &str) -> (String, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .args(["-subj", subject])
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = std::fs::read(&csr).unwrap();
    (
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pem),
        key,
    )
}

/// stdout and stderr of a command, together.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
