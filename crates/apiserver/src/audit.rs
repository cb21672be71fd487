//! Auditing: an `audit.k8s.io/v1` Policy picks a level per request (the
//! first matching rule wins; no match means `None`), and each audited
//! request becomes JSON lines of `audit.k8s.io/v1` Events in the log file:
//! one at `RequestReceived` and one at `ResponseComplete` (long-running
//! requests also `ResponseStarted`, and complete when their stream ends),
//! unless the policy omits a stage. The log rotates by size (`--audit-log-maxsize`
//! megabytes, keeping `--audit-log-maxbackup` old files).
//!
//! Events carry the metadata of the request at every level (user,
//! impersonated user, verb, object reference, source IP, user agent,
//! response status, annotations such as the authorization decision and
//! reason). `Request` adds `requestObject` (the decoded body, as JSON
//! whatever the wire format), `RequestResponse` also `responseObject`.
//!
//! Code serving a request reaches its audit event through a request-scoped
//! [`Scope`] (a tokio task-local the pipeline sets up): [`add_annotation`]
//! (admission plugins such as PodSecurity), [`log_request_body`] /
//! [`log_request_object`] (the handler, once it has decoded the body). All
//! are no-ops outside an audited request, and bodies are only decoded when
//! the level asks for them.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use apimachinery::codec::BodyFormat;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::authn::UserInfo;
use crate::request_info::RequestInfo;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum Level {
    #[default]
    None,
    Metadata,
    Request,
    RequestResponse,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupResources {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub resource_names: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    pub level: Level,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub user_groups: Vec<String>,
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default)]
    pub resources: Vec<GroupResources>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
    #[serde(default)]
    pub omit_stages: Option<Vec<String>>,
    #[serde(default)]
    pub omit_managed_fields: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub omit_stages: Vec<String>,
    #[serde(default)]
    pub omit_managed_fields: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit policy {0}: {1}")]
    Policy(String, String),
    #[error("audit log {0}: {1}")]
    Log(String, std::io::Error),
}

impl Policy {
    pub fn parse(text: &str) -> Result<Policy, String> {
        let policy: Policy = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        if policy.kind != "Policy" || !policy.api_version.starts_with("audit.k8s.io/") {
            return Err(format!(
                "expected kind Policy of audit.k8s.io/v1, got {:?} {:?}",
                policy.api_version, policy.kind
            ));
        }
        Ok(policy)
    }

    /// The level and omitted stages for a request.
    pub fn evaluate(&self, user: &UserInfo, info: &RequestInfo) -> (Level, Vec<String>) {
        for rule in &self.rules {
            if rule_matches(rule, user, info) {
                let omit = rule
                    .omit_stages
                    .clone()
                    .unwrap_or_else(|| self.omit_stages.clone());
                return (rule.level, omit);
            }
        }
        (Level::None, Vec::new())
    }
}

fn rule_matches(rule: &Rule, user: &UserInfo, info: &RequestInfo) -> bool {
    if !rule.users.is_empty() && !rule.users.contains(&user.name) {
        return false;
    }
    if !rule.user_groups.is_empty() && !rule.user_groups.iter().any(|g| user.in_group(g)) {
        return false;
    }
    if !rule.verbs.is_empty() && !rule.verbs.contains(&info.verb) {
        return false;
    }
    if info.is_resource_request {
        if !rule.non_resource_urls.is_empty() && rule.resources.is_empty() {
            return false;
        }
        if !rule.namespaces.is_empty() && !rule.namespaces.contains(&info.namespace) {
            return false;
        }
        if rule.resources.is_empty() {
            return true;
        }
        let full = if info.subresource.is_empty() {
            info.resource.clone()
        } else {
            format!("{}/{}", info.resource, info.subresource)
        };
        rule.resources.iter().any(|gr| {
            gr.group == info.group
                && (gr.resources.is_empty()
                    || gr.resources.iter().any(|r| {
                        r == &full
                            || r == "*"
                            || (r == "*/*" && !info.subresource.is_empty())
                            || r.strip_prefix("*/").is_some_and(|s| s == info.subresource)
                            || r.strip_suffix("/*")
                                .is_some_and(|p| p == info.resource && !info.subresource.is_empty())
                    }))
                && (gr.resource_names.is_empty() || gr.resource_names.contains(&info.name))
        })
    } else {
        if !rule.resources.is_empty() || !rule.namespaces.is_empty() {
            return false;
        }
        rule.non_resource_urls.is_empty()
            || rule.non_resource_urls.iter().any(|u| {
                u == &info.path
                    || u.strip_suffix('*')
                        .is_some_and(|p| info.path.starts_with(p))
            })
    }
}

