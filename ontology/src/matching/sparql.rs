//! The SELECT a [`MatchRequest`] becomes.
//!
//! Every value from the request enters the query as an RDF term built by
//! oxigraph (`Literal`, `NamedNode`) and written in its N-Triples form, which
//! is valid SPARQL: user text is escaped by the term's serializer, never
//! pasted between quotes, so even an unvalidated request cannot change the
//! query's shape. [`MatchRequest::validate`] refuses bad codes earlier anyway.

use super::request::{MatchRequest, ServiceKind};
use crate::ONTOLOGY_NS;
use oxigraph::model::Literal;
use oxigraph::model::vocab::xsd;
use std::fmt::Write as _;

/// Graph IRI prefix of the cloud descriptors in the directory; the rest of
/// the IRI is the cloud id.
pub const CLOUD_GRAPH_PREFIX: &str = "https://w3id.org/intercloud/cloud/";

/// Variables the generated SELECT binds, in order.
pub const MATCH_VARIABLES: [&str; 16] = [
    "g",
    "cloudId",
    "service",
    "offer",
    "country",
    "replication",
    "durability",
    "consistency",
    "amount",
    "currency",
    "unit",
    "perTime",
    "availability",
    "vcpu",
    "memory",
    "encapsulation",
];

fn string(value: &str) -> String {
    Literal::new_simple_literal(value).to_string()
}

fn decimal(value: f64) -> String {
    // f64's Display never uses an exponent, so this is a valid xsd:decimal
    // lexical form for every finite value; validate() refuses the others.
    Literal::new_typed_literal(value.to_string(), xsd::DECIMAL).to_string()
}

fn integer(value: u64) -> String {
    Literal::from(value).to_string()
}

