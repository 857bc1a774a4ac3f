//! The crate's one error type.

use std::io;

/// What went wrong, naming the operation, the interface or namespace it was
/// about and, where the kernel answered, the kernel's own error.
///
/// `action` is the whole operation in words ("creating vxlan icx0000a1 (vni
/// 161) on 10.99.0.1"); `namespace` is the named network namespace the
/// handle lives in (`None`: the namespace the handle was connected in).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The kernel refused a netlink request (`errno` is the positive errno).
    #[error("{action}{}: {}", in_netns(namespace.as_deref()), errno_text(*errno))]
    Kernel {
        /// The operation, in words.
        action: String,
        /// The namespace of the handle that sent it.
        namespace: Option<String>,
        /// The kernel's errno (positive, e.g. 17 for EEXIST).
        errno: i32,
    },

    /// A link named by the caller does not exist.
    #[error("{action}{}: no link named {link}", in_netns(namespace.as_deref()))]
    NoSuchLink {
        /// The operation, in words.
        action: String,
        /// The missing link.
        link: String,
        /// The namespace that was searched.
        namespace: Option<String>,
    },

    /// A network namespace could not be created, opened, entered or removed.
    #[error("{action}: {source}")]
    Namespace {
        /// The operation, in words (it names the namespace).
        action: String,
        /// The system's error.
        #[source]
        source: io::Error,
    },

    /// The netlink socket could not be opened, or the connection to it was
    /// lost before the kernel answered.
    #[error("{action}{}: {detail}", in_netns(namespace.as_deref()))]
    Socket {
        /// The operation, in words.
        action: String,
        /// The namespace of the socket.
        namespace: Option<String>,
        /// What failed.
        detail: String,
    },

    /// The kernel's answer could not be understood.
    #[error("{action}{}: unexpected netlink answer: {detail}", in_netns(namespace.as_deref()))]
    Protocol {
        /// The operation, in words.
        action: String,
        /// The namespace of the handle.
        namespace: Option<String>,
        /// What was unexpected.
        detail: String,
    },

    /// A sysctl file (`/proc/sys/net/...`) could not be read or written.
    #[error("{action}{}: {source}", in_netns(namespace.as_deref()))]
    Sysctl {
        /// The operation, in words (it names the setting and the link).
        action: String,
        /// The namespace whose setting it is.
        namespace: Option<String>,
        /// The system's error.
        #[source]
        source: io::Error,
    },

    /// `nft` could not be run, refused a ruleset, or answered what could not
    /// be read.
    #[error("{action}{}: {detail}", in_netns(namespace.as_deref()))]
    Nft {
        /// The operation, in words (it names the nftables table).
        action: String,
        /// The namespace `nft` was run in.
        namespace: Option<String>,
        /// What failed, with what `nft` printed on stderr.
        detail: String,
    },

    /// An argument was rejected before anything was sent to the kernel.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidArgument {
        /// What kind of argument ("interface name", "namespace name", "vni").
        what: &'static str,
        /// The value given.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// Undoing what a failed operation had created left something behind;
    /// each failed undo step is listed.
    #[error("rolling back: {} undo step(s) failed: {}", failures.len(), join(failures))]
    Rollback {
        /// The undo steps that failed, in the order they were tried.
        failures: Vec<Error>,
    },
}

impl Error {
    /// The kernel's errno, when the kernel (or the system) refused.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { errno, .. } => Some(*errno),
            Error::Namespace { source, .. } | Error::Sysctl { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The thing to be created exists already (EEXIST).
    pub fn is_already_exists(&self) -> bool {
        self.errno() == Some(nix::errno::Errno::EEXIST as i32)
    }

    /// The thing named does not exist (no such link, no such namespace,
    /// ENODEV, ENOENT).
    pub fn is_not_found(&self) -> bool {
        use nix::errno::Errno;
        matches!(self, Error::NoSuchLink { .. })
            || matches!(self.errno(), Some(e) if e == Errno::ENODEV as i32 || e == Errno::ENOENT as i32)
    }

    pub(crate) fn from_netlink(
        action: String,
        namespace: Option<String>,
        err: rtnetlink::Error,
    ) -> Error {
        match err {
            rtnetlink::Error::NetlinkError(msg) => match msg.code {
                Some(code) => Error::Kernel {
                    action,
                    namespace,
                    errno: code.get().saturating_abs(),
                },
                None => Error::Protocol {
                    action,
                    namespace,
                    detail: "an acknowledgement where an answer was expected".to_owned(),
                },
            },
            rtnetlink::Error::RequestFailed => Error::Socket {
                action,
                namespace,
                detail: "the netlink connection is closed".to_owned(),
            },
            other => Error::Protocol {
                action,
                namespace,
                detail: other.to_string(),
            },
        }
    }
}

fn in_netns(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!(" in netns {ns}"),
        None => String::new(),
    }
}

/// "File exists" rather than "File exists (os error 17)".
fn errno_text(errno: i32) -> String {
    let e = nix::errno::Errno::from_raw(errno);
    if e == nix::errno::Errno::UnknownErrno {
        format!("errno {errno}")
    } else {
        e.desc().to_owned()
    }
}

fn join(failures: &[Error]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_error_names_operation_interface_and_kernel_text() {
        let e = Error::Kernel {
            action: "creating vxlan icx0000a1 (vni 161) on 10.99.0.1".to_owned(),
            namespace: None,
            errno: 17,
        };
        assert_eq!(
            e.to_string(),
            "creating vxlan icx0000a1 (vni 161) on 10.99.0.1: File exists"
        );
        assert!(e.is_already_exists());
        assert!(!e.is_not_found());
    }

    #[test]
    fn namespace_is_named_when_the_handle_lives_in_one() {
        let e = Error::NoSuchLink {
            action: "setting icv1 up".to_owned(),
            link: "icv1".to_owned(),
            namespace: Some("u1".to_owned()),
        };
        assert_eq!(
            e.to_string(),
            "setting icv1 up in netns u1: no link named icv1"
        );
        assert!(e.is_not_found());
    }

    #[test]
    fn nft_errors_name_the_table_the_namespace_and_nfts_reason() {
        let e = Error::Nft {
            action: "replacing nft table netdev intercloud_taps".to_owned(),
            namespace: Some("u1".to_owned()),
            detail: "nft failed (exit status: 1): Error: Interface does not exist".to_owned(),
        };
        assert_eq!(
            e.to_string(),
            "replacing nft table netdev intercloud_taps in netns u1: nft failed (exit status: \
             1): Error: Interface does not exist"
        );
    }

    #[test]
    fn unknown_errno_is_shown_as_a_number() {
        let e = Error::Kernel {
            action: "x".to_owned(),
            namespace: None,
            errno: 100_000,
        };
        assert_eq!(e.to_string(), "x: errno 100000");
    }

    #[test]
    fn rollback_lists_every_failed_step() {
        let e = Error::Rollback {
            failures: vec![
                Error::Kernel {
                    action: "deleting link a".to_owned(),
                    namespace: None,
                    errno: 1,
                },
                Error::Kernel {
                    action: "deleting link b".to_owned(),
                    namespace: None,
                    errno: 16,
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "rolling back: 2 undo step(s) failed: deleting link a: Operation not permitted; \
             deleting link b: Device or resource busy"
        );
    }
}
