//! The Pod Security Standards checks, one function per upstream check ID,
//! each with upstream's reason and detail text. `evaluate` runs the
//! checks of a level at a policy version in upstream's order: baseline
//! checks by ID, then restricted ones by ID, a restricted check replacing
//! the baseline check it overrides.

use serde_json::Value;

/// The newest policy version (`latest`, and any newer `v1.N`).
pub const LATEST_MINOR: u32 = 33;

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: String,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.detail.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{} ({})", self.reason, self.detail)
        }
    }
}

/// The pod (or pod template) under evaluation.
struct Pod<'a> {
    meta: &'a Value,
    spec: &'a Value,
    /// initContainers, containers, then ephemeralContainers.
    containers: Vec<&'a Value>,
    minor: u32,
}

impl Pod<'_> {
    /// Windows pods skip the Linux-only restricted checks from v1.25.
    fn windows_exempt(&self) -> bool {
        self.minor >= 25 && self.spec["os"]["name"] == "windows"
    }
}

struct Check {
    id: &'static str,
    restricted: bool,
    /// The first policy version (`v1.N`) with this check.
    since: u32,
    /// The baseline check this one replaces at the restricted level.
    overrides: Option<&'static str>,
    run: fn(&Pod) -> Option<Violation>,
}

/// Baseline checks by ID, then restricted checks by ID.
const CHECKS: &[Check] = &[
    check("appArmorProfile", false, 0, None, app_armor_profile),
    check(
        "capabilities_baseline",
        false,
        0,
        None,
        capabilities_baseline,
    ),
    check("hostNamespaces", false, 0, None, host_namespaces),
    check("hostPathVolumes", false, 0, None, host_path_volumes),
    check("hostPorts", false, 0, None, host_ports),
    check("privileged", false, 0, None, privileged),
    check("procMount", false, 0, None, proc_mount),
    check("seLinuxOptions", false, 0, None, se_linux_options),
    check("seccompProfile_baseline", false, 0, None, seccomp_baseline),
    check("sysctls", false, 0, None, sysctls),
    check("windowsHostProcess", false, 0, None, windows_host_process),
    check(
        "allowPrivilegeEscalation",
        true,
        8,
        None,
        allow_privilege_escalation,
    ),
    check(
        "capabilities_restricted",
        true,
        22,
        Some("capabilities_baseline"),
        capabilities_restricted,
    ),
    check(
        "restrictedVolumes",
        true,
        0,
        Some("hostPathVolumes"),
        restricted_volumes,
    ),
    check("runAsNonRoot", true, 0, None, run_as_non_root),
    check("runAsUser", true, 23, None, run_as_user),
    check(
        "seccompProfile_restricted",
        true,
        19,
        Some("seccompProfile_baseline"),
        seccomp_restricted,
    ),
];

const fn check(
    id: &'static str,
    restricted: bool,
    since: u32,
    overrides: Option<&'static str>,
    run: fn(&Pod) -> Option<Violation>,
) -> Check {
    Check {
        id,
        restricted,
        since,
        overrides,
        run,
    }
}

/// The violations of `pod` (a Pod or a pod template: `metadata` and
/// `spec`) at the baseline or restricted level of policy version `v1.minor`.
pub fn evaluate(restricted: bool, minor: u32, pod: &Value) -> Vec<Violation> {
    let minor = minor.min(LATEST_MINOR);
    let spec = &pod["spec"];
    let pod = Pod {
        meta: &pod["metadata"],
        spec,
        containers: ["initContainers", "containers", "ephemeralContainers"]
            .iter()
            .flat_map(|k| array(&spec[*k]).iter())
            .collect(),
        minor,
    };
    let active: Vec<&Check> = CHECKS
        .iter()
        .filter(|c| c.since <= minor && (restricted || !c.restricted))
        .collect();
    let overridden: Vec<&str> = active.iter().filter_map(|c| c.overrides).collect();
    active
        .iter()
        .filter(|c| !overridden.contains(&c.id))
        .filter_map(|c| (c.run)(&pod))
        .collect()
}

