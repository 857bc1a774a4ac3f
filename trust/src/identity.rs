//! Names in the federation: cloud ids, the federation domain, SPIFFE ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A cloud id must be an RFC 1123 DNS label.
    #[error(
        "cloud id {0:?} is not a DNS label (1-63 of a-z, 0-9, '-', not starting or ending with '-')"
    )]
    NotADnsLabel(String),
    /// `root` names the Intercloud Root and cannot be a cloud.
    #[error("cloud id {0:?} is reserved")]
    ReservedCloudId(String),
    /// A federation domain must be a DNS name made of DNS labels.
    #[error("federation domain {0:?} is not a DNS name of lower-case labels")]
    BadFederationDomain(String),
    /// Not a `spiffe://` URI of this shape.
    #[error(
        "{0:?} is not a federation SPIFFE id (spiffe://<federation>/root, /cloud/<id> or /operator/<cloud>/<name>)"
    )]
    BadSpiffeId(String),
}

/// Ids that would collide with the root's own names.
const RESERVED_CLOUD_IDS: &[&str] = &["root"];

fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// A cloud's id in the federation: a DNS label such as `cloud-a`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CloudId(String);

impl CloudId {
    /// Validates `s` as a cloud id.
    pub fn new(s: &str) -> Result<Self, IdentityError> {
        if !is_dns_label(s) {
            return Err(IdentityError::NotADnsLabel(s.to_owned()));
        }
        if RESERVED_CLOUD_IDS.contains(&s) {
            return Err(IdentityError::ReservedCloudId(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for CloudId {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for CloudId {
    type Error = IdentityError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<CloudId> for String {
    fn from(id: CloudId) -> Self {
        id.0
    }
}

impl fmt::Display for CloudId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The federation's DNS name, the SPIFFE trust domain (`intercloud.lab`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FederationDomain(String);

impl FederationDomain {
    /// Validates `s` as a DNS name of lower-case labels.
    pub fn new(s: &str) -> Result<Self, IdentityError> {
        if s.len() > 253 || s.split('.').any(|label| !is_dns_label(label)) {
            return Err(IdentityError::BadFederationDomain(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    /// The domain as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for FederationDomain {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for FederationDomain {
    type Error = IdentityError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<FederationDomain> for String {
    fn from(d: FederationDomain) -> Self {
        d.0
    }
}

impl fmt::Display for FederationDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whose operator a person is: the root's or one cloud's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OperatorScope {
    /// Operates the Intercloud Root (issues tokens, revokes clouds).
    Root,
    /// Operates one cloud's broker.
    Cloud(CloudId),
}

impl fmt::Display for OperatorScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root => f.write_str("root"),
            Self::Cloud(id) => id.fmt(f),
        }
    }
}

/// The role part of an identity, without the trust domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// The Intercloud Root.
    Root,
    /// A cloud's broker.
    Cloud(CloudId),
    /// A person operating the root or a cloud.
    Operator {
        /// Root or the cloud operated.
        scope: OperatorScope,
        /// The operator's name within that scope (a DNS label).
        name: String,
    },
}

/// A SPIFFE-style identity of the federation, read from a certificate's URI SAN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    /// The trust domain: the federation's DNS name.
    pub federation: FederationDomain,
    /// Who, within the federation.
    pub principal: Principal,
}

impl SpiffeId {
    /// `spiffe://<federation>/root`.
    pub fn root(federation: &FederationDomain) -> Self {
        Self {
            federation: federation.clone(),
            principal: Principal::Root,
        }
    }

    /// `spiffe://<federation>/cloud/<id>`.
    pub fn cloud(federation: &FederationDomain, id: &CloudId) -> Self {
        Self {
            federation: federation.clone(),
            principal: Principal::Cloud(id.clone()),
        }
    }

    /// `spiffe://<federation>/operator/<scope>/<name>`.
    pub fn operator(federation: &FederationDomain, scope: OperatorScope, name: &str) -> Self {
        Self {
            federation: federation.clone(),
            principal: Principal::Operator {
                scope,
                name: name.to_owned(),
            },
        }
    }

    /// Parses a `spiffe://` URI of one of the three shapes.
    pub fn parse(uri: &str) -> Result<Self, IdentityError> {
        let bad = || IdentityError::BadSpiffeId(uri.to_owned());
        let rest = uri.strip_prefix("spiffe://").ok_or_else(bad)?;
        let (domain, path) = rest.split_once('/').ok_or_else(bad)?;
        let federation = FederationDomain::new(domain).map_err(|_| bad())?;
        let segments: Vec<&str> = path.split('/').collect();
        let principal = match segments.as_slice() {
            ["root"] => Principal::Root,
            ["cloud", id] => Principal::Cloud(CloudId::new(id).map_err(|_| bad())?),
            ["operator", "root", name] if is_dns_label(name) => Principal::Operator {
                scope: OperatorScope::Root,
                name: (*name).to_owned(),
            },
            ["operator", cloud, name] if is_dns_label(name) => Principal::Operator {
                scope: OperatorScope::Cloud(CloudId::new(cloud).map_err(|_| bad())?),
                name: (*name).to_owned(),
            },
            _ => return Err(bad()),
        };
        Ok(Self {
            federation,
            principal,
        })
    }

    /// The cloud this identity is the broker of, if it is a broker.
    pub fn as_cloud(&self) -> Option<&CloudId> {
        match &self.principal {
            Principal::Cloud(id) => Some(id),
            _ => None,
        }
    }

    /// Whether this is an operator of the given scope.
    pub fn is_operator_of(&self, scope: &OperatorScope) -> bool {
        matches!(&self.principal, Principal::Operator { scope: s, .. } if s == scope)
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spiffe://{}/", self.federation)?;
        match &self.principal {
            Principal::Root => f.write_str("root"),
            Principal::Cloud(id) => write!(f, "cloud/{id}"),
            Principal::Operator { scope, name } => write!(f, "operator/{scope}/{name}"),
        }
    }
}

impl FromStr for SpiffeId {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_ids_are_dns_labels() {
        for good in ["cloud-a", "a", "c0", &"x".repeat(63)] {
            assert!(CloudId::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "Cloud-A",
            "a_b",
            "a.b",
            &"x".repeat(64),
            "clöud",
        ] {
            assert_eq!(
                CloudId::new(bad),
                Err(IdentityError::NotADnsLabel(bad.to_owned()))
            );
        }
        assert_eq!(
            CloudId::new("root"),
            Err(IdentityError::ReservedCloudId("root".into()))
        );
    }

    #[test]
    fn federation_domains_are_dns_names() {
        assert!(FederationDomain::new("intercloud.lab").is_ok());
        for bad in ["", "a..b", ".lab", "Intercloud.lab", "a b"] {
            assert!(FederationDomain::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spiffe_ids_round_trip() {
        for uri in [
            "spiffe://intercloud.lab/root",
            "spiffe://intercloud.lab/cloud/cloud-a",
            "spiffe://intercloud.lab/operator/cloud-a/admin",
            "spiffe://intercloud.lab/operator/root/admin",
        ] {
            assert_eq!(SpiffeId::parse(uri).expect(uri).to_string(), uri);
        }
    }

    #[test]
    fn spiffe_ids_refuse_other_shapes() {
        for bad in [
            "https://intercloud.lab/root",
            "spiffe://intercloud.lab",
            "spiffe://intercloud.lab/",
            "spiffe://intercloud.lab/cloud/",
            "spiffe://intercloud.lab/cloud/Cloud-A",
            "spiffe://intercloud.lab/cloud/root",
            "spiffe://intercloud.lab/cloud/a/b",
            "spiffe://intercloud.lab/operator/cloud-a",
            "spiffe://intercloud.lab/operator/cloud-a/Admin",
            "spiffe://INTERCLOUD/root",
        ] {
            assert!(SpiffeId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn operator_scope_and_cloud_accessors() {
        let fed = FederationDomain::new("intercloud.lab").expect("domain");
        let a = CloudId::new("cloud-a").expect("id");
        let op = SpiffeId::operator(&fed, OperatorScope::Cloud(a.clone()), "admin");
        assert!(op.is_operator_of(&OperatorScope::Cloud(a.clone())));
        assert!(!op.is_operator_of(&OperatorScope::Root));
        assert_eq!(op.as_cloud(), None);
        assert_eq!(SpiffeId::cloud(&fed, &a).as_cloud(), Some(&a));
    }
}
