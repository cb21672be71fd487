//! OpenAPI: `/openapi/v3` (an index of per group-version documents, each
//! linked with a `?hash=`), the documents themselves, and `/openapi/v2`
//! (one Swagger 2.0 document, JSON or gnostic protobuf).
//!
//! Paths carry `x-kubernetes-group-version-kind` and the write operations
//! list the `fieldValidation` parameter: that is how kubectl learns the
//! server validates fields itself and sends `fieldValidation=Strict`
//! instead of validating client-side. Schemas (`schemas.rs`) are what
//! `kubectl explain` prints and what kubectl's patch computation reads.
//!
//! Documents are built on first request and cached (keyed by the served
//! resources), so a server nobody asks pays nothing; a hashed v3 URL is
//! immutable, so clients cache it for good.

mod schemas;
mod v2proto;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use apimachinery::{ApiError, ResourceInfo};
use http::{header, HeaderMap, HeaderValue, Response};
use serde_json::{json, Map, Value};

use crate::registry::Registry;
use crate::response::{self, Body};
use schemas::{Definitions, REF_PREFIX};

const V3_REF_PREFIX: &str = "#/components/schemas/";
pub const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// `api/v1` or `apis/<group>/<version>`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn gvk(r: &ResourceInfo) -> Value {
    json!({"group": r.group, "kind": r.kind, "version": r.version})
}

/// The schema name upstream would use, for kinds `k8s-openapi` lacks.
fn fallback_schema_name(r: &ResourceInfo) -> String {
    let group = match r.group {
        "" => "core",
        g => g.split('.').next().unwrap_or(g),
    };
    format!("io.k8s.api.{group}.{}.{}", r.version, r.kind)
}

/// The schemas of `resources` and the definition name of each.
fn definitions_for(resources: &[&ResourceInfo]) -> (Definitions, Vec<String>) {
    let kinds: Vec<(&str, &str, &str)> = resources
        .iter()
        .map(|r| (r.group, r.version, r.kind))
        .collect();
    let (mut defs, found) = schemas::definitions(&kinds);
    let mut names = Vec::new();
    for (r, name) in resources.iter().zip(found) {
        let name = name.unwrap_or_else(|| {
            let name = fallback_schema_name(r);
            defs.entry(name.clone()).or_insert_with(|| {
                json!({
                    "description": format!("{} of {}.", r.kind, if r.group.is_empty() { "the core API group" } else { r.group }),
                    "type": "object",
                    "x-kubernetes-group-version-kind": [gvk(r)],
                })
            });
            name
        });
        names.push(name);
    }
    (defs, names)
}

/// One operation of a resource, in a version-neutral form.
struct Op {
    method: &'static str,
    verb: &'static str,
    action: &'static str,
    params: Vec<(&'static str, &'static str)>,
    /// Definition names of the request body and the 200 response.
    body: Option<String>,
    response: String,
    /// `Status` for the status subresource's operations (`readPodStatus`).
    suffix: &'static str,
}

fn write_params() -> Vec<(&'static str, &'static str)> {
    vec![
        ("dryRun", "When present, indicates that modifications should not be persisted."),
        ("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."),
        ("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn (the default) and Strict."),
    ]
}