fn violation(reason: impl Into<String>, detail: impl Into<String>) -> Option<Violation> {
    Some(Violation {
        reason: reason.into(),
        detail: detail.into(),
    })
}

fn array(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn name(v: &Value) -> &str {
    text(&v["name"])
}

/// `"a", "b"`, as upstream quotes lists (no escaping).
fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let inner: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", inner.join("\", \""))
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// `container "a"` / `containers "a", "b"`.
fn containers_phrase(names: &[&str]) -> String {
    format!(
        "{} {}",
        plural(names.len(), "container", "containers"),
        join_quote(names)
    )
}

/// `pod and containers "a", "b" must not ...`.
fn setters(pod: bool, containers: &[&str], suffix: &str) -> String {
    let mut who = Vec::new();
    if pod {
        who.push("pod".to_string());
    }
    if !containers.is_empty() {
        who.push(containers_phrase(containers));
    }
    format!("{}{suffix}", who.join(" and "))
}

fn sorted_unique(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items.dedup();
    items
}

fn app_armor_profile(pod: &Pod) -> Option<Violation> {
    let bad_type = |ctx: &Value| {
        let profile = &ctx["appArmorProfile"];
        (profile.is_object() && !matches!(text(&profile["type"]), "RuntimeDefault" | "Localhost"))
            .then(|| text(&profile["type"]).to_string())
    };
    let mut values = Vec::new();
    let mut who = Vec::new();
    if let Some(t) = bad_type(&pod.spec["securityContext"]) {
        who.push("pod".to_string());
        values.push(t);
    }
    let mut bad = Vec::new();
    for c in &pod.containers {
        if let Some(t) = bad_type(&c["securityContext"]) {
            bad.push(name(c));
            values.push(t);
        }
    }
    if !bad.is_empty() {
        who.push(containers_phrase(&bad));
    }
    let mut values = sorted_unique(values);
    const PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
    let mut annotations: Vec<String> = pod.meta["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| key.starts_with(PREFIX))
        .filter_map(|(key, value)| {
            let value = text(value);
            let allowed =
                value.is_empty() || value == "runtime/default" || value.starts_with("localhost/");
            (!allowed).then(|| format!("{key}={value:?}"))
        })
        .collect();
    if !annotations.is_empty() {
        annotations.sort();
        who.push(plural(annotations.len(), "annotation", "annotations").to_string());
        values.extend(annotations);
    }
    if who.is_empty() {
        return None;
    }
    violation(
        plural(
            values.len(),
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            who.join(" and "),
            join_quote(&values)
        ),
    )
}

const BASELINE_CAPABILITIES: &[&str] = &[
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

/// Containers adding capabilities outside `allowed`, and those
/// capabilities (sorted, once each).
fn added_beyond<'a>(pod: &Pod<'a>, allowed: &[&str]) -> (Vec<&'a str>, Vec<String>) {
    let mut bad = Vec::new();
    let mut caps = Vec::new();
    for c in &pod.containers {
        let extra: Vec<String> = array(&c["securityContext"]["capabilities"]["add"])
            .iter()
            .map(|cap| text(cap).to_string())
            .filter(|cap| !allowed.contains(&cap.as_str()))
            .collect();
        if !extra.is_empty() {
            bad.push(name(c));
            caps.extend(extra);
        }
    }
    (bad, sorted_unique(caps))
}

fn capabilities_baseline(pod: &Pod) -> Option<Violation> {
    let (bad, caps) = added_beyond(pod, BASELINE_CAPABILITIES);
    if bad.is_empty() {
        return None;
    }
    violation(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad),
            join_quote(&caps)
        ),
    )
}

fn host_namespaces(pod: &Pod) -> Option<Violation> {
    let found: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .iter()
        .filter(|k| pod.spec[**k] == true)
        .map(|k| format!("{k}=true"))
        .collect();
    if found.is_empty() {
        return None;
    }
    violation("host namespaces", found.join(", "))
}

