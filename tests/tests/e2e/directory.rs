//! The root's service directory against real processes: publication and
//! its refusals (syntax, every kind of shape, another cloud's descriptor,
//! an oversized one, stale versions), read-only SPARQL over gRPC and over
//! the HTTP protocol with curl (formats, UPDATE refused, timeout, limits,
//! no or revoked credentials), matching with offline clouds left out,
//! watching, and durability: a restart keeps the directory, a root killed
//! in the middle of publications keeps whole graphs only.

use std::process::Command;
use std::time::{Duration, Instant};

use intercloud_proto::v1::directory_client::DirectoryClient;
use intercloud_proto::v1::directory_event::Kind as EventKind;
use intercloud_proto::v1::federation_client::FederationClient;
use intercloud_proto::v1::{
    GetDescriptorRequest, MatchRequest, PublishRequest, PublishResponse, QueryRequest,
    RevokeRequest, WatchDirectoryRequest, WithdrawRequest,
};
use intercloud_tests::descriptors::descriptor;
use intercloud_tests::{
    BrokerIdentity, RootOptions, TestBroker, TestRoot, client_tls, connect, eventually,
    intercloudctl, pki, repo_root, root_id, write_cli_config,
};
use tokio_stream::StreamExt as _;
use tonic::Code;
use tonic::transport::Channel;

fn example(name: &str) -> Vec<u8> {
    std::fs::read(repo_root().join("ontology/examples").join(name)).expect("example")
}

/// A Directory client over mutual TLS with `operator-<who>` (or `<who>`
/// for a broker certificate).
async fn client(root: &TestRoot, cert: &str) -> DirectoryClient<Channel> {
    let tls = client_tls(
        &root_id(),
        Some((&format!("{cert}.crt"), &format!("{cert}.key"))),
    );
    DirectoryClient::new(connect(&root.api, tls).await.expect("connect"))
}

