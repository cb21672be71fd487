//! Periodic history compaction, for any [`Store`].
//!
//! Without compaction the MVCC history (and so the SQLite file or the etcd
//! database) grows forever. The API server starts one compactor per store;
//! like upstream's, it keeps a window of recent revisions so that watches
//! that fall a little behind can still resume.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::{Revision, StorageError, Store};

/// Every `interval`, compact `store` up to the revision it was at one
/// interval earlier (as upstream's compactor does, so that at least one
/// interval of history stays readable for watches and list continuations
/// however fast writes come), and never past `current_revision -
/// keep_revisions`.
///
/// The task holds only a weak reference: it ends by itself once the store is
/// dropped. Abort the returned handle to stop it earlier. Must be called from
/// within a Tokio runtime.
pub fn spawn_compactor<S>(store: &Arc<S>, interval: Duration, keep_revisions: i64) -> JoinHandle<()>
where
    S: Store + ?Sized,
{
    let store = Arc::downgrade(store);
    let keep_revisions = keep_revisions.max(0);
    let interval = interval.max(Duration::from_millis(1));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick completes immediately; compaction starts one
        // interval after startup.
        ticker.tick().await;
        let mut compacted: Revision = 0;
        // The revision seen at the previous tick: what this tick may compact.
        let mut previous: Revision = 0;
        loop {
            ticker.tick().await;
            let Some(store) = store.upgrade() else {
                return;
            };
            let current = match store.current_revision().await {
                Ok(current) => current,
                Err(err) => {
                    tracing::warn!(backend = store.backend_name(), %err, "compactor: cannot read current revision");
                    continue;
                }
            };
            let target = previous.min(current - keep_revisions);
            previous = current;
            if target <= compacted || target <= 0 {
                continue;
            }
            match store.compact(target).await {
                Ok(()) => {
                    tracing::debug!(
                        backend = store.backend_name(),
                        revision = target,
                        "compacted"
                    );
                    compacted = target;
                }
                // Someone (another API server sharing etcd) compacted further.
                Err(StorageError::Compacted {
                    compact_revision, ..
                }) => compacted = compact_revision.max(target),
                Err(err) => {
                    tracing::warn!(backend = store.backend_name(), revision = target, %err, "compaction failed");
                }
            }
        }
    })
}
