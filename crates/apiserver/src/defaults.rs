//! Defaulting: the values upstream's API server fills in for fields a
//! client left out, per kind, before validation (what `SetDefaults_*`
//! functions do upstream). Applied on create and update.
//!
//! Every helper only fills a field that is absent (or, for fields Go
//! models as plain strings, empty), so a value the client set is never
//! overwritten. Services are defaulted by their own registry.

use apimachinery::ResourceInfo;
use serde_json::{json, Map, Value};

/// Fill in upstream's defaults for an object of the given resource.
pub fn apply(info: &ResourceInfo, obj: &mut Value) {
    match (info.group, info.kind) {
        ("", "Pod") => default_pod(obj),
        ("", "PodTemplate") => default_pod_template(obj.get_mut("template")),
        ("", "ReplicationController") => default_replication_controller(obj),
        ("", "Secret") => {
            default_str(obj, "type", "Opaque");
            merge_string_data(obj);
        }
        ("", "PersistentVolumeClaim") => default_persistent_volume_claim(obj),
        ("", "PersistentVolume") => default_persistent_volume(obj),
        ("", "Endpoints") => default_endpoints(obj),
        ("", "LimitRange") => default_limit_range(obj),
        ("", "Node") => default_node(obj),
        ("apps", "Deployment") => default_deployment(obj),
        ("apps", "ReplicaSet") => default_replica_set(obj),
        ("apps", "StatefulSet") => default_stateful_set(obj),
        ("apps", "DaemonSet") => default_daemon_set(obj),
        ("batch", "Job") => default_job(obj),
        ("batch", "CronJob") => default_cron_job(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => {
            default_horizontal_pod_autoscaler(info.version, obj)
        }
        ("networking.k8s.io", "NetworkPolicy") => default_network_policy(obj),
        ("scheduling.k8s.io", "PriorityClass") => {
            default_value(obj, "preemptionPolicy", json!("PreemptLowerPriority"))
        }
        ("storage.k8s.io", "StorageClass") => default_storage_class(obj),
        ("storage.k8s.io", "CSIDriver") => default_csi_driver(obj),
        ("discovery.k8s.io", "EndpointSlice") => default_endpoint_slice(obj),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            default_role_binding(obj)
        }
        _ => {}
    }
}

/// A Secret's write-only `stringData` is merged into `data` (base64,
/// winning over the same key in `data`) and never stored, as upstream.
fn merge_string_data(obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let Some(Value::Object(strings)) = map.remove("stringData") else {
        return;
    };
    let data = map.entry("data").or_insert_with(|| json!({}));
    if data.is_null() {
        *data = json!({});
    }
    if let Some(data) = data.as_object_mut() {
        for (key, value) in strings {
            if let Some(text) = value.as_str() {
                let encoded =
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text);
                data.insert(key, json!(encoded));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Small JSON helpers. None of them panic on unexpected shapes: a field of the
// wrong type is left for validation to report.

/// True when `obj[key]` is missing or null (Go: a nil pointer).
fn is_unset(obj: &Value, key: &str) -> bool {
    obj.get(key).is_none_or(Value::is_null)
}

/// Set `obj[key]` when it is missing or null.
fn default_value(obj: &mut Value, key: &str, value: Value) {
    if let Some(map) = obj.as_object_mut() {
        if map.get(key).is_none_or(Value::is_null) {
            map.insert(key.to_string(), value);
        }
    }
}

/// Set a string field when it is missing, null or "" (Go: a plain string
/// compared with "").
fn default_str(obj: &mut Value, key: &str, value: &str) {
    let empty = match obj.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    };
    if empty {
        if let Some(map) = obj.as_object_mut() {
            map.insert(key.to_string(), json!(value));
        }
    }
}

/// Set an integer field when it is missing, null or 0 (Go: a plain int
/// compared with 0).
fn default_nonzero(obj: &mut Value, key: &str, value: i64) {
    if obj.get(key).is_none_or(|v| v.is_null() || v == 0) {
        if let Some(map) = obj.as_object_mut() {
            map.insert(key.to_string(), json!(value));
        }
    }
}

/// `obj[key]` as a mutable object, created empty when missing or null.
/// `None` when `obj` is not an object or `obj[key]` has another type.
fn ensure_object<'a>(obj: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    default_value(obj, key, json!({}));
    obj.get_mut(key).filter(|v| v.is_object())
}

/// `obj[key]` when it exists and is an object.
fn object_mut<'a>(obj: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    obj.get_mut(key).filter(|v| v.is_object())
}

/// Run `f` on every element of the array `obj[key]`, if any.
fn for_each_item(obj: &mut Value, key: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = obj.get_mut(key).and_then(Value::as_array_mut) {
        items.iter_mut().for_each(&mut f);
    }
}

/// True when `obj[key]` is a non-empty array or object.
fn is_non_empty(obj: &Value, key: &str) -> bool {
    match obj.get(key) {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
        _ => false,
    }
}

/// Copy `from` into `into` for every key `into` lacks (resource lists).
fn merge_missing(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (key, value) in from {
        into.entry(key.clone()).or_insert_with(|| value.clone());
    }
}

// ---------------------------------------------------------------------------
// core/v1: pods and pod templates.

/// `SetDefaults_Pod` plus everything its pod spec gets.
fn default_pod(pod: &mut Value) {
    let Some(spec) = ensure_object(pod, "spec") else {
        return;
    };
    default_pod_spec(spec);
    default_value(spec, "enableServiceLinks", json!(true));
    for key in ["containers", "initContainers"] {
        for_each_item(spec, key, default_requests_to_limits);
    }
    if spec.get("hostNetwork") == Some(&json!(true)) {
        for key in ["containers", "initContainers"] {
            for_each_item(spec, key, default_host_network_ports);
        }
    }
}

/// A container with limits but no request for a resource requests its limit.
fn default_requests_to_limits(container: &mut Value) {
    let Some(resources) = object_mut(container, "resources") else {
        return;
    };
    let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    if let Some(requests) = ensure_object(resources, "requests").and_then(Value::as_object_mut) {
        merge_missing(requests, &limits);
    }
}

