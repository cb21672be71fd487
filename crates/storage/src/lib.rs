//! The datastore: an etcd-shaped, revisioned key-value store.
//!
//! Everything the API server persists goes through the [`Store`] trait. It
//! has etcd v3's model: one global revision that strictly increases with
//! every write, every key carries the revision that created it and the one
//! that last modified it, writes are conditional on those revisions, and a
//! watch can start at any revision that has not been compacted away.
//!
//! Backends:
//! - [`sqlite::SqliteStore`]: the embedded default (WAL, one writer thread
//!   with group commit, fsync before acknowledging, watch pushed on commit).
//! - [`etcd::EtcdStore`]: a real etcd v3 cluster over gRPC, plain or mTLS.
//!
//! [`conformance`] holds the one behavioural suite both backends must pass;
//! [`testing`] starts a throwaway etcd for tests; [`spawn_compactor`] keeps
//! either backend's history bounded.
//!
//! This crate knows nothing about Kubernetes objects: keys are strings and
//! values are opaque bytes. It must never be used by anything but the API
//! server.

mod compactor;
pub mod conformance;
pub mod encryption;
pub mod etcd;
mod request;
pub mod sqlite;
pub mod testing;

pub use compactor::spawn_compactor;

use std::pin::Pin;

use futures::Stream;

/// A store revision. Revisions start at 1 and strictly increase.
pub type Revision = i64;

/// One key at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the write that created this incarnation of the key.
    pub create_revision: Revision,
    /// Revision of the write that last modified (or deleted) the key.
    pub mod_revision: Revision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Put,
    Delete,
}

/// A committed change, as delivered by [`Store::watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub event_type: EventType,
    /// For `Put`: the new value. For `Delete`: the key with the deleting
    /// revision as `mod_revision` and the last value it held.
    pub kv: KeyValue,
    /// The value before this event, if the key existed.
    pub prev_kv: Option<KeyValue>,
}

/// A range read over every key starting with `prefix`.
#[derive(Debug, Clone, Default)]
pub struct RangeRequest {
    pub prefix: String,
    /// Inclusive first key to return (used for pagination); must start with
    /// `prefix` when set.
    pub start_key: Option<String>,
    /// Maximum number of keys to return; 0 means no limit.
    pub limit: i64,
    /// Read as of this revision; 0 means the latest.
    pub revision: Revision,
}

#[derive(Debug, Clone, Default)]
pub struct RangeResponse {
    /// Keys in lexical order.
    pub kvs: Vec<KeyValue>,
    /// True if keys beyond `kvs` exist in the range.
    pub more: bool,
    /// Number of keys in the range after the ones returned.
    pub remaining: i64,
    /// The revision the read was served at.
    pub revision: Revision,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("key {0} already exists")]
    KeyExists(String),
    #[error("key {0} not found")]
    NotFound(String),
    /// The key's mod revision did not match the expected one. `current` is
    /// the key as it is now (None if it no longer exists).
    #[error("key {key} was modified: expected revision {expected}")]
    Conflict {
        key: String,
        expected: Revision,
        current: Option<KeyValue>,
    },
    #[error("revision {requested} has been compacted; oldest available is {compact_revision}")]
    Compacted {
        requested: Revision,
        compact_revision: Revision,
    },
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("datastore unavailable: {0}")]
    Unavailable(String),
    /// Stored data that cannot be read back (e.g. a value that does not
    /// decrypt with the configured keys).
    #[error("internal datastore error: {0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// A stream of committed events in revision order. A terminal error (for
/// example [`StorageError::Compacted`]) is delivered as the last item.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent>> + Send>>;

/// The etcd-shaped datastore contract. Every method is atomic.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The latest value of `key` and the store's current revision.
    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, Revision)>;

    /// Keys with a prefix, in lexical order, optionally paginated and as of a
    /// past revision.
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse>;

    /// Create `key` only if it does not exist; returns the stored key.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue>;

    /// Replace `key` only if its mod revision is `expected`.
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue>;

    /// Delete `key`, only at mod revision `expected` when given. Returns the
    /// deleted key with the deleting revision as `mod_revision`.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue>;

    /// Every event on keys under `prefix` with revision >= `start_revision`,
    /// in order, then live events as they commit. `start_revision` 0 means
    /// "from now on".
    ///
    /// A compacted `start_revision` is not an error of the call: it returns a
    /// stream whose first (and last) item is [`StorageError::Compacted`], as
    /// happens when a running watch falls behind a compaction.
    async fn watch(&self, prefix: &str, start_revision: Revision) -> Result<WatchStream>;

    /// Drop history older than `revision`; reads and watches before it then
    /// fail with [`StorageError::Compacted`].
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The latest committed revision.
    async fn current_revision(&self) -> Result<Revision>;

    /// A short name for logs and health checks ("sqlite", "etcd").
    fn backend_name(&self) -> &'static str;
}

/// The exclusive end of the key range covering `prefix` (etcd's
/// "range_end" for a prefix).
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}
