//! Key material on disk: written atomically, private keys mode 0600, and
//! reused across restarts until they no longer fit or are close to expiry.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;

use crate::{cert_info_pem, CertificateAuthority, IssuedCert, LeafSpec, PkiError, Result};

/// Leaf certificates are renewed when less than this much validity remains.
pub const RENEW_BEFORE: Duration = Duration::from_secs(90 * 24 * 3600);

/// Where one certificate and its key live.
#[derive(Debug, Clone)]
pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertPaths {
    /// `<dir>/<name>.crt` and `<dir>/<name>.key`.
    pub fn new(dir: &Path, name: &str) -> Self {
        CertPaths {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Read a file as UTF-8 text.
pub fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(io_err(path))
}

/// Write `contents` to `path` atomically (temp file, fsync, rename) with the
/// given mode, creating parent directories (mode 0700).
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() && !parent.exists() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
            fs::set_permissions(parent, fs::Permissions::from_mode(0o700))
                .map_err(io_err(parent))?;
        }
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    file.write_all(contents).map_err(io_err(&tmp))?;
    // The mode given at open is filtered by the umask; set it exactly.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// Load the CA at `paths`, or generate one there if absent.
pub fn load_or_generate_ca(paths: &CertPaths, common_name: &str) -> Result<CertificateAuthority> {
    if paths.cert.exists() && paths.key.exists() {
        return CertificateAuthority::from_pem(&read(&paths.cert)?, &read(&paths.key)?);
    }
    let ca = CertificateAuthority::generate(common_name)?;
    write_atomic(&paths.key, ca.key_pem().as_bytes(), 0o600)?;
    write_atomic(&paths.cert, ca.cert_pem().as_bytes(), 0o644)?;
    Ok(ca)
}

/// Load the leaf certificate at `paths` if it still matches `spec` (same
/// subject and names) and is not close to expiry; otherwise issue a new one
/// from `ca` and write it there.
pub fn load_or_issue(
    paths: &CertPaths,
    ca: &CertificateAuthority,
    spec: &LeafSpec,
) -> Result<IssuedCert> {
    if let Some(existing) = load_if_current(paths, ca, spec) {
        return Ok(existing);
    }
    let issued = ca.issue(spec)?;
    write_atomic(&paths.key, issued.key_pem.as_bytes(), 0o600)?;
    write_atomic(&paths.cert, issued.cert_pem.as_bytes(), 0o644)?;
    Ok(issued)
}

fn load_if_current(
    paths: &CertPaths,
    ca: &CertificateAuthority,
    spec: &LeafSpec,
) -> Option<IssuedCert> {
    let cert_pem = read(&paths.cert).ok()?;
    let key_pem = read(&paths.key).ok()?;
    let info = cert_info_pem(&cert_pem).ok()?;
    let mut want_dns = spec.dns_names.clone();
    let mut have_dns = info.dns_names.clone();
    want_dns.sort();
    have_dns.sort();
    let mut want_ips = spec.ips.clone();
    let mut have_ips = info.ips.clone();
    want_ips.sort();
    have_ips.sort();
    let fresh = info.not_after - OffsetDateTime::now_utc() > RENEW_BEFORE;
    let same = info.common_name == spec.common_name
        && info.organizations == spec.organizations
        && want_dns == have_dns
        && want_ips == have_ips;
    // A certificate left from an older CA (the CA files were replaced) must
    // not be reused either.
    let signed_by_ca = issued_by(&cert_pem, ca.cert_pem());
    (fresh && same && signed_by_ca).then_some(IssuedCert { cert_pem, key_pem })
}

/// True if the certificate's issuer is the CA's subject and its signature
/// verifies with the CA's key.
pub fn issued_by(cert_pem: &str, ca_pem: &str) -> bool {
    use x509_parser::prelude::*;
    let (Ok(cert_der), Ok(ca_der)) = (crate::first_pem_der(cert_pem), crate::first_pem_der(ca_pem))
    else {
        return false;
    };
    let (Ok((_, cert)), Ok((_, ca))) = (
        X509Certificate::from_der(&cert_der),
        X509Certificate::from_der(&ca_der),
    ) else {
        return false;
    };
    cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_and_leaf_are_reused_on_second_load() {
        let dir = tempfile::tempdir().unwrap();
        let ca_paths = CertPaths::new(dir.path(), "client-ca");
        let ca = load_or_generate_ca(&ca_paths, "client-ca").unwrap();
        let again = load_or_generate_ca(&ca_paths, "client-ca").unwrap();
        assert_eq!(ca.cert_pem(), again.cert_pem());

        let leaf_paths = CertPaths::new(dir.path(), "client-admin");
        let spec = LeafSpec::client("system:admin", &["system:masters"]);
        let first = load_or_issue(&leaf_paths, &ca, &spec).unwrap();
        let second = load_or_issue(&leaf_paths, &again, &spec).unwrap();
        assert_eq!(first.cert_pem, second.cert_pem);
        let mode = fs::metadata(&leaf_paths.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn leaf_is_reissued_when_its_names_change() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::generate("server-ca").unwrap();
        let paths = CertPaths::new(dir.path(), "serving");
        let a = LeafSpec::server("apiserver", vec!["a.example".into()], vec![]);
        let b = LeafSpec::server("apiserver", vec!["b.example".into()], vec![]);
        let first = load_or_issue(&paths, &ca, &a).unwrap();
        let second = load_or_issue(&paths, &ca, &b).unwrap();
        assert_ne!(first.cert_pem, second.cert_pem);
        assert!(issued_by(&second.cert_pem, ca.cert_pem()));
    }

    #[test]
    fn leaf_from_another_ca_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let ca1 = CertificateAuthority::generate("ca").unwrap();
        let ca2 = CertificateAuthority::generate("ca").unwrap();
        let paths = CertPaths::new(dir.path(), "leaf");
        let spec = LeafSpec::client("u", &[]);
        let first = load_or_issue(&paths, &ca1, &spec).unwrap();
        assert!(!issued_by(&first.cert_pem, ca2.cert_pem()));
        let second = load_or_issue(&paths, &ca2, &spec).unwrap();
        assert!(issued_by(&second.cert_pem, ca2.cert_pem()));
    }
}
