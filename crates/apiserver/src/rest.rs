//! Generic REST handlers: get, list, create, update, delete and
//! deletecollection for any registered resource (watch lives in
//! [`crate::watch`]). Kind-specific behaviour comes from the resource's
//! [`Strategy`].
//!
//! Objects are stored as JSON without `metadata.resourceVersion`; on the
//! way out the resourceVersion is the key's mod revision.

use std::sync::Arc;

use apimachinery::codec::{self, BodyFormat, ResponseFormat};
use apimachinery::patch::{
    apply_patch, builtin_meta, PatchError, PatchMeta, PatchType, BUILTIN_PATCH_CONTENT_TYPES,
};
use apimachinery::selector::{labels_in, Selector};
use apimachinery::status::success_status;
use apimachinery::{meta, ApiError, ResourceInfo};
use bytes::Bytes;
use http::{header, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{json, Value};
use storage::{KeyValue, RangeRequest, StorageError};

use crate::admission::{self, Operation};
use crate::cacher::{Cached, Selectable};
use crate::pipeline::RequestContext;
use crate::registry::{DeleteAction, Strategy};
use crate::response::{self, Body};
use crate::typed::FieldValidation;
use crate::{ApiServer, MAX_REQUEST_BODY_BYTES};

/// The one place a datastore error becomes an API error.
pub fn storage_error(err: StorageError, resource: &str, group: &str, name: &str) -> ApiError {
    match err {
        StorageError::KeyExists(_) => ApiError::already_exists(resource, group, name),
        StorageError::NotFound(_) => ApiError::not_found(resource, group, name),
        StorageError::Conflict { .. } => ApiError::conflict_modified(resource, group, name),
        StorageError::Compacted {
            requested,
            compact_revision,
        } => ApiError::expired(format!(
            "too old resource version: {requested} ({compact_revision})"
        )),
        StorageError::FutureRevision { requested, current } => ApiError::new(
            504,
            apimachinery::StatusReason::Timeout,
            format!("Too large resource version: {requested}, current: {current}"),
        ),
        StorageError::InvalidRequest(m) => ApiError::bad_request(m),
        StorageError::Unavailable(m) => {
            ApiError::unavailable(format!("datastore unavailable: {m}"))
        }
        StorageError::Internal(m) => ApiError::internal(m),
    }
}

/// Decode a stored object and stamp its resourceVersion.
pub fn decode_stored(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut obj: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is corrupt: {e}", kv.key)))?;
    meta::set_meta(
        &mut obj,
        "resourceVersion",
        json!(kv.mod_revision.to_string()),
    );
    Ok(obj)
}

/// A stored object's JSON with `"resourceVersion":"<revision>"` put first
/// in its top-level `metadata`, without decoding it: what a read answers.
/// None when the bytes are not an object with a `metadata` object, or its
/// metadata already mentions a `resourceVersion` (written before it was
/// stripped), so the caller decodes instead.
pub fn stored_json_with_revision(stored: &[u8], revision: i64) -> Option<Vec<u8>> {
    const RV: &[u8] = b"\"resourceVersion\"";
    let at = json_scan::top_level_member(stored, b"metadata")?;
    if stored.get(at) != Some(&b'{') {
        return None;
    }
    let end = json_scan::skip_value(stored, at)?;
    if stored[at..end].windows(RV.len()).any(|w| w == RV) {
        return None;
    }
    let inner = json_scan::skip_ws(stored, at + 1);
    let empty = stored.get(inner) == Some(&b'}');
    let mut out = Vec::with_capacity(stored.len() + 40);
    out.extend_from_slice(&stored[..=at]);
    out.extend_from_slice(RV);
    out.extend_from_slice(b":\"");
    out.extend_from_slice(revision.to_string().as_bytes());
    out.extend_from_slice(if empty { b"\"" } else { b"\"," });
    out.extend_from_slice(&stored[at + 1..]);
    Some(out)
}

/// The JSON text of an object's top-level `metadata` object, found
/// without decoding the object.
pub fn metadata_json(object: &[u8]) -> Option<&[u8]> {
    let at = json_scan::top_level_member(object, b"metadata")?;
    if object.get(at) != Some(&b'{') {
        return None;
    }
    Some(&object[at..json_scan::skip_value(object, at)?])
}

/// Just enough of a JSON scanner to find a top-level member of a
/// well-formed document. Every function answers None on anything it does
/// not understand.
mod json_scan {
    pub fn skip_ws(json: &[u8], mut i: usize) -> usize {
        while json.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        i
    }

    /// The index of the closing quote of the string opening at `start`.
    fn string_end(json: &[u8], start: usize) -> Option<usize> {
        let mut i = start + 1;
        while i < json.len() {
            match json[i] {
                b'\\' => i += 2,
                b'"' => return Some(i),
                _ => i += 1,
            }
        }
        None
    }

    /// The index just past the value starting at `i`.
    pub fn skip_value(json: &[u8], i: usize) -> Option<usize> {
        match json.get(i)? {
            b'"' => Some(string_end(json, i)? + 1),
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut j = i;
                while j < json.len() {
                    match json[j] {
                        b'"' => j = string_end(json, j)?,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.checked_sub(1)?;
                            if depth == 0 {
                                return Some(j + 1);
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                None
            }
            _ => {
                let mut j = i;
                while j < json.len()
                    && !matches!(json[j], b',' | b'}' | b']')
                    && !json[j].is_ascii_whitespace()
                {
                    j += 1;
                }
                (j > i).then_some(j)
            }
        }
    }

    /// Where the value of the top-level member `key` starts.
    pub fn top_level_member(json: &[u8], key: &[u8]) -> Option<usize> {
        let mut i = skip_ws(json, 0);
        if json.get(i) != Some(&b'{') {
            return None;
        }
        i += 1;
        loop {
            i = skip_ws(json, i);
            if json.get(i) != Some(&b'"') {
                return None;
            }
            let end = string_end(json, i)?;
            let name = &json[i + 1..end];
            i = skip_ws(json, end + 1);
            if json.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(json, i + 1);
            if name == key {
                return Some(i);
            }
            i = skip_ws(json, skip_value(json, i)?);
            if json.get(i) != Some(&b',') {
                return None;
            }
            i += 1;
        }
    }
}

/// The object as stored: in its resource's storage version and without
/// `resourceVersion`, which the datastore's revision supplies on every
/// read. Written through a filtering view rather than a deep copy with the
/// field removed.
fn encode_for_store(info: &ResourceInfo, obj: &Value) -> Vec<u8> {
    let converted = crate::conversion::for_storage(info, obj);
    let obj = converted.as_ref().unwrap_or(obj);
    serde_json::to_vec(&WithoutResourceVersion(obj)).unwrap_or_default()
}

/// A written object's response JSON from its stored bytes, when those are
/// in the version the client asked for.
fn written_json(info: &ResourceInfo, kv: &KeyValue) -> Option<Vec<u8>> {
    if crate::conversion::applies(info) {
        return None;
    }
    stored_json_with_revision(&kv.value, kv.mod_revision)
}

struct WithoutResourceVersion<'a>(&'a Value);

impl serde::Serialize for WithoutResourceVersion<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Some(top) = self.0.as_object() else {
            return self.0.serialize(ser);
        };
        let mut map = ser.serialize_map(Some(top.len()))?;
        for (key, value) in top {
            match value.as_object() {
                Some(meta) if key == "metadata" => {
                    map.serialize_entry(key, &MetadataWithoutResourceVersion(meta))?
                }
                _ => map.serialize_entry(key, value)?,
            }
        }
        map.end()
    }
}

struct MetadataWithoutResourceVersion<'a>(&'a serde_json::Map<String, Value>);

impl serde::Serialize for MetadataWithoutResourceVersion<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_map(self.0.iter().filter(|(k, _)| *k != "resourceVersion"))
    }
}

/// How much of an over-large body is read and thrown away so the client
/// sees the 413 instead of a reset stream; beyond this the connection drops.
const MAX_DISCARD_BYTES: usize = 4 * MAX_REQUEST_BODY_BYTES;

