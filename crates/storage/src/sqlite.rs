//! The embedded backend: one SQLite file in WAL mode.
//!
//! Layout:
//! - `kv` is the MVCC history: one row per revision (the row id *is* the
//!   revision), holding the key, its value, the revision that created this
//!   incarnation of the key, the revision of the row it replaced, and whether
//!   the row is a deletion (a tombstone keeps the deleted value so a delete
//!   event can carry it). The key as of revision `r` is its latest row with
//!   id <= `r`, unless that row is a tombstone.
//! - `meta` holds the compact revision.
//! - The current revision is `sqlite_sequence`'s counter for `kv`
//!   (AUTOINCREMENT), so it survives restarts and compaction and is never
//!   reused. An empty store is at revision 1 (as in etcd); the first write
//!   gets revision 2.
//!
//! Writes go to ONE writer thread over a channel. It takes every queued
//! request, checks and applies each in a single transaction (group commit),
//! commits with `synchronous=FULL` (fsync before anyone is told), replies to
//! each caller and only then publishes the batch's events to watchers over a
//! broadcast channel. Reads run on a small pool of separate read connections
//! in blocking tasks, each inside one read transaction (a consistent
//! snapshot), so they never wait for the writer.
//!
//! A watch subscribes to the broadcast channel first, then replays history
//! from the database and drops live events it has already replayed. A watcher
//! that falls behind the broadcast buffer re-reads the gap from the database;
//! if that gap has been compacted meanwhile the stream ends with
//! [`StorageError::Compacted`]. Nothing polls.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::{broadcast, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::request::{check_compact, check_expected, check_key, check_range, check_watch};
use crate::{
    EventType, KeyValue, RangeRequest, RangeResponse, Result, Revision, StorageError, Store,
    WatchEvent, WatchStream,
};

/// Tuning knobs for [`SqliteStore::open_with`]. The defaults suit the API
/// server.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Committed batches buffered per watcher before it counts as lagging
    /// (and catches up from the database instead).
    pub watch_buffer: usize,
    /// Most write requests committed in one transaction.
    pub max_batch: usize,
    /// Most concurrent read transactions (and pooled read connections).
    pub max_readers: usize,
    /// Rows read from the database per step when a watch replays history.
    pub replay_page: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            watch_buffer: 256,
            max_batch: 1024,
            max_readers: 16,
            replay_page: 1000,
        }
    }
}

/// The embedded SQLite datastore. See the module documentation.
///
/// One store per file: two processes (or two `SqliteStore`s) writing the
/// same file are not supported — each keeps its own revision counter, so the
/// second one's writes fail with [`StorageError::Unavailable`] rather than
/// interleave revisions.
pub struct SqliteStore {
    requests: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    events: broadcast::Sender<Batch>,
    state: Arc<State>,
    readers: Arc<Readers>,
    replay_page: usize,
}

/// Committed revisions and counters, shared by the writer (which stores
/// them) and the store.
struct State {
    revision: AtomicI64,
    compact_revision: AtomicI64,
    commits: AtomicU64,
    writes: AtomicU64,
}

/// Counters since the store was opened, e.g. for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteStats {
    /// Write transactions committed (each one fsync).
    pub commits: u64,
    /// Successful writes (creates, updates, deletes) they carried.
    pub writes: u64,
}

/// The events of one committed transaction, in revision order.
type Batch = Arc<[WatchEvent]>;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    deleted INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS kv_key_id ON kv (key, id);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO meta (name, value) VALUES ('schema_version', 1)
    ON CONFLICT (name) DO NOTHING;
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'kv', 1 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'kv');
";

const SELECT_LATEST: &str =
    "SELECT id, value, create_revision, deleted FROM kv WHERE key = ?1 ORDER BY id DESC LIMIT 1";

const INSERT_ROW: &str = "INSERT INTO kv (id, key, value, create_revision, prev_revision, deleted)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// The live keys in [?1, ?2) as of revision ?3, in key order.
const SELECT_RANGE: &str = "
SELECT k.key, k.value, k.create_revision, k.id FROM kv AS k
WHERE k.key >= ?1 AND k.key < ?2 AND k.id <= ?3 AND k.deleted = 0
  AND k.id = (SELECT MAX(n.id) FROM kv AS n WHERE n.key = k.key AND n.id <= ?3)
