//! Aligned plain-text layouts: column tables and label/value lists.

/// What an empty cell shows.
pub const EMPTY: &str = "-";

/// Columns separated by this many spaces.
const GAP: usize = 3;

/// A table with a header row; columns are left-aligned to their widest cell.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers and no rows.
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| one_line(h)).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; empty cells show [`EMPTY`].
    pub fn row(&mut self, cells: Vec<String>) {
        let cells = cells
            .into_iter()
            .map(|c| {
                if c.trim().is_empty() {
                    EMPTY.to_owned()
                } else {
                    one_line(&c)
                }
            })
            .collect();
        self.rows.push(cells);
    }

    /// Appends a row whose empty cells stay blank (e.g. a marker column).
    pub fn row_verbatim(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| one_line(c)).collect());
    }

    /// The table as text, one line per row, without trailing spaces.
    pub fn render(&self) -> String {
        let columns = self
            .headers
            .len()
            .max(self.rows.iter().map(Vec::len).max().unwrap_or(0));
        let mut widths = vec![0; columns];
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str(&" ".repeat(GAP));
                }
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[i].saturating_sub(cell.chars().count())));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `Label:  value` lines with the values aligned; empty values show [`EMPTY`].
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(label, _)| label.chars().count() + 1)
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (label, value) in pairs {
        let value = if value.trim().is_empty() {
            EMPTY.to_owned()
        } else {
            one_line(value)
        };
        let label = format!("{label}:");
        let pad = " ".repeat(width.saturating_sub(label.chars().count()) + 2);
        out.push_str(&format!("{label}{pad}{value}\n"));
    }
    out
}

/// Server-supplied text on one line, so it cannot break the layout.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_and_lines_have_no_trailing_space() {
        let mut table = Table::new(&["CLOUD", "STATE", "ENDPOINT"]);
        table.row(vec![
            "cloud-a".into(),
            "active".into(),
            "127.0.0.1:7501".into(),
        ]);
        table.row(vec!["b".into(), "revoked".into(), String::new()]);
        assert_eq!(
            table.render(),
            "CLOUD     STATE     ENDPOINT\n\
             cloud-a   active    127.0.0.1:7501\n\
             b         revoked   -\n"
        );
    }

    #[test]
    fn fields_align_values() {
        let text = fields(&[("Cloud", "cloud-a".into()), ("Last error", String::new())]);
        assert_eq!(text, "Cloud:       cloud-a\nLast error:  -\n");
    }

    #[test]
    fn cells_with_newlines_stay_on_one_line() {
        let mut table = Table::new(&["A"]);
        table.row(vec!["x\ny".into()]);
        assert_eq!(table.render(), "A\nx y\n");
    }
}
