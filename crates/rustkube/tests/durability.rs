//! Crash safety of the embedded datastore: whatever the API acknowledged
//! survives a `kill -9` of the server, and nothing half-written appears.
//!
//! Sixteen writers hammer the server over HTTPS; once enough writes have
//! been acknowledged the server is SIGKILLed while writes are in flight,
//! then started again on the same data dir and read back.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::Server;

const WRITERS: usize = 16;
/// Acknowledged writes before the crash, so a pass is never vacuous.
const MIN_ACKNOWLEDGED: usize = 300;
/// Bytes of payload in every object.
const PAYLOAD_BYTES: usize = 1024;
const NAMESPACE: &str = "durability";
const CONFIGMAPS: &str = "/api/v1/namespaces/durability/configmaps";

#[test]
fn acknowledged_creates_survive_kill_9() {
    // Only the test writes: no controllers.
    let mut server = Server::start(&["--disable-controller-manager", "--disable-scheduler"]);
    create_namespace(&server);

    let logs = crash_during_writes(&mut server, create_until_failure);
    server.relaunch();

    let attempted: usize = logs.iter().map(|l| l.attempted).sum();
    let acknowledged: Vec<&Ack> = logs.iter().flat_map(|l| &l.acknowledged).collect();
    assert!(
        acknowledged.len() >= MIN_ACKNOWLEDGED,
        "only {} creates acknowledged",
        acknowledged.len()
    );
    assert_stopped_only_by_the_crash(&logs);

    let stored = list_configmaps(&server);
    // Every acknowledged create is there, exactly as acknowledged.
    for ack in &acknowledged {
        let item = stored.get(&ack.name).unwrap_or_else(|| {
            panic!(
                "acknowledged create of {} lost ({} of {attempted} attempted creates acknowledged)",
                ack.name,
                acknowledged.len()
            )
        });
        assert_eq!(item["data"], data_for(&ack.name, 0), "{}", ack.name);
        assert_resource_version(item, ack);
    }
    // Anything else there was in flight at the crash, and is complete.
    let in_flight: BTreeSet<String> = logs
        .iter()
        .filter(|l| l.attempted > l.acknowledged.len())
        .map(|l| created_name(l.writer, l.attempted - 1))
        .collect();
    for (name, item) in &stored {
        let was_acknowledged = acknowledged.iter().any(|a| &a.name == name);
        assert!(
            was_acknowledged || in_flight.contains(name),
            "{name} stored but neither acknowledged nor in flight at the crash"
        );
        assert_eq!(item["data"], data_for(name, 0), "{name}");
        assert_complete_metadata(item);
    }

    // The revision carries on above everything acknowledged.
    let newest = acknowledged
        .iter()
        .filter_map(|a| a.resource_version)
        .max()
        .unwrap();
    let (code, body) = support::post_json(&server, CONFIGMAPS, &configmap("after-crash", 0, None));
    assert_eq!(code, 201, "{body}");
    assert!(resource_version(&support::json(&body)) > newest, "{body}");
}

#[test]
fn acknowledged_updates_survive_kill_9() {
    // Only the test writes: no controllers.
    let mut server = Server::start(&["--disable-controller-manager", "--disable-scheduler"]);
    create_namespace(&server);
    let mut created = Vec::new();
    for writer in 0..WRITERS {
        let name = updated_name(writer);
        let (code, body) = support::post_json(&server, CONFIGMAPS, &configmap(&name, 0, None));
        assert_eq!(code, 201, "{body}");
        created.push(resource_version(&support::json(&body)));
    }

    let logs = crash_during_writes(&mut server, |server, writer, progress| {
        update_until_failure(server, writer, created[writer], progress)
    });
    server.relaunch();

    let acknowledged: usize = logs.iter().map(|l| l.acknowledged.len()).sum();
    assert!(
        acknowledged >= MIN_ACKNOWLEDGED,
        "only {acknowledged} updates acknowledged"
    );
    assert_stopped_only_by_the_crash(&logs);

    for log in &logs {
        let name = updated_name(log.writer);
        let (code, body) = server.curl_admin(&[&format!("{CONFIGMAPS}/{name}")]);
        assert_eq!(code, 200, "{body}");
        let item = support::json(&body);
        assert_complete_metadata(&item);
        // The last acknowledged generation, or the one in flight at the
        // crash; each stored in full.
        let generation = item["data"]["generation"]
            .as_str()
            .unwrap()
            .parse::<usize>()
            .unwrap();
        let acknowledged = log.acknowledged.len();
        assert!(
            generation == acknowledged || (generation == log.attempted && log.attempted > acknowledged),
            "{name}: stored generation {generation}, {acknowledged} updates acknowledged, {} attempted",
            log.attempted
        );
        assert_eq!(item["data"], data_for(&name, generation), "{name}");
        if let Some(ack) = log
            .acknowledged
            .last()
            .filter(|_| generation == acknowledged)
        {
            assert_resource_version(&item, ack);
        }
    }
}

