//! PodSecurity admission, as upstream's built-in plugin: the Pod Security
//! Standards (`privileged`, `baseline`, `restricted`) chosen per namespace
//! by the labels `pod-security.kubernetes.io/enforce|audit|warn` (and their
//! `-version`, `latest` or `v1.N`).
//!
//! - Pods: `enforce` refuses a violating pod (403), `warn` adds `Warning:`
//!   headers, `audit` adds the `pod-security.kubernetes.io/audit-violations`
//!   annotation to the request's audit event (and every evaluated pod gets
//!   `pod-security.kubernetes.io/enforce-policy`). Updates are checked only
//!   when significant (upstream's rule: images, the number of containers,
//!   added ephemeral containers, seccomp annotations).
//! - Workloads with pod templates (Deployment, ReplicaSet, StatefulSet,
//!   DaemonSet, Job, CronJob, ReplicationController, PodTemplate): `warn`
//!   and `audit` only, never refused.
//! - Namespaces: invalid labels are refused (422); setting or tightening
//!   `enforce` warns about the existing pods that would violate it.
//!
//! Violations are listed in upstream's check order with upstream's text.
//! Deviation: every `-version` is evaluated with the latest checks (the
//! version is only reported), and AppArmor, SELinux, sysctls and Windows
//! host-process checks are not implemented.

use std::collections::BTreeMap;

use apimachinery::status::StatusCause;
use apimachinery::{meta, ApiError};
use serde_json::Value;

use crate::registry::Strategy;
use crate::ApiServer;

