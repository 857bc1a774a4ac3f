//! Layered configuration: TOML file, then `PREFIX_KEY` / `PREFIX_SECTION__KEY`
//! environment variables, then command-line flags.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::de::DeserializeOwned;

/// A configuration that cannot be used; the daemon exits with status 64.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file does not exist or cannot be read.
    #[error("config file {}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// A key is unknown, missing, or its value has the wrong type.
    #[error("config: {0}")]
    Invalid(String),
    /// A value is well-typed but not acceptable.
    #[error("config key `{key}`: {reason}")]
    BadValue {
        /// Dotted path of the key, e.g. `listen.api`.
        key: String,
        /// What is wrong with the value.
        reason: String,
    },
}

impl ConfigError {
    /// A rejected value of `key`.
    pub fn bad_value(key: &str, reason: impl std::fmt::Display) -> Self {
        Self::BadValue {
            key: key.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// Reads `path`, overlays environment variables starting with `env_prefix`
/// (`__` separates nesting levels; `ignored_env` keys are skipped) and then
/// `flags` (a serializable struct whose `None` fields are skipped), and
/// deserializes the result. The target type should use
/// `#[serde(deny_unknown_fields)]` so that typos are refused.
pub fn load<T, F>(
    path: &Path,
    env_prefix: &str,
    ignored_env: &[&str],
    flags: &F,
) -> Result<T, ConfigError>
where
    T: DeserializeOwned,
    F: serde::Serialize,
{
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_owned(),
        reason: match e.kind() {
            std::io::ErrorKind::NotFound => "not found".to_owned(),
            _ => e.to_string(),
        },
    })?;
    Figment::new()
        .merge(Toml::string(&text))
        .merge(Env::prefixed(env_prefix).split("__").ignore(ignored_env))
        .merge(Serialized::defaults(flags))
        .extract()
        .map_err(|e| ConfigError::Invalid(describe(&e, path)))
}

/// One line per figment error, each naming the key and where it came from.
fn describe(error: &figment::Error, path: &Path) -> String {
    error
        .clone()
        .into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                String::new()
            } else {
                format!("key `{}`: ", e.path.join("."))
            };
            let source = match &e.metadata {
                Some(m) if m.name.contains("TOML") => format!(" (in {})", path.display()),
                Some(m) => format!(" (from {})", m.name),
                None => String::new(),
            };
            format!("{key}{}{source}", one_line(&e.kind.to_string()))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A parser's multi-line message (with its source excerpt and caret) as one
/// line: the headline and the reason, without the excerpt.
fn one_line(message: &str) -> String {
    let is_excerpt = |line: &str| {
        let before_bar = line.split('|').next().unwrap_or_default().trim();
        line.contains('|') && before_bar.chars().all(|c| c.is_ascii_digit())
    };
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_excerpt(l))
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        name: String,
        listen: Listen,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Listen {
        port: u16,
    }

    #[derive(serde::Serialize)]
    struct NoFlags {}

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = load::<Sample, _>(Path::new("/nonexistent/x.toml"), "T_", &[], &NoFlags {})
            .expect_err("missing");
        assert_eq!(
            err.to_string(),
            "config file /nonexistent/x.toml: not found"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let (_d, path) = write("name = \"a\"\nbogus = 1\n[listen]\nport = 1\n");
        let err = load::<Sample, _>(&path, "T_UNKNOWN_", &[], &NoFlags {}).expect_err("unknown");
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn bad_value_names_the_nested_key() {
        let (_d, path) = write("name = \"a\"\n[listen]\nport = \"eighty\"\n");
        let err = load::<Sample, _>(&path, "T_BAD_", &[], &NoFlags {}).expect_err("bad");
        assert!(err.to_string().contains("listen.port"), "{err}");
    }

    #[test]
    fn syntax_errors_fit_on_one_line() {
        let (_d, path) = write("name = \"a\"\nname = \"b\"\n[listen]\nport = 1\n");
        let err = load::<Sample, _>(&path, "T_SYNTAX_", &[], &NoFlags {}).expect_err("duplicate");
        let text = err.to_string();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains("line 2") && text.contains("duplicate key"),
            "{text}"
        );
    }

    #[test]
    fn flags_override_the_file() {
        #[derive(serde::Serialize)]
        struct Flags {
            name: Option<String>,
        }
        let (_d, path) = write("name = \"file\"\n[listen]\nport = 1\n");
        let s: Sample = load(
            &path,
            "T_FLAGS_",
            &[],
            &Flags {
                name: Some("flag".into()),
            },
        )
        .expect("load");
        assert_eq!(s.name, "flag");
        assert_eq!(s.listen.port, 1);
    }
}