/// With host networking a port's hostPort is its containerPort.
fn default_host_network_ports(container: &mut Value) {
    for_each_item(container, "ports", |port| {
        let unset = port.get("hostPort").is_none_or(|v| v.is_null() || v == 0);
        if let (true, Some(container_port)) = (unset, port.get("containerPort").cloned()) {
            if let Some(map) = port.as_object_mut() {
                map.insert("hostPort".into(), container_port);
            }
        }
    });
}

/// A pod template (`spec.template` of the workload kinds): only the pod
/// spec defaults apply, not the pod-level ones (`enableServiceLinks`).
fn default_pod_template(template: Option<&mut Value>) {
    let Some(template) = template.filter(|t| t.is_object()) else {
        return;
    };
    if let Some(spec) = ensure_object(template, "spec") {
        default_pod_spec(spec);
    }
}

/// `SetDefaults_PodSpec` and the defaults of everything inside a pod spec.
fn default_pod_spec(spec: &mut Value) {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    // Also for Job templates: validation then rejects "Always" there, as
    // upstream does.
    default_str(spec, "restartPolicy", "Always");
    default_value(spec, "securityContext", json!({}));
    default_value(spec, "terminationGracePeriodSeconds", json!(30));
    default_str(spec, "schedulerName", "default-scheduler");
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        for_each_item(spec, key, default_container);
    }
    for_each_item(spec, "volumes", default_volume);
}

/// `SetDefaults_Container` and the defaults of its ports, env and probes.
fn default_container(container: &mut Value) {
    if !container.is_object() {
        return;
    }
    default_str(container, "terminationMessagePath", "/dev/termination-log");
    default_str(container, "terminationMessagePolicy", "File");
    let image = container.get("image").and_then(Value::as_str).unwrap_or("");
    let policy = image_pull_policy_for(image);
    default_str(container, "imagePullPolicy", policy);
    default_value(container, "resources", json!({}));
    for_each_item(container, "ports", |port| {
        default_str(port, "protocol", "TCP")
    });
    for_each_item(container, "env", |env| {
        if let Some(field_ref) = env
            .get_mut("valueFrom")
            .and_then(|v| object_mut(v, "fieldRef"))
        {
            default_str(field_ref, "apiVersion", "v1");
        }
    });
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(probe) = object_mut(container, key) {
            default_probe(probe);
        }
    }
    if let Some(lifecycle) = object_mut(container, "lifecycle") {
        for key in ["postStart", "preStop"] {
            if let Some(http_get) = lifecycle
                .get_mut(key)
                .and_then(|h| object_mut(h, "httpGet"))
            {
                default_http_get(http_get);
            }
        }
    }
}

/// "Always" for a `latest` (or missing) tag, "IfNotPresent" otherwise,
/// judged on the tag the way upstream's image-name parser reads it.
fn image_pull_policy_for(image: &str) -> &'static str {
    if image_tag(image) == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// The tag of an image reference: `latest` when neither a tag nor a digest
/// is given, `None` for a digest-only or empty reference.
fn image_tag(image: &str) -> Option<&str> {
    if image.is_empty() {
        return None;
    }
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    // A ':' before the last '/' belongs to a registry host:port.
    let last_segment_start = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_segment_start..].split_once(':') {
        Some((_, tag)) => Some(tag),
        None if digest.is_none() => Some("latest"),
        None => None,
    }
}

/// `SetDefaults_Probe` and its handler's defaults.
fn default_probe(probe: &mut Value) {
    default_nonzero(probe, "timeoutSeconds", 1);
    default_nonzero(probe, "periodSeconds", 10);
    default_nonzero(probe, "successThreshold", 1);
    default_nonzero(probe, "failureThreshold", 3);
    if let Some(http_get) = object_mut(probe, "httpGet") {
        default_http_get(http_get);
    }
    if let Some(grpc) = object_mut(probe, "grpc") {
        default_value(grpc, "service", json!(""));
    }
}

/// `SetDefaults_HTTPGetAction`.
fn default_http_get(http_get: &mut Value) {
    default_str(http_get, "path", "/");
    default_str(http_get, "scheme", "HTTP");
}

/// `SetDefaults_Volume` and the defaults of each volume source.
fn default_volume(volume: &mut Value) {
    let Some(map) = volume.as_object_mut() else {
        return;
    };
    if map.iter().all(|(k, v)| k == "name" || v.is_null()) {
        map.insert("emptyDir".into(), json!({}));
    }
    for source in ["secret", "configMap", "downwardAPI"] {
        if let Some(source) = object_mut(volume, source) {
            default_value(source, "defaultMode", json!(420));
            for_each_item(source, "items", default_downward_api_item);
        }
    }
    if let Some(projected) = object_mut(volume, "projected") {
        default_projected(projected);
    }
    if let Some(host_path) = object_mut(volume, "hostPath") {
        default_value(host_path, "type", json!(""));
    }
    default_legacy_volume_sources(volume);
    if let Some(spec) = volume
        .get_mut("ephemeral")
        .and_then(|e| object_mut(e, "volumeClaimTemplate"))
        .and_then(|t| object_mut(t, "spec"))
    {
        default_persistent_volume_claim_spec(spec);
    }
}

/// A downward API item's `fieldRef.apiVersion` (harmless on key-to-path
/// items, which have no fieldRef).
fn default_downward_api_item(item: &mut Value) {
    if let Some(field_ref) = object_mut(item, "fieldRef") {
        default_str(field_ref, "apiVersion", "v1");
    }
}

/// `SetDefaults_ProjectedVolumeSource` and its sources.
fn default_projected(projected: &mut Value) {
    default_value(projected, "defaultMode", json!(420));
    for_each_item(projected, "sources", |source| {
        if let Some(downward) = object_mut(source, "downwardAPI") {
            for_each_item(downward, "items", default_downward_api_item);
        }
        if let Some(token) = object_mut(source, "serviceAccountToken") {
            default_value(token, "expirationSeconds", json!(3600));
        }
    });
}

