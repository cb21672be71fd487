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

/// One entry of `--authorization-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    AlwaysAllow,
    AlwaysDeny,
    Node,
    Rbac,
}

impl Mode {
    /// Parse `--authorization-mode` (comma-separated, upstream's names).
    pub fn parse_list(text: &str) -> Result<Vec<Mode>, String> {
        text.split(',')
            .map(str::trim)
            .map(|m| match m {
                "AlwaysAllow" => Ok(Mode::AlwaysAllow),
                "AlwaysDeny" => Ok(Mode::AlwaysDeny),
                "Node" => Ok(Mode::Node),
                "RBAC" => Ok(Mode::Rbac),
                other => Err(format!(
                    "unknown authorization mode {other:?} (AlwaysAllow, AlwaysDeny, Node, RBAC)"
                )),
            })
            .collect()
    }
}

/// The default chain: `Node,RBAC`.
pub const DEFAULT_MODES: &[Mode] = &[Mode::Node, Mode::Rbac];

/// The authorize stage of the pipeline.
pub async fn authorize(state: &ApiServer, user: &UserInfo, info: &RequestInfo) -> Decision {
    if user.in_group(GROUP_MASTERS) {
        return Decision::Allow;
    }
    for mode in &state.authorization_modes {
        match mode {
            Mode::AlwaysAllow => return Decision::Allow,
            Mode::AlwaysDeny => return Decision::Deny,
            Mode::Node => {
                if node::authorize(state, user, info) == Some(Decision::Allow) {
                    return Decision::Allow;
                }
            }
            Mode::Rbac => {
                if rbac::authorize(state, user, info).await == Decision::Allow {
                    return Decision::Allow;
                }
            }
        }
    }
    Decision::Deny
}
