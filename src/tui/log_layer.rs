//! The tracing layer that feeds the `Log` pane: one compact line per event — the short
//! execution id, the message, then the other fields as `key=value` — handed to tui-logger
//! (its buffer, directly). tui-logger's own layer writes the
//! fields in name order with the message somewhere among them, so a line's point was often
//! past the pane's edge.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The layer (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub struct ConsoleLogLayer;

/// Fields in the order they were recorded.
#[derive(Debug, Default, Clone)]
struct Fields(Vec<(&'static str, String)>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name(), value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name(), format!("{value:?}")));
    }
}

/// The line for an event with these fields (span fields first, outermost first).
fn line(fields: &[(&'static str, String)]) -> String {
    let mut out = String::new();
    if let Some((_, id)) = fields.iter().rev().find(|(k, _)| *k == "execution_id") {
        out.push_str(id.get(..8).unwrap_or(id));
        out.push(' ');
    }
    if let Some((_, message)) = fields.iter().find(|(k, _)| *k == "message") {
        out.push_str(message);
    }
    for (k, v) in fields {
        if *k != "message" && *k != "execution_id" {
            let _ = write!(out, " {k}={v}");
        }
    }
    out
}

impl<S> Layer<S> for ConsoleLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<Fields>() {
                    fields.0.extend(f.0.iter().cloned());
                }
            }
        }
        event.record(&mut fields);
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => log::Level::Error,
            tracing::Level::WARN => log::Level::Warn,
            tracing::Level::INFO => log::Level::Info,
            tracing::Level::DEBUG => log::Level::Debug,
            tracing::Level::TRACE => log::Level::Trace,
        };
        let text = line(&fields.0);
        // Straight into tui-logger's buffer: the `log` facade may lead back into tracing
        // (a bridge installed by the subscriber), which would bring the event here again.
        tui_logger::Drain::new().log(
            &log::Record::builder()
                .args(format_args!("{text}"))
                .level(level)
                .target(event.metadata().target())
                .file(event.metadata().file())
                .line(event.metadata().line())
                .module_path(event.metadata().module_path())
                .build(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_leads_with_the_short_id_and_the_message_then_the_fields() {
        let fields = vec![
            (
                "execution_id",
                "75289885-828e-420e-a615-a5c4fa1e4d79".to_string(),
            ),
            ("attempt", "1".to_string()),
            ("latency_ms", "134".to_string()),
            ("message", "execution finished".to_string()),
            ("steps", "1".to_string()),
        ];
        assert_eq!(
            line(&fields),
            "75289885 execution finished attempt=1 latency_ms=134 steps=1"
        );
        assert_eq!(
            line(&[("message", "console started".into())]),
            "console started"
        );
        // An id too short to cut is shown whole; no message, just the fields.
        assert_eq!(
            line(&[("execution_id", "abc".into()), ("k", "v".into())]),
            "abc  k=v"
        );
    }
}
