//! Checks the committed development PKI under `certs-dev/pki`.
//!
//! Every fixture must keep the one property it exists for: good leaves chain
//! to the federation CA and carry their exact SPIFFE ID, and each file under
//! `bad/` breaks exactly the rule its name says. Regenerating the PKI must
//! keep these tests green.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{ExtendedKeyUsage, GeneralName};
use x509_parser::pem::{Pem, parse_x509_pem};
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::time::ASN1Time;
use x509_parser::x509::ReasonCode;

const FEDERATION: &str = "intercloud.lab";
const CLOUDS: [&str; 3] = ["cloud-a", "cloud-b", "cloud-c"];
/// The cloud whose operator the bad fixtures impersonate.
const FIRST_CLOUD: &str = "cloud-a";

/// Certificates issued by the federation CA, bad ones included.
const FEDERATION_ISSUED: [&str; 14] = [
    "root.crt",
    "operator-root.crt",
    "cloud-a.crt",
    "operator-cloud-a.crt",
    "cloud-b.crt",
    "operator-cloud-b.crt",
    "cloud-c.crt",
    "operator-cloud-c.crt",
    "bad/expired.crt",
    "bad/not-yet-valid.crt",
    "bad/revoked.crt",
    "bad/wrong-san.crt",
    "bad/wrong-key-usage.crt",
    // Not a leaf, but a certificate all the same: self-signed.
    "ca.crt",
];

/// Every certificate in the PKI, whoever signed it.
fn all_certificates() -> impl Iterator<Item = &'static str> {
    FEDERATION_ISSUED
        .into_iter()
        .chain(["bad/other-ca.crt", "bad/other-ca-ca.crt"])
}

fn pki_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pki")
}

fn read_pem(relative: &str) -> Pem {
    let path = pki_dir().join(relative);
    let bytes = fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error} (run `cargo run -p intercloud-certs-dev`)",
            path.display()
        )
    });
    let (rest, pem) = parse_x509_pem(&bytes)
        .unwrap_or_else(|error| panic!("{} is not PEM: {error:?}", path.display()));
    assert!(
        rest.iter().all(u8::is_ascii_whitespace),
        "{relative} holds more than one PEM block"
    );
    pem
}

fn certificate<'a>(pem: &'a Pem, relative: &str) -> X509Certificate<'a> {
    assert_eq!(pem.label, "CERTIFICATE", "{relative}");
    pem.parse_x509()
        .unwrap_or_else(|error| panic!("{relative} is not an X.509 certificate: {error:?}"))
}

fn crl(pem: &Pem) -> CertificateRevocationList<'_> {
    assert_eq!(pem.label, "X509 CRL");
    let (rest, crl) = x509_parser::parse_x509_crl(&pem.contents).expect("crl.pem parses");
    assert!(rest.is_empty(), "trailing bytes after the CRL");
    crl
}

fn uri_sans(cert: &X509Certificate<'_>) -> Vec<String> {
    all_sans(cert)
        .into_iter()
        .filter_map(|san| san.strip_prefix("URI:").map(str::to_owned))
        .collect()
}

/// Every SAN as `KIND:value`, in certificate order.
fn all_sans(cert: &X509Certificate<'_>) -> Vec<String> {
    let Some(extension) = cert.subject_alternative_name().expect("one SAN extension") else {
        return Vec::new();
    };
    extension
        .value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::URI(uri) => format!("URI:{uri}"),
            GeneralName::DNSName(dns) => format!("DNS:{dns}"),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => format!(
                    "IP:{}",
                    std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).expect("4 bytes"))
                ),
                16 => format!(
                    "IP:{}",
                    std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).expect("16 bytes"))
                ),
                _ => panic!("odd IP SAN {bytes:?}"),
            },
            other => format!("OTHER:{other:?}"),
        })
        .collect()
}

fn extended_key_usage<'a>(cert: &'a X509Certificate<'a>) -> &'a ExtendedKeyUsage<'a> {
    cert.extended_key_usage()
        .expect("one EKU extension")
        .expect("leaf has an EKU extension")
        .value
}

