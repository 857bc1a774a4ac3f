//! Parsing a cloud's service descriptor: bytes in, an RDF graph plus the
//! cloud's identity out.
//!
//! The size limit is checked before the parser sees a byte, so a 50 MiB
//! upload costs a length comparison. Parsing does not validate against the
//! shapes (see [`crate::shacl`]); it only extracts what the directory needs to
//! file the graph: the `ic:cloudId` and `ic:descriptorVersion` of the single
//! `ic:Cloud`.

use oxigraph::io::{JsonLdProfileSet, RdfFormat, RdfParser, RdfSyntaxError};
use oxigraph::model::vocab::rdf;
use oxigraph::model::{Graph, NamedNodeRef, NamedOrBlankNode, TermRef};

/// Largest descriptor accepted, in bytes (1 MiB).
pub const MAX_DESCRIPTOR_BYTES: usize = 1 << 20;

const IC_CLOUD: NamedNodeRef<'static> =
    NamedNodeRef::new_unchecked("https://w3id.org/intercloud/ontology#Cloud");
const IC_CLOUD_ID: NamedNodeRef<'static> =
    NamedNodeRef::new_unchecked("https://w3id.org/intercloud/ontology#cloudId");
const IC_DESCRIPTOR_VERSION: NamedNodeRef<'static> =
    NamedNodeRef::new_unchecked("https://w3id.org/intercloud/ontology#descriptorVersion");

/// The serialisations a descriptor may arrive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DescriptorFormat {
    /// Turtle (`text/turtle`, `.ttl`).
    Turtle,
    /// N-Triples (`application/n-triples`, `.nt`).
    NTriples,
    /// JSON-LD (`application/ld+json`, `.jsonld`). Remote `@context`s are not
    /// fetched: a descriptor must be self-contained.
    JsonLd,
}

impl DescriptorFormat {
    /// The format of a media type such as `text/turtle; charset=utf-8`.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        Self::from_rdf_format(RdfFormat::from_media_type(media_type)?)
    }

    /// The format of a file extension such as `ttl` (without the dot).
    pub fn from_extension(extension: &str) -> Option<Self> {
        Self::from_rdf_format(RdfFormat::from_extension(extension)?)
    }

    /// The canonical media type.
    pub fn media_type(self) -> &'static str {
        self.rdf_format().media_type()
    }

    fn from_rdf_format(format: RdfFormat) -> Option<Self> {
        match format {
            RdfFormat::Turtle => Some(Self::Turtle),
            RdfFormat::NTriples => Some(Self::NTriples),
            RdfFormat::JsonLd { .. } => Some(Self::JsonLd),
            _ => None,
        }
    }

    fn rdf_format(self) -> RdfFormat {
        match self {
            Self::Turtle => RdfFormat::Turtle,
            Self::NTriples => RdfFormat::NTriples,
            Self::JsonLd => RdfFormat::JsonLd {
                profile: JsonLdProfileSet::empty(),
            },
        }
    }
}

impl std::fmt::Display for DescriptorFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.rdf_format().name())
    }
}

/// A parsed descriptor: its triples and the identity of the cloud it
/// describes. Not yet validated against the shapes.
#[derive(Debug, Clone)]
pub struct Descriptor {
    /// Every triple of the descriptor.
    pub graph: Graph,
    /// The node typed `ic:Cloud`.
    pub cloud: NamedOrBlankNode,
    /// That cloud's `ic:cloudId`.
    pub cloud_id: String,
    /// That cloud's `ic:descriptorVersion`.
    pub version: u64,
}

