//! VXLAN network identifiers and their allocation.
//!
//! A VNI is 24 bits wide. 0 and 0xFFFFFF are kept out: 0 is what a zeroed or
//! missing field reads as, and all-ones is commonly reserved by VXLAN
//! implementations, so neither can name a real overlay by accident.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a VNI, a range of VNIs or an allocation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VniError {
    /// 0 and 0xFFFFFF are never used as VNIs.
    #[error("VNI {0} is reserved; valid VNIs are 1 to 16777214")]
    Reserved(u32),
    /// Wider than the 24 bits of the VXLAN header.
    #[error("VNI {0} does not fit in 24 bits; valid VNIs are 1 to 16777214")]
    TooLarge(u32),
    /// Not a decimal number.
    #[error("VNI {0:?} is not a decimal number")]
    NotANumber(String),
    /// A range written other than `<first>-<last>`.
    #[error("VNI range {0:?} is not of the form <first>-<last> (e.g. 1000-1999)")]
    BadRangeSyntax(String),
    /// A range whose first VNI is above its last.
    #[error("VNI range {first}-{last} is inverted: its first VNI is above its last")]
    RangeInverted {
        /// The refused first VNI.
        first: u32,
        /// The refused last VNI.
        last: u32,
    },
    /// No VNI of the range is free.
    #[error("every VNI of the range {range} is in use")]
    Exhausted {
        /// The range that is full.
        range: VniRange,
    },
    /// Releasing a VNI the allocator does not count as in use.
    #[error("VNI {0} cannot be released: it is not in use")]
    NotInUse(Vni),
}

/// A VXLAN network identifier, 1 to 0xFFFFFE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Vni(u32);

impl Vni {
    /// The lowest valid VNI.
    pub const MIN: Vni = Vni(1);
    /// The highest valid VNI.
    pub const MAX: Vni = Vni(0xFF_FFFE);

    /// Validates `value` as a VNI.
    pub const fn new(value: u32) -> Result<Self, VniError> {
        match value {
            0 | 0xFF_FFFF => Err(VniError::Reserved(value)),
            v if v > 0xFF_FFFF => Err(VniError::TooLarge(value)),
            v => Ok(Self(v)),
        }
    }

    /// The VNI as a number.
    pub const fn value(self) -> u32 {
        self.0
    }

    /// The VNI as six lowercase hexadecimal digits, as used in interface names.
    pub fn hex(self) -> String {
        format!("{:06x}", self.0)
    }

    fn next(self) -> Option<Vni> {
        Vni::new(self.0 + 1).ok()
    }
}

impl TryFrom<u32> for Vni {
    type Error = VniError;
    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Vni> for u32 {
    fn from(vni: Vni) -> Self {
        vni.0
    }
}

impl FromStr for Vni {
    type Err = VniError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value: u32 = s
            .parse()
            .map_err(|_| VniError::NotANumber(crate::name::snippet(s)))?;
        Self::new(value)
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An inclusive range of VNIs an allocator may hand out, such as the block
/// an operator sets aside for the federation. Written `<first>-<last>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawVniRange", into = "RawVniRange")]
pub struct VniRange {
    first: Vni,
    last: Vni,
}

/// The serialized form, checked on the way in.
#[derive(Serialize, Deserialize)]
struct RawVniRange {
    first: u32,
    last: u32,
}

impl VniRange {
    /// Every valid VNI.
    pub const FULL: VniRange = VniRange {
        first: Vni::MIN,
        last: Vni::MAX,
    };

    /// Validates both ends and their order.
    pub fn new(first: u32, last: u32) -> Result<Self, VniError> {
        let (first_vni, last_vni) = (Vni::new(first)?, Vni::new(last)?);
        if first > last {
            return Err(VniError::RangeInverted { first, last });
        }
        Ok(Self {
            first: first_vni,
            last: last_vni,
        })
    }

    /// The lowest VNI of the range.
    pub fn first(&self) -> Vni {
        self.first
    }

    /// The highest VNI of the range.
    pub fn last(&self) -> Vni {
        self.last
    }

    /// Whether `vni` lies within the range.
    pub fn contains(&self, vni: Vni) -> bool {
        (self.first..=self.last).contains(&vni)
    }

    /// How many VNIs the range holds.
    pub fn len(&self) -> u32 {
        self.last.0 - self.first.0 + 1
    }

