//! How a detail overlay lays its lines out: shared by the overlay that draws it and the keys
//! that scroll it, so both agree on where the end is.

/// How a detail overlay lays its lines out on a screen of (width, height): the box's width,
/// the lines wrapped to the inside of it (indentation kept: entries hold pretty JSON), and how
/// many of those rows it shows at once under its title and above its footer, which keeps a
/// row of its own. The overlay draws this and the keys scroll over it, so both agree on where
/// the end is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailPage<'a> {
    /// Columns of the box, borders included.
    pub width: u16,
    /// The lines wrapped to the inside of the box.
    pub rows: Vec<&'a str>,
    /// Rows of them shown at once.
    pub body: usize,
}

impl<'a> DetailPage<'a> {
    /// The layout of `lines` on a screen of `screen` (width, height).
    pub fn new(lines: &'a [String], screen: (u16, u16)) -> Self {
        let width = screen.0.min(110);
        let inner = usize::from(width.saturating_sub(2)).max(1);
        let rows: Vec<&str> = lines
            .iter()
            .flat_map(|l| crate::tui::output::wrap(l, inner))
            .collect();
        // Borders and the footer take three rows.
        let body = rows.len().min(usize::from(screen.1).saturating_sub(3));
        DetailPage { width, rows, body }
    }

    /// The furthest the rows scroll: the last page shows the last row.
    pub fn max_scroll(&self) -> usize {
        self.rows.len().saturating_sub(self.body)
    }
}
