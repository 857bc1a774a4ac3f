//! Read-only SPARQL over the directory's store, under the root's limits:
//! the query is cancelled at its deadline and the answer is cut off (and
//! refused) past a number of results or bytes. Updates are recognised and
//! refused, with the way descriptors do change.

use std::cell::Cell;
use std::io::Write;
use std::time::Duration;

use oxigraph::io::RdfSerializer;
use oxigraph::model::{GraphName, NamedNode, NamedOrBlankNode};
use oxigraph::sparql::results::QueryResultsSerializer;
use oxigraph::sparql::{CancellationToken, QueryEvaluationError, QueryResults, SparqlEvaluator};
use oxigraph::store::Store;
use spargebra::{Query, SparqlParser};

use super::formats::{AnswerFormat, Form, FormatError};

/// The limits of one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Cancelled when still running after this long.
    pub timeout: Duration,
    /// Most rows or triples in one answer.
    pub max_results: u64,
    /// Most bytes in one serialised answer.
    pub max_bytes: u64,
    /// Most queries evaluated at once; more wait for a slot.
    pub max_concurrent: usize,
}

/// A serialised answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The query's form.
    pub form: Form,
    /// Its `Content-Type`.
    pub media_type: &'static str,
    /// The serialised answer.
    pub body: Vec<u8>,
    /// Rows, triples, or 1 for ASK.
    pub results: u64,
}

/// Why a query has no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The text is not a SPARQL query.
    #[error("the SPARQL query does not parse: {0}")]
    Syntax(String),
    /// The text is a SPARQL update.
    #[error(
        "SPARQL UPDATE is refused: the directory is read-only here; a cloud changes its own graph with Directory.Publish (intercloudctl publish)"
    )]
    Update,
    /// No format fits.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The query ran past its deadline and was cancelled.
    #[error("the query ran longer than the root's limit of {} ms and was cancelled; narrow it (fewer joins, a LIMIT)", .0.as_millis())]
    Timeout(Duration),
    /// The answer has too many results.
    #[error(
        "the answer has more than the root's limit of {0} results; add a LIMIT or narrow the query"
    )]
    TooManyResults(u64),
    /// The answer is too large.
    #[error(
        "the answer is larger than the root's limit of {0} bytes; select fewer variables or add a LIMIT"
    )]
    TooLarge(u64),
    /// The store failed.
    #[error("the query failed: {0}")]
    Evaluation(String),
}

/// A parsed query and its form.
#[derive(Debug, Clone)]
pub struct ParsedQuery {
    query: Query,
    /// Its form.
    pub form: Form,
    /// The protocol's `default-graph-uri` and `named-graph-uri`, which
    /// override the query's FROM and FROM NAMED when either is given.
    dataset: Option<(Vec<NamedNode>, Vec<NamedNode>)>,
}

impl ParsedQuery {
    /// Sets the RDF dataset as the SPARQL protocol's `default-graph-uri`
    /// and `named-graph-uri` parameters do; no-op when both are empty.
    pub fn with_dataset(mut self, default: Vec<NamedNode>, named: Vec<NamedNode>) -> Self {
        if !default.is_empty() || !named.is_empty() {
            self.dataset = Some((default, named));
        }
        self
    }
}

/// Parses `text` as a query; an update is refused as such.
pub fn parse(text: &str) -> Result<ParsedQuery, QueryError> {
    let query = match SparqlParser::new().parse_query(text) {
        Ok(query) => query,
        Err(_) if SparqlParser::new().parse_update(text).is_ok() => return Err(QueryError::Update),
        Err(error) => return Err(QueryError::Syntax(error.to_string())),
    };
    let form = match &query {
        Query::Select { .. } => Form::Select,
        Query::Ask { .. } => Form::Ask,
        Query::Construct { .. } => Form::Construct,
        Query::Describe { .. } => Form::Describe,
    };
    Ok(ParsedQuery {
        query,
        form,
        dataset: None,
    })
}

