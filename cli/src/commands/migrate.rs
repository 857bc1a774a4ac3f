//! `migrate INSTANCE (--to CLOUD | --match [CONSTRAINTS])`: move an instance
//! to another cloud, printing each step as the broker reports it.
//!
//! `--match` takes the flags of `match` in one argument and parses them
//! with `match`'s own command line and checks ([`matching::match_request`]),
//! the kind being compute.

use clap::Parser;
use intercloud_proto::v1 as pb;
use intercloud_proto::v1::migrate_request::Target;

use super::progress::Progress;
use super::steps::{Verdict, follow, unfinished};
use super::{BrokerSession, Globals, Outcome, cloud_id, matching};
use crate::args::{MatchArgs, MigrateArgs};
use crate::report::{hinted, line};

const METHOD: &str = "Migrate";

/// `Broker.Migrate`; exit status 0 when done, 1 when failed,
/// [`super::EXIT_UNFINISHED`] when the stream ends before either.
pub async fn run(globals: &Globals, args: &MigrateArgs) -> anyhow::Result<Outcome> {
    let request = pb::MigrateRequest {
        instance: args.instance.clone(),
        target: Some(target(args)?),
    };
    let file = globals.contexts()?;
    let context = file.select(globals.context.as_deref())?;
    let BrokerSession { mut client, remote } = BrokerSession::connect(context, globals).await?;
    let mut stream = remote.call(METHOD, client.migrate(request)).await?;
    let mut progress = Progress::new(globals.format);
    let verdict = follow(&mut stream, &remote, METHOD, globals.format, &mut progress).await?;
    let exit = verdict.exit();
    let name = &args.instance;
    match verdict {
        Verdict::Done => {}
        Verdict::Failed(detail) => eprintln!("{}", line(&failed(name, &detail))),
        Verdict::Unfinished(cause) => eprintln!(
            "{}",
            line(&unfinished(
                cause,
                &format!("the outcome of migrating {name}"),
                "check `intercloudctl instance ls` here and in the target cloud's context",
            ))
        ),
    }
    Ok(Outcome {
        text: String::new(),
        exit,
    })
}

/// `error: migration of web-1 failed: <detail> — …`.
fn failed(instance: &str, detail: &str) -> anyhow::Error {
    let detail = crate::output::table::one_line(detail);
    let what = if detail.is_empty() {
        format!("migration of {instance} failed")
    } else {
        format!("migration of {instance} failed: {detail}")
    };
    hinted(
        what,
        "the instance still runs here (`intercloudctl instance ls`)",
    )
}

/// Where to: a cloud, or the directory's choice.
fn target(args: &MigrateArgs) -> anyhow::Result<Target> {
    match (&args.to, &args.constraints) {
        (Some(cloud), None) => Ok(Target::ToCloud(cloud_id(cloud)?.to_string())),
        (None, Some(constraints)) => Ok(Target::Match(compute_match(constraints)?)),
        // clap's group allows exactly one.
        _ => Err(hinted(
            "pass either --to or --match",
            "see `intercloudctl migrate --help`",
        )),
    }
}

/// `match`'s flags, in one argument, for a compute service.
#[derive(Debug, Parser)]
#[command(
    name = "--match",
    no_binary_name = true,
    disable_help_flag = true,
    disable_version_flag = true
)]
struct Constraints {
    #[command(flatten)]
    args: MatchArgs,
}

/// The directory request of `--match '--region EU --max-price 0.05EUR'`.
fn compute_match(constraints: &str) -> anyhow::Result<pb::MatchRequest> {
    const HINT: &str = "--match takes the flags of `intercloudctl match` for compute in one argument, e.g. --match '--region EU --min-availability 99.9'";
    let words = split_words(constraints).map_err(|e| hinted(e, HINT))?;
    if words
        .iter()
        .any(|w| w == "--kind" || w.starts_with("--kind="))
    {
        return Err(hinted(
            "--match: a migration looks for compute services; drop --kind",
            HINT,
        ));
    }
    let argv = ["--kind".to_owned(), "compute".to_owned()]
        .into_iter()
        .chain(words);
    let parsed = Constraints::try_parse_from(argv).map_err(|e| {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or_default();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        hinted(format!("--match: {first}"), HINT)
    })?;
    matching::match_request(&parsed.args)
}