/// What one writer did before it stopped.
#[derive(Debug)]
struct WriterLog {
    writer: usize,
    attempted: usize,
    acknowledged: Vec<Ack>,
    /// The HTTP code (0: no response) and body of the request it stopped on.
    stopped_on: (u16, String),
    /// Whether the crash had begun when it stopped.
    stopped_after_crash: bool,
}

/// An acknowledged write: the object's name and the resourceVersion the
/// response carried (absent only if the response was cut short).
#[derive(Debug)]
struct Ack {
    name: String,
    resource_version: Option<u64>,
}

/// Shared between the writers and the thread that crashes the server.
struct Progress {
    acknowledged: AtomicUsize,
    crashed: AtomicBool,
}

/// Run `write(server, writer, progress)` on [`WRITERS`] threads and SIGKILL
/// the server once [`MIN_ACKNOWLEDGED`] writes have been acknowledged, with
/// the writers still going. Returns each writer's log; the server process
/// is gone and reaped.
fn crash_during_writes<W>(server: &mut Server, write: W) -> Vec<WriterLog>
where
    W: Fn(&Server, usize, &Progress) -> WriterLog + Sync,
{
    let progress = Progress {
        acknowledged: AtomicUsize::new(0),
        crashed: AtomicBool::new(false),
    };
    let pid = server.pid();
    let logs = std::thread::scope(|scope| {
        let (server, write, progress) = (&*server, &write, &progress);
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| scope.spawn(move || write(server, w, progress)))
            .collect();
        // A generous bound so a stalled server fails the test instead of
        // hanging it; the assertions on the logs say what went wrong.
        let deadline = Instant::now() + Duration::from_secs(120);
        while progress.acknowledged.load(Ordering::SeqCst) < MIN_ACKNOWLEDGED
            && !writers.iter().all(|w| w.is_finished())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        progress.crashed.store(true, Ordering::SeqCst);
        // The writers borrow the server, so crash it by PID (SIGKILL, as
        // `Server::kill9` does); `kill9` below reaps it.
        let killed = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success(), "cannot SIGKILL server pid {pid}");
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    server.kill9();
    logs
}

/// Create `d-<writer>-0`, `d-<writer>-1`, ... until a create is not
/// acknowledged.
fn create_until_failure(server: &Server, writer: usize, progress: &Progress) -> WriterLog {
    let mut log = new_log(writer);
    loop {
        let name = created_name(writer, log.attempted);
        log.attempted += 1;
        let (code, body) = support::post_json(server, CONFIGMAPS, &configmap(&name, 0, None));
        if code != 201 {
            return stop(log, code, body, progress);
        }
        log.acknowledged.push(acknowledge(&name, &body, progress));
    }
}