/// What code serving a request has added to its audit event.
#[derive(Debug, Default)]
pub struct Scope {
    /// The level the policy chose (`None` until the audit stage ran).
    level: Level,
    annotations: BTreeMap<String, String>,
    request_object: Option<Value>,
}

/// The handle the pipeline keeps and the task-local holds.
pub type ScopeHandle = Arc<Mutex<Scope>>;

tokio::task_local! {
    static CURRENT: ScopeHandle;
}

/// Run `work` (the rest of the pipeline) with `scope` as the current
/// request's audit scope.
pub async fn run_in_scope<F: Future>(scope: ScopeHandle, work: F) -> F::Output {
    CURRENT.scope(scope, work).await
}

fn with_current<R>(f: impl FnOnce(&mut Scope) -> R) -> Option<R> {
    CURRENT
        .try_with(|handle| handle.lock().ok().map(|mut scope| f(&mut scope)))
        .ok()
        .flatten()
}

/// The audit level of the request being served (`None` outside one).
pub fn current_level() -> Level {
    with_current(|scope| scope.level).unwrap_or_default()
}

/// Add an annotation to the current request's audit event. As upstream,
/// the first value of a key stays.
pub fn add_annotation(key: &str, value: impl Into<String>) {
    with_current(|scope| {
        if scope.level >= Level::Metadata {
            scope
                .annotations
                .entry(key.to_string())
                .or_insert_with(|| value.into());
        }
    });
}

/// Record the request body (any content type the API accepts) as the
/// event's `requestObject`, when the level is `Request` or more. Bodies
/// that do not decode are left out, as upstream logs only what decoded.
pub fn log_request_body(content_type: &str, body: &[u8]) {
    if current_level() < Level::Request || body.is_empty() {
        return;
    }
    let decoded = BodyFormat::from_content_type(content_type)
        .ok()
        .and_then(|format| apimachinery::codec::decode_object(body, format).ok())
        .or_else(|| serde_json::from_slice::<Value>(body).ok());
    if let Some(object) = decoded {
        with_current(|scope| {
            scope.request_object.get_or_insert(object);
        });
    }
}

/// Record an already decoded request object as the event's
/// `requestObject`, when the level is `Request` or more.
pub fn log_request_object(object: &Value) {
    if current_level() >= Level::Request {
        with_current(|scope| {
            scope.request_object.get_or_insert_with(|| object.clone());
        });
    }
}

/// What the pipeline learns about one request, for its audit events.
#[derive(Debug, Default)]
pub struct Record {
    pub audit_id: String,
    pub received: String,
    pub request_uri: String,
    pub source_ip: String,
    pub user_agent: String,
    pub user: Option<UserInfo>,
    pub impersonated: Option<UserInfo>,
    pub info: Option<RequestInfo>,
    pub decision: Option<bool>,
    /// `authorization.k8s.io/reason`, as the authorizer that decided says.
    pub reason: Option<String>,
    /// Shared with the code serving the request.
    pub scope: ScopeHandle,
    /// Filled once the response is known.
    pub response_status: Option<Value>,
    pub response_object: Option<Value>,
    /// The name of a created object, when the request did not carry one.
    pub created_name: Option<String>,
}

impl Record {
    /// Fix the level for the rest of the request (the audit stage).
    pub fn set_level(&self, level: Level) {
        if let Ok(mut scope) = self.scope.lock() {
            scope.level = level;
        }
    }

