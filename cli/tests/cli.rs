//! The `intercloudctl` binary against stand-in servers: a broker and a root
//! that speak the real gRPC contract over the real mutual TLS (dev PKI), with
//! canned answers. They check the CLI's side of the contract (flags, JSON
//! shape, one-line errors, enrolment files); the end-to-end tests against the
//! real root and broker live in the workspace's `tests/` crate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use intercloud_proto::Timestamp;
use intercloud_proto::v1::broker_server::{Broker, BrokerServer};
use intercloud_proto::v1::enrollment_server::{Enrollment, EnrollmentServer};
use intercloud_proto::v1::federation_server::{Federation, FederationServer};
use intercloud_proto::v1::*;
use intercloud_trust::ca::{CertificateAuthority, SigningRequest};
use intercloud_trust::identity::OperatorScope;
use intercloud_trust::serve::{PeerInfo, incoming};
use intercloud_trust::tls::{ClientAuth, Credentials, TrustAnchors, server_config};
use intercloud_trust::{FederationDomain, SpiffeId};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

fn pki() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs-dev/pki")
}

fn federation() -> FederationDomain {
    FederationDomain::new("intercloud.lab").expect("domain")
}

fn now() -> Timestamp {
    let seconds = time::OffsetDateTime::now_utc().unix_timestamp();
    Timestamp { seconds, nanos: 0 }
}

fn caller(request: &Request<impl Sized>) -> Option<SpiffeId> {
    request
        .extensions()
        .get::<PeerInfo>()?
        .certificate
        .as_ref()
        .map(|c| c.spiffe_id.clone())
}

struct FakeBroker;

#[tonic::async_trait]
impl Broker for FakeBroker {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(StatusResponse {
            cloud_id: "cloud-a".into(),
            federation: "intercloud.lab".into(),
            spiffe_id: "spiffe://intercloud.lab/cloud/cloud-a".into(),
            state: FederationState::Federated as i32,
            state_detail: "federated".into(),
            certificate_serial: "1f02".into(),
            certificate_not_after: Some(Timestamp {
                seconds: now().seconds + 86_400,
                nanos: 0,
            }),
            certificate_fingerprint: "ab".repeat(32),
            root_endpoint: "127.0.0.1:7443".into(),
            root_reachable: true,
            last_root_contact: Some(now()),
            last_error: String::new(),
            broker_version: "0.1.0".into(),
            federation_members: 2,
            started_at: Some(now()),
        }))
    }
}

struct FakeRoot {
    ca: CertificateAuthority,
}

fn member(id: &str, state: MemberState) -> Member {
    Member {
        cloud_id: id.into(),
        spiffe_id: format!("spiffe://intercloud.lab/cloud/{id}"),
        state: state as i32,
        grpc_endpoint: "127.0.0.1:7501".into(),
        joined_at: Some(now()),
        last_seen: Some(now()),
        certificate_serial: "6ab2".into(),
        certificate_not_after: Some(Timestamp {
            seconds: now().seconds + 3600,
            nanos: 0,
        }),
        broker_version: "0.1.0".into(),
    }
}

