//! apps/v1 kinds.

use apimachinery::meta;
use apimachinery::resource::{ResourceInfo, Scope, ALL_VERBS};
use k8s_openapi::api::apps::v1 as api;
use serde_json::{json, Value};

use super::docs;
use super::tables::{
    col, containers, format_label_selector, format_labels, int, list, selector_string, text, wide,
};
use crate::registry::generic::GenericStrategy;
use crate::registry::validation;
use crate::table::Column;
use crate::typed::codec;

/// apps/v1 in upstream's discovery order (alphabetical by resource).
pub fn kinds() -> Vec<GenericStrategy> {
    vec![
        GenericStrategy {
            info: info(
                "ControllerRevision",
                "controllerrevisions",
                "controllerrevision",
                &[],
                &[],
                &[],
            ),
            decode: codec::<api::ControllerRevision>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: None,
            generation: false,
            spec_rules: None,
            columns: controller_revision_columns,
            cells: controller_revision_cells,
        },
        GenericStrategy {
            info: info(
                "DaemonSet",
                "daemonsets",
                "daemonset",
                &["ds"],
                &["all"],
                &["status"],
            ),
            decode: codec::<api::DaemonSet>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: Some(|| {
                json!({
                    "currentNumberScheduled": 0,
                    "desiredNumberScheduled": 0,
                    "numberMisscheduled": 0,
                    "numberReady": 0,
                })
            }),
            generation: true,
            spec_rules: Some(validation::apps::DAEMON_SET),
            columns: daemon_set_columns,
            cells: daemon_set_cells,
        },
        GenericStrategy {
            // Upstream also serves deployments/scale.
            info: info(
                "Deployment",
                "deployments",
                "deployment",
                &["deploy"],
                &["all"],
                &["status"],
            ),
            decode: codec::<api::Deployment>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: Some(|| json!({})),
            // Upstream also bumps generation when annotations change.
            generation: true,
            spec_rules: Some(validation::apps::DEPLOYMENT),
            columns: deployment_columns,
            cells: deployment_cells,
        },
        GenericStrategy {
            // Upstream also serves replicasets/scale.
            info: info(
                "ReplicaSet",
                "replicasets",
                "replicaset",
                &["rs"],
                &["all"],
                &["status"],
            ),
            decode: codec::<api::ReplicaSet>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: Some(|| json!({"replicas": 0})),
            generation: true,
            spec_rules: Some(validation::apps::REPLICA_SET),
            columns: replica_set_columns,
            cells: replica_set_cells,
        },
        GenericStrategy {
            // Upstream also serves statefulsets/scale.
            info: info(
                "StatefulSet",
                "statefulsets",
                "statefulset",
                &["sts"],
                &["all"],
                &["status"],
            ),
            decode: codec::<api::StatefulSet>(),
            // Pods are named <set>-<ordinal> and used as hostnames, so new
            // StatefulSets need a DNS label (upstream skips this on update).
            name_rule: meta::dns1123_label_errors,
            initial_status: Some(|| json!({"replicas": 0, "availableReplicas": 0})),
            generation: true,
            spec_rules: Some(validation::apps::STATEFUL_SET),
            columns: stateful_set_columns,
            cells: stateful_set_cells,
        },
    ]
}

