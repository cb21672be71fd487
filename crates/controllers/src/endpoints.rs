//! The endpoints controller: one core/v1 Endpoints per selector Service,
//! named like it, listing the pods its selector matches: ready pods (or
//! all, with publishNotReadyAddresses) under `addresses`, the others under
//! `notReadyAddresses`, grouped into subsets by their resolved ports.
//! Terminating and finished pods are left out. Services without a
//! selector are never touched (the API server keeps `default/kubernetes`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::ObjectRef;

use crate::node_informer::Informer;
use crate::node_podutil;
use crate::node_services::{self, ListedPods, ServiceKey, ServiceReconciler};
use crate::{Context, Error};

/// Upstream's cap on the addresses of one Endpoints object; beyond it the
/// object is truncated and annotated (EndpointSlices have no such cap).
pub const MAX_ADDRESSES: usize = 1000;
pub const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";

/// Keep at most `max` addresses, ready ones first; true if any were cut.
pub fn truncate(mut subsets: Vec<EndpointSubset>, max: usize) -> (Vec<EndpointSubset>, bool) {
    let count = |s: &EndpointSubset| {
        s.addresses.as_ref().map_or(0, Vec::len)
            + s.not_ready_addresses.as_ref().map_or(0, Vec::len)
    };
    if subsets.iter().map(count).sum::<usize>() <= max {
        return (subsets, false);
    }
    let mut budget = max;
    for subset in subsets.iter_mut() {
        if let Some(ready) = subset.addresses.as_mut() {
            ready.truncate(budget);
            budget -= ready.len();
        }
    }
    for subset in subsets.iter_mut() {
        if let Some(not_ready) = subset.not_ready_addresses.as_mut() {
            not_ready.truncate(budget);
            budget -= not_ready.len();
        }
    }
    for subset in subsets.iter_mut() {
        if subset.addresses.as_ref().is_some_and(Vec::is_empty) {
            subset.addresses = None;
        }
        if subset
            .not_ready_addresses
            .as_ref()
            .is_some_and(Vec::is_empty)
        {
            subset.not_ready_addresses = None;
        }
    }
    subsets.retain(|s| s.addresses.is_some() || s.not_ready_addresses.is_some());
    (subsets, true)
}

/// A port set by (name, port, protocol), sorted: pods sharing it share a subset.
type PortSetKey = Vec<(String, i32, String)>;

/// The subsets of `service`'s Endpoints given the pods of its namespace.
pub fn subsets(service: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let Some(selector) = node_services::selector(service) else {
        return Vec::new();
    };
    let publish_not_ready = node_services::publish_not_ready(service);
    let service_ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    // Port set (sorted) -> (ready, not ready) addresses.
    type Group = (Vec<EndpointAddress>, Vec<EndpointAddress>);
    let mut groups: BTreeMap<PortSetKey, (Vec<EndpointPort>, Group)> = BTreeMap::new();
    for pod in pods {
        if !node_services::selects(selector, pod)
            || !node_services::should_be_in_endpoints(pod, publish_not_ready)
        {
            continue;
        }
        let Some(ip) = node_services::pod_ipv4(pod) else {
            continue;
        };
        let address = EndpointAddress {
            ip,
            hostname: node_services::hostname(service, pod),
            node_name: node_podutil::node_name(pod).map(str::to_string),
            target_ref: Some(node_services::pod_reference(pod)),
        };
        let mut ports: Vec<EndpointPort> = Vec::new();
        if service_ports.is_empty() && !node_services::is_headless(service) {
            continue;
        }
        for service_port in &service_ports {
            // A pod without the named port simply does not serve it.
            if let Some(port) = node_services::resolve_target_port(pod, service_port) {
                ports.push(EndpointPort {
                    name: service_port.name.clone().filter(|n| !n.is_empty()),
                    port,
                    protocol: Some(
                        service_port
                            .protocol
                            .clone()
                            .unwrap_or_else(|| "TCP".into()),
                    ),
                    app_protocol: service_port.app_protocol.clone(),
                });
            }
        }
        if ports.is_empty() && !service_ports.is_empty() {
            continue;
        }
        ports.sort_by(|a, b| (&a.name, a.port).cmp(&(&b.name, b.port)));
        let key: PortSetKey = ports
            .iter()
            .map(|p| {
                (
                    p.name.clone().unwrap_or_default(),
                    p.port,
                    p.protocol.clone().unwrap_or_default(),
                )
            })
            .collect();
        let entry = groups
            .entry(key)
            .or_insert_with(|| (ports, (Vec::new(), Vec::new())));
        if publish_not_ready || node_podutil::is_ready(pod) {
            entry.1 .0.push(address);
        } else {
            entry.1 .1.push(address);
        }
    }
    let by_ip = |a: &EndpointAddress, b: &EndpointAddress| {
        let ip = |x: &EndpointAddress| x.ip.parse::<std::net::Ipv4Addr>().ok();
        (ip(a), a.target_ref.as_ref().and_then(|r| r.uid.clone()))
            .cmp(&(ip(b), b.target_ref.as_ref().and_then(|r| r.uid.clone())))
    };
    groups
        .into_values()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(by_ip);
            not_ready.sort_by(by_ip);
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect()
}

