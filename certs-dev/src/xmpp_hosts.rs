//! TLS certificates for the XMPP server's virtual hosts.
//!
//! Prosody offers STARTTLS on c2s with one certificate per host, read from
//! `<host>.crt` and `<host>.key` in its `certs/` folder. Brokers verify that
//! certificate against the federation CA with the host name (`cloud-a.intercloud.lab`),
//! so each one is a plain server certificate: DNS SANs `<host>` and
//! `localhost`, EKU serverAuth, signed by the federation CA.
//!
//! These are short-lived (a month) and made on demand by the lab and the test
//! harness, never committed: [`issue`] builds them in memory from the CA's PEM
//! and a given `now`, [`write()`] reads the CA's files and puts them on disk.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use time::{Duration, OffsetDateTime};

use crate::pki;

/// How long before `now` a host certificate becomes valid (clock skew).
pub const BACKDATE: Duration = Duration::hours(1);
/// How long after `now` a host certificate stays valid.
pub const LIFETIME: Duration = Duration::days(30);

/// A host's certificate and key, both PEM.
#[derive(Debug, Clone)]
pub struct HostCert {
    /// The XMPP host (a DNS name) the certificate is for.
    pub host: String,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
}

/// Issues one certificate per host under `ca_cert_pem`/`ca_key_pem`, valid
/// from `now - BACKDATE` to `now + LIFETIME`.
pub fn issue(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    hosts: &[String],
    now: OffsetDateTime,
) -> Result<Vec<HostCert>> {
    if hosts.is_empty() {
        bail!("no host given: name at least one XMPP host");
    }
    for host in hosts {
        check_host(host)?;
    }
    let ca_key = KeyPair::from_pem(ca_key_pem).context("reading the CA's private key")?;
    let issuer =
        Issuer::from_ca_cert_pem(ca_cert_pem, ca_key).context("reading the CA certificate")?;
    hosts
        .iter()
        .map(|host| {
            let mut params = CertificateParams::default();
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(DnType::CommonName, host.as_str());
            params.subject_alt_names = vec![
                SanType::DnsName(host.as_str().try_into()?),
                SanType::DnsName("localhost".try_into()?),
            ];
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params.not_before = now - BACKDATE;
            params.not_after = now + LIFETIME;
            params.use_authority_key_identifier_extension = true;
            params.serial_number = Some(pki::random_serial()?);
            let key = pki::new_key()?;
            let cert = params
                .signed_by(&key, &issuer)
                .with_context(|| format!("signing the certificate of {host}"))?;
            Ok(HostCert {
                host: host.clone(),
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            })
        })
        .collect()
}

/// Reads the CA from `ca_cert`/`ca_key`, issues a certificate per host valid
/// from now, and writes `<out>/<host>.crt` (mode 644) and `<out>/<host>.key`
/// (mode 600), replacing older ones. Creates `out` if needed. Returns the
/// paths written.
pub fn write(ca_cert: &Path, ca_key: &Path, out: &Path, hosts: &[String]) -> Result<Vec<PathBuf>> {
    let ca_cert_pem = fs::read_to_string(ca_cert)
        .with_context(|| format!("reading the CA certificate {}", ca_cert.display()))?;
    let ca_key_pem = fs::read_to_string(ca_key)
        .with_context(|| format!("reading the CA key {}", ca_key.display()))?;
    let certs = issue(&ca_cert_pem, &ca_key_pem, hosts, OffsetDateTime::now_utc())?;
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::new();
    for cert in certs {
        let crt = out.join(format!("{}.crt", cert.host));
        let key = out.join(format!("{}.key", cert.host));
        // The key first: a certificate without its key is useless to the server.
        write_file(&key, &cert.key_pem, 0o600)?;
        write_file(&crt, &cert.cert_pem, 0o644)?;
        written.push(crt);
        written.push(key);
    }
    Ok(written)
}

