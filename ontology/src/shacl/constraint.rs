//! The constraint kinds, each a small function from the values reached by a
//! property path to the values that violate it.

use std::cmp::Ordering;
use std::str::FromStr;

use oxigraph::model::vocab::{rdf, xsd};
use oxigraph::model::{Graph, Literal, LiteralRef, NamedNode, Term, TripleRef};
use oxsdatatypes::Decimal;
use regex::Regex;

/// A constraint kind, named as in SHACL (`sh:maxInclusive`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConstraintKind {
    /// `sh:minCount`: at least n values.
    MinCount,
    /// `sh:maxCount`: at most n values.
    MaxCount,
    /// `sh:datatype`: each value a well-formed literal of exactly this datatype.
    Datatype,
    /// `sh:class`: each value explicitly typed with this class.
    Class,
    /// `sh:in`: each value one of a list.
    In,
    /// `sh:pattern`: each value's lexical form matches a regular expression.
    Pattern,
    /// `sh:minInclusive`: each value a number >= the bound.
    MinInclusive,
    /// `sh:maxInclusive`: each value a number <= the bound.
    MaxInclusive,
    /// `sh:nodeKind`: each value an IRI, a blank node or a literal, as stated.
    NodeKind,
}

impl ConstraintKind {
    /// The SHACL term, e.g. `sh:maxInclusive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MinCount => "sh:minCount",
            Self::MaxCount => "sh:maxCount",
            Self::Datatype => "sh:datatype",
            Self::Class => "sh:class",
            Self::In => "sh:in",
            Self::Pattern => "sh:pattern",
            Self::MinInclusive => "sh:minInclusive",
            Self::MaxInclusive => "sh:maxInclusive",
            Self::NodeKind => "sh:nodeKind",
        }
    }
}

