//! ES256 JSON Web Tokens, as the Kubernetes service-account token signer
//! issues and the service-account authenticator checks them.
//!
//! This module owns the token format only: [`sign`] a claims object with a
//! [`SigningKey`] (the service-account private key), [`verify`] a token's
//! signature against the [`VerifyingKey`]s the API server trusts,
//! [`Validation::validate`] the registered claims (expiry, issuer,
//! audience), and publish the keys as a JWKS ([`jwks`]) for
//! `/openid/v1/jwks`. What goes into the claims (the `kubernetes.io` block,
//! bound objects) is the API server's business.
//!
//! Only ES256 is spoken: the project's service-account key is ECDSA P-256.
//! Every other `alg`, `none` included, is refused before any key is looked
//! at, so a token cannot choose a weaker check for itself.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde_json::{json, Map, Value};
use x509_parser::asn1_rs::{Any, Class, FromDer, Tag};

/// The one JWS algorithm this module signs and accepts.
pub const ALGORITHM: &str = "ES256";

/// Clock skew tolerated on `exp`, `nbf` and `iat`, as upstream allows.
pub const DEFAULT_LEEWAY_SECONDS: i64 = 60;

/// DER prefix of a SubjectPublicKeyInfo for an uncompressed P-256 point:
/// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (65 bytes) }.
/// Go's `x509.MarshalPKIXPublicKey` produces exactly these bytes, so key
/// IDs computed over them match upstream's.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// Length of an uncompressed P-256 point: 0x04 || x || y.
const P256_POINT_LEN: usize = 65;
/// id-ecPublicKey (1.2.840.10045.2.1), DER content bytes.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// prime256v1 / secp256r1 (1.2.840.10045.3.1.7), DER content bytes.
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("unsupported key: {0} (only ECDSA P-256 keys sign and verify ES256)")]
    UnsupportedKey(String),
    #[error("signing failed")]
    Sign,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("unsupported signing algorithm {0:?}, only ES256 is accepted")]
    UnsupportedAlgorithm(String),
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer {0:?} is not accepted")]
    WrongIssuer(Option<String>),
    #[error("token audiences do not match the accepted audiences")]
    WrongAudience,
}

/// A P-256 public key that tokens are verified with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    /// Uncompressed point, 0x04 || x || y.
    point: Vec<u8>,
    key_id: String,
}

impl VerifyingKey {
    /// The first key in `pem`: a `PUBLIC KEY` (SubjectPublicKeyInfo), a
    /// `CERTIFICATE` (its subject key), or a `PRIVATE KEY` / `EC PRIVATE
    /// KEY` (its public half), as upstream's `--service-account-key-file`
    /// accepts all of these.
    pub fn from_pem(pem: &str) -> Result<Self, JwtError> {
        Self::all_from_pem(pem)?
            .into_iter()
            .next()
            .ok_or_else(|| JwtError::InvalidKey("no key in PEM".into()))
    }

    /// Every key in `pem`, in order (a key file may hold several, e.g.
    /// during key rotation). Blocks of other types are an error rather than
    /// silently skipped, so a wrong file is noticed.
    pub fn all_from_pem(pem: &str) -> Result<Vec<Self>, JwtError> {
        let blocks = pem::parse_many(pem).map_err(|e| JwtError::InvalidKey(e.to_string()))?;
        if blocks.is_empty() {
            return Err(JwtError::InvalidKey("no PEM block found".into()));
        }
        blocks
            .iter()
            .map(|block| match block.tag() {
                "PUBLIC KEY" => Self::from_spki_der(block.contents()),
                "CERTIFICATE" => {
                    use x509_parser::prelude::X509Certificate;
                    let (_, cert) = X509Certificate::from_der(block.contents())
                        .map_err(|e| JwtError::InvalidKey(e.to_string()))?;
                    Self::from_spki_der(cert.public_key().raw)
                }
                "PRIVATE KEY" | "EC PRIVATE KEY" => {
                    Ok(SigningKey::from_pem_block(block)?.verifying_key().clone())
                }
                other => Err(JwtError::InvalidKey(format!(
                    "unexpected PEM block {other:?}"
                ))),
            })
            .collect()
    }

