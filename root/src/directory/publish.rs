//! Whether a publication replaces the stored descriptor: pure rules over
//! versions and digests.

use super::record::DescriptorInfo;

/// What publishing a descriptor does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishPlan {
    /// Nothing is stored for the cloud, or the version is newer: replace.
    Replace,
    /// The same version with the same triples is stored: nothing to do.
    Unchanged,
}

/// Why a publication is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishRefusal {
    /// The descriptor is older than the stored one.
    #[error(
        "ic:descriptorVersion {offered} is older than the published version {published}; publish version {published} or later"
    )]
    Stale {
        /// The version offered.
        offered: u64,
        /// The version stored.
        published: u64,
    },
    /// The same version with different triples.
    #[error(
        "version {version} is already published with different content; raise ic:descriptorVersion to publish a change"
    )]
    SameVersionChanged {
        /// The version both carry.
        version: u64,
    },
}

/// Decides what publishing `(version, digest)` over `current` does.
pub fn plan(
    current: Option<&DescriptorInfo>,
    version: u64,
    digest: &str,
) -> Result<PublishPlan, PublishRefusal> {
    let Some(current) = current else {
        return Ok(PublishPlan::Replace);
    };
    match version.cmp(&current.version) {
        std::cmp::Ordering::Greater => Ok(PublishPlan::Replace),
        std::cmp::Ordering::Less => Err(PublishRefusal::Stale {
            offered: version,
            published: current.version,
        }),
        std::cmp::Ordering::Equal if current.digest == digest => Ok(PublishPlan::Unchanged),
        std::cmp::Ordering::Equal => Err(PublishRefusal::SameVersionChanged { version }),
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn stored(version: u64, digest: &str) -> DescriptorInfo {
        DescriptorInfo {
            cloud_id: "cloud-a".into(),
            version,
            triples: 10,
            digest: digest.into(),
            published_at: OffsetDateTime::UNIX_EPOCH,
            published_by: String::new(),
        }
    }

    #[test]
    fn a_first_publication_replaces_nothing() {
        assert_eq!(plan(None, 0, "d"), Ok(PublishPlan::Replace));
    }

    #[test]
    fn a_newer_version_replaces() {
        assert_eq!(
            plan(Some(&stored(3, "d")), 4, "e"),
            Ok(PublishPlan::Replace)
        );
        assert_eq!(
            plan(Some(&stored(3, "d")), 4, "d"),
            Ok(PublishPlan::Replace)
        );
    }

    #[test]
    fn the_same_version_and_triples_change_nothing() {
        assert_eq!(
            plan(Some(&stored(3, "d")), 3, "d"),
            Ok(PublishPlan::Unchanged)
        );
    }

    #[test]
    fn the_same_version_with_other_triples_is_refused() {
        let refusal = plan(Some(&stored(3, "d")), 3, "e").expect_err("refused");
        assert_eq!(refusal, PublishRefusal::SameVersionChanged { version: 3 });
        assert!(refusal.to_string().contains("raise ic:descriptorVersion"));
    }

    #[test]
    fn an_older_version_is_refused() {
        let refusal = plan(Some(&stored(3, "d")), 2, "e").expect_err("refused");
        assert_eq!(
            refusal,
            PublishRefusal::Stale {
                offered: 2,
                published: 3
            }
        );
        assert!(
            refusal
                .to_string()
                .contains("older than the published version 3")
        );
    }
}
