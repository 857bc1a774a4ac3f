//! Flipping which VNI of a production/mirror pair carries production traffic.

use serde::{Deserialize, Serialize};

use super::{MirrorError, MirrorStrategy};
use crate::vni::Vni;

/// One step of a swap, for the driver to perform in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SwapStep {
    /// Stop copying the input of `from` to `to`.
    StopMirroring {
        /// The VNI whose input was copied.
        from: Vni,
        /// The VNI that received the copies.
        to: Vni,
    },
    /// Send the pair's ingress traffic to `to`: the one step that moves
    /// production traffic (a single map or route update in the driver).
    PointIngress {
        /// The VNI that now carries production traffic.
        to: Vni,
    },
    /// Start copying the input of `from` to `to`.
    StartMirroring {
        /// The VNI whose input is copied.
        from: Vni,
        /// The VNI that receives the copies.
        to: Vni,
        /// What is copied.
        strategy: MirrorStrategy,
    },
}

/// The roles of a production VNet's VNI and its mirror's.
///
/// [`Swap::swap`] makes the mirror production and the former production its
/// mirror; calling it again rolls back. Production traffic moves in one step
/// ([`SwapStep::PointIngress`]); mirroring is stopped before it, so the new
/// production never receives both real traffic and copies, and started in
/// the new direction after it, so the old production (now the mirror) keeps
/// seeing the input and can take over again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawSwap", into = "RawSwap")]
pub struct Swap {
    primary: Vni,
    secondary: Vni,
    strategy: MirrorStrategy,
    swapped: bool,
}

/// The serialized form, checked on the way in.
#[derive(Serialize, Deserialize)]
struct RawSwap {
    primary: Vni,
    secondary: Vni,
    strategy: MirrorStrategy,
    swapped: bool,
}

impl Swap {
    /// The roles as created: `production` carries traffic, `mirror` receives
    /// copies per `strategy`.
    pub fn new(
        production: Vni,
        mirror: Vni,
        strategy: MirrorStrategy,
    ) -> Result<Self, MirrorError> {
        if production == mirror {
            return Err(MirrorError::SwapOfOneVni(production));
        }
        Ok(Self {
            primary: production,
            secondary: mirror,
            strategy,
            swapped: false,
        })
    }

    /// The VNI carrying production traffic now.
    pub fn production(&self) -> Vni {
        if self.swapped {
            self.secondary
        } else {
            self.primary
        }
    }

    /// The VNI receiving copies now.
    pub fn mirror(&self) -> Vni {
        if self.swapped {
            self.primary
        } else {
            self.secondary
        }
    }

    /// What the mirror receives.
    pub fn strategy(&self) -> MirrorStrategy {
        self.strategy
    }

    /// Whether the roles are flipped from how they were created.
    pub fn is_swapped(&self) -> bool {
        self.swapped
    }

    /// The steps that set up the current roles from nothing (after a
    /// restart, or when the mirror is first created).
    pub fn establish(&self) -> Vec<SwapStep> {
        vec![
            SwapStep::PointIngress {
                to: self.production(),
            },
            SwapStep::StartMirroring {
                from: self.production(),
                to: self.mirror(),
                strategy: self.strategy,
            },
        ]
    }

    /// Flips the roles and returns the steps that carry the flip out.
    pub fn swap(&mut self) -> Vec<SwapStep> {
        let (old_production, new_production) = (self.production(), self.mirror());
        self.swapped = !self.swapped;
        vec![
            SwapStep::StopMirroring {
                from: old_production,
                to: new_production,
            },
            SwapStep::PointIngress { to: new_production },
            SwapStep::StartMirroring {
                from: new_production,
                to: old_production,
                strategy: self.strategy,
            },
        ]
    }
}

impl TryFrom<RawSwap> for Swap {
    type Error = MirrorError;
    fn try_from(raw: RawSwap) -> Result<Self, Self::Error> {
        let mut swap = Swap::new(raw.primary, raw.secondary, raw.strategy)?;
        swap.swapped = raw.swapped;
        Ok(swap)
    }
}

impl From<Swap> for RawSwap {
    fn from(swap: Swap) -> Self {
        Self {
            primary: swap.primary,
            secondary: swap.secondary,
            strategy: swap.strategy,
            swapped: swap.swapped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vni(value: u32) -> Vni {
        Vni::new(value).expect("valid")
    }

    fn pair() -> Swap {
        Swap::new(vni(100), vni(200), MirrorStrategy::Full).expect("two VNIs")
    }

    #[test]
    fn a_new_pair_has_the_production_in_front() {
        let pair = pair();
        assert_eq!((pair.production(), pair.mirror()), (vni(100), vni(200)));
        assert!(!pair.is_swapped());
        assert_eq!(
            pair.establish(),
            vec![
                SwapStep::PointIngress { to: vni(100) },
                SwapStep::StartMirroring {
                    from: vni(100),
                    to: vni(200),
                    strategy: MirrorStrategy::Full
                },
            ]
        );
    }

    #[test]
    fn swapping_stops_mirroring_moves_ingress_then_mirrors_back() {
        let mut pair = pair();
        let steps = pair.swap();
        assert_eq!(
            steps,
            vec![
                SwapStep::StopMirroring {
                    from: vni(100),
                    to: vni(200)
                },
                SwapStep::PointIngress { to: vni(200) },
                SwapStep::StartMirroring {
                    from: vni(200),
                    to: vni(100),
                    strategy: MirrorStrategy::Full
                },
            ]
        );
        assert_eq!((pair.production(), pair.mirror()), (vni(200), vni(100)));
        assert!(pair.is_swapped());
    }

    #[test]
    fn swapping_again_rolls_back() {
        let mut pair = pair();
        pair.swap();
        let steps = pair.swap();
        assert_eq!(steps[1], SwapStep::PointIngress { to: vni(100) });
        assert_eq!(pair, self::pair());
    }

    #[test]
    fn a_pair_of_one_vni_is_refused() {
        let error = Swap::new(vni(5), vni(5), MirrorStrategy::Stats).expect_err("one VNI");
        assert_eq!(
            error.to_string(),
            "production and mirror cannot both be VNI 5"
        );
    }

    #[test]
    fn the_roles_survive_persistence() {
        let mut pair = pair();
        pair.swap();
        let text = serde_json::to_string(&pair).expect("serializes");
        let restored: Swap = serde_json::from_str(&text).expect("deserializes");
        assert_eq!(restored, pair);
        assert_eq!(restored.production(), vni(200));
        let broken = text.replace(r#""secondary":200"#, r#""secondary":100"#);
        assert!(serde_json::from_str::<Swap>(&broken).is_err());
    }
}
