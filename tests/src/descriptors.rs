//! Generated service descriptors of realistic shape and size, for tests
//! and the directory benchmark: each is the same kind of document as
//! `ontology/examples/cloud-a.ttl` (a cloud, its broker and region, object
//! storage with two storage classes, compute with flavors), with the
//! country, prices, replication and SLA varied by a seed.

use std::fmt::Write as _;

/// Countries the generator places clouds in, with their areas.
const COUNTRIES: &[(&str, &[&str])] = &[
    ("DE", &["EU", "EEA"]),
    ("FR", &["EU", "EEA"]),
    ("NL", &["EU", "EEA"]),
    ("IE", &["EU", "EEA"]),
    ("SE", &["EU", "EEA"]),
    ("PL", &["EU", "EEA"]),
    ("NO", &["EEA"]),
    ("US", &[]),
    ("CA", &[]),
    ("JP", &[]),
    ("SG", &[]),
    ("BR", &[]),
];

/// A small deterministic generator (xorshift), so runs are repeatable.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A valid descriptor of `cloud_id` at `version`, varied by `seed`, with
/// `flavors` VM flavors (3 is typical; more makes it larger: each adds
/// about 200 bytes and 8 triples).
pub fn descriptor(cloud_id: &str, version: u64, seed: u64, flavors: usize) -> String {
    let mut dice = Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let (country, areas) = COUNTRIES[dice.below(COUNTRIES.len() as u64) as usize];
    let replication = 1 + dice.below(5);
    let nines = 4 + dice.below(9);
    let consistency = if dice.below(2) == 0 {
        "Strong"
    } else {
        "Eventual"
    };
    let storage_price = 0.005 + dice.below(40) as f64 / 1000.0;
    let availability = ["99.0", "99.5", "99.9", "99.95", "99.99"][dice.below(5) as usize];
    let currency = ["EUR", "USD"][dice.below(2) as usize];
    let area_line = if areas.is_empty() {
        String::new()
    } else {
        format!(
            " ;\n    ic:area {}",
            areas
                .iter()
                .map(|a| format!("ic:{a}"))
                .collect::<Vec<_>>()
                .join(" , ")
        )
    };
    let flavor_names: Vec<String> = (0..flavors).map(|i| format!(":f{i}")).collect();
    let mut text = format!(
        r#"@prefix ic:  <https://w3id.org/intercloud/ontology#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix :    <https://{cloud_id}.example/descriptor#> .

:cloud a ic:Cloud ;
    rdfs:label "{cloud_id}"@en ;
    ic:cloudId "{cloud_id}" ;
    ic:descriptorVersion {version} ;
    ic:locatedIn :region ;
    ic:hasBroker :broker ;
    ic:offers :storage , :compute .

:broker a ic:Broker ;
    ic:hasEndpoint [ a ic:Endpoint ; ic:protocol "grpc" ; ic:url "https://broker.{cloud_id}.example:7443"^^xsd:anyURI ] .

:region a ic:Region ;
    rdfs:label "{country} region"@en ;
    ic:countryCode "{country}"{area_line} .

:storage a ic:StorageService ;
    ic:operatedBy :cloud ;
    ic:locatedIn :region ;
    ic:hasStorageClass :replicated , :single ;
    ic:hasPrice [ a ic:Price ; ic:amount {storage_price:.3} ; ic:currency "{currency}" ; ic:perUnit ic:GiB ] ;
    ic:hasSla [ a ic:ServiceLevel ; ic:availabilityPercent {availability} ] .

:replicated a ic:StorageClass ;
    ic:replicationFactor {replication} ;
    ic:durabilityNines {nines}.0 ;
    ic:consistency ic:{consistency} ;
    ic:geoRestriction :region ;
    ic:hasPrice [ a ic:Price ; ic:amount {storage_price:.3} ; ic:currency "{currency}" ; ic:perUnit ic:GiBMonth ] .

:single a ic:StorageClass ;
    ic:replicationFactor 1 ;
    ic:durabilityNines 4.0 ;
    ic:consistency ic:Eventual ;
    ic:geoRestriction :region ;
    ic:hasPrice [ a ic:Price ; ic:amount 0.004 ; ic:currency "{currency}" ; ic:perUnit ic:GiBMonth ] .

:compute a ic:ComputeService ;
    ic:operatedBy :cloud ;
    ic:locatedIn :region ;
    ic:hasFlavor {flavor_list} ;
    ic:hasPrice [ a ic:Price ; ic:amount 0.012 ; ic:currency "{currency}" ; ic:perUnit ic:VcpuHour ] ;
    ic:hasSla [ a ic:ServiceLevel ; ic:availabilityPercent {availability} ] .
"#,
        flavor_list = flavor_names.join(" , "),
    );
    for (i, name) in flavor_names.iter().enumerate() {
        let vcpu = 1 << (i % 6);
        let _ = write!(
            text,
            "\n{name} a ic:VmFlavor ; rdfs:label \"f{i}\" ; ic:vcpu {vcpu} ; ic:memoryMiB {} ; ic:diskGiB {} ;\n    ic:hasPrice [ a ic:Price ; ic:amount {:.3} ; ic:currency \"{currency}\" ; ic:perUnit ic:InstanceHour ] .\n",
            vcpu * 2048,
            vcpu * 20,
            0.01 * f64::from(vcpu) + dice.below(10) as f64 / 1000.0,
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use intercloud_ontology::descriptor::{DescriptorFormat, parse};
    use intercloud_ontology::shacl::Shapes;

    use super::*;

    #[test]
    fn generated_descriptors_are_valid_for_every_seed_tried() {
        for seed in 0..200 {
            let text = descriptor(&format!("gen-{seed}"), 1 + seed, seed, 3);
            let parsed = parse(text.as_bytes(), DescriptorFormat::Turtle)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
            assert_eq!(parsed.cloud_id, format!("gen-{seed}"));
            assert_eq!(parsed.version, 1 + seed);
            let report = Shapes::federation().validate(&parsed.graph);
            assert!(report.conforms(), "seed {seed}: {:?}", report.violations());
        }
    }

    #[test]
    fn flavors_make_a_descriptor_larger() {
        let small = descriptor("gen-a", 1, 7, 3);
        let large = descriptor("gen-a", 1, 7, 1000);
        assert!(large.len() > small.len() + 150_000, "{}", large.len());
        let triples = |t: &str| {
            parse(t.as_bytes(), DescriptorFormat::Turtle)
                .expect("parse")
                .graph
                .len()
        };
        assert!(triples(&large) > triples(&small) + 7000);
    }
}
