//! Authorization: may this user do this? Deny by default.
//!
//! The chain, as upstream's `--authorization-mode` builds it for a
//! default cluster, in order; the first `Allow` wins:
//!
//! 1. the privileged-group authorizer: `system:masters` may do anything
//!    (upstream's apiserver always puts this first, so the cluster's
//!    owners cannot lock themselves out by editing RBAC objects);
//! 2. [`rbac`]: ClusterRoleBindings and RoleBindings read from the watch
//!    cache. The default policy (cluster-admin bound to `system:masters`,
//!    discovery and public info for everyone) is written at start by
//!    [`crate::bootstrap_policy`].
//!
//! Between them sits [`node`], the Node authorizer for kubelets. Not yet
//! here: `--authorization-mode` (Node and RBAC are always on).

pub mod escalation;
pub mod node;
pub mod rbac;

use crate::authn::{UserInfo, GROUP_MASTERS};
use crate::request_info::RequestInfo;
use crate::ApiServer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

/// The authorize stage of the pipeline.
pub async fn authorize(state: &ApiServer, user: &UserInfo, info: &RequestInfo) -> Decision {
    if user.in_group(GROUP_MASTERS) {
        return Decision::Allow;
    }
    if node::authorize(state, user, info) == Some(Decision::Allow) {
        return Decision::Allow;
    }
    rbac::authorize(state, user, info).await
}
