//! The bootstrap token cleaner: Secrets of type
//! `bootstrap.kubernetes.io/token` in kube-system are deleted once their
//! `expiration` has passed (the API server already refuses them).

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Preconditions};

use crate::{Context, Error};

const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
const INTERVAL: Duration = Duration::from_secs(10);

/// Whether the Secret's `expiration` (RFC 3339) is in the past; an
/// unreadable one counts as expired, as upstream.
pub fn expired(secret: &Secret, now: time::OffsetDateTime) -> bool {
    let Some(raw) = secret.data.as_ref().and_then(|d| d.get("expiration")) else {
        return false;
    };
    let text = String::from_utf8_lossy(&raw.0);
    match time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339) {
        Ok(at) => at <= now,
        Err(_) => true,
    }
}

pub async fn run(ctx: Context) -> Result<(), Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), "kube-system");
    let params = ListParams::default().fields(&format!("type={SECRET_TYPE}"));
    loop {
        match api.list(&params).await {
            Ok(list) => {
                let now = time::OffsetDateTime::now_utc();
                for secret in list.items.iter().filter(|s| expired(s, now)) {
                    let name = secret.metadata.name.clone().unwrap_or_default();
                    let delete = DeleteParams {
                        preconditions: Some(Preconditions {
                            uid: secret.metadata.uid.clone(),
                            resource_version: None,
                        }),
                        ..Default::default()
                    };
                    match api.delete(&name, &delete).await {
                        Ok(_) => {
                            tracing::info!(secret = %name, "deleted an expired bootstrap token")
                        }
                        Err(err) => {
                            tracing::debug!(%err, secret = %name, "deleting an expired bootstrap token")
                        }
                    }
                }
            }
            Err(err) => tracing::debug!(%err, "listing bootstrap tokens"),
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(expiration: &str) -> Secret {
        Secret {
            data: Some(
                [(
                    "expiration".to_string(),
                    ByteString(expiration.as_bytes().to_vec()),
                )]
                .into(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn tokens_past_their_expiration_or_with_a_bad_one_are_expired() {
        let now = time::OffsetDateTime::now_utc();
        assert!(expired(&secret("2020-01-01T00:00:00Z"), now));
        assert!(!expired(&secret("2999-01-01T00:00:00Z"), now));
        assert!(expired(&secret("soon"), now));
        assert!(!expired(&Secret::default(), now));
    }
}
