//! apps/v1 Deployment, ReplicaSet, StatefulSet and DaemonSet, as upstream
//! 1.33 validates them (`pkg/apis/apps/validation`, plus the selector
//! immutability their registry strategies add for apps/v1).

use apimachinery::StatusCause;
use serde_json::Value;

use super::{
    always_restarting_template, go_int_or_string, go_label_selector, go_string, immutable,
    int_or_percent, int_or_percent_value, invalid_printed, nonnegative, nonnegative_fields,
    not_more_than_100_percent, not_supported, printed_json, required, selector_converts,
    selector_is_empty, selector_matches, semantic, set, spec, template_labels_not_selected, text,
    validate_label_selector, SpecRules,
};
use crate::registry::pods::validate_pod_template;

pub const DEPLOYMENT: SpecRules = SpecRules {
    validate: validate_deployment,
    validate_update: |new, old| selector_immutable(validate_deployment(new), new, old),
};

pub const REPLICA_SET: SpecRules = SpecRules {
    validate: validate_replica_set,
    validate_update: |new, old| selector_immutable(validate_replica_set(new), new, old),
};

pub const STATEFUL_SET: SpecRules = SpecRules {
    validate: validate_stateful_set,
    validate_update: validate_stateful_set_update,
};

pub const DAEMON_SET: SpecRules = SpecRules {
    validate: validate_daemon_set,
    validate_update: |new, old| selector_immutable(validate_daemon_set(new), new, old),
};

/// `spec.selector`, `None` when absent. apps/v1 decoding turns a missing
/// selector into `{}`, so a bare `{}` counts as absent too (upstream tells
/// the two apart; the missing selector is by far the common mistake).
fn selector(spec: &Value) -> Option<&Value> {
    set(spec.get("selector")).filter(|s| s.as_object().is_none_or(|m| !m.is_empty()))
}

/// `spec.selector`: required, well formed and not empty (`kind` names the
/// kind in upstream's "empty selector" message).
fn required_selector(spec: &Value, kind: &str, causes: &mut Vec<StatusCause>) {
    match selector(spec) {
        None => causes.push(required("spec.selector", "")),
        Some(sel) => {
            causes.extend(validate_label_selector(Some(sel), "spec.selector"));
            reject_empty_selector(sel, kind, causes);
        }
    }
}

/// "empty selector is invalid for <kind>" when `sel` selects everything.
fn reject_empty_selector(sel: &Value, kind: &str, causes: &mut Vec<StatusCause>) {
    if selector_is_empty(sel) {
        causes.push(invalid_printed(
            "spec.selector",
            &go_label_selector(Some(sel)),
            &format!("empty selector is invalid for {kind}"),
        ));
    }
}

/// The template labels must be selected by the selector.
fn template_matches_selector(spec: &Value, causes: &mut Vec<StatusCause>) {
    let labels = spec.pointer("/template/metadata/labels");
    if !selector_matches(selector(spec), labels) {
        causes.push(template_labels_not_selected(labels));
    }
}

/// `ValidateReplicaSetSpec`'s selector and template part, shared with
/// Deployments.
fn replica_set_template(spec: &Value, causes: &mut Vec<StatusCause>) {
    if !selector_converts(spec.get("selector")) {
        causes.push(invalid_printed(
            "spec.selector",
            &go_label_selector(spec.get("selector")),
            "invalid label selector",
        ));
        return;
    }
    template_matches_selector(spec, causes);
    causes.extend(validate_pod_template(spec.get("template"), "spec.template"));
    always_restarting_template(spec, "ReplicaSet", causes);
}

/// The apps/v1 update rule of Deployments, ReplicaSets and DaemonSets:
/// the create rules' `causes`, plus `spec.selector` may not change.
fn selector_immutable(mut causes: Vec<StatusCause>, new: &Value, old: &Value) -> Vec<StatusCause> {
    immutable(
        new,
        old,
        "/spec/selector",
        "spec.selector",
        go_label_selector,
        &mut causes,
    );
    causes
}

