//! Showing transfers as they progress, for `transfers --watch`, `migrate`
//! and `object put`: one `indicatif` bar per active transfer when stdout is
//! a terminal, and one line per update when it is not (indicatif draws
//! nothing off a terminal, and logs and tests want lines to grep).
//!
//! [`Board`] decides, without I/O, which transfers are still active;
//! [`Progress`] draws or prints.

use std::collections::HashMap;
use std::io::IsTerminal as _;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use intercloud_proto::v1 as pb;

use super::watching::emit;
use crate::output::{Format, Transfer, transfer_line};

/// What an update tells about its transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Started or progressed, not over.
    Active,
    /// Just finished (committed, refused or failed).
    Finished,
    /// Finished before: a repeat, shown once already.
    AlreadyFinished,
}

/// Which transfers are active, from the updates seen (and the ones known
/// to be active before the first update, see [`Board::expect`]).
#[derive(Debug, Default)]
pub struct Board {
    /// Transfer id → whether it is over.
    finished: HashMap<String, bool>,
}

impl Board {
    /// Counts `transfer_id` as active until an update says it is over.
    pub fn expect(&mut self, transfer_id: &str) {
        self.finished.entry(transfer_id.to_owned()).or_insert(false);
    }

    /// Records an update. A transfer once over stays over.
    pub fn observe(&mut self, transfer: &pb::Transfer) -> Change {
        let over = self
            .finished
            .entry(transfer.transfer_id.clone())
            .or_insert(false);
        match (*over, transfer.finished) {
            (true, _) => Change::AlreadyFinished,
            (false, true) => {
                *over = true;
                Change::Finished
            }
            (false, false) => Change::Active,
        }
    }

    /// How many transfers are not over.
    pub fn active(&self) -> usize {
        self.finished.values().filter(|over| !**over).count()
    }
}

/// The bars on a terminal.
struct Bars {
    multi: MultiProgress,
    by_id: HashMap<String, ProgressBar>,
    style: ProgressStyle,
}

/// Draws bars on a terminal, or prints lines.
pub struct Progress {
    format: Format,
    board: Board,
    bars: Option<Bars>,
    /// Whether stdout is still read (false after `| head` went away).
    open: bool,
}

impl Progress {
    /// Bars when printing tables to a terminal, lines otherwise.
    pub fn new(format: Format) -> Self {
        let bars = (format == Format::Table && std::io::stdout().is_terminal()).then(|| {
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:24}] {bytes}/{total_bytes} {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
                by_id: HashMap::new(),
                style,
            }
        });
        Self {
            format,
            board: Board::default(),
            bars,
            open: true,
        }
    }

    /// Whether stdout is still read.
    pub fn open(&self) -> bool {
        self.open
    }

    /// See [`Board::expect`].
    pub fn expect(&mut self, transfer_id: &str) {
        self.board.expect(transfer_id);
    }

    /// How many transfers are not over.
    pub fn active(&self) -> usize {
        self.board.active()
    }

    /// Prints `text` (whole lines) on stdout, above the bars if any.
    pub fn print(&mut self, text: &str) -> anyhow::Result<()> {
        if !self.open || text.is_empty() {
            return Ok(());
        }
        self.open = match &self.bars {
            Some(bars) => bars.multi.suspend(|| emit(text))?,
            None => emit(text)?,
        };
        Ok(())
    }

    /// Shows one update of a transfer: its bar moves (or goes, leaving its
    /// final line), or one line is printed: [`Transfer::line`] (JSON with
    /// `--output json`), behind `[step]` when it is a step's transfer.
    pub fn update(&mut self, step: Option<&str>, transfer: &pb::Transfer) -> anyhow::Result<()> {
        let change = self.board.observe(transfer);
        if change == Change::AlreadyFinished {
            return Ok(());
        }
        let view = Transfer::from(transfer);
        let Some(bars) = &mut self.bars else {
            let line = match step {
                Some(step) if self.format == Format::Table => transfer_line(step, &view),
                _ => view.update(self.format)?,
            };
            return self.print(&line);
        };
        if change == Change::Finished {
            if let Some(bar) = bars.by_id.remove(&view.transfer_id) {
                bar.finish_and_clear();
                bars.multi.remove(&bar);
            }
            return self.print(&view.final_line());
        }
        let bar = bars
            .by_id
            .entry(view.transfer_id.clone())
            .or_insert_with(|| {
                bars.multi
                    .add(ProgressBar::new(view.size).with_style(bars.style.clone()))
            });
        bar.set_prefix(view.bar_label());
        bar.set_length(view.size);
        bar.set_position(view.bytes_done.min(view.size));
        bar.set_message(view.bar_message());
        Ok(())
    }

    /// A bar for bytes this CLI sends itself (`object put`'s upload), when
    /// drawing.
    pub fn upload_bar(&self, label: String, total: u64) -> Option<ProgressBar> {
        let bars = self.bars.as_ref()?;
        let bar = bars
            .multi
            .add(ProgressBar::new(total).with_style(bars.style.clone()));
        bar.set_prefix(label);
        bar.set_message("upload");
        Some(bar)
    }

    /// Takes the bars off the screen (before the last lines or an exit).
    pub fn clear(&mut self) {
        if let Some(bars) = &mut self.bars {
            for (_, bar) in bars.by_id.drain() {
                bar.finish_and_clear();
                bars.multi.remove(&bar);
            }
            let _ = bars.multi.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(id: &str, finished: bool) -> pb::Transfer {
        pb::Transfer {
            transfer_id: id.into(),
            finished,
            ..pb::Transfer::default()
        }
    }

    #[test]
    fn a_transfer_is_active_until_an_update_says_it_is_over() {
        let mut board = Board::default();
        assert_eq!(board.active(), 0);
        assert_eq!(board.observe(&update("a", false)), Change::Active);
        assert_eq!(board.observe(&update("a", false)), Change::Active);
        assert_eq!(board.observe(&update("b", false)), Change::Active);
        assert_eq!(board.active(), 2);
        assert_eq!(board.observe(&update("a", true)), Change::Finished);
        assert_eq!(board.active(), 1);
        assert_eq!(board.observe(&update("a", true)), Change::AlreadyFinished);
        // Over is over, whatever a late update says.
        assert_eq!(board.observe(&update("a", false)), Change::AlreadyFinished);
        assert_eq!(board.active(), 1);
        assert_eq!(board.observe(&update("b", true)), Change::Finished);
        assert_eq!(board.active(), 0);
        // Seen only finished: shown once.
        assert_eq!(board.observe(&update("c", true)), Change::Finished);
        assert_eq!(board.active(), 0);
    }

    #[test]
    fn expected_transfers_count_as_active_before_their_first_update() {
        let mut board = Board::default();
        board.expect("a");
        board.expect("a");
        assert_eq!(board.active(), 1);
        assert_eq!(board.observe(&update("a", false)), Change::Active);
        assert_eq!(board.observe(&update("a", true)), Change::Finished);
        board.expect("a");
        assert_eq!(board.active(), 0);
    }
}
