//! Typed decoding: an object is checked against its Kubernetes type (from
//! `k8s-openapi`) by decoding it into that type and back. Wrong types are a
//! 400 like upstream's decoder errors; fields the type does not have are
//! "unknown fields", dropped from the object and reported as the request's
//! `fieldValidation` asks (Strict: 400, Warn: `Warning` headers, Ignore).

use apimachinery::ApiError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::query::Query;

/// `?fieldValidation=`; upstream's default is Warn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

impl FieldValidation {
    pub fn from_query(query: &Query) -> Result<Self, ApiError> {
        match query.str("fieldValidation") {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Strict" => Ok(FieldValidation::Strict),
            "Ignore" => Ok(FieldValidation::Ignore),
            other => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}"
            ))),
        }
    }

    /// Apply this policy to the unknown fields found; returns warnings.
    pub fn judge(self, unknown: Vec<UnknownField>) -> Result<Vec<String>, ApiError> {
        if unknown.is_empty() || self == FieldValidation::Ignore {
            return Ok(Vec::new());
        }
        let messages: Vec<String> = unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        match self {
            FieldValidation::Strict => Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                messages.join(", ")
            ))),
            _ => Ok(messages),
        }
    }
}

/// A typed decode: the normalised object and its unknown fields.
pub type Decoded = Result<(Value, Vec<UnknownField>), ApiError>;

/// One step of an unknown field's path: a member or a list index.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Field(String),
    Index(usize),
}

/// A field the type does not have, by its path in the object; it prints
/// as upstream's decoder names it (`spec.containers[0].bogus`).
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownField(pub Vec<Step>);

impl std::fmt::Display for UnknownField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Field(name) if i == 0 => f.write_str(name)?,
                Step::Field(name) => write!(f, ".{name}")?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// How a kind's objects are checked against its type: from a decoded
/// tree (every body format), and straight from a JSON body's bytes.
#[derive(Clone, Copy)]
pub struct Codec {
    pub from_value: fn(&Value) -> Decoded,
    pub from_json: fn(&[u8]) -> Option<Value>,
}

/// The codec of type `T`.
pub fn codec<T: DeserializeOwned + Serialize>() -> Codec {
    Codec {
        from_value: roundtrip::<T>,
        from_json: from_json::<T>,
    }
}

/// Decode a JSON body straight into `T` and encode it again: the object
/// [`roundtrip`] gives for a body that decodes cleanly and has no unknown
/// fields, without building the body's tree first. Anything else (a type
/// error, an unknown field, trailing data) is `None`, and the
/// caller takes the general route, which words the error as upstream does
/// and reports the unknown fields as the request's `fieldValidation` asks.
pub fn from_json<T: DeserializeOwned + Serialize>(body: &[u8]) -> Option<Value> {
    let mut unknown = false;
    let mut de = serde_json::Deserializer::from_slice(body);
    let typed: T = serde_ignored::deserialize(&mut de, |_| unknown = true).ok()?;
    de.end().ok()?;
    if unknown {
        return None;
    }
    serde_json::to_value(&typed).ok()
}

/// Decode `obj` as `T` and encode it again. Returns the normalised object
/// and the paths of fields `T` does not know.
pub fn roundtrip<T: DeserializeOwned + Serialize>(obj: &Value) -> Decoded {
    // Deserialized from the borrowed tree: no copy of the input first.
    let typed = T::deserialize(obj)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))?;
    let back = serde_json::to_value(&typed)
        .map_err(|e| ApiError::internal(format!("cannot encode object: {e}")))?;
    let mut unknown = Vec::new();
    collect_unknown(obj, &back, &mut Vec::new(), &mut unknown);
    Ok((back, unknown))
}

/// The paths of `input`'s non-null fields that `known` lacks. `path` is
/// the path so far; it is only copied out for unknown fields.
fn collect_unknown<'a>(
    input: &'a Value,
    known: &Value,
    path: &mut Vec<PathPart<'a>>,
    out: &mut Vec<UnknownField>,
) {
    match (input, known) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                path.push(PathPart::Field(k));
                match b.get(k) {
                    Some(kv) => collect_unknown(v, kv, path, out),
                    None if !v.is_null() => out.push(UnknownField(
                        path.iter()
                            .map(|part| match part {
                                PathPart::Field(name) => Step::Field(name.to_string()),
                                PathPart::Index(i) => Step::Index(*i),
                            })
                            .collect(),
                    )),
                    None => {}
                }
                path.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (v, kv)) in a.iter().zip(b).enumerate() {
                path.push(PathPart::Index(i));
                collect_unknown(v, kv, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone, Copy)]
enum PathPart<'a> {
    Field(&'a str),
    Index(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_found_and_dropped() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "bogus": 1}, "data": {"k": "v"}, "extra": {"x": 1}});
        let (back, unknown) = roundtrip::<ConfigMap>(&obj).unwrap();
        let names: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["extra", "metadata.bogus"]);
        assert!(back.get("extra").is_none());
        assert_eq!(back["data"]["k"], "v");
        assert!(FieldValidation::Strict.judge(unknown.clone()).is_err());
        assert_eq!(FieldValidation::Warn.judge(unknown).unwrap().len(), 2);
    }

    #[test]
    fn a_clean_json_body_decodes_as_the_general_route_does() {
        let body = br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"x": "y"}, "creationTimestamp": null}, "data": {"k": "v"}, "binaryData": null}"#;
        let fast = from_json::<ConfigMap>(body).unwrap();
        let tree: Value = serde_json::from_slice(body).unwrap();
        let (slow, unknown) = roundtrip::<ConfigMap>(&tree).unwrap();
        assert!(unknown.is_empty());
        assert_eq!(fast, slow);
        // Without apiVersion and kind the type supplies them.
        let bare = from_json::<ConfigMap>(br#"{"metadata": {"name": "a"}}"#).unwrap();
        assert_eq!(bare["kind"], "ConfigMap");
        assert_eq!(bare["apiVersion"], "v1");
    }

    #[test]
    fn anything_but_a_clean_json_body_takes_the_general_route() {
        for body in [
            &br#"{"kind": "ConfigMap", "metadata": {"name": "a", "bogus": 1}}"#[..],
            br#"{"kind": "ConfigMap", "metadata": {"name": "a"}, "extra": null}"#,
            br#"{"kind": "Secret", "metadata": {"name": "a"}}"#,
            br#"{"kind": "ConfigMap", "data": {"k": 1}}"#,
            br#"{"kind": "ConfigMap"} {}"#,
            br#"[]"#,
            b"not json",
        ] {
            assert!(
                from_json::<ConfigMap>(body).is_none(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn wrong_types_are_bad_requests() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": 1}});
        assert_eq!(roundtrip::<ConfigMap>(&obj).unwrap_err().code, 400);
    }
}
