//! Request and response bodies: JSON and YAML.

use serde_json::Value;

use crate::status::ApiError;

/// The media types a request body may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Yaml,
    /// `application/vnd.kubernetes.protobuf` (kubectl 1.32+ `create`).
    Protobuf,
}

impl BodyFormat {
    /// The format named by a Content-Type header (parameters ignored).
    pub fn from_content_type(content_type: &str) -> Result<BodyFormat, ApiError> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "" | "application/json" | "*/*" => Ok(BodyFormat::Json),
            "application/yaml" | "application/x-yaml" | "text/yaml" => Ok(BodyFormat::Yaml),
            crate::protobuf::MEDIA_TYPE => Ok(BodyFormat::Protobuf),
            _ => Err(ApiError::unsupported_media_type(content_type)),
        }
    }
}

/// Decode a request body into a JSON object; anything else is a 400.
pub fn decode_object(body: &[u8], format: BodyFormat) -> Result<Value, ApiError> {
    let value: Value = match format {
        BodyFormat::Protobuf => {
            let mut value = crate::protobuf::decode(body).map_err(|e| {
                ApiError::bad_request(format!("error decoding request body as protobuf: {e}"))
            })?;
            drop_go_zero_values(&mut value, false);
            value
        }
        BodyFormat::Json => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("error decoding request body as JSON: {e}"))
        })?,
        BodyFormat::Yaml => {
            let text = std::str::from_utf8(body)
                .map_err(|e| ApiError::bad_request(format!("request body is not UTF-8: {e}")))?;
            serde_yaml::from_str(text).map_err(|e| {
                ApiError::bad_request(format!("error decoding request body as YAML: {e}"))
            })?
        }
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a single Kubernetes object",
        ));
    }
    Ok(value)
}

/// Go's protobuf encoder writes every non-pointer field, so a decoded body
/// carries `""`, `0` and `false` for fields the same client would have left
/// out of JSON (`omitempty`). Upstream decodes into Go structs, where such
/// a value is the same as unset; here they are removed so defaulting sees
/// them as unset: every empty string, and every `0`/`false` inside
/// `status` and `metadata` (elsewhere a zero may be a deliberate value of a
/// pointer field, such as `replicas: 0` or `runAsUser: 0`).
fn drop_go_zero_values(value: &mut Value, zeros_too: bool) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| match v {
                Value::String(s) => !s.is_empty(),
                Value::Bool(false) => !zeros_too,
                Value::Number(n) => !(zeros_too && n.as_f64() == Some(0.0)),
                Value::Null => false,
                _ => true,
            });
            for (key, v) in map.iter_mut() {
                // Entries of user maps are data, not struct fields: an
                // empty value there is a value.
                if !USER_MAPS.contains(&key.as_str()) {
                    drop_go_zero_values(v, zeros_too || key == "status" || key == "metadata");
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                drop_go_zero_values(v, zeros_too);
            }
        }
        _ => {}
    }
}

/// Fields whose values are maps of user data.
const USER_MAPS: &[&str] = &[
    "data",
    "binaryData",
    "stringData",
    "labels",
    "annotations",
    "matchLabels",
    "nodeSelector",
    "selector",
    "hard",
    "limits",
    "requests",
    "capacity",
    "allocatable",
    "parameters",
    "extra",
];

/// What a client asked for in its Accept header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    Json,
    Yaml,
    /// `application/json;as=Table;g=meta.k8s.io;v=v1` (or v1beta1).
    Table {
        v1beta1: bool,
    },
    /// `as=PartialObjectMetadata` / `as=PartialObjectMetadataList`
    /// (`g=meta.k8s.io`, v1 or v1beta1): metadata only.
    PartialMetadata {
        v1beta1: bool,
    },
    /// `as=APIGroupDiscoveryList;g=apidiscovery.k8s.io` (v2 or v2beta1),
    /// only meaningful on `/api` and `/apis`.
    AggregatedDiscovery {
        v2beta1: bool,
    },
}