fn host_path_volumes(pod: &Pod) -> Option<Violation> {
    let volumes: Vec<&str> = array(&pod.spec["volumes"])
        .iter()
        .filter(|v| !v["hostPath"].is_null())
        .map(name)
        .collect();
    if volumes.is_empty() {
        return None;
    }
    violation(
        "hostPath volumes",
        format!(
            "{} {}",
            plural(volumes.len(), "volume", "volumes"),
            join_quote(&volumes)
        ),
    )
}

fn host_ports(pod: &Pod) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut ports = Vec::new();
    for c in &pod.containers {
        let used: Vec<String> = array(&c["ports"])
            .iter()
            .filter_map(|p| p["hostPort"].as_i64().filter(|p| *p != 0))
            .map(|p| p.to_string())
            .collect();
        if !used.is_empty() {
            bad.push(name(c));
            ports.extend(used);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let ports = sorted_unique(ports);
    violation(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            plural(bad.len(), "uses", "use"),
            plural(ports.len(), "hostPort", "hostPorts"),
            ports.join(", ")
        ),
    )
}

fn privileged(pod: &Pod) -> Option<Violation> {
    let bad: Vec<&str> = pod
        .containers
        .iter()
        .filter(|c| c["securityContext"]["privileged"] == true)
        .map(|c| name(c))
        .collect();
    if bad.is_empty() {
        return None;
    }
    violation(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    )
}

fn proc_mount(pod: &Pod) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = Vec::new();
    for c in &pod.containers {
        let mount = &c["securityContext"]["procMount"];
        if !mount.is_null() && mount != "Default" {
            bad.push(name(c));
            types.push(text(mount).to_string());
        }
    }
    if bad.is_empty() {
        return None;
    }
    violation(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad),
            join_quote(&sorted_unique(types))
        ),
    )
}

fn se_linux_options(pod: &Pod) -> Option<Violation> {
    let mut allowed = vec!["", "container_t", "container_init_t", "container_kvm_t"];
    if pod.minor >= 31 {
        allowed.push("container_engine_t");
    }
    let mut bad_types = Vec::new();
    let (mut user, mut role) = (false, false);
    let mut bad = |options: &Value| {
        if !options.is_object() {
            return false;
        }
        let mut ok = true;
        let kind = text(&options["type"]);
        if !allowed.contains(&kind) {
            bad_types.push(kind.to_string());
            ok = false;
        }
        if !text(&options["user"]).is_empty() {
            user = true;
            ok = false;
        }
        if !text(&options["role"]).is_empty() {
            role = true;
            ok = false;
        }
        !ok
    };
    let pod_bad = bad(&pod.spec["securityContext"]["seLinuxOptions"]);
    let containers: Vec<&str> = pod
        .containers
        .iter()
        .filter(|c| bad(&c["securityContext"]["seLinuxOptions"]))
        .map(|c| name(c))
        .collect();
    if !pod_bad && containers.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    let bad_types = sorted_unique(bad_types);
    if !bad_types.is_empty() {
        data.push(format!(
            "{} {}",
            plural(bad_types.len(), "type", "types"),
            join_quote(&bad_types)
        ));
    }
    if user {
        data.push("user may not be set".to_string());
    }
    if role {
        data.push("role may not be set".to_string());
    }
    violation(
        "seLinuxOptions",
        setters(
            pod_bad,
            &containers,
            &format!(
                " set forbidden securityContext.seLinuxOptions: {}",
                data.join("; ")
            ),
        ),
    )
}

fn valid_seccomp_type(t: &str) -> bool {
    matches!(t, "RuntimeDefault" | "Localhost")
}

