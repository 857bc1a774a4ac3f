//! Channels to the servers a context names, and gRPC calls over them whose
//! failures come back as one-line errors with a next step.
//!
//! Every connection is our own rustls configuration from `intercloud-trust`:
//! the server must prove the SPIFFE id the context expects (a broker's
//! `…/cloud/<id>`, or `…/root` for the root's ports); host names play no part.

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use intercloud_trust::SpiffeId;
use intercloud_trust::connect::{self, ConnectError, error_chain};
use intercloud_trust::tls::{Credentials, TrustAnchors, client_config};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::config::{Context, ContextKind};
use crate::report::{HintExt as _, hinted};

/// The broker's methods that need presence (an `[xmpp]` section); without
/// it they fail with FAILED_PRECONDITION.
const PRESENCE_METHODS: &[&str] = &["ListPeers", "WatchPeers", "Negotiate"];

/// Which kind of server a [`Remote`] is, for the hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A cloud's broker (operator API).
    Broker,
    /// The root's mutual-TLS API (`Federation` and `Directory`).
    Root,
    /// The root's enrolment port (server-auth TLS only).
    Enrollment,
}

/// A server to talk to: where it is, who it must be, how long we wait.
#[derive(Debug, Clone)]
pub struct Remote {
    /// `host:port`.
    pub endpoint: String,
    /// The identity the server must prove.
    pub server: SpiffeId,
    role: Role,
    /// The context it came from, named in hints.
    context: Option<String>,
    /// Whether that context is a root context (its operator is the root's).
    root_context: bool,
    timeout: Duration,
}

impl Remote {
    /// The broker a broker context talks to.
    pub fn broker(context: &Context, timeout: Duration) -> anyhow::Result<Self> {
        match context.kind {
            ContextKind::Broker(_) => Ok(Self {
                endpoint: context.endpoint.clone(),
                server: context.server.clone(),
                role: Role::Broker,
                context: Some(context.name.clone()),
                root_context: false,
                timeout,
            }),
            ContextKind::Root => Err(hinted(
                format!(
                    "context {:?} is a root context, and this command talks to a broker",
                    context.name
                ),
                "pass --context with a broker context (see `intercloudctl contexts`)",
            )),
        }
    }

    /// The root's mutual-TLS API (`Federation`, `Directory`): a root
    /// context's endpoint, or a broker context's `root_endpoint`.
    pub fn root(context: &Context, timeout: Duration) -> anyhow::Result<Self> {
        let endpoint = match context.kind {
            ContextKind::Root => context.endpoint.clone(),
            ContextKind::Broker(_) => context.root_endpoint.clone().ok_or_else(|| {
                hinted(
                    format!("context {:?} has no root_endpoint", context.name),
                    format!(
                        "add root_endpoint = \"HOST:PORT\" (the root's mTLS API) to [contexts.{}] in the config, or pass --context with a root context",
                        context.name
                    ),
                )
            })?,
        };
        Ok(Self {
            endpoint,
            server: SpiffeId::root(context.federation()),
            role: Role::Root,
            context: Some(context.name.clone()),
            root_context: context.kind == ContextKind::Root,
            timeout,
        })
    }

