//! `enroll`: manual enrolment of a cloud.
//!
//! Makes a key and a CSR for `spiffe://<fed>/cloud/<id>`, exchanges them and
//! a join token at the root's enrolment port (server-auth TLS: the root must
//! prove `spiffe://<fed>/root`), and writes the identity a broker starts
//! with: `key.pem` (0600), `cert.pem`, `bundle.pem` (a contract with the
//! broker, which loads them from `data_dir/identity/`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use intercloud_proto::v1::enrollment_client::EnrollmentClient;
use intercloud_proto::v1::{JoinRequest, JoinResponse};
use intercloud_trust::ca::generate_key_and_csr;
use intercloud_trust::cert::CertInfo;
use intercloud_trust::files::write_atomically;
use intercloud_trust::pem::certificates_from_pem;
use intercloud_trust::tls::TrustAnchors;
use intercloud_trust::{FederationDomain, SpiffeId};

use super::{Globals, cloud_id};
use crate::args::EnrollArgs;
use crate::client::Remote;
use crate::config::{self, Context, ContextKind, ContextsFile, check_endpoint};
use crate::output::Enrolled;
use crate::report::{HintExt as _, hinted};

/// The private key, mode 0600.
pub const KEY_FILE: &str = "key.pem";
/// The leaf certificate; written last, so its presence means "enrolled".
pub const CERT_FILE: &str = "cert.pem";
/// The federation CA certificate(s).
pub const BUNDLE_FILE: &str = "bundle.pem";

/// Where and whom to enrol with, from the flags or else the contexts file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    federation: FederationDomain,
    endpoint: String,
    ca: PathBuf,
}

/// Runs the enrolment and reports the identity written to `--out`.
pub async fn run(globals: &Globals, args: EnrollArgs) -> anyhow::Result<String> {
    let cloud = cloud_id(&args.cloud_id)?;
    let file = config::load_if_present(&globals.config, globals.context.is_some())?;
    let plan = plan(&args, file.as_ref(), globals.context.as_deref())?;
    let id = SpiffeId::cloud(&plan.federation, &cloud);

    // Check the destination before the token is spent.
    check_out_dir(&args.out, args.force)?;

    let anchors = TrustAnchors::load(&plan.ca)
        .context("cannot load the federation CA bundle")
        .hint("pass --ca FILE or set ca in the context")?;
    let (key_pem, csr_pem) = generate_key_and_csr(&id).context("cannot make a key and CSR")?;
    let remote = Remote::enrollment(
        &plan.endpoint,
        SpiffeId::root(&plan.federation),
        globals.timeout,
    );
    let mut client = EnrollmentClient::new(remote.connect(&anchors, None).await?);
    let request = JoinRequest {
        cloud_id: cloud.to_string(),
        token: args.token,
        csr_pem,
    };
    let response = remote.call("Join", client.join(request)).await?;
    let issued = check_issued(&response, &id)?;
    create_out_dir(&args.out)?;

    let key = args.out.join(KEY_FILE);
    let cert = args.out.join(CERT_FILE);
    let bundle = args.out.join(BUNDLE_FILE);
    let write = |path: &Path, contents: &str, mode: u32| {
        write_atomically(path, contents.as_bytes(), mode)
            .with_context(|| format!("cannot write {}", path.display()))
    };
    write(&key, &key_pem, 0o600)?;
    write(&bundle, &issued.bundle_pem, 0o644)?;
    write(&cert, &issued.cert_pem, 0o644)?;

    let show = |p: &Path| p.display().to_string();
    globals.render(&Enrolled {
        cloud_id: cloud.to_string(),
        federation: plan.federation.to_string(),
        spiffe_id: issued.info.spiffe_id.to_string(),
        serial: issued.info.serial,
        not_after: Some(issued.info.not_after),
        fingerprint: issued.info.fingerprint,
        out_dir: show(&args.out),
        key: show(&key),
        cert: show(&cert),
        bundle: show(&bundle),
    })
}

