//! Errors as Kubernetes `Status` objects (`meta.k8s.io/v1`).
//!
//! Every failure a client can see is an [`ApiError`]; [`ApiError::to_status`]
//! is the only place one becomes a `Status` body.

use serde_json::{json, Value};

/// `metav1.StatusReason` values the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusReason {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    AlreadyExists,
    Conflict,
    Gone,
    Expired,
    Invalid,
    MethodNotAllowed,
    NotAcceptable,
    UnsupportedMediaType,
    RequestEntityTooLarge,
    Timeout,
    TooManyRequests,
    InternalError,
    ServiceUnavailable,
}

impl StatusReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusReason::BadRequest => "BadRequest",
            StatusReason::Unauthorized => "Unauthorized",
            StatusReason::Forbidden => "Forbidden",
            StatusReason::NotFound => "NotFound",
            StatusReason::AlreadyExists => "AlreadyExists",
            StatusReason::Conflict => "Conflict",
            StatusReason::Gone => "Gone",
            StatusReason::Expired => "Expired",
            StatusReason::Invalid => "Invalid",
            StatusReason::MethodNotAllowed => "MethodNotAllowed",
            StatusReason::NotAcceptable => "NotAcceptable",
            StatusReason::UnsupportedMediaType => "UnsupportedMediaType",
            StatusReason::RequestEntityTooLarge => "RequestEntityTooLarge",
            StatusReason::Timeout => "Timeout",
            StatusReason::TooManyRequests => "TooManyRequests",
            StatusReason::InternalError => "InternalError",
            StatusReason::ServiceUnavailable => "ServiceUnavailable",
        }
    }
}

/// One field-level cause of an `Invalid` or `Conflict` error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueForbidden`, ...
    pub reason: String,
    pub message: String,
    pub field: String,
}

impl StatusCause {
    pub fn required(field: &str) -> Self {
        StatusCause {
            reason: "FieldValueRequired".into(),
            message: "Required value".into(),
            field: field.into(),
        }
    }

    pub fn invalid(field: &str, value: &Value, detail: &str) -> Self {
        StatusCause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {}: {detail}", render_value(value)),
            field: field.into(),
        }
    }

    pub fn forbidden(field: &str, detail: &str) -> Self {
        StatusCause {
            reason: "FieldValueForbidden".into(),
            message: format!("Forbidden: {detail}"),
            field: field.into(),
        }
    }

    /// "field: message" as upstream joins causes into the error message.
    fn summary(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// Values appear in messages as upstream prints them: strings quoted.
fn render_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// An error a client sees, with everything a `Status` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub reason: StatusReason,
    pub message: String,
    /// `Status.details`, boxed to keep `Result<_, ApiError>` small.
    pub details: Option<Box<StatusDetails>>,
}

/// `Status.details`: what the error is about, field causes, retry hint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusDetails {
    pub name: String,
    pub group: String,
    pub kind: String,
    pub causes: Vec<StatusCause>,
    pub retry_after_seconds: Option<u32>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

