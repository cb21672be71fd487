//! Resource quota usage: what an object charges against a `ResourceQuota`,
//! which quotas apply to it (scopes), and the arithmetic and printing of
//! resource lists. One place for the ResourceQuota admission plugin (API
//! server) and the resource quota controller (controller manager).
//!
//! Objects are the JSON values clients send. A quota resource name belongs
//! to exactly one API resource ([`resource_of`]): `pods`, `requests.cpu`,
//! `hugepages-2Mi` to pods; `services.nodeports` to services;
//! `requests.storage` and `<class>.storageclass.storage.k8s.io/...` to
//! persistentvolumeclaims; `configmaps`, `secrets`,
//! `replicationcontrollers`, `resourcequotas` and `count/<resource>.<group>`
//! to what they name.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{json, Map, Value};

use crate::quantity::parse_milli;

/// How a quantity prints, taken from the suffix it was written with (as
/// upstream's `resource.Quantity` keeps it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

/// A quantity in thousandths, with the format it prints in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity {
    pub milli: i128,
    pub format: Format,
}

impl Quantity {
    pub fn parse(text: &str) -> Option<Quantity> {
        let milli = parse_milli(text)?;
        let suffix = text
            .trim()
            .trim_start_matches(['+', '-'])
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        let format = if suffix.ends_with('i') {
            Format::BinarySI
        } else if suffix.len() > 1 && suffix.starts_with(['e', 'E']) {
            Format::DecimalExponent
        } else {
            Format::DecimalSI
        };
        Some(Quantity { milli, format })
    }

    pub fn count(n: i128) -> Quantity {
        Quantity {
            milli: n * 1000,
            format: Format::DecimalSI,
        }
    }

    pub fn zero() -> Quantity {
        Quantity::count(0)
    }

    /// A sum keeps the format of its first non-zero term.
    pub fn add(&mut self, other: Quantity) {
        if self.milli == 0 {
            self.format = other.format;
        }
        self.milli += other.milli;
    }
}

impl fmt::Display for Quantity {
    /// Upstream's canonical form: the largest suffix that keeps an integer
    /// mantissa; binary only from 1Ki up and for whole numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.milli < 0 { "-" } else { "" };
        let milli = self.milli.abs();
        if milli == 0 {
            return f.write_str("0");
        }
        let whole = milli % 1000 == 0;
        let value = milli / 1000;
        let format = match self.format {
            Format::BinarySI if !whole || value < 1024 => Format::DecimalSI,
            other => other,
        };
        match format {
            Format::BinarySI => {
                for (exp, suffix) in [
                    (6, "Ei"),
                    (5, "Pi"),
                    (4, "Ti"),
                    (3, "Gi"),
                    (2, "Mi"),
                    (1, "Ki"),
                ] {
                    let unit = 1024i128.pow(exp);
                    if value % unit == 0 {
                        return write!(f, "{sign}{}{suffix}", value / unit);
                    }
                }
                write!(f, "{sign}{value}")
            }
            Format::DecimalSI | Format::DecimalExponent => {
                let exponent_form = format == Format::DecimalExponent;
                if !whole {
                    return if exponent_form {
                        write!(f, "{sign}{milli}e-3")
                    } else {
                        write!(f, "{sign}{milli}m")
                    };
                }
                for (exp, suffix) in [
                    (18, "E"),
                    (15, "P"),
                    (12, "T"),
                    (9, "G"),
                    (6, "M"),
                    (3, "k"),
                ] {
                    let unit = 10i128.pow(exp);
                    if value % unit == 0 {
                        return if exponent_form {
                            write!(f, "{sign}{}e{exp}", value / unit)
                        } else {
                            write!(f, "{sign}{}{suffix}", value / unit)
                        };
                    }
                }
                write!(f, "{sign}{value}")
            }
        }
    }
}

/// Resource name -> quantity, sorted by name.
pub type ResourceList = BTreeMap<String, Quantity>;

