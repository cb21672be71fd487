//! core/v1 kinds (Namespaces and ConfigMaps have modules of their own).

use apimachinery::meta;
use apimachinery::resource::{ResourceInfo, Scope, ALL_VERBS};
use k8s_openapi::api::core::v1 as api;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::docs;
use super::names;
use super::tables::{
    access_modes, col, containers, flag, format_labels, int, list, load_balancer_ingress,
    non_empty, quantity, since, terminating, text, wide,
};
use crate::registry::generic::{no_cells, no_columns, path_segment_name_errors, GenericStrategy};
use crate::registry::validation;
use crate::table::Column;
use crate::typed::codec;

/// core/v1 in upstream's discovery order (alphabetical by resource).
pub fn kinds() -> Vec<GenericStrategy> {
    vec![
        GenericStrategy {
            info: info("Endpoints", "endpoints", "endpoints", &["ep"], &[], &[]),
            decode: codec::<api::Endpoints>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: None,
            generation: false,
            spec_rules: None,
            columns: endpoints_columns,
            cells: endpoints_cells,
        },
        GenericStrategy {
            info: info("Event", "events", "event", &["ev"], &[], &[]),
            decode: codec::<api::Event>(),
            // core/v1 Events skip ObjectMeta validation for compatibility;
            // only the storage key's path-segment rule applies.
            name_rule: path_segment_name_errors,
            initial_status: None,
            generation: false,
            spec_rules: None,
            columns: event_columns,
            cells: event_cells,
        },
        GenericStrategy {
            info: info(
                "LimitRange",
                "limitranges",
                "limitrange",
                &["limits"],
                &[],
                &[],
            ),
            decode: codec::<api::LimitRange>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: None,
            generation: false,
            // Upstream has no printer: its default table is Name and
            // "Created At" (RFC 3339), not Age.
            spec_rules: None,
            columns: no_columns,
            cells: no_cells,
        },
        GenericStrategy {
            info: ResourceInfo {
                scope: Scope::Cluster,
                // Upstream also serves nodes/proxy.
                ..info("Node", "nodes", "node", &["no"], &[], &["status"])
            },
            decode: codec::<api::Node>(),
            name_rule: meta::dns1123_subdomain_errors,
            // Nodes register with the status the kubelet reports.
            initial_status: None,
            generation: false,
            spec_rules: None,
            columns: node_columns,
            cells: node_cells,
        },
        GenericStrategy {
            info: info(
                "PersistentVolumeClaim",
                "persistentvolumeclaims",
                "persistentvolumeclaim",
                &["pvc"],
                &[],
                &["status"],
            ),
            decode: codec::<api::PersistentVolumeClaim>(),
            name_rule: meta::dns1123_subdomain_errors,
            // Status is cleared on create; defaulting then sets the phase.
            initial_status: Some(|| json!({"phase": "Pending"})),
            generation: false,
            spec_rules: None,
            columns: pvc_columns,
            cells: pvc_cells,
        },
        GenericStrategy {
            info: ResourceInfo {
                scope: Scope::Cluster,
                ..info(
                    "PersistentVolume",
                    "persistentvolumes",
                    "persistentvolume",
                    &["pv"],
                    &[],
                    &["status"],
                )
            },
            decode: codec::<api::PersistentVolume>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: Some(
                || json!({"phase": "Pending", "lastPhaseTransitionTime": meta::now_rfc3339()}),
            ),
            generation: false,
            spec_rules: None,
            columns: pv_columns,
            cells: pv_cells,
        },
        GenericStrategy {
            // Upstream also serves attach, binding, ephemeralcontainers,
            // eviction, exec, log, portforward, proxy and resize.
            info: info("Pod", "pods", "pod", &["po"], &["all"], &["status"]),
            decode: codec::<api::Pod>(),
            name_rule: meta::dns1123_subdomain_errors,
            // Upstream also sets status.qosClass, computed from the
            // containers' resources, which this hook cannot see.
            initial_status: Some(|| json!({"phase": "Pending"})),
            generation: false,
            spec_rules: None,
            columns: pod_columns,
            cells: pod_cells,
        },
        GenericStrategy {
            info: info("PodTemplate", "podtemplates", "podtemplate", &[], &[], &[]),
            decode: codec::<api::PodTemplate>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: None,
            generation: true,
            spec_rules: None,
            columns: pod_template_columns,
            cells: pod_template_cells,
        },
        GenericStrategy {
            // Upstream also serves replicationcontrollers/scale.
            info: info(
                "ReplicationController",
                "replicationcontrollers",
                "replicationcontroller",
                &["rc"],
                &["all"],
                &["status"],
            ),
            decode: codec::<api::ReplicationController>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: Some(|| json!({"replicas": 0})),
            generation: true,
            spec_rules: Some(validation::core::REPLICATION_CONTROLLER),
            columns: rc_columns,
            cells: rc_cells,
        },
        GenericStrategy {
            info: info(
                "ResourceQuota",
                "resourcequotas",
                "resourcequota",
                &["quota"],
                &[],
                &["status"],
            ),
            decode: codec::<api::ResourceQuota>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: Some(|| json!({})),
            generation: false,
            spec_rules: None,
            columns: quota_columns,
            cells: quota_cells,
        },
        GenericStrategy {
            info: info("Secret", "secrets", "secret", &[], &[], &[]),
            decode: codec::<api::Secret>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: None,
            generation: false,
            spec_rules: None,
            columns: secret_columns,
            cells: secret_cells,
        },
        GenericStrategy {
            // Upstream also serves serviceaccounts/token.
            info: info(
                "ServiceAccount",
                "serviceaccounts",
                "serviceaccount",
                &["sa"],
                &[],
                &[],
            ),
            decode: codec::<api::ServiceAccount>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: None,
            generation: false,
            spec_rules: None,
            columns: service_account_columns,
            cells: service_account_cells,
        },
        GenericStrategy {
            // Upstream also serves services/proxy.
            info: info(
                "Service",
                "services",
                "service",
                &["svc"],
                &["all"],
                &["status"],
            ),
            decode: codec::<api::Service>(),
            name_rule: names::dns1035_label_errors,
            // An empty ServiceStatus still carries its (non-pointer)
            // loadBalancer struct.
            initial_status: Some(|| json!({"loadBalancer": {}})),
            generation: false,
            spec_rules: None,
            columns: service_columns,
            cells: service_cells,
        },
    ]
}