/// Defaults of the in-tree volume sources that still carry some.
fn default_legacy_volume_sources(source: &mut Value) {
    if let Some(iscsi) = object_mut(source, "iscsi") {
        default_str(iscsi, "iscsiInterface", "default");
    }
    if let Some(rbd) = object_mut(source, "rbd") {
        default_str(rbd, "pool", "rbd");
        default_str(rbd, "user", "admin");
        default_str(rbd, "keyring", "/etc/ceph/keyring");
    }
    if let Some(azure_disk) = object_mut(source, "azureDisk") {
        default_value(azure_disk, "cachingMode", json!("ReadWrite"));
        default_value(azure_disk, "fsType", json!("ext4"));
        default_value(azure_disk, "readOnly", json!(false));
        default_value(azure_disk, "kind", json!("Shared"));
    }
    if let Some(scale_io) = object_mut(source, "scaleIO") {
        default_str(scale_io, "storageMode", "ThinProvisioned");
        default_str(scale_io, "fsType", "xfs");
    }
}

// ---------------------------------------------------------------------------
// core/v1: other kinds.

/// `SetDefaults_ReplicationController`: selector and labels follow the
/// template's labels; one replica.
fn default_replication_controller(rc: &mut Value) {
    let template_labels = rc
        .pointer("/spec/template/metadata/labels")
        .filter(|l| is_non_empty_map(l))
        .cloned();
    let Some(spec) = ensure_object(rc, "spec") else {
        return;
    };
    if let Some(labels) = &template_labels {
        if !is_non_empty(spec, "selector") {
            spec["selector"] = labels.clone();
        }
    }
    default_value(spec, "replicas", json!(1));
    default_pod_template(spec.get_mut("template"));
    if let Some(labels) = template_labels {
        default_labels(rc, labels);
    }
}

fn is_non_empty_map(v: &Value) -> bool {
    v.as_object().is_some_and(|m| !m.is_empty())
}

/// Set `metadata.labels` when the object has none.
fn default_labels(obj: &mut Value, labels: Value) {
    if let Some(metadata) = ensure_object(obj, "metadata") {
        if !is_non_empty(metadata, "labels") {
            metadata["labels"] = labels;
        }
    }
}

/// `SetDefaults_PersistentVolumeClaim`.
fn default_persistent_volume_claim(pvc: &mut Value) {
    if let Some(spec) = ensure_object(pvc, "spec") {
        default_persistent_volume_claim_spec(spec);
    }
    if let Some(status) = ensure_object(pvc, "status") {
        default_str(status, "phase", "Pending");
    }
}

/// `SetDefaults_PersistentVolumeClaimSpec`.
fn default_persistent_volume_claim_spec(spec: &mut Value) {
    default_value(spec, "volumeMode", json!("Filesystem"));
}

/// `SetDefaults_PersistentVolume`.
fn default_persistent_volume(pv: &mut Value) {
    if let Some(spec) = ensure_object(pv, "spec") {
        default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
        default_value(spec, "volumeMode", json!("Filesystem"));
        if let Some(host_path) = object_mut(spec, "hostPath") {
            default_value(host_path, "type", json!(""));
        }
        default_legacy_volume_sources(spec);
    }
    if let Some(status) = ensure_object(pv, "status") {
        default_str(status, "phase", "Pending");
    }
}

/// `SetDefaults_Endpoints`: port protocols.
fn default_endpoints(endpoints: &mut Value) {
    for_each_item(endpoints, "subsets", |subset| {
        for_each_item(subset, "ports", |port| default_str(port, "protocol", "TCP"));
    });
}

/// `SetDefaults_LimitRangeItem`: for containers, default limit <- max,
/// default request <- default limit, then <- min.
fn default_limit_range(limit_range: &mut Value) {
    let Some(spec) = object_mut(limit_range, "spec") else {
        return;
    };
    for_each_item(spec, "limits", default_limit_range_item);
}

