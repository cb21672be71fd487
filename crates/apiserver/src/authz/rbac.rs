//! The RBAC authorizer (rbac.authorization.k8s.io/v1), as upstream's:
//! a request is allowed when a ClusterRoleBinding, or a RoleBinding in
//! the request's namespace, binds a subject that is this user to a
//! ClusterRole or Role with a rule that covers the request. There are no
//! deny rules; anything not granted is denied.
//!
//! Policy objects are read from the watch cache at revision 0 (whatever
//! the cache holds now), so a new binding takes effect a moment after it
//! is written, as with upstream's informer-backed authorizer.
//!
//! Aggregated ClusterRoles (`aggregationRule`) get their rules here, at
//! evaluation time, from the ClusterRoles their selectors match. Upstream
//! instead has the clusterrole-aggregation controller write those rules
//! into the object's `rules`; until that controller exists the stored
//! `rules` of an aggregated role are ignored, which gives the same answers
//! as upstream's steady state.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::Decision;
use crate::authn::UserInfo;
use crate::request_info::RequestInfo;
use crate::ApiServer;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The policy objects one decision needs.
#[derive(Debug, Default, Clone)]
pub struct PolicySnapshot {
    pub cluster_roles: Vec<Arc<Value>>,
    pub cluster_role_bindings: Vec<Arc<Value>>,
    /// Roles of the request's namespace.
    pub roles: Vec<Arc<Value>>,
    /// RoleBindings of the request's namespace.
    pub role_bindings: Vec<Arc<Value>>,
}

thread_local! {
    /// This thread's copy of the current index and the server it belongs
    /// to, so a decision touches no lock and no shared reference count.
    static LOCAL_INDEX: std::cell::RefCell<Option<(u64, Arc<RbacIndex>)>> =
        const { std::cell::RefCell::new(None) };
}

pub async fn authorize(state: &ApiServer, user: &UserInfo, info: &RequestInfo) -> Decision {
    let server = state.instance;
    let generation = state.cache.rbac_generation();
    let local = LOCAL_INDEX.with(|local| {
        local
            .borrow()
            .as_ref()
            .filter(|(s, index)| *s == server && index.generation == generation)
            .map(|(_, index)| index.allows(user, info))
    });
    let allowed = match local {
        Some(allowed) => allowed,
        None => {
            let Some(index) = index(state).await else {
                tracing::warn!("RBAC policy unavailable; denying");
                return Decision::Deny;
            };
            let allowed = index.allows(user, info);
            LOCAL_INDEX.with(|local| *local.borrow_mut() = Some((server, index)));
            allowed
        }
    };
    if allowed {
        Decision::Allow
    } else {
        Decision::Deny
    }
}

/// The grants of every subject, resolved once per change of the RBAC
/// objects, so a decision costs the user's own bindings and not a scan of
/// all of them. Rules are compiled out of their JSON once, here, and a
/// decision looks subjects up by the request's own strings without
/// allocating.
#[derive(Default)]
pub struct RbacIndex {
    generation: u64,
    /// What ClusterRoleBindings grant, everywhere.
    cluster: SubjectGrants,
    /// Namespace -> what that namespace's RoleBindings grant in it.
    namespaced: HashMap<String, SubjectGrants>,
}

type Grants = Vec<Arc<[CompiledRule]>>;

/// Rule lists by subject. A ServiceAccount subject is filed under the
/// user name its tokens carry (`system:serviceaccount:<ns>:<name>`), which
/// is exactly what it matches.
#[derive(Default)]
struct SubjectGrants {
    users: HashMap<String, Grants>,
    groups: HashMap<String, Grants>,
}

impl SubjectGrants {
    fn add(&mut self, subject: &Value, namespace: &str, rules: &Arc<[CompiledRule]>) {
        let name = str_of(&subject["name"]);
        let (map, key) = match str_of(&subject["kind"]) {
            "User" => (&mut self.users, name.to_string()),
            "Group" => (&mut self.groups, name.to_string()),
            "ServiceAccount" => {
                let ns = match str_of(&subject["namespace"]) {
                    "" => namespace,
                    ns => ns,
                };
                if ns.is_empty() {
                    return;
                }
                (
                    &mut self.users,
                    format!("system:serviceaccount:{ns}:{name}"),
                )
            }
            _ => return,
        };
        map.entry(key).or_default().push(rules.clone());
    }