    /// A key from the DER of its SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, JwtError> {
        use x509_parser::prelude::SubjectPublicKeyInfo;
        let (rest, spki) =
            SubjectPublicKeyInfo::from_der(der).map_err(|e| JwtError::InvalidKey(e.to_string()))?;
        if !rest.is_empty() {
            return Err(JwtError::InvalidKey(
                "trailing bytes after public key".into(),
            ));
        }
        if spki.algorithm.algorithm.as_bytes() != OID_EC_PUBLIC_KEY {
            return Err(JwtError::UnsupportedKey(format!(
                "key algorithm {}",
                spki.algorithm.algorithm
            )));
        }
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        if curve.as_ref().map(|c| c.as_bytes()) != Some(OID_P256) {
            return Err(JwtError::UnsupportedKey("EC curve other than P-256".into()));
        }
        Self::from_point(&spki.subject_public_key.data)
    }

    fn from_point(point: &[u8]) -> Result<Self, JwtError> {
        if point.len() != P256_POINT_LEN || point[0] != 0x04 {
            return Err(JwtError::UnsupportedKey(
                "P-256 point not in uncompressed form".into(),
            ));
        }
        let mut key = VerifyingKey {
            point: point.to_vec(),
            key_id: String::new(),
        };
        key.key_id = key_id(&key.spki_der());
        Ok(key)
    }

    /// The `kid` tokens signed by the matching private key carry.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// DER SubjectPublicKeyInfo, in the canonical form Go marshals.
    pub fn spki_der(&self) -> Vec<u8> {
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.point);
        der
    }

    /// `PUBLIC KEY` PEM of this key.
    pub fn public_key_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PUBLIC KEY", self.spki_der()))
    }

    fn check(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        // ring compares in constant time and rejects points off the curve.
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.point)
            .verify(signing_input, signature)
            .is_ok()
    }
}

/// The service-account private key.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    verifying: VerifyingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print private key material.
        f.debug_struct("SigningKey")
            .field("key_id", &self.verifying.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Load a P-256 private key from PEM: PKCS#8 (`PRIVATE KEY`, what
    /// [`crate::generate_key_pair_pem`] writes) or SEC1 (`EC PRIVATE KEY`,
    /// what `openssl ecparam -genkey` writes). The first key block is used.
    pub fn from_pem(pem: &str) -> Result<Self, JwtError> {
        let blocks = pem::parse_many(pem).map_err(|e| JwtError::InvalidKey(e.to_string()))?;
        let block = blocks
            .iter()
            .find(|b| b.tag() == "PRIVATE KEY" || b.tag() == "EC PRIVATE KEY")
            .ok_or_else(|| JwtError::InvalidKey("no PRIVATE KEY block found".into()))?;
        Self::from_pem_block(block)
    }

    fn from_pem_block(block: &pem::Pem) -> Result<Self, JwtError> {
        let rng = SystemRandom::new();
        let pair = match block.tag() {
            "PRIVATE KEY" => {
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, block.contents(), &rng)
                    .map_err(|e| JwtError::UnsupportedKey(format!("PKCS#8 key: {e}")))?
            }
            "EC PRIVATE KEY" => {
                let (scalar, point) = parse_sec1(block.contents())?;
                EcdsaKeyPair::from_private_key_and_public_key(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    scalar,
                    point,
                    &rng,
                )
                .map_err(|e| JwtError::InvalidKey(format!("EC private key: {e}")))?
            }
            other => {
                return Err(JwtError::InvalidKey(format!(
                    "unexpected PEM block {other:?}"
                )))
            }
        };
        let verifying = VerifyingKey::from_point(pair.public_key().as_ref())?;
        Ok(SigningKey { pair, verifying })
    }

    /// The public half.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    /// The `kid` this key stamps on tokens.
    pub fn key_id(&self) -> &str {
        &self.verifying.key_id
    }
}