/// Read a request body, refusing anything over the size limit.
pub async fn read_body(req: Request<Incoming>) -> Result<(http::request::Parts, Bytes), ApiError> {
    let (parts, mut body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut too_large = declared.is_some_and(|n| n > MAX_REQUEST_BODY_BYTES);
    if declared.is_some_and(|n| n > MAX_DISCARD_BYTES) {
        return Err(ApiError::too_large(MAX_REQUEST_BODY_BYTES));
    }
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("error reading request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen > MAX_REQUEST_BODY_BYTES {
            too_large = true;
        }
        if seen > MAX_DISCARD_BYTES {
            break;
        }
        if !too_large {
            buf.extend_from_slice(&data);
        }
    }
    if too_large {
        return Err(ApiError::too_large(MAX_REQUEST_BODY_BYTES));
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    crate::audit::log_request_body(content_type, &buf);
    Ok((parts, buf.freeze()))
}

fn header_str(headers: &http::HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// A create's or update's body as an object of the kind's type, its
/// apiVersion and kind checked and its unknown fields judged. A JSON body
/// that decodes cleanly goes straight into the type
/// ([`crate::typed::from_json`]); anything else is decoded generically
/// first, which words errors as upstream does.
fn typed_body(
    s: &dyn Strategy,
    parts: &http::request::Parts,
    body: &[u8],
    opts: &WriteOptions,
    warnings: &mut Vec<String>,
) -> Result<Value, ApiError> {
    let json = matches!(
        BodyFormat::from_content_type(header_str(&parts.headers, header::CONTENT_TYPE)),
        Ok(BodyFormat::Json)
    );
    if let Some(mut obj) = json.then(|| s.decode_json(body)).flatten() {
        if check_type(s, &mut obj).is_ok() {
            return Ok(obj);
        }
    }
    typed_object(s, decode_body(parts, body)?, opts, warnings)
}

/// A CertificateSigningRequest records who asked for it; clients cannot
/// choose.
fn record_requester(obj: &mut Value, user: &crate::authn::UserInfo) {
    if !obj["spec"].is_object() {
        return;
    }
    obj["spec"]["username"] = json!(user.name);
    obj["spec"]["groups"] = json!(user.groups);
    if user.uid.is_empty() {
        if let Some(spec) = obj["spec"].as_object_mut() {
            spec.remove("uid");
        }
    } else {
        obj["spec"]["uid"] = json!(user.uid);
    }
    if user.extra.is_empty() {
        if let Some(spec) = obj["spec"].as_object_mut() {
            spec.remove("extra");
        }
    } else {
        obj["spec"]["extra"] = json!(user.extra);
    }
}

fn decode_body(parts: &http::request::Parts, body: &[u8]) -> Result<Value, ApiError> {
    let format = BodyFormat::from_content_type(header_str(&parts.headers, header::CONTENT_TYPE))?;
    codec::decode_object(body, format)
}

pub async fn serve(
    state: &Arc<ApiServer>,
    ctx: RequestContext,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let info = &ctx.info;
    let strategy = state
        .registry
        .lookup(&info.group, &info.version, &info.resource)
        .cloned()
        .ok_or_else(ApiError::path_not_found)?;
    let resource = strategy.info();
    let is_namespace_resource = resource.plural == "namespaces" && resource.group.is_empty();
    if !resource.namespaced() && !info.namespace.is_empty() && !is_namespace_resource {
        return Err(ApiError::path_not_found());
    }
    let subresource = Subresource::parse(strategy.as_ref(), &info.subresource, &info.verb)?;
    if subresource == Subresource::None && !resource.supports(&info.verb) {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {})",
            info.verb, resource.plural
        )));
    }
    let format = codec::negotiate(header_str(req.headers(), header::ACCEPT))?;
    let namespace = if resource.namespaced() {
        info.namespace.clone()
    } else {
        String::new()
    };
    let dry_run = match ctx.query.get("dryRun") {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other:?}: supported values are \"All\""
            )))
        }
    };
    let opts = WriteOptions {
        dry_run,
        field_validation: FieldValidation::from_query(&ctx.query)?,
        field_manager: field_manager(&ctx, req.headers())?,
        field_manager_given: !ctx.query.str("fieldManager").is_empty(),
        force: ctx.query.flag("force"),
        applied: false,
        body_is_object: matches!(info.verb.as_str(), "create" | "update"),
        node: crate::authz::node::node_of(&ctx.user).map(str::to_string),
        user: Some(Arc::new(ctx.user.clone())),
    };
    let mut warnings = Vec::new();
    let s = strategy.as_ref();
    if subresource == Subresource::Approval && matches!(info.verb.as_str(), "update" | "patch") {
        check_may_approve(state, &ctx, s, &info.name).await?;
    }
    match info.verb.as_str() {
        "create" if crate::reviews::is_review(resource.group) => {
            let (parts, body) = read_body(req).await?;
            let review = decode_body(&parts, &body)?;
            let answered = crate::reviews::create(
                state,
                &ctx.user,
                resource.plural,
                resource.kind,
                &namespace,
                review,
            )
            .await?;
            Ok(response::object(201, &answered, plain(format)))
        }
        "create" if subresource == Subresource::Token => {
            let (parts, body) = read_body(req).await?;
            let request = decode_body(&parts, &body)?;
            let issued =
                crate::token_request::create(state, &namespace, &info.name, request).await?;
            Ok(response::object(201, &issued, plain(format)))
        }
        "get" if subresource == Subresource::Scale => {
            let (obj, _) = get_object(state, s, &namespace, &info.name).await?;
            Ok(response::object(
                200,
                &crate::registry::scale::to_scale(&obj),
                plain(format),
            ))
        }
        "update" | "patch" if subresource == Subresource::Scale => {
            let content_type = header_str(req.headers(), header::CONTENT_TYPE).to_string();
            let (parts, body) = read_body(req).await?;
            let scaled = scale_object(
                state,
                s,
                &namespace,
                &info.name,
                &info.verb,
                &content_type,
                &parts,
                &body,
                &opts,
            )
            .await?;
            Ok(response::object(
                200,
                &crate::registry::scale::to_scale(&scaled),
                plain(format),
            ))
        }
        "get" if subresource == Subresource::None => {
            // From the watch cache once it has caught up with the request
            // (as a consistent list is); plain JSON is the cached bytes.
            let obj = cached_object(state, s, &namespace, &info.name, &ctx).await?;
            let obj = crate::conversion::cached_for_client(resource, obj);
            if format == ResponseFormat::Json {
                return Ok(response::bytes(200, "application/json", obj.json().clone()));
            }
            Ok(render_one(s, &obj.decode(), 200, format, &ctx))
        }
        "get" => {
            let (obj, _) = get_object(state, s, &namespace, &info.name).await?;
            Ok(render_one(s, &obj, 200, format, &ctx))
        }
        "list" => {
            let (items, list_meta) = list_objects(state, s, &namespace, &ctx).await?;
            Ok(render_list(s, items, list_meta, format, &ctx))
        }
        "watch" => {
            crate::watch::serve(state.clone(), strategy.clone(), namespace, ctx, format).await
        }
        "create" if subresource == Subresource::Binding => {
            let (parts, body) = read_body(req).await?;
            let binding = decode_body(&parts, &body)?;
            bind_pod(state, s, &namespace, &info.name, &binding, dry_run).await?;
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
            Ok(response::object(201, &status, plain(format)))
        }
        "create" if subresource == Subresource::Eviction => {
            let (parts, body) = read_body(req).await?;
            let eviction = decode_body(&parts, &body)?;
            evict_pod(state, s, &namespace, &info.name, &eviction, dry_run).await?;
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
            Ok(response::object(201, &status, plain(format)))
        }
        "create" => {
            let (parts, body) = read_body(req).await?;
            let obj = if resource.group == "certificates.k8s.io" {
                let mut obj = decode_body(&parts, &body)?;
                record_requester(&mut obj, &ctx.user);
                typed_object(s, obj, &opts, &mut warnings)?
            } else {
                typed_body(s, &parts, &body, &opts, &mut warnings)?
            };
            let created = create_written(state, s, &namespace, obj, &opts, &mut warnings).await?;
            Ok(response::with_warnings(
                render_written(s, created, 201, format, &ctx),
                &warnings,
            ))
        }
        "update" => {
            let (parts, body) = read_body(req).await?;
            let obj = typed_body(s, &parts, &body, &opts, &mut warnings)?;
            let updated = update_written(
                state,
                s,
                &namespace,
                &info.name,
                obj,
                subresource,
                &opts,
                &mut warnings,
                None,
            )
            .await?;
            Ok(response::with_warnings(
                render_written(s, updated, 200, format, &ctx),
                &warnings,
            ))
        }
        "delete" => {
            let (parts, body) = read_body(req).await?;
            let options = delete_options(&parts, &body, &ctx.query)?;
            let (obj, removed) =
                delete_object(state, s, &namespace, &info.name, &options, dry_run).await?;
            if removed && !s.returns_deleted_object() {
                let status =
                    success_status(resource.plural, resource.group, &info.name, meta_uid(&obj));
                return Ok(response::object(200, &status, plain(format)));
            }
            Ok(render_one(s, &obj, 200, format, &ctx))
        }
        "deletecollection" => {
            let (parts, body) = read_body(req).await?;
            let options = delete_options(&parts, &body, &ctx.query)?;
            let (items, list_meta) = list_objects(state, s, &namespace, &ctx).await?;
            let mut deleted = Vec::new();
            for item in items {
                let name = item.selectable().name().to_string();
                let ns = item.selectable().namespace().to_string();
                match delete_object(state, s, &ns, &name, &options, dry_run).await {
                    Ok((obj, _)) => deleted.push(Arc::new(Cached::new(obj))),
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(render_list(s, deleted, list_meta, format, &ctx))
        }
        "patch" => {
            let content_type = header_str(req.headers(), header::CONTENT_TYPE).to_string();
            let (_, body) = read_body(req).await?;
            let (patched, code) = patch_object(
                state,
                s,
                &namespace,
                &info.name,
                &content_type,
                &body,
                subresource,
                &opts,
                &mut warnings,
            )
            .await?;
            Ok(response::with_warnings(
                render_written(s, patched, code, format, &ctx),
                &warnings,
            ))
        }
        _ => Err(ApiError::method_not_allowed("unsupported method")),
    }
}

fn meta_uid(obj: &Value) -> &str {
    meta::meta_str(obj, "uid").unwrap_or("")
}

/// Tables are only for reads; writes answer with the object itself.
fn plain(format: ResponseFormat) -> ResponseFormat {
    match format {
        ResponseFormat::Yaml => ResponseFormat::Yaml,
        _ => ResponseFormat::Json,
    }
}

/// The apiVersion of `meta.k8s.io` kinds (Table, PartialObjectMetadata)
/// in the version the client asked for.
pub fn meta_api_version(v1beta1: bool) -> &'static str {
    if v1beta1 {
        "meta.k8s.io/v1beta1"
    } else {
        "meta.k8s.io/v1"
    }
}

/// `PartialObjectMetadata`: the object's metadata under its own kind.
pub fn partial_metadata(obj: &Value, v1beta1: bool) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": meta_api_version(v1beta1),
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

fn render_one(
    s: &dyn Strategy,
    obj: &Value,
    code: u16,
    format: ResponseFormat,
    ctx: &RequestContext,
) -> Response<Body> {
    match format {
        ResponseFormat::Table { v1beta1 } if ctx.info.verb == "get" => {
            let list_meta = json!({"resourceVersion": meta::resource_version(obj)});
            let include = ctx.query.get("includeObject").unwrap_or("Metadata");
            let t = crate::table::table(s, &[obj], list_meta, include, v1beta1, true);
            response::json(200, &t)
        }
        ResponseFormat::PartialMetadata { v1beta1 } if ctx.info.verb == "get" => {
            response::json(200, &partial_metadata(obj, v1beta1))
        }
        other => response::object(code, obj, plain(other)),
    }
}

/// A written object as [`render_one`] would, from its stored JSON when
/// that is what the client asked for.
fn render_written(
    s: &dyn Strategy,
    written: Written,
    code: u16,
    format: ResponseFormat,
    ctx: &RequestContext,
) -> Response<Body> {
    match (format, written.json) {
        (ResponseFormat::Json, Some(json)) => response::bytes(code, "application/json", json),
        _ => render_one(s, &written.object, code, format, ctx),
    }
}

fn render_list(
    s: &dyn Strategy,
    items: Vec<Arc<Cached>>,
    list_meta: Value,
    format: ResponseFormat,
    ctx: &RequestContext,
) -> Response<Body> {
    // Everything but plain JSON renders decoded objects.
    let decoded: Vec<Value> = match format {
        ResponseFormat::Json => Vec::new(),
        ResponseFormat::PartialMetadata { .. } => items
            .iter()
            .map(|o| json!({"metadata": o.metadata()}))
            .collect(),
        _ => items.iter().map(|o| o.decode()).collect(),
    };
    let refs: Vec<&Value> = decoded.iter().collect();
    if let ResponseFormat::Table { v1beta1 } = format {
        let include = ctx.query.get("includeObject").unwrap_or("Metadata");
        let t = crate::table::table(s, &refs, list_meta, include, v1beta1, true);
        return response::json(200, &t);
    }
    if let ResponseFormat::PartialMetadata { v1beta1 } = format {
        let items: Vec<Value> = refs.iter().map(|o| partial_metadata(o, v1beta1)).collect();
        let list = json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": meta_api_version(v1beta1),
            "metadata": list_meta,
            "items": items,
        });
        return response::json(200, &list);
    }
    let info = s.info();
    if format == ResponseFormat::Yaml {
        let list = json!({
            "kind": info.list_kind(),
            "apiVersion": info.api_version(),
            "metadata": list_meta,
            "items": refs,
        });
        return response::object(200, &list, ResponseFormat::Yaml);
    }
    // JSON: streamed item by item from the shared objects' bytes, never
    // gathered into one buffer.
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"{\"kind\":");
    let _ = serde_json::to_writer(&mut head, &info.list_kind());
    head.extend_from_slice(b",\"apiVersion\":");
    let _ = serde_json::to_writer(&mut head, &info.api_version());
    head.extend_from_slice(b",\"metadata\":");
    let _ = serde_json::to_writer(&mut head, &list_meta);
    head.extend_from_slice(b",\"items\":[");
    let items: Vec<Bytes> = items.iter().map(|i| i.json().clone()).collect();
    response::json_array(200, response::JsonArray::new(head, items, &b"]}"[..]))
}

/// The object at (namespace, name) as the watch cache holds it once the
/// cache has reached the datastore's current revision (or the request's
/// `resourceVersion`, which asks for an object not older than it; `0` for
/// whatever the cache holds).
async fn cached_object(
    state: &ApiServer,
    s: &dyn Strategy,
    namespace: &str,
    name: &str,
    ctx: &RequestContext,
) -> Result<Arc<Cached>, ApiError> {
    let info = s.info();
    let min_revision = match ctx.query.str("resourceVersion") {
        "" => state
            .store
            .current_revision()
            .await
            .map_err(|e| storage_error(e, info.plural, info.group, name))?,
        rv => revision_param(rv)?,
    };
    state
        .cache
        .get(&info.key(namespace, name), min_revision)
        .await?
        .ok_or_else(|| ApiError::not_found(info.plural, info.group, name))
}

