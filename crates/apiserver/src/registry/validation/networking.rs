//! networking.k8s.io/v1 Ingress basics, as upstream 1.33 validates them
//! (`pkg/apis/networking/validation`): rules or a default backend, rule
//! hosts, HTTP paths and their types, and backends. The spec may change on
//! update and is checked as on create.

use std::net::IpAddr;

use apimachinery::{meta, StatusCause};
use serde_json::{json, Value};

use super::{
    go_scalar, go_string, invalid_printed, not_supported, required, set, spec, text, SpecRules,
};

pub const INGRESS: SpecRules = SpecRules {
    validate: validate_ingress,
    validate_update: |new, _old| validate_ingress(new),
};

fn validate_ingress(obj: &Value) -> Vec<StatusCause> {
    let spec = spec(obj);
    let mut causes = Vec::new();
    let rules = spec.get("rules").and_then(Value::as_array);
    let backend = set(spec.get("defaultBackend"));
    if rules.is_none_or(Vec::is_empty) && backend.is_none() {
        let printed = match rules {
            None => "[]networking.IngressRule(nil)",
            Some(_) => "[]networking.IngressRule{}",
        };
        causes.push(invalid_printed(
            "spec",
            printed,
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = backend {
        causes.extend(validate_backend(b, "spec.defaultBackend"));
    }
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        let at = format!("spec.rules[{i}]");
        let host = text(rule, "host");
        if !host.is_empty() {
            causes.extend(validate_host(host, &format!("{at}.host")));
        }
        if let Some(http) = set(rule.get("http")) {
            causes.extend(validate_http(http, &format!("{at}.http")));
        }
    }
    if let Some(class) = spec.get("ingressClassName").and_then(Value::as_str) {
        for e in meta::dns1123_subdomain_errors(class) {
            causes.push(StatusCause::invalid(
                "spec.ingressClassName",
                &json!(class),
                &e,
            ));
        }
    }
    causes
}

const WILDCARD_MESSAGE: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn validate_host(host: &str, field: &str) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    if host.parse::<IpAddr>().is_ok() {
        causes.push(invalid_printed(
            field,
            &go_string(host),
            "must be a DNS name, not an IP address",
        ));
    }
    if host.contains('*') {
        let ok = host
            .strip_prefix("*.")
            .is_some_and(|rest| meta::dns1123_subdomain_errors(rest).is_empty());
        if !ok {
            causes.push(invalid_printed(field, &go_string(host), WILDCARD_MESSAGE));
        }
        return causes;
    }
    for e in meta::dns1123_subdomain_errors(host) {
        causes.push(invalid_printed(field, &go_string(host), &e));
    }
    causes
}

fn validate_http(http: &Value, at: &str) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    let paths = http.get("paths").and_then(Value::as_array);
    if paths.is_none_or(Vec::is_empty) {
        causes.push(required(&format!("{at}.paths"), ""));
    }
    for (i, path) in paths.into_iter().flatten().enumerate() {
        let at = format!("{at}.paths[{i}]");
        let value = text(path, "path");
        match path.get("pathType").and_then(Value::as_str) {
            None => causes.push(required(
                &format!("{at}.pathType"),
                "pathType must be specified",
            )),
            Some("Exact" | "Prefix") => {
                if !value.starts_with('/') {
                    causes.push(invalid_printed(
                        &format!("{at}.path"),
                        &go_string(value),
                        "must be an absolute path",
                    ));
                }
            }
            Some("ImplementationSpecific") => {
                if !value.is_empty() && !value.starts_with('/') {
                    causes.push(invalid_printed(
                        &format!("{at}.path"),
                        &go_string(value),
                        "must be an absolute path",
                    ));
                }
            }
            Some(other) => causes.push(not_supported(
                &format!("{at}.pathType"),
                &go_string(other),
                &["Exact", "ImplementationSpecific", "Prefix"],
            )),
        }
        causes.extend(validate_backend(
            path.get("backend").unwrap_or(&Value::Null),
            &format!("{at}.backend"),
        ));
    }
    causes
}

const DNS1035_MESSAGE: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/// A Service name (`ValidateServiceName`): a DNS-1035 label.
fn dns1035_label_errors(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if name.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        errs.push(DNS1035_MESSAGE.to_string());
    }
    errs
}