/// Private scalar and public point out of a SEC1 `ECPrivateKey`:
/// SEQUENCE { version 1, privateKey OCTET STRING, [0] curve OID OPTIONAL,
/// [1] publicKey BIT STRING OPTIONAL }. ring needs the public point, so a
/// key without it is refused rather than guessed at.
fn parse_sec1(der: &[u8]) -> Result<(&[u8], &[u8]), JwtError> {
    let invalid = |what: &str| JwtError::InvalidKey(format!("EC private key: {what}"));
    let (_, outer) = Any::from_der(der).map_err(|_| invalid("not DER"))?;
    if outer.tag() != Tag::Sequence {
        return Err(invalid("not a SEQUENCE"));
    }
    let mut input = outer.data;
    let mut scalar = None;
    let mut point = None;
    let mut index = 0;
    while !input.is_empty() {
        let (rest, item) = Any::from_der(input).map_err(|_| invalid("not DER"))?;
        input = rest;
        match (index, item.class(), item.tag()) {
            (0, Class::Universal, Tag::Integer) => {
                if item.data != [1] {
                    return Err(invalid("version is not 1"));
                }
            }
            (1, Class::Universal, Tag::OctetString) => scalar = Some(item.data),
            (_, Class::ContextSpecific, Tag(0)) => {
                let (_, oid) = Any::from_der(item.data).map_err(|_| invalid("bad curve"))?;
                if oid.tag() != Tag::Oid || oid.data != OID_P256 {
                    return Err(JwtError::UnsupportedKey("EC curve other than P-256".into()));
                }
            }
            (_, Class::ContextSpecific, Tag(1)) => {
                let (_, bits) = Any::from_der(item.data).map_err(|_| invalid("bad public key"))?;
                // A BIT STRING's first content byte counts unused bits; a
                // point always has none.
                match bits.data.split_first() {
                    Some((0, rest)) if bits.tag() == Tag::BitString => point = Some(rest),
                    _ => return Err(invalid("bad public key")),
                }
            }
            _ => return Err(invalid("unexpected field")),
        }
        index += 1;
    }
    match (scalar, point) {
        (Some(scalar), Some(point)) => Ok((scalar, point)),
        (None, _) => Err(invalid("no private key")),
        (_, None) => Err(invalid("no public key in the file")),
    }
}

/// The key ID upstream derives for a public key: base64url (unpadded) of
/// the SHA-256 of its DER SubjectPublicKeyInfo.
pub fn key_id(spki_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, spki_der))
}

/// Sign `claims` (a JSON object) into a compact JWS with header
/// `{"alg":"ES256","kid":...}` -- the only two fields upstream sets.
pub fn sign(key: &SigningKey, claims: &Value) -> Result<String, JwtError> {
    if !claims.is_object() {
        return Err(JwtError::Malformed("claims must be a JSON object".into()));
    }
    let header = json!({"alg": ALGORITHM, "kid": key.key_id()});
    let header = serde_json::to_vec(&header).map_err(|e| JwtError::Malformed(e.to_string()))?;
    let payload = serde_json::to_vec(claims).map_err(|e| JwtError::Malformed(e.to_string()))?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = key
        .pair
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .map_err(|_| JwtError::Sign)?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    ))
}

/// A compact JWS split into its parts, nothing checked but the syntax.
struct Parts<'a> {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

fn split(token: &str) -> Result<Parts<'_>, JwtError> {
    let mut pieces = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (pieces.next(), pieces.next(), pieces.next(), pieces.next())
    else {
        return Err(JwtError::Malformed(
            "a token has three dot-separated parts".into(),
        ));
    };
    let signing_input = &token[..header.len() + 1 + payload.len()];
    Ok(Parts {
        header: decode_object(header, "header")?,
        claims: decode_object(payload, "payload")?,
        signing_input,
        signature: URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|e| JwtError::Malformed(format!("signature: {e}")))?,
    })
}

