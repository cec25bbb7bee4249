//! DOCX: the paragraphs of `word/document.xml`, with heading styles as `#` lines.

use std::io::{Cursor, Read};

use quick_xml::events::Event;
use quick_xml::Reader;

use super::{collapse_whitespace, corrupt, limit_blank_lines, ExtractError};

/// Upper bound on the decompressed size of `word/document.xml` (zip-bomb guard).
const MAX_DOCX_XML_BYTES: u64 = 64 * 1024 * 1024;

pub(super) fn extract_docx(bytes: &[u8]) -> Result<String, ExtractError> {
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
pub(super) fn docx_heading_level(style: &str) -> Option<usize> {
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