    /// The root's enrolment port.
    pub fn enrollment(endpoint: &str, server: SpiffeId, timeout: Duration) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            server,
            role: Role::Enrollment,
            context: None,
            root_context: false,
            timeout,
        }
    }

    /// A connected channel; `credentials` is the operator certificate for
    /// mutual TLS, `None` for the enrolment port.
    pub async fn connect(
        &self,
        anchors: &TrustAnchors,
        credentials: Option<&Credentials>,
    ) -> anyhow::Result<Channel> {
        let config = client_config(anchors, self.server.clone(), credentials)
            .context("cannot set up TLS")
            .hint(self.check_tls_files())?;
        match tokio::time::timeout(self.timeout, connect::channel(&self.endpoint, config)).await {
            Err(_) => Err(self.no_answer()),
            Ok(Ok(channel)) => Ok(channel),
            Ok(Err(e @ ConnectError::Unreachable { .. })) => {
                let reason = tidy(&e.to_string());
                let hint = self.connect_hint(&reason);
                Err(hinted(reason, hint))
            }
            Ok(Err(e)) => Err(anyhow::Error::new(e)).hint(self.check_endpoint()),
        }
    }

    /// Runs one call, `method` being its gRPC name (for messages), within
    /// the timeout.
    pub async fn call<T>(
        &self,
        method: &str,
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> anyhow::Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(self.no_answer()),
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(self.status_error(method, &status)),
        }
    }

    /// Runs a client-streaming call whose answer may wait until the
    /// request stream is sent: the timeout starts once `sent` resolves, so
    /// a large upload is not cut short.
    pub async fn call_after_sending<T>(
        &self,
        method: &str,
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
        sent: impl Future<Output = ()>,
    ) -> anyhow::Result<T> {
        let mut call = std::pin::pin!(call);
        tokio::select! {
            result = &mut call => {
                return result
                    .map(tonic::Response::into_inner)
                    .map_err(|status| self.status_error(method, &status));
            }
            () = sent => {}
        }
        self.call(method, call).await
    }

    fn no_answer(&self) -> anyhow::Error {
        hinted(
            format!(
                "no answer from {} within {}s",
                self.endpoint,
                self.timeout.as_secs()
            ),
            "raise --timeout or check `scripts/lab status`",
        )
    }

    /// The one-line error for a gRPC status: the code in words and the
    /// server's message.
    pub fn status_error(&self, method: &str, status: &Status) -> anyhow::Error {
        // A status with a source was made by the client's transport, not
        // sent by the server: the connection broke under the call.
        if let Some(source) = std::error::Error::source(status) {
            let text = format!(
                "{} dropped the connection during {method}: {}",
                self.endpoint,
                tidy(&error_chain(source))
            );
            let hint = self.tls_hint(&text).unwrap_or_else(|| self.dropped_hint());
            return hinted(text, hint);
        }
        if status.code() == Code::FailedPrecondition && PRESENCE_METHODS.contains(&method) {
            return hinted(
                format!(
                    "presence is not configured on the broker at {}",
                    self.endpoint
                ),
                format!(
                    "add an [xmpp] section to the config of the broker of {}, then restart it",
                    self.context_name()
                ),
            );
        }
        let message = tidy(status.message().trim());
        let text = if message.is_empty() {
            format!("{}: {method} failed", code_words(status.code()))
        } else {
            format!("{}: {message}", code_words(status.code()))
        };
        match self.status_hint(method, status.code()) {
            Some(hint) => hinted(text, hint),
            None => anyhow::anyhow!(text),
        }
    }

    /// The error for a stream that broke after it opened. The operator
    /// certificate was accepted by then, so a failure of the transport means
    /// the server went away.
    pub fn stream_error(&self, method: &str, status: &Status) -> anyhow::Error {
        match std::error::Error::source(status) {
            Some(source) => hinted(
                format!(
                    "the {} at {} closed the {method} stream: {}",
                    self.role_noun(),
                    self.endpoint,
                    tidy(&error_chain(source))
                ),
                Self::stream_closed_hint(),
            ),
            None => self.status_error(method, status),
        }
    }

    /// The error for a stream the server ended.
    pub fn stream_ended(&self, method: &str) -> anyhow::Error {
        hinted(
            format!(
                "the {} at {} closed the {method} stream",
                self.role_noun(),
                self.endpoint
            ),
            Self::stream_closed_hint(),
        )
    }

    fn stream_closed_hint() -> &'static str {
        "it may have stopped or restarted: check `scripts/lab status`, then watch again"
    }

    /// `broker` or `root`, for messages.
    fn role_noun(&self) -> &'static str {
        match self.role {
            Role::Broker => "broker",
            Role::Root | Role::Enrollment => "root",
        }
    }

    /// A server that accepts the TLS 1.3 handshake and then finds our
    /// certificate wanting closes the connection: that is how a refused
    /// operator certificate shows up on the client.
    fn dropped_hint(&self) -> String {
        match self.role {
            Role::Enrollment => "check `scripts/lab status` and the root's log".to_owned(),
            _ => format!(
                "the server may have refused the operator certificate of {} (revoked, expired, or of another CA?): check cert and key, and the server's log",
                self.context_name()
            ),
        }
    }

    fn context_name(&self) -> String {
        self.context.as_deref().map_or_else(
            || "the context".to_owned(),
            |name| format!("context {name:?}"),
        )
    }

    /// The next step after a status the server sent.
    fn status_hint(&self, method: &str, code: Code) -> Option<String> {
        if let Some(hint) = self.directory_hint(method, code) {
            return Some(hint);
        }
        if method.starts_with("Time.") && code == Code::Unimplemented {
            return Some(format!(
                "the root at {} does not serve Time: it may be older than this CLI; check {}",
                self.endpoint,
                self.check_endpoint()
            ));
        }
        let root_only = matches!(method, "CreateJoinToken" | "Revoke");
        Some(match code {
            Code::PermissionDenied if root_only && !self.root_context => {
                "use a root operator's context, e.g. --context root".to_owned()
            }
            Code::PermissionDenied => {
                format!("the operator certificate of {} is not allowed to call {method}", self.context_name())
            }
            Code::Unauthenticated if self.role == Role::Enrollment => {
                "ask a root operator for a new token (`intercloudctl --context root token create CLOUD`)".to_owned()
            }
            Code::Unauthenticated => {
                format!("check cert and key of {}", self.context_name())
            }
            Code::NotFound if method == "GetMember" => "see `intercloudctl members`".to_owned(),
            Code::NotFound if method == "GetObject" => "see `intercloudctl object ls`".to_owned(),
            Code::NotFound if method == "Migrate" => "see `intercloudctl instance ls`".to_owned(),
            Code::AlreadyExists if method == "CreateInstance" => {
                "choose another name (`intercloudctl instance ls` lists those taken)".to_owned()
            }
            Code::Unimplemented => format!(
                "{} does not serve {method}: is it the right server? check {}",
                self.endpoint,
                self.check_endpoint()
            ),
            // Sent by the broker itself: its XMPP side, not its gRPC side, is down.
            Code::Unavailable if PRESENCE_METHODS.contains(&method) => {
                "check the broker's log for its XMPP connection".to_owned()
            }
            Code::DataLoss if method == "WatchPeers" => {
                "watch again; `intercloudctl peers` shows the current peers".to_owned()
            }
            Code::Unavailable => self.running_hint(),
            Code::DeadlineExceeded => "raise --timeout".to_owned(),
            _ => return None,
        })
    }

    /// Next steps specific to the root's `Directory` (methods named
    /// `Directory.<Rpc>`).
    fn directory_hint(&self, method: &str, code: Code) -> Option<String> {
        let rpc = method.strip_prefix("Directory.")?;
        Some(match (rpc, code) {
            ("Publish", Code::PermissionDenied) => {
                "a cloud publishes only its own descriptor: use that cloud's context".to_owned()
            }
            ("Publish", Code::FailedPrecondition) => {
                "raise ic:descriptorVersion in the file".to_owned()
            }
            ("Publish", Code::InvalidArgument) => {
                "check the file with `intercloudctl describe --file FILE`".to_owned()
            }
            ("Publish", Code::ResourceExhausted) => {
                "split the descriptor or leave out what peers do not need".to_owned()
            }
            ("Withdraw", Code::PermissionDenied) => {
                "a cloud withdraws only its own descriptor: use that cloud's context, or a root operator's".to_owned()
            }
            ("Withdraw", Code::InvalidArgument) => {
                "name the cloud: `intercloudctl directory withdraw CLOUD`".to_owned()
            }
            ("Get" | "Withdraw", Code::NotFound) => {
                "that cloud has no descriptor in the directory: check the id, or publish one with `intercloudctl publish` in its context".to_owned()
            }
            ("Query", Code::DeadlineExceeded) => "narrow the query or add a LIMIT".to_owned(),
            ("Query", Code::ResourceExhausted) => {
                "add a LIMIT, or select fewer variables".to_owned()
            }
            ("Query", Code::PermissionDenied) => {
                "the directory is read-only: a cloud changes its descriptor with `intercloudctl publish`".to_owned()
            }
            ("Match", Code::InvalidArgument) => "see `intercloudctl match --help`".to_owned(),
            ("Watch", Code::DataLoss) => {
                "watch again; the current descriptors come first unless --no-current".to_owned()
            }
            (_, Code::Unimplemented) => format!(
                "the root at {} does not serve the directory: it may be older than this CLI; check {}",
                self.endpoint,
                self.check_endpoint()
            ),
            _ => return None,
        })
    }

    /// Hints for failures that show up in TLS: the server's proof or ours.
    fn tls_hint(&self, reason: &str) -> Option<String> {
        if reason.contains("invalid peer certificate") {
            return Some(match self.role {
                Role::Enrollment => format!(
                    "the server did not prove {}: check --ca (or the context's ca) and --federation",
                    self.server
                ),
                _ => format!(
                    "the server did not prove {}: {}",
                    self.server,
                    self.check_tls_files()
                ),
            });
        }
        if reason.contains("alert") {
            return Some(match self.role {
                Role::Enrollment => {
                    "the root refused the TLS handshake: is this its enrolment port?".to_owned()
                }
                _ => format!(
                    "the server refused our operator certificate: check cert and key of {} (revoked, expired, or of another federation?)",
                    self.context_name()
                ),
            });
        }
        None
    }

    fn connect_hint(&self, reason: &str) -> String {
        self.tls_hint(reason).unwrap_or_else(|| self.running_hint())
    }

    fn running_hint(&self) -> String {
        match self.role {
            Role::Broker => "is the broker running? check `scripts/lab status`".to_owned(),
            Role::Root => {
                format!(
                    "is the root running? check `scripts/lab status` and {}",
                    self.check_endpoint()
                )
            }
            Role::Enrollment => {
                "is the root running, and is that its enrolment port? check `scripts/lab status`"
                    .to_owned()
            }
        }
    }

    fn check_endpoint(&self) -> String {
        match (self.role, &self.context) {
            (Role::Broker, Some(name)) => format!("endpoint of context {name:?}"),
            (Role::Root, Some(name)) => format!("endpoint or root_endpoint of context {name:?}"),
            _ => "--root-enroll (or the context's enroll_endpoint)".to_owned(),
        }
    }

    fn check_tls_files(&self) -> String {
        match &self.context {
            Some(name) => format!("check ca and server of context {name:?}"),
            None => "check --ca".to_owned(),
        }
    }
}

