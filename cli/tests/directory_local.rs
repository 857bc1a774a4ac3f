//! The directory commands' local checks, which refuse bad input before any
//! network call (the contexts file here does not even exist): `publish` of
//! a descriptor that violates the shapes exits 4 with the violations,
//! `match` with a malformed constraint exits 1 naming the flag.

use std::path::{Path, PathBuf};
use std::process::Command;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ontology/examples")
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_intercloudctl"))
        .env("INTERCLOUDCTL_CONFIG", "/nonexistent/intercloudctl.toml")
        .args(args)
        .output()
        .expect("run intercloudctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn publish_of_an_invalid_descriptor_exits_4_without_a_server() {
    let file = examples().join("invalid-replication-zero.ttl");
    let file = file.to_str().expect("utf-8 path");
    let (code, out, err) = run(&["publish", "--file", file]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(out.contains("INVALID"), "{out}");
    assert!(
        out.ends_with("not published: fix the violations above, then publish again\n"),
        "{out}"
    );
    assert!(err.is_empty(), "{err}");
    let (code, out, _) = run(&["--output", "json", "publish", "--file", file]);
    assert_eq!(code, 4);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["conforms"], false);
}

#[test]
fn publish_of_a_valid_descriptor_goes_on_to_the_contexts_file() {
    let file = examples().join("cloud-a.ttl");
    let (code, out, err) = run(&["publish", "--file", file.to_str().expect("utf-8 path")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/intercloudctl.toml"), "{err}");
}

#[test]
fn match_with_a_bad_value_names_the_flag_before_any_call() {
    let (code, out, err) = run(&["match", "--kind", "storage", "--min-replication", "0"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty());
    assert_eq!(
        err,
        "error: invalid match request: --min-replication \"0\": must be between 1 and 10 — see `intercloudctl match --help`\n"
    );
    let (code, _, err) = run(&["match", "--kind", "storage", "--max-price", "EUR"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: invalid match request: --max-price \"EUR\": "),
        "{err}"
    );
}

#[test]
fn an_empty_query_is_refused_before_any_call() {
    let (code, _, err) = run(&["query", " "]);
    assert_eq!(code, 1);
    assert!(err.starts_with("error: the query is empty — "), "{err}");
}
