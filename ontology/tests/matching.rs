//! Matching against the three example clouds, each in its own named graph
//! of an in-memory store, as the root's directory holds them.

use intercloud_ontology::matching::{
    CLOUD_GRAPH_PREFIX, Consistency, MatchRequest, Price, Ranking, RegionFilter, RequestError,
    ServiceKind, match_in_store,
};
use oxigraph::io::{RdfFormat, RdfParser};
use oxigraph::model::NamedNode;
use oxigraph::store::Store;
use std::path::Path;

fn store_with_examples() -> Store {
    let store = Store::new().expect("in-memory store");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for cloud in ["cloud-a", "cloud-b", "cloud-c"] {
        let turtle = std::fs::read(examples.join(format!("{cloud}.ttl"))).expect("example");
        let graph = NamedNode::new(format!("{CLOUD_GRAPH_PREFIX}{cloud}")).expect("graph IRI");
        store
            .load_from_slice(
                RdfParser::from_format(RdfFormat::Turtle).with_default_graph(graph),
                &turtle,
            )
            .expect("example loads");
    }
    store
}

fn all_online(_: &str) -> bool {
    true
}

fn run(request: &MatchRequest) -> Ranking {
    match_in_store(&store_with_examples(), request, &all_online).expect("match")
}

fn clouds(ranking: &Ranking) -> Vec<&str> {
    ranking
        .candidates
        .iter()
        .map(|c| c.cloud_id.as_str())
        .collect()
}

fn request(kind: ServiceKind, pairs: &[(&str, &str)]) -> MatchRequest {
    MatchRequest::from_pairs(kind, pairs.iter().copied()).expect("valid request")
}

#[test]
fn storage_replicated_three_times_in_the_eu_is_cloud_a() {
    let ranking = run(&request(
        ServiceKind::Storage,
        &[("--min-replication", "3"), ("--region", "EU")],
    ));
    assert_eq!(clouds(&ranking), ["cloud-a"]);
    let candidate = &ranking.candidates[0];
    assert_eq!(
        candidate.service,
        "https://cloud-a.lab/descriptor#objectStorage"
    );
    assert_eq!(
        candidate.offer.as_deref(),
        Some("https://cloud-a.lab/descriptor#standard")
    );
    let explanation = candidate.explanation.join("; ");
    assert!(explanation.contains("replication 3 ≥ 3"), "{explanation}");
    assert!(explanation.contains("in DE (EU)"), "{explanation}");
    assert!(ranking.left_out.is_empty());
}

#[test]
fn storage_in_the_eu_is_cloud_a_then_cloud_c() {
    let ranking = run(&request(ServiceKind::Storage, &[("region", "eu")]));
    assert_eq!(clouds(&ranking), ["cloud-a", "cloud-c"]);
    assert!(ranking.candidates[0].score > ranking.candidates[1].score);
    let c = ranking.candidates[1].explanation.join("; ");
    assert!(
        c.contains("in FR (EU)") && c.contains("replication 2"),
        "{c}"
    );
    assert!(c.contains("price 0.014 EUR/GiB-month"), "{c}");
}

#[test]
fn a_price_bound_ranks_by_price_within_it() {
    let ranking = run(&request(
        ServiceKind::Storage,
        &[("region", "EU"), ("max-price", "0.02EUR")],
    ));
    // cloud-a's 3-replica class costs 0.021: its single-copy class stands in.
    assert_eq!(clouds(&ranking).len(), 2);
    let a = ranking
        .candidates
        .iter()
        .find(|c| c.cloud_id == "cloud-a")
        .expect("cloud-a");
    assert_eq!(
        a.offer.as_deref(),
        Some("https://cloud-a.lab/descriptor#single")
    );
    assert!(
        a.explanation
            .iter()
            .any(|e| e == "price 0.008 EUR/GiB-month ≤ 0.02")
    );
}

