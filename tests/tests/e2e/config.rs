//! Bad configuration: the daemons exit with status 64 and name the key.

use std::process::Command;

use intercloud_tests::{bin, pki};

fn run(binary: &str, config_text: Option<&str>) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    if let Some(text) = config_text {
        std::fs::write(&path, text).expect("write config");
    }
    let out = Command::new(bin(binary))
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run daemon");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn root_config(extra_top: &str, api: &str) -> String {
    format!(
        "{extra_top}federation = \"intercloud.lab\"\ndata_dir = \"/tmp/unused\"\n[listen]\napi = \"{api}\"\nenroll = \"127.0.0.1:0\"\n[tls]\nca_cert = {:?}\nca_key = {:?}\ncert = {:?}\nkey = {:?}\n",
        pki("ca.crt").display().to_string(),
        pki("ca.key").display().to_string(),
        pki("root.crt").display().to_string(),
        pki("root.key").display().to_string(),
    )
}

fn broker_config(cloud: &str, extra_top: &str) -> String {
    format!(
        "{extra_top}cloud_id = \"{cloud}\"\nfederation = \"intercloud.lab\"\ndata_dir = \"/tmp/unused\"\n[listen]\napi = \"127.0.0.1:0\"\n[root]\napi = \"127.0.0.1:1\"\nenroll = \"127.0.0.1:2\"\n[tls]\nca_bundle = {:?}\n",
        pki("ca.crt").display().to_string(),
    )
}

fn assert_exit_64(binary: &str, text: Option<&str>, needle: &str) {
    let (code, stderr) = run(binary, text);
    assert_eq!(code, 64, "{binary} should exit 64; stderr: {stderr}");
    assert!(
        stderr.contains(needle),
        "{binary} stderr should name {needle:?}: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
}

#[test]
fn root_refuses_missing_unknown_and_bad_config() {
    assert_exit_64("intercloud-root", None, "not found");
    assert_exit_64(
        "intercloud-root",
        Some(&root_config("colour = \"blue\"\n", "127.0.0.1:0")),
        "colour",
    );
    assert_exit_64(
        "intercloud-root",
        Some(&root_config("", "not-an-address")),
        "listen.api",
    );
    let bad_domain =
        root_config("", "127.0.0.1:0").replace("\"intercloud.lab\"", "\"Not A Domain\"");
    assert_exit_64("intercloud-root", Some(&bad_domain), "federation");
    let bad_ttl = format!(
        "{}[enrollment]\ncert_ttl_seconds = 1\n",
        root_config("", "127.0.0.1:0")
    );
    assert_exit_64(
        "intercloud-root",
        Some(&bad_ttl),
        "enrollment.cert_ttl_seconds",
    );
}

#[test]
fn broker_refuses_missing_unknown_and_bad_config() {
    assert_exit_64("intercloud-broker", None, "not found");
    assert_exit_64(
        "intercloud-broker",
        Some(&broker_config("cloud-a", "shape = 1\n")),
        "shape",
    );
    assert_exit_64(
        "intercloud-broker",
        Some(&broker_config("Cloud A", "")),
        "cloud_id",
    );
    let bad_root = broker_config("cloud-a", "").replace("127.0.0.1:1", "nowhere");
    assert_exit_64("intercloud-broker", Some(&bad_root), "root.api");
    let bad_timer = format!(
        "{}[timers]\nheartbeat_seconds = \"often\"\n",
        broker_config("cloud-a", "")
    );
    assert_exit_64(
        "intercloud-broker",
        Some(&bad_timer),
        "timers.heartbeat_seconds",
    );
}

#[test]
fn broker_refuses_a_bad_xmpp_section() {
    let xmpp = |jid: &str, extra: &str| {
        format!(
            "{}[xmpp]\nserver = \"127.0.0.1:5222\"\njid = \"{jid}\"\npassword = \"p\"\nroom = \"federation@conference.root.intercloud.lab\"\n{extra}",
            broker_config("cloud-a", "")
        )
    };
    assert_exit_64(
        "intercloud-broker",
        Some(&xmpp("broker@cloud-b.intercloud.lab", "")),
        "xmpp.jid",
    );
    assert_exit_64(
        "intercloud-broker",
        Some(&xmpp(
            "broker@cloud-a.intercloud.lab",
            "lease_seconds = 5\nannounce_seconds = 5\n",
        )),
        "xmpp.announce_seconds",
    );
    let bad_server = xmpp("broker@cloud-a.intercloud.lab", "").replace("127.0.0.1:5222", "nowhere");
    assert_exit_64("intercloud-broker", Some(&bad_server), "xmpp.server");
}

#[test]
fn environment_overrides_are_checked_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, broker_config("cloud-a", "")).expect("write");
    let out = Command::new(bin("intercloud-broker"))
        .arg("--config")
        .arg(&path)
        .env("INTERCLOUD_BROKER_LISTEN__API", "garbage")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("listen.api"), "{stderr}");
}
