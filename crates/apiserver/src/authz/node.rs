//! The Node authorizer: what a kubelet (`system:node:<name>` in
//! `system:nodes`) may do, decided from the node's relationship to the
//! objects, as upstream's graph-based authorizer:
//!
//! - its own Node (get, and list/watch limited by a `metadata.name`
//!   field selector; create, update and patch of it and its status) and
//!   its own Lease in `kube-node-lease`;
//! - pods bound to it (get; list/watch only with a `spec.nodeName=<self>`
//!   field selector; status updates; delete; eviction), and mirror pods;
//! - the secrets, configmaps, persistent volume claims (and their
//!   volumes) and service-account tokens those pods reference (get, and
//!   `create` of `serviceaccounts/token` for their service accounts);
//! - what every kubelet needs: events, services and endpoints (read),
//!   CSRs, token and access reviews, CSINodes, RuntimeClasses.
//!
//! Anything else, and anything refused here, is left to RBAC (where nodes
//! hold no bindings by default), as upstream's authorizer answers "no
//! opinion" rather than "deny".

use serde_json::Value;

use super::Decision;
use crate::authn::UserInfo;
use crate::request_info::RequestInfo;
use crate::ApiServer;

pub const GROUP_NODES: &str = "system:nodes";

/// The node a user is, if it is one.
pub fn node_of(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix("system:node:")?;
    (!name.is_empty() && user.in_group(GROUP_NODES)).then_some(name)
}

/// `key=value` among the comma-separated requirements of a field selector.
fn selects(field_selector: &str, key: &str, value: &str) -> bool {
    field_selector
        .split(',')
        .filter_map(|r| r.split_once('='))
        .any(|(k, v)| k.trim() == key && v.trim_start_matches('=').trim() == value)
}

/// Some(decision) when the Node authorizer decides; None for no opinion.
pub fn authorize(state: &ApiServer, user: &UserInfo, info: &RequestInfo) -> Option<Decision> {
    let node = node_of(user)?;
    if !info.is_resource_request {
        return None;
    }
    let sub = info.subresource.as_str();
    let allowed = match (info.group.as_str(), info.resource.as_str()) {
        ("", "nodes") => match (info.verb.as_str(), sub) {
            ("get", "") | ("create", "") => info.name == node || info.verb == "create",
            ("list" | "watch", "") => selects(&info.field_selector, "metadata.name", node),
            ("update" | "patch", "" | "status") => info.name == node,
            _ => false,
        },
        ("coordination.k8s.io", "leases") => {
            info.namespace == "kube-node-lease"
                && (info.verb == "create" || info.name == node)
                && matches!(
                    info.verb.as_str(),
                    "get" | "create" | "update" | "patch" | "delete"
                )
        }
        ("", "pods") => match (info.verb.as_str(), sub) {
            ("list" | "watch", "") => selects(&info.field_selector, "spec.nodeName", node),
            // Mirror pods; NodeRestriction checks they are its own.
            ("create", "") => true,
            ("get" | "delete", "") | ("update" | "patch", "status") | ("create", "eviction") => {
                pod_on_node(state, &info.namespace, &info.name, node)
            }
            _ => false,
        },
        ("", "secrets" | "configmaps" | "persistentvolumeclaims") if info.verb == "get" => {
            referenced_by_a_pod_on(state, node, &info.namespace, &info.resource, &info.name)
        }
        ("", "persistentvolumeclaims") if sub == "status" => {
            matches!(info.verb.as_str(), "update" | "patch")
                && referenced_by_a_pod_on(
                    state,
                    node,
                    &info.namespace,
                    "persistentvolumeclaims",
                    &info.name,
                )
        }
        ("", "persistentvolumes") if info.verb == "get" => {
            volume_of_a_claim_on(state, node, &info.name)
        }
        ("", "serviceaccounts") if sub == "token" && info.verb == "create" => {
            referenced_by_a_pod_on(state, node, &info.namespace, "serviceaccounts", &info.name)
        }
        ("", "events") | ("events.k8s.io", "events") => {
            matches!(info.verb.as_str(), "create" | "update" | "patch")
        }
        ("", "services" | "endpoints") => {
            matches!(info.verb.as_str(), "get" | "list" | "watch")
        }
        ("node.k8s.io", "runtimeclasses") => matches!(info.verb.as_str(), "get" | "list" | "watch"),
        ("certificates.k8s.io", "certificatesigningrequests") => {
            matches!(info.verb.as_str(), "create" | "get" | "list" | "watch")
        }
        ("authentication.k8s.io", "tokenreviews")
        | ("authorization.k8s.io", "subjectaccessreviews" | "localsubjectaccessreviews") => {
            info.verb == "create"
        }
        ("storage.k8s.io", "csinodes") => {
            (info.name == node || info.verb == "create")
                && matches!(
                    info.verb.as_str(),
                    "get" | "create" | "update" | "patch" | "delete"
                )
        }
        ("storage.k8s.io", "volumeattachments" | "csidrivers") => info.verb == "get",
        _ => return None,
    };
    Some(if allowed {
        Decision::Allow
    } else {
        Decision::Deny
    })
}

fn pods_on(state: &ApiServer, namespace: &str, node: &str) -> Vec<Value> {
    let Some(pods) = state.registry.lookup("", "v1", "pods") else {
        return Vec::new();
    };
    let prefix = pods.info().list_prefix(namespace);
    state
        .cache
        .list_now(&prefix)
        .into_iter()
        .filter(|p| {
            p.selectable()
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                == Some(node)
        })
        .map(|p| p.decode())
        .collect()
}

