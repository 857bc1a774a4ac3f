//! Constraint matching: a typed request ([`MatchRequest`]) becomes a SPARQL
//! SELECT over every cloud's named graph ([`MatchRequest::to_sparql`]); its
//! rows ([`MatchRow`]) are ranked and explained ([`rank`]), leaving out the
//! clouds that are offline. [`match_in_store`] does all three on an
//! oxigraph store the caller owns; nothing here does I/O.
//!
//! Map: `request.rs` (the request, its parsing and validation), `areas.rs`
//! (area codes from the embedded ontology), `sparql.rs` (the query),
//! `rank.rs` (rows, scores, explanations).

mod areas;
mod rank;
mod request;
mod sparql;

pub use rank::{Candidate, LeftOut, MatchRow, OfferPrice, Ranking, RowError, rank};
pub use request::{
    Consistency, Encapsulation, MAX_REPLICATION, MatchRequest, Price, RegionFilter, RequestError,
    ServiceKind,
};
pub use sparql::{CLOUD_GRAPH_PREFIX, MATCH_VARIABLES};

use oxigraph::sparql::{QueryEvaluationError, QueryResults, SparqlEvaluator, SparqlSyntaxError};
use oxigraph::store::Store;

/// Why a match could not be computed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MatchError {
    /// The request has a malformed or inapplicable constraint.
    #[error("invalid match request: {0}")]
    Request(#[from] RequestError),
    /// The generated query does not parse: a bug in this crate.
    #[error("generated matching query does not parse: {0}")]
    Syntax(#[from] SparqlSyntaxError),
    /// The store failed while evaluating the query.
    #[error("matching query failed: {0}")]
    Evaluation(#[from] QueryEvaluationError),
}

/// Validates `request`, runs its query on `store` and ranks the rows.
/// Clouds for which `online` returns false are left out; a cloud whose
/// descriptor holds a value of the wrong type is left out with the reason,
/// rather than failing the whole match.
pub fn match_in_store(
    store: &Store,
    request: &MatchRequest,
    online: &dyn Fn(&str) -> bool,
) -> Result<Ranking, MatchError> {
    request.validate()?;
    let query = request.to_sparql();
    let results = SparqlEvaluator::new()
        .parse_query(&query)?
        .on_store(store)
        .execute()?;
    let mut rows = Vec::new();
    let mut unreadable = Vec::new();
    if let QueryResults::Solutions(solutions) = results {
        for solution in solutions {
            let solution = solution?;
            match MatchRow::from_solution(&solution) {
                Ok(row) => rows.push(row),
                Err(error) => {
                    if let Some(oxigraph::model::Term::Literal(id)) = solution.get("cloudId") {
                        unreadable.push(LeftOut {
                            cloud_id: id.value().to_owned(),
                            reason: format!("descriptor value unreadable: {error}"),
                        });
                    }
                }
            }
        }
    }
    let mut ranking = rank(rows, request, online);
    for left_out in unreadable {
        if !ranking.left_out.contains(&left_out) {
            ranking.left_out.push(left_out);
        }
    }
    ranking.left_out.sort_by(|a, b| a.cloud_id.cmp(&b.cloud_id));
    Ok(ranking)
}