#[test]
fn compute_in_the_us_is_cloud_b() {
    let ranking = run(&request(
        ServiceKind::Compute,
        &[
            ("region", "US"),
            ("min-vcpu", "4"),
            ("min-memory-mib", "16384"),
        ],
    ));
    assert_eq!(clouds(&ranking), ["cloud-b"]);
    // The cheapest flavor that is large enough represents the service.
    assert_eq!(
        ranking.candidates[0].offer.as_deref(),
        Some("https://cloud-b.lab/descriptor#r2large")
    );
    let all = run(&request(ServiceKind::Compute, &[("region", "NA")]));
    assert_eq!(clouds(&all), ["cloud-b"]);
}

#[test]
fn network_with_vxlan_is_cloud_b() {
    let ranking = run(&request(
        ServiceKind::Network,
        &[("encapsulation", "vxlan")],
    ));
    assert_eq!(clouds(&ranking), ["cloud-b"]);
    let none = run(&request(ServiceKind::Network, &[("encapsulation", "GRE")]));
    assert!(none.candidates.is_empty());
}

#[test]
fn strong_consistency_and_durability_bounds_filter() {
    let mut r = MatchRequest::new(ServiceKind::Storage);
    r.consistency = Some(Consistency::Strong);
    r.min_durability_nines = Some(9.0);
    assert_eq!(clouds(&run(&r)), ["cloud-a"]);
    r.min_durability_nines = Some(12.0);
    assert!(run(&r).candidates.is_empty());
}

#[test]
fn a_max_price_below_every_offer_matches_nothing() {
    for kind in [ServiceKind::Storage, ServiceKind::Compute] {
        let mut r = MatchRequest::new(kind);
        r.max_price = Some(Price {
            amount: 0.001,
            currency: "EUR".into(),
        });
        assert!(run(&r).candidates.is_empty(), "{kind}");
    }
    // Another currency never compares.
    let r = request(ServiceKind::Storage, &[("max-price", "100 USD")]);
    assert!(run(&r).candidates.is_empty());
}

#[test]
fn an_offline_cloud_is_left_out_with_the_reason() {
    let r = request(ServiceKind::Storage, &[("region", "EU")]);
    let ranking =
        match_in_store(&store_with_examples(), &r, &|id: &str| id != "cloud-a").expect("match");
    assert_eq!(clouds(&ranking), ["cloud-c"]);
    assert_eq!(
        ranking.left_out_explanations(),
        ["cloud-a left out: offline"]
    );
}

#[test]
fn a_graph_that_claims_another_cloud_answers_nothing() {
    let store = Store::new().expect("store");
    let turtle = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cloud-a.ttl"))
        .expect("example");
    let graph = NamedNode::new(format!("{CLOUD_GRAPH_PREFIX}cloud-z")).expect("IRI");
    store
        .load_from_slice(
            RdfParser::from_format(RdfFormat::Turtle).with_default_graph(graph),
            &turtle,
        )
        .expect("loads");
    let ranking = match_in_store(
        &store,
        &MatchRequest::new(ServiceKind::Storage),
        &all_online,
    )
    .expect("match");
    assert!(ranking.candidates.is_empty());
}

fn refused(kind: ServiceKind, key: &str, value: &str) -> RequestError {
    let mut r = MatchRequest::new(kind);
    match r.set(key, value) {
        Err(error) => error,
        Ok(_) => r.validate().expect_err(&format!("{key} {value} refused")),
    }
}

