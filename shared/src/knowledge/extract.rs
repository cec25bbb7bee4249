//! Text extraction for uploaded knowledge files: plain text, Markdown, HTML, PDF, DOCX, CSV and
//! JSON. Detection looks at the content first (PDF and ZIP magic, UTF-8 / UTF-16 validity), then
//! at the file name's extension, then at the declared MIME type.
//!
//! HTML and DOCX are turned into Markdown-ish text (`# ` heading lines, blank lines between
//! blocks) so the chunker can attach section titles; CSV rows and JSON leaves become one
//! `label: value` line each.

use std::borrow::Cow;
use std::io::{Cursor, Read};
use std::panic::AssertUnwindSafe;

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::Value;

/// Upper bound on the decompressed size of `word/document.xml` (zip-bomb guard).
const MAX_DOCX_XML_BYTES: u64 = 64 * 1024 * 1024;
/// JSON nesting below this depth is written as compact JSON on one line.
const MAX_JSON_DEPTH: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DocKind {
    Text,
    Markdown,
    Html,
    Pdf,
    Docx,
    Csv,
    Json,
}

impl DocKind {
    /// The lowercase name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Text => "text",
            DocKind::Markdown => "markdown",
            DocKind::Html => "html",
            DocKind::Pdf => "pdf",
            DocKind::Docx => "docx",
            DocKind::Csv => "csv",
            DocKind::Json => "json",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    pub kind: DocKind,
    /// The document's text. For html it is converted to markdown-ish text (headings as "# ",
    /// paragraphs separated by blank lines) so the markdown splitter can find sections.
    pub text: String,
    /// Byte offsets into `text` where page 1, 2, ... start (pdf only; empty when unknown).
    pub page_starts: Vec<usize>,
}

impl Extracted {
    pub fn page_count(&self) -> Option<usize> {
        if self.page_starts.is_empty() {
            None
        } else {
            Some(self.page_starts.len())
        }
    }

    pub fn word_count(&self) -> usize {
        self.text.split_whitespace().count()
    }

