//! `intercloudctl describe` on the committed example descriptors: valid
//! ones exit 0, each invalid one exits 4 naming the violation its first line
//! expects, a syntax error exits 1 with one line giving the line number.

use std::path::{Path, PathBuf};
use std::process::Command;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ontology/examples")
}

fn describe(file: &Path, json: bool) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_intercloudctl"));
    if json {
        command.args(["--output", "json"]);
    }
    let out = command
        .arg("describe")
        .arg("--file")
        .arg(file)
        .output()
        .expect("run intercloudctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn valid_examples_pass() {
    for cloud in ["cloud-a", "cloud-b", "cloud-c"] {
        let (code, out, err) = describe(&examples().join(format!("{cloud}.ttl")), true);
        assert_eq!(code, 0, "{cloud}: {err}");
        let json: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert_eq!(json["conforms"], true, "{json}");
        assert_eq!(json["cloud_id"], cloud);
        assert!(json["violations"].as_array().is_some_and(Vec::is_empty));
    }
}

#[test]
fn invalid_examples_name_the_expected_violation() {
    let mut seen = 0;
    for entry in std::fs::read_dir(examples()).expect("examples") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if !name.starts_with("invalid-") || !name.ends_with(".ttl") || name == "invalid-syntax.ttl"
        {
            continue;
        }
        let first = std::fs::read_to_string(&path)
            .expect("read")
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let expect = first
            .strip_prefix("# expect: ")
            .unwrap_or_else(|| panic!("{name} lacks # expect:"));
        // "<shape> <path> <constraint> (…)": the shape and the constraint must be reported.
        let words: Vec<&str> = expect.split_whitespace().collect();
        let (shape, constraint) = (
            words[0],
            words
                .iter()
                .find(|w| w.starts_with("sh:"))
                .copied()
                .unwrap_or(words[0]),
        );
        let (code, out, err) = describe(&path, false);
        if code == 1 {
            // Refused before validation (e.g. two clouds in one descriptor): one line.
            assert_eq!(err.trim().lines().count(), 1, "{name}: {err}");
            seen += 1;
            continue;
        }
        assert_eq!(code, 4, "{name}: {out}{err}");
        assert!(
            out.contains("INVALID") && out.contains(shape) && out.contains(constraint),
            "{name}: expected {expect}, got:\n{out}"
        );
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} invalid examples checked");
}

#[test]
fn a_syntax_error_is_one_line_with_its_position() {
    let (code, out, err) = describe(&examples().join("invalid-syntax.ttl"), false);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("line 29"), "{err}");
}

#[test]
fn an_unknown_extension_asks_for_a_format() {
    let dir = std::env::temp_dir().join(format!("describe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("descriptor.xyz");
    std::fs::write(&file, "x").expect("write");
    let (code, _, err) = describe(&file, false);
    assert_eq!(code, 1);
    assert!(err.contains("--format"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