/// The object at (namespace, name) and its mod revision.
pub async fn get_object(
    state: &ApiServer,
    s: &dyn Strategy,
    namespace: &str,
    name: &str,
) -> Result<(Value, i64), ApiError> {
    let info = s.info();
    let (kv, _) = state
        .store
        .get(&info.key(namespace, name))
        .await
        .map_err(|e| storage_error(e, info.plural, info.group, name))?;
    let kv = kv.ok_or_else(|| ApiError::not_found(info.plural, info.group, name))?;
    let obj = crate::conversion::for_client(info, decode_stored(&kv)?);
    Ok((obj, kv.mod_revision))
}

/// Fields beyond `metadata.name`/`metadata.namespace` that upstream lets
/// clients select on, per (group, resource), with where they live.
fn selectable_fields(group: &str, resource: &str) -> &'static [(&'static str, &'static str)] {
    match (group, resource) {
        ("", "pods") => &[
            ("spec.nodeName", "/spec/nodeName"),
            ("spec.restartPolicy", "/spec/restartPolicy"),
            ("spec.schedulerName", "/spec/schedulerName"),
            ("spec.serviceAccountName", "/spec/serviceAccountName"),
            ("spec.hostNetwork", "/spec/hostNetwork"),
            ("status.phase", "/status/phase"),
            ("status.podIP", "/status/podIP"),
            ("status.nominatedNodeName", "/status/nominatedNodeName"),
        ],
        ("", "events") => &[
            ("involvedObject.kind", "/involvedObject/kind"),
            ("involvedObject.namespace", "/involvedObject/namespace"),
            ("involvedObject.name", "/involvedObject/name"),
            ("involvedObject.uid", "/involvedObject/uid"),
            ("involvedObject.apiVersion", "/involvedObject/apiVersion"),
            (
                "involvedObject.resourceVersion",
                "/involvedObject/resourceVersion",
            ),
            ("involvedObject.fieldPath", "/involvedObject/fieldPath"),
            ("reason", "/reason"),
            ("reportingComponent", "/reportingComponent"),
            ("source", "/source/component"),
            ("type", "/type"),
        ],
        // Stored as core/v1 Events: the new names point at the core fields.
        ("events.k8s.io", "events") => &[
            ("regarding.kind", "/involvedObject/kind"),
            ("regarding.namespace", "/involvedObject/namespace"),
            ("regarding.name", "/involvedObject/name"),
            ("regarding.uid", "/involvedObject/uid"),
            ("regarding.apiVersion", "/involvedObject/apiVersion"),
            (
                "regarding.resourceVersion",
                "/involvedObject/resourceVersion",
            ),
            ("regarding.fieldPath", "/involvedObject/fieldPath"),
            ("reason", "/reason"),
            ("reportingController", "/reportingComponent"),
            ("type", "/type"),
        ],
        ("", "secrets") => &[("type", "/type")],
        ("", "namespaces") => &[("status.phase", "/status/phase")],
        ("", "nodes") => &[("spec.unschedulable", "/spec/unschedulable")],
        ("", "replicationcontrollers") | ("apps", "replicasets") => {
            &[("status.replicas", "/status/replicas")]
        }
        ("batch", "jobs") => &[("status.successful", "/status/successful")],
        ("certificates.k8s.io", "certificatesigningrequests") => {
            &[("spec.signerName", "/spec/signerName")]
        }
        _ => &[],
    }
}

/// A selectable field's value (`found` at its pointer) as field selectors
/// compare it: absent is "", booleans and numbers in their JSON spelling
/// (absent booleans are "false").
fn field_text(found: Option<&Value>, name: &str) -> String {
    match found {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None if matches!(name, "spec.hostNetwork" | "spec.unschedulable") => {
            "false".into()
        }
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Label and field selectors of a list or watch request.
pub struct Filter {
    labels: Selector,
    fields: Selector,
    selectable: &'static [(&'static str, &'static str)],
}

impl Filter {
    pub fn from_query(ctx: &RequestContext) -> Result<Filter, ApiError> {
        let labels = Selector::parse_labels(ctx.query.str("labelSelector"))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = Selector::parse_fields(ctx.query.str("fieldSelector"))
            .map_err(ApiError::bad_request)?;
        let selectable = selectable_fields(&ctx.info.group, &ctx.info.resource);
        for key in fields.keys() {
            let known = key == "metadata.name"
                || key == "metadata.namespace"
                || selectable.iter().any(|(f, _)| *f == key);
            if !known {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {key}"
                )));
            }
        }
        Ok(Filter {
            labels,
            fields,
            selectable,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// Only what the selectors name is read from the object: this runs
    /// for every event of every filtered watch.
    pub fn matches(&self, obj: &Selectable) -> bool {
        if !self.labels.is_empty()
            && !self
                .labels
                .matches(&labels_in(obj.pointer("/metadata/labels")))
        {
            return false;
        }
        if self.fields.is_empty() {
            return true;
        }
        let mut fields = std::collections::BTreeMap::new();
        for key in self.fields.keys() {
            let value = match key {
                "metadata.name" => obj.name().to_string(),
                "metadata.namespace" => obj.namespace().to_string(),
                _ => match self.selectable.iter().find(|(name, _)| *name == key) {
                    Some((name, pointer)) => field_text(obj.pointer(pointer), name),
                    // from_query refused every other field.
                    None => continue,
                },
            };
            fields.insert(key.to_string(), value);
        }
        self.fields.matches(&fields)
    }
}

fn revision_param(rv: &str) -> Result<i64, ApiError> {
    rv.parse()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}

/// The continue token: where the next page starts and at which revision.
fn encode_continue(revision: i64, next_key: &str) -> String {
    use base64::Engine;
    let token = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": next_key});
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(i64, String), ApiError> {
    use base64::Engine;
    let bad = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .map_err(|_| bad("not base64"))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad("not JSON"))?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(bad(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    let rv = v["rv"]
        .as_i64()
        .filter(|r| *r > 0)
        .ok_or_else(|| bad("missing resource version"))?;
    let start = v["start"]
        .as_str()
        .ok_or_else(|| bad("missing start key"))?;
    if start.contains("..") || start.starts_with('/') {
        return Err(bad("start key may not contain a path"));
    }
    Ok((rv, start.to_string()))
}

const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// List with selectors, pagination (`limit`/`continue`) and
/// `resourceVersion`/`resourceVersionMatch`. Returns items and list metadata.
pub async fn list_objects(
    state: &ApiServer,
    s: &dyn Strategy,
    namespace: &str,
    ctx: &RequestContext,
) -> Result<(Vec<Arc<Cached>>, Value), ApiError> {
    let info = s.info();
    let filter = Filter::from_query(ctx)?;
    let limit = ctx.query.int("limit")?.filter(|l| *l > 0).unwrap_or(0);
    let prefix = info.list_prefix(namespace);
    let rv_param = ctx.query.str("resourceVersion");
    let rv_match = ctx.query.str("resourceVersionMatch");
    let cont = ctx.query.str("continue");

    let (mut revision, mut start_key) = (0i64, None);
    if !cont.is_empty() {
        if !rv_param.is_empty() && rv_param != "0" {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let (rv, start) = decode_continue(cont)?;
        revision = rv;
        start_key = Some(format!("{prefix}{start}"));
    } else if !rv_param.is_empty() {
        let rv: i64 = rv_param.parse().map_err(|_| {
            ApiError::bad_request(format!("invalid resource version: {rv_param:?}"))
        })?;
        match rv_match {
            "Exact" => revision = rv,
            "" | "NotOlderThan" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "invalid resourceVersionMatch: {other:?}"
                )))
            }
        }
    } else if !rv_match.is_empty() {
        return Err(ApiError::bad_request(
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        ));
    }

    // Whole lists come from the watch cache; a consistent read (no
    // resourceVersion) first waits for the cache to reach the datastore's
    // current revision. Pages and exact revisions are read from the store.
    if limit == 0 && cont.is_empty() && rv_match != "Exact" {
        let min_revision = match rv_param {
            "" => state
                .store
                .current_revision()
                .await
                .map_err(|e| storage_error(e, info.plural, info.group, ""))?,
            "0" => 0,
            _ => revision_param(rv_param)?,
        };
        let (cached, revision) = state.cache.list(&prefix, min_revision).await?;
        let items = cached
            .into_iter()
            .filter(|o| filter.matches(o.selectable()))
            .map(|o| crate::conversion::cached_for_client(info, o))
            .collect();
        return Ok((items, json!({"resourceVersion": revision.to_string()})));
    }

    let mut items = Vec::new();
    let mut next: Option<String> = None;
    let mut remaining: Option<i64> = None;
    loop {
        let page = state
            .store
            .range(RangeRequest {
                prefix: prefix.clone(),
                start_key: start_key.clone(),
                limit: if limit > 0 {
                    limit - items.len() as i64
                } else {
                    0
                },
                revision,
            })
            .await
            .map_err(|e| match e {
                StorageError::Compacted { .. } if !cont.is_empty() => {
                    ApiError::expired(CONTINUE_EXPIRED)
                }
                other => storage_error(other, info.plural, info.group, ""),
            })?;
        revision = page.revision;
        let last_key = page.kvs.last().map(|kv| kv.key.clone());
        for kv in &page.kvs {
            let obj = Cached::from_stored(kv)?;
            if filter.matches(obj.selectable()) {
                items.push(crate::conversion::cached_for_client(info, Arc::new(obj)));
            }
        }
        if !page.more {
            break;
        }
        // Resume just after the last key seen.
        let resume = format!("{}\u{0}", last_key.unwrap_or_default());
        if limit > 0 && items.len() as i64 >= limit {
            next = Some(
                resume
                    .strip_prefix(prefix.as_str())
                    .unwrap_or(&resume)
                    .to_string(),
            );
            if filter.is_empty() {
                remaining = Some(page.remaining);
            }
            break;
        }
        start_key = Some(resume);
    }
    let mut list_meta = json!({"resourceVersion": revision.to_string()});
    if let Some(n) = next {
        list_meta["continue"] = json!(encode_continue(revision, &n));
        if let Some(r) = remaining {
            list_meta["remainingItemCount"] = json!(r);
        }
    }
    Ok((items, list_meta))
}

/// Which part of an object a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    None,
    Status,
    Finalize,
    Binding,
    Eviction,
    Scale,
    /// `serviceaccounts/<name>/token` (TokenRequest).
    Token,
    /// `certificatesigningrequests/<name>/approval`.
    Approval,
    /// `pods/<name>/ephemeralcontainers` (what `kubectl debug` writes).
    EphemeralContainers,
}

