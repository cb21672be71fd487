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

/// Bytes a [`JsonArray`] body gathers into one frame.
const ARRAY_CHUNK: usize = 128 * 1024;

/// `head`, then the items joined by commas, then `tail`, sent in frames of
/// about [`ARRAY_CHUNK`] bytes as the connection takes them: a LIST of the
/// cache's objects is never copied into one buffer, so its cost in memory
/// is a frame, not the whole response.
pub struct JsonArray<T> {
    head: Option<Bytes>,
    items: std::vec::IntoIter<T>,
    wrote_item: bool,
    tail: Option<Bytes>,
    remaining: u64,
}

impl<T: AsRef<[u8]>> JsonArray<T> {
    pub fn new(head: impl Into<Bytes>, items: Vec<T>, tail: impl Into<Bytes>) -> Self {
        let (head, tail) = (head.into(), tail.into());
        let commas = items.len().saturating_sub(1);
        let remaining = head.len()
            + tail.len()
            + commas
            + items.iter().map(|i| i.as_ref().len()).sum::<usize>();
        JsonArray {
            head: Some(head),
            items: items.into_iter(),
            wrote_item: false,
            tail: Some(tail),
            remaining: remaining as u64,
        }
    }
}

impl<T: AsRef<[u8]> + Unpin> hyper::body::Body for JsonArray<T> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        let mut chunk = Vec::with_capacity(ARRAY_CHUNK + 4096);
        if let Some(head) = this.head.take() {
            chunk.extend_from_slice(&head);
        }
        std::task::Poll::Ready(this.fill(chunk))
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.tail.is_none()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.remaining)
    }
}

impl<T: AsRef<[u8]>> JsonArray<T> {
    /// Add items (and at the end the tail) to `chunk` until it is full.
    fn fill(
        &mut self,
        mut chunk: Vec<u8>,
    ) -> Option<Result<hyper::body::Frame<Bytes>, Infallible>> {
        while chunk.len() < ARRAY_CHUNK {
            match self.items.next() {
                Some(item) => {
                    if self.wrote_item {
                        chunk.push(b',');
                    }
                    self.wrote_item = true;
                    chunk.extend_from_slice(item.as_ref());
                }
                None => match self.tail.take() {
                    Some(tail) => {
                        chunk.extend_from_slice(&tail);
                        break;
                    }
                    None => break,
                },
            }
        }
        if chunk.is_empty() {
            return None;
        }
        self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
        Some(Ok(hyper::body::Frame::data(Bytes::from(chunk))))
    }
}

/// A JSON response streamed from a [`JsonArray`].
pub fn json_array<T>(code: u16, body: JsonArray<T>) -> Response<Body>
where
    T: AsRef<[u8]> + Unpin + Send + 'static,
{
    with_type(code, "application/json", body.boxed_unsync())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Body as _;

    #[tokio::test]
    async fn a_json_array_streams_its_items_joined_by_commas_with_an_exact_length() {
        let items: Vec<Bytes> = (0..50_000)
            .map(|i| Bytes::from(format!("{{\"i\":{i}}}")))
            .collect();
        let expected = format!(
            "{{\"items\":[{}]}}",
            (0..50_000)
                .map(|i| format!("{{\"i\":{i}}}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let body = JsonArray::new(&b"{\"items\":["[..], items, &b"]}"[..]);
        assert_eq!(body.size_hint().exact(), Some(expected.len() as u64));
        let mut body = body;
        let mut out = Vec::new();
        let mut frames = 0;
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            assert!(!data.is_empty());
            out.extend_from_slice(&data);
            frames += 1;
        }
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        assert!(
            frames > 1,
            "a body larger than a chunk comes in several frames"
        );
        assert!(body.is_end_stream());

        let mut empty = JsonArray::new(&b"["[..], Vec::<Bytes>::new(), &b"]"[..]);
        assert_eq!(
            empty.frame().await.unwrap().unwrap().into_data().unwrap(),
            "[]"
        );
        assert!(empty.frame().await.is_none());
    }
}