/// Fills in what the flags leave out from the selected context; when that
/// context has no `enroll_endpoint` (a broker context usually has not), from
/// the file's root context of the same federation.
fn plan(
    args: &EnrollArgs,
    file: Option<&ContextsFile>,
    selected: Option<&str>,
) -> anyhow::Result<Plan> {
    let context = match file {
        Some(file) => file.select_optional(selected)?,
        None => None,
    };
    let federation = match (&args.federation, context) {
        (Some(domain), _) => FederationDomain::new(domain).context("--federation")?,
        (None, Some(context)) => context.federation().clone(),
        (None, None) => {
            return Err(hinted(
                "no federation domain to enrol into",
                "pass --federation DOMAIN, or select a context with --context",
            ));
        }
    };
    let root_context = context
        .filter(|c| c.enroll_endpoint.is_some())
        .or_else(|| file.and_then(|f| enrolment_context(f, &federation)));
    let endpoint = match (&args.root_enroll, root_context) {
        (Some(endpoint), _) => endpoint.clone(),
        (None, Some(context)) => context.enroll_endpoint.clone().unwrap_or_default(),
        (None, None) => {
            return Err(hinted(
                "no enrolment endpoint of the root",
                "pass --root-enroll HOST:PORT, or add enroll_endpoint to the root context",
            ));
        }
    };
    check_endpoint("--root-enroll", &endpoint)?;
    let ca = match (&args.ca, context.or(root_context)) {
        (Some(ca), _) => ca.clone(),
        (None, Some(context)) => context.ca.clone(),
        (None, None) => return Err(hinted("no federation CA bundle", "pass --ca FILE")),
    };
    Ok(Plan {
        federation,
        endpoint,
        ca,
    })
}

/// The root context of `federation` that names an enrolment endpoint.
fn enrolment_context<'a>(
    file: &'a ContextsFile,
    federation: &FederationDomain,
) -> Option<&'a Context> {
    file.contexts.values().find(|c| {
        c.kind == ContextKind::Root && c.federation() == federation && c.enroll_endpoint.is_some()
    })
}

/// Refuses to replace an identity in `dir` unless `force`, and a `dir` that
/// is not a directory.
fn check_out_dir(dir: &Path, force: bool) -> anyhow::Result<()> {
    let cert = dir.join(CERT_FILE);
    if cert.exists() && !force {
        return Err(hinted(
            format!("{} already exists", cert.display()),
            format!("pass --force to replace the identity in {}", dir.display()),
        ));
    }
    if dir.exists() && !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    Ok(())
}

/// Creates `dir` (0700) and its parents if needed.
fn create_out_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// What the root issued, checked.
#[derive(Debug)]
struct Issued {
    info: CertInfo,
    cert_pem: String,
    bundle_pem: String,
}

