//! Kubeconfig files, as kubectl and client libraries read them.

use std::path::Path;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::{files::write_atomic, PkiError, Result};

/// A kubeconfig with one cluster, one user and one context, all named after
/// the cluster. Credentials are embedded, never referenced by path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kubeconfig {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub clusters: Vec<NamedCluster>,
    pub users: Vec<NamedUser>,
    pub contexts: Vec<NamedContext>,
    #[serde(rename = "current-context")]
    pub current_context: String,
    #[serde(default)]
    pub preferences: serde_yaml::Mapping,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamedCluster {
    pub name: String,
    pub cluster: Cluster,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cluster {
    pub server: String,
    #[serde(rename = "certificate-authority-data")]
    pub certificate_authority_data: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamedUser {
    pub name: String,
    pub user: User,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct User {
    #[serde(
        rename = "client-certificate-data",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_certificate_data: Option<String>,
    #[serde(rename = "client-key-data", skip_serializing_if = "Option::is_none")]
    pub client_key_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamedContext {
    pub name: String,
    pub context: Context,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Context {
    pub cluster: String,
    pub user: String,
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64(s: &str) -> Result<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| PkiError::Kubeconfig(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| PkiError::Kubeconfig(e.to_string()))
}

impl Kubeconfig {
    /// A kubeconfig authenticating with a client certificate.
    pub fn with_client_cert(
        name: &str,
        server: &str,
        ca_pem: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> Self {
        Self::with_user(
            name,
            server,
            ca_pem,
            User {
                client_certificate_data: Some(b64(cert_pem)),
                client_key_data: Some(b64(key_pem)),
                token: None,
            },
        )
    }

    /// A kubeconfig authenticating with a bearer token.
    pub fn with_token(name: &str, server: &str, ca_pem: &str, token: &str) -> Self {
        Self::with_user(
            name,
            server,
            ca_pem,
            User {
                token: Some(token.to_string()),
                ..User::default()
            },
        )
    }

    fn with_user(name: &str, server: &str, ca_pem: &str, user: User) -> Self {
        Kubeconfig {
            api_version: "v1".into(),
            kind: "Config".into(),
            clusters: vec![NamedCluster {
                name: name.into(),
                cluster: Cluster {
                    server: server.into(),
                    certificate_authority_data: b64(ca_pem),
                },
            }],
            users: vec![NamedUser {
                name: name.into(),
                user,
            }],
            contexts: vec![NamedContext {
                name: name.into(),
                context: Context {
                    cluster: name.into(),
                    user: name.into(),
                },
            }],
            current_context: name.into(),
            preferences: Default::default(),
        }
    }

    pub fn to_yaml(&self) -> Result<String> {
        serde_yaml::to_string(self).map_err(|e| PkiError::Kubeconfig(e.to_string()))
    }

    pub fn from_yaml(text: &str) -> Result<Self> {
        serde_yaml::from_str(text).map_err(|e| PkiError::Kubeconfig(e.to_string()))
    }

    pub fn load(path: &Path) -> Result<Self> {
        Self::from_yaml(&crate::files::read(path)?)
    }

    /// Write atomically with the given file mode.
    pub fn write(&self, path: &Path, mode: u32) -> Result<()> {
        write_atomic(path, self.to_yaml()?.as_bytes(), mode)
    }

    fn current(&self) -> Result<(&Cluster, &User)> {
        let ctx = self
            .contexts
            .iter()
            .find(|c| c.name == self.current_context)
            .ok_or_else(|| PkiError::Kubeconfig("current context not found".into()))?;
        let cluster = self
            .clusters
            .iter()
            .find(|c| c.name == ctx.context.cluster)
            .ok_or_else(|| PkiError::Kubeconfig("cluster not found".into()))?;
        let user = self
            .users
            .iter()
            .find(|u| u.name == ctx.context.user)
            .ok_or_else(|| PkiError::Kubeconfig("user not found".into()))?;
        Ok((&cluster.cluster, &user.user))
    }

    /// The current context's server URL.
    pub fn server(&self) -> Result<String> {
        Ok(self.current()?.0.server.clone())
    }

    /// The current context's CA certificate (PEM).
    pub fn ca_pem(&self) -> Result<String> {
        unb64(&self.current()?.0.certificate_authority_data)
    }

    /// The current user's client certificate and key (PEM), if any.
    pub fn client_cert(&self) -> Result<Option<(String, String)>> {
        let user = self.current()?.1;
        match (&user.client_certificate_data, &user.client_key_data) {
            (Some(c), Some(k)) => Ok(Some((unb64(c)?, unb64(k)?))),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_round_trips_and_is_written_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/admin.yaml");
        let kc = Kubeconfig::with_client_cert("default", "https://127.0.0.1:6443", "CA", "C", "K");
        kc.write(&path, 0o600).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = Kubeconfig::load(&path).unwrap();
        assert_eq!(back.server().unwrap(), "https://127.0.0.1:6443");
        assert_eq!(back.ca_pem().unwrap(), "CA");
        assert_eq!(
            back.client_cert().unwrap(),
            Some(("C".to_string(), "K".to_string()))
        );
    }
}
