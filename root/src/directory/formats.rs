//! The serialisations a query answer can take, chosen by name (`json`,
//! `turtle`, …) or by HTTP content negotiation over an `Accept` header.

use oxigraph::io::{JsonLdProfileSet, RdfFormat};
use oxigraph::sparql::results::QueryResultsFormat;

/// The four query forms of SPARQL 1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Rows of bindings.
    Select,
    /// One boolean.
    Ask,
    /// A graph built from a template.
    Construct,
    /// A graph about resources.
    Describe,
}

impl Form {
    /// `SELECT`, `ASK`, …
    pub fn name(self) -> &'static str {
        match self {
            Self::Select => "SELECT",
            Self::Ask => "ASK",
            Self::Construct => "CONSTRUCT",
            Self::Describe => "DESCRIBE",
        }
    }

    fn gives_graph(self) -> bool {
        matches!(self, Self::Construct | Self::Describe)
    }
}

/// How an answer is serialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerFormat {
    /// SELECT and ASK answers.
    Results(QueryResultsFormat),
    /// CONSTRUCT and DESCRIBE answers.
    Graph(RdfFormat),
}

impl AnswerFormat {
    /// The media type of the answer (the `Content-Type`).
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Results(f) => f.media_type(),
            Self::Graph(f) => f.media_type(),
        }
    }
}

/// A format that cannot serve the query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The name or media type is not one this endpoint writes for this form.
    #[error("{form} answers cannot be written as {requested:?}; use one of: {}", names(.form))]
    Unknown {
        /// The query form.
        form: &'static str,
        /// What was asked for.
        requested: String,
    },
    /// No media range of the `Accept` header matches a format of this form.
    #[error("no format in Accept: {accept:?} fits a {form} answer; acceptable: {}", media_types(.form))]
    NotAcceptable {
        /// The query form.
        form: &'static str,
        /// The header.
        accept: String,
    },
}

struct Offer {
    names: &'static [&'static str],
    media_types: &'static [&'static str],
    format: AnswerFormat,
}

const RESULTS: &[Offer] = &[
    Offer {
        names: &["json", "srj"],
        media_types: &["application/sparql-results+json", "application/json"],
        format: AnswerFormat::Results(QueryResultsFormat::Json),
    },
    Offer {
        names: &["xml", "srx"],
        media_types: &[
            "application/sparql-results+xml",
            "application/xml",
            "text/xml",
        ],
        format: AnswerFormat::Results(QueryResultsFormat::Xml),
    },
    Offer {
        names: &["csv"],
        media_types: &["text/csv"],
        format: AnswerFormat::Results(QueryResultsFormat::Csv),
    },
    Offer {
        names: &["tsv"],
        media_types: &["text/tab-separated-values"],
        format: AnswerFormat::Results(QueryResultsFormat::Tsv),
    },
];

const GRAPHS: &[Offer] = &[
    Offer {
        names: &["turtle", "ttl"],
        media_types: &["text/turtle"],
        format: AnswerFormat::Graph(RdfFormat::Turtle),
    },
    Offer {
        names: &["ntriples", "n-triples", "nt"],
        media_types: &["application/n-triples"],
        format: AnswerFormat::Graph(RdfFormat::NTriples),
    },
    Offer {
        names: &["jsonld", "json-ld", "json"],
        media_types: &["application/ld+json"],
        format: AnswerFormat::Graph(RdfFormat::JsonLd {
            profile: JsonLdProfileSet::empty(),
        }),
    },
    Offer {
        names: &["rdfxml", "rdf-xml", "xml"],
        media_types: &["application/rdf+xml"],
        format: AnswerFormat::Graph(RdfFormat::RdfXml),
    },
];

fn offers(form: Form) -> &'static [Offer] {
    if form.gives_graph() { GRAPHS } else { RESULTS }
}

fn names(form: &str) -> String {
    let form = if matches!(form, "CONSTRUCT" | "DESCRIBE") {
        GRAPHS
    } else {
        RESULTS
    };
    form.iter()
        .map(|o| o.names[0])
        .collect::<Vec<_>>()
        .join(", ")
}

fn media_types(form: &str) -> String {
    let form = if matches!(form, "CONSTRUCT" | "DESCRIBE") {
        GRAPHS
    } else {
        RESULTS
    };
    form.iter()
        .map(|o| o.media_types[0])
        .collect::<Vec<_>>()
        .join(", ")
}

/// The format named `name` (`json`, `csv`, `turtle`, … or a media type);
/// an empty name picks the form's default (JSON results, Turtle graphs).
pub fn by_name(form: Form, name: &str) -> Result<AnswerFormat, FormatError> {
    let name = name.trim().to_ascii_lowercase();
    let offers = offers(form);
    if name.is_empty() {
        return Ok(offers[0].format);
    }
    offers
        .iter()
        .find(|o| o.names.contains(&name.as_str()) || o.media_types.contains(&name.as_str()))
        .map(|o| o.format)
        .ok_or_else(|| FormatError::Unknown {
            form: form.name(),
            requested: name,
        })
}

/// One media range of an `Accept` header.
struct Range<'a> {
    kind: &'a str,
    subtype: &'a str,
    quality: f32,
}

