//! `query 'SPARQL'`: a read-only SPARQL query over the root's directory.
//!
//! The CLI does not parse SPARQL: for its own renderings it asks the root
//! for the form's default format (SPARQL JSON for SELECT and ASK, Turtle for
//! CONSTRUCT and DESCRIBE) and picks the rendering from the form the root
//! reports.

use std::io::Read as _;
use std::path::Path;

use intercloud_proto::v1::QueryRequest;

use super::{DirectorySession, Globals};
use crate::args::{QueryArgs, QueryFormat};
use crate::output::{Format, results_table};
use crate::report::hinted;

/// `Directory.Query`.
pub async fn run(globals: &Globals, args: &QueryArgs) -> anyhow::Result<String> {
    let query = read_query(args)?;
    let plan = Plan::new(args.format, globals.format);
    let DirectorySession { mut client, remote } = DirectorySession::connect(globals).await?;
    let request = QueryRequest {
        query,
        format: plan.wire_format().to_owned(),
    };
    let response = remote
        .call("Directory.Query", client.query(request))
        .await?;
    plan.text(&response.form, &response.body)
}

/// What to ask the root for, and what to do with its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// The form's default format, rendered for reading: SELECT as a table,
    /// ASK as `true`/`false`, graphs as the Turtle they came in.
    Readable,
    /// This format (a name the root knows), printed as it came.
    Raw(&'static str),
}

impl Plan {
    /// `--format` wins; `--output json` means `--format json`.
    fn new(format: Option<QueryFormat>, output: Format) -> Self {
        match (format, output) {
            (None | Some(QueryFormat::Table), Format::Table) => Self::Readable,
            (None | Some(QueryFormat::Table), Format::Json) => Self::Raw("json"),
            (Some(format), _) => Self::Raw(match format {
                // Handled above; listed so that a new variant is not forgotten.
                QueryFormat::Table | QueryFormat::Json => "json",
                QueryFormat::Csv => "csv",
                QueryFormat::Tsv => "tsv",
                QueryFormat::Xml => "xml",
                QueryFormat::Turtle => "turtle",
                QueryFormat::Ntriples => "ntriples",
                QueryFormat::Jsonld => "jsonld",
                QueryFormat::Rdfxml => "rdfxml",
            }),
        }
    }

    /// `QueryRequest.format`: empty for the form's default.
    fn wire_format(self) -> &'static str {
        match self {
            Self::Readable => "",
            Self::Raw(name) => name,
        }
    }

    /// The answer as printed, ending with a newline.
    fn text(self, form: &str, body: &[u8]) -> anyhow::Result<String> {
        if self == Self::Readable && matches!(form, "SELECT" | "ASK") {
            return results_table(body);
        }
        let mut text = String::from_utf8_lossy(body).into_owned();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        Ok(text)
    }
}

/// The query text: the argument, or the file, `-` being standard input.
fn read_query(args: &QueryArgs) -> anyhow::Result<String> {
    let text = match (&args.query, &args.file) {
        (Some(query), _) if query != "-" => query.clone(),
        (Some(_), _) => read_stdin()?,
        (None, Some(file)) if file == Path::new("-") => read_stdin()?,
        (None, Some(file)) => std::fs::read_to_string(file).map_err(|e| {
            hinted(
                format!("cannot read {}: {e}", file.display()),
                "check the path",
            )
        })?,
        (None, None) => String::new(),
    };
    if text.trim().is_empty() {
        return Err(hinted(
            "the query is empty",
            "pass a SPARQL query, e.g. intercloudctl query 'SELECT ?g WHERE { GRAPH ?g {} }'",
        ));
    }
    Ok(text)
}

fn read_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| anyhow::anyhow!("cannot read the query from standard input: {e}"))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use crate::report::line;

    use super::*;

    #[test]
    fn the_plan_follows_format_then_output() {
        assert_eq!(Plan::new(None, Format::Table), Plan::Readable);
        assert_eq!(
            Plan::new(Some(QueryFormat::Table), Format::Table),
            Plan::Readable
        );
        assert_eq!(Plan::new(None, Format::Json), Plan::Raw("json"));
        assert_eq!(
            Plan::new(Some(QueryFormat::Table), Format::Json),
            Plan::Raw("json")
        );
        assert_eq!(
            Plan::new(Some(QueryFormat::Csv), Format::Json),
            Plan::Raw("csv")
        );
        assert_eq!(
            Plan::new(Some(QueryFormat::Ntriples), Format::Table),
            Plan::Raw("ntriples")
        );
        assert_eq!(Plan::Readable.wire_format(), "");
        assert_eq!(Plan::Raw("tsv").wire_format(), "tsv");
    }

    #[test]
    fn readable_answers_render_by_form() {
        let select = br#"{"head":{"vars":["c"]},"results":{"bindings":[{"c":{"type":"literal","value":"cloud-a"}}]}}"#;
        assert_eq!(
            Plan::Readable.text("SELECT", select).expect("select"),
            "c\ncloud-a\n(1 row)\n"
        );
        assert_eq!(
            Plan::Readable
                .text("ASK", br#"{"head":{},"boolean":true}"#)
                .expect("ask"),
            "true\n"
        );
        let turtle = b"<https://a> <https://b> \"c\" .";
        assert_eq!(
            Plan::Readable.text("CONSTRUCT", turtle).expect("construct"),
            "<https://a> <https://b> \"c\" .\n"
        );
        // Raw answers are printed as they came, JSON included.
        assert_eq!(
            Plan::Raw("json").text("SELECT", select).expect("raw"),
            format!("{}\n", String::from_utf8_lossy(select))
        );
        assert_eq!(
            Plan::Raw("csv")
                .text("SELECT", b"c\r\ncloud-a\r\n")
                .expect("csv"),
            "c\r\ncloud-a\r\n"
        );
        assert_eq!(Plan::Raw("csv").text("SELECT", b"").expect("empty"), "");
    }

    #[test]
    fn the_query_comes_from_the_argument_or_a_file() {
        let args = QueryArgs {
            query: Some("ASK {}".into()),
            file: None,
            format: None,
        };
        assert_eq!(read_query(&args).expect("arg"), "ASK {}");
        let mut file = tempfile::NamedTempFile::new().expect("temp");
        file.write_all(b"SELECT * { ?s ?p ?o }\n").expect("write");
        let args = QueryArgs {
            query: None,
            file: Some(file.path().to_owned()),
            format: None,
        };
        assert_eq!(read_query(&args).expect("file"), "SELECT * { ?s ?p ?o }\n");
        let args = QueryArgs {
            query: Some("  \n".into()),
            file: None,
            format: None,
        };
        let error = line(&read_query(&args).expect_err("empty"));
        assert!(
            error.starts_with("error: the query is empty — pass a SPARQL query"),
            "{error}"
        );
        let args = QueryArgs {
            query: None,
            file: Some("/nonexistent/q.rq".into()),
            format: None,
        };
        let error = line(&read_query(&args).expect_err("missing"));
        assert!(
            error.starts_with("error: cannot read /nonexistent/q.rq: "),
            "{error}"
        );
    }
}
