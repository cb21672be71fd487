//! The conformance suite on the embedded SQLite backend, plus what only
//! SQLite has to prove: durability across reopen, bounded file growth, and
//! watchers that fall behind the live buffer.

use std::path::Path;
use std::time::Duration;

use futures::future::join_all;
use futures::StreamExt;
use storage::sqlite::{SqliteOptions, SqliteStore};
use storage::{EventType, RangeRequest, StorageError, Store};

fn db_path(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("state.db")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_passes_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db_path(&dir)).unwrap();
    storage::conformance::run_all(&store).await;
}

#[tokio::test]
async fn empty_store_is_at_revision_one_and_first_write_gets_two() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db_path(&dir)).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 1);
    assert_eq!(store.get("/a").await.unwrap(), (None, 1));
    let kv = store.create("/a", b"1".to_vec()).await.unwrap();
    assert_eq!(kv.mod_revision, 2);
    assert_eq!(store.current_revision().await.unwrap(), 2);
}

#[tokio::test]
async fn file_is_in_wal_mode_with_incremental_auto_vacuum() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let _store = SqliteStore::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let auto_vacuum: i64 = conn
        .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
        .unwrap();
    assert_eq!(auto_vacuum, 2, "auto_vacuum must be INCREMENTAL");
}

#[tokio::test]
async fn data_revision_and_compaction_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let (a, b_gone, compacted_at) = {
        let store = SqliteStore::open(&path).unwrap();
        let a = store.create("/k/a", b"a1".to_vec()).await.unwrap();
        let a = store
            .update("/k/a", b"a2".to_vec(), a.mod_revision)
            .await
            .unwrap();
        let b = store.create("/k/b", b"b1".to_vec()).await.unwrap();
        let compacted_at = b.mod_revision;
        store.compact(compacted_at).await.unwrap();
        // The highest row is a tombstone that a later compaction removes:
        // the revision must still not go back.
        let b_gone = store.delete("/k/b", None).await.unwrap();
        (a, b_gone, compacted_at)
    };
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), b_gone.mod_revision);
    assert_eq!(store.compact_revision(), compacted_at);
    assert_eq!(
        store.get("/k/a").await.unwrap(),
        (Some(a.clone()), b_gone.mod_revision)
    );
    assert_eq!(store.get("/k/b").await.unwrap().0, None);
    match store
        .range(RangeRequest {
            prefix: "/k/".into(),
            revision: compacted_at - 1,
            ..Default::default()
        })
        .await
    {
        Err(StorageError::Compacted {
            compact_revision, ..
        }) => {
            assert_eq!(compact_revision, compacted_at)
        }
        other => panic!("expected Compacted after reopen, got {other:?}"),
    }
    // Compact away the tombstone (the highest row), reopen again: the next
    // revision must still be above every revision ever handed out.
    store.compact(b_gone.mod_revision).await.unwrap();
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), b_gone.mod_revision);
    let c = store.create("/k/c", b"c".to_vec()).await.unwrap();
    assert_eq!(c.mod_revision, b_gone.mod_revision + 1);
}

