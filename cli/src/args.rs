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

    /// Seconds allowed for connecting and for each call
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
    /// List the contexts of the config file
    Contexts,
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
}