/// A `ResourceList` JSON object; entries that are not quantities are skipped.
pub fn parse_list(value: Option<&Value>) -> ResourceList {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), quantity_of(v)?)))
                .collect()
        })
        .unwrap_or_default()
}

fn quantity_of(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => Quantity::parse(s),
        Value::Number(n) => Quantity::parse(&n.to_string()),
        _ => None,
    }
}

/// The JSON object of a list, quantities in canonical form.
pub fn list_to_json(list: &ResourceList) -> Value {
    let map: Map<String, Value> = list
        .iter()
        .map(|(k, q)| (k.clone(), json!(q.to_string())))
        .collect();
    Value::Object(map)
}

/// `a=1,b=500m`, sorted by name, as upstream prints lists in messages.
pub fn pretty_print(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, q)| format!("{k}={q}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The sum of two lists.
pub fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, q) in b {
        out.entry(k.clone()).or_insert_with(Quantity::zero).add(*q);
    }
    out
}

/// `a - b` per key of `a`, never below zero.
pub fn subtract_non_negative(a: &ResourceList, b: &ResourceList) -> ResourceList {
    a.iter()
        .map(|(k, q)| {
            let minus = b.get(k).map_or(0, |o| o.milli);
            let milli = (q.milli - minus).max(0);
            (k.clone(), Quantity { milli, ..*q })
        })
        .collect()
}

/// Only the entries named in `names`.
pub fn mask<'a>(list: &ResourceList, names: impl IntoIterator<Item = &'a str>) -> ResourceList {
    let names: BTreeSet<&str> = names.into_iter().collect();
    list.iter()
        .filter(|(k, _)| names.contains(k.as_str()))
        .map(|(k, q)| (k.clone(), *q))
        .collect()
}

pub fn is_zero(list: &ResourceList) -> bool {
    list.values().all(|q| q.milli == 0)
}

/// The names of `a` whose value exceeds the same name in `limits` (names
/// `limits` lacks are unconstrained).
pub fn exceeded(a: &ResourceList, limits: &ResourceList) -> Vec<String> {
    a.iter()
        .filter(|(k, q)| limits.get(*k).is_some_and(|l| q.milli > l.milli))
        .map(|(k, _)| k.clone())
        .collect()
}

/// The API resource (group, plural) a quota resource name counts.
pub fn resource_of(name: &str) -> (String, String) {
    let core = |plural: &str| (String::new(), plural.to_string());
    if let Some(counted) = name.strip_prefix("count/") {
        return match counted.split_once('.') {
            Some((plural, group)) => (group.to_string(), plural.to_string()),
            None => core(counted),
        };
    }
    match name {
        "services" | "services.nodeports" | "services.loadbalancers" => core("services"),
        "persistentvolumeclaims" | "requests.storage" => core("persistentvolumeclaims"),
        "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas" => core(name),
        _ if name.contains(STORAGE_CLASS_SUFFIX) => core("persistentvolumeclaims"),
        _ => core("pods"),
    }
}

const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

const POD_RESOURCES: &[&str] = &[
    "count/pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
];

/// A name with no domain, or in `kubernetes.io`, is native.
fn is_native(name: &str) -> bool {
    match name.split_once('/') {
        None => true,
        Some((domain, _)) => domain == "kubernetes.io" || domain.ends_with(".kubernetes.io"),
    }
}

/// Object count name of a resource: `count/pods`, `count/deployments.apps`.
pub fn object_count_name(group: &str, plural: &str) -> String {
    if group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{group}")
    }
}

