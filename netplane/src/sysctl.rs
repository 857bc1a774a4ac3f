//! Per-interface IPv4 switches: forwarding (`net.ipv4.conf.<link>.forwarding`)
//! and whether ARP is answered only for the link's own addresses
//! (`net.ipv4.conf.<link>.arp_ignore`).
//!
//! `/proc/sys/net` shows the network namespace of the thread that opens the
//! file, so a handle in a named namespace reads and writes it on a thread
//! of its own that has entered that namespace (the one the handle was made
//! in, through the nsfs file it keeps); no runtime thread switches
//! namespace.

use std::io;
use std::path::{Path, PathBuf};

use crate::netns;
use crate::types::check_ifname;
use crate::{Error, Netplane};

/// The sysctl file of `link`'s IPv4 switch `key`. `link` has been checked
/// to be one path component (`all` and `default` included).
fn conf_path(link: &str, key: &str) -> PathBuf {
    Path::new("/proc/sys/net/ipv4/conf").join(link).join(key)
}

fn read_flag(path: &Path) -> io::Result<bool> {
    let text = std::fs::read_to_string(path)?;
    match text.trim() {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected value {other:?} in {}", path.display()),
        )),
    }
}

fn write_flag(path: &Path, on: bool) -> io::Result<()> {
    std::fs::write(path, if on { "1\n" } else { "0\n" })
}

impl Netplane {
    /// `sysctl net.ipv4.conf.LINK.forwarding=0|1`: whether IPv4 packets
    /// that come in on `link` may be routed on (`all` sets every link and
    /// the global switch). The link must exist.
    pub async fn set_forwarding(&self, link: &str, on: bool) -> Result<(), Error> {
        let action = format!(
            "turning ipv4 forwarding {} on {link}",
            if on { "on" } else { "off" }
        );
        tracing::debug!(netns = ?self.namespace, "{action}");
        self.sysctl(action, link, "forwarding", move |path| write_flag(path, on))
            .await
    }

    /// `sysctl net.ipv4.conf.LINK.forwarding`.
    pub async fn forwarding(&self, link: &str) -> Result<bool, Error> {
        let action = format!("reading ipv4 forwarding of {link}");
        self.sysctl(action, link, "forwarding", read_flag).await
    }

    /// `sysctl net.ipv4.conf.LINK.arp_ignore=1|0`: with 1, ARP requests
    /// arriving on `link` are answered only for addresses configured on
    /// `link` itself (Linux answers for any local address by default, with
    /// the MAC of the link the request came in on).
    pub async fn set_arp_ignore(&self, link: &str, on: bool) -> Result<(), Error> {
        let action = format!("setting arp_ignore={} on {link}", u8::from(on));
        tracing::debug!(netns = ?self.namespace, "{action}");
        self.sysctl(action, link, "arp_ignore", move |path| write_flag(path, on))
            .await
    }

    /// `sysctl net.ipv4.conf.LINK.arp_ignore` is 1.
    pub async fn arp_ignore(&self, link: &str) -> Result<bool, Error> {
        let action = format!("reading arp_ignore of {link}");
        self.sysctl(action, link, "arp_ignore", |path| {
            Ok(std::fs::read_to_string(path)?.trim() == "1")
        })
        .await
    }

    /// Runs `op` on the sysctl file of `link` in this handle's namespace.
    async fn sysctl<T, F>(&self, action: String, link: &str, key: &str, op: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> io::Result<T> + Send + 'static,
    {
        check_ifname(link)?;
        let path = conf_path(link, key);
        let outcome = match (&self.namespace, &self.netns_file) {
            (Some(name), Some(file)) => {
                let (name, file, what) = (name.clone(), file.clone(), action.clone());
                netns::on_fresh_thread(&action, move || {
                    netns::enter(&what, &name, &file)?;
                    Ok(op(&path))
                })
                .await?
            }
            _ => tokio::task::spawn_blocking(move || op(&path))
                .await
                .unwrap_or_else(|e| {
                    Err(io::Error::other(format!("the blocking task failed: {e}")))
                }),
        };
        outcome.map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => Error::NoSuchLink {
                action,
                link: link.to_owned(),
                namespace: self.namespace.clone(),
            },
            _ => Error::Sysctl {
                action,
                namespace: self.namespace.clone(),
                source,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_the_links_forwarding_switch() {
        assert_eq!(
            conf_path("icb0001", "forwarding"),
            Path::new("/proc/sys/net/ipv4/conf/icb0001/forwarding")
        );
        assert!(check_ifname("../../ipv6").is_err());
        assert!(check_ifname("..").is_err());
    }

    #[test]
    fn flags_are_read_as_0_or_1() {
        let dir = std::env::temp_dir().join(format!("netplane-sysctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("forwarding");
        write_flag(&file, true).expect("write");
        assert!(read_flag(&file).expect("read"));
        write_flag(&file, false).expect("write");
        assert!(!read_flag(&file).expect("read"));
        std::fs::write(&file, "2\n").expect("write");
        assert!(read_flag(&file).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