    pub fn level(&self) -> Level {
        self.scope.lock().map(|s| s.level).unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct NameOnly {
    #[serde(default)]
    metadata: NameOnlyMeta,
}

#[derive(Default, Deserialize)]
struct NameOnlyMeta {
    #[serde(default)]
    name: String,
}

/// Responses larger than this are not parsed for `responseObject` (or a
/// failure's details); the event keeps the response code.
const MAX_RESPONSE_OBJECT_BYTES: usize = 8 * 1024 * 1024;

/// Learn from the response what the ResponseComplete event reports: the
/// status of a failure, the created object's name, and at
/// `RequestResponse` the response object. Only complete in-memory bodies
/// are looked at (never a watch stream); the response is handed back
/// unchanged.
pub async fn observe_response(
    record: &mut Record,
    resp: http::Response<crate::response::Body>,
) -> http::Response<crate::response::Body> {
    use http_body_util::BodyExt;
    use hyper::body::Body as _;
    let level = record.level();
    let code = resp.status().as_u16();
    record.response_status = Some(json!({"metadata": {}, "code": code}));
    if level < Level::Metadata {
        return resp;
    }
    let is_create = record.info.as_ref().is_some_and(|i| {
        i.is_resource_request && i.verb == "create" && i.name.is_empty() && i.subresource.is_empty()
    });
    let wanted = code >= 300 || level >= Level::RequestResponse || is_create;
    let size = resp.body().size_hint().exact();
    if !wanted || size.is_none_or(|n| n as usize > MAX_RESPONSE_OBJECT_BYTES) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(collected) = body.collect().await;
    let bytes = collected.to_bytes();
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = apimachinery::codec::BodyFormat::from_content_type(content_type).ok();
    if level < Level::RequestResponse && code < 300 && format == Some(BodyFormat::Json) {
        // Only the created object's name is needed: read just that, not
        // a whole (possibly large) object.
        if let Ok(named) = serde_json::from_slice::<NameOnly>(&bytes) {
            if !named.metadata.name.is_empty() {
                record.created_name = Some(named.metadata.name);
            }
        }
        return http::Response::from_parts(parts, crate::response::full(bytes));
    }
    let object = format.and_then(|format| apimachinery::codec::decode_object(&bytes, format).ok());
    if let Some(object) = object {
        if object["kind"] == "Status" {
            // Only the bounded fields, as upstream copies them.
            let mut status = json!({"metadata": {}, "code": code});
            for field in ["status", "message", "reason", "details"] {
                if let Some(v) = object.get(field) {
                    status[field] = v.clone();
                }
            }
            record.response_status = Some(status);
        }
        if is_create && code < 300 {
            let name = object["metadata"]["name"].as_str().unwrap_or("");
            if !name.is_empty() {
                record.created_name = Some(name.to_string());
            }
        }
        if level >= Level::RequestResponse {
            record.response_object = Some(object);
        }
    }
    http::Response::from_parts(parts, crate::response::full(bytes))
}

struct LogFile {
    path: PathBuf,
    file: Option<std::fs::File>,
    size: u64,
    max_bytes: u64,
    max_backups: usize,
}

/// The policy and the log it writes to.
pub struct Auditor {
    policy: Policy,
    log: Mutex<LogFile>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor").finish_non_exhaustive()
    }
}

fn user_json(user: &UserInfo) -> Value {
    let mut out = json!({"username": user.name, "groups": user.groups});
    if !user.uid.is_empty() {
        out["uid"] = json!(user.uid);
    }
    if !user.extra.is_empty() {
        out["extra"] = json!(user.extra);
    }
    out
}

impl Auditor {
    /// `max_size_mb` 0: never rotate; `max_backups` 0: keep every backup.
    pub fn open(
        policy_file: &Path,
        log_path: &Path,
        max_size_mb: u64,
        max_backups: usize,
    ) -> Result<Auditor, AuditError> {
        let shown = policy_file.display().to_string();
        let text = std::fs::read_to_string(policy_file)
            .map_err(|e| AuditError::Policy(shown.clone(), e.to_string()))?;
        let policy = Policy::parse(&text).map_err(|e| AuditError::Policy(shown, e))?;
        let mut log = LogFile {
            path: log_path.to_path_buf(),
            file: None,
            size: 0,
            max_bytes: max_size_mb * 1024 * 1024,
            max_backups,
        };
        log.open()
            .map_err(|e| AuditError::Log(log_path.display().to_string(), e))?;
        Ok(Auditor {
            policy,
            log: Mutex::new(log),
        })
    }