#[tonic::async_trait]
impl Federation for FakeRoot {
    async fn register(
        &self,
        _: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
    async fn renew(&self, _: Request<RenewRequest>) -> Result<Response<RenewResponse>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
    async fn list_members(
        &self,
        _: Request<ListMembersRequest>,
    ) -> Result<Response<ListMembersResponse>, Status> {
        Ok(Response::new(ListMembersResponse {
            members: vec![
                member("cloud-a", MemberState::Active),
                member("cloud-b", MemberState::Enrolled),
            ],
        }))
    }
    async fn get_member(
        &self,
        request: Request<GetMemberRequest>,
    ) -> Result<Response<Member>, Status> {
        match request.get_ref().cloud_id.as_str() {
            "cloud-a" => Ok(Response::new(member("cloud-a", MemberState::Active))),
            other => Err(Status::not_found(format!("no member {other}"))),
        }
    }
    async fn list_revocations(
        &self,
        _: Request<ListRevocationsRequest>,
    ) -> Result<Response<ListRevocationsResponse>, Status> {
        Ok(Response::new(ListRevocationsResponse {
            revocations: vec![],
            crl_number: 7,
        }))
    }
    async fn get_crl(&self, _: Request<GetCrlRequest>) -> Result<Response<GetCrlResponse>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
    async fn create_join_token(
        &self,
        request: Request<CreateJoinTokenRequest>,
    ) -> Result<Response<CreateJoinTokenResponse>, Status> {
        if !caller(&request).is_some_and(|id| id.is_operator_of(&OperatorScope::Root)) {
            return Err(Status::permission_denied(
                "CreateJoinToken needs a root operator certificate",
            ));
        }
        Ok(Response::new(CreateJoinTokenResponse {
            token: "secret-token".into(),
            cloud_id: request.get_ref().cloud_id.clone(),
            expires_at: Some(Timestamp {
                seconds: now().seconds + 3600,
                nanos: 0,
            }),
            ca_fingerprint: self.ca.fingerprint(),
        }))
    }
    async fn revoke(
        &self,
        request: Request<RevokeRequest>,
    ) -> Result<Response<RevokeResponse>, Status> {
        Ok(Response::new(RevokeResponse {
            revoked: vec![Revocation {
                serial: "6ab2".into(),
                cloud_id: request.get_ref().cloud_id.clone(),
                reason: request.get_ref().reason.clone(),
                revoked_at: Some(now()),
            }],
            crl_number: 8,
        }))
    }
}

#[tonic::async_trait]
impl Enrollment for FakeRoot {
    async fn join(&self, request: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        let join = request.into_inner();
        if join.token != "secret-token" {
            return Err(Status::unauthenticated("unknown join token"));
        }
        let csr = SigningRequest::parse(&join.csr_pem)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let cloud = intercloud_trust::CloudId::new(&join.cloud_id)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let id = SpiffeId::cloud(&federation(), &cloud);
        let issued = self
            .ca
            .issue(
                &csr,
                &id,
                time::OffsetDateTime::now_utc(),
                Duration::from_secs(3600),
            )
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(JoinResponse {
            certificate: Some(IssuedCertificate {
                certificate_pem: issued.cert_pem,
                trust_bundle_pem: self.ca.bundle_pem().to_owned(),
                spiffe_id: id.to_string(),
                serial: issued.info.serial,
                not_after: None,
            }),
            federation: "intercloud.lab".into(),
        }))
    }
}

fn dev_ca() -> CertificateAuthority {
    CertificateAuthority::load(&pki().join("ca.crt"), &pki().join("ca.key")).expect("dev CA")
}

/// Stand-in servers on ephemeral ports, stopped on drop.
struct Lab {
    broker: SocketAddr,
    root: SocketAddr,
    enroll: SocketAddr,
    _stop: Vec<oneshot::Sender<()>>,
}

async fn serve(
    name: &str,
    auth: ClientAuth,
    router: tonic::transport::server::Router,
) -> (SocketAddr, oneshot::Sender<()>) {
    let anchors = TrustAnchors::load(&pki().join("ca.crt")).expect("anchors");
    let credentials = Credentials::load(
        &pki().join(format!("{name}.crt")),
        &pki().join(format!("{name}.key")),
    )
    .expect("creds");
    let config = server_config(&anchors, &credentials, auth).expect("server config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stream = incoming(listener, Arc::new(ArcSwap::new(config)), "test");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = router
            .serve_with_incoming_shutdown(stream, async {
                let _ = stopped.await;
            })
            .await;
    });
    (addr, stop)
}

fn mutual() -> ClientAuth {
    ClientAuth::Required {
        federation: federation(),
        policy: Arc::new(|_| Ok(())),
    }
}

