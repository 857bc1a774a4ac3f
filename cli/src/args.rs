//! The command line: global flags and one subcommand per operation.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::Format;
use crate::size::Size;

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
    /// Transfers in and out of this cloud over AMQP, with their progress (broker contexts)
    #[command(
        after_help = "With --watch, a terminal shows one progress bar per active transfer (bytes/total, rate, ETA) and a last line for each that ends (`committed (64 MiB)`, `refused: <reason>`). When stdout is not a terminal, each update is one line instead:\n  <transfer_id> <state> <bytes_done>/<size> <rate>[ <detail>]\ne.g. `3f2a…9e0f sending 1048576/67108864 1.5MiB/s`; a state of several words is hyphenated (awaiting-receipt) and an unknown rate is `-`. --output json prints one JSON object per update (JSON Lines).\n\nExit status: 0 on a list, on Ctrl-C, or with --until-idle once no transfer is active; 1 on any error (including the broker ending the watch)."
    )]
    Transfers(TransfersArgs),
    /// The local cloud's instances (broker contexts): create, ls
    Instance {
        #[command(subcommand)]
        command: InstanceCommand,
    },
    /// Move an instance to another cloud, one step at a time (broker contexts)
    #[command(
        after_help = "Prints each step as the broker reports it: `[target] cloud-b (…)`, `[offer] …`, `[transfer] …`, `[verify] …`, `[import] …`, `[release] …`, then `[done] …` or `[failed] …`. The disk's transfer shows as a progress bar on a terminal; otherwise each of its updates is one line:\n  [transfer] <transfer_id> <state> <bytes_done>/<size> <rate>[ <detail>]\n--output json prints one JSON object per step (JSON Lines).\n\nAny failure leaves the instance running here.\n\nExit status: 0 when the last step is `done`, 1 when it is `failed` (its detail also goes to stderr) or on any error before the migration starts, 3 when the stream ends before `done` or `failed` (the outcome is unknown)."
    )]
    Migrate(MigrateArgs),
    /// Objects of the storage federation (broker contexts): put, get, ls
    Object {
        #[command(subcommand)]
        command: ObjectCommand,
    },
    /// Cross-cloud virtual networks (broker contexts): create, ls, show, attach, detach, delete, mirror, swap
    #[command(
        after_help = "The root allocates each VNet a federation-unique VNI and refuses a CIDR that overlaps another VNet of the same tenant (the cloud that creates it); every member cloud's broker builds its side (a VXLAN device, a bridge, a veth per attached instance).\n\nExit status: 0 on success, 1 on any error (the root's or the broker's reason goes to stderr)."
    )]
    Vnet {
        #[command(subcommand)]
        command: VnetCommand,
    },
    /// Flow rules between security domains (broker contexts): allow, revoke, ls
    #[command(
        after_help = "Traffic inside a domain always passes; between two domains it passes only where an agreed rule allows it (replies pass back). A domain belongs to the cloud whose VNet first used it. A rule between two domains of one owner is agreed at once; between domains of two owners, one proposes it with `policy allow` and the other agrees by running the same `policy allow` command. Either owner can `policy revoke` it. Only agreed rules reach the brokers, which enforce them with nftables.\n\nExit status: 0 on success, 1 on any error (the root's reason goes to stderr)."
    )]
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Validate a service descriptor locally against the federation's shapes (no server involved)
    #[command(
        after_help = "Exit status: 0 when the descriptor is valid, 4 when it violates the shapes, 1 when it cannot be read or parsed."
    )]
    Describe(DescribeArgs),
    /// Validate a service descriptor locally, then publish it in the root's directory
    #[command(
        after_help = "The context's operator certificate must be of the cloud the descriptor describes.\n\nExit status: 0 when the root published it (or already had it, unchanged), 4 when it violates the shapes (nothing is sent), 1 on any other error."
    )]
    Publish(PublishArgs),
    /// Run a read-only SPARQL query over the root's directory
    #[command(
        after_help = "The query is the QUERY argument, or read from --file; `-` reads it from standard input.\n\nSELECT answers print as a table and ASK answers as true or false by default; CONSTRUCT and DESCRIBE answers print as Turtle. --format json, csv, tsv, xml, turtle, ntriples, jsonld or rdfxml prints the answer as the root wrote it; --output json prints the SPARQL JSON results (JSON-LD for CONSTRUCT and DESCRIBE).\n\nExit status: 0 on an answer (whatever it holds), 1 on any error."
    )]
    Query(QueryArgs),
    /// Find services meeting hard constraints in the root's directory, ranked and explained
    #[command(
        after_help = "Each constraint applies only to the kinds named in its help; values are checked before anything is sent.\n\nExit status: 0 when at least one service matched, 3 when none did, 1 on any error."
    )]
    Match(MatchArgs),
    /// Clouds' descriptors in the root's directory: get, withdraw, watch
    Directory {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// The root's clock (Time.Now) and the local clock's offset to it
    #[command(
        after_help = "Asks the root (a root context's endpoint, or a broker context's root_endpoint) N times and keeps the reading with the shortest round trip: the offset is the root's time + round trip/2 - the local time when the answer came (Cristian's method), true to within half the round trip. A positive offset means the local clock is behind the root. The local clock is never changed.\n\nExit status: 0 on an answer, 1 on any error."
    )]
    Time(TimeArgs),
    /// List the contexts of the config file
    Contexts,
}