    pub fn evaluate(&self, record: &Record) -> (Level, Vec<String>) {
        let (Some(user), Some(info)) = (&record.user, &record.info) else {
            // Unauthenticated requests are audited as the anonymous user.
            let anonymous = UserInfo {
                name: crate::authn::USER_ANONYMOUS.into(),
                groups: vec![crate::authn::GROUP_UNAUTHENTICATED.into()],
                ..Default::default()
            };
            return match &record.info {
                Some(info) => self.policy.evaluate(&anonymous, info),
                None => (Level::None, Vec::new()),
            };
        };
        let acting = record.impersonated.as_ref().unwrap_or(user);
        self.policy.evaluate(acting, info)
    }

    /// `omitManagedFields` of the matching rule (else the policy's) drops
    /// `metadata.managedFields` from logged objects, lists' items too.
    fn strip_managed_fields(&self, mut object: Value, record: &Record) -> Value {
        let omit = match (&record.user, &record.info) {
            (Some(user), Some(info)) => {
                let acting = record.impersonated.as_ref().unwrap_or(user);
                self.policy
                    .rules
                    .iter()
                    .find(|rule| rule_matches(rule, acting, info))
                    .and_then(|rule| rule.omit_managed_fields)
                    .unwrap_or(self.policy.omit_managed_fields)
            }
            _ => self.policy.omit_managed_fields,
        };
        if omit {
            if let Some(meta) = object["metadata"].as_object_mut() {
                meta.remove("managedFields");
            }
            if let Some(items) = object["items"].as_array_mut() {
                for item in items {
                    if let Some(meta) = item["metadata"].as_object_mut() {
                        meta.remove("managedFields");
                    }
                }
            }
        }
        object
    }

    /// Write the event of one stage of a request.
    pub fn emit(&self, record: &Record, level: Level, stage: &str, code: Option<u16>) {
        if level == Level::None {
            return;
        }
        let mut event = json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": format!("{level:?}"),
            "auditID": record.audit_id,
            "stage": stage,
            "requestURI": record.request_uri,
            "sourceIPs": [record.source_ip],
            "userAgent": record.user_agent,
            "requestReceivedTimestamp": record.received,
            "stageTimestamp": now_micro(),
        });
        match &record.user {
            Some(user) => event["user"] = user_json(user),
            None => event["user"] = json!({}),
        }
        if let Some(imp) = &record.impersonated {
            event["impersonatedUser"] = user_json(imp);
        }
        if let Some(info) = &record.info {
            event["verb"] = json!(info.verb);
            if info.is_resource_request {
                let mut object_ref = json!({"resource": info.resource, "apiVersion": info.version});
                if !info.namespace.is_empty() {
                    object_ref["namespace"] = json!(info.namespace);
                }
                if !info.name.is_empty() {
                    object_ref["name"] = json!(info.name);
                } else if let Some(name) = &record.created_name {
                    object_ref["name"] = json!(name);
                }
                if !info.group.is_empty() {
                    object_ref["apiGroup"] = json!(info.group);
                }
                if !info.subresource.is_empty() {
                    object_ref["subresource"] = json!(info.subresource);
                }
                event["objectRef"] = object_ref;
            }
        }
        if let Some(code) = code {
            event["responseStatus"] = record
                .response_status
                .clone()
                .unwrap_or_else(|| json!({"metadata": {}, "code": code}));
        }
        let (request_object, mut annotations) = match self_scope(record) {
            Some((object, annotations)) => (object, annotations),
            None => (None, BTreeMap::new()),
        };
        if let Some(object) = request_object.filter(|_| level >= Level::Request) {
            event["requestObject"] = self.strip_managed_fields(object, record);
        }
        if let Some(object) = record
            .response_object
            .as_ref()
            .filter(|_| level >= Level::RequestResponse && code.is_some())
        {
            event["responseObject"] = self.strip_managed_fields(object.clone(), record);
        }
        if let Some(allowed) = record.decision {
            annotations.insert(
                "authorization.k8s.io/decision".into(),
                if allowed { "allow" } else { "forbid" }.into(),
            );
            annotations.insert(
                "authorization.k8s.io/reason".into(),
                record.reason.clone().unwrap_or_default(),
            );
        }
        if !annotations.is_empty() {
            event["annotations"] = json!(annotations);
        }
        let mut line = event.to_string();
        line.push('\n');
        if let Ok(mut log) = self.log.lock() {
            if let Err(err) = log.write(line.as_bytes()) {
                tracing::warn!(%err, "writing the audit log failed");
            }
        }
    }
}

