//! `/healthz`, `/livez`, `/readyz`: named checks, `?verbose`, `?exclude=`,
//! and `/<endpoint>/<check>` for one check.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use http::Response;

use crate::query::Query;
use crate::response::{self, Body};
use crate::ApiServer;

const ENDPOINTS: &[&str] = &["/healthz", "/livez", "/readyz"];

pub fn is_health_path(path: &str) -> bool {
    ENDPOINTS
        .iter()
        .any(|e| path == *e || path.strip_prefix(e).is_some_and(|r| r.starts_with('/')))
}

/// Names of the checks an endpoint runs, in order.
fn checks_for(endpoint: &str) -> Vec<&'static str> {
    let mut checks = vec!["ping", "log", "etcd"];
    if endpoint == "/readyz" {
        checks.push("poststarthook/start-system-namespaces-controller");
        checks.push("shutdown");
    } else {
        checks.push("poststarthook/start-system-namespaces-controller");
    }
    checks
}

async fn run_check(state: &ApiServer, name: &str) -> bool {
    match name {
        "ping" | "log" | "shutdown" => true,
        "etcd" => matches!(
            tokio::time::timeout(Duration::from_secs(2), state.store.current_revision()).await,
            Ok(Ok(_))
        ),
        "poststarthook/start-system-namespaces-controller" => {
            state.bootstrapped.load(Ordering::Acquire)
        }
        _ => false,
    }
}

pub async fn serve(state: &Arc<ApiServer>, path: &str, query: &Query) -> Response<Body> {
    let Some(endpoint) = ENDPOINTS.iter().find(|e| path.starts_with(**e)) else {
        return response::text(404, "not found\n".into());
    };
    let endpoint_name = endpoint.trim_start_matches('/');
    let all = checks_for(endpoint);
    // A single named check: /readyz/etcd.
    if let Some(single) = path
        .strip_prefix(endpoint)
        .and_then(|r| r.strip_prefix('/'))
    {
        if !all.contains(&single) {
            return response::text(404, format!("no such check: {single}\n"));
        }
        return if run_check(state, single).await {
            response::text(200, "ok".into())
        } else {
            response::text(
                500,
                format!("internal server error: {single} check failed\n"),
            )
        };
    }
    let excluded: Vec<&str> = query.str("exclude").split(',').collect();
    let verbose = query.get("verbose").is_some();
    let mut report = String::new();
    let mut failed = false;
    for name in all {
        if excluded.contains(&name) {
            report.push_str(&format!("[+]{name} excluded: ok\n"));
            continue;
        }
        if run_check(state, name).await {
            report.push_str(&format!("[+]{name} ok\n"));
        } else {
            failed = true;
            report.push_str(&format!("[-]{name} failed: reason withheld\n"));
        }
    }
    if failed {
        report.push_str(&format!("{endpoint_name} check failed\n"));
        return response::text(500, report);
    }
    if verbose {
        report.push_str(&format!("{endpoint_name} check passed\n"));
        response::text(200, report)
    } else {
        response::text(200, "ok".into())
    }
}