/// The collection and item paths of a resource and their operations.
fn resource_ops(r: &ResourceInfo, name: &str, defs: &Definitions) -> Vec<(String, Vec<Op>)> {
    let prefix = format!("/{}", gv_path(r.group, r.version));
    let collection = if r.namespaced() {
        format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{prefix}/{}", r.plural)
    };
    let item = format!("{collection}/{{name}}");
    let list = format!("{name}List");
    let list = if defs.contains_key(&list) {
        list
    } else {
        name.to_string()
    };
    let status = schemas::STATUS.to_string();
    let op = |method, verb, action, params, body: Option<&str>, response: &str| Op {
        method,
        verb,
        action,
        params,
        body: body.map(str::to_string),
        response: response.to_string(),
        suffix: "",
    };
    let mut coll = Vec::new();
    if r.supports("list") {
        coll.push(op("get", "list", "list", vec![], None, &list));
    }
    if r.supports("create") {
        coll.push(op(
            "post",
            "create",
            "post",
            write_params(),
            Some(name),
            name,
        ));
    }
    if r.supports("deletecollection") {
        let params = vec![("dryRun", "")];
        coll.push(op(
            "delete",
            "deletecollection",
            "deletecollection",
            params,
            Some(schemas::DELETE_OPTIONS),
            &status,
        ));
    }
    let mut one = Vec::new();
    if r.supports("get") {
        one.push(op("get", "read", "get", vec![], None, name));
    }
    if r.supports("update") {
        one.push(op(
            "put",
            "replace",
            "put",
            write_params(),
            Some(name),
            name,
        ));
    }
    if r.supports("patch") {
        let mut params = write_params();
        params.push(("force", "Force is going to \"force\" Apply requests."));
        one.push(op(
            "patch",
            "patch",
            "patch",
            params,
            Some(schemas::PATCH),
            name,
        ));
    }
    if r.supports("delete") {
        let params = vec![("dryRun", "")];
        one.push(op(
            "delete",
            "delete",
            "delete",
            params,
            Some(schemas::DELETE_OPTIONS),
            &status,
        ));
    }
    let mut paths = vec![(collection, coll)];
    if r.subresources.contains(&"status") {
        // The kind itself, read and written through `/status`.
        let status_ops = one
            .iter()
            .filter(|o| matches!(o.method, "get" | "put" | "patch"))
            .map(|o| Op {
                params: o.params.clone(),
                body: o.body.clone(),
                response: o.response.clone(),
                suffix: "Status",
                ..*o
            })
            .collect();
        paths.push((format!("{item}/status"), status_ops));
    }
    paths.push((item, one));
    paths
}

const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

fn v3_operation(r: &ResourceInfo, op: &Op) -> Value {
    let reference = |n: &str| json!({"$ref": format!("{V3_REF_PREFIX}{n}")});
    let params: Vec<Value> = op
        .params
        .iter()
        .map(|(name, description)| json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}}))
        .collect();
    let mut v = json!({
        "description": format!("{} {}{}", op.verb, r.kind, op.suffix),
        "operationId": format!("{}{}{}", op.verb, r.kind, op.suffix),
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": gvk(r),
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference(&op.response)}}}},
    });
    if let Some(body) = &op.body {
        let mut content = Map::new();
        let types: &[&str] = if op.method == "patch" {
            PATCH_TYPES
        } else {
            &["*/*"]
        };
        for t in types {
            content.insert(t.to_string(), json!({"schema": reference(body)}));
        }
        v["requestBody"] = json!({"content": content, "required": op.method != "delete"});
    }
    v
}

fn v2_operation(r: &ResourceInfo, op: &Op) -> Value {
    let reference = |n: &str| json!({"$ref": format!("{REF_PREFIX}{n}")});
    let mut params: Vec<Value> = op
        .params
        .iter()
        .map(|(name, description)| json!({"name": name, "in": "query", "description": description, "type": "string", "uniqueItems": true}))
        .collect();
    if let Some(body) = &op.body {
        params.insert(0, json!({"name": "body", "in": "body", "required": op.method != "delete", "schema": reference(body)}));
    }
    let consumes: Vec<&str> = if op.method == "patch" {
        PATCH_TYPES.to_vec()
    } else {
        vec!["*/*"]
    };
    json!({
        "description": format!("{} {}{}", op.verb, r.kind, op.suffix),
        "operationId": format!("{}{}{}", op.verb, r.kind, op.suffix),
        "consumes": consumes,
        "produces": ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"],
        "schemes": ["https"],
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": gvk(r),
        "parameters": params,
        "responses": {"200": {"description": "OK", "schema": reference(&op.response)}, "401": {"description": "Unauthorized"}},
    })
}

