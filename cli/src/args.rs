//! The command line: global flags and one subcommand per operation.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::Format;

/// Operator CLI of the Intercloud federation: talks gRPC with mutual TLS to a
/// cloud's broker or to the Intercloud Root, chosen by a named context.
#[derive(Debug, Parser)]
#[command(name = "intercloudctl", version, about, long_about = None)]
pub struct Cli {
    /// Contexts file [default: $HOME/.config/intercloud/intercloudctl.toml]
    #[arg(long, global = true, env = "INTERCLOUDCTL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Context to use [default: the file's current_context]
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// How to print results
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// Seconds allowed for connecting and for each call (a watch then waits for events without limit)
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub timeout: u64,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// A broker's federation status, or the root's summary of the federation
    Status,
    /// List the federation's members (asks the root)
    Members,
    /// Show one member (asks the root)
    Member {
        /// The member's cloud id, e.g. cloud-a
        cloud_id: String,
    },
    /// Join tokens for new clouds
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Revoke every certificate of a cloud and refuse it from now on (root operators only)
    Revoke {
        /// The cloud to revoke
        cloud_id: String,
        /// Why, recorded with the revocation
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// List revoked certificates and the CRL number
    Revocations,
    /// Enrol a cloud by hand: make a key, exchange a join token and a CSR for a certificate
    Enroll(EnrollArgs),
    /// Peers this cloud's broker sees through XMPP presence (broker contexts)
    Peers(PeersArgs),
    /// Ask a peer cloud, through this cloud's broker, to reserve capacity
    #[command(
        after_help = "Exit status: 0 when the peer accepted, 3 when it declined, 1 on any error."
    )]
    Negotiate(NegotiateArgs),
    /// Validate a service descriptor locally against the federation's shapes (no server involved)
    #[command(
        after_help = "Exit status: 0 when the descriptor is valid, 4 when it violates the shapes, 1 when it cannot be read or parsed."
    )]
    Describe(DescribeArgs),
    /// List the contexts of the config file
    Contexts,
}

/// `describe --file x.ttl`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The descriptor (Turtle .ttl, N-Triples .nt, JSON-LD .jsonld)
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Its format, when the file name does not tell (turtle, ntriples, jsonld)
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// `peers …`
#[derive(Debug, Args)]
pub struct PeersArgs {
    /// Print one line per join, update and leave as they happen, until
    /// interrupted (exit 0) or the broker ends the stream (exit 1)
    #[arg(long)]
    pub watch: bool,
    /// With --watch: skip the opening `joined` events for the peers online now
    #[arg(long, requires = "watch")]
    pub no_current: bool,
    /// With --watch: stop after N events (exit 0)
    #[arg(
        long,
        value_name = "N",
        requires = "watch",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub count: Option<u64>,
}

/// `negotiate …`
#[derive(Debug, Args)]
pub struct NegotiateArgs {
    /// The peer to ask, e.g. cloud-b
    pub cloud_id: String,
    /// Virtual CPUs to reserve
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub vcpu: u32,
    /// Memory to reserve, in MiB
    #[arg(long, value_name = "MIB", default_value_t = 0)]
    pub memory_mib: u64,
    /// Storage to reserve, in GiB
    #[arg(long, value_name = "GIB", default_value_t = 0)]
    pub storage_gib: u64,
    /// How long the reservation should last
    #[arg(
        long,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub duration: u64,
}

/// `token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a one-time join token for a cloud (root operators only)
    Create {
        /// The cloud that may join with it
        cloud_id: String,
        /// Lifetime in seconds [default: the root's]
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<u32>,
    },
}

/// `enroll …`
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The cloud id to enrol, e.g. cloud-d
    #[arg(long = "cloud", value_name = "ID")]
    pub cloud_id: String,
    /// The join token from `intercloudctl token create`
    #[arg(
        long,
        value_name = "TOKEN",
        env = "INTERCLOUDCTL_JOIN_TOKEN",
        hide_env_values = true
    )]
    pub token: String,
    /// Federation domain [default: the context's]
    #[arg(long, value_name = "DOMAIN")]
    pub federation: Option<String>,
    /// The root's enrolment endpoint [default: the context's enroll_endpoint]
    #[arg(long, value_name = "HOST:PORT")]
    pub root_enroll: Option<String>,
    /// Federation CA bundle [default: the context's ca]
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Directory to write key.pem, cert.pem and bundle.pem into
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an identity already in DIR
    #[arg(long)]
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_before_or_after_the_command() {
        let cli = Cli::try_parse_from([
            "intercloudctl",
            "members",
            "--output",
            "json",
            "--context",
            "root",
        ])
        .expect("parse");
        assert_eq!(cli.output, Format::Json);
        assert_eq!(cli.context.as_deref(), Some("root"));
        assert_eq!(cli.timeout, 10);
        let cli = Cli::try_parse_from([
            "intercloudctl",
            "--timeout",
            "3",
            "token",
            "create",
            "cloud-d",
            "--ttl",
            "60",
        ])
        .expect("parse");
        assert!(matches!(
            cli.command,
            Command::Token {
                command: TokenCommand::Create { ttl: Some(60), .. }
            }
        ));
        assert!(Cli::try_parse_from(["intercloudctl", "--timeout", "0", "status"]).is_err());
    }

    #[test]
    fn watch_options_need_watch() {
        let cli = Cli::try_parse_from([
            "intercloudctl",
            "peers",
            "--watch",
            "--no-current",
            "--count",
            "2",
        ])
        .expect("parse");
        assert!(matches!(
            cli.command,
            Command::Peers(PeersArgs {
                watch: true,
                no_current: true,
                count: Some(2)
            })
        ));
        assert!(Cli::try_parse_from(["intercloudctl", "peers", "--count", "2"]).is_err());
        assert!(Cli::try_parse_from(["intercloudctl", "peers", "--no-current"]).is_err());
        assert!(
            Cli::try_parse_from(["intercloudctl", "peers", "--watch", "--count", "0"]).is_err()
        );
    }

    #[test]
    fn negotiate_takes_resources_with_zero_defaults_and_a_duration() {
        let cli = Cli::try_parse_from([
            "intercloudctl",
            "negotiate",
            "cloud-b",
            "--vcpu",
            "4",
            "--duration",
            "600",
        ])
        .expect("parse");
        let Command::Negotiate(args) = cli.command else {
            panic!("not negotiate: {:?}", cli.command);
        };
        assert_eq!(
            (
                args.cloud_id.as_str(),
                args.vcpu,
                args.memory_mib,
                args.storage_gib,
                args.duration
            ),
            ("cloud-b", 4, 0, 0, 600)
        );
        assert!(
            Cli::try_parse_from(["intercloudctl", "negotiate", "cloud-b", "--vcpu", "4"]).is_err()
        );
    }
}
