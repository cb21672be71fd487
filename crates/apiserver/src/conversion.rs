//! Version conversion for the resources served in two API versions from one
//! datastore key: core/v1 and events.k8s.io/v1 Events (stored as core/v1),
//! autoscaling/v2 and autoscaling/v1 HorizontalPodAutoscalers (stored as
//! autoscaling/v2).
//!
//! Objects are converted into the storage version before they are written
//! and into the request's version when they are read, listed, watched or
//! patched. Conversion is driven by the object's own `apiVersion`, so an
//! object stored in the other version (by an older server) reads correctly
//! too. Every other resource has one version and passes through untouched.

use std::sync::Arc;

use apimachinery::ResourceInfo;
use serde_json::{json, Map, Value};

use crate::cacher::Cached;

/// The apiVersion objects of `info`'s resource are stored in, when the
/// resource is served in more than one version.
fn storage_version(info: &ResourceInfo) -> Option<&'static str> {
    match (info.group, info.plural) {
        ("", "events") | ("events.k8s.io", "events") => Some("v1"),
        ("autoscaling", "horizontalpodautoscalers") => Some("autoscaling/v2"),
        _ => None,
    }
}

/// Whether objects of `info`'s resource may need converting on their way
/// to or from the datastore.
pub fn applies(info: &ResourceInfo) -> bool {
    storage_version(info).is_some()
}

/// `obj` (in the request's version) as it is stored.
pub fn for_storage(info: &ResourceInfo, obj: &Value) -> Option<Value> {
    let to = storage_version(info)?;
    (api_version_of(obj) != to).then(|| convert(obj.clone(), to))
}

/// `obj` (as stored) in the version `info` serves.
pub fn for_client(info: &ResourceInfo, obj: Value) -> Value {
    if !applies(info) {
        return obj;
    }
    let to = info.api_version();
    if api_version_of(&obj) == to {
        return obj;
    }
    convert(obj, &to)
}

/// A cached object in the version `info` serves (the same object when it
/// already is).
pub fn cached_for_client(info: &ResourceInfo, cached: Arc<Cached>) -> Arc<Cached> {
    if !applies(info) {
        return cached;
    }
    if cached.api_version().unwrap_or_default() == info.api_version() {
        return cached;
    }
    Arc::new(Cached::new(for_client(info, cached.decode())))
}

fn api_version_of(obj: &Value) -> &str {
    obj.get("apiVersion").and_then(Value::as_str).unwrap_or("")
}

/// `obj` as `to`, from whichever version it carries.
fn convert(obj: Value, to: &str) -> Value {
    let from = api_version_of(&obj).to_string();
    let mut out = match (from.as_str(), to) {
        ("v1", "events.k8s.io/v1") => rename_fields(obj, EVENT_FIELDS, false),
        ("events.k8s.io/v1", "v1") => rename_fields(obj, EVENT_FIELDS, true),
        ("autoscaling/v2", "autoscaling/v1") => hpa::v2_to_v1(obj),
        ("autoscaling/v1", "autoscaling/v2") => hpa::v1_to_v2(obj),
        _ => obj,
    };
    out["apiVersion"] = json!(to);
    out
}

/// core/v1 Event field names and their events.k8s.io/v1 names.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

/// The top-level fields of `obj` renamed core -> events.k8s.io (or back
/// with `reverse`); fields with the same name in both stay.
fn rename_fields(obj: Value, names: &[(&str, &str)], reverse: bool) -> Value {
    let Value::Object(map) = obj else {
        return obj;
    };
    let mut out = Map::with_capacity(map.len());
    for (key, value) in map {
        let renamed = names.iter().find_map(|(core, new)| {
            let (from, to) = if reverse { (new, core) } else { (core, new) };
            (key == *from).then_some(*to)
        });
        // A field that exists only in the other version (say `note` on a
        // core Event) has no place here: drop it as a decode would.
        let foreign = names.iter().any(|(core, new)| {
            let other = if reverse { core } else { new };
            key == *other
        });
        match renamed {
            Some(to) => {
                out.insert(to.to_string(), value);
            }
            None if !foreign => {
                out.insert(key, value);
            }
            None => {}
        }
    }
    Value::Object(out)
}

