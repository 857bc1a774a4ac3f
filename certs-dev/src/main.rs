//! `intercloud-certs-dev`: generates the development federation PKI.
//!
//! The output (`certs-dev/pki/` by default) is committed; tests and local
//! runs load it. Its keys are public and for development only.
//!
//! The work is done by the library half of the crate ([`intercloud_certs_dev`]):
//! [`generate`] for the PKI itself, [`xmpp_hosts`] for the `xmpp-hosts`
//! subcommand, which issues short-lived certificates for the XMPP server's
//! virtual hosts under an existing CA (not committed; the lab and the test
//! harness make them on demand).
//!
//! Exit status: 0 on success, 64 for invalid options, 1 when generation fails
//! or the output directory already holds a PKI and `--force` was not given.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use intercloud_certs_dev::{generate, xmpp_hosts};

/// Generate the development federation PKI (public keys, for development only).
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Directory to write; replaced as a whole.
    #[arg(long, default_value = "certs-dev/pki")]
    out: PathBuf,
    /// SPIFFE trust domain of the federation.
    #[arg(long, default_value = "intercloud.lab")]
    federation: String,
    /// Comma-separated cloud ids; the first one is impersonated by the bad fixtures.
    #[arg(long, value_delimiter = ',', default_value = "cloud-a,cloud-b,cloud-c")]
    clouds: Vec<String>,
    /// Replace an existing PKI in --out.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Issue TLS server certificates for XMPP virtual hosts under an existing CA:
    /// `<out>/<host>.crt` and `<out>/<host>.key` per host (ECDSA P-256, serverAuth,
    /// DNS SANs the host and localhost, valid from an hour ago for 30 days).
    XmppHosts {
        /// The CA certificate (PEM) that signs them.
        #[arg(long)]
        ca_cert: PathBuf,
        /// The CA's private key (PEM).
        #[arg(long)]
        ca_key: PathBuf,
        /// Directory to write into (created if missing; existing files for the
        /// same hosts are replaced, others are left alone).
        #[arg(long)]
        out: PathBuf,
        /// Host names, e.g. cloud-a.intercloud.lab conference.root.intercloud.lab.
        #[arg(required = true)]
        hosts: Vec<String>,
    },
}

/// sysexits.h `EX_USAGE`.
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::XmppHosts {
        ca_cert,
        ca_key,
        out,
        hosts,
    }) = cli.command
    {
        if let Err(error) = hosts
            .iter()
            .try_for_each(|host| xmpp_hosts::check_host(host))
        {
            eprintln!("intercloud-certs-dev: {error:#}");
            return ExitCode::from(EXIT_USAGE);
        }
        return report(xmpp_hosts::write(&ca_cert, &ca_key, &out, &hosts));
    }
    let options = match generate::Options::new(cli.out, cli.federation, cli.clouds, cli.force) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("intercloud-certs-dev: {error:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    report(generate::generate(&options))
}

/// Prints the files written, or the error; the exit status to return.
fn report(result: anyhow::Result<Vec<PathBuf>>) -> ExitCode {
    match result {
        Ok(written) => {
            for path in written {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("intercloud-certs-dev: {error:#}");
            ExitCode::FAILURE
        }
    }
}
