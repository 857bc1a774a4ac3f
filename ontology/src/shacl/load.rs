//! Reading a shapes graph into [`NodeShape`]s, refusing what is not
//! implemented.

use std::collections::HashSet;

use oxigraph::model::vocab::{rdf, xsd};
use oxigraph::model::{Graph, NamedNode, NamedNodeRef, NamedOrBlankNodeRef, Term, TermRef};

use super::constraint::{Constraint, NodeKind};
use super::{NodeShape, Path, PropertyShape, SH, ShapesError, Target, compact};

fn sh(local: &str) -> String {
    format!("{SH}{local}")
}

fn node_name(node: NamedOrBlankNodeRef<'_>) -> String {
    match node {
        NamedOrBlankNodeRef::NamedNode(n) => compact(n.as_str()),
        other => other.to_string(),
    }
}

fn malformed(node: NamedOrBlankNodeRef<'_>, problem: impl Into<String>) -> ShapesError {
    ShapesError::Malformed {
        node: node_name(node),
        problem: problem.into(),
    }
}

fn unsupported(node: NamedOrBlankNodeRef<'_>, predicate: NamedNodeRef<'_>) -> ShapesError {
    ShapesError::Unsupported {
        node: node_name(node),
        feature: compact(predicate.as_str()),
    }
}

/// Every `sh:NodeShape` of `shapes`. Every node that carries an `sh:`
/// predicate must be one of them, one of their property shapes, or a path:
/// anything else is a shape this validator would not run.
pub(super) fn node_shapes(shapes: &Graph) -> Result<Vec<NodeShape>, ShapesError> {
    let node_shape_class = NamedNode::new_unchecked(sh("NodeShape"));
    let mut understood: HashSet<NamedOrBlankNodeRef<'_>> = HashSet::new();
    let mut result = Vec::new();
    for id in shapes.subjects_for_predicate_object(rdf::TYPE, &node_shape_class) {
        understood.insert(id);
        result.push(node_shape(shapes, id, &mut understood)?);
    }
    for triple in shapes.iter() {
        let uses_sh = triple.predicate.as_str().starts_with(SH)
            || matches!(triple.object, TermRef::NamedNode(o) if triple.predicate == rdf::TYPE && o.as_str().starts_with(SH));
        if uses_sh && !understood.contains(&triple.subject) {
            return Err(malformed(
                triple.subject,
                format!(
                    "uses {} but is neither a sh:NodeShape nor one of its property shapes or paths",
                    compact(triple.predicate.as_str())
                ),
            ));
        }
    }
    Ok(result)
}

fn node_shape<'a>(
    shapes: &'a Graph,
    id: NamedOrBlankNodeRef<'a>,
    understood: &mut HashSet<NamedOrBlankNodeRef<'a>>,
) -> Result<NodeShape, ShapesError> {
    let mut targets = Vec::new();
    let mut properties = Vec::new();
    for triple in shapes.triples_for_subject(id) {
        let Some(local) = triple.predicate.as_str().strip_prefix(SH) else {
            continue; // rdf:type, rdfs:comment, ...
        };
        match local {
            "targetClass" => match triple.object {
                TermRef::NamedNode(class) => targets.push(Target::Class(class.into_owned())),
                other => {
                    return Err(malformed(
                        id,
                        format!("sh:targetClass {other} is not an IRI"),
                    ));
                }
            },
            "targetNode" => targets.push(Target::Node(triple.object.into_owned())),
            "property" => {
                let property = as_node(id, "sh:property", triple.object)?;
                understood.insert(property);
                properties.push(property_shape(shapes, property, understood)?);
            }
            _ => return Err(unsupported(id, triple.predicate)),
        }
    }
    Ok(NodeShape {
        id: id.into_owned(),
        targets,
        properties,
    })
}

fn as_node<'a>(
    owner: NamedOrBlankNodeRef<'_>,
    what: &str,
    term: TermRef<'a>,
) -> Result<NamedOrBlankNodeRef<'a>, ShapesError> {
    match term {
        TermRef::NamedNode(n) => Ok(n.into()),
        TermRef::BlankNode(b) => Ok(b.into()),
        other => Err(malformed(owner, format!("{what} {other} is not a node"))),
    }
}

fn as_iri(
    owner: NamedOrBlankNodeRef<'_>,
    what: &str,
    term: TermRef<'_>,
) -> Result<NamedNode, ShapesError> {
    match term {
        TermRef::NamedNode(n) => Ok(n.into_owned()),
        other => Err(malformed(owner, format!("{what} {other} is not an IRI"))),
    }
}

fn as_string(
    owner: NamedOrBlankNodeRef<'_>,
    what: &str,
    term: TermRef<'_>,
) -> Result<String, ShapesError> {
    match term {
        TermRef::Literal(l) => Ok(l.value().to_owned()),
        other => Err(malformed(owner, format!("{what} {other} is not a literal"))),
    }
}

fn as_count(
    owner: NamedOrBlankNodeRef<'_>,
    what: &str,
    term: TermRef<'_>,
) -> Result<u64, ShapesError> {
    match term {
        TermRef::Literal(l) if l.datatype() == xsd::INTEGER => l
            .value()
            .parse()
            .map_err(|_| malformed(owner, format!("{what} {l} is not a non-negative integer"))),
        other => Err(malformed(
            owner,
            format!("{what} {other} is not an xsd:integer"),
        )),
    }
}

