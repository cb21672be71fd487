//! The behavioural contract of [`Store`], as one suite run unchanged on every
//! backend.
//!
//! Each check is a public async function taking `&dyn Store` and returning
//! [`CheckResult`]; [`run_all`] runs them in order and panics with the names
//! of the failed ones. Every check writes only under its own unique prefix,
//! so the suite can run against a shared store (for example an etcd that
//! other tests use) — except [`compacted_revision_is_rejected`], which
//! compacts the whole store's history up to its own writes (run it last, as
//! [`run_all`] does).
//!
//! This module is compiled into the library (not only under `cfg(test)`) so
//! that other crates' tests can run it against their stores too.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::{join_all, BoxFuture};
use futures::StreamExt;

use crate::{
    EventType, KeyValue, RangeRequest, RangeResponse, Revision, StorageError, Store, WatchEvent,
    WatchStream,
};

/// The outcome of one check: `Err` carries what went wrong.
pub type CheckResult = Result<(), String>;

/// A named check of the suite.
pub type Check = for<'a> fn(&'a dyn Store) -> BoxFuture<'a, CheckResult>;

/// How long a check waits for an expected watch event.
const WATCH_TIMEOUT: Duration = Duration::from_secs(15);

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

macro_rules! checks {
    ($($name:ident),+ $(,)?) => {
        /// Every check, in the order [`run_all`] runs them.
        pub const ALL: &[(&str, Check)] = &[
            $((stringify!($name), |store| Box::pin($name(store)))),+
        ];
    };
}

checks!(
    revisions_strictly_increase,
    create_is_create_if_absent,
    update_requires_expected_mod_revision,
    delete_requires_expected_mod_revision,
    update_and_delete_of_missing_key_are_not_found,
    invalid_requests_are_rejected,
    range_with_prefix_excludes_other_prefixes,
    range_pages_are_stable_at_a_fixed_revision,
    range_at_past_revision_sees_old_values,
    range_at_future_revision_is_rejected,
    watch_from_past_revision_replays_then_goes_live,
    watch_from_now_sees_only_later_events,
    concurrent_increments_never_lose_updates,
    concurrent_creates_of_distinct_keys_all_land,
    compacted_revision_is_rejected,
);

/// The result of [`run_all_report`].
#[derive(Debug)]
pub struct Report {
    pub backend: &'static str,
    pub results: Vec<(&'static str, CheckResult)>,
}

impl Report {
    pub fn failures(&self) -> Vec<(&'static str, &str)> {
        self.results
            .iter()
            .filter_map(|(name, result)| result.as_ref().err().map(|err| (*name, err.as_str())))
            .collect()
    }

    pub fn passed(&self) -> bool {
        self.results.iter().all(|(_, result)| result.is_ok())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, result) in &self.results {
            match result {
                Ok(()) => writeln!(f, "conformance[{}] {name} ... ok", self.backend)?,
                Err(err) => writeln!(f, "conformance[{}] {name} ... FAILED: {err}", self.backend)?,
            }
        }
        Ok(())
    }
}

/// Run every check and report each outcome (without panicking).
pub async fn run_all_report(store: &dyn Store) -> Report {
    let mut results = Vec::new();
    for (name, check) in ALL {
        let result = check(store).await;
        match &result {
            Ok(()) => println!("conformance[{}] {name} ... ok", store.backend_name()),
            Err(err) => println!(
                "conformance[{}] {name} ... FAILED: {err}",
                store.backend_name()
            ),
        }
        results.push((*name, result));
    }
    Report {
        backend: store.backend_name(),
        results,
    }
}

