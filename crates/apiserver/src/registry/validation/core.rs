//! core/v1 ReplicationController, as upstream 1.33 validates it
//! (`pkg/apis/core/validation`): a non-empty selector map matching the
//! template's labels, a pod template whose pods restart Always. Its spec
//! (selector included) may change on update and is checked as on create.

use apimachinery::StatusCause;
use serde_json::Value;

use super::{
    always_restarting_template, nonnegative_fields, required, set, spec,
    template_labels_not_selected, SpecRules,
};
use crate::registry::pods::validate_pod_template;

pub const REPLICATION_CONTROLLER: SpecRules = SpecRules {
    validate: validate_replication_controller,
    validate_update: |new, _old| validate_replication_controller(new),
};

fn validate_replication_controller(obj: &Value) -> Vec<StatusCause> {
    let spec = spec(obj);
    let mut causes = Vec::new();
    nonnegative_fields(spec, "spec", &["minReadySeconds"], &mut causes);
    let selector = spec
        .get("selector")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty());
    if selector.is_none() {
        causes.push(required("spec.selector", ""));
    }
    nonnegative_fields(spec, "spec", &["replicas"], &mut causes);
    let Some(template) = set(spec.get("template")) else {
        causes.push(required("spec.template", ""));
        return causes;
    };
    if let Some(selector) = selector {
        let labels = template.pointer("/metadata/labels");
        let matches = selector.iter().all(|(k, v)| {
            labels
                .and_then(|l| l.get(k))
                .is_some_and(|actual| actual == v)
        });
        if !matches {
            causes.push(template_labels_not_selected(labels));
        }
    }
    causes.extend(validate_pod_template(Some(template), "spec.template"));
    always_restarting_template(spec, "ReplicationController", &mut causes);
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rc() -> Value {
        json!({"metadata": {"name": "rc"}, "spec": {
            "replicas": 1,
            "selector": {"app": "web"},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "front"}, "annotations": {"bad key": "x"}},
                "spec": {"restartPolicy": "Always", "containers": [{"name": "web", "image": "nginx"}]},
            },
        }})
    }

    #[test]
    fn replication_controller_selector_and_template() {
        let mut ok = rc();
        ok["spec"]["template"]["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
        assert!(validate_replication_controller(&ok).is_empty());
        let fields = |obj: &Value| -> Vec<String> {
            validate_replication_controller(obj)
                .into_iter()
                .map(|c| c.field)
                .collect()
        };
        assert_eq!(fields(&rc()), ["spec.template.annotations"]);
        let mut bad = ok.clone();
        bad["spec"]["selector"] = json!({"app": "db"});
        bad["spec"]["replicas"] = json!(-1);
        assert_eq!(
            fields(&bad),
            ["spec.replicas", "spec.template.metadata.labels"]
        );
        let mut none = ok;
        none["spec"] = json!({});
        assert_eq!(fields(&none), ["spec.selector", "spec.template"]);
    }
}
