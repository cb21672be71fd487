//! networking.k8s.io/v1 kinds.

use apimachinery::meta;
use apimachinery::resource::{ResourceInfo, Scope, ALL_VERBS};
use k8s_openapi::api::networking::v1 as api;
use serde_json::{json, Value};

use super::docs;
use super::tables::{col, format_label_selector, list, load_balancer_ingress, non_empty, text};
use crate::registry::generic::GenericStrategy;
use crate::registry::validation;
use crate::table::Column;
use crate::typed::codec;

/// In upstream's discovery order (alphabetical by resource).
pub fn kinds() -> Vec<GenericStrategy> {
    vec![
        GenericStrategy {
            info: ResourceInfo {
                scope: Scope::Cluster,
                ..info("IngressClass", "ingressclasses", "ingressclass", &[], &[])
            },
            decode: codec::<api::IngressClass>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: None,
            generation: true,
            spec_rules: None,
            columns: ingress_class_columns,
            cells: ingress_class_cells,
        },
        GenericStrategy {
            info: info("Ingress", "ingresses", "ingress", &["ing"], &["status"]),
            decode: codec::<api::Ingress>(),
            name_rule: meta::dns1123_subdomain_errors,
            // An empty IngressStatus still carries its loadBalancer struct.
            initial_status: Some(|| json!({"loadBalancer": {}})),
            generation: true,
            spec_rules: Some(validation::networking::INGRESS),
            columns: ingress_columns,
            cells: ingress_cells,
        },
        GenericStrategy {
            info: info(
                "NetworkPolicy",
                "networkpolicies",
                "networkpolicy",
                &["netpol"],
                &[],
            ),
            decode: codec::<api::NetworkPolicy>(),
            name_rule: meta::dns1123_subdomain_errors,
            initial_status: None,
            generation: true,
            spec_rules: None,
            columns: network_policy_columns,
            cells: network_policy_cells,
        },
    ]
}

/// A namespaced networking.k8s.io/v1 resource with every verb.
fn info(
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    subresources: &'static [&'static str],
) -> ResourceInfo {
    ResourceInfo {
        group: "networking.k8s.io",
        version: "v1",
        kind,
        plural,
        singular,
        scope: Scope::Namespaced,
        short_names,
        categories: &[],
        verbs: ALL_VERBS,
        subresources,
    }
}

fn ingress_columns() -> Vec<Column> {
    vec![
        col("Class", "string", "The name of the IngressClass resource that should be used for additional configuration"),
        col("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
        col("Address", "string", "Address is a list containing ingress points for the load-balancer"),
        col("Ports", "string", "Ports of TLS configurations that open"),
    ]
}

/// Upstream's `formatHosts`: up to three rule hosts, "*" when no rule
/// names one; "+ N more..." counts rules, not hosts.
fn ingress_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == MAX {
            more = true;
        }
        if let Some(host) = non_empty(rule, "/host").filter(|_| !more) {
            hosts.push(host);
        }
    }
    if hosts.is_empty() {
        "*".into()
    } else if more {
        format!("{} + {} more...", hosts.join(","), rules.len() - MAX)
    } else {
        hosts.join(",")
    }
}

fn ingress_cells(ing: &Value) -> Vec<Value> {
    let ports = if list(ing, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        json!(non_empty(ing, "/spec/ingressClassName").unwrap_or("<none>")),
        json!(ingress_hosts(list(ing, "/spec/rules"))),
        json!(load_balancer_ingress(ing.pointer("/status/loadBalancer"))),
        json!(ports),
    ]
}

fn ingress_class_columns() -> Vec<Column> {
    vec![
        col(
            "Controller",
            "string",
            "Controller that is responsible for handling this class",
        ),
        col(
            "Parameters",
            "string",
            "A reference to a resource with additional parameters",
        ),
    ]
}

fn ingress_class_cells(class: &Value) -> Vec<Value> {
    let parameters = match class.pointer("/spec/parameters") {
        Some(p) if p.is_object() => {
            let kind = match non_empty(p, "/apiGroup") {
                Some(group) => format!("{}.{group}", text(p, "/kind")),
                None => text(p, "/kind").to_string(),
            };
            format!("{kind}/{}", text(p, "/name"))
        }
        _ => "<none>".into(),
    };
    vec![json!(text(class, "/spec/controller")), json!(parameters)]
}

fn network_policy_columns() -> Vec<Column> {
    vec![col("Pod-Selector", "string", docs::NETPOL_POD_SELECTOR_EXT)]
}

fn network_policy_cells(policy: &Value) -> Vec<Value> {
    vec![json!(format_label_selector(
        policy.pointer("/spec/podSelector")
    ))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingress_cells_show_class_hosts_address_and_ports() {
        let ing = json!({
            "spec": {
                "ingressClassName": "nginx",
                "rules": [{"host": "a.example.com"}, {"http": {}}, {"host": "b.example.com"}, {"host": "c.example.com"}, {"host": "d.example.com"}],
                "tls": [{"hosts": ["a.example.com"]}],
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]}},
        });
        assert_eq!(
            ingress_cells(&ing),
            vec![
                json!("nginx"),
                json!("a.example.com,b.example.com,c.example.com + 2 more..."),
                json!("10.0.0.9"),
                json!("80, 443"),
            ]
        );
        assert_eq!(
            ingress_cells(&json!({})),
            vec![json!("<none>"), json!("*"), json!(""), json!("80")]
        );
    }

    #[test]
    fn ingress_class_parameters_name_kind_group_and_name() {
        let class = json!({"spec": {"controller": "k8s.io/ingress-nginx", "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
        assert_eq!(
            ingress_class_cells(&class),
            vec![
                json!("k8s.io/ingress-nginx"),
                json!("IngressParameters.k8s.example.com/external-lb"),
            ]
        );
    }

    #[test]
    fn network_policy_with_empty_selector_selects_all() {
        let policy = json!({"spec": {"podSelector": {}}});
        assert_eq!(network_policy_cells(&policy), vec![json!("<none>")]);
    }
}
