//! How a failure reaches the operator: exactly one line on stderr,
//! `error: <what went wrong>: <cause chain>`, followed in the same line by
//! ` — <next step>` when there is a useful one.
//!
//! The next step travels inside the `anyhow::Error` as a [`Hint`] context
//! layer, so any code can attach one and [`line`] finds the outermost.

use std::fmt;

/// A next step for the operator, attached with [`HintExt::hint`] or [`hinted`].
///
/// Its `Display` is empty on purpose: the hint is not a cause and must not
/// appear in the cause chain; [`line`] prints it after the dash instead.
#[derive(Debug)]
pub struct Hint(pub String);

impl fmt::Display for Hint {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

/// An error with a message and a next step.
pub fn hinted(message: impl fmt::Display, hint: impl Into<String>) -> anyhow::Error {
    anyhow::anyhow!("{message}").context(Hint(hint.into()))
}

/// Attaches a [`Hint`] to the error of a `Result`.
pub trait HintExt<T> {
    /// Adds `hint` as the error's next step.
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> HintExt<T> for Result<T, E> {
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T> {
        self.map_err(|e| e.into().context(Hint(hint.into())))
    }
}

/// The one line printed for `error`: every cause once, then the hint.
pub fn line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if text.is_empty() || parts.iter().any(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    if parts.is_empty() {
        parts.push("unknown failure".to_owned());
    }
    let mut line = format!("error: {}", parts.join(": "));
    if let Some(Hint(hint)) = error.downcast_ref::<Hint>() {
        line.push_str(" — ");
        line.push_str(&hint.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    line
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;

    use super::*;

    #[test]
    fn causes_are_joined_once_and_the_hint_comes_last() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let error = Err::<(), _>(io)
            .context("cannot reach 127.0.0.1:7501")
            .hint("is the broker running? check `scripts/lab status`")
            .expect_err("error");
        assert_eq!(
            line(&error),
            "error: cannot reach 127.0.0.1:7501: Connection refused — is the broker running? check `scripts/lab status`"
        );
    }

    #[test]
    fn context_outside_a_hint_keeps_the_hint() {
        let error = Err::<(), _>(hinted("token expired", "ask for a new one"))
            .context("enrolment failed")
            .expect_err("error");
        assert_eq!(
            line(&error),
            "error: enrolment failed: token expired — ask for a new one"
        );
    }

    #[test]
    fn multi_line_causes_become_one_line() {
        let error = anyhow::anyhow!("first\nsecond  third");
        assert_eq!(line(&error), "error: first second third");
        assert!(!line(&error).contains('\n'));
    }

    #[test]
    fn repeated_causes_are_dropped() {
        let error = anyhow::anyhow!("cannot reach x: refused").context("cannot reach x: refused");
        assert_eq!(line(&error), "error: cannot reach x: refused");
    }
}
