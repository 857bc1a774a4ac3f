//! `object put|get|ls`: the storage federation, through this cloud's broker.
//!
//! `put` streams the file (never whole in memory) in 1 MiB messages after
//! a header, and follows the steps the broker reports. `get` writes to a
//! temporary file beside the destination and renames it only once the size
//! and SHA-256 of what arrived match the object's.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use anyhow::Context as _;
use indicatif::ProgressBar;
use intercloud_ontology::matching::{RegionFilter, RequestError};
use intercloud_proto::v1 as pb;
use intercloud_proto::v1::get_object_response::Part as GetPart;
use intercloud_proto::v1::put_object_request::Part as PutPart;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::Streaming;

use super::progress::Progress;
use super::steps::{Verdict, follow, unfinished};
use super::watching::interrupted;
use super::{BrokerSession, Globals, Outcome, cloud_id};
use crate::args::{ObjectGetArgs, ObjectPutArgs};
use crate::client::Remote;
use crate::output::capacity::bytes;
use crate::output::table::one_line;
use crate::output::{Fetched, ObjectList};
use crate::report::{hinted, line};

/// Bytes per data message.
const CHUNK: usize = 1 << 20;

/// Data messages queued ahead of the network.
const QUEUED_CHUNKS: usize = 4;

/// Replicas of an object when neither `--replicas` nor `--cloud` says.
const DEFAULT_REPLICAS: u32 = 3;

/// Longest object name.
const MAX_NAME: usize = 128;

const PUT: &str = "PutObject";
const GET: &str = "GetObject";

/// `Broker.ListObjects`.
pub async fn list(globals: &Globals) -> anyhow::Result<String> {
    let file = globals.contexts()?;
    let context = file.select(globals.context.as_deref())?;
    let BrokerSession { mut client, remote } = BrokerSession::connect(context, globals).await?;
    let response = remote
        .call(
            "ListObjects",
            client.list_objects(pb::ListObjectsRequest {}),
        )
        .await?;
    globals.render(&ObjectList::from(&response))
}

/// `Broker.PutObject`; exit status 0 when done, 1 when failed,
/// [`super::EXIT_UNFINISHED`] when the stream ends before either.
pub async fn put(globals: &Globals, args: &ObjectPutArgs) -> anyhow::Result<Outcome> {
    let name = object_name(args)?;
    let (replicas, clouds) = placement(args)?;
    let region = match &args.region {
        Some(code) => region(code)?,
        None => String::new(),
    };
    let path = &args.file;
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let metadata = file
        .metadata()
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !metadata.is_file() {
        return Err(hinted(
            format!("{} is not a regular file", path.display()),
            "pass the path of a file",
        ));
    }
    let size = metadata.len();
    let contexts = globals.contexts()?;
    let context = contexts.select(globals.context.as_deref())?;
    let BrokerSession { mut client, remote } = BrokerSession::connect(context, globals).await?;

    let mut progress = Progress::new(globals.format);
    let (parts, queue) = mpsc::channel(QUEUED_CHUNKS);
    let header = pb::PutObjectHeader {
        name: name.clone(),
        replicas,
        region,
        size,
        clouds,
    };
    parts
        .send(pb::PutObjectRequest {
            part: Some(PutPart::Header(header)),
        })
        .await
        .context("cannot queue the header")?;
    let (sent_tx, sent_rx) = oneshot::channel::<()>();
    let bar = progress.upload_bar(name.clone(), size);
    let reader = tokio::spawn(async move {
        let result = send_file(file, parts, bar).await;
        drop(sent_tx);
        result
    });
    let sent = async {
        let _ = sent_rx.await;
    };
    let mut stream = remote
        .call_after_sending(PUT, client.put_object(ReceiverStream::new(queue)), sent)
        .await?;
    let verdict = follow(&mut stream, &remote, PUT, globals.format, &mut progress).await?;
    // The broker's verdict came first; what happened to the file tells why.
    let read = if reader.is_finished() {
        reader.await.ok()
    } else {
        reader.abort();
        None
    };
    let exit = verdict.exit();
    let local = match read {
        Some(Err(e)) => Some(format!("cannot read {}: {e}", path.display())),
        Some(Ok(Sent {
            bytes,
            to_the_end: true,
        })) if bytes != size => Some(format!(
            "{} changed while it was sent ({size} bytes announced, {bytes} sent)",
            path.display()
        )),
        _ => None,
    };
    match verdict {
        Verdict::Done => {}
        Verdict::Failed(detail) => {
            eprintln!("{}", line(&put_failed(&name, &detail, local.as_deref())));
        }
        Verdict::Unfinished(cause) => {
            eprintln!(
                "{}",
                line(&unfinished(
                    cause,
                    &format!("the outcome of storing {name}"),
                    "check `intercloudctl object ls`",
                ))
            );
            if let Some(local) = local {
                eprintln!("{}", line(&anyhow::anyhow!(local)));
            }
        }
    }
    Ok(Outcome {
        text: String::new(),
        exit,
    })
}

