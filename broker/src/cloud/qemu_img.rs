//! A thin driver over the `qemu-img` binary: create, info, check.
//!
//! The calls block until `qemu-img` exits (a check reads all of an image's
//! metadata); async callers run them under `spawn_blocking`. Errors carry the
//! command line and what `qemu-img` printed on stderr.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::Deserialize;

use super::error::CloudError;

/// `qemu-img check` exit statuses (qemu-img(1)).
const CHECK_CORRUPTED: i32 = 2;
const CHECK_LEAKED: i32 = 3;
/// Keeps a flood of per-cluster complaints out of error messages.
const MAX_STDERR_CHARS: usize = 2000;

/// The `qemu-img` program to run.
#[derive(Clone, Debug)]
pub struct QemuImg {
    program: PathBuf,
}

impl Default for QemuImg {
    /// `qemu-img`, found on `PATH`.
    fn default() -> Self {
        QemuImg::at("qemu-img")
    }
}

/// What `qemu-img info` says of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// The format qemu-img detected ("qcow2", "raw", …).
    pub format: String,
    /// The size the guest sees, in bytes.
    pub virtual_size: u64,
    /// The bytes allocated on the host.
    pub actual_size: u64,
    /// The backing file the image reads through, if any.
    pub backing_file: Option<String>,
    /// The external data file of a qcow2 image, if any.
    pub data_file: Option<String>,
}

/// What `qemu-img check` found in a qcow2 image that it could check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// Corrupted metadata (exit status 2): the image is unsafe to use.
    pub corruptions: u64,
    /// Errors during the check itself.
    pub check_errors: u64,
    /// Leaked clusters (exit status 3): wasted space, harmless.
    pub leaks: u64,
}

