//! SHACL validation of descriptors against `ontology/shapes.ttl`.
//!
//! Only the SHACL Core subset the shapes use is implemented, directly over an
//! oxigraph [`Graph`] (no SPARQL engine): targets `sh:targetClass` and
//! `sh:targetNode`; paths that are a predicate or `[ sh:inversePath p ]`;
//! constraints `sh:minCount`, `sh:maxCount`, `sh:datatype`, `sh:class`
//! (explicit `rdf:type` only, no subclass reasoning), `sh:in`, `sh:pattern`,
//! `sh:minInclusive`, `sh:maxInclusive`, `sh:nodeKind`; `sh:message` and
//! `sh:name` for reporting. A shapes graph that uses any other `sh:` term is
//! refused when it is loaded ([`ShapesError::Unsupported`]), so a shape can
//! never be silently skipped.
//!
//! - `load.rs`: shapes graph → [`Shapes`].
//! - `constraint.rs`: one small function per constraint kind.
//! - `report.rs`: [`Violation`] and [`ValidationReport`].

mod constraint;
mod load;
mod report;

use std::collections::HashSet;
use std::sync::OnceLock;

use oxigraph::io::{RdfFormat, RdfParser};
use oxigraph::model::vocab::{rdf, xsd};
use oxigraph::model::{Graph, Literal, NamedNode, NamedOrBlankNode, NamedOrBlankNodeRef, Term};

pub use constraint::ConstraintKind;
pub use report::{ValidationReport, Violation};

use constraint::Constraint;

/// The shapes every federation descriptor must satisfy.
const FEDERATION_SHAPES: &str = include_str!("../../shapes.ttl");

/// Namespace of the SHACL vocabulary.
pub(crate) const SH: &str = "http://www.w3.org/ns/shacl#";

/// A loaded shapes graph, ready to validate data graphs.
#[derive(Debug, Clone)]
pub struct Shapes {
    node_shapes: Vec<NodeShape>,
}

/// Why a shapes graph could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShapesError {
    /// The shapes graph is not well-formed Turtle.
    #[error("shapes graph is not valid Turtle: {0}")]
    Syntax(String),
    /// The shapes graph uses a SHACL feature this validator does not
    /// implement; validating without it would silently accept bad data.
    #[error("{node} uses {feature}, which this validator does not implement")]
    Unsupported {
        /// The shape (or node) using the feature.
        node: String,
        /// The `sh:` term, e.g. `sh:or`.
        feature: String,
    },
    /// A supported feature is used with a value of the wrong form.
    #[error("{node}: {problem}")]
    Malformed {
        /// The shape (or node) concerned.
        node: String,
        /// What is wrong.
        problem: String,
    },
}

#[derive(Debug, Clone)]
struct NodeShape {
    id: NamedOrBlankNode,
    targets: Vec<Target>,
    properties: Vec<PropertyShape>,
}

#[derive(Debug, Clone)]
enum Target {
    /// `sh:targetClass`: every node with this explicit `rdf:type`.
    Class(NamedNode),
    /// `sh:targetNode`: this node, whether or not it appears in the data.
    Node(Term),
}

#[derive(Debug, Clone)]
struct PropertyShape {
    path: Path,
    name: Option<String>,
    message: Option<String>,
    constraints: Vec<Constraint>,
}

/// A property path: the two forms the shapes use.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Path {
    /// `p`: the objects of `focus p ?`.
    Predicate(NamedNode),
    /// `[ sh:inversePath p ]`: the subjects of `? p focus`.
    Inverse(NamedNode),
}

impl Path {
    fn values(&self, data: &Graph, focus: &Term) -> Vec<Term> {
        match self {
            Self::Predicate(p) => match as_subject(focus) {
                Some(subject) => data
                    .objects_for_subject_predicate(subject, p)
                    .map(|o| o.into_owned())
                    .collect(),
                None => Vec::new(),
            },
            Self::Inverse(p) => data
                .subjects_for_predicate_object(p, focus)
                .map(|s| Term::from(s.into_owned()))
                .collect(),
        }
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Predicate(p) => f.write_str(&compact(p.as_str())),
            Self::Inverse(p) => write!(f, "[ sh:inversePath {} ]", compact(p.as_str())),
        }
    }
}

