//! HTML to Markdown-ish text: headings as `# ` lines, blocks separated by blank lines, list
//! items as `- `, table rows as `a | b`; scripts, styles and the head are left out.

use super::collapse_whitespace;
use super::entities::decode_entities;

/// Elements whose content is skipped wholesale (the content is not markup we want as text).
const RAW_SKIP: &[&str] = &["script", "style", "noscript", "template", "title", "svg", "iframe", "object", "select"];
/// Elements that may sit in `<head>` without implicitly opening the body.
const HEAD_ELEMENTS: &[&str] = &["title", "meta", "link", "style", "script", "base", "noscript", "template"];

/// Converts HTML to Markdown-ish text. Hand-written, forgiving: never panics on malformed input
/// (every slice index sits on an ASCII byte or the end of the string).
pub(super) fn html_to_text(html: &str) -> String {
    let bytes = html.as_bytes();
    // ASCII lowercasing keeps byte offsets identical.
    let lower = html.to_ascii_lowercase();
    let lower_bytes = lower.as_bytes();
    let len = bytes.len();
    let mut out = HtmlOut::default();
    let mut title = String::new();
    let mut i = 0usize;

    while i < len {
        if bytes[i] != b'<' {
            let end = find_byte(bytes, i, b'<').unwrap_or(len);
            out.text(&html[i..end]);
            i = end;
            continue;
        }
        let rest = &lower_bytes[i..];
        if rest.starts_with(b"<!--") {
            i = find_bytes(lower_bytes, i + 4, b"-->").map_or(len, |p| p + 3);
            continue;
        }
        if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
            i = find_byte(bytes, i + 2, b'>').map_or(len, |p| p + 1);
            continue;
        }
        let closing = rest.starts_with(b"</");
        let name_start = if closing { i + 2 } else { i + 1 };
        if name_start >= len || !bytes[name_start].is_ascii_alphabetic() {
            // A stray '<' is text.
            out.text("<");
            i += 1;
            continue;
        }
        let mut name_end = name_start;
        while name_end < len
            && (bytes[name_end].is_ascii_alphanumeric() || matches!(bytes[name_end], b'-' | b':' | b'_'))
        {
            name_end += 1;
        }
        let name = &lower[name_start..name_end];

        // Find the tag's closing '>', honouring quoted attribute values (a quote only opens a
        // value right after '=').
        let mut k = name_end;
        let mut quote: Option<u8> = None;
        let mut prev_significant = 0u8;
        while k < len {
            let b = bytes[k];
            match quote {
                Some(q) => {
                    if b == q {
                        quote = None;
                    }
                }
                None => {
                    if b == b'>' {
                        break;
                    }
                    if (b == b'"' || b == b'\'') && prev_significant == b'=' {
                        quote = Some(b);
                    }
                    if !b.is_ascii_whitespace() {
                        prev_significant = b;
                    }
                }
            }
            k += 1;
        }
        let self_closing = k > name_end && k <= len && bytes[k - 1] == b'/';
        i = if k < len { k + 1 } else { len };

        if closing {
            out.end_tag(name);
            continue;
        }
        if RAW_SKIP.contains(&name) && !self_closing {
            let mut pattern = Vec::with_capacity(name.len() + 2);
            pattern.extend_from_slice(b"</");
            pattern.extend_from_slice(name.as_bytes());
            let close = find_bytes(lower_bytes, i, &pattern);
            let content_end = close.unwrap_or(len);
            if name == "title" && title.is_empty() {
                title = collapse_whitespace(&decode_entities(&html[i..content_end]));
            }
            if out.in_head && !HEAD_ELEMENTS.contains(&name) {
                out.in_head = false;
            }
            i = match close {
                Some(p) => find_byte(bytes, p, b'>').map_or(len, |q| q + 1),
                None => len,
            };
            continue;
        }
        out.start_tag(name);
    }

    let body = out.s.trim();
    if !out.has_h1 && !title.is_empty() {
        if body.is_empty() {
            return format!("# {title}");
        }
        return format!("# {title}\n\n{body}");
    }
    body.to_owned()
}

fn find_byte(haystack: &[u8], from: usize, needle: u8) -> Option<usize> {
    haystack.get(from..)?.iter().position(|b| *b == needle).map(|p| p + from)
}

fn find_bytes(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(from);
    }
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// The output builder: collapses whitespace, emits block breaks lazily (so trailing breaks never
/// pile up) and keeps at most one blank line between blocks.
#[derive(Default)]
struct HtmlOut {
    s: String,
    /// Trailing newlines currently at the end of `s`.
    nl: usize,
    /// Newlines owed before the next text (1 = line break, 2 = blank line).
    pending: usize,
    /// Emitted just before the next text (`# `, `- `).
    prefix: Option<String>,
    heading: bool,
    has_h1: bool,
    pre: usize,
    in_head: bool,
    cells: usize,
    row_has_text: bool,
}

