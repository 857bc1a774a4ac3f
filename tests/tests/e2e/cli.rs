//! `intercloudctl` against the real root and brokers: its JSON and table
//! output, manual enrolment into a broker that then federates, and failures
//! reported as one `error:` line with a next step.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use intercloud_tests::{
    BrokerIdentity, CliContext, RootOptions, TestBroker, TestRoot, cert_info, cloud_id,
    intercloudctl, pki, write_cli_config, write_cli_contexts,
};
use serde_json::Value;

/// One run of `intercloudctl`.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The JSON document of a successful run.
    fn json(&self) -> Value {
        assert_eq!(
            (self.code, self.stderr.as_str()),
            (0, ""),
            "stdout: {}",
            self.stdout
        );
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", self.stdout))
    }

    /// The text of a successful run.
    fn text(&self) -> &str {
        assert_eq!(
            (self.code, self.stderr.as_str()),
            (0, ""),
            "stdout: {}",
            self.stdout
        );
        &self.stdout
    }

    /// A failure reported as exactly one `error: …` line, exit status 1.
    fn one_line_error(&self) -> &str {
        assert_eq!(self.code, 1, "stderr: {}", self.stderr);
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout);
        let line = self
            .stderr
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("not newline-terminated: {:?}", self.stderr));
        assert!(
            !line.contains('\n') && line.starts_with("error: "),
            "not one error line: {}",
            self.stderr
        );
        line
    }
}

