//! Server-sent events, decoded in one pass: [`SseDecoder`] takes a response's reads as they
//! come and hands out whole events (HTML Living Standard, "Interpreting an event stream").
//!
//! Every byte is looked at a bounded number of times whatever the reads are like: the search
//! for a line's end resumes where the last read stopped (an event of one 5 MB `data:` line
//! costs what the same bytes in 1,000 events cost), and consumed lines are dropped from the
//! buffer once per read, moving only the unfinished line. One event's data is capped at
//! [`MAX_EVENT_BYTES`]: beyond it the stream is refused with an error naming the cap, so a
//! server cannot make the client buffer without end.
//!
//! Lines end in CRLF, CR or LF; a leading byte-order mark is skipped; `event` and `data` are the
//! fields used (`id`, `retry` and comments are read and ignored); an event is dispatched at an
//! empty line when it has data; an unfinished event at the end of the stream is dropped. Bytes
//! that are not UTF-8 become U+FFFD, as the standard says.

use std::collections::VecDeque;

use super::SseEvent;

/// The largest data one event may carry: 16 MiB (the largest cassette call file is the same),
/// room for a tool call's arguments far beyond what any model writes in one answer.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// An event larger than the cap (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTooLarge {
    /// The cap, in bytes.
    pub cap: usize,
}

impl std::fmt::Display for EventTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "one server-sent event is larger than {} MiB, the cap on a single event; the \
             server's stream is not what the API documents (check model.base_url)",
            self.cap / (1024 * 1024)
        )
    }
}

/// The decoder of one response's event stream (see the module docs).
#[derive(Debug)]
pub struct SseDecoder {
    /// Bytes not yet consumed: `buf[start..]` is the unfinished line and what follows it.
    buf: Vec<u8>,
    /// Where the unfinished line starts.
    start: usize,
    /// How far the search for the unfinished line's end has gone.
    scanned: usize,
    /// The last line ended in CR: an LF that comes next belongs to it.
    after_cr: bool,
    /// No line has been read yet (a byte-order mark may lead the first one).
    first_line: bool,
    /// The event type buffer.
    event: String,
    /// The data buffer.
    data: String,
    /// Whole events not yet taken.
    ready: VecDeque<SseEvent>,
    /// The cap on one event's data.
    cap: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        SseDecoder::with_cap(MAX_EVENT_BYTES)
    }
}

impl SseDecoder {
    /// A decoder refusing events larger than `cap` bytes.
    pub fn with_cap(cap: usize) -> Self {
        SseDecoder {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            after_cr: false,
            first_line: true,
            event: String::new(),
            data: String::new(),
            ready: VecDeque::new(),
            cap,
        }
    }

    /// Reads `bytes`, making ready every event they complete. An error means the stream broke
    /// the cap; nothing more should be fed.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), EventTooLarge> {
        if self.start > 0 {
            // Only the unfinished line moves, once per read.
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            if self.after_cr && self.start < self.buf.len() {
                self.after_cr = false;
                if self.buf[self.start] == b'\n' {
                    self.start += 1;
                    self.scanned = self.scanned.max(self.start);
                }
            }
            let from = self.scanned.max(self.start);
            let Some(offset) = self.buf[from..]
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
            else {
                self.scanned = self.buf.len();
                let unfinished = self.buf.len() - self.start;
                if self.data.len().saturating_add(unfinished) > self.cap {
                    return Err(EventTooLarge { cap: self.cap });
                }
                return Ok(());
            };
            let end = from + offset;
            self.after_cr = self.buf[end] == b'\r';
            let (start, first) = (self.start, std::mem::replace(&mut self.first_line, false));
            self.start = end + 1;
            self.scanned = self.start;
            let mut line = &self.buf[start..end];
            if first {
                line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
            }
            if let Some(event) = line_into(line, &mut self.event, &mut self.data) {
                self.ready.push_back(event);
            }
            if self.data.len() > self.cap {
                return Err(EventTooLarge { cap: self.cap });
            }
        }
    }

    /// The next whole event, if one is ready.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        self.ready.pop_front()
    }
}