/// autoscaling/v1 keeps what it cannot express (metrics beyond a CPU
/// utilization target, metric statuses, conditions, behavior) in
/// annotations, as upstream does, so a v2 object survives a v1 round trip.
mod hpa {
    use serde_json::{json, Map, Value};

    const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
    const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
    const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
    const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";
    /// The CPU target autoscaling/v1 implies when it names none.
    const DEFAULT_CPU_UTILIZATION: i64 = 80;

    fn is_cpu_resource(metric: &Value) -> bool {
        metric.get("type").and_then(Value::as_str) == Some("Resource")
            && metric.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
    }

    fn encode(v: &Value) -> Value {
        Value::String(serde_json::to_string(v).unwrap_or_default())
    }

    pub fn v2_to_v1(mut obj: Value) -> Value {
        let spec = obj.get("spec").cloned().unwrap_or(json!({}));
        let status = obj.get("status").cloned();
        let mut annotations: Map<String, Value> = obj
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let metrics = spec
            .get("metrics")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();

        let mut v1_spec = Map::new();
        for field in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
            if let Some(v) = spec.get(field) {
                v1_spec.insert(field.into(), v.clone());
            }
        }
        if let Some(cpu) = metrics.iter().find(|m| is_cpu_resource(m)) {
            if let Some(u) = cpu.pointer("/resource/target/averageUtilization") {
                v1_spec.insert("targetCPUUtilizationPercentage".into(), u.clone());
            }
        }
        let others: Vec<Value> = metrics
            .iter()
            .filter(|m| {
                !(is_cpu_resource(m)
                    && m.pointer("/resource/target/averageUtilization")
                        .is_some_and(|u| !u.is_null()))
            })
            .map(metric_spec_to_v1)
            .collect();
        if !others.is_empty() {
            annotations.insert(METRICS.into(), encode(&Value::Array(others)));
        }
        if let Some(behavior) = spec.get("behavior").filter(|b| !b.is_null()) {
            annotations.insert(BEHAVIOR.into(), encode(behavior));
        }

        let mut v1_status = Map::new();
        if let Some(status) = status.as_ref().and_then(Value::as_object) {
            for field in [
                "observedGeneration",
                "lastScaleTime",
                "currentReplicas",
                "desiredReplicas",
            ] {
                if let Some(v) = status.get(field) {
                    v1_status.insert(field.into(), v.clone());
                }
            }
            let current = status
                .get("currentMetrics")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(u) = current
                .iter()
                .filter(|m| is_cpu_resource(m))
                .find_map(|m| m.pointer("/resource/current/averageUtilization"))
            {
                v1_status.insert("currentCPUUtilizationPercentage".into(), u.clone());
            }
            if !current.is_empty() {
                let v1: Vec<Value> = current.iter().map(metric_status_to_v1).collect();
                annotations.insert(CURRENT_METRICS.into(), encode(&Value::Array(v1)));
            }
            if let Some(conditions) = status
                .get("conditions")
                .filter(|c| c.as_array().is_some_and(|c| !c.is_empty()))
            {
                annotations.insert(CONDITIONS.into(), encode(conditions));
            }
        }

