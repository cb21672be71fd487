//! The create-only review APIs: nothing is stored, the answer comes back
//! in the response's `status`.
//!
//! - authentication.k8s.io/v1: `TokenReview` (is this token valid, and
//!   whose is it), `SelfSubjectReview` (`kubectl auth whoami`);
//! - authorization.k8s.io/v1: `SubjectAccessReview`,
//!   `LocalSubjectAccessReview`, `SelfSubjectAccessReview` (`kubectl auth
//!   can-i`), `SelfSubjectRulesReview` (`kubectl auth can-i --list`).

use std::collections::BTreeMap;

use apimachinery::{ApiError, StatusCause};
use serde_json::{json, Value};

use crate::authn::{UserInfo, GROUP_AUTHENTICATED, GROUP_MASTERS};
use crate::authz::{self, Decision};
use crate::request_info::RequestInfo;
use crate::ApiServer;

pub const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";
pub const AUTHORIZATION_GROUP: &str = "authorization.k8s.io";

/// Is this a review resource (served by [`create`] instead of storage)?
pub fn is_review(group: &str) -> bool {
    group == AUTHENTICATION_GROUP || group == AUTHORIZATION_GROUP
}

/// Answer a review `body` posted by `user` to `plural` (in `namespace` for
/// the namespaced LocalSubjectAccessReview).
pub async fn create(
    state: &ApiServer,
    user: &UserInfo,
    plural: &str,
    kind: &str,
    namespace: &str,
    mut body: Value,
) -> Result<Value, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(format!("{kind} must be an object")));
    }
    let status = match plural {
        "selfsubjectreviews" => json!({"userInfo": user_info_json(user)}),
        "tokenreviews" => token_review(state, &body),
        "selfsubjectaccessreviews" => {
            let info = attributes(&body, kind, "")?;
            access_status(state, user, &info).await
        }
        "subjectaccessreviews" | "localsubjectaccessreviews" => {
            let subject = review_subject(&body, kind)?;
            let info = attributes(&body, kind, namespace)?;
            if plural == "localsubjectaccessreviews" && info.namespace != namespace {
                return Err(ApiError::bad_request(format!(
                    "spec.resourceAttributes.namespace must match namespace: {namespace}"
                )));
            }
            access_status(state, &subject, &info).await
        }
        "selfsubjectrulesreviews" => {
            let ns = body
                .pointer("/spec/namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            rules_status(state, user, &ns).await
        }
        _ => return Err(ApiError::path_not_found()),
    };
    body["status"] = status;
    let meta = body
        .get_mut("metadata")
        .filter(|m| m.is_object())
        .map(|m| m.take())
        .unwrap_or_else(|| json!({}));
    let mut meta = meta;
    meta["creationTimestamp"] = Value::Null;
    body["metadata"] = meta;
    if body.get("spec").is_none() && plural != "selfsubjectreviews" {
        body["spec"] = json!({});
    }
    Ok(body)
}

fn user_info_json(user: &UserInfo) -> Value {
    let mut out = json!({"username": user.name, "groups": user.groups});
    if !user.uid.is_empty() {
        out["uid"] = json!(user.uid);
    }
    if !user.extra.is_empty() {
        out["extra"] = json!(user.extra);
    }
    out
}

fn token_review(state: &ApiServer, body: &Value) -> Value {
    let token = body
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or("");
    let requested: Vec<String> = body
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let api_audiences = state
        .authenticators
        .service_accounts
        .as_ref()
        .map(|s| s.api_audiences.clone())
        .unwrap_or_default();
    let audiences = if requested.is_empty() {
        api_audiences
    } else {
        requested
    };
    match crate::authn::authenticate_token(state, token, Some(&audiences)) {
        Some(mut user) if !token.is_empty() => {
            if !user.in_group(GROUP_AUTHENTICATED) {
                user.groups.push(GROUP_AUTHENTICATED.to_string());
            }
            json!({"authenticated": true, "user": user_info_json(&user), "audiences": audiences})
        }
        _ => json!({"user": {}, "error": "[invalid bearer token, token lookup failed]"}),
    }
}