/// Who sets a seccomp profile type other than RuntimeDefault/Localhost,
/// and those types.
fn seccomp_bad_setters<'a>(pod: &Pod<'a>) -> (bool, Vec<&'a str>, Vec<String>) {
    let mut values = Vec::new();
    let profile = &pod.spec["securityContext"]["seccompProfile"];
    let pod_bad = profile.is_object() && !valid_seccomp_type(text(&profile["type"]));
    if pod_bad {
        values.push(text(&profile["type"]).to_string());
    }
    let mut containers = Vec::new();
    for c in &pod.containers {
        let profile = &c["securityContext"]["seccompProfile"];
        if profile.is_object() && !valid_seccomp_type(text(&profile["type"])) {
            containers.push(name(c));
            values.push(text(&profile["type"]).to_string());
        }
    }
    (pod_bad, containers, sorted_unique(values))
}

fn seccomp_baseline(pod: &Pod) -> Option<Violation> {
    if pod.minor < 19 {
        // Before v1.19 the profile came from annotations.
        const POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
        const CONTAINER: &str = "container.seccomp.security.alpha.kubernetes.io/";
        let annotations = &pod.meta["annotations"];
        let allowed = |v: &str| {
            v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/")
        };
        let mut keys = vec![POD.to_string()];
        keys.extend(
            pod.containers
                .iter()
                .map(|c| format!("{CONTAINER}{}", name(c))),
        );
        let forbidden: Vec<String> = keys
            .iter()
            .filter_map(|key| {
                let value = annotations.get(key)?.as_str()?;
                (!allowed(value)).then(|| format!("{key}={value:?}"))
            })
            .collect();
        if forbidden.is_empty() {
            return None;
        }
        let forbidden = sorted_unique(forbidden);
        return violation(
            "seccompProfile",
            format!(
                "forbidden {} {}",
                plural(forbidden.len(), "annotation", "annotations"),
                forbidden.join(", ")
            ),
        );
    }
    let (pod_bad, containers, values) = seccomp_bad_setters(pod);
    if !pod_bad && containers.is_empty() {
        return None;
    }
    violation(
        "seccompProfile",
        setters(
            pod_bad,
            &containers,
            &format!(
                " must not set securityContext.seccompProfile.type to {}",
                join_quote(&values)
            ),
        ),
    )
}

fn sysctls(pod: &Pod) -> Option<Violation> {
    let mut allowed = vec![
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    ];
    if pod.minor >= 27 {
        allowed.push("net.ipv4.ip_local_reserved_ports");
    }
    if pod.minor >= 29 {
        allowed.extend([
            "net.ipv4.tcp_keepalive_time",
            "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_keepalive_intvl",
            "net.ipv4.tcp_keepalive_probes",
        ]);
    }
    if pod.minor >= 32 {
        allowed.extend(["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"]);
    }
    let forbidden: Vec<&str> = array(&pod.spec["securityContext"]["sysctls"])
        .iter()
        .map(name)
        .filter(|n| !allowed.contains(n))
        .collect();
    if forbidden.is_empty() {
        return None;
    }
    violation("forbidden sysctls", forbidden.join(", "))
}

fn windows_host_process(pod: &Pod) -> Option<Violation> {
    let host_process = |ctx: &Value| ctx["windowsOptions"]["hostProcess"] == true;
    let pod_bad = host_process(&pod.spec["securityContext"]);
    let containers: Vec<&str> = pod
        .containers
        .iter()
        .filter(|c| host_process(&c["securityContext"]))
        .map(|c| name(c))
        .collect();
    if !pod_bad && containers.is_empty() {
        return None;
    }
    violation(
        "hostProcess",
        setters(
            pod_bad,
            &containers,
            " must not set securityContext.windowsOptions.hostProcess=true",
        ),
    )
}

fn allow_privilege_escalation(pod: &Pod) -> Option<Violation> {
    if pod.windows_exempt() {
        return None;
    }
    let bad: Vec<&str> = pod
        .containers
        .iter()
        .filter(|c| c["securityContext"]["allowPrivilegeEscalation"] != false)
        .map(|c| name(c))
        .collect();
    if bad.is_empty() {
        return None;
    }
    violation(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    )
}

