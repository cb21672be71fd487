//! OpenAPI: `/openapi/v3` (an index of per group-version documents) and
//! the documents themselves, generated from the registry.
//!
//! Each resource's paths carry `x-kubernetes-group-version-kind` and the
//! PATCH operation lists the `fieldValidation` parameter: that is how
//! kubectl learns the server validates fields itself and sends
//! `fieldValidation=Strict` instead of validating client-side. Schemas are
//! placeholders naming each kind; full schemas come with `kubectl explain`
//! support.

use apimachinery::{ApiError, ResourceInfo};
use serde_json::{json, Map, Value};

use crate::registry::Registry;

/// `api/v1` or `apis/<group>/<version>`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn gvk(r: &ResourceInfo) -> Value {
    json!([{"group": r.group, "version": r.version, "kind": r.kind}])
}

/// The schema name upstream uses, e.g. `io.k8s.api.core.v1.ConfigMap`.
fn schema_name(r: &ResourceInfo) -> String {
    let group = match r.group {
        "" => "core",
        g => g.split('.').next().unwrap_or(g),
    };
    format!("io.k8s.api.{group}.{}.{}", r.version, r.kind)
}

fn query_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn write_params() -> Vec<Value> {
    vec![
        query_param("dryRun", "When present, indicates that modifications should not be persisted."),
        query_param("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."),
        query_param("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn (the default) and Strict."),
    ]
}

fn operation(r: &ResourceInfo, verb: &str, action: &str, params: Vec<Value>) -> Value {
    let reference = json!({"$ref": format!("#/components/schemas/{}", schema_name(r))});
    let mut op = json!({
        "description": format!("{verb} {}", r.kind),
        "operationId": format!("{verb}{}", r.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(r)[0].clone(),
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}},
    });
    if matches!(action, "put" | "post" | "patch") {
        op["requestBody"] = json!({"content": {"*/*": {"schema": reference}}, "required": true});
    }
    op
}

fn resource_paths(r: &ResourceInfo, paths: &mut Map<String, Value>) {
    let prefix = format!("/{}", gv_path(r.group, r.version));
    let collection = if r.namespaced() {
        format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{prefix}/{}", r.plural)
    };
    let item = format!("{collection}/{{name}}");
    let mut coll = Map::new();
    if r.supports("list") {
        coll.insert("get".into(), operation(r, "list", "list", vec![]));
    }
    if r.supports("create") {
        coll.insert(
            "post".into(),
            operation(r, "create", "post", write_params()),
        );
    }
    if r.supports("deletecollection") {
        coll.insert(
            "delete".into(),
            operation(r, "deletecollection", "deletecollection", vec![]),
        );
    }
    let mut one = Map::new();
    if r.supports("get") {
        one.insert("get".into(), operation(r, "read", "get", vec![]));
    }
    if r.supports("update") {
        one.insert("put".into(), operation(r, "replace", "put", write_params()));
    }
    if r.supports("patch") {
        let mut params = write_params();
        params.push(query_param(
            "force",
            "Force is going to \"force\" Apply requests.",
        ));
        one.insert("patch".into(), operation(r, "patch", "patch", params));
    }
    if r.supports("delete") {
        one.insert(
            "delete".into(),
            operation(r, "delete", "delete", vec![query_param("dryRun", "")]),
        );
    }
    paths.insert(collection, Value::Object(coll));
    paths.insert(item, Value::Object(one));
}

/// A stable short hash of a document, for the index's `?hash=` links.
fn hash(doc: &Value) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in doc.to_string().bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}")
}

fn document(registry: &Registry, group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for r in registry
        .all()
        .filter(|r| r.group == group && r.version == version)
    {
        resource_paths(r, &mut paths);
        schemas.insert(
            schema_name(r),
            json!({
                "description": format!("{} is a {} resource.", r.kind, if r.group.is_empty() { "core" } else { r.group }),
                "type": "object",
                "x-kubernetes-group-version-kind": gvk(r),
            }),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::discovery::KUBERNETES_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// Serve `/openapi/v3` and `/openapi/v3/<gv path>`.
pub fn serve_v3(registry: &Registry, path: &str) -> Result<Value, ApiError> {
    let rest = path.trim_start_matches("/openapi/v3").trim_matches('/');
    if rest.is_empty() {
        let mut index = Map::new();
        for (g, v) in registry.group_versions() {
            let p = gv_path(g, v);
            let url = format!("/openapi/v3/{p}?hash={}", hash(&document(registry, g, v)));
            index.insert(p, json!({"serverRelativeURL": url}));
        }
        return Ok(json!({"paths": index}));
    }
    registry
        .group_versions()
        .into_iter()
        .find(|(g, v)| gv_path(g, v) == rest)
        .map(|(g, v)| document(registry, g, v))
        .ok_or_else(ApiError::path_not_found)
}

/// `/openapi/v2`: kubectl 1.27 and 1.28 fetch it (as protobuf) to decide
/// how to validate. Until the full schema is generated this serves an empty
/// document, which clients read as "no schema": they skip client-side
/// validation and the server's own typed decoding still applies.
pub fn serve_v2(accept: &str) -> (&'static str, Vec<u8>) {
    if accept.contains("protobuf") {
        // An empty protobuf message is zero bytes.
        (
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            Vec::new(),
        )
    } else {
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": crate::discovery::KUBERNETES_VERSION},
            "paths": {},
            "definitions": {},
        });
        ("application/json", doc.to_string().into_bytes())
    }
}
