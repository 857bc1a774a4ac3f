//! `transfers`, `instance`, `migrate`, `object`, `vnet` and `policy`
//! against a scripted broker (the real gRPC contract over mutual TLS with the dev PKI, canned
//! answers): the lines printed when stdout is not a terminal, the exit
//! statuses, the bytes `object put` streams and the checks of `object get`.
//! The real broker's behaviour is the end-to-end tests' business.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use intercloud_proto::v1 as pb;
use intercloud_proto::v1::broker_server::{Broker, BrokerServer};
use intercloud_proto::v1::get_object_response::Part as GetPart;
use intercloud_proto::v1::put_object_request::Part as PutPart;
use intercloud_trust::FederationDomain;
use intercloud_trust::tls::{ClientAuth, Credentials, TrustAnchors, server_config};
use sha2::{Digest as _, Sha256};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

type Answer<T> = Result<Response<T>, Status>;
type Steps<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn steps<T: Send + 'static>(items: Vec<T>) -> Steps<T> {
    Box::pin(tokio_stream::iter(items.into_iter().map(Ok)))
}

fn transfer(id: &str, state: &str, done: u64, finished: bool) -> pb::Transfer {
    pb::Transfer {
        transfer_id: id.into(),
        object_id: "web-1.qcow2".into(),
        kind: "image".into(),
        direction: pb::TransferDirection::Outgoing as i32,
        peer_cloud: "cloud-b".into(),
        size: 4096,
        bytes_done: done,
        rate: if finished { 0.0 } else { 2048.0 },
        eta_seconds: (!finished).then_some(1.0),
        state: state.into(),
        detail: if state == "refused" {
            "no space left".into()
        } else {
            String::new()
        },
        finished,
        ..pb::Transfer::default()
    }
}

fn migration_step(step: &str, detail: &str, transfer: Option<pb::Transfer>) -> pb::MigrationStep {
    pb::MigrationStep {
        step: step.into(),
        detail: detail.into(),
        transfer,
        at: None,
    }
}

/// What the mock received, for the tests to check.
#[derive(Debug, Default)]
struct Seen {
    header: Option<pb::PutObjectHeader>,
    data_messages: Vec<usize>,
    migrate: Option<pb::MigrateRequest>,
    /// The VNet and policy calls, in order: `AllowFlow web -> db tcp/443`,
    /// `CreateMirror blue as  sample:1/10`, `SwapMirror blue`…
    vnet_calls: Vec<String>,
    /// Whether the mock's blue and blue-mirror are swapped.
    swapped: bool,
}

impl Mock {
    fn saw(&self, call: String) {
        self.seen.lock().expect("lock").vnet_calls.push(call);
    }
}

fn flow_rule_words(rule: Option<&pb::FlowRule>) -> String {
    rule.map_or("-".into(), |r| {
        format!(
            "{} -> {} {}/{}",
            r.from_domain, r.to_domain, r.proto, r.port
        )
    })
}

/// A production VNet `blue` with one instance, and its mirror when
/// `mirror` is set.
fn blue_pair(swapped: bool) -> (pb::Vnet, pb::Vnet) {
    let web = pb::Binding {
        vnet: "blue".into(),
        tenant: "cloud-a".into(),
        instance: "web-1".into(),
        cloud: "cloud-c".into(),
        ip: "10.20.0.2".into(),
        mac: "02:00:10:00:00:02".into(),
        index: 0,
    };
    let blue = pb::Vnet {
        name: "blue".into(),
        tenant: "cloud-a".into(),
        cidr: "10.20.0.0/24".into(),
        clouds: vec!["cloud-a".into(), "cloud-c".into()],
        domain: "web".into(),
        vni: 4096,
        bindings: vec![web.clone()],
        mirror: "blue-mirror".into(),
        swapped,
        ..pb::Vnet::default()
    };
    let mirror = pb::Vnet {
        name: "blue-mirror".into(),
        vni: 4097,
        bindings: vec![pb::Binding {
            vnet: "blue-mirror".into(),
            instance: "web-1-mirror".into(),
            ..web
        }],
        mirror: String::new(),
        mirror_of: "blue".into(),
        mirror_strategy: "sample:1/10".into(),
        ..blue.clone()
    };
    (blue, mirror)
}

#[derive(Debug, Default, Clone)]
struct Mock {
    seen: Arc<Mutex<Seen>>,
}

#[tonic::async_trait]
impl Broker for Mock {
    async fn status(&self, _: Request<pb::StatusRequest>) -> Answer<pb::StatusResponse> {
        Err(Status::unimplemented(""))
    }

    async fn list_peers(&self, _: Request<pb::ListPeersRequest>) -> Answer<pb::ListPeersResponse> {
        Err(Status::unimplemented(""))
    }