fn capabilities_restricted(pod: &Pod) -> Option<Violation> {
    if pod.windows_exempt() {
        return None;
    }
    let missing_drop: Vec<&str> = pod
        .containers
        .iter()
        .filter(|c| {
            !array(&c["securityContext"]["capabilities"]["drop"])
                .iter()
                .any(|d| d == "ALL")
        })
        .map(|c| name(c))
        .collect();
    let (adding, caps) = added_beyond(pod, &["NET_BIND_SERVICE"]);
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding),
            join_quote(&caps)
        ));
    }
    if details.is_empty() {
        return None;
    }
    violation("unrestricted capabilities", details.join("; "))
}

fn restricted_volumes(pod: &Pod) -> Option<Violation> {
    const ALLOWED: &[&str] = &[
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    const KNOWN: &[&str] = &[
        "hostPath",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "nfs",
        "iscsi",
        "glusterfs",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "fc",
        "azureFile",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "portworxVolume",
        "scaleIO",
        "storageos",
    ];
    let mut bad = Vec::new();
    let mut types = Vec::new();
    for volume in array(&pod.spec["volumes"]) {
        if ALLOWED.iter().any(|k| !volume[*k].is_null()) {
            continue;
        }
        bad.push(name(volume));
        let kind = KNOWN
            .iter()
            .find(|k| !volume[**k].is_null())
            .copied()
            .unwrap_or("unknown");
        types.push(kind.to_string());
    }
    if bad.is_empty() {
        return None;
    }
    let types = sorted_unique(types);
    violation(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            plural(bad.len(), "volume", "volumes"),
            join_quote(&bad),
            plural(bad.len(), "uses", "use"),
            plural(
                types.len(),
                "restricted volume type",
                "restricted volume types"
            ),
            join_quote(&types)
        ),
    )
}

fn run_as_non_root(pod: &Pod) -> Option<Violation> {
    let pod_value = &pod.spec["securityContext"]["runAsNonRoot"];
    let pod_bad = *pod_value == false;
    let pod_non_root = *pod_value == true;
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in &pod.containers {
        let own = &c["securityContext"]["runAsNonRoot"];
        if own.is_boolean() {
            if *own == false {
                explicit.push(name(c));
            }
        } else if !pod_non_root {
            implicit.push(name(c));
        }
    }
    if pod_bad || !explicit.is_empty() {
        return violation(
            "runAsNonRoot != true",
            setters(
                pod_bad,
                &explicit,
                " must not set securityContext.runAsNonRoot=false",
            ),
        );
    }
    if implicit.is_empty() {
        return None;
    }
    violation(
        "runAsNonRoot != true",
        format!(
            "pod or {} must set securityContext.runAsNonRoot=true",
            containers_phrase(&implicit)
        ),
    )
}

fn run_as_user(pod: &Pod) -> Option<Violation> {
    let pod_bad = pod.spec["securityContext"]["runAsUser"] == 0;
    let containers: Vec<&str> = pod
        .containers
        .iter()
        .filter(|c| c["securityContext"]["runAsUser"] == 0)
        .map(|c| name(c))
        .collect();
    if !pod_bad && containers.is_empty() {
        return None;
    }
    violation(
        "runAsUser=0",
        setters(pod_bad, &containers, " must not set runAsUser=0"),
    )
}

