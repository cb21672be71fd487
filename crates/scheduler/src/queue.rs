//! The scheduling queue, shaped like upstream's: an active heap ordered by
//! priority (higher first) then queue time (older first), a backoff heap
//! (1 s doubling per attempt up to 10 s by default), and a pool of
//! unschedulable pods that cluster events move back when they could help
//! -- judged by which plugins rejected the pod -- plus periodic flushes.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::podinfo::PodInfo;

/// Unschedulable pods are retried at least this often.
pub const MAX_IN_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);

/// A pod handed out by [`SchedulingQueue::pop`].
#[derive(Debug, Clone)]
pub struct QueuedPod {
    pub info: Arc<PodInfo>,
    pub attempts: u32,
    /// The scheduling cycle this attempt belongs to.
    pub cycle: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Active,
    Backoff,
    Unschedulable,
    InFlight,
}

#[derive(Debug)]
struct Entry {
    info: Arc<PodInfo>,
    place: Place,
    generation: u64,
    attempts: u32,
    queued_at: Instant,
    last_failure: Option<Instant>,
    rejected_by: Vec<&'static str>,
}

#[derive(Debug, PartialEq, Eq)]
struct ActiveItem {
    priority: i32,
    queued_at: Instant,
    seq: u64,
    key: String,
    generation: u64,
}

impl Ord for ActiveItem {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.queued_at.cmp(&self.queued_at))
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for ActiveItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    active: BinaryHeap<ActiveItem>,
    backoff: BinaryHeap<Reverse<(Instant, u64, String, u64)>>,
    seq: u64,
    cycle: u64,
    move_request_cycle: u64,
    /// Keys of pods in the unschedulable pool, so events scan only those.
    pool: std::collections::HashSet<String>,
}