    type WatchPeersStream = Steps<pb::PeerEvent>;

    async fn watch_peers(
        &self,
        _: Request<pb::WatchPeersRequest>,
    ) -> Answer<Self::WatchPeersStream> {
        Err(Status::unimplemented(""))
    }

    async fn negotiate(&self, _: Request<pb::NegotiateRequest>) -> Answer<pb::NegotiateResponse> {
        Err(Status::unimplemented(""))
    }

    async fn list_transfers(
        &self,
        request: Request<pb::ListTransfersRequest>,
    ) -> Answer<pb::ListTransfersResponse> {
        let mut transfers = vec![transfer("t-1", "sending", 1024, false)];
        if request.get_ref().include_finished {
            transfers.push(transfer("t-0", "refused", 0, true));
        }
        Ok(Response::new(pb::ListTransfersResponse { transfers }))
    }

    type WatchTransfersStream = Steps<pb::Transfer>;

    async fn watch_transfers(
        &self,
        _: Request<pb::WatchTransfersRequest>,
    ) -> Answer<Self::WatchTransfersStream> {
        let updates = vec![
            transfer("t-1", "sending", 1024, false),
            transfer("t-1", "awaiting receipt", 4096, false),
            transfer("t-1", "committed", 4096, true),
        ];
        // Then silence, as a broker with nothing more going on.
        let silence = tokio_stream::pending();
        Ok(Response::new(Box::pin(tokio_stream::StreamExt::chain(
            tokio_stream::iter(updates.into_iter().map(Ok)),
            silence,
        ))))
    }

    async fn create_instance(
        &self,
        request: Request<pb::CreateInstanceRequest>,
    ) -> Answer<pb::Instance> {
        let r = request.into_inner();
        Ok(Response::new(pb::Instance {
            name: r.name,
            state: "running".into(),
            vcpu: r.vcpu,
            memory_mib: r.memory_mib,
            disk_bytes: r.disk_bytes,
            origin: String::new(),
            created_at: None,
        }))
    }

    async fn list_instances(
        &self,
        _: Request<pb::ListInstancesRequest>,
    ) -> Answer<pb::ListInstancesResponse> {
        Err(Status::unimplemented(""))
    }

    type MigrateStream = Steps<pb::MigrationStep>;

    async fn migrate(&self, request: Request<pb::MigrateRequest>) -> Answer<Self::MigrateStream> {
        let request = request.into_inner();
        self.seen.lock().expect("lock").migrate = Some(request.clone());
        let target = migration_step("target", "cloud-b (named)", None);
        let script = match request.instance.as_str() {
            "web-1" => vec![
                target,
                migration_step(
                    "transfer",
                    "4 KiB to cloud-b",
                    Some(transfer("t-9", "sending", 2048, false)),
                ),
                migration_step(
                    "transfer",
                    "4 KiB to cloud-b",
                    Some(transfer("t-9", "committed", 4096, true)),
                ),
                migration_step("import", "", None),
                migration_step("done", "web-1 runs on cloud-b", None),
            ],
            "full" => vec![
                target,
                migration_step("failed", "cloud-b: no capacity", None),
            ],
            "cut" => vec![target],
            _ => return Err(Status::not_found("no instance of that name")),
        };
        Ok(Response::new(steps(script)))
    }

    type PutObjectStream = Steps<pb::ObjectStep>;

    async fn put_object(
        &self,
        request: Request<Streaming<pb::PutObjectRequest>>,
    ) -> Answer<Self::PutObjectStream> {
        let mut stream = request.into_inner();
        let header = match stream.message().await? {
            Some(pb::PutObjectRequest {
                part: Some(PutPart::Header(header)),
            }) => header,
            _ => return Err(Status::invalid_argument("the header comes first")),
        };
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(message) = stream.message().await? {
            let Some(PutPart::Data(data)) = message.part else {
                return Err(Status::invalid_argument("one header only"));
            };
            size += data.len() as u64;
            hasher.update(&data);
            self.seen
                .lock()
                .expect("lock")
                .data_messages
                .push(data.len());
        }
        self.seen.lock().expect("lock").header = Some(header.clone());
        let upload = pb::ObjectStep {
            step: "upload".into(),
            detail: format!("{size} bytes received"),
            ..pb::ObjectStep::default()
        };
        if size != header.size {
            let failed = pb::ObjectStep {
                step: "failed".into(),
                detail: format!("{size} bytes sent, {} announced", header.size),
                ..pb::ObjectStep::default()
            };
            return Ok(Response::new(steps(vec![upload, failed])));
        }
        let info = pb::ObjectInfo {
            name: header.name.clone(),
            size,
            sha256: format!("{:x}", hasher.finalize()),
            replicas_wanted: header.replicas,
            replicas: vec![pb::Replica {
                cloud_id: "cloud-b".into(),
                state: "stored".into(),
                transfer_id: "t-5".into(),
                receipted_at: None,
                detail: String::new(),
            }],
            region: header.region.clone(),
            created_at: None,
        };
        let mut sent = transfer("t-5", "sending", 0, false);
        sent.object_id = header.name.clone();
        let mut committed = transfer("t-5", "committed", 4096, true);
        committed.object_id = header.name;
        Ok(Response::new(steps(vec![
            upload,
            pb::ObjectStep {
                step: "transfer".into(),
                detail: "to cloud-b".into(),
                transfer: Some(sent),
                ..pb::ObjectStep::default()
            },
            pb::ObjectStep {
                step: "transfer".into(),
                detail: "to cloud-b".into(),
                transfer: Some(committed),
                ..pb::ObjectStep::default()
            },
            pb::ObjectStep {
                step: "done".into(),
                detail: "1 of 1 replicas stored".into(),
                object: Some(info),
                ..pb::ObjectStep::default()
            },
        ])))
    }