/// Upstream's long-running requests: watches, proxies, and the `exec`,
/// `attach`, `portforward`, `proxy` and `log` subresources. Their audit
/// events have a `ResponseStarted` stage, and `ResponseComplete` is written
/// when the stream ends.
pub fn is_long_running(info: &RequestInfo) -> bool {
    matches!(info.verb.as_str(), "watch" | "proxy")
        || matches!(
            info.subresource.as_str(),
            "exec" | "attach" | "portforward" | "proxy" | "log"
        )
}

/// What is left to write once a streamed response ends.
struct PendingCompletion {
    auditor: Arc<Auditor>,
    record: Record,
    level: Level,
    code: u16,
}

/// A response body that writes its request's `ResponseComplete` event
/// when it is dropped: after the last frame, or when the client leaves.
struct CompletesOnDrop {
    inner: crate::response::Body,
    pending: Option<PendingCompletion>,
}

impl hyper::body::Body for CompletesOnDrop {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CompletesOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.pending.take() {
            p.auditor
                .emit(&p.record, p.level, "ResponseComplete", Some(p.code));
        }
    }
}

/// Defer the `ResponseComplete` event of a long-running request to the
/// end of its response stream.
pub fn complete_when_streamed(
    auditor: Arc<Auditor>,
    record: Record,
    level: Level,
    resp: http::Response<crate::response::Body>,
) -> http::Response<crate::response::Body> {
    use http_body_util::BodyExt;
    let code = resp.status().as_u16();
    let (parts, inner) = resp.into_parts();
    let body = CompletesOnDrop {
        inner,
        pending: Some(PendingCompletion {
            auditor,
            record,
            level,
            code,
        }),
    };
    http::Response::from_parts(parts, body.boxed_unsync())
}

