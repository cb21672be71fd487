//! The pods this server bound last, kept decoded for the status write
//! that follows.
//!
//! A binding is followed at once by the node's first status write of the
//! pod. Each write starts from the current object, which the watch cache
//! holds only as JSON, so that status write decoded the object the binding
//! had just encoded. Here the binding leaves its object behind and the next
//! write of the pod takes it. (Only bindings: objects from other writes are
//! rarely written again soon, and keeping them costs more, in dropping
//! them once they have gone cold, than the decodes it saves.)
//!
//! An entry is exactly what decoding the watch cache's copy at its revision
//! gives (the written object with its `resourceVersion`), and is taken at
//! most once. It is only a starting point: writes are conditional on its
//! revision, so an entry overtaken by another server's write only costs a
//! conflict and a retry from the datastore. Entries older than the watch
//! cache's copy are never used.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde_json::Value;

/// Objects kept at most: enough to span the moment between a binding and
/// the status write under load, small next to the cache.
const CAPACITY: usize = 512;

#[derive(Default)]
pub struct RecentWrites {
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    /// Storage key -> (mod revision, object).
    objects: HashMap<String, (i64, Value)>,
    /// Keys in the order they were remembered, oldest first; an entry
    /// whose object was since taken or replaced is skipped on eviction.
    order: VecDeque<(String, i64)>,
}

impl RecentWrites {
    /// Keep `object`, written at `revision` under `key`. Objects pushed out
    /// are dropped after the lock is released.
    pub fn remember(&self, key: String, revision: i64, object: Value) {
        let mut evicted = Vec::new();
        if let Ok(mut entries) = self.inner.lock() {
            entries.order.push_back((key.clone(), revision));
            if let Some(old) = entries.objects.insert(key, (revision, object)) {
                evicted.push(old.1);
            }
            while entries.objects.len() > CAPACITY {
                let Some((key, revision)) = entries.order.pop_front() else {
                    break;
                };
                if entries
                    .objects
                    .get(&key)
                    .is_some_and(|(r, _)| *r == revision)
                {
                    evicted.extend(entries.objects.remove(&key).map(|(_, obj)| obj));
                }
            }
            // Taken and replaced entries leave stale keys behind.
            if entries.order.len() > 2 * CAPACITY {
                let Entries { objects, order } = &mut *entries;
                order
                    .retain(|(key, revision)| objects.get(key).is_some_and(|(r, _)| r == revision));
            }
        }
        drop(evicted);
    }

    /// The object last written under `key`, if it is kept and no older
    /// than `at_least` (the watch cache's revision of it).
    pub fn take(&self, key: &str, at_least: i64) -> Option<(Value, i64)> {
        let (revision, object) = self.inner.lock().ok()?.objects.remove(key)?;
        (revision >= at_least).then_some((object, revision))
    }

    /// Drop what is kept under `key` (the object was deleted).
    pub fn forget(&self, key: &str) {
        let old = self
            .inner
            .lock()
            .ok()
            .and_then(|mut e| e.objects.remove(key));
        drop(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_is_taken_once_and_only_if_no_older_than_the_cache() {
        let recent = RecentWrites::default();
        recent.remember("/registry/pods/ns/a".into(), 5, json!({"n": 5}));
        assert_eq!(recent.take("/registry/pods/ns/a", 6), None);
        // Refused entries are gone, not kept for later.
        assert_eq!(recent.take("/registry/pods/ns/a", 0), None);
        recent.remember("/registry/pods/ns/a".into(), 7, json!({"n": 7}));
        recent.remember("/registry/pods/ns/a".into(), 8, json!({"n": 8}));
        assert_eq!(
            recent.take("/registry/pods/ns/a", 7),
            Some((json!({"n": 8}), 8))
        );
        assert_eq!(recent.take("/registry/pods/ns/a", 0), None);
        recent.remember("/registry/pods/ns/b".into(), 9, json!({}));
        recent.forget("/registry/pods/ns/b");
        assert_eq!(recent.take("/registry/pods/ns/b", 0), None);
    }

    #[test]
    fn the_oldest_objects_make_way_beyond_the_capacity() {
        let recent = RecentWrites::default();
        for i in 0..(2 * CAPACITY) as i64 {
            recent.remember(format!("k{i}"), i, json!(i));
            // Taking and replacing leaves stale order entries behind.
            if i % 3 == 0 {
                recent.take(&format!("k{i}"), 0);
            }
        }
        let entries = recent.inner.lock().unwrap();
        assert!(entries.objects.len() <= CAPACITY);
        assert!(entries.order.len() <= 2 * CAPACITY + 1);
        let newest = format!("k{}", (0..2 * CAPACITY).rev().find(|i| i % 3 != 0).unwrap());
        assert!(entries.objects.contains_key(&newest));
        assert!(!entries.objects.contains_key("k1"));
    }
}