fn ranges(accept: &str) -> Vec<Range<'_>> {
    accept
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let (kind, subtype) = parts.next()?.split_once('/')?;
            let quality = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1.0), |(_, v)| v.trim().parse::<f32>().ok())?;
            Some(Range {
                kind: kind.trim(),
                subtype: subtype.trim(),
                quality: quality.clamp(0.0, 1.0),
            })
        })
        .collect()
}

/// How well `media_type` is accepted: the quality of the most specific
/// matching range (exact, then `type/*`, then `*/*`), if any.
fn quality(ranges: &[Range<'_>], media_type: &str) -> Option<f32> {
    let (kind, subtype) = media_type.split_once('/')?;
    let mut best: Option<(u8, f32)> = None;
    for range in ranges {
        let specificity = if range.kind.eq_ignore_ascii_case(kind)
            && range.subtype.eq_ignore_ascii_case(subtype)
        {
            2
        } else if range.kind.eq_ignore_ascii_case(kind) && range.subtype == "*" {
            1
        } else if range.kind == "*" && range.subtype == "*" {
            0
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, range.quality));
        }
    }
    best.map(|(_, q)| q)
}

/// Content negotiation: the format of the form that the `Accept` header
/// rates highest (ties go to the first of JSON, XML, CSV, TSV, or of
/// Turtle, N-Triples, JSON-LD, RDF/XML). A missing or empty header means
/// anything.
pub fn negotiate(form: Form, accept: Option<&str>) -> Result<AnswerFormat, FormatError> {
    let accept = accept
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or("*/*");
    let ranges = ranges(accept);
    let mut best: Option<(f32, AnswerFormat)> = None;
    for offer in offers(form) {
        let q = offer
            .media_types
            .iter()
            .filter_map(|m| quality(&ranges, m))
            .fold(None, |acc: Option<f32>, q| {
                Some(acc.map_or(q, |a| a.max(q)))
            });
        if let Some(q) = q
            && q > 0.0
            && best.is_none_or(|(b, _)| q > b)
        {
            best = Some((q, offer.format));
        }
    }
    best.map(|(_, f)| f)
        .ok_or_else(|| FormatError::NotAcceptable {
            form: form.name(),
            accept: accept.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(f: QueryResultsFormat) -> Result<AnswerFormat, FormatError> {
        Ok(AnswerFormat::Results(f))
    }

    #[test]
    fn each_results_media_type_is_negotiated() {
        for (accept, format) in [
            ("application/sparql-results+json", QueryResultsFormat::Json),
            ("application/sparql-results+xml", QueryResultsFormat::Xml),
            ("text/csv", QueryResultsFormat::Csv),
            ("text/tab-separated-values", QueryResultsFormat::Tsv),
            ("application/json", QueryResultsFormat::Json),
        ] {
            assert_eq!(
                negotiate(Form::Select, Some(accept)),
                results(format),
                "{accept}"
            );
        }
    }

    #[test]
    fn no_header_and_wildcards_give_the_default() {
        assert_eq!(
            negotiate(Form::Select, None),
            results(QueryResultsFormat::Json)
        );
        assert_eq!(
            negotiate(Form::Ask, Some("*/*")),
            results(QueryResultsFormat::Json)
        );
        assert_eq!(
            negotiate(Form::Construct, Some("text/*")),
            Ok(AnswerFormat::Graph(RdfFormat::Turtle))
        );
    }

    #[test]
    fn quality_values_order_the_choice() {
        assert_eq!(
            negotiate(
                Form::Select,
                Some("application/sparql-results+json;q=0.5, text/csv;q=0.9, */*;q=0.1")
            ),
            results(QueryResultsFormat::Csv)
        );
        assert_eq!(
            negotiate(Form::Select, Some("text/csv;q=0, */*")),
            results(QueryResultsFormat::Json)
        );
        assert_eq!(
            negotiate(Form::Select, Some("*/*;q=0.2, text/tab-separated-values")),
            results(QueryResultsFormat::Tsv)
        );
    }

    #[test]
    fn an_unservable_header_is_not_acceptable_and_says_what_is() {
        let error = negotiate(Form::Select, Some("image/png")).expect_err("406");
        assert!(matches!(error, FormatError::NotAcceptable { .. }));
        assert!(
            error
                .to_string()
                .contains("application/sparql-results+json"),
            "{error}"
        );
        let error = negotiate(Form::Describe, Some("text/csv")).expect_err("406");
        assert!(error.to_string().contains("text/turtle"), "{error}");
    }

    #[test]
    fn names_pick_formats_per_form() {
        assert_eq!(by_name(Form::Select, ""), results(QueryResultsFormat::Json));
        assert_eq!(
            by_name(Form::Select, "CSV"),
            results(QueryResultsFormat::Csv)
        );
        assert_eq!(
            by_name(Form::Construct, ""),
            Ok(AnswerFormat::Graph(RdfFormat::Turtle))
        );
        assert_eq!(
            by_name(Form::Construct, "ntriples"),
            Ok(AnswerFormat::Graph(RdfFormat::NTriples))
        );
        let error = by_name(Form::Construct, "csv").expect_err("no csv graphs");
        assert!(
            error
                .to_string()
                .contains("turtle, ntriples, jsonld, rdfxml"),
            "{error}"
        );
        assert!(by_name(Form::Select, "yaml").is_err());
    }
}
