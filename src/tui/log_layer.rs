//! The tracing layer that feeds the `Log` pane: each event becomes a [`LogRecord`] — time,
//! level, the short execution id, the message, and its other fields kept apart (the pane
//! shows one compact line per record and the fields on `Enter`). Records wait in a
//! [`LogSink`] until the console's loop takes them before its next frame; nothing else runs
//! for them (no thread, no timer).
//!
//! Log messages quote errors, which quote servers and arguments: every text is sanitized here,
//! once, before it can reach the screen.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// One log event, as the Log pane shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Its number in the console's log, from 1 (given when the console takes it; 0 before).
    pub seq: u64,
    /// When it was logged.
    pub at: DateTime<Utc>,
    /// Its level.
    pub level: Level,
    /// The execution it is about (`execution_id`, from the event or a span around it).
    pub execution_id: Option<String>,
    /// The message, sanitized (it may hold several lines).
    pub message: String,
    /// The other fields, span fields first (outermost first), in the order recorded; values
    /// sanitized.
    pub fields: Vec<(&'static str, String)>,
    /// The module that logged it.
    pub target: String,
}

impl LogRecord {
    /// The level as one letter (`E`, `W`, `I`, `D`, `T`).
    pub fn level_letter(&self) -> char {
        match self.level {
            Level::ERROR => 'E',
            Level::WARN => 'W',
            Level::INFO => 'I',
            Level::DEBUG => 'D',
            Level::TRACE => 'T',
        }
    }

    /// The execution id's first eight characters.
    pub fn short_id(&self) -> Option<&str> {
        self.execution_id
            .as_deref()
            .map(|id| id.get(..8).unwrap_or(id))
    }

    /// The compact line: `HH:MM:SS L 1a2b3c4d message` (the message's first line).
    pub fn compact(&self) -> String {
        let mut line = format!("{} {}", self.at.format("%H:%M:%S"), self.level_letter());
        if let Some(id) = self.short_id() {
            line.push(' ');
            line.push_str(id);
        }
        line.push(' ');
        let mut lines = self.message.lines();
        line.push_str(lines.next().unwrap_or_default());
        if lines.next().is_some() {
            // More on `Enter`.
            line.push_str(" …");
        }
        line
    }

    /// Everything, on one line: what a copy takes and what a `/` filter searches.
    pub fn full_text(&self) -> String {
        let mut text = format!(
            "{} {} {}",
            self.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            self.level,
            self.target
        );
        if let Some(id) = &self.execution_id {
            text.push_str(&format!(" execution_id={id}"));
        }
        text.push_str(&format!(": {}", self.message.replace('\n', " ")));
        for (k, v) in &self.fields {
            text.push_str(&format!(" {k}={v}"));
        }
        text
    }

    /// The detail view: the message, then every field on its own line.
    pub fn detail(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.message.lines().map(str::to_string).collect();
        lines.push(String::new());
        lines.push(format!(
            "time          {}",
            self.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ));
        lines.push(format!("level         {}", self.level));
        lines.push(format!("target        {}", self.target));
        if let Some(id) = &self.execution_id {
            lines.push(format!("execution_id  {id}"));
        }
        for (k, v) in &self.fields {
            lines.push(format!("{k:<13} {v}"));
        }
        lines
    }
}

/// Where records wait for the console's next frame: at most `capacity` of them (the oldest
/// go first when more arrive between two frames).
#[derive(Debug, Clone)]
pub struct LogSink {
    records: Arc<Mutex<VecDeque<LogRecord>>>,
    capacity: usize,
}