    fn allows(&self, user: &UserInfo, info: &RequestInfo) -> bool {
        let covered = |grants: Option<&Grants>| {
            grants.is_some_and(|g| g.iter().flat_map(|r| r.iter()).any(|r| r.allows(info)))
        };
        covered(self.users.get(&user.name))
            || user.groups.iter().any(|g| covered(self.groups.get(g)))
    }
}

impl RbacIndex {
    fn build(policy: &PolicySnapshot, generation: u64) -> RbacIndex {
        let mut index = RbacIndex {
            generation,
            ..Default::default()
        };
        let compile = |rules: &mut dyn Iterator<Item = &Value>| -> Arc<[CompiledRule]> {
            rules.map(CompiledRule::new).collect()
        };
        let mut cluster_rules: HashMap<String, Arc<[CompiledRule]>> = HashMap::new();
        let mut rules_of = |name: &str| -> Arc<[CompiledRule]> {
            cluster_rules
                .entry(name.to_string())
                .or_insert_with(|| compile(&mut cluster_role_rules(policy, name).into_iter()))
                .clone()
        };
        for binding in &policy.cluster_role_bindings {
            if str_of(&binding["roleRef"]["kind"]) != "ClusterRole" {
                continue;
            }
            let rules = rules_of(str_of(&binding["roleRef"]["name"]));
            for subject in array(&binding["subjects"]) {
                index.cluster.add(subject, "", &rules);
            }
        }
        let roles: HashMap<(&str, &str), Arc<[CompiledRule]>> = policy
            .roles
            .iter()
            .map(|r| {
                (
                    (namespace_of(r), name_of(r)),
                    compile(&mut array(&r["rules"]).iter()),
                )
            })
            .collect();
        for binding in &policy.role_bindings {
            let ns = namespace_of(binding);
            let role_name = str_of(&binding["roleRef"]["name"]);
            let rules = match str_of(&binding["roleRef"]["kind"]) {
                "ClusterRole" => rules_of(role_name),
                "Role" => match roles.get(&(ns, role_name)) {
                    Some(r) => r.clone(),
                    None => continue,
                },
                _ => continue,
            };
            let grants = index.namespaced.entry(ns.to_string()).or_default();
            for subject in array(&binding["subjects"]) {
                grants.add(subject, ns, &rules);
            }
        }
        index
    }

    pub fn allows(&self, user: &UserInfo, info: &RequestInfo) -> bool {
        self.cluster.allows(user, info)
            || (!info.namespace.is_empty()
                && self
                    .namespaced
                    .get(&info.namespace)
                    .is_some_and(|g| g.allows(user, info)))
    }
}

/// One PolicyRule, parsed out of its JSON.
#[derive(Debug, Default)]
pub struct CompiledRule {
    verbs: Vec<String>,
    api_groups: Vec<String>,
    resources: Vec<String>,
    resource_names: Vec<String>,
    non_resource_urls: Vec<String>,
}

impl CompiledRule {
    pub fn new(rule: &Value) -> CompiledRule {
        let strings = |field: &str| -> Vec<String> {
            array(&rule[field])
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        };
        CompiledRule {
            verbs: strings("verbs"),
            api_groups: strings("apiGroups"),
            resources: strings("resources"),
            resource_names: strings("resourceNames"),
            non_resource_urls: strings("nonResourceURLs"),
        }
    }

    /// Does this rule cover the request?
    pub fn allows(&self, info: &RequestInfo) -> bool {
        if !contains_or_star(&self.verbs, &info.verb) {
            return false;
        }
        if !info.is_resource_request {
            return self
                .non_resource_urls
                .iter()
                .any(|url| non_resource_url_matches(url, &info.path));
        }
        contains_or_star(&self.api_groups, &info.group)
            && self
                .resources
                .iter()
                .any(|r| resource_matches(r, &info.resource, &info.subresource))
            && (self.resource_names.is_empty() || self.resource_names.contains(&info.name))
    }
}