fn decode_object(part: &str, what: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| JwtError::Malformed(format!("{what}: {e}")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(JwtError::Malformed(format!("{what} is not a JSON object"))),
        Err(e) => Err(JwtError::Malformed(format!("{what}: {e}"))),
    }
}

/// The claims of a well-formed token WITHOUT checking its signature. Only
/// for routing (e.g. reading `iss` to decide whether the service-account
/// authenticator should look at the token at all); never trust the result.
pub fn unverified_claims(token: &str) -> Result<Value, JwtError> {
    Ok(Value::Object(split(token)?.claims))
}

/// Check `token`'s ES256 signature against `keys` and return its claims.
///
/// The key whose ID matches the header's `kid` is tried first; when none
/// matches (or there is no `kid`) every key is tried, as upstream's
/// authenticator does, so tokens from keys whose ID was computed
/// differently still verify. Registered claims are not checked here; see
/// [`Validation`].
pub fn verify(token: &str, keys: &[VerifyingKey]) -> Result<Value, JwtError> {
    let parts = split(token)?;
    match parts.header.get("alg") {
        Some(Value::String(alg)) if alg == ALGORITHM => {}
        Some(Value::String(alg)) => return Err(JwtError::UnsupportedAlgorithm(alg.clone())),
        _ => return Err(JwtError::Malformed("header has no alg".into())),
    }
    // RFC 7515: a recipient must reject critical extensions it does not
    // understand, and this module understands none.
    if parts.header.contains_key("crit") {
        return Err(JwtError::Malformed(
            "critical header extensions are not supported".into(),
        ));
    }
    let kid = match parts.header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(JwtError::Malformed("kid is not a string".into())),
    };
    let signing_input = parts.signing_input.as_bytes();
    let by_kid = kid.and_then(|kid| keys.iter().find(|k| k.key_id == kid));
    let verified = match by_kid {
        Some(key) => key.check(signing_input, &parts.signature),
        None => keys
            .iter()
            .any(|key| key.check(signing_input, &parts.signature)),
    };
    if verified {
        Ok(Value::Object(parts.claims))
    } else {
        Err(JwtError::BadSignature)
    }
}

/// What the registered claims of a verified token must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// `iss` must be one of these; an empty list accepts no token.
    pub issuers: Vec<String>,
    /// `aud` must share at least one value with these; empty = any audience.
    pub audiences: Vec<String>,
    /// The current time, unix seconds.
    pub now: i64,
    /// Tolerated clock skew on `exp`, `nbf` and `iat`.
    pub leeway_seconds: i64,
}

impl Validation {
    /// Validation at the current time with upstream's 60 s leeway.
    pub fn new(issuers: Vec<String>, audiences: Vec<String>) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Validation {
            issuers,
            audiences,
            now,
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
        }
    }

    /// Check `iss`, `aud`, `nbf`, `exp` and `iat` (in that order). Absent
    /// time claims are not required: legacy secret-based tokens have no
    /// `exp`.
    pub fn validate(&self, claims: &Value) -> Result<(), JwtError> {
        let claims = claims
            .as_object()
            .ok_or_else(|| JwtError::Malformed("claims are not a JSON object".into()))?;

        let issuer = match claims.get("iss") {
            None => None,
            Some(Value::String(iss)) => Some(iss.as_str()),
            Some(_) => return Err(JwtError::Malformed("iss is not a string".into())),
        };
        if !issuer.is_some_and(|iss| self.issuers.iter().any(|want| want == iss)) {
            return Err(JwtError::WrongIssuer(issuer.map(str::to_string)));
        }

        if !self.audiences.is_empty() {
            let audiences: Vec<&str> = match claims.get("aud") {
                None => vec![],
                Some(Value::String(aud)) => vec![aud.as_str()],
                Some(Value::Array(auds)) => auds
                    .iter()
                    .map(|a| {
                        a.as_str()
                            .ok_or_else(|| JwtError::Malformed("aud is not a string".into()))
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => {
                    return Err(JwtError::Malformed(
                        "aud is neither a string nor an array".into(),
                    ))
                }
            };
            if !audiences
                .iter()
                .any(|aud| self.audiences.iter().any(|want| want == aud))
            {
                return Err(JwtError::WrongAudience);
            }
        }

        let now = self.now as f64;
        let leeway = self.leeway_seconds as f64;
        if let Some(nbf) = numeric_date(claims, "nbf")? {
            if now + leeway < nbf {
                return Err(JwtError::NotYetValid);
            }
        }
        if let Some(exp) = numeric_date(claims, "exp")? {
            if now - leeway > exp {
                return Err(JwtError::Expired);
            }
        }
        if let Some(iat) = numeric_date(claims, "iat")? {
            // Issued in the future: the token is not valid yet either.
            if now + leeway < iat {
                return Err(JwtError::NotYetValid);
            }
        }
        Ok(())
    }
}

/// A NumericDate claim (seconds since the epoch, possibly fractional).
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_f64()
            .map(Some)
            .ok_or_else(|| JwtError::Malformed(format!("{name} is not a number"))),
    }
}

