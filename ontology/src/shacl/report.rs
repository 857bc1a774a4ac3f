//! What validation found.

use oxigraph::model::Term;

use super::ConstraintKind;
use super::compact_term;

/// One constraint violated by one focus node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The node that was validated (e.g. the storage service).
    pub focus: Term,
    /// The node shape, compacted (e.g. `ics:ServiceShape`).
    pub shape: String,
    /// The property path, as Turtle text (e.g. `ic:locatedIn` or
    /// `[ sh:inversePath rdf:type ]`).
    pub path: String,
    /// The violated constraint.
    pub constraint: ConstraintKind,
    /// The offending value; `None` for `sh:minCount` / `sh:maxCount`, where
    /// the set of values as a whole is at fault.
    pub value: Option<Term>,
    /// The property shape's `sh:message` (or, without one, a generated text).
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            compact_term(&self.focus),
            self.shape,
            self.path,
            self.constraint
        )?;
        if let Some(value) = &self.value {
            write!(f, " (value {})", compact_term(value))?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The outcome of validating one data graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationReport {
    violations: Vec<Violation>,
}

impl ValidationReport {
    pub(super) fn new(violations: Vec<Violation>) -> Self {
        Self { violations }
    }

    /// True when no constraint is violated.
    pub fn conforms(&self) -> bool {
        self.violations.is_empty()
    }

    /// Every violation, in shape order.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }
}

impl std::fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.conforms() {
            return f.write_str("conforms");
        }
        writeln!(f, "{} violation(s):", self.violations.len())?;
        for v in &self.violations {
            writeln!(f, "- {v}")?;
        }
        Ok(())
    }
}
