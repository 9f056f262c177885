//! What the console's start and its loop tell the view besides keys and events: what an
//! earlier session left (the `:` history, the audit trail's head), the screen's size after
//! layout, a detail read in the background, and the few settings a start-up option or a
//! scripted key changes. Each is an update function of its own, so nothing outside [`App`]
//! writes its fields.

use super::*;

impl App {
    /// The `:` history an earlier session kept, oldest first.
    pub fn restore_history(&mut self, history: Vec<String>) {
        self.history = history;
        self.history_pos = None;
    }

    /// A durable audit trail's state from earlier sessions: its entries, head hash, whether
    /// its store signs checkpoints, and its newest checkpoint (size, time).
    pub fn restore_audit(
        &mut self,
        entries: u64,
        head: String,
        signs_checkpoints: bool,
        checkpoint: Option<(u64, DateTime<Utc>)>,
    ) {
        self.audit.entries = entries;
        self.audit.head = head;
        self.audit.signs_checkpoints = signs_checkpoints;
        self.audit.checkpoint = checkpoint;
    }

    /// Sizes the layout gave the panes: the Output pane's text area (width, height), the
    /// Tasks pane's list rows, the inside of the focused pane (width, height: a page of Log,
    /// Audit or Safety), and the whole screen (where overlays go).
    pub fn set_pane_sizes(
        &mut self,
        output: (u16, u16),
        tasks_rows: u16,
        pane: (u16, u16),
        screen: (u16, u16),
    ) {
        self.output_size = output;
        self.tasks_rows = tasks_rows;
        (self.pane_width, self.pane_rows) = pane;
        self.screen = screen;
    }

    /// Whether the terminal bell should ring after this frame; asking clears it.
    pub fn take_bell(&mut self) -> bool {
        std::mem::take(&mut self.bell)
    }

    /// Shows `lines` in full under `title` (a rule explained, an audit entry read off the
    /// loop), from its first line; the scroll keys move it and `Esc` closes it.
    pub fn show_detail(&mut self, title: String, lines: Vec<String>) {
        self.detail_scroll = 0;
        self.overlay = Some(Overlay::Detail { title, lines });
    }

    /// Closes whatever input is open (the prompt, the command line, a filter being typed) and
    /// any overlay, unused: a scripted key must leave the console browsing panes.
    pub fn close_inputs(&mut self) {
        self.command = None;
        self.filtering = None;
        self.editing = false;
        self.overlay = None;
        self.detail_scroll = 0;
    }

    /// Zooms the focused pane, or shows every pane again (`veyra bench --tui` starts zoomed).
    pub fn set_zoom(&mut self, zoom: bool) {
        self.zoom = zoom;
    }

    /// Whether the console takes mouse events (`tui.mouse`); the caller captures the mouse.
    pub fn set_mouse(&mut self, on: bool) {
        self.mouse = on;
    }

    /// Selects task `index` (0 is the oldest kept) and stops following the newest; the
    /// Output pane shows it from its bottom.
    pub fn select_task(&mut self, index: usize) {
        if index < self.tasks.len() {
            if self.selected != Some(index) {
                self.output_anchor = None;
            }
            self.selected = Some(index);
            self.follow = false;
        }
    }

    /// Replaces the key bindings (the configuration's overrides on top of the defaults).
    pub fn set_keymap(&mut self, keymap: KeyMap) {
        self.keymap = keymap;
    }

    /// Replaces the themes to cycle through, starting on the first.
    pub fn set_themes(&mut self, themes: Vec<ResolvedTheme>) {
        self.themes = themes;
        self.theme = 0;
    }

    /// Clears the status bar's message.
    pub fn clear_flash(&mut self) {
        self.flash = None;
    }
}
