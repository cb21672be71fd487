//! The TokenRequest API (`POST .../serviceaccounts/<name>/token`, what
//! `kubectl create token` calls): a bound service-account token for the
//! requested audiences and lifetime, optionally bound to a Pod, Secret or
//! Node of the same namespace so that it stops working when that object
//! goes.

use apimachinery::{meta, ApiError, StatusCause};
use serde_json::{json, Value};

use crate::authn::service_account::{cached, BoundObject};
use crate::ApiServer;

const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
const MIN_EXPIRATION_SECONDS: i64 = 600;
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

fn invalid(name: &str, field: &str, value: Value, detail: &str) -> ApiError {
    ApiError::invalid(
        "TokenRequest",
        "authentication.k8s.io",
        name,
        vec![StatusCause::invalid(field, &value, detail)],
    )
}

pub async fn create(
    state: &ApiServer,
    namespace: &str,
    sa_name: &str,
    mut request: Value,
) -> Result<Value, ApiError> {
    let tokens = state
        .authenticators
        .service_accounts
        .as_ref()
        .ok_or_else(|| ApiError::internal("service-account token signing is not configured"))?;
    let sa = cached(state, "", "serviceaccounts", namespace, sa_name)
        .ok_or_else(|| ApiError::not_found("serviceaccounts", "", sa_name))?;
    let sa_uid = meta::meta_str(&sa, "uid").unwrap_or("").to_string();
    if !request.is_object() {
        return Err(ApiError::bad_request("TokenRequest must be an object"));
    }
    let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
    let expiration = spec
        .get("expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    if expiration < MIN_EXPIRATION_SECONDS {
        return Err(invalid(
            sa_name,
            "spec.expirationSeconds",
            json!(expiration),
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > MAX_EXPIRATION_SECONDS {
        return Err(invalid(
            sa_name,
            "spec.expirationSeconds",
            json!(expiration),
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    let mut audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences = tokens.api_audiences.clone();
    }
    let bound = match spec.get("boundObjectRef").filter(|b| b.is_object()) {
        Some(reference) => Some(bound_object(state, namespace, sa_name, reference)?),
        None => None,
    };
    let (token, exp) = tokens
        .issue(
            namespace,
            sa_name,
            &sa_uid,
            &audiences,
            expiration,
            bound.as_ref(),
        )
        .map_err(|e| ApiError::internal(format!("signing the token: {e}")))?;
    let expires = time::OffsetDateTime::from_unix_timestamp(exp)
        .map(meta::format_timestamp)
        .unwrap_or_default();
    request["apiVersion"] = json!("authentication.k8s.io/v1");
    request["kind"] = json!("TokenRequest");
    request["metadata"] = json!({
        "name": sa_name,
        "namespace": namespace,
        "creationTimestamp": meta::now_rfc3339(),
    });
    request["spec"]["audiences"] = json!(audiences);
    request["spec"]["expirationSeconds"] = json!(expiration);
    if request["spec"].get("boundObjectRef").is_none() {
        request["spec"]["boundObjectRef"] = Value::Null;
    }
    request["status"] = json!({"token": token, "expirationTimestamp": expires});
    Ok(request)
}

fn bound_object(
    state: &ApiServer,
    namespace: &str,
    sa_name: &str,
    reference: &Value,
) -> Result<BoundObject, ApiError> {
    let kind = reference.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = reference.get("name").and_then(Value::as_str).unwrap_or("");
    let want_uid = reference.get("uid").and_then(Value::as_str).unwrap_or("");
    let (plural, ns) = match kind {
        "Pod" => ("pods", namespace),
        "Secret" => ("secrets", namespace),
        "Node" => ("nodes", ""),
        _ => {
            return Err(invalid(
                sa_name,
                "spec.boundObjectRef.kind",
                json!(kind),
                "supported values: \"Pod\", \"Secret\", \"Node\"",
            ))
        }
    };
    let object =
        cached(state, "", plural, ns, name).ok_or_else(|| ApiError::not_found(plural, "", name))?;
    let uid = meta::meta_str(&object, "uid").unwrap_or("").to_string();
    if !want_uid.is_empty() && want_uid != uid {
        return Err(ApiError::conflict(
            plural,
            "",
            name,
            &format!("the UID in the bound object reference ({want_uid}) does not match the UID in record. The object might have been deleted and then recreated"),
        ));
    }
    let node = if kind == "Pod" {
        object
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(|node| {
                let node_uid = cached(state, "", "nodes", "", node)
                    .and_then(|n| meta::meta_str(&n, "uid").map(str::to_string))
                    .unwrap_or_default();
                (node.to_string(), node_uid)
            })
    } else {
        None
    };
    Ok(BoundObject {
        kind: kind.to_string(),
        name: name.to_string(),
        uid,
        node,
    })
}