/// Checks the root's answer: a readable certificate for exactly `expected`,
/// and a trust bundle.
fn check_issued(response: &JoinResponse, expected: &SpiffeId) -> anyhow::Result<Issued> {
    let issued = response
        .certificate
        .as_ref()
        .ok_or_else(|| anyhow!("the root answered without a certificate"))?;
    if !response.federation.is_empty() && response.federation != expected.federation.as_str() {
        bail!(
            "the root enrolled this cloud into {:?}, expected {}",
            response.federation,
            expected.federation
        );
    }
    let leaf = certificates_from_pem(issued.certificate_pem.as_bytes())
        .and_then(|certs| certs.into_iter().next())
        .ok_or_else(|| anyhow!("the root's certificate is not PEM"))?;
    let info = CertInfo::from_der(&leaf).context("the root's certificate is unreadable")?;
    if &info.spiffe_id != expected {
        bail!(
            "the root issued a certificate for {}, expected {expected}",
            info.spiffe_id
        );
    }
    if certificates_from_pem(issued.trust_bundle_pem.as_bytes()).is_none() {
        bail!("the root sent no usable trust bundle");
    }
    Ok(Issued {
        info,
        cert_pem: issued.certificate_pem.clone(),
        bundle_pem: issued.trust_bundle_pem.clone(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use intercloud_proto::v1::IssuedCertificate;
    use intercloud_trust::ca::{CertificateAuthority, SigningRequest};
    use intercloud_trust::identity::CloudId;

    use super::*;
    use crate::report::line;

    fn pki() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs-dev/pki")
    }

    fn args(out: &Path) -> EnrollArgs {
        EnrollArgs {
            cloud_id: "cloud-d".into(),
            token: "t".into(),
            federation: None,
            root_enroll: None,
            ca: None,
            out: out.to_owned(),
            force: false,
        }
    }

    const FILE: &str = r#"
current_context = "cloud-a"
[contexts.cloud-a]
endpoint = "127.0.0.1:7501"
server = "spiffe://intercloud.lab/cloud/cloud-a"
ca = "pki/ca.crt"
[contexts.root]
endpoint = "127.0.0.1:7443"
server = "spiffe://intercloud.lab/root"
enroll_endpoint = "127.0.0.1:7444"
ca = "pki/root-ca.crt"
"#;

    #[test]
    fn plan_takes_flags_first_then_the_context_then_the_root_context() {
        let file = ContextsFile::parse(Path::new("/lab/ctl.toml"), FILE).expect("file");
        let from_file = plan(&args(Path::new("out")), Some(&file), None).expect("plan");
        assert_eq!(from_file.federation.as_str(), "intercloud.lab");
        assert_eq!(from_file.endpoint, "127.0.0.1:7444");
        assert_eq!(from_file.ca, Path::new("/lab/pki/ca.crt"));

        let mut flags = args(Path::new("out"));
        flags.federation = Some("other.lab".into());
        flags.root_enroll = Some("10.0.0.1:9444".into());
        flags.ca = Some("ca.pem".into());
        let from_flags = plan(&flags, None, None).expect("flags only");
        assert_eq!(
            from_flags,
            Plan {
                federation: FederationDomain::new("other.lab").expect("d"),
                endpoint: "10.0.0.1:9444".into(),
                ca: "ca.pem".into()
            }
        );

        let error = line(&plan(&args(Path::new("out")), None, None).expect_err("nothing"));
        assert!(
            error.contains("no federation domain") && error.contains("--federation"),
            "{error}"
        );
    }

    #[test]
    fn an_existing_identity_is_kept_unless_forced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("identity");
        check_out_dir(&out, false).expect("nothing there yet");
        create_out_dir(&out).expect("creates the directory");
        std::fs::write(out.join(CERT_FILE), "x").expect("write");
        let error = line(&check_out_dir(&out, false).expect_err("exists"));
        assert!(
            error.ends_with(&format!(
                "already exists — pass --force to replace the identity in {}",
                out.display()
            )),
            "{error}"
        );
        check_out_dir(&out, true).expect("forced");
        assert!(
            check_out_dir(&out.join(CERT_FILE), false).is_err(),
            "a file is not a directory"
        );
    }

    fn issue(id: &SpiffeId) -> (CertificateAuthority, String) {
        let ca = CertificateAuthority::load(&pki().join("ca.crt"), &pki().join("ca.key"))
            .expect("dev CA");
        let (_key, csr) = generate_key_and_csr(id).expect("csr");
        let request = SigningRequest::parse(&csr).expect("parse csr");
        let cert = ca
            .issue(
                &request,
                id,
                time::OffsetDateTime::now_utc(),
                Duration::from_secs(3600),
            )
            .expect("issue");
        (ca, cert.cert_pem)
    }

    fn response(ca: &CertificateAuthority, cert_pem: String) -> JoinResponse {
        JoinResponse {
            certificate: Some(IssuedCertificate {
                certificate_pem: cert_pem,
                trust_bundle_pem: ca.bundle_pem().to_owned(),
                ..IssuedCertificate::default()
            }),
            federation: "intercloud.lab".into(),
        }
    }

    #[test]
    fn the_issued_certificate_must_name_the_requested_identity() {
        let fed = FederationDomain::new("intercloud.lab").expect("domain");
        let wanted = SpiffeId::cloud(&fed, &CloudId::new("cloud-d").expect("id"));
        let (ca, cert) = issue(&wanted);
        let issued = check_issued(&response(&ca, cert), &wanted).expect("good answer");
        assert_eq!(issued.info.spiffe_id, wanted);

        let other = SpiffeId::cloud(&fed, &CloudId::new("cloud-e").expect("id"));
        let (ca, cert) = issue(&other);
        let error =
            check_issued(&response(&ca, cert.clone()), &wanted).expect_err("wrong identity");
        assert!(
            error
                .to_string()
                .contains("for spiffe://intercloud.lab/cloud/cloud-e"),
            "{error}"
        );

        let mut no_bundle = response(&ca, cert);
        if let Some(c) = no_bundle.certificate.as_mut() {
            c.trust_bundle_pem.clear();
        }
        assert!(check_issued(&no_bundle, &other).is_err());
        assert!(check_issued(&JoinResponse::default(), &other).is_err());
    }
}
