//! The Intercloud ontology's vocabulary.
//!
//! Today this crate only fixes the namespaces the federation's protocols
//! already use. The OWL ontology (`intercloud.ttl`), SHACL shapes, descriptor
//! parsing and the constraint → SPARQL matcher arrive with the service
//! directory.

#![forbid(unsafe_code)]

/// Base IRI of the Intercloud ontology.
pub const ONTOLOGY_NS: &str = "urn:intercloud:ontology:1#";

/// XMPP namespace of the presence payload.
pub const PRESENCE_NS: &str = "urn:intercloud:presence:1";

/// XMPP namespace of the negotiation dialog.
pub const NEGOTIATE_NS: &str = "urn:intercloud:negotiate:1";

#[cfg(test)]
mod tests {
    #[test]
    fn namespaces_are_distinct_urns() {
        let all = [super::ONTOLOGY_NS, super::PRESENCE_NS, super::NEGOTIATE_NS];
        for (i, a) in all.iter().enumerate() {
            assert!(a.starts_with("urn:intercloud:"));
            assert!(all[i + 1..].iter().all(|b| b != a));
        }
    }
}
