//! Authentication: who is asking. A chain of authenticators; the first that
//! recognises the request's credential decides: x509 client certificates
//! (already verified against the client CA during the TLS handshake), HTTP
//! basic credentials from the legacy `--basic-auth-file` (only when given),
//! then bearer tokens: the static token file ([`token_file`]), bootstrap tokens
//! ([`bootstrap_token`]), service-account JWTs ([`service_account`]). A
//! bearer token no authenticator recognises is a 401, as is no credential
//! at all (anonymous requests are off unless `--anonymous-auth=true`).

pub mod bootstrap_token;
pub mod service_account;
pub mod token_file;

pub use token_file::constant_time_eq;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::ApiServer;

/// The client certificate a connection's peer presented, verified by TLS.
/// Its identity is read once per connection, not once per request: the
/// certificate cannot change while the connection lives.
#[derive(Debug)]
pub struct PeerCertificate {
    der: Vec<u8>,
    identity: OnceLock<Option<UserInfo>>,
}

impl PeerCertificate {
    pub fn new(der: Vec<u8>) -> PeerCertificate {
        PeerCertificate {
            der,
            identity: OnceLock::new(),
        }
    }

    /// x509: CN is the user name, each O is a group. `None` for a
    /// certificate without a CN.
    fn identity(&self) -> Option<&UserInfo> {
        self.identity
            .get_or_init(|| {
                let info = pki::cert_info_der(&self.der).ok()?;
                if info.common_name.is_empty() {
                    return None;
                }
                Some(UserInfo {
                    name: info.common_name,
                    uid: String::new(),
                    groups: info.organizations,
                    extra: BTreeMap::new(),
                })
            })
            .as_ref()
    }
}

/// An authenticated identity (`user.Info` upstream).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

pub const GROUP_AUTHENTICATED: &str = "system:authenticated";
pub const GROUP_MASTERS: &str = "system:masters";

/// The authenticators the server was configured with.
#[derive(Debug, Default)]
pub struct Authenticators {
    pub token_file: Option<token_file::TokenFile>,
    /// `--basic-auth-file` (legacy HTTP basic authentication; off unless
    /// given).
    pub basic_auth: Option<token_file::TokenFile>,
    /// Service-account token signing and verification (also used by the
    /// TokenRequest API and the legacy token Secrets).
    pub service_accounts: Option<service_account::ServiceAccountTokens>,
    /// `--anonymous-auth`: requests with no credential at all become
    /// `system:anonymous` in `system:unauthenticated` (off by default).
    pub anonymous: bool,
}

pub const USER_ANONYMOUS: &str = "system:anonymous";
pub const GROUP_UNAUTHENTICATED: &str = "system:unauthenticated";

/// The user and password of an `Authorization: Basic` header, if any.
fn basic_credentials(headers: &http::HeaderMap) -> Option<(String, String)> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The bearer token of an `Authorization` header, if any.
fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A bearer token through the token authenticators (static file,
/// bootstrap tokens, service accounts), without the authenticated group.
/// `audiences` overrides the API audiences (TokenReview).
pub fn authenticate_token(
    state: &ApiServer,
    token: &str,
    audiences: Option<&[String]>,
) -> Option<UserInfo> {
    let authenticators = &state.authenticators;
    if let Some(user) = authenticators
        .token_file
        .as_ref()
        .and_then(|f| f.authenticate(token))
    {
        return Some(user);
    }
    if bootstrap_token::parse(token).is_some() {
        return bootstrap_token::authenticate(state, token);
    }
    authenticators
        .service_accounts
        .as_ref()?
        .authenticate(state, token, audiences)
}

/// Run the authenticator chain. `None` means no credential was recognised.
pub fn authenticate(
    state: &ApiServer,
    peer: Option<&PeerCertificate>,
    headers: &http::HeaderMap,
) -> Option<UserInfo> {
    let authenticators = &state.authenticators;
    let user = peer
        .and_then(PeerCertificate::identity)
        .cloned()
        .or_else(|| {
            let (name, password) = basic_credentials(headers)?;
            authenticators
                .basic_auth
                .as_ref()?
                .authenticate_basic(&name, &password)
        })
        .or_else(|| {
            let token = bearer_token(headers)?;
            authenticate_token(state, token, None)
        });
    let no_credential = peer.is_none() && headers.get(http::header::AUTHORIZATION).is_none();
    let mut user = match user {
        Some(u) => u,
        // Anonymous covers only requests that carry no credential; a
        // credential that fails is still a 401.
        None if authenticators.anonymous && no_credential => {
            return Some(UserInfo {
                name: USER_ANONYMOUS.to_string(),
                groups: vec![GROUP_UNAUTHENTICATED.to_string()],
                ..UserInfo::default()
            });
        }
        None => return None,
    };
    if !user.in_group(GROUP_AUTHENTICATED) {
        user.groups.push(GROUP_AUTHENTICATED.to_string());
    }
    Some(user)
}