impl Shapes {
    /// The federation's shapes (`ontology/shapes.ttl`, compiled in), loaded
    /// once.
    pub fn federation() -> &'static Shapes {
        static SHAPES: OnceLock<Shapes> = OnceLock::new();
        SHAPES.get_or_init(|| {
            // The file is compiled in and loaded by this crate's tests, so a
            // failure here is a build defect, not bad input.
            #[allow(clippy::expect_used)]
            Shapes::from_turtle(FEDERATION_SHAPES).expect("ontology/shapes.ttl loads")
        })
    }

    /// Loads a shapes graph written in Turtle.
    pub fn from_turtle(turtle: &str) -> Result<Self, ShapesError> {
        let mut graph = Graph::new();
        for triple in RdfParser::from_format(RdfFormat::Turtle).for_slice(turtle) {
            let quad = triple.map_err(|e| ShapesError::Syntax(e.to_string()))?;
            graph.insert(quad.as_ref());
        }
        Self::from_graph(&graph)
    }

    /// Loads a shapes graph, refusing any SHACL feature not implemented here.
    pub fn from_graph(shapes: &Graph) -> Result<Self, ShapesError> {
        Ok(Self {
            node_shapes: load::node_shapes(shapes)?,
        })
    }

    /// Validates `data` (the descriptor alone) against these shapes.
    pub fn validate(&self, data: &Graph) -> ValidationReport {
        let mut violations = Vec::new();
        for shape in &self.node_shapes {
            for focus in focus_nodes(data, &shape.targets) {
                for property in &shape.properties {
                    let values = property.path.values(data, &focus);
                    for constraint in &property.constraints {
                        for value in constraint.offending_values(data, &values) {
                            violations.push(Violation {
                                focus: focus.clone(),
                                shape: compact_node(&shape.id),
                                path: property.path.to_string(),
                                constraint: constraint.kind(),
                                value,
                                message: property.message.clone().unwrap_or_else(|| {
                                    format!(
                                        "{} violates {}",
                                        property.name.as_deref().unwrap_or("a value"),
                                        constraint.kind()
                                    )
                                }),
                            });
                        }
                    }
                }
            }
        }
        ValidationReport::new(violations)
    }
}

fn focus_nodes(data: &Graph, targets: &[Target]) -> Vec<Term> {
    let mut seen = HashSet::new();
    let mut nodes = Vec::new();
    for target in targets {
        let found: Vec<Term> = match target {
            Target::Class(class) => data
                .subjects_for_predicate_object(rdf::TYPE, class)
                .map(|s| Term::from(s.into_owned()))
                .collect(),
            Target::Node(node) => vec![node.clone()],
        };
        for node in found {
            if seen.insert(node.clone()) {
                nodes.push(node);
            }
        }
    }
    nodes
}

/// The term as a triple subject; `None` for a literal.
pub(crate) fn as_subject(term: &Term) -> Option<NamedOrBlankNodeRef<'_>> {
    match term {
        Term::NamedNode(n) => Some(n.into()),
        Term::BlankNode(b) => Some(b.into()),
        _ => None,
    }
}