/// Neutral schemas to OpenAPI 3.0: `$ref`s into `#/components/schemas/`,
/// a `$ref` with siblings (a field's description) wrapped in `allOf` as
/// upstream writes it, and the scalar unions as `oneOf`.
fn to_v3(value: &Value) -> Value {
    match value {
        Value::Object(m) => {
            let reference = m
                .get("$ref")
                .and_then(Value::as_str)
                .map(|r| r.replacen(REF_PREFIX, V3_REF_PREFIX, 1));
            let mut out: Map<String, Value> = m
                .iter()
                .filter(|(k, _)| k.as_str() != "$ref")
                .map(|(k, v)| (k.clone(), to_v3(v)))
                .collect();
            match reference {
                Some(r) if out.is_empty() => {
                    out.insert("$ref".into(), Value::String(r));
                }
                Some(r) => {
                    out.insert("allOf".into(), json!([{"$ref": r}]));
                }
                None => {}
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_v3).collect()),
        other => other.clone(),
    }
}

fn v3_schemas(defs: &Definitions) -> Map<String, Value> {
    let mut out: Map<String, Value> = defs.iter().map(|(k, v)| (k.clone(), to_v3(v))).collect();
    let unions = [
        (
            schemas::INT_OR_STRING,
            json!([{"type": "integer"}, {"type": "string"}]),
        ),
        (
            schemas::QUANTITY,
            json!([{"type": "string"}, {"type": "number"}]),
        ),
    ];
    for (name, one_of) in unions {
        if let Some(Value::Object(s)) = out.get_mut(name) {
            s.remove("type");
            s.insert("oneOf".into(), one_of);
        }
    }
    out
}

fn info() -> Value {
    json!({"title": "Kubernetes", "version": crate::discovery::KUBERNETES_VERSION})
}

/// The OpenAPI 3.0 document of one group version.
fn v3_document(resources: &[&ResourceInfo]) -> Value {
    let (defs, names) = definitions_for(resources);
    let mut paths = Map::new();
    for (r, name) in resources.iter().zip(&names) {
        for (path, ops) in resource_ops(r, name, &defs) {
            let item: Map<String, Value> = ops
                .iter()
                .map(|op| (op.method.to_string(), v3_operation(r, op)))
                .collect();
            paths.insert(path, Value::Object(item));
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths,
        "components": {
            "schemas": v3_schemas(&defs),
            "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
        },
    })
}

/// The Swagger 2.0 document of everything served.
fn v2_document(resources: &[&ResourceInfo]) -> Value {
    let (defs, names) = definitions_for(resources);
    let mut paths = Map::new();
    for (r, name) in resources.iter().zip(&names) {
        for (path, ops) in resource_ops(r, name, &defs) {
            let item: Map<String, Value> = ops
                .iter()
                .map(|op| (op.method.to_string(), v2_operation(r, op)))
                .collect();
            paths.insert(path, Value::Object(item));
        }
    }
    json!({
        "swagger": "2.0",
        "info": info(),
        "paths": paths,
        "definitions": defs,
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    })
}

/// A serialized document and its hash (the ETag and the `?hash=`).
struct Cached {
    body: Vec<u8>,
    hash: String,
}

impl Cached {
    fn new(body: Vec<u8>) -> Arc<Cached> {
        // FNV-1a: stable across processes, so cached URLs stay valid.
        let mut h: u64 = 0xcbf29ce484222325;
        for b in &body {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
        Arc::new(Cached {
            body,
            hash: format!("{h:016X}"),
        })
    }
}

/// What a document is built from: the resources it describes.
fn fingerprint(resources: &[&ResourceInfo]) -> String {
    resources
        .iter()
        .map(|r| {
            format!(
                "{}/{}/{}/{}/{:?}/{}",
                r.group,
                r.version,
                r.kind,
                r.plural,
                r.scope,
                r.verbs.join(",")
            )
        })
        .collect::<Vec<_>>()
        .join(";")
}

type Cache = Mutex<HashMap<String, (String, Arc<Cached>)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The cached document `key` built from `resources`, building it (once)
/// if the resources changed or nobody asked before.
fn cached(key: &str, resources: &[&ResourceInfo], build: impl FnOnce() -> Vec<u8>) -> Arc<Cached> {
    let print = fingerprint(resources);
    // Holding the lock while building makes concurrent first requests wait
    // for one build instead of each doing it.
    let mut docs = cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some((p, doc)) = docs.get(key) {
        if *p == print {
            return doc.clone();
        }
    }
    let doc = Cached::new(build());
    docs.insert(key.to_string(), (print, doc.clone()));
    doc
}

fn v3_cached(registry: &Registry, group: &str, version: &str) -> Arc<Cached> {
    let resources: Vec<&ResourceInfo> = registry
        .all()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    cached(
        &format!("v3:{}", gv_path(group, version)),
        &resources,
        || serde_json::to_vec(&v3_document(&resources)).unwrap_or_default(),
    )
}

fn etag_matches(headers: &HeaderMap, hash: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().trim_start_matches("W/").trim_matches('"') == hash)
}