fn operator_id(trust_domain: &str, party: &str) -> String {
    format!("spiffe://{trust_domain}/operator/{party}/admin")
}

/// Every file the generator writes, relative to `pki/`.
fn expected_files() -> BTreeSet<String> {
    let mut stems = vec!["ca".to_owned(), "root".into(), "operator-root".into()];
    for cloud in CLOUDS {
        stems.push(cloud.to_owned());
        stems.push(format!("operator-{cloud}"));
    }
    for bad in [
        "expired",
        "not-yet-valid",
        "revoked",
        "other-ca",
        "other-ca-ca",
        "wrong-san",
        "wrong-key-usage",
    ] {
        stems.push(format!("bad/{bad}"));
    }
    stems
        .iter()
        .flat_map(|stem| [format!("{stem}.crt"), format!("{stem}.key")])
        .chain(["crl.pem".to_owned(), "README.md".to_owned()])
        .collect()
}

fn files_under(dir: &Path, prefix: &str, found: &mut BTreeSet<String>) {
    for entry in fs::read_dir(dir).expect("list pki dir") {
        let entry = entry.expect("dir entry");
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.file_type().expect("file type").is_dir() {
            files_under(&entry.path(), &format!("{name}/"), found);
        } else {
            found.insert(name);
        }
    }
}

#[test]
fn pki_holds_exactly_the_expected_files() {
    let mut found = BTreeSet::new();
    files_under(&pki_dir(), "", &mut found);
    assert_eq!(found, expected_files());
}

#[test]
fn readme_lists_every_file_and_warns() {
    let readme = fs::read_to_string(pki_dir().join("README.md")).expect("read README.md");
    assert!(readme.contains("these private keys are public"));
    assert!(readme.contains("cargo run -p intercloud-certs-dev -- --force"));
    for file in expected_files() {
        if file != "README.md" {
            assert!(
                readme.contains(&format!("`{file}`")),
                "README misses {file}"
            );
        }
    }
}

#[test]
fn ca_is_a_self_signed_unconstrained_ca() {
    let pem = read_pem("ca.crt");
    let ca = certificate(&pem, "ca.crt");
    assert_eq!(
        ca.subject().to_string(),
        "CN=Intercloud Dev Federation CA, O=Intercloud dev"
    );
    assert_eq!(ca.subject(), ca.issuer());
    let constraints = ca
        .basic_constraints()
        .expect("one basicConstraints")
        .expect("CA has basicConstraints")
        .value;
    assert!(constraints.ca);
    assert_eq!(constraints.path_len_constraint, None);
    let usage = ca
        .key_usage()
        .expect("one keyUsage")
        .expect("CA has keyUsage")
        .value;
    assert!(usage.key_cert_sign() && usage.crl_sign() && usage.digital_signature());
    ca.verify_signature(None).expect("CA is self-signed");
    assert_eq!(
        ca.validity().not_before,
        ASN1Time::from_timestamp(1_767_225_600).expect("2026-01-01")
    );
    assert_eq!(
        ca.validity().not_after,
        ASN1Time::from_timestamp(2_082_758_400).expect("2036-01-01")
    );
}

#[test]
fn federation_issued_certificates_verify_against_the_ca() {
    let ca_pem = read_pem("ca.crt");
    let ca = certificate(&ca_pem, "ca.crt");
    for relative in FEDERATION_ISSUED {
        let pem = read_pem(relative);
        let cert = certificate(&pem, relative);
        assert_eq!(cert.issuer(), ca.subject(), "{relative}: issuer name");
        cert.verify_signature(Some(ca.public_key()))
            .unwrap_or_else(|error| panic!("{relative} does not verify with ca.crt: {error:?}"));
    }
}

