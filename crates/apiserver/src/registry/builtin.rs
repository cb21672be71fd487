//! The built-in kinds served through [`GenericStrategy`]: one module per
//! API group, each listing its kinds (discovery facts, typed decoding, name
//! rule, status and generation handling, spec validation rules from
//! `registry::validation`) next to their table columns.
//! `tables` holds the cell helpers the printers share, `docs` the column
//! descriptions, `names` the name rules not shared with other crates.
//!
//! To add a kind of an existing group, add an entry to that group's
//! `kinds()`, keeping upstream's alphabetical order; a kind whose behaviour
//! goes beyond these fields gets a module of its own in `registry`.

use std::sync::Arc;

use super::generic::GenericStrategy;
use super::Strategy;

mod apps;
mod autoscaling;
mod batch;
mod certificates;
mod coordination;
mod core;
mod discovery;
mod docs;
mod events;
mod names;
mod networking;
mod node;
mod policy;
mod rbac;
mod reviews;
mod scheduling;
mod storage;
mod tables;

/// Every built-in kind, registered in upstream's discovery order: core/v1,
/// then the groups in kube-aggregator's priority order (the order of
/// `/apis`), each group's versions preferred first.
pub fn all() -> Vec<Arc<dyn Strategy>> {
    let groups: [Vec<GenericStrategy>; 16] = [
        core::kinds(),
        apps::kinds(),
        events::kinds(),
        reviews::authentication_kinds(),
        reviews::authorization_kinds(),
        autoscaling::kinds(),
        batch::kinds(),
        certificates::kinds(),
        networking::kinds(),
        policy::kinds(),
        rbac::kinds(),
        storage::kinds(),
        scheduling::kinds(),
        coordination::kinds(),
        node::kinds(),
        discovery::kinds(),
    ];
    groups
        .into_iter()
        .flatten()
        .map(|k| Arc::new(k) as Arc<dyn Strategy>)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use apimachinery::ResourceInfo;
    use serde_json::{json, Value};
    use std::collections::HashSet;

    /// The smallest object of a kind: apiVersion, kind and a name.
    fn minimal(info: &ResourceInfo) -> Value {
        let mut obj = json!({
            "apiVersion": info.api_version(),
            "kind": info.kind,
            "metadata": {"name": "sample"},
        });
        if info.namespaced() {
            obj["metadata"]["namespace"] = json!("default");
        }
        obj
    }

    #[test]
    fn registry_has_no_duplicate_resources() {
        let registry = Registry::builtin();
        let mut seen = HashSet::new();
        for r in registry.all() {
            assert!(
                seen.insert((r.group, r.version, r.plural)),
                "{}/{} {} registered twice",
                r.group,
                r.version,
                r.plural
            );
        }
        assert_eq!(seen.len(), 2 + all().len());
    }

    #[test]
    fn every_kind_decodes_a_minimal_object_as_its_own_type() {
        for s in all() {
            let info = s.info();
            let (decoded, unknown) = s
                .decode(&minimal(info))
                .unwrap_or_else(|e| panic!("{}: {}", info.plural, e.message));
            assert!(unknown.is_empty(), "{}: {unknown:?}", info.plural);
            assert_eq!(decoded["kind"], json!(info.kind), "{}", info.plural);
            assert_eq!(decoded["apiVersion"], json!(info.api_version()));
        }
    }

    #[test]
    fn every_kind_rejects_an_object_of_another_kind() {
        for s in all() {
            let mut obj = minimal(s.info());
            obj["kind"] = json!("NotThisKind");
            assert!(s.decode(&obj).is_err(), "{}", s.info().plural);
        }
    }

    #[test]
    fn initial_status_is_valid_for_the_kinds_type() {
        for s in all() {
            let info = s.info();
            let mut obj = minimal(info);
            s.prepare_for_create(&mut obj);
            let (decoded, unknown) = s.decode(&obj).expect("decodes");
            assert!(unknown.is_empty(), "{}: {unknown:?}", info.plural);
            assert_eq!(decoded.get("status"), obj.get("status"), "{}", info.plural);
            // Kinds with /status start from the server's status, never the
            // client's; kinds without it keep what was sent.
            assert_eq!(
                obj.get("status").is_some(),
                s.has_status_subresource() && info.kind != "Node",
                "{}",
                info.plural
            );
        }
    }

    #[test]
    fn table_cells_match_columns_for_every_kind() {
        let rich = json!({
            "metadata": {"name": "x", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}], "selector": {"matchLabels": {"a": "b"}}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        });
        for s in all() {
            let columns = s.columns().len();
            for obj in [minimal(s.info()), rich.clone()] {
                assert_eq!(s.cells(&obj).len(), columns, "{}", s.info().plural);
            }
        }
    }

    #[test]
    fn only_served_subresources_are_advertised() {
        for s in all() {
            for sub in s.info().subresources {
                assert_eq!(*sub, "status", "{}", s.info().plural);
            }
        }
    }

    #[test]
    fn groups_follow_upstream_discovery_order() {
        let order: Vec<(&str, &str)> = Registry::builtin().group_versions();
        assert_eq!(
            order,
            [
                ("", "v1"),
                ("apps", "v1"),
                ("events.k8s.io", "v1"),
                ("authentication.k8s.io", "v1"),
                ("authorization.k8s.io", "v1"),
                ("autoscaling", "v2"),
                ("autoscaling", "v1"),
                ("batch", "v1"),
                ("certificates.k8s.io", "v1"),
                ("networking.k8s.io", "v1"),
                ("policy", "v1"),
                ("rbac.authorization.k8s.io", "v1"),
                ("storage.k8s.io", "v1"),
                ("scheduling.k8s.io", "v1"),
                ("coordination.k8s.io", "v1"),
                ("node.k8s.io", "v1"),
                ("discovery.k8s.io", "v1"),
            ]
        );
    }

    #[test]
    fn resources_of_a_group_version_are_registered_alphabetically() {
        let all = all();
        for pair in all.windows(2) {
            let (a, b) = (pair[0].info(), pair[1].info());
            if (a.group, a.version) == (b.group, b.version) {
                assert!(a.plural < b.plural, "{} before {}", a.plural, b.plural);
            }
        }
    }

    #[test]
    fn workloads_are_in_the_all_category() {
        let mut in_all: Vec<&str> = all()
            .iter()
            .filter(|s| s.info().categories.contains(&"all"))
            .map(|s| s.info().plural)
            .collect();
        in_all.sort_unstable();
        in_all.dedup();
        assert_eq!(
            in_all,
            [
                "cronjobs",
                "daemonsets",
                "deployments",
                "horizontalpodautoscalers",
                "jobs",
                "pods",
                "replicasets",
                "replicationcontrollers",
                "services",
                "statefulsets",
            ]
        );
    }

    #[test]
    fn names_are_validated_by_each_kinds_rule() {
        let find = |group: &str, plural: &str| {
            all()
                .into_iter()
                .find(|s| s.info().group == group && s.info().plural == plural)
                .expect("registered")
        };
        let named = |s: &Arc<dyn Strategy>, name: &str| {
            let mut obj = minimal(s.info());
            obj["metadata"]["name"] = json!(name);
            let mut causes = s.validate(&obj);
            // Only the name rule is under test, not the kind's spec rules.
            causes.retain(|c| c.field == "metadata.name");
            causes
        };
        let services = find("", "services");
        assert!(named(&services, "web").is_empty());
        assert_eq!(named(&services, "1web").len(), 1);
        assert_eq!(named(&services, "web.example").len(), 1);
        let pods = find("", "pods");
        assert!(named(&pods, "web.example").is_empty());
        let roles = find("rbac.authorization.k8s.io", "clusterroles");
        assert!(named(&roles, "system:node").is_empty());
        assert_eq!(named(&roles, "a/b").len(), 1);
        let sets = find("apps", "statefulsets");
        assert_eq!(named(&sets, "web.example").len(), 1);
    }

    #[test]
    fn generation_starts_at_one_for_controllers() {
        for (group, plural, generation) in [
            ("apps", "deployments", true),
            ("", "replicationcontrollers", true),
            ("batch", "jobs", true),
            ("", "pods", false),
            ("", "services", false),
        ] {
            let s = all()
                .into_iter()
                .find(|s| s.info().group == group && s.info().plural == plural)
                .expect("registered");
            let mut obj = minimal(s.info());
            s.prepare_for_create(&mut obj);
            assert_eq!(
                obj.pointer("/metadata/generation").is_some(),
                generation,
                "{plural}"
            );
        }
    }
}