impl Subresource {
    /// The subresource in the URL, if this resource serves it for `verb`.
    fn parse(s: &dyn Strategy, name: &str, verb: &str) -> Result<Subresource, ApiError> {
        let sub = match name {
            "" => return Ok(Subresource::None),
            "status" if s.has_status_subresource() => Subresource::Status,
            "finalize" if s.info().subresources.contains(&"finalize") => Subresource::Finalize,
            "binding" if s.info().subresources.contains(&"binding") => Subresource::Binding,
            "eviction" if s.info().subresources.contains(&"eviction") => Subresource::Eviction,
            "token" if s.info().subresources.contains(&"token") => Subresource::Token,
            "approval" if s.info().subresources.contains(&"approval") => Subresource::Approval,
            "scale" if s.info().subresources.contains(&"scale") => Subresource::Scale,
            "ephemeralcontainers" if s.info().subresources.contains(&"ephemeralcontainers") => {
                Subresource::EphemeralContainers
            }
            _ => return Err(ApiError::path_not_found()),
        };
        let allowed = match sub {
            Subresource::Status | Subresource::Scale => matches!(verb, "get" | "update" | "patch"),
            Subresource::Binding | Subresource::Eviction | Subresource::Token => verb == "create",
            Subresource::Approval | Subresource::EphemeralContainers => {
                matches!(verb, "get" | "update" | "patch")
            }
            _ => verb == "update",
        };
        if !allowed {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({verb} {name})"
            )));
        }
        Ok(sub)
    }
}

/// What a write request asked for beyond its body.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    /// Who makes the change, for `metadata.managedFields`.
    pub field_manager: std::borrow::Cow<'static, str>,
    /// Whether the client named the manager (server-side apply requires it).
    pub field_manager_given: bool,
    /// `force=true`: a server-side apply takes over conflicting fields.
    pub force: bool,
    /// The object comes from server-side apply, which already recorded
    /// its managed fields.
    pub applied: bool,
    /// The request body is the whole object (create, update): a body that
    /// does not decode is reported as upstream's "<Kind> in version ...
    /// cannot be handled as a <Kind>: ...".
    pub body_is_object: bool,
    /// The node making the change, when a kubelet writes (NodeRestriction).
    pub node: Option<String>,
    /// Who writes, for checks that depend on it (RBAC escalation); None
    /// for the server's own writes.
    pub user: Option<Arc<crate::authn::UserInfo>>,
}

impl WriteOptions {
    /// Writes the server makes itself: stored, unknown fields dropped silently.
    pub const INTERNAL: WriteOptions = WriteOptions {
        dry_run: false,
        field_validation: FieldValidation::Ignore,
        field_manager: std::borrow::Cow::Borrowed("kube-apiserver"),
        field_manager_given: true,
        force: false,
        applied: false,
        body_is_object: false,
        node: None,
        user: None,
    };
}

/// `?fieldManager=`, else upstream's default: the User-Agent up to its
/// first '/'.
fn field_manager(
    ctx: &RequestContext,
    headers: &http::HeaderMap,
) -> Result<std::borrow::Cow<'static, str>, ApiError> {
    let given = ctx.query.str("fieldManager");
    if !given.is_empty() {
        if given.len() > 128 || given.chars().any(|c| c.is_control()) {
            return Err(ApiError::bad_request(
                "fieldManager must be at most 128 printable characters",
            ));
        }
        return Ok(std::borrow::Cow::Owned(given.to_string()));
    }
    let agent = header_str(headers, header::USER_AGENT);
    let name: String = agent
        .split('/')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect();
    Ok(std::borrow::Cow::Owned(if name.is_empty() {
        "unknown".to_string()
    } else {
        name
    }))
}

/// The patch strategies managed-field tracking uses for a kind.
fn managed_fields_meta(s: &dyn Strategy) -> Box<dyn PatchMeta + Send + Sync> {
    let info = s.info();
    match builtin_meta(&info.api_version(), info.kind) {
        Some(m) => Box::new(m),
        None => Box::new(apimachinery::patch::ReplaceAllLists),
    }
}

/// Decode against the kind's type and judge unknown fields.
fn decode_typed(
    s: &dyn Strategy,
    obj: &Value,
    opts: &WriteOptions,
    warnings: &mut Vec<String>,
) -> Result<Value, ApiError> {
    let undecodable = |mut e: ApiError| {
        if opts.body_is_object {
            let info = s.info();
            e.message = format!(
                "{kind} in version {version:?} cannot be handled as a {kind}: {}",
                e.message,
                kind = info.kind,
                version = info.version,
            );
        }
        e
    };
    let (typed, unknown) = s.decode(obj).map_err(undecodable)?;
    if opts.applied && !unknown.is_empty() {
        return Err(undeclared_fields(s, obj, &unknown));
    }
    warnings.extend(opts.field_validation.judge(unknown).map_err(undecodable)?);
    Ok(typed)
}

const GENERATE_NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn generate_name_suffix() -> String {
    let bytes = uuid::Uuid::new_v4();
    bytes
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| GENERATE_NAME_CHARS[*b as usize % GENERATE_NAME_CHARS.len()] as char)
        .collect()
}

/// Check the body's apiVersion/kind against the URL's, filling them in when
/// absent.
fn check_type(s: &dyn Strategy, obj: &mut Value) -> Result<(), ApiError> {
    let info = s.info();
    let expected = info.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => obj["apiVersion"] = json!(expected),
        Some(v) if v == expected => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected})"
            )))
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => obj["kind"] = json!(info.kind),
        Some(k) if k == info.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                info.kind
            )))
        }
    }
    Ok(())
}

/// Align the body's namespace with the request's.
fn check_namespace(s: &dyn Strategy, obj: &mut Value, namespace: &str) -> Result<(), ApiError> {
    if !s.info().namespaced() {
        meta::remove_meta(obj, "namespace");
        return Ok(());
    }
    match meta::meta_str(obj, "namespace") {
        None | Some("") => meta::set_meta(obj, "namespace", json!(namespace)),
        Some(ns) if ns == namespace => {}
        Some(_) => return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
    }
    Ok(())
}

fn invalid(s: &dyn Strategy, obj: &Value, causes: Vec<apimachinery::StatusCause>) -> ApiError {
    let info = s.info();
    ApiError::invalid(info.kind, info.group, meta::name(obj), causes)
}

/// An object a write returns, with the JSON it was stored as (its
/// resourceVersion spliced in) when it was stored, so a JSON response
/// need not encode it again.
pub struct Written {
    pub object: Value,
    pub json: Option<Vec<u8>>,
}

/// Create: type and namespace checks, generateName, system metadata,
/// strategy defaults, validation, admission, then store.
pub async fn create_object(
    state: &ApiServer,
    s: &dyn Strategy,
    namespace: &str,
    obj: Value,
    opts: &WriteOptions,
    warnings: &mut Vec<String>,
) -> Result<Value, ApiError> {
    let obj = typed_object(s, obj, opts, warnings)?;
    Ok(create_written(state, s, namespace, obj, opts, warnings)
        .await?
        .object)
}

/// Create an object already checked against its type.
async fn create_written(
    state: &ApiServer,
    s: &dyn Strategy,
    namespace: &str,
    mut obj: Value,
    opts: &WriteOptions,
    warnings: &mut Vec<String>,
) -> Result<Written, ApiError> {
    let info = s.info();
    check_namespace(s, &mut obj, namespace)?;
    if meta::name(&obj).is_empty() {
        if let Some(base) = meta::meta_str(&obj, "generateName").map(str::to_string) {
            let base: String = base.chars().take(58).collect();
            meta::set_meta(
                &mut obj,
                "name",
                json!(format!("{base}{}", generate_name_suffix())),
            );
        }
    }
    if info.namespaced() && namespace.is_empty() {
        return Err(ApiError::bad_request(
            "the namespace of the object must be set for a namespaced resource",
        ));
    }
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta::remove_meta(&mut obj, field);
    }
    meta::set_meta(&mut obj, "uid", json!(uuid::Uuid::new_v4().to_string()));
    meta::set_meta(&mut obj, "creationTimestamp", json!(meta::now_rfc3339()));
    s.prepare_for_create(&mut obj);
    crate::defaults::apply(info, &mut obj);
    admission::mutate(state, Operation::Create, s, &mut obj).await?;
    if !opts.applied {
        let meta = managed_fields_meta(s);
        apimachinery::patch::record_update(
            None,
            &mut obj,
            &opts.field_manager,
            &meta::now_rfc3339(),
            meta.as_ref(),
        );
    }
    let causes = s.validate(&obj);
    if !causes.is_empty() {
        return Err(invalid(s, &obj, causes));
    }
    let name = meta::name(&obj).to_string();
    admission::admit(state, Operation::Create, s, namespace, &name).await?;
    if let Some(node) = &opts.node {
        admission::node_restriction(node, s, &obj, None)?;
    }
    crate::pod_security::admission(state, s, &obj, None, warnings)?;
    if let (Some(user), "rbac.authorization.k8s.io") = (&opts.user, info.group) {
        crate::authz::escalation::check(state, user, info.plural, &obj).await?;
    }
    crate::quota::admission(state, s, namespace, &obj, None, opts.dry_run).await?;
    if opts.dry_run {
        return Ok(Written {
            object: obj,
            json: None,
        });
    }
    let hooks = state.hooks();
    s.before_create(&hooks, &mut obj).await?;
    let created = state
        .store
        .create(&info.key(namespace, &name), encode_for_store(info, &obj))
        .await;
    let kv = match created {
        Ok(kv) => kv,
        Err(e) => {
            s.undo_create(&hooks, &obj).await;
            return Err(storage_error(e, info.plural, info.group, &name));
        }
    };
    meta::set_meta(
        &mut obj,
        "resourceVersion",
        json!(kv.mod_revision.to_string()),
    );
    Ok(Written {
        json: written_json(info, &kv),
        object: obj,
    })
}

/// Metadata the server owns: an update may not change it.
const SYSTEM_META: &[&str] = &[
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
];

/// Equal but for `metadata.resourceVersion` (compared without copying).
fn same_ignoring_rv(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let without_meta =
        |m: &serde_json::Map<String, Value>| m.keys().filter(|k| *k != "metadata").count();
    if without_meta(a) != without_meta(b)
        || a.iter()
            .any(|(k, v)| k != "metadata" && b.get(k) != Some(v))
    {
        return false;
    }
    fn meta_fields(m: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
        m.get("metadata")
            .and_then(Value::as_object)
            .map(|meta| {
                meta.iter()
                    .filter(|(k, _)| *k != "resourceVersion")
                    .collect()
            })
            .unwrap_or_default()
    }
    meta_fields(a) == meta_fields(b)
}

/// Update (PUT): optimistic concurrency on resourceVersion, no write when
/// nothing changed.
// The arguments are the request's parts; bundling them would only rename them.
#[allow(clippy::too_many_arguments)]
pub async fn update_object(
    state: &ApiServer,
    s: &dyn Strategy,
    namespace: &str,
    name: &str,
    obj: Value,
    subresource: Subresource,
    opts: &WriteOptions,
    warnings: &mut Vec<String>,
) -> Result<Value, ApiError> {
    let obj = typed_object(s, obj, opts, warnings)?;
    let written = update_written(
        state,
        s,
        namespace,
        name,
        obj,
        subresource,
        opts,
        warnings,
        None,
    )
    .await?;
    Ok(written.object)
}

/// Check a decoded request object's apiVersion and kind, and the object
/// against its type (see [`decode_typed`]).
fn typed_object(
    s: &dyn Strategy,
    mut obj: Value,
    opts: &WriteOptions,
    warnings: &mut Vec<String>,
) -> Result<Value, ApiError> {
    check_type(s, &mut obj)?;
    decode_typed(s, &obj, opts, warnings)
}

