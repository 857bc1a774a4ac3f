//! Area codes ("EU", "EEA", "NA") and the countries they include, read once
//! from the ontology embedded at build time, so a request's area resolves
//! the same way the published vocabulary says, without the directory having
//! to hold the ontology in its store.

use oxigraph::io::{RdfFormat, RdfParser};
use oxigraph::model::{NamedOrBlankNode, Term};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

const ONTOLOGY_TTL: &str = include_str!("../../intercloud.ttl");

/// Area code → ISO 3166-1 alpha-2 codes of its countries, sorted.
pub(crate) fn areas() -> &'static BTreeMap<String, BTreeSet<String>> {
    static AREAS: OnceLock<BTreeMap<String, BTreeSet<String>>> = OnceLock::new();
    AREAS.get_or_init(|| parse_areas(ONTOLOGY_TTL))
}

/// Countries of the area with this code, if the ontology defines it.
pub(crate) fn countries_of(area_code: &str) -> Option<&'static BTreeSet<String>> {
    areas().get(area_code)
}

fn parse_areas(turtle: &str) -> BTreeMap<String, BTreeSet<String>> {
    let ns = crate::ONTOLOGY_NS;
    let area_code = format!("{ns}areaCode");
    let includes = format!("{ns}includesCountry");
    let mut codes: HashMap<NamedOrBlankNode, String> = HashMap::new();
    let mut members: HashMap<NamedOrBlankNode, BTreeSet<String>> = HashMap::new();
    // The ontology is a build-time constant checked by this module's tests;
    // a quad that fails to parse is skipped rather than taking the process down.
    for quad in RdfParser::from_format(RdfFormat::Turtle)
        .for_slice(turtle.as_bytes())
        .flatten()
    {
        let Term::Literal(value) = &quad.object else {
            continue;
        };
        if quad.predicate.as_str() == area_code {
            codes.insert(quad.subject.clone(), value.value().to_owned());
        } else if quad.predicate.as_str() == includes {
            members
                .entry(quad.subject.clone())
                .or_default()
                .insert(value.value().to_owned());
        }
    }
    codes
        .into_iter()
        .map(|(area, code)| (code, members.remove(&area).unwrap_or_default()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_ontology_defines_the_three_areas() {
        let areas = super::areas();
        assert_eq!(
            areas.keys().map(String::as_str).collect::<Vec<_>>(),
            ["EEA", "EU", "NA"]
        );
        let eu = super::countries_of("EU").expect("EU");
        assert_eq!(eu.len(), 27);
        assert!(eu.contains("DE") && eu.contains("FR") && !eu.contains("NO"));
        assert!(super::countries_of("EEA").expect("EEA").contains("NO"));
        assert!(super::countries_of("NA").expect("NA").contains("US"));
    }
}
