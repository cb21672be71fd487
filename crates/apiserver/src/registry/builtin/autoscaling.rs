//! autoscaling/v2 and autoscaling/v1 HorizontalPodAutoscalers. Both
//! versions are served, v2 first: it is the preferred version.

use apimachinery::meta;
use apimachinery::resource::{ResourceInfo, Scope, ALL_VERBS};
use k8s_openapi::api::autoscaling::{v1, v2};
use serde_json::{json, Value};

use super::docs;
use super::tables::{col, int, list, text};
use crate::registry::generic::GenericStrategy;
use crate::table::Column;
use crate::typed::codec;

/// autoscaling/v2, then autoscaling/v1.
pub fn kinds() -> Vec<GenericStrategy> {
    vec![
        GenericStrategy {
            info: info("v2"),
            decode: codec::<v2::HorizontalPodAutoscaler>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: Some(|| json!({"desiredReplicas": 0})),
            generation: false,
            spec_rules: None,
            columns: hpa_columns,
            cells: hpa_v2_cells,
        },
        GenericStrategy {
            info: info("v1"),
            decode: codec::<v1::HorizontalPodAutoscaler>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: Some(|| json!({"currentReplicas": 0, "desiredReplicas": 0})),
            generation: false,
            spec_rules: None,
            columns: hpa_columns,
            cells: hpa_v1_cells,
        },
    ]
}

fn info(version: &'static str) -> ResourceInfo {
    ResourceInfo {
        group: "autoscaling",
        version,
        kind: "HorizontalPodAutoscaler",
        plural: "horizontalpodautoscalers",
        singular: "horizontalpodautoscaler",
        scope: Scope::Namespaced,
        short_names: &["hpa"],
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &["status"],
    }
}

fn hpa_columns() -> Vec<Column> {
    vec![
        col("Reference", "string", docs::HPA_SCALE_TARGET_REF),
        col("Targets", "string", docs::HPA_METRICS),
        col("MinPods", "string", docs::HPA_MIN_REPLICAS),
        col("MaxPods", "string", docs::HPA_MAX_REPLICAS),
        col("Replicas", "string", docs::HPA_CURRENT_REPLICAS),
    ]
}

/// A quantity as Go prints a `*Quantity`: "<nil>" when unset.
fn quantity_or_nil(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "<nil>".into(),
    }
}

fn set(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

/// External and Object metrics: a value, or an average value per pod.
fn value_metric(spec: &Value, status: Option<&Value>, source: &str) -> String {
    let target = spec.get(source).and_then(|s| s.get("target"));
    let current = set(status.and_then(|s| s.get(source))).and_then(|s| s.get("current"));
    match set(target.and_then(|t| t.get("averageValue"))) {
        Some(avg) => {
            let cur = set(current.and_then(|c| c.get("averageValue")))
                .map_or("<unknown>".into(), |q| quantity_or_nil(Some(q)));
            format!("{cur}/{} (avg)", quantity_or_nil(Some(avg)))
        }
        None => {
            let cur = match set(status.and_then(|s| s.get(source))) {
                Some(_) => quantity_or_nil(set(current.and_then(|c| c.get("value")))),
                None => "<unknown>".into(),
            };
            format!(
                "{cur}/{}",
                quantity_or_nil(set(target.and_then(|t| t.get("value"))))
            )
        }
    }
}

/// Resource and ContainerResource metrics: "cpu: 40%/80%".
fn resource_metric(spec: &Value, status: Option<&Value>, source: &str) -> String {
    let name = spec.get(source).map_or("", |s| text(s, "/name"));
    let target = spec.get(source).and_then(|s| s.get("target"));
    let status = set(status.and_then(|s| s.get(source)));
    match set(target.and_then(|t| t.get("averageValue"))) {
        Some(avg) => {
            let cur = match status {
                Some(s) => quantity_or_nil(set(s.pointer("/current/averageValue"))),
                None => "<unknown>".into(),
            };
            format!("{name}: {cur}/{}", quantity_or_nil(Some(avg)))
        }
        None => {
            let cur = status
                .and_then(|s| s.pointer("/current/averageUtilization"))
                .and_then(Value::as_i64)
                .map_or("<unknown>".into(), |u| format!("{u}%"));
            let goal = target
                .and_then(|t| t.get("averageUtilization"))
                .and_then(Value::as_i64)
                .map_or("<auto>".into(), |u| format!("{u}%"));
            format!("{name}: {cur}/{goal}")
        }
    }
}

/// Upstream's `formatHPAMetrics`: at most two targets, then "+ N more...".
fn hpa_targets(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    let items: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let status = statuses.get(i);
            match text(spec, "/type") {
                "External" => value_metric(spec, status, "external"),
                "Object" => value_metric(spec, status, "object"),
                "Pods" => {
                    let cur = match set(status.and_then(|s| s.get("pods"))) {
                        Some(p) => quantity_or_nil(set(p.pointer("/current/averageValue"))),
                        None => "<unknown>".into(),
                    };
                    format!(
                        "{cur}/{}",
                        quantity_or_nil(set(spec.pointer("/pods/target/averageValue")))
                    )
                }
                "Resource" => resource_metric(spec, status, "resource"),
                "ContainerResource" => resource_metric(spec, status, "containerResource"),
                _ => "<unknown type>".into(),
            }
        })
        .collect();
    const MAX: usize = 2;
    if items.len() > MAX {
        format!(
            "{} + {} more...",
            items[..MAX].join(", "),
            items.len() - MAX
        )
    } else {
        items.join(", ")
    }
}