#[test]
fn other_ca_verifies_only_with_the_rogue_ca() {
    let ca_pem = read_pem("ca.crt");
    let ca = certificate(&ca_pem, "ca.crt");
    let rogue_pem = read_pem("bad/other-ca-ca.crt");
    let rogue = certificate(&rogue_pem, "bad/other-ca-ca.crt");
    let pem = read_pem("bad/other-ca.crt");
    let cert = certificate(&pem, "bad/other-ca.crt");

    assert!(rogue.is_ca());
    assert!(rogue.subject().to_string().contains("CN=Rogue CA"));
    assert_ne!(rogue.public_key().raw, ca.public_key().raw);
    assert!(
        cert.verify_signature(Some(ca.public_key())).is_err(),
        "other-ca.crt must not verify with the federation CA"
    );
    cert.verify_signature(Some(rogue.public_key()))
        .expect("other-ca.crt verifies with other-ca-ca.crt");
    assert_eq!(
        uri_sans(&cert),
        [operator_id(FEDERATION, FIRST_CLOUD)],
        "only the issuer may be wrong"
    );
}

#[test]
fn good_leaves_carry_their_exact_identity() {
    let server_extras = ["DNS:localhost", "IP:127.0.0.1", "IP:::1"];
    let mut servers = vec![("root.crt".to_owned(), format!("spiffe://{FEDERATION}/root"))];
    let mut operators = vec![(
        "operator-root.crt".to_owned(),
        operator_id(FEDERATION, "root"),
    )];
    for cloud in CLOUDS {
        servers.push((
            format!("{cloud}.crt"),
            format!("spiffe://{FEDERATION}/cloud/{cloud}"),
        ));
        operators.push((
            format!("operator-{cloud}.crt"),
            operator_id(FEDERATION, cloud),
        ));
    }

    for (relative, id) in &servers {
        let pem = read_pem(relative);
        let cert = certificate(&pem, relative);
        let mut expected = vec![format!("URI:{id}")];
        expected.extend(server_extras.map(String::from));
        assert_eq!(all_sans(&cert), expected, "{relative}");
        let eku = extended_key_usage(&cert);
        assert!(eku.server_auth && eku.client_auth, "{relative}: EKU");
    }
    for (relative, id) in &operators {
        let pem = read_pem(relative);
        let cert = certificate(&pem, relative);
        assert_eq!(all_sans(&cert), [format!("URI:{id}")], "{relative}");
        let eku = extended_key_usage(&cert);
        assert!(eku.client_auth && !eku.server_auth, "{relative}: EKU");
    }
    for (relative, _) in servers.iter().chain(&operators) {
        let pem = read_pem(relative);
        let cert = certificate(&pem, relative);
        assert!(!cert.is_ca(), "{relative} must not be a CA");
        let usage = cert
            .key_usage()
            .expect("one keyUsage")
            .expect("leaf has keyUsage")
            .value;
        assert!(
            usage.digital_signature() && !usage.key_cert_sign(),
            "{relative}"
        );
        assert!(cert.validity().is_valid(), "{relative} must be valid now");
    }
}

#[test]
fn bad_fixtures_impersonate_the_first_clouds_operator() {
    for name in [
        "expired",
        "not-yet-valid",
        "revoked",
        "other-ca",
        "wrong-key-usage",
    ] {
        let relative = format!("bad/{name}.crt");
        let pem = read_pem(&relative);
        let cert = certificate(&pem, &relative);
        assert_eq!(
            uri_sans(&cert),
            [operator_id(FEDERATION, FIRST_CLOUD)],
            "{relative}"
        );
    }
}

#[test]
fn expired_ended_in_the_past() {
    let pem = read_pem("bad/expired.crt");
    let cert = certificate(&pem, "bad/expired.crt");
    assert!(cert.validity().not_after < ASN1Time::now());
    assert!(!cert.validity().is_valid());
}

#[test]
fn not_yet_valid_starts_in_the_future() {
    let pem = read_pem("bad/not-yet-valid.crt");
    let cert = certificate(&pem, "bad/not-yet-valid.crt");
    assert!(cert.validity().not_before > ASN1Time::now());
    assert!(!cert.validity().is_valid());
}

