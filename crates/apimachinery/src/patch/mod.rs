//! The patch engines: how a PATCH body changes an object.
//!
//! - [`json_patch`]: RFC 6902 JSON Patch, applied atomically.
//! - [`merge_patch`]: RFC 7386 JSON Merge Patch, and the diff that
//!   produces one.
//! - [`strategic`]: Kubernetes strategic merge patch, and the two-way diff
//!   `kubectl` sends.
//! - [`patch_meta`]: the per-field list strategies strategic merge patch
//!   needs, with the table for built-in kinds ([`builtin_meta`]).
//! - [`apply`]: server-side apply and `metadata.managedFields`
//!   ([`apply::apply`], [`record_update`]), on field sets ([`fieldset`])
//!   in upstream's `FieldsV1` encoding.
//!
//! [`PatchType`] names a patch by its `Content-Type`; [`apply_patch`]
//! decodes a body and runs the matching engine. Server-side apply
//! (`application/apply-patch+yaml`) is not handled by [`apply_patch`]; the
//! handler calls [`apply::apply`] for it.
//!
//! # Errors become a Status in the caller
//!
//! The engines return typed errors and know nothing of HTTP. The handler
//! turns a [`PatchError`] into a `Status` with
//! [`PatchError::status_code`], [`PatchError::status_reason`] and
//! [`PatchError::status_message`], which reproduce what upstream answers:
//!
//! | code | reason | when |
//! |------|--------|------|
//! | 400 | `BadRequest` | the body is not JSON; a JSON patch that is not an array of objects; a merge patch or strategic merge patch that is not an object; malformed `$retainKeys`, `$deleteFromPrimitiveList`, `$setElementOrder` directives |
//! | 413 | `RequestEntityTooLarge` | a JSON patch with more than [`MAX_JSON_PATCH_OPERATIONS`] operations |
//! | 415 | `UnsupportedMediaType` | strategic merge patch for a kind without patch metadata (custom resources), or a patch type this module does not apply |
//! | 422 | `Invalid` | a JSON patch operation that is unknown, incomplete or does not apply to the document (failed `test`, missing path, bad index, ...); a strategic merge patch with a list of lists. Upstream sends the generic message "the server rejected our request due to an error in our request", not the detail. |
//! | 500 | none (upstream leaves `reason` empty) | any other strategic merge failure, e.g. "map: map[image:nginx] does not contain declared merge key: name"; the message is the error's text |

pub mod apply;
pub mod fieldset;
pub mod json_patch;
pub mod merge_patch;
pub mod patch_meta;
pub mod strategic;

#[cfg(test)]
mod test_support;

use serde_json::Value;

use crate::status::StatusReason;

pub use apply::{check_apply_target, record_update, ApplyError, Conflict};
pub use fieldset::{path_string, FieldPath, FieldSet, FieldSetError, PathElement};
pub use json_patch::{
    apply_json_patch, InvalidJsonPointer, JsonPatch, JsonPatchError, JsonPatchOperation,
    JsonPointer,
};
pub use merge_patch::{apply_merge_patch, create_merge_patch, merge_patch_in_place};
pub use patch_meta::{builtin_meta, BuiltinPatchMeta, ListStrategy, PatchMeta, ReplaceAllLists};
pub use strategic::{
    apply_strategic_merge_patch, create_strategic_merge_patch, StrategicMergeError,
};

/// Upstream's limit on the operations of one JSON patch.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The message upstream sends with every 422 from a patch.
pub const INVALID_PATCH_MESSAGE: &str =
    "the server rejected our request due to an error in our request";

/// Patch content types a built-in resource accepts, in upstream's order.
pub const BUILTIN_PATCH_CONTENT_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// Patch content types a custom resource accepts (no strategic merge).
pub const CUSTOM_RESOURCE_PATCH_CONTENT_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

