//! Admission: checks and mutations after authorization, before storage.
//! Upstream order: NamespaceLifecycle, ServiceAccount, NodeRestriction,
//! LimitRanger, ResourceQuota, then webhooks. [`mutate`] runs the
//! mutating plugins on a new object before validation (Priority,
//! DefaultTolerationSeconds); [`admit`] the validating ones after it
//! (NamespaceLifecycle). ResourceQuota, the last validating plugin, is
//! `crate::quota::admission`, called by the create and update handlers.

use apimachinery::{meta, ApiError};
use serde_json::{json, Value};

use crate::registry::Strategy;
use crate::ApiServer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// Namespaces that exist for the cluster's own use and may not be deleted.
const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

pub async fn admit(
    state: &ApiServer,
    op: Operation,
    strategy: &dyn Strategy,
    namespace: &str,
    name: &str,
) -> Result<(), ApiError> {
    namespace_lifecycle(state, op, strategy, namespace, name).await
}

/// NamespaceLifecycle: no new content in a missing or terminating
/// namespace; the system namespaces cannot be deleted.
async fn namespace_lifecycle(
    state: &ApiServer,
    op: Operation,
    strategy: &dyn Strategy,
    namespace: &str,
    name: &str,
) -> Result<(), ApiError> {
    let info = strategy.info();
    if info.plural == "namespaces" && info.group.is_empty() {
        if op == Operation::Delete && IMMORTAL_NAMESPACES.contains(&name) {
            return Err(ApiError::forbidden_message(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        return Ok(());
    }
    if !info.namespaced() || op != Operation::Create {
        return Ok(());
    }
    // From the watch cache (its skeleton keeps status.phase), as upstream
    // reads its namespace informer; a namespace the cache has not seen yet
    // (created a moment ago) is looked up in the datastore.
    let key = crate::registry::namespace_key(namespace);
    let ns: Value = match state.cache.get_now(&key) {
        Some(cached) => cached.selectable().to_value(),
        None => {
            let (kv, _) = state
                .store
                .get(&key)
                .await
                .map_err(|e| crate::rest::storage_error(e, "namespaces", "", namespace))?;
            let Some(kv) = kv else {
                return Err(ApiError::not_found("namespaces", "", namespace));
            };
            serde_json::from_slice(&kv.value).unwrap_or(Value::Null)
        }
    };
    if ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating") {
        return Err(ApiError::forbidden_message(format!(
            "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
            info.plural
        )));
    }
    Ok(())
}

/// Mutating admission of a new object, before validation.
pub async fn mutate(
    state: &ApiServer,
    op: Operation,
    strategy: &dyn Strategy,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let info = strategy.info();
    if op == Operation::Create && info.group.is_empty() && info.plural == "pods" {
        service_account(state, obj)?;
        limit_ranger(state, obj)?;
        priority(state, obj).await?;
        default_toleration_seconds(obj);
    }
    if op == Operation::Create && info.group.is_empty() && info.plural == "secrets" {
        service_account_token_secret(state, obj)?;
    }
    Ok(())
}

/// A Secret of type `kubernetes.io/service-account-token` naming an
/// existing ServiceAccount (annotation `kubernetes.io/service-account.name`)
/// is filled in with a legacy token, the cluster CA and the namespace, as
/// upstream's token controller does.
fn service_account_token_secret(state: &ApiServer, secret: &mut Value) -> Result<(), ApiError> {
    if secret.get("type").and_then(Value::as_str) != Some("kubernetes.io/service-account-token") {
        return Ok(());
    }
    let Some(tokens) = state.authenticators.service_accounts.as_ref() else {
        return Ok(());
    };
    let namespace = meta::namespace(secret).to_string();
    let secret_name = meta::name(secret).to_string();
    let sa_name = secret
        .pointer("/metadata/annotations/kubernetes.io~1service-account.name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(sa) =
        crate::authn::service_account::cached(state, "", "serviceaccounts", &namespace, &sa_name)
    else {
        return Ok(());
    };
    let sa_uid = meta::meta_str(&sa, "uid").unwrap_or("").to_string();
    let token = tokens
        .issue_legacy(&namespace, &sa_name, &sa_uid, &secret_name)
        .map_err(|e| ApiError::internal(format!("signing a token: {e}")))?;
    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    if !secret["data"].is_object() {
        secret["data"] = json!({});
    }
    secret["data"]["token"] = json!(b64(&token));
    secret["data"]["namespace"] = json!(b64(&namespace));
    if let Some(ca) = &state.cluster_ca_pem {
        secret["data"]["ca.crt"] = json!(b64(ca));
    }
    secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"] = json!(sa_uid);
    Ok(())
}

/// Priority: a pod's `spec.priority` and `spec.preemptionPolicy` come from
/// its PriorityClass (or the global default class, else 0); a client may
/// not choose a different number itself.
async fn priority(state: &ApiServer, pod: &mut Value) -> Result<(), ApiError> {
    let class_name = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let class = if class_name.is_empty() {
        global_default_priority_class(state).await?
    } else {
        let key = format!("/registry/priorityclasses/{class_name}");
        let (kv, _) = state.store.get(&key).await.map_err(|e| {
            crate::rest::storage_error(e, "priorityclasses", "scheduling.k8s.io", &class_name)
        })?;
        match kv.and_then(|kv| serde_json::from_slice::<Value>(&kv.value).ok()) {
            Some(class) => Some(class),
            None => {
                return Err(ApiError::forbidden_message(format!(
                    "pods \"{}\" is forbidden: no PriorityClass with name {class_name} was found",
                    meta::name(pod)
                )))
            }
        }
    };
    let (value, policy, name) = match &class {
        Some(class) => (
            class.get("value").and_then(Value::as_i64).unwrap_or(0),
            class
                .get("preemptionPolicy")
                .and_then(Value::as_str)
                .unwrap_or("PreemptLowerPriority")
                .to_string(),
            meta::name(class).to_string(),
        ),
        None => (0, "PreemptLowerPriority".to_string(), String::new()),
    };
    if let Some(given) = pod.pointer("/spec/priority").and_then(Value::as_i64) {
        if given != value {
            return Err(ApiError::forbidden_message(format!(
                "pods \"{}\" is forbidden: the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name",
                meta::name(pod)
            )));
        }
    }
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("priority".into(), json!(value));
        if !spec.contains_key("preemptionPolicy") {
            spec.insert("preemptionPolicy".into(), json!(policy));
        }
        if !name.is_empty() && class_name.is_empty() {
            spec.insert("priorityClassName".into(), json!(name));
        }
    }
    Ok(())
}

async fn global_default_priority_class(state: &ApiServer) -> Result<Option<Value>, ApiError> {
    // At the datastore's current revision, so a class created just before
    // is seen.
    let rev =
        state.store.current_revision().await.map_err(|e| {
            crate::rest::storage_error(e, "priorityclasses", "scheduling.k8s.io", "")
        })?;
    let (items, _) = state.cache.list("/registry/priorityclasses/", rev).await?;
    Ok(items
        .iter()
        .map(|c| c.decode())
        .filter(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
        .max_by_key(|c| c.get("value").and_then(Value::as_i64).unwrap_or(0)))
}

/// DefaultTolerationSeconds: pods tolerate a not-ready or unreachable node
/// for 300 seconds unless they say otherwise.
fn default_toleration_seconds(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    let Some(list) = tolerations.as_array_mut() else {
        return;
    };
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let covered = list.iter().any(|t| {
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            let t_key = t.get("key").and_then(Value::as_str).unwrap_or("");
            let op = t.get("operator").and_then(Value::as_str).unwrap_or("Equal");
            (effect.is_empty() || effect == "NoExecute")
                && (t_key == key || (t_key.is_empty() && op == "Exists"))
        });
        if !covered {
            list.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }));
        }
    }
}