fn ctl(config: &Path, args: &[&str]) -> Run {
    let (code, stdout, stderr) = intercloudctl(config, args);
    Run {
        code,
        stdout,
        stderr,
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics with `what`.
fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The broker status of `context` once it says `federated`.
fn federated(config: &Path, context: &str) -> Value {
    wait_until(
        &format!("{context} to report federated"),
        Duration::from_secs(20),
        || {
            let run = ctl(config, &["--context", context, "-o", "json", "status"]);
            let json: Value = serde_json::from_str(&run.stdout).ok()?;
            (json["state"] == "federated").then_some(json)
        },
    )
}

/// `(cloud_id, state)` of every member, as the root context lists them.
fn member_states(config: &Path) -> Vec<(String, String)> {
    let json = ctl(config, &["--context", "root", "-o", "json", "members"]).json();
    json["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members array: {json}"))
        .iter()
        .map(|m| {
            (
                m["cloud_id"].as_str().unwrap_or_default().to_owned(),
                m["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn wait_for_members(config: &Path, expected: &[(&str, &str)]) {
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(c, s)| ((*c).to_owned(), (*s).to_owned()))
        .collect();
    wait_until(
        &format!("members {expected:?}"),
        Duration::from_secs(20),
        || (member_states(config) == expected).then_some(()),
    );
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// SHA-256 (hex) of the dev CA certificate.
fn ca_fingerprint() -> String {
    let pem = std::fs::read(pki("ca.crt")).expect("ca.crt");
    let der = intercloud_trust::pem::certificates_from_pem(&pem)
        .and_then(|c| c.into_iter().next())
        .expect("a certificate in ca.crt");
    intercloud_trust::cert::fingerprint(&der)
}

#[test]
fn broker_status_as_json_and_as_a_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let broker = TestBroker::start(dir.path(), "cloud-a", &root, &BrokerIdentity::DevCert, "");
    let config = write_cli_config(dir.path(), &root, &[("cloud-a", &broker)]);
    let dev_cert = cert_info(&pki("cloud-a.crt"));

    let status = federated(&config, "cloud-a");
    let keys: Vec<&str> = status
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "kind",
        "cloud_id",
        "federation",
        "spiffe_id",
        "state",
        "state_detail",
        "certificate_serial",
        "certificate_not_after",
        "certificate_fingerprint",
        "root_endpoint",
        "root_reachable",
        "last_root_contact",
        "last_error",
        "federation_members",
        "broker_version",
        "started_at",
        "presence_connected",
        "peers_online",
        "readiness",
        "free",
        "descriptor",
        "clock",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected, "{status}");
    assert_eq!(status["kind"], "broker");
    assert_eq!(status["state"], "federated");
    assert_eq!(status["descriptor"]["state"], "not configured", "{status}");
    assert_eq!(status["clock"]["health"], "not configured", "{status}");
    assert_eq!(status["cloud_id"], "cloud-a");
    assert_eq!(status["federation"], "intercloud.lab");
    assert_eq!(status["spiffe_id"], cloud_id("cloud-a"));
    assert_eq!(status["certificate_serial"], dev_cert.serial.as_str());
    assert_eq!(
        status["certificate_fingerprint"],
        dev_cert.fingerprint.as_str()
    );
    let not_after = dev_cert
        .not_after
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    assert_eq!(status["certificate_not_after"], not_after.as_str());
    assert_eq!(status["root_endpoint"], root.api.as_str());
    assert_eq!(status["root_reachable"], true);
    assert_eq!(status["last_error"], "");
    assert_eq!(status["federation_members"], 1);
    assert_eq!(status["broker_version"], env!("CARGO_PKG_VERSION"));
    for stamp in ["last_root_contact", "started_at"] {
        assert!(
            status[stamp].as_str().is_some_and(|s| s.ends_with('Z')),
            "{stamp}: {status}"
        );
    }

    // The default output is the table (the current context is root: ask for cloud-a).
    let run = ctl(&config, &["--context", "cloud-a", "status"]);
    let table = run.text();
    let line = |label: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{label}:")))
            .unwrap_or_else(|| panic!("no {label:?} line in:\n{table}"))
            .split_once(':')
            .map(|(_, value)| value.trim().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(line("Cloud"), "cloud-a");
    assert_eq!(line("State"), "federated");
    assert_eq!(line("Certificate serial"), dev_cert.serial);
    assert_eq!(line("Root"), format!("{} (reachable)", root.api));
    assert_eq!(line("Last error"), "-");
    assert!(
        line("Certificate expires").starts_with(&not_after),
        "{table}"
    );
}

#[test]
fn root_context_lists_members_and_revokes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let a = TestBroker::start(dir.path(), "cloud-a", &root, &BrokerIdentity::DevCert, "");
    let b = TestBroker::start(dir.path(), "cloud-b", &root, &BrokerIdentity::DevCert, "");
    let config = write_cli_config(dir.path(), &root, &[("cloud-a", &a), ("cloud-b", &b)]);
    let serial_a = cert_info(&pki("cloud-a.crt")).serial;
    let serial_b = cert_info(&pki("cloud-b.crt")).serial;
    wait_for_members(&config, &[("cloud-a", "active"), ("cloud-b", "active")]);

    // The root context (current) and a broker context's root_endpoint see the same list.
    let via_root = ctl(&config, &["-o", "json", "members"]).json();
    let via_broker = ctl(&config, &["--context", "cloud-a", "-o", "json", "members"]).json();
    for json in [&via_root, &via_broker] {
        let members = json["members"].as_array().expect("members array");
        assert_eq!(members.len(), 2, "{json}");
        assert_eq!(members[0]["cloud_id"], "cloud-a");
        assert_eq!(members[0]["state"], "active");
        assert_eq!(members[0]["spiffe_id"], cloud_id("cloud-a"));
        assert_eq!(members[0]["certificate_serial"], serial_a.as_str());
        assert_eq!(members[0]["grpc_endpoint"], a.api.as_str());
        assert_eq!(members[1]["cloud_id"], "cloud-b");
        assert_eq!(members[1]["certificate_serial"], serial_b.as_str());
        assert_eq!(members[1]["grpc_endpoint"], b.api.as_str());
    }
    let run = ctl(&config, &["members"]);
    let table = run.text();
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        rows[0],
        [
            "CLOUD",
            "STATE",
            "ENDPOINT",
            "LAST SEEN",
            "CERT EXPIRES",
            "SERIAL"
        ],
        "{table}"
    );
    assert_eq!(rows.len(), 3, "{table}");
    assert_eq!(
        rows[1][..3],
        ["cloud-a", "active", a.api.as_str()],
        "{table}"
    );
    assert_eq!(rows[1][5], serial_a, "{table}");

    let member = ctl(&config, &["-o", "json", "member", "cloud-b"]).json();
    assert_eq!(member["cloud_id"], "cloud-b");
    assert_eq!(member["state"], "active");
    assert_eq!(member["broker_version"], env!("CARGO_PKG_VERSION"));
    let table = ctl(&config, &["member", "cloud-b"]);
    assert!(
        table
            .text()
            .contains(&format!("Certificate serial:   {serial_b}\n")),
        "{}",
        table.stdout
    );
    assert_eq!(
        ctl(&config, &["member", "cloud-z"]).one_line_error(),
        "error: not found: cloud-z is not a member of the federation — see `intercloudctl members`"
    );

    // Only a root operator creates tokens; the root checks the ttl, the CLI the id.
    let denied = ctl(
        &config,
        &["--context", "cloud-a", "token", "create", "cloud-d"],
    );
    let line = denied.one_line_error();
    assert!(
        line.starts_with(
            "error: permission denied: CreateJoinToken needs a root operator certificate"
        ) && line.ends_with("— use a root operator's context, e.g. --context root"),
        "{line}"
    );
    let too_long = ctl(&config, &["token", "create", "cloud-d", "--ttl", "604801"]);
    assert_eq!(
        too_long.one_line_error(),
        "error: invalid argument: token ttl 604801s is out of range 1..=604800s"
    );
    let bad_id = ctl(&config, &["token", "create", "Cloud_X"]);
    let line = bad_id.one_line_error();
    assert!(line.contains("\"Cloud_X\""), "{line}");
    assert!(
        !line.contains("invalid argument"),
        "refused by the CLI: {line}"
    );
    assert!(
        !root.daemon.log_text().contains("Cloud_X"),
        "the root never heard of Cloud_X"
    );

    // Revocation: the CRL number grows and the list shows cloud-b's certificate.
    let status = ctl(&config, &["-o", "json", "status"]).json();
    assert_eq!(status["kind"], "root");
    assert_eq!(status["federation"], "intercloud.lab");
    assert_eq!(status["root_endpoint"], root.api.as_str());
    assert_eq!(
        status["members"],
        serde_json::json!({"total": 2, "enrolled": 0, "active": 2, "inactive": 0, "revoked": 0})
    );
    let before = ctl(&config, &["-o", "json", "revocations"]).json();
    let crl_before = before["crl_number"].as_u64().expect("crl_number");
    assert_eq!(status["crl_number"], crl_before);
    let listed_before = before["revocations"].as_array().expect("list").len();
    assert_eq!(status["revocations"], listed_before);

    let revoked = ctl(
        &config,
        &["-o", "json", "revoke", "cloud-b", "--reason", "test"],
    )
    .json();
    assert_eq!(revoked["cloud_id"], "cloud-b");
    let crl_after = revoked["crl_number"].as_u64().expect("crl_number");
    assert!(crl_after > crl_before, "{crl_after} > {crl_before}");
    let entries = revoked["revoked"].as_array().expect("revoked list");
    assert_eq!(entries.len(), 1, "{revoked}");
    assert_eq!(entries[0]["serial"], serial_b.as_str());
    assert_eq!(entries[0]["cloud_id"], "cloud-b");
    assert_eq!(entries[0]["reason"], "test");

    let after = ctl(&config, &["-o", "json", "revocations"]).json();
    assert_eq!(after["crl_number"], crl_after);
    let list = after["revocations"].as_array().expect("list");
    assert_eq!(list.len(), listed_before + 1, "{after}");
    assert!(
        list.iter()
            .any(|r| r["serial"] == serial_b.as_str() && r["reason"] == "test"),
        "{after}"
    );
    let run = ctl(&config, &["revocations"]);
    let table = run.text();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&serial_b) && l.contains("cloud-b")),
        "{table}"
    );
    assert!(
        table.ends_with(&format!("\nCRL number: {crl_after}\n")),
        "{table}"
    );
    let status = ctl(&config, &["-o", "json", "status"]).json();
    assert_eq!(
        status["members"],
        serde_json::json!({"total": 2, "enrolled": 0, "active": 1, "inactive": 0, "revoked": 1})
    );
    assert_eq!(status["crl_number"], crl_after);
    let run = ctl(&config, &["status"]);
    assert!(
        run.text()
            .contains("2 (1 active, 0 inactive, 0 enrolled, 1 revoked)"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_cloud_enrolled_by_hand_federates_with_the_written_identity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let config = write_cli_config(dir.path(), &root, &[]);

    let token = ctl(
        &config,
        &["-o", "json", "token", "create", "cloud-d", "--ttl", "600"],
    )
    .json();
    assert_eq!(token["cloud_id"], "cloud-d");
    assert_eq!(token["ca_fingerprint"], ca_fingerprint());
    assert!(
        token["expires_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')),
        "{token}"
    );
    let token = token["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("ict1."), "{token}");
    let run = ctl(&config, &["token", "create", "cloud-e"]);
    let table = run.text();
    assert!(table.contains("enrollment.token = \"ict1."), "{table}");
    assert!(
        table.contains("intercloudctl enroll --cloud cloud-e --token ict1."),
        "{table}"
    );

    // A refused token leaves no directory behind.
    let out = dir.path().join("cloud-d/identity");
    let out_arg = out.display().to_string();
    let unknown = ctl(
        &config,
        &[
            "enroll",
            "--cloud",
            "cloud-d",
            "--token",
            "ict1.nope",
            "--out",
            &out_arg,
        ],
    );
    assert_eq!(
        unknown.one_line_error(),
        "error: unauthenticated: unknown join token — ask a root operator for a new token (`intercloudctl --context root token create CLOUD`)"
    );
    assert!(!out.exists(), "nothing written for a refused token");

    let enrolled = ctl(
        &config,
        &[
            "-o", "json", "enroll", "--cloud", "cloud-d", "--token", &token, "--out", &out_arg,
        ],
    )
    .json();
    let cert = cert_info(&out.join("cert.pem"));
    assert_eq!(enrolled["cloud_id"], "cloud-d");
    assert_eq!(enrolled["federation"], "intercloud.lab");
    assert_eq!(enrolled["spiffe_id"], cloud_id("cloud-d"));
    assert_eq!(cert.spiffe_id.to_string(), cloud_id("cloud-d"));
    assert_eq!(enrolled["serial"], cert.serial.as_str());
    assert_eq!(enrolled["fingerprint"], cert.fingerprint.as_str());
    assert_eq!(enrolled["out_dir"], out_arg.as_str());
    for (field, file) in [
        ("key", "key.pem"),
        ("cert", "cert.pem"),
        ("bundle", "bundle.pem"),
    ] {
        assert_eq!(
            enrolled[field],
            out.join(file).display().to_string(),
            "{enrolled}"
        );
    }
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&out.join("key.pem")), 0o600, "the key is private");
    assert_eq!(mode(&out), 0o700);
    assert_eq!(
        intercloud_trust::pem::certificates_from_pem(
            &std::fs::read(out.join("bundle.pem")).expect("bundle.pem")
        ),
        intercloud_trust::pem::certificates_from_pem(&std::fs::read(pki("ca.crt")).expect("ca")),
        "the bundle is the federation CA"
    );
    assert_eq!(
        member_states(&config),
        [("cloud-d".to_owned(), "enrolled".to_owned())]
    );

    // A second enrolment into the same directory is refused before the
    // token is spent: the root's state does not change.
    let second = ctl(&config, &["-o", "json", "token", "create", "cloud-d"]).json();
    let second = second["token"].as_str().expect("token").to_owned();
    let state = root.state_bytes();
    let again = ctl(
        &config,
        &[
            "enroll", "--cloud", "cloud-d", "--token", &second, "--out", &out_arg,
        ],
    );
    assert_eq!(
        again.one_line_error(),
        format!(
            "error: {out_arg}/cert.pem already exists — pass --force to replace the identity in {out_arg}"
        )
    );
    assert_eq!(root.state_bytes(), state, "the second token is not spent");
    assert_eq!(cert_info(&out.join("cert.pem")).serial, cert.serial);

    // A spent token is refused, and says so.
    let elsewhere = dir.path().join("elsewhere");
    let spent = ctl(
        &config,
        &[
            "enroll",
            "--cloud",
            "cloud-d",
            "--token",
            &token,
            "--out",
            &elsewhere.display().to_string(),
        ],
    );
    let line = spent.one_line_error();
    assert!(
        line.starts_with("error: unauthenticated: join token was already used at "),
        "{line}"
    );
    assert!(
        line.contains("— ask a root operator for a new token"),
        "{line}"
    );
    assert!(!elsewhere.exists());

    // A broker whose data_dir holds that identity starts as cloud-d and federates.
    let broker = TestBroker::start(dir.path(), "cloud-d", &root, &BrokerIdentity::OnDisk, "");
    assert_eq!(broker.data_dir, dir.path().join("cloud-d"));
    broker
        .daemon
        .wait_for_log("federated", Duration::from_secs(20));
    let log = broker.daemon.log_text();
    assert!(
        log.contains("identity loaded") && log.contains(&cert.serial),
        "{log}"
    );
    wait_for_members(&config, &[("cloud-d", "active")]);
    let member = ctl(&config, &["-o", "json", "member", "cloud-d"]).json();
    assert_eq!(member["certificate_serial"], cert.serial.as_str());
    assert_eq!(member["grpc_endpoint"], broker.api.as_str());
}

#[test]
fn failures_are_one_line_with_a_next_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let broker = TestBroker::start(dir.path(), "cloud-a", &root, &BrokerIdentity::DevCert, "");
    let port = closed_port();
    let cloud_a = CliContext::broker("cloud-a", &broker);
    let config = write_cli_contexts(
        dir.path(),
        &root,
        &[
            cloud_a.clone(),
            // cloud-b's operator, pointed at cloud-a's broker by mistake.
            CliContext {
                name: "cloud-b".into(),
                server_cloud: "cloud-b".into(),
                operator_cloud: "cloud-b".into(),
                ..cloud_a.clone()
            },
            CliContext {
                name: "down".into(),
                endpoint: format!("127.0.0.1:{port}"),
                ..cloud_a.clone()
            },
            // The right broker, but the operator of another cloud.
            CliContext {
                name: "foreign-operator".into(),
                operator_cloud: "cloud-b".into(),
                ..cloud_a.clone()
            },
            CliContext {
                name: "no-root".into(),
                root_endpoint: false,
                ..cloud_a.clone()
            },
        ],
    );
    federated(&config, "cloud-a");

    let missing = dir.path().join("none.toml");
    assert_eq!(
        ctl(&missing, &["status"]).one_line_error(),
        format!(
            "error: no config file at {} — run scripts/lab up or pass --config",
            missing.display()
        )
    );

    let unknown = ctl(&config, &["--context", "cloud-z", "status"]);
    assert_eq!(
        unknown.one_line_error(),
        format!(
            "error: unknown context \"cloud-z\" in {} — known contexts: cloud-a, cloud-b, down, foreign-operator, no-root, root",
            config.display()
        )
    );

    let down = ctl(&config, &["--context", "down", "-o", "json", "status"]);
    let line = down.one_line_error();
    assert!(
        line.starts_with(&format!("error: cannot reach 127.0.0.1:{port}: ")),
        "{line}"
    );
    assert!(
        line.ends_with("— is the broker running? check `scripts/lab status`"),
        "{line}"
    );

    let wrong = ctl(&config, &["--context", "cloud-b", "status"]);
    let line = wrong.one_line_error();
    assert!(
        line.contains(&format!("expected {}", cloud_id("cloud-b"))),
        "{line}"
    );
    assert!(
        line.ends_with(&format!(
            "— the server did not prove {}: check ca and server of context \"cloud-b\"",
            cloud_id("cloud-b")
        )),
        "{line}"
    );

    // The broker refuses the handshake; depending on timing the client sees
    // the alert or a connection closed under its first call.
    let foreign = ctl(&config, &["--context", "foreign-operator", "status"]);
    let line = foreign.one_line_error();
    assert!(
        line.contains("operator certificate of context \"foreign-operator\"")
            || line.contains("check cert and key of context \"foreign-operator\""),
        "{line}"
    );
    broker
        .daemon
        .wait_for_log("not of cloud-a", Duration::from_secs(5));

    let no_root = ctl(&config, &["--context", "no-root", "members"]);
    let line = no_root.one_line_error();
    assert!(
        line.starts_with("error: context \"no-root\" has no root_endpoint — add root_endpoint"),
        "{line}"
    );

    // A broker that accepts connections but never answers.
    broker.daemon.pause();
    let silent = ctl(
        &config,
        &["--context", "cloud-a", "--timeout", "1", "status"],
    );
    broker.daemon.resume();
    assert_eq!(
        silent.one_line_error(),
        format!(
            "error: no answer from {} within 1s — raise --timeout or check `scripts/lab status`",
            broker.api
        )
    );
    assert_eq!(federated(&config, "cloud-a")["cloud_id"], "cloud-a");

    let contexts = ctl(&config, &["-o", "json", "contexts"]).json();
    assert_eq!(contexts["config"], config.display().to_string());
    assert_eq!(contexts["current_context"], "root");
    let list = contexts["contexts"].as_array().expect("contexts array");
    let names: Vec<&str> = list.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "cloud-a",
            "cloud-b",
            "down",
            "foreign-operator",
            "no-root",
            "root"
        ]
    );
    assert_eq!(
        list[0],
        serde_json::json!({
            "name": "cloud-a",
            "kind": "broker",
            "endpoint": broker.api,
            "server": cloud_id("cloud-a"),
            "root_endpoint": root.api,
            "enroll_endpoint": null,
            "current": false,
        })
    );
    assert_eq!(list[5]["kind"], "root");
    assert_eq!(list[5]["current"], true);
    assert_eq!(list[5]["enroll_endpoint"], root.enroll.as_str());
    let run = ctl(&config, &["contexts"]);
    let current: Vec<&str> = run.text().lines().filter(|l| l.starts_with('*')).collect();
    assert_eq!(current.len(), 1, "{}", run.stdout);
    assert!(
        current[0].contains(" root ") && current[0].contains(&root.api),
        "{}",
        run.stdout
    );
}