/// Runs `query` on `store` and serialises its answer as `format`. The
/// default graph is the union of every named graph unless the query names
/// its dataset (FROM, FROM NAMED). SERVICE is not evaluated (oxigraph is
/// built without its HTTP client, so there is no handler for it). `cancel`
/// stops the evaluation (the caller cancels it at the deadline; the error
/// is then [`QueryError::Timeout`]).
pub fn run(
    store: &Store,
    query: ParsedQuery,
    format: AnswerFormat,
    limits: QueryLimits,
    cancel: CancellationToken,
) -> Result<Answer, QueryError> {
    let ParsedQuery {
        query,
        form,
        dataset,
    } = query;
    let mut prepared = SparqlEvaluator::new()
        .with_cancellation_token(cancel)
        .for_query(query);
    if let Some((default, named)) = dataset {
        let target = prepared.dataset_mut();
        target.set_default_graph(default.into_iter().map(GraphName::NamedNode).collect());
        target.set_available_named_graphs(
            named.into_iter().map(NamedOrBlankNode::NamedNode).collect(),
        );
    } else if prepared.dataset().is_default_dataset() {
        prepared.dataset_mut().set_default_graph_as_union();
    }
    let evaluation = |e: QueryEvaluationError| match e {
        QueryEvaluationError::Cancelled => QueryError::Timeout(limits.timeout),
        other => QueryError::Evaluation(other.to_string()),
    };
    let results = prepared.on_store(store).execute().map_err(evaluation)?;
    let overflowed = Cell::new(false);
    let mut body = Capped {
        bytes: Vec::new(),
        limit: limits.max_bytes,
        overflowed: &overflowed,
    };
    let io = |e: std::io::Error| {
        if overflowed.get() {
            QueryError::TooLarge(limits.max_bytes)
        } else {
            QueryError::Evaluation(e.to_string())
        }
    };
    let mut results_count = 0_u64;
    let mut count = || {
        results_count += 1;
        if results_count > limits.max_results {
            Err(QueryError::TooManyResults(limits.max_results))
        } else {
            Ok(())
        }
    };
    match (results, format) {
        (QueryResults::Boolean(value), AnswerFormat::Results(f)) => {
            count()?;
            QueryResultsSerializer::from_format(f)
                .serialize_boolean_to_writer(&mut body, value)
                .map_err(&io)?;
        }
        (QueryResults::Solutions(solutions), AnswerFormat::Results(f)) => {
            let mut writer = QueryResultsSerializer::from_format(f)
                .serialize_solutions_to_writer(&mut body, solutions.variables().to_vec())
                .map_err(&io)?;
            for solution in solutions {
                let solution = solution.map_err(evaluation)?;
                count()?;
                if let Err(e) = writer.serialize(&solution) {
                    drop(writer);
                    return Err(io(e));
                }
            }
            if let Err(e) = writer.finish() {
                return Err(io(e));
            }
        }
        (QueryResults::Graph(triples), AnswerFormat::Graph(f)) => {
            let mut writer = RdfSerializer::from_format(f).for_writer(&mut body);
            for triple in triples {
                let triple = triple.map_err(evaluation)?;
                count()?;
                if let Err(e) = writer.serialize_triple(&triple) {
                    drop(writer);
                    return Err(io(e));
                }
            }
            if let Err(e) = writer.finish() {
                return Err(io(e));
            }
        }
        (_, format) => {
            return Err(QueryError::Evaluation(format!(
                "internal error: {} answers cannot be written as {}",
                form.name(),
                format.media_type()
            )));
        }
    }
    Ok(Answer {
        form,
        media_type: format.media_type(),
        body: body.bytes,
        results: results_count,
    })
}

/// A buffer that refuses to grow past a limit, and says so in `overflowed`.
struct Capped<'a> {
    bytes: Vec<u8>,
    limit: u64,
    overflowed: &'a Cell<bool>,
}

