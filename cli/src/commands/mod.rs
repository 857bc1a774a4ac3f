//! One module per command group; each returns the text to print on stdout
//! (`peers --watch`, `directory watch`, `transfers --watch`, `migrate` and
//! `object put` print as events arrive, and `negotiate`, `describe`,
//! `publish`, `match`, `migrate` and `object put` also set the exit status).
//!
//! Map:
//! - the root's federation: `status` (also a broker's), `members`, `token`,
//!   `revoke`, `enroll`;
//! - a broker's presence: `peers`, `negotiate`;
//! - a broker's transfers, instances and objects: `transfers`, `instance`
//!   (`instance create|ls`), `migrate`, `object` (`object put|get|ls`);
//! - a broker's VNets: `vnet` (`vnet create|ls|show|attach|detach|delete|
//!   mirror|swap`) and `policy` (`policy allow|revoke|ls`), the root's
//!   `Networks` calls made through the broker;
//!   `progress` (bars on a terminal, lines elsewhere) and `steps`
//!   (following `migrate`'s and `put`'s steps to a verdict) are what they
//!   share;
//! - the root's directory: `publish`, `query`, `matching` (`match`),
//!   `directory` (`directory get|withdraw|watch`);
//! - the root's clock: `time` (`Time.Now`, Cristian's method);
//! - local: `describe` (whose reading and checking `publish` reuses),
//!   `contexts`; `watching` is what both watches share.

pub mod contexts;
pub mod describe;
pub mod directory;
pub mod enroll;
pub mod instance;
pub mod matching;
pub mod members;
pub mod migrate;
pub mod negotiate;
pub mod object;
pub mod peers;
pub mod policy;
mod progress;
pub mod publish;
pub mod query;
pub mod revoke;
pub mod status;
mod steps;
pub mod time;
pub mod token;
pub mod transfers;
pub mod vnet;
mod watching;

use std::path::PathBuf;
use std::time::Duration;

use ::time::OffsetDateTime;
use intercloud_proto::v1::broker_client::BrokerClient;
use intercloud_proto::v1::directory_client::DirectoryClient;
use intercloud_proto::v1::federation_client::FederationClient;
use intercloud_proto::v1::time_client::TimeClient;
use intercloud_trust::CloudId;
use tonic::transport::Channel;

use crate::args::{Cli, Command, DirectoryCommand, InstanceCommand, ObjectCommand, TokenCommand};
use crate::client::{Remote, operator_tls};
use crate::config::{self, Context, ContextsFile};
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

/// Exit status of a `negotiate` that the peer declined.
pub const EXIT_DECLINED: u8 = 3;

/// Exit status of a `match` that found no candidate (as a declined
/// `negotiate`: an answer, not a failure).
pub const EXIT_NO_MATCH: u8 = 3;

/// Exit status of a `describe` or `publish` whose descriptor violates the shapes.
pub const EXIT_INVALID: u8 = 4;

/// Exit status of a `migrate` or `object put` whose stream of steps ended
/// before `done` or `failed`: the outcome is unknown.
pub const EXIT_UNFINISHED: u8 = 3;

/// What a command leaves for `main`: text for stdout and an exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub text: String,
    pub exit: u8,
}

impl Outcome {
    /// `text`, exit status 0.
    pub fn success(text: String) -> Self {
        Self { text, exit: 0 }
    }
}