const PREFIXES: [(&str, &str); 6] = [
    ("ic:", crate::ONTOLOGY_NS),
    ("ics:", crate::SHAPES_NS),
    ("sh:", SH),
    ("rdf:", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
    ("rdfs:", "http://www.w3.org/2000/01/rdf-schema#"),
    ("xsd:", "http://www.w3.org/2001/XMLSchema#"),
];

/// `ic:cloudId` for a known namespace, `<iri>` otherwise.
pub(crate) fn compact(iri: &str) -> String {
    for (prefix, ns) in PREFIXES {
        if let Some(local) = iri.strip_prefix(ns)
            && !local.is_empty()
            && local.chars().all(|c| c.is_alphanumeric() || c == '_')
        {
            return format!("{prefix}{local}");
        }
    }
    format!("<{iri}>")
}

fn compact_node(node: &NamedOrBlankNode) -> String {
    match node {
        NamedOrBlankNode::NamedNode(n) => compact(n.as_str()),
        other => other.to_string(),
    }
}

/// A term as text, with IRIs compacted.
pub(crate) fn compact_term(term: &Term) -> String {
    match term {
        Term::NamedNode(n) => compact(n.as_str()),
        Term::Literal(l) if l.language().is_none() && l.datatype() != xsd::STRING => format!(
            "{}^^{}",
            Literal::new_simple_literal(l.value()),
            compact(l.datatype().as_str())
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIXES_TTL: &str = "@prefix sh: <http://www.w3.org/ns/shacl#> .\n\
        @prefix ic: <https://w3id.org/intercloud/ontology#> .\n\
        @prefix ics: <https://w3id.org/intercloud/shapes#> .\n\
        @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n";

    fn load(body: &str) -> Result<Shapes, ShapesError> {
        Shapes::from_turtle(&format!("{PREFIXES_TTL}{body}"))
    }

    fn data(body: &str) -> Graph {
        let mut graph = Graph::new();
        for quad in RdfParser::from_format(RdfFormat::Turtle)
            .for_slice(format!("{PREFIXES_TTL}@prefix : <urn:x:> .\n{body}").as_bytes())
        {
            graph.insert(quad.expect("test data parses").as_ref());
        }
        graph
    }

    #[test]
    fn federation_shapes_load() {
        let shapes = Shapes::federation();
        assert!(shapes.node_shapes.len() >= 15);
        assert!(shapes.node_shapes.iter().all(|s| !s.targets.is_empty()));
    }

    #[test]
    fn unknown_constraint_is_refused_at_load() {
        let err = load("ics:S a sh:NodeShape ; sh:targetClass ic:Cloud ; sh:property [ sh:path ic:cloudId ; sh:minLength 3 ] .")
            .expect_err("sh:minLength is not implemented");
        assert!(
            matches!(&err, ShapesError::Unsupported { feature, .. } if feature == "sh:minLength"),
            "{err}"
        );
    }

    #[test]
    fn unknown_target_and_node_level_constraint_are_refused() {
        for body in [
            "ics:S a sh:NodeShape ; sh:targetSubjectsOf ic:offers .",
            "ics:S a sh:NodeShape ; sh:targetClass ic:Cloud ; sh:closed true .",
            "ics:S a sh:NodeShape ; sh:targetClass ic:Cloud ; sh:property [ sh:path ic:x ; sh:flags \"i\" ; sh:pattern \"a\" ] .",
            "ics:S a sh:NodeShape ; sh:targetClass ic:Cloud ; sh:property [ sh:path ( ic:x ic:y ) ] .",
            "ics:S a sh:NodeShape ; sh:targetClass ic:Cloud ; sh:property [ sh:path [ sh:zeroOrMorePath ic:x ] ] .",
            // A shape that is not declared a sh:NodeShape would otherwise be skipped.
            "ics:S sh:targetClass ic:Cloud ; sh:property [ sh:path ic:x ; sh:minCount 1 ] .",
        ] {
            assert!(load(body).is_err(), "accepted: {body}");
        }
    }

    #[test]
    fn malformed_values_are_refused() {
        for body in [
            "ics:S a sh:NodeShape ; sh:targetClass ic:Cloud ; sh:property [ sh:minCount 1 ] .",
            "ics:S a sh:NodeShape ; sh:targetClass ic:Cloud ; sh:property [ sh:path ic:x ; sh:minCount \"one\" ] .",
            "ics:S a sh:NodeShape ; sh:targetClass ic:Cloud ; sh:property [ sh:path ic:x ; sh:pattern \"(\" ] .",
            "ics:S a sh:NodeShape ; sh:targetClass ic:Cloud ; sh:property [ sh:path ic:x ; sh:nodeKind sh:Thing ] .",
            "ics:S a sh:NodeShape ; sh:targetClass ic:Cloud ; sh:property [ sh:path ic:x ; sh:minInclusive \"a\" ] .",
            "ics:S a sh:NodeShape ; sh:targetClass \"ic:Cloud\" .",
        ] {
            assert!(
                matches!(load(body), Err(ShapesError::Malformed { .. })),
                "accepted: {body}"
            );
        }
    }

    #[test]
    fn target_class_uses_explicit_types_only() {
        let shapes = load(
            "ics:S a sh:NodeShape ; sh:targetClass ic:Service ; \
             sh:property [ sh:path ic:locatedIn ; sh:minCount 1 ; sh:message \"m\" ] .",
        )
        .expect("loads");
        // ic:StorageService is a subclass of ic:Service, but there is no reasoning.
        assert!(
            shapes
                .validate(&data(":s a ic:StorageService ."))
                .conforms()
        );
        let report = shapes.validate(&data(":s a ic:Service ."));
        assert_eq!(report.violations().len(), 1);
        let v = &report.violations()[0];
        assert_eq!(v.shape, "ics:S");
        assert_eq!(v.path, "ic:locatedIn");
        assert_eq!(v.constraint, ConstraintKind::MinCount);
        assert_eq!(v.message, "m");
        assert_eq!(v.focus.to_string(), "<urn:x:s>");
        assert_eq!(v.value, None);
    }

    #[test]
    fn target_node_and_inverse_path() {
        let shapes = load(
            "@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .\n\
             ics:One a sh:NodeShape ; sh:targetNode ic:Cloud ; \
             sh:property [ sh:path [ sh:inversePath rdf:type ] ; sh:minCount 1 ; sh:maxCount 1 ] .",
        )
        .expect("loads");
        assert!(shapes.validate(&data(":a a ic:Cloud .")).conforms());
        let none = shapes.validate(&data(":a a ic:Broker ."));
        assert_eq!(none.violations()[0].constraint, ConstraintKind::MinCount);
        let two = shapes.validate(&data(":a a ic:Cloud . :b a ic:Cloud ."));
        assert_eq!(two.violations().len(), 1);
        let v = &two.violations()[0];
        assert_eq!(v.constraint, ConstraintKind::MaxCount);
        assert_eq!(v.path, "[ sh:inversePath rdf:type ]");
        assert_eq!(
            v.focus.to_string(),
            "<https://w3id.org/intercloud/ontology#Cloud>"
        );
    }

    #[test]
    fn compaction() {
        assert_eq!(
            compact("https://w3id.org/intercloud/ontology#cloudId"),
            "ic:cloudId"
        );
        assert_eq!(
            compact("http://www.w3.org/ns/shacl#maxInclusive"),
            "sh:maxInclusive"
        );
        assert_eq!(compact("urn:x:y"), "<urn:x:y>");
        let decimal = Term::from(Literal::new_typed_literal("1.5", xsd::DECIMAL));
        assert_eq!(compact_term(&decimal), "\"1.5\"^^xsd:decimal");
        assert_eq!(
            compact_term(&Literal::new_simple_literal("a").into()),
            "\"a\""
        );
    }
}