/// Check a patched object against its type, as [`typed_object`] does, but
/// only in the top-level fields the patch changed. The object the patch
/// applied to (`base`) was checked when it was stored, so a field equal to
/// its stored value already is what the check would make of it; a status
/// patch then checks the status alone instead of the whole pod. Kinds with
/// a required top-level field cannot be checked in parts and, like any
/// object whose changed parts do not pass, are checked whole, which also
/// words any error exactly as before.
fn typed_patched(
    s: &dyn Strategy,
    mut obj: Value,
    base: &Value,
    opts: &WriteOptions,
    warnings: &mut Vec<String>,
) -> Result<Value, ApiError> {
    check_type(s, &mut obj)?;
    let (Value::Object(fields), Value::Object(stored)) = (&mut obj, base) else {
        return decode_typed(s, &obj, opts, warnings);
    };
    let changed: Vec<String> = fields
        .iter()
        .filter(|(k, v)| !matches!(k.as_str(), "apiVersion" | "kind") && stored.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect();
    let mut part = serde_json::Map::new();
    for k in ["apiVersion", "kind"] {
        if let Some(v) = fields.get(k) {
            part.insert(k.to_string(), v.clone());
        }
    }
    for k in &changed {
        if let Some(v) = fields.remove(k) {
            part.insert(k.clone(), v);
        }
    }
    let part = Value::Object(part);
    let mut part_warnings = Vec::new();
    match decode_typed(s, &part, opts, &mut part_warnings) {
        Ok(Value::Object(checked)) => {
            // The check also writes out the defaults of required fields it
            // was not given; those the object has unchanged stay as they are.
            for (k, v) in checked {
                let unchanged =
                    fields.contains_key(&k) || matches!(k.as_str(), "apiVersion" | "kind");
                if !unchanged {
                    fields.insert(k, v);
                }
            }
            warnings.extend(part_warnings);
            Ok(obj)
        }
        _ => {
            if let Value::Object(part) = part {
                for (k, v) in part {
                    if !matches!(k.as_str(), "apiVersion" | "kind") {
                        fields.insert(k, v);
                    }
                }
            }
            decode_typed(s, &obj, opts, warnings)
        }
    }
}

/// Whether `obj` has a status and, apart from it, the same top-level
/// fields as `old`: a status write of `obj` then stores `obj` itself.
fn same_but_status(obj: &Value, old: &Value) -> bool {
    let (Value::Object(new), Value::Object(old)) = (obj, old) else {
        return false;
    };
    let others =
        |m: &'_ serde_json::Map<String, Value>| m.len() - usize::from(m.contains_key("status"));
    new.contains_key("status")
        && others(new) == others(old)
        && new
            .iter()
            .filter(|(k, _)| k.as_str() != "status")
            .all(|(k, v)| old.get(k) == Some(v))
}

/// Update with an object already checked against its type. `current` is
/// the object and revision the caller already read (a patch reads it to
/// apply the patch); `None` reads it here.
#[allow(clippy::too_many_arguments)]
async fn update_written(
    state: &ApiServer,
    s: &dyn Strategy,
    namespace: &str,
    name: &str,
    mut obj: Value,
    subresource: Subresource,
    opts: &WriteOptions,
    warnings: &mut Vec<String>,
    current: Option<(Value, i64)>,
) -> Result<Written, ApiError> {
    let info = s.info();
    check_namespace(s, &mut obj, namespace)?;
    let body_name = meta::name(&obj).to_string();
    if body_name.is_empty() {
        meta::set_meta(&mut obj, "name", json!(name));
    } else if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let (old, current_rev) = match current {
        Some(current) => current,
        None => get_object(state, s, namespace, name).await?,
    };
    let expected = match meta::resource_version(&obj) {
        "" => current_rev,
        rv => rv.parse::<i64>().map_err(|_| {
            invalid(
                s,
                &obj,
                vec![apimachinery::StatusCause::invalid(
                    "metadata.resourceVersion",
                    &json!(rv),
                    "must be a valid resource version",
                )],
            )
        })?,
    };
    if expected != current_rev {
        return Err(ApiError::conflict_modified(info.plural, info.group, name));
    }
    for field in SYSTEM_META {
        match old.pointer(&format!("/metadata/{field}")) {
            Some(v) => meta::set_meta(&mut obj, field, v.clone()),
            None => meta::remove_meta(&mut obj, field),
        }
    }
    let mut obj = match subresource {
        Subresource::None => {
            s.prepare_for_update(&mut obj, &old);
            obj
        }
        // A status write changes the status and nothing else. Most bodies
        // (every status patch) carry the rest unchanged and are kept as
        // they are rather than rebuilt from a copy of the stored object.
        Subresource::Status if same_but_status(&obj, &old) => obj,
        Subresource::Status => {
            let mut merged = old.clone();
            merged["status"] = obj.get("status").cloned().unwrap_or(Value::Null);
            merged
        }
        // Approval changes the conditions and nothing else.
        Subresource::Approval => {
            let mut merged = old.clone();
            merged["status"]["conditions"] = obj
                .pointer("/status/conditions")
                .cloned()
                .unwrap_or(Value::Null);
            merged
        }
        // Ephemeral containers change spec.ephemeralContainers and nothing
        // else.
        Subresource::EphemeralContainers => {
            let mut merged = old.clone();
            match obj.pointer("/spec/ephemeralContainers") {
                Some(list) if !list.is_null() => {
                    merged["spec"]["ephemeralContainers"] = list.clone();
                }
                _ => {
                    if let Some(spec) = merged.get_mut("spec").and_then(Value::as_object_mut) {
                        spec.remove("ephemeralContainers");
                    }
                }
            }
            merged
        }
        Subresource::Binding | Subresource::Eviction | Subresource::Scale | Subresource::Token => {
            return Err(ApiError::method_not_allowed(
                "not an update of the object itself",
            ))
        }
        // A namespace finalize changes spec.finalizers and nothing else.
        Subresource::Finalize => {
            let mut merged = old.clone();
            merged["spec"]["finalizers"] = obj
                .pointer("/spec/finalizers")
                .cloned()
                .unwrap_or(json!([]));
            merged
        }
    };
    crate::defaults::apply(info, &mut obj);
    if subresource == Subresource::None && !opts.applied {
        let meta = managed_fields_meta(s);
        apimachinery::patch::record_update(
            Some(&old),
            &mut obj,
            &opts.field_manager,
            &meta::now_rfc3339(),
            meta.as_ref(),
        );
    }
    let causes = match subresource {
        Subresource::EphemeralContainers => {
            crate::registry::pods::validate_ephemeral_containers_update(&obj, &old)
        }
        _ => s.validate_update(&obj, &old),
    };
    if !causes.is_empty() {
        return Err(invalid(s, &obj, causes));
    }
    admission::admit(state, Operation::Update, s, namespace, name).await?;
    if let Some(node) = &opts.node {
        admission::node_restriction(node, s, &obj, Some(&old))?;
    }
    if matches!(
        subresource,
        Subresource::None | Subresource::EphemeralContainers
    ) {
        crate::pod_security::admission(state, s, &obj, Some(&old), warnings)?;
    }
    if let (Some(user), "rbac.authorization.k8s.io") = (&opts.user, info.group) {
        crate::authz::escalation::check(state, user, info.plural, &obj).await?;
    }
    if subresource == Subresource::None {
        crate::quota::admission(state, s, namespace, &obj, Some(&old), opts.dry_run).await?;
    }
    meta::set_meta(&mut obj, "resourceVersion", json!(current_rev.to_string()));
    if opts.dry_run {
        return Ok(Written {
            object: obj,
            json: None,
        });
    }
    let hooks = state.hooks();
    if subresource == Subresource::None {
        s.before_update(&hooks, &mut obj, &old).await?;
    }
    if same_ignoring_rv(&obj, &old) {
        return Ok(Written {
            object: old,
            json: None,
        });
    }
    let key = info.key(namespace, name);
    // An object being deleted goes once its last finalizer is removed,
    // unless its grace period is still running (a pod then stays until
    // its node finishes with it and deletes it with grace 0).
    if old.pointer("/metadata/deletionTimestamp").is_some()
        && !grace_period_running(&obj)
        && s.delete_action(&obj) == DeleteAction::Remove
    {
        let kv = state
            .store
            .delete(&key, Some(current_rev))
            .await
            .map_err(|e| storage_error(e, info.plural, info.group, name))?;
        state.recent.forget(&key);
        s.after_delete(&hooks, &obj).await;
        meta::set_meta(
            &mut obj,
            "resourceVersion",
            json!(kv.mod_revision.to_string()),
        );
        return Ok(Written {
            object: obj,
            json: None,
        });
    }
    let updated = state
        .store
        .update(&key, encode_for_store(info, &obj), current_rev)
        .await;
    let kv = match updated {
        Ok(kv) => {
            s.after_update(&hooks, &obj, &old).await;
            kv
        }
        Err(e) => {
            // Give back what this attempt allocated.
            s.after_update(&hooks, &old, &obj).await;
            return Err(storage_error(e, info.plural, info.group, name));
        }
    };
    meta::set_meta(
        &mut obj,
        "resourceVersion",
        json!(kv.mod_revision.to_string()),
    );
    Ok(Written {
        json: written_json(info, &kv),
        object: obj,
    })
}

/// Whether a graceful deletion of `obj` still waits for its owner (a
/// deletionGracePeriodSeconds above 0).
fn grace_period_running(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|g| g > 0)
}

/// DeleteOptions from the body, with the query parameters upstream also
/// accepts (`gracePeriodSeconds`, `propagationPolicy`, `orphanDependents`)
/// filling what the body leaves out; invalid combinations are 422.
fn delete_options(
    parts: &http::request::Parts,
    body: &[u8],
    query: &crate::query::Query,
) -> Result<Value, ApiError> {
    let mut options = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        decode_body(parts, body)?
    };
    if !options.is_object() {
        return Err(ApiError::bad_request("DeleteOptions must be an object"));
    }
    if options.get("gracePeriodSeconds").is_none() {
        if let Some(grace) = query.int("gracePeriodSeconds")? {
            options["gracePeriodSeconds"] = json!(grace);
        }
    }
    if options.get("propagationPolicy").is_none() {
        if let Some(policy) = query.get("propagationPolicy") {
            options["propagationPolicy"] = json!(policy);
        }
    }
    if options.get("orphanDependents").is_none() {
        if let Some(orphan) = query.get("orphanDependents") {
            options["orphanDependents"] = json!(crate::query::truthy(orphan));
        }
    }
    let policy = options.get("propagationPolicy").filter(|p| !p.is_null());
    if let Some(policy) = policy {
        let value = policy.as_str().unwrap_or_default();
        if !["Orphan", "Background", "Foreground"].contains(&value) {
            return Err(ApiError::invalid(
                "DeleteOptions",
                "",
                "",
                vec![apimachinery::StatusCause {
                    reason: "FieldValueNotSupported".into(),
                    message: format!(
                        "Unsupported value: \"{value}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                    ),
                    field: "propagationPolicy".into(),
                }],
            ));
        }
        if options
            .get("orphanDependents")
            .is_some_and(|o| !o.is_null())
        {
            return Err(ApiError::invalid(
                "DeleteOptions",
                "",
                "",
                vec![apimachinery::StatusCause::invalid(
                    "propagationPolicy",
                    &Value::Null,
                    "orphanDependents and deletionPropagation cannot be both set",
                )],
            ));
        }
    }
    Ok(options)
}

const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
const ORPHAN_FINALIZER: &str = "orphan";

