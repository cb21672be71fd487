//! Bootstrap tokens: `<id>.<secret>` (6 and 16 lower-case alphanumerics)
//! backed by Secrets `kube-system/bootstrap-token-<id>` of type
//! `bootstrap.kubernetes.io/token`. A token authenticates as
//! `system:bootstrap:<id>` in `system:bootstrappers` (plus the Secret's
//! `auth-extra-groups`) while the Secret allows authentication, is not
//! expired and is not being deleted. Expired Secrets are removed by the
//! controller manager's token cleaner.

use std::collections::BTreeMap;

use serde_json::Value;

use super::UserInfo;
use crate::ApiServer;

pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
pub const GROUP_BOOTSTRAPPERS: &str = "system:bootstrappers";

/// Split `<id>.<secret>` if the token has that exact shape.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

fn data(secret: &Value, key: &str) -> Option<String> {
    let raw = secret.pointer(&format!("/data/{key}"))?.as_str()?;
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, raw).ok()?;
    String::from_utf8(bytes).ok()
}

/// Whether an RFC 3339 `expiration` is in the past.
pub fn expired(secret: &Value) -> bool {
    let Some(expiration) = data(secret, "expiration") else {
        return false;
    };
    match time::OffsetDateTime::parse(&expiration, &time::format_description::well_known::Rfc3339) {
        Ok(at) => at <= time::OffsetDateTime::now_utc(),
        // An unreadable expiration is treated as expired, as upstream does.
        Err(_) => true,
    }
}

pub fn authenticate(state: &ApiServer, token: &str) -> Option<UserInfo> {
    let (id, secret_part) = parse(token)?;
    let secret = super::service_account::cached(
        state,
        "",
        "secrets",
        "kube-system",
        &format!("bootstrap-token-{id}"),
    )?;
    if secret.get("type").and_then(Value::as_str) != Some(SECRET_TYPE)
        || secret.pointer("/metadata/deletionTimestamp").is_some()
    {
        return None;
    }
    let stored_id = data(&secret, "token-id")?;
    let stored_secret = data(&secret, "token-secret")?;
    if !super::constant_time_eq(stored_id.as_bytes(), id.as_bytes())
        || !super::constant_time_eq(stored_secret.as_bytes(), secret_part.as_bytes())
    {
        return None;
    }
    if data(&secret, "usage-bootstrap-authentication").as_deref() != Some("true")
        || expired(&secret)
    {
        return None;
    }
    let mut groups = vec![GROUP_BOOTSTRAPPERS.to_string()];
    if let Some(extra) = data(&secret, "auth-extra-groups") {
        for group in extra.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            // Only groups in the bootstrappers namespace may be added.
            if !group.starts_with("system:bootstrappers:") {
                return None;
            }
            if !groups.iter().any(|g| g == group) {
                groups.push(group.to_string());
            }
        }
    }
    Some(UserInfo {
        name: format!("system:bootstrap:{id}"),
        uid: String::new(),
        groups,
        extra: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_six_dot_sixteen_lowercase_alphanumerics_are_bootstrap_tokens() {
        assert_eq!(
            parse("abcdef.0123456789abcdef"),
            Some(("abcdef", "0123456789abcdef"))
        );
        assert_eq!(parse("ABCDEF.0123456789abcdef"), None);
        assert_eq!(parse("abcde.0123456789abcdef"), None);
        assert_eq!(parse("abcdef.0123456789abcde"), None);
        assert_eq!(parse("abcdef0123456789abcdef"), None);
    }

    #[test]
    fn expiration_in_the_past_or_unreadable_is_expired() {
        let enc = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
        let past = serde_json::json!({"data": {"expiration": enc("2020-01-01T00:00:00Z")}});
        let future = serde_json::json!({"data": {"expiration": enc("2999-01-01T00:00:00Z")}});
        let junk = serde_json::json!({"data": {"expiration": enc("tomorrow")}});
        assert!(expired(&past));
        assert!(!expired(&future));
        assert!(expired(&junk));
        assert!(!expired(&serde_json::json!({"data": {}})));
    }
}