impl Lab {
    async fn start() -> Self {
        let server = || tonic::transport::Server::builder();
        let (broker, a) = serve(
            "cloud-a",
            mutual(),
            server().add_service(BrokerServer::new(FakeBroker)),
        )
        .await;
        let (root, b) = serve(
            "root",
            mutual(),
            server().add_service(FederationServer::new(FakeRoot { ca: dev_ca() })),
        )
        .await;
        let (enroll, c) = serve(
            "root",
            ClientAuth::None,
            server().add_service(EnrollmentServer::new(FakeRoot { ca: dev_ca() })),
        )
        .await;
        Self {
            broker,
            root,
            enroll,
            _stop: vec![a, b, c],
        }
    }

    /// A contexts file for these servers, in `dir`.
    fn config(&self, dir: &Path) -> PathBuf {
        let pki = pki();
        let p = |f: &str| pki.join(f).display().to_string();
        let text = format!(
            r#"current_context = "cloud-a"
[contexts.cloud-a]
endpoint = "{broker}"
server = "spiffe://intercloud.lab/cloud/cloud-a"
root_endpoint = "{root}"
ca = "{ca}"
cert = "{a_cert}"
key = "{a_key}"
[contexts.no-root]
endpoint = "{broker}"
server = "spiffe://intercloud.lab/cloud/cloud-a"
ca = "{ca}"
cert = "{a_cert}"
key = "{a_key}"
[contexts.root]
endpoint = "{root}"
server = "spiffe://intercloud.lab/root"
enroll_endpoint = "{enroll}"
ca = "{ca}"
cert = "{r_cert}"
key = "{r_key}"
[contexts.foreign-cert]
endpoint = "{broker}"
server = "spiffe://intercloud.lab/cloud/cloud-a"
ca = "{ca}"
cert = "{x_cert}"
key = "{x_key}"
[contexts.wrong-server]
endpoint = "{broker}"
server = "spiffe://intercloud.lab/cloud/cloud-b"
ca = "{ca}"
cert = "{a_cert}"
key = "{a_key}"
"#,
            broker = self.broker,
            root = self.root,
            enroll = self.enroll,
            ca = p("ca.crt"),
            a_cert = p("operator-cloud-a.crt"),
            a_key = p("operator-cloud-a.key"),
            r_cert = p("operator-root.crt"),
            r_key = p("operator-root.key"),
            x_cert = p("bad/other-ca.crt"),
            x_key = p("bad/other-ca.key"),
        );
        let path = dir.join("intercloudctl.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> serde_json::Value {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        serde_json::from_str(&self.stdout).expect("stdout is one JSON document")
    }

    /// Asserts a failure reported as exactly one `error:` line.
    fn one_line_error(&self) -> &str {
        assert_eq!(self.code, 1, "stdout: {}", self.stdout);
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout);
        let line = self.stderr.strip_suffix('\n').expect("newline-terminated");
        assert!(
            !line.contains('\n') && line.starts_with("error: "),
            "{}",
            self.stderr
        );
        line
    }
}

