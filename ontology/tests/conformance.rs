//! Conformance driven by data (in the style of oxigraph's testsuite): walks
//! `ontology/examples/*.ttl`. Every `cloud-*.ttl` must parse and conform to
//! the federation shapes; every `invalid-*.ttl` must fail as the
//! `# expect:` comment on its first line says: either
//! `# expect: syntax error at line N`, or
//! `# expect: <shape> <path> <constraint> (why)`, matched against the
//! violations the validator reports.

use std::path::{Path, PathBuf};

use intercloud_ontology::descriptor::{self, DescriptorError, DescriptorFormat};
use intercloud_ontology::shacl::Shapes;

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ttl"))
        .collect();
    files.sort();
    files
}

fn stem(path: &Path) -> &str {
    path.file_stem()
        .and_then(|s| s.to_str())
        .expect("UTF-8 file name")
}

/// What an invalid example's first line says must happen.
#[derive(Debug)]
enum Expectation {
    SyntaxErrorAtLine(u64),
    Violation {
        shape: String,
        path: String,
        constraint: String,
    },
}

fn expectation(path: &Path, text: &str) -> Result<Expectation, String> {
    let first = text.lines().next().unwrap_or_default();
    let expect = first
        .strip_prefix("# expect:")
        .ok_or_else(|| format!("{}: first line is not `# expect: ...`", path.display()))?
        .trim();
    if let Some(line) = expect.strip_prefix("syntax error at line ") {
        return line
            .trim()
            .parse()
            .map(Expectation::SyntaxErrorAtLine)
            .map_err(|e| format!("{}: bad line number: {e}", path.display()));
    }
    // `<shape> <path...> <constraint> (why)`: the path may contain spaces
    // (`[ sh:inversePath rdf:type ]`), the explanation follows " (".
    let head = expect.split(" (").next().unwrap_or(expect);
    let tokens: Vec<&str> = head.split_whitespace().collect();
    match tokens.as_slice() {
        [shape, path_tokens @ .., constraint] if !path_tokens.is_empty() => {
            Ok(Expectation::Violation {
                shape: shape.to_string(),
                path: path_tokens.join(" "),
                constraint: constraint.to_string(),
            })
        }
        _ => Err(format!(
            "{}: `# expect:` needs <shape> <path> <constraint>",
            path.display()
        )),
    }
}

fn check_valid(path: &Path, text: &str) -> Result<(), String> {
    let d = descriptor::parse(text.as_bytes(), DescriptorFormat::Turtle)
        .map_err(|e| format!("{}: does not parse: {e}", path.display()))?;
    if d.cloud_id != stem(path) {
        return Err(format!(
            "{}: cloud id {:?}, expected the file name",
            path.display(),
            d.cloud_id
        ));
    }
    let report = Shapes::federation().validate(&d.graph);
    if !report.conforms() {
        return Err(format!("{}: does not conform: {report}", path.display()));
    }
    Ok(())
}

fn check_invalid(path: &Path, text: &str) -> Result<(), String> {
    let parsed = descriptor::parse_graph(text.as_bytes(), DescriptorFormat::Turtle);
    match (expectation(path, text)?, parsed) {
        (Expectation::SyntaxErrorAtLine(expected), Err(DescriptorError::Syntax { line, .. })) => {
            if line == Some(expected) {
                Ok(())
            } else {
                Err(format!(
                    "{}: syntax error reported at line {line:?}, expected {expected}",
                    path.display()
                ))
            }
        }
        (Expectation::SyntaxErrorAtLine(_), other) => Err(format!(
            "{}: expected a syntax error, got {other:?}",
            path.display()
        )),
        (_, Err(e)) => Err(format!(
            "{}: well-formed example does not parse: {e}",
            path.display()
        )),
        (
            Expectation::Violation {
                shape,
                path: property_path,
                constraint,
            },
            Ok(graph),
        ) => {
            let report = Shapes::federation().validate(&graph);
            if std::env::var_os("CONFORMANCE_VERBOSE").is_some() {
                eprintln!("{}: {report}", path.display());
            }
            let found = report.violations().iter().any(|v| {
                v.shape == shape && v.path == property_path && v.constraint.as_str() == constraint
            });
            // Each example has one fault: anything reported elsewhere (another
            // shape or property) is a false positive of the validator.
            let elsewhere = report
                .violations()
                .iter()
                .any(|v| v.shape != shape || v.path != property_path);
            if found && !elsewhere {
                Ok(())
            } else {
                Err(format!(
                    "{}: expected a violation {shape} {property_path} {constraint} and no other fault, got {report}",
                    path.display()
                ))
            }
        }
    }
}

#[test]
fn examples_conform_or_fail_as_expected() {
    let files = examples();
    let (mut valid, mut invalid) = (0, 0);
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("example is UTF-8");
        let name = stem(path);
        let outcome = if name.starts_with("cloud-") {
            valid += 1;
            check_valid(path, &text)
        } else if name.starts_with("invalid-") {
            invalid += 1;
            check_invalid(path, &text)
        } else {
            Err(format!("{}: neither cloud-* nor invalid-*", path.display()))
        };
        if let Err(failure) = outcome {
            failures.push(failure);
        }
    }
    assert!(
        valid >= 3 && invalid >= 10,
        "{valid} valid, {invalid} invalid examples found"
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The two-clouds example is also refused by the descriptor parser, which
/// must know whose descriptor it is filing.
#[test]
fn two_clouds_example_is_refused_by_the_parser() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/invalid-two-clouds.ttl");
    let text = std::fs::read(&path).expect("read example");
    assert!(matches!(
        descriptor::parse(&text, DescriptorFormat::Turtle),
        Err(DescriptorError::SeveralClouds { count: 2 })
    ));
}

/// The syntax error's message names the column as well as the line.
#[test]
fn syntax_error_names_a_column_too() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/invalid-syntax.ttl");
    let text = std::fs::read(&path).expect("read example");
    match descriptor::parse(&text, DescriptorFormat::Turtle) {
        Err(
            e @ DescriptorError::Syntax {
                column: Some(_), ..
            },
        ) => {
            let message = e.to_string();
            assert!(message.contains("line 29, column"), "{message}");
        }
        other => panic!("expected a syntax error with a column, got {other:?}"),
    }
}