/// `IsValidPortName`: an IANA service name.
fn port_name_errors(name: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if name.len() > 15 {
        errs.push("must be no more than 15 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if name.contains("--") {
        errs.push("must not contain consecutive hyphens");
    }
    if !name.chars().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)");
    }
    if name.starts_with('-') || name.ends_with('-') {
        errs.push("must not begin or end with a hyphen");
    }
    errs
}

fn validate_backend(backend: &Value, at: &str) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    let resource = set(backend.get("resource"));
    let service = set(backend.get("service"));
    match (resource, service) {
        (Some(_), Some(_)) => causes.push(invalid_printed(
            at,
            "\"\"",
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => {
            for field in ["kind", "name"] {
                if text(r, field).is_empty() {
                    causes.push(required(&format!("{at}.resource.{field}"), ""));
                }
            }
        }
        (None, Some(s)) => {
            let name = text(s, "name");
            if name.is_empty() {
                causes.push(required(&format!("{at}.service.name"), ""));
            } else {
                for e in dns1035_label_errors(name) {
                    causes.push(invalid_printed(
                        &format!("{at}.service.name"),
                        &go_string(name),
                        &e,
                    ));
                }
            }
            let port_name = s
                .pointer("/port/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let number = s.pointer("/port/number");
            let has_number = number.and_then(Value::as_i64).unwrap_or(0) != 0;
            if !port_name.is_empty() && has_number {
                causes.push(invalid_printed(
                    at,
                    "\"\"",
                    "cannot set both port name & port number",
                ));
            } else if !port_name.is_empty() {
                for e in port_name_errors(port_name) {
                    causes.push(invalid_printed(
                        &format!("{at}.service.port.name"),
                        &go_string(port_name),
                        e,
                    ));
                }
            } else if has_number {
                let n = number.and_then(Value::as_i64).unwrap_or(0);
                if !(1..=65535).contains(&n) {
                    causes.push(invalid_printed(
                        &format!("{at}.service.port.number"),
                        &go_scalar(number.unwrap_or(&Value::Null)),
                        "must be between 1 and 65535, inclusive",
                    ));
                }
            } else {
                causes.push(required(at, "port name or number is required"));
            }
        }
        (None, None) => causes.push(invalid_printed(
            at,
            "\"\"",
            "resource or service backend is required",
        )),
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::validation::fields;

    fn ingress(spec: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": spec})
    }

    #[test]
    fn a_rule_with_a_service_backend_is_valid() {
        let ok = ingress(
            json!({"rules": [{"host": "a.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
            ]}}]}),
        );
        assert!(validate_ingress(&ok).is_empty());
        let wildcard = ingress(json!({"rules": [{"host": "*.example.com"}]}));
        assert!(validate_ingress(&wildcard).is_empty());
    }

    #[test]
    fn rules_or_default_backend_are_required() {
        let causes = validate_ingress(&ingress(json!({})));
        assert_eq!(fields(&causes), ["spec"]);
        assert!(causes[0]
            .message
            .ends_with("either `defaultBackend` or `rules` must be specified"));
    }

    #[test]
    fn hosts_paths_and_backends_are_checked() {
        let bad = ingress(json!({"rules": [
            {"host": "10.0.0.1"},
            {"host": "a.*.com"},
            {"http": {"paths": [
                {"path": "api", "pathType": "Prefix", "backend": {"service": {"name": "Web", "port": {"number": 70000}}}},
                {"path": "/", "backend": {}},
                {"path": "/", "pathType": "Regex", "backend": {"service": {"name": "web", "port": {}}}},
            ]}},
        ]}));
        let causes = validate_ingress(&bad);
        assert_eq!(
            fields(&causes),
            [
                "spec.rules[0].host",
                "spec.rules[1].host",
                "spec.rules[2].http.paths[0].path",
                "spec.rules[2].http.paths[0].backend.service.name",
                "spec.rules[2].http.paths[0].backend.service.port.number",
                "spec.rules[2].http.paths[1].pathType",
                "spec.rules[2].http.paths[1].backend",
                "spec.rules[2].http.paths[2].pathType",
                "spec.rules[2].http.paths[2].backend",
            ]
        );
        assert_eq!(
            causes[0].message,
            r#"Invalid value: "10.0.0.1": must be a DNS name, not an IP address"#
        );
    }
}