impl HtmlOut {
    fn start_tag(&mut self, name: &str) {
        if self.in_head && !HEAD_ELEMENTS.contains(&name) {
            self.in_head = false;
        }
        match name {
            "head" => self.in_head = true,
            "body" => self.in_head = false,
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                let level = usize::from(name.as_bytes()[1] - b'0');
                self.heading = false;
                self.block(2);
                self.prefix = Some(format!("{} ", "#".repeat(level)));
                self.heading = true;
                if level == 1 {
                    self.has_h1 = true;
                }
            }
            "p" | "section" | "article" | "blockquote" | "header" | "footer" | "main" | "nav" | "aside" | "ul"
            | "ol" | "dl" | "table" | "figure" | "form" | "fieldset" | "details" | "address" | "hr" => self.block(2),
            "pre" => {
                self.block(2);
                self.pre += 1;
            }
            "div" | "dt" | "dd" | "summary" | "figcaption" | "caption" | "label" | "thead" | "tbody" | "tfoot" => {
                self.block(1)
            }
            "tr" => {
                self.block(1);
                self.cells = 0;
                self.row_has_text = false;
            }
            "li" => {
                self.block(1);
                if !self.heading {
                    self.prefix = Some("- ".to_owned());
                }
            }
            "br" => self.line_break(),
            "td" | "th" => self.cell(),
            _ => {}
        }
    }

    fn end_tag(&mut self, name: &str) {
        match name {
            "head" => self.in_head = false,
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                if self.heading {
                    self.heading = false;
                    // A heading without text leaves no stray "# ".
                    self.prefix = None;
                }
                self.block(2);
            }
            "p" | "section" | "article" | "blockquote" | "header" | "footer" | "main" | "nav" | "aside" | "ul"
            | "ol" | "dl" | "table" | "figure" | "form" | "fieldset" | "details" | "address" => self.block(2),
            "pre" => {
                self.pre = self.pre.saturating_sub(1);
                self.block(2);
            }
            "div" | "dt" | "dd" | "summary" | "figcaption" | "caption" | "label" | "tr" | "li" | "thead" | "tbody"
            | "tfoot" => self.block(1),
            _ => {}
        }
    }

    fn block(&mut self, n: usize) {
        if self.heading {
            self.space();
        } else {
            self.pending = self.pending.max(n.min(2));
        }
    }

    fn line_break(&mut self) {
        if self.heading {
            self.space();
        } else {
            self.pending = (self.pending + 1).min(2);
        }
    }

    fn cell(&mut self) {
        if self.cells > 0 && self.row_has_text {
            // Keep the row on one line even if a cell held blocks.
            self.pending = 0;
            self.prefix = None;
            let trimmed = self.s.trim_end_matches([' ', '\t']).len();
            self.s.truncate(trimmed);
            self.s.push_str(" | ");
            self.nl = 0;
        }
        self.cells += 1;
    }

    fn space(&mut self) {
        if !self.s.is_empty() && self.nl == 0 && self.pending == 0 && !self.s.ends_with(' ') {
            self.s.push(' ');
        }
    }

    fn flush(&mut self) {
        if self.pending == 0 {
            return;
        }
        if !self.s.is_empty() {
            let trimmed = self.s.trim_end_matches([' ', '\t']).len();
            self.s.truncate(trimmed);
            self.nl = self.s.len() - self.s.trim_end_matches('\n').len();
            while self.nl < self.pending {
                self.s.push('\n');
                self.nl += 1;
            }
        }
        self.pending = 0;
    }

    fn emit(&mut self, c: char) {
        self.flush();
        if let Some(prefix) = self.prefix.take() {
            self.s.push_str(&prefix);
        }
        self.s.push(c);
        self.nl = 0;
        self.row_has_text = true;
    }

    fn text(&mut self, raw: &str) {
        if self.in_head {
            return;
        }
        let decoded = decode_entities(raw);
        for c in decoded.chars() {
            if self.pre > 0 && !self.heading {
                if c == '\n' {
                    self.flush();
                    if !self.s.is_empty() && self.nl < 2 {
                        self.s.push('\n');
                        self.nl += 1;
                    }
                } else {
                    self.emit(c);
                }
            } else if c.is_whitespace() {
                self.space();
            } else {
                self.emit(c);
            }
        }
    }
}
