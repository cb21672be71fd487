//! PodSecurity admission end to end, through real kubectl: per-namespace
//! `pod-security.kubernetes.io/*` labels enforce on pods, only warn and
//! audit on workloads with pod templates, warn about existing pods when a
//! namespace's `enforce` tightens, refuse invalid labels, and leave their
//! marks in the audit log.

mod support;

use std::time::Duration;

use support::{output_text, Server};

fn server() -> Server {
    Server::start(&["--disable-controller-manager", "--disable-scheduler"])
}

/// What kubectl printed to stderr (warnings, errors).
fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const RESTRICTED_NGINX: &str = concat!(
    r#"Warning: would violate PodSecurity "restricted:latest": "#,
    r#"allowPrivilegeEscalation != false (container "nginx" must set securityContext.allowPrivilegeEscalation=false), "#,
    r#"unrestricted capabilities (container "nginx" must set securityContext.capabilities.drop=["ALL"]), "#,
    r#"runAsNonRoot != true (pod or container "nginx" must set securityContext.runAsNonRoot=true), "#,
    r#"seccompProfile (pod or container "nginx" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
);

#[test]
fn pod_security_labels_enforce_and_warn_per_namespace() {
    let server = server();
    server.kubectl_ok("1.33", &["create", "namespace", "guarded"]);
    server.kubectl_ok(
        "1.33",
        &[
            "label",
            "namespace",
            "guarded",
            "pod-security.kubernetes.io/enforce=baseline",
            "pod-security.kubernetes.io/warn=restricted",
        ],
    );
    let out = server.kubectl(
        "1.33",
        &[
            "run",
            "priv",
            "--image=busybox",
            "--privileged",
            "-n",
            "guarded",
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(r#"pods "priv" is forbidden: violates PodSecurity "baseline:latest": privileged (container "priv" must not set securityContext.privileged=true)"#),
        "{err}"
    );
    let out = server.kubectl(
        "1.33",
        &["run", "plain", "--image=busybox", "-n", "guarded"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let warning = stderr(&out);
    assert!(
        warning.contains(r#"Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false"#),
        "{warning}"
    );
    // Namespaces without labels are privileged.
    server.kubectl_ok(
        "1.33",
        &["run", "anything", "--image=busybox", "--privileged"],
    );
}

#[test]
fn workloads_are_warned_about_but_never_refused() {
    let server = server();
    // enforce=restricted alone: warn follows it, and workloads are only
    // ever warned about.
    server.kubectl_ok("1.33", &["create", "namespace", "strict"]);
    server.kubectl_ok(
        "1.33",
        &[
            "label",
            "namespace",
            "strict",
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=v1.29",
        ],
    );
    for version in ["1.33", "1.29"] {
        let name = format!("web-{}", version.replace('.', "-"));
        let out = server.kubectl(
            version,
            &[
                "create",
                "deployment",
                &name,
                "--image=nginx",
                "-n",
                "strict",
            ],
        );
        assert!(out.status.success(), "kubectl {version}: {}", stderr(&out));
        let expected = RESTRICTED_NGINX.replace("restricted:latest", "restricted:v1.29");
        assert!(
            stderr(&out).contains(&expected),
            "kubectl {version}: {}",
            stderr(&out)
        );
    }
    let out = server.kubectl(
        "1.29",
        &[
            "create",
            "cronjob",
            "tick",
            "--image=busybox",
            "--schedule=*/5 * * * *",
            "-n",
            "strict",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(r#"Warning: would violate PodSecurity "restricted:v1.29": allowPrivilegeEscalation != false (container "tick""#),
        "{}",
        stderr(&out)
    );
    // The same pod spec as a bare pod is refused.
    let out = server.kubectl("1.33", &["run", "nginx", "--image=nginx", "-n", "strict"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains(r#"pods "nginx" is forbidden: violates PodSecurity "restricted:v1.29""#),
        "{}",
        stderr(&out)
    );
    // A compliant deployment draws no warning.
    let compliant = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"hardened","namespace":"strict"},
      "spec":{"selector":{"matchLabels":{"app":"h"}},"template":{"metadata":{"labels":{"app":"h"}},
      "spec":{"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},
      "containers":[{"name":"c","image":"nginx","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]}}}}"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hardened.json");
    std::fs::write(&file, compliant).unwrap();
    let out = server.kubectl("1.33", &["create", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("PodSecurity"), "{}", stderr(&out));
}

#[test]
fn tightening_enforce_warns_about_existing_pods() {
    let server = server();
    server.kubectl_ok("1.33", &["create", "namespace", "tight"]);
    for (name, privileged) in [("p2", false), ("p1", false), ("priv", true)] {
        let mut args = vec!["run", name, "--image=busybox", "-n", "tight"];
        if privileged {
            args.push("--privileged");
        }
        server.kubectl_ok("1.33", &args);
    }
    for version in ["1.33", "1.29"] {
        let out = server.kubectl(
            version,
            &[
                "label",
                "--dry-run=server",
                "namespace",
                "tight",
                "pod-security.kubernetes.io/enforce=restricted",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let lines: Vec<String> = stderr(&out).lines().map(str::to_string).collect();
        assert_eq!(
            lines,
            [
                r#"Warning: existing pods in namespace "tight" violate the new PodSecurity enforce level "restricted:latest""#,
                "Warning: p1 (and 1 other pod): allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile",
                "Warning: priv: privileged, allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile",
            ],
            "kubectl {version}"
        );
    }
    // For real, at baseline: only the privileged pod.
    let out = server.kubectl(
        "1.33",
        &[
            "label",
            "namespace",
            "tight",
            "pod-security.kubernetes.io/enforce=baseline",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).lines().collect::<Vec<_>>(),
        [
            r#"Warning: existing pods in namespace "tight" violate the new PodSecurity enforce level "baseline:latest""#,
            "Warning: priv: privileged",
        ]
    );
    // Relaxing, or re-stating the same level, checks nothing.
    let out = server.kubectl(
        "1.33",
        &[
            "label",
            "--overwrite",
            "namespace",
            "tight",
            "pod-security.kubernetes.io/enforce=privileged",
        ],
    );
    assert!(out.status.success());
    assert!(!stderr(&out).contains("Warning"), "{}", stderr(&out));
}

#[test]
fn invalid_pod_security_labels_are_refused_and_versions_accepted() {
    let server = server();
    server.kubectl_ok("1.33", &["create", "namespace", "labelled"]);
    let out = server.kubectl(
        "1.33",
        &[
            "label",
            "namespace",
            "labelled",
            "pod-security.kubernetes.io/enforce=foo",
        ],
    );
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        r#"The Namespace "labelled" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "foo": must be one of privileged, baseline, restricted"#
    );
    let out = server.kubectl(
        "1.29",
        &[
            "label",
            "namespace",
            "labelled",
            "pod-security.kubernetes.io/warn-version=1.29",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(r#"metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: "1.29": must be "latest" or "v1.x""#),
        "{}",
        stderr(&out)
    );
    server.kubectl_ok(
        "1.33",
        &[
            "label",
            "namespace",
            "labelled",
            "pod-security.kubernetes.io/audit=baseline",
            "pod-security.kubernetes.io/audit-version=v1.30",
            "pod-security.kubernetes.io/warn-version=latest",
        ],
    );
    // Creating a namespace with a bad label is refused too.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ns.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: badly\n  labels:\n    pod-security.kubernetes.io/audit: loose\n",
    )
    .unwrap();
    let out = server.kubectl("1.33", &["create", "-f", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(r#"The Namespace "badly" is invalid: metadata.labels[pod-security.kubernetes.io/audit]: Invalid value: "loose""#),
        "{}",
        stderr(&out)
    );
}

#[test]
fn pod_updates_are_checked_only_when_significant() {
    let server = server();
    server.kubectl_ok("1.33", &["create", "namespace", "later"]);
    server.kubectl_ok(
        "1.33",
        &[
            "run",
            "priv",
            "--image=busybox",
            "--privileged",
            "-n",
            "later",
        ],
    );
    server.kubectl_ok(
        "1.33",
        &[
            "label",
            "namespace",
            "later",
            "pod-security.kubernetes.io/enforce=baseline",
        ],
    );
    // Labels and annotations are not significant.
    server.kubectl_ok("1.33", &["label", "pod", "priv", "tier=x", "-n", "later"]);
    server.kubectl_ok(
        "1.33",
        &["annotate", "pod", "priv", "note=y", "-n", "later"],
    );
    // A new image is.
    let out = server.kubectl(
        "1.33",
        &[
            "set",
            "image",
            "pod/priv",
            "priv=busybox:1.36",
            "-n",
            "later",
        ],
    );
    assert!(!out.status.success(), "{}", output_text(&out));
    assert!(
        stderr(&out).contains(
            r#"pods "priv" is forbidden: violates PodSecurity "baseline:latest": privileged"#
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn pod_security_decisions_are_annotated_in_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [\"RequestReceived\"]\nrules:\n  - level: None\n    users: [\"system:kube-scheduler\"]\n  - level: Metadata\n    resources:\n      - group: \"\"\n        resources: [\"pods\"]\n      - group: \"apps\"\n        resources: [\"deployments\"]\n",
    )
    .unwrap();
    let log = dir.path().join("audit.log");
    let server = Server::start(&[
        &format!("--audit-policy-file={}", policy.display()),
        &format!("--audit-log-path={}", log.display()),
        "--disable-controller-manager",
        "--disable-scheduler",
    ]);
    server.kubectl_ok("1.33", &["create", "namespace", "watched"]);
    server.kubectl_ok(
        "1.33",
        &[
            "label",
            "namespace",
            "watched",
            "pod-security.kubernetes.io/audit=restricted",
        ],
    );
    let out = server.kubectl("1.33", &["run", "nginx", "--image=nginx", "-n", "watched"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("Warning"),
        "audit mode does not warn"
    );
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "-n",
            "watched",
        ],
    );
    server.kubectl_ok("1.33", &["run", "free", "--image=nginx"]);

    let mut events: Vec<serde_json::Value> = Vec::new();
    server.wait_for("the audit events", Duration::from_secs(10), || {
        events = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        events.iter().any(|e| e["objectRef"]["name"] == "free")
    });
    let created = |resource: &str, name: &str| {
        events
            .iter()
            .find(|e| {
                e["verb"] == "create"
                    && e["objectRef"]["resource"] == resource
                    && e["objectRef"]["name"] == name
            })
            .unwrap_or_else(|| panic!("the create of {resource}/{name} is audited"))
            .clone()
    };
    let violations = concat!(
        r#"would violate PodSecurity "restricted:latest": "#,
        r#"allowPrivilegeEscalation != false (container "nginx" must set securityContext.allowPrivilegeEscalation=false), "#,
        r#"unrestricted capabilities (container "nginx" must set securityContext.capabilities.drop=["ALL"]), "#,
        r#"runAsNonRoot != true (pod or container "nginx" must set securityContext.runAsNonRoot=true), "#,
        r#"seccompProfile (pod or container "nginx" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
    let pod = created("pods", "nginx");
    let annotations = &pod["annotations"];
    assert_eq!(
        annotations["pod-security.kubernetes.io/enforce-policy"], "privileged:latest",
        "{pod}"
    );
    assert_eq!(
        annotations["pod-security.kubernetes.io/audit-violations"],
        violations
    );
    let deployment = created("deployments", "web");
    assert_eq!(
        deployment["annotations"]["pod-security.kubernetes.io/audit-violations"],
        violations
    );
    assert!(deployment["annotations"]
        .get("pod-security.kubernetes.io/enforce-policy")
        .is_none());
    let free = created("pods", "free");
    assert_eq!(
        free["annotations"]["pod-security.kubernetes.io/enforce-policy"],
        "privileged:latest"
    );
    assert!(free["annotations"]
        .get("pod-security.kubernetes.io/audit-violations")
        .is_none());
}