ORDER BY k.key LIMIT ?4";

const COUNT_RANGE: &str = "
SELECT COUNT(*) FROM kv AS k
WHERE k.key >= ?1 AND k.key < ?2 AND k.id <= ?3 AND k.deleted = 0
  AND k.id = (SELECT MAX(n.id) FROM kv AS n WHERE n.key = k.key AND n.id <= ?3)";

/// History rows with revision in [?1, ?2] and key in [?3, ?4), with the row
/// each one replaced.
const SELECT_HISTORY: &str = "
SELECT k.id, k.key, k.value, k.create_revision, k.deleted, p.id, p.value, p.create_revision
FROM kv AS k LEFT JOIN kv AS p ON p.id = k.prev_revision
WHERE k.id >= ?1 AND k.id <= ?2 AND k.key >= ?3 AND k.key < ?4
ORDER BY k.id LIMIT ?5";

/// Compaction from the previous compact revision ?1 to ?2: for every key
/// written since ?1, drop rows superseded at or before ?2 and tombstones
/// older than ?2. (A tombstone exactly at ?2 stays so that a watch from ?2
/// still sees that delete.) Keys not written since ?1 were already reduced
/// to one row by the previous compaction.
const COMPACT: &str = "
DELETE FROM kv WHERE id IN (
    SELECT old.id FROM kv AS old
    WHERE old.id <= ?2
      AND old.key IN (SELECT key FROM kv WHERE id >= ?1 AND id <= ?2)
      AND ((old.deleted = 1 AND old.id < ?2)
           OR EXISTS (SELECT 1 FROM kv AS newer
                      WHERE newer.key = old.key AND newer.id > old.id AND newer.id <= ?2))
)";

/// Keys are UTF-8, which never contains the byte 0xFF: this bound is above
/// every key, so it ends the range of the empty prefix.
const ABOVE_ALL_KEYS: &[u8] = &[0xff];

impl From<rusqlite::Error> for StorageError {
    fn from(err: rusqlite::Error) -> Self {
        StorageError::Unavailable(format!("sqlite: {err}"))
    }
}

