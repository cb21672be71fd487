//! The Kubernetes object model as the API server sees it.
//!
//! Objects travel through the server as JSON values (`serde_json::Value`),
//! exactly as clients send them; this crate gives them shape:
//! - [`status`]: the one place an error becomes a Kubernetes `Status`.
//! - [`resource`]: what a resource is (group, version, kind, plural, scope,
//!   verbs) and the registry of served resources.
//! - [`meta`]: reading and writing `metadata` fields, name validation,
//!   timestamps.
//! - [`selector`]: label and field selector parsing and matching.
//! - [`codec`]: JSON and YAML request bodies and responses.
//! - [`protobuf`]: Kubernetes protobuf bodies (kubectl 1.32+ sends them)
//!   to and from JSON, for every built-in type.
//! - [`patch`]: the PATCH engines (JSON patch, merge patch, strategic merge
//!   patch) and the strategic merge metadata of built-in kinds.
//! - [`quota`]: what an object charges against a ResourceQuota (shared by
//!   the admission plugin and the resource quota controller).
//!
//! It must not know about storage, HTTP servers or authentication.

pub mod codec;
pub mod meta;
pub mod patch;
pub mod protobuf;
pub mod quantity;
pub mod quota;
pub mod resource;
pub mod selector;
pub mod status;

pub use resource::{GroupVersionKind, ResourceInfo, Scope};
pub use status::{ApiError, StatusCause, StatusDetails, StatusReason};
