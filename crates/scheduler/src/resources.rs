//! Resource arithmetic: parsing Kubernetes quantities, a node's allocatable
//! resources, and what a pod requests as upstream's resource helper computes
//! it (regular containers summed, sidecar init containers added, regular
//! init containers taken as a maximum, pod overhead on top).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// CPU assumed for a container without a cpu request when scoring, so
/// that "empty" pods still spread (upstream's non-zero defaults).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory assumed for a container without a memory request when scoring.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of every resource the scheduler accounts for. Extended and
/// hugepages resources live in `scalar`, kept sorted by name; it is almost
/// always empty, so a Vec beats a map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pod_number: i64,
    pub scalar: Vec<(String, i64)>,
}

impl Resource {
    /// Add one named quantity.
    pub fn add_named(&mut self, name: &str, quantity: &Quantity) {
        match name {
            "cpu" => self.milli_cpu += parse_milli(&quantity.0).unwrap_or(0),
            "memory" => self.memory += parse_value(&quantity.0).unwrap_or(0),
            "ephemeral-storage" => self.ephemeral_storage += parse_value(&quantity.0).unwrap_or(0),
            "pods" => self.allowed_pod_number += parse_value(&quantity.0).unwrap_or(0),
            other => {
                let value = parse_value(&quantity.0).unwrap_or(0);
                self.add_scalar(other, value);
            }
        }
    }

    pub fn add_scalar(&mut self, name: &str, value: i64) {
        match self.scalar.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => self.scalar[i].1 += value,
            Err(i) => self.scalar.insert(i, (name.to_string(), value)),
        }
    }

    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .map(|i| self.scalar[i].1)
            .unwrap_or(0)
    }

    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resource {
        let mut r = Resource::default();
        for (name, q) in list.into_iter().flatten() {
            r.add_named(name, q);
        }
        r
    }

    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pod_number += other.allowed_pod_number;
        for (n, v) in &other.scalar {
            self.add_scalar(n, *v);
        }
    }

    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pod_number -= other.allowed_pod_number;
        for (n, v) in &other.scalar {
            self.add_scalar(n, -*v);
        }
    }

    /// Per-resource maximum, used for init containers.
    pub fn max_with(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (n, v) in &other.scalar {
            let current = self.scalar(n);
            if *v > current {
                self.add_scalar(n, *v - current);
            }
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.iter().all(|(_, v)| *v == 0)
    }

    /// The amount of a resource by its Kubernetes name.
    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.allowed_pod_number,
            other => self.scalar(other),
        }
    }
}

/// What a node offers: `status.allocatable`, or `status.capacity` when a
/// node reports no allocatable.
pub fn node_allocatable(node: &Node) -> Resource {
    let status = node.status.as_ref();
    let list = status
        .and_then(|s| s.allocatable.as_ref())
        .or_else(|| status.and_then(|s| s.capacity.as_ref()));
    Resource::from_list(list)
}

/// A pod's requests: (exact requests, requests with the non-zero cpu and
/// memory defaults used by scoring).
pub fn pod_requests(pod: &Pod) -> (Resource, Resource) {
    let Some(spec) = pod.spec.as_ref() else {
        return (Resource::default(), Resource::default());
    };
    let mut exact = Resource::default();
    let mut non_zero = Resource::default();
    for c in &spec.containers {
        let (e, n) = container_requests(c);
        exact.add(&e);
        non_zero.add(&n);
    }
    // Sidecars (restartable init containers) run next to the app
    // containers, so they add up; a regular init container runs alone with
    // the sidecars started before it, so it only raises the maximum.
    let mut sidecars = Resource::default();
    let mut sidecars_nz = Resource::default();
    let mut init_max = Resource::default();
    let mut init_max_nz = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let (e, n) = container_requests(c);
        if c.restart_policy.as_deref() == Some("Always") {
            exact.add(&e);
            non_zero.add(&n);
            sidecars.add(&e);
            sidecars_nz.add(&n);
        } else {
            let mut e2 = e;
            e2.add(&sidecars);
            let mut n2 = n;
            n2.add(&sidecars_nz);
            init_max.max_with(&e2);
            init_max_nz.max_with(&n2);
        }
    }
    exact.max_with(&init_max);
    non_zero.max_with(&init_max_nz);
    if let Some(overhead) = spec.overhead.as_ref() {
        let o = Resource::from_list(Some(overhead));
        exact.add(&o);
        non_zero.add(&o);
    }
    (exact, non_zero)
}

