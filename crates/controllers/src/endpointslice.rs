//! The endpointslice controller: discovery.k8s.io/v1 EndpointSlices for
//! every selector Service, labelled `kubernetes.io/service-name` and
//! `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`,
//! owned by the Service. Pods are grouped by their resolved port set, at
//! most 100 endpoints per slice; each endpoint carries the ready, serving
//! and terminating conditions, nodeName, zone, hostname and a targetRef.
//! A Service without endpoints keeps one empty placeholder slice, as
//! upstream. Slices managed by anyone else are left alone.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::node_informer::Informer;
use crate::node_podutil;
use crate::node_services::{self, ListedPods, ServiceKey, ServiceReconciler};
use crate::{Context, Error};

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// What one slice should hold.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceContent {
    pub ports: Vec<EndpointPort>,
    pub endpoints: Vec<Endpoint>,
}

/// A port set by (name, port, protocol), sorted: pods sharing it share slices.
type PortSetKey = Vec<(String, i32, String)>;

/// The slices `service` should have given the pods of its namespace and a
/// way to find a node's zone. Never empty: a service without endpoints
/// gets one empty placeholder.
pub fn desired_slices(
    service: &Service,
    pods: &[Arc<Pod>],
    zone_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<SliceContent> {
    let Some(selector) = node_services::selector(service) else {
        return Vec::new();
    };
    let publish_not_ready = node_services::publish_not_ready(service);
    let service_ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let mut groups: BTreeMap<PortSetKey, (Vec<EndpointPort>, Vec<Endpoint>)> = BTreeMap::new();
    for pod in pods {
        if !node_services::selects(selector, pod)
            || !node_services::should_be_in_endpoints(pod, true)
        {
            continue;
        }
        let Some(ip) = node_services::pod_ipv4(pod) else {
            continue;
        };
        let mut ports: Vec<EndpointPort> = Vec::new();
        for service_port in &service_ports {
            if let Some(port) = node_services::resolve_target_port(pod, service_port) {
                ports.push(EndpointPort {
                    name: Some(service_port.name.clone().unwrap_or_default()),
                    port: Some(port),
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
        ports.sort_by(|a, b| (&a.name, a.port).cmp(&(&b.name, b.port)));
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let serving = publish_not_ready || node_podutil::is_ready(pod);
        let node_name = node_podutil::node_name(pod).map(str::to_string);
        let endpoint = Endpoint {
            addresses: vec![ip],
            conditions: Some(EndpointConditions {
                ready: Some(serving && !terminating),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            hostname: node_services::hostname(service, pod),
            zone: node_name.as_deref().and_then(zone_of),
            node_name,
            target_ref: Some(node_services::pod_reference(pod)),
            ..Default::default()
        };
        let key = ports
            .iter()
            .map(|p| {
                (
                    p.name.clone().unwrap_or_default(),
                    p.port.unwrap_or_default(),
                    p.protocol.clone().unwrap_or_default(),
                )
            })
            .collect();
        groups
            .entry(key)
            .or_insert_with(|| (ports, Vec::new()))
            .1
            .push(endpoint);
    }
    let mut slices = Vec::new();
    for (ports, mut endpoints) in groups.into_values() {
        endpoints.sort_by_key(|e| {
            (
                e.addresses
                    .first()
                    .and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok()),
                e.target_ref.as_ref().and_then(|r| r.uid.clone()),
            )
        });
        for chunk in endpoints.chunks(MAX_ENDPOINTS_PER_SLICE) {
            slices.push(SliceContent {
                ports: ports.clone(),
                endpoints: chunk.to_vec(),
            });
        }
    }
    if slices.is_empty() {
        slices.push(SliceContent {
            ports: Vec::new(),
            endpoints: Vec::new(),
        });
    }
    slices
}

fn content_of(slice: &EndpointSlice) -> SliceContent {
    SliceContent {
        ports: slice.ports.clone().unwrap_or_default(),
        endpoints: slice.endpoints.clone(),
    }
}

/// A new slice of `service` holding `content`.
pub fn slice_object(service: &Service, content: &SliceContent) -> EndpointSlice {
    let name = service.metadata.name.clone().unwrap_or_default();
    let mut labels = node_services::inherited_labels(service);
    labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: service.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Service".into(),
                name,
                uid: service.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints: content.endpoints.clone(),
        ports: Some(content.ports.clone()),
    }
}

struct SliceReconciler {
    ctx: Context,
    slices: Informer<EndpointSlice>,
    nodes: Informer<Node>,
    listed: ListedPods,
}

/// Maintain the EndpointSlices of every selector Service until a fatal error.
pub async fn run(ctx: Context) -> Result<(), Error> {
    let slices = Informer::<EndpointSlice>::spawn(
        Api::all(ctx.client.clone()),
        watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}")),
        None,
    );
    let nodes = Informer::<Node>::shared(&ctx.informers, None);
    slices.ready().await?;
    nodes.ready().await?;
    let reconciler = SliceReconciler {
        ctx: ctx.clone(),
        slices,
        nodes,
        listed: ListedPods::default(),
    };
    node_services::drive(&ctx, reconciler).await
}

impl SliceReconciler {
    fn owned(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSlice>> {
        let mut slices = self.slices.store.state_filter(|s| {
            s.metadata.namespace.as_deref() == Some(namespace)
                && s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    .map(String::as_str)
                    == Some(service)
        });
        slices.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        slices
    }
}

impl ServiceReconciler for SliceReconciler {
    async fn reconcile(&mut self, service: &Service, pods: &[Arc<Pod>]) {
        let (Some(namespace), Some(name)) = (&service.metadata.namespace, &service.metadata.name)
        else {
            return;
        };
        let zone_of = |node: &str| -> Option<String> {
            self.nodes.store.get(&ObjectRef::new(node)).and_then(|n| {
                n.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("topology.kubernetes.io/zone").cloned())
            })
        };
        let mut desired = desired_slices(service, pods, &zone_of);
        let uids: HashSet<String> = desired
            .iter()
            .flat_map(|d| d.endpoints.iter())
            .filter_map(|e| e.target_ref.as_ref().and_then(|r| r.uid.clone()))
            .collect();
        self.listed.set(&(namespace.clone(), name.clone()), uids);
        let mut existing = self.owned(namespace, name);
        let wanted_labels = slice_object(service, &desired[0]).metadata.labels;
        // Slices already holding exactly a desired content stay untouched.
        existing.retain(|slice| {
            let content = content_of(slice);
            match desired.iter().position(|d| *d == content) {
                Some(i) if slice.metadata.labels == wanted_labels => {
                    desired.remove(i);
                    false
                }
                _ => true,
            }
        });
        let api: Api<EndpointSlice> = Api::namespaced(self.ctx.client.clone(), namespace);
        let mut reuse = existing.into_iter();
        for content in &desired {
            let result = match reuse.next() {
                Some(current) => {
                    let mut updated = (*current).clone();
                    let fresh = slice_object(service, content);
                    updated.endpoints = fresh.endpoints;
                    updated.ports = fresh.ports;
                    updated.metadata.labels = fresh.metadata.labels;
                    let slice_name = updated.metadata.name.clone().unwrap_or_default();
                    api.replace(&slice_name, &PostParams::default(), &updated)
                        .await
                        .map(|_| ())
                }
                None => api
                    .create(&PostParams::default(), &slice_object(service, content))
                    .await
                    .map(|_| ()),
            };
            if let Err(err) = result {
                tracing::debug!(service = %name, %namespace, %err, "writing endpoint slice failed");
            }
        }
        for leftover in reuse {
            if let Some(slice_name) = &leftover.metadata.name {
                if let Err(err) = api.delete(slice_name, &DeleteParams::default()).await {
                    tracing::debug!(slice = %slice_name, %err, "deleting endpoint slice failed");
                }
            }
        }
    }

    async fn forget(&mut self, key: &ServiceKey) {
        self.listed.set(key, HashSet::new());
        // The garbage collector would remove them through the owner
        // reference too; deleting them here is simply faster.
        let api: Api<EndpointSlice> = Api::namespaced(self.ctx.client.clone(), &key.0);
        for slice in self.owned(&key.0, &key.1) {
            if let Some(name) = &slice.metadata.name {
                let _ = api.delete(name, &DeleteParams::default()).await;
            }
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
            json!({"metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid"}, "spec": spec}),
        )
        .unwrap()
    }

    fn pod(i: usize, ready: bool, terminating: bool) -> Arc<Pod> {
        let mut metadata = json!({"name": format!("p{i}"), "namespace": "ns", "uid": format!("u{i}"),
            "labels": {"app": "web"}});
        if terminating {
            metadata["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        }
        Arc::new(
            serde_json::from_value(json!({
                "metadata": metadata,
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [
                    {"name": "http", "containerPort": 8080}]}]},
                "status": {"phase": "Running", "podIP": format!("10.42.{}.{}", i / 200, i % 200 + 2),
                    "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
            }))
            .unwrap(),
        )
    }

    fn zone(_: &str) -> Option<String> {
        Some("zone-a".into())
    }

    #[test]
    fn endpoints_carry_ready_serving_and_terminating_conditions() {
        let svc = service(json!({"selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}));
        let slices = desired_slices(
            &svc,
            &[
                pod(0, true, false),
                pod(1, false, false),
                pod(2, true, true),
            ],
            &zone,
        );
        assert_eq!(slices.len(), 1);
        let conditions: Vec<(bool, bool, bool)> = slices[0]
            .endpoints
            .iter()
            .map(|e| {
                let c = e.conditions.clone().unwrap();
                (c.ready.unwrap(), c.serving.unwrap(), c.terminating.unwrap())
            })
            .collect();
        assert_eq!(
            conditions,
            vec![
                (true, true, false),
                (false, false, false),
                (false, true, true)
            ]
        );
        let first = &slices[0].endpoints[0];
        assert_eq!(first.zone.as_deref(), Some("zone-a"));
        assert_eq!(first.node_name.as_deref(), Some("n1"));
        assert_eq!(slices[0].ports[0].port, Some(8080));
    }

    #[test]
    fn slices_hold_at_most_one_hundred_endpoints() {
        let svc = service(
            json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}),
        );
        let pods: Vec<Arc<Pod>> = (0..250).map(|i| pod(i, true, false)).collect();
        let sizes: Vec<usize> = desired_slices(&svc, &pods, &zone)
            .iter()
            .map(|s| s.endpoints.len())
            .collect();
        assert_eq!(sizes, vec![100, 100, 50]);
    }

    #[test]
    fn service_without_pods_gets_one_empty_placeholder_slice() {
        let svc = service(json!({"selector": {"app": "none"}, "ports": [{"port": 80}]}));
        let slices = desired_slices(&svc, &[pod(0, true, false)], &zone);
        assert_eq!(slices.len(), 1);
        assert!(slices[0].endpoints.is_empty());
    }

    #[test]
    fn slice_objects_are_labelled_and_owned_by_their_service() {
        let svc = service(json!({"selector": {"app": "web"}, "clusterIP": "None"}));
        let slice = slice_object(
            &svc,
            &desired_slices(&svc, &[pod(0, true, false)], &zone)[0],
        );
        let labels = slice.metadata.labels.unwrap();
        assert_eq!(labels[SERVICE_NAME_LABEL], "web");
        assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY);
        assert!(labels.contains_key(node_services::HEADLESS_LABEL));
        assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(slice.address_type, "IPv4");
        let owner = &slice.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Service", "svc-uid", Some(true))
        );
        assert_eq!(slice.endpoints.len(), 1);
    }
}
