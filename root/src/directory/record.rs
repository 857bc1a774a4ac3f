//! The publication record of each cloud's descriptor, kept as triples in the
//! directory's record graph (written in the same transaction as the cloud's
//! graph, so the two never disagree) and read back as [`DescriptorInfo`].

use intercloud_ontology::matching::CLOUD_GRAPH_PREFIX;
use oxigraph::model::vocab::{rdf, xsd};
use oxigraph::model::{Literal, NamedNode, NamedNodeRef, Quad, Term};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The graph holding one record per published cloud.
pub const RECORD_GRAPH: &str = "https://w3id.org/intercloud/directory";

/// Namespace of the record's terms.
pub const RECORD_NS: &str = "https://w3id.org/intercloud/directory#";

/// What the directory knows about one published descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorInfo {
    /// The cloud it describes (and that published it).
    pub cloud_id: String,
    /// Its `ic:descriptorVersion`.
    pub version: u64,
    /// Triples in the cloud's graph.
    pub triples: u64,
    /// SHA-256 of the canonical (RDFC-1.0) N-Triples of the graph, hex.
    pub digest: String,
    /// When it was published.
    pub published_at: OffsetDateTime,
    /// SPIFFE id of the publisher.
    pub published_by: String,
}

/// The named graph of a cloud's descriptor.
pub fn cloud_graph(cloud_id: &str) -> NamedNode {
    NamedNode::new_unchecked(format!("{CLOUD_GRAPH_PREFIX}{cloud_id}"))
}

fn term(local: &str) -> NamedNode {
    NamedNode::new_unchecked(format!("{RECORD_NS}{local}"))
}

fn record_graph() -> NamedNode {
    NamedNode::new_unchecked(RECORD_GRAPH)
}

impl DescriptorInfo {
    /// The record as quads of [`RECORD_GRAPH`], about the cloud's graph IRI.
    pub fn to_quads(&self) -> Vec<Quad> {
        let subject = cloud_graph(&self.cloud_id);
        let graph = record_graph();
        let quad = |p: NamedNode, o: Term| Quad::new(subject.clone(), p, o, graph.clone());
        let integer = |n: u64| Literal::new_typed_literal(n.to_string(), xsd::INTEGER).into();
        let published_at = self
            .published_at
            .format(&Rfc3339)
            .unwrap_or_else(|_| self.published_at.to_string());
        vec![
            quad(rdf::TYPE.into_owned(), term("Publication").into()),
            quad(
                term("cloudId"),
                Literal::new_simple_literal(&self.cloud_id).into(),
            ),
            quad(term("version"), integer(self.version)),
            quad(term("triples"), integer(self.triples)),
            quad(
                term("digest"),
                Literal::new_simple_literal(&self.digest).into(),
            ),
            quad(
                term("publishedAt"),
                Literal::new_typed_literal(published_at, xsd::DATE_TIME).into(),
            ),
            quad(
                term("publishedBy"),
                Literal::new_simple_literal(&self.published_by).into(),
            ),
        ]
    }

    /// Reads a record back from the `(predicate, object)` pairs of its
    /// subject; `None` when a field is missing or malformed.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (NamedNodeRef<'a>, &'a Term)>,
    ) -> Option<Self> {
        let mut cloud_id = None;
        let mut version = None;
        let mut triples = None;
        let mut digest = None;
        let mut published_at = None;
        let mut published_by = None;
        for (predicate, object) in pairs {
            let Some(local) = predicate.as_str().strip_prefix(RECORD_NS) else {
                continue;
            };
            let Term::Literal(value) = object else {
                continue;
            };
            let value = value.value();
            match local {
                "cloudId" => cloud_id = Some(value.to_owned()),
                "version" => version = value.parse().ok(),
                "triples" => triples = value.parse().ok(),
                "digest" => digest = Some(value.to_owned()),
                "publishedAt" => published_at = OffsetDateTime::parse(value, &Rfc3339).ok(),
                "publishedBy" => published_by = Some(value.to_owned()),
                _ => {}
            }
        }
        Some(Self {
            cloud_id: cloud_id?,
            version: version?,
            triples: triples?,
            digest: digest?,
            published_at: published_at?,
            published_by: published_by?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_the_round_trip_through_its_quads() {
        let info = DescriptorInfo {
            cloud_id: "cloud-a".into(),
            version: 7,
            triples: 120,
            digest: "ab".repeat(32),
            published_at: OffsetDateTime::from_unix_timestamp(1_790_000_000).expect("time"),
            published_by: "spiffe://intercloud.lab/cloud/cloud-a".into(),
        };
        let quads = info.to_quads();
        assert!(
            quads
                .iter()
                .all(|q| q.graph_name.to_string() == format!("<{RECORD_GRAPH}>"))
        );
        let pairs = quads.iter().map(|q| (q.predicate.as_ref(), &q.object));
        assert_eq!(DescriptorInfo::from_pairs(pairs), Some(info));
    }

    #[test]
    fn a_record_missing_a_field_is_not_read() {
        let info = DescriptorInfo {
            cloud_id: "cloud-a".into(),
            version: 1,
            triples: 1,
            digest: String::new(),
            published_at: OffsetDateTime::UNIX_EPOCH,
            published_by: String::new(),
        };
        let quads: Vec<_> = info
            .to_quads()
            .into_iter()
            .filter(|q| !q.predicate.as_str().ends_with("version"))
            .collect();
        let pairs = quads.iter().map(|q| (q.predicate.as_ref(), &q.object));
        assert_eq!(DescriptorInfo::from_pairs(pairs), None);
    }
}