fn hpa_cells(hpa: &Value, targets: String) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        text(hpa, "/spec/scaleTargetRef/kind"),
        text(hpa, "/spec/scaleTargetRef/name")
    );
    let min_pods = hpa
        .pointer("/spec/minReplicas")
        .and_then(Value::as_i64)
        .map_or("<unset>".to_string(), |m| m.to_string());
    vec![
        json!(reference),
        json!(targets),
        json!(min_pods),
        json!(int(hpa, "/spec/maxReplicas")),
        json!(int(hpa, "/status/currentReplicas")),
    ]
}

fn hpa_v2_cells(hpa: &Value) -> Vec<Value> {
    let targets = hpa_targets(
        list(hpa, "/spec/metrics"),
        list(hpa, "/status/currentMetrics"),
    );
    hpa_cells(hpa, targets)
}

/// autoscaling/v1 has a single CPU target; upstream prints it through the
/// same converted form as v2.
fn hpa_v1_cells(hpa: &Value) -> Vec<Value> {
    let specs: Vec<Value> = hpa
        .pointer("/spec/targetCPUUtilizationPercentage")
        .and_then(Value::as_i64)
        .map(|t| json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": t}}}))
        .into_iter()
        .collect();
    let statuses: Vec<Value> = hpa
        .pointer("/status/currentCPUUtilizationPercentage")
        .and_then(Value::as_i64)
        .map(|c| json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": c}}}))
        .into_iter()
        .collect();
    hpa_cells(hpa, hpa_targets(&specs, &statuses))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpa_v2_cells_show_reference_targets_and_bounds() {
        let hpa = json!({
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2, "maxReplicas": 10,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
                ],
            },
            "status": {
                "currentReplicas": 3,
                "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45}}}],
            },
        });
        assert_eq!(
            hpa_v2_cells(&hpa),
            vec![
                json!("Deployment/web"),
                json!("cpu: 45%/80%, memory: <unknown>/500Mi + 1 more..."),
                json!("2"),
                json!(10),
                json!(3),
            ]
        );
    }

    #[test]
    fn hpa_v1_cells_show_the_cpu_target() {
        let hpa = json!({
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50},
            "status": {"currentReplicas": 1, "desiredReplicas": 1},
        });
        assert_eq!(
            hpa_v1_cells(&hpa),
            vec![
                json!("Deployment/web"),
                json!("cpu: <unknown>/50%"),
                json!("<unset>"),
                json!(5),
                json!(1),
            ]
        );
    }
}