/// Of `names`, those the evaluator of (group, plural) measures.
pub fn matching_resources<'a>(
    group: &str,
    plural: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let count = object_count_name(group, plural);
    names
        .into_iter()
        .filter(|name| {
            if *name == count {
                return true;
            }
            match (group, plural) {
                ("", "pods") => {
                    POD_RESOURCES.contains(name)
                        || name.starts_with("hugepages-")
                        || name.starts_with("requests.hugepages-")
                        || (name.starts_with("requests.") && !is_native(name))
                }
                ("", "services") => {
                    matches!(
                        *name,
                        "services" | "services.nodeports" | "services.loadbalancers"
                    )
                }
                ("", "persistentvolumeclaims") => {
                    matches!(*name, "persistentvolumeclaims" | "requests.storage")
                        || name.ends_with(&format!("{STORAGE_CLASS_SUFFIX}requests.storage"))
                        || name.ends_with(&format!("{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"))
                }
                ("", "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas") => {
                    *name == plural
                }
                _ => false,
            }
        })
        .map(str::to_string)
        .collect()
}

/// Resources quota never counts (upstream's default ignored resources).
pub fn ignored(group: &str, plural: &str) -> bool {
    matches!(
        (group, plural),
        ("", "events")
            | ("events.k8s.io", "events")
            | ("", "bindings")
            | ("", "componentstatuses")
            | ("authentication.k8s.io", _)
            | ("authorization.k8s.io", _)
    )
}

/// What one object of (group, plural) charges, evaluated at `now` (Unix
/// seconds; pods past their deletion grace period stop counting).
pub fn usage(group: &str, plural: &str, obj: &Value, now: i64) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert(object_count_name(group, plural), Quantity::count(1));
    match (group, plural) {
        ("", "pods") => pod_usage(obj, now, &mut out),
        ("", "services") => service_usage(obj, &mut out),
        ("", "persistentvolumeclaims") => pvc_usage(obj, &mut out),
        ("", "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas") => {
            out.insert(plural.to_string(), Quantity::count(1));
        }
        _ => {}
    }
    out
}

fn service_usage(svc: &Value, out: &mut ResourceList) {
    out.insert("services".into(), Quantity::count(1));
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map_or(0, Vec::len) as i128;
    match svc.pointer("/spec/type").and_then(Value::as_str) {
        Some("NodePort") => {
            out.insert("services.nodeports".into(), Quantity::count(ports));
        }
        Some("LoadBalancer") => {
            let allocate =
                svc.pointer("/spec/allocateLoadBalancerNodePorts") != Some(&json!(false));
            let node_ports = if allocate {
                ports
            } else {
                // Only ports that ask for a node port explicitly.
                svc.pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .map_or(0, |p| {
                        p.iter()
                            .filter(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0)
                            .count()
                    }) as i128
            };
            out.insert("services.nodeports".into(), Quantity::count(node_ports));
            out.insert("services.loadbalancers".into(), Quantity::count(1));
        }
        _ => {}
    }
}

fn pvc_usage(pvc: &Value, out: &mut ResourceList) {
    out.insert("persistentvolumeclaims".into(), Quantity::count(1));
    let class = pvc
        .pointer("/spec/storageClassName")
        .and_then(Value::as_str)
        .or_else(|| {
            pvc.pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
                .and_then(Value::as_str)
        })
        .unwrap_or("");
    if !class.is_empty() {
        out.insert(
            format!("{class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"),
            Quantity::count(1),
        );
    }
    let requested = pvc
        .pointer("/spec/resources/requests/storage")
        .and_then(quantity_of);
    // A resize that failed and was scaled back still holds what was
    // allocated (RecoverVolumeExpansionFailure).
    let allocated = pvc
        .pointer("/status/allocatedResources/storage")
        .and_then(quantity_of);
    let storage = match (requested, allocated) {
        (Some(r), Some(a)) if a.milli > r.milli => Some(a),
        (Some(r), _) => Some(r),
        (None, a) => a,
    };
    if let Some(storage) = storage {
        out.insert("requests.storage".into(), storage);
        if !class.is_empty() {
            out.insert(
                format!("{class}{STORAGE_CLASS_SUFFIX}requests.storage"),
                storage,
            );
        }
    }
}

