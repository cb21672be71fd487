//! Authentication: who is asking. A chain of authenticators; the first that
//! recognises the request's credential decides: x509 client certificates
//! (already verified against the client CA during the TLS handshake), then
//! bearer tokens from the static token file ([`token_file`]). A bearer
//! token no authenticator recognises is a 401, as is no credential at all
//! (anonymous requests are off unless `--anonymous-auth=true`).

pub mod token_file;

use std::collections::BTreeMap;

/// The DER client certificate the peer presented, verified by TLS.
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Vec<u8>);

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

/// x509: CN is the user name, each O is a group.
fn from_client_certificate(cert: &PeerCertificate) -> Option<UserInfo> {
    let info = pki::cert_info_der(&cert.0).ok()?;
    if info.common_name.is_empty() {
        return None;
    }
    Some(UserInfo {
        name: info.common_name,
        uid: String::new(),
        groups: info.organizations,
        extra: BTreeMap::new(),
    })
}

/// The authenticators the server was configured with.
#[derive(Debug, Default)]
pub struct Authenticators {
    pub token_file: Option<token_file::TokenFile>,
    /// `--anonymous-auth`: requests with no credential at all become
    /// `system:anonymous` in `system:unauthenticated` (off by default).
    pub anonymous: bool,
}

pub const USER_ANONYMOUS: &str = "system:anonymous";
pub const GROUP_UNAUTHENTICATED: &str = "system:unauthenticated";

/// The bearer token of an `Authorization` header, if any.
fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Run the authenticator chain. `None` means no credential was recognised.
pub fn authenticate(
    authenticators: &Authenticators,
    peer: Option<&PeerCertificate>,
    headers: &http::HeaderMap,
) -> Option<UserInfo> {
    let user = peer.and_then(from_client_certificate).or_else(|| {
        let token = bearer_token(headers)?;
        authenticators.token_file.as_ref()?.authenticate(token)
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