async fn run(config: &Path, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_intercloudctl"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("INTERCLOUDCTL_CONFIG")
        .output()
        .await
        .expect("run intercloudctl");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn broker_status_as_json_and_table() {
    let lab = Lab::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = lab.config(dir.path());

    let json = run(&config, &["status", "--output", "json"]).await.json();
    assert_eq!(json["kind"], "broker");
    assert_eq!(json["state"], "federated");
    assert_eq!(json["cloud_id"], "cloud-a");
    assert_eq!(json["federation_members"], 2);
    assert!(
        json["certificate_not_after"]
            .as_str()
            .expect("date")
            .ends_with('Z')
    );

    let table = run(&config, &["status"]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.contains("State:"), "{}", table.stdout);
    assert!(
        table.stdout.contains("(in 23h)") || table.stdout.contains("(in 24h)"),
        "{}",
        table.stdout
    );
}

#[tokio::test]
async fn root_status_members_and_revocations() {
    let lab = Lab::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = lab.config(dir.path());

    let json = run(&config, &["--context", "root", "status", "-o", "json"])
        .await
        .json();
    assert_eq!(json["kind"], "root");
    assert_eq!(json["crl_number"], 7);
    assert_eq!(json["members"]["active"], 1);
    assert_eq!(json["members"]["enrolled"], 1);

    // Through a broker context's root_endpoint, and through the root context.
    for context in ["cloud-a", "root"] {
        let json = run(
            &config,
            &["members", "--context", context, "--output", "json"],
        )
        .await
        .json();
        assert_eq!(json["members"][0]["cloud_id"], "cloud-a");
        assert_eq!(json["members"][0]["state"], "active");
        assert_eq!(json["members"][1]["state"], "enrolled");
    }
    let table = run(&config, &["members"]).await;
    assert!(table.stdout.starts_with("CLOUD "), "{}", table.stdout);
    for column in ["STATE", "ENDPOINT", "LAST SEEN", "CERT EXPIRES", "SERIAL"] {
        assert!(
            table
                .stdout
                .lines()
                .next()
                .unwrap_or_default()
                .contains(column),
            "{}",
            table.stdout
        );
    }

    let json = run(&config, &["member", "cloud-a", "--output", "json"])
        .await
        .json();
    assert_eq!(json["spiffe_id"], "spiffe://intercloud.lab/cloud/cloud-a");
    let missing = run(&config, &["member", "cloud-z"]).await;
    assert_eq!(
        missing.one_line_error(),
        "error: not found: no member cloud-z — see `intercloudctl members`"
    );

    let json = run(
        &config,
        &["--context", "root", "revocations", "--output", "json"],
    )
    .await
    .json();
    assert_eq!(
        json,
        serde_json::json!({"revocations": [], "crl_number": 7})
    );
    let json = run(
        &config,
        &[
            "--context",
            "root",
            "revoke",
            "cloud-b",
            "--reason",
            "test",
            "--output",
            "json",
        ],
    )
    .await
    .json();
    assert_eq!(json["crl_number"], 8);
    assert_eq!(json["revoked"][0]["serial"], "6ab2");
    assert_eq!(json["revoked"][0]["reason"], "test");

    let no_root = run(&config, &["members", "--context", "no-root"]).await;
    assert!(
        no_root.one_line_error().contains("add root_endpoint"),
        "{}",
        no_root.stderr
    );
}

#[tokio::test]
async fn tokens_need_a_root_operator_and_enrolment_writes_the_identity() {
    let lab = Lab::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = lab.config(dir.path());

    let denied = run(&config, &["token", "create", "cloud-d"]).await;
    assert_eq!(
        denied.one_line_error(),
        "error: permission denied: CreateJoinToken needs a root operator certificate — use a root operator's context, e.g. --context root"
    );

    let token = run(
        &config,
        &[
            "--context",
            "root",
            "token",
            "create",
            "cloud-d",
            "--ttl",
            "600",
            "-o",
            "json",
        ],
    )
    .await
    .json();
    assert_eq!(token["token"], "secret-token");
    assert_eq!(token["cloud_id"], "cloud-d");
    assert_eq!(token["ca_fingerprint"], dev_ca().fingerprint());
    let table = run(
        &config,
        &["--context", "root", "token", "create", "cloud-d"],
    )
    .await;
    assert!(
        table.stdout.contains("enrollment.token"),
        "{}",
        table.stdout
    );

    // The current context (cloud-a) has no enroll_endpoint: the root context's is used.
    let out = dir.path().join("identity");
    let out_arg = out.display().to_string();
    let bad = run(
        &config,
        &[
            "enroll", "--cloud", "cloud-d", "--token", "nope", "--out", &out_arg,
        ],
    )
    .await;
    assert!(
        bad.one_line_error()
            .starts_with("error: unauthenticated: unknown join token — the token is"),
        "{}",
        bad.stderr
    );

    let enroll = [
        "enroll",
        "--cloud",
        "cloud-d",
        "--token",
        "secret-token",
        "--out",
        &out_arg,
        "-o",
        "json",
    ];
    let json = run(&config, &enroll).await.json();
    assert_eq!(json["spiffe_id"], "spiffe://intercloud.lab/cloud/cloud-d");
    let cert = std::fs::read(out.join("cert.pem")).expect("cert.pem");
    let der = intercloud_trust::pem::certificates_from_pem(&cert)
        .expect("pem")
        .remove(0);
    let info = intercloud_trust::cert::CertInfo::from_der(&der).expect("cert");
    assert_eq!(json["serial"], info.serial);
    assert!(
        std::fs::read_to_string(out.join("bundle.pem"))
            .expect("bundle")
            .contains("BEGIN CERTIFICATE")
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(out.join("key.pem"))
        .expect("key.pem")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    Credentials::load(&out.join("cert.pem"), &out.join("key.pem")).expect("usable identity");

    let again = run(&config, &enroll).await;
    assert!(
        again
            .one_line_error()
            .contains("already exists — pass --force"),
        "{}",
        again.stderr
    );
}

#[tokio::test]
async fn failures_are_one_line_with_a_next_step() {
    let lab = Lab::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = lab.config(dir.path());

    let missing = run(&dir.path().join("none.toml"), &["status"]).await;
    assert_eq!(
        missing.one_line_error(),
        format!(
            "error: no config file at {} — run scripts/lab up or pass --config",
            dir.path().join("none.toml").display()
        )
    );

    let unknown = run(&config, &["--context", "cloud-z", "status"]).await;
    assert!(
        unknown
            .one_line_error()
            .ends_with("— known contexts: cloud-a, foreign-cert, no-root, root, wrong-server"),
        "{}",
        unknown.stderr
    );

    let wrong = run(&config, &["--context", "wrong-server", "status"]).await;
    let line = wrong.one_line_error();
    assert!(
        line.contains("expected spiffe://intercloud.lab/cloud/cloud-b"),
        "{line}"
    );
    assert!(line.contains("— the server did not prove"), "{line}");

    // The server refuses a certificate from another CA; depending on timing
    // the client sees the alert or just a closed connection.
    let foreign = run(&config, &["--context", "foreign-cert", "status"]).await;
    let line = foreign.one_line_error();
    assert!(
        line.contains("operator certificate of context \"foreign-cert\"")
            || line.contains("check cert and key of context \"foreign-cert\""),
        "{line}"
    );

    // A server that never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_addr = silent.local_addr().expect("addr").to_string();
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace(&lab.root.to_string(), &silent_addr);
    let slow_config = dir.path().join("slow.toml");
    std::fs::write(&slow_config, text).expect("write");
    let slow = run(
        &slow_config,
        &["--context", "root", "--timeout", "1", "members"],
    )
    .await;
    assert_eq!(
        slow.one_line_error(),
        format!(
            "error: no answer from {silent_addr} within 1s — raise --timeout or check `scripts/lab status`"
        )
    );

    // A closed port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace(&lab.broker.to_string(), &format!("127.0.0.1:{port}"));
    std::fs::write(&config, text).expect("rewrite");
    let down = run(&config, &["status", "--output", "json"]).await;
    let line = down.one_line_error();
    assert!(
        line.starts_with(&format!("error: cannot reach 127.0.0.1:{port}: ")),
        "{line}"
    );
    assert!(
        line.ends_with("— is the broker running? check `scripts/lab status`"),
        "{line}"
    );

    let contexts = run(&config, &["contexts", "--output", "json"]).await.json();
    assert_eq!(contexts["current_context"], "cloud-a");
    assert_eq!(contexts["contexts"][3]["name"], "root");
    assert_eq!(contexts["contexts"][3]["kind"], "root");
}