/// Set the garbage collector's finalizers for an explicit propagation
/// policy as upstream does: Foreground adds `foregroundDeletion`, Orphan
/// adds `orphan`, Background removes both. Without a policy the object's
/// finalizers stay as they are. Returns whether anything changed.
fn apply_propagation_policy(obj: &mut Value, options: &Value) -> bool {
    let policy = match options.get("propagationPolicy").and_then(Value::as_str) {
        Some(p) => p,
        None => match options.get("orphanDependents").and_then(Value::as_bool) {
            Some(true) => "Orphan",
            Some(false) => "Background",
            None => return false,
        },
    };
    let mut finalizers: Vec<String> = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let before = finalizers.clone();
    finalizers.retain(|f| f != FOREGROUND_FINALIZER && f != ORPHAN_FINALIZER);
    match policy {
        "Foreground" => finalizers.push(FOREGROUND_FINALIZER.into()),
        "Orphan" => finalizers.push(ORPHAN_FINALIZER.into()),
        _ => {}
    }
    if finalizers == before {
        return false;
    }
    if finalizers.is_empty() {
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("finalizers");
        }
    } else {
        meta::set_meta(obj, "finalizers", json!(finalizers));
    }
    true
}

/// Delete: preconditions, then remove or mark for deletion as the strategy
/// says. Returns the object and whether it is gone.
pub async fn delete_object(
    state: &ApiServer,
    s: &dyn Strategy,
    namespace: &str,
    name: &str,
    options: &Value,
    dry_run: bool,
) -> Result<(Value, bool), ApiError> {
    let info = s.info();
    admission::admit(state, Operation::Delete, s, namespace, name).await?;
    let key = info.key(namespace, name);
    if !dry_run {
        state.recent.forget(&key);
    }
    // Retry when the object changes under us between read and delete.
    for _ in 0..8 {
        let (mut obj, rev) = get_object(state, s, namespace, name).await?;
        if let Some(uid) = options
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
        {
            if uid != meta_uid(&obj) {
                return Err(ApiError::conflict(
                    info.plural,
                    info.group,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_uid(&obj)
                    ),
                ));
            }
        }
        if let Some(want) = options
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
        {
            if want != rev.to_string() {
                return Err(ApiError::conflict(info.plural, info.group, name, &format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rev}"
                )));
            }
        }
        let finalizers_changed = apply_propagation_policy(&mut obj, options);
        // Graceful deletion: mark the object and let its owner (the kubelet)
        // finish; a shorter grace period on a second delete wins.
        let grace = s.grace_period_seconds(&obj, options).unwrap_or(0);
        if grace > 0 {
            let existing = obj
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64);
            if dry_run || (existing.is_some_and(|e| e <= grace) && !finalizers_changed) {
                return Ok((obj, false));
            }
            let deadline = time::OffsetDateTime::now_utc() + time::Duration::seconds(grace);
            meta::set_meta(
                &mut obj,
                "deletionTimestamp",
                json!(meta::format_timestamp(deadline)),
            );
            meta::set_meta(&mut obj, "deletionGracePeriodSeconds", json!(grace));
            match state
                .store
                .update(&key, encode_for_store(info, &obj), rev)
                .await
            {
                Ok(kv) => {
                    meta::set_meta(
                        &mut obj,
                        "resourceVersion",
                        json!(kv.mod_revision.to_string()),
                    );
                    return Ok((obj, false));
                }
                Err(StorageError::Conflict { .. }) => continue,
                Err(e) => return Err(storage_error(e, info.plural, info.group, name)),
            }
        }
        let action = s.delete_action(&obj);
        if dry_run {
            return Ok((obj, action == DeleteAction::Remove));
        }
        let result = match action {
            DeleteAction::Remove => match state.store.delete(&key, Some(rev)).await {
                Ok(kv) => {
                    s.after_delete(&state.hooks(), &obj).await;
                    meta::set_meta(
                        &mut obj,
                        "resourceVersion",
                        json!(kv.mod_revision.to_string()),
                    );
                    Ok(true)
                }
                Err(e) => Err(e),
            },
            DeleteAction::MarkDeleting => {
                if obj.pointer("/metadata/deletionTimestamp").is_some()
                    && grace_period_running(&obj)
                {
                    // A delete with grace 0 (the kubelet's last one) ends a
                    // running grace period even while finalizers hold the
                    // object, so it goes once they are removed.
                    meta::set_meta(&mut obj, "deletionTimestamp", json!(meta::now_rfc3339()));
                    meta::set_meta(&mut obj, "deletionGracePeriodSeconds", json!(0));
                } else if obj.pointer("/metadata/deletionTimestamp").is_some() {
                    if !finalizers_changed {
                        return Ok((obj, false));
                    }
                } else {
                    meta::set_meta(&mut obj, "deletionTimestamp", json!(meta::now_rfc3339()));
                    meta::set_meta(&mut obj, "deletionGracePeriodSeconds", json!(0));
                    s.on_mark_deleting(&mut obj);
                }
                state
                    .store
                    .update(&key, encode_for_store(info, &obj), rev)
                    .await
                    .map(|kv| {
                        meta::set_meta(
                            &mut obj,
                            "resourceVersion",
                            json!(kv.mod_revision.to_string()),
                        );
                        false
                    })
            }
        };
        match result {
            Ok(removed) => return Ok((obj, removed)),
            Err(StorageError::Conflict { .. }) => continue,
            Err(e) => return Err(storage_error(e, info.plural, info.group, name)),
        }
    }
    Err(ApiError::conflict_modified(info.plural, info.group, name))
}

/// The CertificateApproval admission check: approving or denying a CSR
/// needs the `approve` verb on `certificates.k8s.io/signers` for its
/// signer name (or its `<domain>/*` wildcard).
async fn check_may_approve(
    state: &ApiServer,
    ctx: &RequestContext,
    s: &dyn Strategy,
    name: &str,
) -> Result<(), ApiError> {
    let (csr, _) = get_object(state, s, "", name).await?;
    let signer = csr
        .pointer("/spec/signerName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut names = vec![signer.clone()];
    if let Some((domain, _)) = signer.split_once('/') {
        names.push(format!("{domain}/*"));
    }
    for name in names {
        let info = crate::request_info::RequestInfo {
            is_resource_request: true,
            verb: "approve".into(),
            group: "certificates.k8s.io".into(),
            version: "v1".into(),
            resource: "signers".into(),
            name,
            ..Default::default()
        };
        if crate::authz::authorize(state, &ctx.user, &info).await == crate::authz::Decision::Allow {
            return Ok(());
        }
    }
    Err(ApiError::forbidden_message(format!(
        "certificatesigningrequests.certificates.k8s.io \"{name}\" is forbidden: user not permitted to approve requests with signerName \"{signer}\""
    )))
}

/// `pods/<name>/eviction`: delete a pod unless that would break its
/// PodDisruptionBudget, as upstream's eviction subresource does: terminal,
/// pending and already-terminating pods go regardless; otherwise the one
/// PDB selecting the pod must allow a disruption, which is taken from its
/// status (and recorded in `disruptedPods`) before the pod is deleted.
async fn evict_pod(
    state: &ApiServer,
    s: &dyn Strategy,
    namespace: &str,
    name: &str,
    eviction: &Value,
    dry_run: bool,
) -> Result<(), ApiError> {
    if let Some(body_name) = meta::meta_str(eviction, "name").filter(|n| !n.is_empty()) {
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "name in URL does not match name in Eviction object: {name} != {body_name}"
            )));
        }
    }
    let delete_options = eviction
        .get("deleteOptions")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let (pod, _) = get_object(state, s, namespace, name).await?;
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    let ignore_budget = matches!(phase, "Succeeded" | "Failed" | "Pending")
        || pod.pointer("/metadata/deletionTimestamp").is_some();
    if !ignore_budget {
        take_disruption(state, &pod, namespace, dry_run).await?;
    }
    delete_object(state, s, namespace, name, &delete_options, dry_run).await?;
    Ok(())
}

fn too_many_requests(message: &str, cause: Option<String>) -> ApiError {
    let mut err = ApiError::new(429, apimachinery::StatusReason::TooManyRequests, message);
    if let Some(cause) = cause {
        err = err.with_causes(vec![apimachinery::StatusCause {
            reason: "DisruptionBudget".into(),
            message: cause,
            field: String::new(),
        }]);
    }
    err
}

async fn take_disruption(
    state: &ApiServer,
    pod: &Value,
    namespace: &str,
    dry_run: bool,
) -> Result<(), ApiError> {
    let labels = apimachinery::selector::labels_of(pod);
    let pod_ready = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        });
    let strategy = state
        .registry
        .lookup("policy", "v1", "poddisruptionbudgets")
        .cloned()
        .ok_or_else(|| ApiError::internal("poddisruptionbudgets are not registered"))?;
    let info = strategy.info();
    for _ in 0..8 {
        let rev = state
            .store
            .current_revision()
            .await
            .map_err(|e| storage_error(e, info.plural, info.group, ""))?;
        let (items, _) = state
            .cache
            .list(&format!("/registry/poddisruptionbudgets/{namespace}/"), rev)
            .await?;
        let items: Vec<Value> = items.iter().map(|c| c.decode()).collect();
        let matching: Vec<&Value> = items
            .iter()
            .filter(|pdb| {
                pdb.pointer("/spec/selector")
                    .is_some_and(|sel| apimachinery::selector::label_selector_matches(sel, &labels))
            })
            .collect();
        let pdb = match matching.as_slice() {
            [] => return Ok(()),
            [one] => (*one).clone(),
            _ => {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ))
            }
        };
        let pdb_name = meta::name(&pdb).to_string();
        let generation = pdb
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let observed = pdb
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if observed < generation {
            return Err(too_many_requests(
                "Cannot evict pod as it would violate the pod's disruption budget.",
                Some(format!(
                    "The disruption budget {pdb_name} is still being processed by the server."
                )),
            ));
        }
        let current = pdb
            .pointer("/status/currentHealthy")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let desired = pdb
            .pointer("/status/desiredHealthy")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if !pod_ready {
            let policy = pdb
                .pointer("/spec/unhealthyPodEvictionPolicy")
                .and_then(Value::as_str)
                .unwrap_or("IfHealthyBudget");
            if policy == "AlwaysAllow" || current >= desired {
                return Ok(());
            }
        }
        let allowed = pdb
            .pointer("/status/disruptionsAllowed")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if allowed <= 0 {
            return Err(too_many_requests(
                "Cannot evict pod as it would violate the pod's disruption budget.",
                Some(format!(
                    "The disruption budget {pdb_name} needs {desired} healthy pods and has {current} currently"
                )),
            ));
        }
        if dry_run {
            return Ok(());
        }
        let (mut stored, stored_rev) =
            get_object(state, strategy.as_ref(), namespace, &pdb_name).await?;
        if stored
            .pointer("/status/disruptionsAllowed")
            .and_then(Value::as_i64)
            != Some(allowed)
        {
            continue;
        }
        stored["status"]["disruptionsAllowed"] = json!(allowed - 1);
        let pod_name = meta::name(pod).to_string();
        if !stored["status"]["disruptedPods"].is_object() {
            stored["status"]["disruptedPods"] = json!({});
        }
        stored["status"]["disruptedPods"][pod_name] = json!(meta::now_rfc3339());
        match state
            .store
            .update(
                &info.key(namespace, &pdb_name),
                encode_for_store(info, &stored),
                stored_rev,
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(StorageError::Conflict { .. }) => continue,
            Err(e) => return Err(storage_error(e, info.plural, info.group, &pdb_name)),
        }
    }
    Err(ApiError::conflict_modified(
        info.plural,
        info.group,
        "poddisruptionbudget",
    ))
}

