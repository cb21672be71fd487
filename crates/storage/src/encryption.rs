//! Encryption at rest: a [`Store`] decorator that encrypts the values of
//! chosen resources (`--encryption-provider-config`, an
//! `apiserver.config.k8s.io/v1` EncryptionConfiguration) before they reach
//! the datastore, and decrypts them on every read and watch, so neither
//! the SQLite file nor etcd ever holds them in the clear.
//!
//! Stored values look like upstream's: `k8s:enc:aesgcm:v1:<key name>:`
//! followed by a 12-byte nonce and the AES-GCM ciphertext, with the
//! datastore key as authenticated data (a value cannot be moved to another
//! key). The first provider of a resource encrypts new writes; every
//! provider can read, so keys rotate by putting the new key first and
//! re-writing the objects. `identity` stores plaintext.
//!
//! Supported providers: `aesgcm` (16- or 32-byte keys) and `identity`.
//! `aescbc`, `secretbox` and `kms` are recognised and refused with a clear
//! error.

use std::sync::Arc;

use futures::StreamExt;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;

use crate::{
    KeyValue, RangeRequest, RangeResponse, Result, Revision, StorageError, Store, WatchStream,
};

const PREFIX: &str = "k8s:enc:";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    kind: String,
    #[serde(default)]
    resources: Vec<ResourceConfig>,
}

#[derive(Debug, Deserialize)]
struct ResourceConfig {
    resources: Vec<String>,
    providers: Vec<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
struct KeyConfig {
    name: String,
    secret: String,
}

enum Provider {
    Identity,
    AesGcm(Vec<(String, LessSafeKey)>),
}

struct Rule {
    /// Datastore key prefixes (`/registry/secrets/`); empty = every key.
    prefixes: Vec<String>,
    providers: Vec<Provider>,
}

pub struct EncryptionConfig {
    rules: Vec<Rule>,
}

impl std::fmt::Debug for EncryptionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print keys.
        f.write_str("EncryptionConfig { .. }")
    }
}

fn aes_gcm_key(name: &str, secret: &str) -> std::result::Result<LessSafeKey, String> {
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, secret.trim())
        .map_err(|e| format!("key {name:?}: secret is not base64: {e}"))?;
    let algorithm = match bytes.len() {
        16 => &AES_128_GCM,
        32 => &AES_256_GCM,
        n => {
            return Err(format!(
                "key {name:?}: aesgcm needs a 16 or 32 byte key, got {n}"
            ))
        }
    };
    let key = UnboundKey::new(algorithm, &bytes).map_err(|_| format!("key {name:?}: unusable"))?;
    Ok(LessSafeKey::new(key))
}

impl EncryptionConfig {
    pub fn parse(text: &str) -> std::result::Result<EncryptionConfig, String> {
        let file: ConfigFile = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        if file.kind != "EncryptionConfiguration" {
            return Err(format!(
                "expected kind EncryptionConfiguration, got {:?}",
                file.kind
            ));
        }
        let mut rules = Vec::new();
        for resource in file.resources {
            let mut prefixes = Vec::new();
            for name in &resource.resources {
                match name.as_str() {
                    "*.*" => prefixes.clear(),
                    r => {
                        let plural = r.split('.').next().unwrap_or(r);
                        prefixes.push(format!("/registry/{plural}/"));
                    }
                }
            }
            if resource.resources.iter().any(|r| r == "*.*") {
                prefixes.clear();
            }
            let mut providers = Vec::new();
            for provider in resource.providers {
                let map = provider
                    .as_mapping()
                    .ok_or("a provider must be a mapping")?;
                let (kind, body) = map.iter().next().ok_or("an empty provider")?;
                match kind.as_str().unwrap_or("") {
                    "identity" => providers.push(Provider::Identity),
                    "aesgcm" => {
                        let keys: Vec<KeyConfig> = serde_yaml::from_value(
                            body.get("keys").cloned().unwrap_or(serde_yaml::Value::Null),
                        )
                        .map_err(|e| format!("aesgcm keys: {e}"))?;
                        if keys.is_empty() {
                            return Err("aesgcm needs at least one key".into());
                        }
                        let mut loaded = Vec::new();
                        for k in keys {
                            loaded.push((k.name.clone(), aes_gcm_key(&k.name, &k.secret)?));
                        }
                        providers.push(Provider::AesGcm(loaded));
                    }
                    other @ ("aescbc" | "secretbox" | "kms") => {
                        return Err(format!(
                            "the {other} provider is not supported by rustkube; use aesgcm"
                        ))
                    }
                    other => return Err(format!("unknown provider {other:?}")),
                }
            }
            if providers.is_empty() {
                return Err("a resource needs at least one provider".into());
            }
            rules.push(Rule {
                prefixes,
                providers,
            });
        }
        Ok(EncryptionConfig { rules })
    }

