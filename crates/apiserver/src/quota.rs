//! The ResourceQuota admission plugin: a create (or an update that changes
//! what an object charges) is checked against every quota in its namespace
//! that applies to it, and on success charged to their `status.used` with
//! compare-and-swap writes, so two racing creates cannot both fit into the
//! last unit. The resource quota controller (controller manager) later
//! recomputes `status.used` from the objects themselves. What an object
//! charges comes from `apimachinery::quota`.

use std::collections::BTreeSet;

use apimachinery::quota::{self, ResourceList};
use apimachinery::{meta, ApiError, StatusDetails};
use serde_json::Value;
use storage::StorageError;

use crate::registry::Strategy;
use crate::ApiServer;

/// Write attempts per quota before giving up on a busy quota.
const MAX_CONFLICT_RETRIES: usize = 10;

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn forbidden(group: &str, plural: &str, name: &str, message: String) -> ApiError {
    let qualified = if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    };
    let mut err =
        ApiError::forbidden_message(format!("{qualified} \"{name}\" is forbidden: {message}"));
    err.details = Some(Box::new(StatusDetails {
        name: name.to_string(),
        group: group.to_string(),
        kind: plural.to_string(),
        ..Default::default()
    }));
    err
}

/// Admit `obj` (with `old` on an update) against the namespace's quotas;
/// charge them unless `dry_run`.
pub async fn admission(
    state: &ApiServer,
    s: &dyn Strategy,
    namespace: &str,
    obj: &Value,
    old: Option<&Value>,
    dry_run: bool,
) -> Result<(), ApiError> {
    let info = s.info();
    let (group, plural) = (info.group, info.plural);
    if !info.namespaced() || namespace.is_empty() || quota::ignored(group, plural) {
        return Ok(());
    }
    if let Some(old) = old {
        if !quota::update_may_change_usage(group, plural, old, obj) {
            return Ok(());
        }
    }
    let Some(quotas) = state.registry.lookup("", "v1", "resourcequotas") else {
        return Ok(());
    };
    let quota_info = quotas.info();
    // Which quotas exist comes from the watch cache (upstream reads an
    // informer); each one's usage is then read from the datastore.
    let mut names: Vec<String> = state
        .cache
        .list_now(&quota_info.list_prefix(namespace))
        .iter()
        .map(|q| q.selectable().name().to_string())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    let now = now_unix();
    let mut delta = quota::usage(group, plural, obj, now);
    if let Some(old) = old {
        delta = quota::subtract_non_negative(&delta, &quota::usage(group, plural, old, now));
    }
    let object_name = meta::name(obj).to_string();
    let check = Check {
        group,
        plural,
        obj,
        delta: &delta,
        object_name: &object_name,
    };
    // Every quota is checked before any is charged.
    let mut pending: Vec<(String, String)> = Vec::new();
    for name in names {
        let key = quota_info.key(namespace, &name);
        let Some((quota_obj, _)) = read(state, &key, &name).await? else {
            continue;
        };
        if check.evaluate(&quota_obj)?.is_some() {
            pending.push((key, name));
        }
    }
    if dry_run {
        return Ok(());
    }
    for (key, name) in pending {
        charge(state, &check, &key, &name).await?;
    }
    Ok(())
}

struct Check<'a> {
    group: &'a str,
    plural: &'a str,
    obj: &'a Value,
    delta: &'a ResourceList,
    object_name: &'a str,
}

impl Check<'_> {
    /// Refuse if the quota applies and the object breaks it; Some(new
    /// `status.used`) when the quota is to be charged.
    fn evaluate(&self, quota_obj: &Value) -> Result<Option<ResourceList>, ApiError> {
        let (group, plural) = (self.group, self.plural);
        if !quota::quota_matches(group, plural, quota_obj, self.obj) {
            return Ok(None);
        }
        let quota_name = meta::name(quota_obj);
        let hard = quota::parse_list(quota_obj.pointer("/status/hard"));
        let used = quota::parse_list(quota_obj.pointer("/status/used"));
        let restricted = quota::matching_resources(group, plural, hard.keys().map(String::as_str));
        if group.is_empty() && plural == "pods" {
            quota::pod_constraints(&restricted, self.obj).map_err(|message| {
                self.forbidden(format!("failed quota: {quota_name}: {message}"))
            })?;
        }
        if restricted.iter().any(|r| !used.contains_key(r)) {
            let sorted: BTreeSet<&str> = restricted.iter().map(String::as_str).collect();
            return Err(self.forbidden(format!(
                "status unknown for quota: {quota_name}, resources: {}",
                sorted.into_iter().collect::<Vec<_>>().join(",")
            )));
        }
        let requested = quota::mask(self.delta, restricted.iter().map(String::as_str));
        if quota::is_zero(&requested) {
            return Ok(None);
        }
        let new_used = quota::add(&used, &requested);
        let exceeded = quota::exceeded(
            &quota::mask(&new_used, requested.keys().map(String::as_str)),
            &hard,
        );
        if !exceeded.is_empty() {
            let only = |list: &ResourceList| {
                quota::pretty_print(&quota::mask(list, exceeded.iter().map(String::as_str)))
            };
            return Err(self.forbidden(format!(
                "exceeded quota: {quota_name}, requested: {}, used: {}, limited: {}",
                only(&requested),
                only(&used),
                only(&hard)
            )));
        }
        Ok(Some(new_used))
    }

    fn forbidden(&self, message: String) -> ApiError {
        forbidden(self.group, self.plural, self.object_name, message)
    }
}

