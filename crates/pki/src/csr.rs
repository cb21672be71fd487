//! PKCS#10 certificate signing requests, as the `certificates.k8s.io` API
//! carries them in `spec.request`.
//!
//! [`parse_csr`] checks a request's self-signature and reads what the
//! approvers and signers decide on: subject CommonName and Organizations,
//! the requested SANs, the key algorithm. [`CertificateAuthority::sign_csr`]
//! issues the certificate for a request with the usages from the API object
//! ([`KeyUsage`], spelled as `spec.usages` spells them).
//!
//! Like upstream's signers, only the subject and SANs of a request are
//! honoured; every other extension it asks for (key usages, basic
//! constraints, ...) is ignored, so a request cannot make itself a CA.
//! Policy (who may get which names) is not decided here.

use std::net::IpAddr;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    SanType, SigningKey as _,
};
use time::OffsetDateTime;
use x509_parser::asn1_rs::{Any, FromDer};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::error::X509Error;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_PKCS1_SHA1WITHRSA, OID_SHA1_WITH_RSA, OID_SIG_ED25519,
};
use x509_parser::prelude::X509Certificate;

use crate::{random_serial, CertificateAuthority, Result, BACKDATE};

/// The PEM type a request must have, as upstream requires.
pub const CSR_PEM_TYPE: &str = "CERTIFICATE REQUEST";

/// RSA keys shorter than this are refused.
pub const MIN_RSA_BITS: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    #[error("PEM: {0}")]
    Pem(String),
    #[error("cannot parse certificate request: {0}")]
    Parse(String),
    #[error("certificate request signature is invalid")]
    BadSignature,
    #[error("unsupported certificate request signature algorithm {0}")]
    UnsupportedSignatureAlgorithm(String),
    #[error("unsupported public key: {0}")]
    UnsupportedKey(String),
    #[error("unrecognized usage {0:?}")]
    UnknownUsage(String),
    #[error("name cannot be put in a certificate: {0}")]
    InvalidName(String),
    #[error("{0}")]
    Validity(String),
}

/// The public key algorithm of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicKeyAlgorithm {
    EcdsaP256,
    EcdsaP384,
    Rsa { bits: usize },
    Ed25519,
}

impl std::fmt::Display for PublicKeyAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublicKeyAlgorithm::EcdsaP256 => f.write_str("ECDSA P-256"),
            PublicKeyAlgorithm::EcdsaP384 => f.write_str("ECDSA P-384"),
            PublicKeyAlgorithm::Rsa { bits } => write!(f, "RSA {bits}"),
            PublicKeyAlgorithm::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// What a verified request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrInfo {
    /// Subject CN (empty if absent); a user name for client certificates.
    pub common_name: String,
    /// Subject O values in order; groups for client certificates.
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub email_addresses: Vec<String>,
    pub uris: Vec<String>,
    pub public_key_algorithm: PublicKeyAlgorithm,
    /// The requester's key, DER SubjectPublicKeyInfo.
    pub public_key_der: Vec<u8>,
    /// The subject Name exactly as requested (DER), copied into the
    /// certificate unchanged.
    pub subject_der: Vec<u8>,
}

/// Parse and verify a PEM request: exactly one `CERTIFICATE REQUEST` block
/// and nothing else.
pub fn parse_csr(pem_bytes: &[u8]) -> std::result::Result<CsrInfo, CsrError> {
    let blocks = pem::parse_many(pem_bytes).map_err(|e| CsrError::Pem(e.to_string()))?;
    match blocks.as_slice() {
        [block] if block.tag() == CSR_PEM_TYPE => parse_csr_der(block.contents()),
        [block] => Err(CsrError::Pem(format!(
            "PEM block type must be {CSR_PEM_TYPE}, not {}",
            block.tag()
        ))),
        [] => Err(CsrError::Pem(format!("no {CSR_PEM_TYPE} PEM block found"))),
        _ => Err(CsrError::Pem(format!(
            "expected exactly one {CSR_PEM_TYPE} PEM block, found {}",
            blocks.len()
        ))),
    }
}