const SERVICE_ACCOUNT_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// ServiceAccount: a pod runs as `default` unless it names a service
/// account, which must exist; unless either opts out of automounting, it
/// gets the projected `kube-api-access-<suffix>` volume (a bound token,
/// the cluster CA from `kube-root-ca.crt`, the namespace) mounted into
/// every container. Mirror pods are left alone.
///
/// Unlike upstream, a missing `default` account is not an error: the
/// controller manager creates it moments after a namespace appears, and
/// the kubelet asks for the token only when it starts the pod.
fn service_account(state: &ApiServer, pod: &mut Value) -> Result<(), ApiError> {
    if pod
        .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
        .is_some()
    {
        return Ok(());
    }
    let namespace = meta::namespace(pod).to_string();
    let pod_name = meta::name(pod).to_string();
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let name = match spec.get("serviceAccountName").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => match spec.get("serviceAccount").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => "default".to_string(),
        },
    };
    spec.insert("serviceAccountName".into(), json!(name));
    let account =
        crate::authn::service_account::cached(state, "", "serviceaccounts", &namespace, &name);
    if account.is_none() && name != "default" {
        return Err(ApiError::forbidden_message(format!(
            "pods \"{pod_name}\" is forbidden: error looking up service account {namespace}/{name}: serviceaccount \"{name}\" not found"
        )));
    }
    let automount = spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            account
                .as_ref()
                .and_then(|a| a.get("automountServiceAccountToken"))
                .and_then(Value::as_bool)
        })
        .unwrap_or(true);
    if !automount {
        return Ok(());
    }
    let mounted = |c: &Value| {
        c.get("volumeMounts")
            .and_then(Value::as_array)
            .is_some_and(|m| {
                m.iter().any(|m| {
                    m.get("mountPath").and_then(Value::as_str) == Some(SERVICE_ACCOUNT_MOUNT)
                })
            })
    };
    let suffix: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        .take(5)
        .collect();
    let volume_name = format!("kube-api-access-{suffix}");
    let mut added = false;
    for field in ["initContainers", "containers"] {
        if let Some(containers) = spec.get_mut(field).and_then(Value::as_array_mut) {
            for c in containers.iter_mut().filter(|c| !mounted(c)) {
                let mount = json!({"name": volume_name, "readOnly": true, "mountPath": SERVICE_ACCOUNT_MOUNT});
                match c.get_mut("volumeMounts").and_then(Value::as_array_mut) {
                    Some(mounts) => mounts.push(mount),
                    None => c["volumeMounts"] = json!([mount]),
                }
                added = true;
            }
        }
    }
    if added {
        let volume = json!({
            "name": volume_name,
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
                ],
            },
        });
        match spec.get_mut("volumes").and_then(Value::as_array_mut) {
            Some(volumes) => volumes.push(volume),
            None => {
                spec.insert("volumes".into(), json!([volume]));
            }
        }
    }
    Ok(())
}