/// The checks of the baseline level (also part of restricted).
fn baseline(pod: &Value) -> Vec<String> {
    let spec = &pod["spec"];
    let mut out = Vec::new();
    let host: Vec<&str> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|k| spec[*k].as_bool() == Some(true))
        .collect();
    if !host.is_empty() {
        out.push(format!(
            "host namespaces ({})",
            host.iter()
                .map(|h| format!("{h}=true"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let containers = all_containers(spec);
    let privileged: Vec<&str> = containers
        .iter()
        .filter(|c| c["securityContext"]["privileged"].as_bool() == Some(true))
        .map(|c| name(c))
        .collect();
    if !privileged.is_empty() {
        out.push(format!(
            "privileged ({} must not set securityContext.privileged=true)",
            quoted_containers(&privileged)
        ));
    }
    const BASELINE_CAPS: &[&str] = &[
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    ];
    let mut bad_caps: Vec<String> = Vec::new();
    let mut cap_containers: Vec<&str> = Vec::new();
    for c in &containers {
        for cap in strings(&c["securityContext"]["capabilities"]["add"]) {
            if !BASELINE_CAPS.contains(&cap.as_str()) {
                if !bad_caps.contains(&cap) {
                    bad_caps.push(cap);
                }
                if !cap_containers.contains(&name(c)) {
                    cap_containers.push(name(c));
                }
            }
        }
    }
    if !bad_caps.is_empty() {
        out.push(format!(
            "non-default capabilities ({} must not include {} in securityContext.capabilities.add)",
            quoted_containers(&cap_containers),
            bad_caps
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let host_paths: Vec<&str> = array(&spec["volumes"])
        .iter()
        .filter(|v| v.get("hostPath").is_some())
        .map(name)
        .collect();
    if !host_paths.is_empty() {
        out.push(format!(
            "hostPath volumes ({} {})",
            if host_paths.len() == 1 {
                "volume"
            } else {
                "volumes"
            },
            host_paths
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut ports: Vec<String> = Vec::new();
    let mut port_containers: Vec<&str> = Vec::new();
    for c in &containers {
        for p in array(&c["ports"]) {
            if let Some(hp) = p["hostPort"].as_i64().filter(|p| *p != 0) {
                ports.push(hp.to_string());
                if !port_containers.contains(&name(c)) {
                    port_containers.push(name(c));
                }
            }
        }
    }
    if !ports.is_empty() {
        out.push(format!(
            "hostPort ({} uses {} {})",
            quoted_containers(&port_containers),
            if ports.len() == 1 {
                "hostPort"
            } else {
                "hostPorts"
            },
            ports.join(", ")
        ));
    }
    let unconfined = |v: &Value| v["seccompProfile"]["type"].as_str() == Some("Unconfined");
    if unconfined(&spec["securityContext"])
        || containers.iter().any(|c| unconfined(&c["securityContext"]))
    {
        out.push("seccompProfile (pod or containers must not set securityContext.seccompProfile.type to \"Unconfined\")".into());
    }
    let proc_mount: Vec<&str> = containers
        .iter()
        .filter(|c| {
            c["securityContext"]["procMount"]
                .as_str()
                .is_some_and(|p| p != "Default")
        })
        .map(|c| name(c))
        .collect();
    if !proc_mount.is_empty() {
        out.push(format!(
            "procMount ({} must not set securityContext.procMount to \"Unmasked\")",
            quoted_containers(&proc_mount)
        ));
    }
    out
}

/// The additional checks of the restricted level.
fn restricted(pod: &Value) -> Vec<String> {
    let spec = &pod["spec"];
    let containers = all_containers(spec);
    let mut out = Vec::new();
    const ALLOWED_VOLUMES: &[&str] = &[
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    let restricted_volumes: Vec<String> = array(&spec["volumes"])
        .iter()
        .filter_map(|v| {
            let kind = v.as_object()?.keys().find(|k| *k != "name")?.clone();
            (!ALLOWED_VOLUMES.contains(&kind.as_str()))
                .then(|| format!("{:?} uses restricted volume type {kind:?}", name(v)))
        })
        .collect();
    if !restricted_volumes.is_empty() {
        out.push(format!(
            "restricted volume types (volume {})",
            restricted_volumes.join(", ")
        ));
    }
    let escalation: Vec<&str> = containers
        .iter()
        .filter(|c| c["securityContext"]["allowPrivilegeEscalation"].as_bool() != Some(false))
        .map(|c| name(c))
        .collect();
    if !escalation.is_empty() {
        out.push(format!(
            "allowPrivilegeEscalation != false ({} must set securityContext.allowPrivilegeEscalation=false)",
            quoted_containers(&escalation)
        ));
    }
    let undropped: Vec<&str> = containers
        .iter()
        .filter(|c| {
            !strings(&c["securityContext"]["capabilities"]["drop"])
                .iter()
                .any(|d| d == "ALL")
        })
        .map(|c| name(c))
        .collect();
    let added: Vec<&str> = containers
        .iter()
        .filter(|c| {
            strings(&c["securityContext"]["capabilities"]["add"])
                .iter()
                .any(|a| a != "NET_BIND_SERVICE")
        })
        .map(|c| name(c))
        .collect();
    if !undropped.is_empty() || !added.is_empty() {
        let mut parts = Vec::new();
        if !undropped.is_empty() {
            parts.push(format!(
                "{} must set securityContext.capabilities.drop=[\"ALL\"]",
                quoted_containers(&undropped)
            ));
        }
        if !added.is_empty() {
            parts.push(format!(
                "{} must not include capabilities other than \"NET_BIND_SERVICE\" in securityContext.capabilities.add",
                quoted_containers(&added)
            ));
        }
        out.push(format!("unrestricted capabilities ({})", parts.join("; ")));
    }
    let pod_non_root = spec["securityContext"]["runAsNonRoot"].as_bool();
    let not_non_root: Vec<&str> = containers
        .iter()
        .filter(|c| {
            let own = c["securityContext"]["runAsNonRoot"].as_bool();
            own == Some(false) || (own.is_none() && pod_non_root != Some(true))
        })
        .map(|c| name(c))
        .collect();
    if !not_non_root.is_empty() {
        out.push(if pod_non_root == Some(true) {
            format!(
                "runAsNonRoot != true ({} must not set securityContext.runAsNonRoot=false)",
                quoted_containers(&not_non_root)
            )
        } else {
            format!(
                "runAsNonRoot != true (pod or {} must set securityContext.runAsNonRoot=true)",
                quoted_containers(&not_non_root)
            )
        });
    }
    let root_user = spec["securityContext"]["runAsUser"].as_i64() == Some(0)
        || containers
            .iter()
            .any(|c| c["securityContext"]["runAsUser"].as_i64() == Some(0));
    if root_user {
        out.push("runAsUser=0 (pod and containers must not set runAsUser=0)".into());
    }
    let good_profile = |v: &Value| {
        matches!(
            v["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault" | "Localhost")
        )
    };
    let pod_profile = good_profile(&spec["securityContext"]);
    let missing: Vec<&str> = containers
        .iter()
        .filter(|c| !pod_profile && !good_profile(&c["securityContext"]))
        .map(|c| name(c))
        .collect();
    if !missing.is_empty() {
        out.push(format!(
            "seccompProfile (pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
            quoted_containers(&missing)
        ));
    }
    out
}

/// Upstream runs its checks in the order of their IDs
/// (`allowPrivilegeEscalation`, `capabilities_baseline`, ...); a
/// violation's reason (its text before the details) names its check.
fn check_rank(violation: &str) -> usize {
    const ORDER: &[&str] = &[
        "allowPrivilegeEscalation != false",
        "non-default capabilities",
        "unrestricted capabilities",
        "host namespaces",
        "hostPath volumes",
        "hostPort",
        "privileged",
        "procMount",
        "restricted volume types",
        "runAsNonRoot != true",
        "runAsUser=0",
        "seccompProfile",
    ];
    let reason = reason_of(violation);
    ORDER
        .iter()
        .position(|r| *r == reason)
        .unwrap_or(ORDER.len())
}

/// `hostPort (container "c" uses hostPort 80)` -> `hostPort`.
fn reason_of(violation: &str) -> &str {
    violation.split(" (").next().unwrap_or(violation)
}

/// Violations of `level` (`privileged`, `baseline`, `restricted`), each
/// `reason (details)`, in upstream's order.
pub fn violations(level: &str, pod: &Value) -> Vec<String> {
    let mut found = match level {
        "baseline" => baseline(pod),
        "restricted" => {
            // Restricted's volume and seccomp checks replace baseline's.
            let mut v: Vec<String> = baseline(pod)
                .into_iter()
                .filter(|v| !matches!(reason_of(v), "hostPath volumes" | "seccompProfile"))
                .collect();
            v.extend(restricted(pod));
            v
        }
        _ => Vec::new(),
    };
    found.sort_by_key(|v| check_rank(v));
    found
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// One mode's `level:version` (`restricted:latest`, `baseline:v1.29`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct LevelVersion {
    level: Level,
    version: String,
}

impl std::fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.level.as_str(), self.version)
    }
}

/// The policy of a namespace: what is enforced, audited and warned about.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Policy {
    enforce: LevelVersion,
    audit: LevelVersion,
    warn: LevelVersion,
}

impl Policy {
    fn fully_privileged(&self) -> bool {
        [&self.enforce, &self.audit, &self.warn]
            .iter()
            .all(|lv| lv.level == Level::Privileged)
    }
}

const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";

/// Upstream's `PolicyToEvaluate`: the labels over the defaults
/// (`privileged:latest`), and a field error per invalid label. An invalid
/// level counts as `restricted` (fail closed), an invalid version as
/// `latest`. `warn` follows an explicit, stricter `enforce` unless set.
fn policy_from_labels(labels: &BTreeMap<String, String>) -> (Policy, Vec<StatusCause>) {
    let mut errors = Vec::new();
    let mut invalid = |label: &str, value: &str, why: &str| {
        errors.push(StatusCause::invalid(
            &format!("metadata.labels[{label}]"),
            &Value::String(value.to_string()),
            why,
        ));
    };
    let mut mode = |mode: &str| {
        let level_label = format!("{LABEL_PREFIX}{mode}");
        let version_label = format!("{LABEL_PREFIX}{mode}-version");
        let level = match labels.get(&level_label).map(String::as_str) {
            None => None,
            Some("privileged") => Some(Level::Privileged),
            Some("baseline") => Some(Level::Baseline),
            Some("restricted") => Some(Level::Restricted),
            Some(other) => {
                invalid(
                    &level_label,
                    other,
                    "must be one of privileged, baseline, restricted",
                );
                Some(Level::Restricted)
            }
        };
        let version = labels.get(&version_label).map(|v| {
            if valid_version(v) {
                v.clone()
            } else {
                invalid(&version_label, v, r#"must be "latest" or "v1.x""#);
                "latest".to_string()
            }
        });
        (level, version)
    };
    let (enforce_level, enforce_version) = mode("enforce");
    let (audit_level, audit_version) = mode("audit");
    let (warn_level, warn_version) = mode("warn");
    let lv = |level: Option<Level>, version: Option<String>| LevelVersion {
        level: level.unwrap_or(Level::Privileged),
        version: version.unwrap_or_else(|| "latest".into()),
    };
    let enforce_valid = labels
        .get(&format!("{LABEL_PREFIX}enforce"))
        .is_some_and(|l| matches!(l.as_str(), "privileged" | "baseline" | "restricted"));
    let mut policy = Policy {
        enforce: lv(enforce_level, enforce_version.clone()),
        audit: lv(audit_level, audit_version),
        warn: lv(warn_level, warn_version.clone()),
    };
    if warn_level.is_none() && enforce_valid && policy.enforce.level > policy.warn.level {
        policy.warn.level = policy.enforce.level;
        if warn_version.is_none() {
            policy.warn.version = policy.enforce.version.clone();
        }
    }
    (policy, errors)
}

/// `latest` or `v1.N` (N without leading zeros).
fn valid_version(version: &str) -> bool {
    if version == "latest" {
        return true;
    }
    let Some(minor) = version.strip_prefix("v1.") else {
        return false;
    };
    !minor.is_empty()
        && minor.bytes().all(|b| b.is_ascii_digit())
        && (minor == "0" || !minor.starts_with('0'))
}

/// Field errors as upstream aggregates them: one alone, several in `[...]`.
fn aggregate(errors: &[StatusCause]) -> String {
    let each: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect();
    if each.len() == 1 {
        each[0].clone()
    } else {
        format!("[{}]", each.join(", "))
    }
}

/// The outcome of evaluating one pod spec against a namespace's policy.
#[derive(Debug, Default, PartialEq)]
struct Evaluation {
    /// Set when `enforce` refuses: the message after `... is forbidden: `.
    refused: Option<String>,
    warnings: Vec<String>,
    /// Audit annotations, keys without the `pod-security.kubernetes.io/`
    /// prefix.
    annotations: Vec<(&'static str, String)>,
}

/// Upstream's `EvaluatePod`. `enforce` is false for workloads: they are
/// only warned and audited about.
fn evaluate(
    policy: &Policy,
    policy_errors: &[StatusCause],
    pod: &Value,
    enforce: bool,
) -> Evaluation {
    let mut out = Evaluation::default();
    if !policy_errors.is_empty() {
        out.annotations.push((
            "error",
            format!("Failed to parse policy: {}", aggregate(policy_errors)),
        ));
    }
    if enforce {
        out.annotations
            .push(("enforce-policy", policy.enforce.to_string()));
        let found = violations(policy.enforce.level.as_str(), pod);
        if !found.is_empty() {
            out.refused = Some(format!(
                "violates PodSecurity \"{}\": {}",
                policy.enforce,
                found.join(", ")
            ));
        }
    }
    let found = violations(policy.audit.level.as_str(), pod);
    if !found.is_empty() {
        out.annotations.push((
            "audit-violations",
            format!(
                "would violate PodSecurity \"{}\": {}",
                policy.audit,
                found.join(", ")
            ),
        ));
    }
    // No warnings on a request that is refused anyway.
    if out.refused.is_none() {
        let found = violations(policy.warn.level.as_str(), pod);
        if !found.is_empty() {
            out.warnings.push(format!(
                "would violate PodSecurity \"{}\": {}",
                policy.warn,
                found.join(", ")
            ));
        }
    }
    out
}

/// What PodSecurity decides for a pod in a namespace with `labels`:
/// Err(message) to refuse, else warnings to send.
pub fn admit(labels: &BTreeMap<String, String>, pod: &Value) -> Result<Vec<String>, String> {
    let (policy, errors) = policy_from_labels(labels);
    let result = evaluate(&policy, &errors, pod, true);
    match result.refused {
        Some(message) => Err(message),
        None => Ok(result.warnings),
    }
}

/// Upstream's `isSignificantPodUpdate`: only these changes of a pod can
/// change its PodSecurity verdict, so only they are evaluated on update.
fn significant_pod_update(pod: &Value, old: &Value) -> bool {
    const POD_SECCOMP: &str = "seccomp.security.alpha.kubernetes.io/pod";
    const CONTAINER_SECCOMP: &str = "container.seccomp.security.alpha.kubernetes.io/";
    let annotation = |obj: &Value, key: &str| {
        obj["metadata"]["annotations"][key]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    if annotation(pod, POD_SECCOMP) != annotation(old, POD_SECCOMP) {
        return true;
    }
    let container_changed = |c: &Value, o: &Value| {
        let key = format!("{CONTAINER_SECCOMP}{}", name(c));
        c["image"] != o["image"] || annotation(pod, &key) != annotation(old, &key)
    };
    for list in ["containers", "initContainers"] {
        let (new, before) = (array(&pod["spec"][list]), array(&old["spec"][list]));
        if new.len() != before.len() {
            return true;
        }
        if new.iter().zip(before).any(|(c, o)| container_changed(c, o)) {
            return true;
        }
    }
    let before = array(&old["spec"]["ephemeralContainers"]);
    array(&pod["spec"]["ephemeralContainers"]).iter().any(|c| {
        match before.iter().find(|o| name(o) == name(c)) {
            None => true,
            Some(o) => container_changed(c, o),
        }
    })
}

/// Where a workload keeps the pod it makes, for the resources upstream's
/// PodSpecExtractor knows; `None` for other resources.
fn pod_template<'a>(group: &str, plural: &str, obj: &'a Value) -> Option<&'a Value> {
    match (group, plural) {
        ("", "podtemplates") => Some(&obj["template"]),
        ("", "replicationcontrollers")
        | ("apps", "replicasets" | "deployments" | "statefulsets" | "daemonsets")
        | ("batch", "jobs") => Some(&obj["spec"]["template"]),
        ("batch", "cronjobs") => Some(&obj["spec"]["jobTemplate"]["spec"]["template"]),
        _ => None,
    }
}

fn array(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    array(v)
        .iter()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

fn name(v: &Value) -> &str {
    v["name"].as_str().unwrap_or("")
}

fn all_containers(spec: &Value) -> Vec<&Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| array(&spec[*k]).iter())
        .collect()
}

fn quoted_containers(names: &[&str]) -> String {
    let list = names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() == 1 {
        format!("container {list}")
    } else {
        format!("containers {list}")
    }
}

/// At most this many existing pods are evaluated when a namespace's
/// `enforce` level tightens (upstream's limit).
const MAX_PODS_TO_CHECK: usize = 3000;

/// The PodSecurity admission step, called on the create and update of a
/// main resource (never a subresource). `old` is the stored object on an
/// update. Warnings go to `warnings`, audit annotations to the request's
/// audit event.
pub fn admission(
    state: &ApiServer,
    strategy: &dyn Strategy,
    obj: &Value,
    old: Option<&Value>,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    let info = strategy.info();
    let (group, plural) = (info.group, info.plural);
    if group.is_empty() && plural == "namespaces" {
        return namespace_admission(state, obj, old, warnings);
    }
    let is_pod = group.is_empty() && plural == "pods";
    let template = if is_pod {
        Some(obj)
    } else {
        pod_template(group, plural, obj)
    };
    let Some(pod) = template.filter(|t| t.is_object()) else {
        return Ok(());
    };
    let namespace = meta::namespace(obj);
    let Some(ns) = crate::authn::service_account::cached(state, "", "namespaces", "", namespace)
    else {
        return Ok(());
    };
    let (policy, errors) = policy_from_labels(&apimachinery::selector::labels_of(&ns));
    if is_pod {
        if errors.is_empty() && policy.fully_privileged() {
            annotate("enforce-policy", policy.enforce.to_string());
            return Ok(());
        }
        if old.is_some_and(|old| !significant_pod_update(obj, old)) {
            return Ok(());
        }
    } else if errors.is_empty()
        && policy.warn.level == Level::Privileged
        && policy.audit.level == Level::Privileged
    {
        return Ok(());
    }
    let result = evaluate(&policy, &errors, pod, is_pod);
    for (key, value) in result.annotations {
        annotate(key, value);
    }
    if let Some(message) = result.refused {
        return Err(ApiError::forbidden_message(format!(
            "{plural} \"{}\" is forbidden: {message}",
            meta::name(obj)
        )));
    }
    warnings.extend(result.warnings);
    Ok(())
}

fn annotate(key: &str, value: String) {
    crate::audit::add_annotation(&format!("{LABEL_PREFIX}{key}"), value);
}

/// Upstream's `ValidateNamespace`: invalid labels are refused (on create,
/// and on update when the errors changed); an update that tightens
/// `enforce` warns about the existing pods that would now be refused.
fn namespace_admission(
    state: &ApiServer,
    namespace: &Value,
    old: Option<&Value>,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    let (policy, errors) = policy_from_labels(&apimachinery::selector::labels_of(namespace));
    let invalid = || ApiError::invalid("Namespace", "", meta::name(namespace), errors.clone());
    let Some(old) = old else {
        return if errors.is_empty() {
            Ok(())
        } else {
            Err(invalid())
        };
    };
    let (old_policy, old_errors) = policy_from_labels(&apimachinery::selector::labels_of(old));
    if !errors.is_empty() && (old_errors.is_empty() || errors != old_errors) {
        return Err(invalid());
    }
    let (new, before) = (&policy.enforce, &old_policy.enforce);
    if new == before
        || new.level == Level::Privileged
        || (new.version == before.version && new.level <= before.level)
    {
        return Ok(());
    }
    warnings.extend(existing_pod_warnings(state, meta::name(namespace), new));
    Ok(())
}

/// Upstream's `EvaluatePodsInNamespace`: one line naming the new level,
/// then one per distinct set of violated checks, led by the first pod's
/// name (and how many others share it), sorted.
fn existing_pod_warnings(
    state: &ApiServer,
    namespace: &str,
    enforce: &LevelVersion,
) -> Vec<String> {
    let Some(pods) = state.registry.lookup("", "v1", "pods") else {
        return Vec::new();
    };
    let mut pods = state.cache.list_now(&pods.info().list_prefix(namespace));
    let total = pods.len();
    pods.truncate(MAX_PODS_TO_CHECK);
    // reasons -> (alphabetically first pod, how many pods)
    let mut by_reasons: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for pod in &pods {
        let found = violations(enforce.level.as_str(), pod);
        if found.is_empty() {
            continue;
        }
        let reasons = found
            .iter()
            .map(|v| reason_of(v))
            .collect::<Vec<_>>()
            .join(", ");
        let pod_name = meta::name(pod).to_string();
        let entry = by_reasons.entry(reasons).or_insert((pod_name.clone(), 0));
        if pod_name < entry.0 {
            entry.0 = pod_name;
        }
        entry.1 += 1;
    }
    let mut out = Vec::new();
    if pods.len() < total {
        out.push(format!(
            "new PodSecurity enforce level only checked against the first {} of {total} existing pods",
            pods.len()
        ));
    }
    if by_reasons.is_empty() {
        return out;
    }
    out.push(format!(
        "existing pods in namespace {namespace:?} violate the new PodSecurity enforce level \"{enforce}\""
    ));
    let mut lines: Vec<String> = by_reasons
        .into_iter()
        .map(|(reasons, (first, count))| match count {
            1 => format!("{first}: {reasons}"),
            2 => format!("{first} (and 1 other pod): {reasons}"),
            n => format!("{first} (and {} other pods): {reasons}", n - 1),
        })
        .collect();
    lines.sort();
    out.extend(lines);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn baseline_refuses_privileged_and_host_access() {
        let pod = json!({"spec": {"hostNetwork": true, "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
            "containers": [{"name": "c", "securityContext": {"privileged": true}, "ports": [{"containerPort": 80, "hostPort": 8080}]}]}});
        let v = violations("baseline", &pod);
        assert_eq!(v.len(), 4, "{v:?}");
        assert!(v[0].starts_with("host namespaces (hostNetwork=true)"));
        assert_eq!(v[1], "hostPath volumes (volume \"h\")");
        assert_eq!(v[2], "hostPort (container \"c\" uses hostPort 8080)");
        assert_eq!(
            v[3],
            "privileged (container \"c\" must not set securityContext.privileged=true)"
        );
        assert!(violations("privileged", &pod).is_empty());
    }

    #[test]
    fn restricted_needs_the_hardened_security_context() {
        let plain = json!({"spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        let v = violations("restricted", &plain);
        assert_eq!(v.len(), 4, "{v:?}");
        assert_eq!(v[0], "allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false)");
        let hardened = json!({"spec": {"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}});
        assert!(violations("restricted", &hardened).is_empty());
        let err = admit(
            &labels(&[("pod-security.kubernetes.io/enforce", "restricted")]),
            &plain,
        )
        .unwrap_err();
        assert!(
            err.starts_with(
                "violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"
            ),
            "{err}"
        );
        let warned = admit(
            &labels(&[("pod-security.kubernetes.io/warn", "restricted")]),
            &plain,
        )
        .unwrap();
        assert_eq!(warned.len(), 1);
        assert!(admit(&labels(&[]), &plain).unwrap().is_empty());
    }

    #[test]
    fn labels_parse_as_upstream_with_warn_following_a_stricter_enforce() {
        let (policy, errors) = policy_from_labels(&labels(&[
            ("pod-security.kubernetes.io/enforce", "baseline"),
            ("pod-security.kubernetes.io/enforce-version", "v1.29"),
            ("pod-security.kubernetes.io/audit", "restricted"),
        ]));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(policy.enforce.to_string(), "baseline:v1.29");
        assert_eq!(policy.warn.to_string(), "baseline:v1.29");
        assert_eq!(policy.audit.to_string(), "restricted:latest");

        let (policy, errors) = policy_from_labels(&labels(&[
            ("pod-security.kubernetes.io/enforce", "foo"),
            ("pod-security.kubernetes.io/warn-version", "1.29"),
        ]));
        assert_eq!(
            aggregate(&errors),
            format!(
                "[{}, {}]",
                r#"metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "foo": must be one of privileged, baseline, restricted"#,
                r#"metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: "1.29": must be "latest" or "v1.x""#,
            )
        );
        // Fail closed.
        assert_eq!(policy.enforce.level, Level::Restricted);
        for (version, ok) in [
            ("latest", true),
            ("v1.0", true),
            ("v1.33", true),
            ("v1.033", false),
            ("v2.1", false),
            ("v1.", false),
        ] {
            assert_eq!(valid_version(version), ok, "{version}");
        }
    }

    #[test]
    fn violations_come_in_upstreams_check_order() {
        let pod = json!({"spec": {"hostNetwork": true,
            "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
            "containers": [{"name": "c", "securityContext": {"privileged": true}}]}});
        let found = violations("restricted", &pod);
        let reasons: Vec<&str> = found.iter().map(|v| reason_of(v)).collect();
        assert_eq!(
            reasons,
            [
                "allowPrivilegeEscalation != false",
                "unrestricted capabilities",
                "host namespaces",
                "privileged",
                "restricted volume types",
                "runAsNonRoot != true",
                "seccompProfile"
            ]
        );
        assert!(found.contains(
            &r#"restricted volume types (volume "h" uses restricted volume type "hostPath")"#
                .to_string()
        ));
        let baseline: Vec<String> = violations("baseline", &pod)
            .iter()
            .map(|v| reason_of(v).to_string())
            .collect();
        assert_eq!(
            baseline,
            ["host namespaces", "hostPath volumes", "privileged"]
        );
    }

    #[test]
    fn only_significant_pod_updates_are_evaluated() {
        let pod = json!({"metadata": {"labels": {"a": "1"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}});
        let mut relabelled = pod.clone();
        relabelled["metadata"]["labels"]["a"] = json!("2");
        relabelled["spec"]["activeDeadlineSeconds"] = json!(5);
        assert!(!significant_pod_update(&relabelled, &pod));
        let mut new_image = pod.clone();
        new_image["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert!(significant_pod_update(&new_image, &pod));
        let mut debugged = pod.clone();
        debugged["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox"}]);
        assert!(significant_pod_update(&debugged, &pod));
        let mut seccomp = pod.clone();
        seccomp["metadata"]["annotations"] =
            json!({"seccomp.security.alpha.kubernetes.io/pod": "unconfined"});
        assert!(significant_pod_update(&seccomp, &pod));
    }

    #[test]
    fn workloads_are_warned_and_audited_but_never_refused() {
        let cronjob = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec":
            {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": true}}]}}}}}});
        let template = pod_template("batch", "cronjobs", &cronjob).unwrap();
        let (policy, errors) = policy_from_labels(&labels(&[
            ("pod-security.kubernetes.io/enforce", "baseline"),
            ("pod-security.kubernetes.io/audit", "restricted"),
        ]));
        let result = evaluate(&policy, &errors, template, false);
        assert_eq!(result.refused, None);
        assert_eq!(
            result.warnings,
            [
                r#"would violate PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)"#
            ]
        );
        assert_eq!(result.annotations.len(), 1);
        assert_eq!(result.annotations[0].0, "audit-violations");
        assert!(result.annotations[0].1.starts_with(
            r#"would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false"#
        ));
        // The same template as a pod is refused, with the enforced policy
        // annotated and no warning.
        let result = evaluate(&policy, &errors, template, true);
        assert!(result.refused.is_some());
        assert!(result.warnings.is_empty());
        assert_eq!(
            result.annotations[0],
            ("enforce-policy", "baseline:latest".to_string())
        );
        assert_eq!(pod_template("", "configmaps", &cronjob), None);
    }
}
