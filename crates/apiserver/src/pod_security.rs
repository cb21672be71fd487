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
//! The checks themselves live in [`checks`]: upstream's, versioned (a
//! `-version` label evaluates that version's checks, `latest` and newer
//! versions the v1.33 ones), in upstream's order and words.

use std::collections::BTreeMap;

use apimachinery::status::StatusCause;
use apimachinery::{meta, ApiError};
use serde_json::Value;

use crate::registry::Strategy;
use crate::ApiServer;

mod checks;

pub use checks::Violation;

/// Violations of `level` (`privileged`, `baseline`, `restricted`) at the
/// latest policy version, each `reason (details)`, in upstream's order.
pub fn violations(level: &str, pod: &Value) -> Vec<String> {
    let level = match level {
        "baseline" => Level::Baseline,
        "restricted" => Level::Restricted,
        _ => Level::Privileged,
    };
    let latest = LevelVersion {
        level,
        version: "latest".into(),
    };
    check(&latest, pod)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// The checks of one `level:version` on a pod or pod template.
fn check(policy: &LevelVersion, pod: &Value) -> Vec<Violation> {
    let minor = policy
        .version
        .strip_prefix("v1.")
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(checks::LATEST_MINOR);
    match policy.level {
        Level::Privileged => Vec::new(),
        Level::Baseline => checks::evaluate(false, minor, pod),
        Level::Restricted => checks::evaluate(true, minor, pod),
    }
}

fn joined(found: &[Violation]) -> String {
    found
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
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
        let found = check(&policy.enforce, pod);
        if !found.is_empty() {
            out.refused = Some(format!(
                "violates PodSecurity \"{}\": {}",
                policy.enforce,
                joined(&found)
            ));
        }
    }
    let found = check(&policy.audit, pod);
    if !found.is_empty() {
        out.annotations.push((
            "audit-violations",
            format!(
                "would violate PodSecurity \"{}\": {}",
                policy.audit,
                joined(&found)
            ),
        ));
    }
    // No warnings on a request that is refused anyway.
    if out.refused.is_none() {
        let found = check(&policy.warn, pod);
        if !found.is_empty() {
            out.warnings.push(format!(
                "would violate PodSecurity \"{}\": {}",
                policy.warn,
                joined(&found)
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

fn name(v: &Value) -> &str {
    v["name"].as_str().unwrap_or("")
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
    let mut cached = state.cache.list_now(&pods.info().list_prefix(namespace));
    let total = cached.len();
    cached.truncate(MAX_PODS_TO_CHECK);
    let pods: Vec<Value> = cached.iter().map(|p| p.decode()).collect();
    // reasons -> (alphabetically first pod, how many pods)
    let mut by_reasons: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for pod in &pods {
        let found = check(enforce, pod);
        if found.is_empty() {
            continue;
        }
        let reasons = found
            .iter()
            .map(|v| v.reason.as_str())
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
            r#"would violate PodSecurity "restricted:latest": privileged (container "c" must not set securityContext.privileged=true), allowPrivilegeEscalation != false"#
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