/// Runs the command and returns what to print and how to exit.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let globals = Globals::new(&cli)?;
    let text = match cli.command {
        Command::Peers(args) => return peers::run(&globals, args).await,
        Command::Negotiate(args) => return negotiate::run(&globals, args).await,
        Command::Describe(args) => return describe::run(&globals, &args),
        Command::Publish(args) => return publish::run(&globals, &args).await,
        Command::Match(args) => return matching::run(&globals, &args).await,
        Command::Transfers(args) => return transfers::run(&globals, &args).await,
        Command::Migrate(args) => return migrate::run(&globals, &args).await,
        Command::Object {
            command: ObjectCommand::Put(args),
        } => return object::put(&globals, &args).await,
        Command::Object {
            command: ObjectCommand::Get(args),
        } => return object::get(&globals, &args).await,
        Command::Object {
            command: ObjectCommand::Ls,
        } => object::list(&globals).await,
        Command::Instance {
            command: InstanceCommand::Create(args),
        } => instance::create(&globals, &args).await,
        Command::Instance {
            command: InstanceCommand::Ls,
        } => instance::list(&globals).await,
        Command::Vnet { command } => vnet::run(&globals, command).await,
        Command::Policy { command } => policy::run(&globals, command).await,
        Command::Directory {
            command: DirectoryCommand::Watch(args),
        } => return directory::watch(&globals, &args).await,
        Command::Query(args) => query::run(&globals, &args).await,
        Command::Directory {
            command: DirectoryCommand::Get { cloud_id },
        } => directory::get(&globals, &cloud_id).await,
        Command::Directory {
            command: DirectoryCommand::Withdraw { cloud_id },
        } => directory::withdraw(&globals, cloud_id.as_deref()).await,
        Command::Status => status::run(&globals).await,
        Command::Members => members::list(&globals).await,
        Command::Member { cloud_id } => members::show(&globals, &cloud_id).await,
        Command::Token {
            command: TokenCommand::Create { cloud_id, ttl },
        } => token::create(&globals, &cloud_id, ttl).await,
        Command::Revoke { cloud_id, reason } => revoke::revoke(&globals, &cloud_id, reason).await,
        Command::Revocations => revoke::list(&globals).await,
        Command::Enroll(args) => enroll::run(&globals, args).await,
        Command::Time(args) => time::run(&globals, &args).await,
        Command::Contexts => contexts::run(&globals),
    }?;
    Ok(Outcome::success(text))
}

/// A connected client of a broker's `Broker` API.
pub struct BrokerSession {
    pub client: BrokerClient<Channel>,
    pub remote: Remote,
}

impl BrokerSession {
    /// Connects to the broker of `context`, which must be a broker context.
    pub async fn connect(context: &Context, globals: &Globals) -> anyhow::Result<Self> {
        let remote = Remote::broker(context, globals.timeout)?;
        let (anchors, credentials) = operator_tls(context)?;
        let channel = remote.connect(&anchors, Some(&credentials)).await?;
        Ok(Self {
            client: BrokerClient::new(channel),
            remote,
        })
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
        let (channel, remote) = root_channel(globals).await?;
        Ok(Self {
            client: FederationClient::new(channel),
            remote,
        })
    }
}

/// A connected client of the root's `Directory` API, served on the same
/// port and with the same TLS as `Federation`.
pub struct DirectorySession {
    pub client: DirectoryClient<Channel>,
    pub remote: Remote,
}

impl DirectorySession {
    /// Connects to the root, as [`RootSession::connect`] does.
    pub async fn connect(globals: &Globals) -> anyhow::Result<Self> {
        let (channel, remote) = root_channel(globals).await?;
        Ok(Self {
            client: DirectoryClient::new(channel),
            remote,
        })
    }
}

/// A connected client of the root's `Time` API, served on the same port
/// and with the same TLS as `Federation`.
pub struct TimeSession {
    pub client: TimeClient<Channel>,
    pub remote: Remote,
}

impl TimeSession {
    /// Connects to the root, as [`RootSession::connect`] does.
    pub async fn connect(globals: &Globals) -> anyhow::Result<Self> {
        let (channel, remote) = root_channel(globals).await?;
        Ok(Self {
            client: TimeClient::new(channel),
            remote,
        })
    }
}

/// A channel to the root's mutual-TLS API with the selected context's
/// operator certificate.
async fn root_channel(globals: &Globals) -> anyhow::Result<(Channel, Remote)> {
    let file = globals.contexts()?;
    let context = file.select(globals.context.as_deref())?;
    let remote = Remote::root(context, globals.timeout)?;
    let (anchors, credentials) = operator_tls(context)?;
    let channel = remote.connect(&anchors, Some(&credentials)).await?;
    Ok((channel, remote))
}

/// A cloud id from the command line.
pub fn cloud_id(arg: &str) -> anyhow::Result<CloudId> {
    Ok(CloudId::new(arg)?)
}