    fn rule_for(&self, key: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.prefixes.is_empty() || r.prefixes.iter().any(|p| key.starts_with(p)))
    }

    fn encrypt(&self, key: &str, value: Vec<u8>) -> Result<Vec<u8>> {
        let Some(rule) = self.rule_for(key) else {
            return Ok(value);
        };
        match rule.providers.first() {
            Some(Provider::AesGcm(keys)) => {
                let (name, cipher) = &keys[0];
                let mut nonce = [0u8; 12];
                SystemRandom::new()
                    .fill(&mut nonce)
                    .map_err(|_| StorageError::Internal("no randomness for a nonce".into()))?;
                let mut sealed = value;
                cipher
                    .seal_in_place_append_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(key.as_bytes()),
                        &mut sealed,
                    )
                    .map_err(|_| StorageError::Internal("encryption failed".into()))?;
                let mut out = format!("{PREFIX}aesgcm:v1:{name}:").into_bytes();
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&sealed);
                Ok(out)
            }
            _ => Ok(value),
        }
    }

    fn decrypt(&self, key: &str, value: Vec<u8>) -> Result<Vec<u8>> {
        if !value.starts_with(PREFIX.as_bytes()) {
            return Ok(value);
        }
        let fail = |why: &str| StorageError::Internal(format!("cannot decrypt {key}: {why}"));
        // k8s:enc:<provider>:v1:<name>:<payload>
        let rest = &value[PREFIX.len()..];
        let mut parts = rest.splitn(4, |b| *b == b':');
        let provider = parts.next().ok_or_else(|| fail("no provider"))?;
        let _version = parts.next().ok_or_else(|| fail("no version"))?;
        let name = parts.next().ok_or_else(|| fail("no key name"))?;
        let payload = parts.next().ok_or_else(|| fail("no payload"))?;
        if provider != b"aesgcm" {
            return Err(fail("unsupported provider"));
        }
        let name = std::str::from_utf8(name).map_err(|_| fail("bad key name"))?;
        let cipher = self
            .rules
            .iter()
            .flat_map(|r| r.providers.iter())
            .filter_map(|p| match p {
                Provider::AesGcm(keys) => keys.iter().find(|(n, _)| n == name).map(|(_, k)| k),
                Provider::Identity => None,
            })
            .next()
            .ok_or_else(|| fail("no such key in the encryption configuration"))?;
        if payload.len() < 12 {
            return Err(fail("payload too short"));
        }
        let (nonce, sealed) = payload.split_at(12);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail("bad nonce"))?;
        let mut buffer = sealed.to_vec();
        let plain = cipher
            .open_in_place(nonce, Aad::from(key.as_bytes()), &mut buffer)
            .map_err(|_| fail("authentication failed"))?;
        Ok(plain.to_vec())
    }

    fn decrypt_kv(&self, mut kv: KeyValue) -> Result<KeyValue> {
        if !kv.value.is_empty() {
            kv.value = self.decrypt(&kv.key, std::mem::take(&mut kv.value))?;
        }
        Ok(kv)
    }
}

/// A store whose values are encrypted as `config` says.
pub struct EncryptedStore {
    inner: Arc<dyn Store>,
    config: Arc<EncryptionConfig>,
}

