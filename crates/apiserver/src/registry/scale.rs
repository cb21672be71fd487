//! The `scale` subresource (`autoscaling/v1` Scale) of the workload kinds:
//! a view of `spec.replicas`, `status.replicas` and the label selector.
//! [`Scalable`] wraps a kind's strategy to add it.

use std::sync::Arc;

use apimachinery::{ApiError, ResourceInfo, StatusCause};
use serde_json::{json, Value};

use super::{DeleteAction, HookContext, Strategy};
use crate::table::Column;

pub struct Scalable {
    pub inner: Arc<dyn Strategy>,
    pub info: ResourceInfo,
}

impl Scalable {
    pub fn new(inner: Arc<dyn Strategy>) -> Self {
        let mut info = inner.info().clone();
        info.subresources = &["scale", "status"];
        Scalable { inner, info }
    }
}

/// `matchLabels`/`matchExpressions` (or a ReplicationController's plain
/// map) as a label selector string.
fn selector_string(selector: Option<&Value>) -> String {
    let Some(sel) = selector else {
        return String::new();
    };
    let mut parts = Vec::new();
    let labels = sel
        .get("matchLabels")
        .or(if sel.get("matchExpressions").is_none() {
            Some(sel)
        } else {
            None
        });
    if let Some(map) = labels.and_then(Value::as_object) {
        for (k, v) in map {
            if let Some(v) = v.as_str() {
                parts.push(format!("{k}={v}"));
            }
        }
    }
    for expr in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> = expr
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match expr.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_string()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    parts.join(",")
}

/// The Scale view of an object.
pub fn to_scale(obj: &Value) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
    let mut scale_meta = json!({});
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(field) {
            scale_meta[field] = v.clone();
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector_string(obj.pointer("/spec/selector")),
        },
    })
}

/// Apply a Scale's `spec.replicas` to the object.
pub fn apply_scale(obj: &mut Value, scale: &Value) -> Result<(), ApiError> {
    let name = apimachinery::meta::name(obj).to_string();
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            "Scale",
            "autoscaling",
            &name,
            vec![StatusCause::invalid(
                "spec.replicas",
                &json!(replicas),
                "must be greater than or equal to 0",
            )],
        ));
    }
    obj["spec"]["replicas"] = json!(replicas);
    if let Some(rv) = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|rv| !rv.is_empty())
    {
        apimachinery::meta::set_meta(obj, "resourceVersion", json!(rv));
    }
    Ok(())
}

#[async_trait::async_trait]
impl Strategy for Scalable {
    forward_to_inner!(
        decode,
        prepare_for_create,
        prepare_for_update,
        validate,
        validate_update,
        delete_action,
        columns,
        cells
    );

    fn info(&self) -> &ResourceInfo {
        &self.info
    }
    fn has_status_subresource(&self) -> bool {
        true
    }
    async fn after_delete(&self, ctx: &HookContext<'_>, obj: &Value) {
        self.inner.after_delete(ctx, obj).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_view_carries_replicas_and_selector() {
        let dep = json!({"metadata": {"name": "web", "namespace": "d", "resourceVersion": "7"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}}, "status": {"replicas": 2}});
        let scale = to_scale(&dep);
        assert_eq!(scale["spec"]["replicas"], 3);
        assert_eq!(scale["status"]["replicas"], 2);
        assert_eq!(scale["status"]["selector"], "app=web,tier in (a,b)");
        let rc = json!({"metadata": {"name": "rc"}, "spec": {"selector": {"app": "x"}}});
        assert_eq!(to_scale(&rc)["status"]["selector"], "app=x");
    }
}
