//! Watch: a stream of `{"type": ..., "object": ...}` lines.
//!
//! Without a resourceVersion (or with "0") the stream opens with an ADDED
//! event per existing object, then follows changes; with one it delivers
//! every change after it. Selectors are applied to transitions: an object
//! that stops matching is reported DELETED, one that starts matching ADDED.

use std::sync::Arc;
use std::time::Duration;

use apimachinery::codec::ResponseFormat;
use apimachinery::{meta, ApiError};
use bytes::Bytes;
use futures::StreamExt;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::cacher::{CacheEvent, CacheEventType};
use crate::pipeline::RequestContext;
use crate::registry::Strategy;
use crate::response::{self, Body};
use crate::rest::Filter;
use crate::ApiServer;

/// Upstream picks a watch timeout between 30 and 60 minutes.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// One event of the stream as the pieces it is written in: an event's
/// cached object goes out as the shared bytes it is, never copied into a
/// line of its own.
enum Chunk {
    Line(Bytes),
    /// `head`, the object's JSON, then `}` and a newline.
    Object {
        head: &'static [u8],
        object: Bytes,
    },
}

impl Chunk {
    fn pieces(self) -> impl Iterator<Item = Bytes> {
        let pieces = match self {
            Chunk::Line(line) => [Some(line), None, None],
            Chunk::Object { head, object } => [
                Some(Bytes::from_static(head)),
                Some(object),
                Some(Bytes::from_static(b"}\n")),
            ],
        };
        pieces.into_iter().flatten()
    }
}