/// Whether a pod still counts for compute quota: not terminal, not past
/// its deletion grace period.
pub fn pod_counts(pod: &Value, now: i64) -> bool {
    if matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    ) {
        return false;
    }
    let deletion = pod
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .and_then(crate::meta::parse_timestamp);
    let grace = pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    if let (Some(deletion), Some(grace)) = (deletion, grace) {
        if now > deletion.unix_timestamp().saturating_add(grace) {
            return false;
        }
    }
    true
}

fn pod_usage(pod: &Value, now: i64, out: &mut ResourceList) {
    if !pod_counts(pod, now) {
        return;
    }
    let requests = pod_resources(pod, "requests");
    let limits = pod_resources(pod, "limits");
    let compute = compute_usage(&requests, &limits);
    *out = add(out, &compute);
}

/// One container's (or the pod's effective) requests and limits turned
/// into quota names.
fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("pods".into(), Quantity::count(1));
    for base in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(base) {
            out.insert(base.into(), *q);
            out.insert(format!("requests.{base}"), *q);
        }
        if let Some(q) = limits.get(base) {
            out.insert(format!("limits.{base}"), *q);
        }
    }
    for (name, q) in requests {
        if name.starts_with("hugepages-") {
            out.insert(name.clone(), *q);
            out.insert(format!("requests.{name}"), *q);
        } else if !is_native(name) {
            out.insert(format!("requests.{name}"), *q);
        }
    }
    out
}

fn container_list<'a>(pod: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn max_into(acc: &mut ResourceList, other: &ResourceList) {
    for (k, q) in other {
        match acc.get(k) {
            Some(cur) if cur.milli >= q.milli => {}
            _ => {
                acc.insert(k.clone(), *q);
            }
        }
    }
}

/// The pod's effective requests or limits: the containers' sum (with
/// sidecars, init containers that keep running), or the largest init
/// container step if that is more, plus the pod overhead.
pub fn pod_resources(pod: &Value, kind: &str) -> ResourceList {
    let of = |c: &Value| parse_list(c.pointer(&format!("/resources/{kind}")));
    let mut containers = ResourceList::new();
    for c in container_list(pod, "containers") {
        containers = add(&containers, &of(c));
    }
    let mut sidecars = ResourceList::new();
    let mut init_peak = ResourceList::new();
    for c in container_list(pod, "initContainers") {
        let own = of(c);
        if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            sidecars = add(&sidecars, &own);
            max_into(&mut init_peak, &sidecars);
        } else {
            max_into(&mut init_peak, &add(&own, &sidecars));
        }
    }
    let mut total = add(&containers, &sidecars);
    max_into(&mut total, &init_peak);
    let overhead = parse_list(pod.pointer("/spec/overhead"));
    // Overhead adds only to resources the pod asks for (or limits set).
    if kind == "requests" {
        total = add(&total, &overhead);
    } else {
        for (k, q) in overhead {
            if let Some(cur) = total.get_mut(&k) {
                cur.add(q);
            }
        }
    }
    total
}

/// Quota-relevant QoS: BestEffort when no container asks for or limits
/// cpu or memory (the recorded `status.qosClass` wins).
pub fn is_best_effort(pod: &Value) -> bool {
    if let Some(class) = pod.pointer("/status/qosClass").and_then(Value::as_str) {
        return class == "BestEffort";
    }
    let sets_compute = |c: &Value| {
        ["requests", "limits"].iter().any(|kind| {
            c.pointer(&format!("/resources/{kind}"))
                .and_then(Value::as_object)
                .is_some_and(|m| m.contains_key("cpu") || m.contains_key("memory"))
        })
    };
    let pod_level = ["requests", "limits"].iter().any(|kind| {
        pod.pointer(&format!("/spec/resources/{kind}"))
            .and_then(Value::as_object)
            .is_some_and(|m| m.contains_key("cpu") || m.contains_key("memory"))
    });
    !pod_level
        && !container_list(pod, "containers")
            .chain(container_list(pod, "initContainers"))
            .any(sets_compute)
}