/// Splits on whitespace outside single or double quotes, as a shell would
/// (without escapes or expansions).
fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(q) = quote {
        return Err(format!("--match: unclosed {q} in {text:?}"));
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};

    fn migrate(flags: &[&str]) -> anyhow::Result<Target> {
        let cli = Cli::try_parse_from(["intercloudctl", "migrate"].iter().chain(flags))
            .expect("command line");
        let Command::Migrate(args) = cli.command else {
            panic!("not migrate: {:?}", cli.command);
        };
        target(&args)
    }

    #[test]
    fn words_split_on_whitespace_outside_quotes() {
        assert_eq!(split_words(""), Ok(Vec::<String>::new()));
        assert_eq!(
            split_words("  --region EU\t--max-price '0.05 EUR' "),
            Ok(vec![
                "--region".to_owned(),
                "EU".to_owned(),
                "--max-price".to_owned(),
                "0.05 EUR".to_owned()
            ])
        );
        assert_eq!(
            split_words(r#"--x="a b"c ''"#),
            Ok(vec!["--x=a bc".to_owned(), String::new()])
        );
        assert!(split_words("--region 'EU").is_err());
    }

    #[test]
    fn to_names_a_cloud() {
        assert_eq!(
            migrate(&["web-1", "--to", "cloud-b"]).expect("to"),
            Target::ToCloud("cloud-b".into())
        );
        assert!(migrate(&["web-1", "--to", "Not A Cloud"]).is_err());
    }

    #[test]
    fn match_takes_the_flags_of_match_for_compute() {
        let Target::Match(request) = migrate(&[
            "web-1",
            "--match",
            "--region eu --max-price '0.05 EUR' --min-availability 99.9 --include-offline",
        ])
        .expect("match") else {
            panic!("not a match");
        };
        assert_eq!(request.kind, "compute");
        assert_eq!(request.region, "EU");
        assert_eq!(
            request.max_price,
            Some(pb::Money {
                amount: 0.05,
                currency: "EUR".into()
            })
        );
        assert_eq!(request.min_availability, Some(99.9));
        assert!(request.include_offline);
        // Bare --match: the directory's choice with no constraint but the
        // instance's own size.
        let Target::Match(request) = migrate(&["web-1", "--match"]).expect("bare") else {
            panic!("not a match");
        };
        assert_eq!(
            request,
            pb::MatchRequest {
                kind: "compute".into(),
                ..pb::MatchRequest::default()
            }
        );
        // Either order.
        assert!(matches!(
            migrate(&["--match=--min-vcpu 4", "web-1"]).expect("order"),
            Target::Match(pb::MatchRequest {
                min_vcpu: Some(4),
                ..
            })
        ));
    }

    #[test]
    fn bad_constraints_are_refused_before_any_call() {
        let hint = " — --match takes the flags of `intercloudctl match` for compute in one argument, e.g. --match '--region EU --min-availability 99.9'";
        let cases: &[(&str, String)] = &[
            (
                "--kind storage",
                format!("error: --match: a migration looks for compute services; drop --kind{hint}"),
            ),
            (
                "--colour red",
                format!("error: --match: unexpected argument '--colour' found{hint}"),
            ),
            (
                "--region 'EU",
                format!("error: --match: unclosed ' in \"--region 'EU\"{hint}"),
            ),
            (
                "--min-replication 3",
                "error: invalid match request: --min-replication does not apply to compute services — drop --min-replication, or pass --kind storage".to_owned(),
            ),
            (
                "--min-vcpu many",
                "error: invalid match request: --min-vcpu \"many\": expected a number — see `intercloudctl match --help`".to_owned(),
            ),
        ];
        for (constraints, expected) in cases {
            let error = line(&migrate(&["web-1", "--match", constraints]).expect_err("bad"));
            assert_eq!(&error, expected, "{constraints}");
        }
    }

    #[test]
    fn exactly_one_target() {
        let parse = |flags: &[&str]| {
            Cli::try_parse_from(["intercloudctl", "migrate"].iter().chain(flags)).map(|_| ())
        };
        assert!(parse(&["web-1"]).is_err());
        assert!(parse(&["web-1", "--to", "cloud-b", "--match"]).is_err());
        assert!(parse(&["--to", "cloud-b"]).is_err());
        assert!(parse(&["web-1", "--to", "cloud-b"]).is_ok());
    }

    #[test]
    fn a_failure_names_the_instance_and_where_it_still_runs() {
        assert_eq!(
            line(&failed("web-1", "cloud-b refused the offer:\nno capacity")),
            "error: migration of web-1 failed: cloud-b refused the offer: no capacity — the instance still runs here (`intercloudctl instance ls`)"
        );
        assert_eq!(
            line(&failed("web-1", "")),
            "error: migration of web-1 failed — the instance still runs here (`intercloudctl instance ls`)"
        );
    }
}