/// What [`send_file`] sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    bytes: u64,
    /// Whether it read the file to its end (not stopped by the broker).
    to_the_end: bool,
}

/// Sends the file's bytes after the header, in [`CHUNK`] messages. Stops
/// early, without error, when the broker stops reading (its steps say
/// why). A count other than the header's makes the broker fail the put.
async fn send_file(
    mut file: tokio::fs::File,
    parts: mpsc::Sender<pb::PutObjectRequest>,
    bar: Option<ProgressBar>,
) -> std::io::Result<Sent> {
    let mut sent = Sent {
        bytes: 0,
        to_the_end: true,
    };
    loop {
        let mut chunk = vec![0; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            match file.read(&mut chunk[filled..]).await? {
                0 => break,
                n => filled += n,
            }
        }
        if filled == 0 {
            break;
        }
        chunk.truncate(filled);
        let message = pb::PutObjectRequest {
            part: Some(PutPart::Data(chunk)),
        };
        if parts.send(message).await.is_err() {
            sent.to_the_end = false;
            break;
        }
        sent.bytes += filled as u64;
        if let Some(bar) = &bar {
            bar.inc(filled as u64);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(sent)
}

/// `error: put of report.pdf failed: <detail>[: <local cause>] — …`.
fn put_failed(name: &str, detail: &str, local: Option<&str>) -> anyhow::Error {
    let mut what = format!("put of {name} failed");
    for part in [Some(one_line(detail)), local.map(one_line)]
        .into_iter()
        .flatten()
        .filter(|p| !p.is_empty())
    {
        what.push_str(": ");
        what.push_str(&part);
    }
    hinted(what, "`intercloudctl object ls` shows what is stored")
}

/// `--name`, or the file's name, if it is a valid object name.
fn object_name(args: &ObjectPutArgs) -> anyhow::Result<String> {
    let (name, hint) = match &args.name {
        Some(name) => (name.clone(), "see `intercloudctl object put --help`"),
        None => {
            let name = args
                .file
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| {
                    hinted(
                        format!(
                            "{} has no file name to use as the object's",
                            args.file.display()
                        ),
                        "pass --name NAME",
                    )
                })?;
            (name.to_owned(), "pass --name NAME")
        }
    };
    if valid_name(&name) {
        Ok(name)
    } else {
        Err(hinted(
            format!(
                "invalid object name {name:?}: use 1 to {MAX_NAME} letters, digits, '.', '_' or '-'"
            ),
            hint,
        ))
    }
}

/// How many replicas, and on which clouds if named: `--replicas` (3 by
/// default) or as many as `--cloud`, which must then agree.
fn placement(args: &ObjectPutArgs) -> anyhow::Result<(u32, Vec<String>)> {
    let clouds = args
        .clouds
        .iter()
        .map(|c| cloud_id(c).map(|id| id.to_string()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut unique = clouds.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != clouds.len() {
        return Err(hinted(
            "a cloud is named twice with --cloud",
            "name each cloud once: one replica per cloud",
        ));
    }
    let named = u32::try_from(clouds.len()).unwrap_or(u32::MAX);
    match (args.replicas, named) {
        (None, 0) => Ok((DEFAULT_REPLICAS, clouds)),
        (Some(n), 0) => Ok((n, clouds)),
        (None | Some(_), 11..) => Err(hinted(
            format!("{named} clouds named with --cloud, and an object has at most 10 replicas"),
            "name at most 10",
        )),
        (None, n) => Ok((n, clouds)),
        (Some(n), m) if n == m => Ok((n, clouds)),
        (Some(n), m) => Err(hinted(
            format!("--replicas {n}, but {m} clouds named with --cloud"),
            "one replica per cloud named: drop --replicas, or name as many clouds",
        )),
    }
}

/// 1 to 128 ASCII letters, digits, '.', '_' or '-'.
fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `--region`, checked and written as the ontology does (upper case).
fn region(code: &str) -> anyhow::Result<String> {
    RegionFilter::from_str(code)
        .map(|filter| filter.code().to_owned())
        .map_err(|e| {
            let reason = match &e {
                RequestError::InvalidValue { reason, .. } => reason.clone(),
                other => other.to_string(),
            };
            hinted(
                format!("invalid --region {code:?}: {reason}"),
                "see `intercloudctl object put --help`",
            )
        })
}

/// Where `object get` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Destination {
    Stdout,
    File(PathBuf),
}

/// `--out`: `-`, a file, or a directory to write NAME into; NAME in the
/// current directory without it.
fn destination(name: &str, out: Option<&Path>) -> anyhow::Result<Destination> {
    let plain = |name: &str| {
        if valid_name(name) && name != "." && name != ".." {
            Ok(PathBuf::from(name))
        } else {
            Err(hinted(
                format!("{name:?} is not a file name to write to"),
                "pass --out FILE",
            ))
        }
    };
    match out {
        Some(path) if path == Path::new("-") => Ok(Destination::Stdout),
        Some(dir) if dir.is_dir() => Ok(Destination::File(dir.join(plain(name)?))),
        Some(path) => Ok(Destination::File(path.to_owned())),
        None => Ok(Destination::File(plain(name)?)),
    }
}

/// `Broker.GetObject`, written to `--out` once verified.
pub async fn get(globals: &Globals, args: &ObjectGetArgs) -> anyhow::Result<Outcome> {
    let destination = destination(&args.name, args.out.as_deref())?;
    let contexts = globals.contexts()?;
    let context = contexts.select(globals.context.as_deref())?;
    let BrokerSession { mut client, remote } = BrokerSession::connect(context, globals).await?;
    let request = pb::GetObjectRequest {
        name: args.name.clone(),
    };
    let mut stream = remote.call(GET, client.get_object(request)).await?;
    // On Ctrl-C the receiving future is dropped, and with it the
    // temporary file.
    let fetched = tokio::select! {
        fetched = receive(&mut stream, &remote, &args.name, &destination) => fetched?,
        () = interrupted() => anyhow::bail!("interrupted: nothing written"),
    };
    match fetched {
        Some(fetched) => globals.render(&fetched).map(Outcome::success),
        // Stdout holds the object and nothing else.
        None => Ok(Outcome::success(String::new())),
    }
}

/// What the object's info promises.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    size: u64,
    /// Lowercase hex.
    sha256: String,
}

/// How what arrived differs from the object.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mismatch {
    Size { got: u64, want: u64 },
    Digest { got: String, want: String },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Size { got, want } => {
                write!(f, "{got} bytes arrived, the object has {want}")
            }
            Self::Digest { got, want } => {
                write!(f, "what arrived has sha256 {got}, the object {want}")
            }
        }
    }
}