/// A pod with a non-negative `activeDeadlineSeconds`.
pub fn is_terminating(pod: &Value) -> bool {
    pod.pointer("/spec/activeDeadlineSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|s| s >= 0)
}

fn uses_cross_namespace_pod_affinity(pod: &Value) -> bool {
    let cross = |term: &Value| {
        term.get("namespaces")
            .and_then(Value::as_array)
            .is_some_and(|n| !n.is_empty())
            || term.get("namespaceSelector").is_some_and(|s| !s.is_null())
    };
    ["podAffinity", "podAntiAffinity"].iter().any(|kind| {
        let Some(affinity) = pod.pointer(&format!("/spec/affinity/{kind}")) else {
            return false;
        };
        let required = affinity
            .get("requiredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(cross);
        let preferred = affinity
            .get("preferredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|w| w.get("podAffinityTerm"))
            .any(cross);
        required || preferred
    })
}

/// A quota's scopes as selector requirements (`spec.scopes` are `Exists`).
pub fn scope_selectors(quota: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| json!({"scopeName": s, "operator": "Exists"}))
        .collect();
    out.extend(
        quota
            .pointer("/spec/scopeSelector/matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .cloned(),
    );
    out
}

/// Whether a pod satisfies one scope requirement.
fn pod_matches_scope(selector: &Value, pod: &Value) -> bool {
    let scope = selector
        .get("scopeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    match scope {
        "Terminating" => is_terminating(pod),
        "NotTerminating" => !is_terminating(pod),
        "BestEffort" => is_best_effort(pod),
        "NotBestEffort" => !is_best_effort(pod),
        "CrossNamespacePodAffinity" => uses_cross_namespace_pod_affinity(pod),
        "PriorityClass" => {
            let class = pod
                .pointer("/spec/priorityClassName")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty());
            let values: Vec<&str> = selector
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match selector.get("operator").and_then(Value::as_str) {
                Some("In") => class.is_some_and(|c| values.contains(&c)),
                Some("NotIn") => class.is_none_or(|c| !values.contains(&c)),
                Some("Exists") => class.is_some(),
                Some("DoesNotExist") => class.is_none(),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether the quota's scopes select the object: every requirement must
/// hold; only pods can satisfy a scope.
pub fn matches_scopes(group: &str, plural: &str, quota: &Value, obj: &Value) -> bool {
    let pods = group.is_empty() && plural == "pods";
    scope_selectors(quota)
        .iter()
        .all(|s| pods && pod_matches_scope(s, obj))
}

/// The quota applies to the object: it limits something the object's
/// resource is measured in (by `status.hard`), and its scopes select it.
pub fn quota_matches(group: &str, plural: &str, quota: &Value, obj: &Value) -> bool {
    let hard = parse_list(quota.pointer("/status/hard"));
    !matching_resources(group, plural, hard.keys().map(String::as_str)).is_empty()
        && matches_scopes(group, plural, quota, obj)
}

/// The cpu and memory names a quota requires every container to state.
const MUST_SPECIFY: &[&str] = &[
    "cpu",
    "limits.cpu",
    "limits.memory",
    "memory",
    "requests.cpu",
    "requests.memory",
];

/// Upstream's backwards-compatible rule: when a quota limits cpu or memory,
/// every container must state it. Err is the message after `failed quota:
/// <name>: `.
pub fn pod_constraints(required: &[String], pod: &Value) -> Result<(), String> {
    // Pod-level resources replace the per-container requirement.
    let pod_level = pod
        .pointer("/spec/resources")
        .and_then(Value::as_object)
        .is_some_and(|r| {
            ["requests", "limits"].iter().any(|k| {
                r.get(*k)
                    .and_then(Value::as_object)
                    .is_some_and(|m| !m.is_empty())
            })
        });
    if pod_level {
        return Ok(());
    }
    let required: BTreeSet<&str> = required
        .iter()
        .map(String::as_str)
        .filter(|r| MUST_SPECIFY.contains(r))
        .collect();
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for c in container_list(pod, "containers").chain(container_list(pod, "initContainers")) {
        let usage = compute_usage(
            &parse_list(c.pointer("/resources/requests")),
            &parse_list(c.pointer("/resources/limits")),
        );
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        for r in &required {
            if !usage.contains_key(*r) {
                missing.entry(r).or_default().insert(name.to_string());
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, names)| {
            format!(
                "{r} for: {}",
                names.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    Err(format!("must specify {}", parts.join("; ")))
}

/// Whether an update of an object can change what it charges (create
/// always can): services and claims on any update, pods only when the
/// Terminating scope flips, object counts never.
pub fn update_may_change_usage(group: &str, plural: &str, old: &Value, new: &Value) -> bool {
    match (group, plural) {
        ("", "services" | "persistentvolumeclaims") => true,
        ("", "pods") => is_terminating(old) != is_terminating(new),
        _ => false,
    }
}

/// A quota's usage of `names` over `objects` (all of one resource in the
/// quota's namespace): zero-filled, only objects its scopes select.
pub fn usage_stats<'a>(
    group: &str,
    plural: &str,
    quota: &Value,
    names: &[String],
    objects: impl IntoIterator<Item = &'a Value>,
    now: i64,
) -> ResourceList {
    let mut used: ResourceList = names
        .iter()
        .map(|n| (n.clone(), Quantity::zero()))
        .collect();
    for obj in objects {
        if !matches_scopes(group, plural, quota, obj) {
            continue;
        }
        let charge = usage(group, plural, obj, now);
        used = add(&used, &mask(&charge, names.iter().map(String::as_str)));
    }
    used
}

/// The resources a quota's hard limits name, each with the names it
/// measures: what the controller lists to compute `status.used`.
pub fn resources_of_hard(hard: &ResourceList) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for name in hard.keys() {
        let (group, plural) = resource_of(name);
        if ignored(&group, &plural) {
            continue;
        }
        if !matching_resources(&group, &plural, [name.as_str()]).is_empty()
            || name.starts_with("count/")
        {
            out.entry((group, plural)).or_default().push(name.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> String {
        Quantity::parse(text)
            .map(|q| q.to_string())
            .unwrap_or_default()
    }

    fn list(v: Value) -> ResourceList {
        parse_list(Some(&v))
    }

    fn pod(containers: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": containers}})
    }

    #[test]
    fn quantities_print_in_upstreams_canonical_form() {
        assert_eq!(q("500m"), "500m");
        assert_eq!(q("0.5"), "500m");
        assert_eq!(q("1000m"), "1");
        assert_eq!(q("2000"), "2k");
        assert_eq!(q("1500"), "1500");
        assert_eq!(q("1Gi"), "1Gi");
        assert_eq!(q("1024Mi"), "1Gi");
        assert_eq!(q("1.5Gi"), "1536Mi");
        assert_eq!(q("512"), "512");
        assert_eq!(q("1e3"), "1e3");
        assert_eq!(q("2E"), "2E", "E alone is exa, not an exponent");
        assert_eq!(q("0"), "0");
        let mut sum = Quantity::zero();
        sum.add(Quantity::parse("1Gi").unwrap());
        sum.add(Quantity::parse("1Gi").unwrap());
        assert_eq!(
            sum.to_string(),
            "2Gi",
            "a zero takes the first term's format"
        );
    }

    #[test]
    fn pod_usage_counts_requests_limits_and_the_pod() {
        let p = pod(json!([
            {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "1Gi", "example.com/gpu": "1", "hugepages-2Mi": "4Mi"}, "limits": {"cpu": "1"}}},
            {"name": "b", "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}}}
        ]));
        let u = usage("", "pods", &p, 0);
        assert_eq!(
            pretty_print(&u),
            "count/pods=1,cpu=500m,hugepages-2Mi=4Mi,limits.cpu=1,memory=2Gi,pods=1,requests.cpu=500m,requests.example.com/gpu=1,requests.hugepages-2Mi=4Mi,requests.memory=2Gi"
        );
    }

    #[test]
    fn init_containers_count_as_the_larger_of_their_peak_and_the_sum() {
        let mut p = pod(json!([{"name": "a", "resources": {"requests": {"cpu": "100m"}}}]));
        p["spec"]["initContainers"] = json!([
            {"name": "init", "resources": {"requests": {"cpu": "2"}}},
            {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "200m"}}}
        ]);
        p["spec"]["overhead"] = json!({"cpu": "10m"});
        let u = usage("", "pods", &p, 0);
        assert_eq!(u["requests.cpu"].to_string(), "2010m");
        p["spec"]["initContainers"][0]["resources"]["requests"]["cpu"] = json!("100m");
        let u = usage("", "pods", &p, 0);
        assert_eq!(
            u["requests.cpu"].to_string(),
            "310m",
            "containers plus the sidecar"
        );
    }

    #[test]
    fn terminal_pods_and_pods_past_their_grace_period_count_only_as_objects() {
        let mut p = pod(json!([{"name": "a", "resources": {"requests": {"cpu": "1"}}}]));
        p["status"] = json!({"phase": "Succeeded"});
        assert_eq!(pretty_print(&usage("", "pods", &p, 0)), "count/pods=1");
        p["status"] = json!({"phase": "Running"});
        p["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:30Z");
        p["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        let deletion = 1_704_067_230;
        assert!(usage("", "pods", &p, deletion).contains_key("pods"));
        assert!(!usage("", "pods", &p, deletion + 31).contains_key("pods"));
    }

    #[test]
    fn services_charge_node_ports_and_load_balancers() {
        let svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}});
        assert_eq!(
            pretty_print(&usage("", "services", &svc, 0)),
            "count/services=1,services=1,services.nodeports=2"
        );
        let lb = json!({"spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false,
            "ports": [{"port": 80}, {"port": 81, "nodePort": 30001}]}});
        assert_eq!(
            pretty_print(&usage("", "services", &lb, 0)),
            "count/services=1,services=1,services.loadbalancers=1,services.nodeports=1"
        );
    }

    #[test]
    fn claims_charge_storage_per_class() {
        let pvc = json!({"spec": {"storageClassName": "gold", "resources": {"requests": {"storage": "10Gi"}}}});
        assert_eq!(
            pretty_print(&usage("", "persistentvolumeclaims", &pvc, 0)),
            "count/persistentvolumeclaims=1,gold.storageclass.storage.k8s.io/persistentvolumeclaims=1,gold.storageclass.storage.k8s.io/requests.storage=10Gi,persistentvolumeclaims=1,requests.storage=10Gi"
        );
    }

    #[test]
    fn quota_names_map_to_the_resource_they_count() {
        assert_eq!(resource_of("requests.cpu"), ("".into(), "pods".into()));
        assert_eq!(
            resource_of("count/deployments.apps"),
            ("apps".into(), "deployments".into())
        );
        assert_eq!(
            resource_of("count/configmaps"),
            ("".into(), "configmaps".into())
        );
        assert_eq!(
            resource_of("services.nodeports"),
            ("".into(), "services".into())
        );
        assert_eq!(
            resource_of("gold.storageclass.storage.k8s.io/requests.storage"),
            ("".into(), "persistentvolumeclaims".into())
        );
        let names = [
            "pods",
            "requests.storage",
            "requests.example.com/gpu",
            "count/pods",
            "configmaps",
        ];
        assert_eq!(
            matching_resources("", "pods", names),
            vec!["pods", "requests.example.com/gpu", "count/pods"]
        );
        assert_eq!(
            matching_resources("", "configmaps", names),
            vec!["configmaps"]
        );
        assert_eq!(
            matching_resources("apps", "deployments", ["count/deployments.apps", "pods"]),
            vec!["count/deployments.apps"]
        );
    }

    #[test]
    fn scopes_select_pods_by_deadline_qos_and_priority_class() {
        let best_effort = pod(json!([{"name": "a"}]));
        let mut burstable = pod(json!([{"name": "a", "resources": {"requests": {"cpu": "1"}}}]));
        burstable["spec"]["activeDeadlineSeconds"] = json!(10);
        burstable["spec"]["priorityClassName"] = json!("high");
        let quota = |spec: Value| json!({"spec": spec, "status": {"hard": {"pods": "1"}}});
        let be = quota(json!({"scopes": ["BestEffort"]}));
        assert!(quota_matches("", "pods", &be, &best_effort));
        assert!(!quota_matches("", "pods", &be, &burstable));
        let term = quota(json!({"scopes": ["Terminating", "NotBestEffort"]}));
        assert!(quota_matches("", "pods", &term, &burstable));
        assert!(!quota_matches("", "pods", &term, &best_effort));
        let high = quota(json!({"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}));
        assert!(quota_matches("", "pods", &high, &burstable));
        assert!(!quota_matches("", "pods", &high, &best_effort));
        let none = quota(json!({"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "DoesNotExist"}]}}));
        assert!(quota_matches("", "pods", &none, &best_effort));
        // Scoped quotas never select other kinds.
        let scoped =
            json!({"spec": {"scopes": ["NotTerminating"]}, "status": {"hard": {"services": "1"}}});
        assert!(!quota_matches("", "services", &scoped, &json!({})));
        let mut cross = best_effort.clone();
        cross["spec"]["affinity"] = json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "k", "namespaces": ["other"]}]}});
        // A quota the controller has not filled in yet applies to nothing.
        let uninitialised = json!({"spec": {"hard": {"pods": "1"}}});
        assert!(!quota_matches("", "pods", &uninitialised, &best_effort));
        let cq = quota(json!({"scopes": ["CrossNamespacePodAffinity"]}));
        assert!(quota_matches("", "pods", &cq, &cross));
        assert!(!quota_matches("", "pods", &cq, &best_effort));
    }

    #[test]
    fn containers_must_state_the_cpu_and_memory_a_quota_limits() {
        let p = pod(json!([
            {"name": "web", "resources": {"requests": {"cpu": "1"}}},
            {"name": "side"}
        ]));
        let required: Vec<String> = ["requests.cpu", "limits.memory", "pods"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            pod_constraints(&required, &p),
            Err("must specify limits.memory for: side,web; requests.cpu for: side".into())
        );
        assert_eq!(pod_constraints(&["pods".to_string()], &p), Ok(()));
    }

    #[test]
    fn usage_stats_sum_the_selected_objects_zero_filled() {
        let quota =
            json!({"spec": {"hard": {"pods": "5", "requests.cpu": "2", "requests.memory": "1Gi"}}});
        let pods = [
            pod(json!([{"name": "a", "resources": {"requests": {"cpu": "100m"}}}])),
            pod(json!([{"name": "a", "resources": {"requests": {"cpu": "200m"}}}])),
        ];
        let names: Vec<String> = ["pods", "requests.cpu", "requests.memory"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let used = usage_stats("", "pods", &quota, &names, pods.iter(), 0);
        assert_eq!(
            pretty_print(&used),
            "pods=2,requests.cpu=300m,requests.memory=0"
        );
        let hard = list(json!({"pods": "2", "requests.cpu": "250m"}));
        assert_eq!(exceeded(&used, &hard), vec!["requests.cpu"]);
        let per = resources_of_hard(&list(
            json!({"pods": "1", "count/deployments.apps": "1", "services.nodeports": "1"}),
        ));
        assert_eq!(per.len(), 3);
    }
}
