//! The Intercloud ontology's vocabulary.
//!
//! The OWL ontology (`ontology/intercloud.ttl`), the SHACL shapes a
//! descriptor must satisfy (`ontology/shapes.ttl`) and example descriptors,
//! valid and invalid (`ontology/examples/`), live beside this crate; its tests
//! also check them with a third-party parser (rapper).
//!
//! Map (no I/O anywhere: inputs are bytes and graphs, the caller reads files):
//! - [`descriptor`]: parse a descriptor (Turtle, N-Triples, JSON-LD) under a
//!   size limit, with line/column syntax errors; find its cloud id and version.
//! - [`shacl`]: the SHACL subset the shapes use, as small, separately tested
//!   constraint functions; a violation names the node, shape, path, constraint
//!   and value.
//! - [`matching`]: a typed constraint request (validated field by field) →
//!   SPARQL over the clouds' named graphs → ranked candidates with an
//!   explanation of every criterion; offline clouds left out.

#![forbid(unsafe_code)]

pub mod matching;

pub mod descriptor;
pub mod shacl;

/// Base IRI of the Intercloud ontology.
pub const ONTOLOGY_NS: &str = "https://w3id.org/intercloud/ontology#";

/// Base IRI of the SHACL shapes a descriptor must satisfy.
pub const SHAPES_NS: &str = "https://w3id.org/intercloud/shapes#";

/// XMPP namespace of the presence payload.
pub const PRESENCE_NS: &str = "urn:intercloud:presence:1";

/// XMPP namespace of the negotiation dialog.
pub const NEGOTIATE_NS: &str = "urn:intercloud:negotiate:1";

#[cfg(test)]
mod tests {
    #[test]
    fn namespaces_are_distinct_urns() {
        let all = [
            super::ONTOLOGY_NS,
            super::SHAPES_NS,
            super::PRESENCE_NS,
            super::NEGOTIATE_NS,
        ];
        for (i, a) in all.iter().enumerate() {
            assert!(
                a.starts_with("urn:intercloud:") || a.starts_with("https://w3id.org/intercloud/")
            );
            assert!(all[i + 1..].iter().all(|b| b != a));
        }
    }
}

#[cfg(test)]
mod files {
    /// The namespaces here are the ones the Turtle files declare.
    #[test]
    fn turtle_files_use_these_namespaces() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let ontology = std::fs::read_to_string(dir.join("intercloud.ttl")).expect("intercloud.ttl");
        let shapes = std::fs::read_to_string(dir.join("shapes.ttl")).expect("shapes.ttl");
        assert!(
            ontology.contains(&format!("<{}>", super::ONTOLOGY_NS)),
            "intercloud.ttl declares {}",
            super::ONTOLOGY_NS
        );
        assert!(
            shapes.contains(&format!("<{}>", super::SHAPES_NS)),
            "shapes.ttl declares {}",
            super::SHAPES_NS
        );
    }
}
