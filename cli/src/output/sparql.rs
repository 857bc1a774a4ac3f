//! `intercloudctl query`: SPARQL JSON results read back (with oxigraph's
//! parser) and shown as an aligned table, or as `true`/`false` for ASK.

use anyhow::Context as _;
use oxigraph::model::Term;
use oxigraph::sparql::results::{
    QueryResultsFormat, QueryResultsParser, SliceQueryResultsParserOutput,
};

use super::iri::compact;
use super::table::Table;

/// SPARQL JSON results (`application/sparql-results+json`) as text: a
/// table with one column per variable and a row count for SELECT, `true`
/// or `false` for ASK.
pub fn results_table(json: &[u8]) -> anyhow::Result<String> {
    let parsed = QueryResultsParser::from_format(QueryResultsFormat::Json)
        .for_slice(json)
        .context("the root's SPARQL JSON results do not parse")?;
    let solutions = match parsed {
        SliceQueryResultsParserOutput::Boolean(answer) => return Ok(format!("{answer}\n")),
        SliceQueryResultsParserOutput::Solutions(solutions) => solutions,
    };
    let variables = solutions.variables().to_vec();
    let headers: Vec<&str> = variables.iter().map(|v| v.as_str()).collect();
    let mut table = Table::new(&headers);
    let mut rows = 0_usize;
    for solution in solutions {
        let solution = solution.context("the root's SPARQL JSON results do not parse")?;
        table.row(
            variables
                .iter()
                .map(|v| solution.get(v).map(cell).unwrap_or_default())
                .collect(),
        );
        rows += 1;
    }
    let count = if rows == 1 {
        "(1 row)\n".to_owned()
    } else {
        format!("({rows} rows)\n")
    };
    Ok(table.render() + &count)
}

/// A term for reading: IRIs compacted (`ic:Strong`) or in angle brackets,
/// literals by their value (with `@lang` when tagged), blank nodes `_:id`.
fn cell(term: &Term) -> String {
    match term {
        Term::NamedNode(node) => {
            compact(node.as_str()).unwrap_or_else(|| format!("<{}>", node.as_str()))
        }
        Term::Literal(literal) => match literal.language() {
            Some(language) => format!("{}@{language}", literal.value()),
            None => literal.value().to_owned(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_results_become_an_aligned_table_with_a_row_count() {
        let json = br#"{
            "head": {"vars": ["cloud", "service", "price", "label"]},
            "results": {"bindings": [
                {
                    "cloud": {"type": "literal", "value": "cloud-a"},
                    "service": {"type": "uri", "value": "https://cloud-a.lab/descriptor#objectStorage"},
                    "price": {"type": "literal", "value": "0.021", "datatype": "http://www.w3.org/2001/XMLSchema#decimal"},
                    "label": {"type": "literal", "value": "standard", "xml:lang": "en"}
                },
                {
                    "cloud": {"type": "literal", "value": "cloud-b"},
                    "service": {"type": "uri", "value": "https://w3id.org/intercloud/ontology#Strong"},
                    "label": {"type": "bnode", "value": "b0"}
                }
            ]}
        }"#;
        assert_eq!(
            results_table(json).expect("table"),
            "cloud     service                                          price   label\n\
             cloud-a   <https://cloud-a.lab/descriptor#objectStorage>   0.021   standard@en\n\
             cloud-b   ic:Strong                                        -       _:b0\n\
             (2 rows)\n"
        );
    }

    #[test]
    fn an_empty_select_shows_its_header_and_zero_rows() {
        let json = br#"{"head": {"vars": ["s"]}, "results": {"bindings": []}}"#;
        assert_eq!(results_table(json).expect("table"), "s\n(0 rows)\n");
        let one = br#"{"head": {"vars": ["n"]}, "results": {"bindings": [{"n": {"type": "literal", "value": "3", "datatype": "http://www.w3.org/2001/XMLSchema#integer"}}]}}"#;
        assert_eq!(results_table(one).expect("table"), "n\n3\n(1 row)\n");
    }

    #[test]
    fn ask_results_print_true_or_false() {
        assert_eq!(
            results_table(br#"{"head": {}, "boolean": true}"#).expect("ask"),
            "true\n"
        );
        assert_eq!(
            results_table(br#"{"head": {}, "boolean": false}"#).expect("ask"),
            "false\n"
        );
    }

    #[test]
    fn garbage_is_an_error() {
        let error = results_table(b"<html>").expect_err("not json");
        assert!(
            error
                .to_string()
                .starts_with("the root's SPARQL JSON results do not parse"),
            "{error}"
        );
    }
}
