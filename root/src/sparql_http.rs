//! The SPARQL 1.1 Protocol (query operation only) over HTTP/1.1 and
//! HTTP/2 on `listen.sparql`, with the same mutual TLS as the API port:
//! any member broker or operator certificate of the federation may read,
//! nobody may write. `GET /sparql?query=…`, `POST /sparql` with
//! `application/sparql-query` or an `application/x-www-form-urlencoded`
//! body; `default-graph-uri` and `named-graph-uri` are honoured; answers
//! are negotiated with `Accept` (SPARQL JSON, XML, CSV, TSV; Turtle,
//! N-Triples, JSON-LD, RDF/XML for graphs). Updates are refused with 403.
//!
//! [`interpret`] is the pure reading of a request; [`serve`] the driver.

use std::convert::Infallible;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use intercloud_trust::serve::{PeerInfo, incoming};
use oxigraph::model::NamedNode;
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tonic::transport::server::Connected as _;
use tracing::{debug, info, warn};

use crate::core::RootCore;
use crate::directory::{self, DirectoryError, QueryError, formats};

/// The endpoint's path.
pub const PATH: &str = "/sparql";

/// Largest request body (a query, or a form holding one).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// A query operation, as the protocol carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolQuery {
    /// The query text.
    pub query: String,
    /// `default-graph-uri` values.
    pub default_graphs: Vec<String>,
    /// `named-graph-uri` values.
    pub named_graphs: Vec<String>,
}

/// A request the endpoint answers with an error status and a one-line
/// text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: StatusCode,
    /// What was wrong, in words.
    pub message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

const UPDATE_REFUSED: &str = "SPARQL UPDATE is refused: this endpoint is read-only; a cloud changes its own graph with Directory.Publish (intercloudctl publish)";

/// Reads a query operation out of a request, or says why it is not one.
pub fn interpret(
    method: &Method,
    path: &str,
    query_string: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<ProtocolQuery, Refusal> {
    if path != PATH {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            format!("no such resource {path:?}; the SPARQL endpoint is {PATH}"),
        ));
    }
    let url_pairs = pairs(query_string.unwrap_or("").as_bytes());
    let media_type = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let (query, params) = match *method {
        Method::GET => {
            if has(&url_pairs, "update") {
                return Err(Refusal::new(StatusCode::FORBIDDEN, UPDATE_REFUSED));
            }
            (single(&url_pairs, "query")?, url_pairs)
        }
        Method::POST => match media_type.as_str() {
            "application/sparql-update" => {
                return Err(Refusal::new(StatusCode::FORBIDDEN, UPDATE_REFUSED));
            }
            "application/x-www-form-urlencoded" => {
                let form = pairs(body);
                if has(&form, "update") || has(&url_pairs, "update") {
                    return Err(Refusal::new(StatusCode::FORBIDDEN, UPDATE_REFUSED));
                }
                let mut all = form;
                all.extend(url_pairs);
                (single(&all, "query")?, all)
            }
            "application/sparql-query" => {
                if has(&url_pairs, "query") {
                    return Err(Refusal::new(
                        StatusCode::BAD_REQUEST,
                        "a POST with an application/sparql-query body must not also carry query= in the URL",
                    ));
                }
                let text = std::str::from_utf8(body).map_err(|_| {
                    Refusal::new(StatusCode::BAD_REQUEST, "the query body is not UTF-8")
                })?;
                (text.to_owned(), url_pairs)
            }
            "" => {
                return Err(Refusal::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "a POST needs Content-Type application/sparql-query or application/x-www-form-urlencoded",
                ));
            }
            other => {
                return Err(Refusal::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "Content-Type {other} is not a SPARQL query; use application/sparql-query or application/x-www-form-urlencoded"
                    ),
                ));
            }
        },
        _ => {
            return Err(Refusal::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {PATH}; use GET or POST"),
            ));
        }
    };
    let values = |name: &str| {
        params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    Ok(ProtocolQuery {
        query,
        default_graphs: values("default-graph-uri"),
        named_graphs: values("named-graph-uri"),
    })
}

fn pairs(input: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(input).into_owned().collect()
}

fn has(pairs: &[(String, String)], name: &str) -> bool {
    pairs.iter().any(|(k, _)| k == name)
}