/// The current index, rebuilt when the RBAC objects changed.
async fn index(state: &ApiServer) -> Option<Arc<RbacIndex>> {
    let current = |generation: u64| {
        let current = state.rbac_index.lock().ok()?;
        current
            .as_ref()
            .filter(|i| i.generation == generation)
            .cloned()
    };
    let generation = state.cache.rbac_generation();
    if let Some(index) = current(generation) {
        return Some(index);
    }
    // One build at a time: the requests that queue here behind a build
    // find its result.
    let _building = state.rbac_index_build.lock().await;
    let generation = state.cache.rbac_generation();
    if let Some(index) = current(generation) {
        return Some(index);
    }
    let policy = PolicySnapshot {
        cluster_roles: list(state, "clusterroles", "").await?,
        cluster_role_bindings: list(state, "clusterrolebindings", "").await?,
        roles: list(state, "roles", "").await?,
        role_bindings: list(state, "rolebindings", "").await?,
    };
    let built = Arc::new(RbacIndex::build(&policy, generation));
    if let Ok(mut current) = state.rbac_index.lock() {
        *current = Some(built.clone());
    }
    Some(built)
}

pub(crate) async fn snapshot(state: &ApiServer, namespace: &str) -> Option<PolicySnapshot> {
    let mut policy = PolicySnapshot {
        cluster_roles: list(state, "clusterroles", "").await?,
        cluster_role_bindings: list(state, "clusterrolebindings", "").await?,
        ..Default::default()
    };
    if !namespace.is_empty() {
        policy.roles = list(state, "roles", namespace).await?;
        policy.role_bindings = list(state, "rolebindings", namespace).await?;
    }
    Some(policy)
}

/// Every object of one RBAC resource (in one namespace, when given), as
/// the watch cache holds it now.
async fn list(state: &ApiServer, plural: &str, namespace: &str) -> Option<Vec<Arc<Value>>> {
    let prefix = state
        .registry
        .lookup(RBAC_GROUP, "v1", plural)?
        .info()
        .list_prefix(namespace);
    let (items, _) = state.cache.list(&prefix, 0).await.ok()?;
    Some(items.iter().map(|c| Arc::new(c.decode())).collect())
}

/// Does any binding grant this request? `info.namespace` scopes the
/// RoleBindings (the snapshot's `roles`/`role_bindings` must be that
/// namespace's).
pub fn allows(policy: &PolicySnapshot, user: &UserInfo, info: &RequestInfo) -> bool {
    let cluster_wide = policy
        .cluster_role_bindings
        .iter()
        .filter(|b| binds(b, user, ""))
        .any(|b| role_ref_allows(policy, b, "", info));
    if cluster_wide {
        return true;
    }
    if info.namespace.is_empty() {
        return false;
    }
    policy
        .role_bindings
        .iter()
        .filter(|b| namespace_of(b) == info.namespace && binds(b, user, &info.namespace))
        .any(|b| role_ref_allows(policy, b, &info.namespace, info))
}

/// Every rule granted to `user` cluster-wide and in `namespace` (for
/// SelfSubjectRulesReview), in binding order.
pub fn rules_for(policy: &PolicySnapshot, user: &UserInfo, namespace: &str) -> Vec<Value> {
    let mut rules: Vec<Value> = Vec::new();
    for binding in policy
        .cluster_role_bindings
        .iter()
        .filter(|b| binds(b, user, ""))
    {
        rules.extend(
            cluster_role_rules(policy, str_of(&binding["roleRef"]["name"]))
                .into_iter()
                .cloned(),
        );
    }
    if namespace.is_empty() {
        return rules;
    }
    for binding in policy
        .role_bindings
        .iter()
        .filter(|b| namespace_of(b) == namespace && binds(b, user, namespace))
    {
        let name = str_of(&binding["roleRef"]["name"]);
        match str_of(&binding["roleRef"]["kind"]) {
            "ClusterRole" => rules.extend(cluster_role_rules(policy, name).into_iter().cloned()),
            "Role" => rules.extend(
                policy
                    .roles
                    .iter()
                    .filter(|r| name_of(r) == name && namespace_of(r) == namespace)
                    .flat_map(|r| array(&r["rules"]).iter().cloned()),
            ),
            _ => {}
        }
    }
    rules
}