fn default_limit_range_item(item: &mut Value) {
    if item.get("type").and_then(Value::as_str) != Some("Container") {
        return;
    }
    let resources = |item: &Value, key: &str| {
        item.get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let mut default = resources(item, "default");
    merge_missing(&mut default, &resources(item, "max"));
    let mut default_request = resources(item, "defaultRequest");
    merge_missing(&mut default_request, &default);
    merge_missing(&mut default_request, &resources(item, "min"));
    if let Some(map) = item.as_object_mut() {
        // Empty resource lists are omitted on the wire.
        for (key, list) in [("default", default), ("defaultRequest", default_request)] {
            if !list.is_empty() {
                map.insert(key.into(), Value::Object(list));
            }
        }
    }
}

/// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
fn default_node(node: &mut Value) {
    let Some(status) = object_mut(node, "status") else {
        return;
    };
    if is_unset(status, "allocatable") {
        if let Some(capacity) = status.get("capacity").cloned() {
            status["allocatable"] = capacity;
        }
    }
}

// ---------------------------------------------------------------------------
// apps/v1.

/// `SetDefaults_Deployment`.
fn default_deployment(deployment: &mut Value) {
    let Some(spec) = ensure_object(deployment, "spec") else {
        return;
    };
    default_value(spec, "replicas", json!(1));
    if let Some(strategy) = ensure_object(spec, "strategy") {
        default_str(strategy, "type", "RollingUpdate");
        if strategy.get("type") == Some(&json!("RollingUpdate")) {
            if let Some(rolling) = ensure_object(strategy, "rollingUpdate") {
                default_value(rolling, "maxUnavailable", json!("25%"));
                default_value(rolling, "maxSurge", json!("25%"));
            }
        }
    }
    default_value(spec, "revisionHistoryLimit", json!(10));
    default_value(spec, "progressDeadlineSeconds", json!(600));
    default_pod_template(spec.get_mut("template"));
}

/// `SetDefaults_ReplicaSet`.
fn default_replica_set(replica_set: &mut Value) {
    let Some(spec) = ensure_object(replica_set, "spec") else {
        return;
    };
    default_value(spec, "replicas", json!(1));
    default_pod_template(spec.get_mut("template"));
}

/// `SetDefaults_StatefulSet`.
fn default_stateful_set(stateful_set: &mut Value) {
    let Some(spec) = ensure_object(stateful_set, "spec") else {
        return;
    };
    default_str(spec, "podManagementPolicy", "OrderedReady");
    if let Some(strategy) = ensure_object(spec, "updateStrategy") {
        default_str(strategy, "type", "RollingUpdate");
        if strategy.get("type") == Some(&json!("RollingUpdate")) {
            if let Some(rolling) = ensure_object(strategy, "rollingUpdate") {
                default_value(rolling, "partition", json!(0));
            }
        }
    }
    if let Some(policy) = ensure_object(spec, "persistentVolumeClaimRetentionPolicy") {
        default_str(policy, "whenDeleted", "Retain");
        default_str(policy, "whenScaled", "Retain");
    }
    default_value(spec, "replicas", json!(1));
    default_value(spec, "revisionHistoryLimit", json!(10));
    default_pod_template(spec.get_mut("template"));
    for_each_item(
        spec,
        "volumeClaimTemplates",
        default_persistent_volume_claim,
    );
}

/// `SetDefaults_DaemonSet`.
fn default_daemon_set(daemon_set: &mut Value) {
    let Some(spec) = ensure_object(daemon_set, "spec") else {
        return;
    };
    if let Some(strategy) = ensure_object(spec, "updateStrategy") {
        default_str(strategy, "type", "RollingUpdate");
        if strategy.get("type") == Some(&json!("RollingUpdate")) {
            if let Some(rolling) = ensure_object(strategy, "rollingUpdate") {
                default_value(rolling, "maxUnavailable", json!(1));
                default_value(rolling, "maxSurge", json!(0));
            }
        }
    }
    default_value(spec, "revisionHistoryLimit", json!(10));
    default_pod_template(spec.get_mut("template"));
}

// ---------------------------------------------------------------------------
// batch/v1.

/// `SetDefaults_Job`.
fn default_job(job: &mut Value) {
    generate_job_selector(job);
    let template_labels = job
        .pointer("/spec/template/metadata/labels")
        .filter(|l| is_non_empty_map(l))
        .cloned();
    if let Some(spec) = ensure_object(job, "spec") {
        default_job_spec(spec);
    }
    if let Some(labels) = template_labels {
        default_labels(job, labels);
    }
}

/// Upstream's Job strategy on create: unless `manualSelector` is true, the
/// selector is the Job's uid, and the pod template carries the uid and job
/// name labels (new and legacy keys), which the Job's own labels then
/// default from.
fn generate_job_selector(job: &mut Value) {
    let uid = job
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(str::to_string);
    let name = job
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let manual = job.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true);
    let has_selector = job.pointer("/spec/selector").is_some_and(|s| !s.is_null());
    let Some(uid) = uid.filter(|_| !manual && !has_selector) else {
        return;
    };
    let Some(spec) = ensure_object(job, "spec") else {
        return;
    };
    spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    let Some(template) = ensure_object(spec, "template") else {
        return;
    };
    let Some(metadata) = ensure_object(template, "metadata") else {
        return;
    };
    let Some(labels) = ensure_object(metadata, "labels") else {
        return;
    };
    for (key, value) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("job-name", &name),
    ] {
        labels[key] = json!(value);
    }
}

