//! Upstream 1.33's default RBAC policy (the part that matters while the
//! cluster runs no other components with their own identities): the
//! ClusterRoles and ClusterRoleBindings every cluster has from its first
//! second. Each is labelled `kubernetes.io/bootstrapping: rbac-defaults`
//! and annotated `rbac.authorization.kubernetes.io/autoupdate: "true"`.
//!
//! [`ensure`] creates the ones that are missing at start and reconciles
//! the existing ones as upstream's autoupdate does (missing default rules
//! and subjects are added back unless the object opts out).

use apimachinery::ApiError;
use serde_json::{json, Value};

use crate::ApiServer;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const READ_WRITE: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

const AGGREGATE_TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const AGGREGATE_TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const AGGREGATE_TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

fn metadata(name: &str, extra_labels: &[&str]) -> Value {
    let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    for label in extra_labels {
        labels[*label] = json!("true");
    }
    json!({
        "name": name,
        "labels": labels,
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    })
}

fn rule(verbs: &[&str], group: &str, resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": [group], "resources": resources})
}

fn urls(verbs: &[&str], urls: &[&str]) -> Value {
    json!({"verbs": verbs, "nonResourceURLs": urls})
}

fn cluster_role(name: &str, labels: &[&str], rules: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(name, labels),
        "rules": rules,
    })
}

fn aggregated(name: &str, labels: &[&str], selector_label: &str) -> Value {
    let mut role = cluster_role(name, labels, Vec::new());
    role["aggregationRule"] =
        json!({"clusterRoleSelectors": [{"matchLabels": {selector_label: "true"}}]});
    role
}

fn user_binding(name: &str, role: &str, user: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(name, &[]),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "User", "apiGroup": RBAC_GROUP, "name": user}],
    })
}

fn named_binding(name: &str, role: &str, groups: &[&str]) -> Value {
    let mut b = binding(role, groups);
    b["metadata"] = metadata(name, &[]);
    b
}

fn binding(role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"kind": "Group", "apiGroup": RBAC_GROUP, "name": g}))
        .collect();
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(role, &[]),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