/// The federation CA bundle and operator certificate of a context.
pub fn operator_tls(context: &Context) -> anyhow::Result<(TrustAnchors, Credentials)> {
    let paths_hint = format!(
        "check ca, cert and key of context {:?} (relative paths start at the config file's directory)",
        context.name
    );
    let anchors = TrustAnchors::load(&context.ca)
        .with_context(|| format!("context {:?}: cannot load the CA bundle", context.name))
        .hint(paths_hint.clone())?;
    let (cert, key) = context.operator_credentials()?;
    let credentials = Credentials::load(cert, key)
        .with_context(|| {
            format!(
                "context {:?}: cannot load the operator certificate",
                context.name
            )
        })
        .hint(paths_hint)?;
    Ok((anchors, credentials))
}

/// Transport errors as people read them: rustls shows a policy refusal
/// from our verifier as `Other(OtherError(PolicyRefusal("…")))`; keep the text.
fn tidy(reason: &str) -> String {
    const OPEN: &str = "Other(OtherError(PolicyRefusal(\"";
    const CLOSE: &str = "\")))";
    let mut out = reason.to_owned();
    while let Some(start) = out.find(OPEN) {
        let inner_start = start + OPEN.len();
        let Some(len) = out[inner_start..].find(CLOSE) else {
            break;
        };
        let inner = out[inner_start..inner_start + len].replace("\\\"", "\"");
        out.replace_range(start..inner_start + len + CLOSE.len(), &inner);
    }
    out
}