/// A namespaced core/v1 resource with every verb.
fn info(
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [&'static str],
) -> ResourceInfo {
    ResourceInfo {
        group: "",
        version: "v1",
        kind,
        plural,
        singular,
        scope: Scope::Namespaced,
        short_names,
        categories,
        verbs: ALL_VERBS,
        subresources,
    }
}

// ---- Pods ------------------------------------------------------------------

fn pod_columns() -> Vec<Column> {
    vec![
        col(
            "Ready",
            "string",
            "The aggregate readiness state of this pod for accepting traffic.",
        ),
        col(
            "Status",
            "string",
            "The aggregate status of the containers in this pod.",
        ),
        col("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
        // Upstream places Age here, before the wide columns.
        wide("IP", "string", docs::POD_IP),
        wide("Node", "string", docs::POD_NODE_NAME),
        wide("Nominated Node", "string", docs::POD_NOMINATED_NODE),
        wide("Readiness Gates", "string", docs::POD_READINESS_GATES),
    ]
}

fn pod_cells(pod: &Value) -> Vec<Value> {
    pod_cells_at(pod, OffsetDateTime::now_utc())
}

/// When a container status's last termination finished.
fn last_terminated_at(status: &Value) -> Option<OffsetDateTime> {
    non_empty(status, "/lastState/terminated/finishedAt").and_then(meta::parse_timestamp)
}

fn keep_latest(latest: &mut Option<OffsetDateTime>, t: Option<OffsetDateTime>) {
    if t > *latest {
        *latest = t;
    }
}

/// The first condition of `kind` is True.
fn first_condition_true(obj: &Value, pointer: &str, kind: &str) -> bool {
    list(obj, pointer)
        .iter()
        .find(|c| text(c, "/type") == kind)
        .is_some_and(|c| text(c, "/status") == "True")
}

/// "Signal:9" or "ExitCode:1" for a termination without a reason.
fn exit_description(terminated: &Value) -> String {
    match int(terminated, "/signal") {
        0 => format!("ExitCode:{}", int(terminated, "/exitCode")),
        signal => format!("Signal:{signal}"),
    }
}

/// Upstream's `printPod`: readiness, the aggregate status, restarts.
fn pod_cells_at(pod: &Value, now: OffsetDateTime) -> Vec<Value> {
    let init_specs = list(pod, "/spec/initContainers");
    let is_sidecar = |c: &Value| text(c, "/restartPolicy") == "Always";
    let sidecar_named = |name: &str| {
        init_specs
            .iter()
            .any(|c| text(c, "/name") == name && is_sidecar(c))
    };
    let total =
        list(pod, "/spec/containers").len() + init_specs.iter().filter(|c| is_sidecar(c)).count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut sidecar_restarts = 0;
    let mut last_restart = None;
    let mut last_sidecar_restart = None;

    let phase = text(pod, "/status/phase");
    let mut reason = non_empty(pod, "/status/reason")
        .unwrap_or(phase)
        .to_string();
    let scheduling_gated = list(pod, "/status/conditions")
        .iter()
        .any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated");
    if scheduling_gated {
        reason = "SchedulingGated".into();
    }

    let mut initializing = false;
    for (i, c) in list(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        restarts += int(c, "/restartCount");
        keep_latest(&mut last_restart, last_terminated_at(c));
        let sidecar = sidecar_named(text(c, "/name"));
        if sidecar {
            sidecar_restarts += int(c, "/restartCount");
            keep_latest(&mut last_sidecar_restart, last_terminated_at(c));
        }
        let terminated = c.pointer("/state/terminated").filter(|t| t.is_object());
        match terminated {
            Some(t) if int(t, "/exitCode") == 0 => continue,
            _ if sidecar && flag(c, "/started") == Some(true) => {
                if flag(c, "/ready") == Some(true) {
                    ready += 1;
                }
                continue;
            }
            Some(t) => {
                reason = match non_empty(t, "/reason") {
                    Some(r) => format!("Init:{r}"),
                    None => format!("Init:{}", exit_description(t)),
                };
            }
            None => match non_empty(c, "/state/waiting/reason") {
                Some(r) if r != "PodInitializing" => reason = format!("Init:{r}"),
                _ => reason = format!("Init:{i}/{}", init_specs.len()),
            },
        }
        initializing = true;
        break;
    }

    if !initializing || first_condition_true(pod, "/status/conditions", "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for c in list(pod, "/status/containerStatuses").iter().rev() {
            restarts += int(c, "/restartCount");
            keep_latest(&mut last_restart, last_terminated_at(c));
            let terminated = c.pointer("/state/terminated").filter(|t| t.is_object());
            if let Some(r) = non_empty(c, "/state/waiting/reason") {
                reason = r.to_string();
            } else if let Some(t) = terminated {
                reason = match non_empty(t, "/reason") {
                    Some(r) => r.to_string(),
                    None => exit_description(t),
                };
            } else if flag(c, "/ready") == Some(true)
                && c.pointer("/state/running").is_some_and(Value::is_object)
            {
                has_running = true;
                ready += 1;
            }
        }
        // Completed containers next to running ones: the pod still runs.
        if reason == "Completed" && has_running {
            let pod_ready = list(pod, "/status/conditions")
                .iter()
                .any(|c| text(c, "/type") == "Ready" && text(c, "/status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.into();
        }
    }

    if terminating(pod) && text(pod, "/status/reason") == "NodeLost" {
        reason = "Unknown".into();
    } else if terminating(pod) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => format!(
            "{restarts} ({} ago)",
            meta::human_duration((now - t).whole_seconds())
        ),
        _ => restarts.to_string(),
    };

    let or_none = |s: Option<&str>| s.unwrap_or("<none>").to_string();
    let ip = list(pod, "/status/podIPs")
        .first()
        .and_then(|ip| non_empty(ip, "/ip"));
    let gates = list(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let met = gates
            .iter()
            .filter(|g| first_condition_true(pod, "/status/conditions", text(g, "/conditionType")))
            .count();
        format!("{met}/{}", gates.len())
    };
    vec![
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_text),
        json!(or_none(ip)),
        json!(or_none(non_empty(pod, "/spec/nodeName"))),
        json!(or_none(non_empty(pod, "/status/nominatedNodeName"))),
        json!(readiness_gates),
    ]
}

// ---- PodTemplates ------------------------------------------------------------

fn pod_template_columns() -> Vec<Column> {
    vec![
        col("Containers", "string", docs::CONTAINERS),
        col("Images", "string", docs::IMAGES),
        col("Pod Labels", "string", "The labels for the pod template."),
    ]
}

fn pod_template_cells(obj: &Value) -> Vec<Value> {
    let (names, images) = containers(obj.pointer("/template/spec"));
    vec![
        json!(names),
        json!(images),
        json!(format_labels(obj.pointer("/template/metadata/labels"))),
    ]
}

// ---- ReplicationControllers --------------------------------------------------

fn rc_columns() -> Vec<Column> {
    vec![
        col("Desired", "integer", docs::RC_SPEC_REPLICAS),
        col("Current", "integer", docs::RC_STATUS_REPLICAS),
        col("Ready", "integer", docs::RC_STATUS_READY),
        // Upstream places Age here.
        wide("Containers", "string", docs::CONTAINERS),
        wide("Images", "string", docs::IMAGES),
        wide("Selector", "string", docs::RC_SPEC_SELECTOR),
    ]
}

fn rc_cells(obj: &Value) -> Vec<Value> {
    let (names, images) = containers(obj.pointer("/spec/template/spec"));
    vec![
        json!(int(obj, "/spec/replicas")),
        json!(int(obj, "/status/replicas")),
        json!(int(obj, "/status/readyReplicas")),
        json!(names),
        json!(images),
        json!(format_labels(obj.pointer("/spec/selector"))),
    ]
}

// ---- Services ------------------------------------------------------------------

fn service_columns() -> Vec<Column> {
    vec![
        col("Type", "string", docs::SVC_TYPE),
        col("Cluster-IP", "string", docs::SVC_CLUSTER_IP),
        col("External-IP", "string", docs::SVC_EXTERNAL_IPS),
        col("Port(s)", "string", docs::SVC_PORTS),
        // Upstream places Age here.
        wide("Selector", "string", docs::SVC_SELECTOR),
    ]
}

/// Upstream's `getServiceExternalIP` (with the wide, unclipped list).
fn service_external_ip(svc: &Value) -> String {
    let external: Vec<&str> = list(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match text(svc, "/spec/type") {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".into(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let ingress = load_balancer_ingress(svc.pointer("/status/loadBalancer"));
            let mut all: Vec<&str> = ingress.split(',').filter(|s| !s.is_empty()).collect();
            all.extend(external);
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => text(svc, "/spec/externalName").to_string(),
        _ => "<unknown>".into(),
    }
}

fn service_cells(svc: &Value) -> Vec<Value> {
    // Upstream keeps clusterIPs[0] equal to clusterIP.
    let cluster_ip = list(svc, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .or_else(|| non_empty(svc, "/spec/clusterIP"))
        .unwrap_or("<none>");
    let ports: Vec<String> = list(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let (port, protocol) = (int(p, "/port"), text(p, "/protocol"));
            match int(p, "/nodePort") {
                n if n > 0 => format!("{port}:{n}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        json!(text(svc, "/spec/type")),
        json!(cluster_ip),
        json!(service_external_ip(svc)),
        json!(ports),
        json!(format_labels(svc.pointer("/spec/selector"))),
    ]
}

// ---- Endpoints -------------------------------------------------------------------

fn endpoints_columns() -> Vec<Column> {
    vec![col("Endpoints", "string", docs::ENDPOINTS_SUBSETS)]
}

/// Upstream's `formatEndpoints`: up to three `ip:port`s, then "+ N more...".
fn endpoints_cells(obj: &Value) -> Vec<Value> {
    let subsets = list(obj, "/subsets");
    if subsets.is_empty() {
        return vec![json!("<none>")];
    }
    const MAX: usize = 3;
    let mut shown: Vec<String> = Vec::new();
    let mut count = 0;
    for ss in subsets {
        let addresses = list(ss, "/addresses");
        let ports = list(ss, "/ports");
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            shown.extend(
                addresses
                    .iter()
                    .take(MAX - shown.len().min(MAX))
                    .map(|a| text(a, "/ip").to_string()),
            );
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if shown.len() == MAX {
                    break;
                }
                let ip = text(a, "/ip");
                let port = int(port, "/port");
                shown.push(if ip.contains(':') {
                    format!("[{ip}]:{port}")
                } else {
                    format!("{ip}:{port}")
                });
            }
        }
    }
    let joined = shown.join(",");
    if count > shown.len() && shown.len() == MAX {
        vec![json!(format!("{joined} + {} more...", count - MAX))]
    } else {
        vec![json!(joined)]
    }
}

// ---- Nodes -------------------------------------------------------------------------

fn node_columns() -> Vec<Column> {
    vec![
        col("Status", "string", "The status of the node"),
        col("Roles", "string", "The roles of the node"),
        // Upstream places Age here, before Version.
        col("Version", "string", docs::NODE_KUBELET_VERSION),
        wide("Internal-IP", "string", docs::NODE_ADDRESSES),
        wide("External-IP", "string", docs::NODE_ADDRESSES),
        wide("OS-Image", "string", docs::NODE_OS_IMAGE),
        wide("Kernel-Version", "string", docs::NODE_KERNEL_VERSION),
        wide("Container-Runtime", "string", docs::NODE_RUNTIME_VERSION),
    ]
}

/// Roles from `node-role.kubernetes.io/<role>` and `kubernetes.io/role` labels.
fn node_roles(node: &Value) -> String {
    let mut roles: Vec<&str> = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) if !role.is_empty() => Some(role),
            Some(_) => None,
            None if k == "kubernetes.io/role" => v.as_str().filter(|r| !r.is_empty()),
            None => None,
        })
        .collect();
    roles.sort_unstable();
    roles.dedup();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

fn node_address(node: &Value, kind: &str) -> String {
    list(node, "/status/addresses")
        .iter()
        .find(|a| text(a, "/type") == kind)
        .map_or("<none>", |a| text(a, "/address"))
        .to_string()
}

fn node_cells(node: &Value) -> Vec<Value> {
    let ready = list(node, "/status/conditions")
        .iter()
        .rfind(|c| text(c, "/type") == "Ready");
    let mut status = vec![match ready {
        Some(c) if text(c, "/status") == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if flag(node, "/spec/unschedulable") == Some(true) {
        status.push("SchedulingDisabled");
    }
    let system_info = |field: &str| {
        non_empty(node, &format!("/status/nodeInfo/{field}"))
            .unwrap_or("<unknown>")
            .to_string()
    };
    vec![
        json!(status.join(",")),
        json!(node_roles(node)),
        json!(text(node, "/status/nodeInfo/kubeletVersion")),
        json!(node_address(node, "InternalIP")),
        json!(node_address(node, "ExternalIP")),
        json!(system_info("osImage")),
        json!(system_info("kernelVersion")),
        json!(system_info("containerRuntimeVersion")),
    ]
}

// ---- Events ---------------------------------------------------------------------------

/// Upstream's event table has no Age and shows Name last (wide); this
/// table code always puts Name first and Age last, so Name is not repeated.
pub(super) fn event_columns() -> Vec<Column> {
    vec![
        col("Last Seen", "string", docs::EVENT_LAST_TIMESTAMP),
        col("Type", "string", docs::EVENT_TYPE),
        col("Reason", "string", docs::EVENT_REASON),
        col("Object", "string", docs::EVENT_INVOLVED_OBJECT),
        wide("Subobject", "string", docs::EVENT_FIELD_PATH),
        wide("Source", "string", docs::EVENT_SOURCE),
        col("Message", "string", docs::EVENT_MESSAGE),
        wide("First Seen", "string", docs::EVENT_FIRST_TIMESTAMP),
        wide("Count", "string", docs::EVENT_COUNT),
    ]
}

fn event_cells(event: &Value) -> Vec<Value> {
    event_cells_at(event, OffsetDateTime::now_utc())
}

/// Upstream's `printEvent`, on a core/v1-shaped event.
pub(super) fn event_cells_at(event: &Value, now: OffsetDateTime) -> Vec<Value> {
    let first_seen = match non_empty(event, "/firstTimestamp") {
        Some(t) => since(Some(t), now),
        None => since(non_empty(event, "/eventTime"), now),
    };
    let mut last_seen = match non_empty(event, "/lastTimestamp") {
        Some(t) => since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = int(event, "/count");
    if event.get("series").is_some_and(Value::is_object) {
        last_seen = since(non_empty(event, "/series/lastObservedTime"), now);
        count = int(event, "/series/count");
    } else if count == 0 {
        // Singleton events have no count in the new API.
        count = 1;
    }
    let kind = text(event, "/involvedObject/kind").to_lowercase();
    let target = match non_empty(event, "/involvedObject/name") {
        Some(name) => format!("{kind}/{name}"),
        None => kind,
    };
    let component = non_empty(event, "/source/component")
        .or_else(|| non_empty(event, "/reportingComponent"))
        .unwrap_or("");
    let instance = non_empty(event, "/source/host")
        .or_else(|| non_empty(event, "/reportingInstance"))
        .unwrap_or("");
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last_seen),
        json!(text(event, "/type")),
        json!(text(event, "/reason")),
        json!(target),
        json!(text(event, "/involvedObject/fieldPath")),
        json!(source),
        json!(text(event, "/message").trim()),
        json!(first_seen),
        json!(count),
    ]
}

// ---- Secrets and ServiceAccounts ----------------------------------------------------------

fn secret_columns() -> Vec<Column> {
    vec![
        col("Type", "string", docs::SECRET_TYPE),
        col("Data", "string", docs::SECRET_DATA),
    ]
}

fn secret_cells(obj: &Value) -> Vec<Value> {
    let data = obj
        .get("data")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len());
    vec![json!(text(obj, "/type")), json!(data)]
}

fn service_account_columns() -> Vec<Column> {
    vec![col("Secrets", "string", docs::SA_SECRETS)]
}

fn service_account_cells(obj: &Value) -> Vec<Value> {
    vec![json!(list(obj, "/secrets").len())]
}

// ---- Persistent volumes ----------------------------------------------------------------------

/// Storage class: the beta annotation wins over `storageClassName`.
fn storage_class(obj: &Value) -> String {
    obj.pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
        .and_then(Value::as_str)
        .unwrap_or_else(|| text(obj, "/spec/storageClassName"))
        .to_string()
}

fn phase_or_terminating(obj: &Value) -> &str {
    if terminating(obj) {
        "Terminating"
    } else {
        text(obj, "/status/phase")
    }
}

fn pv_columns() -> Vec<Column> {
    vec![
        col("Capacity", "string", docs::PV_CAPACITY),
        col("Access Modes", "string", docs::PV_ACCESS_MODES),
        col("Reclaim Policy", "string", docs::PV_RECLAIM_POLICY),
        col("Status", "string", docs::PV_PHASE),
        col("Claim", "string", docs::PV_CLAIM_REF),
        col("StorageClass", "string", "StorageClass of the pv"),
        col(
            "VolumeAttributesClass",
            "string",
            "VolumeAttributesClass of the pv",
        ),
        col("Reason", "string", docs::PV_REASON),
        // Upstream places Age here.
        wide("VolumeMode", "string", docs::PV_VOLUME_MODE),
    ]
}

fn pv_cells(pv: &Value) -> Vec<Value> {
    let claim = match pv.pointer("/spec/claimRef") {
        Some(r) if r.is_object() => {
            format!("{}/{}", text(r, "/namespace"), text(r, "/name"))
        }
        _ => String::new(),
    };
    vec![
        json!(quantity(pv, "/spec/capacity/storage")),
        json!(access_modes(list(pv, "/spec/accessModes"))),
        json!(text(pv, "/spec/persistentVolumeReclaimPolicy")),
        json!(phase_or_terminating(pv)),
        json!(claim),
        json!(storage_class(pv)),
        json!(non_empty(pv, "/spec/volumeAttributesClassName").unwrap_or("<unset>")),
        json!(text(pv, "/status/reason")),
        json!(non_empty(pv, "/spec/volumeMode").unwrap_or("<unset>")),
    ]
}

fn pvc_columns() -> Vec<Column> {
    vec![
        col("Status", "string", docs::PVC_PHASE),
        col("Volume", "string", docs::PVC_VOLUME_NAME),
        col("Capacity", "string", docs::PVC_CAPACITY),
        col("Access Modes", "string", docs::PVC_ACCESS_MODES),
        col("StorageClass", "string", "StorageClass of the pvc"),
        col(
            "VolumeAttributesClass",
            "string",
            "VolumeAttributesClass of the pvc",
        ),
        // Upstream places Age here.
        wide("VolumeMode", "string", docs::PVC_VOLUME_MODE),
    ]
}

fn pvc_cells(pvc: &Value) -> Vec<Value> {
    let volume = text(pvc, "/spec/volumeName");
    // Capacity and access modes are only shown once bound.
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(pvc, "/status/capacity/storage"),
            access_modes(list(pvc, "/status/accessModes")),
        )
    };
    vec![
        json!(phase_or_terminating(pvc)),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(storage_class(pvc)),
        json!(non_empty(pvc, "/spec/volumeAttributesClassName").unwrap_or("<unset>")),
        json!(non_empty(pvc, "/spec/volumeMode").unwrap_or("<unset>")),
    ]
}