/// The opening of a JSON watch event of `event_type`, up to its object.
fn json_head(event_type: &str) -> Option<&'static [u8]> {
    match event_type {
        "ADDED" => Some(br#"{"type":"ADDED","object":"#),
        "MODIFIED" => Some(br#"{"type":"MODIFIED","object":"#),
        "DELETED" => Some(br#"{"type":"DELETED","object":"#),
        _ => None,
    }
}

struct Encoder {
    strategy: Arc<dyn Strategy>,
    format: ResponseFormat,
    include: String,
    sent_columns: bool,
}

impl Encoder {
    /// One event of the cache; plain JSON sends the cached object's bytes
    /// that every other watcher shares.
    fn event_line(&mut self, event_type: &str, ev: &CacheEvent) -> Chunk {
        let info = self.strategy.info();
        if crate::conversion::applies(info) {
            let obj = crate::conversion::for_client(info, ev.object.decode());
            return self.line(event_type, &obj);
        }
        match (self.format, json_head(event_type)) {
            (ResponseFormat::Json, Some(head)) => Chunk::Object {
                head,
                object: ev.object.json().clone(),
            },
            // Metadata is all a metadata watch sends: its JSON is cut
            // from the cached object's, which is decoded only if that fails.
            (ResponseFormat::PartialMetadata { v1beta1 }, _) => {
                metadata_line(event_type, ev.object.json(), v1beta1).unwrap_or_else(|| {
                    self.line(event_type, &json!({"metadata": ev.object.metadata()}))
                })
            }
            _ => self.line(event_type, &ev.object.decode()),
        }
    }

    fn line(&mut self, event_type: &str, obj: &Value) -> Chunk {
        let object = match self.format {
            ResponseFormat::Table { v1beta1 }
                if event_type != "ERROR" && event_type != "BOOKMARK" =>
            {
                let t = crate::table::table(
                    self.strategy.as_ref(),
                    &[obj],
                    json!({"resourceVersion": meta::resource_version(obj)}),
                    &self.include,
                    v1beta1,
                    !self.sent_columns,
                );
                self.sent_columns = true;
                t
            }
            ResponseFormat::PartialMetadata { v1beta1 }
                if event_type != "ERROR" && event_type != "BOOKMARK" =>
            {
                crate::rest::partial_metadata(obj, v1beta1)
            }
            _ => obj.clone(),
        };
        let mut line =
            serde_json::to_vec(&json!({"type": event_type, "object": object})).unwrap_or_default();
        line.push(b'\n');
        Chunk::Line(Bytes::from(line))
    }
}

/// A metadata watch's event line for an object's cached JSON, as
/// [`crate::rest::partial_metadata`] renders it.
fn metadata_line(event_type: &str, object: &[u8], v1beta1: bool) -> Option<Chunk> {
    let metadata = crate::rest::metadata_json(object)?;
    let api_version = crate::rest::meta_api_version(v1beta1);
    let mut line = Vec::with_capacity(metadata.len() + 120);
    line.extend_from_slice(br#"{"type":""#);
    line.extend_from_slice(event_type.as_bytes());
    line.extend_from_slice(br#"","object":{"apiVersion":""#);
    line.extend_from_slice(api_version.as_bytes());
    line.extend_from_slice(br#"","kind":"PartialObjectMetadata","metadata":"#);
    line.extend_from_slice(metadata);
    line.extend_from_slice(b"}}\n");
    Some(Chunk::Line(Bytes::from(line)))
}

/// Classify one cache event for a watcher with `filter`: an object that
/// starts matching is ADDED, one that stops matching (or is deleted) is
/// DELETED. The object sent is always the event's own, whose
/// resourceVersion is the event's revision.
fn translate(ev: &CacheEvent, filter: &Filter) -> Option<&'static str> {
    let now = match ev.event_type {
        CacheEventType::Put => Some(ev.object.selectable()),
        CacheEventType::Delete => None,
    };
    let matched_now = now.is_some_and(|o| filter.matches(o));
    let matched_before = ev
        .prev
        .as_deref()
        .is_some_and(|o| filter.matches(o.selectable()));
    match (matched_before, matched_now) {
        (false, true) => Some("ADDED"),
        (true, true) => Some("MODIFIED"),
        (true, false) => Some("DELETED"),
        (false, false) => None,
    }
}

pub async fn serve(
    state: Arc<ApiServer>,
    strategy: Arc<dyn Strategy>,
    namespace: String,
    ctx: RequestContext,
    format: ResponseFormat,
) -> Result<Response<Body>, ApiError> {
    let info = strategy.info();
    let mut filter_query = ctx.query.clone();
    if !ctx.info.name.is_empty() {
        let existing = filter_query.str("fieldSelector").to_string();
        let by_name = format!("metadata.name={}", ctx.info.name);
        let combined = if existing.is_empty() {
            by_name
        } else {
            format!("{existing},{by_name}")
        };
        filter_query = filter_query.with("fieldSelector", &combined);
    }
    let filter = Filter::from_query(&RequestContext {
        info: ctx.info.clone(),
        user: ctx.user.clone(),
        query: filter_query,
    })?;
    let timeout = ctx
        .query
        .int("timeoutSeconds")?
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64))
        .unwrap_or(DEFAULT_TIMEOUT);
    let bookmarks = ctx.query.flag("allowWatchBookmarks");
    let prefix = info.list_prefix(&namespace);
    let rv_param = ctx.query.str("resourceVersion");
    let from = if rv_param.is_empty() || rv_param == "0" {
        None
    } else {
        Some(rv_param.parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!("invalid resource version: {rv_param:?}"))
        })?)
    };
    let start = state.cache.watch(&prefix, from).await;

    let (tx, rx) = mpsc::channel::<Chunk>(64);
    let mut encoder = Encoder {
        strategy: strategy.clone(),
        format,
        include: ctx
            .query
            .get("includeObject")
            .unwrap_or("Metadata")
            .to_string(),
        sent_columns: false,
    };
    let kind = info.kind;
    let api_version = info.api_version();
    tokio::spawn(async move {
        // A too-old resourceVersion is reported in the stream, as upstream
        // does, so clients re-list.
        let start = match start {
            Ok(s) => s,
            Err(err) => {
                let _ = tx.send(encoder.line("ERROR", &err.to_status())).await;
                return;
            }
        };
        let mut last_rev = start.revision;
        for ev in &start.backlog {
            if let Some(t) = translate(ev, &filter) {
                if tx.send(encoder.event_line(t, ev)).await.is_err() {
                    return;
                }
            }
        }
        let mut live = start.live;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut bookmark = tokio::time::interval(BOOKMARK_INTERVAL);
        bookmark.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = bookmark.tick(), if bookmarks => {
                    // Every event up to the cache's revision is already in
                    // `live`; once that holds nothing more, this watch has
                    // seen all of them, and a quiet resource's bookmark
                    // still moves forward.
                    let now = state.cache.revision_now();
                    if live.is_empty() {
                        last_rev = last_rev.max(now);
                    }
                    let obj = json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": last_rev.to_string()}});
                    if tx.send(encoder.line("BOOKMARK", &obj)).await.is_err() {
                        return;
                    }
                }
                next = live.recv() => {
                    let ev = match next {
                        Ok(ev) => ev,
                        // Behind the live stream: catch up from the cache's
                        // history instead of ending the watch; only a
                        // watcher older than that history gets 410 Expired.
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            match state.cache.watch(&prefix, Some(last_rev)).await {
                                Ok(resumed) => {
                                    for ev in &resumed.backlog {
                                        last_rev = last_rev.max(ev.revision);
                                        if let Some(t) = translate(ev, &filter) {
                                            if tx.send(encoder.event_line(t, ev)).await.is_err() {
                                                return;
                                            }
                                        }
                                    }
                                    last_rev = last_rev.max(resumed.revision);
                                    live = resumed.live;
                                    continue;
                                }
                                Err(err) => {
                                    let _ = tx.send(encoder.line("ERROR", &err.to_status())).await;
                                    return;
                                }
                            }
                        }
                        // A cache reset ends the watch; the client re-watches
                        // from its last resourceVersion.
                        Err(broadcast::error::RecvError::Closed) => return,
                    };
                    if ev.revision <= last_rev {
                        continue;
                    }
                    last_rev = ev.revision;
                    if !ev.key.starts_with(&prefix) {
                        continue;
                    }
                    if let Some(t) = translate(&ev, &filter) {
                        if tx.send(encoder.event_line(t, &ev)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    let frames = ReceiverStream::new(rx)
        .flat_map(|chunk| futures::stream::iter(chunk.pieces()))
        .map(|b| Ok(Frame::data(b)));
    let body = StreamBody::new(frames).boxed_unsync();
    let content_type = match format {
        ResponseFormat::Yaml => "application/yaml",
        _ => "application/json",
    };
    Ok(response::stream(content_type, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(chunk: Chunk) -> Value {
        let bytes: Vec<u8> = chunk.pieces().flat_map(|b| b.to_vec()).collect();
        assert_eq!(bytes.last(), Some(&b'\n'));
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn a_metadata_watch_event_cut_from_the_json_is_the_one_decoding_renders() {
        let registry = crate::registry::Registry::builtin();
        let pods = registry.lookup("", "v1", "pods").unwrap().clone();
        let object = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "resourceVersion": "12",
                "labels": {"a": "b \"quoted\" }"}, "ownerReferences": [{"name": "o"}]},
            "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let bytes = serde_json::to_vec(&object).unwrap();
        for v1beta1 in [false, true] {
            let mut encoder = Encoder {
                strategy: pods.clone(),
                format: ResponseFormat::PartialMetadata { v1beta1 },
                include: String::new(),
                sent_columns: false,
            };
            let decoded = encoder.line("MODIFIED", &object);
            let cut = metadata_line("MODIFIED", &bytes, v1beta1).unwrap();
            assert_eq!(text(cut), text(decoded));
        }
        assert!(metadata_line("ADDED", br#"{"kind":"Pod"}"#, false).is_none());
    }
}
