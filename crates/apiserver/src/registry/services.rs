//! core/v1 Service: defaults, ClusterIP and NodePort allocation, and the
//! fields that may not change. Everything else (decoding, name rule, table)
//! comes from the generic entry this strategy wraps.

use std::net::IpAddr;
use std::sync::Arc;

use apimachinery::{ApiError, ResourceInfo, StatusCause};
use serde_json::{json, Value};

use super::{DeleteAction, HookContext, Strategy};
use crate::table::Column;

pub struct ServiceStrategy {
    pub inner: Arc<dyn Strategy>,
}

fn service_type(obj: &Value) -> &str {
    obj.pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

fn wants_node_ports(obj: &Value) -> bool {
    matches!(service_type(obj), "NodePort" | "LoadBalancer")
}

fn cluster_ip(obj: &Value) -> Option<IpAddr> {
    obj.pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

fn node_ports(obj: &Value) -> Vec<u16> {
    obj.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .filter_map(|p| u16::try_from(p).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Upstream's defaults for a Service's spec.
fn set_defaults(obj: &mut Value) {
    if !obj.get("spec").is_some_and(Value::is_object) {
        obj["spec"] = json!({});
    }
    let spec = &mut obj["spec"];
    if spec.get("type").and_then(Value::as_str).is_none() {
        spec["type"] = json!("ClusterIP");
    }
    let external_name = spec["type"] == "ExternalName";
    if spec.get("sessionAffinity").is_none() {
        spec["sessionAffinity"] = json!("None");
    }
    if !external_name {
        if spec.get("internalTrafficPolicy").is_none() {
            spec["internalTrafficPolicy"] = json!("Cluster");
        }
        if matches!(spec["type"].as_str(), Some("NodePort" | "LoadBalancer"))
            && spec.get("externalTrafficPolicy").is_none()
        {
            spec["externalTrafficPolicy"] = json!("Cluster");
        }
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports {
            if port.get("protocol").is_none() {
                port["protocol"] = json!("TCP");
            }
            if port.get("targetPort").is_none() {
                if let Some(p) = port.get("port").cloned() {
                    port["targetPort"] = p;
                }
            }
        }
    }
}

impl ServiceStrategy {
    /// Allocate the ClusterIP (unless headless or ExternalName) and fill in
    /// clusterIPs and the IP family fields.
    async fn allocate_cluster_ip(
        &self,
        ctx: &HookContext<'_>,
        obj: &mut Value,
    ) -> Result<Option<IpAddr>, ApiError> {
        if service_type(obj) == "ExternalName" {
            return Ok(None);
        }
        let requested = obj
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if requested == "None" {
            obj["spec"]["clusterIPs"] = json!(["None"]);
            return Ok(None);
        }
        let wanted = if requested.is_empty() {
            None
        } else {
            Some(requested.parse::<IpAddr>().map_err(|_| {
                ApiError::invalid(
                    "Service",
                    "",
                    meta_name(obj),
                    vec![StatusCause::invalid(
                        "spec.clusterIPs[0]",
                        &json!(requested),
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    )],
                )
            })?)
        };
        let ip = ctx
            .service_ips
            .allocate(ctx.store.as_ref(), wanted, "spec.clusterIPs[0]")
            .await?;
        obj["spec"]["clusterIP"] = json!(ip.to_string());
        obj["spec"]["clusterIPs"] = json!([ip.to_string()]);
        obj["spec"]["ipFamilies"] = json!([if ip.is_ipv4() { "IPv4" } else { "IPv6" }]);
        if obj.pointer("/spec/ipFamilyPolicy").is_none() {
            obj["spec"]["ipFamilyPolicy"] = json!("SingleStack");
        }
        Ok(Some(ip))
    }

    /// Give every port of a NodePort/LoadBalancer service a node port.
    async fn allocate_node_ports(
        &self,
        ctx: &HookContext<'_>,
        obj: &mut Value,
        keep: &[u16],
    ) -> Result<Vec<u16>, ApiError> {
        let mut taken = Vec::new();
        if !wants_node_ports(obj) {
            return Ok(taken);
        }
        let count = obj
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        for i in 0..count {
            // 0 (what `kubectl create service nodeport` sends) means any.
            let requested = obj["spec"]["ports"][i]
                .get("nodePort")
                .and_then(Value::as_u64)
                .filter(|p| *p != 0);
            if let Some(p) = requested.and_then(|p| u16::try_from(p).ok()) {
                if keep.contains(&p) {
                    continue;
                }
            }
            match ctx.allocate_node_port(requested).await {
                Ok(port) => {
                    obj["spec"]["ports"][i]["nodePort"] = json!(port);
                    taken.push(port);
                }
                Err(e) => {
                    for p in &taken {
                        ctx.release_node_port(*p).await;
                    }
                    let field = format!("spec.ports[{i}].nodePort");
                    return Err(ApiError::invalid(
                        "Service",
                        "",
                        meta_name(obj),
                        vec![StatusCause::invalid(&field, &json!(requested), &e)],
                    ));
                }
            }
        }
        Ok(taken)
    }
}

fn meta_name(obj: &Value) -> &str {
    apimachinery::meta::name(obj)
}

#[async_trait::async_trait]
impl Strategy for ServiceStrategy {
    forward_to_inner!(
        info,
        decode,
        decode_json,
        delete_action,
        has_status_subresource,
        columns,
        cells
    );

    fn prepare_for_create(&self, obj: &mut Value) {
        self.inner.prepare_for_create(obj);
        set_defaults(obj);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        self.inner.prepare_for_update(new, old);
        set_defaults(new);
        // An unset clusterIP on update means "keep it".
        let unset = new
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty();
        if unset && service_type(new) != "ExternalName" && service_type(old) != "ExternalName" {
            for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                if let Some(v) = old.pointer(&format!("/spec/{field}")) {
                    new["spec"][field] = v.clone();
                }
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<StatusCause> {
        let mut causes = self.inner.validate(obj);
        let ports = obj.pointer("/spec/ports").and_then(Value::as_array);
        let headless = obj.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None");
        if service_type(obj) != "ExternalName" && !headless && ports.is_none_or(Vec::is_empty) {
            causes.push(StatusCause::required("spec.ports"));
        }
        for (i, port) in ports.into_iter().flatten().enumerate() {
            let valid = port
                .get("port")
                .and_then(Value::as_u64)
                .is_some_and(|p| (1..=65535).contains(&p));
            if !valid {
                causes.push(StatusCause::invalid(
                    &format!("spec.ports[{i}].port"),
                    port.get("port").unwrap_or(&Value::Null),
                    "must be between 1 and 65535, inclusive",
                ));
            }
        }
        if ports.is_some_and(|p| p.len() > 1) {
            for (i, port) in ports.into_iter().flatten().enumerate() {
                if port
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                {
                    causes.push(StatusCause::required(&format!("spec.ports[{i}].name")));
                }
            }
        }
        if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&service_type(obj)) {
            causes.push(StatusCause {
                reason: "FieldValueNotSupported".into(),
                message: format!("Unsupported value: {:?}: supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"", service_type(obj)),
                field: "spec.type".into(),
            });
        }
        causes
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<StatusCause> {
        let mut causes = self.validate(new);
        let external = service_type(new) == "ExternalName" || service_type(old) == "ExternalName";
        if !external && new.pointer("/spec/clusterIP") != old.pointer("/spec/clusterIP") {
            causes.push(StatusCause::invalid(
                "spec.clusterIPs[0]",
                new.pointer("/spec/clusterIP").unwrap_or(&Value::Null),
                "may not change once set",
            ));
        }
        causes
    }

    async fn before_create(&self, ctx: &HookContext<'_>, obj: &mut Value) -> Result<(), ApiError> {
        let ip = self.allocate_cluster_ip(ctx, obj).await?;
        if let Err(e) = self.allocate_node_ports(ctx, obj, &[]).await {
            if let Some(ip) = ip {
                ctx.service_ips.release(ctx.store.as_ref(), ip).await;
            }
            return Err(e);
        }
        Ok(())
    }

    async fn undo_create(&self, ctx: &HookContext<'_>, obj: &Value) {
        self.after_delete(ctx, obj).await;
    }

    async fn before_update(
        &self,
        ctx: &HookContext<'_>,
        new: &mut Value,
        old: &Value,
    ) -> Result<(), ApiError> {
        let was_external = service_type(old) == "ExternalName";
        if was_external && service_type(new) != "ExternalName" {
            self.allocate_cluster_ip(ctx, new).await?;
        }
        if service_type(new) == "ExternalName" {
            for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove(field);
                }
            }
        }
        if !wants_node_ports(new) {
            if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for p in ports {
                    if let Some(p) = p.as_object_mut() {
                        p.remove("nodePort");
                    }
                }
            }
        }
        let kept = if wants_node_ports(old) {
            node_ports(old)
        } else {
            Vec::new()
        };
        self.allocate_node_ports(ctx, new, &kept).await?;
        Ok(())
    }

    async fn after_update(&self, ctx: &HookContext<'_>, new: &Value, old: &Value) {
        if let Some(ip) = cluster_ip(old) {
            if cluster_ip(new) != Some(ip) {
                ctx.service_ips.release(ctx.store.as_ref(), ip).await;
            }
        }
        let still = node_ports(new);
        for p in node_ports(old) {
            if !still.contains(&p) {
                ctx.release_node_port(p).await;
            }
        }
    }

    async fn after_delete(&self, ctx: &HookContext<'_>, obj: &Value) {
        if let Some(ip) = cluster_ip(obj) {
            ctx.service_ips.release(ctx.store.as_ref(), ip).await;
        }
        for p in node_ports(obj) {
            ctx.release_node_port(p).await;
        }
    }
}
