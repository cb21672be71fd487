//! Request info: what a URL and method mean in Kubernetes terms (verb,
//! group, version, namespace, resource, name, subresource), resolved once
//! per request and used by every later stage.

use http::Method;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub path: String,
    pub is_resource_request: bool,
    /// get, list, watch, create, update, patch, delete, deletecollection;
    /// or the lower-case HTTP method for non-resource requests.
    pub verb: String,
    /// "api" or "apis".
    pub api_prefix: String,
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// Path segments after `/api` or `/apis`.
    pub parts: Vec<String>,
    /// The request's `fieldSelector` (the Node authorizer lets a kubelet
    /// list only what a selector limits to itself).
    pub field_selector: String,
}

/// Namespace subresources that are not a nested resource list.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

fn query_flag(query: &str, key: &str) -> bool {
    query.split('&').any(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        k == key && crate::query::truthy(v)
    })
}

pub fn resolve(method: &Method, path: &str, query: &str) -> RequestInfo {
    let mut info = RequestInfo {
        path: path.to_string(),
        verb: method.as_str().to_ascii_lowercase(),
        ..Default::default()
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let prefix = segments.first().copied().unwrap_or("");
    if prefix != "api" && prefix != "apis" {
        return info;
    }
    let mut rest: Vec<String> = segments[1..].iter().map(|s| s.to_string()).collect();
    info.api_prefix = prefix.into();
    info.parts = rest.clone();
    if prefix == "apis" {
        if rest.len() < 3 {
            return info; // group or group-version discovery
        }
        info.group = rest.remove(0);
    } else if rest.len() < 2 {
        return info; // /api or /api/v1 discovery
    }
    info.version = rest.remove(0);
    info.is_resource_request = true;
    info.field_selector = crate::query::Query::parse(query)
        .str("fieldSelector")
        .to_string();

    let mut watch_prefix = false;
    if rest.first().map(String::as_str) == Some("watch") {
        watch_prefix = true;
        rest.remove(0);
    }
    if rest.first().map(String::as_str) == Some("namespaces") && rest.len() > 1 {
        info.namespace = rest[1].clone();
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2].as_str()) {
            rest.drain(0..2);
        }
    }
    let mut it = rest.into_iter();
    info.resource = it.next().unwrap_or_default();
    info.name = it.next().unwrap_or_default();
    info.subresource = it.collect::<Vec<_>>().join("/");
    if info.resource == "namespaces" {
        // For the namespaces resource itself the name is the namespace.
        info.namespace = if info.name.is_empty() {
            String::new()
        } else {
            info.name.clone()
        };
    }

    info.verb = match *method {
        Method::GET | Method::HEAD => {
            if watch_prefix || query_flag(query, "watch") {
                "watch"
            } else if info.name.is_empty() {
                "list"
            } else {
                "get"
            }
        }
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => {
            if info.name.is_empty() {
                "deletecollection"
            } else {
                "delete"
            }
        }
        _ => "unknown",
    }
    .to_string();
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_resource_paths_resolve() {
        let i = resolve(&Method::GET, "/api/v1/namespaces/default/configmaps/a", "");
        assert_eq!(
            (
                i.verb.as_str(),
                i.namespace.as_str(),
                i.resource.as_str(),
                i.name.as_str()
            ),
            ("get", "default", "configmaps", "a")
        );
        let i = resolve(
            &Method::GET,
            "/apis/apps/v1/namespaces/x/deployments/d/scale",
            "",
        );
        assert_eq!(
            (i.group.as_str(), i.subresource.as_str()),
            ("apps", "scale")
        );
        let i = resolve(&Method::GET, "/api/v1/configmaps", "watch=true");
        assert_eq!(i.verb, "watch");
        let i = resolve(&Method::GET, "/api/v1/watch/namespaces/ns1/configmaps", "");
        assert_eq!((i.verb.as_str(), i.namespace.as_str()), ("watch", "ns1"));
    }

    #[test]
    fn namespace_objects_and_their_subresources_resolve() {
        let i = resolve(&Method::PUT, "/api/v1/namespaces/foo/finalize", "");
        assert_eq!(
            (
                i.resource.as_str(),
                i.name.as_str(),
                i.subresource.as_str(),
                i.verb.as_str()
            ),
            ("namespaces", "foo", "finalize", "update")
        );
        let i = resolve(&Method::GET, "/api/v1/namespaces", "");
        assert_eq!(
            (i.resource.as_str(), i.verb.as_str(), i.namespace.as_str()),
            ("namespaces", "list", "")
        );
        let i = resolve(&Method::DELETE, "/api/v1/namespaces/foo", "");
        assert_eq!((i.verb.as_str(), i.namespace.as_str()), ("delete", "foo"));
    }

    #[test]
    fn discovery_and_other_paths_are_not_resource_requests() {
        assert!(!resolve(&Method::GET, "/api/v1", "").is_resource_request);
        assert!(!resolve(&Method::GET, "/apis/apps", "").is_resource_request);
        assert!(!resolve(&Method::GET, "/healthz", "").is_resource_request);
        assert!(resolve(&Method::GET, "/apis/apps/v1/deployments", "").is_resource_request);
    }
}
