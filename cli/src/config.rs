//! The contexts file: named servers with the TLS material to reach them.
//!
//! The file is a contract with `scripts/lab` (it writes `.lab/intercloudctl.toml`):
//!
//! ```toml
//! current_context = "cloud-a"
//! [contexts.cloud-a]
//! endpoint = "127.0.0.1:7501"
//! server = "spiffe://intercloud.lab/cloud/cloud-a"
//! root_endpoint = "127.0.0.1:7443"      # optional
//! enroll_endpoint = "127.0.0.1:7444"    # optional
//! ca = "certs-dev/pki/ca.crt"
//! cert = "certs-dev/pki/operator-cloud-a.crt"
//! key = "certs-dev/pki/operator-cloud-a.key"
//! ```
//!
//! It is parsed and validated once, here: unknown keys, bad endpoints and
//! SPIFFE ids are refused with the key's full name and the bad value, and
//! relative paths are resolved against the file's own directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use intercloud_trust::identity::{CloudId, FederationDomain, Principal, SpiffeId};
use serde::Deserialize;

use crate::report::hinted;

/// Where the contexts file lives when neither `--config` nor
/// `INTERCLOUDCTL_CONFIG` says otherwise, relative to `$HOME`.
pub const DEFAULT_PATH_IN_HOME: &str = ".config/intercloud/intercloudctl.toml";

/// Top-level keys of the file.
const FILE_KEYS: &[&str] = &["current_context", "contexts"];
/// Keys of one `[contexts.NAME]` table.
const CONTEXT_KEYS: &[&str] = &[
    "endpoint",
    "server",
    "root_endpoint",
    "enroll_endpoint",
    "ca",
    "cert",
    "key",
];

/// The default contexts file, `$HOME/.config/intercloud/intercloudctl.toml`.
pub fn default_path() -> anyhow::Result<PathBuf> {
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => Ok(Path::new(&home).join(DEFAULT_PATH_IN_HOME)),
        _ => Err(hinted(
            "HOME is not set, so there is no default config file",
            "pass --config FILE or set INTERCLOUDCTL_CONFIG",
        )),
    }
}

/// What kind of server a context talks to, read from its `server` id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextKind {
    /// The Intercloud Root (`spiffe://<fed>/root`).
    Root,
    /// A cloud's broker (`spiffe://<fed>/cloud/<id>`).
    Broker(CloudId),
}

impl ContextKind {
    /// `root` or `broker`, as shown to operators.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Broker(_) => "broker",
        }
    }
}

/// One validated context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// Its name in the file.
    pub name: String,
    /// Root or broker.
    pub kind: ContextKind,
    /// `host:port` of the server this context talks to.
    pub endpoint: String,
    /// The identity that server must prove.
    pub server: SpiffeId,
    /// `host:port` of the root's mutual-TLS API, for a broker context.
    pub root_endpoint: Option<String>,
    /// `host:port` of the root's enrolment port.
    pub enroll_endpoint: Option<String>,
    /// The federation CA bundle.
    pub ca: PathBuf,
    /// The operator certificate (with `key`), for mutual TLS.
    pub cert: Option<PathBuf>,
    /// The operator key.
    pub key: Option<PathBuf>,
}

impl Context {
    /// The federation the context's server belongs to.
    pub fn federation(&self) -> &FederationDomain {
        &self.server.federation
    }

    /// The operator certificate and key, which every mutual-TLS call needs.
    pub fn operator_credentials(&self) -> anyhow::Result<(&Path, &Path)> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Ok((cert, key)),
            _ => Err(hinted(
                format!("context {:?} has no operator certificate", self.name),
                "add cert and key to it",
            )),
        }
    }
}

/// The whole contexts file.
#[derive(Debug, Clone)]
pub struct ContextsFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// The context used when `--context` is not given.
    pub current_context: Option<String>,
    /// Every context, by name.
    pub contexts: BTreeMap<String, Context>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    current_context: Option<String>,
    #[serde(default)]
    contexts: BTreeMap<String, RawContext>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContext {
    endpoint: String,
    server: String,
    root_endpoint: Option<String>,
    enroll_endpoint: Option<String>,
    ca: PathBuf,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

impl ContextsFile {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(hinted(
                    format!("no config file at {}", path.display()),
                    "run scripts/lab up or pass --config",
                ));
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Self::parse(path, &text).with_context(|| format!("invalid config {}", path.display()))
    }

    /// Parses the text of a file that lives at `path` (relative paths in it
    /// are resolved against `path`'s directory).
    pub fn parse(path: &Path, text: &str) -> anyhow::Result<Self> {
        let table: toml::Table = text.parse().map_err(|e| toml_error(text, &e))?;
        reject_unknown_keys(&table)?;
        let raw: RawFile = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        let base = path.parent().unwrap_or(Path::new(""));
        let contexts = raw
            .contexts
            .into_iter()
            .map(|(name, raw)| Ok((name.clone(), validate(name, raw, base)?)))
            .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
        Ok(Self {
            path: path.to_owned(),
            current_context: raw.current_context,
            contexts,
        })
    }

    /// The context named `--context`, or else the file's `current_context`.
    pub fn select(&self, name: Option<&str>) -> anyhow::Result<&Context> {
        self.select_optional(name)?.ok_or_else(|| {
            hinted(
                format!("no context selected in {}", self.path.display()),
                format!("pass --context NAME ({})", self.known()),
            )
        })
    }

    /// Like [`Self::select`], but `None` when nothing is selected at all.
    pub fn select_optional(&self, name: Option<&str>) -> anyhow::Result<Option<&Context>> {
        let Some(name) = name.or(self.current_context.as_deref()) else {
            return Ok(None);
        };
        match self.contexts.get(name) {
            Some(context) => Ok(Some(context)),
            None => Err(hinted(
                format!("unknown context {name:?} in {}", self.path.display()),
                self.known(),
            )),
        }
    }

    fn known(&self) -> String {
        if self.contexts.is_empty() {
            "the file defines no contexts".to_owned()
        } else {
            let names: Vec<&str> = self.contexts.keys().map(String::as_str).collect();
            format!("known contexts: {}", names.join(", "))
        }
    }
}

