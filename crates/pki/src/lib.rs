//! Certificates, keys and kubeconfigs: the cluster's identities.
//!
//! Every certificate the project issues is issued here, and every
//! certificate it reads is parsed here. Start with [`CertificateAuthority`]
//! (generate or load a CA, issue leaf certificates from a [`LeafSpec`]),
//! then [`files`] (how a key pair is kept on disk: atomic writes, 0600
//! keys, reuse until close to expiry) and [`kubeconfig`]. [`csr`] parses
//! and signs PKCS#10 requests for the certificates API; [`jwt`] signs and
//! verifies service-account tokens (ES256).
//!
//! Keys are ECDSA P-256. CAs are valid ten years, leaf certificates one
//! year unless the spec says otherwise.
//!
//! This crate does no I/O beyond the files it is told to write and knows
//! nothing of the API server or datastore.

pub mod csr;
pub mod files;
pub mod jwt;
pub mod kubeconfig;

use std::net::IpAddr;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;

pub use csr::{parse_csr, CsrError, CsrInfo, KeyUsage, PublicKeyAlgorithm};
pub use files::{load_or_issue, CertPaths};
pub use jwt::{JwtError, SigningKey, Validation, VerifyingKey};
pub use kubeconfig::Kubeconfig;

/// CAs live ten years.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Leaf certificates live one year.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Certificates are allowed this much clock skew at the start of validity.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot parse certificate: {0}")]
    Parse(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error(transparent)]
    Csr(#[from] csr::CsrError),
}

pub type Result<T> = std::result::Result<T, PkiError>;

/// What a leaf certificate may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Server,
    Client,
    ServerAndClient,
}

/// Everything that distinguishes one leaf certificate from another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub usage: Usage,
    pub validity: Duration,
}

impl LeafSpec {
    /// A client certificate: `CN=user`, `O=groups`, as the API server reads it.
    pub fn client(user: &str, groups: &[&str]) -> Self {
        LeafSpec {
            common_name: user.to_string(),
            organizations: groups.iter().map(|g| g.to_string()).collect(),
            dns_names: vec![],
            ips: vec![],
            usage: Usage::Client,
            validity: LEAF_VALIDITY,
        }
    }

    /// A serving certificate for the given names and addresses.
    pub fn server(common_name: &str, dns_names: Vec<String>, ips: Vec<IpAddr>) -> Self {
        LeafSpec {
            common_name: common_name.to_string(),
            organizations: vec![],
            dns_names,
            ips,
            usage: Usage::Server,
            validity: LEAF_VALIDITY,
        }
    }
}

/// A PEM certificate and its PEM (PKCS#8) private key.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A certificate authority that can sign leaf certificates.
pub struct CertificateAuthority {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A new self-signed CA with a fresh key. The common name gets the
    /// creation time appended, so two CAs of the same role are told apart.
    pub fn generate(common_name: &str) -> Result<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let now = OffsetDateTime::now_utc();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            format!("{common_name}@{}", now.unix_timestamp()),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        params.serial_number = Some(random_serial());
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        let key_pem = key.serialize_pem();
        Ok(CertificateAuthority {
            issuer: Issuer::new(params, key),
            cert_pem,
            key_pem,
        })
    }

    /// A CA from its PEM certificate and key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(CertificateAuthority {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            issuer,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Issue a leaf certificate with a fresh key.
    pub fn issue(&self, spec: &LeafSpec) -> Result<IssuedCert> {
        let key = KeyPair::generate()?;
        let cert_pem = self.sign(spec, &key)?;
        Ok(IssuedCert {
            cert_pem,
            key_pem: key.serialize_pem(),
        })
    }

    /// Sign a certificate for someone else's public key (the CSR signers use
    /// this); returns the PEM certificate.
    pub fn sign(&self, spec: &LeafSpec, public_key: &impl rcgen::PublicKeyData) -> Result<String> {
        let mut sans: Vec<SanType> = Vec::new();
        for name in &spec.dns_names {
            sans.push(SanType::DnsName(name.as_str().try_into()?));
        }
        for ip in &spec.ips {
            sans.push(SanType::IpAddress(*ip));
        }
        let mut params = CertificateParams::default();
        params.subject_alt_names = sans;
        let mut dn = DistinguishedName::new();
        for org in &spec.organizations {
            dn.push(DnType::OrganizationName, org.as_str());
        }
        dn.push(DnType::CommonName, spec.common_name.as_str());
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = match spec.usage {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::ServerAndClient => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + spec.validity;
        let cert = params.signed_by(public_key, &self.issuer)?;
        if spec.organizations.len() > 1 {
            // rcgen keeps one value per attribute type; several groups need
            // the subject written by hand.
            let subject = csr::subject_der(&spec.common_name, &spec.organizations);
            let der = self.replace_subject(cert.der(), &subject)?;
            return Ok(pem::encode_config(
                &pem::Pem::new("CERTIFICATE", der),
                pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
            ));
        }
        Ok(cert.pem())
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes = *uuid::Uuid::new_v4().as_bytes();
    bytes[0] &= 0x7f; // keep the DER integer positive
    bytes[0] |= 0x01; // and of full length
    SerialNumber::from_slice(&bytes)
}

/// What the project needs to know about a certificate it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub not_after: OffsetDateTime,
}