/// `transfers …`
#[derive(Debug, Args)]
pub struct TransfersArgs {
    /// Also the finished transfers the broker still remembers
    #[arg(long)]
    pub all: bool,
    /// Follow the transfers live, until interrupted (exit 0) or the broker
    /// ends the stream (exit 1)
    #[arg(long)]
    pub watch: bool,
    /// With --watch: exit 0 as soon as no transfer is active (at once if none is)
    #[arg(long, requires = "watch")]
    pub until_idle: bool,
}

/// `instance …`
#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// Create an instance in this cloud: a disk and a record in the broker
    #[command(
        after_help = "Sizes take a K, M, G or T suffix, binary (512M = 512 MiB = 536870912 bytes; KiB, MB and the like are read the same way); memory must be a whole number of MiB."
    )]
    Create(InstanceCreateArgs),
    /// List this cloud's instances
    Ls,
}

/// `instance create NAME --vcpu N --memory 512M --disk 64M`.
#[derive(Debug, Args)]
pub struct InstanceCreateArgs {
    /// The instance's name, unique in this cloud
    pub name: String,
    /// Virtual CPUs
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub vcpu: u32,
    /// Memory, e.g. 512M or 2G
    #[arg(long, value_name = "SIZE")]
    pub memory: Size,
    /// The disk's virtual size, e.g. 64M or 10G
    #[arg(long, value_name = "SIZE")]
    pub disk: Size,
}

/// `migrate INSTANCE (--to CLOUD | --match [CONSTRAINTS])`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to", "constraints"])))]
pub struct MigrateArgs {
    /// The instance to move
    pub instance: String,
    /// The cloud to move it to, e.g. cloud-b
    #[arg(long, value_name = "CLOUD")]
    pub to: Option<String>,
    /// Let the root's directory choose the cloud among compute services:
    /// CONSTRAINTS are `match` flags in one argument, e.g. --match '--region EU --max-price 0.05EUR'
    /// (the instance's vCPUs and memory are added by the broker; bare --match adds nothing)
    #[arg(
        long = "match",
        id = "constraints",
        value_name = "CONSTRAINTS",
        num_args = 0..=1,
        default_missing_value = "",
        allow_hyphen_values = true
    )]
    pub constraints: Option<String>,
}