impl Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if (self.bytes.len() + buf.len()) as u64 > self.limit {
            self.overflowed.set(true);
            return Err(std::io::Error::other("answer too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use oxigraph::model::{GraphNameRef, NamedNodeRef, QuadRef};

    use super::*;
    use crate::directory::formats::by_name;

    const LIMITS: QueryLimits = QueryLimits {
        timeout: Duration::from_secs(5),
        max_results: 100,
        max_bytes: 1 << 20,
        max_concurrent: 2,
    };

    fn store_with(n: usize) -> Store {
        let store = Store::new().expect("store");
        let p = NamedNodeRef::new_unchecked("https://example.org/p");
        for i in 0..n {
            let s = oxigraph::model::NamedNode::new_unchecked(format!("https://example.org/s{i}"));
            let g = oxigraph::model::NamedNode::new_unchecked(format!(
                "https://example.org/g{}",
                i % 3
            ));
            store
                .insert(QuadRef::new(&s, p, &s, GraphNameRef::NamedNode(g.as_ref())))
                .expect("insert");
        }
        store
    }

    fn answer(
        store: &Store,
        text: &str,
        format: &str,
        limits: QueryLimits,
    ) -> Result<Answer, QueryError> {
        let query = parse(text)?;
        let format = by_name(query.form, format)?;
        run(store, query, format, limits, CancellationToken::new())
    }

    #[test]
    fn the_default_graph_is_the_union_of_the_named_graphs() {
        let store = store_with(6);
        let a = answer(&store, "SELECT ?s WHERE { ?s ?p ?o }", "json", LIMITS).expect("answer");
        assert_eq!(a.results, 6);
        assert_eq!(a.media_type, "application/sparql-results+json");
        let a = answer(
            &store,
            "SELECT ?s FROM <https://example.org/g0> WHERE { ?s ?p ?o }",
            "csv",
            LIMITS,
        )
        .expect("answer");
        assert_eq!(a.results, 2, "FROM narrows the default graph");
        assert!(
            String::from_utf8(a.body)
                .expect("utf8")
                .starts_with("s\r\n")
        );
    }

    #[test]
    fn the_protocol_dataset_overrides_the_union() {
        let store = store_with(6);
        let g = |i: u8| NamedNode::new_unchecked(format!("https://example.org/g{i}"));
        let query = parse("SELECT ?s WHERE { ?s ?p ?o }")
            .expect("parse")
            .with_dataset(vec![g(1)], vec![]);
        let a = run(
            &store,
            query,
            by_name(Form::Select, "").expect("f"),
            LIMITS,
            CancellationToken::new(),
        )
        .expect("answer");
        assert_eq!(a.results, 2);
        let query = parse("SELECT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
            .expect("parse")
            .with_dataset(vec![], vec![g(0), g(2)]);
        let a = run(
            &store,
            query,
            by_name(Form::Select, "").expect("f"),
            LIMITS,
            CancellationToken::new(),
        )
        .expect("answer");
        assert_eq!(a.results, 4);
    }

    #[test]
    fn each_form_is_answered() {
        let store = store_with(3);
        let ask = answer(&store, "ASK { ?s ?p ?o }", "", LIMITS).expect("ask");
        assert_eq!((ask.form, ask.results), (Form::Ask, 1));
        assert!(String::from_utf8(ask.body).expect("utf8").contains("true"));
        let construct = answer(
            &store,
            "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }",
            "ntriples",
            LIMITS,
        )
        .expect("construct");
        assert_eq!((construct.form, construct.results), (Form::Construct, 3));
        let describe =
            answer(&store, "DESCRIBE <https://example.org/s1>", "", LIMITS).expect("describe");
        assert_eq!(describe.form, Form::Describe);
        assert_eq!(describe.media_type, "text/turtle");
    }

    #[test]
    fn updates_are_refused_as_updates() {
        for update in [
            "INSERT DATA { <https://e/s> <https://e/p> <https://e/o> }",
            "DELETE WHERE { ?s ?p ?o }",
            "CLEAR ALL",
            "DROP GRAPH <https://w3id.org/intercloud/cloud/cloud-a>",
        ] {
            let error = parse(update).expect_err("refused");
            assert!(matches!(error, QueryError::Update), "{update}: {error}");
            assert!(error.to_string().contains("Directory.Publish"));
        }
        assert!(matches!(
            parse("SELEKT * WHERE {}"),
            Err(QueryError::Syntax(_))
        ));
    }

    #[test]
    fn answers_past_the_limits_are_refused() {
        let store = store_with(20);
        let few = QueryLimits {
            max_results: 5,
            ..LIMITS
        };
        let error =
            answer(&store, "SELECT * WHERE { ?s ?p ?o }", "json", few).expect_err("too many");
        assert!(matches!(error, QueryError::TooManyResults(5)), "{error}");
        let error = answer(&store, "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", "", few)
            .expect_err("too many");
        assert!(matches!(error, QueryError::TooManyResults(5)), "{error}");
        let small = QueryLimits {
            max_bytes: 200,
            ..LIMITS
        };
        let error =
            answer(&store, "SELECT * WHERE { ?s ?p ?o }", "xml", small).expect_err("too large");
        assert!(matches!(error, QueryError::TooLarge(200)), "{error}");
        assert!(answer(&store, "SELECT * WHERE { ?s ?p ?o } LIMIT 5", "json", few).is_ok());
    }

    #[test]
    fn a_cancelled_query_reports_the_timeout() {
        let store = store_with(60);
        let cancel = CancellationToken::new();
        cancel.cancel();
        let query =
            parse("SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }")
                .expect("parse");
        let format = by_name(query.form, "").expect("format");
        let error = run(&store, query, format, LIMITS, cancel).expect_err("cancelled");
        assert!(matches!(error, QueryError::Timeout(_)), "{error}");
        assert!(error.to_string().contains("5000 ms"), "{error}");
    }

    #[test]
    fn service_is_not_evaluated() {
        let store = store_with(1);
        let error = answer(
            &store,
            "SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }",
            "",
            LIMITS,
        )
        .expect_err("no service");
        assert!(matches!(error, QueryError::Evaluation(_)), "{error}");
    }
}