/// Parse the subject, names and expiry out of a DER certificate.
pub fn cert_info_der(der: &[u8]) -> Result<CertInfo> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| PkiError::Parse(e.to_string()))?;
    let subject = cert.subject();
    let common_name = subject
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .next()
        .unwrap_or_default()
        .to_string();
    let organizations = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    let mut dns_names = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns_names.push(d.to_string()),
                GeneralName::IPAddress(raw) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*raw) {
                        ips.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*raw) {
                        ips.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    let not_after = cert.validity().not_after.to_datetime();
    Ok(CertInfo {
        common_name,
        organizations,
        dns_names,
        ips,
        not_after,
    })
}

/// [`cert_info_der`] for the first certificate in a PEM string.
pub fn cert_info_pem(pem: &str) -> Result<CertInfo> {
    let der = first_pem_der(pem)?;
    cert_info_der(&der)
}

/// The DER bytes of the first PEM block in `pem`.
pub fn first_pem_der(pem: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    let mut body = String::new();
    let mut inside = false;
    for line in pem.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN ") {
            inside = true;
        } else if line.starts_with("-----END ") {
            if inside {
                break;
            }
        } else if inside {
            body.push_str(line);
        }
    }
    if body.is_empty() {
        return Err(PkiError::Parse("no PEM block found".into()));
    }
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| PkiError::Parse(e.to_string()))
}

/// A fresh ECDSA P-256 key pair as (private PKCS#8 PEM, public SPKI PEM);
/// used for the service-account token signing key.
/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

pub fn generate_key_pair_pem() -> Result<(String, String)> {
    let key = KeyPair::generate()?;
    Ok((key.serialize_pem(), key.public_key_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_cert_keeps_every_group() {
        let ca = CertificateAuthority::generate("test-ca").unwrap();
        let leaf = ca
            .issue(&LeafSpec::client("jane", &["dev", "qa", "system:masters"]))
            .unwrap();
        let info = cert_info_pem(&leaf.cert_pem).unwrap();
        assert_eq!(info.common_name, "jane");
        assert_eq!(info.organizations, ["dev", "qa", "system:masters"]);
    }

    #[test]
    fn issued_client_cert_carries_user_and_groups() {
        let ca = CertificateAuthority::generate("test-ca").unwrap();
        let leaf = ca
            .issue(&LeafSpec::client("system:admin", &["system:masters"]))
            .unwrap();
        let info = cert_info_pem(&leaf.cert_pem).unwrap();
        assert_eq!(info.common_name, "system:admin");
        assert_eq!(info.organizations, vec!["system:masters".to_string()]);
    }

    #[test]
    fn serving_cert_lists_every_san_and_expires_in_a_year() {
        let ca = CertificateAuthority::generate("test-ca").unwrap();
        let ip: IpAddr = "10.43.0.1".parse().unwrap();
        let leaf = ca
            .issue(&LeafSpec::server(
                "kube-apiserver",
                vec!["kubernetes.default.svc".into(), "localhost".into()],
                vec![ip],
            ))
            .unwrap();
        let info = cert_info_pem(&leaf.cert_pem).unwrap();
        assert_eq!(info.dns_names, vec!["kubernetes.default.svc", "localhost"]);
        assert_eq!(info.ips, vec![ip]);
        let days = (info.not_after - OffsetDateTime::now_utc()).whole_days();
        assert!((364..=365).contains(&days), "{days}");
    }

    #[test]
    fn ca_reloaded_from_pem_signs_for_the_same_subject() {
        let ca = CertificateAuthority::generate("test-ca").unwrap();
        let again = CertificateAuthority::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
        let leaf = again.issue(&LeafSpec::client("u", &[])).unwrap();
        assert!(cert_info_pem(&leaf.cert_pem).is_ok());
        let ca_days = (cert_info_pem(ca.cert_pem()).unwrap().not_after - OffsetDateTime::now_utc())
            .whole_days();
        assert!(ca_days >= 3649, "{ca_days}");
    }

    #[test]
    fn two_generated_cas_differ() {
        let a = CertificateAuthority::generate("x").unwrap();
        let b = CertificateAuthority::generate("x").unwrap();
        assert_ne!(a.cert_pem(), b.cert_pem());
    }
}
