//! The request pipeline. The order of stages is readable in [`handle`]:
//! recover panics -> request info -> authenticate -> impersonate ->
//! authorize -> route.
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
    // Stage: recover panics, so one bad request never takes the server down.
    let outcome = AssertUnwindSafe(authenticated_pipeline(state, peer, req))
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
    tracing::debug!(%remote, %method, %uri, code = resp.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    Ok(resp)
}

async fn authenticated_pipeline(
    state: Arc<ApiServer>,
    peer: Arc<Option<PeerCertificate>>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    // Stage: request info.
    let query = Query::parse(req.uri().query().unwrap_or(""));
    let info = request_info::resolve(
        req.method(),
        req.uri().path(),
        req.uri().query().unwrap_or(""),
    );
    // Stage: authenticate.
    let user = authn::authenticate(&state, peer.as_ref().as_ref(), req.headers())
        .ok_or_else(ApiError::unauthorized)?;
    // Stage: impersonate.
    let user = crate::impersonation::apply(&state, user, req.headers()).await?;
    // Stage: authorize.
    if authz::authorize(&state, &user, &info).await == Decision::Deny {
        return Err(forbidden(&user, &info));
    }
    let ctx = RequestContext { info, user, query };
    // Stage: route to a handler.
    route(&state, ctx, req).await
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
        "/openapi/v2" => {
            let accept = req
                .headers()
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let (content_type, body) = crate::openapi::serve_v2(accept);
            Ok(response::bytes(200, content_type, body))
        }
        p if p == "/openapi/v3" || p.starts_with("/openapi/v3/") => {
            crate::openapi::serve_v3(&state.registry, p).map(|doc| response::json(200, &doc))
        }
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