/// Checks the size, then the digest (case-insensitively).
fn verify(expected: &Expected, size: u64, sha256: &str) -> Result<(), Mismatch> {
    if size != expected.size {
        return Err(Mismatch::Size {
            got: size,
            want: expected.size,
        });
    }
    if !sha256.eq_ignore_ascii_case(&expected.sha256) {
        return Err(Mismatch::Digest {
            got: sha256.to_owned(),
            want: expected.sha256.clone(),
        });
    }
    Ok(())
}

/// Reads the info then the data, writing as it comes; once the object is
/// verified and in place, what was written where (`None` for stdout).
async fn receive(
    stream: &mut Streaming<pb::GetObjectResponse>,
    remote: &Remote,
    name: &str,
    destination: &Destination,
) -> anyhow::Result<Option<Fetched>> {
    let first = match stream.message().await {
        Ok(Some(first)) => first,
        Ok(None) => return Err(remote.stream_ended(GET)),
        Err(status) => return Err(remote.stream_error(GET, &status)),
    };
    let Some(GetPart::Info(info)) = first.part else {
        return Err(hinted(
            format!("the broker sent {name}'s data before its size and digest"),
            "is the broker older or newer than this CLI?",
        ));
    };
    let expected = Expected {
        size: info.size,
        sha256: info.sha256.trim().to_ascii_lowercase(),
    };
    if expected.sha256.is_empty() {
        return Err(hinted(
            format!("the broker sent no SHA-256 for {name}: it cannot be checked, nothing written"),
            "check the broker's log",
        ));
    }
    let mut from = one_line(&first.from_cloud);
    eprintln!(
        "{name}: {} from {}",
        bytes(expected.size),
        if from.is_empty() {
            "an unnamed replica"
        } else {
            &from
        }
    );
    let mut sink = Sink::open(destination).await?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let message = match stream.message().await {
            Ok(Some(message)) => message,
            Ok(None) => break,
            Err(status) => return Err(remote.stream_error(GET, &status)),
        };
        let cloud = one_line(&message.from_cloud);
        if !cloud.is_empty() && cloud != from {
            eprintln!("{name}: continued from {cloud}");
            from = cloud;
        }
        match message.part {
            Some(GetPart::Data(data)) => {
                size += data.len() as u64;
                if size > expected.size {
                    break;
                }
                hasher.update(&data);
                sink.write(&data).await?;
            }
            Some(GetPart::Info(_)) => {
                return Err(hinted(
                    format!("the broker sent {name}'s info twice: nothing written"),
                    "check the broker's log",
                ));
            }
            None => {}
        }
    }
    let digest = format!("{:x}", hasher.finalize());
    if let Err(mismatch) = verify(&expected, size, &digest) {
        let consequence = match destination {
            Destination::Stdout => "what was written to stdout is not the object",
            Destination::File(_) => "nothing written",
        };
        return Err(hinted(
            format!("{name} from {from} is not intact: {mismatch}; {consequence}"),
            "try again; `intercloudctl object ls` shows its replicas",
        ));
    }
    sink.commit().await?;
    Ok(match destination {
        Destination::Stdout => None,
        Destination::File(path) => Some(Fetched {
            name: name.to_owned(),
            path: path.display().to_string(),
            size,
            sha256: digest,
            from_cloud: from,
        }),
    })
}

