//! core/v1 Namespace.

use apimachinery::meta;
use apimachinery::resource::{ResourceInfo, Scope};
use apimachinery::StatusCause;
use serde_json::{json, Value};

use super::{DeleteAction, Strategy};
use crate::table::Column;

pub static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    kind: "Namespace",
    plural: "namespaces",
    singular: "namespace",
    scope: Scope::Cluster,
    short_names: &["ns"],
    categories: &[],
    verbs: &[
        "create", "delete", "get", "list", "patch", "update", "watch",
    ],
    subresources: &["status", "finalize"],
};

/// The label every namespace carries with its own name.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";

pub struct NamespaceStrategy;

fn set_name_label(obj: &mut Value) {
    let name = meta::name(obj).to_string();
    let labels = meta::metadata_mut(obj)
        .entry("labels")
        .or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels[NAME_LABEL] = json!(name);
}

impl Strategy for NamespaceStrategy {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }

    fn decode(&self, obj: &Value) -> crate::typed::Decoded {
        crate::typed::roundtrip::<k8s_openapi::api::core::v1::Namespace>(obj)
    }

    fn decode_json(&self, body: &[u8]) -> Option<Value> {
        crate::typed::from_json::<k8s_openapi::api::core::v1::Namespace>(body)
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({"phase": "Active"});
        let finalizers = obj.pointer("/spec/finalizers").cloned();
        if finalizers.as_ref().and_then(Value::as_array).is_none() {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
        }
        set_name_label(obj);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        // Status and spec.finalizers change only through their subresources.
        new["status"] = old.get("status").cloned().unwrap_or(json!({}));
        new["spec"] = old.get("spec").cloned().unwrap_or(json!({}));
        set_name_label(new);
    }

    fn validate(&self, obj: &Value) -> Vec<StatusCause> {
        meta::validate_object_meta(obj, meta::dns1123_label_errors)
    }

    fn delete_action(&self, obj: &Value) -> DeleteAction {
        let spec_finalizers = obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        let meta_finalizers = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if spec_finalizers || meta_finalizers {
            DeleteAction::MarkDeleting
        } else {
            DeleteAction::Remove
        }
    }

    fn on_mark_deleting(&self, obj: &mut Value) {
        obj["status"]["phase"] = json!("Terminating");
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn columns(&self) -> Vec<Column> {
        vec![Column::new(
            "Status",
            "string",
            "The status of the namespace",
        )]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![obj.pointer("/status/phase").cloned().unwrap_or(json!(""))]
    }
}