    type GetObjectStream = Steps<pb::GetObjectResponse>;

    async fn get_object(
        &self,
        request: Request<pb::GetObjectRequest>,
    ) -> Answer<Self::GetObjectStream> {
        let name = request.into_inner().name;
        let data = b"hello, federation".to_vec();
        let mut sha256 = format!("{:x}", Sha256::digest(&data));
        let mut size = data.len() as u64;
        match name.as_str() {
            "good" => {}
            "corrupt" => sha256 = format!("{:x}", Sha256::digest(b"something else")),
            "short" => size += 1,
            _ => return Err(Status::not_found("no object of that name")),
        }
        let part = |part| pb::GetObjectResponse {
            from_cloud: "cloud-b".into(),
            part: Some(part),
        };
        Ok(Response::new(steps(vec![
            part(GetPart::Info(pb::ObjectInfo {
                name,
                size,
                sha256,
                replicas_wanted: 1,
                ..pb::ObjectInfo::default()
            })),
            part(GetPart::Data(data[..5].to_vec())),
            part(GetPart::Data(data[5..].to_vec())),
        ])))
    }

    async fn list_objects(
        &self,
        _: Request<pb::ListObjectsRequest>,
    ) -> Answer<pb::ListObjectsResponse> {
        Err(Status::unimplemented(""))
    }

    /// The VNet asked for, as the root would record it.
    async fn create_vnet(&self, request: Request<pb::CreateVnetRequest>) -> Answer<pb::Vnet> {
        let r = request.into_inner();
        Ok(Response::new(pb::Vnet {
            name: r.name,
            tenant: "cloud-a".into(),
            cidr: r.cidr,
            clouds: r.clouds,
            domain: r.domain,
            vni: 4096,
            bandwidth: r.bandwidth,
            ..pb::Vnet::default()
        }))
    }

    async fn delete_vnet(
        &self,
        _: Request<pb::DeleteVnetRequest>,
    ) -> Answer<pb::DeleteVnetResponse> {
        Err(Status::unimplemented(""))
    }

    /// The blue pair.
    async fn list_vnets(&self, _: Request<pb::ListVnetsRequest>) -> Answer<pb::ListVnetsResponse> {
        self.saw("ListVnets".into());
        let (blue, mirror) = blue_pair(self.seen.lock().expect("lock").swapped);
        Ok(Response::new(pb::ListVnetsResponse {
            vnets: vec![blue, mirror],
        }))
    }

    /// Blue, with a gateway and the rules its broker applies.
    async fn show_vnet(&self, request: Request<pb::GetVnetRequest>) -> Answer<pb::VnetDetail> {
        self.saw(format!("ShowVnet {}", request.get_ref().name));
        let (blue, _) = blue_pair(self.seen.lock().expect("lock").swapped);
        Ok(Response::new(pb::VnetDetail {
            vnet: Some(blue),
            local: Some(pb::LocalDataplane {
                state: "realized".into(),
                interfaces: vec!["icx001000 vxlan vni 4096 local 10.231.0.1 up".into()],
                gateway: "10.20.0.1/24 on icb001000 (routes to 10.30.0.0/24)".into(),
                rules: vec![
                    "accept web -> db tcp/443: 12 packets".into(),
                    "tap to blue-mirror (sample:1/10): 3 packets".into(),
                ],
                ..pb::LocalDataplane::default()
            }),
        }))
    }

    /// The root's refusal of a second attachment, passed on.
    async fn attach_vnet(&self, request: Request<pb::AttachRequest>) -> Answer<pb::Binding> {
        let r = request.into_inner();
        Err(Status::already_exists(format!(
            "{} is already attached to vnet {}",
            r.instance, r.vnet
        )))
    }