fn pod_on_node(state: &ApiServer, namespace: &str, name: &str, node: &str) -> bool {
    crate::authn::service_account::cached(state, "", "pods", namespace, name)
        .is_some_and(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node))
}

/// Does a pod bound to `node` in `namespace` use this object?
fn referenced_by_a_pod_on(
    state: &ApiServer,
    node: &str,
    namespace: &str,
    resource: &str,
    name: &str,
) -> bool {
    pods_on(state, namespace, node)
        .iter()
        .any(|pod| pod_references(pod, resource, name))
}

/// The objects of one kind a pod spec names, as upstream's graph builds
/// them: volumes (secret, configMap, projected sources, PVCs), env and
/// envFrom of every container, image pull secrets, the service account.
pub fn pod_references(pod: &Value, resource: &str, name: &str) -> bool {
    let spec = &pod["spec"];
    let eq = |v: &Value| v.as_str() == Some(name);
    match resource {
        "serviceaccounts" => {
            let sa = spec["serviceAccountName"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("default");
            sa == name
        }
        "persistentvolumeclaims" => {
            volumes(spec).any(|v| eq(&v["persistentVolumeClaim"]["claimName"]))
        }
        "secrets" | "configmaps" => {
            let (volume_key, name_key, env_key, from_key) = if resource == "secrets" {
                ("secret", "secretName", "secretKeyRef", "secretRef")
            } else {
                ("configMap", "name", "configMapKeyRef", "configMapRef")
            };
            if resource == "secrets"
                && array(&spec["imagePullSecrets"])
                    .iter()
                    .any(|s| eq(&s["name"]))
            {
                return true;
            }
            let in_volumes = volumes(spec).any(|v| {
                eq(&v[volume_key][name_key])
                    || array(&v["projected"]["sources"])
                        .iter()
                        .any(|s| eq(&s[volume_key]["name"]))
                    || (resource == "secrets"
                        && (eq(&v["cephfs"]["secretRef"]["name"])
                            || eq(&v["csi"]["nodePublishSecretRef"]["name"])
                            || eq(&v["azureFile"]["secretName"])))
            });
            in_volumes
                || containers(spec).any(|c| {
                    array(&c["env"])
                        .iter()
                        .any(|e| eq(&e["valueFrom"][env_key]["name"]))
                        || array(&c["envFrom"])
                            .iter()
                            .any(|e| eq(&e[from_key]["name"]))
                })
        }
        _ => false,
    }
}

fn array(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn volumes(spec: &Value) -> impl Iterator<Item = &Value> {
    array(&spec["volumes"]).iter()
}

fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |k| array(&spec[k]).iter())
}

/// A PersistentVolume bound to a claim a pod on `node` uses.
fn volume_of_a_claim_on(state: &ApiServer, node: &str, volume: &str) -> bool {
    let Some(pv) =
        crate::authn::service_account::cached(state, "", "persistentvolumes", "", volume)
    else {
        return false;
    };
    let claim_ns = pv["spec"]["claimRef"]["namespace"].as_str().unwrap_or("");
    let claim = pv["spec"]["claimRef"]["name"].as_str().unwrap_or("");
    !claim.is_empty()
        && referenced_by_a_pod_on(state, node, claim_ns, "persistentvolumeclaims", claim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_users_named_system_node_in_system_nodes_are_nodes() {
        let node = UserInfo {
            name: "system:node:n1".into(),
            groups: vec![GROUP_NODES.into()],
            ..Default::default()
        };
        assert_eq!(node_of(&node), Some("n1"));
        let impostor = UserInfo {
            name: "system:node:n1".into(),
            ..Default::default()
        };
        assert_eq!(node_of(&impostor), None);
    }

    #[test]
    fn pods_reference_what_their_volumes_env_and_pull_secrets_name() {
        let pod = json!({"spec": {
            "serviceAccountName": "robot",
            "imagePullSecrets": [{"name": "pull"}],
            "volumes": [
                {"name": "a", "secret": {"secretName": "vol-secret"}},
                {"name": "b", "configMap": {"name": "vol-cm"}},
                {"name": "c", "projected": {"sources": [{"secret": {"name": "proj-secret"}}]}},
                {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
            ],
            "containers": [{"name": "c",
                "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}}],
                "envFrom": [{"configMapRef": {"name": "env-cm"}}]}],
        }});
        for s in ["pull", "vol-secret", "proj-secret", "env-secret"] {
            assert!(pod_references(&pod, "secrets", s), "{s}");
        }
        for c in ["vol-cm", "env-cm"] {
            assert!(pod_references(&pod, "configmaps", c), "{c}");
        }
        assert!(pod_references(&pod, "persistentvolumeclaims", "data"));
        assert!(pod_references(&pod, "serviceaccounts", "robot"));
        assert!(!pod_references(&pod, "secrets", "other"));
        assert!(!pod_references(&pod, "configmaps", "vol-secret"));
    }

    #[test]
    fn field_selectors_must_name_the_node_itself() {
        assert!(selects("spec.nodeName=n1", "spec.nodeName", "n1"));
        assert!(selects(
            "status.phase!=Failed,spec.nodeName==n1",
            "spec.nodeName",
            "n1"
        ));
        assert!(!selects("spec.nodeName=n2", "spec.nodeName", "n1"));
        assert!(!selects("", "spec.nodeName", "n1"));
    }
}
