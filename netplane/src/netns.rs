//! Named network namespaces, done the way `ip netns` does them: a namespace
//! is kept alive by a bind mount of its nsfs file on `/run/netns/<name>`.
//!
//! Whatever has to switch a thread's network namespace runs on a thread of
//! its own that ends right after ([`on_fresh_thread`]): a tokio worker or
//! blocking-pool thread is never switched, so no later task can run in a
//! namespace it did not ask for.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::types::check_nsname;
use crate::{Error, Removed};

/// Where named network namespaces live (as with `ip netns`).
pub const NETNS_DIR: &str = "/run/netns";

/// The path of a named namespace's file.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Runs `f` on a new OS thread that ends when `f` returns, and waits for it
/// without blocking the async runtime.
pub(crate) async fn on_fresh_thread<T, F>(what: &str, f: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    let (tx, rx) = futures::channel::oneshot::channel();
    std::thread::Builder::new()
        .name("netplane-netns".to_owned())
        .spawn(move || {
            // The receiver may be gone (the caller was cancelled): nothing to tell.
            let _ = tx.send(f());
        })
        .map_err(|e| Error::Namespace {
            action: format!("{what}: starting a thread"),
            source: e,
        })?;
    rx.await.unwrap_or_else(|_| {
        Err(Error::Namespace {
            action: what.to_owned(),
            source: io::Error::other("the namespace thread panicked"),
        })
    })
}

/// Opens a named namespace's file (for `setns` or to move a link into it).
pub(crate) fn open_netns(action: &str, name: &str) -> Result<File, Error> {
    check_nsname(name)?;
    File::open(netns_path(name)).map_err(|source| Error::Namespace {
        action: format!("{action}: opening {NETNS_DIR}/{name}"),
        source,
    })
}

/// Enters the namespace of `file` on the calling thread. Only ever called on
/// a thread made by [`on_fresh_thread`].
pub(crate) fn enter(action: &str, name: &str, file: &File) -> Result<(), Error> {
    nix::sched::setns(file, CloneFlags::CLONE_NEWNET).map_err(|e| Error::Namespace {
        action: format!("{action}: entering netns {name}"),
        source: e.into(),
    })
}

/// `ip netns add NAME`: a new network namespace, bound on `/run/netns/NAME`.
pub(crate) async fn create(name: &str) -> Result<(), Error> {
    check_nsname(name)?;
    let name = name.to_owned();
    let action = format!("creating netns {name}");
    tracing::debug!(netns = %name, "creating network namespace");
    on_fresh_thread(&action.clone(), move || create_blocking(&action, &name)).await
}

fn create_blocking(action: &str, name: &str) -> Result<(), Error> {
    let fail = |step: &str, source: io::Error| Error::Namespace {
        action: format!("{action}: {step}"),
        source,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(NETNS_DIR)
        .map_err(|e| fail("creating /run/netns", e))?;
    share_netns_dir().map_err(|e| fail("making /run/netns a shared mount", e))?;

    let path = netns_path(name);
    // The mount point: an empty file, made here so that a second creation
    // of the same name fails (EEXIST) before anything else is done.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(&path)
        .map_err(|e| Error::Namespace {
            action: action.to_owned(),
            source: e,
        })?;

    // This thread alone moves into a new namespace; the bind mount keeps the
    // namespace alive after the thread has ended.
    let bound = nix::sched::unshare(CloneFlags::CLONE_NEWNET)
        .map_err(|e| fail("unshare", e.into()))
        .and_then(|()| {
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                &path,
                Some("none"),
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| fail("binding the namespace file", e.into()))
        });
    if bound.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    bound
}

/// As `ip netns add` does: /run/netns becomes a shared mount (bound on
/// itself first if it is not a mount point yet), so that the namespace
/// mounts show in every mount namespace that shares it.
fn share_netns_dir() -> io::Result<()> {
    let share = || {
        nix::mount::mount(
            Some(""),
            NETNS_DIR,
            Some("none"),
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match share() {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL) => {
            nix::mount::mount(
                Some(NETNS_DIR),
                NETNS_DIR,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )?;
            Ok(share()?)
        }
        Err(e) => Err(e.into()),
    }
}

/// `ip netns del NAME`. The namespace itself goes when nothing holds it any
/// more: an open [`crate::Netplane`] handle inside it keeps it (and its
/// links) alive until the handle is dropped.
pub(crate) async fn delete(name: &str) -> Result<Removed, Error> {
    check_nsname(name)?;
    let name = name.to_owned();
    tracing::debug!(netns = %name, "deleting network namespace");
    let action = format!("deleting netns {name}");
    tokio::task::spawn_blocking(move || {
        let path = netns_path(&name);
        match nix::mount::umount2(&path, MntFlags::MNT_DETACH) {
            // EINVAL: not a mount point (a half-made namespace): remove the file all the same.
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(e) => {
                return Err(Error::Namespace {
                    action: action.clone(),
                    source: e.into(),
                });
            }
        }
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(Removed::Deleted),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Removed::WasAbsent),
            Err(source) => Err(Error::Namespace { action, source }),
        }
    })
    .await
    .map_err(|e| Error::Namespace {
        action: format!("deleting a netns: {e}"),
        source: io::Error::other("the blocking task failed"),
    })?
}

/// The names under `/run/netns`, sorted.
pub(crate) async fn list() -> Result<Vec<String>, Error> {
    tokio::task::spawn_blocking(|| {
        let dir = match std::fs::read_dir(NETNS_DIR) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Namespace {
                    action: "listing network namespaces".to_owned(),
                    source,
                });
            }
        };
        let mut names = Vec::new();
        for entry in dir {
            let entry = entry.map_err(|source| Error::Namespace {
                action: "listing network namespaces".to_owned(),
                source,
            })?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    })
    .await
    .map_err(|_| Error::Namespace {
        action: "listing network namespaces".to_owned(),
        source: io::Error::other("the blocking task failed"),
    })?
}