/// A namespaced apps/v1 resource with every verb.
fn info(
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [&'static str],
) -> ResourceInfo {
    ResourceInfo {
        group: "apps",
        version: "v1",
        kind,
        plural,
        singular,
        scope: Scope::Namespaced,
        short_names,
        categories,
        verbs: ALL_VERBS,
        subresources,
    }
}

fn deployment_columns() -> Vec<Column> {
    vec![
        col("Ready", "string", "Number of the pod with ready state"),
        col("Up-to-date", "string", docs::DEPLOY_UPDATED),
        col("Available", "string", docs::DEPLOY_AVAILABLE),
        // Upstream places Age here.
        wide("Containers", "string", docs::CONTAINERS),
        wide("Images", "string", docs::IMAGES),
        wide("Selector", "string", docs::DEPLOY_SELECTOR),
    ]
}

fn deployment_cells(obj: &Value) -> Vec<Value> {
    let (names, images) = containers(obj.pointer("/spec/template/spec"));
    // Deployments print the selector as is: no "<none>" when empty.
    let selector =
        selector_string(obj.pointer("/spec/selector")).unwrap_or_else(|()| "<invalid>".into());
    vec![
        json!(format!(
            "{}/{}",
            int(obj, "/status/readyReplicas"),
            int(obj, "/spec/replicas")
        )),
        json!(int(obj, "/status/updatedReplicas")),
        json!(int(obj, "/status/availableReplicas")),
        json!(names),
        json!(images),
        json!(selector),
    ]
}

fn replica_set_columns() -> Vec<Column> {
    vec![
        col("Desired", "integer", docs::RS_SPEC_REPLICAS_EXT),
        col("Current", "integer", docs::RS_STATUS_REPLICAS_EXT),
        col("Ready", "integer", docs::RS_STATUS_READY_EXT),
        // Upstream places Age here.
        wide("Containers", "string", docs::CONTAINERS),
        wide("Images", "string", docs::IMAGES),
        wide("Selector", "string", docs::RS_SPEC_SELECTOR_EXT),
    ]
}

fn replica_set_cells(obj: &Value) -> Vec<Value> {
    let (names, images) = containers(obj.pointer("/spec/template/spec"));
    vec![
        json!(int(obj, "/spec/replicas")),
        json!(int(obj, "/status/replicas")),
        json!(int(obj, "/status/readyReplicas")),
        json!(names),
        json!(images),
        json!(format_label_selector(obj.pointer("/spec/selector"))),
    ]
}

fn stateful_set_columns() -> Vec<Column> {
    vec![
        col("Ready", "string", "Number of the pod with ready state"),
        // Upstream places Age here.
        wide("Containers", "string", docs::CONTAINERS),
        wide("Images", "string", docs::IMAGES),
    ]
}

fn stateful_set_cells(obj: &Value) -> Vec<Value> {
    let (names, images) = containers(obj.pointer("/spec/template/spec"));
    vec![
        json!(format!(
            "{}/{}",
            int(obj, "/status/readyReplicas"),
            int(obj, "/spec/replicas")
        )),
        json!(names),
        json!(images),
    ]
}

fn daemon_set_columns() -> Vec<Column> {
    vec![
        col("Desired", "integer", docs::DS_DESIRED),
        col("Current", "integer", docs::DS_CURRENT),
        col("Ready", "integer", docs::DS_READY),
        col("Up-to-date", "integer", docs::DS_UPDATED),
        col("Available", "integer", docs::DS_AVAILABLE),
        col("Node Selector", "string", docs::POD_NODE_SELECTOR),
        // Upstream places Age here.
        wide("Containers", "string", docs::CONTAINERS),
        wide("Images", "string", docs::IMAGES),
        wide("Selector", "string", docs::DS_SELECTOR),
    ]
}

fn daemon_set_cells(obj: &Value) -> Vec<Value> {
    let (names, images) = containers(obj.pointer("/spec/template/spec"));
    vec![
        json!(int(obj, "/status/desiredNumberScheduled")),
        json!(int(obj, "/status/currentNumberScheduled")),
        json!(int(obj, "/status/numberReady")),
        json!(int(obj, "/status/updatedNumberScheduled")),
        json!(int(obj, "/status/numberAvailable")),
        json!(format_labels(
            obj.pointer("/spec/template/spec/nodeSelector")
        )),
        json!(names),
        json!(images),
        json!(format_label_selector(obj.pointer("/spec/selector"))),
    ]
}

fn controller_revision_columns() -> Vec<Column> {
    vec![
        col("Controller", "string", "Controller of the object"),
        col("Revision", "string", docs::CONTROLLER_REVISION_REVISION),
    ]
}

/// The controlling owner as `kind.group/name` (lower-case), or `<none>`.
fn controller_revision_cells(obj: &Value) -> Vec<Value> {
    let owner = list(obj, "/metadata/ownerReferences")
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true));
    let controller = match owner {
        None => "<none>".to_string(),
        Some(r) => {
            let kind = text(r, "/kind");
            let group = text(r, "/apiVersion")
                .rsplit_once('/')
                .map_or("", |(g, _)| g);
            let group_kind = if group.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}.{group}")
            };
            if group_kind.is_empty() {
                text(r, "/name").to_string()
            } else {
                format!("{}/{}", group_kind.to_lowercase(), text(r, "/name"))
            }
        }
    };
    vec![json!(controller), json!(int(obj, "/revision"))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_cells_show_ready_over_desired() {
        let deploy = json!({
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [
                    {"name": "web", "image": "nginx:1.27"},
                    {"name": "log", "image": "busybox"},
                ]}},
            },
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
        });
        assert_eq!(
            deployment_cells(&deploy),
            vec![
                json!("2/3"),
                json!(3),
                json!(2),
                json!("web,log"),
                json!("nginx:1.27,busybox"),
                json!("app=web"),
            ]
        );
    }

    #[test]
    fn new_deployment_shows_zero_ready() {
        let deploy = json!({"spec": {"replicas": 1}, "status": {}});
        let cells = deployment_cells(&deploy);
        assert_eq!(cells[..3], [json!("0/1"), json!(0), json!(0)]);
        assert_eq!(cells[5], json!(""));
    }

    #[test]
    fn daemon_set_cells_show_counts_and_node_selector() {
        let ds = json!({
            "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "proxy", "image": "kube-proxy"}]}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2},
        });
        let cells = daemon_set_cells(&ds);
        assert_eq!(
            cells[..6],
            [
                json!(3),
                json!(3),
                json!(2),
                json!(3),
                json!(2),
                json!("kubernetes.io/os=linux")
            ]
        );
        assert_eq!(cells[8], json!("<none>"));
    }

    #[test]
    fn controller_revision_names_its_controller() {
        let rev = json!({
            "metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "kube-proxy", "controller": true}]},
            "revision": 2,
        });
        assert_eq!(
            controller_revision_cells(&rev),
            vec![json!("daemonset.apps/kube-proxy"), json!(2)]
        );
    }
}
