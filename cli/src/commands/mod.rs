//! One module per command group; each returns the text to print on stdout.

pub mod contexts;
pub mod enroll;
pub mod members;
pub mod revoke;
pub mod status;
pub mod token;

use std::path::PathBuf;
use std::time::Duration;

use intercloud_proto::v1::federation_client::FederationClient;
use intercloud_trust::CloudId;
use time::OffsetDateTime;
use tonic::transport::Channel;

use crate::args::{Cli, Command, TokenCommand};
use crate::client::{Remote, operator_tls};
use crate::config::{self, ContextsFile};
use crate::output::{self, Format, Render};

/// The global flags, resolved.
#[derive(Debug, Clone)]
pub struct Globals {
    /// The contexts file.
    pub config: PathBuf,
    /// `--context`, if given.
    pub context: Option<String>,
    pub format: Format,
    pub timeout: Duration,
}

impl Globals {
    fn new(cli: &Cli) -> anyhow::Result<Self> {
        let config = match &cli.config {
            Some(path) => path.clone(),
            None => config::default_path()?,
        };
        Ok(Self {
            config,
            context: cli.context.clone(),
            format: cli.output,
            timeout: Duration::from_secs(cli.timeout),
        })
    }

    /// The contexts file, which must exist.
    pub fn contexts(&self) -> anyhow::Result<ContextsFile> {
        ContextsFile::load(&self.config)
    }

    /// `value` in the chosen output format.
    pub fn render(&self, value: &impl Render) -> anyhow::Result<String> {
        output::render(value, self.format, OffsetDateTime::now_utc())
    }
}

/// Runs the command and returns what to print.
pub async fn run(cli: Cli) -> anyhow::Result<String> {
    let globals = Globals::new(&cli)?;
    match cli.command {
        Command::Status => status::run(&globals).await,
        Command::Members => members::list(&globals).await,
        Command::Member { cloud_id } => members::show(&globals, &cloud_id).await,
        Command::Token {
            command: TokenCommand::Create { cloud_id, ttl },
        } => token::create(&globals, &cloud_id, ttl).await,
        Command::Revoke { cloud_id, reason } => revoke::revoke(&globals, &cloud_id, reason).await,
        Command::Revocations => revoke::list(&globals).await,
        Command::Enroll(args) => enroll::run(&globals, args).await,
        Command::Contexts => contexts::run(&globals),
    }
}

/// A connected client of the root's `Federation` API for the selected context.
pub struct RootSession {
    pub client: FederationClient<Channel>,
    pub remote: Remote,
}

impl RootSession {
    /// Connects to the root: a root context's endpoint or a broker context's root_endpoint.
    pub async fn connect(globals: &Globals) -> anyhow::Result<Self> {
        let file = globals.contexts()?;
        let context = file.select(globals.context.as_deref())?;
        let remote = Remote::root(context, globals.timeout)?;
        let (anchors, credentials) = operator_tls(context)?;
        let channel = remote.connect(&anchors, Some(&credentials)).await?;
        Ok(Self {
            client: FederationClient::new(channel),
            remote,
        })
    }
}

/// A cloud id from the command line.
pub fn cloud_id(arg: &str) -> anyhow::Result<CloudId> {
    Ok(CloudId::new(arg)?)
}
