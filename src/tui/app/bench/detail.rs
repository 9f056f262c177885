//! What the Benchmarks pane's keys show of a run: `y` copies its figures as one paragraph,
//! `Enter` opens its misses in full.

use super::*;

impl App {
    /// `y` on the Benchmarks pane: the run's figures as one paragraph of text.
    pub(in crate::tui::app) fn bench_copy_text(&self) -> Option<String> {
        use crate::benchmarks::draw::fixed;
        let run = self.bench.run.as_ref()?;
        let summary = run.summary.as_ref()?;
        let v = summary.v_score.score;
        let interval = match (v.ci_low, v.ci_high) {
            (Some(lo), Some(hi)) => format!("95% CI {}–{}", fixed(lo, 3), fixed(hi, 3)),
            _ => "no interval (fewer than 2 tasks a family)".to_string(),
        };
        let (covered, planned) = run.coverage();
        let (done, total) = run.progress();
        let mut text = format!(
            "benchmark run {} ({} on {}/{}, {}, {done} of {total} items finished): V-Score {} \
             {interval}{}",
            run.id.as_deref().unwrap_or("not recorded"),
            run.label,
            run.backend,
            run.model,
            run.state.name(),
            fixed(v.mean, 3),
            if covered < planned {
                format!(" over the {covered} of {planned} families with a finished task")
            } else {
                String::new()
            }
        );
        for f in &summary.families {
            text.push_str(&format!(
                "\n{} n={} mean {}{}",
                f.family,
                f.n,
                fixed(f.score.mean, 3),
                match (f.score.ci_low, f.score.ci_high) {
                    (Some(lo), Some(hi)) => format!(" 95% CI {}–{}", fixed(lo, 3), fixed(hi, 3)),
                    _ => String::new(),
                }
            ));
        }
        Some(text)
    }

    /// Enter on the Benchmarks pane: the run's misses in full, newest first.
    pub(in crate::tui::app) fn bench_detail(&mut self) {
        let Some(run) = self.bench.run.as_ref() else {
            let hint = self.keymap.key_hint(Mode::Normal, Action::StartBench);
            self.flash(
                format!("no benchmark run in this session; {hint} starts one"),
                FlashLevel::Info,
            );
            return;
        };
        let mut lines = vec![
            format!(
                "run      {}",
                run.id.as_deref().unwrap_or("(not recorded yet)")
            ),
            format!("asked    {}", run.label),
            format!("by       {}", run.by),
            format!("on       {}/{}", run.backend, run.model),
            format!("state    {}", run.state.name()),
        ];
        if let BenchState::Failed(e) = &run.state {
            lines.push(format!("error    {e}"));
        }
        let (done, total) = run.progress();
        lines.push(format!(
            "items    {done}/{total} finished, {} below 1",
            run.miss_count
        ));
        if run.miss_count > run.misses.len() {
            lines.push(format!("(the newest {} are listed)", run.misses.len()));
        }
        lines.push(String::new());
        if run.misses.is_empty() {
            lines.push("nothing scored below 1".into());
        }
        for m in run.misses.iter().rev() {
            lines.push(format!(
                "{} {} e{} {}  {}",
                if m.failed { "✗" } else { "·" },
                m.task_id,
                m.epoch,
                crate::benchmarks::draw::fixed(m.score, 2),
                m.reason
            ));
        }
        if let Some(id) = &run.id {
            lines.push(String::new());
            lines.push(format!(
                "every task, output and reason: veyra bench show {id}"
            ));
        }
        self.overlay = Some(Overlay::Detail {
            title: "Benchmark misses".into(),
            lines,
        });
    }
}