    async fn detach_vnet(&self, _: Request<pb::DetachRequest>) -> Answer<pb::DetachResponse> {
        Err(Status::unimplemented(""))
    }

    /// A rule to `db` (cloud-c's domain) awaits cloud-c; any other is
    /// agreed at once (cloud-a owns both domains).
    async fn allow_flow(&self, request: Request<pb::AllowFlowRequest>) -> Answer<pb::FlowPolicy> {
        let rule = request.into_inner().rule;
        self.saw(format!("AllowFlow {}", flow_rule_words(rule.as_ref())));
        let awaiting = match &rule {
            Some(r) if r.to_domain == "db" => "cloud-c",
            _ => "",
        };
        Ok(Response::new(pb::FlowPolicy {
            rule,
            agreed: awaiting.is_empty(),
            proposed_by: "cloud-a".into(),
            awaiting: awaiting.into(),
        }))
    }

    /// The root's refusal of a rule nobody proposed, passed on; any other
    /// was agreed.
    async fn revoke_flow(
        &self,
        request: Request<pb::RevokeFlowRequest>,
    ) -> Answer<pb::RevokeFlowResponse> {
        let rule = request.into_inner().rule;
        self.saw(format!("RevokeFlow {}", flow_rule_words(rule.as_ref())));
        if rule.as_ref().is_some_and(|r| r.from_domain == "ghost") {
            return Err(Status::not_found("there is no rule ghost -> db tcp"));
        }
        Ok(Response::new(pb::RevokeFlowResponse {
            revoked: Some(pb::FlowPolicy {
                rule,
                agreed: true,
                proposed_by: "cloud-a".into(),
                awaiting: String::new(),
            }),
        }))
    }

    async fn list_flows(&self, _: Request<pb::ListFlowsRequest>) -> Answer<pb::ListFlowsResponse> {
        self.saw("ListFlows".into());
        let rule = |to: &str, proto: &str, port: &str| {
            Some(pb::FlowRule {
                from_domain: "web".into(),
                to_domain: to.into(),
                proto: proto.into(),
                port: port.into(),
            })
        };
        Ok(Response::new(pb::ListFlowsResponse {
            policies: vec![
                pb::FlowPolicy {
                    rule: rule("db", "tcp", "443"),
                    agreed: false,
                    proposed_by: "cloud-a".into(),
                    awaiting: "cloud-c".into(),
                },
                pb::FlowPolicy {
                    rule: rule("cache", "icmp", ""),
                    agreed: true,
                    proposed_by: "cloud-c".into(),
                    awaiting: String::new(),
                },
            ],
        }))
    }

    /// Blue's mirror, named as asked, with the strategy as sent.
    async fn create_mirror(&self, request: Request<pb::CreateMirrorRequest>) -> Answer<pb::Vnet> {
        let r = request.into_inner();
        self.saw(format!(
            "CreateMirror {} as {} {}",
            r.vnet, r.name, r.strategy
        ));
        if r.vnet != "blue" {
            return Err(Status::not_found(format!(
                "vnet cloud-a/{} does not exist",
                r.vnet
            )));
        }
        let (_, mut mirror) = blue_pair(false);
        if !r.name.is_empty() {
            mirror.name = r.name;
        }
        mirror.mirror_strategy = r.strategy;
        Ok(Response::new(mirror))
    }

    /// Flips the pair and returns blue as it is after the swap.
    async fn swap_mirror(&self, request: Request<pb::SwapMirrorRequest>) -> Answer<pb::Vnet> {
        let vnet = request.into_inner().vnet;
        self.saw(format!("SwapMirror {vnet}"));
        let swapped = {
            let mut seen = self.seen.lock().expect("lock");
            seen.swapped = !seen.swapped;
            seen.swapped
        };
        Ok(Response::new(blue_pair(swapped).0))
    }
}

fn pki() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs-dev/pki")
}

/// A mock broker of cloud-a on an ephemeral port, and a contexts file
/// whose context `cloud-a` points at it.
struct Lab {
    dir: tempfile::TempDir,
    config: PathBuf,
    mock: Mock,
}

