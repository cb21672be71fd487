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
use storage::{EventType, RangeRequest, WatchEvent};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::pipeline::RequestContext;
use crate::registry::Strategy;
use crate::response::{self, Body};
use crate::rest::{decode_stored, storage_error, Filter};
use crate::ApiServer;

/// Upstream picks a watch timeout between 30 and 60 minutes.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

struct Encoder {
    strategy: Arc<dyn Strategy>,
    format: ResponseFormat,
    include: String,
    sent_columns: bool,
}

impl Encoder {
    fn line(&mut self, event_type: &str, obj: &Value) -> Bytes {
        let object = match self.format {
            ResponseFormat::Table { v1beta1 }
                if event_type != "ERROR" && event_type != "BOOKMARK" =>
            {
                let t = crate::table::table(
                    self.strategy.as_ref(),
                    std::slice::from_ref(obj),
                    json!({"resourceVersion": meta::resource_version(obj)}),
                    &self.include,
                    v1beta1,
                    !self.sent_columns,
                );
                self.sent_columns = true;
                t
            }
            _ => obj.clone(),
        };
        let mut line =
            serde_json::to_vec(&json!({"type": event_type, "object": object})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

/// Classify one store event for a watcher with `filter`.
fn translate(ev: &WatchEvent, filter: &Filter) -> Result<Option<(&'static str, Value)>, ApiError> {
    let now = match ev.event_type {
        EventType::Put => Some(decode_stored(&ev.kv)?),
        EventType::Delete => None,
    };
    let before = match &ev.prev_kv {
        Some(prev) => Some(decode_stored(prev)?),
        None => None,
    };
    let matched_now = now.as_ref().is_some_and(|o| filter.matches(o));
    let matched_before = before.as_ref().is_some_and(|o| filter.matches(o));
    let rv = json!(ev.kv.mod_revision.to_string());
    Ok(match (matched_before, matched_now) {
        (false, true) => now.map(|o| ("ADDED", o)),
        (true, true) => now.map(|o| ("MODIFIED", o)),
        (true, false) => {
            // Deleted, or no longer selected: report the last state we
            // know at this event's revision.
            let mut last = now.or(before).unwrap_or(Value::Null);
            meta::set_meta(&mut last, "resourceVersion", rv);
            Some(("DELETED", last))
        }
        (false, false) => None,
    })
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

    // Initial state for a watch without a resourceVersion.
    let mut initial = Vec::new();
    let start_revision = if rv_param.is_empty() || rv_param == "0" {
        let mut start_key = None;
        // Every page is read at the first page's revision.
        let mut revision = 0;
        loop {
            let page = state
                .store
                .range(RangeRequest {
                    prefix: prefix.clone(),
                    start_key: start_key.clone(),
                    limit: 500,
                    revision,
                })
                .await
                .map_err(|e| storage_error(e, info.plural, info.group, ""))?;
            for kv in &page.kvs {
                let obj = decode_stored(kv)?;
                if filter.matches(&obj) {
                    initial.push(obj);
                }
            }
            revision = page.revision;
            if !page.more {
                break;
            }
            start_key = page.kvs.last().map(|kv| format!("{}\u{0}", kv.key));
        }
        revision
    } else {
        rv_param
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv_param:?}")))?
    };

    let store_watch = state.store.watch(&prefix, start_revision + 1).await;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
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
        for obj in &initial {
            if tx.send(encoder.line("ADDED", obj)).await.is_err() {
                return;
            }
        }
        let mut events = match store_watch {
            Ok(s) => s,
            Err(e) => {
                let status = storage_error(e, "", "", "").to_status();
                let _ = tx.send(encoder.line("ERROR", &status)).await;
                return;
            }
        };
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut bookmark = tokio::time::interval(BOOKMARK_INTERVAL);
        bookmark.tick().await;
        let mut last_rev = start_revision;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = bookmark.tick(), if bookmarks => {
                    let obj = json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": last_rev.to_string()}});
                    if tx.send(encoder.line("BOOKMARK", &obj)).await.is_err() {
                        return;
                    }
                }
                next = events.next() => {
                    let line = match next {
                        None => return,
                        Some(Err(e)) => {
                            let mut err = storage_error(e, "", "", "");
                            if err.code == 410 {
                                err.reason = apimachinery::StatusReason::Expired;
                            }
                            let _ = tx.send(encoder.line("ERROR", &err.to_status())).await;
                            return;
                        }
                        Some(Ok(ev)) => {
                            last_rev = ev.kv.mod_revision;
                            match translate(&ev, &filter) {
                                Ok(Some((t, obj))) => encoder.line(t, &obj),
                                Ok(None) => continue,
                                Err(e) => encoder.line("ERROR", &e.to_status()),
                            }
                        }
                    };
                    if tx.send(line).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let body = StreamBody::new(ReceiverStream::new(rx).map(|b| Ok(Frame::data(b)))).boxed_unsync();
    let content_type = match format {
        ResponseFormat::Yaml => "application/yaml",
        _ => "application/json",
    };
    Ok(response::stream(content_type, body))
}
