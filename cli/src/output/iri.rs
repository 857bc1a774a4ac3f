//! IRIs shortened for tables: the federation's namespaces and the usual RDF
//! ones become prefixes (`ic:StorageService`, `cloud:cloud-a`). For reading
//! only; JSON keeps the full IRIs.

/// Prefixes tried in order, so the most specific namespace comes first.
const PREFIXES: &[(&str, &str)] = &[
    ("ic", "https://w3id.org/intercloud/ontology#"),
    ("ics", "https://w3id.org/intercloud/shapes#"),
    ("cloud", "https://w3id.org/intercloud/cloud/"),
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("owl", "http://www.w3.org/2002/07/owl#"),
    ("sh", "http://www.w3.org/ns/shacl#"),
];

/// `prefix:rest` when `iri` is in a known namespace (and something follows
/// it), else `None`.
pub fn compact(iri: &str) -> Option<String> {
    PREFIXES.iter().find_map(|(prefix, namespace)| {
        iri.strip_prefix(namespace)
            .filter(|rest| !rest.is_empty())
            .map(|rest| format!("{prefix}:{rest}"))
    })
}

/// `iri` compacted if possible, else as it is.
pub fn short(iri: &str) -> String {
    compact(iri).unwrap_or_else(|| iri.to_owned())
}

/// `iri` as seen from `base`'s document: `#standard` when both share the
/// part before `#`, else [`short`].
pub fn relative_to(iri: &str, base: &str) -> String {
    if let (Some((document, fragment)), Some((base_document, _))) =
        (iri.split_once('#'), base.split_once('#'))
        && document == base_document
        && compact(iri).is_none()
    {
        return format!("#{fragment}");
    }
    short(iri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federation_namespaces_become_prefixes() {
        assert_eq!(
            short("https://w3id.org/intercloud/ontology#StorageService"),
            "ic:StorageService"
        );
        assert_eq!(
            short("https://w3id.org/intercloud/cloud/cloud-a"),
            "cloud:cloud-a"
        );
        assert_eq!(
            short("http://www.w3.org/2001/XMLSchema#decimal"),
            "xsd:decimal"
        );
        assert_eq!(
            short("https://w3id.org/intercloud/cloud/"),
            "https://w3id.org/intercloud/cloud/"
        );
        assert_eq!(
            short("https://cloud-a.lab/descriptor#objectStorage"),
            "https://cloud-a.lab/descriptor#objectStorage"
        );
        assert_eq!(compact("https://cloud-a.lab/descriptor#x"), None);
    }

    #[test]
    fn an_offer_in_the_services_document_is_its_fragment() {
        let service = "https://cloud-a.lab/descriptor#objectStorage";
        assert_eq!(
            relative_to("https://cloud-a.lab/descriptor#standard", service),
            "#standard"
        );
        assert_eq!(
            relative_to("https://cloud-b.lab/descriptor#standard", service),
            "https://cloud-b.lab/descriptor#standard"
        );
        assert_eq!(
            relative_to(
                "https://w3id.org/intercloud/cloud/cloud-a#small",
                "https://w3id.org/intercloud/cloud/cloud-a#compute"
            ),
            "cloud:cloud-a#small"
        );
    }
}
