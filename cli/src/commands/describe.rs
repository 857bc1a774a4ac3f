//! `describe --file x.ttl`: parse a service descriptor and validate it
//! against the federation's SHACL shapes, locally. `publish` reads and
//! checks its file with the same functions before sending it.

use std::io::Read as _;
use std::path::Path;

use intercloud_ontology::descriptor::{Descriptor, DescriptorFormat, MAX_DESCRIPTOR_BYTES, parse};
use intercloud_ontology::shacl::Shapes;

use super::{EXIT_INVALID, Globals, Outcome};
use crate::args::DescribeArgs;
use crate::output::DescriptorCheck;
use crate::report::hinted;

/// Validates the file; exit 0 when it conforms, [`EXIT_INVALID`] when it
/// violates the shapes (the report says how).
pub fn run(globals: &Globals, args: &DescribeArgs) -> anyhow::Result<Outcome> {
    let format = descriptor_format(&args.file, args.format.as_deref())?;
    let bytes = read_descriptor(&args.file)?;
    let (_, check) = check_descriptor(&args.file, format, &bytes, "describe")?;
    let text = globals.render(&check)?;
    Ok(Outcome {
        text,
        exit: if check.conforms { 0 } else { EXIT_INVALID },
    })
}

/// The format named by `--format` (a name, an extension or a media type),
/// or else the one the file's extension tells.
pub fn descriptor_format(path: &Path, name: Option<&str>) -> anyhow::Result<DescriptorFormat> {
    match name {
        Some(name) => DescriptorFormat::from_media_type(name)
            .or_else(|| DescriptorFormat::from_extension(name))
            .or(match name.to_ascii_lowercase().as_str() {
                "turtle" => Some(DescriptorFormat::Turtle),
                "ntriples" | "n-triples" => Some(DescriptorFormat::NTriples),
                "jsonld" | "json-ld" => Some(DescriptorFormat::JsonLd),
                _ => None,
            })
            .ok_or_else(|| {
                hinted(
                    format!("unknown descriptor format {name:?}"),
                    "use turtle, ntriples or jsonld",
                )
            }),
        None => path
            .extension()
            .and_then(|e| e.to_str())
            .and_then(DescriptorFormat::from_extension)
            .ok_or_else(|| {
                hinted(
                    format!("cannot tell the format of {} from its name", path.display()),
                    "pass --format turtle|ntriples|jsonld",
                )
            }),
    }
}

/// The file's bytes, refused when larger than [`MAX_DESCRIPTOR_BYTES`]
/// before they are read (and, should the file grow meanwhile, after
/// reading one byte more than the limit).
pub fn read_descriptor(path: &Path) -> anyhow::Result<Vec<u8>> {
    let cannot_read = |e: std::io::Error| {
        hinted(
            format!("cannot read {}: {e}", path.display()),
            "check the path",
        )
    };
    let too_large = |size: u64| {
        hinted(
            format!(
                "{} is {size} bytes, more than the {MAX_DESCRIPTOR_BYTES} a descriptor may have",
                path.display()
            ),
            "split the descriptor or leave out what peers do not need",
        )
    };
    let file = std::fs::File::open(path).map_err(cannot_read)?;
    let size = file.metadata().map_err(cannot_read)?.len();
    if size > MAX_DESCRIPTOR_BYTES as u64 {
        return Err(too_large(size));
    }
    let limit = MAX_DESCRIPTOR_BYTES as u64 + 1;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(cannot_read)?;
    if bytes.len() > MAX_DESCRIPTOR_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Parses `bytes` and validates them against the federation's shapes;
/// `command` names the command to run again once the file is fixed.
pub fn check_descriptor(
    path: &Path,
    format: DescriptorFormat,
    bytes: &[u8],
    command: &str,
) -> anyhow::Result<(Descriptor, DescriptorCheck)> {
    let descriptor = parse(bytes, format).map_err(|e| {
        hinted(
            format!("{}: {e}", path.display()),
            format!("fix the descriptor and run {command} again"),
        )
    })?;
    let report = Shapes::federation().validate(&descriptor.graph);
    let check = DescriptorCheck::new(&path.display().to_string(), format, &descriptor, &report);
    Ok((descriptor, check))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::path::PathBuf;

    use crate::report::line;

    use super::*;

    fn example(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../ontology/examples")
            .join(name)
    }

    #[test]
    fn the_format_comes_from_the_flag_or_the_extension() {
        let ttl = Path::new("x.ttl");
        assert_eq!(
            descriptor_format(ttl, None).expect("ttl"),
            DescriptorFormat::Turtle
        );
        assert_eq!(
            descriptor_format(Path::new("x.nt"), None).expect("nt"),
            DescriptorFormat::NTriples
        );
        assert_eq!(
            descriptor_format(Path::new("x.jsonld"), None).expect("jsonld"),
            DescriptorFormat::JsonLd
        );
        for (name, format) in [
            ("turtle", DescriptorFormat::Turtle),
            ("N-Triples", DescriptorFormat::NTriples),
            ("jsonld", DescriptorFormat::JsonLd),
            ("application/ld+json", DescriptorFormat::JsonLd),
            ("nt", DescriptorFormat::NTriples),
        ] {
            assert_eq!(descriptor_format(ttl, Some(name)).expect(name), format);
        }
        let error = line(&descriptor_format(Path::new("x.md"), None).expect_err("txt"));
        assert_eq!(
            error,
            "error: cannot tell the format of x.md from its name — pass --format turtle|ntriples|jsonld"
        );
        let error = line(&descriptor_format(ttl, Some("rdfxml")).expect_err("rdfxml"));
        assert_eq!(
            error,
            "error: unknown descriptor format \"rdfxml\" — use turtle, ntriples or jsonld"
        );
    }

    #[test]
    fn a_file_over_the_limit_is_refused_with_its_size() {
        let mut file = tempfile::NamedTempFile::new().expect("temp");
        file.write_all(&vec![b'#'; MAX_DESCRIPTOR_BYTES + 1])
            .expect("write");
        let error = line(&read_descriptor(file.path()).expect_err("too large"));
        assert!(
            error.contains(&format!(
                "is {} bytes, more than the {MAX_DESCRIPTOR_BYTES} a descriptor may have",
                MAX_DESCRIPTOR_BYTES + 1
            )),
            "{error}"
        );
        let error = line(&read_descriptor(Path::new("/nonexistent/x.ttl")).expect_err("missing"));
        assert!(
            error.starts_with("error: cannot read /nonexistent/x.ttl: "),
            "{error}"
        );
        assert!(error.ends_with(" — check the path"), "{error}");
    }

    #[test]
    fn examples_check_as_valid_or_invalid() {
        let path = example("cloud-a.ttl");
        let bytes = read_descriptor(&path).expect("read");
        let (descriptor, check) =
            check_descriptor(&path, DescriptorFormat::Turtle, &bytes, "publish").expect("parse");
        assert_eq!(descriptor.cloud_id, "cloud-a");
        assert!(check.conforms, "{check:?}");
        let path = example("invalid-replication-zero.ttl");
        let bytes = read_descriptor(&path).expect("read");
        let (_, check) =
            check_descriptor(&path, DescriptorFormat::Turtle, &bytes, "publish").expect("parse");
        assert!(!check.conforms);
        let path = example("invalid-syntax.ttl");
        let bytes = read_descriptor(&path).expect("read");
        let error = line(
            &check_descriptor(&path, DescriptorFormat::Turtle, &bytes, "publish")
                .expect_err("syntax"),
        );
        assert!(
            error.ends_with(" — fix the descriptor and run publish again"),
            "{error}"
        );
    }
}