    /// Markdown or HTML (converted to Markdown-ish text): chunk with the Markdown splitter.
    pub fn is_markdown_like(&self) -> bool {
        matches!(self.kind, DocKind::Markdown | DocKind::Html)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("unsupported file type: {0}")]
    Unsupported(String),
    #[error("could not read {kind} file: {detail}")]
    Corrupt { kind: &'static str, detail: String },
    #[error("the file contains no text")]
    Empty,
}

fn corrupt(kind: &'static str, detail: impl Into<String>) -> ExtractError {
    ExtractError::Corrupt { kind, detail: detail.into() }
}

/// Works out the document kind from the content, the file name and the declared MIME type.
pub fn detect(bytes: &[u8], filename: &str, mime: Option<&str>) -> Result<DocKind, ExtractError> {
    sniff(bytes, filename, mime).map(|(kind, _)| kind)
}

/// Detects the kind and extracts the text. Whitespace-only results are [`ExtractError::Empty`].
pub fn extract(bytes: &[u8], filename: &str, mime: Option<&str>) -> Result<Extracted, ExtractError> {
    let (kind, decoded) = sniff(bytes, filename, mime)?;
    let mut page_starts = Vec::new();
    let text = match kind {
        DocKind::Pdf => {
            let (text, starts) = extract_pdf(bytes)?;
            page_starts = starts;
            text
        }
        DocKind::Docx => extract_docx(bytes)?,
        DocKind::Text | DocKind::Markdown | DocKind::Html | DocKind::Csv | DocKind::Json => {
            let text = match decoded {
                Some(text) => text,
                // sniff() always decodes text kinds; decode again rather than fail.
                None => decode_text(bytes).ok_or_else(|| ExtractError::Unsupported("binary content".into()))?,
            };
            let text = normalize_newlines(text);
            match kind {
                DocKind::Html => html_to_text(&text),
                DocKind::Csv => csv_to_text(&text)?,
                DocKind::Json => json_to_text(&text)?,
                _ => text,
            }
        }
    };
    if text.trim().is_empty() {
        return Err(ExtractError::Empty);
    }
    Ok(Extracted { kind, text, page_starts })
}

// ---------------------------------------------------------------------------------------------
// Detection
// ---------------------------------------------------------------------------------------------

/// The kind, plus the decoded text for the text-based kinds.
fn sniff(bytes: &[u8], filename: &str, mime: Option<&str>) -> Result<(DocKind, Option<String>), ExtractError> {
    let ext = extension(filename);
    let ext = ext.as_deref();

    if is_pdf(bytes, ext == Some("pdf")) {
        return Ok((DocKind::Pdf, None));
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return match zip::ZipArchive::new(Cursor::new(bytes)) {
            Ok(archive) if archive.index_for_name("word/document.xml").is_some() => Ok((DocKind::Docx, None)),
            Ok(_) if ext == Some("docx") => Err(corrupt("docx", "word/document.xml is missing")),
            Ok(_) => Err(ExtractError::Unsupported("zip archive (not a .docx document)".into())),
            Err(err) if ext == Some("docx") => Err(corrupt("docx", err.to_string())),
            Err(_) => Err(ExtractError::Unsupported("zip archive (not a .docx document)".into())),
        };
    }
    match ext {
        Some("pdf") => return Err(corrupt("pdf", "the file does not start with a %PDF header")),
        Some("docx") => return Err(corrupt("docx", "the file is not a zip archive")),
        _ => {}
    }

    let text = decode_text(bytes).ok_or_else(|| ExtractError::Unsupported("binary content".into()))?;

    let by_ext = match ext {
        Some("md" | "markdown" | "mdown" | "mkd" | "mkdn") => Some(DocKind::Markdown),
        Some("html" | "htm" | "xhtml") => Some(DocKind::Html),
        Some("csv") => Some(DocKind::Csv),
        Some("json") => Some(DocKind::Json),
        Some("txt" | "text") => Some(DocKind::Text),
        _ => None,
    };
    let kind = by_ext.or_else(|| looks_like_html(&text).then_some(DocKind::Html)).or_else(|| kind_from_mime(mime));
    Ok((kind.unwrap_or(DocKind::Text), Some(text)))
}

/// Lowercased extension of the last path component, if any.
fn extension(filename: &str) -> Option<String> {
    let name = filename.rsplit(['/', '\\']).next().unwrap_or(filename);
    let (_, ext) = name.rsplit_once('.')?;
    if ext.is_empty() {
        None
    } else {
        Some(ext.trim().to_ascii_lowercase())
    }
}

fn is_pdf(bytes: &[u8], pdf_name: bool) -> bool {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    if bytes[start..].starts_with(b"%PDF-") {
        return true;
    }
    // Some producers (mail gateways, printers) put junk before the header; readers accept the
    // header anywhere in the first kilobyte. Only trust that when the name says pdf.
    pdf_name && bytes[..bytes.len().min(1024)].windows(5).any(|w| w == b"%PDF-")
}

fn looks_like_html(text: &str) -> bool {
    let head: String = text.trim_start().chars().take(16).collect::<String>().to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

fn kind_from_mime(mime: Option<&str>) -> Option<DocKind> {
    let mime = mime?.split(';').next()?.trim().to_ascii_lowercase();
    match mime.as_str() {
        "text/html" | "application/xhtml+xml" => Some(DocKind::Html),
        "text/markdown" | "text/x-markdown" => Some(DocKind::Markdown),
        "text/csv" => Some(DocKind::Csv),
        "application/json" => Some(DocKind::Json),
        m if m.ends_with("+json") => Some(DocKind::Json),
        _ => None,
    }
}

/// UTF-8 (BOM stripped) or UTF-16 with a BOM; `None` for anything that is not text.
fn decode_text(bytes: &[u8]) -> Option<String> {
    let text = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        std::str::from_utf8(rest).ok()?.to_owned()
    } else if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        decode_utf16(rest, u16::from_le_bytes)?
    } else if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        decode_utf16(rest, u16::from_be_bytes)?
    } else {
        std::str::from_utf8(bytes).ok()?.to_owned()
    };
    if text.contains('\0') {
        return None;
    }
    Some(text)
}

fn decode_utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]])).collect();
    String::from_utf16(&units).ok()
}

fn normalize_newlines(text: String) -> String {
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text
    }
}

/// Trims trailing whitespace on every line, keeps at most one blank line in a row, and trims the
/// end of the whole text.
fn limit_blank_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0usize;
    for line in text.split('\n') {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    let len = out.trim_end().len();
    out.truncate(len);
    out
}

/// Collapses every whitespace run (newlines included) into a single space and trims.
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// PDF
// ---------------------------------------------------------------------------------------------

/// Pages joined by blank lines, with the byte offset where each page starts.
fn extract_pdf(bytes: &[u8]) -> Result<(String, Vec<usize>), ExtractError> {
    // pdf-extract panics on many malformed inputs; contain that here. (With `panic = "abort"`
    // in a profile this cannot help, the process aborts.)
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| pdf_extract::extract_text_from_mem_by_pages(bytes)));
    let pages = match outcome {
        Ok(Ok(pages)) => pages,
        Ok(Err(err)) => return Err(corrupt("pdf", err.to_string())),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown error".to_owned());
            return Err(corrupt("pdf", format!("the PDF parser failed: {message}")));
        }
    };
    let mut text = String::new();
    let mut starts = Vec::with_capacity(pages.len());
    for (i, page) in pages.into_iter().enumerate() {
        if i > 0 {
            text.push_str("\n\n");
        }
        starts.push(text.len());
        let page = limit_blank_lines(&normalize_newlines(page));
        text.push_str(page.trim());
    }
    Ok((text, starts))
}

