//! PDF: text per page, through pdf-extract (whose panics on malformed files are contained).

use std::panic::AssertUnwindSafe;

use super::{corrupt, limit_blank_lines, normalize_newlines, ExtractError};

/// Pages joined by blank lines, with the byte offset where each page starts.
pub(super) fn extract_pdf(bytes: &[u8]) -> Result<(String, Vec<usize>), ExtractError> {
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