/// Pick the response format from an Accept header, honouring the first
/// alternative this server can produce.
pub fn negotiate(accept: &str) -> Result<ResponseFormat, ApiError> {
    if accept.trim().is_empty() {
        return Ok(ResponseFormat::Json);
    }
    for alternative in accept.split(',') {
        let mut parts = alternative.split(';').map(str::trim);
        let essence = parts.next().unwrap_or("").to_ascii_lowercase();
        let (mut as_kind, mut group, mut version) = ("", "", "");
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                match k.trim() {
                    "as" => as_kind = v.trim(),
                    "g" => group = v.trim(),
                    "v" => version = v.trim(),
                    _ => {}
                }
            }
        }
        let json_like = matches!(
            essence.as_str(),
            "application/json" | "application/*" | "*/*"
        );
        if json_like && as_kind == "Table" && group == "meta.k8s.io" {
            if version == "v1" || version == "v1beta1" {
                return Ok(ResponseFormat::Table {
                    v1beta1: version == "v1beta1",
                });
            }
            continue;
        }
        let meta_version = version == "v1" || version == "v1beta1";
        if json_like
            && group == "meta.k8s.io"
            && meta_version
            && (as_kind == "PartialObjectMetadata" || as_kind == "PartialObjectMetadataList")
        {
            return Ok(ResponseFormat::PartialMetadata {
                v1beta1: version == "v1beta1",
            });
        }
        if json_like
            && as_kind == "APIGroupDiscoveryList"
            && group == "apidiscovery.k8s.io"
            && (version == "v2" || version == "v2beta1")
        {
            return Ok(ResponseFormat::AggregatedDiscovery {
                v2beta1: version == "v2beta1",
            });
        }
        if !as_kind.is_empty() {
            // A conversion this server cannot do: try the next choice.
            continue;
        }
        match essence.as_str() {
            "application/json" | "application/*" | "*/*" => return Ok(ResponseFormat::Json),
            "application/yaml" => return Ok(ResponseFormat::Yaml),
            _ => {}
        }
    }
    Err(ApiError::not_acceptable(format!(
        "only the following media types are accepted: application/json, application/yaml (asked for {accept:?})"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_table_accept_header_negotiates_a_table() {
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate(accept).unwrap(),
            ResponseFormat::Table { v1beta1: false }
        );
    }

    #[test]
    fn discovery_and_partial_metadata_are_negotiated() {
        let accept =
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        assert_eq!(
            negotiate(accept).unwrap(),
            ResponseFormat::AggregatedDiscovery { v2beta1: false }
        );
        let accept =
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
        assert_eq!(
            negotiate(accept).unwrap(),
            ResponseFormat::PartialMetadata { v1beta1: false }
        );
        let other = "application/json;as=Other;g=x;v=v1,application/json";
        assert_eq!(negotiate(other).unwrap(), ResponseFormat::Json);
        assert!(negotiate("text/html").is_err());
    }

    #[test]
    fn malformed_bodies_are_400() {
        assert_eq!(decode_object(b"{", BodyFormat::Json).unwrap_err().code, 400);
        assert_eq!(
            decode_object(b"[1]", BodyFormat::Json).unwrap_err().code,
            400
        );
        assert_eq!(
            decode_object(b"a: [", BodyFormat::Yaml).unwrap_err().code,
            400
        );
        assert!(decode_object(b"kind: ConfigMap\n", BodyFormat::Yaml).is_ok());
    }
}

#[cfg(test)]
mod protobuf_zero_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_zero_values_are_dropped_but_user_data_and_spec_zeros_stay() {
        let mut v = json!({
            "metadata": {"name": "a", "namespace": "", "generation": 0, "labels": {"k": ""}},
            "data": {"empty": ""},
            "spec": {"replicas": 0, "paused": false, "strategy": {"type": ""}},
            "status": {"replicas": 0, "conditions": []},
        });
        drop_go_zero_values(&mut v, false);
        assert_eq!(
            v,
            json!({
                "metadata": {"name": "a", "labels": {"k": ""}},
                "data": {"empty": ""},
                "spec": {"replicas": 0, "paused": false, "strategy": {}},
                "status": {"conditions": []},
            })
        );
    }
}
