//! The ontology, the shapes and the example descriptors parse with a
//! third-party RDF parser: `rapper` from the Debian package raptor2-utils.
//! `invalid-syntax.ttl` must fail, at the line its `# expect:` comment names.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PACKAGE: &str = "raptor2-utils";

fn ontology_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `rapper -i turtle -c FILE` (count mode). Panics, naming the Debian
/// package, when `rapper` is not installed: this test never skips.
fn rapper_count(file: &Path) -> Output {
    match Command::new("rapper")
        .args(["-i", "turtle", "-c"])
        .arg(file)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`rapper` not found: install the Debian package {PACKAGE} \
             (apt-get install -y --no-install-recommends {PACKAGE}; scripts/test does it)"
        ),
        Err(e) => panic!("could not run `rapper` (Debian package {PACKAGE}): {e}"),
    }
}

/// The N of rapper's "Parsing returned N triples" line on stderr.
fn triple_count(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|line| {
        let rest = line.split("returned ").nth(1)?;
        rest.strip_suffix(" triples")?.trim().parse().ok()
    })
}

fn example_files() -> Vec<PathBuf> {
    let dir = ontology_dir().join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "ttl"))
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> &str {
    path.file_name()
        .and_then(|n| n.to_str())
        .expect("UTF-8 file name")
}

#[test]
fn ontology_shapes_and_examples_parse_with_rapper() {
    let dir = ontology_dir();
    let mut files = vec![dir.join("intercloud.ttl"), dir.join("shapes.ttl")];
    files.extend(
        example_files()
            .into_iter()
            .filter(|p| file_name(p) != "invalid-syntax.ttl"),
    );
    for name in ["cloud-a.ttl", "cloud-b.ttl", "cloud-c.ttl"] {
        assert!(
            files.iter().any(|p| file_name(p) == name),
            "examples/{name} is missing"
        );
    }
    for file in &files {
        let out = rapper_count(file);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "rapper failed on {} ({}):\n{stderr}",
            file.display(),
            out.status
        );
        assert!(
            !stderr.contains("Error") && !stderr.contains("Warning"),
            "rapper reported problems in {}:\n{stderr}",
            file.display()
        );
        let count = triple_count(&stderr).unwrap_or_else(|| {
            panic!(
                "no \"returned N triples\" in rapper's output for {}:\n{stderr}",
                file.display()
            )
        });
        assert!(count > 0, "{} has no triples", file.display());
        eprintln!("{}: {count} triples", file_name(file));
    }
}

#[test]
fn every_invalid_example_states_its_expected_error() {
    let invalid: Vec<PathBuf> = example_files()
        .into_iter()
        .filter(|p| file_name(p).starts_with("invalid-"))
        .collect();
    assert!(invalid.len() >= 8, "too few invalid examples: {invalid:?}");
    for file in &invalid {
        let text = std::fs::read_to_string(file).expect("read example");
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("# expect: ") && first.len() > "# expect: ".len(),
            "{} must start with `# expect: <what is violated>`, got {first:?}",
            file.display()
        );
    }
}

#[test]
fn rapper_rejects_the_syntax_error_at_the_expected_line() {
    let file = ontology_dir().join("examples").join("invalid-syntax.ttl");
    let text = std::fs::read_to_string(&file).expect("read invalid-syntax.ttl");
    let expected_line: u32 = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# expect: syntax error at line "))
        .and_then(|n| n.trim().parse().ok())
        .expect("first line: `# expect: syntax error at line N`");

    let out = rapper_count(&file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "rapper accepted invalid-syntax.ttl:\n{stderr}"
    );
    // rapper: Error - URI file:///…/invalid-syntax.ttl:29 - syntax error at '"'
    let needle = format!("invalid-syntax.ttl:{expected_line} - ");
    assert!(
        stderr.contains("Error") && stderr.contains(&needle),
        "expected rapper's error at line {expected_line}, got:\n{stderr}"
    );
}