/// Standard output, or a temporary file beside the destination.
enum Sink {
    Stdout(tokio::io::Stdout),
    File(PartFile),
}

impl Sink {
    async fn open(destination: &Destination) -> anyhow::Result<Self> {
        Ok(match destination {
            Destination::Stdout => Self::Stdout(tokio::io::stdout()),
            Destination::File(path) => Self::File(PartFile::create(path).await?),
        })
    }

    async fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        match self {
            Self::Stdout(out) => out.write_all(data).await.context("cannot write to stdout"),
            Self::File(part) => part.write(data).await,
        }
    }

    /// Stdout flushed, or the file synced and renamed into place.
    async fn commit(self) -> anyhow::Result<()> {
        match self {
            Self::Stdout(mut out) => out.flush().await.context("cannot write to stdout"),
            Self::File(part) => part.persist().await,
        }
    }
}

/// `.<file>.part-<pid>` beside the destination, removed unless persisted.
struct PartFile {
    path: PathBuf,
    destination: PathBuf,
    file: tokio::io::BufWriter<tokio::fs::File>,
    persisted: bool,
}

impl PartFile {
    async fn create(destination: &Path) -> anyhow::Result<Self> {
        let path = part_path(destination)?;
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self {
            path,
            destination: destination.to_owned(),
            file: tokio::io::BufWriter::with_capacity(CHUNK, file),
            persisted: false,
        })
    }

    async fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.file
            .write_all(data)
            .await
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    async fn persist(mut self) -> anyhow::Result<()> {
        self.file
            .flush()
            .await
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.file
            .get_ref()
            .sync_all()
            .await
            .with_context(|| format!("cannot sync {}", self.path.display()))?;
        tokio::fs::rename(&self.path, &self.destination)
            .await
            .with_context(|| {
                format!(
                    "cannot rename {} to {}",
                    self.path.display(),
                    self.destination.display()
                )
            })?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The temporary file beside `destination`, in the same directory so that
/// the rename is atomic.
fn part_path(destination: &Path) -> anyhow::Result<PathBuf> {
    let file_name = destination.file_name().ok_or_else(|| {
        hinted(
            format!("{} names no file", destination.display()),
            "pass --out FILE",
        )
    })?;
    let mut part = std::ffi::OsString::from(".");
    part.push(file_name);
    part.push(format!(".part-{}", std::process::id()));
    Ok(destination.with_file_name(part))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::args::{Cli, Command, ObjectCommand};

    fn put_args(flags: &[&str]) -> ObjectPutArgs {
        let cli = Cli::try_parse_from(["intercloudctl", "object", "put"].iter().chain(flags))
            .expect("command line");
        let Command::Object {
            command: ObjectCommand::Put(args),
        } = cli.command
        else {
            panic!("not object put: {:?}", cli.command);
        };
        args
    }

    #[test]
    fn put_defaults_to_the_file_name_and_3_replicas() {
        let args = put_args(&["/tmp/report-2026.pdf"]);
        assert_eq!(placement(&args).expect("placement"), (3, Vec::new()));
        assert_eq!(args.region, None);
        assert_eq!(object_name(&args).expect("name"), "report-2026.pdf");
        let args = put_args(&["/tmp/x y.bin", "--name", "x_y.bin", "--replicas", "10"]);
        assert_eq!(object_name(&args).expect("name"), "x_y.bin");
        assert_eq!(placement(&args).expect("placement"), (10, Vec::new()));
        for bad in [
            &["f", "--replicas", "0"][..],
            &["f", "--replicas", "11"],
            &[],
            &["f", "--cloud", "cloud-b", "--region", "EU"],
        ] {
            assert!(
                Cli::try_parse_from(["intercloudctl", "object", "put"].iter().chain(bad)).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn named_clouds_set_the_number_of_replicas() {
        let args = put_args(&["f", "--cloud", "cloud-b", "--cloud", "cloud-c"]);
        assert_eq!(
            placement(&args).expect("placement"),
            (2, vec!["cloud-b".to_owned(), "cloud-c".to_owned()])
        );
        let args = put_args(&["f", "--cloud", "cloud-b", "--replicas", "1"]);
        assert_eq!(
            placement(&args).expect("placement"),
            (1, vec!["cloud-b".to_owned()])
        );
        let args = put_args(&["f", "--cloud", "cloud-b", "--replicas", "2"]);
        assert_eq!(
            line(&placement(&args).expect_err("disagree")),
            "error: --replicas 2, but 1 clouds named with --cloud — one replica per cloud named: drop --replicas, or name as many clouds"
        );
        let args = put_args(&["f", "--cloud", "cloud-b", "--cloud", "cloud-b"]);
        assert!(placement(&args).is_err());
        let args = put_args(&["f", "--cloud", "Cloud B"]);
        assert!(placement(&args).is_err());
    }

    #[test]
    fn names_are_checked_before_any_call() {
        assert_eq!(
            line(&object_name(&put_args(&["/tmp/x y.bin"])).expect_err("space")),
            "error: invalid object name \"x y.bin\": use 1 to 128 letters, digits, '.', '_' or '-' — pass --name NAME"
        );
        assert_eq!(
            line(&object_name(&put_args(&["f", "--name", "a/b"])).expect_err("slash")),
            "error: invalid object name \"a/b\": use 1 to 128 letters, digits, '.', '_' or '-' — see `intercloudctl object put --help`"
        );
        assert!(valid_name(&"a".repeat(128)));
        assert!(!valid_name(&"a".repeat(129)));
        assert!(!valid_name(""));
        assert!(!valid_name("é"));
        assert!(valid_name("A-z_0.9"));
        assert!(object_name(&put_args(&["/"])).is_err());
    }

    #[test]
    fn regions_are_checked_and_upper_cased() {
        assert_eq!(region("eu").expect("area"), "EU");
        assert_eq!(region("fr").expect("country"), "FR");
        let error = line(&region("Atlantis").expect_err("unknown"));
        assert!(
            error.starts_with("error: invalid --region \"Atlantis\": expected an ISO 3166-1 alpha-2 country code or an area code ("),
            "{error}"
        );
        assert!(
            error.ends_with(" — see `intercloudctl object put --help`"),
            "{error}"
        );
    }

    #[test]
    fn get_writes_to_out_or_name_or_stdout() {
        let dir = tempfile::tempdir().expect("dir");
        assert_eq!(
            destination("r.pdf", None).expect("default"),
            Destination::File(PathBuf::from("r.pdf"))
        );
        assert_eq!(
            destination("r.pdf", Some(Path::new("-"))).expect("stdout"),
            Destination::Stdout
        );
        assert_eq!(
            destination("r.pdf", Some(dir.path())).expect("dir"),
            Destination::File(dir.path().join("r.pdf"))
        );
        let file = dir.path().join("copy.pdf");
        assert_eq!(
            destination("r.pdf", Some(&file)).expect("file"),
            Destination::File(file)
        );
        for bad in ["..", ".", "a/b", ""] {
            assert!(destination(bad, None).is_err(), "{bad:?}");
        }
        let cli = Cli::try_parse_from(["intercloudctl", "object", "get", "r.pdf", "-O", "-"])
            .expect("parse");
        assert!(matches!(
            cli.command,
            Command::Object {
                command: ObjectCommand::Get(ObjectGetArgs { ref out, .. })
            } if out.as_deref() == Some(Path::new("-"))
        ));
    }

    #[test]
    fn what_arrived_must_have_the_size_then_the_digest() {
        let digest = format!("{:x}", Sha256::digest(b"hello"));
        assert_eq!(
            digest,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let expected = Expected {
            size: 5,
            sha256: digest.clone(),
        };
        assert_eq!(verify(&expected, 5, &digest), Ok(()));
        assert_eq!(verify(&expected, 5, &digest.to_uppercase()), Ok(()));
        let short = verify(&expected, 4, &digest).expect_err("size");
        assert_eq!(short.to_string(), "4 bytes arrived, the object has 5");
        let other = format!("{:x}", Sha256::digest(b"hellO"));
        let corrupt = verify(&expected, 5, &other).expect_err("digest");
        assert_eq!(
            corrupt.to_string(),
            format!("what arrived has sha256 {other}, the object {digest}")
        );
    }

    #[tokio::test]
    async fn a_part_file_is_renamed_when_persisted_and_removed_otherwise() {
        let dir = tempfile::tempdir().expect("dir");
        let target = dir.path().join("out.bin");
        assert_eq!(
            part_path(&target).expect("part"),
            dir.path()
                .join(format!(".out.bin.part-{}", std::process::id()))
        );
        let mut part = PartFile::create(&target).await.expect("create");
        part.write(b"abc").await.expect("write");
        let part_path = part.path.clone();
        assert!(part_path.exists());
        drop(part);
        assert!(!part_path.exists());
        assert!(!target.exists());
        let mut part = PartFile::create(&target).await.expect("create");
        part.write(b"abc").await.expect("write");
        part.persist().await.expect("persist");
        assert_eq!(std::fs::read(&target).expect("read"), b"abc");
        assert!(!part_path.exists());
    }

    #[tokio::test]
    async fn the_file_goes_in_1_mib_messages_and_stops_when_the_broker_does() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("f");
        let size = 2 * CHUNK + 10;
        std::fs::write(&path, vec![7u8; size]).expect("write");
        let (parts, mut queue) = mpsc::channel(QUEUED_CHUNKS);
        let file = tokio::fs::File::open(&path).await.expect("open");
        let sender = tokio::spawn(send_file(file, parts, None));
        let mut lengths = Vec::new();
        while let Some(message) = queue.recv().await {
            let Some(PutPart::Data(data)) = message.part else {
                panic!("not data");
            };
            lengths.push(data.len());
        }
        assert_eq!(lengths, [CHUNK, CHUNK, 10]);
        assert_eq!(
            sender.await.expect("join").expect("read"),
            Sent {
                bytes: size as u64,
                to_the_end: true
            }
        );
        // The broker hangs up after the first message.
        let (parts, mut queue) = mpsc::channel(1);
        let file = tokio::fs::File::open(&path).await.expect("open");
        let sender = tokio::spawn(send_file(file, parts, None));
        assert!(queue.recv().await.is_some());
        drop(queue);
        let sent = sender.await.expect("join").expect("read");
        assert!(!sent.to_the_end);
        assert!(sent.bytes < size as u64, "{sent:?}");
    }

    #[test]
    fn a_failed_put_gives_the_brokers_detail_and_the_local_cause() {
        assert_eq!(
            line(&put_failed(
                "r.pdf",
                "only 1 of 3 replicas:\nno capacity",
                None
            )),
            "error: put of r.pdf failed: only 1 of 3 replicas: no capacity — `intercloudctl object ls` shows what is stored"
        );
        assert_eq!(
            line(&put_failed(
                "r.pdf",
                "size mismatch",
                Some("cannot read f: Input/output error")
            )),
            "error: put of r.pdf failed: size mismatch: cannot read f: Input/output error — `intercloudctl object ls` shows what is stored"
        );
        assert_eq!(
            line(&put_failed("r.pdf", "", None)),
            "error: put of r.pdf failed — `intercloudctl object ls` shows what is stored"
        );
    }
}