/// `object …`
#[derive(Debug, Subcommand)]
pub enum ObjectCommand {
    /// Store a file in the federation, with replicas on other clouds
    #[command(
        after_help = "Sends the file in 1 MiB messages, then prints each step as the broker reports it: `[upload] …`, `[placement] …`, `[transfer] …` (one progress bar per replica on a terminal; otherwise one line per update: `[transfer] <transfer_id> <state> <bytes_done>/<size> <rate>[ <detail>]`), `[stored] …`, then `[done] …` followed by the object and its replicas, or `[failed] …`. --output json prints one JSON object per step (JSON Lines).\n\nExit status: 0 on `done`, 1 on `failed` (its detail also goes to stderr) or any error, 3 when the stream ends before `done` or `failed` (the outcome is unknown)."
    )]
    Put(ObjectPutArgs),
    /// Fetch an object from a live replica, checked against its size and SHA-256
    #[command(
        after_help = "Writes to a temporary file beside FILE and renames it only once the size and the SHA-256 match the object's; on a mismatch the temporary file is deleted and nothing is written. Which replica served the object goes to stderr (`<name>: <size> from <cloud>`); once the file is in place, stdout says `wrote <FILE>: <bytes> bytes, sha256 <hex>` (--output json: name, path, size, sha256, from_cloud; with --out -, stdout holds the object and nothing else).\n\nExit status: 0 when the object arrived intact, 1 otherwise."
    )]
    Get(ObjectGetArgs),
    /// List the objects this cloud stored, with their replicas
    Ls,
}

/// `object put FILE …`
#[derive(Debug, Args)]
pub struct ObjectPutArgs {
    /// The file to store
    pub file: PathBuf,
    /// The object's name: 1 to 128 letters, digits, '.', '_' or '-' [default: the file's name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// How many clouds must hold a copy (1 to 10) [default: 3, or as many as --cloud]
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=10)
    )]
    pub replicas: Option<u32>,
    /// Only clouds in this region: an ISO 3166-1 alpha-2 country (FR) or an area (EU) [default: anywhere]
    #[arg(long, value_name = "CODE")]
    pub region: Option<String>,
    /// Place a replica on this cloud instead of letting the broker choose; repeat for each replica
    #[arg(long = "cloud", value_name = "CLOUD", conflicts_with = "region")]
    pub clouds: Vec<String>,
}

/// `object get NAME [--out FILE]`
#[derive(Debug, Args)]
pub struct ObjectGetArgs {
    /// The object's name
    pub name: String,
    /// Where to write it; `-` for standard output [default: NAME in the current directory].
    /// (-o is the global --output.)
    #[arg(long, short = 'O', value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `vnet …`
#[derive(Debug, Subcommand)]
pub enum VnetCommand {
    /// Create a VNet spanning some clouds (this cloud among them)
    Create(VnetCreateArgs),
    /// The VNets this cloud owns or is a member of
    Ls,
    /// One VNet: the root's record, its instances, and this cloud's side of it
    Show {
        /// The VNet's name
        name: String,
        /// The cloud that owns it [default: this cloud]
        #[arg(long, value_name = "CLOUD")]
        tenant: Option<String>,
    },
    /// Attach an instance of this cloud: the root gives it an address and a MAC
    Attach {
        /// The VNet's name
        vnet: String,
        /// The instance (it must run in this cloud)
        instance: String,
        /// The address to give it [default: the lowest free one]
        #[arg(long, value_name = "IPV4")]
        ip: Option<String>,
        /// The cloud that owns the VNet [default: this cloud]
        #[arg(long, value_name = "CLOUD")]
        tenant: Option<String>,
    },
    /// Detach an instance of this cloud; its address becomes free
    Detach {
        /// The VNet's name
        vnet: String,
        /// The instance
        instance: String,
        /// The cloud that owns the VNet [default: this cloud]
        #[arg(long, value_name = "CLOUD")]
        tenant: Option<String>,
    },
    /// Delete one of this cloud's VNets (no instance may be attached); its VNI becomes free
    Delete {
        /// The VNet's name
        name: String,
    },
    /// Create a Mirror VNet of one of this cloud's VNets, which receives a copy of its input
    #[command(
        after_help = "The mirror is a clone of the production VNet: the same CIDR, clouds, domain and addresses, a VNI of its own, and a clone of each attached instance (with its address and MAC).\n\nStrategies: full (every packet), stats (counters only, no packets), sample:<rate> (one packet in N, whole; the rate is 1/N or a decimal such as 0.1). headers (every packet, cut after its headers) is refused by the root for now: the brokers copy with nftables `dup`, which copies whole packets.\n\n`vnet swap` then makes the mirror carry the production traffic."
    )]
    Mirror {
        /// The production VNet (one of this cloud's)
        vnet: String,
        /// What the mirror receives: full, stats or sample:<rate>, e.g. sample:0.1 or sample:1/100
        #[arg(long, value_name = "STRATEGY")]
        strategy: String,
        /// The mirror's name [default: <VNET>-mirror]
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// Make a VNet's mirror carry its production traffic (and the VNet receive the copies); run it again to roll back
    Swap {
        /// The production VNet (the one the mirror was created from)
        vnet: String,
    },
}