/// What [`apply_patch`] itself can apply.
const APPLIED_HERE_CONTENT_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// The kind of a PATCH request, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// Recognises a `Content-Type` header. Parameters (`; charset=utf-8`)
    /// are ignored; the media type itself must match exactly, as upstream
    /// requires.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media_type = content_type
            .split_once(';')
            .map_or(content_type, |(media_type, _)| media_type)
            .trim();
        match media_type {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            "application/apply-patch+yaml" => Some(PatchType::Apply),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// Why a patch request failed. See the module documentation for the
/// `Status` each variant becomes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch type is not accepted for this resource.
    #[error("the body of the request was in an unknown format - accepted media types include: {}", .accepted.join(", "))]
    UnsupportedMediaType { accepted: &'static [&'static str] },
    /// The body is not JSON, or not the JSON shape the patch type needs.
    #[error("{0}")]
    InvalidBody(String),
    /// A merge patch whose body is not a JSON object.
    #[error("Invalid JSON Patch")]
    InvalidMergePatch,
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations { max: usize, got: usize },
    #[error(transparent)]
    Json(#[from] JsonPatchError),
    #[error(transparent)]
    Strategic(#[from] StrategicMergeError),
}

impl PatchError {
    /// The HTTP status upstream answers with.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::UnsupportedMediaType { .. } => 415,
            PatchError::InvalidBody(_) | PatchError::InvalidMergePatch => 400,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::Json(e) if e.is_malformed() => 400,
            PatchError::Json(_) => 422,
            PatchError::Strategic(e) => e.status_code(),
        }
    }

    /// The `Status.reason`; `None` where upstream leaves it empty (its
    /// 500s for strategic merge failures).
    pub fn status_reason(&self) -> Option<StatusReason> {
        match self.status_code() {
            400 => Some(StatusReason::BadRequest),
            413 => Some(StatusReason::RequestEntityTooLarge),
            415 => Some(StatusReason::UnsupportedMediaType),
            422 => Some(StatusReason::Invalid),
            _ => None,
        }
    }

    /// The `Status.message`: the error's text, except for 422s, where
    /// upstream sends [`INVALID_PATCH_MESSAGE`].
    pub fn status_message(&self) -> String {
        if self.status_code() == 422 {
            INVALID_PATCH_MESSAGE.to_string()
        } else {
            self.to_string()
        }
    }
}