/// "configmaps" or "deployments.apps": how upstream names a resource in messages.
fn qualified(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

impl ApiError {
    pub fn new(code: u16, reason: StatusReason, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn details_mut(&mut self) -> &mut StatusDetails {
        self.details.get_or_insert_with(Default::default)
    }

    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        let d = self.details_mut();
        d.group = group.to_string();
        d.kind = kind.to_string();
        d.name = name.to_string();
        self
    }

    /// Attach causes (for example a `DisruptionBudget` cause of a 429).
    pub fn with_causes(mut self, causes: Vec<StatusCause>) -> Self {
        self.details_mut().causes = causes;
        self
    }

    /// Field causes of an `Invalid` error.
    pub fn causes(&self) -> &[StatusCause] {
        self.details.as_ref().map_or(&[], |d| &d.causes)
    }

    pub fn retry_after_seconds(&self) -> Option<u32> {
        self.details.as_ref().and_then(|d| d.retry_after_seconds)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, StatusReason::BadRequest, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, StatusReason::Unauthorized, "Unauthorized")
    }

    /// 403 in upstream's words for a denied resource request.
    pub fn forbidden(
        user: &str,
        verb: &str,
        resource: &str,
        group: &str,
        name: &str,
        namespace: &str,
    ) -> Self {
        let mut msg = format!(
            "User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\""
        );
        if !namespace.is_empty() {
            msg.push_str(&format!(" in the namespace \"{namespace}\""));
        } else if !resource.is_empty() {
            msg.push_str(" at the cluster scope");
        }
        let full = if name.is_empty() {
            format!("{} is forbidden: {msg}", qualified(resource, group))
        } else {
            format!(
                "{} \"{name}\" is forbidden: {msg}",
                qualified(resource, group)
            )
        };
        Self::new(403, StatusReason::Forbidden, full).with_details(group, resource, name)
    }

    /// 403 with a free-form message (admission, non-resource URLs).
    pub fn forbidden_message(message: impl Into<String>) -> Self {
        Self::new(403, StatusReason::Forbidden, message)
    }

    pub fn not_found(resource: &str, group: &str, name: &str) -> Self {
        Self::new(
            404,
            StatusReason::NotFound,
            format!("{} \"{name}\" not found", qualified(resource, group)),
        )
        .with_details(group, resource, name)
    }

    /// 404 for a path the server does not serve.
    pub fn path_not_found() -> Self {
        Self::new(
            404,
            StatusReason::NotFound,
            "the server could not find the requested resource",
        )
    }

    pub fn already_exists(resource: &str, group: &str, name: &str) -> Self {
        Self::new(
            409,
            StatusReason::AlreadyExists,
            format!("{} \"{name}\" already exists", qualified(resource, group)),
        )
        .with_details(group, resource, name)
    }

    /// A write against a stale resourceVersion.
    pub fn conflict_modified(resource: &str, group: &str, name: &str) -> Self {
        Self::conflict(
            resource,
            group,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn conflict(resource: &str, group: &str, name: &str, detail: &str) -> Self {
        Self::new(
            409,
            StatusReason::Conflict,
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {detail}",
                qualified(resource, group)
            ),
        )
        .with_details(group, resource, name)
    }

    /// 422 with per-field causes, message joined as upstream does.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<StatusCause>) -> Self {
        let joined = match causes.len() {
            0 => String::new(),
            1 => causes[0].summary(),
            _ => format!(
                "[{}]",
                causes
                    .iter()
                    .map(StatusCause::summary)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut e = Self::new(
            422,
            StatusReason::Invalid,
            format!("{kind} \"{name}\" is invalid: {joined}"),
        )
        .with_details(group, kind, name);
        e.details_mut().causes = causes;
        e
    }

    /// 410 for a resourceVersion or continue token older than history.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, StatusReason::Expired, message)
    }

    /// 410 Gone, as sent on a watch whose start is compacted away.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, StatusReason::Gone, message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, StatusReason::MethodNotAllowed, message)
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, StatusReason::NotAcceptable, message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            StatusReason::UnsupportedMediaType,
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type:?})"),
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            StatusReason::RequestEntityTooLarge,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            StatusReason::InternalError,
            format!("Internal error occurred: {}", message.into()),
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(503, StatusReason::ServiceUnavailable, message);
        e.details_mut().retry_after_seconds = Some(1);
        e
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason.as_str(),
            "code": self.code,
        });
        let mut details = serde_json::Map::new();
        if let Some(d) = &self.details {
            if !d.name.is_empty() {
                details.insert("name".into(), json!(d.name));
            }
            if !d.group.is_empty() {
                details.insert("group".into(), json!(d.group));
            }
            if !d.kind.is_empty() {
                details.insert("kind".into(), json!(d.kind));
            }
            if !d.causes.is_empty() {
                let causes: Vec<Value> = d
                    .causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
                details.insert("causes".into(), Value::Array(causes));
            }
            if let Some(secs) = d.retry_after_seconds {
                details.insert("retryAfterSeconds".into(), json!(secs));
            }
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

/// The `Status` a successful delete returns for resources that do not
/// return the deleted object.
pub fn success_status(resource: &str, group: &str, name: &str, uid: &str) -> Value {
    let mut details = json!({"name": name, "kind": resource, "uid": uid});
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_status_matches_upstream_shape() {
        let s = ApiError::not_found("configmaps", "", "x").to_status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["message"], "configmaps \"x\" not found");
        assert_eq!(s["details"]["kind"], "configmaps");
        assert!(s["details"].get("group").is_none());
    }

    #[test]
    fn invalid_joins_several_causes_in_brackets() {
        let e = ApiError::invalid(
            "ConfigMap",
            "",
            "a",
            vec![
                StatusCause::required("metadata.name"),
                StatusCause::invalid("data[x y]", &json!("x y"), "bad key"),
            ],
        );
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "ConfigMap \"a\" is invalid: [metadata.name: Required value, data[x y]: Invalid value: \"x y\": bad key]"
        );
        assert_eq!(
            e.to_status()["details"]["causes"].as_array().unwrap().len(),
            2
        );
    }

    #[test]
    fn conflict_message_is_upstreams() {
        let e = ApiError::conflict_modified("deployments", "apps", "web");
        assert_eq!(
            e.message,
            "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
        );
    }
}
