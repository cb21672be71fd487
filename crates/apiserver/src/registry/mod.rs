//! Which resources exist, and how each kind differs from the generic REST
//! behaviour: its [`Strategy`] (defaulting on create and update,
//! validation, delete behaviour, table columns).
//!
//! To serve a new kind: add a module with a `ResourceInfo` and a `Strategy`
//! and list it in [`Registry::builtin`].

mod builtin;
mod configmaps;
pub mod generic;
mod namespaces;

use std::sync::Arc;

use apimachinery::{ApiError, ResourceInfo, StatusCause};
use serde_json::Value;

use crate::table::Column;

/// What a delete does to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteAction {
    /// Remove it from the store now.
    Remove,
    /// Keep it with `deletionTimestamp` set until its finalizers are gone.
    MarkDeleting,
}

pub trait Strategy: Send + Sync {
    fn info(&self) -> &ResourceInfo;

    /// Check the object against its Kubernetes type: the normalised object
    /// and the unknown fields dropped from it (see [`crate::typed`]).
    fn decode(&self, obj: &Value) -> Result<(Value, Vec<String>), ApiError>;

    /// Defaults and server-set fields on create (after generic metadata).
    fn prepare_for_create(&self, _obj: &mut Value) {}

    /// Carry over what an update may not change (e.g. status through the
    /// main resource).
    fn prepare_for_update(&self, _new: &mut Value, _old: &Value) {}

    /// Whether `/status` is served: then updates of the main resource keep
    /// the stored status, and status updates keep everything else.
    fn has_status_subresource(&self) -> bool {
        self.info().subresources.contains(&"status")
    }

    /// Kind-specific validation of a new object.
    fn validate(&self, obj: &Value) -> Vec<StatusCause>;

    /// Validation of an update; by default the same as create plus nothing.
    fn validate_update(&self, new: &Value, _old: &Value) -> Vec<StatusCause> {
        self.validate(new)
    }

    /// How a delete request treats `obj` (already loaded). The default:
    /// objects with finalizers are marked, others removed.
    fn delete_action(&self, obj: &Value) -> DeleteAction {
        let has_finalizers = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            DeleteAction::MarkDeleting
        } else {
            DeleteAction::Remove
        }
    }

    /// Changes made to an object when it is marked for deletion.
    fn on_mark_deleting(&self, _obj: &mut Value) {}

    /// Upstream returns the deleted object for some kinds and a `Status`
    /// for others.
    fn returns_deleted_object(&self) -> bool {
        false
    }

    /// Extra table columns after Name (Age is always last).
    fn columns(&self) -> Vec<Column> {
        Vec::new()
    }

    /// Cells for [`Strategy::columns`].
    fn cells(&self, _obj: &Value) -> Vec<Value> {
        Vec::new()
    }
}

/// The served resources.
pub struct Registry {
    strategies: Vec<Arc<dyn Strategy>>,
}

impl Registry {
    pub fn builtin() -> Self {
        let mut strategies: Vec<Arc<dyn Strategy>> = vec![
            Arc::new(namespaces::NamespaceStrategy),
            Arc::new(configmaps::ConfigMapStrategy),
        ];
        strategies.extend(builtin::all());
        Registry { strategies }
    }

    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<&Arc<dyn Strategy>> {
        self.strategies.iter().find(|s| {
            let i = s.info();
            i.group == group && i.version == version && i.plural == plural
        })
    }

    pub fn all(&self) -> impl Iterator<Item = &ResourceInfo> {
        self.strategies.iter().map(|s| s.info())
    }

    /// Served (group, version) pairs, in registration order.
    pub fn group_versions(&self) -> Vec<(&'static str, &'static str)> {
        let mut out: Vec<(&'static str, &'static str)> = Vec::new();
        for r in self.all() {
            if !out.contains(&(r.group, r.version)) {
                out.push((r.group, r.version));
            }
        }
        out
    }
}

/// The datastore key of a namespace object.
pub fn namespace_key(name: &str) -> String {
    namespaces::INFO.key("", name)
}