impl MatchRequest {
    /// A SPARQL SELECT over every cloud's named graph that returns one row
    /// per candidate (service × storage class or VM flavor × price × …)
    /// meeting the hard constraints, binding [`MATCH_VARIABLES`]. Only
    /// graphs whose IRI is [`CLOUD_GRAPH_PREFIX`] + the `ic:cloudId` they
    /// state are considered, so a descriptor cannot answer for another cloud.
    pub fn to_sparql(&self) -> String {
        let mut q = String::new();
        let mut filters: Vec<String> = Vec::new();
        let _ = writeln!(q, "PREFIX ic: <{ONTOLOGY_NS}>");
        let _ = writeln!(
            q,
            "SELECT DISTINCT ?{} WHERE {{",
            MATCH_VARIABLES.join(" ?")
        );
        q.push_str("  GRAPH ?g {\n");
        q.push_str("    ?cloud a ic:Cloud ; ic:cloudId ?cloudId ; ic:offers ?service .\n");
        let _ = writeln!(
            q,
            "    ?service a ic:{} ; ic:locatedIn ?region .",
            self.kind.class_name()
        );
        q.push_str("    ?region ic:countryCode ?country .\n");

        // An invalid region (validate() refuses it first) matches nothing
        // rather than everything.
        let countries = self
            .region
            .as_ref()
            .map(|region| region.countries().unwrap_or_default());
        if let Some(countries) = &countries {
            let list: Vec<String> = countries.iter().map(|c| string(c)).collect();
            let _ = writeln!(q, "    VALUES ?country {{ {} }}", list.join(" "));
        }

        let priced = match self.kind {
            ServiceKind::Storage => {
                q.push_str("    ?service ic:hasStorageClass ?offer .\n");
                q.push_str("    ?offer ic:replicationFactor ?replication ; ic:durabilityNines ?durability ; ic:consistency ?consistency .\n");
                if let Some(min) = self.min_replication {
                    filters.push(format!("?replication >= {}", integer(min.into())));
                }
                if let Some(min) = self.min_durability_nines {
                    filters.push(format!("?durability >= {}", decimal(min)));
                }
                if let Some(consistency) = self.consistency {
                    filters.push(format!(
                        "?consistency = ic:{}",
                        consistency.individual_name()
                    ));
                }
                if let Some(countries) = &countries {
                    // Data kept elsewhere does not meet a region constraint.
                    let list: Vec<String> = countries.iter().map(|c| string(c)).collect();
                    let _ = writeln!(
                        q,
                        "    FILTER NOT EXISTS {{ ?offer ic:geoRestriction/ic:countryCode ?kept . FILTER(?kept NOT IN ({})) }}",
                        list.join(", ")
                    );
                }
                "?offer"
            }
            ServiceKind::Compute => {
                q.push_str("    ?service ic:hasFlavor ?offer .\n");
                q.push_str("    ?offer ic:vcpu ?vcpu ; ic:memoryMiB ?memory .\n");
                if let Some(min) = self.min_vcpu {
                    filters.push(format!("?vcpu >= {}", integer(min.into())));
                }
                if let Some(min) = self.min_memory_mib {
                    filters.push(format!("?memory >= {}", integer(min)));
                }
                "?offer"
            }
            ServiceKind::Network => {
                match self.encapsulation {
                    Some(encapsulation) => {
                        let _ = writeln!(
                            q,
                            "    ?service ic:encapsulation ?encapsulation .\n    FILTER(?encapsulation = ic:{})",
                            encapsulation.individual_name()
                        );
                    }
                    None => {
                        q.push_str("    OPTIONAL { ?service ic:encapsulation ?encapsulation }\n")
                    }
                }
                "?service"
            }
            ServiceKind::Monitoring | ServiceKind::Time => "?service",
        };

        let price = format!(
            "{priced} ic:hasPrice ?price . ?price ic:amount ?amount ; ic:currency ?currency ; ic:perUnit ?unit . OPTIONAL {{ ?price ic:perTime ?perTime }}"
        );
        match &self.max_price {
            Some(max) => {
                let _ = writeln!(q, "    {price}");
                filters.push(format!(
                    "?currency = {} && ?amount <= {}",
                    string(&max.currency),
                    decimal(max.amount)
                ));
            }
            None => {
                let _ = writeln!(q, "    OPTIONAL {{ {price} }}");
            }
        }

        let sla = "?service ic:hasSla ?sla . ?sla ic:availabilityPercent ?availability";
        match self.min_availability {
            Some(min) => {
                let _ = writeln!(q, "    {sla} .");
                filters.push(format!("?availability >= {}", decimal(min)));
            }
            None => {
                let _ = writeln!(q, "    OPTIONAL {{ {sla} }}");
            }
        }

        for filter in filters {
            let _ = writeln!(q, "    FILTER({filter})");
        }
        q.push_str("  }\n");
        let _ = writeln!(
            q,
            "  FILTER(STR(?g) = CONCAT({}, STR(?cloudId)))",
            string(CLOUD_GRAPH_PREFIX)
        );
        q.push_str("}\nORDER BY ?cloudId ?service ?offer\n");
        q
    }
}

#[cfg(test)]
mod tests {
    use crate::matching::{MatchRequest, Price, RegionFilter, ServiceKind};
    use oxigraph::sparql::SparqlEvaluator;

    #[test]
    fn every_kind_gives_a_query_that_parses() {
        for kind in [
            ServiceKind::Compute,
            ServiceKind::Storage,
            ServiceKind::Network,
            ServiceKind::Monitoring,
            ServiceKind::Time,
        ] {
            let mut r = MatchRequest::new(kind);
            r.region = Some(RegionFilter::Area("EEA".into()));
            r.max_price = Some(Price {
                amount: 0.5,
                currency: "EUR".into(),
            });
            r.min_availability = Some(99.9);
            let query = r.to_sparql();
            assert!(query.contains("GRAPH ?g"), "{query}");
            assert!(
                SparqlEvaluator::new().parse_query(&query).is_ok(),
                "{kind}: {query}"
            );
        }
    }

    #[test]
    fn numbers_enter_as_typed_literals() {
        let mut r = MatchRequest::new(ServiceKind::Storage);
        r.min_replication = Some(3);
        r.min_durability_nines = Some(1e-7);
        let query = r.to_sparql();
        assert!(query.contains("?replication >= \"3\"^^"), "{query}");
        assert!(query.contains("?durability >= \"0.0000001\"^^"), "{query}");
    }
}
