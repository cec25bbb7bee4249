//! Server-sent events: the incremental `text/event-stream` parser both remote models read with.

/// One dispatched server-sent event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SseEvent {
    /// The `event:` field, "message" when absent.
    pub(super) event: String,
    /// The `data:` lines joined with "\n".
    pub(super) data: String,
}

/// Incremental `text/event-stream` parser: bytes in (split anywhere, also inside a UTF-8
/// character or a CRLF), events out. Lines end in LF, CRLF or CR; a blank line dispatches;
/// lines starting with ':' are comments.
#[derive(Debug, Default)]
pub(super) struct SseParser {
    buf: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// Feeds bytes; returns the events completed by them.
    pub(super) fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            let next = match self.buf[i] {
                b'\n' => i + 1,
                b'\r' if i + 1 == self.buf.len() => break, // a CRLF may be split; wait for the next byte
                b'\r' if self.buf[i + 1] == b'\n' => i + 2,
                b'\r' => i + 1,
                _ => {
                    i += 1;
                    continue;
                }
            };
            let line = String::from_utf8_lossy(&self.buf[start..i]).into_owned();
            self.line(&line, &mut events);
            start = next;
            i = next;
        }
        self.buf.drain(..start);
        events
    }

    /// End of stream: the unterminated last line and a pending event (servers that omit the
    /// final blank line) are dispatched.
    pub(super) fn finish(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let line = String::from_utf8_lossy(&rest);
            let line = line.trim_end_matches(['\r', '\n']);
            self.line(line, &mut events);
        }
        self.dispatch(&mut events);
        events
    }

    fn line(&mut self, line: &str, events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(events);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {} // id, retry, unknown fields
        }
    }

    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        if self.has_data {
            let event = if self.event.is_empty() { "message".to_string() } else { std::mem::take(&mut self.event) };
            events.push(SseEvent { event, data: std::mem::take(&mut self.data) });
        }
        self.event.clear();
        self.data.clear();
        self.has_data = false;
    }
}
