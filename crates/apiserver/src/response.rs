//! Building HTTP responses: JSON/YAML objects, `Status` errors, streams.

use std::convert::Infallible;

use apimachinery::codec::ResponseFormat;
use apimachinery::ApiError;
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

fn with_type(code: u16, content_type: &'static str, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A JSON (or YAML, if asked for) response with the given status code.
pub fn object(code: u16, value: &Value, format: ResponseFormat) -> Response<Body> {
    if format == ResponseFormat::Yaml {
        if let Ok(text) = serde_yaml::to_string(value) {
            return with_type(code, "application/yaml", full(text));
        }
    }
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    with_type(code, "application/json", full(bytes))
}

pub fn bytes(code: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    with_type(code, content_type, full(body))
}

pub fn json(code: u16, value: &Value) -> Response<Body> {
    object(code, value, ResponseFormat::Json)
}

pub fn text(code: u16, body: String) -> Response<Body> {
    let mut resp = with_type(code, "text/plain; charset=utf-8", full(body));
    resp.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The error as a `Status` body, with Retry-After where it applies.
pub fn error(err: &ApiError) -> Response<Body> {
    let mut resp = json(err.code, &err.to_status());
    if let Some(secs) = err.retry_after_seconds() {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// A streaming response (watch).
pub fn stream(content_type: &'static str, body: Body) -> Response<Body> {
    let mut resp = with_type(200, content_type, body);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    resp
}

/// Attach `Warning: 299 - "..."` headers, as upstream sends them.
pub fn with_warnings(mut resp: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}