/// Replace `u-<writer>` with generation 1, 2, ... (each at the previous
/// resourceVersion) until an update is not acknowledged.
fn update_until_failure(
    server: &Server,
    writer: usize,
    created: u64,
    progress: &Progress,
) -> WriterLog {
    let name = updated_name(writer);
    let mut log = new_log(writer);
    let mut current = Some(created);
    loop {
        log.attempted += 1;
        let body = configmap(&name, log.attempted, current);
        let (code, body) = support::put_json(server, &format!("{CONFIGMAPS}/{name}"), &body);
        if code != 200 {
            return stop(log, code, body, progress);
        }
        let ack = acknowledge(&name, &body, progress);
        current = ack.resource_version;
        log.acknowledged.push(ack);
        if current.is_none() {
            // A cut-short response: the crash has begun.
            return stop(log, 0, String::new(), progress);
        }
    }
}

fn new_log(writer: usize) -> WriterLog {
    WriterLog {
        writer,
        attempted: 0,
        acknowledged: Vec::new(),
        stopped_on: (0, String::new()),
        stopped_after_crash: false,
    }
}

fn stop(mut log: WriterLog, code: u16, body: String, progress: &Progress) -> WriterLog {
    log.stopped_on = (code, body);
    log.stopped_after_crash = progress.crashed.load(Ordering::SeqCst);
    log
}

fn acknowledge(name: &str, body: &str, progress: &Progress) -> Ack {
    progress.acknowledged.fetch_add(1, Ordering::SeqCst);
    let resource_version = serde_json::from_str::<Value>(body)
        .ok()
        .map(|v| resource_version(&v));
    Ack {
        name: name.to_string(),
        resource_version,
    }
}

/// Until the crash every write is acknowledged; after it no response
/// arrives at all.
fn assert_stopped_only_by_the_crash(logs: &[WriterLog]) {
    for log in logs {
        let (code, body) = &log.stopped_on;
        assert!(
            log.stopped_after_crash && *code == 0,
            "writer {} stopped {} the crash after {} writes on HTTP {code}: {body}",
            log.writer,
            if log.stopped_after_crash {
                "after"
            } else {
                "before"
            },
            log.attempted
        );
    }
}

fn assert_resource_version(item: &Value, ack: &Ack) {
    if let Some(acknowledged) = ack.resource_version {
        assert_eq!(resource_version(item), acknowledged, "{}: {item}", ack.name);
    }
}

fn assert_complete_metadata(item: &Value) {
    let meta = &item["metadata"];
    assert_eq!(meta["namespace"], NAMESPACE, "{item}");
    for field in ["name", "uid", "creationTimestamp"] {
        assert!(
            meta[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field} missing: {item}"
        );
    }
    resource_version(item);
}

fn resource_version(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or_else(|| panic!("no numeric resourceVersion: {object}"))
}

/// Every configmap in the namespace, by name; each item must decode.
fn list_configmaps(server: &Server) -> BTreeMap<String, Value> {
    let (code, body) = server.curl_admin(&[CONFIGMAPS]);
    assert_eq!(code, 200, "{body}");
    let list = support::json(&body);
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {body}"))
        .iter()
        .map(|item| {
            (
                item["metadata"]["name"].as_str().unwrap().to_string(),
                item.clone(),
            )
        })
        .collect()
}

fn created_name(writer: usize, i: usize) -> String {
    format!("d-{writer}-{i}")
}

fn updated_name(writer: usize) -> String {
    format!("u-{writer}")
}

/// The data of `name` at `generation`: a payload no other object or
/// generation shares, so a mix-up or a torn write cannot go unnoticed.
fn data_for(name: &str, generation: usize) -> Value {
    let stamp = format!("{name}@{generation};");
    let payload: String = stamp.chars().cycle().take(PAYLOAD_BYTES).collect();
    json!({ "generation": generation.to_string(), "payload": payload })
}

fn configmap(name: &str, generation: usize, resource_version: Option<u64>) -> String {
    let mut metadata = json!({ "name": name });
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = json!(rv.to_string());
    }
    json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data_for(name, generation) }).to_string()
}

fn create_namespace(server: &Server) {
    let (code, body) = support::post_json(
        server,
        "/api/v1/namespaces",
        &json!({ "metadata": { "name": NAMESPACE } }).to_string(),
    );
    assert_eq!(code, 201, "{body}");
}