async fn publish(
    client: &mut DirectoryClient<Channel>,
    bytes: &[u8],
) -> Result<PublishResponse, tonic::Status> {
    client
        .publish(PublishRequest {
            descriptor: bytes.to_vec(),
            media_type: "text/turtle".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn select(client: &mut DirectoryClient<Channel>, query: &str) -> serde_json::Value {
    let answer = client
        .query(QueryRequest {
            query: query.into(),
            format: "json".into(),
        })
        .await
        .unwrap_or_else(|s| panic!("{query}: {s:?}"))
        .into_inner();
    serde_json::from_slice(&answer.body).expect("SPARQL JSON")
}

fn count_of(results: &serde_json::Value) -> u64 {
    results["results"]["bindings"][0]["n"]["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no ?n in {results}"))
}

async fn triples_in_graph(client: &mut DirectoryClient<Channel>, cloud: &str) -> u64 {
    count_of(
        &select(
            client,
            &format!(
                "SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <https://w3id.org/intercloud/cloud/{cloud}> {{ ?s ?p ?o }} }}"
            ),
        )
        .await,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn clouds_publish_their_own_descriptors_and_everyone_can_read_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let mut a = client(&root, "operator-cloud-a").await;
    let published = publish(&mut a, &example("cloud-a.ttl"))
        .await
        .expect("publish");
    let info = published.descriptor.expect("info");
    assert_eq!((info.cloud_id.as_str(), info.version), ("cloud-a", 1));
    assert!(!published.unchanged);
    assert_eq!(info.graph, "https://w3id.org/intercloud/cloud/cloud-a");
    assert_eq!(
        info.published_by,
        "spiffe://intercloud.lab/operator/cloud-a/admin"
    );
    let again = publish(&mut a, &example("cloud-a.ttl"))
        .await
        .expect("again");
    assert!(
        again.unchanged,
        "the same version and triples change nothing"
    );

    // A broker certificate publishes too; a root operator reads.
    let mut b = client(&root, "cloud-b").await;
    publish(&mut b, &example("cloud-b.ttl"))
        .await
        .expect("broker publishes");
    let mut reader = client(&root, "operator-root").await;
    assert_eq!(triples_in_graph(&mut reader, "cloud-a").await, info.triples);
    let got = reader
        .get(GetDescriptorRequest {
            cloud_id: "cloud-b".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert!(got.turtle.contains("\"cloud-b\""), "{}", got.turtle);
    let missing = reader
        .get(GetDescriptorRequest {
            cloud_id: "cloud-c".into(),
        })
        .await
        .expect_err("not published");
    assert_eq!(missing.code(), Code::NotFound);
    assert!(
        missing
            .message()
            .contains("no descriptor is published for cloud-c")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_descriptors_are_refused_with_the_reason_and_leave_the_directory_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let mut a = client(&root, "operator-cloud-a").await;
    publish(&mut a, &example("cloud-a.ttl"))
        .await
        .expect("publish");
    let before = triples_in_graph(&mut a, "cloud-a").await;

    // Every invalid example: its first line says which shape and constraint
    // (or the syntax error's line) the refusal must name.
    let examples = std::fs::read_dir(repo_root().join("ontology/examples")).expect("examples");
    let mut checked = 0;
    for entry in examples {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if !name.starts_with("invalid-") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .expect("expect line");
        // Make each one speak for cloud-a, so only the flaw can refuse it.
        let text = text
            .replace("\"cloud-b\"", "\"cloud-a\"")
            .replace("\"cloud-c\"", "\"cloud-a\"");
        let status = publish(&mut a, text.as_bytes()).await.expect_err(&name);
        assert_eq!(status.code(), Code::InvalidArgument, "{name}: {status:?}");
        let message = status.message();
        if let Some(line) = expect.strip_prefix("syntax error at line ") {
            assert!(
                message.contains(&format!("line {line}, column")),
                "{name}: {message}"
            );
        } else if name == "invalid-two-clouds.ttl" {
            assert!(message.contains("exactly one"), "{name}: {message}");
        } else {
            let mut words = expect.split_whitespace();
            let (_shape, property, constraint) = (words.next(), words.next(), words.next());
            for word in [property, constraint].into_iter().flatten() {
                if word.starts_with("ic:") || word.starts_with("sh:") {
                    assert!(message.contains(word), "{name}: {message} lacks {word}");
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} invalid examples");

    // Another cloud's descriptor.
    let status = publish(&mut a, &example("cloud-b.ttl"))
        .await
        .expect_err("not yours");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("describes cloud-b"),
        "{}",
        status.message()
    );

    // A root operator speaks for no cloud.
    let mut root_op = client(&root, "operator-root").await;
    let status = publish(&mut root_op, &example("cloud-a.ttl"))
        .await
        .expect_err("no cloud");
    assert_eq!(status.code(), Code::PermissionDenied);

    // A stale version and a silent change of the same version.
    let text = String::from_utf8(example("cloud-a.ttl")).expect("utf8");
    publish(
        &mut a,
        text.replace("ic:descriptorVersion 1", "ic:descriptorVersion 3")
            .as_bytes(),
    )
    .await
    .expect("v3");
    let status = publish(&mut a, text.as_bytes()).await.expect_err("stale");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status
            .message()
            .contains("older than the published version 3")
    );
    let changed = text
        .replace("ic:descriptorVersion 1", "ic:descriptorVersion 3")
        .replace("0.021", "0.022");
    let status = publish(&mut a, changed.as_bytes())
        .await
        .expect_err("same version");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("raise ic:descriptorVersion"));

    // 50 MiB: refused from the message length, before anything is parsed.
    let huge = vec![b'#'; 50 << 20];
    let started = Instant::now();
    let status = publish(&mut a, &huge).await.expect_err("too large");
    assert!(
        matches!(status.code(), Code::ResourceExhausted | Code::OutOfRange),
        "{status:?}"
    );
    assert!(
        status.message().contains("too large") || status.message().contains("limit"),
        "{status:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // Just over the descriptor limit but under the message limit: the
    // parser's own size check answers.
    let over = vec![b' '; (1 << 20) + 10];
    let status = publish(&mut a, &over).await.expect_err("over 1 MiB");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("over the limit of 1048576 bytes"),
        "{status:?}"
    );

    // Nothing of all that reached the store.
    let after = triples_in_graph(&mut a, "cloud-a").await;
    assert_eq!(
        after, before,
        "the version-3 graph has the same number of triples"
    );
    let info = a
        .get(GetDescriptorRequest {
            cloud_id: "cloud-a".into(),
        })
        .await
        .expect("get")
        .into_inner()
        .descriptor
        .expect("info");
    assert_eq!(info.version, 3);
    assert!(root.daemon.log_text().contains("descriptor refused"));
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_are_read_only_bounded_in_time_and_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(
        dir.path(),
        &RootOptions {
            query_timeout_ms: 1500,
            ..RootOptions::default()
        },
    );
    let mut a = client(&root, "operator-cloud-a").await;
    publish(&mut a, &example("cloud-a.ttl"))
        .await
        .expect("publish");
    let mut c = client(&root, "operator-cloud-c").await;
    publish(&mut c, &example("cloud-c.ttl"))
        .await
        .expect("publish");

    for (query, form) in [
        (
            "SELECT ?id WHERE { ?c <https://w3id.org/intercloud/ontology#cloudId> ?id }",
            "SELECT",
        ),
        (
            "ASK { ?c <https://w3id.org/intercloud/ontology#cloudId> \"cloud-c\" }",
            "ASK",
        ),
        (
            "CONSTRUCT { ?c ?p ?o } WHERE { ?c a <https://w3id.org/intercloud/ontology#Cloud> ; ?p ?o }",
            "CONSTRUCT",
        ),
        (
            "DESCRIBE ?c WHERE { ?c a <https://w3id.org/intercloud/ontology#Cloud> }",
            "DESCRIBE",
        ),
    ] {
        let answer = a
            .query(QueryRequest {
                query: query.into(),
                format: String::new(),
            })
            .await
            .unwrap_or_else(|s| panic!("{query}: {s:?}"))
            .into_inner();
        assert_eq!(answer.form, form);
        assert!(answer.results >= 1, "{query}");
    }
    let ids = select(
        &mut a,
        "SELECT ?id WHERE { ?c <https://w3id.org/intercloud/ontology#cloudId> ?id } ORDER BY ?id",
    )
    .await;
    let ids: Vec<_> = ids["results"]["bindings"]
        .as_array()
        .expect("bindings")
        .iter()
        .map(|b| b["id"]["value"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ids, ["cloud-a", "cloud-c"]);

    for update in [
        "INSERT DATA { GRAPH <https://w3id.org/intercloud/cloud/cloud-b> { <urn:x> <urn:y> <urn:z> } }",
        "DROP GRAPH <https://w3id.org/intercloud/cloud/cloud-a>",
    ] {
        let status = a
            .query(QueryRequest {
                query: update.into(),
                format: String::new(),
            })
            .await
            .expect_err("update refused");
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert!(
            status.message().contains("SPARQL UPDATE is refused"),
            "{status:?}"
        );
    }
    assert!(
        triples_in_graph(&mut a, "cloud-a").await > 0,
        "DROP did nothing"
    );

    // Before the timeout case, whose cancelled evaluation may go on
    // for a while in the background.
    let status = a
        .query(QueryRequest {
            query: "SELECT * WHERE { ?s ?p ?o . ?x ?y ?z }".into(),
            format: String::new(),
        })
        .await
        .expect_err("too many rows");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("limit of 10000 results"),
        "{status:?}"
    );

    // A cross product of every triple with itself four times: minutes of work.
    let started = Instant::now();
    let status = a
        .query(QueryRequest {
            query: "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
                .into(),
            format: String::new(),
        })
        .await
        .expect_err("cut at the timeout");
    let took = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("1500 ms"), "{status:?}");
    assert!(took < Duration::from_secs(8), "cancelled after {took:?}");
    // And the root goes on answering.
    assert_eq!(select(&mut a, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o } LIMIT 1").await["results"]["bindings"].as_array().map(Vec::len), Some(1));

    let status = a
        .query(QueryRequest {
            query: "SELECT * WHERE { ?s ?p }".into(),
            format: String::new(),
        })
        .await
        .expect_err("syntax");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = a
        .query(QueryRequest {
            query: "ASK {}".into(),
            format: "turtle".into(),
        })
        .await
        .expect_err("no turtle for ASK");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("use one of: json, xml, csv, tsv"),
        "{status:?}"
    );
}

/// Runs curl against the SPARQL endpoint; returns (HTTP status, content
/// type, body). `cert` None: no client certificate.
fn curl(root: &TestRoot, cert: Option<&str>, args: &[&str]) -> (u16, String, String, i32) {
    let mut command = Command::new("curl");
    command
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(pki("ca.crt"))
        .args(["-w", "\n%{http_code} %{content_type}"]);
    if let Some(cert) = cert {
        command
            .arg("--cert")
            .arg(pki(&format!("{cert}.crt")))
            .arg("--key")
            .arg(pki(&format!("{cert}.key")));
    }
    let port = root.sparql.rsplit(':').next().expect("port");
    let url_base = format!("https://localhost:{port}");
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("{base}", &url_base))
        .collect();
    let output = command
        .args(&args)
        .output()
        .expect("curl runs (scripts/test installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, trailer) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let (code, content_type) = trailer.split_once(' ').unwrap_or((trailer, ""));
    (
        code.parse().unwrap_or(0),
        content_type.to_owned(),
        format!("{body}{}", String::from_utf8_lossy(&output.stderr)),
        output.status.code().unwrap_or(-1),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sparql_protocol_answers_curl_in_every_results_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let mut a = client(&root, "operator-cloud-a").await;
    publish(&mut a, &example("cloud-a.ttl"))
        .await
        .expect("publish");
    let query = "query=SELECT%20%3Fid%20WHERE%20%7B%20%3Fc%20%3Chttps%3A%2F%2Fw3id.org%2Fintercloud%2Fontology%23cloudId%3E%20%3Fid%20%7D";

    let (code, content_type, body, _) = curl(
        &root,
        Some("operator-cloud-b"),
        &[&format!("{{base}}/sparql?{query}")],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(content_type, "application/sparql-results+json");
    let json: serde_json::Value = serde_json::from_str(&body).expect("SPARQL JSON");
    assert_eq!(json["results"]["bindings"][0]["id"]["value"], "cloud-a");

    for (accept, expected_type, needle) in [
        (
            "application/sparql-results+xml",
            "application/sparql-results+xml",
            "<literal>cloud-a</literal>",
        ),
        ("text/csv", "text/csv; charset=utf-8", "id\r\ncloud-a"),
        (
            "text/tab-separated-values",
            "text/tab-separated-values; charset=utf-8",
            "?id\n\"cloud-a\"",
        ),
    ] {
        let (code, content_type, body, _) = curl(
            &root,
            Some("operator-root"),
            &[
                "-H",
                &format!("Accept: {accept}"),
                &format!("{{base}}/sparql?{query}"),
            ],
        );
        assert_eq!(code, 200, "{accept}: {body}");
        assert_eq!(content_type, expected_type);
        assert!(body.contains(needle), "{accept}: {body:?}");
    }

    // POST, both ways; HTTP/1.1 forced once.
    let (code, _, body, _) = curl(
        &root,
        Some("cloud-c"),
        &[
            "--http1.1",
            "--data-binary",
            "ASK { ?s ?p ?o }",
            "-H",
            "Content-Type: application/sparql-query",
            "{base}/sparql",
        ],
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"boolean\":true"), "{body}");
    let (code, content_type, body, _) = curl(
        &root,
        Some("operator-cloud-a"),
        &[
            "--data-urlencode",
            "query=CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o } LIMIT 3",
            "{base}/sparql",
        ],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(content_type, "text/turtle; charset=utf-8");

    // Refusals: update, not acceptable, bad syntax, wrong path, method.
    for (args, status, words) in [
        (
            vec!["--data-urlencode", "update=CLEAR ALL", "{base}/sparql"],
            403,
            "read-only",
        ),
        (
            vec![
                "--data-binary",
                "DROP ALL",
                "-H",
                "Content-Type: application/sparql-update",
                "{base}/sparql",
            ],
            403,
            "read-only",
        ),
        (
            vec!["-H", "Accept: image/png", "{base}/sparql?query=ASK%7B%7D"],
            406,
            "acceptable",
        ),
        (vec!["{base}/sparql?query=SELEKT"], 400, "does not parse"),
        (
            vec![
                "{base}/sparql?query=INSERT%20DATA%20%7B%3Curn%3Aa%3E%20%3Curn%3Ab%3E%20%3Curn%3Ac%3E%7D",
            ],
            403,
            "SPARQL UPDATE is refused",
        ),
        (vec!["{base}/"], 404, "/sparql"),
        (vec!["-X", "DELETE", "{base}/sparql"], 405, "GET or POST"),
    ] {
        let (code, _, body, _) = curl(&root, Some("operator-cloud-a"), &args);
        assert_eq!(code, status, "{args:?}: {body}");
        assert!(body.contains(words), "{args:?}: {body}");
    }

    // No client certificate: the TLS handshake fails, nothing is answered.
    let (code, _, body, exit) = curl(&root, None, &[&format!("{{base}}/sparql?{query}")]);
    assert_eq!(code, 0, "{body}");
    assert_ne!(exit, 0);
    // A revoked certificate (in the imported CRL) is refused too.
    let (code, _, body, exit) = curl(
        &root,
        Some("bad/revoked"),
        &[&format!("{{base}}/sparql?{query}")],
    );
    assert_eq!(code, 0, "a revoked certificate gets no answer: {body}");
    assert_ne!(exit, 0);
    assert!(
        root.daemon.log_text().contains("port=\"sparql\"")
            || root.daemon.log_text().contains("sparql")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn match_leaves_offline_clouds_out_and_explains_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    for cloud in ["cloud-a", "cloud-b", "cloud-c"] {
        let mut c = client(&root, &format!("operator-{cloud}")).await;
        publish(&mut c, &example(&format!("{cloud}.ttl")))
            .await
            .expect("publish");
    }
    let mut op = client(&root, "operator-cloud-a").await;
    let request = MatchRequest {
        kind: "storage".into(),
        min_replication: Some(3),
        region: "EU".into(),
        ..MatchRequest::default()
    };
    // Nobody is online yet: everything matching is left out, with why.
    let answer = op
        .r#match(request.clone())
        .await
        .expect("match")
        .into_inner();
    assert!(answer.candidates.is_empty(), "{answer:?}");
    assert!(
        answer
            .left_out
            .iter()
            .any(|l| l.cloud_id == "cloud-a" && l.reason.contains("not a member")),
        "{answer:?}"
    );
    let with_offline = op
        .r#match(MatchRequest {
            include_offline: true,
            ..request.clone()
        })
        .await
        .expect("match")
        .into_inner();
    let expected: Vec<&str> = with_offline
        .candidates
        .iter()
        .map(|c| c.cloud_id.as_str())
        .collect();
    assert!(expected.contains(&"cloud-a"), "{with_offline:?}");
    assert!(with_offline.candidates.iter().all(|c| !c.online));

    // cloud-a's broker comes online; cloud-b's and cloud-c's do not.
    let broker = TestBroker::start(dir.path(), "cloud-a", &root, &BrokerIdentity::DevCert, "");
    let answer = eventually("cloud-a online in Match", Duration::from_secs(20), || {
        let mut op = op.clone();
        let request = request.clone();
        async move {
            let answer = op.r#match(request).await.ok()?.into_inner();
            (!answer.candidates.is_empty()).then_some(answer)
        }
    })
    .await;
    let a = &answer.candidates[0];
    assert_eq!(a.cloud_id, "cloud-a");
    assert!(a.online);
    assert_eq!(a.descriptor_version, 1);
    assert!(
        a.explanation.iter().any(|e| e.contains("replication")),
        "{a:?}"
    );
    assert!(a.explanation.len() >= 2, "{a:?}");
    assert!(
        answer.candidates.iter().all(|c| c.cloud_id == "cloud-a"),
        "{answer:?}"
    );
    assert_eq!(answer.clouds_considered, 3);
    assert!(answer.query.contains("SELECT"));

    // The same through the CLI, as an operator of cloud-a would ask.
    let cli = write_cli_config(dir.path(), &root, &[("cloud-a", &broker)]);
    let (code, out, err) = intercloudctl(
        &cli,
        &[
            "--context",
            "cloud-a",
            "-o",
            "json",
            "match",
            "--kind",
            "storage",
            "--min-replication",
            "3",
            "--region",
            "EU",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["candidates"][0]["cloud_id"], "cloud-a", "{json}");
    assert!(
        json["candidates"][0]["explanation"]
            .as_array()
            .is_some_and(|e| e.len() >= 2),
        "{json}"
    );
    let (code, out, err) = intercloudctl(
        &cli,
        &[
            "--context",
            "cloud-a",
            "match",
            "--kind",
            "storage",
            "--min-replication",
            "3",
            "--region",
            "EU",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("cloud-a") && out.contains("replication"),
        "{out}"
    );
    let (code, out, err) = intercloudctl(
        &cli,
        &[
            "--context",
            "cloud-a",
            "match",
            "--kind",
            "storage",
            "--min-replication",
            "3",
            "--region",
            "JP",
        ],
    );
    assert_eq!(code, 3, "no candidate in Japan: {out}{err}");
    let (code, _, err) = intercloudctl(
        &cli,
        &[
            "--context",
            "cloud-a",
            "match",
            "--kind",
            "storage",
            "--min-replication",
            "zero",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("min-replication") && err.lines().count() == 1,
        "{err}"
    );

    // Malformed constraints name the field.
    for (bad, field) in [
        (
            MatchRequest {
                kind: "storage".into(),
                min_replication: Some(0),
                ..MatchRequest::default()
            },
            "min_replication",
        ),
        (
            MatchRequest {
                kind: "teleport".into(),
                ..MatchRequest::default()
            },
            "kind",
        ),
        (
            MatchRequest {
                kind: "storage".into(),
                region: "Europe!".into(),
                ..MatchRequest::default()
            },
            "region",
        ),
        (
            MatchRequest {
                kind: "compute".into(),
                min_replication: Some(3),
                ..MatchRequest::default()
            },
            "min_replication",
        ),
    ] {
        let status = op.r#match(bad).await.expect_err("invalid");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(field), "{field}: {status:?}");
    }
    drop(broker);
}

#[tokio::test(flavor = "multi_thread")]
async fn watchers_see_publications_withdrawals_and_revocations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let mut a = client(&root, "operator-cloud-a").await;
    publish(&mut a, &example("cloud-a.ttl"))
        .await
        .expect("publish");
    let mut watcher = client(&root, "operator-root").await;
    let mut events = watcher
        .watch(WatchDirectoryRequest {
            include_current: true,
        })
        .await
        .expect("watch")
        .into_inner();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event in time")
            .expect("stream open")
            .expect("event")
    };
    let current = next().await;
    assert_eq!(current.kind, EventKind::Current as i32);
    assert_eq!(
        current.descriptor.as_ref().map(|d| d.cloud_id.as_str()),
        Some("cloud-a")
    );

    // cloud-b's broker registers (so it can be revoked) and publishes.
    let broker = TestBroker::start(dir.path(), "cloud-b", &root, &BrokerIdentity::DevCert, "");
    let mut b = client(&root, "cloud-b").await;
    publish(&mut b, &example("cloud-b.ttl"))
        .await
        .expect("publish");
    let published = next().await;
    assert_eq!(published.kind, EventKind::Published as i32);
    assert_eq!(
        published.descriptor.as_ref().map(|d| d.cloud_id.as_str()),
        Some("cloud-b")
    );

    let withdrawn = a
        .withdraw(WithdrawRequest::default())
        .await
        .expect("withdraw")
        .into_inner();
    assert_eq!(
        withdrawn.withdrawn.map(|d| d.cloud_id),
        Some("cloud-a".into())
    );
    let event = next().await;
    assert_eq!(event.kind, EventKind::Withdrawn as i32);
    assert!(event.reason.contains("operator/cloud-a"), "{event:?}");
    let status = a
        .withdraw(WithdrawRequest {
            cloud_id: "cloud-b".into(),
        })
        .await
        .expect_err("not yours");
    assert_eq!(status.code(), Code::PermissionDenied);

    let tls = client_tls(&root_id(), Some(("operator-root.crt", "operator-root.key")));
    let federation = FederationClient::new(connect(&root.api, tls).await.expect("connect"));
    eventually("cloud-b registered", Duration::from_secs(20), || {
        let mut federation = federation.clone();
        async move {
            federation
                .revoke(RevokeRequest {
                    cloud_id: "cloud-b".into(),
                    reason: "test".into(),
                })
                .await
                .ok()
        }
    })
    .await;
    let event = next().await;
    assert_eq!(event.kind, EventKind::Withdrawn as i32);
    assert!(event.reason.starts_with("revoked"), "{event:?}");
    let empty = select(&mut watcher, "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } FILTER(STRSTARTS(STR(?g), \"https://w3id.org/intercloud/cloud/\")) }").await;
    assert_eq!(count_of(&empty), 0);
    drop(broker);
}

/// Kills the root (SIGKILL) while publications of large descriptors are in
/// flight, several times; after each restart the graph is whole: the old
/// version or the new one, its triple count equal to its record's.
#[tokio::test(flavor = "multi_thread")]
async fn the_directory_survives_restarts_and_a_publication_cut_short() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut root = TestRoot::start(dir.path(), &RootOptions::default());
    let mut a = client(&root, "cloud-a").await;
    let first = publish(&mut a, descriptor("cloud-a", 1, 1, 3).as_bytes())
        .await
        .expect("publish");
    let first = first.descriptor.expect("info");

    root.restart_after_kill(dir.path());
    let mut a = client(&root, "cloud-a").await;
    let info = a
        .get(GetDescriptorRequest {
            cloud_id: "cloud-a".into(),
        })
        .await
        .expect("still there")
        .into_inner()
        .descriptor
        .expect("info");
    assert_eq!(info, first, "the record survives a restart unchanged");
    assert_eq!(triples_in_graph(&mut a, "cloud-a").await, first.triples);

    // How long one large publication takes here, uninterrupted; the kills
    // below land at fractions of it, so inside parsing, validation,
    // canonicalisation or the commit.
    let mut version = 2;
    let big = descriptor("cloud-a", version, 99, 2500);
    assert!(big.len() > 400_000, "{}", big.len());
    let started = Instant::now();
    publish(&mut a, big.as_bytes())
        .await
        .expect("large publication");
    let took = started.elapsed();
    eprintln!("a {} KiB publication takes {took:?}", big.len() / 1024);

    let mut interrupted = 0;
    for round in 0..5_u32 {
        version += 1;
        let big = descriptor("cloud-a", version, u64::from(round), 2500);
        let mut a = client(&root, "cloud-a").await;
        let publication = tokio::spawn(async move { publish(&mut a, big.as_bytes()).await });
        tokio::time::sleep(took * (2 * round + 1) / 10).await;
        root.restart_after_kill(dir.path());
        let outcome = publication.await.expect("task");
        let mut a = client(&root, "cloud-a").await;
        let info = a
            .get(GetDescriptorRequest {
                cloud_id: "cloud-a".into(),
            })
            .await
            .expect("a descriptor is there")
            .into_inner()
            .descriptor
            .expect("info");
        assert_eq!(
            triples_in_graph(&mut a, "cloud-a").await,
            info.triples,
            "round {round}: the graph is whole (version {})",
            info.version
        );
        match outcome {
            Ok(_) => assert_eq!(info.version, version, "acknowledged means stored"),
            Err(status) => {
                interrupted += 1;
                assert!(info.version <= version, "{status:?}");
                version = info.version;
            }
        }
    }
    eprintln!("{interrupted} of 5 publications were cut short by the kill");
    assert!(dir.path().join("root/directory").is_dir());
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_publish_query_and_watch_with_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let broker = TestBroker::start(dir.path(), "cloud-c", &root, &BrokerIdentity::DevCert, "");
    let cli = write_cli_config(dir.path(), &root, &[("cloud-c", &broker)]);
    let watch = std::process::Command::new(intercloud_tests::bin("intercloudctl"))
        .args(["--config"])
        .arg(&cli)
        .args([
            "--context",
            "root",
            "-o",
            "json",
            "directory",
            "watch",
            "--no-current",
            "--count",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("watch");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let example = repo_root().join("ontology/examples/cloud-c.ttl");
    let example = example.to_str().expect("utf8 path");
    let (code, out, err) = intercloudctl(
        &cli,
        &[
            "--context",
            "cloud-c",
            "-o",
            "json",
            "publish",
            "--file",
            example,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["descriptor"]["cloud_id"], "cloud-c");
    assert_eq!(json["unchanged"], false);
    let watched = watch
        .wait_with_output()
        .expect("watch ends after one event");
    let line = String::from_utf8_lossy(&watched.stdout);
    let event: serde_json::Value =
        serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(
        (event["kind"].as_str(), event["cloud_id"].as_str()),
        (Some("published"), Some("cloud-c"))
    );

    // cloud-c's operator may not publish cloud-a's descriptor.
    let other = repo_root().join("ontology/examples/cloud-a.ttl");
    let (code, _, err) = intercloudctl(
        &cli,
        &[
            "--context",
            "cloud-c",
            "publish",
            "--file",
            other.to_str().expect("utf8"),
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("describes cloud-a"), "{err}");
    // An invalid file is stopped locally (exit 4) and never reaches the root.
    let invalid = repo_root().join("ontology/examples/invalid-currency.ttl");
    let (code, _, _) = intercloudctl(
        &cli,
        &[
            "--context",
            "cloud-c",
            "publish",
            "--file",
            invalid.to_str().expect("utf8"),
        ],
    );
    assert_eq!(code, 4);

    let (code, out, err) = intercloudctl(
        &cli,
        &[
            "--context",
            "cloud-c",
            "query",
            "SELECT ?id WHERE { ?c <https://w3id.org/intercloud/ontology#cloudId> ?id }",
            "--format",
            "csv",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.replace("\r\n", "\n").trim(), "id\ncloud-c");
    let (code, out, err) = intercloudctl(
        &cli,
        &[
            "--context",
            "cloud-c",
            "query",
            "SELECT ?id WHERE { ?c <https://w3id.org/intercloud/ontology#cloudId> ?id }",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cloud-c") && out.contains("(1 row"), "{out}");
    let (code, _, err) = intercloudctl(&cli, &["--context", "cloud-c", "query", "CLEAR ALL"]);
    assert_eq!(code, 1);
    assert!(err.contains("SPARQL UPDATE is refused"), "{err}");
    let (code, out, _) = intercloudctl(
        &cli,
        &["--context", "cloud-c", "directory", "get", "cloud-c"],
    );
    assert_eq!(code, 0);
    assert!(out.contains("cloud-c"), "{out}");
}

/// Item 4 of the issue: a broker publishes its descriptor when it joins and
/// again when the file changes; the version in force shows in its status
/// and in the presence its peers see. A file naming another cloud is
/// stopped at the broker.
#[tokio::test(flavor = "multi_thread")]
async fn brokers_publish_at_join_and_on_change_and_announce_the_version() {
    use intercloud_tests::prosody::Prosody;

    use crate::presence::{presence_config, wait_for_online};

    let dir = tempfile::tempdir().expect("tempdir");
    let prosody = Prosody::start(
        &dir.path().join("xmpp"),
        "intercloud.lab",
        &["cloud-a", "cloud-b"],
    );
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let file = dir.path().join("cloud-a.ttl");
    std::fs::write(&file, example("cloud-a.ttl")).expect("write descriptor");
    let directory = |path: &std::path::Path| {
        format!(
            "[directory]\ndescriptor = {:?}\ncheck_seconds = 1\n",
            path.display().to_string()
        )
    };
    let a = TestBroker::start(
        dir.path(),
        "cloud-a",
        &root,
        &BrokerIdentity::DevCert,
        &format!(
            "{}{}",
            presence_config(&prosody, "cloud-a", 8),
            directory(&file)
        ),
    );
    let b_file = dir.path().join("claims-cloud-a.ttl");
    std::fs::write(&b_file, example("cloud-a.ttl")).expect("write");
    let b = TestBroker::start(
        dir.path(),
        "cloud-b",
        &root,
        &BrokerIdentity::DevCert,
        &format!(
            "{}{}",
            presence_config(&prosody, "cloud-b", 8),
            directory(&b_file)
        ),
    );

    let published = eventually(
        "cloud-a's descriptor published",
        Duration::from_secs(20),
        || async {
            status(&a, "cloud-a")
                .await
                .filter(|d| d.state == "published")
        },
    )
    .await;
    assert_eq!(published.published_version, 1);
    assert!(published.triples > 20);
    let mut reader = client(&root, "operator-root").await;
    let info = reader
        .get(GetDescriptorRequest {
            cloud_id: "cloud-a".into(),
        })
        .await
        .expect("at the root")
        .into_inner()
        .descriptor
        .expect("info");
    assert_eq!(
        (info.version, info.published_by.as_str()),
        (1, "spiffe://intercloud.lab/cloud/cloud-a")
    );

    // cloud-b's file names cloud-a: the broker refuses it itself.
    let refused = eventually("cloud-b's file judged", Duration::from_secs(20), || async {
        status(&b, "cloud-b").await.filter(|d| d.state == "invalid")
    })
    .await;
    assert!(refused.last_error.contains("cloud-a"), "{refused:?}");
    assert_eq!(refused.published_version, 0);

    // cloud-b sees cloud-a's version 1 in presence.
    wait_for_online(&b, "cloud-b", &["cloud-a"], Duration::from_secs(20)).await;
    eventually("version 1 in presence", Duration::from_secs(20), || async {
        let list = crate::presence::peers(&b, "cloud-b").await;
        list.peers
            .iter()
            .any(|p| p.cloud_id == "cloud-a" && p.descriptor_version == 1)
            .then_some(())
    })
    .await;

    // A new version of the file reaches the root and then presence.
    let text = String::from_utf8(example("cloud-a.ttl")).expect("utf8");
    std::fs::write(
        &file,
        text.replace("ic:descriptorVersion 1", "ic:descriptorVersion 2"),
    )
    .expect("write v2");
    eventually("version 2 at the root", Duration::from_secs(20), || {
        let mut reader = reader.clone();
        async move {
            let info = reader
                .get(GetDescriptorRequest {
                    cloud_id: "cloud-a".into(),
                })
                .await
                .ok()?
                .into_inner()
                .descriptor?;
            (info.version == 2).then_some(())
        }
    })
    .await;
    eventually("version 2 in presence", Duration::from_secs(20), || async {
        let list = crate::presence::peers(&b, "cloud-b").await;
        list.peers
            .iter()
            .any(|p| p.cloud_id == "cloud-a" && p.descriptor_version == 2)
            .then_some(())
    })
    .await;
    assert!(a.daemon.log_text().contains("descriptor published"));
}

async fn status(
    broker: &TestBroker,
    cloud: &str,
) -> Option<intercloud_proto::v1::DescriptorStatus> {
    crate::presence::operator(broker, cloud)
        .await
        .status(intercloud_proto::v1::StatusRequest {})
        .await
        .ok()?
        .into_inner()
        .descriptor
}