/// `pods/<name>/binding`: assign the pod to a node, once.
async fn bind_pod(
    state: &ApiServer,
    s: &dyn Strategy,
    namespace: &str,
    name: &str,
    binding: &Value,
    dry_run: bool,
) -> Result<(), ApiError> {
    let info = s.info();
    if let Some(body_name) = meta::meta_str(binding, "name").filter(|n| !n.is_empty()) {
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
    }
    for attempt in 0..8 {
        // What makes a binding fail never goes away, so a refusal based on
        // the cache's copy holds.
        let ((mut pod, rev), _) = write_base(state, s, namespace, name, attempt).await?;
        crate::registry::pods::bind(&mut pod, binding)?;
        if dry_run {
            return Ok(());
        }
        let key = info.key(namespace, name);
        match state
            .store
            .update(&key, encode_for_store(info, &pod), rev)
            .await
        {
            Ok(kv) => {
                // Its node writes the pod's status next, at once.
                if !crate::conversion::applies(info) {
                    meta::set_meta(
                        &mut pod,
                        "resourceVersion",
                        json!(kv.mod_revision.to_string()),
                    );
                    state.recent.remember(key, kv.mod_revision, pod);
                }
                return Ok(());
            }
            Err(StorageError::Conflict { .. }) => continue,
            Err(e) => return Err(storage_error(e, info.plural, info.group, name)),
        }
    }
    Err(ApiError::conflict_modified(info.plural, info.group, name))
}

/// The one place a patch engine error becomes an API error.
fn patch_error(e: &PatchError) -> ApiError {
    let reason = e
        .status_reason()
        .unwrap_or(apimachinery::StatusReason::InternalError);
    ApiError::new(e.status_code(), reason, e.status_message())
}

/// PATCH: apply a JSON, merge or strategic merge patch to the current
/// object and store the result as an update would, retrying when the object
/// changes meanwhile (unless the patch pinned a resourceVersion).
#[allow(clippy::too_many_arguments)]
async fn patch_object(
    state: &ApiServer,
    s: &dyn Strategy,
    namespace: &str,
    name: &str,
    content_type: &str,
    body: &[u8],
    subresource: Subresource,
    opts: &WriteOptions,
    warnings: &mut Vec<String>,
) -> Result<(Written, u16), ApiError> {
    let info = s.info();
    let patch_type = PatchType::from_content_type(content_type).ok_or_else(|| {
        ApiError::new(
            415,
            apimachinery::StatusReason::UnsupportedMediaType,
            format!("the body of the request was in an unknown format - accepted media types include: {}", BUILTIN_PATCH_CONTENT_TYPES.join(", ")),
        )
    })?;
    if patch_type == PatchType::Apply {
        let (object, code) =
            server_side_apply(state, s, namespace, name, body, subresource, opts, warnings).await?;
        return Ok((Written { object, json: None }, code));
    }
    let meta = builtin_meta(&info.api_version(), info.kind);
    for attempt in 0..8 {
        let ((current, revision), from_cache) =
            write_base(state, s, namespace, name, attempt).await?;
        let patched = apply_patch(
            patch_type,
            &current,
            body,
            meta.as_ref().map(|m| m as &dyn PatchMeta),
        )
        .map_err(|e| patch_error(&e))?;
        let pinned = meta::resource_version(&patched) != meta::resource_version(&current);
        // The object the patch applied to is the one the update checks
        // against: if it changed since, the write conflicts and we retry.
        let patched = typed_patched(s, patched, &current, opts, warnings)?;
        match update_written(
            state,
            s,
            namespace,
            name,
            patched,
            subresource,
            opts,
            warnings,
            Some((current, revision)),
        )
        .await
        {
            Err(e)
                if e.code == 409
                    && e.reason == apimachinery::StatusReason::Conflict
                    && (!pinned || from_cache) =>
            {
                continue
            }
            other => return other.map(|v| (v, 200)),
        }
    }
    Err(ApiError::conflict_modified(info.plural, info.group, name))
}

/// The object a retrying write starts from, with its mod revision and
/// whether it came from the watch cache. The first attempt takes the
/// cache's copy when it has one, as upstream does, sparing a datastore
/// read; a stale copy makes the write conflict, and later attempts read
/// the datastore.
async fn write_base(
    state: &ApiServer,
    s: &dyn Strategy,
    namespace: &str,
    name: &str,
    attempt: usize,
) -> Result<((Value, i64), bool), ApiError> {
    if attempt == 0 {
        if let Some(current) = cached_current(state, s, namespace, name).await {
            return Ok((current, true));
        }
    }
    Ok((get_object(state, s, namespace, name).await?, false))
}

/// The watch cache's copy of an object and its mod revision: `None` when
/// the cache does not have it or holds it in another version than clients
/// see.
async fn cached_current(
    state: &ApiServer,
    s: &dyn Strategy,
    namespace: &str,
    name: &str,
) -> Option<(Value, i64)> {
    let info = s.info();
    if crate::conversion::applies(info) {
        return None;
    }
    let key = info.key(namespace, name);
    let cached = state.cache.get(&key, 0).await.ok()??;
    let cached_revision = cached.selectable().resource_version().parse::<i64>().ok()?;
    if let Some(recent) = state.recent.take(&key, cached_revision) {
        return Some(recent);
    }
    let obj = cached.decode();
    let revision = meta::resource_version(&obj).parse::<i64>().ok()?;
    Some((obj, revision))
}

/// PUT or PATCH of `<workload>/scale`: compute the new Scale, then update
/// the object's `spec.replicas` like an ordinary update.
#[allow(clippy::too_many_arguments)]
async fn scale_object(
    state: &ApiServer,
    s: &dyn Strategy,
    namespace: &str,
    name: &str,
    verb: &str,
    content_type: &str,
    parts: &http::request::Parts,
    body: &[u8],
    opts: &WriteOptions,
) -> Result<Value, ApiError> {
    use crate::registry::scale::{apply_scale, to_scale};
    let info = s.info();
    for _ in 0..8 {
        let (mut obj, _) = get_object(state, s, namespace, name).await?;
        let current = to_scale(&obj);
        let scale = if verb == "patch" {
            let patch_type = PatchType::from_content_type(content_type)
                .filter(|t| *t != PatchType::Apply)
                .ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
            let meta = apimachinery::patch::ReplaceAllLists;
            apply_patch(patch_type, &current, body, Some(&meta)).map_err(|e| patch_error(&e))?
        } else {
            decode_body(parts, body)?
        };
        let pinned = meta::resource_version(&scale) != meta::resource_version(&current)
            && !meta::resource_version(&scale).is_empty();
        apply_scale(&mut obj, &scale)?;
        match update_object(
            state,
            s,
            namespace,
            name,
            obj,
            Subresource::None,
            opts,
            &mut Vec::new(),
        )
        .await
        {
            Err(e)
                if e.code == 409 && e.reason == apimachinery::StatusReason::Conflict && !pinned =>
            {
                continue
            }
            other => return other,
        }
    }
    Err(ApiError::conflict_modified(info.plural, info.group, name))
}

/// Server-side apply (`application/apply-patch+yaml`): merge the applied
/// configuration into the live object (or create it), tracking field
/// ownership; conflicts with other managers are a 409 unless `force`.
#[allow(clippy::too_many_arguments)]
async fn server_side_apply(
    state: &ApiServer,
    s: &dyn Strategy,
    namespace: &str,
    name: &str,
    body: &[u8],
    subresource: Subresource,
    opts: &WriteOptions,
    warnings: &mut Vec<String>,
) -> Result<(Value, u16), ApiError> {
    use apimachinery::patch::apply::apply;
    let info = s.info();
    if subresource != Subresource::None {
        return Err(ApiError::unsupported_media_type(
            "application/apply-patch+yaml on a subresource",
        ));
    }
    if !opts.field_manager_given {
        return Err(ApiError::bad_request(
            "PATCH request for apply must have fieldManager",
        ));
    }
    let config = codec::decode_object(body, BodyFormat::Yaml)?;
    apimachinery::patch::check_apply_target(&config, &info.api_version(), info.kind, name)
        .map_err(|e| e.to_api_error())?;
    let meta = managed_fields_meta(s);
    let applied_opts = WriteOptions {
        applied: true,
        ..opts.clone()
    };
    for _ in 0..8 {
        let now = meta::now_rfc3339();
        match get_object(state, s, namespace, name).await {
            Err(e) if e.code == 404 => {
                let obj = apply(
                    None,
                    &config,
                    &opts.field_manager,
                    opts.force,
                    meta.as_ref(),
                    &now,
                )
                .map_err(|e| e.to_api_error())?;
                match create_object(state, s, namespace, obj, &applied_opts, warnings).await {
                    Err(e) if e.reason == apimachinery::StatusReason::AlreadyExists => continue,
                    other => return other.map(|v| (v, 201)),
                }
            }
            Err(e) => return Err(e),
            Ok((live, revision)) => {
                let obj = apply(
                    Some(&live),
                    &config,
                    &opts.field_manager,
                    opts.force,
                    meta.as_ref(),
                    &now,
                )
                .map_err(|e| e.to_api_error())?;
                let obj = typed_object(s, obj, &applied_opts, warnings)?;
                match update_written(
                    state,
                    s,
                    namespace,
                    name,
                    obj,
                    Subresource::None,
                    &applied_opts,
                    warnings,
                    Some((live, revision)),
                )
                .await
                {
                    Err(e) if e.code == 409 && e.reason == apimachinery::StatusReason::Conflict => {
                        continue
                    }
                    other => return other.map(|v| (v.object, 200)),
                }
            }
        }
    }
    Err(ApiError::conflict_modified(info.plural, info.group, name))
}

/// Server-side apply cannot type an applied configuration that sets fields
/// its kind does not declare, whatever the field validation asked for;
/// upstream answers with this message (as a 500 today; a 400 here, as the
/// pending upstream fix has it, since the input is at fault).
fn undeclared_fields(
    s: &dyn Strategy,
    obj: &Value,
    unknown: &[crate::typed::UnknownField],
) -> ApiError {
    let meta = managed_fields_meta(s);
    let errors: Vec<String> = unknown
        .iter()
        .map(|field| {
            format!(
                "{}: field not declared in schema",
                apimachinery::patch::path_string(&schema_path(obj, field, meta.as_ref()))
            )
        })
        .collect();
    let text = match errors.as_slice() {
        [one] => one.clone(),
        many => format!("errors:\n  {}", many.join("\n  ")),
    };
    let info = s.info();
    ApiError::bad_request(format!(
        "failed to create typed patch object ({}/{}; {}/{}, Kind={}): {text}",
        meta::namespace(obj),
        meta::name(obj),
        info.group,
        info.version,
        info.kind,
    ))
}

