//! The impersonate stage: `Impersonate-User`, `Impersonate-Group`,
//! `Impersonate-Uid` and `Impersonate-Extra-<key>` headers replace the
//! authenticated user, once the real user is authorized for the
//! `impersonate` verb on each requested `users`, `serviceaccounts`,
//! `groups`, `uids` and `userextras/<key>` name, as upstream.

use std::collections::BTreeMap;

use apimachinery::ApiError;

use crate::authn::{UserInfo, GROUP_AUTHENTICATED, USER_ANONYMOUS};
use crate::authz::{self, Decision};
use crate::request_info::RequestInfo;
use crate::ApiServer;

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";

/// Percent-decoding of an extra key (`Impersonate-Extra-` header names
/// carry keys escaped).
fn unescape(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&key[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check(info: RequestInfo) -> RequestInfo {
    RequestInfo {
        is_resource_request: true,
        verb: "impersonate".into(),
        version: "v1".into(),
        ..info
    }
}

fn forbidden(
    real: &UserInfo,
    resource: &str,
    group: &str,
    name: &str,
    namespace: &str,
) -> ApiError {
    ApiError::forbidden(&real.name, "impersonate", resource, group, name, namespace)
}

/// The user the request acts as: `user` itself without impersonation
/// headers, else the impersonated user (403 when not allowed).
pub async fn apply(
    state: &ApiServer,
    user: UserInfo,
    headers: &http::HeaderMap,
) -> Result<UserInfo, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    };
    let name = values(USER).into_iter().next();
    let groups = values(GROUP);
    let uid = values(UID).into_iter().next();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (header, value) in headers {
        if let Some(key) = header.as_str().strip_prefix(EXTRA_PREFIX) {
            if let Ok(v) = value.to_str() {
                extra
                    .entry(unescape(key).to_ascii_lowercase())
                    .or_default()
                    .push(v.to_string());
            }
        }
    }
    let Some(name) = name else {
        if !groups.is_empty() || !extra.is_empty() || uid.is_some() {
            return Err(ApiError::internal(
                "requested impersonation of groups, uid or extra without impersonating a user",
            ));
        }
        return Ok(user);
    };
    let allowed = |info: RequestInfo| {
        let user = &user;
        async move { authz::authorize(state, user, &check(info)).await == Decision::Allow }
    };
    // The user itself: a service account is checked as one.
    let user_check = match name
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'))
    {
        Some((ns, sa)) => RequestInfo {
            resource: "serviceaccounts".into(),
            namespace: ns.into(),
            name: sa.into(),
            ..Default::default()
        },
        None => RequestInfo {
            resource: "users".into(),
            name: name.clone(),
            ..Default::default()
        },
    };
    let (resource, ns, n) = (
        user_check.resource.clone(),
        user_check.namespace.clone(),
        user_check.name.clone(),
    );
    if !allowed(user_check).await {
        return Err(forbidden(&user, &resource, "", &n, &ns));
    }
    for group in &groups {
        let info = RequestInfo {
            resource: "groups".into(),
            name: group.clone(),
            ..Default::default()
        };
        if !allowed(info).await {
            return Err(forbidden(&user, "groups", "", group, ""));
        }
    }
    if let Some(uid) = &uid {
        let info = RequestInfo {
            group: "authentication.k8s.io".into(),
            resource: "uids".into(),
            name: uid.clone(),
            ..Default::default()
        };
        if !allowed(info).await {
            return Err(forbidden(&user, "uids", "authentication.k8s.io", uid, ""));
        }
    }
    for (key, vals) in &extra {
        for v in vals {
            let info = RequestInfo {
                group: "authentication.k8s.io".into(),
                resource: "userextras".into(),
                subresource: key.clone(),
                name: v.clone(),
                ..Default::default()
            };
            if !allowed(info).await {
                return Err(forbidden(
                    &user,
                    &format!("userextras/{key}"),
                    "authentication.k8s.io",
                    v,
                    "",
                ));
            }
        }
    }
    let mut impersonated = UserInfo {
        name: name.clone(),
        uid: uid.unwrap_or_default(),
        groups: groups.clone(),
        extra,
    };
    if groups.is_empty() {
        if let Some((ns, _)) = name
            .strip_prefix("system:serviceaccount:")
            .and_then(|r| r.split_once(':'))
        {
            impersonated.groups = vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
            ];
        }
    }
    if name != USER_ANONYMOUS && !impersonated.in_group(GROUP_AUTHENTICATED) {
        impersonated.groups.push(GROUP_AUTHENTICATED.into());
    }
    Ok(impersonated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_keys_are_percent_decoded() {
        assert_eq!(unescape("example.com%2fteam"), "example.com/team");
        assert_eq!(unescape("plain"), "plain");
        assert_eq!(unescape("bad%zz"), "bad%zz");
    }
}