// ---- ResourceQuotas --------------------------------------------------------------------------

fn quota_columns() -> Vec<Column> {
    vec![
        col("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
        col("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
    ]
}

/// "used/hard" per resource in `status.hard`, `limits.*` in the Limit column.
fn quota_cells(quota: &Value) -> Vec<Value> {
    let mut resources: Vec<&String> = quota
        .pointer("/status/hard")
        .and_then(Value::as_object)
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    resources.sort();
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for r in resources {
        let key = r.replace('~', "~0").replace('/', "~1");
        let entry = format!(
            "{r}: {}/{}",
            quantity(quota, &format!("/status/used/{key}")),
            quantity(quota, &format!("/status/hard/{key}"))
        );
        if r.starts_with("limits.") {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![json!(requests.join(", ")), json!(limits.join(", "))]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2024-05-01T12:00:00Z";

    fn now() -> OffsetDateTime {
        meta::parse_timestamp(NOW).unwrap()
    }

    fn status_of(pod: Value) -> String {
        pod_cells_at(&pod, now())[1].as_str().unwrap().to_string()
    }

    #[test]
    fn pod_status_column_shows_running_and_ready_count() {
        let pod = json!({
            "spec": {"containers": [{"name": "app", "image": "nginx"}], "nodeName": "node-1"},
            "status": {
                "phase": "Running",
                "podIPs": [{"ip": "10.0.0.5"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": NOW}}}],
            },
        });
        assert_eq!(
            pod_cells_at(&pod, now()),
            vec![
                json!("1/1"),
                json!("Running"),
                json!("0"),
                json!("10.0.0.5"),
                json!("node-1"),
                json!("<none>"),
                json!("<none>"),
            ]
        );
    }

    #[test]
    fn pod_status_column_shows_crashloopbackoff() {
        let pod = json!({
            "spec": {"containers": [{"name": "app"}]},
            "status": {
                "phase": "Running",
                "containerStatuses": [{
                    "name": "app", "ready": false, "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:55:00Z"}},
                }],
            },
        });
        let cells = pod_cells_at(&pod, now());
        assert_eq!(cells[0], json!("0/1"));
        assert_eq!(cells[1], json!("CrashLoopBackOff"));
        assert_eq!(cells[2], json!("3 (5m ago)"));
    }

    #[test]
    fn pod_status_column_shows_terminating_when_deleted() {
        let pod = json!({
            "metadata": {"deletionTimestamp": NOW},
            "spec": {"containers": [{"name": "app"}]},
            "status": {"phase": "Running"},
        });
        assert_eq!(status_of(pod), "Terminating");
    }

    #[test]
    fn pod_status_column_keeps_terminal_phase_when_deleted() {
        let pod = json!({
            "metadata": {"deletionTimestamp": NOW},
            "spec": {"containers": [{"name": "app"}]},
            "status": {"phase": "Succeeded"},
        });
        assert_eq!(status_of(pod), "Succeeded");
    }

    #[test]
    fn pod_status_column_shows_completed() {
        let pod = json!({
            "spec": {"containers": [{"name": "job"}]},
            "status": {
                "phase": "Succeeded",
                "containerStatuses": [{"name": "job", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
            },
        });
        let cells = pod_cells_at(&pod, now());
        assert_eq!(cells[0], json!("0/1"));
        assert_eq!(cells[1], json!("Completed"));
    }

    #[test]
    fn pod_status_column_shows_init_progress() {
        let pod = json!({
            "spec": {"initContainers": [{"name": "init"}], "containers": [{"name": "app"}]},
            "status": {
                "phase": "Pending",
                "initContainerStatuses": [{"name": "init", "ready": false, "restartCount": 0, "state": {"running": {}}}],
                "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}],
            },
        });
        assert_eq!(status_of(pod), "Init:0/1");
    }

    #[test]
    fn pod_status_column_shows_failed_init_container() {
        let pod = json!({
            "spec": {"initContainers": [{"name": "init"}], "containers": [{"name": "app"}]},
            "status": {
                "phase": "Pending",
                "initContainerStatuses": [{"name": "init", "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
            },
        });
        let cells = pod_cells_at(&pod, now());
        assert_eq!(cells[1], json!("Init:CrashLoopBackOff"));
        assert_eq!(cells[2], json!("2"));
    }

    #[test]
    fn pod_ready_column_counts_started_sidecars() {
        let pod = json!({
            "spec": {
                "initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                "containers": [{"name": "app"}],
            },
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 1, "state": {"running": {}}}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}],
            },
        });
        let cells = pod_cells_at(&pod, now());
        assert_eq!(cells[0], json!("2/2"));
        assert_eq!(cells[1], json!("Running"));
        assert_eq!(cells[2], json!("1"));
    }

    #[test]
    fn pod_readiness_gates_count_true_conditions() {
        let pod = json!({
            "spec": {"containers": [], "readinessGates": [{"conditionType": "a"}, {"conditionType": "b"}]},
            "status": {"conditions": [{"type": "a", "status": "True"}, {"type": "b", "status": "False"}]},
        });
        assert_eq!(pod_cells_at(&pod, now())[6], json!("1/2"));
    }

    #[test]
    fn service_cells_show_cluster_ip_service() {
        let svc = json!({"spec": {
            "type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
            "selector": {"k8s-app": "kube-dns"},
        }});
        assert_eq!(
            service_cells(&svc),
            vec![
                json!("ClusterIP"),
                json!("10.96.0.10"),
                json!("<none>"),
                json!("53/UDP,53/TCP"),
                json!("k8s-app=kube-dns"),
            ]
        );
    }

    #[test]
    fn service_cells_show_node_ports() {
        let svc = json!({"spec": {
            "type": "NodePort", "clusterIPs": ["10.96.1.1"],
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30443, "protocol": "TCP"}],
        }});
        let cells = service_cells(&svc);
        assert_eq!(cells[2], json!("<none>"));
        assert_eq!(cells[3], json!("80/TCP,443:30443/TCP"));
        assert_eq!(cells[4], json!("<none>"));
    }

    #[test]
    fn service_cells_show_pending_load_balancer() {
        let svc = json!({
            "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.2.2"], "ports": [{"port": 80, "nodePort": 31000, "protocol": "TCP"}]},
            "status": {"loadBalancer": {}},
        });
        assert_eq!(service_cells(&svc)[2], json!("<pending>"));
        let ready = json!({
            "spec": {"type": "LoadBalancer", "externalIPs": ["1.2.3.4"]},
            "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example.com"}]}},
        });
        assert_eq!(
            service_cells(&ready)[2],
            json!("5.6.7.8,lb.example.com,1.2.3.4")
        );
    }

    #[test]
    fn headless_service_without_ports_shows_none() {
        let svc = json!({"spec": {"type": "ClusterIP", "clusterIP": "None"}});
        let cells = service_cells(&svc);
        assert_eq!(cells[1], json!("None"));
        assert_eq!(cells[3], json!("<none>"));
    }

    #[test]
    fn endpoints_cell_lists_three_then_more() {
        let ep = json!({"subsets": [{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}],
            "ports": [{"port": 80}],
        }]});
        assert_eq!(
            endpoints_cells(&ep),
            vec![json!("10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more...")]
        );
        assert_eq!(endpoints_cells(&json!({})), vec![json!("<none>")]);
    }

    #[test]
    fn node_cells_show_status_roles_and_addresses() {
        let node = json!({
            "metadata": {"labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "master"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "n1"}],
                "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Ubuntu 24.04", "kernelVersion": "6.8.0", "containerRuntimeVersion": "containerd://2.0.0"},
            },
        });
        assert_eq!(
            node_cells(&node),
            vec![
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,master"),
                json!("v1.33.0"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Ubuntu 24.04"),
                json!("6.8.0"),
                json!("containerd://2.0.0"),
            ]
        );
    }

    #[test]
    fn node_without_ready_condition_is_unknown() {
        let cells = node_cells(&json!({}));
        assert_eq!(cells[0], json!("Unknown"));
        assert_eq!(cells[1], json!("<none>"));
        assert_eq!(cells[5], json!("<unknown>"));
    }

    #[test]
    fn node_not_ready_is_reported() {
        let node = json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(node_cells(&node)[0], json!("NotReady"));
    }

    #[test]
    fn event_cells_show_last_seen_object_and_count() {
        let ev = json!({
            "type": "Warning", "reason": "BackOff", "message": " Back-off restarting \n",
            "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{app}"},
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2024-05-01T11:00:00Z", "lastTimestamp": "2024-05-01T11:59:30Z", "count": 7,
        });
        assert_eq!(
            event_cells_at(&ev, now()),
            vec![
                json!("30s"),
                json!("Warning"),
                json!("BackOff"),
                json!("pod/web-1"),
                json!("spec.containers{app}"),
                json!("kubelet, node-1"),
                json!("Back-off restarting"),
                json!("60m"),
                json!(7),
            ]
        );
    }

    #[test]
    fn pv_and_pvc_cells_follow_binding() {
        let pv = json!({"spec": {
            "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "fast",
            "claimRef": {"namespace": "default", "name": "data"},
        }, "status": {"phase": "Bound"}});
        assert_eq!(
            pv_cells(&pv),
            vec![
                json!("10Gi"),
                json!("RWO"),
                json!("Retain"),
                json!("Bound"),
                json!("default/data"),
                json!("fast"),
                json!("<unset>"),
                json!(""),
                json!("<unset>"),
            ]
        );
        let pending = json!({"spec": {"storageClassName": "fast"}, "status": {"phase": "Pending"}});
        assert_eq!(
            pvc_cells(&pending)[..4],
            [json!("Pending"), json!(""), json!(""), json!("")]
        );
    }

    #[test]
    fn quota_cells_split_requests_and_limits() {
        let quota = json!({"status": {
            "hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1"},
            "used": {"pods": "3", "requests.cpu": "500m"},
        }});
        assert_eq!(
            quota_cells(&quota),
            vec![
                json!("pods: 3/10, requests.cpu: 500m/1"),
                json!("limits.cpu: 0/2")
            ]
        );
    }
}