#[derive(Debug)]
pub struct SchedulingQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl SchedulingQueue {
    pub fn new(initial_backoff: Duration, max_backoff: Duration) -> SchedulingQueue {
        SchedulingQueue {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            initial_backoff,
            max_backoff,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent data
        // (every mutation is a few field writes), so keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Backoff after `attempts` failed attempts.
    pub fn backoff_duration(&self, attempts: u32) -> Duration {
        let mut d = self.initial_backoff;
        for _ in 1..attempts {
            d = d.saturating_mul(2);
            if d >= self.max_backoff {
                return self.max_backoff;
            }
        }
        d.min(self.max_backoff)
    }

    fn push_active(&self, inner: &mut Inner, key: &str, now: Instant) {
        inner.pool.remove(key);
        inner.seq += 1;
        let seq = inner.seq;
        if let Some(e) = inner.entries.get_mut(key) {
            e.generation += 1;
            e.place = Place::Active;
            e.queued_at = now;
            let item = ActiveItem {
                priority: e.info.priority,
                queued_at: now,
                seq,
                key: key.to_string(),
                generation: e.generation,
            };
            inner.active.push(item);
            self.notify.notify_one();
        }
    }

    fn push_backoff(&self, inner: &mut Inner, key: &str, now: Instant) {
        inner.pool.remove(key);
        let Some(e) = inner.entries.get_mut(key) else {
            return;
        };
        let until = e.last_failure.unwrap_or(now) + self.backoff_duration(e.attempts);
        if until <= now {
            self.push_active(inner, key, now);
            return;
        }
        e.generation += 1;
        e.place = Place::Backoff;
        let generation = e.generation;
        inner.seq += 1;
        let seq = inner.seq;
        inner
            .backoff
            .push(Reverse((until, seq, key.to_string(), generation)));
    }

    /// A pending pod appeared or changed. An unschedulable pod gets another
    /// chance only when its spec or labels changed (not for status writes).
    pub fn add_or_update(&self, info: Arc<PodInfo>) {
        let now = Instant::now();
        let mut inner = self.lock();
        let key = info.key.clone();
        match inner.entries.get_mut(&key) {
            Some(e) => {
                let priority_changed = e.info.priority != info.priority;
                let spec_changed = e.info.pod.spec != info.pod.spec || e.info.labels != info.labels;
                e.info = info;
                match e.place {
                    Place::Unschedulable if spec_changed => {
                        self.push_backoff(&mut inner, &key, now);
                    }
                    Place::Active if priority_changed => self.push_active(&mut inner, &key, now),
                    _ => {}
                }
            }
            None => {
                inner.entries.insert(
                    key.clone(),
                    Entry {
                        info,
                        place: Place::Active,
                        generation: 0,
                        attempts: 0,
                        queued_at: now,
                        last_failure: None,
                        rejected_by: Vec::new(),
                    },
                );
                self.push_active(&mut inner, &key, now);
            }
        }
    }

    /// The pod was deleted, bound elsewhere or no longer ours.
    pub fn delete(&self, key: &str) {
        let mut inner = self.lock();
        inner.entries.remove(key);
        inner.pool.remove(key);
    }

    pub fn contains(&self, key: &str) -> bool {
        self.lock().entries.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Take the most important active pod without waiting.
    pub fn try_pop(&self) -> Option<QueuedPod> {
        let mut inner = self.lock();
        while let Some(item) = inner.active.pop() {
            inner.cycle += 1;
            let cycle = inner.cycle;
            let Some(e) = inner.entries.get_mut(&item.key) else {
                continue;
            };
            if e.generation != item.generation || e.place != Place::Active {
                continue;
            }
            e.place = Place::InFlight;
            e.attempts += 1;
            return Some(QueuedPod {
                info: e.info.clone(),
                attempts: e.attempts,
                cycle,
            });
        }
        None
    }

    /// Wait for the most important active pod.
    pub async fn pop(&self) -> QueuedPod {
        loop {
            if let Some(p) = self.try_pop() {
                return p;
            }
            // notify_one leaves a permit when nobody waits, so a push
            // between try_pop and here is not lost.
            self.notify.notified().await;
        }
    }

    /// Scheduled (or handed to the binder): the queue forgets the pod.
    pub fn done(&self, key: &str) {
        let mut inner = self.lock();
        if inner
            .entries
            .get(key)
            .is_some_and(|e| e.place == Place::InFlight)
        {
            inner.entries.remove(key);
        }
    }

    /// No node fits. `rejected_by` are the plugins that said no; an event
    /// during the attempt sends the pod to backoff instead of the pool.
    pub fn unschedulable(&self, pod: &QueuedPod, rejected_by: Vec<&'static str>) {
        let now = Instant::now();
        let mut inner = self.lock();
        let moved_meanwhile = inner.move_request_cycle >= pod.cycle;
        let Some(e) = inner.entries.get_mut(&pod.info.key) else {
            return;
        };
        e.last_failure = Some(now);
        e.rejected_by = rejected_by;
        if moved_meanwhile {
            self.push_backoff(&mut inner, &pod.info.key, now);
        } else {
            e.generation += 1;
            e.place = Place::Unschedulable;
            e.queued_at = now;
            inner.pool.insert(pod.info.key.clone());
        }
    }

    /// An error (e.g. a failed bind): retry after backoff.
    pub fn retry_after_backoff(&self, info: Arc<PodInfo>) {
        let now = Instant::now();
        let mut inner = self.lock();
        let key = info.key.clone();
        let e = inner.entries.entry(key.clone()).or_insert(Entry {
            info,
            place: Place::InFlight,
            generation: 0,
            attempts: 1,
            queued_at: now,
            last_failure: None,
            rejected_by: Vec::new(),
        });
        e.last_failure = Some(now);
        self.push_backoff(&mut inner, &key, now);
    }

    /// A cluster event happened; `helps(plugins)` says whether it could
    /// make a pod rejected by those plugins schedulable.
    pub fn move_unschedulable(&self, helps: impl Fn(&[&'static str]) -> bool) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.move_request_cycle = inner.cycle;
        if inner.pool.is_empty() {
            return;
        }
        let keys: Vec<String> = inner
            .pool
            .iter()
            .filter(|k| {
                inner.entries.get(*k).is_some_and(|e| {
                    e.place == Place::Unschedulable
                        && (e.rejected_by.is_empty() || helps(&e.rejected_by))
                })
            })
            .cloned()
            .collect();
        for k in keys {
            self.push_backoff(&mut inner, &k, now);
        }
    }

    /// Periodic work: expired backoffs become active; pods unschedulable
    /// for too long are retried.
    pub fn flush(&self, now: Instant) {
        let mut inner = self.lock();
        while let Some(Reverse((until, _, _, _))) = inner.backoff.peek() {
            if *until > now {
                break;
            }
            let Some(Reverse((_, _, key, generation))) = inner.backoff.pop() else {
                break;
            };
            if inner
                .entries
                .get(&key)
                .is_some_and(|e| e.generation == generation && e.place == Place::Backoff)
            {
                self.push_active(&mut inner, &key, now);
            }
        }
        let stale: Vec<String> = inner
            .pool
            .iter()
            .filter(|k| {
                inner.entries.get(*k).is_some_and(|e| {
                    now.saturating_duration_since(e.queued_at) >= MAX_IN_UNSCHEDULABLE
                })
            })
            .cloned()
            .collect();
        for k in stale {
            self.push_backoff(&mut inner, &k, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn info(name: &str, priority: i32) -> Arc<PodInfo> {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c"}]}}))
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(p), priority))
    }

    fn queue() -> SchedulingQueue {
        SchedulingQueue::new(Duration::from_secs(1), Duration::from_secs(10))
    }

    #[test]
    fn higher_priority_pops_first_then_older() {
        let q = queue();
        q.add_or_update(info("old-low", 1));
        q.add_or_update(info("high", 10));
        q.add_or_update(info("new-low", 1));
        let order: Vec<String> = std::iter::from_fn(|| q.try_pop())
            .map(|p| p.info.name.clone())
            .collect();
        assert_eq!(order, ["high", "old-low", "new-low"]);
    }

    #[test]
    fn backoff_doubles_from_one_second_up_to_ten() {
        let q = queue();
        let secs: Vec<u64> = (1..=6).map(|a| q.backoff_duration(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn unschedulable_pods_wait_for_a_helpful_event_then_back_off() {
        let q = queue();
        q.add_or_update(info("p", 0));
        let p = q.try_pop().unwrap();
        q.unschedulable(&p, vec!["NodeResourcesFit"]);
        assert!(q.try_pop().is_none());

        q.move_unschedulable(|plugins| plugins.contains(&"TaintToleration"));
        q.flush(Instant::now() + Duration::from_secs(2));
        assert!(q.try_pop().is_none(), "an unrelated event does not move it");

        q.move_unschedulable(|plugins| plugins.contains(&"NodeResourcesFit"));
        assert!(q.try_pop().is_none(), "still backing off");
        q.flush(Instant::now() + Duration::from_millis(1100));
        assert_eq!(q.try_pop().unwrap().attempts, 2);
    }

    #[test]
    fn an_event_during_the_attempt_sends_the_pod_to_backoff_not_the_pool() {
        let q = queue();
        q.add_or_update(info("p", 0));
        let p = q.try_pop().unwrap();
        q.move_unschedulable(|_| true);
        q.unschedulable(&p, vec!["NodeResourcesFit"]);
        q.flush(Instant::now() + Duration::from_millis(1100));
        assert!(q.try_pop().is_some());
    }

    #[test]
    fn pods_left_unschedulable_for_five_minutes_are_retried() {
        let q = queue();
        q.add_or_update(info("p", 0));
        let p = q.try_pop().unwrap();
        q.unschedulable(&p, vec!["NodeAffinity"]);
        q.flush(Instant::now() + MAX_IN_UNSCHEDULABLE + Duration::from_secs(1));
        q.flush(Instant::now() + MAX_IN_UNSCHEDULABLE + Duration::from_secs(2));
        assert!(q.try_pop().is_some());
    }

    #[test]
    fn deleted_and_scheduled_pods_leave_the_queue() {
        let q = queue();
        q.add_or_update(info("a", 0));
        q.add_or_update(info("b", 0));
        q.delete("default/a");
        let b = q.try_pop().unwrap();
        assert_eq!(b.info.name, "b");
        q.done("default/b");
        assert!(q.is_empty());
    }

    #[test]
    fn a_spec_change_gives_an_unschedulable_pod_another_chance() {
        let q = queue();
        q.add_or_update(info("p", 0));
        let p = q.try_pop().unwrap();
        q.unschedulable(&p, vec!["TaintToleration"]);
        q.add_or_update(info("p", 0));
        q.flush(Instant::now() + Duration::from_secs(2));
        assert!(
            q.try_pop().is_none(),
            "a status-only update changes nothing"
        );
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c"}], "tolerations": [{"operator": "Exists"}]}}))
        .unwrap();
        q.add_or_update(Arc::new(PodInfo::new(Arc::new(p), 0)));
        q.flush(Instant::now() + Duration::from_secs(2));
        assert!(q.try_pop().is_some());
    }

    #[tokio::test]
    async fn pop_waits_for_a_pod() {
        let q = Arc::new(queue());
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.pop().await.info.name.clone() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.add_or_update(info("late", 0));
        let name = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(name, "late");
    }
}