/// `policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Propose a flow rule, or agree to the one the other domain's owner proposed (the same command)
    #[command(
        after_help = "Between two domains of different owners, the rule counts only once both ran this command with the same rule: the first run proposes it (`awaiting <cloud>`), the other owner's run agrees to it (`agreed`). Between two domains of one owner, it is agreed at once."
    )]
    Allow(FlowArgs),
    /// Withdraw a proposed or agreed flow rule (either owner may)
    Revoke(FlowArgs),
    /// The flow rules touching a domain this cloud owns, agreed or awaiting agreement
    Ls,
}

/// `policy allow|revoke --from DOMAIN --to DOMAIN [--proto P] [--port N|N-M]`
#[derive(Debug, Args)]
pub struct FlowArgs {
    /// The domain flows come from
    #[arg(long, value_name = "DOMAIN")]
    pub from: String,
    /// The domain flows go to
    #[arg(long, value_name = "DOMAIN")]
    pub to: String,
    /// The protocol: tcp, udp, icmp or any
    #[arg(long, value_name = "PROTO", default_value = "tcp")]
    pub proto: String,
    /// Destination ports (tcp and udp only): 443 or 8000-8080 [default: every port]
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,
}

/// `vnet create NAME --cidr 10.20.0.0/24 --clouds cloud-a,cloud-b [--domain D] [--bandwidth 100mbit]`
#[derive(Debug, Args)]
pub struct VnetCreateArgs {
    /// 1 to 32 lower-case letters, digits and '-', starting with a letter
    pub name: String,
    /// The IPv4 network, e.g. 10.20.0.0/24 (prefix length 8 to 29)
    #[arg(long, value_name = "CIDR")]
    pub cidr: String,
    /// The member clouds, comma-separated; this cloud must be one of them
    #[arg(long, value_name = "CLOUD,...", value_delimiter = ',', required = true)]
    pub clouds: Vec<String>,
    /// The security domain [default: one named after this cloud]
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// A rate cap on the VNet at each cloud: a whole number and kbit, mbit or gbit, e.g. 100mbit
    #[arg(long, value_name = "RATE")]
    pub bandwidth: Option<String>,
}

/// `time --samples N`.
#[derive(Debug, Args)]
pub struct TimeArgs {
    /// How many readings to take (1 to 100); the one with the shortest round trip is kept
    #[arg(
        long,
        value_name = "N",
        default_value_t = 5,
        value_parser = clap::value_parser!(u32).range(1..=100)
    )]
    pub samples: u32,
}

/// `publish --file x.ttl`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The descriptor (Turtle .ttl, N-Triples .nt, JSON-LD .jsonld)
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Its format, when the file name does not tell (turtle, ntriples, jsonld)
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// How `query` prints the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryFormat {
    /// SELECT as an aligned table, ASK as true/false, graphs as Turtle
    Table,
    /// SPARQL JSON results (JSON-LD for CONSTRUCT and DESCRIBE)
    Json,
    /// SPARQL CSV results
    Csv,
    /// SPARQL TSV results
    Tsv,
    /// SPARQL XML results (RDF/XML for CONSTRUCT and DESCRIBE)
    Xml,
    /// Turtle (CONSTRUCT and DESCRIBE)
    Turtle,
    /// N-Triples (CONSTRUCT and DESCRIBE)
    Ntriples,
    /// JSON-LD (CONSTRUCT and DESCRIBE)
    Jsonld,
    /// RDF/XML (CONSTRUCT and DESCRIBE)
    Rdfxml,
}

