//! `describe --file x.ttl`: parse a service descriptor and validate it
//! against the federation's SHACL shapes, locally.

use intercloud_ontology::descriptor::{DescriptorFormat, MAX_DESCRIPTOR_BYTES, parse};
use intercloud_ontology::shacl::Shapes;

use super::{EXIT_INVALID, Globals, Outcome};
use crate::args::DescribeArgs;
use crate::output::DescriptorCheck;
use crate::report::hinted;

/// Validates the file; exit 0 when it conforms, [`EXIT_INVALID`] when it
/// violates the shapes (the report says how).
pub fn run(globals: &Globals, args: &DescribeArgs) -> anyhow::Result<Outcome> {
    let path = &args.file;
    let format = match &args.format {
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
            })?,
        None => path
            .extension()
            .and_then(|e| e.to_str())
            .and_then(DescriptorFormat::from_extension)
            .ok_or_else(|| {
                hinted(
                    format!("cannot tell the format of {} from its name", path.display()),
                    "pass --format turtle|ntriples|jsonld",
                )
            })?,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| {
            hinted(
                format!("cannot read {}: {e}", path.display()),
                "check the path",
            )
        })?
        .len();
    if size > MAX_DESCRIPTOR_BYTES as u64 {
        return Err(hinted(
            format!(
                "{} is {size} bytes, more than the {MAX_DESCRIPTOR_BYTES} a descriptor may have",
                path.display()
            ),
            "split the descriptor or leave out what peers do not need",
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        hinted(
            format!("cannot read {}: {e}", path.display()),
            "check the path",
        )
    })?;
    let descriptor = parse(&bytes, format).map_err(|e| {
        hinted(
            format!("{}: {e}", path.display()),
            "fix the descriptor and run describe again",
        )
    })?;
    let report = Shapes::federation().validate(&descriptor.graph);
    let check = DescriptorCheck::new(&path.display().to_string(), format, &descriptor, &report);
    let text = globals.render(&check)?;
    Ok(Outcome {
        text,
        exit: if check.conforms { 0 } else { EXIT_INVALID },
    })
}