fn single(pairs: &[(String, String)], name: &str) -> Result<String, Refusal> {
    let mut found = pairs.iter().filter(|(k, _)| k == name);
    match (found.next(), found.next()) {
        (Some((_, v)), None) => Ok(v.clone()),
        (None, _) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("missing the {name} parameter: {PATH}?{name}=<SPARQL>"),
        )),
        (Some(_), Some(_)) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("the {name} parameter is given more than once"),
        )),
    }
}

fn graph_iris(values: &[String], parameter: &str) -> Result<Vec<NamedNode>, Refusal> {
    values
        .iter()
        .map(|v| {
            NamedNode::new(v).map_err(|e| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    format!("{parameter} {v:?} is not an IRI: {e}"),
                )
            })
        })
        .collect()
}

/// The HTTP status and body of a directory error.
fn refusal_of(error: &DirectoryError) -> Refusal {
    let status = match error {
        DirectoryError::Query(QueryError::Update) => StatusCode::FORBIDDEN,
        DirectoryError::Query(QueryError::Syntax(_)) => StatusCode::BAD_REQUEST,
        DirectoryError::Query(QueryError::Format(directory::FormatError::NotAcceptable {
            ..
        })) => StatusCode::NOT_ACCEPTABLE,
        DirectoryError::Query(QueryError::Timeout(_)) => StatusCode::SERVICE_UNAVAILABLE,
        DirectoryError::Query(QueryError::TooManyResults(_) | QueryError::TooLarge(_)) => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Refusal::new(status, error.to_string())
}

fn text(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, POST"));
    }
    response
}