impl SqliteStore {
    /// Open (or create) the store at `path` with default options.
    ///
    /// Blocking: it opens the file, sets it up and starts the writer thread.
    /// It needs no Tokio runtime, but watches and reads do.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// [`SqliteStore::open`] with explicit tuning.
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<SqliteStore> {
        let conn = open_writer(path)?;
        let revision = read_revision(&conn)?;
        let compact_revision = read_compact_revision(&conn)?;
        let state = Arc::new(State {
            revision: AtomicI64::new(revision),
            compact_revision: AtomicI64::new(compact_revision),
            commits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        });
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        let (requests, queue) = mpsc::channel();
        let writer = Writer {
            conn,
            revision,
            compact_revision,
            state: state.clone(),
            events: events.clone(),
            max_batch: options.max_batch.max(1),
        };
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(|err| StorageError::Unavailable(format!("cannot start writer: {err}")))?;
        let max_readers = options.max_readers.max(1);
        Ok(SqliteStore {
            requests: Some(requests),
            writer: Some(writer),
            events,
            state,
            readers: Arc::new(Readers {
                path: path.to_path_buf(),
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(max_readers)),
                max_idle: max_readers,
            }),
            replay_page: options.replay_page.max(1),
        })
    }

    /// The revision history was last compacted to (0 if never).
    pub fn compact_revision(&self) -> Revision {
        self.state.compact_revision.load(Ordering::SeqCst)
    }

    /// How many commits and writes the writer has done: writes per commit
    /// is the group-commit factor.
    pub fn stats(&self) -> SqliteStats {
        SqliteStats {
            commits: self.state.commits.load(Ordering::Relaxed),
            writes: self.state.writes.load(Ordering::Relaxed),
        }
    }

    /// Start a background task compacting this store every `interval`,
    /// keeping the last `keep_revisions` revisions. See
    /// [`crate::spawn_compactor`].
    pub fn spawn_compactor(
        self: &Arc<Self>,
        interval: Duration,
        keep_revisions: i64,
    ) -> tokio::task::JoinHandle<()> {
        crate::spawn_compactor(self, interval, keep_revisions)
    }

    async fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Request,
    ) -> Result<T> {
        let (reply, response) = oneshot::channel();
        let closed = || StorageError::Unavailable("sqlite writer has stopped".into());
        self.requests
            .as_ref()
            .ok_or_else(closed)?
            .send(make(reply))
            .map_err(|_| closed())?;
        response.await.map_err(|_| closed())?
    }

    async fn write(&self, op: Op) -> Result<KeyValue> {
        self.submit(|reply| Request::Write { op, reply }).await
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the queue stops the writer once it has finished what is
        // queued; wait so the file is closed when the store is gone.
        self.requests.take();
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!("sqlite writer thread panicked");
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, Revision)> {
        check_key(key)?;
        let key = key.to_owned();
        self.readers
            .read(move |tx| {
                let revision = snapshot_revision(tx)?;
                let kv = tx
                    .prepare_cached(SELECT_LATEST)?
                    .query_row(params![key.as_bytes()], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, Vec<u8>>(1)?,
                            row.get::<_, i64>(2)?,
                            row.get::<_, bool>(3)?,
                        ))
                    })
                    .optional()?
                    .filter(|(_, _, _, deleted)| !deleted)
                    .map(|(id, value, create_revision, _)| KeyValue {
                        key: key.clone(),
                        value,
                        create_revision,
                        mod_revision: id,
                    });
                Ok((kv, revision))
            })
            .await
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        check_range(&req)?;
        self.readers.read(move |tx| range_in(tx, &req)).await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        check_key(key)?;
        self.write(Op::Create {
            key: key.to_owned(),
            value,
        })
        .await
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
        check_key(key)?;
        check_expected(key, expected)?;
        self.write(Op::Update {
            key: key.to_owned(),
            value,
            expected,
        })
        .await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        check_key(key)?;
        if let Some(expected) = expected {
            check_expected(key, expected)?;
        }
        self.write(Op::Delete {
            key: key.to_owned(),
            expected,
        })
        .await
    }

    async fn watch(&self, prefix: &str, start_revision: Revision) -> Result<WatchStream> {
        check_watch(start_revision)?;
        // Subscribe before looking at the revision or the history: anything
        // committed from here on reaches `live`, anything before is in the
        // database.
        let live = self.events.subscribe();
        let (next, catching_up) = if start_revision == 0 {
            (self.state.revision.load(Ordering::SeqCst) + 1, false)
        } else {
            (start_revision, true)
        };
        let cursor = WatchCursor {
            prefix: prefix.to_owned(),
            live,
            readers: self.readers.clone(),
            next,
            catching_up,
            pending: VecDeque::new(),
            finished: false,
            page: self.replay_page,
        };
        Ok(Box::pin(futures::stream::unfold(
            cursor,
            WatchCursor::next_item,
        )))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        check_compact(revision)?;
        self.submit(|reply| Request::Compact { revision, reply })
            .await
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.state.revision.load(Ordering::SeqCst))
    }

    fn backend_name(&self) -> &'static str {
        "sqlite"
    }
}

// ---------------------------------------------------------------------------
// Setup

/// Cached statements keep their query plan whatever values are bound.
/// Without this, the bundled SQLite (built with STAT4) marks a statement
/// for re-preparation whenever a bound key changes, which is every step of
/// every cached statement here.
fn keep_plans(conn: &Connection) -> Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

fn open_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    keep_plans(&conn)?;
    // Must precede the first table; it is a no-op on an existing file.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StorageError::Unavailable(format!(
            "sqlite: cannot enable WAL mode (journal mode is {mode})"
        )));
    }
    // FULL: every commit fsyncs the WAL before the writer replies.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "wal_autocheckpoint", 1000)?;
    // Shrink the WAL back after a checkpoint if a burst made it large.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    conn.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))?;
    let auto_vacuum: i64 = conn.pragma_query_value(None, "auto_vacuum", |row| row.get(0))?;
    if auto_vacuum != 2 {
        tracing::warn!(
            path = %path.display(),
            auto_vacuum,
            "sqlite file was created without incremental auto-vacuum; compaction will not shrink it"
        );
    }
    Ok(conn)
}

