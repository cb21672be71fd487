//! What the endpoints and endpointslice controllers share: which pods back
//! a Service (selector, port resolution, per-pod addresses) and the loop
//! that turns Service and Pod changes into batched per-Service reconciles.
//!
//! Services without a selector are never reconciled: their Endpoints (like
//! `default/kubernetes`, maintained by the API server) belong to someone
//! else.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::runtime::watcher;
use tokio::sync::mpsc;

use crate::node_informer::Informer;
use crate::node_podutil;
use crate::{Context, Error};

/// Label on Endpoints and EndpointSlices of headless Services.
pub(crate) const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// (namespace, name) of a Service.
pub(crate) type ServiceKey = (String, String);

/// The Service's selector, None when it has none (or an empty one).
pub(crate) fn selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty())
}

pub(crate) fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

pub(crate) fn is_headless(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

pub(crate) fn publish_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// The pod's IPv4 address, if it has one.
pub(crate) fn pod_ipv4(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let mut candidates: Vec<&str> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|ip| ip.ip.as_str())
        .collect();
    candidates.extend(status.pod_ip.as_deref());
    candidates
        .into_iter()
        .find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
        .map(str::to_string)
}

/// Upstream's ShouldPodBeInEndpoints: running or pending pods with an IP;
/// terminating ones only when asked for.
pub(crate) fn should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if node_podutil::is_terminal(pod) || pod_ipv4(pod).is_none() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// The container port a service port reaches on `pod`: a numeric
/// targetPort as is (unset means the service port), a named one looked up
/// among the pod's container ports with the same protocol.
pub(crate) fn resolve_target_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(number)) => Some(*number),
        Some(IntOrString::String(name)) => {
            if let Ok(number) = name.parse::<i32>() {
                return Some(number);
            }
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            pod.spec.as_ref()?.containers.iter().find_map(|c| {
                c.ports.iter().flatten().find_map(|p| {
                    (p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol)
                        .then_some(p.container_port)
                })
            })
        }
    }
}

/// The DNS hostname of a pod behind `service`: its spec.hostname, when its
/// subdomain names this Service.
pub(crate) fn hostname(service: &Service, pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_deref() == service.metadata.name.as_deref()
        && pod.metadata.namespace == service.metadata.namespace)
        .then(|| hostname.to_string())
}

pub(crate) fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// Labels an Endpoints/EndpointSlice object inherits from its Service.
pub(crate) fn inherited_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    if is_headless(service) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    labels
}

/// Which pods (by uid) each Service's output lists, and the reverse: a pod
/// event finds the Services to revisit without scanning every object.
#[derive(Default)]
pub(crate) struct ListedPods {
    by_service: HashMap<ServiceKey, HashSet<String>>,
    by_pod: HashMap<String, HashSet<ServiceKey>>,
}

impl ListedPods {
    /// Record that `key`'s output now lists exactly `uids`.
    pub(crate) fn set(&mut self, key: &ServiceKey, uids: HashSet<String>) {
        if let Some(old) = self.by_service.remove(key) {
            for uid in old {
                if let Some(services) = self.by_pod.get_mut(&uid) {
                    services.remove(key);
                    if services.is_empty() {
                        self.by_pod.remove(&uid);
                    }
                }
            }
        }
        for uid in &uids {
            self.by_pod
                .entry(uid.clone())
                .or_default()
                .insert(key.clone());
        }
        if !uids.is_empty() {
            self.by_service.insert(key.clone(), uids);
        }
    }