impl LogSink {
    /// An empty sink keeping at most `capacity` records.
    pub fn new(capacity: usize) -> Self {
        LogSink {
            records: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<LogRecord>> {
        // A panic while holding the lock leaves a queue of whole records: still usable.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, record: LogRecord) {
        let mut records = self.lock();
        if records.len() >= self.capacity {
            records.pop_front();
        }
        records.push_back(record);
    }

    /// Everything waiting, oldest first.
    pub fn take(&self) -> Vec<LogRecord> {
        self.lock().drain(..).collect()
    }
}

/// The layer (see the module docs).
#[derive(Debug, Clone)]
pub struct ConsoleLogLayer {
    sink: LogSink,
}

impl ConsoleLogLayer {
    /// A layer putting every event into `sink`.
    pub fn new(sink: LogSink) -> Self {
        ConsoleLogLayer { sink }
    }
}

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

/// The record for an event with these fields (span fields first, outermost first).
fn record(
    fields: Vec<(&'static str, String)>,
    level: Level,
    target: &str,
    at: DateTime<Utc>,
) -> LogRecord {
    let mut message = String::new();
    let mut execution_id = None;
    let mut rest = Vec::with_capacity(fields.len());
    for (k, v) in fields {
        match k {
            // The innermost (the event's own) wins.
            "execution_id" => execution_id = Some(crate::sanitize::sanitize_line(&v).into_owned()),
            "message" if message.is_empty() => {
                message = crate::sanitize::sanitize(&v).replace('\t', " ");
            }
            _ => rest.push((k, crate::sanitize::sanitize_line(&v).into_owned())),
        }
    }
    LogRecord {
        seq: 0,
        at,
        level,
        execution_id,
        message,
        fields: rest,
        target: crate::sanitize::sanitize_line(target).into_owned(),
    }
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
        let meta = event.metadata();
        self.sink
            .push(record(fields.0, *meta.level(), meta.target(), Utc::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_126_596, 0).unwrap_or_default()
    }

    #[test]
    fn a_record_keeps_the_id_and_message_apart_from_the_fields() {
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
        let r = record(fields, Level::INFO, "veyra::core", at());
        assert_eq!(r.compact(), "12:03:16 I 75289885 execution finished");
        assert_eq!(
            r.fields,
            [
                ("attempt", "1".to_string()),
                ("latency_ms", "134".to_string()),
                ("steps", "1".to_string())
            ]
        );
        assert!(r.detail().contains(&"latency_ms    134".to_string()));
        assert!(
            r.full_text()
                .ends_with("execution_id=75289885-828e-420e-a615-a5c4fa1e4d79: execution finished attempt=1 latency_ms=134 steps=1")
        );
        // No id: the time, the level, the message.
        let r = record(
            vec![("message", "console started".into())],
            Level::WARN,
            "t",
            at(),
        );
        assert_eq!(r.compact(), "12:03:16 W console started");
    }

    #[test]
    fn hostile_text_is_sanitized_before_it_is_kept() {
        let r = record(
            vec![
                ("message", "refused \u{1b}[2Jby server\u{7}".into()),
                ("error", "bad\u{1b}]52;c;aGk=\u{7} reply\nsecond".into()),
            ],
            Level::ERROR,
            "veyra::models",
            at(),
        );
        let all = format!("{} {}", r.full_text(), r.detail().join("\n"));
        assert!(!all.contains('\u{1b}'), "{all:?}");
        assert!(!all.contains('\u{7}'), "{all:?}");
        assert!(!r.fields[0].1.contains('\n'), "a field stays on its line");
    }

    #[test]
    fn the_layer_records_events_with_their_span_fields_and_the_sink_keeps_the_newest() {
        let sink = LogSink::new(2);
        let subscriber = tracing_subscriber::registry().with(ConsoleLogLayer::new(sink.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("execution", execution_id = "abcdef0123456789");
            let _in = span.enter();
            tracing::info!("one");
            tracing::warn!(attempt = 2, "two");
            tracing::error!("three");
        });
        let records = sink.take();
        assert_eq!(records.len(), 2, "the oldest went first");
        assert_eq!(records[0].message, "two");
        assert_eq!(records[0].short_id(), Some("abcdef01"));
        assert_eq!(records[0].fields, [("attempt", "2".to_string())]);
        assert_eq!(records[1].level, Level::ERROR);
        assert!(sink.take().is_empty(), "taken once");
    }
}