fn read_revision(conn: &Connection) -> Result<Revision> {
    let seq: Option<i64> = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'kv'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    let max_id: i64 = conn.query_row("SELECT IFNULL(MAX(id), 0) FROM kv", [], |row| row.get(0))?;
    Ok(seq.unwrap_or(1).max(max_id).max(1))
}

fn read_compact_revision(conn: &Connection) -> Result<Revision> {
    let rev: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE name = 'compact_revision'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    Ok(rev.unwrap_or(0))
}

// ---------------------------------------------------------------------------
// The writer

enum Op {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

enum Request {
    Write {
        op: Op,
        reply: oneshot::Sender<Result<KeyValue>>,
    },
    Compact {
        revision: Revision,
        reply: oneshot::Sender<Result<()>>,
    },
}

struct Writer {
    conn: Connection,
    /// Last committed revision.
    revision: Revision,
    compact_revision: Revision,
    state: Arc<State>,
    events: broadcast::Sender<Batch>,
    max_batch: usize,
}

/// The newest row of a key, as the writer sees it inside its transaction.
struct Latest {
    id: Revision,
    value: Vec<u8>,
    create_revision: Revision,
    deleted: bool,
}

/// What applying one op produced.
struct Applied {
    result: Result<KeyValue>,
    event: Option<WatchEvent>,
}

/// How long a busy writer waits for more writes before a commit.
const BATCH_LINGER: Duration = Duration::from_micros(250);

impl Writer {
    fn run(mut self, queue: mpsc::Receiver<Request>) {
        let mut last_batch = 0;
        while let Ok(first) = queue.recv() {
            let mut writes = Vec::new();
            let mut compactions = Vec::new();
            let mut next = Some(first);
            // Under concurrent load (the last commit carried several
            // writes), wait a moment for more before committing: each
            // commit costs an fsync and rewrites the pages writes share,
            // so fuller batches cost less per write. A lone writer never
            // waits.
            let linger = (last_batch > 1).then(|| Instant::now() + BATCH_LINGER);
            while let Some(request) = next {
                match request {
                    Request::Write { op, reply } => writes.push((op, reply)),
                    Request::Compact { revision, reply } => compactions.push((revision, reply)),
                }
                next = if writes.len() >= self.max_batch {
                    None
                } else if let Ok(request) = queue.try_recv() {
                    Some(request)
                } else {
                    linger.and_then(|until| {
                        let left = until.checked_duration_since(Instant::now())?;
                        queue.recv_timeout(left).ok()
                    })
                };
            }
            last_batch = writes.len();
            if !writes.is_empty() {
                self.commit_batch(writes);
            }
            for (revision, reply) in compactions {
                let _ = reply.send(self.compact(revision));
            }
        }
    }

    /// Apply every write in one transaction, commit, reply, then publish.
    fn commit_batch(&mut self, writes: Vec<(Op, oneshot::Sender<Result<KeyValue>>)>) {
        let (ops, replies): (Vec<Op>, Vec<_>) = writes.into_iter().unzip();
        match self.apply(ops) {
            Ok((applied, revision)) => {
                if revision != self.revision {
                    let writes = u64::try_from(revision - self.revision).unwrap_or(0);
                    self.state.commits.fetch_add(1, Ordering::Relaxed);
                    self.state.writes.fetch_add(writes, Ordering::Relaxed);
                }
                self.revision = revision;
                self.state.revision.store(revision, Ordering::SeqCst);
                let mut events = Vec::new();
                for (reply, applied) in replies.into_iter().zip(applied) {
                    let _ = reply.send(applied.result);
                    events.extend(applied.event);
                }
                if !events.is_empty() {
                    // No receivers is fine: nobody is watching.
                    let _ = self.events.send(events.into());
                }
            }
            Err(err) => {
                tracing::error!(%err, "sqlite write transaction failed");
                let err = StorageError::from(err);
                for reply in replies {
                    let _ = reply.send(Err(StorageError::Unavailable(err.to_string())));
                }
            }
        }
    }