    /// Always false: a range holds at least one VNI.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl TryFrom<RawVniRange> for VniRange {
    type Error = VniError;
    fn try_from(raw: RawVniRange) -> Result<Self, Self::Error> {
        Self::new(raw.first, raw.last)
    }
}

impl From<VniRange> for RawVniRange {
    fn from(range: VniRange) -> Self {
        Self {
            first: range.first.0,
            last: range.last.0,
        }
    }
}

impl FromStr for VniRange {
    type Err = VniError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || VniError::BadRangeSyntax(crate::name::snippet(s));
        let (first, last) = s.split_once('-').ok_or_else(bad)?;
        let first: u32 = first.parse().map_err(|_| bad())?;
        let last: u32 = last.parse().map_err(|_| bad())?;
        Self::new(first, last)
    }
}

impl fmt::Display for VniRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// Hands out VNIs from a range, never one that is in use.
///
/// It moves forward from the most recently allocated VNI and wraps around, so
/// a VNI that was just released is the last to be handed out again: packets
/// still in flight for a deleted VNet, or a peer that has not yet removed its
/// device, then do not leak into the VNet that would otherwise take it over.
///
/// The whole state is serializable so the driver can persist it; restore it
/// with serde, or start from [`VniAllocator::new`] with the VNIs in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VniAllocator {
    range: VniRange,
    in_use: BTreeSet<Vni>,
    last_allocated: Option<Vni>,
}

impl VniAllocator {
    /// An allocator over `range` that counts `in_use` as taken. VNIs in use
    /// outside the range are kept (they are still taken) but never handed out.
    pub fn new(range: VniRange, in_use: impl IntoIterator<Item = Vni>) -> Self {
        Self {
            range,
            in_use: in_use.into_iter().collect(),
            last_allocated: None,
        }
    }

    /// The lowest free VNI above the most recently allocated one, wrapping
    /// around to the start of the range.
    pub fn allocate(&mut self) -> Result<Vni, VniError> {
        let (first, last) = (self.range.first, self.range.last);
        // A last allocation outside the range (the range was changed) is
        // ignored: the search then starts at the beginning.
        let start = self
            .last_allocated
            .filter(|vni| self.range.contains(*vni))
            .and_then(Vni::next)
            .filter(|vni| *vni <= last)
            .unwrap_or(first);
        let found = self.first_free(start, last).or_else(|| {
            let wrapped_end = Vni::new(start.0 - 1).ok()?;
            if wrapped_end < first {
                return None;
            }
            self.first_free(first, wrapped_end)
        });
        let vni = found.ok_or(VniError::Exhausted { range: self.range })?;
        self.in_use.insert(vni);
        self.last_allocated = Some(vni);
        Ok(vni)
    }

    /// Gives `vni` back. Refused if it is not in use, which would mean the
    /// caller's records and the allocator disagree.
    pub fn release(&mut self, vni: Vni) -> Result<(), VniError> {
        if self.in_use.remove(&vni) {
            Ok(())
        } else {
            Err(VniError::NotInUse(vni))
        }
    }

    /// The VNIs in use.
    pub fn in_use(&self) -> &BTreeSet<Vni> {
        &self.in_use
    }

    /// Whether `vni` is in use.
    pub fn is_in_use(&self, vni: Vni) -> bool {
        self.in_use.contains(&vni)
    }

    /// The range VNIs are allocated from.
    pub fn range(&self) -> VniRange {
        self.range
    }

    /// The VNI most recently handed out, if any since the allocator was built.
    pub fn last_allocated(&self) -> Option<Vni> {
        self.last_allocated
    }

    /// The same allocator handing out VNIs from `range` instead: the VNIs in
    /// use stay taken (even outside the new range) and the search goes on
    /// after the most recent allocation when it lies in the new range, from
    /// the beginning of the range otherwise. For a driver whose configured
    /// range changed between restarts.
    pub fn with_range(self, range: VniRange) -> Self {
        Self { range, ..self }
    }