    /// The Services whose output lists pod `uid`.
    pub(crate) fn services(&self, uid: &str) -> Vec<ServiceKey> {
        self.by_pod
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// One controller driven by Service and Pod changes.
pub(crate) trait ServiceReconciler {
    /// Bring the output of one selector Service up to date with its pods
    /// (all pods of its namespace are given).
    async fn reconcile(&mut self, service: &Service, pods: &[Arc<Pod>]);
    /// The Service is gone (or lost its selector): drop its output.
    async fn forget(&mut self, key: &ServiceKey);
    /// Services whose current output lists this pod (so that a pod whose
    /// labels no longer match is removed).
    fn services_listing(&self, pod: &Pod) -> Vec<ServiceKey>;
}

/// How long changes are collected before the affected Services are
/// reconciled: bursts of pod updates cost one write per Service.
const BATCH: Duration = Duration::from_millis(100);
/// Every Service is reconciled this often even without changes.
const RESYNC: Duration = Duration::from_secs(60);

fn key_of(service: &Service) -> Option<ServiceKey> {
    Some((
        service.metadata.namespace.clone()?,
        service.metadata.name.clone()?,
    ))
}

/// Run `reconciler` over every selector Service until a fatal error.
pub(crate) async fn drive<R: ServiceReconciler>(
    ctx: &Context,
    mut reconciler: R,
) -> Result<(), Error> {
    let (service_tx, mut service_events) = mpsc::unbounded_channel();
    let (pod_tx, mut pod_events) = mpsc::unbounded_channel();
    let services = Informer::<Service>::shared(&ctx.informers, Some(service_tx));
    let pods = Informer::<Pod>::shared(&ctx.informers, Some(pod_tx));
    services.ready().await?;
    pods.ready().await?;
    let mut dirty: HashSet<ServiceKey> = HashSet::new();
    let mut everything = true;
    let mut batch = tokio::time::interval(BATCH);
    let mut resync = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            event = service_events.recv() => {
                let Some(event) = event else {
                    return Err(Error::Other("service informer stopped".into()));
                };
                match event {
                    watcher::Event::Apply(service) | watcher::Event::InitApply(service) => {
                        dirty.extend(key_of(&service));
                    }
                    watcher::Event::Delete(service) => {
                        if let Some(key) = key_of(&service) {
                            if selector(&service).is_some() {
                                reconciler.forget(&key).await;
                            }
                            dirty.remove(&key);
                        }
                    }
                    watcher::Event::Init | watcher::Event::InitDone => {}
                }
            }
            event = pod_events.recv() => {
                let Some(event) = event else {
                    return Err(Error::Other("pod informer stopped".into()));
                };
                match event {
                    watcher::Event::Apply(pod) | watcher::Event::Delete(pod) | watcher::Event::InitApply(pod) => {
                        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
                        for service in services.store.state() {
                            if service.metadata.namespace.as_deref() != Some(namespace.as_str()) {
                                continue;
                            }
                            if selector(&service).is_some_and(|s| selects(s, &pod)) {
                                dirty.extend(key_of(&service));
                            }
                        }
                        dirty.extend(reconciler.services_listing(&pod));
                    }
                    watcher::Event::InitDone => everything = true,
                    watcher::Event::Init => {}
                }
            }
            _ = resync.tick() => everything = true,
            _ = batch.tick() => {
                if !everything && dirty.is_empty() {
                    continue;
                }
                let all_services = services.store.state();
                let keys: HashSet<ServiceKey> = if std::mem::take(&mut everything) {
                    dirty.clear();
                    all_services.iter().filter_map(|s| key_of(s)).collect()
                } else {
                    std::mem::take(&mut dirty)
                };
                let namespaces: HashSet<&str> = keys.iter().map(|(ns, _)| ns.as_str()).collect();
                let mut by_namespace: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
                for pod in pods.store.state() {
                    if let Some(ns) = pod.metadata.namespace.as_deref().filter(|ns| namespaces.contains(ns)) {
                        by_namespace.entry(ns.to_string()).or_default().push(pod.clone());
                    }
                }
                for service in all_services {
                    let Some(key) = key_of(&service) else { continue };
                    if !keys.contains(&key) || selector(&service).is_none() {
                        continue;
                    }
                    let pods = by_namespace.get(&key.0).map(Vec::as_slice).unwrap_or(&[]);
                    reconciler.reconcile(&service, pods).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn named_target_ports_resolve_per_pod_and_protocol() {
        let p = pod(json!({"spec": {"containers": [{"name": "c", "ports": [
            {"name": "http", "containerPort": 8080},
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
        ]}]}}));
        let port = |target: serde_json::Value, protocol: &str| -> ServicePort {
            serde_json::from_value(json!({"port": 80, "targetPort": target, "protocol": protocol}))
                .unwrap()
        };
        assert_eq!(
            resolve_target_port(&p, &port(json!("http"), "TCP")),
            Some(8080)
        );
        assert_eq!(
            resolve_target_port(&p, &port(json!("dns"), "UDP")),
            Some(53)
        );
        assert_eq!(resolve_target_port(&p, &port(json!("dns"), "TCP")), None);
        assert_eq!(
            resolve_target_port(&p, &port(json!("missing"), "TCP")),
            None
        );
        assert_eq!(
            resolve_target_port(&p, &port(json!(9090), "TCP")),
            Some(9090)
        );
        let unset: ServicePort = serde_json::from_value(json!({"port": 443})).unwrap();
        assert_eq!(resolve_target_port(&p, &unset), Some(443));
    }

    #[test]
    fn terminal_and_ipless_pods_are_not_endpoints_and_terminating_ones_only_on_request() {
        let running = pod(json!({"status": {"phase": "Running", "podIP": "10.42.0.5"}}));
        assert!(should_be_in_endpoints(&running, false));
        let no_ip = pod(json!({"status": {"phase": "Pending"}}));
        assert!(!should_be_in_endpoints(&no_ip, true));
        let done = pod(json!({"status": {"phase": "Succeeded", "podIP": "10.42.0.5"}}));
        assert!(!should_be_in_endpoints(&done, true));
        let terminating = pod(
            json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"phase": "Running", "podIP": "10.42.0.5"}}),
        );
        assert!(!should_be_in_endpoints(&terminating, false));
        assert!(should_be_in_endpoints(&terminating, true));
    }

    #[test]
    fn hostname_is_published_only_for_the_subdomain_service() {
        let service: Service =
            serde_json::from_value(json!({"metadata": {"name": "db", "namespace": "ns"}})).unwrap();
        let p = pod(json!({"metadata": {"namespace": "ns"},
            "spec": {"hostname": "db-0", "subdomain": "db", "containers": []}}));
        assert_eq!(hostname(&service, &p).as_deref(), Some("db-0"));
        let other = pod(json!({"metadata": {"namespace": "ns"},
            "spec": {"hostname": "db-0", "subdomain": "web", "containers": []}}));
        assert_eq!(hostname(&service, &other), None);
    }

    #[test]
    fn listed_pods_map_pods_back_to_the_services_listing_them() {
        let web: ServiceKey = ("ns".into(), "web".into());
        let api: ServiceKey = ("ns".into(), "api".into());
        let mut listed = ListedPods::default();
        listed.set(&web, ["a".to_string(), "b".to_string()].into());
        listed.set(&api, ["b".to_string()].into());
        let mut both = listed.services("b");
        both.sort();
        assert_eq!(both, vec![api.clone(), web.clone()]);
        listed.set(&web, ["a".to_string()].into());
        assert_eq!(listed.services("b"), vec![api.clone()]);
        listed.set(&api, HashSet::new());
        assert!(listed.services("b").is_empty());
        assert_eq!(listed.services("a"), vec![web]);
    }
}
