//! Detection: content first (PDF and ZIP magic, UTF-8 / UTF-16 validity), then the file name's
//! extension, then the declared MIME type; text kinds come back decoded.

use std::io::Cursor;

use super::{corrupt, DocKind, ExtractError};

/// The kind, plus the decoded text for the text-based kinds.
pub(super) fn sniff(
    bytes: &[u8],
    filename: &str,
    mime: Option<&str>,
) -> Result<(DocKind, Option<String>), ExtractError> {
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
pub(super) fn extension(filename: &str) -> Option<String> {
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
pub(super) fn decode_text(bytes: &[u8]) -> Option<String> {
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