/// A document response with its ETag; 304 if the client has it already.
fn document_response(
    doc: &Cached,
    content_type: &'static str,
    cache_control: &'static str,
    headers: &HeaderMap,
) -> Response<Body> {
    let mut resp = if etag_matches(headers, &doc.hash) {
        let mut r = response::bytes(304, content_type, Vec::new());
        r.headers_mut().remove(header::CONTENT_TYPE);
        r
    } else {
        response::bytes(200, content_type, doc.body.clone())
    };
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", doc.hash)) {
        resp.headers_mut().insert(header::ETAG, etag);
    }
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    resp
}

/// Serve `/openapi/v3` and `/openapi/v3/<gv path>[?hash=...]`.
pub fn serve_v3(
    registry: &Registry,
    path: &str,
    query: &str,
    headers: &HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let rest = path.trim_start_matches("/openapi/v3").trim_matches('/');
    if rest.is_empty() {
        let mut index = Map::new();
        for (g, v) in registry.group_versions() {
            let p = gv_path(g, v);
            let url = format!("/openapi/v3/{p}?hash={}", v3_cached(registry, g, v).hash);
            index.insert(p, json!({"serverRelativeURL": url}));
        }
        let body = serde_json::to_vec(&json!({"paths": index})).unwrap_or_default();
        let doc = Cached::new(body);
        return Ok(document_response(
            &doc,
            "application/json",
            "no-cache, private",
            headers,
        ));
    }
    let (g, v) = registry
        .group_versions()
        .into_iter()
        .find(|(g, v)| gv_path(g, v) == rest)
        .ok_or_else(ApiError::path_not_found)?;
    let doc = v3_cached(registry, g, v);
    let asked = crate::query::Query::parse(query).str("hash").to_string();
    if asked.is_empty() {
        return Ok(document_response(
            &doc,
            "application/json",
            "no-cache, private",
            headers,
        ));
    }
    if asked != doc.hash {
        // An outdated link: send the client to the current one.
        let mut resp = response::bytes(301, "text/plain", Vec::new());
        let location = format!("/openapi/v3/{rest}?hash={}", doc.hash);
        if let Ok(value) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(header::LOCATION, value);
        }
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, private"),
        );
        return Ok(resp);
    }
    Ok(document_response(
        &doc,
        "application/json",
        "public, immutable, max-age=31536000",
        headers,
    ))
}

/// Serve `/openapi/v2`, as JSON or (when asked) gnostic protobuf.
pub fn serve_v2(registry: &Registry, headers: &HeaderMap) -> Response<Body> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let resources: Vec<&ResourceInfo> = registry.all().collect();
    let json_doc = cached("v2:json", &resources, || {
        serde_json::to_vec(&v2_document(&resources)).unwrap_or_default()
    });
    if accept.contains("protobuf") {
        let proto = cached("v2:protobuf", &resources, || {
            serde_json::from_slice::<Value>(&json_doc.body)
                .map(|doc| v2proto::document(&doc))
                .unwrap_or_default()
        });
        return document_response(&proto, V2_PROTOBUF, "no-cache, private", headers);
    }
    document_response(&json_doc, "application/json", "no-cache, private", headers)
}

#[cfg(test)]
mod tests;