fn property_shape<'a>(
    shapes: &'a Graph,
    id: NamedOrBlankNodeRef<'a>,
    understood: &mut HashSet<NamedOrBlankNodeRef<'a>>,
) -> Result<PropertyShape, ShapesError> {
    let mut path = None;
    let mut name = None;
    let mut message = None;
    let mut constraints = Vec::new();
    for triple in shapes.triples_for_subject(id) {
        let object = triple.object;
        let Some(local) = triple.predicate.as_str().strip_prefix(SH) else {
            let sh_type = match object {
                TermRef::NamedNode(o) if triple.predicate == rdf::TYPE => {
                    o.as_str().starts_with(SH) && o.as_str() != sh("PropertyShape")
                }
                _ => false,
            };
            if sh_type {
                return Err(malformed(id, format!("a property shape typed {object}")));
            }
            continue;
        };
        let what = compact(triple.predicate.as_str());
        let constraint = match local {
            "path" => {
                if path.is_some() {
                    return Err(malformed(id, "more than one sh:path"));
                }
                path = Some(parse_path(shapes, id, object, understood)?);
                continue;
            }
            "name" => {
                name = Some(as_string(id, &what, object)?);
                continue;
            }
            "message" => {
                message = Some(as_string(id, &what, object)?);
                continue;
            }
            "minCount" => Constraint::MinCount(as_count(id, &what, object)?),
            "maxCount" => Constraint::MaxCount(as_count(id, &what, object)?),
            "datatype" => Constraint::Datatype(as_iri(id, &what, object)?),
            "class" => Constraint::Class(as_iri(id, &what, object)?),
            "in" => Constraint::In(parse_list(shapes, id, object)?),
            "pattern" => {
                let source = as_string(id, &what, object)?;
                let regex = regex::Regex::new(&source)
                    .map_err(|e| malformed(id, format!("sh:pattern {source:?}: {e}")))?;
                Constraint::Pattern(regex)
            }
            "minInclusive" | "maxInclusive" => {
                let bound = match object {
                    TermRef::Literal(l) if super::constraint::is_numeric(l) => l.into_owned(),
                    other => {
                        return Err(malformed(
                            id,
                            format!("{what} {other}: only numeric bounds are implemented"),
                        ));
                    }
                };
                if local == "minInclusive" {
                    Constraint::MinInclusive(bound)
                } else {
                    Constraint::MaxInclusive(bound)
                }
            }
            "nodeKind" => {
                let kind = as_iri(id, &what, object)?;
                Constraint::NodeKind(
                    kind.as_str()
                        .strip_prefix(SH)
                        .and_then(NodeKind::from_local_name)
                        .ok_or_else(|| {
                            malformed(id, format!("sh:nodeKind {kind} is not a SHACL node kind"))
                        })?,
                )
            }
            _ => return Err(unsupported(id, triple.predicate)),
        };
        constraints.push(constraint);
    }
    Ok(PropertyShape {
        path: path.ok_or_else(|| malformed(id, "a property shape without sh:path"))?,
        name,
        message,
        constraints,
    })
}

fn parse_path<'a>(
    shapes: &'a Graph,
    owner: NamedOrBlankNodeRef<'_>,
    path: TermRef<'a>,
    understood: &mut HashSet<NamedOrBlankNodeRef<'a>>,
) -> Result<Path, ShapesError> {
    match path {
        TermRef::NamedNode(p) => Ok(Path::Predicate(p.into_owned())),
        TermRef::BlankNode(b) => {
            let node = NamedOrBlankNodeRef::from(b);
            let triples: Vec<_> = shapes.triples_for_subject(node).collect();
            let inverse = NamedNode::new_unchecked(sh("inversePath"));
            match triples.as_slice() {
                [t] if t.predicate == inverse.as_ref() => {
                    understood.insert(node);
                    Ok(Path::Inverse(as_iri(owner, "sh:inversePath", t.object)?))
                }
                [t, ..] => Err(ShapesError::Unsupported {
                    node: node_name(owner),
                    feature: format!(
                        "a sh:path other than a predicate or [ sh:inversePath p ] ({})",
                        compact(t.predicate.as_str())
                    ),
                }),
                [] => Err(malformed(owner, "an empty sh:path")),
            }
        }
        other => Err(malformed(
            owner,
            format!("sh:path {other} is not a predicate"),
        )),
    }
}

/// Reads an RDF list (`sh:in ( ... )`).
fn parse_list(
    shapes: &Graph,
    owner: NamedOrBlankNodeRef<'_>,
    head: TermRef<'_>,
) -> Result<Vec<Term>, ShapesError> {
    let mut items = Vec::new();
    let mut node = head;
    // A well-formed list has fewer cells than the graph has triples; more
    // means a cycle.
    for _ in 0..=shapes.len() {
        if node == rdf::NIL.into() {
            return Ok(items);
        }
        let cell = as_node(owner, "sh:in list cell", node)?;
        let (Some(first), Some(rest)) = (
            shapes.object_for_subject_predicate(cell, rdf::FIRST),
            shapes.object_for_subject_predicate(cell, rdf::REST),
        ) else {
            return Err(malformed(owner, "sh:in is not a well-formed RDF list"));
        };
        items.push(first.into_owned());
        node = rest;
    }
    Err(malformed(owner, "sh:in is a cyclic RDF list"))
}