#[test]
fn malformed_values_are_refused_naming_the_field() {
    use ServiceKind::{Compute, Network, Storage};
    let cases = [
        (Storage, "min-replication", "0", "min_replication"),
        (Storage, "min-replication", "11", "min_replication"),
        (Storage, "min-replication", "-1", "min_replication"),
        (Storage, "min-replication", "three", "min_replication"),
        (
            Storage,
            "min-durability-nines",
            "-2",
            "min_durability_nines",
        ),
        (
            Storage,
            "min-durability-nines",
            "NaN",
            "min_durability_nines",
        ),
        (Storage, "consistency", "linearizable", "consistency"),
        (Storage, "region", "XX1", "region"),
        (Storage, "region", "Europe", "region"),
        (Storage, "max-price", "-0.02EUR", "max_price"),
        (Storage, "max-price", "0.02eur", "max_price"),
        (Storage, "max-price", "0.02EURO", "max_price"),
        (Storage, "max-price", "NaNEUR", "max_price"),
        (Storage, "max-price", "cheap", "max_price"),
        (Storage, "min-availability", "101", "min_availability"),
        (Storage, "min-availability", "inf", "min_availability"),
        (Compute, "min-vcpu", "0", "min_vcpu"),
        (Compute, "min-memory-mib", "-512", "min_memory_mib"),
        (Network, "encapsulation", "MPLS", "encapsulation"),
        (Compute, "min-replication", "3", "min_replication"),
        (Storage, "min-vcpu", "2", "min_vcpu"),
    ];
    for (kind, key, value, field) in cases {
        let error = refused(kind, key, value);
        assert_eq!(error.field(), Some(field), "{key} {value}: {error}");
        assert!(error.to_string().starts_with(field), "{error}");
    }
    let error = refused(Storage, "cheapest", "yes");
    assert!(matches!(error, RequestError::UnknownConstraint { .. }));
}

#[test]
fn typed_values_are_validated_too() {
    let mut r = MatchRequest::new(ServiceKind::Storage);
    r.min_availability = Some(f64::NAN);
    assert_eq!(
        r.validate().expect_err("NaN").field(),
        Some("min_availability")
    );
    let mut r = MatchRequest::new(ServiceKind::Storage);
    r.max_price = Some(Price {
        amount: 1.0,
        currency: "E\"R".into(),
    });
    let error = r.validate().expect_err("bad currency");
    assert!(error.to_string().contains("max_price"), "{error}");
    let mut r = MatchRequest::new(ServiceKind::Storage);
    r.region = Some(RegionFilter::Area("MARS".into()));
    assert!(
        r.validate()
            .expect_err("unknown area")
            .to_string()
            .contains("MARS")
    );
}

#[test]
fn sparql_injection_in_a_region_code_is_refused() {
    let attack = r#"DE" } } ; DROP ALL ; SELECT * { ?s ?p ?o #"#;
    let error = attack.parse::<RegionFilter>().expect_err("refused");
    assert_eq!(error.field(), Some("region"));
    let mut r = MatchRequest::new(ServiceKind::Storage);
    r.region = Some(RegionFilter::Country(attack.into()));
    assert_eq!(r.validate().expect_err("refused").field(), Some("region"));
    assert!(match_in_store(&store_with_examples(), &r, &all_online).is_err());
    // Even unvalidated, the text can only ever be a string literal.
    let mut r = MatchRequest::new(ServiceKind::Storage);
    r.max_price = Some(Price {
        amount: 1.0,
        currency: attack.into(),
    });
    let query = r.to_sparql();
    assert!(!query.contains(r#"DE" }"#), "{query}");
    assert!(
        oxigraph::sparql::SparqlEvaluator::new()
            .parse_query(&query)
            .is_ok()
    );
}

#[test]
fn an_unvalidated_bad_region_matches_nothing() {
    let mut r = MatchRequest::new(ServiceKind::Storage);
    r.region = Some(RegionFilter::Area("MARS".into()));
    let results = oxigraph::sparql::SparqlEvaluator::new()
        .parse_query(&r.to_sparql())
        .expect("parses")
        .on_store(&store_with_examples())
        .execute()
        .expect("runs");
    let oxigraph::sparql::QueryResults::Solutions(mut rows) = results else {
        panic!("a SELECT gives solutions")
    };
    assert!(rows.next().is_none());
}
