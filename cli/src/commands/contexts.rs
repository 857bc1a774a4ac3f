//! `contexts`: what the config file defines.

use super::Globals;
use crate::output::ContextList;

/// Lists the contexts, marking the current one.
pub fn run(globals: &Globals) -> anyhow::Result<String> {
    let file = globals.contexts()?;
    globals.render(&ContextList::from(&file))
}
