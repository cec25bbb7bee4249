//! Splitting extracted documents into overlapping chunks for embedding. Sizes are in characters;
//! Markdown (and HTML converted to Markdown) goes through the Markdown-aware splitter so chunks
//! follow headings and paragraphs. Each chunk knows its character offsets in the extracted text,
//! the PDF page it starts on and the nearest heading above it.

use sha2::{Digest, Sha256};
use text_splitter::{Characters, ChunkConfig, MarkdownSplitter, TextSplitter};

use super::extract::{DocKind, Extracted};

/// Longest section title kept, in characters.
const MAX_SECTION_CHARS: usize = 255;

/// Chunk size and overlap, in characters.
#[derive(Clone, Copy, Debug)]
pub struct ChunkSettings {
    pub size: usize,
    pub overlap: usize,
}

impl ChunkSettings {
    /// Clamps `size` to 100..=8000 and `overlap` to less than half the size.
    pub fn new(size: usize, overlap: usize) -> Self {
        let size = size.clamp(100, 8000);
        let overlap = overlap.min(size / 2 - 1);
        ChunkSettings { size, overlap }
    }
}

impl Default for ChunkSettings {
    fn default() -> Self {
        ChunkSettings::new(1000, 150)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TextChunk {
    pub index: i32,
    pub text: String,
    /// char offsets (Unicode scalar values, not bytes) into Extracted::text
    pub start: usize,
    pub end: usize,
    /// 1-based page the chunk starts on (documents with page information only).
    pub page: Option<i32>,
    /// The nearest heading at or before the chunk start.
    pub section: Option<String>,
}

/// Splits the document into chunks of at most `settings.size` characters, consecutive chunks
/// overlapping by at most `settings.overlap` characters. Deterministic for a given input.
pub fn chunk(doc: &Extracted, settings: ChunkSettings) -> Vec<TextChunk> {
    let text = doc.text.as_str();
    if text.trim().is_empty() {
        return Vec::new();
    }
    // The fields are public; apply the clamps even to a hand-built value.
    let settings = ChunkSettings::new(settings.size, settings.overlap);
    let config = match ChunkConfig::new(settings.size).with_overlap(settings.overlap) {
        Ok(config) => config,
        Err(_) => ChunkConfig::new(settings.size),
    };

    // (byte offset, chunk) pairs; chunks are trimmed sub-slices of `text`.
    let pieces: Vec<(usize, &str)> = if doc.is_markdown_like() {
        MarkdownSplitter::<Characters>::new(config).chunk_indices(text).collect()
    } else {
        TextSplitter::<Characters>::new(config).chunk_indices(text).collect()
    };

    let offsets = CharOffsets::new(text, pieces.iter().flat_map(|(start, piece)| [*start, start + piece.len()]));
    let headings = if has_headings(doc.kind) { markdown_headings(text) } else { Vec::new() };

    pieces
        .iter()
        .filter(|(_, piece)| !piece.trim().is_empty())
        .enumerate()
        .map(|(index, &(byte_start, piece))| TextChunk {
            index: i32::try_from(index).unwrap_or(i32::MAX),
            text: piece.to_owned(),
            start: offsets.char_offset(byte_start),
            end: offsets.char_offset(byte_start + piece.len()),
            page: page_at(&doc.page_starts, byte_start),
            section: section_at(&headings, byte_start),
        })
        .collect()
}

/// Hex SHA-256 of the text (chunk / document dedup key).
pub fn content_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Kinds whose text carries `#` heading lines (written by the author or by the extractor).
fn has_headings(kind: DocKind) -> bool {
    matches!(kind, DocKind::Markdown | DocKind::Html | DocKind::Docx)
}

/// Byte → char offset conversion for a known set of byte offsets, in one pass over the text.
struct CharOffsets {
    /// Sorted, deduplicated byte offsets.
    bytes: Vec<usize>,
    /// The char offset for each entry of `bytes`.
    chars: Vec<usize>,
}

impl CharOffsets {
    fn new(text: &str, wanted: impl Iterator<Item = usize>) -> Self {
        let mut bytes: Vec<usize> = wanted.collect();
        bytes.sort_unstable();
        bytes.dedup();
        let mut chars = Vec::with_capacity(bytes.len());
        let mut iter = text.char_indices().peekable();
        let mut count = 0usize;
        for &target in &bytes {
            while let Some(&(byte, _)) = iter.peek() {
                if byte >= target {
                    break;
                }
                iter.next();
                count += 1;
            }
            chars.push(count);
        }
        CharOffsets { bytes, chars }
    }

    fn char_offset(&self, byte: usize) -> usize {
        let i = self.bytes.partition_point(|&b| b < byte);
        self.chars.get(i).copied().unwrap_or_else(|| self.chars.last().copied().unwrap_or(0))
    }
}

/// 1-based page whose start is at or before `byte`.
fn page_at(page_starts: &[usize], byte: usize) -> Option<i32> {
    if page_starts.is_empty() {
        return None;
    }
    let page = page_starts.partition_point(|&start| start <= byte).max(1);
    Some(i32::try_from(page).unwrap_or(i32::MAX))
}

/// Title of the last heading starting at or before `byte`.
fn section_at(headings: &[(usize, String)], byte: usize) -> Option<String> {
    let i = headings.partition_point(|(start, _)| *start <= byte);
    i.checked_sub(1).map(|i| headings[i].1.clone())
}

/// (byte offset of the heading line, title) for ATX (`## Title`) and setext (`Title` over
/// `===` / `---`) headings, skipping fenced code blocks. Sorted by offset.
fn markdown_headings(text: &str) -> Vec<(usize, String)> {
    let mut headings = Vec::new();
    let mut pos = 0usize;
    let mut fence: Option<(char, usize)> = None;
    // The previous line, when it could be the text of a setext heading.
    let mut paragraph_line: Option<(usize, &str)> = None;

    for raw in text.split_inclusive('\n') {
        let start = pos;
        pos += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent > 3 && fence.is_none() {
            // Indented code (or a paragraph continuation); never a heading.
            paragraph_line = None;
            continue;
        }
        let body = line.trim_start_matches(' ');

        if let Some((marker, count)) = fence_marker(body) {
            match fence {
                None => fence = Some((marker, count)),
                Some((open, open_count))
                    if open == marker && count >= open_count && body.trim_start_matches(marker).trim().is_empty() =>
                {
                    fence = None
                }
                Some(_) => {}
            }
            paragraph_line = None;
            continue;
        }
        if fence.is_some() {
            continue;
        }

        if let Some(title) = atx_heading(body) {
            if !title.is_empty() {
                headings.push((start, truncate_chars(title, MAX_SECTION_CHARS)));
            }
            paragraph_line = None;
            continue;
        }

        let trimmed = body.trim_end();
        if !trimmed.is_empty() && (trimmed.bytes().all(|b| b == b'=') || trimmed.bytes().all(|b| b == b'-')) {
            // A setext underline when it follows a paragraph line, else a thematic break.
            if let Some((line_start, title)) = paragraph_line.take() {
                headings.push((line_start, truncate_chars(title.trim(), MAX_SECTION_CHARS)));
            }
            continue;
        }

        // Only plain paragraph text can become a setext heading (not list items, quotes, tables).
        let plain = !trimmed.is_empty() && !trimmed.starts_with(['-', '*', '+', '>', '|', '<']);
        paragraph_line = if plain { Some((start, body)) } else { None };
    }
    headings
}

/// ```` ``` ```` / `~~~` fence opener or closer: (marker, run length).
fn fence_marker(line: &str) -> Option<(char, usize)> {
    let marker = line.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let count = line.chars().take_while(|c| *c == marker).count();
    (count >= 3).then_some((marker, count))
}

/// The title of an ATX heading line (`#`..`######` followed by a space or the end of the line),
/// without the optional closing `#` run.
fn atx_heading(line: &str) -> Option<&str> {
    let level = line.bytes().take_while(|b| *b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &line[level..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let rest = rest.trim();
    let without_closing = rest.trim_end_matches('#');
    if without_closing.is_empty() {
        return Some("");
    }
    if without_closing.ends_with([' ', '\t']) {
        return Some(without_closing.trim_end());
    }
    Some(rest)
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((byte, _)) => text[..byte].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(kind: DocKind, text: &str) -> Extracted {
        Extracted { kind, text: text.to_owned(), page_starts: Vec::new() }
    }

    fn char_slice(text: &str, start: usize, end: usize) -> String {
        text.chars().skip(start).take(end - start).collect()
    }

    fn sentences(n: usize) -> String {
        (0..n).map(|i| format!("Sentence number {i} has a few words in it.")).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn settings_are_clamped() {
        let s = ChunkSettings::new(10, 500);
        assert_eq!((s.size, s.overlap), (100, 49));
        let s = ChunkSettings::new(100_000, 100);
        assert_eq!((s.size, s.overlap), (8000, 100));
        let s = ChunkSettings::new(1000, 600);
        assert_eq!((s.size, s.overlap), (1000, 499));
        let s = ChunkSettings::new(1000, 0);
        assert_eq!((s.size, s.overlap), (1000, 0));
    }

    #[test]
    fn offsets_map_back_to_text() {
        let unit = "Ünïcödé façade — 日本語のテキスト, emoji 🎉 and plain words. ";
        let text = unit.repeat(30);
        for kind in [DocKind::Text, DocKind::Markdown] {
            let d = doc(kind, &text);
            let chunks = chunk(&d, ChunkSettings::new(100, 20));
            assert!(chunks.len() > 5);
            for (i, c) in chunks.iter().enumerate() {
                assert_eq!(c.index, i as i32);
                assert!(c.start < c.end);
                assert_eq!(char_slice(&d.text, c.start, c.end), c.text, "chunk {i}");
                assert!(c.text.chars().count() <= 100);
                assert_eq!(c.text, c.text.trim());
                assert_eq!(c.page, None);
            }
        }
    }

    #[test]
    fn overlap_is_respected() {
        let d = doc(DocKind::Text, &sentences(60));
        let chunks = chunk(&d, ChunkSettings::new(200, 50));
        assert!(chunks.len() > 3);
        let mut overlapping = 0;
        for pair in chunks.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert!(b.start > a.start, "chunks go forward");
            assert!(b.end > a.end);
            if b.start < a.end {
                overlapping += 1;
                assert!(a.end - b.start <= 50, "overlap {} too large", a.end - b.start);
            }
        }
        assert!(overlapping > 0, "some chunks overlap");

        let no_overlap = chunk(&d, ChunkSettings::new(200, 0));
        for pair in no_overlap.windows(2) {
            assert!(pair[1].start >= pair[0].end);
        }
    }

    #[test]
    fn sections_follow_markdown_headings() {
        let apple = "apple ".repeat(60);
        let banana = "banana ".repeat(60);
        let text = format!("# Intro\n\n{}\n\n## Details ##\n\n{}\n", apple.trim(), banana.trim());
        let d = doc(DocKind::Markdown, &text);
        let chunks = chunk(&d, ChunkSettings::new(100, 0));
        assert!(chunks.len() > 4);
        assert_eq!(chunks[0].section.as_deref(), Some("Intro"));
        for c in &chunks {
            let has_apple = c.text.contains("apple");
            let has_banana = c.text.contains("banana");
            if has_apple && !has_banana {
                assert_eq!(c.section.as_deref(), Some("Intro"), "{c:?}");
            }
            if has_banana && !has_apple {
                assert_eq!(c.section.as_deref(), Some("Details"), "{c:?}");
            }
        }
        // Plain text does not get sections from '#' lines.
        let plain = chunk(&doc(DocKind::Text, &text), ChunkSettings::new(100, 0));
        assert!(plain.iter().all(|c| c.section.is_none()));
    }

    #[test]
    fn heading_scanner() {
        let text = "Intro text\n# One\n```\n# not a heading\n```\nTitle Two\n=========\n\n####### seven\n#hashtag\n### Three ###\n    # indented code\n## C#\n";
        let found: Vec<String> = markdown_headings(text).into_iter().map(|(_, t)| t).collect();
        assert_eq!(found, vec!["One", "Title Two", "Three", "C#"]);
        let long = format!("# {}", "x".repeat(300));
        assert_eq!(markdown_headings(&long)[0].1.chars().count(), 255);
    }

    #[test]
    fn pages_from_page_starts() {
        let pages = ["alpha ".repeat(50), "beta ".repeat(50), "gamma ".repeat(50)];
        let mut text = String::new();
        let mut page_starts = Vec::new();
        for (i, page) in pages.iter().enumerate() {
            if i > 0 {
                text.push_str("\n\n");
            }
            page_starts.push(text.len());
            text.push_str(page.trim());
        }
        let d = Extracted { kind: DocKind::Pdf, text, page_starts };
        let chunks = chunk(&d, ChunkSettings::new(100, 10));
        assert!(chunks.len() >= 6);
        for c in &chunks {
            let expected = match c.text.split_whitespace().next() {
                Some("alpha") => 1,
                Some("beta") => 2,
                Some("gamma") => 3,
                other => panic!("unexpected chunk start {other:?}"),
            };
            assert_eq!(c.page, Some(expected), "{c:?}");
        }
        assert_eq!(chunks.first().and_then(|c| c.page), Some(1));
        assert_eq!(chunks.last().and_then(|c| c.page), Some(3));
    }

    #[test]
    fn deterministic_output() {
        let text = format!("# A\n\n{}\n\n## B\n\n{}", sentences(30), sentences(20));
        let d = doc(DocKind::Markdown, &text);
        let settings = ChunkSettings::new(150, 30);
        assert_eq!(chunk(&d, settings), chunk(&d, settings));
    }

    #[test]
    fn empty_and_short_documents() {
        assert!(chunk(&doc(DocKind::Text, "   \n "), ChunkSettings::default()).is_empty());
        let chunks = chunk(&doc(DocKind::Text, "  short text  "), ChunkSettings::default());
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].text, "short text");
        assert_eq!((chunks[0].start, chunks[0].end), (2, 12));
    }

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(content_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