fn invalid(kind: &str, field: &str, detail: &str) -> ApiError {
    ApiError::invalid(
        kind,
        AUTHORIZATION_GROUP,
        "",
        vec![StatusCause::invalid(field, &Value::Null, detail)],
    )
}

/// The subject of a (Local)SubjectAccessReview: exactly as given, with no
/// implied groups.
fn review_subject(body: &Value, kind: &str) -> Result<UserInfo, ApiError> {
    let spec = body.get("spec").cloned().unwrap_or_default();
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let name = spec
        .get("user")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let groups = strings(spec.get("groups"));
    if name.is_empty() && groups.is_empty() {
        return Err(invalid(
            kind,
            "spec.user",
            "at least one of user or group must be specified",
        ));
    }
    let mut extra = BTreeMap::new();
    if let Some(map) = spec.get("extra").and_then(Value::as_object) {
        for (k, v) in map {
            extra.insert(k.clone(), strings(Some(v)));
        }
    }
    Ok(UserInfo {
        name,
        uid: spec
            .get("uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        groups,
        extra,
    })
}

/// The request a review asks about.
fn attributes(body: &Value, kind: &str, default_namespace: &str) -> Result<RequestInfo, ApiError> {
    let resource = body
        .pointer("/spec/resourceAttributes")
        .filter(|v| v.is_object());
    let non_resource = body
        .pointer("/spec/nonResourceAttributes")
        .filter(|v| v.is_object());
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match (resource, non_resource) {
        (Some(r), None) => {
            let mut namespace = s(r, "namespace");
            if namespace.is_empty() {
                namespace = default_namespace.to_string();
            }
            Ok(RequestInfo {
                is_resource_request: true,
                verb: s(r, "verb"),
                group: s(r, "group"),
                version: s(r, "version"),
                namespace,
                resource: s(r, "resource"),
                subresource: s(r, "subresource"),
                name: s(r, "name"),
                ..Default::default()
            })
        }
        (None, Some(n)) => Ok(RequestInfo {
            is_resource_request: false,
            verb: s(n, "verb"),
            path: s(n, "path"),
            ..Default::default()
        }),
        _ => Err(invalid(
            kind,
            "spec.resourceAttributes",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
    }
}

async fn access_status(state: &ApiServer, user: &UserInfo, info: &RequestInfo) -> Value {
    match authz::authorize(state, user, info).await {
        Decision::Allow => json!({"allowed": true}),
        Decision::Deny => json!({"allowed": false}),
    }
}

async fn rules_status(state: &ApiServer, user: &UserInfo, namespace: &str) -> Value {
    let mut resource_rules: Vec<Value> = Vec::new();
    let mut non_resource_rules: Vec<Value> = Vec::new();
    if user.in_group(GROUP_MASTERS) {
        resource_rules.push(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        non_resource_rules.push(json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
    }
    let Some(policy) = authz::rbac::snapshot(state, namespace).await else {
        return json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": true, "evaluationError": "RBAC policy unavailable"});
    };
    for rule in authz::rbac::rules_for(&policy, user, namespace) {
        if rule
            .get("nonResourceURLs")
            .is_some_and(|u| u.as_array().is_some_and(|a| !a.is_empty()))
        {
            non_resource_rules
                .push(json!({"verbs": rule["verbs"], "nonResourceURLs": rule["nonResourceURLs"]}));
        } else {
            let mut r = json!({
                "verbs": rule["verbs"],
                "apiGroups": rule.get("apiGroups").cloned().unwrap_or(json!([])),
                "resources": rule.get("resources").cloned().unwrap_or(json!([])),
            });
            if let Some(names) = rule
                .get("resourceNames")
                .filter(|n| n.as_array().is_some_and(|a| !a.is_empty()))
            {
                r["resourceNames"] = names.clone();
            }
            resource_rules.push(r);
        }
    }
    json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": false})
}