/// `authorization.k8s.io/reason` for an allowed request, worded as
/// upstream's authorizers word it: empty for `system:masters` and the
/// Node authorizer, `RBAC: allowed by <binding> of <role> to <subject>`
/// for RBAC. Looked up only when an event will carry it.
pub async fn authorization_reason(
    state: &crate::ApiServer,
    user: &UserInfo,
    info: &RequestInfo,
) -> String {
    use crate::authz::rbac;
    if user.in_group(crate::authn::GROUP_MASTERS) {
        return String::new();
    }
    let Some(policy) = rbac::snapshot(state, &info.namespace).await else {
        return String::new();
    };
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let describe = |subject: &Value, binding_namespace: &str| {
        let kind = text(&subject["kind"]);
        let name = text(&subject["name"]);
        if kind == "ServiceAccount" {
            let ns = match text(&subject["namespace"]) {
                ns if ns.is_empty() => binding_namespace.to_string(),
                ns => ns,
            };
            format!("{kind} \"{name}/{ns}\"")
        } else {
            format!("{kind} \"{name}\"")
        }
    };
    let empty = Vec::new();
    for binding in &policy.cluster_role_bindings {
        let role = &binding["roleRef"];
        if text(&role["kind"]) != "ClusterRole" {
            continue;
        }
        let Some(subject) = binding["subjects"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .find(|s| rbac::subject_matches(s, user, ""))
        else {
            continue;
        };
        let role_name = text(&role["name"]);
        if rbac::cluster_role_rules(&policy, &role_name)
            .iter()
            .any(|r| rbac::rule_allows(r, info))
        {
            return format!(
                "RBAC: allowed by ClusterRoleBinding \"{}\" of ClusterRole \"{role_name}\" to {}",
                text(&binding["metadata"]["name"]),
                describe(subject, "")
            );
        }
    }
    if info.namespace.is_empty() {
        return String::new();
    }
    for binding in &policy.role_bindings {
        let namespace = text(&binding["metadata"]["namespace"]);
        if namespace != info.namespace {
            continue;
        }
        let Some(subject) = binding["subjects"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .find(|s| rbac::subject_matches(s, user, &namespace))
        else {
            continue;
        };
        let role = &binding["roleRef"];
        let (kind, role_name) = (text(&role["kind"]), text(&role["name"]));
        let allows = match kind.as_str() {
            "ClusterRole" => rbac::cluster_role_rules(&policy, &role_name)
                .iter()
                .any(|r| rbac::rule_allows(r, info)),
            "Role" => policy
                .roles
                .iter()
                .filter(|r| {
                    text(&r["metadata"]["name"]) == role_name
                        && text(&r["metadata"]["namespace"]) == namespace
                })
                .flat_map(|r| r["rules"].as_array().unwrap_or(&empty).iter())
                .any(|r| rbac::rule_allows(r, info)),
            _ => false,
        };
        if allows {
            return format!(
                "RBAC: allowed by RoleBinding \"{}/{namespace}\" of {kind} \"{role_name}\" to {}",
                text(&binding["metadata"]["name"]),
                describe(subject, &namespace)
            );
        }
    }
    String::new()
}

/// The request object and annotations the serving code left in the scope.
fn self_scope(record: &Record) -> Option<(Option<Value>, BTreeMap<String, String>)> {
    let scope = record.scope.lock().ok()?;
    Some((scope.request_object.clone(), scope.annotations.clone()))
}

fn now_micro() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    now.format(&format).unwrap_or_default()
}

/// RFC 3339 with microseconds, as audit timestamps are written.
pub fn timestamp() -> String {
    now_micro()
}

impl LogFile {
    fn open(&mut self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.max_bytes > 0 && self.size + line.len() as u64 > self.max_bytes && self.size > 0 {
            self.rotate()?;
        }
        if self.file.is_none() {
            self.open()?;
        }
        if let Some(file) = self.file.as_mut() {
            file.write_all(line)?;
        }
        self.size += line.len() as u64;
        Ok(())
    }

    /// `audit.log` becomes `audit-<timestamp>.log`; the oldest backups
    /// beyond the limit are removed.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let stem = self
            .path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("audit")
            .to_string();
        let ext = self
            .path
            .extension()
            .and_then(|s| s.to_str())
            .map(|e| format!(".{e}"))
            .unwrap_or_default();
        let stamp = time::OffsetDateTime::now_utc();
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]-[minute]-[second].[subsecond digits:9]"
        );
        let backup = self.path.with_file_name(format!(
            "{stem}-{}{ext}",
            stamp.format(&format).unwrap_or_default()
        ));
        std::fs::rename(&self.path, &backup)?;
        if self.max_backups > 0 {
            let dir = self.path.parent().unwrap_or(Path::new("."));
            let prefix = format!("{stem}-");
            let mut backups: Vec<PathBuf> = std::fs::read_dir(dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(&ext))
                })
                .collect();
            backups.sort();
            while backups.len() > self.max_backups {
                let oldest = backups.remove(0);
                let _ = std::fs::remove_file(oldest);
            }
        }
        self.open()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(verb: &str, group: &str, resource: &str, namespace: &str) -> RequestInfo {
        RequestInfo {
            is_resource_request: true,
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            ..Default::default()
        }
    }

    const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    users: ["system:kube-scheduler"]
  - level: RequestResponse
    resources:
      - group: ""
        resources: ["secrets"]
  - level: Request
    verbs: ["create", "update"]
    namespaces: ["prod"]
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz"]
  - level: Metadata