impl std::fmt::Display for ConstraintKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The values of `sh:nodeKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Iri,
    BlankNode,
    Literal,
    BlankNodeOrIri,
    BlankNodeOrLiteral,
    IriOrLiteral,
}

impl NodeKind {
    pub(crate) fn from_local_name(name: &str) -> Option<Self> {
        Some(match name {
            "IRI" => Self::Iri,
            "BlankNode" => Self::BlankNode,
            "Literal" => Self::Literal,
            "BlankNodeOrIRI" => Self::BlankNodeOrIri,
            "BlankNodeOrLiteral" => Self::BlankNodeOrLiteral,
            "IRIOrLiteral" => Self::IriOrLiteral,
            _ => return None,
        })
    }
}

/// One constraint of a property shape, with its parameter.
#[derive(Debug, Clone)]
pub(crate) enum Constraint {
    MinCount(u64),
    MaxCount(u64),
    Datatype(NamedNode),
    Class(NamedNode),
    In(Vec<Term>),
    Pattern(Regex),
    MinInclusive(Literal),
    MaxInclusive(Literal),
    NodeKind(NodeKind),
}

impl Constraint {
    pub(crate) fn kind(&self) -> ConstraintKind {
        match self {
            Self::MinCount(_) => ConstraintKind::MinCount,
            Self::MaxCount(_) => ConstraintKind::MaxCount,
            Self::Datatype(_) => ConstraintKind::Datatype,
            Self::Class(_) => ConstraintKind::Class,
            Self::In(_) => ConstraintKind::In,
            Self::Pattern(_) => ConstraintKind::Pattern,
            Self::MinInclusive(_) => ConstraintKind::MinInclusive,
            Self::MaxInclusive(_) => ConstraintKind::MaxInclusive,
            Self::NodeKind(_) => ConstraintKind::NodeKind,
        }
    }

    /// One entry per violation: `None` for a count constraint (the value set
    /// as a whole violates it), `Some(value)` for each offending value.
    pub(crate) fn offending_values(&self, data: &Graph, values: &[Term]) -> Vec<Option<Term>> {
        let count = values.len() as u64;
        let each = |ok: &dyn Fn(&Term) -> bool| -> Vec<Option<Term>> {
            values
                .iter()
                .filter(|v| !ok(v))
                .map(|v| Some(v.clone()))
                .collect()
        };
        match self {
            Self::MinCount(min) => whole_set(count >= *min),
            Self::MaxCount(max) => whole_set(count <= *max),
            Self::Datatype(datatype) => each(&|v| has_datatype(v, datatype)),
            Self::Class(class) => each(&|v| has_class(data, v, class)),
            Self::In(allowed) => each(&|v| allowed.contains(v)),
            Self::Pattern(regex) => each(&|v| matches_pattern(v, regex)),
            Self::MinInclusive(bound) => {
                each(&|v| compare(v, bound.as_ref()).is_some_and(Ordering::is_ge))
            }
            Self::MaxInclusive(bound) => {
                each(&|v| compare(v, bound.as_ref()).is_some_and(Ordering::is_le))
            }
            Self::NodeKind(kind) => each(&|v| has_node_kind(v, *kind)),
        }
    }
}

fn whole_set(ok: bool) -> Vec<Option<Term>> {
    if ok { Vec::new() } else { vec![None] }
}

/// `sh:datatype`: a literal of exactly `datatype` whose lexical form is
/// valid for it (checked for the numeric and boolean types; other
/// datatypes accept any lexical form).
fn has_datatype(value: &Term, datatype: &NamedNode) -> bool {
    let Term::Literal(literal) = value else {
        return false;
    };
    literal.datatype() == datatype.as_ref() && lexical_form_is_valid(literal.as_ref())
}

fn lexical_form_is_valid(literal: LiteralRef<'_>) -> bool {
    let lexical = literal.value();
    let datatype = literal.datatype();
    if is_integer_type(datatype.as_str()) {
        is_integer_lexical(lexical)
    } else if datatype == xsd::DECIMAL {
        is_decimal_lexical(lexical)
    } else if datatype == xsd::BOOLEAN {
        matches!(lexical, "true" | "false" | "1" | "0")
    } else if datatype == xsd::DOUBLE || datatype == xsd::FLOAT {
        matches!(lexical, "INF" | "+INF" | "-INF" | "NaN") || lexical.parse::<f64>().is_ok()
    } else {
        true
    }
}

fn is_integer_type(datatype: &str) -> bool {
    let Some(local) = datatype.strip_prefix("http://www.w3.org/2001/XMLSchema#") else {
        return false;
    };
    matches!(
        local,
        "integer"
            | "nonPositiveInteger"
            | "negativeInteger"
            | "long"
            | "int"
            | "short"
            | "byte"
            | "nonNegativeInteger"
            | "unsignedLong"
            | "unsignedInt"
            | "unsignedShort"
            | "unsignedByte"
            | "positiveInteger"
    )
}

fn is_integer_lexical(lexical: &str) -> bool {
    let digits = lexical.strip_prefix(['+', '-']).unwrap_or(lexical);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_decimal_lexical(lexical: &str) -> bool {
    let unsigned = lexical.strip_prefix(['+', '-']).unwrap_or(lexical);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    (!whole.is_empty() || !fraction.is_empty())
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// `sh:class`: the value has an explicit `rdf:type class` in the data (no
/// subclass reasoning: the data graph is the descriptor alone).
fn has_class(data: &Graph, value: &Term, class: &NamedNode) -> bool {
    super::as_subject(value)
        .is_some_and(|node| data.contains(TripleRef::new(node, rdf::TYPE, class)))
}

/// `sh:pattern`: the lexical form of a literal or the text of an IRI
/// matches (unanchored, as XPath `fn:matches`); blank nodes never match.
fn matches_pattern(value: &Term, regex: &Regex) -> bool {
    match value {
        Term::NamedNode(n) => regex.is_match(n.as_str()),
        Term::Literal(l) => regex.is_match(l.value()),
        _ => false,
    }
}

/// Whether a literal is a number this module can compare.
pub(crate) fn is_numeric(literal: LiteralRef<'_>) -> bool {
    let datatype = literal.datatype();
    (is_integer_type(datatype.as_str())
        || datatype == xsd::DECIMAL
        || datatype == xsd::DOUBLE
        || datatype == xsd::FLOAT)
        && lexical_form_is_valid(literal)
}

/// `sh:minInclusive` / `sh:maxInclusive`: how `value` compares with `bound`,
/// `None` when they are not comparable (a non-number is a violation).
/// Integers and decimals compare exactly; floats and doubles as `f64`.
fn compare(value: &Term, bound: LiteralRef<'_>) -> Option<Ordering> {
    let Term::Literal(value) = value else {
        return None;
    };
    let value = value.as_ref();
    if !is_numeric(value) || !is_numeric(bound) {
        return None;
    }
    let exact = |l: LiteralRef<'_>| {
        if l.datatype() == xsd::DOUBLE || l.datatype() == xsd::FLOAT {
            None
        } else {
            Decimal::from_str(l.value()).ok()
        }
    };
    if let (Some(v), Some(b)) = (exact(value), exact(bound)) {
        return Some(v.cmp(&b));
    }
    let approximate = |l: LiteralRef<'_>| match l.value() {
        "INF" | "+INF" => Some(f64::INFINITY),
        "-INF" => Some(f64::NEG_INFINITY),
        other => other.parse::<f64>().ok(),
    };
    approximate(value)?.partial_cmp(&approximate(bound)?)
}

/// `sh:nodeKind`.
fn has_node_kind(value: &Term, kind: NodeKind) -> bool {
    let (iri, blank, literal) = match value {
        Term::NamedNode(_) => (true, false, false),
        Term::BlankNode(_) => (false, true, false),
        Term::Literal(_) => (false, false, true),
        #[allow(unreachable_patterns)]
        _ => (false, false, false),
    };
    match kind {
        NodeKind::Iri => iri,
        NodeKind::BlankNode => blank,
        NodeKind::Literal => literal,
        NodeKind::BlankNodeOrIri => blank || iri,
        NodeKind::BlankNodeOrLiteral => blank || literal,
        NodeKind::IriOrLiteral => iri || literal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxigraph::model::{BlankNode, NamedNodeRef};

    const IC: &str = "https://w3id.org/intercloud/ontology#";

    fn iri(local: &str) -> Term {
        NamedNode::new_unchecked(format!("{IC}{local}")).into()
    }
    fn typed(value: &str, datatype: NamedNodeRef<'_>) -> Term {
        Literal::new_typed_literal(value, datatype).into()
    }
    fn int(value: &str) -> Term {
        typed(value, xsd::INTEGER)
    }
    fn dec(value: &str) -> Term {
        typed(value, xsd::DECIMAL)
    }
    fn string(value: &str) -> Term {
        Literal::new_simple_literal(value).into()
    }
    fn blank() -> Term {
        BlankNode::default().into()
    }
    fn violations(constraint: &Constraint, values: &[Term]) -> Vec<Option<Term>> {
        constraint.offending_values(&Graph::new(), values)
    }

    #[test]
    fn min_count() {
        let c = Constraint::MinCount(1);
        assert!(violations(&c, &[string("a")]).is_empty());
        assert_eq!(violations(&c, &[]), vec![None]);
    }

    #[test]
    fn max_count() {
        let c = Constraint::MaxCount(1);
        assert!(violations(&c, &[]).is_empty());
        assert!(violations(&c, &[string("a")]).is_empty());
        assert_eq!(violations(&c, &[string("a"), string("b")]), vec![None]);
    }

    #[test]
    fn datatype_is_exact_and_checks_the_lexical_form() {
        let decimal = Constraint::Datatype(xsd::DECIMAL.into_owned());
        assert!(violations(&decimal, &[dec("11.0")]).is_empty());
        assert_eq!(violations(&decimal, &[int("11")]), vec![Some(int("11"))]);
        assert_eq!(
            violations(&decimal, &[dec("eleven")]),
            vec![Some(dec("eleven"))]
        );
        assert_eq!(violations(&decimal, &[iri("x")]), vec![Some(iri("x"))]);
        let integer = Constraint::Datatype(xsd::INTEGER.into_owned());
        assert!(violations(&integer, &[int("-3"), int("+4")]).is_empty());
        assert_eq!(violations(&integer, &[int("3.0")]).len(), 1);
        let text = Constraint::Datatype(xsd::STRING.into_owned());
        assert!(violations(&text, &[string("s")]).is_empty());
        let tagged: Term = Literal::new_language_tagged_literal_unchecked("s", "en").into();
        assert_eq!(
            violations(&text, std::slice::from_ref(&tagged)),
            vec![Some(tagged)]
        );
    }

    #[test]
    fn class_needs_an_explicit_type() {
        let mut data = Graph::new();
        let region = NamedNode::new_unchecked(format!("{IC}Region"));
        let fra = NamedNode::new_unchecked("urn:x:fra");
        data.insert(TripleRef::new(&fra, rdf::TYPE, &region));
        let c = Constraint::Class(region);
        assert!(c.offending_values(&data, &[fra.clone().into()]).is_empty());
        let somewhere: Term = NamedNode::new_unchecked("urn:x:somewhere").into();
        assert_eq!(
            c.offending_values(&data, &[somewhere.clone(), string("fra")]),
            vec![Some(somewhere), Some(string("fra"))]
        );
    }

    #[test]
    fn in_list() {
        let c = Constraint::In(vec![iri("Strong"), iri("Eventual")]);
        assert!(violations(&c, &[iri("Strong"), iri("Eventual")]).is_empty());
        assert_eq!(violations(&c, &[iri("Causal")]), vec![Some(iri("Causal"))]);
        assert_eq!(violations(&c, &[string("Strong")]).len(), 1);
    }

    #[test]
    fn pattern() {
        let c = Constraint::Pattern(Regex::new("^[A-Z]{3}$").expect("regex"));
        assert!(violations(&c, &[string("EUR")]).is_empty());
        assert_eq!(
            violations(&c, &[string("euro")]),
            vec![Some(string("euro"))]
        );
        assert_eq!(violations(&c, &[blank()]).len(), 1);
        // Unanchored, as in SHACL: "a" matches anywhere.
        let c = Constraint::Pattern(Regex::new("a").expect("regex"));
        assert!(violations(&c, &[string("xay")]).is_empty());
    }

    #[test]
    fn min_inclusive() {
        let c = Constraint::MinInclusive(Literal::new_typed_literal("1", xsd::INTEGER));
        assert!(violations(&c, &[int("1"), int("7"), dec("1.0")]).is_empty());
        assert_eq!(violations(&c, &[int("0")]), vec![Some(int("0"))]);
        assert_eq!(violations(&c, &[dec("0.999")]).len(), 1);
        // Not a number: not comparable, so a violation.
        assert_eq!(violations(&c, &[string("5")]).len(), 1);
        assert_eq!(violations(&c, &[iri("x")]).len(), 1);
        assert!(violations(&c, &[typed("1e3", xsd::DOUBLE)]).is_empty());
    }

    #[test]
    fn max_inclusive() {
        let c = Constraint::MaxInclusive(Literal::new_typed_literal("100", xsd::INTEGER));
        assert!(violations(&c, &[dec("99.95"), dec("100.0"), int("100")]).is_empty());
        assert_eq!(violations(&c, &[dec("150.0")]), vec![Some(dec("150.0"))]);
        // Exact: a double rounding would call this 100.
        assert_eq!(violations(&c, &[dec("100.00000000000000001")]).len(), 1);
        assert_eq!(violations(&c, &[typed("NaN", xsd::DOUBLE)]).len(), 1);
    }

    #[test]
    fn node_kind() {
        let iri_only = Constraint::NodeKind(NodeKind::Iri);
        assert!(violations(&iri_only, &[iri("GiB")]).is_empty());
        assert_eq!(
            violations(&iri_only, &[string("GiB-month"), blank()]).len(),
            2
        );
        let literal = Constraint::NodeKind(NodeKind::Literal);
        assert!(violations(&literal, &[string("x")]).is_empty());
        assert_eq!(violations(&literal, &[iri("x")]).len(), 1);
        assert!(
            violations(
                &Constraint::NodeKind(NodeKind::BlankNodeOrIri),
                &[blank(), iri("x")]
            )
            .is_empty()
        );
        assert!(violations(&Constraint::NodeKind(NodeKind::IriOrLiteral), &[blank()]).len() == 1);
        assert!(
            violations(
                &Constraint::NodeKind(NodeKind::BlankNodeOrLiteral),
                &[blank(), string("x")]
            )
            .is_empty()
        );
        assert!(violations(&Constraint::NodeKind(NodeKind::BlankNode), &[blank()]).is_empty());
    }

    #[test]
    fn node_kind_names() {
        assert_eq!(NodeKind::from_local_name("IRI"), Some(NodeKind::Iri));
        assert_eq!(NodeKind::from_local_name("Iri"), None);
    }
}