async fn answer(
    core: Arc<RootCore>,
    peer: PeerInfo,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Refusal> {
    let caller = peer
        .certificate
        .clone()
        .ok_or_else(|| Refusal::new(StatusCode::UNAUTHORIZED, "no verified client certificate"))?;
    core.not_revoked(&caller)
        .await
        .map_err(|status| Refusal::new(StatusCode::FORBIDDEN, status.message()))?;
    let (parts, body) = request.into_parts();
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let content_type = header(CONTENT_TYPE).map(str::to_owned);
    let accept = header(ACCEPT).map(str::to_owned);
    let body = Limited::new(body, MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|e| {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is over {MAX_REQUEST_BYTES} bytes or broken: {e}"),
            )
        })?
        .to_bytes();
    let operation = interpret(
        &parts.method,
        parts.uri.path(),
        parts.uri.query(),
        content_type.as_deref(),
        &body,
    )?;
    let directory = core.directory.clone();
    let parsed = directory
        .parse_query(&operation.query)
        .map_err(|e| refusal_of(&e))?
        .with_dataset(
            graph_iris(&operation.default_graphs, "default-graph-uri")?,
            graph_iris(&operation.named_graphs, "named-graph-uri")?,
        );
    let format = formats::negotiate(parsed.form, accept.as_deref())
        .map_err(|e| refusal_of(&DirectoryError::Query(e.into())))?;
    let started = std::time::Instant::now();
    let result = directory::query_with_deadline(directory, parsed, format).await;
    let answer = result.map_err(|e| {
        if matches!(e, DirectoryError::Query(QueryError::Timeout(_))) {
            warn!(caller = %caller.spiffe_id, "SPARQL query cancelled at the timeout");
        }
        refusal_of(&e)
    })?;
    debug!(caller = %caller.spiffe_id, form = answer.form.name(), results = answer.results, ms = started.elapsed().as_millis() as u64, "SPARQL query answered");
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    let content_type = match answer.media_type {
        m if m.starts_with("text/") && !m.contains("charset") => format!("{m}; charset=utf-8"),
        m => m.to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
        .headers_mut()
        .insert("vary", HeaderValue::from_static("Accept"));
    Ok(response)
}

/// Serves the endpoint on `listener` with `config` (mutual TLS, ALPN h2
/// and http/1.1) until `stop` is triggered.
pub async fn serve(
    core: Arc<RootCore>,
    listener: TcpListener,
    config: Arc<ArcSwap<rustls::ServerConfig>>,
    stop: &intercloud_daemon::signals::Stop,
) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, path = PATH, "SPARQL endpoint listening");
    }
    let mut connections = incoming(listener, config, "sparql");
    let stopped = stop.stopped();
    tokio::pin!(stopped);
    loop {
        let next = tokio::select! {
            next = connections.next() => next,
            () = &mut stopped => break,
        };
        let Some(Ok(stream)) = next else {
            if next.is_none() {
                break;
            }
            continue;
        };
        let peer = stream.connect_info();
        let core = core.clone();
        let stopped = stop.stopped();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (core, peer) = (core.clone(), peer.clone());
                async move {
                    Ok::<_, Infallible>(match answer(core, peer, request).await {
                        Ok(response) => response,
                        Err(refusal) => text(refusal.status, &refusal.message),
                    })
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        debug!(error = %e, "SPARQL connection ended with an error");
                    }
                }
                () = stopped => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(query_string: &str) -> Result<ProtocolQuery, Refusal> {
        interpret(&Method::GET, PATH, Some(query_string), None, b"")
    }

    #[test]
    fn get_carries_the_query_and_the_dataset() {
        let q = get("query=SELECT%20*%20WHERE%20%7B%7D&default-graph-uri=https%3A%2F%2Fe%2Fg1&named-graph-uri=https%3A%2F%2Fe%2Fg2&named-graph-uri=https%3A%2F%2Fe%2Fg3")
            .expect("query");
        assert_eq!(q.query, "SELECT * WHERE {}");
        assert_eq!(q.default_graphs, ["https://e/g1"]);
        assert_eq!(q.named_graphs, ["https://e/g2", "https://e/g3"]);
    }

    #[test]
    fn post_accepts_both_body_kinds() {
        let direct = interpret(
            &Method::POST,
            PATH,
            None,
            Some("application/sparql-query; charset=utf-8"),
            b"ASK {}",
        )
        .expect("direct");
        assert_eq!(direct.query, "ASK {}");
        let form = interpret(
            &Method::POST,
            PATH,
            Some("default-graph-uri=https%3A%2F%2Fe%2Fg"),
            Some("application/x-www-form-urlencoded"),
            b"query=ASK+%7B%7D",
        )
        .expect("form");
        assert_eq!(form.query, "ASK {}");
        assert_eq!(form.default_graphs, ["https://e/g"]);
    }

    #[test]
    fn updates_are_forbidden_however_they_come() {
        for refusal in [
            get("update=CLEAR%20ALL"),
            interpret(
                &Method::POST,
                PATH,
                None,
                Some("application/sparql-update"),
                b"CLEAR ALL",
            ),
            interpret(
                &Method::POST,
                PATH,
                None,
                Some("application/x-www-form-urlencoded"),
                b"update=CLEAR+ALL",
            ),
        ] {
            let refusal = refusal.expect_err("refused");
            assert_eq!(refusal.status, StatusCode::FORBIDDEN);
            assert!(refusal.message.contains("read-only"), "{}", refusal.message);
        }
    }

    #[test]
    fn malformed_requests_say_what_is_wrong() {
        let cases = [
            (
                get(""),
                StatusCode::BAD_REQUEST,
                "missing the query parameter",
            ),
            (
                get("query=a&query=b"),
                StatusCode::BAD_REQUEST,
                "more than once",
            ),
            (
                interpret(&Method::GET, "/", Some("query=ASK{}"), None, b""),
                StatusCode::NOT_FOUND,
                "the SPARQL endpoint is /sparql",
            ),
            (
                interpret(&Method::PUT, PATH, None, None, b""),
                StatusCode::METHOD_NOT_ALLOWED,
                "use GET or POST",
            ),
            (
                interpret(&Method::POST, PATH, None, Some("text/plain"), b"ASK {}"),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "text/plain is not a SPARQL query",
            ),
            (
                interpret(&Method::POST, PATH, None, None, b"ASK {}"),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "needs Content-Type",
            ),
            (
                interpret(
                    &Method::POST,
                    PATH,
                    None,
                    Some("application/sparql-query"),
                    &[0xff, 0xfe],
                ),
                StatusCode::BAD_REQUEST,
                "not UTF-8",
            ),
        ];
        for (result, status, words) in cases {
            let refusal = result.expect_err("refused");
            assert_eq!(refusal.status, status, "{}", refusal.message);
            assert!(refusal.message.contains(words), "{}", refusal.message);
        }
        assert!(graph_iris(&["not an iri".into()], "named-graph-uri").is_err());
    }
}