impl EncryptedStore {
    pub fn new(inner: Arc<dyn Store>, config: EncryptionConfig) -> Self {
        EncryptedStore {
            inner,
            config: Arc::new(config),
        }
    }
}

#[async_trait::async_trait]
impl Store for EncryptedStore {
    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, Revision)> {
        let (kv, rev) = self.inner.get(key).await?;
        Ok((kv.map(|kv| self.config.decrypt_kv(kv)).transpose()?, rev))
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        let mut resp = self.inner.range(req).await?;
        resp.kvs = std::mem::take(&mut resp.kvs)
            .into_iter()
            .map(|kv| self.config.decrypt_kv(kv))
            .collect::<Result<_>>()?;
        Ok(resp)
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        let sealed = self.config.encrypt(key, value.clone())?;
        let mut kv = self.inner.create(key, sealed).await?;
        kv.value = value;
        Ok(kv)
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
        let sealed = self.config.encrypt(key, value.clone())?;
        match self.inner.update(key, sealed, expected).await {
            Ok(mut kv) => {
                kv.value = value;
                Ok(kv)
            }
            Err(StorageError::Conflict {
                key,
                expected,
                current,
            }) => Err(StorageError::Conflict {
                key,
                expected,
                current: current.map(|kv| self.config.decrypt_kv(kv)).transpose()?,
            }),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        match self.inner.delete(key, expected).await {
            Ok(kv) => self.config.decrypt_kv(kv),
            Err(StorageError::Conflict {
                key,
                expected,
                current,
            }) => Err(StorageError::Conflict {
                key,
                expected,
                current: current.map(|kv| self.config.decrypt_kv(kv)).transpose()?,
            }),
            Err(e) => Err(e),
        }
    }

    async fn watch(&self, prefix: &str, start_revision: Revision) -> Result<WatchStream> {
        let config = self.config.clone();
        let stream = self.inner.watch(prefix, start_revision).await?;
        Ok(Box::pin(stream.map(move |event| {
            let mut event = event?;
            event.kv = config.decrypt_kv(event.kv)?;
            event.prev_kv = event.prev_kv.map(|kv| config.decrypt_kv(kv)).transpose()?;
            Ok(event)
        })))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.inner.compact(revision).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.inner.current_revision().await
    }

    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: ["secrets"]
    providers:
      - aesgcm:
          keys:
            - name: key2
              secret: c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyE/Pz8=
            - name: key1
              secret: dGhpcyBpcyBwYXNzd29yZA==
      - identity: {}
"#;

    #[test]
    fn values_of_chosen_resources_are_sealed_with_the_first_key() {
        let config = EncryptionConfig::parse(CONFIG).unwrap();
        let key = "/registry/secrets/default/s";
        let sealed = config.encrypt(key, b"top secret".to_vec()).unwrap();
        assert!(sealed.starts_with(b"k8s:enc:aesgcm:v1:key2:"));
        assert!(!sealed.windows(10).any(|w| w == b"top secret"));
        assert_eq!(config.decrypt(key, sealed.clone()).unwrap(), b"top secret");
        // Bound to its key: moved elsewhere it does not open.
        assert!(config
            .decrypt("/registry/secrets/default/t", sealed)
            .is_err());
        // Other resources and old plaintext pass through.
        let cm = config
            .encrypt("/registry/configmaps/default/c", b"plain".to_vec())
            .unwrap();
        assert_eq!(cm, b"plain");
        assert_eq!(
            config.decrypt(key, b"{\"old\":1}".to_vec()).unwrap(),
            b"{\"old\":1}"
        );
    }

    #[test]
    fn unsupported_or_bad_configuration_is_refused() {
        assert!(EncryptionConfig::parse("kind: Something\n").is_err());
        let cbc = CONFIG.replace("aesgcm", "aescbc");
        assert!(EncryptionConfig::parse(&cbc)
            .unwrap_err()
            .contains("aescbc"));
        let short = CONFIG.replace("dGhpcyBpcyBwYXNzd29yZA==", "c2hvcnQ=");
        assert!(EncryptionConfig::parse(&short).is_err());
    }
}