/// The default ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    let mut roles = vec![
        cluster_role("system:kube-scheduler", &[], scheduler_rules()),
        cluster_role(
            "system:kube-controller-manager",
            &[],
            controller_manager_rules(),
        ),
        cluster_role(
            "system:node-proxier",
            &[],
            vec![
                rule(READ, "", &["endpoints", "services", "nodes"]),
                rule(READ, "discovery.k8s.io", &["endpointslices"]),
                rule(&["create", "patch", "update"], "", &["events"]),
                rule(&["create", "patch", "update"], "events.k8s.io", &["events"]),
            ],
        ),
        cluster_role(
            "system:kube-dns",
            &[],
            vec![
                rule(&["list", "watch"], "", &["endpoints", "services"]),
                rule(&["list", "watch"], "discovery.k8s.io", &["endpointslices"]),
            ],
        ),
        cluster_role(
            "system:kubelet-api-admin",
            &[],
            vec![
                rule(&["get", "list", "watch", "proxy"], "", &["nodes"]),
                rule(
                    &["*"],
                    "",
                    &[
                        "nodes/log",
                        "nodes/metrics",
                        "nodes/proxy",
                        "nodes/stats",
                        "nodes/configz",
                        "nodes/healthz",
                        "nodes/pods",
                        "nodes/checkpoint",
                    ],
                ),
            ],
        ),
        cluster_role(
            "system:auth-delegator",
            &[],
            vec![
                rule(&["create"], "authentication.k8s.io", &["tokenreviews"]),
                rule(
                    &["create"],
                    "authorization.k8s.io",
                    &["subjectaccessreviews"],
                ),
            ],
        ),
        cluster_role(
            "system:node-bootstrapper",
            &[],
            vec![rule(
                &["create", "get", "list", "watch"],
                "certificates.k8s.io",
                &["certificatesigningrequests"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            &[],
            vec![rule(
                &["create"],
                "certificates.k8s.io",
                &["certificatesigningrequests/nodeclient"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            &[],
            vec![rule(
                &["create"],
                "certificates.k8s.io",
                &["certificatesigningrequests/selfnodeclient"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeserver",
            &[],
            vec![rule(
                &["create"],
                "certificates.k8s.io",
                &["certificatesigningrequests/selfnodeserver"],
            )],
        ),
        // rustkube runs every controller under the controller manager's own
        // identity (upstream's --use-service-account-credentials=false), so
        // it holds the union of upstream's per-controller roles: the garbage
        // collector's and namespace controller's reach over every resource
        // (never `create` of arbitrary kinds, so no new RBAC bindings), plus
        // the objects controllers make.
        cluster_role(
            "system:controller:rustkube-controllers",
            &[],
            controllers_rules(),
        ),
    ];
    roles.extend(vec![
        cluster_role(
            "cluster-admin",
            &[],
            vec![rule(&["*"], "*", &["*"]), urls(&["*"], &["*"])],
        ),
        aggregated("admin", &[], AGGREGATE_TO_ADMIN),
        aggregated("edit", &[AGGREGATE_TO_ADMIN], AGGREGATE_TO_EDIT),
        aggregated("view", &[AGGREGATE_TO_EDIT], AGGREGATE_TO_VIEW),
        cluster_role(
            "system:aggregate-to-admin",
            &[AGGREGATE_TO_ADMIN],
            vec![
                rule(
                    &["create"],
                    "authorization.k8s.io",
                    &["localsubjectaccessreviews"],
                ),
                rule(READ_WRITE, RBAC_GROUP, &["rolebindings", "roles"]),
            ],
        ),
        cluster_role(
            "system:aggregate-to-edit",
            &[AGGREGATE_TO_EDIT],
            edit_rules(),
        ),
        cluster_role(
            "system:aggregate-to-view",
            &[AGGREGATE_TO_VIEW],
            view_rules(),
        ),
        cluster_role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    &["create"],
                    "authorization.k8s.io",
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(
                    &["create"],
                    "authentication.k8s.io",
                    &["selfsubjectreviews"],
                ),
            ],
        ),
        cluster_role(
            "system:discovery",
            &[],
            vec![urls(
                &["get"],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )],
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            vec![urls(
                &["get"],
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            )],
        ),
        cluster_role(
            "system:monitoring",
            &[],
            vec![urls(
                &["get"],
                &[
                    "/healthz",
                    "/healthz/*",
                    "/livez",
                    "/livez/*",
                    "/metrics",
                    "/metrics/slis",
                    "/readyz",
                    "/readyz/*",
                ],
            )],
        ),
        cluster_role(
            "system:service-account-issuer-discovery",
            &[],
            vec![urls(
                &["get"],
                &[
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
                ],
            )],
        ),
    ]);
    roles
}

/// What every leader-elected component may do: record events and hold its
/// own lock (a Lease, and the legacy Endpoints lock) named `lock`.
fn events_and_leader_lock(lock: &str) -> Vec<Value> {
    vec![
        rule(&["create", "patch", "update"], "", &["events"]),
        rule(&["create", "patch", "update"], "events.k8s.io", &["events"]),
        rule(&["create"], "coordination.k8s.io", &["leases"]),
        named(
            &["get", "update"],
            "coordination.k8s.io",
            &["leases"],
            &[lock],
        ),
        rule(&["create"], "", &["endpoints"]),
        named(&["get", "update"], "", &["endpoints"], &[lock]),
    ]
}

/// Upstream's `system:kube-scheduler` role.
fn scheduler_rules() -> Vec<Value> {
    let mut rules = events_and_leader_lock("kube-scheduler");
    rules.extend(vec![
        rule(READ, "", &["nodes"]),
        rule(&["delete", "get", "list", "watch"], "", &["pods"]),
        rule(&["create"], "", &["bindings", "pods/binding"]),
        rule(&["patch", "update"], "", &["pods/status"]),
        rule(READ, "", &["replicationcontrollers", "services"]),
        rule(READ, "apps", &["replicasets", "statefulsets"]),
        rule(READ, "policy", &["poddisruptionbudgets"]),
        rule(READ, "", &["persistentvolumeclaims", "persistentvolumes"]),
        rule(&["create"], "authentication.k8s.io", &["tokenreviews"]),
        rule(
            &["create"],
            "authorization.k8s.io",
            &["subjectaccessreviews"],
        ),
        rule(
            READ,
            "storage.k8s.io",
            &[
                "csinodes",
                "csidrivers",
                "csistoragecapacities",
                "storageclasses",
            ],
        ),
        rule(READ, "", &["namespaces"]),
    ]);
    rules
}

/// The union of the per-controller roles the controllers use.
fn controllers_rules() -> Vec<Value> {
    vec![
        rule(
            &[
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            "*",
            &["*"],
        ),
        rule(
            &["create"],
            "",
            &[
                "configmaps",
                "endpoints",
                "events",
                "persistentvolumeclaims",
                "pods",
                "pods/eviction",
                "serviceaccounts",
            ],
        ),
        rule(&["create"], "apps", &["controllerrevisions", "replicasets"]),
        rule(&["create"], "batch", &["jobs"]),
        rule(&["create"], "discovery.k8s.io", &["endpointslices"]),
        rule(&["create"], "events.k8s.io", &["events"]),
        rule(&["create"], "coordination.k8s.io", &["leases"]),
        rule(
            &["create"],
            "authorization.k8s.io",
            &["subjectaccessreviews"],
        ),
        rule(&["approve", "sign"], "certificates.k8s.io", &["signers"]),
    ]
}

/// Upstream's `system:kube-controller-manager` role.
fn controller_manager_rules() -> Vec<Value> {
    let mut rules = events_and_leader_lock("kube-controller-manager");
    rules.extend(vec![
        rule(&["create"], "", &["secrets", "serviceaccounts"]),
        rule(&["delete"], "", &["secrets"]),
        rule(
            &["get"],
            "",
            &["configmaps", "namespaces", "secrets", "serviceaccounts"],
        ),
        rule(&["update"], "", &["secrets", "serviceaccounts"]),
        rule(&["create"], "authentication.k8s.io", &["tokenreviews"]),
        rule(
            &["create"],
            "authorization.k8s.io",
            &["subjectaccessreviews"],
        ),
        rule(&["list", "watch"], "*", &["*"]),
        rule(&["create"], "", &["serviceaccounts/token"]),
    ]);
    rules
}

fn named(verbs: &[&str], group: &str, resources: &[&str], names: &[&str]) -> Value {
    let mut r = rule(verbs, group, resources);
    r["resourceNames"] = json!(names);
    r
}

/// `system:aggregate-to-edit`: every user-level write in a namespace, and
/// reads of the escalating resources `view` leaves out (secrets, exec).
fn edit_rules() -> Vec<Value> {
    vec![
        rule(
            READ,
            "",
            &[
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy",
            ],
        ),
        rule(&["impersonate"], "", &["serviceaccounts"]),
        rule(
            WRITE,
            "",
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ],
        ),
        rule(&["create"], "", &["pods/eviction"]),
        rule(
            WRITE,
            "",
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
        ),
        rule(&["create"], "", &["serviceaccounts/token"]),
        rule(
            WRITE,
            "apps",
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
        ),
        rule(WRITE, "autoscaling", &["horizontalpodautoscalers"]),
        rule(WRITE, "batch", &["cronjobs", "jobs"]),
        rule(
            WRITE,
            "extensions",
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "ingresses",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
            ],
        ),
        rule(WRITE, "policy", &["poddisruptionbudgets"]),
        rule(
            WRITE,
            "networking.k8s.io",
            &["ingresses", "networkpolicies"],
        ),
        rule(READ_WRITE, "coordination.k8s.io", &["leases"]),
    ]
}

/// `system:aggregate-to-view`: reads of non-escalating resources (no
/// secrets, no exec/attach/proxy).
fn view_rules() -> Vec<Value> {
    vec![
        rule(
            READ,
            "",
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
        ),
        rule(
            READ,
            "",
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
        ),
        // Reading namespaces at namespace scope means reading *this* one.
        rule(READ, "", &["namespaces"]),
        rule(READ, "discovery.k8s.io", &["endpointslices"]),
        rule(
            READ,
            "apps",
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
        ),
        rule(
            READ,
            "autoscaling",
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            READ,
            "batch",
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
        ),
        rule(
            READ,
            "extensions",
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
            ],
        ),
        rule(
            READ,
            "policy",
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            READ,
            "networking.k8s.io",
            &["ingresses", "ingresses/status", "networkpolicies"],
        ),
    ]
}

/// The default ClusterRoleBindings.
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        // The TLS bootstrap of nodes, as k3s and kubeadm bind it: a
        // bootstrap token may ask for a node client certificate, which is
        // approved automatically; nodes renew their own certificates.
        binding("system:node-bootstrapper", &["system:bootstrappers"]),
        named_binding(
            "rustkube:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            &["system:bootstrappers"],
        ),
        named_binding(
            "rustkube:node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            &["system:nodes"],
        ),
        named_binding(
            "rustkube:node-autoapprove-serving",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeserver",
            &["system:nodes"],
        ),
        user_binding(
            "system:node-proxier",
            "system:node-proxier",
            "system:kube-proxy",
        ),
        user_binding(
            "rustkube:kube-dns",
            "system:kube-dns",
            "system:rustkube:dns",
        ),
        user_binding(
            "rustkube:kube-apiserver-kubelet-client",
            "system:kubelet-api-admin",
            "system:kube-apiserver-kubelet-client",
        ),
        user_binding(
            "system:kube-scheduler",
            "system:kube-scheduler",
            "system:kube-scheduler",
        ),
        user_binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            "system:kube-controller-manager",
        ),
        user_binding(
            "system:controller:rustkube-controllers",
            "system:controller:rustkube-controllers",
            "system:kube-controller-manager",
        ),
        binding("cluster-admin", &["system:masters"]),
        binding("system:basic-user", &["system:authenticated"]),
        binding("system:discovery", &["system:authenticated"]),
        binding(
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
        binding("system:monitoring", &["system:monitoring"]),
        binding(
            "system:service-account-issuer-discovery",
            &["system:serviceaccounts"],
        ),
    ]
}

/// Create every default ClusterRole and ClusterRoleBinding that does not
/// exist yet; existing ones are left as they are.
pub async fn ensure(state: &ApiServer) -> Result<(), ApiError> {
    let objects = [
        ("clusterroles", cluster_roles()),
        ("clusterrolebindings", cluster_role_bindings()),
    ];
    for (plural, items) in objects {
        let strategy = state
            .registry
            .lookup(RBAC_GROUP, "v1", plural)
            .cloned()
            .ok_or_else(|| ApiError::internal(format!("{plural} are not registered")))?;
        for obj in items {
            let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
            match crate::rest::create_object(
                state,
                strategy.as_ref(),
                "",
                obj.clone(),
                &crate::rest::WriteOptions::INTERNAL,
                &mut Vec::new(),
            )
            .await
            {
                Ok(_) => tracing::debug!(%plural, %name, "created bootstrap RBAC object"),
                Err(e) if e.code == 409 => reconcile(state, strategy.as_ref(), &name, &obj).await?,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Upstream's auto-update of default RBAC objects: unless an existing one
/// is annotated `rbac.authorization.kubernetes.io/autoupdate: "false"`,
/// missing default rules (or the aggregation rule) and missing subjects
/// are added back; what an administrator added stays.
async fn reconcile(
    state: &ApiServer,
    strategy: &dyn crate::registry::Strategy,
    name: &str,
    default: &Value,
) -> Result<(), ApiError> {
    let (mut existing, _) = crate::rest::get_object(state, strategy, "", name).await?;
    let autoupdate = existing
        .pointer("/metadata/annotations/rbac.authorization.kubernetes.io~1autoupdate")
        .and_then(Value::as_str);
    if autoupdate == Some("false") {
        return Ok(());
    }
    let Some(merged) = merge_defaults(&existing, default) else {
        return Ok(());
    };
    existing = merged;
    crate::rest::update_object(
        state,
        strategy,
        "",
        name,
        existing,
        crate::rest::Subresource::None,
        &crate::rest::WriteOptions::INTERNAL,
        &mut Vec::new(),
    )
    .await?;
    tracing::info!(%name, "reconciled a default RBAC object");
    Ok(())
}

/// `existing` with what `default` has and it lacks; None when complete.
fn merge_defaults(existing: &Value, default: &Value) -> Option<Value> {
    let mut merged = existing.clone();
    let mut changed = false;
    if let Some(rule) = default.get("aggregationRule") {
        if existing.get("aggregationRule") != Some(rule) {
            merged["aggregationRule"] = rule.clone();
            changed = true;
        }
    }
    for field in ["rules", "subjects"] {
        let Some(wanted) = default.get(field).and_then(Value::as_array) else {
            continue;
        };
        if default.get("aggregationRule").is_some() && field == "rules" {
            continue;
        }
        let mut have = existing
            .get(field)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for item in wanted {
            if !have.contains(item) {
                have.push(item.clone());
                changed = true;
            }
        }
        merged[field] = Value::Array(have);
    }
    changed.then_some(merged)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::authn::UserInfo;
    use crate::authz::rbac::{allows, PolicySnapshot};
    use crate::request_info::RequestInfo;

    fn cached(objects: Vec<Value>) -> Vec<Arc<Value>> {
        objects.into_iter().map(Arc::new).collect()
    }

    fn policy_with_namespace_binding(role: &str, user: &str) -> PolicySnapshot {
        PolicySnapshot {
            cluster_roles: cached(cluster_roles()),
            cluster_role_bindings: cached(cluster_role_bindings()),
            roles: Vec::new(),
            role_bindings: vec![Arc::new(json!({
                "metadata": {"name": "b", "namespace": "default"},
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "User", "apiGroup": RBAC_GROUP, "name": user}],
            }))],
        }
    }

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    fn req(verb: &str, group: &str, resource: &str, namespace: &str) -> RequestInfo {
        RequestInfo {
            is_resource_request: true,
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            ..Default::default()
        }
    }

    fn path(p: &str) -> RequestInfo {
        RequestInfo {
            verb: "get".into(),
            path: p.into(),
            ..Default::default()
        }
    }

    #[test]
    fn reconciling_adds_missing_defaults_and_keeps_additions() {
        let default = cluster_role("r", &[], vec![rule(READ, "", &["pods"])]);
        let mut edited = default.clone();
        edited["rules"] = json!([rule(&["get"], "", &["secrets"])]);
        let merged = merge_defaults(&edited, &default).expect("a rule was missing");
        assert_eq!(merged["rules"].as_array().unwrap().len(), 2);
        assert!(merge_defaults(&merged, &default).is_none());
        let b = binding("cluster-admin", &["system:masters"]);
        let mut no_subjects = b.clone();
        no_subjects["subjects"] = json!([]);
        assert_eq!(
            merge_defaults(&no_subjects, &b).unwrap()["subjects"],
            b["subjects"]
        );
    }

    #[test]
    fn every_default_object_is_labelled_and_annotated_for_autoupdate() {
        for obj in cluster_roles().iter().chain(cluster_role_bindings().iter()) {
            let meta = &obj["metadata"];
            assert_eq!(
                meta["labels"]["kubernetes.io/bootstrapping"],
                "rbac-defaults"
            );
            assert_eq!(
                meta["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
                "true"
            );
        }
    }

    #[test]
    fn system_masters_get_everything_through_the_cluster_admin_binding() {
        let policy = policy_with_namespace_binding("view", "nobody");
        let admin = user("root", &["system:masters", "system:authenticated"]);
        assert!(allows(&policy, &admin, &req("delete", "", "nodes", "")));
        assert!(allows(&policy, &admin, &path("/metrics")));
    }

    #[test]
    fn authenticated_users_read_discovery_and_unauthenticated_only_public_info() {
        let policy = policy_with_namespace_binding("view", "nobody");
        let dev = user("dev", &["system:authenticated"]);
        for p in [
            "/api",
            "/apis/apps/v1",
            "/version",
            "/openapi/v2",
            "/readyz",
        ] {
            assert!(allows(&policy, &dev, &path(p)), "{p}");
        }
        assert!(!allows(&policy, &dev, &path("/metrics")));
        assert!(!allows(&policy, &dev, &req("list", "", "pods", "default")));
        let anonymous = user("system:anonymous", &["system:unauthenticated"]);
        assert!(allows(&policy, &anonymous, &path("/version")));
        assert!(allows(&policy, &anonymous, &path("/livez")));
        assert!(!allows(&policy, &anonymous, &path("/api")));
    }

    #[test]
    fn view_reads_namespace_objects_but_not_secrets_and_writes_nothing() {
        let policy = policy_with_namespace_binding("view", "dev");
        let dev = user("dev", &["system:authenticated"]);
        assert!(allows(&policy, &dev, &req("list", "", "pods", "default")));
        assert!(allows(
            &policy,
            &dev,
            &req("watch", "apps", "deployments", "default")
        ));
        assert!(!allows(
            &policy,
            &dev,
            &req("list", "", "secrets", "default")
        ));
        assert!(!allows(
            &policy,
            &dev,
            &req("create", "", "configmaps", "default")
        ));
        assert!(!allows(
            &policy,
            &dev,
            &req("list", "", "pods", "kube-system")
        ));
    }

    #[test]
    fn edit_aggregates_view_and_adds_writes_and_secrets() {
        let policy = policy_with_namespace_binding("edit", "dev");
        let dev = user("dev", &["system:authenticated"]);
        assert!(allows(&policy, &dev, &req("list", "", "pods", "default")));
        assert!(allows(
            &policy,
            &dev,
            &req("create", "", "configmaps", "default")
        ));
        assert!(allows(&policy, &dev, &req("get", "", "secrets", "default")));
        assert!(!allows(
            &policy,
            &dev,
            &req(
                "create",
                "rbac.authorization.k8s.io",
                "rolebindings",
                "default"
            )
        ));
    }

    #[test]
    fn admin_aggregates_edit_and_adds_namespace_rbac() {
        let policy = policy_with_namespace_binding("admin", "dev");
        let dev = user("dev", &["system:authenticated"]);
        assert!(allows(
            &policy,
            &dev,
            &req(
                "create",
                "rbac.authorization.k8s.io",
                "rolebindings",
                "default"
            )
        ));
        assert!(allows(
            &policy,
            &dev,
            &req("delete", "apps", "deployments", "default")
        ));
        assert!(allows(&policy, &dev, &req("list", "", "pods", "default")));
    }
}