// ---------------------------------------------------------------------------------------------
// DOCX
// ---------------------------------------------------------------------------------------------

fn extract_docx(bytes: &[u8]) -> Result<String, ExtractError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| corrupt("docx", e.to_string()))?;
    let file = archive.by_name("word/document.xml").map_err(|e| corrupt("docx", e.to_string()))?;
    let mut xml = Vec::new();
    file.take(MAX_DOCX_XML_BYTES + 1).read_to_end(&mut xml).map_err(|e| corrupt("docx", e.to_string()))?;
    if xml.len() as u64 > MAX_DOCX_XML_BYTES {
        return Err(corrupt("docx", "word/document.xml is too large"));
    }
    let xml = String::from_utf8_lossy(&xml);
    docx_xml_to_text(&xml).map_err(|e| corrupt("docx", e.to_string()))
}

#[derive(Default)]
struct DocxParagraph {
    text: String,
    heading: Option<usize>,
}

/// Text of `w:t` runs; `w:tab` → tab, `w:br`/`w:cr` → newline, one line per `w:p`; paragraphs
/// styled `Heading1`..`Heading6` / `Title` become `#` heading lines.
fn docx_xml_to_text(xml: &str) -> Result<String, quick_xml::Error> {
    let mut reader = Reader::from_str(xml);
    let mut out = String::new();
    // A stack: text boxes put whole paragraphs inside a paragraph.
    let mut paragraphs: Vec<DocxParagraph> = Vec::new();
    let mut in_text = 0usize;
    let mut in_ppr = 0usize;

    fn target<'a>(paragraphs: &'a mut [DocxParagraph], out: &'a mut String) -> &'a mut String {
        match paragraphs.last_mut() {
            Some(p) => &mut p.text,
            None => out,
        }
    }

    loop {
        match reader.read_event()? {
            Event::Start(e) => {
                let name = e.local_name();
                match name.as_ref() {
                    "p" => paragraphs.push(DocxParagraph::default()),
                    "pPr" => in_ppr += 1,
                    "t" => in_text += 1,
                    "pStyle" if in_ppr > 0 => set_docx_heading(&e, &mut paragraphs),
                    "tab" if in_ppr == 0 => target(&mut paragraphs, &mut out).push('\t'),
                    "br" | "cr" if in_ppr == 0 => target(&mut paragraphs, &mut out).push('\n'),
                    _ => {}
                }
            }
            Event::Empty(e) => {
                let name = e.local_name();
                match name.as_ref() {
                    "p" => out.push('\n'),
                    "pStyle" if in_ppr > 0 => set_docx_heading(&e, &mut paragraphs),
                    "tab" if in_ppr == 0 => target(&mut paragraphs, &mut out).push('\t'),
                    "br" | "cr" if in_ppr == 0 => target(&mut paragraphs, &mut out).push('\n'),
                    _ => {}
                }
            }
            Event::End(e) => {
                let name = e.local_name();
                match name.as_ref() {
                    "p" => {
                        if let Some(paragraph) = paragraphs.pop() {
                            finish_docx_paragraph(paragraph, &mut out);
                        }
                    }
                    "pPr" => in_ppr = in_ppr.saturating_sub(1),
                    "t" => in_text = in_text.saturating_sub(1),
                    _ => {}
                }
            }
            Event::Text(t) if in_text > 0 => target(&mut paragraphs, &mut out).push_str(&t.xml10_content()),
            Event::CData(t) if in_text > 0 => target(&mut paragraphs, &mut out).push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_text > 0 => {
                let buf = target(&mut paragraphs, &mut out);
                if let Some(c) = r.resolve_char_ref()? {
                    buf.push(c);
                } else if let Some(s) = quick_xml::escape::resolve_xml_entity(&r) {
                    buf.push_str(s);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    // Unclosed paragraphs (truncated document): keep their text.
    for paragraph in paragraphs {
        finish_docx_paragraph(paragraph, &mut out);
    }
    Ok(limit_blank_lines(&out))
}

fn set_docx_heading(e: &quick_xml::events::BytesStart<'_>, paragraphs: &mut [DocxParagraph]) {
    let Some(paragraph) = paragraphs.last_mut() else { return };
    for attr in e.attributes().flatten() {
        if attr.key.local_name().as_ref() == "val" {
            paragraph.heading = docx_heading_level(&attr.value);
        }
    }
}

/// `Heading1`..`Heading9` (clamped to 6), `heading 2`, `Title` → level; anything else → None.
fn docx_heading_level(style: &str) -> Option<usize> {
    let lower = style.trim().to_ascii_lowercase();
    if lower == "title" {
        return Some(1);
    }
    let rest = lower.strip_prefix("heading")?.trim_start();
    if rest.is_empty() {
        return Some(1);
    }
    let level: usize = rest.parse().ok()?;
    Some(level.clamp(1, 6))
}

fn finish_docx_paragraph(paragraph: DocxParagraph, out: &mut String) {
    match paragraph.heading {
        Some(level) if !paragraph.text.trim().is_empty() => {
            out.push_str(&"#".repeat(level));
            out.push(' ');
            out.push_str(&collapse_whitespace(&paragraph.text));
        }
        _ => out.push_str(paragraph.text.trim_end()),
    }
    out.push('\n');
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

/// One line per record: `Header1: value1; Header2: value2` (empty values skipped).
fn csv_to_text(text: &str) -> Result<String, ExtractError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .delimiter(sniff_csv_delimiter(text))
        .from_reader(text.as_bytes());
    let headers: Vec<String> =
        reader.headers().map_err(|e| corrupt("csv", e.to_string()))?.iter().map(collapse_whitespace).collect();
    let mut lines = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| corrupt("csv", e.to_string()))?;
        let mut parts = Vec::with_capacity(record.len());
        for (i, value) in record.iter().enumerate() {
            let value = collapse_whitespace(value);
            if value.is_empty() {
                continue;
            }
            match headers.get(i).filter(|h| !h.is_empty()) {
                Some(header) => parts.push(format!("{header}: {value}")),
                None => parts.push(value),
            }
        }
        if !parts.is_empty() {
            lines.push(parts.join("; "));
        }
    }
    if lines.is_empty() {
        // Only a header row: keep it rather than calling the file empty.
        return Ok(headers.into_iter().filter(|h| !h.is_empty()).collect::<Vec<_>>().join("; "));
    }
    Ok(lines.join("\n"))
}

/// Comma unless the first line has more semicolons or tabs.
fn sniff_csv_delimiter(text: &str) -> u8 {
    let first = text.lines().next().unwrap_or("");
    let count = |d: char| first.chars().filter(|c| *c == d).count();
    let (comma, semicolon, tab) = (count(','), count(';'), count('\t'));
    if semicolon > comma && semicolon >= tab {
        b';'
    } else if tab > comma && tab > semicolon {
        b'\t'
    } else {
        b','
    }
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

/// `path.to.key: value` lines (arrays as `path[0]`); a top-level array of objects becomes one
/// block per element, separated by blank lines.
fn json_to_text(text: &str) -> Result<String, ExtractError> {
    let value: Value = serde_json::from_str(text).map_err(|e| corrupt("json", e.to_string()))?;
    match &value {
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            let blocks: Vec<String> = items
                .iter()
                .map(|item| {
                    let mut lines = Vec::new();
                    flatten_json(item, "", 0, &mut lines);
                    lines.join("\n")
                })
                .filter(|block| !block.is_empty())
                .collect();
            Ok(blocks.join("\n\n"))
        }
        _ => {
            let mut lines = Vec::new();
            flatten_json(&value, "", 0, &mut lines);
            Ok(lines.join("\n"))
        }
    }
}

fn flatten_json(value: &Value, path: &str, depth: usize, out: &mut Vec<String>) {
    fn line(out: &mut Vec<String>, path: &str, value: &str) {
        if path.is_empty() {
            out.push(value.to_owned());
        } else {
            out.push(format!("{path}: {value}"));
        }
    }
    match value {
        Value::Null => {}
        Value::Bool(b) => line(out, path, if *b { "true" } else { "false" }),
        Value::Number(n) => line(out, path, &n.to_string()),
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() {
                line(out, path, s);
            }
        }
        Value::Array(_) | Value::Object(_) if depth >= MAX_JSON_DEPTH => line(out, path, &value.to_string()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten_json(item, &format!("{path}[{i}]"), depth + 1, out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                flatten_json(item, &child, depth + 1, out);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------------

/// Elements whose content is skipped wholesale (the content is not markup we want as text).
const RAW_SKIP: &[&str] = &["script", "style", "noscript", "template", "title", "svg", "iframe", "object", "select"];
/// Elements that may sit in `<head>` without implicitly opening the body.
const HEAD_ELEMENTS: &[&str] = &["title", "meta", "link", "style", "script", "base", "noscript", "template"];

/// Converts HTML to Markdown-ish text. Hand-written, forgiving: never panics on malformed input
/// (every slice index sits on an ASCII byte or the end of the string).
fn html_to_text(html: &str) -> String {
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

/// Decodes character references: the common named entities and numeric `&#NNN;` / `&#xHH;`.
/// Unknown or malformed references are kept as written.
fn decode_entities(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        match decode_entity(after, &mut out) {
            Some(consumed) => rest = &after[consumed..],
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Decodes the reference at the start of `s` (just after '&') into `out`; returns the number of
/// bytes consumed, or None when it is not a reference.
fn decode_entity(s: &str, out: &mut String) -> Option<usize> {
    if let Some(num) = s.strip_prefix('#') {
        let (digits, radix, prefix_len) = match num.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16, 2),
            None => (num, 10, 1),
        };
        let len =
            digits.bytes().take_while(|b| if radix == 16 { b.is_ascii_hexdigit() } else { b.is_ascii_digit() }).count();
        if len == 0 {
            return None;
        }
        let c = if len > 8 {
            '\u{FFFD}'
        } else {
            u32::from_str_radix(&digits[..len], radix)
                .ok()
                .and_then(char::from_u32)
                .filter(|c| *c != '\0')
                .unwrap_or('\u{FFFD}')
        };
        out.push(c);
        let mut consumed = prefix_len + len;
        if digits[len..].starts_with(';') {
            consumed += 1;
        }
        return Some(consumed);
    }
    let len = s.bytes().take_while(u8::is_ascii_alphanumeric).count();
    if len == 0 || len > 32 || !s[len..].starts_with(';') {
        return None;
    }
    out.push_str(named_entity(&s[..len])?);
    Some(len + 1)
}

fn named_entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        // Non-breaking and typographic spaces become plain spaces (then collapse).
        "nbsp" | "ensp" | "emsp" | "thinsp" => " ",
        "shy" | "zwnj" | "zwj" | "lrm" | "rlm" => "",
        "copy" => "©",
        "reg" => "®",
        "trade" => "™",
        "hellip" => "…",
        "mdash" => "—",
        "ndash" => "–",
        "minus" => "−",
        "lsquo" => "‘",
        "rsquo" => "’",
        "sbquo" => "‚",
        "ldquo" => "“",
        "rdquo" => "”",
        "bdquo" => "„",
        "laquo" => "«",
        "raquo" => "»",
        "lsaquo" => "‹",
        "rsaquo" => "›",
        "bull" => "•",
        "middot" => "·",
        "euro" => "€",
        "pound" => "£",
        "yen" => "¥",
        "cent" => "¢",
        "curren" => "¤",
        "deg" => "°",
        "times" => "×",
        "divide" => "÷",
        "plusmn" => "±",
        "sect" => "§",
        "para" => "¶",
        "frac12" => "½",
        "frac14" => "¼",
        "frac34" => "¾",
        "sup1" => "¹",
        "sup2" => "²",
        "sup3" => "³",
        "micro" => "µ",
        "iexcl" => "¡",
        "iquest" => "¿",
        "larr" => "←",
        "rarr" => "→",
        "uarr" => "↑",
        "darr" => "↓",
        "harr" => "↔",
        "dagger" => "†",
        "Dagger" => "‡",
        "permil" => "‰",
        "prime" => "′",
        "Prime" => "″",
        "Agrave" => "À",
        "Aacute" => "Á",
        "Acirc" => "Â",
        "Atilde" => "Ã",
        "Auml" => "Ä",
        "Aring" => "Å",
        "AElig" => "Æ",
        "Ccedil" => "Ç",
        "Egrave" => "È",
        "Eacute" => "É",
        "Ecirc" => "Ê",
        "Euml" => "Ë",
        "Igrave" => "Ì",
        "Iacute" => "Í",
        "Icirc" => "Î",
        "Iuml" => "Ï",
        "Ntilde" => "Ñ",
        "Ograve" => "Ò",
        "Oacute" => "Ó",
        "Ocirc" => "Ô",
        "Otilde" => "Õ",
        "Ouml" => "Ö",
        "Oslash" => "Ø",
        "Ugrave" => "Ù",
        "Uacute" => "Ú",
        "Ucirc" => "Û",
        "Uuml" => "Ü",
        "Yacute" => "Ý",
        "szlig" => "ß",
        "agrave" => "à",
        "aacute" => "á",
        "acirc" => "â",
        "atilde" => "ã",
        "auml" => "ä",
        "aring" => "å",
        "aelig" => "æ",
        "ccedil" => "ç",
        "egrave" => "è",
        "eacute" => "é",
        "ecirc" => "ê",
        "euml" => "ë",
        "igrave" => "ì",
        "iacute" => "í",
        "icirc" => "î",
        "iuml" => "ï",
        "ntilde" => "ñ",
        "ograve" => "ò",
        "oacute" => "ó",
        "ocirc" => "ô",
        "otilde" => "õ",
        "ouml" => "ö",
        "oslash" => "ø",
        "ugrave" => "ù",
        "uacute" => "ú",
        "ucirc" => "û",
        "uuml" => "ü",
        "yacute" => "ý",
        "yuml" => "ÿ",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_bytes(files: &[(&str, &str)]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        for (name, content) in files {
            writer.start_file(*name, options).unwrap();
            writer.write_all(content.as_bytes()).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;

    const DOCUMENT_XML: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>
<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Getting Started</w:t></w:r></w:p>
<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr><w:r><w:t xml:space="preserve">Install the </w:t></w:r><w:r><w:t>app &amp; sign in&#33;</w:t></w:r></w:p>
<w:p><w:r><w:t>Name</w:t><w:tab/><w:t>Value</w:t><w:br/><w:t>Next line</w:t></w:r></w:p>
<w:p><w:pPr><w:pStyle w:val="Heading2"/></w:pPr><w:r><w:t>Billing</w:t></w:r></w:p>
<w:sectPr/></w:body></w:document>"#;

    /// A minimal PDF: one page per entry, each showing its text in Helvetica (a standard-14
    /// Type1 font, so no widths or embedded font are needed).
    fn pdf_bytes(pages: &[&str]) -> Vec<u8> {
        let page_count = pages.len();
        let mut objects: Vec<String> = vec![
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            format!(
                "<< /Type /Pages /Kids [{}] /Count {page_count} >>",
                (0..page_count).map(|i| format!("{} 0 R", 4 + 2 * i)).collect::<Vec<_>>().join(" ")
            ),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
        ];
        for (i, text) in pages.iter().enumerate() {
            let content = format!("BT /F1 24 Tf 72 700 Td ({text}) Tj ET");
            objects.push(format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                5 + 2 * i
            ));
            objects.push(format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()));
        }
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
        for offset in offsets {
            out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
        );
        out
    }

    #[test]
    fn plain_text_normalises_newlines() {
        let doc = extract(b"Hello\r\nWorld\r\n", "notes.txt", None).unwrap();
        assert_eq!(doc.kind, DocKind::Text);
        assert_eq!(doc.text, "Hello\nWorld\n");
        assert_eq!(doc.word_count(), 2);
        assert_eq!(doc.page_count(), None);
        assert!(!doc.is_markdown_like());
    }

    #[test]
    fn text_with_bom_and_utf16() {
        let doc = extract(b"\xEF\xBB\xBFcaf\xC3\xA9", "a.txt", None).unwrap();
        assert_eq!(doc.text, "café");

        let mut utf16 = vec![0xFF, 0xFE];
        for unit in "Hi there".encode_utf16() {
            utf16.extend_from_slice(&unit.to_le_bytes());
        }
        let doc = extract(&utf16, "a.txt", None).unwrap();
        assert_eq!(doc.text, "Hi there");

        let mut utf16be = vec![0xFE, 0xFF];
        for unit in "Big end".encode_utf16() {
            utf16be.extend_from_slice(&unit.to_be_bytes());
        }
        assert_eq!(extract(&utf16be, "b", None).unwrap().text, "Big end");
    }

    #[test]
    fn whitespace_only_is_empty() {
        assert!(matches!(extract(b"  \n\t\n", "empty.txt", None), Err(ExtractError::Empty)));
        assert!(matches!(
            extract(b"<html><head><title></title></head><body> </body></html>", "x.html", None),
            Err(ExtractError::Empty)
        ));
    }

    #[test]
    fn markdown_as_is() {
        let md = "# Title\n\nSome *text*.\n\n## Part\n\nMore.";
        let doc = extract(md.as_bytes(), "README.md", None).unwrap();
        assert_eq!(doc.kind, DocKind::Markdown);
        assert_eq!(doc.text, md);
        assert!(doc.is_markdown_like());
    }

    #[test]
    fn html_is_converted() {
        let html = r#"<!DOCTYPE html>
<html><head><title>Ignored Title</title><style>body { color: red }</style>
<script>var x = "<p>no</p>";</script></head>
<body><h1>Main &amp; Heading</h1>
<p>Tom &lt;3 Jerry&nbsp;&#39;s &#x41;BC   and
   more</p><!-- hidden comment -->
<noscript>Enable JS</noscript>
<ul><li>One</li><li>Two</li></ul>
<table><tr><th>A</th><th>B</th></tr><tr><td>1</td><td>2</td></tr></table>
<p>Line<br>break</p>
</body></html>"#;
        let doc = extract(html.as_bytes(), "page.html", None).unwrap();
        assert_eq!(doc.kind, DocKind::Html);
        assert_eq!(
            doc.text,
            "# Main & Heading\n\nTom <3 Jerry 's ABC and more\n\n- One\n- Two\n\nA | B\n1 | 2\n\nLine\nbreak"
        );
        assert!(!doc.text.contains("color"));
        assert!(!doc.text.contains("var x"));
        assert!(!doc.text.contains("hidden"));
        assert!(!doc.text.contains("Enable JS"));
        assert!(!doc.text.contains("Ignored Title"));
    }

    #[test]
    fn html_title_used_without_h1() {
        let html = "<html><head><title>FAQ &amp; Help</title></head><body><h2>Refunds</h2><div>Within 30 days.</div></body></html>";
        let doc = extract(html.as_bytes(), "faq.htm", None).unwrap();
        assert_eq!(doc.text, "# FAQ & Help\n\n## Refunds\n\nWithin 30 days.");
    }

    #[test]
    fn html_pre_keeps_lines() {
        let html = "<p>Run:</p><pre>cargo build\n  --release</pre><p>Done</p>";
        assert_eq!(html_to_text(html), "Run:\n\ncargo build\n  --release\n\nDone");
    }

    #[test]
    fn malformed_html_does_not_panic() {
        let inputs = [
            "<",
            "</",
            "<!--",
            "<!-- never closed",
            "<p>unclosed <b attr='x>text",
            "<a href=\"foo>bar</a> tail",
            "&#xZZZ; &#99999999999; &#0; &; &unknown; & amp",
            "<script>never closed",
            "<title>t",
            "<h1></h1><li></li><td></td>",
            "<<>>< p>text</ p>",
            "é<ü>日本語</ü>&#x1F600;",
            "<table><td>a</td><td></td><td>c</td></table>",
            "<pre>\n\n\n</pre>x",
        ];
        for input in inputs {
            let _ = html_to_text(input);
        }
        assert_eq!(decode_entities("&#xZZZ; &#99999999999; &unknown; & amp"), "&#xZZZ; \u{FFFD} &unknown; & amp");
        assert_eq!(html_to_text("<table><tr><td>a</td><td></td><td>c</td></tr></table>"), "a | | c");
        assert_eq!(html_to_text("1 < 2 &amp;&amp; 3 > 2"), "1 < 2 && 3 > 2");
    }

    #[test]
    fn html_sniffed_without_extension() {
        let html = b"  \n<!doctype HTML><html><body><p>Hi</p></body></html>";
        assert_eq!(detect(html, "upload", None).unwrap(), DocKind::Html);
        assert_eq!(detect(b"<HTML><body>x</body></HTML>", "page.aspx", None).unwrap(), DocKind::Html);
        // A telling extension wins over sniffing.
        assert_eq!(detect(html, "notes.txt", None).unwrap(), DocKind::Text);
        let doc = extract(html, "upload", None).unwrap();
        assert_eq!(doc.text, "Hi");
    }

    #[test]
    fn mime_fallback() {
        assert_eq!(detect(b"a,b\n1,2", "data", Some("text/csv; charset=utf-8")).unwrap(), DocKind::Csv);
        assert_eq!(detect(b"{\"a\":1}", "data", Some("application/json")).unwrap(), DocKind::Json);
        assert_eq!(detect(b"# T", "data", Some("text/markdown")).unwrap(), DocKind::Markdown);
        assert_eq!(detect(b"<p>x</p>", "data", Some("TEXT/HTML")).unwrap(), DocKind::Html);
        assert_eq!(detect(b"plain", "data", Some("application/octet-stream")).unwrap(), DocKind::Text);
        // Extension beats mime.
        assert_eq!(detect(b"a,b", "x.txt", Some("text/csv")).unwrap(), DocKind::Text);
    }

    #[test]
    fn docx_paragraphs_and_headings() {
        let bytes = zip_bytes(&[("[Content_Types].xml", CONTENT_TYPES), ("word/document.xml", DOCUMENT_XML)]);
        assert_eq!(detect(&bytes, "guide.docx", None).unwrap(), DocKind::Docx);
        // Content wins over a misleading name.
        assert_eq!(detect(&bytes, "guide.bin", None).unwrap(), DocKind::Docx);
        let doc = extract(&bytes, "guide.docx", None).unwrap();
        assert_eq!(doc.kind, DocKind::Docx);
        assert_eq!(doc.text, "# Getting Started\nInstall the app & sign in!\nName\tValue\nNext line\n## Billing");
    }

    #[test]
    fn docx_heading_styles() {
        assert_eq!(docx_heading_level("Heading1"), Some(1));
        assert_eq!(docx_heading_level("heading 3"), Some(3));
        assert_eq!(docx_heading_level("Heading9"), Some(6));
        assert_eq!(docx_heading_level("Title"), Some(1));
        assert_eq!(docx_heading_level("Heading1Char"), None);
        assert_eq!(docx_heading_level("Normal"), None);
    }

    #[test]
    fn csv_rows_become_lines() {
        let csv = "Name,Age,City\r\nAlice,30,Paris\r\nBob,,\"New\nYork\"\r\nCarol,41,Rome,extra\n";
        let doc = extract(csv.as_bytes(), "people.csv", None).unwrap();
        assert_eq!(doc.kind, DocKind::Csv);
        assert_eq!(
            doc.text,
            "Name: Alice; Age: 30; City: Paris\nName: Bob; City: New York\nName: Carol; Age: 41; City: Rome; extra"
        );
        let semicolons = extract(b"Product;Price\nTea;3,50\n", "prices.csv", None).unwrap();
        assert_eq!(semicolons.text, "Product: Tea; Price: 3,50");
    }

    #[test]
    fn json_is_flattened() {
        let json = r#"{"name": "Widget", "price": 9.5, "tags": ["a", "b"], "dims": {"w": 1, "h": 2}, "none": null, "ok": true}"#;
        let doc = extract(json.as_bytes(), "item.json", None).unwrap();
        assert_eq!(doc.kind, DocKind::Json);
        let lines: Vec<&str> = doc.text.lines().collect();
        for expected in ["name: Widget", "price: 9.5", "tags[0]: a", "tags[1]: b", "dims.w: 1", "dims.h: 2", "ok: true"]
        {
            assert!(lines.contains(&expected), "missing {expected:?} in {lines:?}");
        }
        assert_eq!(lines.len(), 7);

        let faq = r#"[{"q": "Hi?", "a": "Hello"}, {"q": "Bye?", "a": "Later"}]"#;
        let doc = extract(faq.as_bytes(), "faq.json", None).unwrap();
        let blocks: Vec<&str> = doc.text.split("\n\n").collect();
        assert_eq!(blocks.len(), 2);
        assert!(blocks[0].lines().any(|l| l == "q: Hi?"));
        assert!(blocks[1].lines().any(|l| l == "a: Later"));

        let mut deep = String::from("1");
        for _ in 0..15 {
            deep = format!("{{\"k\": {deep}}}");
        }
        let doc = extract(deep.as_bytes(), "deep.json", None).unwrap();
        assert_eq!(doc.text.lines().count(), 1);
        assert!(doc.text.starts_with("k.k.k.k.k.k.k.k.k.k: {"));

        assert!(matches!(extract(b"{not json", "x.json", None), Err(ExtractError::Corrupt { kind: "json", .. })));
    }

    #[test]
    fn pdf_text_and_pages() {
        let bytes = pdf_bytes(&["Hello PDF world"]);
        assert_eq!(detect(&bytes, "doc.pdf", None).unwrap(), DocKind::Pdf);
        let doc = extract(&bytes, "doc.pdf", None).unwrap();
        assert_eq!(doc.kind, DocKind::Pdf);
        assert_eq!(doc.text, "Hello PDF world");
        assert_eq!(doc.page_starts, vec![0]);
        assert_eq!(doc.page_count(), Some(1));

        let bytes = pdf_bytes(&["First page text", "Second page text"]);
        let doc = extract(&bytes, "two.pdf", None).unwrap();
        assert_eq!(doc.page_count(), Some(2));
        assert!(doc.text.starts_with("First page text"));
        assert!(doc.text[doc.page_starts[1]..].starts_with("Second page text"));
    }

    #[test]
    fn broken_pdf_is_corrupt() {
        let result = extract(b"%PDF-1.4\nthis is not really a pdf", "x.pdf", None);
        assert!(matches!(result, Err(ExtractError::Corrupt { kind: "pdf", .. })), "{result:?}");
    }

    #[test]
    fn detection_errors() {
        assert!(matches!(
            detect(b"just some text", "report.pdf", None),
            Err(ExtractError::Corrupt { kind: "pdf", .. })
        ));
        assert!(matches!(
            detect(b"just some text", "report.docx", None),
            Err(ExtractError::Corrupt { kind: "docx", .. })
        ));

        let binary: Vec<u8> = (0..512u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        assert!(matches!(detect(&binary, "blob.bin", None), Err(ExtractError::Unsupported(_))));
        assert!(matches!(detect(&[0xC3, 0x28, 0xA0, 0xA1, 0xFF], "x", None), Err(ExtractError::Unsupported(_))));
        assert!(matches!(detect(b"nul\0inside", "x.txt", None), Err(ExtractError::Unsupported(_))));

        let zip = zip_bytes(&[("hello.txt", "hello")]);
        assert!(matches!(detect(&zip, "archive.zip", None), Err(ExtractError::Unsupported(_))));
        assert!(matches!(detect(&zip, "fake.docx", None), Err(ExtractError::Corrupt { kind: "docx", .. })));
    }

    #[test]
    fn extension_parsing() {
        assert_eq!(extension("dir.v2/File.PDF").as_deref(), Some("pdf"));
        assert_eq!(extension("C:\\x\\notes.Md").as_deref(), Some("md"));
        assert_eq!(extension("Makefile"), None);
        assert_eq!(extension("dir.d/Makefile"), None);
        assert_eq!(extension("trailing."), None);
    }
}
