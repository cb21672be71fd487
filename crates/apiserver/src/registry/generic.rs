//! A strategy described by data, for the many kinds whose only
//! differences from the generic REST behaviour are their type, name rule,
//! status handling, generation and table columns. Kinds with more
//! behaviour get a module of their own (see `configmaps.rs`).

use apimachinery::{meta, ResourceInfo, StatusCause};
use serde_json::Value;

use super::Strategy;
use crate::table::Column;

pub struct GenericStrategy {
    pub info: ResourceInfo,
    /// Typed decoding: `crate::typed::codec::<T>()`.
    pub decode: crate::typed::Codec,
    /// Validation rule for `metadata.name` (`meta::dns1123_subdomain_errors`,
    /// `meta::dns1123_label_errors`, or a path-segment rule).
    pub name_rule: fn(&str) -> Vec<String>,
    /// The status a new object starts with (`None`: keep what the client
    /// sent, as for kinds without a status subresource).
    pub initial_status: Option<fn() -> Value>,
    /// Whether `metadata.generation` starts at 1 and is bumped on every
    /// change outside status and metadata.
    pub generation: bool,
    /// Validation of the kind's own fields beyond metadata (`None`: only
    /// metadata is checked), from `registry::validation`.
    pub spec_rules: Option<SpecRules>,
    /// Extra table columns after Name (Age is appended last)...
    pub columns: fn() -> Vec<Column>,
    /// ...and their cells for one object.
    pub cells: fn(&Value) -> Vec<Value>,
}

/// A kind's spec validation on create and on update. `validate_update`
/// checks the new object as a whole (not only what changed), as upstream's
/// `ValidateUpdate` functions do.
#[derive(Clone, Copy)]
pub struct SpecRules {
    pub validate: fn(&Value) -> Vec<StatusCause>,
    pub validate_update: fn(&Value, &Value) -> Vec<StatusCause>,
}

/// No extra columns.
pub fn no_columns() -> Vec<Column> {
    Vec::new()
}

/// No extra cells.
pub fn no_cells(_: &Value) -> Vec<Value> {
    Vec::new()
}

impl Strategy for GenericStrategy {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn decode(&self, obj: &Value) -> crate::typed::Decoded {
        (self.decode.from_value)(obj)
    }

    fn decode_json(&self, body: &[u8]) -> Option<Value> {
        (self.decode.from_json)(body)
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(initial) = self.initial_status {
            obj["status"] = initial();
        }
        if self.generation {
            meta::set_meta(obj, "generation", Value::from(1));
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        if self.has_status_subresource() {
            match old.get("status") {
                Some(status) => new["status"] = status.clone(),
                None => {
                    if let Some(map) = new.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
        }
        if self.generation {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let changed = strip_meta_and_status(new) != strip_meta_and_status(old);
            meta::set_meta(
                new,
                "generation",
                Value::from(if changed { generation + 1 } else { generation }),
            );
        }
    }

    fn validate(&self, obj: &Value) -> Vec<StatusCause> {
        let mut causes = meta::validate_object_meta(obj, self.name_rule);
        if let Some(rules) = self.spec_rules {
            causes.extend((rules.validate)(obj));
        }
        causes
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<StatusCause> {
        let mut causes = meta::validate_object_meta(new, self.name_rule);
        if let Some(rules) = self.spec_rules {
            causes.extend((rules.validate_update)(new, old));
        }
        causes
    }

    fn columns(&self) -> Vec<Column> {
        (self.columns)()
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        (self.cells)(obj)
    }
}

/// The object without metadata and status: what generation counts changes of.
fn strip_meta_and_status(obj: &Value) -> Value {
    let mut copy = obj.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    copy
}

/// A name usable as one URL path segment (for kinds without a DNS rule).
pub fn path_segment_name_errors(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    if name.contains('/') || name.contains('%') {
        return vec![format!(
            "may not contain '{}'",
            if name.contains('/') { '/' } else { '%' }
        )];
    }
    Vec::new()
}