    /// Check and apply each op in one transaction. A failed check fails only
    /// its op; a database error fails (and rolls back) the whole batch.
    fn apply(&mut self, ops: Vec<Op>) -> rusqlite::Result<(Vec<Applied>, Revision)> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut revision = self.revision;
        let mut applied = Vec::with_capacity(ops.len());
        {
            let mut latest = tx.prepare_cached(SELECT_LATEST)?;
            let mut insert = tx.prepare_cached(INSERT_ROW)?;
            for op in ops {
                let key = match &op {
                    Op::Create { key, .. } | Op::Update { key, .. } | Op::Delete { key, .. } => key,
                };
                let live = latest
                    .query_row(params![key.as_bytes()], |row| {
                        Ok(Latest {
                            id: row.get(0)?,
                            value: row.get(1)?,
                            create_revision: row.get(2)?,
                            deleted: row.get(3)?,
                        })
                    })
                    .optional()?
                    .filter(|row| !row.deleted)
                    .map(|row| KeyValue {
                        key: key.to_string(),
                        value: row.value,
                        create_revision: row.create_revision,
                        mod_revision: row.id,
                    });
                let next = revision + 1;
                let outcome = match (op, live) {
                    (Op::Create { key, .. }, Some(_)) => Err(StorageError::KeyExists(key)),
                    (Op::Create { key, value }, None) => Ok((
                        EventType::Put,
                        KeyValue {
                            key,
                            value,
                            create_revision: next,
                            mod_revision: next,
                        },
                        None,
                    )),
                    (Op::Update { key, .. } | Op::Delete { key, .. }, None) => {
                        Err(StorageError::NotFound(key))
                    }
                    (Op::Update { key, expected, .. }, Some(current))
                        if current.mod_revision != expected =>
                    {
                        Err(StorageError::Conflict {
                            key,
                            expected,
                            current: Some(current),
                        })
                    }
                    (Op::Update { key, value, .. }, Some(current)) => Ok((
                        EventType::Put,
                        KeyValue {
                            key,
                            value,
                            create_revision: current.create_revision,
                            mod_revision: next,
                        },
                        Some(current),
                    )),
                    (
                        Op::Delete {
                            key,
                            expected: Some(expected),
                        },
                        Some(current),
                    ) if current.mod_revision != expected => Err(StorageError::Conflict {
                        key,
                        expected,
                        current: Some(current),
                    }),
                    (Op::Delete { .. }, Some(current)) => Ok((
                        EventType::Delete,
                        KeyValue {
                            mod_revision: next,
                            ..current.clone()
                        },
                        Some(current),
                    )),
                };
                match outcome {
                    Ok((event_type, kv, prev_kv)) => {
                        insert.execute(params![
                            next,
                            kv.key.as_bytes(),
                            kv.value,
                            kv.create_revision,
                            prev_kv.as_ref().map_or(0, |prev| prev.mod_revision),
                            event_type == EventType::Delete,
                        ])?;
                        revision = next;
                        applied.push(Applied {
                            result: Ok(kv.clone()),
                            event: Some(WatchEvent {
                                event_type,
                                kv,
                                prev_kv,
                            }),
                        });
                    }
                    Err(err) => applied.push(Applied {
                        result: Err(err),
                        event: None,
                    }),
                }
            }
        }
        if revision != self.revision {
            tx.commit()?;
        }
        Ok((applied, revision))
    }