/// `query 'SELECT …'` or `query --file q.rq`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["query", "file"])))]
pub struct QueryArgs {
    /// The SPARQL query, or `-` to read it from standard input
    #[arg(value_name = "QUERY")]
    pub query: Option<String>,
    /// Read the query from this file (`-`: standard input)
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// How to print the answer [default: table]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<QueryFormat>,
}

/// `match --kind storage …`: hard constraints, kept as typed so that
/// `intercloud_ontology::matching::MatchRequest` parses and checks them and
/// its errors name the flag.
#[derive(Debug, Default, Args)]
pub struct MatchArgs {
    /// The kind of service: compute, storage, network, monitoring or time
    #[arg(long, value_name = "KIND")]
    pub kind: String,
    /// Storage: replication factor at least this (1..10)
    #[arg(long, value_name = "N")]
    pub min_replication: Option<String>,
    /// Storage: durability at least this many nines (0..20)
    #[arg(long, value_name = "NINES")]
    pub min_durability: Option<String>,
    /// Storage: strong or eventual
    #[arg(long, value_name = "CONSISTENCY")]
    pub consistency: Option<String>,
    /// An ISO 3166-1 alpha-2 country (FR) or an area of the ontology (EU)
    #[arg(long, value_name = "CODE")]
    pub region: Option<String>,
    /// Highest price, in this currency only, e.g. '0.03 EUR'
    #[arg(long, value_name = "PRICE")]
    pub max_price: Option<String>,
    /// SLA availability at least this percentage (0..100)
    #[arg(long, value_name = "PERCENT")]
    pub min_availability: Option<String>,
    /// Compute: a flavor with at least this many vCPUs
    #[arg(long, value_name = "N")]
    pub min_vcpu: Option<String>,
    /// Compute: a flavor with at least this much memory, in MiB
    #[arg(long, value_name = "MIB")]
    pub min_memory_mib: Option<String>,
    /// Network: vxlan, vlan or gre
    #[arg(long, value_name = "ENCAPSULATION")]
    pub encapsulation: Option<String>,
    /// Keep offline clouds among the candidates (marked offline)
    #[arg(long)]
    pub include_offline: bool,
}

/// `directory …`
#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Print a cloud's published descriptor (Turtle)
    Get {
        /// The cloud, e.g. cloud-b
        cloud_id: String,
    },
    /// Remove a cloud's descriptor from the directory (a root operator may remove any)
    Withdraw {
        /// The cloud [default: the cloud of the context's operator certificate]
        cloud_id: Option<String>,
    },
    /// Print one line per publication and withdrawal as they happen, until
    /// interrupted (exit 0) or the root ends the stream (exit 1)
    Watch(DirectoryWatchArgs),
}

/// `directory watch …`
#[derive(Debug, Args)]
pub struct DirectoryWatchArgs {
    /// Skip the opening CURRENT events for the descriptors published now
    #[arg(long)]
    pub no_current: bool,
    /// Stop after N events (exit 0)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
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

    #[test]
    fn publish_takes_a_file_and_an_optional_format() {
        let cli = Cli::try_parse_from([
            "intercloudctl",
            "publish",
            "--file",
            "x.ttl",
            "--format",
            "turtle",
        ])
        .expect("parse");
        let Command::Publish(args) = cli.command else {
            panic!("not publish: {:?}", cli.command);
        };
        assert_eq!(args.file, PathBuf::from("x.ttl"));
        assert_eq!(args.format.as_deref(), Some("turtle"));
        assert!(Cli::try_parse_from(["intercloudctl", "publish"]).is_err());
    }