    /// The lowest VNI in `lo..=hi` that is not in use. Walks the VNIs in use
    /// (not the whole range), looking for the first gap.
    fn first_free(&self, lo: Vni, hi: Vni) -> Option<Vni> {
        let mut candidate = lo.0;
        for used in self.in_use.range(lo..=hi) {
            if used.0 > candidate {
                break;
            }
            candidate = used.0 + 1;
        }
        (candidate <= hi.0).then_some(Vni(candidate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vni(value: u32) -> Vni {
        Vni::new(value).expect("valid VNI")
    }

    fn range(first: u32, last: u32) -> VniRange {
        VniRange::new(first, last).expect("valid range")
    }

    #[test]
    fn vnis_are_1_to_0xfffffe() {
        assert_eq!(Vni::new(1), Ok(Vni::MIN));
        assert_eq!(Vni::new(0xFF_FFFE), Ok(Vni::MAX));
        assert_eq!(Vni::new(0), Err(VniError::Reserved(0)));
        assert_eq!(Vni::new(0xFF_FFFF), Err(VniError::Reserved(0xFF_FFFF)));
        assert_eq!(Vni::new(0x100_0000), Err(VniError::TooLarge(0x100_0000)));
        assert_eq!(
            Vni::new(0).expect_err("reserved").to_string(),
            "VNI 0 is reserved; valid VNIs are 1 to 16777214"
        );
        assert_eq!(
            Vni::new(20_000_000).expect_err("too large").to_string(),
            "VNI 20000000 does not fit in 24 bits; valid VNIs are 1 to 16777214"
        );
    }

    #[test]
    fn vnis_parse_display_and_serialize_as_numbers() {
        assert_eq!("4097".parse::<Vni>(), Ok(vni(4097)));
        assert_eq!(vni(4097).to_string(), "4097");
        assert_eq!(
            "x1".parse::<Vni>(),
            Err(VniError::NotANumber("x1".to_owned()))
        );
        assert_eq!(serde_json::to_string(&vni(7)).expect("serializes"), "7");
        assert!(serde_json::from_str::<Vni>("0").is_err());
        assert_eq!(vni(0xAB).hex(), "0000ab");
        assert_eq!(Vni::MAX.hex(), "fffffe");
    }

    #[test]
    fn ranges_check_both_ends_and_their_order() {
        assert_eq!(range(10, 10).len(), 1);
        assert_eq!(VniRange::FULL.len(), 0xFF_FFFE);
        assert_eq!(VniRange::new(0, 10), Err(VniError::Reserved(0)));
        assert_eq!(
            VniRange::new(5, 0x100_0000),
            Err(VniError::TooLarge(0x100_0000))
        );
        let error = VniRange::new(200, 100).expect_err("inverted");
        assert_eq!(
            error.to_string(),
            "VNI range 200-100 is inverted: its first VNI is above its last"
        );
    }

    #[test]
    fn ranges_parse_and_display_as_first_dash_last() {
        assert_eq!("1000-1999".parse::<VniRange>(), Ok(range(1000, 1999)));
        assert_eq!(range(1000, 1999).to_string(), "1000-1999");
        assert_eq!(
            "1000".parse::<VniRange>(),
            Err(VniError::BadRangeSyntax("1000".to_owned()))
        );
        assert!(matches!(
            "9-3".parse::<VniRange>(),
            Err(VniError::RangeInverted { first: 9, last: 3 })
        ));
        let back: VniRange = serde_json::from_str(r#"{"first":3,"last":5}"#).expect("deserializes");
        assert_eq!(back, range(3, 5));
        assert!(serde_json::from_str::<VniRange>(r#"{"first":5,"last":3}"#).is_err());
    }

    #[test]
    fn allocation_starts_at_the_lowest_free_vni() {
        let mut allocator = VniAllocator::new(range(10, 20), [vni(10), vni(11), vni(13)]);
        assert_eq!(allocator.allocate(), Ok(vni(12)));
        assert_eq!(allocator.allocate(), Ok(vni(14)));
        assert!(allocator.is_in_use(vni(12)) && allocator.is_in_use(vni(14)));
    }

    #[test]
    fn a_released_vni_is_not_reused_at_once() {
        let mut allocator = VniAllocator::new(range(1, 3), []);
        let first = allocator.allocate().expect("free");
        allocator.release(first).expect("in use");
        assert_eq!(allocator.allocate(), Ok(vni(2)));
        assert_eq!(allocator.allocate(), Ok(vni(3)));
        // Wraps around and only now comes back to the released one.
        assert_eq!(allocator.allocate(), Ok(first));
    }

    #[test]
    fn allocation_wraps_around_past_the_end_of_the_range() {
        let mut allocator = VniAllocator::new(range(5, 8), [vni(5)]);
        assert_eq!(allocator.allocate(), Ok(vni(6)));
        assert_eq!(allocator.allocate(), Ok(vni(7)));
        assert_eq!(allocator.allocate(), Ok(vni(8)));
        allocator.release(vni(6)).expect("in use");
        // Above 8 there is nothing: wrap to 5 (taken), then 6.
        assert_eq!(allocator.allocate(), Ok(vni(6)));
    }

    #[test]
    fn a_full_range_is_exhausted_and_says_which() {
        let mut allocator = VniAllocator::new(range(100, 102), []);
        for _ in 0..3 {
            allocator.allocate().expect("free");
        }
        let error = allocator.allocate().expect_err("full");
        assert_eq!(
            error,
            VniError::Exhausted {
                range: range(100, 102)
            }
        );
        assert_eq!(
            error.to_string(),
            "every VNI of the range 100-102 is in use"
        );
    }

    #[test]
    fn never_hands_out_a_vni_in_use() {
        let taken = [vni(2), vni(4), vni(5)];
        let mut allocator = VniAllocator::new(range(1, 6), taken);
        let handed: Vec<Vni> = (0..3)
            .map(|_| allocator.allocate().expect("free"))
            .collect();
        assert_eq!(handed, vec![vni(1), vni(3), vni(6)]);
        assert!(allocator.allocate().is_err());
    }

    #[test]
    fn vnis_in_use_outside_the_range_are_kept_but_never_handed_out() {
        let mut allocator = VniAllocator::new(range(1, 2), [vni(50)]);
        assert_eq!(allocator.allocate(), Ok(vni(1)));
        assert_eq!(allocator.allocate(), Ok(vni(2)));
        assert!(allocator.allocate().is_err());
        assert!(allocator.is_in_use(vni(50)));
        allocator.release(vni(50)).expect("still counted as in use");
    }

    #[test]
    fn releasing_a_vni_not_in_use_is_refused() {
        let mut allocator = VniAllocator::new(range(1, 9), [vni(3)]);
        let error = allocator.release(vni(4)).expect_err("not in use");
        assert_eq!(
            error.to_string(),
            "VNI 4 cannot be released: it is not in use"
        );
        allocator.release(vni(3)).expect("in use");
        assert!(allocator.in_use().is_empty());
    }

    #[test]
    fn the_state_survives_persistence_including_the_last_allocation() {
        let mut allocator = VniAllocator::new(range(1, 5), []);
        let one = allocator.allocate().expect("free");
        allocator.release(one).expect("in use");
        let text = serde_json::to_string(&allocator).expect("serializes");
        let mut restored: VniAllocator = serde_json::from_str(&text).expect("deserializes");
        assert_eq!(restored, allocator);
        assert_eq!(restored.last_allocated(), Some(one));
        // The restored allocator still avoids the just-released VNI.
        assert_eq!(restored.allocate(), Ok(vni(2)));
    }

    #[test]
    fn a_new_range_keeps_the_vnis_in_use_and_the_position() {
        let mut allocator = VniAllocator::new(range(1, 5), []);
        for _ in 0..3 {
            allocator.allocate().expect("free");
        }
        allocator.release(vni(2)).expect("in use");
        let mut wider = allocator.clone().with_range(range(1, 9));
        assert_eq!(wider.range(), range(1, 9));
        assert_eq!(wider.in_use(), allocator.in_use());
        // Goes on after 3, not back to the released 2.
        assert_eq!(wider.allocate(), Ok(vni(4)));
        let mut elsewhere = allocator.with_range(range(3, 4));
        // 3 is in use; the last allocation (3) lies in the range: 4 is next.
        assert_eq!(elsewhere.allocate(), Ok(vni(4)));
        assert!(elsewhere.allocate().is_err());
        assert!(
            elsewhere.is_in_use(vni(1)),
            "kept although outside the range"
        );
    }

    #[test]
    fn a_last_allocation_outside_a_changed_range_restarts_at_the_beginning() {
        let mut allocator = VniAllocator::new(range(1, 5), []);
        for _ in 0..5 {
            allocator.allocate().expect("free");
        }
        let text = serde_json::to_string(&allocator)
            .expect("serializes")
            .replace(
                r#""range":{"first":1,"last":5}"#,
                r#""range":{"first":10,"last":12}"#,
            );
        let mut restored: VniAllocator = serde_json::from_str(&text).expect("deserializes");
        assert_eq!(restored.range(), range(10, 12));
        assert_eq!(restored.allocate(), Ok(vni(10)));
    }
}