        set_annotations(&mut obj, annotations);
        obj["spec"] = Value::Object(v1_spec);
        if status.is_some() {
            obj["status"] = Value::Object(v1_status);
        }
        obj
    }

    pub fn v1_to_v2(mut obj: Value) -> Value {
        let spec = obj.get("spec").cloned().unwrap_or(json!({}));
        let status = obj.get("status").cloned();
        let mut annotations: Map<String, Value> = obj
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut take = |name: &str| -> Option<Value> {
            let text = annotations.remove(name)?;
            serde_json::from_str(text.as_str()?).ok()
        };
        let other_metrics = take(METRICS);
        let current_metrics = take(CURRENT_METRICS);
        let conditions = take(CONDITIONS);
        let behavior = take(BEHAVIOR);

        let mut v2_spec = Map::new();
        for field in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
            if let Some(v) = spec.get(field) {
                v2_spec.insert(field.into(), v.clone());
            }
        }
        let mut metrics = Vec::new();
        if let Some(cpu) = spec
            .get("targetCPUUtilizationPercentage")
            .filter(|v| !v.is_null())
        {
            metrics.push(cpu_metric(cpu.clone()));
        }
        if let Some(Value::Array(others)) = other_metrics {
            metrics.extend(others.iter().map(metric_spec_to_v2));
        }
        if metrics.is_empty() {
            metrics.push(cpu_metric(json!(DEFAULT_CPU_UTILIZATION)));
        }
        v2_spec.insert("metrics".into(), Value::Array(metrics));
        if let Some(behavior) = behavior {
            v2_spec.insert("behavior".into(), behavior);
        }

        let mut v2_status = Map::new();
        if let Some(status) = status.as_ref().and_then(Value::as_object) {
            for field in [
                "observedGeneration",
                "lastScaleTime",
                "currentReplicas",
                "desiredReplicas",
            ] {
                if let Some(v) = status.get(field) {
                    v2_status.insert(field.into(), v.clone());
                }
            }
            // The annotation holds more than the CPU figure: prefer it.
            let current = match current_metrics {
                Some(Value::Array(list)) => list.iter().map(metric_status_to_v2).collect(),
                _ => match status
                    .get("currentCPUUtilizationPercentage")
                    .filter(|v| !v.is_null())
                {
                    Some(u) => vec![json!({
                        "type": "Resource",
                        "resource": {"name": "cpu", "current": {"averageUtilization": u}},
                    })],
                    None => Vec::new(),
                },
            };
            if !current.is_empty() {
                v2_status.insert("currentMetrics".into(), Value::Array(current));
            }
            if let Some(conditions) = conditions {
                v2_status.insert("conditions".into(), conditions);
            }
        }

        set_annotations(&mut obj, annotations);
        obj["spec"] = Value::Object(v2_spec);
        if status.is_some() {
            obj["status"] = Value::Object(v2_status);
        }
        obj
    }

    fn set_annotations(obj: &mut Value, annotations: Map<String, Value>) {
        let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        if annotations.is_empty() {
            meta.remove("annotations");
        } else {
            meta.insert("annotations".into(), Value::Object(annotations));
        }
    }

    fn cpu_metric(utilization: Value) -> Value {
        json!({
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": utilization}},
        })
    }

    /// Where one metric source keeps its fields in v2 and what autoscaling/v1's
    /// annotation shape calls them: fields of the source itself, of its
    /// `metric`, and of its `target` (specs) or `current` (statuses).
    struct Source {
        name: &'static str,
        direct: &'static [(&'static str, &'static str)],
        metric: &'static [(&'static str, &'static str)],
        values: &'static [(&'static str, &'static str)],
    }

    const NAME: &[(&str, &str)] = &[("name", "name")];
    const NAME_CONTAINER: &[(&str, &str)] = &[("name", "name"), ("container", "container")];
    const OBJECT: &[(&str, &str)] = &[("describedObject", "target")];
    const METRIC: &[(&str, &str)] = &[("name", "metricName"), ("selector", "selector")];
    const EXTERNAL_METRIC: &[(&str, &str)] =
        &[("name", "metricName"), ("selector", "metricSelector")];

    const SPEC_SOURCES: &[Source] = &[
        Source {
            name: "resource",
            direct: NAME,
            metric: &[],
            values: &[
                ("averageUtilization", "targetAverageUtilization"),
                ("averageValue", "targetAverageValue"),
            ],
        },
        Source {
            name: "containerResource",
            direct: NAME_CONTAINER,
            metric: &[],
            values: &[
                ("averageUtilization", "targetAverageUtilization"),
                ("averageValue", "targetAverageValue"),
            ],
        },
        Source {
            name: "pods",
            direct: &[],
            metric: METRIC,
            values: &[("averageValue", "targetAverageValue")],
        },
        Source {
            name: "object",
            direct: OBJECT,
            metric: METRIC,
            values: &[("value", "targetValue"), ("averageValue", "averageValue")],
        },
        Source {
            name: "external",
            direct: &[],
            metric: EXTERNAL_METRIC,
            values: &[
                ("value", "targetValue"),
                ("averageValue", "targetAverageValue"),
            ],
        },
    ];

    const STATUS_SOURCES: &[Source] = &[
        Source {
            name: "resource",
            direct: NAME,
            metric: &[],
            values: &[
                ("averageUtilization", "currentAverageUtilization"),
                ("averageValue", "currentAverageValue"),
            ],
        },
        Source {
            name: "containerResource",
            direct: NAME_CONTAINER,
            metric: &[],
            values: &[
                ("averageUtilization", "currentAverageUtilization"),
                ("averageValue", "currentAverageValue"),
            ],
        },
        Source {
            name: "pods",
            direct: &[],
            metric: METRIC,
            values: &[("averageValue", "currentAverageValue")],
        },
        Source {
            name: "object",
            direct: OBJECT,
            metric: METRIC,
            values: &[("value", "currentValue"), ("averageValue", "averageValue")],
        },
        Source {
            name: "external",
            direct: &[],
            metric: EXTERNAL_METRIC,
            values: &[
                ("value", "currentValue"),
                ("averageValue", "currentAverageValue"),
            ],
        },
    ];

    /// The set fields of `from` named in `pairs` (v2 name, v1 name), renamed
    /// to v1 names, or to v2 names with `to_v2`.
    fn pick(from: Option<&Value>, pairs: &[(&str, &str)], to_v2: bool) -> Map<String, Value> {
        let mut out = Map::new();
        for (v2, v1) in pairs {
            let (src, dst) = if to_v2 { (v1, v2) } else { (v2, v1) };
            if let Some(v) = from.and_then(|f| f.get(*src)).filter(|v| !v.is_null()) {
                out.insert((*dst).to_string(), v.clone());
            }
        }
        out
    }

    /// A v2 MetricSpec (`values_at` "target") or MetricStatus ("current")
    /// in autoscaling/v1's annotation shape: names and values flattened
    /// into the source.
    fn metric_to_v1(m: &Value, sources: &[Source], values_at: &str) -> Value {
        let mut out = json!({"type": m.get("type").cloned().unwrap_or(Value::Null)});
        for source in sources {
            let Some(s) = m.get(source.name) else {
                continue;
            };
            let mut v = pick(Some(s), source.direct, false);
            v.extend(pick(s.get("metric"), source.metric, false));
            v.extend(pick(s.get(values_at), source.values, false));
            out[source.name] = Value::Object(v);
        }
        out
    }

    /// The reverse of [`metric_to_v1`]. A spec's target also gets its
    /// type back: Utilization, Value or AverageValue by which is set.
    fn metric_to_v2(m: &Value, sources: &[Source], values_at: &str) -> Value {
        let mut out = json!({"type": m.get("type").cloned().unwrap_or(Value::Null)});
        for source in sources {
            let Some(s) = m.get(source.name) else {
                continue;
            };
            let mut v = pick(Some(s), source.direct, true);
            let metric = pick(Some(s), source.metric, true);
            if !metric.is_empty() {
                v.insert("metric".into(), Value::Object(metric));
            }
            let mut values = pick(Some(s), source.values, true);
            if values_at == "target" {
                let kind = if values.contains_key("averageUtilization") {
                    "Utilization"
                } else if values.contains_key("value") {
                    "Value"
                } else {
                    "AverageValue"
                };
                values.insert("type".into(), json!(kind));
            }
            v.insert(values_at.into(), Value::Object(values));
            out[source.name] = Value::Object(v);
        }
        out
    }

    fn metric_spec_to_v1(m: &Value) -> Value {
        metric_to_v1(m, SPEC_SOURCES, "target")
    }

    fn metric_spec_to_v2(m: &Value) -> Value {
        metric_to_v2(m, SPEC_SOURCES, "target")
    }

    fn metric_status_to_v1(m: &Value) -> Value {
        metric_to_v1(m, STATUS_SOURCES, "current")
    }

    fn metric_status_to_v2(m: &Value) -> Value {
        metric_to_v2(m, STATUS_SOURCES, "current")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(group: &'static str, version: &'static str, plural: &'static str) -> ResourceInfo {
        ResourceInfo {
            group,
            version,
            kind: "X",
            plural,
            singular: "x",
            scope: apimachinery::resource::Scope::Namespaced,
            short_names: &[],
            categories: &[],
            verbs: apimachinery::resource::ALL_VERBS,
            subresources: &[],
        }
    }

    #[test]
    fn an_events_api_event_is_stored_as_a_core_event_and_read_back_unchanged() {
        let new_api = info("events.k8s.io", "v1", "events");
        let event = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "eventTime": "2024-05-01T11:59:00.000000Z", "type": "Normal", "reason": "Started",
            "action": "Start", "note": "started", "regarding": {"kind": "Pod", "name": "web"},
            "reportingController": "kubelet", "reportingInstance": "node-1",
            "deprecatedCount": 3,
        });
        let stored = for_storage(&new_api, &event).expect("converted");
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["message"], "started");
        assert_eq!(stored["involvedObject"]["name"], "web");
        assert_eq!(stored["reportingComponent"], "kubelet");
        assert_eq!(stored["count"], 3);
        assert!(stored.get("note").is_none() && stored.get("regarding").is_none());
        assert_eq!(for_client(&new_api, stored.clone()), event);
        // The core API reads the stored object as it is.
        let core = info("", "v1", "events");
        assert!(for_storage(&core, &stored).is_none());
        assert_eq!(for_client(&core, stored.clone()), stored);
    }

    #[test]
    fn a_v1_autoscaler_is_stored_as_v2_with_its_cpu_target_as_a_metric() {
        let v1 = info("autoscaling", "v1", "horizontalpodautoscalers");
        let hpa = json!({
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                     "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50},
            "status": {"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 70},
        });
        let stored = for_storage(&v1, &hpa).expect("converted");
        assert_eq!(stored["apiVersion"], "autoscaling/v2");
        assert_eq!(
            stored["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}])
        );
        assert_eq!(
            stored["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
            70
        );
        let back = for_client(&v1, stored);
        assert_eq!(back["spec"], hpa["spec"]);
        assert_eq!(back["status"]["currentCPUUtilizationPercentage"], 70);
        assert_eq!(back["status"]["currentReplicas"], 2);
    }

    #[test]
    fn a_v2_autoscaler_keeps_its_other_metrics_through_a_v1_round_trip() {
        let v1 = info("autoscaling", "v1", "horizontalpodautoscalers");
        let v2 = info("autoscaling", "v2", "horizontalpodautoscalers");
        let hpa = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                "minReplicas": 1, "maxReplicas": 5,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
                ],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
            },
            "status": {"currentReplicas": 1, "desiredReplicas": 1,
                       "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"}]},
        });
        let as_v1 = for_client(&v1, hpa.clone());
        assert_eq!(as_v1["spec"]["targetCPUUtilizationPercentage"], 60);
        let annotations = &as_v1["metadata"]["annotations"];
        assert_eq!(annotations["team"], "a");
        let others: Value = serde_json::from_str(
            annotations["autoscaling.alpha.kubernetes.io/metrics"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            others[0],
            json!({"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "1k"}})
        );
        assert!(annotations
            .get("autoscaling.alpha.kubernetes.io/conditions")
            .is_some());
        // Written back through v1 unchanged, it is the same v2 object.
        let stored = for_storage(&v1, &as_v1).expect("converted");
        assert_eq!(for_client(&v2, stored), hpa);
    }

    #[test]
    fn a_v1_autoscaler_without_a_target_gets_the_default_cpu_target() {
        let v1 = info("autoscaling", "v1", "horizontalpodautoscalers");
        let hpa = json!({
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3},
        });
        let stored = for_storage(&v1, &hpa).unwrap();
        assert_eq!(
            stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        assert!(stored.get("status").is_none());
    }

    #[test]
    fn single_version_resources_pass_through() {
        let pods = info("", "v1", "pods");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        assert!(!applies(&pods));
        assert!(for_storage(&pods, &pod).is_none());
        assert_eq!(for_client(&pods, pod.clone()), pod);
    }
}