fn seccomp_restricted(pod: &Pod) -> Option<Violation> {
    if pod.windows_exempt() {
        return None;
    }
    let (pod_bad, containers, values) = seccomp_bad_setters(pod);
    if pod_bad || !containers.is_empty() {
        return violation(
            "seccompProfile",
            setters(
                pod_bad,
                &containers,
                &format!(
                    " must not set securityContext.seccompProfile.type to {}",
                    join_quote(&values)
                ),
            ),
        );
    }
    let pod_set = pod.spec["securityContext"]["seccompProfile"].is_object();
    let implicit: Vec<&str> = pod
        .containers
        .iter()
        .filter(|c| !pod_set && !c["securityContext"]["seccompProfile"].is_object())
        .map(|c| name(c))
        .collect();
    if implicit.is_empty() {
        return None;
    }
    violation(
        "seccompProfile",
        format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers_phrase(&implicit)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reasons(restricted: bool, minor: u32, pod: &Value) -> Vec<String> {
        evaluate(restricted, minor, pod)
            .into_iter()
            .map(|v| v.reason)
            .collect()
    }

    #[test]
    fn baseline_checks_come_first_and_restricted_ones_replace_what_they_override() {
        let pod = json!({"spec": {"hostNetwork": true,
            "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
            "containers": [{"name": "c", "securityContext": {"privileged": true,
                "capabilities": {"add": ["NET_ADMIN"]}}}]}});
        assert_eq!(
            reasons(false, LATEST_MINOR, &pod),
            [
                "non-default capabilities",
                "host namespaces",
                "hostPath volumes",
                "privileged"
            ]
        );
        assert_eq!(
            reasons(true, LATEST_MINOR, &pod),
            [
                "host namespaces",
                "privileged",
                "allowPrivilegeEscalation != false",
                "unrestricted capabilities",
                "restricted volume types",
                "runAsNonRoot != true",
                "seccompProfile"
            ]
        );
        let found = evaluate(true, LATEST_MINOR, &pod);
        assert_eq!(
            found[3].to_string(),
            r#"unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]; container "c" must not include "NET_ADMIN" in securityContext.capabilities.add)"#
        );
        assert_eq!(
            found[4].to_string(),
            r#"restricted volume types (volume "h" uses restricted volume type "hostPath")"#
        );
        // Before v1.22 there was no restricted capabilities check.
        assert!(reasons(true, 21, &pod).contains(&"non-default capabilities".to_string()));
    }

    #[test]
    fn details_name_the_pod_and_containers_that_set_forbidden_values() {
        let pod = json!({"metadata": {"annotations": {
                "container.apparmor.security.beta.kubernetes.io/a": "unconfined"}},
            "spec": {"securityContext": {"runAsUser": 0, "seccompProfile": {"type": "Unconfined"},
                "sysctls": [{"name": "kernel.msgmax", "value": "1"}, {"name": "net.ipv4.tcp_rmem", "value": "1"}]},
            "containers": [
                {"name": "a", "securityContext": {"runAsUser": 0, "procMount": "Unmasked",
                    "seLinuxOptions": {"type": "spc_t", "user": "root"}},
                 "ports": [{"containerPort": 80, "hostPort": 80}]},
                {"name": "b", "ports": [{"containerPort": 81, "hostPort": 8081}]}]}});
        let found: Vec<String> = evaluate(false, LATEST_MINOR, &pod)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                r#"forbidden AppArmor profile (annotation must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/a="unconfined"")"#,
                r#"hostPort (containers "a", "b" use hostPorts 80, 8081)"#,
                r#"procMount (container "a" must not set securityContext.procMount to "Unmasked")"#,
                r#"seLinuxOptions (container "a" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set)"#,
                r#"seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")"#,
                "forbidden sysctls (kernel.msgmax)",
            ]
        );
        let restricted: Vec<String> = evaluate(true, LATEST_MINOR, &pod)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(restricted.contains(
            &r#"runAsUser=0 (pod and container "a" must not set runAsUser=0)"#.to_string()
        ));
        // tcp_rmem is allowed only from v1.32.
        assert!(evaluate(false, 31, &pod)
            .iter()
            .any(|v| v.detail == "kernel.msgmax, net.ipv4.tcp_rmem"));
    }

    #[test]
    fn windows_pods_skip_the_linux_only_restricted_checks() {
        let pod = json!({"spec": {"os": {"name": "windows"},
            "securityContext": {"runAsNonRoot": true},
            "containers": [{"name": "w", "image": "x"}]}});
        assert!(evaluate(true, LATEST_MINOR, &pod).is_empty());
        assert_eq!(
            reasons(true, 24, &pod),
            [
                "allowPrivilegeEscalation != false",
                "unrestricted capabilities",
                "seccompProfile"
            ]
        );
    }
}
