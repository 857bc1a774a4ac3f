//! `match --kind storage …`: services meeting hard constraints, ranked by
//! the root. The constraints are parsed and checked here first, with the
//! ontology's own rules, so that a typo costs no round trip and the error
//! names the flag.

use intercloud_ontology::matching::{MatchRequest, RequestError, ServiceKind};
use intercloud_proto::v1 as pb;

use super::{DirectorySession, EXIT_NO_MATCH, Globals, Outcome};
use crate::args::MatchArgs;
use crate::output::MatchResult;
use crate::report::hinted;

/// `Directory.Match`; exit status 0 when a service matched,
/// [`EXIT_NO_MATCH`] when none did. The answer is printed either way.
pub async fn run(globals: &Globals, args: &MatchArgs) -> anyhow::Result<Outcome> {
    let request = match_request(args)?;
    let DirectorySession { mut client, remote } = DirectorySession::connect(globals).await?;
    let response = remote
        .call("Directory.Match", client.r#match(request))
        .await?;
    let result = MatchResult::from(&response);
    let text = globals.render(&result)?;
    Ok(Outcome {
        text,
        exit: if result.found() { 0 } else { EXIT_NO_MATCH },
    })
}

/// The proto request of the flags, once the ontology accepts them.
pub fn match_request(args: &MatchArgs) -> anyhow::Result<pb::MatchRequest> {
    let kind: ServiceKind = args.kind.parse().map_err(|e| invalid(&e))?;
    let mut request = MatchRequest::new(kind);
    let flags = [
        ("min-replication", &args.min_replication),
        ("min-durability", &args.min_durability),
        ("consistency", &args.consistency),
        ("region", &args.region),
        ("max-price", &args.max_price),
        ("min-availability", &args.min_availability),
        ("min-vcpu", &args.min_vcpu),
        ("min-memory-mib", &args.min_memory_mib),
        ("encapsulation", &args.encapsulation),
    ];
    for (flag, value) in flags {
        if let Some(value) = value {
            request.set(flag, value).map_err(|e| invalid(&e))?;
        }
    }
    request.validate().map_err(|e| invalid(&e))?;
    Ok(to_proto(&request, args.include_offline))
}

/// The wire form of a valid request.
fn to_proto(request: &MatchRequest, include_offline: bool) -> pb::MatchRequest {
    pb::MatchRequest {
        kind: request.kind.to_string(),
        min_replication: request.min_replication,
        min_durability_nines: request.min_durability_nines,
        consistency: request
            .consistency
            .map(|c| c.to_string())
            .unwrap_or_default(),
        region: request
            .region
            .as_ref()
            .map(|r| r.code().to_owned())
            .unwrap_or_default(),
        max_price: request.max_price.as_ref().map(|p| pb::Money {
            amount: p.amount,
            currency: p.currency.clone(),
        }),
        min_availability: request.min_availability,
        min_vcpu: request.min_vcpu,
        min_memory_mib: request.min_memory_mib,
        encapsulation: request
            .encapsulation
            .map(|e| e.to_string().to_ascii_lowercase())
            .unwrap_or_default(),
        include_offline,
    }
}

/// The command-line flag of a field of [`MatchRequest`].
fn flag(field: &str) -> String {
    match field {
        "min_durability_nines" => "--min-durability".to_owned(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

/// The kind of service a constraint is for, if only one.
fn kind_of(field: &str) -> Option<&'static str> {
    match field {
        "min_replication" | "min_durability_nines" | "consistency" => Some("storage"),
        "min_vcpu" | "min_memory_mib" => Some("compute"),
        "encapsulation" => Some("network"),
        _ => None,
    }
}

/// `error: invalid match request: --min-replication "0": must be between 1 and 10 — …`.
fn invalid(error: &RequestError) -> anyhow::Error {
    let help = "see `intercloudctl match --help`";
    match error {
        RequestError::InvalidValue {
            field,
            value,
            reason,
            ..
        } => hinted(
            format!("invalid match request: {} {value:?}: {reason}", flag(field)),
            help,
        ),
        RequestError::NotApplicable { field, kind, .. } => {
            let hint = match kind_of(field) {
                Some(other) => format!("drop {}, or pass --kind {other}", flag(field)),
                None => help.to_owned(),
            };
            hinted(
                format!(
                    "invalid match request: {} does not apply to {kind} services",
                    flag(field)
                ),
                hint,
            )
        }
        other => hinted(format!("invalid match request: {other}"), help),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::args::{Cli, Command};
    use crate::report::line;

    use super::*;

    fn parse(flags: &[&str]) -> anyhow::Result<pb::MatchRequest> {
        let cli = Cli::try_parse_from(["intercloudctl", "match"].iter().chain(flags))
            .expect("command line");
        let Command::Match(args) = cli.command else {
            panic!("not match: {:?}", cli.command);
        };
        match_request(&args)
    }

    #[test]
    fn storage_flags_become_a_match_request() {
        let request = parse(&[
            "--kind",
            "storage",
            "--min-replication",
            "3",
            "--region",
            "eu",
            "--max-price",
            "0.03 EUR",
            "--consistency",
            "Strong",
            "--min-durability",
            "11",
            "--min-availability",
            "99.9%",
            "--include-offline",
        ])
        .expect("valid");
        assert_eq!(
            request,
            pb::MatchRequest {
                kind: "storage".into(),
                min_replication: Some(3),
                min_durability_nines: Some(11.0),
                consistency: "strong".into(),
                region: "EU".into(),
                max_price: Some(pb::Money {
                    amount: 0.03,
                    currency: "EUR".into()
                }),
                min_availability: Some(99.9),
                min_vcpu: None,
                min_memory_mib: None,
                encapsulation: String::new(),
                include_offline: true,
            }
        );
    }

    #[test]
    fn compute_and_network_flags_too() {
        let request = parse(&[
            "--kind",
            "compute",
            "--min-vcpu",
            "4",
            "--min-memory-mib",
            "8192",
        ])
        .expect("compute");
        assert_eq!(
            (
                request.kind.as_str(),
                request.min_vcpu,
                request.min_memory_mib
            ),
            ("compute", Some(4), Some(8192))
        );
        assert!(!request.include_offline);
        let request = parse(&[
            "--kind",
            "network",
            "--encapsulation",
            "VXLAN",
            "--region",
            "fr",
        ])
        .expect("network");
        assert_eq!(
            (request.encapsulation.as_str(), request.region.as_str()),
            ("vxlan", "FR")
        );
        let request = parse(&["--kind", "time"]).expect("bare");
        assert_eq!(
            request,
            pb::MatchRequest {
                kind: "time".into(),
                ..pb::MatchRequest::default()
            }
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--kind", "storage", "--min-replication", "0"],
                "error: invalid match request: --min-replication \"0\": must be between 1 and 10 — see `intercloudctl match --help`",
            ),
            (
                &["--kind", "storage", "--min-replication", "three"],
                "error: invalid match request: --min-replication \"three\": expected a number — see `intercloudctl match --help`",
            ),
            (
                &["--kind", "storage", "--min-durability", "25"],
                "error: invalid match request: --min-durability \"25\": must be a number between 0 and 20 — see `intercloudctl match --help`",
            ),
            (
                &["--kind", "storage", "--max-price", "cheap"],
                "error: invalid match request: --max-price \"cheap\": expected an amount and a currency, e.g. 0.02EUR — see `intercloudctl match --help`",
            ),
            (
                &["--kind", "storage", "--min-vcpu", "4"],
                "error: invalid match request: --min-vcpu does not apply to storage services — drop --min-vcpu, or pass --kind compute",
            ),
            (
                &["--kind", "compute", "--consistency", "strong"],
                "error: invalid match request: --consistency does not apply to compute services — drop --consistency, or pass --kind storage",
            ),
            (
                &["--kind", "sandwich"],
                "error: invalid match request: --kind \"sandwich\": expected compute, storage, network, monitoring or time — see `intercloudctl match --help`",
            ),
        ];
        for (flags, expected) in cases {
            let error = line(&parse(flags).expect_err("invalid"));
            assert_eq!(&error, expected, "{flags:?}");
        }
        let error =
            line(&parse(&["--kind", "storage", "--region", "Atlantis"]).expect_err("region"));
        assert!(
            error.starts_with("error: invalid match request: --region \"Atlantis\": expected an ISO 3166-1 alpha-2 country code or an area code ("),
            "{error}"
        );
        let error =
            line(&parse(&["--kind", "network", "--encapsulation", "geneve"]).expect_err("geneve"));
        assert!(
            error.starts_with("error: invalid match request: --encapsulation \"geneve\": "),
            "{error}"
        );
    }
}
