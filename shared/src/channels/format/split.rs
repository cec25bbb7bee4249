//! Splitting a converted reply into parts within the channel's limit.

use super::Limit;

/// Splits text into parts each within the limit, preferring (in order) paragraph breaks, sentence
/// ends, line breaks, spaces, and only then a hard cut on a char boundary. Never splits inside a
/// UTF-8 char nor between a backslash and the char it escapes; avoids cutting inside an entity
/// (`*x*`, `` `x` ``, `[x](y)`, …) by cutting before its start. Parts are trimmed and non-empty.
/// Only a single character wider than a byte limit can exceed it (it has to go somewhere).
pub fn split(text: &str, limit: Limit) -> Vec<String> {
    let entities = entity_ranges(text);
    let mut parts = Vec::new();
    let mut start = skip_space(text, 0);
    while start < text.len() {
        let end = window_end(text, start, limit);
        let cut = if end >= text.len() { text.len() } else { choose_cut(text, start, end, &entities) };
        let part = text[start..cut].trim();
        if !part.is_empty() {
            parts.push(part.to_string());
        }
        start = skip_space(text, cut);
    }
    parts
}

fn skip_space(text: &str, from: usize) -> usize {
    text.len() - text[from..].trim_start().len()
}

/// The end of the longest prefix of `text[start..]` within the limit (at least one char).
fn window_end(text: &str, start: usize, limit: Limit) -> usize {
    let rest = &text[start..];
    match limit {
        Limit::Chars(n) => rest.char_indices().nth(n.max(1)).map_or(text.len(), |(k, _)| start + k),
        Limit::Bytes(n) if rest.len() <= n => text.len(),
        Limit::Bytes(n) => {
            let mut end = start + n;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            if end == start {
                end += rest.chars().next().map_or(0, char::len_utf8);
            }
            end
        }
    }
}

/// Where to cut the window `text[start..end]` (a position in `start + 1..=end`).
fn choose_cut(text: &str, start: usize, end: usize, entities: &[(usize, usize)]) -> usize {
    const PARAGRAPH: usize = 0;
    const SENTENCE: usize = 1;
    const LINE: usize = 2;
    const SPACE: usize = 3;
    // A break in the first third of the window would make a stub part; used only if nothing later.
    let min_fill = start + (end - start) / 3;
    // For each kind, the last cut [past min_fill outside entities, outside entities, anywhere].
    let mut best = [[None::<usize>; 3]; 4];
    let mut note = |kind: usize, pos: usize| {
        if pos <= start || pos > end || odd_backslashes(text, pos) {
            return;
        }
        best[kind][2] = Some(pos);
        if entity_at(entities, pos).is_none() {
            best[kind][1] = Some(pos);
            if pos >= min_fill {
                best[kind][0] = Some(pos);
            }
        }
    };
    let mut prev = None;
    for (k, ch) in text[start..end].char_indices() {
        let pos = start + k;
        match ch {
            '\n' => {
                if prev == Some('\n') {
                    note(PARAGRAPH, pos - 1);
                }
                note(LINE, pos);
            }
            '。' | '！' | '？' => note(SENTENCE, pos + ch.len_utf8()),
            '.' | '!' | '?' if text[pos + 1..].starts_with(char::is_whitespace) => note(SENTENCE, pos + 1),
            _ if ch.is_whitespace() => note(SPACE, pos),
            _ => {}
        }
        prev = Some(ch);
    }
    let pick = |tier: usize| best.iter().find_map(|kind| kind[tier]);
    if let Some(cut) = pick(0) {
        return cut;
    }
    // The window ends inside an entity: cutting before it keeps its markers paired.
    if let Some((s, _)) = entity_at(entities, end).filter(|&(s, _)| s > start) {
        return s;
    }
    pick(1).or_else(|| pick(2)).unwrap_or_else(|| hard_cut(text, start, end))
}

/// A cut at `end`, moved back off an escaping backslash or the middle of an emoji sequence.
fn hard_cut(text: &str, start: usize, end: usize) -> usize {
    let mut pos = end;
    for _ in 0..8 {
        if pos <= start {
            break;
        }
        if !odd_backslashes(text, pos) && !splits_cluster(text, pos) {
            return pos;
        }
        pos = text[..pos].char_indices().next_back().map_or(start, |(k, _)| k);
    }
    if odd_backslashes(text, end) && end - 1 > start {
        end - 1
    } else {
        end
    }
}