fn role_ref_allows(
    policy: &PolicySnapshot,
    binding: &Value,
    namespace: &str,
    info: &RequestInfo,
) -> bool {
    let role_ref = &binding["roleRef"];
    let name = str_of(&role_ref["name"]);
    match str_of(&role_ref["kind"]) {
        "ClusterRole" => cluster_role_rules(policy, name)
            .iter()
            .any(|r| rule_allows(r, info)),
        // A RoleBinding may only name a Role of its own namespace.
        "Role" if !namespace.is_empty() => policy
            .roles
            .iter()
            .filter(|r| name_of(r) == name && namespace_of(r) == namespace)
            .flat_map(|r| array(&r["rules"]))
            .any(|r| rule_allows(r, info)),
        _ => false,
    }
}

/// Is this subject of the binding the user? A ServiceAccount subject
/// without a namespace means the binding's namespace.
fn binds(binding: &Value, user: &UserInfo, namespace: &str) -> bool {
    array(&binding["subjects"])
        .iter()
        .any(|s| subject_matches(s, user, namespace))
}

pub fn subject_matches(subject: &Value, user: &UserInfo, namespace: &str) -> bool {
    let name = str_of(&subject["name"]);
    match str_of(&subject["kind"]) {
        "User" => user.name == name,
        "Group" => user.in_group(name),
        "ServiceAccount" => {
            let sa_namespace = match str_of(&subject["namespace"]) {
                "" => namespace,
                ns => ns,
            };
            !sa_namespace.is_empty()
                && user.name == format!("system:serviceaccount:{sa_namespace}:{name}")
        }
        _ => false,
    }
}

/// The rules of a ClusterRole, following aggregation.
pub fn cluster_role_rules<'a>(policy: &'a PolicySnapshot, name: &str) -> Vec<&'a Value> {
    let mut visited = BTreeSet::new();
    let mut rules = Vec::new();
    collect_rules(policy, name, &mut visited, &mut rules);
    rules
}

fn collect_rules<'a>(
    policy: &'a PolicySnapshot,
    name: &str,
    visited: &mut BTreeSet<String>,
    out: &mut Vec<&'a Value>,
) {
    if !visited.insert(name.to_string()) {
        return;
    }
    let Some(role) = policy.cluster_roles.iter().find(|r| name_of(r) == name) else {
        return;
    };
    let Some(aggregation) = role.get("aggregationRule").filter(|a| !a.is_null()) else {
        out.extend(array(&role["rules"]));
        return;
    };
    let selectors = array(&aggregation["clusterRoleSelectors"]);
    let mut members: Vec<&Arc<Value>> = policy
        .cluster_roles
        .iter()
        .filter(|r| name_of(r) != name)
        .filter(|r| {
            let labels = apimachinery::selector::labels_of(r);
            selectors.iter().any(|s| label_selector_matches(s, &labels))
        })
        .collect();
    members.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    for member in members {
        collect_rules(policy, name_of(member), visited, out);
    }
}

pub use apimachinery::selector::label_selector_matches;

/// Does one PolicyRule cover the request?
pub fn rule_allows(rule: &Value, info: &RequestInfo) -> bool {
    CompiledRule::new(rule).allows(info)
}

/// `pods`, `pods/log`, `*` or `*/scale` against a request's resource and
/// subresource. A resource rule does not cover that resource's
/// subresources.
fn resource_matches(rule: &str, resource: &str, subresource: &str) -> bool {
    if rule == "*" {
        return true;
    }
    match rule.split_once('/') {
        None => subresource.is_empty() && rule == resource,
        Some((r, sub)) => {
            !subresource.is_empty() && sub == subresource && (r == "*" || r == resource)
        }
    }
}

fn non_resource_url_matches(rule_url: &str, path: &str) -> bool {
    rule_url == "*"
        || rule_url == path
        || rule_url
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix))
}

