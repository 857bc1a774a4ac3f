//! Mirror VNets: clones of a production VNet that receive (part of) its input.
//!
//! - [`strategy`]: what the mirror receives (`full`, `headers`, `stats`,
//!   `sample:<rate>`).
//! - [`plan`]: the mirror as a clone of its production: same network, same
//!   addresses and MACs, a VNI of its own.
//! - [`swap`]: flipping which of the two carries production traffic, and
//!   flipping back.

pub mod plan;
pub mod strategy;
pub mod swap;

pub use plan::{InstanceClone, MirrorPlan, mirror_attachments, mirror_record};
pub use strategy::MirrorStrategy;
pub use swap::{Swap, SwapStep};

use crate::name::VnetName;
use crate::vni::Vni;

/// Why a mirror strategy, plan or swap was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorError {
    /// Not one of the strategy names.
    #[error(
        "mirror strategy {0:?} is unknown; the strategies are full, headers, stats and sample:<rate>"
    )]
    UnknownStrategy(String),
    /// A sample rate that is not a fraction in (0, 1] of the form 1/N.
    #[error("sample rate {rate:?} is refused: {reason}")]
    BadSampleRate {
        /// The refused rate, as written after `sample:`.
        rate: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Mirrors are of production VNets only; chains would multiply traffic.
    #[error("vnet {vnet:?} is itself a mirror of {production:?}; a mirror cannot be mirrored")]
    MirrorOfMirror {
        /// The VNet asked to be mirrored.
        vnet: VnetName,
        /// The VNet it mirrors.
        production: VnetName,
    },
    /// A mirror needs a name of its own.
    #[error("mirror of vnet {vnet:?} cannot have the same name")]
    SameName {
        /// The production VNet.
        vnet: VnetName,
    },
    /// A mirror needs a VNI of its own.
    #[error("mirror of vnet {vnet:?} cannot share its VNI {vni}")]
    SameVniAsProduction {
        /// The production VNet.
        vnet: VnetName,
        /// The shared VNI.
        vni: Vni,
    },
    /// The attachments given are of another VNet than the production.
    #[error("attachments of vnet {found:?} were given for vnet {expected:?}")]
    AttachmentsOfAnotherVnet {
        /// The production VNet.
        expected: VnetName,
        /// The VNet the attachments belong to.
        found: VnetName,
    },
    /// A swap needs two different VNIs.
    #[error("production and mirror cannot both be VNI {0}")]
    SwapOfOneVni(Vni),
}