"#;

    #[test]
    fn the_first_matching_rule_decides_the_level() {
        let policy = Policy::parse(POLICY).unwrap();
        let alice = UserInfo {
            name: "alice".into(),
            ..Default::default()
        };
        let scheduler = UserInfo {
            name: "system:kube-scheduler".into(),
            ..Default::default()
        };
        assert_eq!(
            policy
                .evaluate(&scheduler, &info("get", "", "secrets", "a"))
                .0,
            Level::None
        );
        assert_eq!(
            policy.evaluate(&alice, &info("get", "", "secrets", "a")).0,
            Level::RequestResponse
        );
        assert_eq!(
            policy
                .evaluate(&alice, &info("create", "apps", "deployments", "prod"))
                .0,
            Level::Request
        );
        assert_eq!(
            policy
                .evaluate(&alice, &info("create", "apps", "deployments", "dev"))
                .0,
            Level::Metadata
        );
        let health = RequestInfo {
            verb: "get".into(),
            path: "/healthz/ping".into(),
            ..Default::default()
        };
        assert_eq!(policy.evaluate(&alice, &health).0, Level::None);
        let (_, omit) = policy.evaluate(&alice, &info("list", "", "pods", "a"));
        assert_eq!(omit, ["RequestReceived"]);
    }

    #[test]
    fn policies_must_be_audit_policies_without_unknown_fields() {
        assert!(Policy::parse("apiVersion: v1\nkind: ConfigMap\n").is_err());
        assert!(Policy::parse(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Metadata, colour: red}]\n"
        )
        .is_err());
        assert!(Policy::parse(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Loud}]\n"
        )
        .is_err());
    }

    #[test]
    fn the_log_rotates_by_size_and_keeps_the_newest_backups() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogFile {
            path: dir.path().join("audit.log"),
            file: None,
            size: 0,
            max_bytes: 100,
            max_backups: 2,
        };
        log.open().unwrap();
        for _ in 0..10 {
            log.write(&[b'x'; 60]).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(
            std::fs::metadata(dir.path().join("audit.log"))
                .unwrap()
                .len()
                <= 100
        );
    }

    #[tokio::test]
    async fn serving_code_reaches_the_current_requests_event_only_at_its_level() {
        // Outside a request: nothing happens, nothing panics.
        add_annotation("example.com/a", "1");
        log_request_body("application/json", b"{}");
        assert_eq!(current_level(), Level::None);

        let scope = ScopeHandle::default();
        scope.lock().unwrap().level = Level::Metadata;
        run_in_scope(scope.clone(), async {
            add_annotation("example.com/a", "first");
            add_annotation("example.com/a", "second");
            log_request_body("application/json", br#"{"kind":"ConfigMap"}"#);
        })
        .await;
        {
            let seen = scope.lock().unwrap();
            assert_eq!(seen.annotations["example.com/a"], "first");
            assert!(seen.request_object.is_none(), "Metadata logs no body");
        }

        let scope = ScopeHandle::default();
        scope.lock().unwrap().level = Level::Request;
        run_in_scope(scope.clone(), async {
            log_request_body(
                "application/yaml",
                b"kind: ConfigMap\nmetadata: {name: c}\n",
            );
            log_request_body("application/json", b"not json at all");
        })
        .await;
        let seen = scope.lock().unwrap();
        assert_eq!(
            seen.request_object.as_ref().unwrap()["metadata"]["name"],
            "c"
        );
    }
}
