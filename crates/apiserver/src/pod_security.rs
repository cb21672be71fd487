//! PodSecurity admission: the Pod Security Standards (`privileged`,
//! `baseline`, `restricted`) chosen per namespace by the labels
//! `pod-security.kubernetes.io/enforce|audit|warn`. `enforce` refuses a
//! violating pod (403, upstream's message shape), `warn` adds `Warning:`
//! headers; `audit` annotations are not written yet. Checked on pod
//! create, as upstream checks pods (workload templates get warnings only
//! upstream; here they are not checked).

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
            (!ALLOWED_VOLUMES.contains(&kind.as_str()) && kind != "hostPath")
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

/// Violations of `level` (`privileged`, `baseline`, `restricted`).
pub fn violations(level: &str, pod: &Value) -> Vec<String> {
    match level {
        "baseline" => baseline(pod),
        "restricted" => {
            let mut v = baseline(pod);
            v.extend(restricted(pod));
            v
        }
        _ => Vec::new(),
    }
}

/// What PodSecurity decides for a pod in a namespace with `labels`:
/// Err(message) to refuse, else warnings to send.
pub fn admit(
    labels: &std::collections::BTreeMap<String, String>,
    pod: &Value,
) -> Result<Vec<String>, String> {
    let level = |mode: &str| {
        labels
            .get(&format!("pod-security.kubernetes.io/{mode}"))
            .cloned()
            .unwrap_or_else(|| "privileged".into())
    };
    let version = |mode: &str| {
        labels
            .get(&format!("pod-security.kubernetes.io/{mode}-version"))
            .cloned()
            .unwrap_or_else(|| "latest".into())
    };
    let enforce = level("enforce");
    let found = violations(&enforce, pod);
    if !found.is_empty() {
        return Err(format!(
            "violates PodSecurity \"{enforce}:{}\": {}",
            version("enforce"),
            found.join(", ")
        ));
    }
    let warn = level("warn");
    let found = violations(&warn, pod);
    if found.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![format!(
        "would violate PodSecurity \"{warn}:{}\": {}",
        version("warn"),
        found.join(", ")
    )])
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

/// PodSecurity on a new pod: its namespace's `pod-security.kubernetes.io`
/// labels choose the level enforced (403) and warned about. `old` is the
/// stored object on an update (updates are not checked yet).
pub fn admission(
    state: &ApiServer,
    strategy: &dyn Strategy,
    pod: &Value,
    old: Option<&Value>,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    let info = strategy.info();
    if old.is_some() || !(info.group.is_empty() && info.plural == "pods") {
        return Ok(());
    }
    let namespace = meta::namespace(pod);
    let Some(ns) = crate::authn::service_account::cached(state, "", "namespaces", "", namespace)
    else {
        return Ok(());
    };
    let labels = apimachinery::selector::labels_of(&ns);
    match admit(&labels, pod) {
        Ok(found) => {
            warnings.extend(found);
            Ok(())
        }
        Err(message) => Err(ApiError::forbidden_message(format!(
            "pods \"{}\" is forbidden: {message}",
            meta::name(pod)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
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
        assert_eq!(
            v[1],
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
}
