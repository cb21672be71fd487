//! RBAC escalation prevention, as upstream: a user may write a Role or
//! ClusterRole only with rules they already hold (or with the `escalate`
//! verb on it), and bind a role only if they hold its rules (or have
//! `bind` on it). Only `escalate` allows an `aggregationRule`.

use apimachinery::{meta, ApiError};
use serde_json::Value;

use super::rbac::{self, PolicySnapshot};
use super::Decision;
use crate::authn::{UserInfo, GROUP_MASTERS};
use crate::request_info::RequestInfo;
use crate::ApiServer;

const GROUP: &str = "rbac.authorization.k8s.io";

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The requests one rule stands for: every verb against every group and
/// resource (and name), or every non-resource URL.
fn requests_of(rule: &Value, namespace: &str) -> Vec<RequestInfo> {
    let verbs = strings(&rule["verbs"]);
    let mut out = Vec::new();
    for url in strings(&rule["nonResourceURLs"]) {
        for verb in &verbs {
            out.push(RequestInfo {
                is_resource_request: false,
                verb: verb.clone(),
                path: url.clone(),
                ..Default::default()
            });
        }
    }
    let names = strings(&rule["resourceNames"]);
    let names = if names.is_empty() {
        vec![String::new()]
    } else {
        names
    };
    for group in strings(&rule["apiGroups"]) {
        for resource in strings(&rule["resources"]) {
            let (res, sub) = match resource.split_once('/') {
                Some((r, s)) => (r.to_string(), s.to_string()),
                None => (resource.clone(), String::new()),
            };
            for verb in &verbs {
                for name in &names {
                    out.push(RequestInfo {
                        is_resource_request: true,
                        verb: verb.clone(),
                        group: group.clone(),
                        resource: res.clone(),
                        subresource: sub.clone(),
                        name: name.clone(),
                        namespace: namespace.to_string(),
                        ..Default::default()
                    });
                }
            }
        }
    }
    out
}

/// The first rule (rendered as upstream does) the user does not hold.
fn first_missing(
    policy: &PolicySnapshot,
    user: &UserInfo,
    rules: &[Value],
    namespace: &str,
) -> Option<String> {
    for rule in rules {
        if requests_of(rule, namespace)
            .iter()
            .any(|r| !rbac::allows(policy, user, r))
        {
            let list = |k: &str| {
                strings(&rule[k])
                    .iter()
                    .map(|s| format!("{s:?}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let mut parts = Vec::new();
            if rule["nonResourceURLs"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
            {
                parts.push(format!("NonResourceURLs:[{}]", list("nonResourceURLs")));
            } else {
                parts.push(format!("APIGroups:[{}]", list("apiGroups")));
                parts.push(format!("Resources:[{}]", list("resources")));
                if rule["resourceNames"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
                {
                    parts.push(format!("ResourceNames:[{}]", list("resourceNames")));
                }
            }
            parts.push(format!("Verbs:[{}]", list("verbs")));
            return Some(format!("{{{}}}", parts.join(", ")));
        }
    }
    None
}

async fn may(
    state: &ApiServer,
    user: &UserInfo,
    verb: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> bool {
    let info = RequestInfo {
        is_resource_request: true,
        verb: verb.into(),
        group: GROUP.into(),
        version: "v1".into(),
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
        ..Default::default()
    };
    super::authorize(state, user, &info).await == Decision::Allow
}

fn refusal(plural: &str, name: &str, user: &UserInfo, detail: &str) -> ApiError {
    let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
    ApiError::forbidden_message(format!(
        "{plural}.{GROUP} \"{name}\" is forbidden: user \"{}\" (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{detail}",
        user.name,
        groups.join(" ")
    ))
}

/// Check a Role, ClusterRole, RoleBinding or ClusterRoleBinding `obj`
/// about to be written by `user`.
pub async fn check(
    state: &ApiServer,
    user: &UserInfo,
    plural: &str,
    obj: &Value,
) -> Result<(), ApiError> {
    if user.in_group(GROUP_MASTERS) {
        return Ok(());
    }
    let namespace = meta::namespace(obj).to_string();
    let name = meta::name(obj).to_string();
    let Some(policy) = rbac::snapshot(state, &namespace).await else {
        return Err(ApiError::internal("RBAC policy unavailable"));
    };
    match plural {
        "roles" | "clusterroles" => {
            if may(state, user, "escalate", plural, &namespace, &name).await {
                return Ok(());
            }
            if obj.get("aggregationRule").is_some_and(|a| !a.is_null()) {
                return Err(ApiError::forbidden_message(format!(
                    "{plural}.{GROUP} \"{name}\" is forbidden: must have cluster-admin privileges to use the aggregationRule"
                )));
            }
            let rules = obj["rules"].as_array().cloned().unwrap_or_default();
            match first_missing(&policy, user, &rules, &namespace) {
                Some(missing) => Err(refusal(plural, &name, user, &missing)),
                None => Ok(()),
            }
        }
        "rolebindings" | "clusterrolebindings" => {
            let role_kind = obj["roleRef"]["kind"].as_str().unwrap_or("");
            let role_name = obj["roleRef"]["name"].as_str().unwrap_or("");
            let role_plural = if role_kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            let role_ns = if role_kind == "Role" {
                namespace.as_str()
            } else {
                ""
            };
            if may(state, user, "bind", role_plural, role_ns, role_name).await {
                return Ok(());
            }
            let rules: Vec<Value> = if role_kind == "Role" {
                policy
                    .roles
                    .iter()
                    .filter(|r| meta::name(r) == role_name && meta::namespace(r) == namespace)
                    .flat_map(|r| r["rules"].as_array().cloned().unwrap_or_default())
                    .collect()
            } else {
                rbac::cluster_role_rules(&policy, role_name)
                    .into_iter()
                    .cloned()
                    .collect()
            };
            match first_missing(&policy, user, &rules, &namespace) {
                Some(missing) => Err(refusal(plural, &name, user, &missing)),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_rule_stands_for_each_verb_resource_and_name() {
        let rule = json!({"apiGroups": ["", "apps"], "resources": ["pods", "deployments/scale"], "verbs": ["get", "list"], "resourceNames": ["a"]});
        let reqs = requests_of(&rule, "ns");
        assert_eq!(reqs.len(), 8);
        assert!(reqs
            .iter()
            .any(|r| r.resource == "deployments" && r.subresource == "scale" && r.name == "a"));
        let urls = json!({"nonResourceURLs": ["/metrics"], "verbs": ["get"]});
        assert_eq!(requests_of(&urls, "").len(), 1);
    }
}