/// Writes `path` through a temporary file beside it and a rename, so a reader
/// never sees half a file, with `mode` on Unix.
fn write_file(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?
        .to_string_lossy();
    let staging = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = options
        .open(&staging)
        .and_then(|mut file| {
            file.write_all(contents.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&staging, path));
    if let Err(error) = result {
        let _ = fs::remove_file(&staging);
        return Err(error).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}

/// A host name usable as a DNS SAN and as a file name: dot-separated labels
/// of a-z, 0-9 and '-', none empty or starting or ending with '-'.
pub fn check_host(host: &str) -> Result<()> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        bail!(
            "{host:?} is not a host name (dot-separated labels of a-z, 0-9 and '-', \
             none empty or starting or ending with '-')"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::GeneralName;
    use x509_parser::pem::parse_x509_pem;

    fn dev_ca() -> (String, String) {
        let pki = Path::new(env!("CARGO_MANIFEST_DIR")).join("pki");
        (
            fs::read_to_string(pki.join("ca.crt")).expect("read ca.crt"),
            fs::read_to_string(pki.join("ca.key")).expect("read ca.key"),
        )
    }

    #[test]
    fn issues_server_certificates_signed_by_the_ca() {
        let (ca_cert, ca_key) = dev_ca();
        let now = OffsetDateTime::now_utc();
        let hosts = vec![
            "cloud-a.intercloud.lab".to_owned(),
            "conference.root.intercloud.lab".to_owned(),
        ];
        let certs = issue(&ca_cert, &ca_key, &hosts, now).expect("issue");
        assert_eq!(certs.len(), 2);

        let (_, ca_pem) = parse_x509_pem(ca_cert.as_bytes()).expect("ca pem");
        let ca = ca_pem.parse_x509().expect("ca parses");
        for (cert, host) in certs.iter().zip(&hosts) {
            assert_eq!(&cert.host, host);
            assert!(cert.key_pem.contains("PRIVATE KEY"));
            let (_, pem) = parse_x509_pem(cert.cert_pem.as_bytes()).expect("pem");
            let x509 = pem.parse_x509().expect("parses");
            x509.verify_signature(Some(ca.public_key()))
                .expect("signed by the federation CA");
            assert_eq!(x509.issuer(), ca.subject());
            let sans: Vec<String> = x509
                .subject_alternative_name()
                .expect("one SAN extension")
                .expect("has SANs")
                .value
                .general_names
                .iter()
                .map(|name| match name {
                    GeneralName::DNSName(dns) => (*dns).to_owned(),
                    other => format!("{other:?}"),
                })
                .collect();
            assert_eq!(sans, [host.as_str(), "localhost"]);
            let eku = x509
                .extended_key_usage()
                .expect("one EKU")
                .expect("has EKU")
                .value;
            assert!(eku.server_auth && !eku.client_auth);
            assert!(!x509.is_ca());
            let not_before = x509.validity().not_before.timestamp();
            let not_after = x509.validity().not_after.timestamp();
            assert_eq!(not_before, (now - BACKDATE).unix_timestamp());
            assert_eq!(not_after, (now + LIFETIME).unix_timestamp());
        }
    }

    #[test]
    fn refuses_bad_host_names() {
        let (ca_cert, ca_key) = dev_ca();
        let now = OffsetDateTime::now_utc();
        for bad in ["", "Cloud-A.lab", "a..b", "-a.lab", "a/b", "../x"] {
            let error = issue(&ca_cert, &ca_key, &[bad.to_owned()], now)
                .expect_err("bad host must be refused");
            assert!(error.to_string().contains("not a host name"), "{error}");
        }
        let error = issue(&ca_cert, &ca_key, &[], now).expect_err("no host");
        assert!(error.to_string().contains("no host"), "{error}");
    }

    #[test]
    fn writes_crt_and_key_per_host() {
        let dir = std::env::temp_dir().join(format!(
            "intercloud-certs-dev-xmpp-{}-{}",
            std::process::id(),
            OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        let pki = Path::new(env!("CARGO_MANIFEST_DIR")).join("pki");
        let hosts = vec!["root.intercloud.lab".to_owned()];
        let written = write(&pki.join("ca.crt"), &pki.join("ca.key"), &dir, &hosts).expect("write");
        assert_eq!(
            written,
            [
                dir.join("root.intercloud.lab.crt"),
                dir.join("root.intercloud.lab.key")
            ]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(dir.join("root.intercloud.lab.key"))
                .expect("key metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Again: replaced, not refused.
        write(&pki.join("ca.crt"), &pki.join("ca.key"), &dir, &hosts).expect("rewrite");
        let leftovers = fs::read_dir(&dir).expect("list").count();
        assert_eq!(leftovers, 2, "no staging files left behind");
        let _ = fs::remove_dir_all(&dir);
    }
}
