//! `intercloud-certs-dev`: generates the development federation PKI.
//!
//! The output (`certs-dev/pki/` by default) is committed; tests and local
//! runs load it. Its keys are public and for development only.
//!
//! - [`pki`] builds every certificate, key and the CRL in memory.
//! - [`readme`] renders the table of files written beside them.
//! - [`output`] swaps the new directory into place in one rename.
//! - [`generate`] ties those together behind validated [`generate::Options`].
//!
//! Exit status: 0 on success, 64 for invalid options, 1 when generation fails
//! or the output directory already holds a PKI and `--force` was not given.

mod generate;
mod output;
mod pki;
mod readme;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Generate the development federation PKI (public keys, for development only).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
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

/// sysexits.h `EX_USAGE`.
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = match generate::Options::new(cli.out, cli.federation, cli.clouds, cli.force) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("intercloud-certs-dev: {error:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match generate::generate(&options) {
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