/// One line for a TOML error: its message and where it is.
fn toml_error(text: &str, error: &toml::de::Error) -> anyhow::Error {
    let message = error.message().trim().replace('\n', " ");
    match error.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(1, |before| before.matches('\n').count() + 1);
            let source = text.lines().nth(line - 1).unwrap_or_default().trim();
            anyhow!("line {line} ({source}): {message}")
        }
        None => anyhow!("{message}"),
    }
}

fn reject_unknown_keys(table: &toml::Table) -> anyhow::Result<()> {
    for key in table.keys() {
        if !FILE_KEYS.contains(&key.as_str()) {
            bail!("unknown key {key:?} (known keys: {})", FILE_KEYS.join(", "));
        }
    }
    if let Some(toml::Value::Table(contexts)) = table.get("contexts") {
        for (name, context) in contexts {
            let toml::Value::Table(context) = context else {
                continue;
            };
            for key in context.keys() {
                if !CONTEXT_KEYS.contains(&key.as_str()) {
                    bail!(
                        "unknown key \"contexts.{name}.{key}\" (known keys of a context: {})",
                        CONTEXT_KEYS.join(", ")
                    );
                }
            }
        }
    }
    Ok(())
}

fn validate(name: String, raw: RawContext, base: &Path) -> anyhow::Result<Context> {
    let key = |k: &str| format!("contexts.{name}.{k}");
    check_endpoint(&key("endpoint"), &raw.endpoint)?;
    for (k, value) in [
        ("root_endpoint", &raw.root_endpoint),
        ("enroll_endpoint", &raw.enroll_endpoint),
    ] {
        if let Some(value) = value {
            check_endpoint(&key(k), value)?;
        }
    }
    let server = SpiffeId::parse(&raw.server).map_err(|e| anyhow!("{}: {e}", key("server")))?;
    let kind = match &server.principal {
        Principal::Root => ContextKind::Root,
        Principal::Cloud(id) => ContextKind::Broker(id.clone()),
        Principal::Operator { .. } => bail!(
            "{}: {:?} names an operator; a server is spiffe://<federation>/root or spiffe://<federation>/cloud/<id>",
            key("server"),
            raw.server
        ),
    };
    let (cert, key_file) = match (raw.cert, raw.key) {
        (Some(cert), Some(k)) => (Some(base.join(cert)), Some(base.join(k))),
        (None, None) => (None, None),
        (Some(_), None) => bail!(
            "{}: missing (cert is set, and they go together)",
            key("key")
        ),
        (None, Some(_)) => bail!(
            "{}: missing (key is set, and they go together)",
            key("cert")
        ),
    };
    Ok(Context {
        name,
        kind,
        endpoint: raw.endpoint,
        server,
        root_endpoint: raw.root_endpoint,
        enroll_endpoint: raw.enroll_endpoint,
        ca: base.join(raw.ca),
        cert,
        key: key_file,
    })
}

/// Checks that `value` is `host:port`.
pub fn check_endpoint(key: &str, value: &str) -> anyhow::Result<()> {
    let ok = !value.contains("://")
        && value.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
        });
    if ok {
        Ok(())
    } else {
        bail!("{key}: {value:?} is not host:port")
    }
}