/// Parse and verify a DER request.
pub fn parse_csr_der(der: &[u8]) -> std::result::Result<CsrInfo, CsrError> {
    let (rest, csr) =
        X509CertificationRequest::from_der(der).map_err(|e| CsrError::Parse(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CsrError::Parse("trailing bytes after the request".into()));
    }
    let info = &csr.certification_request_info;
    let public_key_algorithm = key_algorithm(&info.subject_pki)?;

    // SHA-1 signatures can be forged by collision; refuse them rather than
    // trusting the proof of possession they claim.
    let sig_oid = &csr.signature_algorithm.algorithm;
    if *sig_oid == OID_PKCS1_SHA1WITHRSA || *sig_oid == OID_SHA1_WITH_RSA {
        return Err(CsrError::UnsupportedSignatureAlgorithm(
            "sha1WithRSAEncryption".into(),
        ));
    }
    csr.verify_signature().map_err(|e| match e {
        X509Error::SignatureUnsupportedAlgorithm => {
            CsrError::UnsupportedSignatureAlgorithm(sig_oid.to_id_string())
        }
        _ => CsrError::BadSignature,
    })?;

    let subject = &info.subject;
    let common_name = subject
        .iter_common_name()
        .next()
        .map(|cn| cn.as_str().map(str::to_string))
        .transpose()
        .map_err(|e| CsrError::Parse(format!("subject CN: {e}")))?
        .unwrap_or_default();
    let organizations = subject
        .iter_organization()
        .map(|o| o.as_str().map(str::to_string))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| CsrError::Parse(format!("subject O: {e}")))?;

    let mut out = CsrInfo {
        common_name,
        organizations,
        dns_names: vec![],
        ip_addresses: vec![],
        email_addresses: vec![],
        uris: vec![],
        public_key_algorithm,
        public_key_der: info.subject_pki.raw.to_vec(),
        subject_der: subject.as_raw().to_vec(),
    };
    for ext in csr.requested_extensions().into_iter().flatten() {
        let ParsedExtension::SubjectAlternativeName(san) = ext else {
            continue;
        };
        for name in &san.general_names {
            match name {
                GeneralName::DNSName(d) => out.dns_names.push(d.to_string()),
                GeneralName::RFC822Name(e) => out.email_addresses.push(e.to_string()),
                GeneralName::URI(u) => out.uris.push(u.to_string()),
                GeneralName::IPAddress(raw) => out.ip_addresses.push(ip_from_bytes(raw)?),
                // Other name forms are neither read by Kubernetes nor
                // copied into certificates.
                _ => {}
            }
        }
    }
    Ok(out)
}

fn ip_from_bytes(raw: &[u8]) -> std::result::Result<IpAddr, CsrError> {
    if let Ok(v4) = <[u8; 4]>::try_from(raw) {
        Ok(IpAddr::from(v4))
    } else if let Ok(v6) = <[u8; 16]>::try_from(raw) {
        Ok(IpAddr::from(v6))
    } else {
        Err(CsrError::Parse(format!(
            "IP address SAN of {} bytes",
            raw.len()
        )))
    }
}

fn key_algorithm(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
) -> std::result::Result<PublicKeyAlgorithm, CsrError> {
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        match curve {
            Some(c) if c == OID_EC_P256 => Ok(PublicKeyAlgorithm::EcdsaP256),
            Some(c) if c == OID_NIST_EC_P384 => Ok(PublicKeyAlgorithm::EcdsaP384),
            Some(c) => Err(CsrError::UnsupportedKey(format!(
                "EC curve {}",
                c.to_id_string()
            ))),
            None => Err(CsrError::UnsupportedKey(
                "EC key without a named curve".into(),
            )),
        }
    } else if *alg == OID_PKCS1_RSAENCRYPTION {
        let Ok(x509_parser::public_key::PublicKey::RSA(rsa)) = spki.parsed() else {
            return Err(CsrError::Parse("invalid RSA public key".into()));
        };
        let bits = rsa_modulus_bits(rsa.modulus);
        if bits < MIN_RSA_BITS {
            return Err(CsrError::UnsupportedKey(format!(
                "RSA key of {bits} bits, at least {MIN_RSA_BITS} required"
            )));
        }
        Ok(PublicKeyAlgorithm::Rsa { bits })
    } else if *alg == OID_SIG_ED25519 {
        Ok(PublicKeyAlgorithm::Ed25519)
    } else {
        Err(CsrError::UnsupportedKey(format!(
            "key algorithm {}",
            alg.to_id_string()
        )))
    }
}

/// Bit length of a DER INTEGER's magnitude (leading zero bytes dropped).
fn rsa_modulus_bits(modulus: &[u8]) -> usize {
    let trimmed: &[u8] = match modulus.iter().position(|b| *b != 0) {
        Some(first) => &modulus[first..],
        None => &[],
    };
    match trimmed.first() {
        Some(top) => trimmed.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    }
}

