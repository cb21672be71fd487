//! Encryption at rest: a [`Store`] decorator that encrypts the values of
//! chosen resources (`--encryption-provider-config`, an
//! `apiserver.config.k8s.io/v1` EncryptionConfiguration) before they reach
//! the datastore, and decrypts them on every read and watch, so neither
//! the SQLite file nor etcd ever holds them in the clear.
//!
//! Stored values are byte-for-byte upstream's, so a datastore written by
//! upstream Kubernetes reads here and the other way round:
//! - `aesgcm` (16- or 32-byte keys): `k8s:enc:aesgcm:v1:<key name>:`, a
//!   12-byte nonce, then the AES-GCM ciphertext and tag, with the datastore
//!   key as authenticated data (a value cannot be moved to another key);
//! - `aescbc` (16-, 24- or 32-byte keys): `k8s:enc:aescbc:v1:<key name>:`,
//!   a 16-byte IV, then the AES-CBC ciphertext of the PKCS#7-padded value;
//! - `secretbox` (32-byte keys): `k8s:enc:secretbox:v1:<key name>:`, a
//!   24-byte nonce, then NaCl's sealed box (Poly1305 tag, then the
//!   XSalsa20 ciphertext);
//! - `identity` stores plaintext.
//!
//! The first key of the first provider of a resource encrypts new writes;
//! every configured key of every provider can read, so keys rotate by
//! adding the new key second, restarting, moving it first, re-writing the
//! objects, and finally dropping the old key. `kms` is refused with a clear
//! error: it needs an external plugin rustkube does not speak.

use std::sync::Arc;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
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
    /// Raw AES keys (16, 24 or 32 bytes).
    AesCbc(Vec<(String, Vec<u8>)>),
    SecretBox(Vec<(String, XSalsa20Poly1305)>),
}

impl Provider {
    /// The name in the stored prefix (`k8s:enc:<name>:v1:`).
    fn prefix_name(&self) -> &'static str {
        match self {
            Provider::Identity => "identity",
            Provider::AesGcm(_) => "aesgcm",
            Provider::AesCbc(_) => "aescbc",
            Provider::SecretBox(_) => "secretbox",
        }
    }
}

const AES_BLOCK: usize = 16;
const SECRETBOX_NONCE: usize = 24;
const SECRETBOX_TAG: usize = 16;

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
    let bytes = decode_secret(name, secret)?;
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

fn decode_secret(name: &str, secret: &str) -> std::result::Result<Vec<u8>, String> {
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, secret.trim())
        .map_err(|e| format!("key {name:?}: secret is not base64: {e}"))
}

fn aes_cbc_key(name: &str, secret: &str) -> std::result::Result<Vec<u8>, String> {
    let bytes = decode_secret(name, secret)?;
    match bytes.len() {
        16 | 24 | 32 => Ok(bytes),
        n => Err(format!(
            "key {name:?}: aescbc needs a 16, 24 or 32 byte key, got {n}"
        )),
    }
}

fn secretbox_key(name: &str, secret: &str) -> std::result::Result<XSalsa20Poly1305, String> {
    let bytes = decode_secret(name, secret)?;
    if bytes.len() != 32 {
        return Err(format!(
            "key {name:?}: secretbox needs a 32 byte key, got {}",
            bytes.len()
        ));
    }
    XSalsa20Poly1305::new_from_slice(&bytes).map_err(|_| format!("key {name:?}: unusable"))
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StorageError::Internal("no randomness for a nonce".into()))?;
    Ok(bytes)
}

fn cbc_encrypt(key: &[u8], iv: &[u8; AES_BLOCK], data: &[u8]) -> Option<Vec<u8>> {
    Some(match key.len() {
        16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
            .ok()?
            .encrypt_padded_vec_mut::<Pkcs7>(data),
        24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv)
            .ok()?
            .encrypt_padded_vec_mut::<Pkcs7>(data),
        32 => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()?
            .encrypt_padded_vec_mut::<Pkcs7>(data),
        _ => return None,
    })
}

/// `None` for a wrong key, a bad length or bad padding alike.
fn cbc_decrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    if data.is_empty() || !data.len().is_multiple_of(AES_BLOCK) {
        return None;
    }
    match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .ok(),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .ok(),
        32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .ok(),
        _ => None,
    }
}