fn validate_deployment(obj: &Value) -> Vec<StatusCause> {
    let spec = spec(obj);
    let mut causes = Vec::new();
    nonnegative(spec, "/replicas", "spec.replicas", &mut causes);
    required_selector(spec, "deployment", &mut causes);
    replica_set_template(spec, &mut causes);
    deployment_strategy(spec, &mut causes);
    nonnegative_fields(
        spec,
        "spec",
        &["minReadySeconds", "revisionHistoryLimit"],
        &mut causes,
    );
    if let Some(deadline) = spec.get("progressDeadlineSeconds").and_then(Value::as_i64) {
        nonnegative_fields(spec, "spec", &["progressDeadlineSeconds"], &mut causes);
        let min_ready = spec
            .get("minReadySeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if deadline <= min_ready {
            causes.push(invalid_printed(
                "spec.progressDeadlineSeconds",
                &deadline.to_string(),
                "must be greater than minReadySeconds",
            ));
        }
    }
    causes
}

fn deployment_strategy(spec: &Value, causes: &mut Vec<StatusCause>) {
    let strategy = spec.get("strategy").unwrap_or(&Value::Null);
    let rolling = set(strategy.get("rollingUpdate"));
    match text(strategy, "type") {
        "Recreate" => {
            if rolling.is_some() {
                causes.push(StatusCause::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match rolling {
            None => causes.push(required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(r) => {
                let at = "spec.strategy.rollingUpdate";
                int_or_percent(
                    r,
                    "/maxUnavailable",
                    &format!("{at}.maxUnavailable"),
                    causes,
                );
                int_or_percent(r, "/maxSurge", &format!("{at}.maxSurge"), causes);
                let unavailable = r.get("maxUnavailable");
                if int_or_percent_value(unavailable) == 0
                    && int_or_percent_value(r.get("maxSurge")) == 0
                {
                    causes.push(invalid_printed(
                        &format!("{at}.maxUnavailable"),
                        &go_int_or_string(unavailable.unwrap_or(&Value::from(0))),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                not_more_than_100_percent(
                    r,
                    "/maxUnavailable",
                    &format!("{at}.maxUnavailable"),
                    causes,
                );
            }
        },
        other => causes.push(unsupported_strategy(
            "spec.strategy",
            ("apps.DeploymentStrategy", "apps.RollingUpdateDeployment"),
            other,
            rolling,
            &["Recreate", "RollingUpdate"],
        )),
    }
}

/// A strategy `type` upstream does not know, with the strategy printed as
/// Go prints it (the Go types of the strategy and of its rollingUpdate).
fn unsupported_strategy(
    field: &str,
    (strategy_type, rolling_type): (&str, &str),
    type_name: &str,
    rolling: Option<&Value>,
    supported: &[&str],
) -> StatusCause {
    let rolling = rolling.map_or_else(|| format!("(*{rolling_type})(nil)"), printed_json);
    not_supported(
        field,
        &format!(
            "{strategy_type}{{Type:{}, RollingUpdate:{rolling}}}",
            go_string(type_name)
        ),
        supported,
    )
}

fn validate_replica_set(obj: &Value) -> Vec<StatusCause> {
    let spec = spec(obj);
    let mut causes = Vec::new();
    nonnegative_fields(spec, "spec", &["replicas", "minReadySeconds"], &mut causes);
    // Upstream's message says "deployment" for ReplicaSets too.
    required_selector(spec, "deployment", &mut causes);
    replica_set_template(spec, &mut causes);
    causes
}

fn validate_stateful_set(obj: &Value) -> Vec<StatusCause> {
    let spec = spec(obj);
    let mut causes = Vec::new();
    match text(spec, "podManagementPolicy") {
        "" => causes.push(required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => causes.push(invalid_printed(
            "spec.podManagementPolicy",
            &go_string(other),
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = spec.get("updateStrategy").unwrap_or(&Value::Null);
    let rolling = set(strategy.get("rollingUpdate"));
    match text(strategy, "type") {
        "" => causes.push(required("spec.updateStrategy", "")),
        "OnDelete" => {
            if let Some(r) = rolling {
                causes.push(invalid_printed(
                    "spec.updateStrategy.rollingUpdate",
                    &printed_json(r),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(r) = rolling {
                nonnegative(
                    r,
                    "/partition",
                    "spec.updateStrategy.rollingUpdate.partition",
                    &mut causes,
                );
            }
        }
        _ => causes.push(invalid_printed(
            "spec.updateStrategy",
            &printed_json(strategy),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(policy) = set(spec.get("persistentVolumeClaimRetentionPolicy")) {
        for which in ["whenDeleted", "whenScaled"] {
            let value = text(policy, which);
            if value != "Retain" && value != "Delete" {
                causes.push(not_supported(
                    &format!("spec.persistentVolumeClaimRetentionPolicy.{which}"),
                    &go_string(value),
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    nonnegative_fields(
        spec,
        "spec",
        &["replicas", "minReadySeconds", "ordinals.start"],
        &mut causes,
    );
    required_selector(spec, "statefulset", &mut causes);
    if !selector_converts(spec.get("selector")) {
        causes.push(invalid_printed(
            "spec.selector",
            &go_label_selector(spec.get("selector")),
            "",
        ));
    } else {
        template_matches_selector(spec, &mut causes);
        // Upstream checks a StatefulSet template's labels but not its pod
        // spec (volumes may come from volumeClaimTemplates).
        causes.extend(super::validate_labels(
            spec.pointer("/template/metadata/labels"),
            "spec.template.labels",
        ));
        causes.extend(super::validate_annotations(
            spec.pointer("/template/metadata/annotations"),
            "spec.template.annotations",
        ));
    }
    always_restarting_template(spec, "StatefulSet", &mut causes);
    causes
}

/// What an update of a StatefulSet's spec may change.
const STATEFUL_SET_MUTABLE: [&str; 7] = [
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

fn validate_stateful_set_update(new: &Value, old: &Value) -> Vec<StatusCause> {
    let mut causes = validate_stateful_set(new);
    let fixed = |obj: &Value| {
        let mut spec = semantic(spec(obj));
        if let Some(map) = spec.as_object_mut() {
            for field in STATEFUL_SET_MUTABLE {
                map.remove(field);
            }
        }
        spec
    };
    if fixed(new) != fixed(old) {
        causes.push(StatusCause::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
    causes
}

fn validate_daemon_set(obj: &Value) -> Vec<StatusCause> {
    let spec = spec(obj);
    let mut causes = validate_label_selector(selector(spec), "spec.selector");
    if selector_converts(spec.get("selector")) {
        template_matches_selector(spec, &mut causes);
    }
    if let Some(sel) = selector(spec) {
        reject_empty_selector(sel, "daemonset", &mut causes);
    }
    causes.extend(validate_pod_template(spec.get("template"), "spec.template"));
    always_restarting_template(spec, "DaemonSet", &mut causes);
    nonnegative_fields(spec, "spec", &["minReadySeconds"], &mut causes);
    daemon_set_strategy(spec, &mut causes);
    nonnegative_fields(spec, "spec", &["revisionHistoryLimit"], &mut causes);
    causes
}

fn daemon_set_strategy(spec: &Value, causes: &mut Vec<StatusCause>) {
    let strategy = spec.get("updateStrategy").unwrap_or(&Value::Null);
    let rolling = set(strategy.get("rollingUpdate"));
    match text(strategy, "type") {
        "OnDelete" => {}
        "RollingUpdate" => {
            let Some(r) = rolling else {
                causes.push(required("spec.updateStrategy.rollingUpdate", ""));
                return;
            };
            let at = "spec.updateStrategy.rollingUpdate";
            for field in ["maxUnavailable", "maxSurge"] {
                int_or_percent(r, &format!("/{field}"), &format!("{at}.{field}"), causes);
            }
            for field in ["maxUnavailable", "maxSurge"] {
                not_more_than_100_percent(
                    r,
                    &format!("/{field}"),
                    &format!("{at}.{field}"),
                    causes,
                );
            }
            let unavailable = int_or_percent_value(r.get("maxUnavailable")) != 0;
            let surge = int_or_percent_value(r.get("maxSurge")) != 0;
            if unavailable && surge {
                causes.push(invalid_printed(
                    &format!("{at}.maxSurge"),
                    &go_int_or_string(r.get("maxSurge").unwrap_or(&Value::from(0))),
                    "may not be set when maxUnavailable is non-zero",
                ));
            } else if !unavailable && !surge {
                causes.push(required(
                    &format!("{at}.maxUnavailable"),
                    "cannot be 0 when maxSurge is 0",
                ));
            }
        }
        other => causes.push(unsupported_strategy(
            "spec.updateStrategy",
            (
                "apps.DaemonSetUpdateStrategy",
                "apps.RollingUpdateDaemonSet",
            ),
            other,
            rolling,
            &["RollingUpdate", "OnDelete"],
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::validation::{assert_causes, fields};
    use serde_json::json;

    /// A Deployment as stored after defaulting.
    fn deployment() -> Value {
        json!({
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"restartPolicy": "Always", "containers": [{"name": "web", "image": "nginx"}]},
                },
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
            },
        })
    }

    #[test]
    fn a_defaulted_deployment_is_valid() {
        assert!(validate_deployment(&deployment()).is_empty());
        let mut set = deployment();
        set["spec"]["updateStrategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
        set["spec"]["podManagementPolicy"] = json!("OrderedReady");
        assert!(validate_stateful_set(&set).is_empty());
    }

    #[test]
    fn deployment_without_selector_is_required_and_mismatched() {
        let mut d = deployment();
        // What decoding makes of a missing selector.
        d["spec"]["selector"] = json!({});
        let causes = validate_deployment(&d);
        assert_eq!(
            fields(&causes),
            ["spec.selector", "spec.template.metadata.labels"]
        );
        assert_eq!(causes[0].message, "Required value");
        assert_eq!(
            causes[1].message,
            r#"Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`"#
        );
    }

    #[test]
    fn template_labels_must_match_the_selector() {
        let mut d = deployment();
        d["spec"]["template"]["metadata"]["labels"] = json!({"app": "x"});
        assert_causes(
            &validate_deployment(&d),
            &["spec.template.metadata.labels"],
            r#"Invalid value: map[string]string{"app":"x"}: `selector` does not match template `labels`"#,
        );
    }

    #[test]
    fn empty_selector_is_invalid() {
        let mut d = deployment();
        d["spec"]["selector"] = json!({"matchLabels": {}});
        let causes = validate_deployment(&d);
        assert_eq!(fields(&causes), ["spec.selector"]);
        assert!(causes[0]
            .message
            .ends_with("empty selector is invalid for deployment"));
    }

    #[test]
    fn negative_counts_are_invalid() {
        let mut d = deployment();
        d["spec"]["replicas"] = json!(-1);
        d["spec"]["minReadySeconds"] = json!(-2);
        d["spec"]["revisionHistoryLimit"] = json!(-3);
        assert_causes(
            &validate_deployment(&d),
            &[
                "spec.replicas",
                "spec.minReadySeconds",
                "spec.revisionHistoryLimit",
            ],
            "Invalid value: -1: must be greater than or equal to 0",
        );
    }

    #[test]
    fn progress_deadline_must_exceed_min_ready() {
        let mut d = deployment();
        d["spec"]["minReadySeconds"] = json!(600);
        assert_causes(
            &validate_deployment(&d),
            &["spec.progressDeadlineSeconds"],
            "Invalid value: 600: must be greater than minReadySeconds",
        );
    }

    #[test]
    fn rolling_update_bounds() {
        let mut d = deployment();
        d["spec"]["strategy"]["rollingUpdate"] = json!({"maxUnavailable": 0, "maxSurge": 0});
        let causes = validate_deployment(&d);
        assert_eq!(
            fields(&causes),
            ["spec.strategy.rollingUpdate.maxUnavailable"]
        );
        assert!(causes[0]
            .message
            .ends_with("may not be 0 when `maxSurge` is 0"));
        d["spec"]["strategy"]["rollingUpdate"] = json!({"maxUnavailable": "150%", "maxSurge": "x"});
        let causes = validate_deployment(&d);
        assert_eq!(
            fields(&causes),
            [
                "spec.strategy.rollingUpdate.maxSurge",
                "spec.strategy.rollingUpdate.maxUnavailable"
            ]
        );
        assert_eq!(
            causes[1].message,
            r#"Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"150%"}: must not be greater than 100%"#
        );
    }

    #[test]
    fn strategy_types_are_checked() {
        let mut d = deployment();
        d["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}});
        let causes = validate_deployment(&d);
        assert_eq!(fields(&causes), ["spec.strategy.rollingUpdate"]);
        assert_eq!(causes[0].reason, "FieldValueForbidden");
        d["spec"]["strategy"] = json!({"type": "Sideways"});
        let causes = validate_deployment(&d);
        assert_eq!(causes[0].reason, "FieldValueNotSupported");
        assert!(causes[0]
            .message
            .ends_with(r#"supported values: "Recreate", "RollingUpdate""#));
    }

    #[test]
    fn workload_pods_restart_always_and_have_no_deadline() {
        let mut d = deployment();
        d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        d["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(5);
        assert_causes(
            &validate_deployment(&d),
            &[
                "spec.template.spec.restartPolicy",
                "spec.template.spec.activeDeadlineSeconds",
            ],
            r#"Unsupported value: "Never": supported values: "Always""#,
        );
    }

    #[test]
    fn template_pod_spec_uses_the_pod_rules() {
        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"] =
            json!([{"name": "a", "image": ""}, {"name": "a", "image": "x"}]);
        let causes = validate_deployment(&d);
        assert_eq!(
            fields(&causes),
            [
                "spec.template.spec.containers[0].image",
                "spec.template.spec.containers[1].name"
            ]
        );
        assert_eq!(causes[1].reason, "FieldValueDuplicate");
    }

    #[test]
    fn selector_is_immutable_on_update() {
        let old = deployment();
        let mut new = deployment();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "v": "2"}});
        new["spec"]["template"]["metadata"]["labels"] = json!({"app": "web", "v": "2"});
        assert_causes(
            &(DEPLOYMENT.validate_update)(&new, &old),
            &["spec.selector"],
            r#"Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "v":"2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"#,
        );
        assert!((REPLICA_SET.validate_update)(&new, &old)
            .iter()
            .any(|c| c.field == "spec.selector"));
        let mut scaled = deployment();
        scaled["spec"]["replicas"] = json!(5);
        assert!((DEPLOYMENT.validate_update)(&scaled, &old).is_empty());
    }

    fn stateful_set() -> Value {
        let mut s = deployment();
        let spec = s["spec"].as_object_mut().unwrap();
        spec.remove("strategy");
        spec.remove("progressDeadlineSeconds");
        spec.insert("serviceName".into(), json!("web"));
        spec.insert("podManagementPolicy".into(), json!("OrderedReady"));
        spec.insert(
            "updateStrategy".into(),
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
        );
        s
    }

    #[test]
    fn stateful_set_policies_and_strategy() {
        let mut s = stateful_set();
        s["spec"]["podManagementPolicy"] = json!("Random");
        s["spec"]["updateStrategy"] =
            json!({"type": "OnDelete", "rollingUpdate": {"partition": 1}});
        s["spec"]["persistentVolumeClaimRetentionPolicy"] =
            json!({"whenDeleted": "Keep", "whenScaled": "Retain"});
        s["spec"]["ordinals"] = json!({"start": -1});
        let causes = validate_stateful_set(&s);
        assert_eq!(
            fields(&causes),
            [
                "spec.podManagementPolicy",
                "spec.updateStrategy.rollingUpdate",
                "spec.persistentVolumeClaimRetentionPolicy.whenDeleted",
                "spec.ordinals.start"
            ]
        );
    }

    #[test]
    fn stateful_set_update_may_change_only_some_fields() {
        let old = stateful_set();
        let mut new = stateful_set();
        new["spec"]["replicas"] = json!(3);
        new["spec"]["minReadySeconds"] = json!(5);
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert!(validate_stateful_set_update(&new, &old).is_empty());
        for (field, value) in [
            ("serviceName", json!("other")),
            ("podManagementPolicy", json!("Parallel")),
            (
                "volumeClaimTemplates",
                json!([{"metadata": {"name": "data"}}]),
            ),
        ] {
            let mut changed = stateful_set();
            changed["spec"][field] = value;
            let causes = validate_stateful_set_update(&changed, &old);
            assert_eq!(fields(&causes), ["spec"], "{field}");
            assert_eq!(causes[0].reason, "FieldValueForbidden");
        }
    }

    #[test]
    fn daemon_set_rolling_update_needs_exactly_one_of_surge_and_unavailable() {
        let mut ds = deployment();
        let spec = ds["spec"].as_object_mut().unwrap();
        spec.remove("strategy");
        spec.remove("replicas");
        spec.remove("progressDeadlineSeconds");
        spec.insert(
            "updateStrategy".into(),
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
        );
        assert!(validate_daemon_set(&ds).is_empty());
        ds["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"] = json!(1);
        let causes = validate_daemon_set(&ds);
        assert_eq!(
            fields(&causes),
            ["spec.updateStrategy.rollingUpdate.maxSurge"]
        );
        ds["spec"]["updateStrategy"]["rollingUpdate"] = json!({"maxUnavailable": 0, "maxSurge": 0});
        let causes = validate_daemon_set(&ds);
        assert_eq!(
            fields(&causes),
            ["spec.updateStrategy.rollingUpdate.maxUnavailable"]
        );
        assert_eq!(causes[0].reason, "FieldValueRequired");
    }
}