/// Decodes a PATCH body of `patch_type` and applies it to a copy of
/// `original`.
///
/// `meta` is the strategic merge metadata of the object's kind
/// ([`builtin_meta`]); `None` means the kind has none (a custom resource),
/// and a strategic merge patch is then refused with 415 as upstream does.
/// [`PatchType::Apply`] is refused too: server-side apply is handled
/// elsewhere.
pub fn apply_patch(
    patch_type: PatchType,
    original: &Value,
    body: &[u8],
    meta: Option<&dyn PatchMeta>,
) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::Apply => Err(PatchError::UnsupportedMediaType {
            accepted: APPLIED_HERE_CONTENT_TYPES,
        }),
        PatchType::Json => {
            let patch: Value =
                serde_json::from_slice(body).map_err(|e| PatchError::InvalidBody(e.to_string()))?;
            if let Value::Array(ops) = &patch {
                if ops.len() > MAX_JSON_PATCH_OPERATIONS {
                    return Err(PatchError::TooManyOperations {
                        max: MAX_JSON_PATCH_OPERATIONS,
                        got: ops.len(),
                    });
                }
            }
            Ok(JsonPatch::from_value(&patch)?.apply(original)?)
        }
        PatchType::Merge => {
            let patch: Value =
                serde_json::from_slice(body).map_err(|_| PatchError::InvalidMergePatch)?;
            if !patch.is_object() {
                return Err(PatchError::InvalidMergePatch);
            }
            Ok(apply_merge_patch(original, &patch))
        }
        PatchType::StrategicMerge => {
            let Some(meta) = meta else {
                return Err(PatchError::UnsupportedMediaType {
                    accepted: CUSTOM_RESOURCE_PATCH_CONTENT_TYPES,
                });
            };
            let mut patch: Value =
                serde_json::from_slice(body).map_err(|e| PatchError::InvalidBody(e.to_string()))?;
            // Go decodes `null` into a map as an empty map.
            if patch.is_null() {
                patch = Value::Object(serde_json::Map::new());
            }
            if !patch.is_object() {
                return Err(PatchError::InvalidBody(format!(
                    "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                    json_type_name(&patch)
                )));
            }
            Ok(apply_strategic_merge_patch(original, &patch, meta)?)
        }
    }
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "labels": {"app": "a"}},
            "spec": {"containers": [{"name": "a", "image": "a:1"}]}
        })
    }

    fn pod_meta() -> Option<BuiltinPatchMeta> {
        builtin_meta("v1", "Pod")
    }

    fn patch(patch_type: PatchType, body: &str) -> Result<Value, PatchError> {
        let meta = pod_meta();
        apply_patch(
            patch_type,
            &pod(),
            body.as_bytes(),
            meta.as_ref().map(|m| m as &dyn PatchMeta),
        )
    }

    #[test]
    fn patch_type_is_recognised_from_content_type() {
        let cases = [
            ("application/json-patch+json", Some(PatchType::Json)),
            ("application/merge-patch+json", Some(PatchType::Merge)),
            (
                "application/strategic-merge-patch+json",
                Some(PatchType::StrategicMerge),
            ),
            ("application/apply-patch+yaml", Some(PatchType::Apply)),
            (
                "application/merge-patch+json; charset=utf-8",
                Some(PatchType::Merge),
            ),
            ("application/json", None),
            ("application/apply-patch+cbor", None),
            ("Application/Merge-Patch+Json", None),
            ("", None),
        ];
        for (content_type, expected) in cases {
            assert_eq!(
                PatchType::from_content_type(content_type),
                expected,
                "{content_type}"
            );
        }
        for t in [
            PatchType::Json,
            PatchType::Merge,
            PatchType::StrategicMerge,
            PatchType::Apply,
        ] {
            assert_eq!(PatchType::from_content_type(t.content_type()), Some(t));
        }
    }

    #[test]
    fn apply_patch_runs_each_engine() {
        let out = patch(
            PatchType::Json,
            r#"[{"op":"replace","path":"/spec/containers/0/image","value":"a:2"}]"#,
        );
        assert_eq!(
            out.map(|v| v["spec"]["containers"][0]["image"].clone()),
            Ok(json!("a:2"))
        );

        let out = patch(
            PatchType::Merge,
            r#"{"spec":{"containers":[{"name":"b"}]}}"#,
        );
        assert_eq!(
            out.map(|v| v["spec"]["containers"].clone()),
            Ok(json!([{"name": "b"}]))
        );

        let out = patch(
            PatchType::StrategicMerge,
            r#"{"spec":{"containers":[{"name":"b","image":"b:1"}]}}"#,
        );
        assert_eq!(
            out.map(|v| v["spec"]["containers"].clone()),
            Ok(json!([{"name": "b", "image": "b:1"}, {"name": "a", "image": "a:1"}]))
        );
    }

    #[test]
    fn json_patch_operation_failure_is_422_with_upstream_generic_message() {
        let err = patch(
            PatchType::Json,
            r#"[{"op":"test","path":"/metadata/name","value":"q"}]"#,
        )
        .expect_err("test fails");
        assert_eq!(err.status_code(), 422);
        assert_eq!(err.status_reason(), Some(StatusReason::Invalid));
        assert_eq!(err.status_message(), INVALID_PATCH_MESSAGE);
        assert_eq!(
            err.to_string(),
            "testing value /metadata/name failed: test failed"
        );

        let err = patch(PatchType::Json, r#"[{"op":"remove","path":"/nope"}]"#)
            .expect_err("missing path");
        assert_eq!(err.status_code(), 422);
        let err =
            patch(PatchType::Json, r#"[{"op":"bogus","path":"/a"}]"#).expect_err("unknown op");
        assert_eq!(err.status_code(), 422);
    }

    #[test]
    fn malformed_json_patch_is_400() {
        let err = patch(PatchType::Json, r#"{"op":"add"}"#).expect_err("not an array");
        assert_eq!(err.status_code(), 400);
        assert_eq!(err.status_reason(), Some(StatusReason::BadRequest));
        assert_eq!(
            err.status_message(),
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        );
        let err = patch(PatchType::Json, "[{").expect_err("not JSON");
        assert_eq!(err.status_code(), 400);
    }

    #[test]
    fn json_patch_with_too_many_operations_is_413() {
        let ops = vec![json!({"op": "test", "path": "/kind", "value": "Pod"}); 10_001];
        let body = Value::Array(ops).to_string();
        let err = patch(PatchType::Json, &body).expect_err("too many ops");
        assert_eq!(err.status_code(), 413);
        assert_eq!(
            err.status_message(),
            "The allowed maximum operations in a JSON patch is 10000, got 10001"
        );
        let ops = vec![json!({"op": "test", "path": "/kind", "value": "Pod"}); 10_000];
        assert!(patch(PatchType::Json, &Value::Array(ops).to_string()).is_ok());
    }

    #[test]
    fn merge_patch_that_is_not_an_object_is_400() {
        for body in ["[1]", "\"x\"", "null", "{"] {
            let err = patch(PatchType::Merge, body).expect_err(body);
            assert_eq!(err.status_code(), 400, "{body}");
            assert_eq!(err.status_message(), "Invalid JSON Patch");
        }
    }

    #[test]
    fn strategic_merge_patch_body_must_be_an_object() {
        let err = patch(PatchType::StrategicMerge, "[1]").expect_err("array");
        assert_eq!(err.status_code(), 400);
        assert_eq!(
            err.status_message(),
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
        assert_eq!(patch(PatchType::StrategicMerge, "null"), Ok(pod()));
    }

    #[test]
    fn strategic_merge_patch_without_metadata_is_415_like_custom_resources() {
        let err =
            apply_patch(PatchType::StrategicMerge, &pod(), b"{}", None).expect_err("no metadata");
        assert_eq!(err.status_code(), 415);
        assert_eq!(
            err.status_reason(),
            Some(StatusReason::UnsupportedMediaType)
        );
        assert_eq!(
            err.status_message(),
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        );
    }

    #[test]
    fn apply_patch_type_is_not_applied_here() {
        let err = patch(PatchType::Apply, "{}").expect_err("apply");
        assert_eq!(err.status_code(), 415);
    }

    #[test]
    fn strategic_merge_failures_map_to_upstream_codes() {
        let err = patch(
            PatchType::StrategicMerge,
            r#"{"spec":{"containers":[{"image":"x"}]}}"#,
        )
        .expect_err("no merge key");
        assert_eq!(err.status_code(), 500);
        assert_eq!(err.status_reason(), None);
        assert_eq!(
            err.status_message(),
            "map: map[image:x] does not contain declared merge key: name"
        );
        let err = patch(
            PatchType::StrategicMerge,
            r#"{"metadata":{"$setElementOrderlabels":[]}}"#,
        )
        .expect_err("bad directive");
        assert_eq!(err.status_code(), 400);
        assert_eq!(
            err.status_message(),
            "invalid patch format of setElementOrder list"
        );
    }

    #[test]
    fn failed_patch_leaves_original_untouched() {
        let original = pod();
        let meta = pod_meta();
        let _ = apply_patch(
            PatchType::Json,
            &original,
            br#"[{"op":"remove","path":"/metadata"},{"op":"test","path":"/x","value":1}]"#,
            meta.as_ref().map(|m| m as &dyn PatchMeta),
        );
        assert_eq!(original, pod());
    }
}