/// The `keys` list of a provider, at least one.
fn provider_keys(
    kind: &str,
    body: &serde_yaml::Value,
) -> std::result::Result<Vec<KeyConfig>, String> {
    let keys: Vec<KeyConfig> =
        serde_yaml::from_value(body.get("keys").cloned().unwrap_or(serde_yaml::Value::Null))
            .map_err(|e| format!("{kind} keys: {e}"))?;
    if keys.is_empty() {
        return Err(format!("{kind} needs at least one key"));
    }
    for k in &keys {
        if k.name.is_empty() || k.name.contains(':') {
            return Err(format!(
                "{kind} key name {:?} must be non-empty and contain no ':'",
                k.name
            ));
        }
    }
    Ok(keys)
}

/// `(name, key)` for each entry of a provider's `keys`.
fn load_keys<K>(
    kind: &str,
    body: &serde_yaml::Value,
    load: fn(&str, &str) -> std::result::Result<K, String>,
) -> std::result::Result<Vec<(String, K)>, String> {
    provider_keys(kind, body)?
        .into_iter()
        .map(|k| Ok((k.name.clone(), load(&k.name, &k.secret)?)))
        .collect()
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
                    r if r.starts_with('*') => {
                        // The store cannot tell which resources a group
                        // holds; better refused than silently unencrypted.
                        return Err(format!(
                            "resource {r:?}: group wildcards are not supported by rustkube; \
                             list the resources, or use \"*.*\""
                        ));
                    }
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
                let kind = kind.as_str().unwrap_or("");
                match kind {
                    "identity" => providers.push(Provider::Identity),
                    "aesgcm" => {
                        providers.push(Provider::AesGcm(load_keys(kind, body, aes_gcm_key)?))
                    }
                    "aescbc" => {
                        providers.push(Provider::AesCbc(load_keys(kind, body, aes_cbc_key)?))
                    }
                    "secretbox" => {
                        providers.push(Provider::SecretBox(load_keys(kind, body, secretbox_key)?))
                    }
                    "kms" => {
                        return Err(
                            "the kms provider is not supported by rustkube (it needs an \
                             external KMS plugin); use aesgcm, aescbc or secretbox"
                                .into(),
                        )
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
        let Some(provider) = self.rule_for(key).and_then(|r| r.providers.first()) else {
            return Ok(value);
        };
        let failed = || StorageError::Internal(format!("cannot encrypt {key}"));
        let prefix =
            |name: &str| format!("{PREFIX}{}:v1:{name}:", provider.prefix_name()).into_bytes();
        match provider {
            Provider::Identity => Ok(value),
            Provider::AesGcm(keys) => {
                let (name, cipher) = keys.first().ok_or_else(failed)?;
                let nonce = random_bytes::<12>()?;
                let mut sealed = value;
                cipher
                    .seal_in_place_append_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(key.as_bytes()),
                        &mut sealed,
                    )
                    .map_err(|_| failed())?;
                let mut out = prefix(name);
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&sealed);
                Ok(out)
            }
            Provider::AesCbc(keys) => {
                let (name, secret) = keys.first().ok_or_else(failed)?;
                let iv = random_bytes::<AES_BLOCK>()?;
                let sealed = cbc_encrypt(secret, &iv, &value).ok_or_else(failed)?;
                let mut out = prefix(name);
                out.extend_from_slice(&iv);
                out.extend_from_slice(&sealed);
                Ok(out)
            }
            Provider::SecretBox(keys) => {
                let (name, cipher) = keys.first().ok_or_else(failed)?;
                let nonce = random_bytes::<SECRETBOX_NONCE>()?;
                // NaCl layout: the Poly1305 tag comes first, as Go's
                // secretbox.Seal writes it.
                let sealed = cipher
                    .encrypt(&nonce.into(), value.as_slice())
                    .map_err(|_| failed())?;
                let mut out = prefix(name);
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&sealed);
                Ok(out)
            }
        }
    }

    fn decrypt(&self, key: &str, value: Vec<u8>) -> Result<Vec<u8>> {
        if !value.starts_with(PREFIX.as_bytes()) {
            return Ok(value);
        }
        let fail = |why: &str| StorageError::Internal(format!("cannot decrypt {key}: {why}"));
        // k8s:enc:<provider>:v1:<key name>:<payload>
        let rest = &value[PREFIX.len()..];
        let mut parts = rest.splitn(4, |b| *b == b':');
        let provider = parts.next().ok_or_else(|| fail("no provider"))?;
        let _version = parts.next().ok_or_else(|| fail("no version"))?;
        let name = parts.next().ok_or_else(|| fail("no key name"))?;
        let payload = parts.next().ok_or_else(|| fail("no payload"))?;
        let name = std::str::from_utf8(name).map_err(|_| fail("bad key name"))?;
        // Every configured key can read, whichever resource it is
        // configured for: the rule for this key first, then the others.
        let own = self.rule_for(key);
        let candidates = own
            .into_iter()
            .chain(
                self.rules
                    .iter()
                    .filter(|r| !own.is_some_and(|o| std::ptr::eq(o, *r))),
            )
            .flat_map(|r| r.providers.iter())
            .filter(|p| p.prefix_name().as_bytes() == provider);
        let mut known_key = false;
        for candidate in candidates {
            let opened = match candidate {
                Provider::Identity => None,
                Provider::AesGcm(keys) => {
                    keys.iter().find(|(n, _)| n == name).map(|(_, cipher)| {
                        known_key = true;
                        if payload.len() < 12 {
                            return None;
                        }
                        let (nonce, sealed) = payload.split_at(12);
                        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
                        let mut buffer = sealed.to_vec();
                        cipher
                            .open_in_place(nonce, Aad::from(key.as_bytes()), &mut buffer)
                            .ok()
                            .map(|plain| plain.to_vec())
                    })
                }
                Provider::AesCbc(keys) => {
                    keys.iter().find(|(n, _)| n == name).map(|(_, secret)| {
                        known_key = true;
                        if payload.len() < AES_BLOCK {
                            return None;
                        }
                        let (iv, sealed) = payload.split_at(AES_BLOCK);
                        cbc_decrypt(secret, iv, sealed)
                    })
                }
                Provider::SecretBox(keys) => {
                    keys.iter().find(|(n, _)| n == name).map(|(_, cipher)| {
                        known_key = true;
                        if payload.len() < SECRETBOX_NONCE + SECRETBOX_TAG {
                            return None;
                        }
                        let (nonce, sealed) = payload.split_at(SECRETBOX_NONCE);
                        let nonce = crypto_secretbox::Nonce::from_slice(nonce);
                        cipher.decrypt(nonce, sealed).ok()
                    })
                }
            };
            if let Some(Some(plain)) = opened {
                return Ok(plain);
            }
        }
        Err(fail(if known_key {
            "the data does not open with the configured key (wrong key or damaged data)"
        } else {
            "no such key in the encryption configuration"
        }))
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
        let kms = CONFIG.replace("aesgcm", "kms");
        assert!(EncryptionConfig::parse(&kms).unwrap_err().contains("kms"));
        let wildcard = CONFIG.replace("[\"secrets\"]", "[\"*.apps\"]");
        assert!(EncryptionConfig::parse(&wildcard)
            .unwrap_err()
            .contains("group wildcards"));
        let short = CONFIG.replace("dGhpcyBpcyBwYXNzd29yZA==", "c2hvcnQ=");
        assert!(EncryptionConfig::parse(&short).is_err());
    }

    fn single(provider: &str, keys: &[(&str, &str)]) -> EncryptionConfig {
        let mut text = String::from(
            "kind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n",
        );
        text.push_str(&format!("      - {provider}:\n          keys:\n"));
        for (name, secret) in keys {
            text.push_str(&format!(
                "            - name: {name}\n              secret: {secret}\n"
            ));
        }
        text.push_str("      - identity: {}\n");
        EncryptionConfig::parse(&text).unwrap()
    }

    const KEY16: &str = "AAECAwQFBgcICQoLDA0ODw==";
    const KEY24: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
    const KEY32: &str = "c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyE/Pz8=";
    const OTHER32: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn aescbc_and_secretbox_round_trip_with_their_prefixes() {
        let key = "/registry/secrets/default/s";
        for (provider, secret, overhead) in [
            ("aescbc", KEY16, 16),
            ("aescbc", KEY24, 16),
            ("aescbc", KEY32, 16),
            ("secretbox", KEY32, 24 + 16),
        ] {
            let config = single(provider, &[("k1", secret)]);
            for plain in [&b""[..], b"x", b"exactly sixteen!", b"top secret value"] {
                let sealed = config.encrypt(key, plain.to_vec()).unwrap();
                let prefix = format!("k8s:enc:{provider}:v1:k1:");
                assert!(sealed.starts_with(prefix.as_bytes()), "{provider}");
                assert!(sealed.len() >= prefix.len() + overhead + plain.len());
                if plain.len() > 4 {
                    assert!(!sealed.windows(plain.len()).any(|w| w == plain));
                }
                assert_eq!(config.decrypt(key, sealed).unwrap(), plain, "{provider}");
            }
            // A fresh IV or nonce each time.
            let a = config.encrypt(key, b"same".to_vec()).unwrap();
            let b = config.encrypt(key, b"same".to_vec()).unwrap();
            assert_ne!(a, b);
        }
    }

    #[test]
    fn aescbc_reads_a_value_in_upstreams_layout() {
        // IV 0x10..0x1f, then AES-128-CBC of "hello rustkube" with PKCS#7
        // padding under key 0x00..0x0f (as `openssl enc -aes-128-cbc`).
        let mut stored = b"k8s:enc:aescbc:v1:k1:".to_vec();
        stored.extend(0x10u8..0x20);
        stored.extend([
            0x97, 0xe1, 0xff, 0xa3, 0x52, 0x00, 0x33, 0x9b, 0xf5, 0xb2, 0xb8, 0xbf, 0x1e, 0x6b,
            0x31, 0xa0,
        ]);
        let config = single("aescbc", &[("k1", KEY16)]);
        assert_eq!(
            config.decrypt("/registry/secrets/a/b", stored).unwrap(),
            b"hello rustkube"
        );
    }

    #[test]
    fn a_wrong_key_or_damaged_data_is_an_error_not_a_panic() {
        let key = "/registry/secrets/default/s";
        for provider in ["aescbc", "secretbox", "aesgcm"] {
            let writer = single(provider, &[("k1", KEY32)]);
            let other = single(provider, &[("k1", OTHER32)]);
            let sealed = writer.encrypt(key, b"top secret value".to_vec()).unwrap();
            // Same key name, different key.
            let _ = other.decrypt(key, sealed.clone()).map(|plain| {
                assert_ne!(
                    plain, b"top secret value",
                    "{provider} opened with a wrong key"
                )
            });
            if provider != "aescbc" {
                // Authenticated: a wrong key never yields data.
                assert!(other.decrypt(key, sealed.clone()).is_err(), "{provider}");
            }
            // Unknown key name.
            let renamed = single(provider, &[("k2", KEY32)]);
            let err = renamed.decrypt(key, sealed.clone()).unwrap_err();
            assert!(err.to_string().contains("no such key"), "{err}");
            // Every truncation fails cleanly.
            for len in 0..sealed.len() {
                let cut = sealed[..len].to_vec();
                if cut.starts_with(b"k8s:enc:") {
                    assert!(writer.decrypt(key, cut).is_err(), "{provider} at {len}");
                }
            }
            // A flipped last byte.
            let mut flipped = sealed.clone();
            if let Some(last) = flipped.last_mut() {
                *last ^= 1;
            }
            if provider != "aescbc" {
                assert!(writer.decrypt(key, flipped).is_err(), "{provider}");
            }
        }
    }

    #[test]
    fn any_configured_key_reads_so_keys_can_rotate() {
        let key = "/registry/secrets/default/s";
        let old = single("aescbc", &[("old", KEY32)]);
        let sealed_old = old.encrypt(key, b"v1".to_vec()).unwrap();
        let two = |first: (&str, &str, &str), second: (&str, &str, &str)| {
            let mut text = String::from(
                "kind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n",
            );
            for (provider, name, secret) in [first, second] {
                text.push_str(&format!(
                    "      - {provider}:\n          keys:\n            - {{name: {name}, secret: {secret}}}\n"
                ));
            }
            EncryptionConfig::parse(&text).unwrap()
        };
        // Step 1: the new key is added second; writes still use the old one.
        let both = two(("aescbc", "old", KEY32), ("secretbox", "new", OTHER32));
        assert_eq!(both.decrypt(key, sealed_old.clone()).unwrap(), b"v1");
        assert!(both
            .encrypt(key, b"v2".to_vec())
            .unwrap()
            .starts_with(b"k8s:enc:aescbc:v1:old:"));
        // Step 2: the new key first; both still read, new writes use it.
        let rotated = two(("secretbox", "new", OTHER32), ("aescbc", "old", KEY32));
        let sealed_new = rotated.encrypt(key, b"v3".to_vec()).unwrap();
        assert!(sealed_new.starts_with(b"k8s:enc:secretbox:v1:new:"));
        assert_eq!(rotated.decrypt(key, sealed_old.clone()).unwrap(), b"v1");
        // Step 3: the old key dropped; re-written data still reads.
        let new_only = single("secretbox", &[("new", OTHER32)]);
        assert_eq!(new_only.decrypt(key, sealed_new).unwrap(), b"v3");
        assert!(new_only.decrypt(key, sealed_old).is_err());
    }

    #[test]
    fn keys_of_the_wrong_size_are_refused() {
        let cfg = |provider: &str, secret: &str| {
            CONFIG
                .replace("aesgcm", provider)
                .replace("c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyE/Pz8=", secret)
        };
        assert!(EncryptionConfig::parse(&cfg("aescbc", "c2hvcnQ=")).is_err());
        assert!(EncryptionConfig::parse(&cfg("secretbox", KEY16))
            .unwrap_err()
            .contains("32 byte"));
        assert!(EncryptionConfig::parse(&cfg("aescbc", KEY24)).is_ok());
    }
}