/// Label keys (domain `node-restriction.kubernetes.io` and its
/// subdomains) a kubelet may never set on its Node.
fn restricted_label(key: &str) -> bool {
    let domain = key.split_once('/').map(|(d, _)| d).unwrap_or("");
    domain == "node-restriction.kubernetes.io"
        || domain.ends_with(".node-restriction.kubernetes.io")
}

/// NodeRestriction: a kubelet may only create mirror pods bound to itself,
/// may not set or change labels under `node-restriction.kubernetes.io/`
/// on its Node, and may not change its Node's taints after creation.
/// (Which objects a node may touch at all is the Node authorizer's part.)
pub fn node_restriction(
    node: &str,
    strategy: &dyn Strategy,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let info = strategy.info();
    let name = meta::name(obj);
    let forbidden = |what: &str| {
        ApiError::forbidden_message(format!("{} \"{name}\" is forbidden: {what}", info.plural))
    };
    match (info.group, info.plural) {
        ("", "pods") if old.is_none() => {
            if obj
                .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
                .is_none()
            {
                return Err(forbidden(&format!(
                    "pod does not have \"kubernetes.io/config.mirror\" annotation, node \"{node}\" can only create mirror pods"
                )));
            }
            if obj.pointer("/spec/nodeName").and_then(Value::as_str) != Some(node) {
                return Err(forbidden(&format!(
                    "node \"{node}\" can only create pods with spec.nodeName set to itself"
                )));
            }
            Ok(())
        }
        ("coordination.k8s.io", "leases") => {
            if meta::namespace(obj) == "kube-node-lease" && name != node {
                return Err(forbidden(
                    "can only access node lease with the same name as the requesting node",
                ));
            }
            Ok(())
        }
        ("storage.k8s.io", "csinodes") if name != node => Err(forbidden(
            "can only access CSINode with the same name as the requesting node",
        )),
        ("", "nodes") => {
            if name != node {
                return Err(forbidden(&format!(
                    "node \"{node}\" is not allowed to modify node \"{name}\""
                )));
            }
            let labels = apimachinery::selector::labels_of(obj);
            let old_labels = old
                .map(apimachinery::selector::labels_of)
                .unwrap_or_default();
            let mut changed: Vec<&str> = labels
                .iter()
                .filter(|(k, v)| restricted_label(k) && old_labels.get(*k) != Some(v))
                .map(|(k, _)| k.as_str())
                .chain(
                    old_labels
                        .keys()
                        .filter(|k| restricted_label(k) && !labels.contains_key(*k))
                        .map(String::as_str),
                )
                .collect();
            changed.sort_unstable();
            changed.dedup();
            if !changed.is_empty() {
                let verb = if old.is_some() { "modify" } else { "set" };
                return Err(forbidden(&format!(
                    "is not allowed to {verb} labels: {}",
                    changed.join(", ")
                )));
            }
            if let Some(old) = old {
                if obj.pointer("/spec/taints") != old.pointer("/spec/taints") {
                    return Err(forbidden("node is not allowed to modify taints"));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// LimitRanger: the LimitRanges of the pod's namespace fill in container
/// requests and limits the pod leaves out (`defaultRequest`, `default`,
/// noting it in the `kubernetes.io/limit-ranger` annotation), then check
/// `min`, `max` and `maxLimitRequestRatio` per container and per pod.
fn limit_ranger(state: &ApiServer, pod: &mut Value) -> Result<(), ApiError> {
    use apimachinery::quantity::parse_milli;
    let namespace = meta::namespace(pod).to_string();
    let Some(ranges) = state.registry.lookup("", "v1", "limitranges") else {
        return Ok(());
    };
    let prefix = ranges.info().list_prefix(&namespace);
    let items: Vec<Value> = state
        .cache
        .list_now(&prefix)
        .iter()
        .map(|lr| lr.decode())
        .flat_map(|lr| {
            lr.pointer("/spec/limits")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    if items.is_empty() {
        return Ok(());
    }
    let name = meta::name(pod).to_string();
    let mut notes: Vec<String> = Vec::new();
    // Defaults, container by container.
    for item in items
        .iter()
        .filter(|i| i.get("type").and_then(Value::as_str) == Some("Container"))
    {
        for field in ["initContainers", "containers"] {
            let Some(containers) = pod
                .pointer_mut(&format!("/spec/{field}"))
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for c in containers.iter_mut() {
                let cname = c
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                for (source, target, what) in [
                    ("default", "limits", "limit"),
                    ("defaultRequest", "requests", "request"),
                ] {
                    let Some(defaults) = item.get(source).and_then(Value::as_object) else {
                        continue;
                    };
                    let mut set = Vec::new();
                    for (resource, value) in defaults {
                        let present = c
                            .pointer(&format!("/resources/{target}/{resource}"))
                            .is_some();
                        if !present {
                            if !c["resources"].is_object() {
                                c["resources"] = json!({});
                            }
                            if !c["resources"][target].is_object() {
                                c["resources"][target] = json!({});
                            }
                            c["resources"][target][resource] = value.clone();
                            set.push(resource.clone());
                        }
                    }
                    if !set.is_empty() {
                        notes.push(format!(
                            "{} {what} for {} {cname}",
                            set.join(", "),
                            if field == "initContainers" {
                                "init container"
                            } else {
                                "container"
                            }
                        ));
                    }
                }
                // A request defaults to its limit, as the pod defaults do.
                if let Some(limits) = c
                    .pointer("/resources/limits")
                    .and_then(Value::as_object)
                    .cloned()
                {
                    for (resource, value) in limits {
                        if c.pointer(&format!("/resources/requests/{resource}"))
                            .is_none()
                        {
                            if !c["resources"]["requests"].is_object() {
                                c["resources"]["requests"] = json!({});
                            }
                            c["resources"]["requests"][resource] = value;
                        }
                    }
                }
            }
        }
    }
    if !notes.is_empty() {
        if !pod["metadata"]["annotations"].is_object() {
            pod["metadata"]["annotations"] = json!({});
        }
        pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"] =
            json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
    }
    // Checks.
    let qty = |v: Option<&Value>| v.and_then(Value::as_str).and_then(parse_milli);
    let mut problems: Vec<String> = Vec::new();
    let containers: Vec<Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|f| {
            pod.pointer(&format!("/spec/{f}"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    for item in &items {
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
        let scope = match kind {
            "Container" => "Container",
            "Pod" => "Pod",
            _ => continue,
        };
        // (request, limit) per resource: each container, or the pod's sums.
        let subjects: Vec<Vec<Usage>> = if scope == "Container" {
            containers
                .iter()
                .map(|c| {
                    resources_named(item)
                        .into_iter()
                        .map(|r| {
                            let req = qty(c.pointer(&format!("/resources/requests/{r}")));
                            let lim = qty(c.pointer(&format!("/resources/limits/{r}")));
                            (r, req, lim)
                        })
                        .collect()
                })
                .collect()
        } else {
            vec![resources_named(item)
                .into_iter()
                .map(|r| {
                    let sum = |which: &str| -> Option<i128> {
                        let vals: Vec<Option<i128>> = containers
                            .iter()
                            .map(|c| qty(c.pointer(&format!("/resources/{which}/{r}"))))
                            .collect();
                        if vals.iter().all(Option::is_some) && !vals.is_empty() {
                            Some(vals.into_iter().flatten().sum())
                        } else {
                            None
                        }
                    };
                    (r.clone(), sum("requests"), sum("limits"))
                })
                .collect()]
        };
        for subject in subjects {
            for (resource, request, limit) in subject {
                let text = |v: &Value| v.as_str().unwrap_or("").to_string();
                if let Some(min_v) = item.pointer(&format!("/min/{resource}")) {
                    let min = qty(Some(min_v)).unwrap_or(0);
                    match request {
                        Some(r) if r < min => problems.push(format!(
                            "minimum {resource} usage per {scope} is {}, but request is {}",
                            text(min_v),
                            apimachinery::quantity::format_milli(r)
                        )),
                        None => problems.push(format!(
                            "minimum {resource} usage per {scope} is {}.  No request is specified",
                            text(min_v)
                        )),
                        _ => {}
                    }
                }
                if let Some(max_v) = item.pointer(&format!("/max/{resource}")) {
                    let max = qty(Some(max_v)).unwrap_or(0);
                    match limit {
                        Some(l) if l > max => problems.push(format!(
                            "maximum {resource} usage per {scope} is {}, but limit is {}",
                            text(max_v),
                            apimachinery::quantity::format_milli(l)
                        )),
                        None => problems.push(format!(
                            "maximum {resource} usage per {scope} is {}.  No limit is specified",
                            text(max_v)
                        )),
                        _ => {}
                    }
                }
                if let Some(ratio_v) = item.pointer(&format!("/maxLimitRequestRatio/{resource}")) {
                    let ratio = qty(Some(ratio_v)).unwrap_or(0);
                    if let (Some(r), Some(l)) = (request, limit) {
                        if r > 0 && l * 1000 > ratio * r {
                            problems.push(format!(
                                "{resource} max limit to request ratio per {scope} is {}, but provided ratio is {:.6}",
                                text(ratio_v),
                                l as f64 / r as f64
                            ));
                        }
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(ApiError::forbidden_message(format!(
        "pods \"{name}\" is forbidden: [{}]",
        problems.join(", ")
    )))
}

/// A resource's (name, request, limit) in thousandths.
type Usage = (String, Option<i128>, Option<i128>);

/// The resources a LimitRange item constrains.
fn resources_named(item: &Value) -> Vec<String> {
    let mut names: Vec<String> = ["min", "max", "maxLimitRequestRatio"]
        .iter()
        .filter_map(|k| item.get(*k).and_then(Value::as_object))
        .flat_map(|m| m.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}
