//! Legacy discovery (`/api`, `/apis`, per group-version resource lists)
//! and `/version`.

use std::sync::Arc;

use apimachinery::codec::ResponseFormat;
use apimachinery::{ApiError, ResourceInfo};
use http::HeaderMap;
use serde_json::{json, Value};

use crate::pipeline::RequestContext;
use crate::response::{self, Body};
use crate::ApiServer;

pub const KUBERNETES_VERSION: &str = "v1.33.0";

pub fn git_version() -> String {
    format!(
        "{KUBERNETES_VERSION}+rustkube.{}",
        env!("CARGO_PKG_VERSION")
    )
}

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": git_version(),
        "gitCommit": option_env!("RUSTKUBE_GIT_COMMIT").unwrap_or("unknown"),
        "gitTreeState": "clean",
        "buildDate": option_env!("RUSTKUBE_BUILD_DATE").unwrap_or("1970-01-01T00:00:00Z"),
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": format!("linux/{}", go_arch()),
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn server_addresses(state: &ApiServer) -> Value {
    json!([{"clientCIDR": "0.0.0.0/0", "serverAddress": state.advertise.to_string()}])
}

/// A stable hash of the resource's storage identity, as discovery
/// advertises it (clients only compare it for equality).
fn storage_version_hash(group: &str, version: &str, kind: &str) -> String {
    use base64::Engine;
    let mut h: u64 = 0xcbf29ce484222325;
    for b in format!("{group}/{version}/{kind}").bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    base64::engine::general_purpose::STANDARD.encode(h.to_be_bytes())
}

fn resource_list(state: &ApiServer, group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in state
        .registry
        .all()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced(),
            "kind": r.kind,
            "verbs": r.verbs,
            "storageVersionHash": storage_version_hash(group, version, r.kind),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        resources.push(entry);
        for sub in r.subresources {
            let (kind_gv, kind, verbs) = subresource_facts(r, sub);
            let mut entry = json!({
                "name": format!("{}/{sub}", r.plural),
                "singularName": "",
                "namespaced": r.namespaced(),
                "kind": kind,
                "verbs": verbs,
            });
            if let Some((g, v)) = kind_gv {
                entry["group"] = json!(g);
                entry["version"] = json!(v);
            }
            resources.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

fn api_group(state: &ApiServer, group: &str) -> Option<Value> {
    let versions: Vec<Value> = state
        .registry
        .group_versions()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first()?.clone();
    Some(json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions,
        "preferredVersion": preferred,
    }))
}

/// What a subresource returns and accepts: the (group, version) of its
/// kind when it differs from the parent's, the kind, and its verbs.
fn subresource_facts(
    r: &ResourceInfo,
    sub: &str,
) -> (
    Option<(&'static str, &'static str)>,
    &'static str,
    &'static [&'static str],
) {
    match sub {
        "scale" => (
            Some(("autoscaling", "v1")),
            "Scale",
            &["get", "patch", "update"],
        ),
        "binding" => (Some(("", "v1")), "Binding", &["create"]),
        "eviction" => (Some(("policy", "v1")), "Eviction", &["create"]),
        "token" => (
            Some(("authentication.k8s.io", "v1")),
            "TokenRequest",
            &["create"],
        ),
        "finalize" => (None, r.kind, &["update"]),
        _ => (None, r.kind, &["get", "patch", "update"]),
    }
}

/// Aggregated discovery (`apidiscovery.k8s.io` v2/v2beta1): every group,
/// version and resource in one document, for `/api` (core) or `/apis`.
fn aggregated(state: &ApiServer, core: bool, v2beta1: bool) -> Value {
    let mut groups: Vec<&'static str> = Vec::new();
    for (g, _) in state.registry.group_versions() {
        if g.is_empty() == core && !groups.contains(&g) {
            groups.push(g);
        }
    }
    let items: Vec<Value> = groups
        .into_iter()
        .map(|g| {
            let versions: Vec<Value> = state
                .registry
                .group_versions()
                .into_iter()
                .filter(|(gg, _)| *gg == g)
                .map(|(_, v)| {
                    let resources: Vec<Value> = state
                        .registry
                        .all()
                        .filter(|r| r.group == g && r.version == v)
                        .map(|r| {
                            let mut entry = json!({
                                "resource": r.plural,
                                "responseKind": {"group": g, "version": v, "kind": r.kind},
                                "scope": if r.namespaced() { "Namespaced" } else { "Cluster" },
                                "singularResource": r.singular,
                                "verbs": r.verbs,
                            });
                            if !r.short_names.is_empty() {
                                entry["shortNames"] = json!(r.short_names);
                            }
                            if !r.categories.is_empty() {
                                entry["categories"] = json!(r.categories);
                            }
                            let subs: Vec<Value> = r
                                .subresources
                                .iter()
                                .map(|sub| {
                                    let (kind_gv, kind, verbs) = subresource_facts(r, sub);
                                    let (kg, kv) = kind_gv.unwrap_or((g, v));
                                    json!({"subresource": sub, "responseKind": {"group": kg, "version": kv, "kind": kind}, "verbs": verbs})
                                })
                                .collect();
                            if !subs.is_empty() {
                                entry["subresources"] = Value::Array(subs);
                            }
                            entry
                        })
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": if v2beta1 { "apidiscovery.k8s.io/v2beta1" } else { "apidiscovery.k8s.io/v2" },
        "metadata": {},
        "items": items,
    })
}

/// Serve `/api`, `/api/v1`, `/apis`, `/apis/<group>`, `/apis/<group>/<version>`.
pub fn serve(
    state: &Arc<ApiServer>,
    ctx: &RequestContext,
    headers: &HeaderMap,
) -> Result<http::Response<Body>, ApiError> {
    if ctx.info.verb != "get" {
        return Err(ApiError::method_not_allowed(format!(
            "{} is not supported on discovery paths",
            ctx.info.verb.to_uppercase()
        )));
    }
    let parts: Vec<&str> = ctx
        .info
        .parts
        .iter()
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        let accept = headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if let Ok(ResponseFormat::AggregatedDiscovery { v2beta1 }) =
            apimachinery::codec::negotiate(accept)
        {
            let doc = aggregated(state, ctx.info.api_prefix == "api", v2beta1);
            let content_type = if v2beta1 {
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            } else {
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            };
            return Ok(response::bytes(
                200,
                content_type,
                doc.to_string().into_bytes(),
            ));
        }
    }
    let body = match (ctx.info.api_prefix.as_str(), parts.as_slice()) {
        ("api", []) => json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": server_addresses(state),
        }),
        ("api", ["v1"]) => resource_list(state, "", "v1"),
        ("apis", []) => {
            let mut groups = Vec::new();
            let mut seen = Vec::new();
            for (g, _) in state.registry.group_versions() {
                if !g.is_empty() && !seen.contains(&g) {
                    seen.push(g);
                    groups.extend(api_group(state, g));
                }
            }
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        }
        ("apis", [group]) => api_group(state, group).ok_or_else(ApiError::path_not_found)?,
        ("apis", [group, version])
            if state
                .registry
                .group_versions()
                .iter()
                .any(|(g, v)| g == group && v == version) =>
        {
            resource_list(state, group, version)
        }
        _ => return Err(ApiError::path_not_found()),
    };
    Ok(response::json(200, &body))
}
