//! The local checks a descriptor passes before it is sent to the root: it
//! parses in its format (within the size limit) and conforms to the
//! federation's SHACL shapes. The root runs the same checks; running them
//! here first keeps an invalid file from costing a call and tells the
//! operator where the file is wrong. Whether the descriptor names this cloud
//! is decided by [`super::state`].

use intercloud_ontology::descriptor::{self, DescriptorFormat};
use intercloud_ontology::shacl::Shapes;

use super::state::CheckedDescriptor;

/// How many violations a message lists before "and N more".
const VIOLATIONS_SHOWN: usize = 3;

/// Parses and validates `bytes`; on failure, says why in one line: a syntax
/// error with its line and column, or the first violations.
pub fn inspect(bytes: &[u8], format: DescriptorFormat) -> Result<CheckedDescriptor, String> {
    let parsed = descriptor::parse(bytes, format).map_err(|e| e.to_string())?;
    let report = Shapes::federation().validate(&parsed.graph);
    if !report.conforms() {
        let violations = report.violations();
        let mut message = format!(
            "{} violation(s) of the federation shapes: {}",
            violations.len(),
            violations
                .iter()
                .take(VIOLATIONS_SHOWN)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        );
        if violations.len() > VIOLATIONS_SHOWN {
            message.push_str(&format!(
                "; and {} more",
                violations.len() - VIOLATIONS_SHOWN
            ));
        }
        return Err(message);
    }
    Ok(CheckedDescriptor {
        cloud_id: parsed.cloud_id,
        version: parsed.version,
        triples: u64::try_from(parsed.graph.len()).unwrap_or(u64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOUD_A: &str = include_str!("../../../ontology/examples/cloud-a.ttl");
    const INVALID_SYNTAX: &str = include_str!("../../../ontology/examples/invalid-syntax.ttl");
    const INVALID_AVAILABILITY: &str =
        include_str!("../../../ontology/examples/invalid-availability.ttl");

    #[test]
    fn a_valid_descriptor_says_who_it_is() {
        let checked = inspect(CLOUD_A.as_bytes(), DescriptorFormat::Turtle).expect("valid");
        assert_eq!(checked.cloud_id, "cloud-a");
        assert_eq!(checked.version, 1);
        assert!(checked.triples > 50, "{}", checked.triples);
    }

    #[test]
    fn a_syntax_error_names_line_and_column() {
        let error =
            inspect(INVALID_SYNTAX.as_bytes(), DescriptorFormat::Turtle).expect_err("syntax error");
        // The example's own header says where the error is.
        assert!(error.contains("syntax error at line 29, column"), "{error}");
    }

    #[test]
    fn violations_are_listed() {
        let error = inspect(INVALID_AVAILABILITY.as_bytes(), DescriptorFormat::Turtle)
            .expect_err("violates the shapes");
        assert!(
            error.contains("violation(s) of the federation shapes"),
            "{error}"
        );
        assert!(error.contains("availability"), "{error}");
        assert!(!error.contains('\n'), "one line: {error}");
    }

    #[test]
    fn turtle_is_not_read_as_n_triples() {
        assert!(inspect(CLOUD_A.as_bytes(), DescriptorFormat::NTriples).is_err());
    }
}