/// A quota as stored, with its mod revision; None once it is gone.
async fn read(state: &ApiServer, key: &str, name: &str) -> Result<Option<(Value, i64)>, ApiError> {
    let (kv, _) = state
        .store
        .get(key)
        .await
        .map_err(|e| crate::rest::storage_error(e, "resourcequotas", "", name))?;
    Ok(kv.and_then(|kv| {
        let obj: Value = serde_json::from_slice(&kv.value).ok()?;
        Some((obj, kv.mod_revision))
    }))
}

/// Add the object's usage to one quota's `status.used`, re-checking and
/// retrying when someone else wrote the quota in between.
async fn charge(
    state: &ApiServer,
    check: &Check<'_>,
    key: &str,
    name: &str,
) -> Result<(), ApiError> {
    for _ in 0..MAX_CONFLICT_RETRIES {
        let Some((mut quota_obj, revision)) = read(state, key, name).await? else {
            return Ok(());
        };
        let Some(new_used) = check.evaluate(&quota_obj)? else {
            return Ok(());
        };
        quota_obj["status"]["used"] = quota::list_to_json(&new_used);
        meta::remove_meta(&mut quota_obj, "resourceVersion");
        let bytes = serde_json::to_vec(&quota_obj)
            .map_err(|e| ApiError::internal(format!("encoding quota {name}: {e}")))?;
        match state.store.update(key, bytes, revision).await {
            Ok(_) => return Ok(()),
            Err(StorageError::Conflict { .. }) => continue,
            Err(StorageError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(crate::rest::storage_error(e, "resourcequotas", "", name)),
        }
    }
    Err(ApiError::new(
        409,
        apimachinery::StatusReason::Conflict,
        format!("Operation cannot be fulfilled on resourcequotas \"{name}\": too many concurrent changes to the quota, try again"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn quota_obj(hard: Value, used: Value) -> Value {
        json!({"metadata": {"name": "q", "namespace": "ns"}, "spec": {"hard": hard},
               "status": {"hard": hard, "used": used}})
    }

    fn pod(cpu: Option<&str>) -> Value {
        let resources = match cpu {
            Some(cpu) => json!({"requests": {"cpu": cpu}}),
            None => json!({}),
        };
        json!({"metadata": {"name": "p", "namespace": "ns"},
               "spec": {"containers": [{"name": "c", "resources": resources}]}})
    }

    fn evaluate(quota_obj: &Value, obj: &Value) -> Result<Option<ResourceList>, ApiError> {
        let delta = quota::usage("", "pods", obj, 0);
        Check {
            group: "",
            plural: "pods",
            obj,
            delta: &delta,
            object_name: "p",
        }
        .evaluate(quota_obj)
    }

    #[test]
    fn a_pod_over_the_count_is_refused_in_upstreams_words() {
        let q = quota_obj(json!({"pods": "2"}), json!({"pods": "2"}));
        let err = evaluate(&q, &pod(None)).unwrap_err();
        assert_eq!(err.code, 403);
        assert_eq!(
            err.message,
            "pods \"p\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
        );
    }

    #[test]
    fn a_pod_within_the_quota_is_charged_every_limited_resource() {
        let q = quota_obj(
            json!({"pods": "2", "requests.cpu": "1", "configmaps": "1"}),
            json!({"pods": "1", "requests.cpu": "250m", "configmaps": "1"}),
        );
        let used = evaluate(&q, &pod(Some("0.5"))).unwrap().unwrap();
        assert_eq!(
            quota::pretty_print(&used),
            "configmaps=1,pods=2,requests.cpu=750m"
        );
    }

    #[test]
    fn a_pod_missing_a_limited_cpu_request_fails_the_quota() {
        let q = quota_obj(
            json!({"pods": "2", "requests.cpu": "1"}),
            json!({"pods": "0", "requests.cpu": "0"}),
        );
        let err = evaluate(&q, &pod(None)).unwrap_err();
        assert_eq!(
            err.message,
            "pods \"p\" is forbidden: failed quota: q: must specify requests.cpu for: c"
        );
    }

    #[test]
    fn a_quota_without_recorded_usage_refuses_what_it_limits() {
        let q = quota_obj(
            json!({"pods": "2", "requests.cpu": "1"}),
            json!({"pods": "0"}),
        );
        let err = evaluate(&q, &pod(Some("1"))).unwrap_err();
        assert_eq!(
            err.message,
            "pods \"p\" is forbidden: status unknown for quota: q, resources: pods,requests.cpu"
        );
    }

    #[test]
    fn a_quota_the_controller_has_not_filled_in_applies_to_nothing() {
        let q = json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "0"}}});
        assert_eq!(evaluate(&q, &pod(None)).unwrap(), None);
    }
}
