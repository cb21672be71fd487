//! `meta.k8s.io/v1` Table responses (what `kubectl get` prints).

use apimachinery::meta;
use serde_json::{json, Value};

use crate::registry::Strategy;

#[derive(Debug, Clone)]
pub struct Column {
    pub name: &'static str,
    pub kind: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: u8,
}

impl Column {
    pub fn new(name: &'static str, kind: &'static str, description: &'static str) -> Self {
        Column {
            name,
            kind,
            format: "",
            description,
            priority: 0,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

fn column_definitions(strategy: &dyn Strategy) -> Vec<Value> {
    let mut cols = vec![Column {
        name: "Name",
        kind: "string",
        format: "name",
        description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        priority: 0,
    }];
    cols.extend(strategy.columns());
    cols.push(Column::new(
        "Age",
        "string",
        "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    ));
    cols.iter().map(Column::to_json).collect()
}

/// The row's embedded object: by default only its metadata, as
/// `PartialObjectMetadata`.
fn row_object(obj: &Value, include: &str, v1beta1: bool) -> Value {
    match include {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": crate::rest::meta_api_version(v1beta1),
            "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
        }),
    }
}

fn row(strategy: &dyn Strategy, obj: &Value, include: &str, v1beta1: bool) -> Value {
    let mut cells = vec![json!(meta::name(obj))];
    cells.extend(strategy.cells(obj));
    cells.push(json!(meta::age(obj)));
    json!({"cells": cells, "object": row_object(obj, include, v1beta1)})
}

/// A Table of `items`. `list_meta` carries resourceVersion/continue.
pub fn table(
    strategy: &dyn Strategy,
    items: &[&Value],
    list_meta: Value,
    include: &str,
    v1beta1: bool,
    with_columns: bool,
) -> Value {
    let rows: Vec<Value> = items
        .iter()
        .map(|o| row(strategy, o, include, v1beta1))
        .collect();
    let mut t = json!({
        "kind": "Table",
        "apiVersion": crate::rest::meta_api_version(v1beta1),
        "metadata": list_meta,
        "rows": rows,
    });
    t["columnDefinitions"] = if with_columns {
        Value::Array(column_definitions(strategy))
    } else {
        Value::Null
    };
    t
}
