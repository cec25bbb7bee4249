//! Text extraction for uploaded knowledge files: plain text, Markdown, HTML, PDF, DOCX, CSV and
//! JSON. Detection looks at the content first (PDF and ZIP magic, UTF-8 / UTF-16 validity), then
//! at the file name's extension, then at the declared MIME type.
//!
//! HTML and DOCX are turned into Markdown-ish text (`# ` heading lines, blank lines between
//! blocks) so the chunker can attach section titles; CSV rows and JSON leaves become one
//! `label: value` line each.

mod detect;
mod docx;
mod entities;
mod html;
mod pdf;
mod structured;
#[cfg(test)]
mod tests;

use detect::{decode_text, sniff};
use docx::extract_docx;
use html::html_to_text;
use pdf::extract_pdf;
use structured::{csv_to_text, json_to_text};

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
// Text helpers shared by the formats
// ---------------------------------------------------------------------------------------------

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
