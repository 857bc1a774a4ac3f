//! The broker's own identity on disk: `<data_dir>/identity/{cert,key,bundle}.pem`.
//!
//! A new identity is written to `identity.new/`, fsynced, and swapped in by
//! renaming directories, so a crash leaves either the old identity or the
//! new one, never a key paired with the wrong certificate.

use std::path::{Path, PathBuf};

use intercloud_trust::cert::CertInfo;
use intercloud_trust::files::write_atomically;
use intercloud_trust::tls::Credentials;

/// The broker's certificate, key and trust bundle.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Certificate chain and key.
    pub credentials: Credentials,
    /// What the certificate says.
    pub info: CertInfo,
    /// The federation CA bundle, PEM.
    pub bundle_pem: String,
}

/// An identity that could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading or writing failed.
    #[error("identity {}: {reason}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The files do not make a usable identity.
    #[error("identity in {}: {reason}", path.display())]
    Invalid {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl Identity {
    /// Builds an identity from PEM text.
    pub fn from_pem(
        cert_pem: &str,
        key_pem: &str,
        bundle_pem: &str,
        origin: &Path,
    ) -> Result<Self, IdentityError> {
        let invalid = |reason: String| IdentityError::Invalid {
            path: origin.to_owned(),
            reason,
        };
        let credentials =
            Credentials::from_pem(cert_pem, key_pem).map_err(|e| invalid(e.to_string()))?;
        let info = credentials
            .leaf_info()
            .ok_or_else(|| invalid("certificate has no federation SPIFFE id".into()))?;
        Ok(Self {
            credentials,
            info,
            bundle_pem: bundle_pem.to_owned(),
        })
    }
}

/// The identity directory.
#[derive(Debug, Clone)]
pub struct IdentityStore {
    dir: PathBuf,
}

impl IdentityStore {
    /// `<data_dir>/identity`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("identity"),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        self.dir.with_file_name(format!("identity.{suffix}"))
    }

    /// The saved identity, if any; recovers from a swap cut short.
    pub fn load(&self) -> Result<Option<Identity>, IdentityError> {
        let old = self.sibling("old");
        if !self.dir.exists() && old.exists() {
            std::fs::rename(&old, &self.dir).map_err(|e| IdentityError::Io {
                path: old.clone(),
                reason: e.to_string(),
            })?;
        }
        if !self.dir.join("cert.pem").exists() {
            return Ok(None);
        }
        let read = |name: &str| {
            let path = self.dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| IdentityError::Io {
                path,
                reason: e.to_string(),
            })
        };
        Identity::from_pem(
            &read("cert.pem")?,
            &read("key.pem")?,
            &read("bundle.pem")?,
            &self.dir,
        )
        .map(Some)
    }

    /// Replaces the saved identity.
    pub fn save(
        &self,
        cert_pem: &str,
        key_pem: &str,
        bundle_pem: &str,
    ) -> Result<(), IdentityError> {
        let io = |path: &Path, e: std::io::Error| IdentityError::Io {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let staging = self.sibling("new");
        let old = self.sibling("old");
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).map_err(|e| io(&staging, e))?;
        write_atomically(&staging.join("key.pem"), key_pem.as_bytes(), 0o600)
            .map_err(|e| io(&staging, e))?;
        write_atomically(&staging.join("cert.pem"), cert_pem.as_bytes(), 0o644)
            .map_err(|e| io(&staging, e))?;
        write_atomically(&staging.join("bundle.pem"), bundle_pem.as_bytes(), 0o644)
            .map_err(|e| io(&staging, e))?;
        let _ = std::fs::remove_dir_all(&old);
        if self.dir.exists() {
            std::fs::rename(&self.dir, &old).map_err(|e| io(&self.dir, e))?;
        }
        std::fs::rename(&staging, &self.dir).map_err(|e| io(&staging, e))?;
        if let Some(parent) = self.dir.parent() {
            std::fs::File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(|e| io(parent, e))?;
        }
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }
}
