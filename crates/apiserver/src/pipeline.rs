//! The request pipeline. The order of stages is readable in [`handle`]:
//! recover panics -> request info -> authenticate -> impersonate -> audit
//! -> authorize -> route (and the audit event of the response).
//! Each stage is a small function with one input and one output.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use apimachinery::ApiError;
use futures::FutureExt;
use http::{Request, Response};
use hyper::body::Incoming;

use crate::authn::{self, PeerCertificate, UserInfo};
use crate::authz::{self, Decision};
use crate::query::Query;
use crate::request_info::{self, RequestInfo};
use crate::response::{self, Body};
use crate::ApiServer;

/// Everything later stages know about a request.
pub struct RequestContext {
    pub info: RequestInfo,
    pub user: UserInfo,
    pub query: Query,
}

pub async fn handle(
    state: Arc<ApiServer>,
    peer: Arc<Option<PeerCertificate>>,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let scope = crate::audit::ScopeHandle::default();
    let mut record = state.audit.as_ref().map(|_| crate::audit::Record {
        scope: scope.clone(),
        audit_id: uuid::Uuid::new_v4().to_string(),
        received: crate::audit::timestamp(),
        request_uri: uri.to_string(),
        source_ip: remote.ip().to_string(),
        user_agent: req
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        ..Default::default()
    });
    // Stage: recover panics, so one bad request never takes the server down.
    let outcome = AssertUnwindSafe(crate::audit::run_in_scope(
        scope,
        authenticated_pipeline(state.clone(), peer, req, record.as_mut()),
    ))
    .catch_unwind()
    .await;
    let resp = match outcome {
        Ok(Ok(resp)) => resp,
        Ok(Err(err)) => response::error(&err),
        Err(_) => {
            tracing::error!(%method, %uri, "handler panicked");
            response::error(&ApiError::internal(
                "the server panicked while handling the request",
            ))
        }
    };
    // Stage: audit (ResponseStarted for long-running requests, and
    // ResponseComplete, for streams once they end).
    let resp = match (&state.audit, record) {
        (Some(auditor), Some(mut record)) => {
            let (level, omit) = auditor.evaluate(&record);
            // Requests refused before the audit stage learn their level here.
            record.set_level(level);
            let resp = crate::audit::observe_response(&mut record, resp).await;
            let code = Some(resp.status().as_u16());
            let omitted = |stage: &str| omit.iter().any(|s| s == stage);
            let long_running = record
                .info
                .as_ref()
                .is_some_and(crate::audit::is_long_running);
            if long_running && !omitted("ResponseStarted") {
                auditor.emit(&record, level, "ResponseStarted", code);
            }
            if omitted("ResponseComplete") {
                resp
            } else if long_running {
                crate::audit::complete_when_streamed(auditor.clone(), record, level, resp)
            } else {
                auditor.emit(&record, level, "ResponseComplete", code);
                resp
            }
        }
        _ => resp,
    };
    tracing::debug!(%remote, %method, %uri, code = resp.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    Ok(resp)
}

async fn authenticated_pipeline(
    state: Arc<ApiServer>,
    peer: Arc<Option<PeerCertificate>>,
    req: Request<Incoming>,
    mut audit: Option<&mut crate::audit::Record>,
) -> Result<Response<Body>, ApiError> {
    // Stage: request info.
    let query = Query::parse(req.uri().query().unwrap_or(""));
    let info = request_info::resolve(
        req.method(),
        req.uri().path(),
        req.uri().query().unwrap_or(""),
    );
    if let Some(record) = audit.as_deref_mut() {
        record.info = Some(info.clone());
    }
    // Stage: authenticate.
    let Some(user) = authn::authenticate(&state, peer.as_ref().as_ref(), req.headers()) else {
        return Err(refuse(req, ApiError::unauthorized()).await);
    };
    if let Some(record) = audit.as_deref_mut() {
        record.user = Some(user.clone());
    }
    // Stage: impersonate.
    let authenticated = user.clone();
    let user = match crate::impersonation::apply(&state, user, req.headers()).await {
        Ok(user) => user,
        Err(err) => return Err(refuse(req, err).await),
    };
    // Stage: audit (the request has arrived; the level is now known).
    if let (Some(auditor), Some(record)) = (&state.audit, audit.as_deref_mut()) {
        if user != authenticated {
            record.impersonated = Some(user.clone());
        }
        let (level, omit) = auditor.evaluate(record);
        record.set_level(level);
        if !omit.iter().any(|s| s == "RequestReceived") {
            auditor.emit(record, level, "RequestReceived", None);
        }
    }
    // Stage: authorize.
    let decision = authz::authorize(&state, &user, &info).await;
    if let Some(record) = audit {
        record.decision = Some(decision == Decision::Allow);
        if decision == Decision::Allow && record.level() > crate::audit::Level::None {
            record.reason = Some(crate::audit::authorization_reason(&state, &user, &info).await);
        }
    }
    if decision == Decision::Deny {
        return Err(refuse(req, forbidden(&user, &info)).await);
    }
    let ctx = RequestContext { info, user, query };
    // Stage: route to a handler.
    route(&state, ctx, req).await
}

/// Refuse a request before its body was read. A small body is read and
/// dropped first (at most 256 KiB, for at most a second) so the client,
/// still sending, gets the refusal instead of a reset connection.
async fn refuse(req: Request<Incoming>, err: ApiError) -> ApiError {
    use http_body_util::BodyExt;
    let body = http_body_util::Limited::new(req.into_body(), 256 * 1024);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), body.collect()).await;
    err
}

fn forbidden(user: &UserInfo, info: &RequestInfo) -> ApiError {
    if info.is_resource_request {
        let resource = if info.subresource.is_empty() {
            info.resource.clone()
        } else {
            format!("{}/{}", info.resource, info.subresource)
        };
        ApiError::forbidden(
            &user.name,
            &info.verb,
            &resource,
            &info.group,
            &info.name,
            &info.namespace,
        )
    } else {
        ApiError::forbidden_message(format!(
            "forbidden: User \"{}\" cannot {} path \"{}\"",
            user.name, info.verb, info.path
        ))
    }
}

async fn route(
    state: &Arc<ApiServer>,
    ctx: RequestContext,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    if ctx.info.is_resource_request {
        return crate::rest::serve(state, ctx, req).await;
    }
    let path = ctx.info.path.trim_end_matches('/');
    match path {
        "/version" => Ok(response::json(200, &crate::discovery::version())),
        "/api" | "/apis" => crate::discovery::serve(state, &ctx, req.headers()),
        p if p.starts_with("/api/") || p.starts_with("/apis/") => {
            crate::discovery::serve(state, &ctx, req.headers())
        }
        "/openapi/v2" => Ok(crate::openapi::serve_v2(&state.registry, req.headers())),
        p if p == "/openapi/v3" || p.starts_with("/openapi/v3/") => crate::openapi::serve_v3(
            &state.registry,
            p,
            req.uri().query().unwrap_or(""),
            req.headers(),
        ),
        "/.well-known/openid-configuration" | "/openid/v1/jwks" => {
            let tokens = state
                .authenticators
                .service_accounts
                .as_ref()
                .ok_or_else(ApiError::path_not_found)?;
            let doc = if path == "/openid/v1/jwks" {
                tokens.jwks()
            } else {
                tokens.openid_configuration()
            };
            Ok(response::json(200, &doc))
        }
        p if crate::health::is_health_path(p) => {
            Ok(crate::health::serve(state, p, &ctx.query).await)
        }
        _ => Err(ApiError::path_not_found()),
    }
}
