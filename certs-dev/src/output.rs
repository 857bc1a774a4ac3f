//! Putting a whole directory in place at once.
//!
//! Files are written into a staging directory beside the target, then the
//! staging directory is renamed over it. A run that fails before the rename
//! leaves the target untouched; the old directory is only removed once the
//! new one is in place.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Replaces the directory `out` with one holding exactly `files`
/// (relative path, contents) and returns the final path of each file.
///
/// The caller checks whether replacing `out` is allowed.
pub fn replace_directory(out: &Path, files: &[(PathBuf, String)]) -> Result<Vec<PathBuf>> {
    let name = out
        .file_name()
        .with_context(|| format!("--out {} does not name a directory", out.display()))?
        .to_string_lossy()
        .into_owned();
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if out.exists() && !out.is_dir() {
        bail!("--out {} exists and is not a directory", out.display());
    }
    fs::create_dir_all(&parent)
        .with_context(|| format!("creating parent directory {}", parent.display()))?;

    let pid = std::process::id();
    let staging = StagingDir::create(parent.join(format!(".{name}.staging-{pid}")))?;
    for (relative, contents) in files {
        let path = staging.path.join(relative);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }

    let retired = parent.join(format!(".{name}.old-{pid}"));
    let had_previous = out.exists();
    if had_previous {
        fs::rename(out, &retired).with_context(|| {
            format!(
                "moving the old {} aside to {}",
                out.display(),
                retired.display()
            )
        })?;
    }
    if let Err(error) = fs::rename(&staging.path, out) {
        if had_previous {
            // Best effort: put the old directory back so the run changes nothing.
            let _ = fs::rename(&retired, out);
        }
        return Err(error).with_context(|| format!("moving new files into {}", out.display()));
    }
    staging.committed();
    if had_previous {
        fs::remove_dir_all(&retired)
            .with_context(|| format!("removing the old directory {}", retired.display()))?;
    }

    Ok(files
        .iter()
        .map(|(relative, _)| out.join(relative))
        .collect())
}

/// A staging directory that is deleted unless its contents were moved into place.
struct StagingDir {
    path: PathBuf,
    committed: bool,
}

impl StagingDir {
    fn create(path: PathBuf) -> Result<Self> {
        // Left over from a crashed run that had the same process id.
        if path.exists() {
            fs::remove_dir_all(&path)
                .with_context(|| format!("removing stale staging directory {}", path.display()))?;
        }
        fs::create_dir(&path)
            .with_context(|| format!("creating staging directory {}", path.display()))?;
        Ok(Self {
            path,
            committed: false,
        })
    }

    fn committed(mut self) {
        self.committed = true;
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}