/// Whether the text before `pos` ends in an odd run of backslashes (the last one escapes `pos`).
fn odd_backslashes(text: &str, pos: usize) -> bool {
    text.as_bytes()[..pos].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

/// Whether `pos` falls inside what reads as one character: before a joiner, variation selector,
/// skin tone or combining mark, or right after a zero-width joiner.
fn splits_cluster(text: &str, pos: usize) -> bool {
    let joins = text[pos..].chars().next().is_some_and(|c| {
        matches!(c, '\u{200D}' | '\u{FE0E}' | '\u{FE0F}' | '\u{20E3}' | '\u{0300}'..='\u{036F}')
            || matches!(c, '\u{1F3FB}'..='\u{1F3FF}' | '\u{E0020}'..='\u{E007F}')
    });
    joins || text[..pos].ends_with('\u{200D}')
}

/// The entity (start, end) strictly containing `pos`, if any.
fn entity_at(entities: &[(usize, usize)], pos: usize) -> Option<(usize, usize)> {
    let idx = entities.partition_point(|&(s, _)| s < pos);
    entities[..idx].last().copied().filter(|&(_, e)| pos < e)
}

/// Byte ranges of the entities in converted text (`*x*`, `_x_`, `~x~`, `` `x` ``, ```` ```x``` ````,
/// `[x](y)`, `<x>`), sorted and disjoint. Cutting inside one leaves an unpaired marker, which
/// Telegram rejects outright; elsewhere it is merely untidy.
fn entity_ranges(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut seeker = Seeker { b, dead: [(0, 0); 8] };
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let found = match b[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b'`' if b[i..].starts_with(b"```") => seeker.seek(0, i + 3, b"```", true, |_| true),
            b'`' => seeker.seek(1, i + 1, b"`", false, |_| true),
            m @ (b'*' | b'_' | b'~') if opens(b, i) => {
                let slot = 2 + usize::from(m == b'_') + 2 * usize::from(m == b'~');
                seeker.seek(slot, i + 1, &[m], false, |j| closes(b, j))
            }
            b'[' => seeker
                .seek(5, i + 1, b"]", false, |_| true)
                .filter(|&e| b.get(e) == Some(&b'('))
                .and_then(|e| seeker.seek(6, e + 1, b")", false, |_| true)),
            b'<' => seeker.seek(7, i + 1, b">", false, |_| true),
            _ => None,
        };
        match found {
            Some(e) => {
                ranges.push((i, e));
                i = e;
            }
            None => i += 1,
        }
    }
    ranges
}

fn opens(b: &[u8], i: usize) -> bool {
    let touches = b.get(i + 1).is_some_and(|x| !x.is_ascii_whitespace());
    touches && !(b[i] == b'_' && i > 0 && b[i - 1].is_ascii_alphanumeric())
}

fn closes(b: &[u8], j: usize) -> bool {
    let touches = j > 0 && !b[j - 1].is_ascii_whitespace();
    touches && !(b[j] == b'_' && b.get(j + 1).is_some_and(u8::is_ascii_alphanumeric))
}

/// Finds closing markers, remembering where a search failed: a later search starting inside
/// that stretch fails the same way (keeps pathological input linear).
struct Seeker<'a> {
    b: &'a [u8],
    /// Per marker slot: searches starting in `p..q` find nothing.
    dead: [(usize, usize); 8],
}

impl Seeker<'_> {
    /// The index just past the next unescaped `pat` at or after `from` that `ok` accepts; a
    /// single-line marker stops at a newline.
    fn seek(
        &mut self,
        slot: usize,
        from: usize,
        pat: &[u8],
        multiline: bool,
        ok: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let (p, q) = self.dead[slot];
        if (p..q).contains(&from) {
            return None;
        }
        let b = self.b;
        let mut j = from;
        while j < b.len() {
            if b[j] == b'\\' {
                j += 2;
                continue;
            }
            if b[j] == b'\n' && !multiline {
                break;
            }
            if b[j..].starts_with(pat) && ok(j) {
                return Some(j + pat.len());
            }
            j += 1;
        }
        self.dead[slot] = (from, j.min(b.len()));
        None
    }
}
