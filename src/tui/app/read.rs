//! What renderers (and the loop) read of the view state: one read-only accessor per field of
//! [`App`] they need. The fields stay private, so only `App`'s own update functions change
//! them.

use super::*;

impl App {
    /// Tasks in submission order.
    pub fn tasks(&self) -> &[TaskView] {
        &self.tasks
    }

    /// Ended tasks dropped past [`TASKS_KEEP`], oldest first.
    pub fn tasks_dropped(&self) -> u64 {
        self.tasks_dropped
    }

    /// Index of the selected task.
    pub fn selected(&self) -> Option<usize> {
        self.selected
    }

    /// Focused pane.
    pub fn focus(&self) -> Pane {
        self.focus
    }

    /// Typing in the prompt.
    pub fn editing(&self) -> bool {
        self.editing
    }

    /// The prompt text.
    pub fn input(&self) -> &InputLine {
        &self.input
    }

    /// Priority the next prompt is submitted at.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// Follow the newest task and the bottom of its output.
    pub fn follow(&self) -> bool {
        self.follow
    }

    /// The focused pane fills the body ([`App::zoomed`]).
    pub fn zoom(&self) -> bool {
        self.zoom
    }

    /// `:` commands run, oldest first (kept across runs in the state directory).
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Where ↑/↓ is in `history` while the command line is open.
    pub fn history_pos(&self) -> Option<usize> {
        self.history_pos
    }

    /// While the command line is open as a `/` filter: the list it filters.
    pub fn filtering(&self) -> Option<Pane> {
        self.filtering
    }

    /// The help overlay's page: 0 keys, 1 panes, glyphs and commands.
    pub fn help_page(&self) -> usize {
        self.help_page
    }

    /// Rows the help is scrolled by, where the screen is too short for it.
    pub fn help_scroll(&self) -> usize {
        self.help_scroll
    }

    /// Rows a detail overlay is scrolled by (the overlay shows at most its last page).
    pub fn detail_scroll(&self) -> usize {
        self.detail_scroll
    }

    /// The Audit pane's selection and window.
    pub fn audit_pick(&self) -> Pick {
        self.audit_pick
    }

    /// The Safety pane's selection and window.
    pub fn safety_pick(&self) -> Pick {
        self.safety_pick
    }

    /// The Log pane: its records, selection and level.
    pub fn log_view(&self) -> &LogView {
        &self.log_view
    }

    /// Output view anchor; `None` shows the bottom.
    pub fn output_anchor(&self) -> Option<Anchor> {
        self.output_anchor
    }

    /// Size of the Output pane's text area (set by the loop after layout).
    pub fn output_size(&self) -> (u16, u16) {
        self.output_size
    }

    /// Rows of the Tasks pane's list (set by the loop after layout).
    pub fn tasks_rows(&self) -> u16 {
        self.tasks_rows
    }

    /// Rows inside the focused pane (set with `tasks_rows`): a page of Log, Audit or Safety.
    pub fn pane_rows(&self) -> u16 {
        self.pane_rows
    }

    /// Columns inside the focused pane (set with `pane_rows`): where Safety wraps its rows.
    pub fn pane_width(&self) -> u16 {
        self.pane_width
    }

    /// The screen's size (set with the panes'): what a detail overlay has to show its lines.
    pub fn screen(&self) -> (u16, u16) {
        self.screen
    }

    /// Open modal.
    pub fn overlay(&self) -> Option<&Overlay> {
        self.overlay.as_ref()
    }

    /// Backend and link.
    pub fn link(&self) -> &LinkView {
        &self.link
    }

    /// Audit summary.
    pub fn audit(&self) -> &AuditView {
        &self.audit
    }

    /// Status message.
    pub fn flash_message(&self) -> Option<&Flash> {
        self.flash.as_ref()
    }

    /// Current time, set on every tick.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Key bindings.
    pub fn keymap(&self) -> &KeyMap {
        &self.keymap
    }

    /// Themes to cycle through with their names.
    pub fn themes(&self) -> &[ResolvedTheme] {
        &self.themes
    }

