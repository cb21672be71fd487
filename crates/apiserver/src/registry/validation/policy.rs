//! policy/v1 PodDisruptionBudget, as upstream 1.33 validates it
//! (`pkg/apis/policy/validation`): its spec may change on update and is
//! checked as on create.

use apimachinery::StatusCause;
use serde_json::Value;

use super::{
    go_string, int_or_percent, invalid_printed, not_more_than_100_percent, not_supported,
    printed_json, spec, validate_label_selector, SpecRules,
};

pub const POD_DISRUPTION_BUDGET: SpecRules = SpecRules {
    validate: validate_pod_disruption_budget,
    validate_update: |new, _old| validate_pod_disruption_budget(new),
};

fn validate_pod_disruption_budget(obj: &Value) -> Vec<StatusCause> {
    let spec = spec(obj);
    let mut causes = Vec::new();
    let is_set = |field: &str| spec.get(field).is_some_and(|v| !v.is_null());
    if is_set("minAvailable") && is_set("maxUnavailable") {
        causes.push(invalid_printed(
            "spec",
            &printed_json(spec),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for field in ["minAvailable", "maxUnavailable"] {
        let at = format!("spec.{field}");
        int_or_percent(spec, &format!("/{field}"), &at, &mut causes);
        not_more_than_100_percent(spec, &format!("/{field}"), &at, &mut causes);
    }
    causes.extend(validate_label_selector(
        spec.get("selector"),
        "spec.selector",
    ));
    if let Some(policy) = spec
        .get("unhealthyPodEvictionPolicy")
        .and_then(Value::as_str)
    {
        if policy != "AlwaysAllow" && policy != "IfHealthyBudget" {
            causes.push(not_supported(
                "spec.unhealthyPodEvictionPolicy",
                &go_string(policy),
                &["AlwaysAllow", "IfHealthyBudget"],
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn min_available_and_max_unavailable_are_exclusive() {
        let ok = json!({"spec": {"minAvailable": "50%", "selector": {"matchLabels": {"a": "b"}}}});
        assert!(validate_pod_disruption_budget(&ok).is_empty());
        let both = json!({"spec": {"minAvailable": 1, "maxUnavailable": 1}});
        let causes = validate_pod_disruption_budget(&both);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec");
        assert!(causes[0]
            .message
            .ends_with("minAvailable and maxUnavailable cannot be both set"));
    }

    #[test]
    fn bounds_and_eviction_policy_are_checked() {
        let bad =
            json!({"spec": {"maxUnavailable": "120%", "unhealthyPodEvictionPolicy": "Never"}});
        let fields: Vec<String> = validate_pod_disruption_budget(&bad)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(
            fields,
            ["spec.maxUnavailable", "spec.unhealthyPodEvictionPolicy"]
        );
        let negative = json!({"spec": {"minAvailable": -1}});
        assert_eq!(
            validate_pod_disruption_budget(&negative)[0].message,
            "Invalid value: -1: must be greater than or equal to 0"
        );
    }
}