async fn lab() -> Lab {
    let anchors = TrustAnchors::load(&pki().join("ca.crt")).expect("ca");
    let credentials =
        Credentials::load(&pki().join("cloud-a.crt"), &pki().join("cloud-a.key")).expect("cert");
    let config = server_config(
        &anchors,
        &credentials,
        ClientAuth::Required {
            federation: FederationDomain::new("intercloud.lab").expect("domain"),
            policy: Arc::new(|_| Ok(())),
        },
    )
    .expect("tls");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = listener.local_addr().expect("addr");
    let mock = Mock::default();
    let service = BrokerServer::new(mock.clone());
    tokio::spawn(async move {
        let incoming = intercloud_trust::serve::incoming(
            listener,
            Arc::new(ArcSwap::new(config)),
            "operator-api",
        );
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await;
    });
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("intercloudctl.toml");
    let pki = pki();
    std::fs::write(
        &config,
        format!(
            "current_context = \"cloud-a\"\n\
             [contexts.cloud-a]\n\
             endpoint = \"{endpoint}\"\n\
             server = \"spiffe://intercloud.lab/cloud/cloud-a\"\n\
             ca = \"{}\"\n\
             cert = \"{}\"\n\
             key = \"{}\"\n",
            pki.join("ca.crt").display(),
            pki.join("operator-cloud-a.crt").display(),
            pki.join("operator-cloud-a.key").display(),
        ),
    )
    .expect("config");
    Lab { dir, config, mock }
}