    #[test]
    fn query_takes_the_text_or_a_file_not_both() {
        let cli = Cli::try_parse_from(["intercloudctl", "query", "ASK {}", "--format", "csv"])
            .expect("parse");
        let Command::Query(args) = cli.command else {
            panic!("not query: {:?}", cli.command);
        };
        assert_eq!(args.query.as_deref(), Some("ASK {}"));
        assert_eq!(args.format, Some(QueryFormat::Csv));
        let cli = Cli::try_parse_from(["intercloudctl", "query", "--file", "-"]).expect("parse");
        let Command::Query(args) = cli.command else {
            panic!("not query: {:?}", cli.command);
        };
        assert_eq!(args.file, Some(PathBuf::from("-")));
        assert_eq!(args.format, None);
        assert!(Cli::try_parse_from(["intercloudctl", "query", "-"]).is_ok());
        assert!(Cli::try_parse_from(["intercloudctl", "query"]).is_err());
        assert!(
            Cli::try_parse_from(["intercloudctl", "query", "ASK {}", "--file", "q.rq"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["intercloudctl", "query", "ASK {}", "--format", "yaml"]).is_err()
        );
        for format in [
            "table", "json", "csv", "tsv", "xml", "turtle", "ntriples", "jsonld", "rdfxml",
        ] {
            assert!(
                Cli::try_parse_from(["intercloudctl", "query", "ASK {}", "--format", format])
                    .is_ok(),
                "{format}"
            );
        }
    }

    #[test]
    fn match_keeps_constraint_values_as_text_for_the_ontology_to_check() {
        let cli = Cli::try_parse_from([
            "intercloudctl",
            "match",
            "--kind",
            "storage",
            "--min-replication",
            "three",
            "--max-price",
            "0.03 EUR",
            "--include-offline",
        ])
        .expect("parse");
        let Command::Match(args) = cli.command else {
            panic!("not match: {:?}", cli.command);
        };
        assert_eq!(args.kind, "storage");
        assert_eq!(args.min_replication.as_deref(), Some("three"));
        assert_eq!(args.max_price.as_deref(), Some("0.03 EUR"));
        assert!(args.include_offline);
        assert!(args.region.is_none());
        // --kind is required.
        assert!(Cli::try_parse_from(["intercloudctl", "match", "--region", "EU"]).is_err());
    }

    #[test]
    fn time_takes_1_to_100_samples_5_by_default() {
        let cli = Cli::try_parse_from(["intercloudctl", "time"]).expect("parse");
        assert!(matches!(
            cli.command,
            Command::Time(TimeArgs { samples: 5 })
        ));
        let cli = Cli::try_parse_from([
            "intercloudctl",
            "--context",
            "cloud-a",
            "time",
            "--samples",
            "100",
            "-o",
            "json",
        ])
        .expect("parse");
        assert!(matches!(
            cli.command,
            Command::Time(TimeArgs { samples: 100 })
        ));
        assert_eq!(cli.output, Format::Json);
        for bad in ["0", "101", "-1", "five"] {
            assert!(
                Cli::try_parse_from(["intercloudctl", "time", "--samples", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn directory_has_get_withdraw_and_watch() {
        let cli =
            Cli::try_parse_from(["intercloudctl", "directory", "get", "cloud-b"]).expect("parse");
        assert!(matches!(
            cli.command,
            Command::Directory {
                command: DirectoryCommand::Get { ref cloud_id }
            } if cloud_id == "cloud-b"
        ));
        assert!(Cli::try_parse_from(["intercloudctl", "directory", "get"]).is_err());
        let cli = Cli::try_parse_from(["intercloudctl", "directory", "withdraw"]).expect("parse");
        assert!(matches!(
            cli.command,
            Command::Directory {
                command: DirectoryCommand::Withdraw { cloud_id: None }
            }
        ));
        let cli = Cli::try_parse_from([
            "intercloudctl",
            "directory",
            "watch",
            "--no-current",
            "--count",
            "3",
            "-o",
            "json",
        ])
        .expect("parse");
        assert_eq!(cli.output, Format::Json);
        assert!(matches!(
            cli.command,
            Command::Directory {
                command: DirectoryCommand::Watch(DirectoryWatchArgs {
                    no_current: true,
                    count: Some(3)
                })
            }
        ));
        assert!(
            Cli::try_parse_from(["intercloudctl", "directory", "watch", "--count", "0"]).is_err()
        );
    }
}