/// A certificate usage as `CertificateSigningRequest.spec.usages` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUsage {
    Signing,
    DigitalSignature,
    ContentCommitment,
    KeyEncipherment,
    KeyAgreement,
    DataEncipherment,
    CertSign,
    CrlSign,
    EncipherOnly,
    DecipherOnly,
    Any,
    ServerAuth,
    ClientAuth,
    CodeSigning,
    EmailProtection,
    SMime,
    IpsecEndSystem,
    IpsecTunnel,
    IpsecUser,
    Timestamping,
    OcspSigning,
    MicrosoftSgc,
    NetscapeSgc,
}

impl KeyUsage {
    pub const ALL: [KeyUsage; 23] = [
        KeyUsage::Signing,
        KeyUsage::DigitalSignature,
        KeyUsage::ContentCommitment,
        KeyUsage::KeyEncipherment,
        KeyUsage::KeyAgreement,
        KeyUsage::DataEncipherment,
        KeyUsage::CertSign,
        KeyUsage::CrlSign,
        KeyUsage::EncipherOnly,
        KeyUsage::DecipherOnly,
        KeyUsage::Any,
        KeyUsage::ServerAuth,
        KeyUsage::ClientAuth,
        KeyUsage::CodeSigning,
        KeyUsage::EmailProtection,
        KeyUsage::SMime,
        KeyUsage::IpsecEndSystem,
        KeyUsage::IpsecTunnel,
        KeyUsage::IpsecUser,
        KeyUsage::Timestamping,
        KeyUsage::OcspSigning,
        KeyUsage::MicrosoftSgc,
        KeyUsage::NetscapeSgc,
    ];

    /// The API spelling, e.g. `"client auth"`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUsage::Signing => "signing",
            KeyUsage::DigitalSignature => "digital signature",
            KeyUsage::ContentCommitment => "content commitment",
            KeyUsage::KeyEncipherment => "key encipherment",
            KeyUsage::KeyAgreement => "key agreement",
            KeyUsage::DataEncipherment => "data encipherment",
            KeyUsage::CertSign => "cert sign",
            KeyUsage::CrlSign => "crl sign",
            KeyUsage::EncipherOnly => "encipher only",
            KeyUsage::DecipherOnly => "decipher only",
            KeyUsage::Any => "any",
            KeyUsage::ServerAuth => "server auth",
            KeyUsage::ClientAuth => "client auth",
            KeyUsage::CodeSigning => "code signing",
            KeyUsage::EmailProtection => "email protection",
            KeyUsage::SMime => "s/mime",
            KeyUsage::IpsecEndSystem => "ipsec end system",
            KeyUsage::IpsecTunnel => "ipsec tunnel",
            KeyUsage::IpsecUser => "ipsec user",
            KeyUsage::Timestamping => "timestamping",
            KeyUsage::OcspSigning => "ocsp signing",
            KeyUsage::MicrosoftSgc => "microsoft sgc",
            KeyUsage::NetscapeSgc => "netscape sgc",
        }
    }

    /// The usage named `name` in the API spelling.
    pub fn parse(name: &str) -> std::result::Result<KeyUsage, CsrError> {
        KeyUsage::ALL
            .into_iter()
            .find(|u| u.as_str() == name)
            .ok_or_else(|| CsrError::UnknownUsage(name.to_string()))
    }

    /// The keyUsage bit this usage sets, if it is one.
    fn key_usage_bit(self) -> Option<KeyUsagePurpose> {
        Some(match self {
            // "signing" is the API's older name for digital signature.
            KeyUsage::Signing | KeyUsage::DigitalSignature => KeyUsagePurpose::DigitalSignature,
            KeyUsage::ContentCommitment => KeyUsagePurpose::ContentCommitment,
            KeyUsage::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
            KeyUsage::KeyAgreement => KeyUsagePurpose::KeyAgreement,
            KeyUsage::DataEncipherment => KeyUsagePurpose::DataEncipherment,
            KeyUsage::CertSign => KeyUsagePurpose::KeyCertSign,
            KeyUsage::CrlSign => KeyUsagePurpose::CrlSign,
            KeyUsage::EncipherOnly => KeyUsagePurpose::EncipherOnly,
            KeyUsage::DecipherOnly => KeyUsagePurpose::DecipherOnly,
            _ => return None,
        })
    }

    /// The extendedKeyUsage purpose this usage adds, if it is one.
    fn extended_key_usage(self) -> Option<ExtendedKeyUsagePurpose> {
        Some(match self {
            KeyUsage::Any => ExtendedKeyUsagePurpose::Any,
            KeyUsage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
            KeyUsage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            KeyUsage::CodeSigning => ExtendedKeyUsagePurpose::CodeSigning,
            KeyUsage::EmailProtection | KeyUsage::SMime => ExtendedKeyUsagePurpose::EmailProtection,
            KeyUsage::IpsecEndSystem => {
                ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 5])
            }
            KeyUsage::IpsecTunnel => {
                ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 6])
            }
            KeyUsage::IpsecUser => ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 7]),
            KeyUsage::Timestamping => ExtendedKeyUsagePurpose::TimeStamping,
            KeyUsage::OcspSigning => ExtendedKeyUsagePurpose::OcspSigning,
            KeyUsage::MicrosoftSgc => {
                ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 4, 1, 311, 10, 3, 3])
            }
            KeyUsage::NetscapeSgc => {
                ExtendedKeyUsagePurpose::Other(vec![2, 16, 840, 1, 113_730, 4, 1])
            }
            _ => return None,
        })
    }
}