impl Lab {
    /// Runs the CLI with stdout a pipe (not a terminal): exit status,
    /// stdout, stderr.
    async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_intercloudctl"))
            .env("INTERCLOUDCTL_CONFIG", &self.config)
            .current_dir(self.dir.path())
            .args(args)
            .output()
            .await
            .expect("run intercloudctl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn transfers_list_and_watch_until_idle() {
    let lab = lab().await;
    let (code, out, err) = lab.run(&["transfers"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ID    DIRECTION   PEER"), "{out}");
    assert!(out.contains("t-1   out         cloud-b   web-1.qcow2   image   4 KiB   25%    2 KiB/s   1s    sending"), "{out}");
    let (code, out, _) = lab.run(&["transfers", "--all", "-o", "json"]).await;
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["transfers"][1]["state"], "refused");
    assert_eq!(json["transfers"][1]["eta_seconds"], serde_json::Value::Null);

    let (code, out, err) = lab.run(&["transfers", "--watch", "--until-idle"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "t-1 sending 1024/4096 2KiB/s\n\
         t-1 awaiting-receipt 4096/4096 2KiB/s\n\
         t-1 committed 4096/4096 -\n"
    );
    let (code, out, _) = lab
        .run(&["transfers", "--watch", "--until-idle", "-o", "json"])
        .await;
    assert_eq!(code, 0);
    let states: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json line")["state"].to_string()
        })
        .collect();
    assert_eq!(
        states,
        ["\"sending\"", "\"awaiting receipt\"", "\"committed\""]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_create_sends_sizes_in_the_protos_units() {
    let lab = lab().await;
    let (code, out, err) = lab
        .run(&[
            "instance", "create", "web-1", "--vcpu", "2", "--memory", "512M", "--disk", "64M",
            "-o", "json",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["memory_mib"], 512);
    assert_eq!(json["disk_bytes"], 64 << 20);
    assert_eq!(json["vcpu"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_prints_each_step_and_exits_by_the_last() {
    let lab = lab().await;
    let (code, out, err) = lab.run(&["migrate", "web-1", "--to", "cloud-b"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "[target] cloud-b (named)\n\
         [transfer] 4 KiB to cloud-b\n\
         [transfer] t-9 sending 2048/4096 2KiB/s\n\
         [transfer] t-9 committed 4096/4096 -\n\
         [import]\n\
         [done] web-1 runs on cloud-b\n"
    );
    assert_eq!(err, "");

    let (code, out, err) = lab
        .run(&["migrate", "full", "--match", "--region EU"])
        .await;
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "[target] cloud-b (named)\n[failed] cloud-b: no capacity\n"
    );
    assert_eq!(
        err,
        "error: migration of full failed: cloud-b: no capacity — the instance still runs here (`intercloudctl instance ls`)\n"
    );
    let seen = lab
        .mock
        .seen
        .lock()
        .expect("lock")
        .migrate
        .clone()
        .expect("request");
    let Some(pb::migrate_request::Target::Match(request)) = seen.target else {
        panic!("not a match: {seen:?}");
    };
    assert_eq!(
        (request.kind.as_str(), request.region.as_str()),
        ("compute", "EU")
    );

    let (code, _, err) = lab.run(&["migrate", "cut", "--to", "cloud-b"]).await;
    assert_eq!(code, 3);
    assert!(
        err.starts_with("error: the outcome of migrating cut is unknown: the broker at 127.0.0.1:"),
        "{err}"
    );
    let (code, _, err) = lab.run(&["migrate", "ghost", "--to", "cloud-b"]).await;
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: not found: no instance of that name"),
        "{err}"
    );
    let (code, out, _) = lab
        .run(&["migrate", "web-1", "--to", "cloud-b", "-o", "json"])
        .await;
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 5, "{out}");
    let last: serde_json::Value =
        serde_json::from_str(out.lines().last().expect("line")).expect("json");
    assert_eq!(last["step"], "done");
}

#[tokio::test(flavor = "multi_thread")]
async fn object_put_streams_the_file_in_1_mib_messages() {
    let lab = lab().await;
    let file = lab.dir.path().join("disk.img");
    let size = 2 * (1 << 20) + 123;
    std::fs::write(&file, vec![42u8; size]).expect("file");
    let path = file.to_str().expect("utf-8");
    let (code, out, err) = lab.run(&["object", "put", path, "--region", "eu"]).await;
    assert_eq!(code, 0, "{err}");
    let seen = lab.mock.seen.lock().expect("lock");
    assert_eq!(seen.data_messages, [1 << 20, 1 << 20, 123]);
    let header = seen.header.clone().expect("header");
    assert_eq!(
        (
            header.name.as_str(),
            header.replicas,
            header.region.as_str(),
            header.size
        ),
        ("disk.img", 3, "EU", size as u64)
    );
    let digest = format!("{:x}", Sha256::digest(vec![42u8; size]));
    assert_eq!(
        out,
        format!(
            "[upload] {size} bytes received\n\
             [transfer] to cloud-b\n\
             [transfer] t-5 sending 0/4096 2KiB/s\n\
             [transfer] t-5 committed 4096/4096 -\n\
             [done] 1 of 1 replicas stored\n\
             object disk.img: 2 MiB, sha256 {digest}, 1/3 replicas stored, region EU\n\
             CLOUD     STATE    TRANSFER   RECEIPTED   DETAIL\n\
             cloud-b   stored   t-5        -           -\n"
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn object_get_keeps_only_what_matches_the_digest() {
    let lab = lab().await;
    let (code, out, err) = lab.run(&["object", "get", "good"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "good: 17 B from cloud-b\n");
    let digest = format!("{:x}", Sha256::digest(b"hello, federation"));
    assert_eq!(out, format!("wrote good: 17 bytes, sha256 {digest}\n"));
    assert_eq!(
        std::fs::read(lab.dir.path().join("good")).expect("written"),
        b"hello, federation"
    );
    let (code, out, _) = lab.run(&["object", "get", "good", "-o", "json"]).await;
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["from_cloud"], "cloud-b");
    assert_eq!(json["size"], 17);
    let (code, out, _) = lab.run(&["object", "get", "good", "-O", "-"]).await;
    assert_eq!(code, 0);
    assert_eq!(out, "hello, federation");

    for (name, why) in [
        ("corrupt", "what arrived has sha256 "),
        ("short", "17 bytes arrived, the object has 18"),
    ] {
        let (code, out, err) = lab.run(&["object", "get", name, "-O", "copy"]).await;
        assert_eq!(code, 1, "{name}");
        assert_eq!(out, "");
        assert!(
            err.contains(&format!("error: {name} from cloud-b is not intact: {why}")),
            "{err}"
        );
        assert!(err.contains("; nothing written — try again"), "{err}");
        let left: Vec<_> = std::fs::read_dir(lab.dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!left.iter().any(|f| f.contains("copy")), "{left:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn vnet_create_prints_the_vni_and_a_refusal_keeps_the_root_s_words() {
    let lab = lab().await;
    let (code, out, err) = lab
        .run(&[
            "vnet",
            "create",
            "blue",
            "--cidr",
            "10.20.0.0/24",
            "--clouds",
            "cloud-a,cloud-c",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("created vnet blue\n"), "{out}");
    assert!(out.contains("VNI:        4096 (0x001000)\n"), "{out}");
    assert!(
        out.contains("Clouds:     cloud-a (no VTEP yet), cloud-c (no VTEP yet)\n"),
        "{out}"
    );

    let (code, out, err) = lab.run(&["vnet", "attach", "blue", "web-1"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("web-1 is already attached to vnet blue"),
        "{err}"
    );

    // Refused before the broker is asked: nothing reaches the mock.
    let (code, _, err) = lab
        .run(&[
            "vnet",
            "create",
            "blue",
            "--cidr",
            "10.20.0.9/24",
            "--clouds",
            "cloud-a",
        ])
        .await;
    assert_eq!(code, 1);
    assert!(
        err.contains("--cidr 10.20.0.9/24 has host bits set"),
        "{err}"
    );
}

impl Lab {
    /// The VNet and policy calls the mock has seen so far, then forgets them.
    fn vnet_calls(&self) -> Vec<String> {
        std::mem::take(&mut self.mock.seen.lock().expect("lock").vnet_calls)
    }

    /// Runs the CLI, expecting it to refuse before calling the broker:
    /// exit status 1, nothing on stdout, the mock untouched; returns stderr.
    async fn refused(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args).await;
        assert_eq!((code, out.as_str()), (1, ""), "{args:?}: {err}");
        assert_eq!(self.vnet_calls(), Vec::<String>::new(), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{err}");
        err
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_allow_proposes_agrees_and_says_whose_agreement_is_awaited() {
    let lab = lab().await;
    let (code, out, err) = lab
        .run(&[
            "policy", "allow", "--from", "web", "--to", "db", "--port", "443",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "rule web -> db tcp/443: proposed by cloud-a, awaiting cloud-c\n\
         cloud-c agrees by running the same `intercloudctl policy allow` command\n"
    );
    let (code, out, err) = lab
        .run(&[
            "policy",
            "allow",
            "--from",
            "web",
            "--to",
            "cache",
            "--proto",
            "udp",
            "--port",
            "8000-8080",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "rule web -> cache udp/8000-8080: agreed\n");
    let (code, out, _) = lab
        .run(&[
            "policy", "allow", "--from", "web", "--to", "db", "--proto", "icmp", "-o", "json",
        ])
        .await;
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["rule"]["proto"], "icmp");
    assert_eq!(json["rule"]["port"], "");
    assert_eq!(json["awaiting"], "cloud-c");
    assert_eq!(json["agreed"], false);
    assert_eq!(
        lab.vnet_calls(),
        [
            "AllowFlow web -> db tcp/443",
            "AllowFlow web -> cache udp/8000-8080",
            "AllowFlow web -> db icmp/",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_refuses_bad_rules_without_asking_the_broker() {
    let lab = lab().await;
    let rule = |extra: &[&'static str]| {
        let mut words = vec!["policy", "allow", "--from", "web", "--to", "db"];
        words.extend_from_slice(extra);
        words
    };
    for (args, expected) in [
        (
            rule(&["--proto", "sctp"]),
            "error: --proto: protocol \"sctp\" is unknown",
        ),
        (
            rule(&["--port", "0"]),
            "error: --port: port range \"0\" is refused: port 0 is not a port",
        ),
        (rule(&["--port", "65536"]), "ports go up to 65535"),
        (
            rule(&["--port", "9000-8000"]),
            "its first port is above its last",
        ),
        (
            rule(&["--port", "80,443"]),
            "error: --port: port range \"80,443\"",
        ),
        (
            rule(&["--proto", "icmp", "--port", "443"]),
            "error: --port: a port (443) makes no sense with icmp",
        ),
        (
            rule(&["--proto", "any", "--port", "443"]),
            "makes no sense with any",
        ),
        (
            vec!["policy", "allow", "--from", "Web", "--to", "db"],
            "error: --from: ",
        ),
        (
            vec!["policy", "revoke", "--from", "web", "--to", ""],
            "error: --to: ",
        ),
        (
            vec!["policy", "revoke", "--from", "web", "--to", "web"],
            "to itself is pointless",
        ),
    ] {
        let err = lab.refused(&args).await;
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_revoke_and_ls() {
    let lab = lab().await;
    let (code, out, err) = lab
        .run(&[
            "policy", "revoke", "--from", "web", "--to", "cache", "--proto", "any",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "revoked rule web -> cache any (it was agreed)\n");
    let (code, out, err) = lab
        .run(&["policy", "revoke", "--from", "ghost", "--to", "db"])
        .await;
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("there is no rule ghost -> db tcp"), "{err}");

    let (code, out, err) = lab.run(&["policy", "ls"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "FROM   TO      PROTO   PORT   STATE              PROPOSED BY\n\
         web    db      tcp     443    awaiting cloud-c   cloud-a\n\
         web    cache   icmp    -      agreed             cloud-c\n"
    );
    let (code, out, _) = lab.run(&["policy", "ls", "-o", "json"]).await;
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["policies"][1]["rule"]["to_domain"], "cache");
    assert_eq!(json["policies"][1]["agreed"], true);
    assert_eq!(
        lab.vnet_calls(),
        [
            "RevokeFlow web -> cache any/",
            "RevokeFlow ghost -> db tcp/",
            "ListFlows",
            "ListFlows",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn vnet_mirror_prints_the_mirror_and_its_instance_clones() {
    let lab = lab().await;
    let (code, out, err) = lab
        .run(&["vnet", "mirror", "blue", "--strategy", "sample:0.1"])
        .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "created mirror blue-mirror of vnet blue\n\
         VNI:       4097 (0x001001)\n\
         Strategy:  sample:1/10\n\
         CIDR:      10.20.0.0/24\n\
         Clouds:    cloud-a, cloud-c\n\
         instance clones (the addresses and MACs of blue's):\n\
         INSTANCE       CLOUD     IP          MAC\n\
         web-1-mirror   cloud-c   10.20.0.2   02:00:10:00:00:02\n\
         `intercloudctl vnet swap blue` makes it carry blue's production traffic\n"
    );
    let (code, out, _) = lab
        .run(&[
            "vnet",
            "mirror",
            "blue",
            "--strategy",
            "headers",
            "--name",
            "blue-tap",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["name"], "blue-tap");
    assert_eq!(json["mirror_of"], "blue");
    assert_eq!(json["mirror_strategy"], "headers");
    assert_eq!(json["bindings"][0]["instance"], "web-1-mirror");
    let (code, _, err) = lab
        .run(&["vnet", "mirror", "red", "--strategy", "full"])
        .await;
    assert_eq!(code, 1);
    assert!(err.contains("vnet cloud-a/red does not exist"), "{err}");
    assert_eq!(
        lab.vnet_calls(),
        [
            "CreateMirror blue as  sample:1/10",
            "CreateMirror blue as blue-tap headers",
            "CreateMirror red as  full",
        ]
    );

    for (args, expected) in [
        (
            vec!["vnet", "mirror", "blue", "--strategy", "everything"],
            "error: --strategy: mirror strategy \"everything\" is unknown",
        ),
        (
            vec!["vnet", "mirror", "blue", "--strategy", "sample:0"],
            "error: --strategy: sample rate \"0\" is refused",
        ),
        (
            vec!["vnet", "mirror", "blue", "--strategy", "sample:1.5"],
            "it is above 1",
        ),
        (
            vec![
                "vnet",
                "mirror",
                "blue",
                "--strategy",
                "full",
                "--name",
                "blue",
            ],
            "a mirror cannot have its production's name",
        ),
        (
            vec![
                "vnet",
                "mirror",
                "blue",
                "--strategy",
                "full",
                "--name",
                "Blue!",
            ],
            "error: --name: ",
        ),
        (vec!["vnet", "swap", "Blue"], "\"Blue\""),
    ] {
        let err = lab.refused(&args).await;
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn vnet_swap_says_which_vnet_carries_the_production_traffic() {
    let lab = lab().await;
    let (code, out, err) = lab.run(&["vnet", "swap", "blue"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "blue-mirror now carries blue's production traffic; run `vnet swap blue` again to roll back\n"
    );

    let (code, out, err) = lab.run(&["vnet", "ls"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(
            "NAME          TENANT    VNI    CIDR           CLOUDS            DOMAIN   INSTANCES   MIRROR                           CREATED\n\
             blue          cloud-a   4096   10.20.0.0/24   cloud-a,cloud-c   web      1           blue-mirror (swapped)            -\n\
             blue-mirror   cloud-a   4097   10.20.0.0/24   cloud-a,cloud-c   web      1           of blue (sample:1/10, swapped)   -\n"
        ),
        "{out}"
    );
    let (code, out, err) = lab.run(&["vnet", "show", "blue"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "Mirror:     blue-mirror; swapped: blue-mirror carries this VNet's production traffic, this VNet receives the copies\n"
        ),
        "{out}"
    );
    assert!(
        out.ends_with(
            "This cloud:  realized\n\
             Gateway:     10.20.0.1/24 on icb001000 (routes to 10.30.0.0/24)\n\
             Reconciled:  -\n  \
             icx001000 vxlan vni 4096 local 10.231.0.1 up\n\
             Rules:\n  \
             accept web -> db tcp/443: 12 packets\n  \
             tap to blue-mirror (sample:1/10): 3 packets\n"
        ),
        "{out}"
    );
    let (code, out, _) = lab.run(&["vnet", "show", "blue", "-o", "json"]).await;
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["vnet"]["swapped"], true);
    assert_eq!(json["vnet"]["mirror"], "blue-mirror");
    assert_eq!(
        json["local"]["gateway"],
        "10.20.0.1/24 on icb001000 (routes to 10.30.0.0/24)"
    );
    assert_eq!(
        json["local"]["rules"][1],
        "tap to blue-mirror (sample:1/10): 3 packets"
    );

    let (code, out, err) = lab.run(&["vnet", "swap", "blue", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        (json["name"].as_str(), json["swapped"].as_bool()),
        (Some("blue"), Some(false))
    );
    let (code, out, _) = lab.run(&["vnet", "swap", "blue"]).await;
    assert_eq!(code, 0);
    let (code, out2, _) = lab.run(&["vnet", "swap", "blue"]).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("blue-mirror now carries"), "{out}");
    assert_eq!(out2, "blue carries its production traffic again\n");
    assert_eq!(
        lab.vnet_calls(),
        [
            "SwapMirror blue",
            "ListVnets",
            "ShowVnet blue",
            "ShowVnet blue",
            "SwapMirror blue",
            "SwapMirror blue",
            "SwapMirror blue",
        ]
    );
}