/// One container's requests; a resource with only a limit requests its
/// limit (what API defaulting would have filled in).
fn container_requests(c: &Container) -> (Resource, Resource) {
    let mut r = Resource::default();
    let resources = c.resources.as_ref();
    let requests = resources.and_then(|r| r.requests.as_ref());
    let limits = resources.and_then(|r| r.limits.as_ref());
    for (name, q) in requests.into_iter().flatten() {
        r.add_named(name, q);
    }
    for (name, q) in limits.into_iter().flatten() {
        if !requests.is_some_and(|req| req.contains_key(name)) {
            r.add_named(name, q);
        }
    }
    let mut nz = r.clone();
    let has = |name: &str| {
        requests.is_some_and(|req| req.contains_key(name))
            || limits.is_some_and(|l| l.contains_key(name))
    };
    if !has("cpu") {
        nz.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
    }
    if !has("memory") {
        nz.memory = DEFAULT_MEMORY_REQUEST;
    }
    (r, nz)
}

/// Parse a quantity into thousandths of its unit, rounding up.
pub fn parse_milli(s: &str) -> Option<i64> {
    parse_scaled(s, 3)
}

/// Parse a quantity into whole units, rounding up.
pub fn parse_value(s: &str) -> Option<i64> {
    parse_scaled(s, 0)
}

/// Quantity grammar: sign? digits (. digits)? then one of a binary suffix
/// (Ki..Ei), a decimal suffix (n u m "" k M G T P E) or an exponent (e3).
fn parse_scaled(s: &str, scale: i32) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (negative, rest) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(end);
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let digits = format!("{int_part}{frac_part}");
    let mut mantissa: i128 = 0;
    for b in digits.bytes().take(30) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(b - b'0'))?;
    }
    let mut exp10: i32 = -(frac_part.len() as i32) + scale;
    let mut binary: u32 = 0;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => binary = 10,
        "Mi" => binary = 20,
        "Gi" => binary = 30,
        "Ti" => binary = 40,
        "Pi" => binary = 50,
        "Ei" => binary = 60,
        other if other.starts_with(['e', 'E']) => exp10 += other[1..].parse::<i32>().ok()?,
        _ => return None,
    }
    mantissa = mantissa.checked_mul(1i128 << binary)?;
    let value = if exp10 >= 0 {
        mantissa.checked_mul(10i128.checked_pow(exp10 as u32)?)?
    } else {
        let div = 10i128.checked_pow((-exp10) as u32)?;
        (mantissa + div - 1) / div
    };
    let value = i64::try_from(value).unwrap_or(i64::MAX);
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    #[test]
    fn quantities_parse_with_decimal_binary_and_exponent_suffixes() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_milli("2"), Some(2000));
        assert_eq!(parse_value("1Gi"), Some(1 << 30));
        assert_eq!(parse_value("500Mi"), Some(500 << 20));
        assert_eq!(parse_value("1k"), Some(1000));
        assert_eq!(parse_value("1e3"), Some(1000));
        assert_eq!(parse_value("1500m"), Some(2), "whole units round up");
        assert_eq!(parse_value("abc"), None);
    }

    #[test]
    fn pod_requests_sum_containers_and_take_the_larger_init_container() {
        let p = pod(json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "200m", "memory": "100Mi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "300m"}}}
            ],
            "initContainers": [
                {"name": "i", "resources": {"requests": {"cpu": "1", "memory": "50Mi"}}}
            ],
            "overhead": {"cpu": "10m"}
        }));
        let (exact, nz) = pod_requests(&p);
        assert_eq!(exact.milli_cpu, 1010);
        assert_eq!(exact.memory, 100 << 20);
        // b has no memory request: the scoring default applies to it.
        assert_eq!(nz.memory, (100 << 20) + DEFAULT_MEMORY_REQUEST);
    }

    #[test]
    fn sidecar_init_containers_add_to_the_app_containers() {
        let p = pod(json!({
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "500m"}}}],
            "initContainers": [
                {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "200m"}}},
                {"name": "i", "resources": {"requests": {"cpu": "600m"}}}
            ]
        }));
        let (exact, _) = pod_requests(&p);
        // Sidecar 200m + app 500m = 700m; init 600m + sidecar 200m = 800m.
        assert_eq!(exact.milli_cpu, 800);
    }

    #[test]
    fn limits_stand_in_for_missing_requests_and_extended_resources_are_scalar() {
        let p = pod(json!({
            "containers": [{"name": "a", "resources": {
                "limits": {"cpu": "1", "example.com/gpu": "2"}}}]
        }));
        let (exact, nz) = pod_requests(&p);
        assert_eq!(exact.milli_cpu, 1000);
        assert_eq!(exact.scalar("example.com/gpu"), 2);
        assert_eq!(nz.milli_cpu, 1000);
        assert_eq!(nz.memory, DEFAULT_MEMORY_REQUEST);
    }
}