struct EndpointsReconciler {
    ctx: Context,
    endpoints: Informer<Endpoints>,
    listed: ListedPods,
}

/// Maintain the Endpoints of every selector Service until a fatal error.
pub async fn run(ctx: Context) -> Result<(), Error> {
    let endpoints = Informer::<Endpoints>::shared(&ctx.informers, None);
    endpoints.ready().await?;
    let reconciler = EndpointsReconciler {
        ctx: ctx.clone(),
        endpoints,
        listed: ListedPods::default(),
    };
    node_services::drive(&ctx, reconciler).await
}

impl EndpointsReconciler {
    fn existing(&self, namespace: &str, name: &str) -> Option<Arc<Endpoints>> {
        self.endpoints
            .store
            .get(&ObjectRef::new(name).within(namespace))
    }
}

impl ServiceReconciler for EndpointsReconciler {
    async fn reconcile(&mut self, service: &Service, pods: &[Arc<Pod>]) {
        let (Some(namespace), Some(name)) = (&service.metadata.namespace, &service.metadata.name)
        else {
            return;
        };
        let (subsets, truncated) = truncate(subsets(service, pods), MAX_ADDRESSES);
        let uids: HashSet<String> = subsets
            .iter()
            .flat_map(|s| {
                s.addresses
                    .iter()
                    .chain(s.not_ready_addresses.iter())
                    .flatten()
            })
            .filter_map(|a| a.target_ref.as_ref().and_then(|r| r.uid.clone()))
            .collect();
        self.listed.set(&(namespace.clone(), name.clone()), uids);
        let labels = node_services::inherited_labels(service);
        let api: Api<Endpoints> = Api::namespaced(self.ctx.client.clone(), namespace);
        let existing = self.existing(namespace, name);
        let subsets_field = (!subsets.is_empty()).then_some(subsets);
        let result = match existing {
            Some(current) => {
                let current_subsets = current.subsets.clone().filter(|s| !s.is_empty());
                let current_labels = current.metadata.labels.clone().unwrap_or_default();
                let mut annotations = current.metadata.annotations.clone().unwrap_or_default();
                let was_truncated = annotations.contains_key(OVER_CAPACITY_ANNOTATION);
                if current_subsets == subsets_field
                    && current_labels == labels
                    && was_truncated == truncated
                {
                    return;
                }
                if truncated {
                    annotations.insert(OVER_CAPACITY_ANNOTATION.into(), "truncated".into());
                } else {
                    annotations.remove(OVER_CAPACITY_ANNOTATION);
                }
                let mut updated = (*current).clone();
                updated.subsets = subsets_field;
                updated.metadata.labels = (!labels.is_empty()).then_some(labels);
                updated.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
                api.replace(name, &PostParams::default(), &updated).await
            }
            None => {
                let created = Endpoints {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(namespace.clone()),
                        labels: (!labels.is_empty()).then_some(labels),
                        annotations: truncated.then(|| {
                            [(
                                OVER_CAPACITY_ANNOTATION.to_string(),
                                "truncated".to_string(),
                            )]
                            .into()
                        }),
                        ..Default::default()
                    },
                    subsets: subsets_field,
                };
                api.create(&PostParams::default(), &created).await
            }
        };
        if let Err(err) = result {
            // A conflict means our cache is behind; the update event that
            // follows brings the Service back here.
            tracing::debug!(service = %name, %namespace, %err, "updating endpoints failed");
            if !matches!(&err, kube::Error::Api(s) if s.code == 409) {
                self.ctx
                    .recorder
                    .record(
                        &clientkit::events::reference(service),
                        clientkit::events::WARNING,
                        "FailedToUpdateEndpoint",
                        &format!("Failed to update endpoint {namespace}/{name}: {err}"),
                    )
                    .await;
            }
        }
    }

    async fn forget(&mut self, key: &ServiceKey) {
        self.listed.set(key, HashSet::new());
        if self.existing(&key.0, &key.1).is_none() {
            return;
        }
        let api: Api<Endpoints> = Api::namespaced(self.ctx.client.clone(), &key.0);
        if let Err(err) = api.delete(&key.1, &DeleteParams::default()).await {
            tracing::debug!(service = %key.1, %err, "deleting endpoints failed");
        }
    }

    fn services_listing(&self, pod: &Pod) -> Vec<ServiceKey> {
        pod.metadata
            .uid
            .as_deref()
            .map(|uid| self.listed.services(uid))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(spec: serde_json::Value) -> Service {
        serde_json::from_value(
            json!({"metadata": {"name": "web", "namespace": "ns"}, "spec": spec}),
        )
        .unwrap()
    }

    fn pod(name: &str, ip: &str, ready: bool, port_name: &str, port: i32) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                              "labels": {"app": "web"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [
                    {"name": port_name, "containerPort": port}]}]},
                "status": {"phase": "Running", "podIP": ip, "conditions": [
                    {"type": "Ready", "status": if ready { "True" } else { "False" }}]},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn ready_and_not_ready_pods_are_split_with_named_ports_resolved() {
        let svc = service(json!({"selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}));
        let pods = vec![
            pod("b", "10.42.0.12", true, "http", 8080),
            pod("a", "10.42.0.3", true, "http", 8080),
            pod("c", "10.42.0.4", false, "http", 8080),
        ];
        let subsets = subsets(&svc, &pods);
        assert_eq!(subsets.len(), 1);
        let ready: Vec<&str> = subsets[0]
            .addresses
            .as_ref()
            .unwrap()
            .iter()
            .map(|a| a.ip.as_str())
            .collect();
        assert_eq!(ready, vec!["10.42.0.3", "10.42.0.12"], "sorted by address");
        let not_ready = subsets[0].not_ready_addresses.as_ref().unwrap();
        assert_eq!(not_ready[0].ip, "10.42.0.4");
        let port = &subsets[0].ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.port, port.protocol.as_deref()),
            (Some("http"), 8080, Some("TCP"))
        );
        let first = &subsets[0].addresses.as_ref().unwrap()[0];
        assert_eq!(first.node_name.as_deref(), Some("n1"));
        assert_eq!(
            first.target_ref.as_ref().unwrap().name.as_deref(),
            Some("a")
        );
    }

    #[test]
    fn pods_resolving_to_different_ports_land_in_different_subsets() {
        let svc = service(json!({"selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}));
        let pods = vec![
            pod("a", "10.42.0.3", true, "http", 8080),
            pod("b", "10.42.0.4", true, "http", 9090),
        ];
        assert_eq!(subsets(&svc, &pods).len(), 2);
        // A pod without the named port is left out.
        let pods = vec![pod("c", "10.42.0.5", true, "metrics", 9100)];
        assert!(subsets(&svc, &pods).is_empty());
    }

    #[test]
    fn publish_not_ready_addresses_lists_every_pod_as_ready() {
        let svc = service(
            json!({"selector": {"app": "web"}, "publishNotReadyAddresses": true,
            "ports": [{"port": 80, "targetPort": 80}]}),
        );
        let subsets = subsets(&svc, &[pod("a", "10.42.0.3", false, "http", 80)]);
        assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 1);
        assert!(subsets[0].not_ready_addresses.is_none());
    }

    #[test]
    fn headless_service_without_ports_gets_portless_addresses() {
        let svc = service(json!({"selector": {"app": "web"}, "clusterIP": "None"}));
        let subsets = subsets(&svc, &[pod("a", "10.42.0.3", true, "http", 80)]);
        assert_eq!(subsets.len(), 1);
        assert!(subsets[0].ports.is_none());
        let non_headless = service(json!({"selector": {"app": "web"}}));
        assert!(
            super::subsets(&non_headless, &[pod("a", "10.42.0.3", true, "http", 80)]).is_empty()
        );
    }

    #[test]
    fn endpoints_beyond_capacity_are_truncated_keeping_ready_addresses() {
        let svc =
            service(json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]}));
        let pods: Vec<Arc<Pod>> = (0..6)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    &format!("10.42.0.{}", i + 2),
                    i % 2 == 0,
                    "http",
                    80,
                )
            })
            .collect();
        let (kept, truncated) = truncate(subsets(&svc, &pods), 4);
        assert!(truncated);
        assert_eq!(
            kept[0].addresses.as_ref().unwrap().len(),
            3,
            "all ready ones kept"
        );
        assert_eq!(kept[0].not_ready_addresses.as_ref().unwrap().len(), 1);
        let (all, truncated) = truncate(subsets(&svc, &pods), 6);
        assert!(!truncated);
        assert_eq!(all[0].not_ready_addresses.as_ref().unwrap().len(), 3);
    }

    #[test]
    fn services_without_selector_get_no_endpoints_from_the_controller() {
        let svc = service(json!({"ports": [{"port": 443}]}));
        assert!(subsets(&svc, &[pod("a", "10.42.0.3", true, "http", 80)]).is_empty());
        assert!(node_services::selector(&svc).is_none());
    }
}
