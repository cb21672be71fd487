//! Bootstrap tokens from the command line (`rustkube token create|list|
//! delete`) and the server's join token.
//!
//! A bootstrap token is a Secret `kube-system/bootstrap-token-<id>` the API
//! server authenticates as `system:bootstrap:<id>`. Tokens are printed in
//! the join form `K10<sha256 of the cluster CA>::<id>.<secret>`: a joining
//! node checks the CA it is shown against the hash before trusting the
//! server, then uses the `<id>.<secret>` part as its bearer token.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, ListParams, PostParams};

pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
pub const DEFAULT_GROUP: &str = "system:bootstrappers:rustkube:default-node-token";
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// `n` random characters of `[a-z0-9]`.
fn random(n: usize) -> String {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for byte in uuid::Uuid::new_v4().as_bytes() {
            // 252 = 7 * 36: no bias from the modulo.
            if *byte < 252 && out.len() < n {
                out.push(ALPHABET[usize::from(*byte) % ALPHABET.len()] as char);
            }
        }
    }
    out
}

/// A new `<id>.<secret>`.
pub fn generate() -> String {
    format!("{}.{}", random(6), random(16))
}

/// The join form of a token: `K10<sha256(ca pem) hex>::<token>`.
pub fn join_token(ca_pem: &str, token: &str) -> String {
    let digest: String = pki::sha256(ca_pem.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("K10{digest}::{token}")
}

/// What a token's Secret holds.
pub struct TokenSpec<'a> {
    pub token: &'a str,
    pub ttl: Option<std::time::Duration>,
    pub description: &'a str,
    pub groups: &'a [String],
}

pub fn secret_for(spec: &TokenSpec<'_>) -> Result<Secret, String> {
    let (id, secret) = spec
        .token
        .split_once('.')
        .ok_or_else(|| "a token is <6 characters>.<16 characters>".to_string())?;
    let mut data: BTreeMap<String, ByteString> = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        data.insert(k.to_string(), ByteString(v.as_bytes().to_vec()));
    };
    put("token-id", id);
    put("token-secret", secret);
    put("usage-bootstrap-authentication", "true");
    put("usage-bootstrap-signing", "true");
    if !spec.description.is_empty() {
        put("description", spec.description);
    }
    if !spec.groups.is_empty() {
        for g in spec.groups {
            if !g.starts_with("system:bootstrappers:") {
                return Err(format!("group {g:?} must start with system:bootstrappers:"));
            }
        }
        put("auth-extra-groups", &spec.groups.join(","));
    }
    if let Some(ttl) = spec.ttl.filter(|t| !t.is_zero()) {
        let at = time::OffsetDateTime::now_utc() + ttl;
        let text = at
            .replace_nanosecond(0)
            .unwrap_or(at)
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| e.to_string())?;
        put("expiration", &text);
    }
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(format!("bootstrap-token-{id}")),
            namespace: Some("kube-system".into()),
            ..Default::default()
        },
        type_: Some(SECRET_TYPE.into()),
        data: Some(data),
        ..Default::default()
    })
}

pub async fn create(client: kube::Client, spec: &TokenSpec<'_>) -> Result<(), String> {
    let api: Api<Secret> = Api::namespaced(client, "kube-system");
    let secret = secret_for(spec)?;
    api.create(&PostParams::default(), &secret)
        .await
        .map(|_| ())
        .map_err(|e| format!("creating the token: {e}"))
}

/// Make sure the Secret of `token` exists (the server's join token).
pub async fn ensure(client: kube::Client, spec: &TokenSpec<'_>) -> Result<(), String> {
    match create(client, spec).await {
        Err(e) if e.contains("AlreadyExists") || e.contains("already exists") => Ok(()),
        other => other,
    }
}

pub async fn delete(client: kube::Client, token: &str) -> Result<String, String> {
    let id = token
        .rsplit("::")
        .next()
        .unwrap_or(token)
        .split('.')
        .next()
        .unwrap_or("");
    let api: Api<Secret> = Api::namespaced(client, "kube-system");
    api.delete(&format!("bootstrap-token-{id}"), &DeleteParams::default())
        .await
        .map_err(|e| format!("deleting token {id}: {e}"))?;
    Ok(id.to_string())
}