/// An unknown field's path as server-side apply prints it: an item of a
/// list merged by key is named by its key (`[name="c"]`), other items by
/// their index.
fn schema_path(
    obj: &Value,
    field: &crate::typed::UnknownField,
    meta: &dyn PatchMeta,
) -> Vec<apimachinery::patch::PathElement> {
    use apimachinery::patch::fieldset::{item_key, list_keys};
    use apimachinery::patch::PathElement;
    let mut names: Vec<&str> = Vec::new();
    let mut at = Some(obj);
    let mut path = Vec::with_capacity(field.0.len());
    for step in &field.0 {
        match step {
            crate::typed::Step::Field(name) => {
                path.push(PathElement::Field(name.clone()));
                names.push(name);
                at = at.and_then(|v| v.get(name));
            }
            crate::typed::Step::Index(index) => {
                let item = at.and_then(|v| v.get(index));
                let keyed = list_keys(meta, &names)
                    .zip(item)
                    .and_then(|(keys, item)| item_key(item, &keys));
                path.push(keyed.unwrap_or(PathElement::Index(*index as i64)));
                at = item;
            }
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undeclared_field_in_a_keyed_list_is_named_by_its_key() {
        use crate::typed::{Step, UnknownField};
        let meta = builtin_meta("v1", "Pod").unwrap();
        let pod = json!({"spec": {
            "containers": [{"name": "web", "ports": [{"containerPort": 80, "bogus": 1}], "bogus": 1}],
            "tolerations": [{"key": "k", "bogus": 1}]}});
        let field = |steps: &[Step]| UnknownField(steps.to_vec());
        let f = |name: &str| Step::Field(name.to_string());
        let cases = [
            (
                field(&[f("spec"), f("containers"), Step::Index(0), f("bogus")]),
                r#".spec.containers[name="web"].bogus"#,
            ),
            (
                field(&[
                    f("spec"),
                    f("containers"),
                    Step::Index(0),
                    f("ports"),
                    Step::Index(0),
                    f("bogus"),
                ]),
                r#".spec.containers[name="web"].ports[containerPort=80,protocol="TCP"].bogus"#,
            ),
            // Tolerations are an atomic list: items keep their index.
            (
                field(&[f("spec"), f("tolerations"), Step::Index(0), f("bogus")]),
                ".spec.tolerations[0].bogus",
            ),
        ];
        for (unknown, expected) in cases {
            let path = schema_path(&pod, &unknown, &meta);
            assert_eq!(apimachinery::patch::path_string(&path), expected);
        }
    }

    #[test]
    fn a_patched_object_checked_in_parts_is_what_the_whole_check_makes_of_it() {
        let registry = crate::registry::Registry::builtin();
        let pods = registry.lookup("", "v1", "pods").unwrap().as_ref();
        let csrs = registry
            .lookup("certificates.k8s.io", "v1", "certificatesigningrequests")
            .unwrap()
            .as_ref();
        let stored_pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": "Pending"}});
        let patched = |base: &Value, f: &dyn Fn(&mut Value)| {
            let mut obj = base.clone();
            f(&mut obj);
            obj
        };
        let stored_csr = json!({"apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest", "metadata": {"name": "c"},
            "spec": {"request": "AAAA", "signerName": "example.com/s", "usages": ["digital signature"]}});
        let cases = [
            // A status patch: only the status is checked.
            (
                pods,
                &stored_pod,
                patched(&stored_pod, &|o| {
                    o["status"] = json!({"phase": "Running", "podIP": "10.42.0.2", "bogus": 1});
                }),
            ),
            // Unknown and null fields in the spec are dropped, with warnings.
            (
                pods,
                &stored_pod,
                patched(&stored_pod, &|o| {
                    o["spec"]["containers"][0]["bogus"] = json!(true);
                    o["spec"]["nodeName"] = Value::Null;
                }),
            ),
            // A top-level field the type lacks.
            (
                pods,
                &stored_pod,
                patched(&stored_pod, &|o| o["bogus"] = json!({"x": 1})),
            ),
            // A field of the wrong type is refused with the whole check's words.
            (
                pods,
                &stored_pod,
                patched(&stored_pod, &|o| {
                    o["spec"]["containers"][0]["image"] = json!(7)
                }),
            ),
            // No change at all.
            (pods, &stored_pod, stored_pod.clone()),
            // A required field removed comes back as its default.
            (
                pods,
                &stored_pod,
                patched(&stored_pod, &|o| {
                    o.as_object_mut().map(|m| m.remove("metadata"));
                }),
            ),
            // A kind whose spec is required is checked whole.
            (
                csrs,
                &stored_csr,
                patched(&stored_csr, &|o| {
                    o["status"] = json!({"conditions": [
                {"type": "Approved", "status": "True", "bogus": 1}]})
                }),
            ),
        ];
        for validation in [FieldValidation::Warn, FieldValidation::Strict] {
            let opts = WriteOptions {
                field_validation: validation,
                ..WriteOptions::INTERNAL
            };
            for (s, base, obj) in &cases {
                let (mut w_parts, mut w_whole) = (Vec::new(), Vec::new());
                let parts = typed_patched(*s, obj.clone(), base, &opts, &mut w_parts);
                let whole = typed_object(*s, obj.clone(), &opts, &mut w_whole);
                match (parts, whole) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "{obj}"),
                    (Err(a), Err(b)) => assert_eq!(a.message, b.message, "{obj}"),
                    (a, b) => panic!("{obj}: in parts {a:?}, whole {b:?}"),
                }
                w_parts.sort();
                w_whole.sort();
                assert_eq!(w_parts, w_whole, "{obj}");
            }
        }
    }

    #[test]
    fn a_status_write_keeps_its_body_only_when_nothing_but_the_status_differs() {
        let old =
            json!({"metadata": {"name": "p"}, "spec": {"a": 1}, "status": {"phase": "Pending"}});
        let with = |f: &dyn Fn(&mut Value)| {
            let mut obj = old.clone();
            f(&mut obj);
            obj
        };
        assert!(same_but_status(
            &with(&|o| o["status"]["phase"] = json!("Running")),
            &old
        ));
        assert!(same_but_status(&old, &old));
        // The status write must not change the spec or add fields.
        assert!(!same_but_status(
            &with(&|o| o["spec"]["a"] = json!(2)),
            &old
        ));
        assert!(!same_but_status(&with(&|o| o["extra"] = json!(1)), &old));
        assert!(!same_but_status(
            &with(&|o| {
                o.as_object_mut().map(|m| m.remove("spec"));
            }),
            &old
        ));
        // Without a status the write clears it, which the general route does.
        assert!(!same_but_status(
            &with(&|o| {
                o.as_object_mut().map(|m| m.remove("status"));
            }),
            &old
        ));
        let unset = json!({"metadata": {"name": "p"}, "spec": {"a": 1}});
        assert!(same_but_status(&with(&|_| {}), &unset));
    }

    #[test]
    fn a_filter_reads_the_fields_and_labels_its_selectors_name() {
        let filter = |labels: &str, fields: &str| Filter {
            labels: Selector::parse_labels(labels).unwrap(),
            fields: Selector::parse_fields(fields).unwrap(),
            selectable: selectable_fields("", "pods"),
        };
        let pod = json!({"metadata": {"name": "p", "namespace": "d", "labels": {"app": "web"}},
                         "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let pod = Cached::new(pod).selectable().clone();
        assert!(filter("", "").matches(&pod));
        assert!(filter("app=web", "").matches(&pod));
        assert!(!filter("app=db", "").matches(&pod));
        assert!(!filter("!app", "").matches(&pod));
        assert!(filter("", "spec.nodeName=n1,status.phase=Running").matches(&pod));
        assert!(!filter("", "spec.nodeName=n2").matches(&pod));
        assert!(filter("", "metadata.namespace=d,metadata.name!=q").matches(&pod));
        // Absent booleans read as false, absent strings as "".
        assert!(filter("", "spec.hostNetwork=false").matches(&pod));
        assert!(filter("", "status.podIP=").matches(&pod));
        assert!(!filter("app=web", "spec.schedulerName=x").matches(&pod));
    }

    #[test]
    fn the_stored_form_leaves_out_only_the_resource_version() {
        let obj = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "a", "resourceVersion": "42", "labels": {"resourceVersion": "kept"}},
            "data": {"resourceVersion": "kept"}
        });
        let info = ResourceInfo {
            group: "",
            version: "v1",
            kind: "ConfigMap",
            plural: "configmaps",
            singular: "configmap",
            scope: apimachinery::resource::Scope::Namespaced,
            short_names: &[],
            categories: &[],
            verbs: apimachinery::resource::ALL_VERBS,
            subresources: &[],
        };
        let stored: Value = serde_json::from_slice(&encode_for_store(&info, &obj)).unwrap();
        let mut expected = obj.clone();
        meta::remove_meta(&mut expected, "resourceVersion");
        assert_eq!(stored, expected);
    }

    #[test]
    fn objects_differing_only_in_resource_version_are_the_same_write() {
        let a = json!({"metadata": {"name": "a", "resourceVersion": "1"}, "data": {"k": "v"}});
        let b = json!({"metadata": {"name": "a", "resourceVersion": "2"}, "data": {"k": "v"}});
        let c = json!({"metadata": {"name": "a"}, "data": {"k": "v"}});
        let d = json!({"metadata": {"name": "a", "resourceVersion": "1"}, "data": {"k": "w"}});
        let e = json!({"metadata": {"name": "a", "resourceVersion": "1", "labels": {}}, "data": {"k": "v"}});
        let f = json!({"metadata": {"name": "a", "resourceVersion": "1"}, "data": {"k": "v"}, "extra": 1});
        assert!(same_ignoring_rv(&a, &b));
        assert!(same_ignoring_rv(&a, &c));
        assert!(!same_ignoring_rv(&a, &d));
        assert!(!same_ignoring_rv(&a, &e));
        assert!(!same_ignoring_rv(&a, &f));
        assert!(!same_ignoring_rv(&f, &a));
    }

    #[test]
    fn a_stored_object_gets_its_revision_spliced_in_as_decoding_would() {
        let docs = [
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"a":"}{\\\"metadata\\\":{"}},"spec":{"containers":[{"name":"c"}]}}"#,
            r#"{"spec":{"template":{"metadata":{"name":"inner"}}},"metadata":{}}"#,
            r#" { "kind" : "X" , "n" : [1, {"a": null}, "x]"] , "metadata" : { "name" : "w" } } "#,
            r#"{"involvedObject":{"resourceVersion":"3"},"metadata":{"name":"e"}}"#,
        ];
        for doc in docs {
            let kv = KeyValue {
                key: "/registry/x".into(),
                value: doc.as_bytes().to_vec(),
                create_revision: 1,
                mod_revision: 42,
            };
            let spliced = stored_json_with_revision(doc.as_bytes(), 42)
                .unwrap_or_else(|| panic!("not spliced: {doc}"));
            let spliced: Value = serde_json::from_slice(&spliced)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&spliced)));
            assert_eq!(spliced, decode_stored(&kv).unwrap(), "{doc}");
        }
    }

    #[test]
    fn objects_the_splice_cannot_handle_are_left_to_the_decoder() {
        for doc in [
            r#"{"metadata":{"name":"p","resourceVersion":"7"}}"#,
            r#"{"kind":"NoMetadata"}"#,
            r#"{"metadata":"text"}"#,
            r#"[{"metadata":{}}]"#,
            r#"{"metadata":{"name":"p""#,
            r#"{"a":"unterminated"#,
            "",
        ] {
            assert_eq!(stored_json_with_revision(doc.as_bytes(), 1), None, "{doc}");
        }
    }

    #[test]
    fn the_watch_cache_skeleton_holds_every_selectable_field() {
        let pairs = [
            ("", "pods"),
            ("", "events"),
            ("", "secrets"),
            ("", "namespaces"),
            ("", "nodes"),
            ("", "replicationcontrollers"),
            ("apps", "replicasets"),
            ("batch", "jobs"),
            ("certificates.k8s.io", "certificatesigningrequests"),
        ];
        for (group, resource) in pairs {
            let fields = selectable_fields(group, resource);
            assert!(!fields.is_empty(), "{group}/{resource}");
            for (name, pointer) in fields {
                // An object with just this field set to a marker.
                let mut obj = json!({"metadata": {"name": "n", "namespace": "ns"}});
                let mut at = &mut obj;
                for part in pointer[1..].split('/') {
                    at = &mut at[part];
                }
                *at = json!("marker");
                let cached = Cached::new(obj.clone());
                assert_eq!(
                    field_text(cached.selectable().pointer(pointer), name),
                    field_text(obj.pointer(pointer), name),
                    "{group}/{resource} {name}"
                );
            }
        }
    }
}