    fn compact(&mut self, target: Revision) -> Result<()> {
        if target <= self.compact_revision {
            return Err(StorageError::Compacted {
                requested: target,
                compact_revision: self.compact_revision,
            });
        }
        if target > self.revision {
            return Err(StorageError::FutureRevision {
                requested: target,
                current: self.revision,
            });
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let removed = tx.execute(COMPACT, params![self.compact_revision, target])?;
        tx.execute(
            "INSERT INTO meta (name, value) VALUES ('compact_revision', ?1)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            params![target],
        )?;
        tx.commit()?;
        self.compact_revision = target;
        self.state.compact_revision.store(target, Ordering::SeqCst);
        tracing::debug!(revision = target, removed, "sqlite history compacted");
        // Give freed pages back to the file system and keep the WAL short.
        // Failures here only cost disk space, so they are logged, not
        // returned.
        if let Err(err) = self.shrink() {
            tracing::warn!(%err, "sqlite: vacuum after compaction failed");
        }
        Ok(())
    }

    fn shrink(&self) -> rusqlite::Result<()> {
        // incremental_vacuum frees one page per result row: step to the end.
        let mut vacuum = self.conn.prepare("PRAGMA incremental_vacuum")?;
        let mut rows = vacuum.query([])?;
        while rows.next()?.is_some() {}
        drop(rows);
        // TRUNCATE reports "busy" in its result row (not as an error) when
        // readers hold old snapshots; the next checkpoint then does the work.
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Reads

struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    max_idle: usize,
}

impl Readers {
    /// Run `f` in one read transaction on a pooled connection, on a blocking
    /// thread.
    async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let permit: OwnedSemaphorePermit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StorageError::Unavailable("sqlite readers closed".into()))?;
        let readers = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = readers.take()?;
            let result = match conn.transaction() {
                Ok(tx) => f(&tx),
                Err(err) => Err(err.into()),
            };
            readers.put_back(conn);
            result
        })
        .await
        .map_err(|err| StorageError::Unavailable(format!("sqlite read task failed: {err}")))?
    }

    fn take(&self) -> Result<Connection> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(conn) = pooled {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        keep_plans(&conn)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    fn put_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }
}

/// The store's revision and compact revision as of this read transaction.
fn snapshot_revisions(tx: &rusqlite::Transaction<'_>) -> Result<(Revision, Revision)> {
    let revision = snapshot_revision(tx)?;
    let compact: Option<i64> = tx
        .prepare_cached("SELECT value FROM meta WHERE name = 'compact_revision'")?
        .query_row([], |row| row.get(0))
        .optional()?;
    Ok((revision, compact.unwrap_or(0)))
}

fn snapshot_revision(tx: &rusqlite::Transaction<'_>) -> Result<Revision> {
    let seq: Option<i64> = tx
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'kv'")?
        .query_row([], |row| row.get(0))
        .optional()?;
    Ok(seq.unwrap_or(1).max(1))
}

fn key_bounds(prefix: &str) -> Vec<u8> {
    if prefix.is_empty() {
        ABOVE_ALL_KEYS.to_vec()
    } else {
        crate::prefix_end(prefix)
    }
}

fn decode_key(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes)
        .map_err(|_| StorageError::Unavailable("sqlite: stored key is not UTF-8".into()))
}

fn range_in(tx: &rusqlite::Transaction<'_>, req: &RangeRequest) -> Result<RangeResponse> {
    let (current, compact) = snapshot_revisions(tx)?;
    let revision = if req.revision == 0 {
        current
    } else {
        req.revision
    };
    if revision > current {
        return Err(StorageError::FutureRevision {
            requested: revision,
            current,
        });
    }
    if revision < compact {
        return Err(StorageError::Compacted {
            requested: revision,
            compact_revision: compact,
        });
    }
    let start = req.start_key.as_deref().unwrap_or(&req.prefix).as_bytes();
    let end = key_bounds(&req.prefix);
    let limit = if req.limit > 0 { req.limit } else { -1 };
    let mut kvs = Vec::new();
    {
        let mut stmt = tx.prepare_cached(SELECT_RANGE)?;
        let mut rows = stmt.query(params![start, end, revision, limit])?;
        while let Some(row) = rows.next()? {
            kvs.push(KeyValue {
                key: decode_key(row.get(0)?)?,
                value: row.get(1)?,
                create_revision: row.get(2)?,
                mod_revision: row.get(3)?,
            });
        }
    }
    let returned = kvs.len() as i64;
    let total = if req.limit > 0 && returned == req.limit {
        tx.prepare_cached(COUNT_RANGE)?
            .query_row(params![start, end, revision], |row| row.get::<_, i64>(0))?
    } else {
        returned
    };
    let remaining = (total - returned).max(0);
    Ok(RangeResponse {
        kvs,
        more: remaining > 0,
        remaining,
        revision,
    })
}