fn field(secret: &Secret, key: &str) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .unwrap_or_default()
}

/// The `token list` table, kubeadm's columns.
pub async fn list(client: kube::Client) -> Result<String, String> {
    let api: Api<Secret> = Api::namespaced(client, "kube-system");
    let secrets = api
        .list(&ListParams::default().fields(&format!("type={SECRET_TYPE}")))
        .await
        .map_err(|e| format!("listing tokens: {e}"))?;
    let mut rows = vec![[
        "TOKEN".to_string(),
        "TTL".into(),
        "EXPIRES".into(),
        "USAGES".into(),
        "DESCRIPTION".into(),
        "EXTRA GROUPS".into(),
    ]];
    let now = time::OffsetDateTime::now_utc();
    for s in &secrets.items {
        let expires = field(s, "expiration");
        let ttl = match time::OffsetDateTime::parse(
            &expires,
            &time::format_description::well_known::Rfc3339,
        ) {
            Ok(at) if at > now => {
                let secs = (at - now).whole_seconds();
                if secs >= 3600 {
                    format!("{}h", secs / 3600)
                } else {
                    format!("{}m", secs / 60)
                }
            }
            Ok(_) => "<expired>".into(),
            Err(_) if expires.is_empty() => "<forever>".into(),
            Err(_) => "<invalid>".into(),
        };
        let mut usages: Vec<&str> = Vec::new();
        if field(s, "usage-bootstrap-authentication") == "true" {
            usages.push("authentication");
        }
        if field(s, "usage-bootstrap-signing") == "true" {
            usages.push("signing");
        }
        rows.push([
            format!("{}.{}", field(s, "token-id"), field(s, "token-secret")),
            ttl,
            if expires.is_empty() {
                "<never>".into()
            } else {
                expires
            },
            usages.join(","),
            field(s, "description"),
            field(s, "auth-extra-groups"),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    Ok(out)
}

/// Parse `24h`, `30m`, `90s`, `0` (never expires).
pub fn parse_ttl(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{text:?} is not a duration like 24h, 30m or 0");
    if text == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(bad()),
    };
    Ok(std::time::Duration::from_secs(secs))
}

/// The CA PEM of a kubeconfig's current cluster (for the join form).
pub fn ca_of_kubeconfig(path: &Path) -> Result<String, String> {
    let config = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let data = config
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.certificate_authority_data.clone())
        .ok_or_else(|| format!("{}: no certificate-authority-data", path.display()))?;
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data)
        .map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_the_bootstrap_shape() {
        for _ in 0..50 {
            let t = generate();
            let (id, secret) = t.split_once('.').unwrap();
            assert_eq!((id.len(), secret.len()), (6, 16));
            assert!(t
                .chars()
                .all(|c| c == '.' || c.is_ascii_lowercase() || c.is_ascii_digit()));
        }
    }

    #[test]
    fn ttls_and_secrets() {
        assert_eq!(parse_ttl("24h").unwrap().as_secs(), 86400);
        assert_eq!(parse_ttl("30m").unwrap().as_secs(), 1800);
        assert!(parse_ttl("0").unwrap().is_zero());
        assert!(parse_ttl("soon").is_err());
        let groups = vec!["system:bootstrappers:workers".to_string()];
        let s = secret_for(&TokenSpec {
            token: "abcdef.0123456789abcdef",
            ttl: Some(std::time::Duration::from_secs(60)),
            description: "d",
            groups: &groups,
        })
        .unwrap();
        assert_eq!(s.metadata.name.as_deref(), Some("bootstrap-token-abcdef"));
        assert!(field(&s, "expiration").ends_with('Z'));
        let bad = vec!["admins".to_string()];
        assert!(secret_for(&TokenSpec {
            token: "abcdef.0123456789abcdef",
            ttl: None,
            description: "",
            groups: &bad
        })
        .is_err());
    }

    #[test]
    fn join_tokens_pin_the_ca() {
        let join = join_token("PEM", "abcdef.0123456789abcdef");
        assert!(join.starts_with("K10"));
        assert!(join.ends_with("::abcdef.0123456789abcdef"));
        assert_eq!(join.len(), 3 + 64 + 2 + 23);
    }
}
