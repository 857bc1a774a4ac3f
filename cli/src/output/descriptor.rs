//! The result of `describe`: a descriptor's identity and its validation report.

use intercloud_ontology::descriptor::{Descriptor, DescriptorFormat};
use intercloud_ontology::shacl::ValidationReport;
use serde::Serialize;
use time::OffsetDateTime;

use super::Render;

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViolationView {
    pub focus: String,
    pub shape: String,
    pub path: String,
    pub constraint: String,
    pub value: Option<String>,
    pub message: String,
}

/// `intercloudctl describe --file …`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DescriptorCheck {
    pub file: String,
    pub format: String,
    pub cloud_id: String,
    pub descriptor_version: u64,
    pub triples: usize,
    pub conforms: bool,
    pub violations: Vec<ViolationView>,
}

impl DescriptorCheck {
    /// The check of `descriptor`, read from `file`, against `report`.
    pub fn new(
        file: &str,
        format: DescriptorFormat,
        descriptor: &Descriptor,
        report: &ValidationReport,
    ) -> Self {
        Self {
            file: file.to_owned(),
            format: format.to_string(),
            cloud_id: descriptor.cloud_id.clone(),
            descriptor_version: descriptor.version,
            triples: descriptor.graph.len(),
            conforms: report.conforms(),
            violations: report
                .violations()
                .iter()
                .map(|v| ViolationView {
                    focus: v.focus.to_string(),
                    shape: v.shape.clone(),
                    path: v.path.clone(),
                    constraint: v.constraint.as_str().to_owned(),
                    value: v.value.as_ref().map(ToString::to_string),
                    message: v.message.clone(),
                })
                .collect(),
        }
    }
}

impl Render for DescriptorCheck {
    fn table(&self, _now: OffsetDateTime) -> String {
        let mut out = format!(
            "{}: cloud {} (descriptor version {}), {} triples, {}\n",
            self.file,
            self.cloud_id,
            self.descriptor_version,
            self.triples,
            if self.conforms { "valid" } else { "INVALID" }
        );
        for v in &self.violations {
            out.push_str(&format!(
                "  {} {} {}: {}",
                v.shape, v.path, v.constraint, v.message
            ));
            if let Some(value) = &v.value {
                out.push_str(&format!(" (value {value})"));
            }
            out.push_str(&format!(" — at {}\n", v.focus));
        }
        out
    }
}