/// Reads the contexts file if there is one; `Ok(None)` only when it is
/// missing and nothing asked for a context explicitly.
pub fn load_if_present(
    path: &Path,
    explicit_context: bool,
) -> anyhow::Result<Option<ContextsFile>> {
    if !explicit_context && !path.exists() {
        return Ok(None);
    }
    ContextsFile::load(path).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report;

    const GOOD: &str = r#"
current_context = "cloud-a"
[contexts.cloud-a]
endpoint = "127.0.0.1:7501"
server = "spiffe://intercloud.lab/cloud/cloud-a"
root_endpoint = "127.0.0.1:7443"
ca = "certs-dev/pki/ca.crt"
cert = "certs-dev/pki/operator-cloud-a.crt"
key = "/abs/operator-cloud-a.key"
[contexts.root]
endpoint = "127.0.0.1:7443"
server = "spiffe://intercloud.lab/root"
enroll_endpoint = "127.0.0.1:7444"
ca = "certs-dev/pki/ca.crt"
cert = "certs-dev/pki/operator-root.crt"
key = "certs-dev/pki/operator-root.key"
"#;

    fn parse(text: &str) -> anyhow::Result<ContextsFile> {
        ContextsFile::parse(Path::new("/lab/.lab/intercloudctl.toml"), text)
    }

    fn line(error: &anyhow::Error) -> String {
        report::line(error)
    }

    #[test]
    fn parses_a_good_file_and_tells_root_from_broker() {
        let file = parse(GOOD).expect("good file");
        assert_eq!(file.current_context.as_deref(), Some("cloud-a"));
        let a = file.select(None).expect("current context");
        assert_eq!(a.name, "cloud-a");
        assert_eq!(
            a.kind,
            ContextKind::Broker(CloudId::new("cloud-a").expect("id"))
        );
        assert_eq!(a.endpoint, "127.0.0.1:7501");
        assert_eq!(a.root_endpoint.as_deref(), Some("127.0.0.1:7443"));
        assert_eq!(a.federation().as_str(), "intercloud.lab");
        let root = file.select(Some("root")).expect("root context");
        assert_eq!(root.kind, ContextKind::Root);
        assert_eq!(root.enroll_endpoint.as_deref(), Some("127.0.0.1:7444"));
        assert_eq!(root.root_endpoint, None);
    }

    #[test]
    fn relative_paths_follow_the_config_file_and_absolute_ones_stay() {
        let file = parse(GOOD).expect("good file");
        let a = &file.contexts["cloud-a"];
        assert_eq!(a.ca, Path::new("/lab/.lab/certs-dev/pki/ca.crt"));
        assert_eq!(
            a.cert.as_deref(),
            Some(Path::new("/lab/.lab/certs-dev/pki/operator-cloud-a.crt"))
        );
        assert_eq!(
            a.key.as_deref(),
            Some(Path::new("/abs/operator-cloud-a.key"))
        );
        let bare = ContextsFile::parse(Path::new("ctl.toml"), GOOD).expect("bare file name");
        assert_eq!(bare.contexts["root"].ca, Path::new("certs-dev/pki/ca.crt"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let text = GOOD.replace("root_endpoint = ", "root_endpiont = ");
        let error = line(&parse(&text).expect_err("typo"));
        assert!(
            error.contains("\"contexts.cloud-a.root_endpiont\""),
            "{error}"
        );
        let error = line(&parse(&format!("colour = \"red\"\n{GOOD}")).expect_err("top-level"));
        assert!(error.contains("unknown key \"colour\""), "{error}");
    }

    #[test]
    fn bad_values_name_the_key_and_the_value() {
        let text = GOOD.replace("\"127.0.0.1:7501\"", "\"localhost\"");
        let error = line(&parse(&text).expect_err("no port"));
        assert!(
            error.contains("contexts.cloud-a.endpoint: \"localhost\" is not host:port"),
            "{error}"
        );

        let text = GOOD.replace(
            "spiffe://intercloud.lab/root",
            "spiffe://intercloud.lab/operator/root/admin",
        );
        let error = line(&parse(&text).expect_err("operator as server"));
        assert!(error.contains("contexts.root.server"), "{error}");

        let text = GOOD.replace("key = \"/abs/operator-cloud-a.key\"", "");
        let error = line(&parse(&text).expect_err("cert without key"));
        assert!(error.contains("contexts.cloud-a.key: missing"), "{error}");

        let text = GOOD.replace("\"127.0.0.1:7501\"", "7501");
        let error = line(&parse(&text).expect_err("wrong type"));
        assert!(error.contains("line 4 (endpoint = 7501)"), "{error}");
        assert!(!error.contains('\n'));
    }

    #[test]
    fn unknown_context_lists_the_known_ones() {
        let file = parse(GOOD).expect("good file");
        let error = line(&file.select(Some("cloud-z")).expect_err("unknown"));
        assert_eq!(
            error,
            "error: unknown context \"cloud-z\" in /lab/.lab/intercloudctl.toml — known contexts: cloud-a, root"
        );
        let no_current = parse(&GOOD.replace("current_context = \"cloud-a\"", "")).expect("file");
        let error = line(&no_current.select(None).expect_err("none selected"));
        assert!(
            error.contains("no context selected") && error.contains("cloud-a, root"),
            "{error}"
        );
        assert!(
            no_current
                .select_optional(None)
                .expect("optional")
                .is_none()
        );
    }

    #[test]
    fn a_missing_file_says_how_to_get_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("none.toml");
        let error = line(&ContextsFile::load(&path).expect_err("missing"));
        assert_eq!(
            error,
            format!(
                "error: no config file at {} — run scripts/lab up or pass --config",
                path.display()
            )
        );
        assert!(load_if_present(&path, false).expect("optional").is_none());
        assert!(load_if_present(&path, true).is_err());
    }
}
