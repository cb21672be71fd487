//! Service-account tokens: ES256 JWTs signed with the service-account key.
//!
//! Two kinds, as upstream:
//! - legacy tokens (issuer `kubernetes/serviceaccount`), stored in Secrets
//!   of type `kubernetes.io/service-account-token`; valid while that Secret
//!   still holds the token and the ServiceAccount exists;
//! - bound tokens from the TokenRequest API (issuer `--service-account-issuer`):
//!   audience-bound, expiring, and optionally bound to a Pod, Secret or
//!   Node, rejected once that object (by uid) is gone.
//!
//! [`ServiceAccountTokens::issue`] makes bound tokens;
//! [`ServiceAccountTokens::authenticate`] checks either kind.

use std::collections::BTreeMap;

use pki::jwt::{SigningKey, Validation, VerifyingKey};
use serde_json::{json, Value};

use super::UserInfo;
use crate::ApiServer;

pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
pub const GROUP_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";

/// What a token is bound to besides its service account.
#[derive(Debug, Clone, Default)]
pub struct BoundObject {
    pub kind: String,
    pub name: String,
    pub uid: String,
    /// For a pod: the node it runs on, carried as upstream does.
    pub node: Option<(String, String)>,
}

pub struct ServiceAccountTokens {
    signer: SigningKey,
    keys: Vec<VerifyingKey>,
    pub issuer: String,
    /// Audiences the API server accepts (`--api-audiences`, default the issuer).
    pub api_audiences: Vec<String>,
}

