//! One run of the generator: check the options, build the PKI, put it on disk.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::{output, pki, readme};

/// Validated options of one run.
#[derive(Debug, Clone)]
pub struct Options {
    out: PathBuf,
    federation: String,
    clouds: Vec<String>,
    force: bool,
}

impl Options {
    /// Checks that `federation` is a SPIFFE trust domain and that `clouds` are
    /// distinct cloud ids usable in a SPIFFE path and in file names.
    pub fn new(out: PathBuf, federation: String, clouds: Vec<String>, force: bool) -> Result<Self> {
        check_trust_domain(&federation)?;
        if clouds.is_empty() {
            bail!("--clouds is empty: the bad fixtures impersonate the first cloud's operator");
        }
        let mut seen = HashSet::new();
        for cloud in &clouds {
            check_cloud_id(cloud)?;
            if !seen.insert(cloud) {
                bail!("--clouds lists {cloud:?} twice");
            }
        }
        Ok(Self {
            out,
            federation,
            clouds,
            force,
        })
    }
}

/// Writes the development PKI into `options.out` and returns the paths written.
///
/// Refuses to touch a directory that already holds a PKI (or anything else)
/// unless `force` is set. Either every file is written or none is.
pub fn generate(options: &Options) -> Result<Vec<PathBuf>> {
    if !options.force {
        refuse_to_overwrite(&options.out)?;
    }
    let files = pki::build(&options.federation, &options.clouds)?;
    let readme = readme::render(&options.federation, &options.clouds, &files);
    let mut contents: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|file| (file.path, file.contents))
        .collect();
    contents.push((PathBuf::from("README.md"), readme));
    output::replace_directory(&options.out, &contents)
}

fn refuse_to_overwrite(out: &Path) -> Result<()> {
    let ca_cert = out.join(pki::CA_CERT_FILE);
    if ca_cert.exists() {
        bail!(
            "{} already exists; pass --force to replace the whole PKI in {}",
            ca_cert.display(),
            out.display()
        );
    }
    // The directory is replaced as a whole, so anything else in it would be lost.
    if out.is_dir() && fs::read_dir(out)?.next().is_some() {
        bail!(
            "{} is not empty; pass --force to replace it and everything in it",
            out.display()
        );
    }
    Ok(())
}

fn check_trust_domain(federation: &str) -> Result<()> {
    let valid_chars = federation
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    if federation.is_empty() || federation.len() > 255 || !valid_chars {
        bail!(
            "--federation {federation:?} is not a SPIFFE trust domain \
             (1 to 255 of a-z, 0-9, '.', '-', '_')"
        );
    }
    if federation == pki::FOREIGN_TRUST_DOMAIN {
        bail!(
            "--federation {federation:?} is reserved: the wrong-san fixture uses it as the foreign trust domain"
        );
    }
    Ok(())
}

fn check_cloud_id(cloud: &str) -> Result<()> {
    let valid_chars = cloud
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if cloud.is_empty()
        || cloud.len() > 63
        || !valid_chars
        || cloud.starts_with('-')
        || cloud.ends_with('-')
    {
        bail!(
            "--clouds entry {cloud:?} is not a cloud id \
             (1 to 63 of a-z, 0-9, '-', not starting or ending with '-')"
        );
    }
    // `root.crt` and `operator-root.crt` belong to the root server.
    if cloud == "root" {
        bail!("--clouds entry \"root\" is reserved for the root server");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_clouds() -> Vec<String> {
        ["cloud-a", "cloud-b", "cloud-c"].map(String::from).to_vec()
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct ScratchDir(PathBuf);

    impl ScratchDir {
        fn new(label: &str) -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_nanos();
            let path = std::env::temp_dir().join(format!(
                "intercloud-certs-dev-{label}-{}-{nanos}",
                std::process::id()
            ));
            fs::create_dir_all(&path).expect("create scratch dir");
            Self(path)
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn options(out: &Path, force: bool) -> Options {
        Options::new(
            out.to_path_buf(),
            "intercloud.lab".into(),
            default_clouds(),
            force,
        )
        .expect("default options are valid")
    }

    #[test]
    fn writes_every_file_then_refuses_without_force() {
        let scratch = ScratchDir::new("generate");
        let out = scratch.0.join("pki");

        let written = generate(&options(&out, false)).expect("first run");
        let mut expected: Vec<String> = [
            "ca",
            "root",
            "operator-root",
            "cloud-a",
            "operator-cloud-a",
            "cloud-b",
            "operator-cloud-b",
            "cloud-c",
            "operator-cloud-c",
            "bad/expired",
            "bad/not-yet-valid",
            "bad/revoked",
            "bad/other-ca-ca",
            "bad/other-ca",
            "bad/wrong-san",
            "bad/wrong-key-usage",
        ]
        .iter()
        .flat_map(|stem| [format!("{stem}.crt"), format!("{stem}.key")])
        .chain(["crl.pem".to_owned(), "README.md".to_owned()])
        .collect();
        expected.sort();
        let mut relative: Vec<String> = written
            .iter()
            .map(|path| {
                assert!(
                    path.is_file(),
                    "{} was reported but not written",
                    path.display()
                );
                path.strip_prefix(&out)
                    .expect("written under --out")
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect();
        relative.sort();
        assert_eq!(relative, expected);

        let leftovers: Vec<_> = fs::read_dir(&scratch.0)
            .expect("list scratch dir")
            .map(|entry| entry.expect("dir entry").file_name())
            .collect();
        assert_eq!(
            leftovers,
            ["pki"],
            "staging directories must not be left behind"
        );

        let ca_before = fs::read_to_string(out.join("ca.crt")).expect("read ca.crt");
        let error = generate(&options(&out, false)).expect_err("second run without --force");
        assert!(error.to_string().contains("--force"), "{error}");
        assert_eq!(
            fs::read_to_string(out.join("ca.crt")).expect("read ca.crt again"),
            ca_before,
            "a refused run must not touch the PKI"
        );

        generate(&options(&out, true)).expect("run with --force");
        assert_ne!(
            fs::read_to_string(out.join("ca.crt")).expect("read replaced ca.crt"),
            ca_before,
            "--force must replace the PKI"
        );
    }

    #[test]
    fn refuses_a_non_empty_directory_without_a_pki() {
        let scratch = ScratchDir::new("non-empty");
        fs::write(scratch.0.join("notes.txt"), "keep me").expect("write notes");
        let error = generate(&options(&scratch.0, false)).expect_err("non-empty dir");
        assert!(error.to_string().contains("not empty"), "{error}");
        assert!(scratch.0.join("notes.txt").exists());
    }

    #[test]
    fn rejects_bad_options() {
        let out = PathBuf::from("unused");
        let cases: [(&str, &[&str], &str); 5] = [
            ("Intercloud.Lab", &["cloud-a"], "--federation"),
            ("other.example", &["cloud-a"], "reserved"),
            ("intercloud.lab", &[], "--clouds is empty"),
            ("intercloud.lab", &["cloud-a", "cloud-a"], "twice"),
            ("intercloud.lab", &["root"], "reserved for the root"),
        ];
        for (federation, clouds, message) in cases {
            let clouds = clouds.iter().map(|c| (*c).to_owned()).collect();
            let error = Options::new(out.clone(), federation.into(), clouds, false)
                .expect_err("invalid options must be refused");
            assert!(error.to_string().contains(message), "{error}");
        }
        let error = Options::new(out, "intercloud.lab".into(), vec!["Cloud/A".into()], false)
            .expect_err("cloud id with a slash");
        assert!(error.to_string().contains("\"Cloud/A\""), "{error}");
    }
}