impl CheckReport {
    /// Whether the image may be used (leaks only waste space).
    pub fn is_sound(&self) -> bool {
        self.corruptions == 0 && self.check_errors == 0
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct InfoJson {
    format: String,
    virtual_size: u64,
    #[serde(default)]
    actual_size: u64,
    backing_filename: Option<String>,
    format_specific: Option<FormatSpecificJson>,
}

#[derive(Deserialize)]
struct FormatSpecificJson {
    #[serde(default)]
    data: FormatDataJson,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct FormatDataJson {
    data_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct CheckJson {
    #[serde(default)]
    corruptions: u64,
    #[serde(default)]
    check_errors: u64,
    #[serde(default)]
    leaks: u64,
}

impl QemuImg {
    /// The `qemu-img` at `program` (a path, or a name looked up on `PATH`).
    pub fn at(program: impl Into<PathBuf>) -> Self {
        QemuImg {
            program: program.into(),
        }
    }

    /// Creates (or overwrites) a qcow2 image of `bytes` virtual bytes.
    pub fn create(&self, path: &Path, bytes: u64) -> Result<(), CloudError> {
        let (command, output) = self.run([
            OsStr::new("create"),
            OsStr::new("-q"),
            OsStr::new("-f"),
            OsStr::new("qcow2"),
            &path_argument(path),
            OsStr::new(&bytes.to_string()),
        ])?;
        if output.status.success() {
            Ok(())
        } else {
            Err(failed(command, &output, ""))
        }
    }

    /// The image's format, sizes and the other files it reads. The format is
    /// probed, not assumed: this is how a raw file is told from a qcow2 one.
    pub fn info(&self, path: &Path) -> Result<ImageInfo, CloudError> {
        let (command, output) = self.run([
            OsStr::new("info"),
            OsStr::new("--output=json"),
            &path_argument(path),
        ])?;
        if !output.status.success() {
            return Err(failed(command, &output, ""));
        }
        let info: InfoJson = decode(&command, &output)?;
        Ok(ImageInfo {
            format: info.format,
            virtual_size: info.virtual_size,
            actual_size: info.actual_size,
            backing_file: info.backing_filename,
            data_file: info.format_specific.and_then(|f| f.data.data_file),
        })
    }

    /// Checks the image as qcow2. Corruptions and leaks are reported, not
    /// errors (the caller decides); an image that cannot be checked at all —
    /// not qcow2, unreadable — is an error.
    pub fn check(&self, path: &Path) -> Result<CheckReport, CloudError> {
        let (command, output) = self.run([
            OsStr::new("check"),
            OsStr::new("--output=json"),
            OsStr::new("-f"),
            OsStr::new("qcow2"),
            &path_argument(path),
        ])?;
        match output.status.code() {
            Some(0 | CHECK_CORRUPTED | CHECK_LEAKED) => {
                let report: CheckJson = decode(&command, &output)?;
                Ok(CheckReport {
                    corruptions: report.corruptions,
                    check_errors: report.check_errors,
                    leaks: report.leaks,
                })
            }
            Some(1) => Err(failed(
                command,
                &output,
                ": the check could not be completed",
            )),
            _ => Err(failed(command, &output, "")),
        }
    }

    fn run<const N: usize>(&self, args: [&OsStr; N]) -> Result<(String, Output), CloudError> {
        let command = std::iter::once(self.program.as_os_str())
            .chain(args)
            .map(OsStr::to_string_lossy)
            .collect::<Vec<_>>()
            .join(" ");
        let output = Command::new(&self.program)
            .args(args)
            .stdin(Stdio::null())
            .env("LC_ALL", "C")
            .output()
            .map_err(|source| CloudError::QemuImgSpawn {
                command: command.clone(),
                source,
            })?;
        Ok((command, output))
    }
}

/// The path as qemu-img should see it: a relative path gets a `./` so that
/// neither a leading `-` (an option) nor a `:` before the first `/` (a
/// protocol such as `nbd:` or `json:`) changes its meaning.
fn path_argument(path: &Path) -> OsString {
    if path.is_absolute() {
        path.as_os_str().to_owned()
    } else {
        Path::new(".").join(path).into_os_string()
    }
}

fn failed(command: String, output: &Output, meaning: &str) -> CloudError {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr = stderr.trim();
    let mut shown: String = stderr.chars().take(MAX_STDERR_CHARS).collect();
    if shown.len() < stderr.len() {
        shown.push('…');
    }
    CloudError::QemuImgFailed {
        command,
        status: format!("{}{meaning}", output.status),
        stderr: shown,
    }
}

fn decode<T: for<'de> Deserialize<'de>>(command: &str, output: &Output) -> Result<T, CloudError> {
    serde_json::from_slice(&output.stdout).map_err(|e| CloudError::QemuImgOutput {
        command: command.to_owned(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn a_created_image_is_a_sound_qcow2_of_that_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.qcow2");
        let qemu_img = QemuImg::default();
        qemu_img.create(&path, 3 * MIB).expect("created");
        let info = qemu_img.info(&path).expect("info");
        assert_eq!(info.format, "qcow2");
        assert_eq!(info.virtual_size, 3 * MIB);
        assert!(info.actual_size > 0);
        assert_eq!((info.backing_file, info.data_file), (None, None));
        let report = qemu_img.check(&path).expect("checked");
        assert_eq!(
            report,
            CheckReport {
                corruptions: 0,
                check_errors: 0,
                leaks: 0
            }
        );
        assert!(report.is_sound());
    }

    #[test]
    fn relative_paths_cannot_pass_for_options_or_protocols() {
        assert_eq!(path_argument(Path::new("-x")), OsString::from("./-x"));
        assert_eq!(
            path_argument(Path::new("nbd:h:1")),
            OsString::from("./nbd:h:1")
        );
        assert_eq!(path_argument(Path::new("/a/b:c")), OsString::from("/a/b:c"));

        // An absolute path is never read as a protocol, colon or not.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("json:{}");
        QemuImg::default().create(&path, MIB).expect("created");
        let info = QemuImg::default()
            .info(&path)
            .expect("info of a file named json:{}");
        assert_eq!(info.format, "qcow2");
    }

    #[test]
    fn checking_what_is_not_qcow2_fails_with_qemu_img_s_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("raw.img");
        std::fs::write(&path, vec![0u8; 65536]).expect("written");
        let qemu_img = QemuImg::default();
        assert_eq!(qemu_img.info(&path).expect("info").format, "raw");
        match qemu_img.check(&path) {
            Err(CloudError::QemuImgFailed {
                command,
                status,
                stderr,
            }) => {
                assert_eq!(
                    command,
                    format!("qemu-img check --output=json -f qcow2 {}", path.display())
                );
                assert_eq!(status, "exit status: 1: the check could not be completed");
                assert!(stderr.contains("not in qcow2 format"), "{stderr}");
            }
            other => panic!("{other:?}"),
        }
        match qemu_img.info(&dir.path().join("absent.qcow2")) {
            Err(CloudError::QemuImgFailed { stderr, .. }) => {
                assert!(stderr.contains("No such file"), "{stderr}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_program_is_named() {
        let missing = QemuImg::at("/nonexistent/qemu-img");
        let error = missing
            .info(Path::new("/tmp/x.qcow2"))
            .expect_err("cannot run");
        assert!(matches!(error, CloudError::QemuImgSpawn { .. }));
        assert!(
            error.to_string().starts_with(
                "cannot run `/nonexistent/qemu-img info --output=json /tmp/x.qcow2`: "
            ),
            "{error}"
        );
    }
}
