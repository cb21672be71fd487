//! Which resources exist, and how each kind differs from the generic REST
//! behaviour: its [`Strategy`] (defaulting on create and update,
//! validation, delete behaviour, table columns).
//!
//! To serve a new kind: add a module with a `ResourceInfo` and a `Strategy`
//! and list it in [`Registry::builtin`]. Spec validation as upstream
//! answers it (field causes of a 422) lives in [`validation`], one module
//! per API group; pod specs are checked once, in [`pods::validate_pod_spec`].

/// In a strategy that wraps another (`inner`), forward the named
/// synchronous `Strategy` methods to it unchanged.
macro_rules! forward_to_inner {
    (@one info) => { fn info(&self) -> &ResourceInfo { self.inner.info() } };
    (@one decode) => { fn decode(&self, obj: &Value) -> crate::typed::Decoded { self.inner.decode(obj) } };
    (@one decode_json) => { fn decode_json(&self, body: &[u8]) -> Option<Value> { self.inner.decode_json(body) } };
    (@one prepare_for_create) => { fn prepare_for_create(&self, obj: &mut Value) { self.inner.prepare_for_create(obj) } };
    (@one prepare_for_update) => { fn prepare_for_update(&self, new: &mut Value, old: &Value) { self.inner.prepare_for_update(new, old) } };
    (@one validate) => { fn validate(&self, obj: &Value) -> Vec<StatusCause> { self.inner.validate(obj) } };
    (@one validate_update) => { fn validate_update(&self, new: &Value, old: &Value) -> Vec<StatusCause> { self.inner.validate_update(new, old) } };
    (@one delete_action) => { fn delete_action(&self, obj: &Value) -> DeleteAction { self.inner.delete_action(obj) } };
    (@one has_status_subresource) => { fn has_status_subresource(&self) -> bool { self.inner.has_status_subresource() } };
    (@one columns) => { fn columns(&self) -> Vec<Column> { self.inner.columns() } };
    (@one cells) => { fn cells(&self, obj: &Value) -> Vec<Value> { self.inner.cells(obj) } };
    ($($method:ident),* $(,)?) => { $( forward_to_inner!(@one $method); )* };
}

mod builtin;
mod configmaps;
pub mod generic;
mod namespaces;
pub mod pods;
pub mod scale;
mod services;
mod subresources;
pub mod validation;

use std::sync::Arc;

use apimachinery::{ApiError, ResourceInfo, StatusCause};
use serde_json::Value;
use storage::Store;

use crate::allocator::{AllocError, IpRange, Range};

use crate::table::Column;

/// What a delete does to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteAction {
    /// Remove it from the store now.
    Remove,
    /// Keep it with `deletionTimestamp` set until its finalizers are gone.
    MarkDeleting,
}

/// What strategies' datastore hooks may use.
pub struct HookContext<'a> {
    pub store: &'a Arc<dyn Store>,
    pub service_ips: &'a IpRange,
    /// NodePorts, numbered from `node_port_base`.
    pub node_ports: &'a Range,
    pub node_port_base: u16,
}

impl HookContext<'_> {
    /// Allocate `requested` or any free NodePort; Err is the cause text.
    pub async fn allocate_node_port(&self, requested: Option<u64>) -> Result<u16, String> {
        let base = u64::from(self.node_port_base);
        let last = base + self.node_ports.size - 1;
        let wanted = match requested {
            Some(p) if p < base || p > last => {
                return Err(format!("provided port is not in the valid range. The range of valid ports is {base}-{last}"))
            }
            Some(p) => Some(p - base),
            None => None,
        };
        let offset =
            (uuid::Uuid::new_v4().as_u128() % u128::from(self.node_ports.size.max(1))) as u64;
        match self
            .node_ports
            .allocate(self.store.as_ref(), wanted, offset)
            .await
        {
            Ok(i) => Ok((base + i) as u16),
            Err(AllocError::Taken) => Err("provided port is already allocated".into()),
            Err(AllocError::Full) => Err("range is full".into()),
            Err(AllocError::OutOfRange) => Err("provided port is not in the valid range".into()),
            Err(AllocError::Store(m)) => Err(m),
        }
    }

    pub async fn release_node_port(&self, port: u16) {
        if let Some(i) = port.checked_sub(self.node_port_base) {
            if let Err(e) = self
                .node_ports
                .release(self.store.as_ref(), u64::from(i))
                .await
            {
                tracing::warn!(port, error = ?e, "could not release a NodePort");
            }
        }
    }
}

#[async_trait::async_trait]
pub trait Strategy: Send + Sync {
    fn info(&self) -> &ResourceInfo;

    /// Check the object against its Kubernetes type: the normalised object
    /// and the unknown fields dropped from it (see [`crate::typed`]).
    fn decode(&self, obj: &Value) -> crate::typed::Decoded;

    /// The same check straight from a JSON body, for bodies that pass it
    /// cleanly (see [`crate::typed::from_json`]); `None` sends the body
    /// the general way.
    fn decode_json(&self, _body: &[u8]) -> Option<Value> {
        None
    }

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

    /// Seconds a graceful delete waits (with `deletionTimestamp` set) before
    /// the object goes; `None` or `Some(0)`: no grace period.
    fn grace_period_seconds(&self, _obj: &Value, _options: &Value) -> Option<i64> {
        None
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

    /// Datastore work before a create is stored (e.g. allocating a
    /// ClusterIP), after validation.
    async fn before_create(
        &self,
        _ctx: &HookContext<'_>,
        _obj: &mut Value,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// Undo [`Strategy::before_create`] when the create then fails.
    async fn undo_create(&self, _ctx: &HookContext<'_>, _obj: &Value) {}

    /// Datastore work before an update of the main resource is stored.
    async fn before_update(
        &self,
        _ctx: &HookContext<'_>,
        _new: &mut Value,
        _old: &Value,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// After an update is stored (e.g. release what `old` held and `new`
    /// does not). Also called with (old, new) swapped to undo a failed update.
    async fn after_update(&self, _ctx: &HookContext<'_>, _new: &Value, _old: &Value) {}

    /// After an object is removed from the datastore.
    async fn after_delete(&self, _ctx: &HookContext<'_>, _obj: &Value) {}
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
        strategies.extend(builtin::all().into_iter().map(|s| {
            let info = s.info();
            match (info.group, info.plural) {
                ("", "services") => {
                    Arc::new(services::ServiceStrategy { inner: s }) as Arc<dyn Strategy>
                }
                ("", "pods") => Arc::new(pods::PodStrategy::new(s)),
                ("", "serviceaccounts") => {
                    Arc::new(subresources::WithSubresources::new(s, &["token"]))
                }
                ("certificates.k8s.io", "certificatesigningrequests") => Arc::new(
                    subresources::WithSubresources::new(s, &["approval", "status"]),
                ),
                ("apps", "deployments" | "replicasets" | "statefulsets")
                | ("", "replicationcontrollers") => Arc::new(scale::Scalable::new(s)),
                _ => s,
            }
        }));
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