/// The JSON Web Key Set publishing `keys`, as served at `/openid/v1/jwks`.
pub fn jwks(keys: &[VerifyingKey]) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|key| {
            json!({
                "use": "sig",
                "kty": "EC",
                "kid": key.key_id,
                "crv": "P-256",
                "alg": ALGORITHM,
                "x": URL_SAFE_NO_PAD.encode(&key.point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&key.point[33..65]),
            })
        })
        .collect();
    json!({ "keys": keys })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn key() -> SigningKey {
        let (private, _) = crate::generate_key_pair_pem().unwrap();
        SigningKey::from_pem(&private).unwrap()
    }

    fn claims() -> Value {
        json!({
            "iss": "https://kubernetes.default.svc.cluster.local",
            "sub": "system:serviceaccount:default:builder",
            "aud": ["https://kubernetes.default.svc.cluster.local"],
            "exp": 2_000_000_000i64,
            "iat": 1_700_000_000i64,
            "nbf": 1_700_000_000i64,
        })
    }

    fn b64_json(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
    }

    fn have_openssl() -> bool {
        Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn openssl(args: &[&str], stdin: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// A fixed P-256 key (PKCS#8) so the key-ID vector below is stable.
    const FIXED_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXpAJo6jedw9QSaza
3kFlXtTHcFbKeMRGNI6xEC/3BOGhRANCAAQsMcXEyztDHgJIIlgb972ywwYeDnke
Fr5RZm4ulj1mMrwmuAXjJaw3Az36KvSl526b7ko+5ZM7GrWCgTLa+mBT
-----END PRIVATE KEY-----
";

    #[test]
    fn signed_token_verifies_and_returns_its_claims() {
        let key = key();
        let token = sign(&key, &claims()).unwrap();
        assert_eq!(token.split('.').count(), 3);
        let got = verify(&token, &[key.verifying_key().clone()]).unwrap();
        assert_eq!(got, claims());
    }

    #[test]
    fn header_carries_only_es256_and_the_key_id() {
        let key = key();
        let token = sign(&key, &claims()).unwrap();
        let header = token.split('.').next().unwrap();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "ES256", "kid": key.key_id()}));
        let signature = token.rsplit('.').next().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(signature).unwrap().len(), 64);
        assert!(!token.contains('='), "base64url without padding");
    }

    #[test]
    fn tampered_payload_is_rejected() {
        let key = key();
        let token = sign(&key, &claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut evil = claims();
        evil["sub"] = json!("system:serviceaccount:kube-system:admin");
        let forged = format!("{}.{}.{}", parts[0], b64_json(&evil), parts[2]);
        assert_eq!(
            verify(&forged, &[key.verifying_key().clone()]),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn tampered_signature_is_rejected() {
        let key = key();
        let token = sign(&key, &claims()).unwrap();
        let (input, signature) = token.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        bytes[10] ^= 0x01;
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(
            verify(&forged, &[key.verifying_key().clone()]),
            Err(JwtError::BadSignature)
        );
        // A DER-encoded (not JOSE r||s) signature is not accepted either.
        let truncated = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes[..63]));
        assert_eq!(
            verify(&truncated, &[key.verifying_key().clone()]),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn token_from_another_key_is_rejected_even_when_all_keys_are_tried() {
        let signer = key();
        let other = key();
        let token = sign(&signer, &claims()).unwrap();
        assert_eq!(
            verify(&token, &[other.verifying_key().clone()]),
            Err(JwtError::BadSignature)
        );
        assert_eq!(verify(&token, &[]), Err(JwtError::BadSignature));
    }

    #[test]
    fn key_is_chosen_by_kid_among_several() {
        let a = key();
        let b = key();
        let keys = [a.verifying_key().clone(), b.verifying_key().clone()];
        let token = sign(&b, &claims()).unwrap();
        assert_eq!(verify(&token, &keys).unwrap(), claims());
    }

    #[test]
    fn token_without_kid_verifies_against_any_trusted_key() {
        let a = key();
        let b = key();
        let token = sign(&b, &claims()).unwrap();
        let (_, rest) = token.split_once('.').unwrap();
        let no_kid = format!("{}.{rest}", b64_json(&json!({"alg": "ES256"})));
        // Re-sign: the header is part of the signing input.
        let (input, _) = no_kid.rsplit_once('.').unwrap();
        let signature = b.pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        let no_kid = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()));
        let keys = [a.verifying_key().clone(), b.verifying_key().clone()];
        assert_eq!(verify(&no_kid, &keys).unwrap(), claims());
    }

    #[test]
    fn alg_none_and_hs256_are_rejected_before_any_key_is_used() {
        let key = key();
        let keys = [key.verifying_key().clone()];
        let payload = b64_json(&claims());
        let none = format!("{}.{payload}.", b64_json(&json!({"alg": "none"})));
        assert_eq!(
            verify(&none, &keys),
            Err(JwtError::UnsupportedAlgorithm("none".into()))
        );
        // HS256 "signed" with the public key as the HMAC secret: the
        // classic algorithm-confusion forgery.
        let header = b64_json(&json!({"alg": "HS256", "kid": key.key_id()}));
        let input = format!("{header}.{payload}");
        let mac_key =
            ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key.verifying_key().spki_der());
        let mac = ring::hmac::sign(&mac_key, input.as_bytes());
        let hs = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
        assert_eq!(
            verify(&hs, &keys),
            Err(JwtError::UnsupportedAlgorithm("HS256".into()))
        );
    }

    #[test]
    fn malformed_tokens_are_reported_as_malformed() {
        let keys = [key().verifying_key().clone()];
        for token in [
            "",
            "a.b",
            "a.b.c.d",
            "!!!.e30.",
            &format!("{}.{}.", b64_json(&json!([1])), b64_json(&claims())),
            &format!(
                "{}.{}.",
                b64_json(&json!({"alg": "ES256"})),
                b64_json(&json!("s"))
            ),
            &format!(
                "{}.{}.",
                b64_json(&json!({"kid": "x"})),
                b64_json(&claims())
            ),
        ] {
            assert!(
                matches!(verify(token, &keys), Err(JwtError::Malformed(_))),
                "{token:?}: {:?}",
                verify(token, &keys)
            );
        }
    }

    #[test]
    fn claims_that_are_not_an_object_cannot_be_signed() {
        assert!(matches!(
            sign(&key(), &json!("x")),
            Err(JwtError::Malformed(_))
        ));
    }

    fn validation(now: i64) -> Validation {
        Validation {
            issuers: vec!["https://kubernetes.default.svc.cluster.local".into()],
            audiences: vec!["https://kubernetes.default.svc.cluster.local".into()],
            now,
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
        }
    }

    #[test]
    fn expiry_is_enforced_with_sixty_seconds_of_leeway() {
        let c = claims();
        assert_eq!(validation(2_000_000_000).validate(&c), Ok(()));
        assert_eq!(validation(2_000_000_060).validate(&c), Ok(()));
        assert_eq!(
            validation(2_000_000_061).validate(&c),
            Err(JwtError::Expired)
        );
    }

    #[test]
    fn not_before_and_issued_at_in_the_future_are_not_yet_valid() {
        let c = claims();
        assert_eq!(validation(1_699_999_940).validate(&c), Ok(()));
        assert_eq!(
            validation(1_699_999_939).validate(&c),
            Err(JwtError::NotYetValid)
        );
        let mut iat_only = claims();
        iat_only.as_object_mut().unwrap().remove("nbf");
        assert_eq!(
            validation(1_699_999_000).validate(&iat_only),
            Err(JwtError::NotYetValid)
        );
    }

    #[test]
    fn legacy_tokens_without_expiry_are_valid() {
        let mut c = claims();
        let map = c.as_object_mut().unwrap();
        map.remove("exp");
        map.remove("nbf");
        map.remove("iat");
        assert_eq!(validation(4_000_000_000).validate(&c), Ok(()));
    }

    #[test]
    fn issuer_must_be_one_of_the_accepted_issuers() {
        let mut v = validation(1_800_000_000);
        v.issuers = vec![
            "https://a".into(),
            "https://kubernetes.default.svc.cluster.local".into(),
        ];
        assert_eq!(v.validate(&claims()), Ok(()));
        v.issuers = vec!["https://a".into()];
        assert_eq!(
            v.validate(&claims()),
            Err(JwtError::WrongIssuer(Some(
                "https://kubernetes.default.svc.cluster.local".into()
            )))
        );
        let mut no_iss = claims();
        no_iss.as_object_mut().unwrap().remove("iss");
        assert_eq!(
            validation(1_800_000_000).validate(&no_iss),
            Err(JwtError::WrongIssuer(None))
        );
    }

    #[test]
    fn audience_may_be_a_string_or_an_array_and_must_intersect() {
        let v = validation(1_800_000_000);
        let mut c = claims();
        c["aud"] = json!("https://kubernetes.default.svc.cluster.local");
        assert_eq!(v.validate(&c), Ok(()));
        c["aud"] = json!(["vault", "https://kubernetes.default.svc.cluster.local"]);
        assert_eq!(v.validate(&c), Ok(()));
        c["aud"] = json!("vault");
        assert_eq!(v.validate(&c), Err(JwtError::WrongAudience));
        c["aud"] = json!(["vault", "api"]);
        assert_eq!(v.validate(&c), Err(JwtError::WrongAudience));
        c.as_object_mut().unwrap().remove("aud");
        assert_eq!(v.validate(&c), Err(JwtError::WrongAudience));
        // No accepted audiences configured: any audience passes.
        let any = Validation {
            audiences: vec![],
            ..v
        };
        assert_eq!(any.validate(&c), Ok(()));
    }

    #[test]
    fn non_numeric_times_are_malformed() {
        let mut c = claims();
        c["exp"] = json!("tomorrow");
        assert!(matches!(
            validation(1_800_000_000).validate(&c),
            Err(JwtError::Malformed(_))
        ));
    }

    #[test]
    fn key_id_is_sha256_of_the_public_key_der_as_openssl_computes_it() {
        let key = SigningKey::from_pem(FIXED_KEY).unwrap();
        // Computed once with:
        //   openssl pkey -pubout -outform DER | openssl dgst -sha256 -binary | basenc --base64url
        // (then the '=' padding removed); a test-only key, used nowhere else.
        assert_eq!(key.key_id(), "znnv6SRSaIXBMJoowHtVim2SoZluTVfPSSWt4bxMwjM");
        if have_openssl() {
            let der = openssl(
                &["pkey", "-pubout", "-outform", "DER"],
                FIXED_KEY.as_bytes(),
            );
            assert_eq!(der, key.verifying_key().spki_der());
            let digest = openssl(&["dgst", "-sha256", "-binary"], &der);
            assert_eq!(key.key_id(), URL_SAFE_NO_PAD.encode(digest));
        }
    }

    #[test]
    fn verifying_key_loads_from_public_key_certificate_and_private_key_pem() {
        let (private, public) = crate::generate_key_pair_pem().unwrap();
        let signing = SigningKey::from_pem(&private).unwrap();
        let from_public = VerifyingKey::from_pem(&public).unwrap();
        let from_private = VerifyingKey::from_pem(&private).unwrap();
        assert_eq!(&from_public, signing.verifying_key());
        assert_eq!(&from_private, signing.verifying_key());
        assert_eq!(
            VerifyingKey::from_pem(&from_public.public_key_pem()).unwrap(),
            from_public
        );

        let ca = crate::CertificateAuthority::generate("jwt-test").unwrap();
        let ca_key = SigningKey::from_pem(ca.key_pem()).unwrap();
        let from_cert = VerifyingKey::from_pem(ca.cert_pem()).unwrap();
        assert_eq!(&from_cert, ca_key.verifying_key());

        let both = format!("{public}{}", ca.cert_pem());
        assert_eq!(VerifyingKey::all_from_pem(&both).unwrap().len(), 2);
    }

    #[test]
    fn sec1_ec_private_key_from_openssl_signs_verifiable_tokens() {
        if !have_openssl() {
            return;
        }
        let sec1 = openssl(
            &["ec", "-outform", "PEM"],
            &openssl(&["pkey"], FIXED_KEY.as_bytes()),
        );
        let sec1 = String::from_utf8(sec1).unwrap();
        assert!(sec1.contains("BEGIN EC PRIVATE KEY"), "{sec1}");
        let key = SigningKey::from_pem(&sec1).unwrap();
        let fixed = SigningKey::from_pem(FIXED_KEY).unwrap();
        assert_eq!(key.key_id(), fixed.key_id());
        let token = sign(&key, &claims()).unwrap();
        assert_eq!(
            verify(&token, &[fixed.verifying_key().clone()]).unwrap(),
            claims()
        );
    }

    #[test]
    fn non_p256_keys_are_unsupported() {
        if !have_openssl() {
            return;
        }
        let p384 = openssl(
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
            ],
            b"",
        );
        let p384 = String::from_utf8(p384).unwrap();
        assert!(matches!(
            SigningKey::from_pem(&p384),
            Err(JwtError::UnsupportedKey(_))
        ));
        let public = openssl(&["pkey", "-pubout"], p384.as_bytes());
        assert!(matches!(
            VerifyingKey::from_pem(&String::from_utf8(public).unwrap()),
            Err(JwtError::UnsupportedKey(_))
        ));
    }

    #[test]
    fn garbage_pem_is_an_invalid_key() {
        assert!(matches!(
            VerifyingKey::from_pem("not pem"),
            Err(JwtError::InvalidKey(_))
        ));
        assert!(matches!(
            SigningKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
            Err(JwtError::InvalidKey(_))
        ));
    }

    #[test]
    fn jwks_coordinates_decode_back_to_the_public_key() {
        let key = key();
        let set = jwks(&[key.verifying_key().clone()]);
        let jwk = &set["keys"][0];
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["alg"], "ES256");
        assert_eq!(jwk["kid"], key.key_id());
        let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
        let y = URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap();
        assert_eq!((x.len(), y.len()), (32, 32));
        let mut point = vec![0x04];
        point.extend(x);
        point.extend(y);
        assert_eq!(point, key.pair.public_key().as_ref());
        assert_eq!(
            VerifyingKey::from_point(&point).unwrap(),
            *key.verifying_key()
        );
    }
}