impl std::str::FromStr for KeyUsage {
    type Err = CsrError;
    fn from_str(s: &str) -> std::result::Result<Self, CsrError> {
        KeyUsage::parse(s)
    }
}

impl CertificateAuthority {
    /// Issue a certificate for a PEM request: the request's key, subject
    /// and SANs, the given usages (API spelling, e.g. `"client auth"`) as
    /// keyUsage bits and extended key usages, a random serial, valid from
    /// five minutes ago (clock skew) until `not_after`, capped at this CA's
    /// own expiry. Returns the PEM certificate.
    pub fn sign_csr(
        &self,
        csr_pem: &[u8],
        usages: &[impl AsRef<str>],
        not_after: OffsetDateTime,
    ) -> Result<String> {
        let csr = parse_csr(csr_pem)?;
        let usages = usages
            .iter()
            .map(|u| KeyUsage::parse(u.as_ref()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        self.sign_parsed_csr(&csr, &usages, not_after)
    }

    /// [`Self::sign_csr`] for a request already parsed (and so verified)
    /// with [`parse_csr`].
    pub fn sign_parsed_csr(
        &self,
        csr: &CsrInfo,
        usages: &[KeyUsage],
        not_after: OffsetDateTime,
    ) -> Result<String> {
        let (ca_not_before, ca_not_after) = self.validity()?;
        let now = OffsetDateTime::now_utc();
        if now >= ca_not_after {
            return Err(CsrError::Validity("the signer's certificate has expired".into()).into());
        }
        let not_before = (now - BACKDATE).max(ca_not_before);
        let not_after = not_after.min(ca_not_after);
        if not_after <= now {
            return Err(CsrError::Validity(format!(
                "requested expiry {not_after} is not in the future"
            ))
            .into());
        }

        let mut params = CertificateParams::default();
        // rcgen cannot hold two attributes of one type (O=dev, O=qa), so the
        // requested subject is spliced in after signing (see
        // `replace_subject`). The placeholder only keeps rcgen's choice of
        // SAN criticality (critical iff the subject is empty) right.
        let mut placeholder = DistinguishedName::new();
        if !name_is_empty(&csr.subject_der) {
            placeholder.push(DnType::CommonName, "placeholder");
        }
        params.distinguished_name = placeholder;
        for name in &csr.dns_names {
            params.subject_alt_names.push(SanType::DnsName(ia5(name)?));
        }
        for ip in &csr.ip_addresses {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        for email in &csr.email_addresses {
            params
                .subject_alt_names
                .push(SanType::Rfc822Name(ia5(email)?));
        }
        for uri in &csr.uris {
            params.subject_alt_names.push(SanType::URI(ia5(uri)?));
        }
        params.is_ca = IsCa::ExplicitNoCa;
        for usage in usages {
            if let Some(bit) = usage.key_usage_bit() {
                if !params.key_usages.contains(&bit) {
                    params.key_usages.push(bit);
                }
            }
            if let Some(eku) = usage.extended_key_usage() {
                if !params.extended_key_usages.contains(&eku) {
                    params.extended_key_usages.push(eku);
                }
            }
        }
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        params.not_before = not_before;
        params.not_after = not_after;

        let public_key = rcgen::SubjectPublicKeyInfo::from_der(&csr.public_key_der)
            .map_err(|e| CsrError::UnsupportedKey(e.to_string()))?;
        let draft = params.signed_by(&public_key, &self.issuer)?;
        let der = self.replace_subject(draft.der(), &csr.subject_der)?;
        Ok(pem::encode_config(
            &pem::Pem::new("CERTIFICATE", der),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        ))
    }

    /// This CA certificate's notBefore and notAfter.
    fn validity(&self) -> Result<(OffsetDateTime, OffsetDateTime)> {
        let der = crate::first_pem_der(&self.cert_pem)?;
        let (_, cert) =
            X509Certificate::from_der(&der).map_err(|e| crate::PkiError::Parse(e.to_string()))?;
        let validity = cert.validity();
        Ok((
            validity.not_before.to_datetime(),
            validity.not_after.to_datetime(),
        ))
    }

    /// Re-sign `cert_der` (issued by this CA) with its subject Name
    /// replaced by `subject_der`. rcgen keeps one value per attribute type,
    /// so this is how a subject with several O (groups) is issued.
    pub(crate) fn replace_subject(&self, cert_der: &[u8], subject_der: &[u8]) -> Result<Vec<u8>> {
        let bad = |what: &str| crate::PkiError::Parse(format!("issued certificate: {what}"));
        // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
        let cert = der_children(der_content(cert_der).ok_or_else(|| bad("not DER"))?)
            .ok_or_else(|| bad("not DER"))?;
        let [tbs, signature_algorithm, _] = cert.as_slice() else {
            return Err(bad("not a certificate"));
        };
        let mut fields = der_children(der_content(tbs).ok_or_else(|| bad("bad TBS"))?)
            .ok_or_else(|| bad("bad TBS"))?;
        // TBSCertificate: [0] version (present, rcgen writes v3), serial,
        // signature, issuer, validity, subject, ...
        let subject = fields.get_mut(5).ok_or_else(|| bad("no subject"))?;
        *subject = subject_der;
        let tbs = der_tlv(0x30, &fields.concat());
        let signature = self.issuer.key().sign(&tbs)?;
        let mut bits = vec![0u8]; // no unused bits
        bits.extend_from_slice(&signature);
        let body = [tbs.as_slice(), signature_algorithm, &der_tlv(0x03, &bits)].concat();
        Ok(der_tlv(0x30, &body))
    }
}

/// DER Name `O=<org>...,CN=<common_name>` (organizations first, as Go
/// orders them), one attribute per RDN, UTF8String values. Used to issue
/// subjects with several O (groups), which rcgen cannot represent: the
/// crate-internal `CertificateAuthority::replace_subject` splices it in.
pub fn subject_der(common_name: &str, organizations: &[String]) -> Vec<u8> {
    const OID_O: &[u8] = &[0x55, 0x04, 0x0a];
    const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
    let rdn = |oid: &[u8], value: &str| {
        let attribute = [der_tlv(0x06, oid), der_tlv(0x0c, value.as_bytes())].concat();
        der_tlv(0x31, &der_tlv(0x30, &attribute))
    };
    let mut rdns: Vec<u8> = organizations.iter().flat_map(|o| rdn(OID_O, o)).collect();
    if !common_name.is_empty() {
        rdns.extend(rdn(OID_CN, common_name));
    }
    der_tlv(0x30, &rdns)
}

fn ia5(name: &str) -> std::result::Result<rcgen::string::Ia5String, CsrError> {
    name.try_into()
        .map_err(|_| CsrError::InvalidName(format!("{name:?} is not ASCII")))
}

/// True if `name_der` is an empty RDNSequence.
fn name_is_empty(name_der: &[u8]) -> bool {
    der_content(name_der).is_some_and(|content| content.is_empty())
}

/// The content octets of the single DER element `der`.
fn der_content(der: &[u8]) -> Option<&[u8]> {
    let (rest, any) = Any::from_der(der).ok()?;
    rest.is_empty().then_some(any.data)
}

/// The raw encodings (header included) of the elements in `content`.
fn der_children(mut content: &[u8]) -> Option<Vec<&[u8]>> {
    let mut children = Vec::new();
    while !content.is_empty() {
        let (rest, _) = Any::from_der(content).ok()?;
        children.push(&content[..content.len() - rest.len()]);
        content = rest;
    }
    Some(children)
}

/// One DER element: `tag`, definite length, `content`.
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::issued_by;
    use rcgen::PublicKeyData as _;
    use std::process::Command;
    use std::time::Duration;
    use x509_parser::extensions::{ParsedExtension as Ext, X509Extension};

    fn have_openssl() -> bool {
        Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// A request made by the openssl CLI, or None when openssl is absent.
    fn openssl_csr(key_args: &[&str], subject: &str, san: Option<&str>) -> Option<Vec<u8>> {
        if !have_openssl() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let mut cmd = Command::new("openssl");
        cmd.args(["req", "-new"])
            .args(key_args)
            .args(["-nodes", "-keyout"])
            .arg(&key)
            .args(["-subj", subject]);
        if let Some(san) = san {
            cmd.args(["-addext", &format!("subjectAltName={san}")]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "openssl req: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(out.stdout)
    }

    fn ec_csr() -> Option<Vec<u8>> {
        openssl_csr(
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
            "/CN=jane/O=dev/O=qa",
            Some("DNS:x,IP:10.0.0.1"),
        )
    }

    /// A request made by rcgen, for when openssl is absent and for shapes
    /// the CLI makes awkward.
    fn rcgen_csr(cn: &str, orgs: &[&str], dns: &[&str]) -> (Vec<u8>, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        // rcgen keeps one value per attribute type; a custom OID slot
        // carries a second O.
        if let Some(first) = orgs.first() {
            dn.push(DnType::OrganizationName, *first);
        }
        if let Some(second) = orgs.get(1) {
            dn.push(DnType::CustomDnType(vec![2, 5, 4, 10]), *second);
        }
        params.distinguished_name = dn;
        let csr = params.serialize_request(&key).unwrap();
        (csr.pem().unwrap().into_bytes(), key)
    }

    #[test]
    fn openssl_request_parses_to_its_names_and_key() {
        let Some(pem) = ec_csr() else { return };
        let info = parse_csr(&pem).unwrap();
        assert_eq!(info.common_name, "jane");
        assert_eq!(info.organizations, vec!["dev", "qa"]);
        assert_eq!(info.dns_names, vec!["x"]);
        assert_eq!(
            info.ip_addresses,
            vec!["10.0.0.1".parse::<IpAddr>().unwrap()]
        );
        assert!(info.email_addresses.is_empty() && info.uris.is_empty());
        assert_eq!(info.public_key_algorithm, PublicKeyAlgorithm::EcdsaP256);
    }

    #[test]
    fn rcgen_request_parses_without_openssl() {
        let (pem, key) = rcgen_csr("system:node:n1", &["system:nodes"], &["n1.example"]);
        let info = parse_csr(&pem).unwrap();
        assert_eq!(info.common_name, "system:node:n1");
        assert_eq!(info.organizations, vec!["system:nodes"]);
        assert_eq!(info.dns_names, vec!["n1.example"]);
        assert_eq!(info.public_key_der, key.subject_public_key_info());
    }

    #[test]
    fn emails_and_uris_are_read_from_the_extension_request() {
        let Some(pem) = openssl_csr(
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            "/CN=svc",
            Some("email:a@example.com,URI:spiffe://cluster.local/ns/x/sa/y,IP:fd00::1"),
        ) else {
            return;
        };
        let info = parse_csr(&pem).unwrap();
        assert_eq!(info.email_addresses, vec!["a@example.com"]);
        assert_eq!(info.uris, vec!["spiffe://cluster.local/ns/x/sa/y"]);
        assert_eq!(
            info.ip_addresses,
            vec!["fd00::1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(info.public_key_algorithm, PublicKeyAlgorithm::EcdsaP384);
    }

    #[test]
    fn rsa_and_ed25519_requests_are_accepted_and_short_rsa_is_not() {
        let Some(rsa) = openssl_csr(&["-newkey", "rsa:2048"], "/CN=r", None) else {
            return;
        };
        assert_eq!(
            parse_csr(&rsa).unwrap().public_key_algorithm,
            PublicKeyAlgorithm::Rsa { bits: 2048 }
        );
        let ed = openssl_csr(&["-newkey", "ed25519"], "/CN=e", None).unwrap();
        assert_eq!(
            parse_csr(&ed).unwrap().public_key_algorithm,
            PublicKeyAlgorithm::Ed25519
        );
        let short = openssl_csr(&["-newkey", "rsa:1024"], "/CN=r", None).unwrap();
        assert!(matches!(
            parse_csr(&short),
            Err(CsrError::UnsupportedKey(_))
        ));
    }

    #[test]
    fn tampered_request_is_rejected() {
        let (pem, _) = rcgen_csr("jane", &["dev"], &[]);
        let block = pem::parse(&pem).unwrap();
        let mut der = block.contents().to_vec();
        // Change the CN's first letter: the signature no longer covers it.
        let at = der.windows(4).position(|w| w == b"jane").unwrap();
        der[at] = b'J';
        let forged = pem::encode(&pem::Pem::new(CSR_PEM_TYPE, der));
        assert_eq!(parse_csr(forged.as_bytes()), Err(CsrError::BadSignature));
    }

    #[test]
    fn pem_must_be_exactly_one_certificate_request_block() {
        let (pem, _) = rcgen_csr("jane", &[], &[]);
        let twice = [pem.clone(), pem.clone()].concat();
        assert!(matches!(parse_csr(&twice), Err(CsrError::Pem(_))));
        assert!(matches!(parse_csr(b"garbage"), Err(CsrError::Pem(_))));
        let ca = CertificateAuthority::generate("ca").unwrap();
        assert!(matches!(
            parse_csr(ca.cert_pem().as_bytes()),
            Err(CsrError::Pem(_))
        ));
        let not_der = pem::encode(&pem::Pem::new(CSR_PEM_TYPE, vec![1, 2, 3]));
        assert!(matches!(
            parse_csr(not_der.as_bytes()),
            Err(CsrError::Parse(_))
        ));
    }

    #[test]
    fn usages_are_spelled_as_the_api_spells_them() {
        for usage in KeyUsage::ALL {
            assert_eq!(KeyUsage::parse(usage.as_str()), Ok(usage));
        }
        assert_eq!(
            KeyUsage::parse("Client Auth"),
            Err(CsrError::UnknownUsage("Client Auth".into()))
        );
    }

    fn extensions<'a>(cert: &'a X509Certificate<'a>) -> Vec<&'a X509Extension<'a>> {
        cert.extensions().iter().collect()
    }

    #[test]
    fn issued_certificate_carries_names_usages_and_expiry_and_verifies_against_the_ca() {
        let ca = CertificateAuthority::generate("csr-signer").unwrap();
        let pem = ec_csr().unwrap_or_else(|| {
            // Without openssl: same names through rcgen.
            rcgen_csr("jane", &["dev", "qa"], &["x"]).0
        });
        let requested = parse_csr(&pem).unwrap();
        let not_after = OffsetDateTime::now_utc() + Duration::from_secs(24 * 3600);
        let cert_pem = ca
            .sign_csr(
                &pem,
                &["digital signature", "key encipherment", "client auth"],
                not_after,
            )
            .unwrap();
        assert!(issued_by(&cert_pem, ca.cert_pem()));

        let info = crate::cert_info_pem(&cert_pem).unwrap();
        assert_eq!(info.common_name, "jane");
        assert_eq!(info.organizations, vec!["dev", "qa"]);
        assert_eq!(info.dns_names, requested.dns_names);
        assert_eq!(info.ips, requested.ip_addresses);
        assert_eq!(info.not_after.unix_timestamp(), not_after.unix_timestamp());

        let der = crate::first_pem_der(&cert_pem).unwrap();
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(cert.public_key().raw, requested.public_key_der.as_slice());
        let backdated = OffsetDateTime::now_utc() - cert.validity().not_before.to_datetime();
        assert!(
            (Duration::from_secs(290)..=Duration::from_secs(310)).contains(&backdated),
            "{backdated}"
        );
        let mut saw = (false, false, false);
        for ext in extensions(&cert) {
            match ext.parsed_extension() {
                Ext::KeyUsage(ku) => {
                    assert!(ku.digital_signature() && ku.key_encipherment());
                    assert!(!ku.key_cert_sign());
                    saw.0 = true;
                }
                Ext::ExtendedKeyUsage(eku) => {
                    assert!(eku.client_auth && !eku.server_auth);
                    saw.1 = true;
                }
                Ext::BasicConstraints(bc) => {
                    assert!(!bc.ca);
                    saw.2 = true;
                }
                _ => {}
            }
        }
        assert_eq!(saw, (true, true, true));
    }

    #[test]
    fn expiry_is_capped_at_the_signers_own_expiry() {
        let ca = CertificateAuthority::generate("csr-signer").unwrap();
        let (pem, _) = rcgen_csr("u", &[], &[]);
        let far = OffsetDateTime::now_utc() + Duration::from_secs(100 * 365 * 24 * 3600);
        let cert = ca.sign_csr(&pem, &["client auth"], far).unwrap();
        let ca_expiry = crate::cert_info_pem(ca.cert_pem()).unwrap().not_after;
        assert_eq!(crate::cert_info_pem(&cert).unwrap().not_after, ca_expiry);
    }

    #[test]
    fn requested_ca_basic_constraints_and_usages_are_ignored() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "sneaky");
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let pem = params.serialize_request(&key).unwrap().pem().unwrap();
        let ca = CertificateAuthority::generate("csr-signer").unwrap();
        let not_after = OffsetDateTime::now_utc() + Duration::from_secs(3600);
        let cert_pem = ca
            .sign_csr(pem.as_bytes(), &["server auth"], not_after)
            .unwrap();
        let der = crate::first_pem_der(&cert_pem).unwrap();
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        for ext in extensions(&cert) {
            match ext.parsed_extension() {
                Ext::BasicConstraints(bc) => assert!(!bc.ca),
                Ext::KeyUsage(ku) => assert!(!ku.key_cert_sign()),
                Ext::ExtendedKeyUsage(eku) => assert!(eku.server_auth && !eku.client_auth),
                _ => {}
            }
        }
    }

    #[test]
    fn request_with_empty_subject_gets_a_critical_san_and_an_empty_subject() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["only.example".to_string()]).unwrap();
        params.distinguished_name = DistinguishedName::new();
        let pem = params.serialize_request(&key).unwrap().pem().unwrap();
        let ca = CertificateAuthority::generate("csr-signer").unwrap();
        let not_after = OffsetDateTime::now_utc() + Duration::from_secs(3600);
        let cert_pem = ca
            .sign_csr(pem.as_bytes(), &["server auth"], not_after)
            .unwrap();
        assert!(issued_by(&cert_pem, ca.cert_pem()));
        let der = crate::first_pem_der(&cert_pem).unwrap();
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(cert.subject().iter().count(), 0);
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert!(san.critical);
        assert_eq!(
            san.value.general_names,
            vec![GeneralName::DNSName("only.example")]
        );
    }

    #[test]
    fn unknown_usage_and_tampered_request_are_not_signed() {
        let ca = CertificateAuthority::generate("csr-signer").unwrap();
        let (pem, _) = rcgen_csr("u", &[], &[]);
        let in_an_hour = OffsetDateTime::now_utc() + Duration::from_secs(3600);
        assert!(matches!(
            ca.sign_csr(&pem, &["root of all trust"], in_an_hour),
            Err(crate::PkiError::Csr(CsrError::UnknownUsage(_)))
        ));
        let past = OffsetDateTime::now_utc() - Duration::from_secs(1);
        assert!(matches!(
            ca.sign_csr(&pem, &["client auth"], past),
            Err(crate::PkiError::Csr(CsrError::Validity(_)))
        ));
        let block = pem::parse(&pem).unwrap();
        let mut der = block.contents().to_vec();
        let last = der.len() - 1;
        der[last] ^= 0x01;
        let forged = pem::encode(&pem::Pem::new(CSR_PEM_TYPE, der));
        assert!(matches!(
            ca.sign_csr(forged.as_bytes(), &["client auth"], in_an_hour),
            Err(crate::PkiError::Csr(CsrError::BadSignature))
        ));
    }

    #[test]
    fn issued_certificate_is_accepted_by_openssl_verify() {
        let Some(pem) = ec_csr() else { return };
        let ca = CertificateAuthority::generate("csr-signer").unwrap();
        let not_after = OffsetDateTime::now_utc() + Duration::from_secs(3600);
        let cert = ca.sign_csr(&pem, &["client auth"], not_after).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca.cert_pem()).unwrap();
        std::fs::write(dir.path().join("leaf.crt"), &cert).unwrap();
        let out = Command::new("openssl")
            .args(["verify", "-purpose", "sslclient", "-CAfile"])
            .arg(dir.path().join("ca.crt"))
            .arg(dir.path().join("leaf.crt"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let subject = Command::new("openssl")
            .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"])
            .arg(dir.path().join("leaf.crt"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&subject.stdout).trim(),
            "subject=O=qa,O=dev,CN=jane"
        );
    }

    #[test]
    fn subject_with_several_organizations_survives_issuance() {
        let ca = CertificateAuthority::generate("ca").unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let spec = crate::LeafSpec::client("u", &["a", "b", "c"]);
        let draft = ca.sign(&spec, &key).unwrap();
        let draft_der = crate::first_pem_der(&draft).unwrap();
        let orgs = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let der = ca
            .replace_subject(&draft_der, &subject_der("u", &orgs))
            .unwrap();
        let info = crate::cert_info_der(&der).unwrap();
        assert_eq!((info.common_name.as_str(), info.organizations), ("u", orgs));
        let pem = pem::encode(&pem::Pem::new("CERTIFICATE", der));
        assert!(issued_by(&pem, ca.cert_pem()));
        assert!(name_is_empty(&subject_der("", &[])));
    }

    #[test]
    fn der_lengths_use_the_minimal_long_form() {
        assert_eq!(der_tlv(0x04, &[0; 3])[..2], [0x04, 3]);
        assert_eq!(der_tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(der_tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(rsa_modulus_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(rsa_modulus_bits(&[0x01, 0x00]), 9);
    }
}