#[test]
fn crl_revokes_exactly_the_revoked_fixture() {
    let ca_pem = read_pem("ca.crt");
    let ca = certificate(&ca_pem, "ca.crt");
    let crl_pem = read_pem("crl.pem");
    let crl = crl(&crl_pem);
    crl.verify_signature(ca.public_key())
        .expect("crl.pem is signed by the federation CA");
    assert_eq!(crl.issuer(), ca.subject());
    assert_eq!(
        crl.crl_number().map(ToString::to_string).as_deref(),
        Some("1")
    );
    assert_eq!(
        crl.last_update(),
        ASN1Time::from_timestamp(1_767_225_600).expect("2026-01-01")
    );
    assert_eq!(
        crl.next_update(),
        Some(ASN1Time::from_timestamp(2_082_758_400).expect("2036-01-01"))
    );

    let revoked_pem = read_pem("bad/revoked.crt");
    let revoked = certificate(&revoked_pem, "bad/revoked.crt");
    let entries: Vec<_> = crl.iter_revoked_certificates().collect();
    assert_eq!(entries.len(), 1, "the CRL lists exactly one certificate");
    let entry = entries[0];
    assert_eq!(entry.raw_serial(), revoked.raw_serial());
    assert_eq!(
        entry.reason_code().map(|(_, reason)| reason),
        Some(ReasonCode::KeyCompromise)
    );
    assert_eq!(
        entry.revocation_date,
        ASN1Time::from_timestamp(1_767_312_000).expect("2026-01-02")
    );

    for relative in all_certificates().filter(|relative| *relative != "bad/revoked.crt") {
        let pem = read_pem(relative);
        let cert = certificate(&pem, relative);
        assert_ne!(
            cert.raw_serial(),
            entry.raw_serial(),
            "{relative} is listed in crl.pem"
        );
    }
}

#[test]
fn wrong_san_names_another_trust_domain() {
    let pem = read_pem("bad/wrong-san.crt");
    let cert = certificate(&pem, "bad/wrong-san.crt");
    let uris = uri_sans(&cert);
    assert_eq!(uris, [operator_id("other.example", FIRST_CLOUD)]);
    for uri in &uris {
        let trust_domain = uri
            .strip_prefix("spiffe://")
            .and_then(|rest| rest.split('/').next())
            .expect("a SPIFFE ID");
        assert_ne!(trust_domain, FEDERATION);
    }
    assert!(
        extended_key_usage(&cert).client_auth,
        "only the SAN may be wrong"
    );
}

#[test]
fn wrong_key_usage_cannot_be_a_client() {
    let pem = read_pem("bad/wrong-key-usage.crt");
    let cert = certificate(&pem, "bad/wrong-key-usage.crt");
    let eku = extended_key_usage(&cert);
    assert!(!eku.client_auth, "must lack clientAuth");
    assert!(!eku.any, "anyExtendedKeyUsage would allow clientAuth");
    assert!(eku.server_auth);
}

#[test]
fn serials_are_positive_and_unique() {
    let mut seen = BTreeSet::new();
    for relative in all_certificates() {
        let pem = read_pem(relative);
        let cert = certificate(&pem, relative);
        let serial = cert.raw_serial();
        assert!(
            !serial.is_empty() && serial.len() <= 17 && serial[0] < 0x80,
            "{relative}: serial {serial:02x?} must be positive and at most 16 bytes"
        );
        assert!(seen.insert(serial.to_vec()), "{relative}: duplicate serial");
    }
}

#[test]
fn every_key_is_pkcs8_p256_and_matches_its_certificate() {
    for file in expected_files() {
        let Some(stem) = file.strip_suffix(".crt") else {
            continue;
        };
        let relative_key = format!("{stem}.key");
        let key_pem = fs::read_to_string(pki_dir().join(&relative_key)).expect("read key");
        assert!(
            key_pem.starts_with("-----BEGIN PRIVATE KEY-----"),
            "{relative_key} is not PKCS#8 PEM"
        );
        let key = rcgen::KeyPair::from_pem(&key_pem).expect("key parses");
        assert!(
            std::ptr::eq(key.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256),
            "{relative_key} is not P-256"
        );
        let pem = read_pem(&file);
        let cert = certificate(&pem, &file);
        assert_eq!(
            key.public_key_raw(),
            cert.public_key().subject_public_key.data.as_ref(),
            "{relative_key} does not belong to {file}"
        );
    }
}