fn contains_or_star(list: &[String], wanted: &str) -> bool {
    list.iter().any(|v| v == "*" || v == wanted)
}

fn array(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn name_of(obj: &Value) -> &str {
    str_of(&obj["metadata"]["name"])
}

fn namespace_of(obj: &Value) -> &str {
    str_of(&obj["metadata"]["namespace"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    fn resource(
        verb: &str,
        group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> RequestInfo {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        RequestInfo {
            is_resource_request: true,
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    fn non_resource(verb: &str, path: &str) -> RequestInfo {
        RequestInfo {
            verb: verb.into(),
            path: path.into(),
            ..Default::default()
        }
    }

    fn cluster_role(name: &str, rules: Value) -> Arc<Value> {
        Arc::new(json!({"metadata": {"name": name}, "rules": rules}))
    }

    fn role(ns: &str, name: &str, rules: Value) -> Arc<Value> {
        Arc::new(json!({"metadata": {"name": name, "namespace": ns}, "rules": rules}))
    }

    fn crb(role: &str, subjects: Value) -> Arc<Value> {
        Arc::new(json!({
            "metadata": {"name": role},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
            "subjects": subjects,
        }))
    }

    fn rb(ns: &str, kind: &str, role: &str, subjects: Value) -> Arc<Value> {
        Arc::new(json!({
            "metadata": {"name": format!("{role}-binding"), "namespace": ns},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": kind, "name": role},
            "subjects": subjects,
        }))
    }

    fn alice() -> UserInfo {
        user("alice", &["system:authenticated"])
    }

    fn alice_subject() -> Value {
        json!([{"kind": "User", "apiGroup": RBAC_GROUP, "name": "alice"}])
    }

    /// A policy where alice is bound cluster-wide to a ClusterRole with these rules.
    fn granted(rules: Value) -> PolicySnapshot {
        PolicySnapshot {
            cluster_roles: vec![cluster_role("r", rules)],
            cluster_role_bindings: vec![crb("r", alice_subject())],
            ..Default::default()
        }
    }

    #[test]
    fn nothing_is_allowed_without_a_binding() {
        let policy = PolicySnapshot {
            cluster_roles: vec![cluster_role(
                "r",
                json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]),
            )],
            ..Default::default()
        };
        assert!(!allows(
            &policy,
            &alice(),
            &resource("get", "", "pods", "default", "p")
        ));
    }

    #[test]
    fn verbs_must_match_or_be_star() {
        let r = json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]});
        assert!(rule_allows(
            &r,
            &resource("list", "", "pods", "default", "")
        ));
        assert!(!rule_allows(
            &r,
            &resource("create", "", "pods", "default", "")
        ));
        let star = json!({"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]});
        assert!(rule_allows(
            &star,
            &resource("deletecollection", "", "pods", "default", "")
        ));
    }

    #[test]
    fn api_groups_must_match_or_be_star() {
        let core = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["deployments"]});
        assert!(!rule_allows(
            &core,
            &resource("get", "apps", "deployments", "d", "x")
        ));
        let apps = json!({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments"]});
        assert!(rule_allows(
            &apps,
            &resource("get", "apps", "deployments", "d", "x")
        ));
        let star = json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["deployments"]});
        assert!(rule_allows(
            &star,
            &resource("get", "apps", "deployments", "d", "x")
        ));
    }

    #[test]
    fn resources_match_exactly_or_by_star() {
        let r = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]});
        assert!(rule_allows(&r, &resource("get", "", "pods", "d", "x")));
        assert!(!rule_allows(&r, &resource("get", "", "services", "d", "x")));
        let star = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["*"]});
        assert!(rule_allows(
            &star,
            &resource("get", "", "services", "d", "x")
        ));
        assert!(rule_allows(
            &star,
            &resource("get", "", "pods/log", "d", "x")
        ));
    }

    #[test]
    fn a_resource_rule_does_not_cover_its_subresources() {
        let r = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]});
        assert!(!rule_allows(&r, &resource("get", "", "pods/log", "d", "x")));
        let log = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]});
        assert!(rule_allows(
            &log,
            &resource("get", "", "pods/log", "d", "x")
        ));
        assert!(!rule_allows(&log, &resource("get", "", "pods", "d", "x")));
    }

    #[test]
    fn star_slash_subresource_matches_that_subresource_of_any_resource() {
        let r = json!({"verbs": ["update"], "apiGroups": ["*"], "resources": ["*/scale"]});
        assert!(rule_allows(
            &r,
            &resource("update", "apps", "deployments/scale", "d", "x")
        ));
        assert!(rule_allows(
            &r,
            &resource("update", "apps", "statefulsets/scale", "d", "x")
        ));
        assert!(!rule_allows(
            &r,
            &resource("update", "apps", "deployments/status", "d", "x")
        ));
        assert!(!rule_allows(
            &r,
            &resource("update", "apps", "deployments", "d", "x")
        ));
    }

    #[test]
    fn resource_names_restrict_to_named_requests() {
        let r = json!({"verbs": ["*"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"]});
        assert!(rule_allows(
            &r,
            &resource("get", "", "configmaps", "d", "settings")
        ));
        assert!(rule_allows(
            &r,
            &resource("update", "", "configmaps", "d", "settings")
        ));
        assert!(!rule_allows(
            &r,
            &resource("get", "", "configmaps", "d", "other")
        ));
        for verb in ["list", "watch", "create", "deletecollection"] {
            assert!(
                !rule_allows(&r, &resource(verb, "", "configmaps", "d", "")),
                "{verb}"
            );
        }
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_trailing_star() {
        let r = json!({"verbs": ["get"], "nonResourceURLs": ["/version", "/apis/*"]});
        assert!(rule_allows(&r, &non_resource("get", "/version")));
        assert!(!rule_allows(&r, &non_resource("get", "/version/x")));
        assert!(rule_allows(&r, &non_resource("get", "/apis/apps/v1")));
        assert!(!rule_allows(&r, &non_resource("get", "/apis")));
        assert!(!rule_allows(&r, &non_resource("post", "/version")));
        let star = json!({"verbs": ["*"], "nonResourceURLs": ["*"]});
        assert!(rule_allows(&star, &non_resource("delete", "/anything")));
    }

    #[test]
    fn resource_rules_never_grant_non_resource_paths_and_vice_versa() {
        let res = json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]});
        assert!(!rule_allows(&res, &non_resource("get", "/healthz")));
        let paths = json!({"verbs": ["*"], "nonResourceURLs": ["*"]});
        assert!(!rule_allows(&paths, &resource("get", "", "pods", "d", "x")));
    }

    #[test]
    fn cluster_role_binding_grants_in_every_namespace_and_cluster_wide() {
        let policy = granted(
            json!([{"verbs": ["list"], "apiGroups": [""], "resources": ["pods", "nodes"]}]),
        );
        assert!(allows(
            &policy,
            &alice(),
            &resource("list", "", "pods", "default", "")
        ));
        assert!(allows(
            &policy,
            &alice(),
            &resource("list", "", "pods", "kube-system", "")
        ));
        assert!(allows(
            &policy,
            &alice(),
            &resource("list", "", "nodes", "", "")
        ));
        assert!(!allows(
            &policy,
            &user("bob", &[]),
            &resource("list", "", "pods", "default", "")
        ));
    }

    #[test]
    fn group_subjects_match_by_membership() {
        let policy = PolicySnapshot {
            cluster_roles: vec![cluster_role(
                "r",
                json!([{"verbs": ["get"], "nonResourceURLs": ["/version"]}]),
            )],
            cluster_role_bindings: vec![crb("r", json!([{"kind": "Group", "name": "ops"}]))],
            ..Default::default()
        };
        assert!(allows(
            &policy,
            &user("x", &["ops"]),
            &non_resource("get", "/version")
        ));
        assert!(!allows(
            &policy,
            &user("ops", &[]),
            &non_resource("get", "/version")
        ));
    }

    #[test]
    fn service_account_subjects_match_their_username_and_default_to_the_binding_namespace() {
        let sa = user(
            "system:serviceaccount:apps:builder",
            &["system:serviceaccounts"],
        );
        let explicit = json!({"kind": "ServiceAccount", "name": "builder", "namespace": "apps"});
        assert!(subject_matches(&explicit, &sa, ""));
        assert!(!subject_matches(&explicit, &user("builder", &[]), ""));
        let implicit = json!({"kind": "ServiceAccount", "name": "builder"});
        assert!(subject_matches(&implicit, &sa, "apps"));
        assert!(!subject_matches(&implicit, &sa, "other"));
        assert!(!subject_matches(&implicit, &sa, ""));
    }

    #[test]
    fn role_binding_to_a_cluster_role_grants_only_in_its_namespace() {
        let policy = PolicySnapshot {
            cluster_roles: vec![cluster_role(
                "reader",
                json!([{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}]),
            )],
            role_bindings: vec![rb("default", "ClusterRole", "reader", alice_subject())],
            ..Default::default()
        };
        assert!(allows(
            &policy,
            &alice(),
            &resource("list", "", "pods", "default", "")
        ));
        assert!(!allows(
            &policy,
            &alice(),
            &resource("list", "", "pods", "kube-system", "")
        ));
        assert!(!allows(
            &policy,
            &alice(),
            &resource("list", "", "pods", "", "")
        ));
    }

    #[test]
    fn role_binding_to_a_role_uses_the_role_of_its_namespace() {
        let rules = json!([{"verbs": ["create"], "apiGroups": [""], "resources": ["configmaps"]}]);
        let policy = PolicySnapshot {
            roles: vec![
                role("team", "writer", rules.clone()),
                role("elsewhere", "writer", rules),
            ],
            role_bindings: vec![rb("team", "Role", "writer", alice_subject())],
            ..Default::default()
        };
        assert!(allows(
            &policy,
            &alice(),
            &resource("create", "", "configmaps", "team", "")
        ));
        let policy = PolicySnapshot {
            roles: vec![role(
                "elsewhere",
                "writer",
                json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]),
            )],
            role_bindings: vec![rb("team", "Role", "writer", alice_subject())],
            ..Default::default()
        };
        assert!(!allows(
            &policy,
            &alice(),
            &resource("create", "", "configmaps", "team", "")
        ));
    }

    #[test]
    fn cluster_role_binding_naming_a_role_grants_nothing() {
        let mut binding = (*crb("writer", alice_subject())).clone();
        binding["roleRef"]["kind"] = json!("Role");
        let policy = PolicySnapshot {
            roles: vec![role(
                "team",
                "writer",
                json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]),
            )],
            cluster_role_bindings: vec![Arc::new(binding)],
            ..Default::default()
        };
        assert!(!allows(
            &policy,
            &alice(),
            &resource("get", "", "pods", "team", "p")
        ));
    }

    fn aggregated(name: &str, labels: Value, selector_label: &str) -> Arc<Value> {
        Arc::new(json!({
            "metadata": {"name": name, "labels": labels},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {selector_label: "true"}}]},
            "rules": [],
        }))
    }

    fn labelled(name: &str, label: &str, rules: Value) -> Arc<Value> {
        Arc::new(json!({"metadata": {"name": name, "labels": {label: "true"}}, "rules": rules}))
    }

    #[test]
    fn aggregated_cluster_roles_take_the_rules_of_matching_roles_transitively() {
        let policy = PolicySnapshot {
            cluster_roles: vec![
                aggregated("top", json!({}), "to-top"),
                aggregated("middle", json!({"to-top": "true"}), "to-middle"),
                labelled(
                    "leaf",
                    "to-middle",
                    json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]),
                ),
                labelled(
                    "other",
                    "unrelated",
                    json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]),
                ),
            ],
            cluster_role_bindings: vec![crb("top", alice_subject())],
            ..Default::default()
        };
        assert!(allows(
            &policy,
            &alice(),
            &resource("get", "", "pods", "d", "p")
        ));
        assert!(!allows(
            &policy,
            &alice(),
            &resource("get", "", "secrets", "d", "s")
        ));
        assert_eq!(cluster_role_rules(&policy, "middle").len(), 1);
    }

    #[test]
    fn aggregation_cycles_terminate() {
        let policy = PolicySnapshot {
            cluster_roles: vec![
                aggregated("a", json!({"to-b": "true"}), "to-a"),
                aggregated("b", json!({"to-a": "true"}), "to-b"),
            ],
            cluster_role_bindings: vec![crb("a", alice_subject())],
            ..Default::default()
        };
        assert!(!allows(
            &policy,
            &alice(),
            &resource("get", "", "pods", "d", "p")
        ));
    }

    #[test]
    fn label_selectors_support_match_expressions() {
        let labels: BTreeMap<String, String> = [("tier".to_string(), "web".to_string())].into();
        let sel = |op: &str, values: Value| json!({"matchExpressions": [{"key": "tier", "operator": op, "values": values}]});
        assert!(label_selector_matches(
            &sel("In", json!(["web", "db"])),
            &labels
        ));
        assert!(!label_selector_matches(
            &sel("NotIn", json!(["web"])),
            &labels
        ));
        assert!(label_selector_matches(&sel("Exists", json!([])), &labels));
        assert!(!label_selector_matches(
            &sel("DoesNotExist", json!([])),
            &labels
        ));
        assert!(label_selector_matches(&json!({}), &labels));
        assert!(!label_selector_matches(
            &json!({"matchLabels": {"tier": "db"}}),
            &labels
        ));
    }

    #[test]
    fn the_index_decides_as_a_scan_of_the_bindings_does() {
        let all = json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]);
        let read_pods = json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]}]);
        let policy = PolicySnapshot {
            cluster_roles: vec![
                cluster_role("all", all.clone()),
                cluster_role("pods", read_pods.clone()),
                aggregated("agg", json!({}), "to-agg"),
                labelled(
                    "member",
                    "to-agg",
                    json!([{"verbs": ["create"], "apiGroups": ["apps"], "resources": ["deployments"]}]),
                ),
            ],
            cluster_role_bindings: vec![
                crb("pods", json!([{"kind": "Group", "name": "readers"}])),
                crb(
                    "agg",
                    json!([{"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}]),
                ),
                // No namespace: matches nobody cluster-wide.
                crb("all", json!([{"kind": "ServiceAccount", "name": "ghost"}])),
            ],
            roles: vec![role(
                "team",
                "cm",
                json!([{"verbs": ["update"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"]}]),
            )],
            role_bindings: vec![
                rb("team", "Role", "cm", alice_subject()),
                rb(
                    "team",
                    "ClusterRole",
                    "all",
                    json!([{"kind": "ServiceAccount", "name": "ghost"}]),
                ),
                rb("other", "Role", "cm", alice_subject()),
            ],
        };
        let index = RbacIndex::build(&policy, 1);
        let users = [
            alice(),
            user("bob", &["readers"]),
            user(
                "system:serviceaccount:ci:deployer",
                &["system:serviceaccounts"],
            ),
            user("system:serviceaccount:team:ghost", &[]),
            user("system:serviceaccount:default:ghost", &[]),
            user("nobody", &[]),
        ];
        let requests = [
            resource("get", "", "pods", "team", "p"),
            resource("get", "", "pods/log", "team", "p"),
            resource("get", "", "pods/exec", "team", "p"),
            resource("list", "", "pods", "", ""),
            resource("create", "apps", "deployments", "ci", ""),
            resource("update", "", "configmaps", "team", "settings"),
            resource("update", "", "configmaps", "team", "other"),
            resource("update", "", "configmaps", "other", "settings"),
            resource("delete", "", "secrets", "team", "s"),
            resource("delete", "", "secrets", "default", "s"),
            non_resource("get", "/version"),
        ];
        let mut allowed = 0;
        for u in &users {
            for r in &requests {
                let expected = allows(&policy, u, r);
                assert_eq!(index.allows(u, r), expected, "{} {r:?}", u.name);
                allowed += usize::from(expected);
            }
        }
        // The table exercises both answers.
        assert!(
            allowed > 5 && allowed < users.len() * requests.len() - 5,
            "{allowed}"
        );
    }
}
