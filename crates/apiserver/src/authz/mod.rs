//! Authorization: may this user do this? Deny by default.
//!
//! Until RBAC and the Node authorizer arrive, the policy is the part of
//! upstream's bootstrap policy that needs no stored objects:
//! `system:masters` may do anything (as upstream's `cluster-admin` binding
//! grants), and every authenticated user may read the public, non-resource
//! paths (`system:discovery`, `system:public-info-viewer`,
//! `system:basic-user`).

use crate::authn::{UserInfo, GROUP_AUTHENTICATED, GROUP_MASTERS};
use crate::request_info::RequestInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

/// Non-resource paths anyone may GET, even unauthenticated (upstream's
/// `system:public-info-viewer`).
const PUBLIC_INFO_PATHS: &[&str] = &["/healthz", "/livez", "/readyz", "/version", "/version/"];

/// Non-resource paths any authenticated user may GET.
const PUBLIC_PATHS: &[&str] = &[
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/healthz/*",
    "/livez",
    "/livez/*",
    "/readyz",
    "/readyz/*",
    "/version",
    "/version/",
    "/openapi",
    "/openapi/*",
    "/.well-known/openid-configuration",
    "/openid/v1/jwks",
];

fn path_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

pub fn authorize(user: &UserInfo, info: &RequestInfo) -> Decision {
    if user.in_group(GROUP_MASTERS) {
        return Decision::Allow;
    }
    let reading = !info.is_resource_request && info.verb == "get";
    if reading && PUBLIC_INFO_PATHS.contains(&info.path.as_str()) {
        return Decision::Allow;
    }
    let public_read = !info.is_resource_request
        && info.verb == "get"
        && user.in_group(GROUP_AUTHENTICATED)
        && PUBLIC_PATHS.iter().any(|p| path_matches(p, &info.path));
    if public_read {
        Decision::Allow
    } else {
        Decision::Deny
    }
}