fn file_size(path: &Path) -> u64 {
    let wal = path.with_file_name(format!(
        "{}-wal",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_incremental_vacuum_keep_the_file_bounded() {
    const KEYS: usize = 40;
    const CYCLES: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).unwrap();
    let value = |cycle: usize| vec![b'a' + (cycle % 26) as u8; 16 * 1024];
    let mut revs = Vec::new();
    for k in 0..KEYS {
        revs.push(
            store
                .create(&format!("/big/{k}"), value(0))
                .await
                .unwrap()
                .mod_revision,
        );
    }
    let mut size_after_warmup = 0;
    for cycle in 1..=CYCLES {
        let writes = revs.iter().enumerate().map(|(k, rev)| {
            let store = &store;
            async move {
                store
                    .update(&format!("/big/{k}"), value(cycle), *rev)
                    .await
                    .unwrap()
                    .mod_revision
            }
        });
        revs = join_all(writes).await;
        // Delete and recreate one key per cycle so tombstones are compacted too.
        let victim = format!("/big/{}", cycle % KEYS);
        store.delete(&victim, None).await.unwrap();
        revs[cycle % KEYS] = store
            .create(&victim, value(cycle))
            .await
            .unwrap()
            .mod_revision;
        let current = store.current_revision().await.unwrap();
        store.compact(current).await.unwrap();
        if cycle == 5 {
            size_after_warmup = file_size(&path);
        }
    }
    let final_size = file_size(&path);
    let written = (KEYS * CYCLES * 16 * 1024) as u64;
    println!("after warm-up {size_after_warmup} bytes, after {CYCLES} cycles {final_size} bytes, {written} bytes written");
    assert!(
        final_size <= size_after_warmup * 2,
        "file grew from {size_after_warmup} to {final_size} bytes despite compaction"
    );
    assert!(
        final_size < written / 4,
        "file is {final_size} bytes after writing {written}"
    );
    // Only the live keys are left.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM kv", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, KEYS as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_watcher_catches_up_from_the_database_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_with(
        &db_path(&dir),
        SqliteOptions {
            watch_buffer: 2,
            replay_page: 7,
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    let mut stream = store.watch("/lag/", 0).await.unwrap();
    // Sequential writes: one broadcast batch each, far more than the buffer.
    let mut expected = Vec::new();
    for i in 0..60 {
        let kv = store
            .create(&format!("/lag/{i:03}"), vec![i as u8])
            .await
            .unwrap();
        store
            .create(&format!("/other/{i:03}"), vec![])
            .await
            .unwrap();
        expected.push(kv);
    }
    for kv in &expected {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .expect("no error");
        assert_eq!(event.event_type, EventType::Put);
        assert_eq!(&event.kv, kv);
    }
    let live = store.create("/lag/live", b"x".to_vec()).await.unwrap();
    let event = stream.next().await.unwrap().unwrap();
    assert_eq!(event.kv, live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_lagging_past_a_compaction_ends_with_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_with(
        &db_path(&dir),
        SqliteOptions {
            watch_buffer: 2,
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    let mut stream = store.watch("/lag/", 0).await.unwrap();
    let mut kv = store.create("/lag/k", b"0".to_vec()).await.unwrap();
    for i in 1..20 {
        kv = store
            .update("/lag/k", i.to_string().into_bytes(), kv.mod_revision)
            .await
            .unwrap();
    }
    store.compact(kv.mod_revision).await.unwrap();
    match stream.next().await {
        Some(Err(StorageError::Compacted {
            compact_revision, ..
        })) => {
            assert_eq!(compact_revision, kv.mod_revision)
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(
        stream.next().await.is_none(),
        "stream must end after Compacted"
    );
}

#[tokio::test]
async fn watch_ends_with_unavailable_when_the_store_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db_path(&dir)).unwrap();
    let mut stream = store.watch("/", 0).await.unwrap();
    drop(store);
    match stream.next().await {
        Some(Err(StorageError::Unavailable(_))) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_compactor_keeps_only_recent_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(&db_path(&dir)).unwrap());
    let mut kv = store.create("/c/k", b"0".to_vec()).await.unwrap();
    for i in 1..30 {
        kv = store
            .update("/c/k", i.to_string().into_bytes(), kv.mod_revision)
            .await
            .unwrap();
    }
    let task = store.spawn_compactor(Duration::from_millis(50), 10);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.compact_revision() != kv.mod_revision - 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "compactor did not run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
}

#[tokio::test]
async fn stored_rows_with_a_broken_key_are_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).unwrap();
    store.create("/bad/ok", b"1".to_vec()).await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE kv SET key = X'2F6261642FFF' WHERE key = CAST('/bad/ok' AS BLOB)",
        [],
    )
    .unwrap();
    drop(conn);
    match store
        .range(RangeRequest {
            prefix: "/bad/".into(),
            ..Default::default()
        })
        .await
    {
        Err(StorageError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db_path(&dir)).unwrap();
    let creates = (0..256).map(|i| {
        let store = &store;
        async move {
            store
                .create(&format!("/g/{i}"), vec![0; 1024])
                .await
                .unwrap()
        }
    });
    join_all(creates).await;
    let stats = store.stats();
    println!("{stats:?}");
    assert_eq!(stats.writes, 256);
    assert!(
        stats.commits < stats.writes / 2,
        "256 concurrent writes took {} commits: no group commit",
        stats.commits
    );
}

const CHILD_DB_ENV: &str = "RUSTKUBE_TEST_SQLITE_CHILD_DB";

/// Not a test by itself: the process `acknowledged_writes_survive_kill_9`
/// starts and kills. It writes forever, printing each acknowledged write.
#[tokio::test]
#[ignore = "helper process for acknowledged_writes_survive_kill_9"]
async fn child_process_for_kill_9_test() {
    use std::io::Write;
    let Some(path) = std::env::var_os(CHILD_DB_ENV) else {
        return;
    };
    let store = SqliteStore::open(Path::new(&path)).unwrap();
    let mut out = std::io::stdout();
    for i in 0.. {
        let kv = store
            .create(&format!("/ack/{i:08}"), vec![7; 512])
            .await
            .unwrap();
        writeln!(out, "ACK {} {}", kv.key, kv.mod_revision).unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_for_kill_9_test",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DB_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (key, rev) = rest.split_once(' ').unwrap();
            acked.push((key.to_string(), rev.parse::<i64>().unwrap()));
            if acked.len() == 300 {
                break;
            }
        }
    }
    // SIGKILL, by PID, mid-write.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(acked.len(), 300, "child stopped early");
    let store = SqliteStore::open(&path).unwrap();
    for (key, rev) in &acked {
        let (kv, _) = store.get(key).await.unwrap();
        let kv = kv.unwrap_or_else(|| panic!("acknowledged write {key} lost"));
        assert_eq!(kv.mod_revision, *rev);
    }
    assert!(store.current_revision().await.unwrap() >= acked.last().unwrap().1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_gives_the_space_of_a_deleted_burst_back_to_the_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).unwrap();
    store.create("/keep", b"k".to_vec()).await.unwrap();
    let burst = (0..300).map(|i| {
        let store = &store;
        async move {
            store
                .create(&format!("/burst/{i}"), vec![1; 16 * 1024])
                .await
                .unwrap()
        }
    });
    join_all(burst).await;
    let peak = file_size(&path);
    let deletes = (0..300).map(|i| {
        let store = &store;
        async move { store.delete(&format!("/burst/{i}"), None).await.unwrap() }
    });
    join_all(deletes).await;
    let current = store.current_revision().await.unwrap();
    store.compact(current).await.unwrap();
    let after = file_size(&path);
    println!("peak {peak} bytes, after delete + compaction {after} bytes");
    assert!(
        peak > 300 * 16 * 1024,
        "burst did not reach the file: {peak}"
    );
    assert!(after < peak / 10, "file stayed at {after} of {peak} bytes");
}
