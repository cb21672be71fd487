//! Authentication: who is asking. A chain of authenticators; the first that
//! recognises the request's credential decides. Today: x509 client
//! certificates (already verified against the client CA during the TLS
//! handshake). Token authenticators join the chain in [`authenticate`].

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

/// Run the authenticator chain. `None` means no credential was recognised
/// (anonymous requests are refused: 401).
pub fn authenticate(peer: Option<&PeerCertificate>) -> Option<UserInfo> {
    let mut user = peer.and_then(from_client_certificate)?;
    if !user.in_group(GROUP_AUTHENTICATED) {
        user.groups.push(GROUP_AUTHENTICATED.to_string());
    }
    Some(user)
}
