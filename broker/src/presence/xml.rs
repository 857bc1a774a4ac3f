//! Small strict helpers shared by the presence and negotiation payload codecs.

use minidom::rxml::NcName;
use minidom::{Element, Node};

/// An attribute name known at compile time.
pub(crate) fn name(constant: &'static str) -> NcName {
    // Only ever called with literal attribute names, which the tests exercise.
    NcName::try_from(constant).expect("attribute names are valid NCNames")
}

/// The first attribute of `element` that is namespaced or not in `allowed`.
pub(crate) fn unknown_attribute(element: &Element, allowed: &[&str]) -> Option<String> {
    element.attrs().iter().find_map(|((ns, attr), _)| {
        let attr: &str = attr.as_str();
        if ns.is_empty() && allowed.contains(&attr) {
            None
        } else if ns.is_empty() {
            Some(snippet(attr))
        } else {
            Some(snippet(&format!("{{{}}}{attr}", &**ns)))
        }
    })
}

/// Whether `element` carries non-whitespace text directly (not in children).
pub(crate) fn has_text(element: &Element) -> bool {
    element
        .nodes()
        .any(|node| matches!(node, Node::Text(t) if !t.trim().is_empty()))
}

/// A non-negative decimal integer: ASCII digits only (no sign, no spaces,
/// no fraction, no exponent). `None` if it is not one or does not fit.
pub(crate) fn parse_u64(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Whether `text` is made of ASCII digits only (so a parse failure means
/// "too large" rather than "not a number").
pub(crate) fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// A bounded, printable excerpt of peer-supplied text for error messages.
pub(crate) fn snippet(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut out: String = text
        .chars()
        .take(MAX_CHARS)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_plain_digits() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "+1", "-1", "1.5", " 1", "1e3", "0x10", "lots"] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
        assert_eq!(parse_u64("18446744073709551616"), None);
        assert!(is_digits("18446744073709551616"));
    }

    #[test]
    fn snippets_are_bounded_and_printable() {
        assert_eq!(snippet("a\nb"), "a\u{fffd}b");
        let long = "x".repeat(100);
        assert_eq!(snippet(&long).chars().count(), 65);
    }
}