/// One page of history for a watch.
struct HistoryPage {
    events: Vec<WatchEvent>,
    /// Revision of the last row read when the page was full (more may
    /// follow), else None.
    truncated_at: Option<Revision>,
    snapshot: Revision,
}

fn history_in(
    tx: &rusqlite::Transaction<'_>,
    prefix: &str,
    from: Revision,
    page: usize,
) -> Result<HistoryPage> {
    let (snapshot, compact) = snapshot_revisions(tx)?;
    if from < compact {
        return Err(StorageError::Compacted {
            requested: from,
            compact_revision: compact,
        });
    }
    let end = key_bounds(prefix);
    let page = i64::try_from(page).unwrap_or(i64::MAX);
    let mut stmt = tx.prepare_cached(SELECT_HISTORY)?;
    let mut rows = stmt.query(params![from, snapshot, prefix.as_bytes(), end, page])?;
    let mut events = Vec::new();
    let mut last = None;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let key = decode_key(row.get(1)?)?;
        let deleted: bool = row.get(4)?;
        let prev_kv = match row.get::<_, Option<i64>>(5)? {
            Some(prev_id) => Some(KeyValue {
                key: key.clone(),
                value: row.get(6)?,
                create_revision: row.get(7)?,
                mod_revision: prev_id,
            }),
            None => None,
        };
        events.push(WatchEvent {
            event_type: if deleted {
                EventType::Delete
            } else {
                EventType::Put
            },
            kv: KeyValue {
                key,
                value: row.get(2)?,
                create_revision: row.get(3)?,
                mod_revision: id,
            },
            prev_kv,
        });
        last = Some(id);
    }
    let truncated_at = if events.len() as i64 >= page {
        last
    } else {
        None
    };
    Ok(HistoryPage {
        events,
        truncated_at,
        snapshot,
    })
}

/// The state of one watch stream.
struct WatchCursor {
    prefix: String,
    live: broadcast::Receiver<Batch>,
    readers: Arc<Readers>,
    /// Every event before this revision has been delivered (or did not
    /// match); live events below it are duplicates.
    next: Revision,
    /// Read the database from `next` before taking live events.
    catching_up: bool,
    pending: VecDeque<WatchEvent>,
    finished: bool,
    page: usize,
}

impl WatchCursor {
    async fn next_item(mut self) -> Option<(Result<WatchEvent>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            if self.finished {
                return None;
            }
            if self.catching_up {
                if let Err(err) = self.replay_page().await {
                    self.finished = true;
                    return Some((Err(err), self));
                }
                continue;
            }
            match self.live.recv().await {
                Ok(batch) => {
                    for event in batch.iter() {
                        if event.kv.mod_revision >= self.next
                            && event.kv.key.starts_with(&self.prefix)
                        {
                            self.pending.push_back(event.clone());
                        }
                    }
                    if let Some(last) = batch.last() {
                        self.next = self.next.max(last.kv.mod_revision + 1);
                    }
                }
                // Events were dropped for us: fetch them from the database.
                Err(broadcast::error::RecvError::Lagged(_)) => self.catching_up = true,
                Err(broadcast::error::RecvError::Closed) => {
                    self.finished = true;
                    return Some((
                        Err(StorageError::Unavailable("sqlite store closed".into())),
                        self,
                    ));
                }
            }
        }
    }

    async fn replay_page(&mut self) -> Result<()> {
        let prefix = self.prefix.clone();
        let (from, page) = (self.next, self.page);
        let history = self
            .readers
            .read(move |tx| history_in(tx, &prefix, from, page))
            .await?;
        self.pending.extend(history.events);
        match history.truncated_at {
            Some(last) => self.next = last + 1,
            None => {
                // Up to date with the snapshot; live events after it are
                // already buffered in `live`.
                self.next = self.next.max(history.snapshot + 1);
                self.catching_up = false;
            }
        }
        Ok(())
    }
}