fn default_job_spec(spec: &mut Value) {
    // Both unset: a non-parallel job of one completion. Parallelism alone
    // set: completions stay unset (a work queue).
    if is_unset(spec, "completions") && is_unset(spec, "parallelism") {
        spec["completions"] = json!(1);
    }
    default_value(spec, "parallelism", json!(1));
    let backoff_limit = if is_unset(spec, "backoffLimitPerIndex") {
        6
    } else {
        i32::MAX
    };
    default_value(spec, "backoffLimit", json!(backoff_limit));
    default_value(spec, "completionMode", json!("NonIndexed"));
    default_value(spec, "suspend", json!(false));
    let has_pod_failure_policy = !is_unset(spec, "podFailurePolicy");
    if let Some(policy) = object_mut(spec, "podFailurePolicy") {
        for_each_item(policy, "rules", |rule| {
            for_each_item(rule, "onPodConditions", |pattern| {
                default_str(pattern, "status", "True");
            });
        });
    }
    let replacement = if has_pod_failure_policy {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    default_value(spec, "podReplacementPolicy", json!(replacement));
    default_value(spec, "manualSelector", json!(false));
    default_pod_template(spec.get_mut("template"));
}

/// `SetDefaults_CronJob`. The job template's spec only gets its pod
/// template's defaults; Job defaults apply when the job is created.
fn default_cron_job(cron_job: &mut Value) {
    let Some(spec) = ensure_object(cron_job, "spec") else {
        return;
    };
    default_str(spec, "concurrencyPolicy", "Allow");
    default_value(spec, "suspend", json!(false));
    default_value(spec, "successfulJobsHistoryLimit", json!(3));
    default_value(spec, "failedJobsHistoryLimit", json!(1));
    let template = spec
        .get_mut("jobTemplate")
        .and_then(|t| object_mut(t, "spec"))
        .and_then(|s| s.get_mut("template"));
    default_pod_template(template);
}

// ---------------------------------------------------------------------------
// Other groups.

/// `SetDefaults_HorizontalPodAutoscaler` (v1 and v2) and, for v2, the
/// behavior's scaling rules when a behavior is given.
fn default_horizontal_pod_autoscaler(version: &str, hpa: &mut Value) {
    let Some(spec) = ensure_object(hpa, "spec") else {
        return;
    };
    default_value(spec, "minReplicas", json!(1));
    if version == "v1" {
        // No CPU target default here: the conversion to the stored v2
        // supplies one only when the annotations carry no other metric.
        return;
    }
    if !is_non_empty(spec, "metrics") {
        spec["metrics"] = json!([{
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
        }]);
    }
    if let Some(behavior) = object_mut(spec, "behavior") {
        default_scaling_rules(behavior, "scaleUp", 0, scale_up_policies());
        default_scaling_rules(behavior, "scaleDown", 300, scale_down_policies());
    }
}

fn scale_up_policies() -> Value {
    json!([
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ])
}

fn scale_down_policies() -> Value {
    json!([{"type": "Percent", "value": 100, "periodSeconds": 15}])
}

fn default_scaling_rules(behavior: &mut Value, key: &str, window: i64, policies: Value) {
    if let Some(rules) = ensure_object(behavior, key) {
        default_value(rules, "stabilizationWindowSeconds", json!(window));
        default_value(rules, "selectPolicy", json!("Max"));
        default_value(rules, "policies", policies);
    }
}

/// `SetDefaults_NetworkPolicy`: port protocols, and policy types from
/// which rule lists are present.
fn default_network_policy(policy: &mut Value) {
    let Some(spec) = ensure_object(policy, "spec") else {
        return;
    };
    for direction in ["ingress", "egress"] {
        for_each_item(spec, direction, |rule| {
            for_each_item(rule, "ports", |port| {
                default_value(port, "protocol", json!("TCP"))
            });
        });
    }
    if !is_non_empty(spec, "policyTypes") {
        let mut types = vec![json!("Ingress")];
        if is_non_empty(spec, "egress") {
            types.push(json!("Egress"));
        }
        spec["policyTypes"] = Value::Array(types);
    }
}

/// `SetDefaults_StorageClass`.
fn default_storage_class(class: &mut Value) {
    default_value(class, "reclaimPolicy", json!("Delete"));
    default_value(class, "volumeBindingMode", json!("Immediate"));
}

/// `SetDefaults_CSIDriver`.
fn default_csi_driver(driver: &mut Value) {
    let Some(spec) = ensure_object(driver, "spec") else {
        return;
    };
    default_value(spec, "attachRequired", json!(true));
    default_value(spec, "podInfoOnMount", json!(false));
    default_value(spec, "storageCapacity", json!(false));
    default_value(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
    if !is_non_empty(spec, "volumeLifecycleModes") {
        spec["volumeLifecycleModes"] = json!(["Persistent"]);
    }
    default_value(spec, "requiresRepublish", json!(false));
    default_value(spec, "seLinuxMount", json!(false));
}

/// `SetDefaults_EndpointPort` (discovery/v1).
fn default_endpoint_slice(slice: &mut Value) {
    for_each_item(slice, "ports", |port| {
        default_value(port, "name", json!(""));
        default_value(port, "protocol", json!("TCP"));
    });
}

/// `SetDefaults_RoleBinding` / `SetDefaults_ClusterRoleBinding` and
/// `SetDefaults_Subject`.
fn default_role_binding(binding: &mut Value) {
    const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
    if let Some(role_ref) = object_mut(binding, "roleRef") {
        default_str(role_ref, "apiGroup", RBAC_GROUP);
    }
    for_each_item(binding, "subjects", |subject| {
        // A ServiceAccount's group is "", which the wire format omits.
        if matches!(
            subject.get("kind").and_then(Value::as_str),
            Some("User" | "Group")
        ) {
            default_str(subject, "apiGroup", RBAC_GROUP);
        }
    });
}

#[cfg(test)]
mod tests {

    #[test]
    fn jobs_select_their_pods_by_uid_unless_the_selector_is_manual() {
        let job = defaulted(
            "batch",
            "Job",
            json!({"metadata": {"name": "crunch", "uid": "u-1"}, "spec": {"template": {"spec": {"containers": []}}}}),
        );
        assert_eq!(
            job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            "u-1"
        );
        let labels = &job["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["batch.kubernetes.io/job-name"], "crunch");
        assert_eq!(labels["job-name"], "crunch");
        assert_eq!(labels["controller-uid"], "u-1");
        assert_eq!(job["metadata"]["labels"]["job-name"], "crunch");
        let manual = defaulted(
            "batch",
            "Job",
            json!({"metadata": {"name": "m", "uid": "u-2"}, "spec": {"manualSelector": true, "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}}}}),
        );
        assert_eq!(
            manual["spec"]["selector"],
            json!({"matchLabels": {"a": "b"}})
        );
        assert!(manual["spec"]["template"]["metadata"]["labels"]
            .get("job-name")
            .is_none());
    }

    use super::*;
    use apimachinery::resource::ALL_VERBS;
    use apimachinery::Scope;

    fn info(group: &'static str, version: &'static str, kind: &'static str) -> ResourceInfo {
        ResourceInfo {
            group,
            version,
            kind,
            plural: "things",
            singular: "thing",
            scope: Scope::Namespaced,
            short_names: &[],
            categories: &[],
            verbs: ALL_VERBS,
            subresources: &[],
        }
    }

    fn defaulted(group: &'static str, kind: &'static str, mut obj: Value) -> Value {
        apply(&info(group, "v1", kind), &mut obj);
        obj
    }

    fn pod_with(container: Value) -> Value {
        defaulted("", "Pod", json!({"spec": {"containers": [container]}}))
    }

    #[test]
    fn pod_spec_gets_upstream_defaults() {
        let pod = pod_with(json!({"name": "c", "image": "nginx:1.25"}));
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["enableServiceLinks"], true);
        let c = &spec["containers"][0];
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["resources"], json!({}));
    }

    #[test]
    fn latest_tag_defaults_image_pull_policy_always() {
        for image in [
            "nginx",
            "nginx:latest",
            "localhost:5000/nginx",
            "a/b:latest@sha256:ab",
        ] {
            let pod = pod_with(json!({"name": "c", "image": image}));
            assert_eq!(
                pod["spec"]["containers"][0]["imagePullPolicy"], "Always",
                "{image}"
            );
        }
    }

    #[test]
    fn tagged_or_digest_image_defaults_image_pull_policy_if_not_present() {
        for image in [
            "nginx:1.25",
            "localhost:5000/nginx:v1",
            "nginx@sha256:abcd",
            "",
        ] {
            let pod = pod_with(json!({"name": "c", "image": image}));
            assert_eq!(
                pod["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent",
                "{image:?}"
            );
        }
    }

    #[test]
    fn container_ports_env_and_probes_get_defaults() {
        let pod = pod_with(json!({
            "name": "c", "image": "x:1",
            "ports": [{"containerPort": 80}],
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "livenessProbe": {"httpGet": {"port": 80}},
            "readinessProbe": {"grpc": {"port": 9000}},
            "lifecycle": {"preStop": {"httpGet": {"port": 80}}},
        }));
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                   "timeoutSeconds": 1, "periodSeconds": 10,
                   "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["readinessProbe"]["grpc"]["service"], "");
        assert_eq!(c["lifecycle"]["preStop"]["httpGet"]["scheme"], "HTTP");
    }

    #[test]
    fn init_and_ephemeral_containers_get_container_defaults() {
        let pod = defaulted(
            "",
            "Pod",
            json!({"spec": {"containers": [], "initContainers": [{"name": "i", "image": "busybox"}],
                   "ephemeralContainers": [{"name": "e", "image": "busybox:1"}]}}),
        );
        assert_eq!(
            pod["spec"]["initContainers"][0]["imagePullPolicy"],
            "Always"
        );
        assert_eq!(
            pod["spec"]["ephemeralContainers"][0]["terminationMessagePolicy"],
            "File"
        );
    }

    #[test]
    fn zero_probe_thresholds_count_as_unset_like_upstream() {
        let pod = pod_with(json!({"name": "c", "image": "x:1",
            "readinessProbe": {"tcpSocket": {"port": 80}, "timeoutSeconds": 0, "periodSeconds": 5}}));
        let probe = &pod["spec"]["containers"][0]["readinessProbe"];
        assert_eq!(probe["timeoutSeconds"], 1);
        assert_eq!(probe["periodSeconds"], 5);
    }

    #[test]
    fn volume_with_only_null_sources_becomes_empty_dir() {
        let pod = defaulted(
            "",
            "Pod",
            json!({"spec": {"containers": [], "volumes": [{"name": "v", "secret": null}]}}),
        );
        assert_eq!(pod["spec"]["volumes"][0]["emptyDir"], json!({}));
    }

    #[test]
    fn pod_container_requests_default_to_limits() {
        let pod = pod_with(json!({"name": "c", "image": "x:1",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}}));
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["requests"],
            json!({"cpu": "500m", "memory": "1Gi"})
        );
    }

    #[test]
    fn host_network_pod_ports_default_host_port_to_container_port() {
        let pod = defaulted(
            "",
            "Pod",
            json!({"spec": {"hostNetwork": true,
                "containers": [{"name": "c", "image": "x:1", "ports": [{"containerPort": 8080}]}]}}),
        );
        assert_eq!(pod["spec"]["containers"][0]["ports"][0]["hostPort"], 8080);
    }

    #[test]
    fn volumes_get_source_defaults() {
        let pod = defaulted(
            "",
            "Pod",
            json!({"spec": {"containers": [], "volumes": [
                {"name": "bare"},
                {"name": "s", "secret": {"secretName": "s"}},
                {"name": "cm", "configMap": {"name": "cm"}},
                {"name": "h", "hostPath": {"path": "/tmp"}},
                {"name": "d", "downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}},
                {"name": "p", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
                {"name": "e", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
            ]}}),
        );
        let v = &pod["spec"]["volumes"];
        assert_eq!(v[0], json!({"name": "bare", "emptyDir": {}}));
        assert_eq!(v[1]["secret"]["defaultMode"], 420);
        assert_eq!(v[2]["configMap"]["defaultMode"], 420);
        assert_eq!(v[3]["hostPath"]["type"], "");
        assert_eq!(v[4]["downwardAPI"]["defaultMode"], 420);
        assert_eq!(
            v[4]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"],
            "v1"
        );
        assert_eq!(v[5]["projected"]["defaultMode"], 420);
        assert_eq!(
            v[5]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3600
        );
        assert_eq!(
            v[6]["ephemeral"]["volumeClaimTemplate"]["spec"]["volumeMode"],
            "Filesystem"
        );
    }

    #[test]
    fn explicit_values_are_never_overwritten() {
        let pod = defaulted(
            "",
            "Pod",
            json!({"spec": {
                "restartPolicy": "Never", "dnsPolicy": "Default",
                "terminationGracePeriodSeconds": 0, "schedulerName": "mine",
                "securityContext": {"runAsUser": 1}, "enableServiceLinks": false,
                "containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "Never",
                    "terminationMessagePath": "/x", "terminationMessagePolicy": "FallbackToLogsOnError",
                    "ports": [{"containerPort": 53, "protocol": "UDP"}],
                    "livenessProbe": {"exec": {"command": ["true"]}, "timeoutSeconds": 5,
                        "periodSeconds": 2, "successThreshold": 1, "failureThreshold": 9}}],
                "volumes": [{"name": "s", "secret": {"secretName": "s", "defaultMode": 256}}]}}),
        );
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "Never");
        assert_eq!(spec["dnsPolicy"], "Default");
        assert_eq!(spec["terminationGracePeriodSeconds"], 0);
        assert_eq!(spec["schedulerName"], "mine");
        assert_eq!(spec["securityContext"], json!({"runAsUser": 1}));
        assert_eq!(spec["enableServiceLinks"], false);
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Never");
        assert_eq!(c["terminationMessagePath"], "/x");
        assert_eq!(c["terminationMessagePolicy"], "FallbackToLogsOnError");
        assert_eq!(c["ports"][0]["protocol"], "UDP");
        assert_eq!(c["livenessProbe"]["timeoutSeconds"], 5);
        assert_eq!(c["livenessProbe"]["failureThreshold"], 9);
        assert_eq!(spec["volumes"][0]["secret"]["defaultMode"], 256);

        let d = defaulted(
            "apps",
            "Deployment",
            json!({"spec": {"replicas": 0, "revisionHistoryLimit": 2, "progressDeadlineSeconds": 60,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0}}}}),
        );
        assert_eq!(d["spec"]["replicas"], 0);
        assert_eq!(d["spec"]["revisionHistoryLimit"], 2);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 60);
        assert_eq!(
            d["spec"]["strategy"]["rollingUpdate"],
            json!({"maxSurge": 0, "maxUnavailable": "25%"})
        );
    }

    #[test]
    fn malformed_objects_do_not_panic() {
        for kind in [
            ("", "Pod"),
            ("", "ReplicationController"),
            ("", "LimitRange"),
            ("apps", "Deployment"),
            ("apps", "StatefulSet"),
            ("batch", "Job"),
            ("batch", "CronJob"),
            ("networking.k8s.io", "NetworkPolicy"),
            ("rbac.authorization.k8s.io", "RoleBinding"),
        ] {
            for obj in [
                json!(null),
                json!("x"),
                json!({"spec": 3}),
                json!({"spec": {"template": {"spec": {"containers": [1, null, "x"], "volumes": "v"}}}}),
                json!({"spec": {"containers": {"a": 1}, "limits": [3]}, "subjects": [null]}),
            ] {
                let _ = defaulted(kind.0, kind.1, obj);
            }
        }
    }

    #[test]
    fn pod_templates_get_pod_spec_defaults_but_not_service_links() {
        let d = defaulted(
            "apps",
            "Deployment",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
        );
        let spec = &d["spec"]["template"]["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "Always");
        assert!(spec.get("enableServiceLinks").is_none());

        let cj = defaulted(
            "batch",
            "CronJob",
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": []}}}}}}),
        );
        let job_spec = &cj["spec"]["jobTemplate"]["spec"];
        assert_eq!(job_spec["template"]["spec"]["dnsPolicy"], "ClusterFirst");
        assert_eq!(job_spec["template"]["spec"]["restartPolicy"], "OnFailure");
        assert!(job_spec.get("backoffLimit").is_none());

        let pt = defaulted(
            "",
            "PodTemplate",
            json!({"template": {"spec": {"containers": []}}}),
        );
        assert_eq!(pt["template"]["spec"]["schedulerName"], "default-scheduler");
    }

    #[test]
    fn deployment_gets_rolling_update_25_percent_defaults() {
        let d = defaulted("apps", "Deployment", json!({"spec": {}}));
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert!(d["spec"].get("minReadySeconds").is_none());
    }

    #[test]
    fn recreate_deployment_gets_no_rolling_update() {
        let d = defaulted(
            "apps",
            "Deployment",
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
        );
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn replica_set_defaults_one_replica() {
        let rs = defaulted("apps", "ReplicaSet", json!({"spec": {}}));
        assert_eq!(rs["spec"]["replicas"], 1);
    }

    #[test]
    fn replication_controller_selector_and_labels_follow_template() {
        let rc = defaulted(
            "",
            "ReplicationController",
            json!({"metadata": {"name": "rc"},
                   "spec": {"template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": []}}}}),
        );
        assert_eq!(rc["spec"]["selector"], json!({"app": "a"}));
        assert_eq!(rc["metadata"]["labels"], json!({"app": "a"}));
        assert_eq!(rc["spec"]["replicas"], 1);
        assert_eq!(rc["spec"]["template"]["spec"]["restartPolicy"], "Always");

        let explicit = defaulted(
            "",
            "ReplicationController",
            json!({"metadata": {"labels": {"x": "y"}},
                   "spec": {"selector": {"app": "b"}, "template": {"metadata": {"labels": {"app": "a"}}}}}),
        );
        assert_eq!(explicit["spec"]["selector"], json!({"app": "b"}));
        assert_eq!(explicit["metadata"]["labels"], json!({"x": "y"}));
    }

    #[test]
    fn stateful_set_gets_ordered_ready_partition_zero_and_retain_policy() {
        let s = defaulted(
            "apps",
            "StatefulSet",
            json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {}}]}}),
        );
        let spec = &s["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(
            spec["volumeClaimTemplates"][0]["spec"]["volumeMode"],
            "Filesystem"
        );
        assert_eq!(
            spec["volumeClaimTemplates"][0]["status"]["phase"],
            "Pending"
        );
    }

    #[test]
    fn daemon_set_gets_rolling_update_max_unavailable_one_max_surge_zero() {
        let ds = defaulted("apps", "DaemonSet", json!({"spec": {}}));
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
        let on_delete = defaulted(
            "apps",
            "DaemonSet",
            json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
        );
        assert_eq!(
            on_delete["spec"]["updateStrategy"],
            json!({"type": "OnDelete"})
        );
    }

    #[test]
    fn job_without_completions_or_parallelism_gets_one_of_each() {
        let job = defaulted(
            "batch",
            "Job",
            json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}}}}),
        );
        let spec = &job["spec"];
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["manualSelector"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        // Not OnFailure/Never: validation rejects it, as upstream does.
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(job["metadata"]["labels"], json!({"a": "b"}));
    }

    #[test]
    fn job_with_only_parallelism_leaves_completions_unset() {
        let job = defaulted("batch", "Job", json!({"spec": {"parallelism": 3}}));
        assert!(job["spec"].get("completions").is_none());
        assert_eq!(job["spec"]["parallelism"], 3);
        let job = defaulted("batch", "Job", json!({"spec": {"completions": 5}}));
        assert_eq!(job["spec"]["completions"], 5);
        assert_eq!(job["spec"]["parallelism"], 1);
    }

    #[test]
    fn job_backoff_limit_per_index_and_pod_failure_policy_change_defaults() {
        let job = defaulted(
            "batch",
            "Job",
            json!({"spec": {"backoffLimitPerIndex": 1,
                "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}}}),
        );
        let spec = &job["spec"];
        assert_eq!(spec["backoffLimit"], i32::MAX);
        assert_eq!(spec["podReplacementPolicy"], "Failed");
        assert_eq!(
            spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"],
            "True"
        );
    }

    #[test]
    fn cron_job_gets_allow_and_history_limits() {
        let cj = defaulted("batch", "CronJob", json!({"spec": {}}));
        let spec = &cj["spec"];
        assert_eq!(spec["concurrencyPolicy"], "Allow");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["successfulJobsHistoryLimit"], 3);
        assert_eq!(spec["failedJobsHistoryLimit"], 1);
    }

    #[test]
    fn secret_defaults_to_opaque() {
        assert_eq!(defaulted("", "Secret", json!({}))["type"], "Opaque");
        let merged = defaulted(
            "",
            "Secret",
            json!({"data": {"a": "eA==", "b": "eQ=="}, "stringData": {"b": "z"}}),
        );
        assert_eq!(merged["data"], json!({"a": "eA==", "b": "eg=="}));
        assert!(merged.get("stringData").is_none());
        let tls = defaulted("", "Secret", json!({"type": "kubernetes.io/tls"}));
        assert_eq!(tls["type"], "kubernetes.io/tls");
    }

    #[test]
    fn volumes_claims_default_filesystem_mode_and_pending_phase() {
        let pvc = defaulted("", "PersistentVolumeClaim", json!({"spec": {}}));
        assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pvc["status"]["phase"], "Pending");
        let pv = defaulted(
            "",
            "PersistentVolume",
            json!({"spec": {"hostPath": {"path": "/d"}}}),
        );
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pv["spec"]["hostPath"]["type"], "");
        assert_eq!(pv["status"]["phase"], "Pending");
    }

    #[test]
    fn limit_range_container_defaults_follow_max_then_default_then_min() {
        let lr = defaulted(
            "",
            "LimitRange",
            json!({"spec": {"limits": [
                {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}},
                {"type": "Pod", "max": {"cpu": "2"}},
            ]}}),
        );
        let item = &lr["spec"]["limits"][0];
        assert_eq!(item["default"], json!({"cpu": "2"}));
        assert_eq!(item["defaultRequest"], json!({"cpu": "2", "memory": "1Mi"}));
        assert!(lr["spec"]["limits"][1].get("default").is_none());
    }

    #[test]
    fn node_allocatable_defaults_to_capacity() {
        let node = defaulted("", "Node", json!({"status": {"capacity": {"cpu": "4"}}}));
        assert_eq!(node["status"]["allocatable"], json!({"cpu": "4"}));
    }

    #[test]
    fn endpoints_and_endpoint_slice_ports_default_tcp() {
        let ep = defaulted(
            "",
            "Endpoints",
            json!({"subsets": [{"ports": [{"port": 80}]}]}),
        );
        assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
        let slice = defaulted(
            "discovery.k8s.io",
            "EndpointSlice",
            json!({"ports": [{"port": 80}]}),
        );
        assert_eq!(
            slice["ports"][0],
            json!({"port": 80, "name": "", "protocol": "TCP"})
        );
    }

    #[test]
    fn hpa_defaults_min_replicas_cpu_metric_and_given_behavior() {
        let mut v2 = json!({"spec": {"behavior": {"scaleDown": {"selectPolicy": "Min"}}}});
        apply(
            &info("autoscaling", "v2", "HorizontalPodAutoscaler"),
            &mut v2,
        );
        let spec = &v2["spec"];
        assert_eq!(spec["minReplicas"], 1);
        assert_eq!(
            spec["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        assert_eq!(spec["behavior"]["scaleUp"]["stabilizationWindowSeconds"], 0);
        assert_eq!(spec["behavior"]["scaleUp"]["policies"], scale_up_policies());
        assert_eq!(spec["behavior"]["scaleDown"]["selectPolicy"], "Min");
        assert_eq!(
            spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
            300
        );

        let mut v1 = json!({"spec": {}});
        apply(
            &info("autoscaling", "v1", "HorizontalPodAutoscaler"),
            &mut v1,
        );
        assert_eq!(v1, json!({"spec": {"minReplicas": 1}}));

        let mut no_behavior = json!({"spec": {"minReplicas": 2}});
        apply(
            &info("autoscaling", "v2", "HorizontalPodAutoscaler"),
            &mut no_behavior,
        );
        assert!(no_behavior["spec"].get("behavior").is_none());
        assert_eq!(no_behavior["spec"]["minReplicas"], 2);
    }

    #[test]
    fn network_policy_gets_policy_types_and_tcp_ports() {
        let np = defaulted(
            "networking.k8s.io",
            "NetworkPolicy",
            json!({"spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}}),
        );
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress"]));
        assert_eq!(np["spec"]["ingress"][0]["ports"][0]["protocol"], "TCP");
        let egress = defaulted(
            "networking.k8s.io",
            "NetworkPolicy",
            json!({"spec": {"podSelector": {}, "egress": [{}]}}),
        );
        assert_eq!(egress["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    }

    #[test]
    fn priority_storage_and_csi_classes_get_defaults() {
        let pc = defaulted("scheduling.k8s.io", "PriorityClass", json!({"value": 1}));
        assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
        let sc = defaulted(
            "storage.k8s.io",
            "StorageClass",
            json!({"provisioner": "p"}),
        );
        assert_eq!(sc["reclaimPolicy"], "Delete");
        assert_eq!(sc["volumeBindingMode"], "Immediate");
        let csi = defaulted("storage.k8s.io", "CSIDriver", json!({"spec": {}}));
        assert_eq!(
            csi["spec"],
            json!({"attachRequired": true, "podInfoOnMount": false, "storageCapacity": false,
                   "fsGroupPolicy": "ReadWriteOnceWithFSType", "volumeLifecycleModes": ["Persistent"],
                   "requiresRepublish": false, "seLinuxMount": false})
        );
    }

    #[test]
    fn rbac_subjects_and_role_ref_get_api_groups() {
        let rb = defaulted(
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            json!({"roleRef": {"kind": "ClusterRole", "name": "r"},
                   "subjects": [{"kind": "User", "name": "u"}, {"kind": "Group", "name": "g"},
                                {"kind": "ServiceAccount", "name": "s", "namespace": "n"}]}),
        );
        assert_eq!(rb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
        assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
        assert_eq!(rb["subjects"][1]["apiGroup"], "rbac.authorization.k8s.io");
        assert!(rb["subjects"][2].get("apiGroup").is_none());
    }

    #[test]
    fn kinds_without_defaults_are_untouched() {
        let cm = json!({"data": {"a": "b"}});
        assert_eq!(defaulted("", "ConfigMap", cm.clone()), cm);
    }
}
