//! core/v1 ConfigMap.

use apimachinery::meta;
use apimachinery::resource::{ResourceInfo, Scope, ALL_VERBS};
use apimachinery::StatusCause;
use serde_json::{json, Value};

use super::Strategy;
use crate::table::Column;

pub static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    kind: "ConfigMap",
    plural: "configmaps",
    singular: "configmap",
    scope: Scope::Namespaced,
    short_names: &["cm"],
    categories: &[],
    verbs: ALL_VERBS,
    subresources: &[],
};

/// Upstream caps the total size of a ConfigMap's data at 1 MiB.
const MAX_TOTAL_BYTES: usize = 1024 * 1024;

pub struct ConfigMapStrategy;

/// A key of `data` or `binaryData`: alphanumerics, '-', '_' or '.'.
fn config_key_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if key.len() > 253 {
        errs.push("must be no more than 253 characters".into());
    }
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        errs.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".into());
    }
    if key == "." || key == ".." {
        errs.push("must not be '.' or '..'".into());
    }
    errs
}

fn is_base64(s: &str) -> bool {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).is_ok()
}

impl Strategy for ConfigMapStrategy {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }

    fn decode(&self, obj: &Value) -> crate::typed::Decoded {
        crate::typed::roundtrip::<k8s_openapi::api::core::v1::ConfigMap>(obj)
    }

    fn decode_json(&self, body: &[u8]) -> Option<Value> {
        crate::typed::from_json::<k8s_openapi::api::core::v1::ConfigMap>(body)
    }

    fn validate(&self, obj: &Value) -> Vec<StatusCause> {
        let mut causes = meta::validate_object_meta(obj, meta::dns1123_subdomain_errors);
        let mut total = 0usize;
        let mut seen = std::collections::BTreeSet::new();
        for field in ["data", "binaryData"] {
            let Some(map) = obj.get(field) else { continue };
            if map.is_null() {
                continue;
            }
            let Some(map) = map.as_object() else {
                causes.push(StatusCause::invalid(field, map, "must be a map of strings"));
                continue;
            };
            for (key, value) in map {
                let path = format!("{field}[{key}]");
                for e in config_key_errors(key) {
                    causes.push(StatusCause::invalid(&path, &json!(key), &e));
                }
                if !seen.insert(key.clone()) {
                    causes.push(StatusCause::invalid(
                        &path,
                        &json!(key),
                        "duplicate of key present in data",
                    ));
                }
                match value.as_str() {
                    Some(s) if field == "binaryData" && !is_base64(s) => {
                        causes.push(StatusCause::invalid(&path, value, "must be base64-encoded"));
                    }
                    Some(s) => total += key.len() + s.len(),
                    None => causes.push(StatusCause::invalid(&path, value, "must be a string")),
                }
            }
        }
        if total > MAX_TOTAL_BYTES {
            causes.push(StatusCause {
                reason: "FieldValueTooLong".into(),
                message: format!("Too long: must have at most {MAX_TOTAL_BYTES} bytes"),
                field: "[]".into(),
            });
        }
        if let Some(v) = obj.get("immutable") {
            if !v.is_boolean() && !v.is_null() {
                causes.push(StatusCause::invalid("immutable", v, "must be a boolean"));
            }
        }
        causes
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<StatusCause> {
        let mut causes = self.validate(new);
        if old.get("immutable") == Some(&json!(true)) {
            if new.get("immutable") != Some(&json!(true)) {
                causes.push(StatusCause::forbidden(
                    "immutable",
                    "field is immutable when `immutable` is set",
                ));
            }
            if new.get("data") != old.get("data") {
                causes.push(StatusCause::forbidden(
                    "data",
                    "field is immutable when `immutable` is set",
                ));
            }
            if new.get("binaryData") != old.get("binaryData") {
                causes.push(StatusCause::forbidden(
                    "binaryData",
                    "field is immutable when `immutable` is set",
                ));
            }
        }
        causes
    }

    fn columns(&self) -> Vec<Column> {
        vec![Column::new(
            "Data",
            "integer",
            "Number of entries in data and binaryData",
        )]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let count = |f: &str| obj.get(f).and_then(Value::as_object).map_or(0, |m| m.len());
        vec![json!(count("data") + count("binaryData"))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_keys_and_values_are_invalid() {
        let s = ConfigMapStrategy;
        let ok =
            json!({"metadata": {"name": "a"}, "data": {"k.1": "v"}, "binaryData": {"b": "aGk="}});
        assert!(s.validate(&ok).is_empty());
        let bad = json!({"metadata": {"name": "a"}, "data": {"bad key": "v", "n": 1}, "binaryData": {"b": "!!"}});
        assert_eq!(s.validate(&bad).len(), 3);
    }

    #[test]
    fn immutable_configmap_data_cannot_change() {
        let s = ConfigMapStrategy;
        let old = json!({"metadata": {"name": "a"}, "data": {"k": "v"}, "immutable": true});
        let new = json!({"metadata": {"name": "a"}, "data": {"k": "w"}, "immutable": true});
        let causes = s.validate_update(&new, &old);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "data");
    }
}
