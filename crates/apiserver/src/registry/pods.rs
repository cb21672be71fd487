//! core/v1 Pod: QoS class, graceful deletion, what an update may change,
//! and the binding subresource. Decoding, names and the table come from
//! the generic entry this strategy wraps.

use std::sync::Arc;

use apimachinery::{ApiError, ResourceInfo, StatusCause};
use serde_json::{json, Value};

use super::{validation, DeleteAction, HookContext, Strategy};
use crate::table::Column;

pub struct PodStrategy {
    pub inner: Arc<dyn Strategy>,
    pub info: ResourceInfo,
}

impl PodStrategy {
    pub fn new(inner: Arc<dyn Strategy>) -> Self {
        let mut info = inner.info().clone();
        info.subresources = &["binding", "ephemeralcontainers", "eviction", "status"];
        PodStrategy { inner, info }
    }
}

/// Upstream's default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE_SECONDS: i64 = 30;

fn resources_of<'a>(c: &'a Value, which: &str) -> Option<&'a serde_json::Map<String, Value>> {
    c.pointer(&format!("/resources/{which}"))
        .and_then(Value::as_object)
}

/// Guaranteed when every container sets cpu and memory limits equal to its
/// requests; BestEffort when none sets any; Burstable otherwise.
pub fn qos_class(pod: &Value) -> &'static str {
    let mut containers: Vec<&Value> = Vec::new();
    for field in ["initContainers", "containers"] {
        if let Some(list) = pod
            .pointer(&format!("/spec/{field}"))
            .and_then(Value::as_array)
        {
            containers.extend(list);
        }
    }
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in containers {
        let requests = resources_of(c, "requests");
        let limits = resources_of(c, "limits");
        let relevant = |m: Option<&serde_json::Map<String, Value>>| {
            m.map_or(0, |m| {
                m.keys().filter(|k| *k == "cpu" || *k == "memory").count()
            })
        };
        if relevant(requests) + relevant(limits) > 0 {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(res));
            // A request defaults to its limit.
            let request = requests.and_then(|r| r.get(res)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// The spec with the fields an update may change blanked out.
fn immutable_view(spec: &Value) -> Value {
    let mut v = spec.clone();
    for field in ["containers", "initContainers"] {
        if let Some(list) = v.get_mut(field).and_then(Value::as_array_mut) {
            for c in list {
                if let Some(c) = c.as_object_mut() {
                    c.remove("image");
                }
            }
        }
    }
    if let Some(m) = v.as_object_mut() {
        for field in [
            "activeDeadlineSeconds",
            "tolerations",
            "terminationGracePeriodSeconds",
            "schedulingGates",
        ] {
            m.remove(field);
        }
    }
    v
}

const IMMUTABLE_SPEC_MESSAGE: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Fields a container may have that an ephemeral container may not.
const NOT_FOR_EPHEMERAL: [&str; 8] = [
    "lifecycle",
    "livenessProbe",
    "ports",
    "readinessProbe",
    "resizePolicy",
    "resources",
    "restartPolicy",
    "startupProbe",
];

fn names_of(spec: &Value, field: &str) -> Vec<String> {
    spec.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// An update through `pods/<name>/ephemeralcontainers`, as upstream
/// validates it: ephemeral containers may be added, never changed or
/// removed; each needs a unique DNS-label name and an image, may only
/// target one of the pod's containers, and may not set ports, probes,
/// lifecycle hooks, resources or a restart policy.
pub fn validate_ephemeral_containers_update(new: &Value, old: &Value) -> Vec<StatusCause> {
    let path = "spec.ephemeralContainers";
    let spec = new.get("spec").unwrap_or(&Value::Null);
    let empty = Vec::new();
    let new_list = spec
        .get("ephemeralContainers")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let old_list = old
        .pointer("/spec/ephemeralContainers")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let mut causes = Vec::new();
    for (i, before) in old_list.iter().enumerate() {
        let name = before.get("name").and_then(Value::as_str).unwrap_or("");
        match new_list
            .iter()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
        {
            None => causes.push(StatusCause::forbidden(
                &format!("{path}[{i}]"),
                &format!("existing ephemeral containers {name:?} may not be removed"),
            )),
            Some(after) if after != before => causes.push(StatusCause::forbidden(
                &format!("{path}[{i}]"),
                &format!("existing ephemeral containers {name:?} may not be changed"),
            )),
            Some(_) => {}
        }
    }
    let mut targets = names_of(spec, "containers");
    targets.extend(names_of(spec, "initContainers"));
    let mut seen = targets.clone();
    for (i, c) in new_list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            causes.push(StatusCause::required(&format!("{at}.name")));
        } else if let Some(problem) = apimachinery::meta::dns1123_label_errors(name).first() {
            causes.push(StatusCause::invalid(
                &format!("{at}.name"),
                &json!(name),
                problem,
            ));
        } else if seen.iter().any(|n| n == name) {
            causes.push(validation::duplicate(&format!("{at}.name"), name));
        } else {
            seen.push(name.to_string());
        }
        require_image(c, &at, &mut causes);
        if let Some(target) = c.get("targetContainerName").and_then(Value::as_str) {
            if !target.is_empty() && !targets.iter().any(|n| n == target) {
                causes.push(StatusCause {
                    reason: "FieldValueNotFound".into(),
                    message: format!("Not found: {target:?}"),
                    field: format!("{at}.targetContainerName"),
                });
            }
        }
        for field in NOT_FOR_EPHEMERAL {
            let set = match c.get(field) {
                None | Some(Value::Null) => false,
                Some(Value::Object(m)) => !m.is_empty(),
                Some(Value::Array(a)) => !a.is_empty(),
                Some(_) => true,
            };
            if set {
                causes.push(StatusCause::forbidden(
                    &format!("{at}.{field}"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
    }
    causes
}

/// A container's image is required.
fn require_image(container: &Value, at: &str, causes: &mut Vec<StatusCause>) {
    if container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        causes.push(StatusCause::required(&format!("{at}.image")));
    }
}

/// A container list's names and images, as upstream's `validateContainers`
/// checks them: a DNS-label name, unique across `seen`, and an image.
fn validate_containers(
    list: &[Value],
    path: &str,
    seen: &mut Vec<String>,
    causes: &mut Vec<StatusCause>,
) {
    for (i, c) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            causes.push(StatusCause::required(&format!("{at}.name")));
        } else {
            for problem in apimachinery::meta::dns1123_label_errors(name) {
                causes.push(StatusCause::invalid(
                    &format!("{at}.name"),
                    &json!(name),
                    &problem,
                ));
            }
        }
        if seen.iter().any(|n| n == name) {
            causes.push(validation::duplicate(&format!("{at}.name"), name));
        } else {
            seen.push(name.to_string());
        }
        require_image(c, &at, causes);
    }
}

/// The pod-spec rules, in one place for pods and every pod template
/// (`path` is `spec` for a pod, `spec.template.spec` for a workload):
/// containers present, container names (DNS labels, unique across
/// containers and init containers) and images, and the restart policy.
pub fn validate_pod_spec(spec: &Value, path: &str) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    let empty = Vec::new();
    let list = |field: &str| spec.get(field).and_then(Value::as_array).unwrap_or(&empty);
    let containers = list("containers");
    if containers.is_empty() {
        causes.push(StatusCause::required(&format!("{path}.containers")));
    }
    let mut seen = Vec::new();
    validate_containers(
        containers,
        &format!("{path}.containers"),
        &mut seen,
        &mut causes,
    );
    validate_containers(
        list("initContainers"),
        &format!("{path}.initContainers"),
        &mut seen,
        &mut causes,
    );
    match spec.get("restartPolicy").and_then(Value::as_str) {
        None | Some("Always" | "OnFailure" | "Never") => {}
        Some("") => causes.push(StatusCause::required(&format!("{path}.restartPolicy"))),
        Some(other) => causes.push(validation::not_supported(
            &format!("{path}.restartPolicy"),
            &validation::go_string(other),
            &["Always", "OnFailure", "Never"],
        )),
    }
    causes
}

/// A pod template (`ValidatePodTemplateSpec`) at `path` (e.g.
/// `spec.template`): its labels, its pod spec, and no ephemeral containers.
pub fn validate_pod_template(template: Option<&Value>, path: &str) -> Vec<StatusCause> {
    let template = template.unwrap_or(&Value::Null);
    // Upstream reports template labels under `<path>.labels`.
    let mut causes = validation::validate_labels(
        template.pointer("/metadata/labels"),
        &format!("{path}.labels"),
    );
    causes.extend(validation::validate_annotations(
        template.pointer("/metadata/annotations"),
        &format!("{path}.annotations"),
    ));
    let spec = template.get("spec").unwrap_or(&Value::Null);
    causes.extend(validate_pod_spec(spec, &format!("{path}.spec")));
    if spec
        .get("ephemeralContainers")
        .and_then(Value::as_array)
        .is_some_and(|l| !l.is_empty())
    {
        causes.push(StatusCause::forbidden(
            &format!("{path}.spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    causes
}

#[async_trait::async_trait]
impl Strategy for PodStrategy {
    forward_to_inner!(
        decode,
        decode_json,
        prepare_for_update,
        delete_action,
        columns,
        cells
    );

    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        self.inner.prepare_for_create(obj);
        obj["status"] = json!({"phase": "Pending", "qosClass": qos_class(obj)});
    }

    fn validate(&self, obj: &Value) -> Vec<StatusCause> {
        let mut causes = self.inner.validate(obj);
        causes.extend(validate_pod_spec(
            obj.get("spec").unwrap_or(&Value::Null),
            "spec",
        ));
        causes
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<StatusCause> {
        let mut causes = self.validate(new);
        let (new_spec, old_spec) = (
            new.get("spec").unwrap_or(&Value::Null),
            old.get("spec").unwrap_or(&Value::Null),
        );
        // An unchanged spec (a status or metadata write) breaks no rule.
        if new_spec == old_spec {
            return causes;
        }
        // Binding sets nodeName through its own subresource only.
        if immutable_view(new_spec) != immutable_view(old_spec) {
            causes.push(StatusCause::forbidden("spec", IMMUTABLE_SPEC_MESSAGE));
        }
        let tolerations = |spec: &'_ Value| -> Vec<Value> {
            spec.get("tolerations")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let new_tolerations = tolerations(new_spec);
        if !tolerations(old_spec)
            .iter()
            .all(|t| new_tolerations.contains(t))
        {
            causes.push(StatusCause::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
        }
        causes
    }

    fn grace_period_seconds(&self, obj: &Value, options: &Value) -> Option<i64> {
        let phase = obj
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        let scheduled = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        // Unscheduled and finished pods have nothing to stop: they go at once.
        if !scheduled || phase == "Succeeded" || phase == "Failed" {
            return Some(0);
        }
        let requested = options.get("gracePeriodSeconds").and_then(Value::as_i64);
        let default = obj
            .pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(DEFAULT_GRACE_SECONDS);
        Some(requested.unwrap_or(default).max(0))
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn has_status_subresource(&self) -> bool {
        true
    }

    async fn after_delete(&self, ctx: &HookContext<'_>, obj: &Value) {
        self.inner.after_delete(ctx, obj).await;
    }
}

/// Apply a `Binding` to a pod: set its node, or refuse if it has one.
pub fn bind(pod: &mut Value, binding: &Value) -> Result<(), ApiError> {
    let name = apimachinery::meta::name(pod).to_string();
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "Binding",
                "",
                &name,
                vec![StatusCause::required("target.name")],
            )
        })?;
    if let Some(kind) = binding.pointer("/target/kind").and_then(Value::as_str) {
        if !kind.is_empty() && kind != "Node" {
            return Err(ApiError::invalid(
                "Binding",
                "",
                &name,
                vec![StatusCause::invalid(
                    "target.kind",
                    &json!(kind),
                    "must be empty or 'Node'",
                )],
            ));
        }
    }
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(ApiError::conflict(
            "pods",
            "",
            &name,
            "pod is being deleted, cannot be assigned to a host",
        ));
    }
    if let Some(current) = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        return Err(ApiError::conflict(
            "pods",
            "",
            &name,
            &format!("pod {name} is already assigned to node \"{current}\""),
        ));
    }
    pod["spec"]["nodeName"] = json!(node);
    let now = apimachinery::meta::now_rfc3339();
    let condition = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
    let conditions = pod["status"]
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    if let Some(Value::Array(list)) = conditions {
        list.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
        list.push(condition);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_class_follows_requests_and_limits() {
        let none = json!({"spec": {"containers": [{"name": "a", "image": "x"}]}});
        assert_eq!(qos_class(&none), "BestEffort");
        let equal = json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        assert_eq!(qos_class(&equal), "Guaranteed");
        let some = json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}]}});
        assert_eq!(qos_class(&some), "Burstable");
    }

    #[test]
    fn pod_spec_checks_container_names_images_and_restart_policy() {
        let spec = json!({
            "restartPolicy": "Sometimes",
            "containers": [{"name": "Web", "image": "nginx"}, {"name": "log"}],
            "initContainers": [{"name": "log", "image": "busybox"}],
        });
        let causes = validate_pod_spec(&spec, "spec.template.spec");
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.template.spec.containers[0].name",
                "spec.template.spec.containers[1].image",
                "spec.template.spec.initContainers[0].name",
                "spec.template.spec.restartPolicy",
            ]
        );
        assert_eq!(causes[2].message, r#"Duplicate value: "log""#);
        assert_eq!(
            causes[3].message,
            r#"Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#
        );
        assert_eq!(
            validate_pod_spec(&json!({}), "spec")[0].field,
            "spec.containers"
        );
    }

    #[test]
    fn pod_templates_may_not_carry_ephemeral_containers() {
        let template = json!({
            "metadata": {"labels": {"bad key": "x"}},
            "spec": {"containers": [{"name": "a", "image": "x"}], "ephemeralContainers": [{"name": "d"}]},
        });
        let causes = validate_pod_template(Some(&template), "spec.template");
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.template.labels",
                "spec.template.spec.ephemeralContainers"
            ]
        );
    }

    #[test]
    fn binding_sets_the_node_once() {
        let mut pod =
            json!({"metadata": {"name": "p"}, "spec": {}, "status": {"phase": "Pending"}});
        bind(&mut pod, &json!({"target": {"kind": "Node", "name": "n1"}})).unwrap();
        assert_eq!(pod["spec"]["nodeName"], "n1");
        assert_eq!(pod["status"]["conditions"][0]["type"], "PodScheduled");
        assert_eq!(
            bind(&mut pod, &json!({"target": {"name": "n2"}}))
                .unwrap_err()
                .code,
            409
        );
    }
}