impl std::fmt::Debug for ServiceAccountTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountTokens")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl ServiceAccountTokens {
    pub fn new(key_pem: &str, issuer: &str) -> Result<Self, pki::jwt::JwtError> {
        let signer = SigningKey::from_pem(key_pem)?;
        let keys = vec![signer.verifying_key().clone()];
        Ok(ServiceAccountTokens {
            signer,
            keys,
            issuer: issuer.to_string(),
            api_audiences: vec![issuer.to_string()],
        })
    }

    /// `/openid/v1/jwks`.
    pub fn jwks(&self) -> Value {
        pki::jwt::jwks(&self.keys)
    }

    /// `/.well-known/openid-configuration`.
    pub fn openid_configuration(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/openid/v1/jwks", self.issuer.trim_end_matches('/')),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    }

    /// A bound token (TokenRequest). Returns the token and its expiry (unix).
    pub fn issue(
        &self,
        namespace: &str,
        sa_name: &str,
        sa_uid: &str,
        audiences: &[String],
        expiration_seconds: i64,
        bound: Option<&BoundObject>,
    ) -> Result<(String, i64), pki::jwt::JwtError> {
        let now = now_unix();
        let exp = now + expiration_seconds;
        let mut k8s = json!({
            "namespace": namespace,
            "serviceaccount": {"name": sa_name, "uid": sa_uid},
        });
        if let Some(b) = bound {
            let key = b.kind.to_ascii_lowercase();
            k8s[&key] = json!({"name": b.name, "uid": b.uid});
            if let Some((node, node_uid)) = &b.node {
                k8s["node"] = json!({"name": node, "uid": node_uid});
            }
        }
        let claims = json!({
            "aud": audiences,
            "exp": exp,
            "iat": now,
            "nbf": now,
            "iss": self.issuer,
            "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": k8s,
            "sub": format!("system:serviceaccount:{namespace}:{sa_name}"),
        });
        Ok((pki::jwt::sign(&self.signer, &claims)?, exp))
    }

    /// A legacy token for a service-account token Secret.
    pub fn issue_legacy(
        &self,
        namespace: &str,
        sa_name: &str,
        sa_uid: &str,
        secret_name: &str,
    ) -> Result<String, pki::jwt::JwtError> {
        let claims = json!({
            "iss": LEGACY_ISSUER,
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/secret.name": secret_name,
            "kubernetes.io/serviceaccount/service-account.name": sa_name,
            "kubernetes.io/serviceaccount/service-account.uid": sa_uid,
            "sub": format!("system:serviceaccount:{namespace}:{sa_name}"),
        });
        pki::jwt::sign(&self.signer, &claims)
    }

    /// Check a bearer token; `audiences` overrides the API audiences (for
    /// TokenReview). None when the token is not one of ours or not valid.
    pub fn authenticate(
        &self,
        state: &ApiServer,
        token: &str,
        audiences: Option<&[String]>,
    ) -> Option<UserInfo> {
        let claims = pki::jwt::verify(token, &self.keys).ok()?;
        let issuer = claims.get("iss").and_then(Value::as_str)?;
        if issuer == LEGACY_ISSUER {
            return self.authenticate_legacy(state, token, &claims);
        }
        let audiences = audiences
            .map(<[String]>::to_vec)
            .unwrap_or_else(|| self.api_audiences.clone());
        Validation::new(vec![self.issuer.clone()], audiences)
            .validate(&claims)
            .ok()?;
        claims.get("exp")?;
        let k8s = claims.get("kubernetes.io")?;
        let namespace = k8s.get("namespace").and_then(Value::as_str)?;
        let sa_name = k8s
            .pointer("/serviceaccount/name")
            .and_then(Value::as_str)?;
        let sa_uid = k8s.pointer("/serviceaccount/uid").and_then(Value::as_str)?;
        if cached_uid(state, "serviceaccounts", namespace, sa_name)? != sa_uid {
            return None;
        }
        let mut extra = BTreeMap::new();
        for (kind, key) in [("pod", "pods"), ("secret", "secrets")] {
            if let Some(bound) = k8s.get(kind) {
                let name = bound.get("name").and_then(Value::as_str)?;
                let uid = bound.get("uid").and_then(Value::as_str)?;
                if cached_uid(state, key, namespace, name)? != uid {
                    return None;
                }
                extra.insert(
                    format!("authentication.kubernetes.io/{kind}-name"),
                    vec![name.to_string()],
                );
                extra.insert(
                    format!("authentication.kubernetes.io/{kind}-uid"),
                    vec![uid.to_string()],
                );
            }
        }
        if let Some(node) = k8s.get("node") {
            let name = node.get("name").and_then(Value::as_str)?;
            let uid = node.get("uid").and_then(Value::as_str).unwrap_or("");
            // A node bound only through its pod is informational.
            if k8s.get("pod").is_none() && cached_uid(state, "nodes", "", name)? != uid {
                return None;
            }
            extra.insert(
                "authentication.kubernetes.io/node-name".into(),
                vec![name.to_string()],
            );
            if !uid.is_empty() {
                extra.insert(
                    "authentication.kubernetes.io/node-uid".into(),
                    vec![uid.to_string()],
                );
            }
        }
        if let Some(jti) = claims.get("jti").and_then(Value::as_str) {
            extra.insert(
                "authentication.kubernetes.io/credential-id".into(),
                vec![format!("JTI={jti}")],
            );
        }
        Some(service_account_user(namespace, sa_name, sa_uid, extra))
    }

    fn authenticate_legacy(
        &self,
        state: &ApiServer,
        token: &str,
        claims: &Value,
    ) -> Option<UserInfo> {
        let get = |k: &str| {
            claims
                .get(format!("kubernetes.io/serviceaccount/{k}"))
                .and_then(Value::as_str)
        };
        let namespace = get("namespace")?;
        let secret_name = get("secret.name")?;
        let sa_name = get("service-account.name")?;
        let sa_uid = get("service-account.uid")?;
        // The Secret must still exist and still hold this very token.
        let secret = cached(state, "", "secrets", namespace, secret_name)?;
        let stored = secret.pointer("/data/token").and_then(Value::as_str)?;
        let stored =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, stored).ok()?;
        if !super::constant_time_eq(&stored, token.as_bytes()) {
            return None;
        }
        if cached_uid(state, "serviceaccounts", namespace, sa_name)? != sa_uid {
            return None;
        }
        let mut extra = BTreeMap::new();
        extra.insert(
            "authentication.kubernetes.io/credential-id".into(),
            vec![format!("secret-name={secret_name}")],
        );
        Some(service_account_user(namespace, sa_name, sa_uid, extra))
    }
}

fn service_account_user(
    namespace: &str,
    name: &str,
    uid: &str,
    extra: BTreeMap<String, Vec<String>>,
) -> UserInfo {
    UserInfo {
        name: format!("system:serviceaccount:{namespace}:{name}"),
        uid: uid.to_string(),
        groups: vec![
            GROUP_SERVICE_ACCOUNTS.to_string(),
            format!("{GROUP_SERVICE_ACCOUNTS}:{namespace}"),
        ],
        extra,
    }
}

/// An object as the watch cache holds it now.
pub(crate) fn cached(
    state: &ApiServer,
    group: &str,
    plural: &str,
    namespace: &str,
    name: &str,
) -> Option<Value> {
    let strategy = state.registry.lookup(group, "v1", plural)?;
    let key = strategy.info().key(namespace, name);
    state.cache.get_now(&key).map(|o| o.decode())
}

fn cached_uid(state: &ApiServer, plural: &str, namespace: &str, name: &str) -> Option<String> {
    cached(state, "", plural, namespace, name).and_then(|o| {
        o.pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}