/// Run every check; panic listing the failed ones. Meant for tests.
pub async fn run_all(store: &dyn Store) {
    let report = run_all_report(store).await;
    if !report.passed() {
        let failures: Vec<String> = report
            .failures()
            .into_iter()
            .map(|(name, err)| format!("  {name}: {err}"))
            .collect();
        panic!(
            "{} conformance check(s) failed on {}:\n{}",
            failures.len(),
            report.backend,
            failures.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------
// Helpers

/// A prefix no other check (or other run of the suite) uses.
pub fn unique_prefix(check: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "/conformance/{check}/{:x}-{:x}-{n}/",
        std::process::id(),
        nanos
    )
}

fn ctx<T>(what: &str, result: crate::Result<T>) -> Result<T, String> {
    result.map_err(|err| format!("{what}: unexpected error: {err:?}"))
}

fn range_req(prefix: &str) -> RangeRequest {
    RangeRequest {
        prefix: prefix.to_owned(),
        ..RangeRequest::default()
    }
}

fn keys(resp: &RangeResponse) -> Vec<&str> {
    resp.kvs.iter().map(|kv| kv.key.as_str()).collect()
}

async fn next_event(stream: &mut WatchStream, what: &str) -> Result<WatchEvent, String> {
    match tokio::time::timeout(WATCH_TIMEOUT, stream.next()).await {
        Err(_) => Err(format!("{what}: no watch event within {WATCH_TIMEOUT:?}")),
        Ok(None) => Err(format!("{what}: watch stream ended")),
        Ok(Some(Err(err))) => Err(format!("{what}: watch error: {err:?}")),
        Ok(Some(Ok(event))) => Ok(event),
    }
}

fn expect_event(
    event: &WatchEvent,
    event_type: EventType,
    kv: &KeyValue,
    prev_kv: Option<&KeyValue>,
    what: &str,
) -> CheckResult {
    ensure!(
        event.event_type == event_type,
        "{what}: expected {event_type:?} event, got {event:?}"
    );
    ensure!(
        &event.kv == kv,
        "{what}: expected kv {kv:?}, got {:?}",
        event.kv
    );
    ensure!(
        event.prev_kv.as_ref() == prev_kv,
        "{what}: expected prev_kv {prev_kv:?}, got {:?}",
        event.prev_kv
    );
    Ok(())
}

/// The key a delete returns and a delete event carries: the last value, the
/// deleting revision as mod revision.
fn deleted(kv: &KeyValue, revision: Revision) -> KeyValue {
    KeyValue {
        mod_revision: revision,
        ..kv.clone()
    }
}

// ---------------------------------------------------------------------------
// Checks

/// Every write gets a revision above all earlier ones; `get` and
/// `current_revision` report at least the latest write.
pub async fn revisions_strictly_increase(store: &dyn Store) -> CheckResult {
    let p = unique_prefix("revisions");
    let start = ctx("current_revision", store.current_revision().await)?;
    ensure!(start >= 1, "current revision {start} is below 1");
    let mut last = start;
    let a = ctx(
        "create a",
        store.create(&format!("{p}a"), b"1".to_vec()).await,
    )?;
    ensure!(
        a.mod_revision > last,
        "create got revision {} after {last}",
        a.mod_revision
    );
    ensure!(
        a.create_revision == a.mod_revision,
        "a new key must have create_revision == mod_revision: {a:?}"
    );
    last = a.mod_revision;
    let b = ctx(
        "create b",
        store.create(&format!("{p}b"), b"1".to_vec()).await,
    )?;
    ensure!(
        b.mod_revision > last,
        "create got revision {} after {last}",
        b.mod_revision
    );
    last = b.mod_revision;
    let a2 = ctx(
        "update a",
        store.update(&a.key, b"2".to_vec(), a.mod_revision).await,
    )?;
    ensure!(
        a2.mod_revision > last,
        "update got revision {} after {last}",
        a2.mod_revision
    );
    ensure!(
        a2.create_revision == a.create_revision,
        "update changed create_revision: {a:?} -> {a2:?}"
    );
    last = a2.mod_revision;
    let gone = ctx("delete b", store.delete(&b.key, None).await)?;
    ensure!(
        gone.mod_revision > last,
        "delete got revision {} after {last}",
        gone.mod_revision
    );
    ensure!(
        gone == deleted(&b, gone.mod_revision),
        "delete returned {gone:?}, expected the last value of {b:?}"
    );
    last = gone.mod_revision;
    let (got, rev) = ctx("get a", store.get(&a.key).await)?;
    ensure!(
        got.as_ref() == Some(&a2),
        "get a returned {got:?}, expected {a2:?}"
    );
    ensure!(
        rev >= last,
        "get reported revision {rev} below the last write {last}"
    );
    let (got, _) = ctx("get b", store.get(&b.key).await)?;
    ensure!(got.is_none(), "deleted key still readable: {got:?}");
    let current = ctx("current_revision", store.current_revision().await)?;
    ensure!(
        current >= last,
        "current revision {current} below the last write {last}"
    );
    // Recreating a deleted key starts a new incarnation.
    let b2 = ctx("recreate b", store.create(&b.key, b"again".to_vec()).await)?;
    ensure!(
        b2.mod_revision > last,
        "recreate got revision {} after {last}",
        b2.mod_revision
    );
    ensure!(
        b2.create_revision == b2.mod_revision,
        "recreated key kept an old create_revision: {b2:?}"
    );
    Ok(())
}

/// A second create of an existing key fails with KeyExists and changes
/// nothing.
pub async fn create_is_create_if_absent(store: &dyn Store) -> CheckResult {
    let key = format!("{}k", unique_prefix("create"));
    let first = ctx("first create", store.create(&key, b"one".to_vec()).await)?;
    match store.create(&key, b"two".to_vec()).await {
        Err(StorageError::KeyExists(k)) => ensure!(k == key, "KeyExists names {k}, not {key}"),
        other => return Err(format!("second create: expected KeyExists, got {other:?}")),
    }
    let (got, _) = ctx("get", store.get(&key).await)?;
    ensure!(
        got.as_ref() == Some(&first),
        "failed create changed the key: {got:?}"
    );
    Ok(())
}

/// An update at a stale mod revision fails with Conflict carrying the
/// current key; at the right one it succeeds.
pub async fn update_requires_expected_mod_revision(store: &dyn Store) -> CheckResult {
    let key = format!("{}k", unique_prefix("update"));
    let v1 = ctx("create", store.create(&key, b"1".to_vec()).await)?;
    let v2 = ctx(
        "update",
        store.update(&key, b"2".to_vec(), v1.mod_revision).await,
    )?;
    ensure!(v2.value == b"2", "update returned value {:?}", v2.value);
    match store.update(&key, b"3".to_vec(), v1.mod_revision).await {
        Err(StorageError::Conflict {
            key: k,
            expected,
            current,
        }) => {
            ensure!(k == key, "Conflict names {k}, not {key}");
            ensure!(
                expected == v1.mod_revision,
                "Conflict expected {expected}, sent {}",
                v1.mod_revision
            );
            ensure!(
                current.as_ref() == Some(&v2),
                "Conflict current is {current:?}, expected {v2:?}"
            );
        }
        other => return Err(format!("stale update: expected Conflict, got {other:?}")),
    }
    let (got, _) = ctx("get", store.get(&key).await)?;
    ensure!(
        got.as_ref() == Some(&v2),
        "stale update changed the key: {got:?}"
    );
    Ok(())
}

/// A delete at a stale mod revision fails with Conflict carrying the current
/// key; at the right one (or unconditionally) it succeeds.
pub async fn delete_requires_expected_mod_revision(store: &dyn Store) -> CheckResult {
    let p = unique_prefix("delete");
    let key = format!("{p}k");
    let v1 = ctx("create", store.create(&key, b"1".to_vec()).await)?;
    let v2 = ctx(
        "update",
        store.update(&key, b"2".to_vec(), v1.mod_revision).await,
    )?;
    match store.delete(&key, Some(v1.mod_revision)).await {
        Err(StorageError::Conflict { current, .. }) => ensure!(
            current.as_ref() == Some(&v2),
            "Conflict current is {current:?}, expected {v2:?}"
        ),
        other => return Err(format!("stale delete: expected Conflict, got {other:?}")),
    }
    let gone = ctx("delete", store.delete(&key, Some(v2.mod_revision)).await)?;
    ensure!(
        gone.mod_revision > v2.mod_revision && gone == deleted(&v2, gone.mod_revision),
        "delete returned {gone:?}, expected {v2:?} at a later revision"
    );
    let (got, _) = ctx("get", store.get(&key).await)?;
    ensure!(got.is_none(), "deleted key still readable: {got:?}");
    let other = format!("{p}unconditional");
    let made = ctx("create", store.create(&other, b"x".to_vec()).await)?;
    let gone = ctx("unconditional delete", store.delete(&other, None).await)?;
    ensure!(
        gone == deleted(&made, gone.mod_revision) && gone.mod_revision > made.mod_revision,
        "unconditional delete returned {gone:?}"
    );
    Ok(())
}

/// Update and delete of a key that does not exist (or no longer exists)
/// fail with NotFound.
pub async fn update_and_delete_of_missing_key_are_not_found(store: &dyn Store) -> CheckResult {
    let p = unique_prefix("missing");
    let key = format!("{p}never");
    match store.update(&key, b"x".to_vec(), 5).await {
        Err(StorageError::NotFound(k)) => ensure!(k == key, "NotFound names {k}"),
        other => {
            return Err(format!(
                "update of missing key: expected NotFound, got {other:?}"
            ))
        }
    }
    match store.delete(&key, None).await {
        Err(StorageError::NotFound(_)) => {}
        other => {
            return Err(format!(
                "delete of missing key: expected NotFound, got {other:?}"
            ))
        }
    }
    match store.delete(&key, Some(5)).await {
        Err(StorageError::NotFound(_)) => {}
        other => {
            return Err(format!(
                "conditional delete of missing key: expected NotFound, got {other:?}"
            ))
        }
    }
    let gone = format!("{p}gone");
    let kv = ctx("create", store.create(&gone, b"x".to_vec()).await)?;
    ctx("delete", store.delete(&gone, None).await)?;
    match store.update(&gone, b"y".to_vec(), kv.mod_revision).await {
        Err(StorageError::NotFound(_)) => {}
        other => {
            return Err(format!(
                "update of deleted key: expected NotFound, got {other:?}"
            ))
        }
    }
    let (got, _) = ctx("get", store.get(&gone).await)?;
    ensure!(
        got.is_none(),
        "update of a deleted key recreated it: {got:?}"
    );
    Ok(())
}

/// Malformed requests fail with InvalidRequest before touching the data.
pub async fn invalid_requests_are_rejected(store: &dyn Store) -> CheckResult {
    let p = unique_prefix("invalid");
    let invalid = |what: &str, result: crate::Result<()>| match result {
        Err(StorageError::InvalidRequest(_)) => Ok(()),
        other => Err(format!("{what}: expected InvalidRequest, got {other:?}")),
    };
    invalid(
        "create with empty key",
        store.create("", b"x".to_vec()).await.map(drop),
    )?;
    invalid(
        "update at revision 0",
        store
            .update(&format!("{p}k"), b"x".to_vec(), 0)
            .await
            .map(drop),
    )?;
    invalid(
        "negative limit",
        store
            .range(RangeRequest {
                limit: -1,
                ..range_req(&p)
            })
            .await
            .map(drop),
    )?;
    invalid(
        "start key outside the prefix",
        store
            .range(RangeRequest {
                start_key: Some("/elsewhere".into()),
                ..range_req(&p)
            })
            .await
            .map(drop),
    )?;
    invalid(
        "watch from a negative revision",
        store.watch(&p, -1).await.map(drop),
    )?;
    Ok(())
}

/// A range returns exactly the live keys under its prefix, in order, and
/// nothing under a sibling prefix.
pub async fn range_with_prefix_excludes_other_prefixes(store: &dyn Store) -> CheckResult {
    let base = unique_prefix("prefix");
    let p = format!("{base}pods/");
    // Sibling prefixes that share the string "…/pods" but not "…/pods/".
    let siblings = [
        format!("{base}pods"),
        format!("{base}podsx/a"),
        format!("{base}pod/a"),
    ];
    for key in &siblings {
        ctx("create sibling", store.create(key, b"s".to_vec()).await)?;
    }
    for name in ["c", "a", "b/nested", "b"] {
        ctx(
            "create",
            store
                .create(&format!("{p}{name}"), name.as_bytes().to_vec())
                .await,
        )?;
    }
    ctx("delete b", store.delete(&format!("{p}b"), None).await)?;
    let resp = ctx("range", store.range(range_req(&p)).await)?;
    let expected: Vec<String> = ["a", "b/nested", "c"]
        .iter()
        .map(|n| format!("{p}{n}"))
        .collect();
    ensure!(
        keys(&resp) == expected.iter().map(String::as_str).collect::<Vec<_>>(),
        "range returned {:?}, expected {expected:?}",
        keys(&resp)
    );
    ensure!(
        !resp.more && resp.remaining == 0,
        "unlimited range reports more={} remaining={}",
        resp.more,
        resp.remaining
    );
    for kv in &resp.kvs {
        let name = kv.key.trim_start_matches(&p);
        ensure!(
            kv.value == name.as_bytes(),
            "{} has value {:?}",
            kv.key,
            kv.value
        );
    }
    let current = ctx("current_revision", store.current_revision().await)?;
    ensure!(
        resp.revision >= 1 && resp.revision <= current,
        "range revision {} outside [1, {current}]",
        resp.revision
    );
    let all = ctx("range base", store.range(range_req(&base)).await)?;
    ensure!(
        all.kvs.len() == 6,
        "range over the base prefix returned {:?}",
        keys(&all)
    );
    Ok(())
}

/// Paginating with limit + start_key at the first page's revision gives a
/// consistent snapshot even while the range is being written to.
pub async fn range_pages_are_stable_at_a_fixed_revision(store: &dyn Store) -> CheckResult {
    let p = unique_prefix("pages");
    let key = |i: u32| format!("{p}k{i:02}");
    let mut made = Vec::new();
    for i in 0..10 {
        made.push(ctx(
            "create",
            store.create(&key(i), format!("v{i}").into_bytes()).await,
        )?);
    }
    let page1 = ctx(
        "page 1",
        store
            .range(RangeRequest {
                limit: 4,
                ..range_req(&p)
            })
            .await,
    )?;
    ensure!(
        page1.kvs == made[0..4],
        "page 1 returned {:?}",
        keys(&page1)
    );
    ensure!(
        page1.more && page1.remaining == 6,
        "page 1: more={} remaining={}, expected true and 6",
        page1.more,
        page1.remaining
    );
    let at = page1.revision;
    ensure!(
        at >= made[9].mod_revision,
        "page 1 served at revision {at}, before the last create {}",
        made[9].mod_revision
    );

    // Writes between the pages must not show up when reading at `at`.
    ctx(
        "update k05",
        store
            .update(&key(5), b"new".to_vec(), made[5].mod_revision)
            .await,
    )?;
    ctx(
        "create k03a",
        store.create(&format!("{p}k03a"), b"new".to_vec()).await,
    )?;
    ctx(
        "create k04a",
        store.create(&format!("{p}k04a"), b"new".to_vec()).await,
    )?;
    ctx("delete k08", store.delete(&key(8), None).await)?;

    let continue_after = |last: &KeyValue| format!("{}\0", last.key);
    let page2 = ctx(
        "page 2",
        store
            .range(RangeRequest {
                start_key: Some(continue_after(&made[3])),
                limit: 4,
                revision: at,
                ..range_req(&p)
            })
            .await,
    )?;
    ensure!(
        page2.kvs == made[4..8],
        "page 2 at revision {at} returned {:?}, expected k04..k07 with their old values",
        page2.kvs
    );
    ensure!(
        page2.more && page2.remaining == 2 && page2.revision == at,
        "page 2: more={} remaining={} revision={}, expected true, 2, {at}",
        page2.more,
        page2.remaining,
        page2.revision
    );
    let page3 = ctx(
        "page 3",
        store
            .range(RangeRequest {
                start_key: Some(continue_after(&made[7])),
                limit: 4,
                revision: at,
                ..range_req(&p)
            })
            .await,
    )?;
    ensure!(
        page3.kvs == made[8..10],
        "page 3 returned {:?}",
        keys(&page3)
    );
    ensure!(
        !page3.more && page3.remaining == 0,
        "last page: more={} remaining={}",
        page3.more,
        page3.remaining
    );

    let latest = ctx("latest range", store.range(range_req(&p)).await)?;
    let expected: Vec<String> = [
        "k00", "k01", "k02", "k03", "k03a", "k04", "k04a", "k05", "k06", "k07", "k09",
    ]
    .iter()
    .map(|n| format!("{p}{n}"))
    .collect();
    ensure!(
        keys(&latest) == expected.iter().map(String::as_str).collect::<Vec<_>>(),
        "latest range returned {:?}",
        keys(&latest)
    );
    ensure!(
        latest.kvs[7].value == b"new",
        "latest k05 is {:?}",
        latest.kvs[7]
    );
    Ok(())
}

/// A range at a past revision returns the keys and values as they were.
pub async fn range_at_past_revision_sees_old_values(store: &dyn Store) -> CheckResult {
    let p = unique_prefix("past");
    let a1 = ctx(
        "create a",
        store.create(&format!("{p}a"), b"a1".to_vec()).await,
    )?;
    let b1 = ctx(
        "create b",
        store.create(&format!("{p}b"), b"b1".to_vec()).await,
    )?;
    let then = b1.mod_revision;
    let a2 = ctx(
        "update a",
        store.update(&a1.key, b"a2".to_vec(), a1.mod_revision).await,
    )?;
    ctx("delete b", store.delete(&b1.key, None).await)?;
    let c1 = ctx(
        "create c",
        store.create(&format!("{p}c"), b"c1".to_vec()).await,
    )?;

    let old = ctx(
        "range at past revision",
        store
            .range(RangeRequest {
                revision: then,
                ..range_req(&p)
            })
            .await,
    )?;
    ensure!(
        old.kvs == vec![a1.clone(), b1.clone()] && old.revision == then,
        "range at {then} returned {:?} at {}, expected [a1, b1]",
        old.kvs,
        old.revision
    );
    let first = ctx(
        "range at a's creation",
        store
            .range(RangeRequest {
                revision: a1.mod_revision,
                ..range_req(&p)
            })
            .await,
    )?;
    ensure!(
        first.kvs == vec![a1],
        "range at a's creation returned {:?}",
        first.kvs
    );
    let now = ctx("latest range", store.range(range_req(&p)).await)?;
    ensure!(
        now.kvs == vec![a2, c1],
        "latest range returned {:?}",
        now.kvs
    );
    Ok(())
}

/// A range at a revision that does not exist yet fails with FutureRevision.
pub async fn range_at_future_revision_is_rejected(store: &dyn Store) -> CheckResult {
    let p = unique_prefix("future");
    let current = ctx("current_revision", store.current_revision().await)?;
    match store
        .range(RangeRequest {
            revision: current + 1000,
            ..range_req(&p)
        })
        .await
    {
        Err(StorageError::FutureRevision {
            requested,
            current: reported,
        }) => {
            ensure!(
                requested == current + 1000,
                "FutureRevision requested={requested}"
            );
            ensure!(
                reported >= current && reported < current + 1000,
                "FutureRevision current={reported}, store was at {current}"
            );
            Ok(())
        }
        other => Err(format!("expected FutureRevision, got {other:?}")),
    }
}

/// A watch from a past revision delivers every event under its prefix since
/// then (puts and deletes, with prev_kv), in order, then live events.
pub async fn watch_from_past_revision_replays_then_goes_live(store: &dyn Store) -> CheckResult {
    let p = unique_prefix("watch");
    let elsewhere = unique_prefix("watch-elsewhere");
    let a1 = ctx(
        "create a",
        store.create(&format!("{p}a"), b"a1".to_vec()).await,
    )?;
    let b1 = ctx(
        "create b",
        store.create(&format!("{p}b"), b"b1".to_vec()).await,
    )?;
    ctx(
        "create elsewhere",
        store.create(&format!("{elsewhere}x"), b"x".to_vec()).await,
    )?;
    let a2 = ctx(
        "update a",
        store.update(&a1.key, b"a2".to_vec(), a1.mod_revision).await,
    )?;
    let b_gone = ctx(
        "delete b",
        store.delete(&b1.key, Some(b1.mod_revision)).await,
    )?;

    let mut stream = ctx("watch", store.watch(&p, a1.mod_revision).await)?;
    let history = [
        (EventType::Put, a1.clone(), None, "replayed create a"),
        (EventType::Put, b1.clone(), None, "replayed create b"),
        (
            EventType::Put,
            a2.clone(),
            Some(a1.clone()),
            "replayed update a",
        ),
        (
            EventType::Delete,
            b_gone.clone(),
            Some(b1.clone()),
            "replayed delete b",
        ),
    ];
    for (event_type, kv, prev, what) in &history {
        let event = next_event(&mut stream, what).await?;
        expect_event(&event, *event_type, kv, prev.as_ref(), what)?;
    }

    ctx(
        "create elsewhere",
        store.create(&format!("{elsewhere}y"), b"y".to_vec()).await,
    )?;
    let c1 = ctx(
        "create c",
        store.create(&format!("{p}c"), b"c1".to_vec()).await,
    )?;
    let a3 = ctx(
        "update a",
        store.update(&a2.key, b"a3".to_vec(), a2.mod_revision).await,
    )?;
    let a_gone = ctx("delete a", store.delete(&a3.key, None).await)?;
    let live = [
        (EventType::Put, c1, None, "live create c"),
        (EventType::Put, a3.clone(), Some(a2), "live update a"),
        (EventType::Delete, a_gone, Some(a3), "live delete a"),
    ];
    for (event_type, kv, prev, what) in &live {
        let event = next_event(&mut stream, what).await?;
        expect_event(&event, *event_type, kv, prev.as_ref(), what)?;
    }
    Ok(())
}

/// A watch from revision 0 starts after the current revision: only writes
/// made after the call returns are delivered.
pub async fn watch_from_now_sees_only_later_events(store: &dyn Store) -> CheckResult {
    let p = unique_prefix("watch-now");
    ctx(
        "create before",
        store.create(&format!("{p}before"), b"b".to_vec()).await,
    )?;
    let mut stream = ctx("watch", store.watch(&p, 0).await)?;
    let after = ctx(
        "create after",
        store.create(&format!("{p}after"), b"a".to_vec()).await,
    )?;
    let event = next_event(&mut stream, "first event").await?;
    expect_event(&event, EventType::Put, &after, None, "first event")
}

/// 64 writers doing read-modify-write increments on one key, retrying on
/// Conflict, never lose an update.
pub async fn concurrent_increments_never_lose_updates(store: &dyn Store) -> CheckResult {
    const WRITERS: u64 = 64;
    const INCREMENTS: u64 = 3;
    const MAX_ATTEMPTS: u64 = 100_000;
    let key = format!("{}counter", unique_prefix("counter"));
    ctx("create counter", store.create(&key, b"0".to_vec()).await)?;
    let parse = |kv: &KeyValue| -> Result<u64, String> {
        std::str::from_utf8(&kv.value)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("counter holds {:?}", kv.value))
    };
    let writer = |_: u64| {
        let key = key.clone();
        async move {
            let (mut current, _) = ctx("get counter", store.get(&key).await)?;
            let mut attempts = 0;
            for _ in 0..INCREMENTS {
                loop {
                    attempts += 1;
                    ensure!(
                        attempts <= MAX_ATTEMPTS,
                        "gave up after {MAX_ATTEMPTS} attempts"
                    );
                    let kv = current.ok_or_else(|| "counter disappeared".to_string())?;
                    let next = (parse(&kv)? + 1).to_string().into_bytes();
                    match store.update(&key, next, kv.mod_revision).await {
                        Ok(updated) => {
                            current = Some(updated);
                            break;
                        }
                        Err(StorageError::Conflict { current: now, .. }) => current = now,
                        Err(err) => return Err(format!("increment: {err:?}")),
                    }
                }
            }
            Ok::<(), String>(())
        }
    };
    for result in join_all((0..WRITERS).map(writer)).await {
        result?;
    }
    let (got, _) = ctx("get counter", store.get(&key).await)?;
    let got = got.ok_or("counter disappeared")?;
    let value = parse(&got)?;
    ensure!(
        value == WRITERS * INCREMENTS,
        "counter is {value}, expected {}",
        WRITERS * INCREMENTS
    );
    Ok(())
}

/// 64 writers creating distinct keys concurrently all succeed, each at its
/// own revision.
pub async fn concurrent_creates_of_distinct_keys_all_land(store: &dyn Store) -> CheckResult {
    const WRITERS: usize = 64;
    const EACH: usize = 4;
    let p = unique_prefix("creates");
    let writer = |w: usize| {
        let p = p.clone();
        async move {
            let mut made = Vec::new();
            for i in 0..EACH {
                let key = format!("{p}w{w:02}-{i}");
                made.push(ctx(
                    "create",
                    store.create(&key, key.clone().into_bytes()).await,
                )?);
            }
            Ok::<_, String>(made)
        }
    };
    let mut made = Vec::new();
    for result in join_all((0..WRITERS).map(writer)).await {
        made.extend(result?);
    }
    let mut revisions: Vec<Revision> = made.iter().map(|kv| kv.mod_revision).collect();
    revisions.sort_unstable();
    revisions.dedup();
    ensure!(
        revisions.len() == WRITERS * EACH,
        "{} creates share revisions",
        WRITERS * EACH - revisions.len()
    );
    let resp = ctx("range", store.range(range_req(&p)).await)?;
    made.sort_by(|a, b| a.key.cmp(&b.key));
    ensure!(
        resp.kvs == made,
        "range returned {} keys, expected the {} created",
        resp.kvs.len(),
        made.len()
    );
    Ok(())
}

/// After compact(r), ranges and watches before r fail with Compacted (the
/// watch call succeeds and the stream's first item is the error); at r they
/// still work. Compacts the whole store up to this check's writes.
pub async fn compacted_revision_is_rejected(store: &dyn Store) -> CheckResult {
    let p = unique_prefix("compact");
    let v1 = ctx(
        "create",
        store.create(&format!("{p}k"), b"1".to_vec()).await,
    )?;
    let v2 = ctx(
        "update",
        store.update(&v1.key, b"2".to_vec(), v1.mod_revision).await,
    )?;
    let v3 = ctx(
        "update",
        store.update(&v1.key, b"3".to_vec(), v2.mod_revision).await,
    )?;
    let at = v2.mod_revision;
    ctx("compact", store.compact(at).await)?;

    match store
        .range(RangeRequest {
            revision: v1.mod_revision,
            ..range_req(&p)
        })
        .await
    {
        Err(StorageError::Compacted {
            requested,
            compact_revision,
        }) => {
            ensure!(
                requested == v1.mod_revision,
                "Compacted requested={requested}"
            );
            ensure!(
                compact_revision >= at,
                "Compacted reports compact revision {compact_revision}, compacted at {at}"
            );
        }
        other => {
            return Err(format!(
                "range below compaction: expected Compacted, got {other:?}"
            ))
        }
    }
    let mut stream = ctx(
        "watch below compaction",
        store.watch(&p, v1.mod_revision).await,
    )?;
    match tokio::time::timeout(WATCH_TIMEOUT, stream.next()).await {
        Ok(Some(Err(StorageError::Compacted {
            compact_revision, ..
        }))) => ensure!(
            compact_revision >= at,
            "watch Compacted reports {compact_revision}, compacted at {at}"
        ),
        Ok(other) => {
            return Err(format!(
                "watch below compaction: expected a Compacted first item, got {other:?}"
            ))
        }
        Err(_) => return Err("watch below compaction: no item".into()),
    }
    match tokio::time::timeout(WATCH_TIMEOUT, stream.next()).await {
        Ok(None) => {}
        other => return Err(format!("watch continued after Compacted: {other:?}")),
    }

    let still = ctx(
        "range at the compact revision",
        store
            .range(RangeRequest {
                revision: at,
                ..range_req(&p)
            })
            .await,
    )?;
    ensure!(
        still.kvs == vec![v2.clone()],
        "range at {at} returned {:?}",
        still.kvs
    );
    let mut stream = ctx("watch at the compact revision", store.watch(&p, at).await)?;
    let event = next_event(&mut stream, "event at the compact revision").await?;
    ensure!(
        event.event_type == EventType::Put && event.kv == v2,
        "watch from {at} started with {event:?}"
    );
    let event = next_event(&mut stream, "event after the compact revision").await?;
    ensure!(
        event.kv == v3 && event.prev_kv.as_ref() == Some(&v2),
        "watch from {at} continued with {event:?}"
    );
    match store.compact(at).await {
        Err(StorageError::Compacted { .. }) => {}
        other => {
            return Err(format!(
                "compacting again at {at}: expected Compacted, got {other:?}"
            ))
        }
    }
    Ok(())
}