/// A gRPC status code in lower-case words.
pub fn code_words(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown error",
        Code::InvalidArgument => "invalid argument",
        Code::DeadlineExceeded => "deadline exceeded",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::PermissionDenied => "permission denied",
        Code::ResourceExhausted => "resource exhausted",
        Code::FailedPrecondition => "failed precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out of range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal error",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::ContextsFile;
    use crate::report::line;

    fn contexts() -> ContextsFile {
        let text = r#"
[contexts.cloud-a]
endpoint = "127.0.0.1:7501"
server = "spiffe://intercloud.lab/cloud/cloud-a"
ca = "ca.crt"
[contexts.cloud-b]
endpoint = "127.0.0.1:7502"
server = "spiffe://intercloud.lab/cloud/cloud-b"
root_endpoint = "127.0.0.1:7443"
ca = "ca.crt"
[contexts.root]
endpoint = "127.0.0.1:7443"
server = "spiffe://intercloud.lab/root"
ca = "ca.crt"
"#;
        ContextsFile::parse(Path::new("/x/ctl.toml"), text).expect("contexts")
    }

    #[test]
    fn statuses_print_the_code_in_words_and_the_servers_message() {
        let file = contexts();
        let via_broker =
            Remote::root(&file.contexts["cloud-b"], Duration::from_secs(1)).expect("root");
        assert_eq!(via_broker.endpoint, "127.0.0.1:7443");
        let status = Status::permission_denied("CreateJoinToken needs a root operator certificate");
        let error = line(&via_broker.status_error("CreateJoinToken", &status));
        assert_eq!(
            error,
            "error: permission denied: CreateJoinToken needs a root operator certificate — use a root operator's context, e.g. --context root"
        );
        let root = Remote::root(&file.contexts["root"], Duration::from_secs(1)).expect("root");
        let error = line(&root.status_error("CreateJoinToken", &status));
        assert!(error.ends_with("— the operator certificate of context \"root\" is not allowed to call CreateJoinToken"), "{error}");
        let error = line(&root.status_error("GetMember", &Status::not_found("")));
        assert_eq!(
            error,
            "error: not found: GetMember failed — see `intercloudctl members`"
        );
    }

    #[test]
    fn presence_methods_without_presence_say_to_add_an_xmpp_section() {
        let file = contexts();
        let broker =
            Remote::broker(&file.contexts["cloud-a"], Duration::from_secs(1)).expect("broker");
        let status = Status::failed_precondition(
            "presence is not configured on this broker: add an [xmpp] section to its config",
        );
        for method in ["ListPeers", "WatchPeers", "Negotiate"] {
            assert_eq!(
                line(&broker.status_error(method, &status)),
                "error: presence is not configured on the broker at 127.0.0.1:7501 — add an [xmpp] section to the config of the broker of context \"cloud-a\", then restart it"
            );
        }
        let error = line(&broker.status_error("Status", &status));
        assert!(error.starts_with("error: failed precondition: "), "{error}");
        let lagged = Status::data_loss("this watcher fell 3 events behind");
        assert_eq!(
            line(&broker.stream_error("WatchPeers", &lagged)),
            "error: data loss: this watcher fell 3 events behind — watch again; `intercloudctl peers` shows the current peers"
        );
        assert_eq!(
            line(&broker.stream_ended("WatchPeers")),
            "error: the broker at 127.0.0.1:7501 closed the WatchPeers stream — it may have stopped or restarted: check `scripts/lab status`, then watch again"
        );
    }

    #[test]
    fn object_and_instance_statuses_point_at_the_lists() {
        let file = contexts();
        let broker =
            Remote::broker(&file.contexts["cloud-a"], Duration::from_secs(1)).expect("broker");
        let cases = [
            (
                "GetObject",
                Status::not_found("no object report.pdf"),
                "error: not found: no object report.pdf — see `intercloudctl object ls`",
            ),
            (
                "Migrate",
                Status::not_found("no instance web-9"),
                "error: not found: no instance web-9 — see `intercloudctl instance ls`",
            ),
            (
                "CreateInstance",
                Status::already_exists("web-1 exists"),
                "error: already exists: web-1 exists — choose another name (`intercloudctl instance ls` lists those taken)",
            ),
        ];
        for (method, status, expected) in cases {
            assert_eq!(line(&broker.status_error(method, &status)), expected);
        }
    }

    #[test]
    fn policy_refusals_lose_their_debug_wrapping() {
        let raw = r#"cannot reach x: invalid peer certificate: Other(OtherError(PolicyRefusal("server is a, expected b")))"#;
        assert_eq!(
            tidy(raw),
            "cannot reach x: invalid peer certificate: server is a, expected b"
        );
        assert_eq!(tidy("plain"), "plain");
        assert_eq!(
            tidy("Other(OtherError(PolicyRefusal(\"open"),
            "Other(OtherError(PolicyRefusal(\"open"
        );
    }

    #[test]
    fn directory_statuses_get_their_own_next_steps() {
        let file = contexts();
        let root = Remote::root(&file.contexts["cloud-b"], Duration::from_secs(1)).expect("root");
        let cases = [
            (
                "Directory.Publish",
                Status::permission_denied("cloud-b may publish only cloud-b's descriptor"),
                "error: permission denied: cloud-b may publish only cloud-b's descriptor — a cloud publishes only its own descriptor: use that cloud's context",
            ),
            (
                "Directory.Publish",
                Status::failed_precondition("version 2 is lower than the published 3"),
                "error: failed precondition: version 2 is lower than the published 3 — raise ic:descriptorVersion in the file",
            ),
            (
                "Directory.Query",
                Status::deadline_exceeded("the query ran longer than the root's limit"),
                "error: deadline exceeded: the query ran longer than the root's limit — narrow the query or add a LIMIT",
            ),
            (
                "Directory.Query",
                Status::resource_exhausted("more than 10000 results"),
                "error: resource exhausted: more than 10000 results — add a LIMIT, or select fewer variables",
            ),
            (
                "Directory.Watch",
                Status::data_loss("this watcher fell 3 changes behind"),
                "error: data loss: this watcher fell 3 changes behind — watch again; the current descriptors come first unless --no-current",
            ),
        ];
        for (method, status, expected) in cases {
            assert_eq!(line(&root.status_error(method, &status)), expected);
        }
        let error = line(&root.status_error("Directory.Get", &Status::not_found("")));
        assert!(
            error.starts_with(
                "error: not found: Directory.Get failed — that cloud has no descriptor"
            ),
            "{error}"
        );
        let error = line(&root.status_error("Directory.Match", &Status::unimplemented("")));
        assert!(
            error.contains("— the root at 127.0.0.1:7443 does not serve the directory"),
            "{error}"
        );
        // Other codes keep the general hints.
        let error = line(&root.status_error("Directory.Query", &Status::unavailable("")));
        assert!(error.contains("is the root running?"), "{error}");
        assert_eq!(
            line(&root.stream_ended("Directory.Watch")),
            "error: the root at 127.0.0.1:7443 closed the Directory.Watch stream — it may have stopped or restarted: check `scripts/lab status`, then watch again"
        );
    }

    #[test]
    fn a_broker_context_without_root_endpoint_says_what_to_add() {
        let file = contexts();
        let error = line(
            &Remote::root(&file.contexts["cloud-a"], Duration::from_secs(1)).expect_err("no root"),
        );
        assert!(
            error
                .starts_with("error: context \"cloud-a\" has no root_endpoint — add root_endpoint"),
            "{error}"
        );
        let root = Remote::root(&file.contexts["root"], Duration::from_secs(1)).expect("root");
        assert_eq!(root.server.to_string(), "spiffe://intercloud.lab/root");
        assert!(Remote::broker(&file.contexts["root"], Duration::from_secs(1)).is_err());
    }

    #[tokio::test]
    async fn an_unreachable_broker_gets_a_running_hint() {
        // Bind and drop a listener so the port is very likely closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let pki = Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs-dev/pki");
        let anchors = TrustAnchors::load(&pki.join("ca.crt")).expect("ca");
        let remote = Remote {
            endpoint: format!("127.0.0.1:{port}"),
            server: SpiffeId::parse("spiffe://intercloud.lab/cloud/cloud-a").expect("id"),
            role: Role::Broker,
            context: Some("cloud-a".into()),
            root_context: false,
            timeout: Duration::from_secs(5),
        };
        let error = line(&remote.connect(&anchors, None).await.expect_err("refused"));
        assert!(
            error.starts_with(&format!("error: cannot reach 127.0.0.1:{port}: ")),
            "{error}"
        );
        assert!(
            error.ends_with(" — is the broker running? check `scripts/lab status`"),
            "{error}"
        );
    }
}
