//! Results made on this machine: the contexts list and a manual enrolment.

use serde::Serialize;
use time::OffsetDateTime;

use super::Render;
use super::clock::when;
use super::table::{Table, fields};
use crate::config::ContextsFile;

/// One context of the contexts file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextEntry {
    pub name: String,
    /// `root` or `broker`.
    pub kind: &'static str,
    pub endpoint: String,
    pub server: String,
    pub root_endpoint: Option<String>,
    pub enroll_endpoint: Option<String>,
    /// Whether it is the file's `current_context`.
    pub current: bool,
}

/// `intercloudctl contexts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextList {
    /// The file the contexts come from.
    pub config: String,
    pub current_context: Option<String>,
    pub contexts: Vec<ContextEntry>,
}

impl From<&ContextsFile> for ContextList {
    fn from(file: &ContextsFile) -> Self {
        let contexts = file
            .contexts
            .values()
            .map(|c| ContextEntry {
                name: c.name.clone(),
                kind: c.kind.word(),
                endpoint: c.endpoint.clone(),
                server: c.server.to_string(),
                root_endpoint: c.root_endpoint.clone(),
                enroll_endpoint: c.enroll_endpoint.clone(),
                current: file.current_context.as_deref() == Some(c.name.as_str()),
            })
            .collect();
        Self {
            config: file.path.display().to_string(),
            current_context: file.current_context.clone(),
            contexts,
        }
    }
}

impl Render for ContextList {
    fn table(&self, _now: OffsetDateTime) -> String {
        if self.contexts.is_empty() {
            return format!("no contexts in {}\n", self.config);
        }
        let mut table = Table::new(&["CURRENT", "NAME", "KIND", "ENDPOINT", "SERVER"]);
        for c in &self.contexts {
            table.row_verbatim(vec![
                if c.current { "*".into() } else { String::new() },
                c.name.clone(),
                c.kind.to_owned(),
                c.endpoint.clone(),
                c.server.clone(),
            ]);
        }
        table.render()
    }
}

/// `intercloudctl enroll`: the identity now on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enrolled {
    pub cloud_id: String,
    pub federation: String,
    pub spiffe_id: String,
    /// Lower-case hex of the certificate's serial number.
    pub serial: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_after: Option<OffsetDateTime>,
    /// SHA-256 of the certificate (DER), hex.
    pub fingerprint: String,
    pub out_dir: String,
    /// The private key, mode 0600.
    pub key: String,
    pub cert: String,
    pub bundle: String,
}

impl Render for Enrolled {
    fn table(&self, now: OffsetDateTime) -> String {
        let mut text = fields(&[
            ("SPIFFE ID", self.spiffe_id.clone()),
            ("Serial", self.serial.clone()),
            ("Expires", when(self.not_after, now)),
            ("Fingerprint", self.fingerprint.clone()),
            ("Key", self.key.clone()),
            ("Certificate", self.cert.clone()),
            ("Trust bundle", self.bundle.clone()),
        ]);
        text.push_str(&format!(
            "\nA broker whose data_dir/identity/ holds these three files starts as {}.\n",
            self.spiffe_id
        ));
        text
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn contexts_mark_the_current_one() {
        let text = r#"
current_context = "root"
[contexts.cloud-a]
endpoint = "127.0.0.1:7501"
server = "spiffe://intercloud.lab/cloud/cloud-a"
ca = "ca.crt"
[contexts.root]
endpoint = "127.0.0.1:7443"
server = "spiffe://intercloud.lab/root"
ca = "ca.crt"
"#;
        let file = ContextsFile::parse(Path::new("/x/ctl.toml"), text).expect("file");
        let list = ContextList::from(&file);
        let table = list.table(OffsetDateTime::UNIX_EPOCH);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "CURRENT   NAME      KIND     ENDPOINT         SERVER"
        );
        assert!(
            lines[1].starts_with("          cloud-a   broker   127.0.0.1:7501"),
            "{table}"
        );
        assert!(
            lines[2].starts_with("*         root      root     127.0.0.1:7443"),
            "{table}"
        );
        let json = serde_json::to_value(&list).expect("json");
        assert_eq!(json["current_context"], "root");
        assert_eq!(json["contexts"][1]["current"], true);
        assert_eq!(json["contexts"][0]["kind"], "broker");
    }
}