/// Applies one line to the event being built; an empty line dispatches it.
fn line_into(line: &[u8], event: &mut String, data: &mut String) -> Option<SseEvent> {
    if line.is_empty() {
        let kind = std::mem::take(event);
        if data.is_empty() {
            return None;
        }
        let mut data = std::mem::take(data);
        if data.ends_with('\n') {
            data.pop();
        }
        let event = if kind.is_empty() {
            "message".to_string()
        } else {
            kind
        };
        return Some(SseEvent { event, data });
    }
    if line.first() == Some(&b':') {
        return None;
    }
    let (name, value) = match line.iter().position(|&b| b == b':') {
        Some(colon) => {
            let value = &line[colon + 1..];
            (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
        }
        None => (line, &[][..]),
    };
    match name {
        b"event" => *event = String::from_utf8_lossy(value).into_owned(),
        b"data" => {
            data.push_str(&String::from_utf8_lossy(value));
            data.push('\n');
        }
        // `id`, `retry`, and fields the standard does not define.
        _ => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(reads: &[&[u8]]) -> (Vec<SseEvent>, Option<EventTooLarge>) {
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        for read in reads {
            let result = decoder.push(read);
            while let Some(e) = decoder.next_event() {
                out.push(e);
            }
            if let Err(e) = result {
                return (out, Some(e));
            }
        }
        (out, None)
    }

    fn event(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn fields_lines_and_line_ends_follow_the_standard() {
        let stream = b"\xef\xbb\xbfdata: a\r\ndata:b\rdata\n\n: comment\nid: 7\nretry: 10\n\
                       event: ping\nevent:  two spaces\ndata: x\n\nevent: empty\n\n\
                       data: {\"unfinished\"";
        let (events, err) = decode(&[stream]);
        assert_eq!(err, None);
        assert_eq!(
            events,
            [event("message", "a\nb\n"), event(" two spaces", "x")]
        );
    }

    #[test]
    fn every_split_of_the_bytes_gives_the_same_events() {
        let stream: &[u8] = b"\xef\xbb\xbfevent: e1\r\ndata: caf\xc3\xa9\r\n\r\ndata: 2\r\r\
                              data: 3\n\ndata: bad \xff\n\n";
        let (whole, _) = decode(&[stream]);
        assert_eq!(
            whole,
            [
                event("e1", "café"),
                event("message", "2"),
                event("message", "3"),
                event("message", "bad \u{fffd}"),
            ]
        );
        for cut in 0..=stream.len() {
            for cut2 in cut..=stream.len() {
                let (events, _) = decode(&[&stream[..cut], &stream[cut..cut2], &stream[cut2..]]);
                assert_eq!(events, whole, "cut at {cut} and {cut2}");
            }
        }
    }

    #[test]
    fn an_event_beyond_the_cap_is_refused_whether_in_one_line_or_many() {
        let mut one = SseDecoder::with_cap(100);
        let line = [b'x'; 60];
        assert_eq!(one.push(b"data: "), Ok(()));
        assert_eq!(one.push(&line), Ok(()));
        assert_eq!(one.push(&line), Err(EventTooLarge { cap: 100 }));

        let mut many = SseDecoder::with_cap(100);
        let mut stream = Vec::new();
        for _ in 0..20 {
            stream.extend_from_slice(b"data: 0123456789\n");
        }
        assert_eq!(many.push(&stream), Err(EventTooLarge { cap: 100 }));

        // At the cap is still fine.
        let mut at = SseDecoder::with_cap(100);
        let mut stream = b"data: ".to_vec();
        stream.extend_from_slice(&[b'y'; 99]);
        stream.extend_from_slice(b"\n\n");
        assert_eq!(at.push(&stream), Ok(()));
        assert_eq!(at.next_event().map(|e| e.data.len()), Some(99));

        let message = EventTooLarge {
            cap: MAX_EVENT_BYTES,
        }
        .to_string();
        assert!(message.contains("16 MiB"), "{message}");
    }

    #[test]
    fn a_huge_line_in_small_reads_is_decoded_in_linear_time() {
        // 8 MB in 2 KiB reads: quadratic rescanning would take minutes here.
        let mut decoder = SseDecoder::default();
        decoder.push(b"data: ").expect("fits");
        let piece = vec![b'z'; 2048];
        for _ in 0..4096 {
            decoder.push(&piece).expect("fits");
        }
        decoder.push(b"\n\n").expect("fits");
        assert_eq!(decoder.next_event().map(|e| e.data.len()), Some(8 << 20));
    }
}