/// Why a descriptor could not be parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DescriptorError {
    /// The input is larger than [`MAX_DESCRIPTOR_BYTES`]; it was not parsed.
    #[error("descriptor is {size} bytes, over the limit of {limit} bytes; it was not parsed")]
    TooLarge {
        /// Size of the input in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The input is not well-formed in its format.
    #[error("{format} syntax error{}: {message}", at(*.line, *.column))]
    Syntax {
        /// The format the input was parsed as.
        format: DescriptorFormat,
        /// 1-based line of the error, when the parser knows it.
        line: Option<u64>,
        /// 1-based column (in characters) of the error, when the parser knows it.
        column: Option<u64>,
        /// The parser's description.
        message: String,
    },
    /// No node is typed `ic:Cloud`.
    #[error("the descriptor describes no ic:Cloud")]
    NoCloud,
    /// Several nodes are typed `ic:Cloud`; a descriptor speaks for one cloud.
    #[error("the descriptor describes {count} ic:Cloud nodes; it must describe exactly one")]
    SeveralClouds {
        /// How many nodes are typed `ic:Cloud`.
        count: usize,
    },
    /// The cloud lacks a property, has it twice, or its value is malformed.
    #[error("the cloud's {property} {problem}")]
    BadCloudProperty {
        /// The property, e.g. `ic:cloudId`.
        property: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

fn at(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

/// Parses `input` into a graph, refusing it unread if it is larger than
/// [`MAX_DESCRIPTOR_BYTES`]. Named graphs (JSON-LD `@graph` with an `@id`)
/// are refused: a descriptor is one graph.
pub fn parse_graph(input: &[u8], format: DescriptorFormat) -> Result<Graph, DescriptorError> {
    if input.len() > MAX_DESCRIPTOR_BYTES {
        return Err(DescriptorError::TooLarge {
            size: input.len(),
            limit: MAX_DESCRIPTOR_BYTES,
        });
    }
    let mut graph = Graph::new();
    let parser = RdfParser::from_format(format.rdf_format())
        .without_named_graphs()
        .for_slice(input);
    for quad in parser {
        let quad = quad.map_err(|e| syntax_error(format, e))?;
        graph.insert(quad.as_ref());
    }
    Ok(graph)
}

/// Parses a descriptor and extracts the identity of the single cloud it
/// describes.
pub fn parse(input: &[u8], format: DescriptorFormat) -> Result<Descriptor, DescriptorError> {
    let graph = parse_graph(input, format)?;
    let cloud = single_cloud(&graph)?;
    let cloud_id = single_literal(&graph, &cloud, IC_CLOUD_ID, "ic:cloudId")?.to_owned();
    let version_text = single_literal(
        &graph,
        &cloud,
        IC_DESCRIPTOR_VERSION,
        "ic:descriptorVersion",
    )?;
    let version = version_text
        .parse::<u64>()
        .map_err(|_| DescriptorError::BadCloudProperty {
            property: "ic:descriptorVersion",
            problem: format!("{version_text:?} is not a non-negative integer"),
        })?;
    Ok(Descriptor {
        graph,
        cloud,
        cloud_id,
        version,
    })
}

fn syntax_error(format: DescriptorFormat, error: RdfSyntaxError) -> DescriptorError {
    let location = error.location();
    DescriptorError::Syntax {
        format,
        line: location.as_ref().map(|l| l.start.line + 1),
        column: location.as_ref().map(|l| l.start.column + 1),
        message: error.to_string(),
    }
}

fn single_cloud(graph: &Graph) -> Result<NamedOrBlankNode, DescriptorError> {
    let clouds: Vec<_> = graph
        .subjects_for_predicate_object(rdf::TYPE, IC_CLOUD)
        .collect();
    match clouds.as_slice() {
        [] => Err(DescriptorError::NoCloud),
        [cloud] => Ok(cloud.into_owned()),
        _ => Err(DescriptorError::SeveralClouds {
            count: clouds.len(),
        }),
    }
}

fn single_literal<'a>(
    graph: &'a Graph,
    cloud: &NamedOrBlankNode,
    predicate: NamedNodeRef<'_>,
    name: &'static str,
) -> Result<&'a str, DescriptorError> {
    let values: Vec<_> = graph
        .objects_for_subject_predicate(cloud, predicate)
        .collect();
    let problem = match values.as_slice() {
        [TermRef::Literal(l)] => return Ok(l.value()),
        [] => "is missing".to_owned(),
        [other] => format!("must be a literal, not {other}"),
        _ => format!("is given {} times; it must be given once", values.len()),
    };
    Err(DescriptorError::BadCloudProperty {
        property: name,
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOUD_A: &str = include_str!("../examples/cloud-a.ttl");

    fn err(input: &[u8], format: DescriptorFormat) -> DescriptorError {
        match parse(input, format) {
            Ok(d) => panic!("expected an error, parsed cloud {}", d.cloud_id),
            Err(e) => e,
        }
    }

    #[test]
    fn formats_from_media_types_and_extensions() {
        use DescriptorFormat::*;
        assert_eq!(
            DescriptorFormat::from_media_type("text/turtle; charset=utf-8"),
            Some(Turtle)
        );
        assert_eq!(
            DescriptorFormat::from_media_type("application/ld+json"),
            Some(JsonLd)
        );
        assert_eq!(
            DescriptorFormat::from_media_type("application/n-triples"),
            Some(NTriples)
        );
        assert_eq!(
            DescriptorFormat::from_media_type("application/rdf+xml"),
            None
        );
        assert_eq!(DescriptorFormat::from_extension("ttl"), Some(Turtle));
        assert_eq!(DescriptorFormat::from_extension("jsonld"), Some(JsonLd));
        assert_eq!(DescriptorFormat::from_extension("nt"), Some(NTriples));
        assert_eq!(DescriptorFormat::from_extension("trig"), None);
    }

    #[test]
    fn cloud_a_parses_with_its_identity() {
        let d = parse(CLOUD_A.as_bytes(), DescriptorFormat::Turtle).expect("cloud-a parses");
        assert_eq!(d.cloud_id, "cloud-a");
        assert_eq!(d.version, 1);
        assert_eq!(
            d.cloud.to_string(),
            "<https://cloud-a.lab/descriptor#cloud>"
        );
        assert!(d.graph.len() > 50);
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        // Not Turtle at all: had the parser run, this would be a syntax error.
        let input = vec![b'{'; MAX_DESCRIPTOR_BYTES + 1];
        match err(&input, DescriptorFormat::Turtle) {
            DescriptorError::TooLarge { size, limit } => {
                assert_eq!(size, MAX_DESCRIPTOR_BYTES + 1);
                assert_eq!(limit, MAX_DESCRIPTOR_BYTES);
            }
            other => panic!("expected TooLarge, got {other}"),
        }
        let message = err(&input, DescriptorFormat::Turtle).to_string();
        assert!(
            message.contains("1048577") && message.contains("1048576"),
            "{message}"
        );
    }

    #[test]
    fn input_at_the_limit_is_parsed() {
        let mut input = CLOUD_A.as_bytes().to_vec();
        input.resize(MAX_DESCRIPTOR_BYTES, b' ');
        assert_eq!(
            parse(&input, DescriptorFormat::Turtle)
                .expect("parses")
                .cloud_id,
            "cloud-a"
        );
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let input = "@prefix ic: <https://w3id.org/intercloud/ontology#> .\n\
                     <urn:x:c> a ic:Cloud ;\n  ic:cloudId \"c\" ; ic:descriptorVersion 1 ;; ]\n";
        match err(input.as_bytes(), DescriptorFormat::Turtle) {
            DescriptorError::Syntax {
                line: Some(3),
                column: Some(c),
                ..
            } => assert!(c > 1, "column {c}"),
            other => panic!("expected a syntax error on line 3, got {other}"),
        }
    }

    #[test]
    fn two_clouds_are_refused() {
        let input = "@prefix ic: <https://w3id.org/intercloud/ontology#> .\n\
                     <urn:x:a> a ic:Cloud ; ic:cloudId \"a\" ; ic:descriptorVersion 1 .\n\
                     <urn:x:b> a ic:Cloud ; ic:cloudId \"b\" ; ic:descriptorVersion 1 .\n";
        assert!(matches!(
            err(input.as_bytes(), DescriptorFormat::Turtle),
            DescriptorError::SeveralClouds { count: 2 }
        ));
    }

    #[test]
    fn no_cloud_is_refused() {
        let input = "<urn:x:a> <urn:x:p> \"o\" .\n";
        assert!(matches!(
            err(input.as_bytes(), DescriptorFormat::NTriples),
            DescriptorError::NoCloud
        ));
    }

    #[test]
    fn bad_cloud_properties_are_refused() {
        let prefix = "@prefix ic: <https://w3id.org/intercloud/ontology#> .\n";
        for (body, property) in [
            (
                "<urn:x:a> a ic:Cloud ; ic:descriptorVersion 1 .",
                "ic:cloudId",
            ),
            (
                "<urn:x:a> a ic:Cloud ; ic:cloudId \"a\", \"b\" ; ic:descriptorVersion 1 .",
                "ic:cloudId",
            ),
            (
                "<urn:x:a> a ic:Cloud ; ic:cloudId \"a\" ; ic:descriptorVersion -1 .",
                "ic:descriptorVersion",
            ),
            (
                "<urn:x:a> a ic:Cloud ; ic:cloudId \"a\" ; ic:descriptorVersion <urn:x:v> .",
                "ic:descriptorVersion",
            ),
        ] {
            match err(
                format!("{prefix}{body}").as_bytes(),
                DescriptorFormat::Turtle,
            ) {
                DescriptorError::BadCloudProperty { property: p, .. } => {
                    assert_eq!(p, property, "{body}")
                }
                other => panic!("{body}: expected BadCloudProperty, got {other}"),
            }
        }
    }

    fn serialize(graph: &Graph, format: RdfFormat) -> Vec<u8> {
        let mut serializer =
            oxigraph::io::RdfSerializer::from_format(format).for_writer(Vec::new());
        for triple in graph {
            serializer
                .serialize_triple(triple)
                .expect("serialize to memory");
        }
        serializer.finish().expect("finish serializing")
    }

    /// Serialises cloud-a, parses it back, and compares: same size, the same
    /// triples once blank nodes (relabelled by the round trip) are set
    /// aside, the same identity.
    fn round_trip(format: DescriptorFormat) {
        let original = parse(CLOUD_A.as_bytes(), DescriptorFormat::Turtle).expect("cloud-a parses");
        let bytes = serialize(&original.graph, format.rdf_format());
        let back = parse(&bytes, format).expect("round trip parses");
        assert_eq!(back.graph.len(), original.graph.len());
        assert_eq!((back.cloud_id.as_str(), back.version), ("cloud-a", 1));
        let ground = |g: &Graph| -> Vec<String> {
            let mut triples: Vec<String> = g
                .iter()
                .filter(|t| !t.subject.is_blank_node() && !t.object.is_blank_node())
                .map(|t| t.to_string())
                .collect();
            triples.sort();
            triples
        };
        assert_eq!(ground(&back.graph), ground(&original.graph));
        assert!(
            crate::shacl::Shapes::federation()
                .validate(&back.graph)
                .conforms()
        );
    }

    #[test]
    fn cloud_a_round_trips_through_json_ld() {
        round_trip(DescriptorFormat::JsonLd);
    }

    #[test]
    fn cloud_a_round_trips_through_n_triples() {
        round_trip(DescriptorFormat::NTriples);
    }

    #[test]
    fn json_ld_remote_context_is_not_fetched() {
        let input =
            r#"{"@context": "https://example.invalid/context.jsonld", "@id": "urn:x:a", "p": "o"}"#;
        assert!(matches!(
            parse_graph(input.as_bytes(), DescriptorFormat::JsonLd),
            Err(DescriptorError::Syntax { .. })
        ));
    }

    #[test]
    fn json_ld_with_a_named_graph_is_refused() {
        let input = r#"{"@id": "urn:x:g", "@graph": [{"@id": "urn:x:a", "urn:x:p": "o"}]}"#;
        assert!(matches!(
            parse_graph(input.as_bytes(), DescriptorFormat::JsonLd),
            Err(DescriptorError::Syntax { .. })
        ));
    }

    #[test]
    fn json_ld_syntax_error_has_a_location() {
        let input = "{\n  \"@id\": \"urn:x:a\",\n  \"urn:x:p\": \n}";
        match parse_graph(input.as_bytes(), DescriptorFormat::JsonLd) {
            Err(DescriptorError::Syntax { line, .. }) => assert!(line.is_some()),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }
}