    /// Index of the current theme.
    pub fn theme(&self) -> usize {
        self.theme
    }

    /// Events missed because the console fell behind.
    pub fn missed_events(&self) -> u64 {
        self.missed_events
    }

    /// Safety violations, newest last.
    pub fn violations(&self) -> &std::collections::VecDeque<ViolationLine> {
        &self.violations
    }

    /// Total violations seen.
    pub fn violation_count(&self) -> u64 {
        self.violation_count
    }

    /// Confirmations waiting, oldest first.
    pub fn confirmations(&self) -> &std::collections::VecDeque<PendingConfirmation> {
        &self.confirmations
    }

    /// The confirmation modal, when it is open. Requests wait unanswered without it: a request
    /// arriving while the operator types only announces itself (status bar, Safety badge,
    /// bell), and the modal opens once the operator leaves the prompt.
    pub fn confirm(&self) -> Option<ConfirmModal> {
        self.confirm
    }

    /// Keys arriving this soon after the modal opens are ignored ([`CONFIRM_GUARD`]).
    pub fn confirm_guard(&self) -> std::time::Duration {
        self.confirm_guard
    }

    /// Ring the terminal bell after the next frame (a confirmation wants attention).
    pub fn bell(&self) -> bool {
        self.bell
    }

    /// The `:` command being typed, when the command line is open.
    pub fn command(&self) -> Option<&InputLine> {
        self.command.as_ref()
    }

    /// The Benchmarks pane's run and history.
    pub fn bench(&self) -> &BenchView {
        &self.bench
    }

    /// Where Output and Benchmarks share a place (narrow screens): true shows Benchmarks.
    pub fn bench_tab(&self) -> bool {
        self.bench_tab
    }

    /// The pane shown while the Prompt has focus on a small screen, where the panes are
    /// tabs: the last one focused.
    pub fn tab(&self) -> Pane {
        self.tab
    }

    /// The console takes mouse events (`tui.mouse`, `:mouse`).
    pub fn mouse(&self) -> bool {
        self.mouse
    }

    /// Where the runtime is, when not simply in this process alone: `attached pid N`, or
    /// `serving · N clients`.
    pub fn peer(&self) -> Option<&str> {
        self.peer.as_deref()
    }

    /// The runtime is another process's: quitting cancels none of its work, so `q` asks
    /// nothing.
    pub fn set_attached(&mut self, attached: bool) {
        self.attached = attached;
    }

    /// The console is over a fleet (see [`App::set_fleet`]).
    pub fn fleet(&self) -> bool {
        self.fleet
    }

    /// The fleet's workers now: the status bar counts them and their links (`fleet · 2
    /// workers (earth ×1, mars ×1)`), and shows the first one's link and backend in full
    /// (workers' names and links are their own words: sanitized).
    pub fn set_fleet(&mut self, workers: &[crate::service::protocol::FleetWorker]) {
        self.fleet = true;
        let line = |s: &str| crate::sanitize::sanitize_line(s).into_owned();
        let mut links: Vec<(String, usize)> = Vec::new();
        for worker in workers {
            let preset = line(&worker.link.preset);
            match links.iter_mut().find(|(p, _)| *p == preset) {
                Some((_, n)) => *n += 1,
                None => links.push((preset, 1)),
            }
        }
        let counted = links
            .iter()
            .map(|(p, n)| format!("{p} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.peer = Some(match workers.len() {
            0 => "fleet · no workers".to_string(),
            1 => format!("fleet · 1 worker ({counted})"),
            n => format!("fleet · {n} workers ({counted})"),
        });
        if let Some(first) = workers.first() {
            self.link.link = first.link.clone();
            self.link.backend = line(&first.backend);
            self.link.model = line(&first.model);
        }
    }

    /// Says where the runtime is (see [`App::peer`]).
    pub fn set_peer(&mut self, peer: Option<String>) {
        self.peer = peer;
    }

    /// True once the console should exit.
    pub fn quit(&self) -> bool {
        self.quit
    }
}
