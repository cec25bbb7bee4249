//! Offline extractive answers: no language model, no network; the best passages quoted verbatim.

use super::{
    estimate_messages, estimate_tokens, render_messages, ChatAnswer, ChatError, ChatModel, ChatRequest, DeltaSink,
    Passage, Usage,
};

use async_trait::async_trait;

pub const EXTRACTIVE_MODEL_NAME: &str = "extractive";
pub(super) const EXTRACTIVE_INTRO: &str = "Here is what I found in our knowledge base:";
pub(super) const EXTRACTIVE_NOTHING_FOUND: &str = "I couldn't find anything about that in our knowledge base.";
/// Passages quoted at most.
const EXTRACTIVE_MAX_PASSAGES: usize = 3;
/// Passages scoring below this fraction of the best one are left out.
const EXTRACTIVE_RELATIVE_SCORE: f32 = 0.5;
/// Quotes are cut to about this many characters.
const EXTRACTIVE_MAX_CHARS: usize = 600;

/// Answers without a language model: the most relevant passages, quoted verbatim with their
/// `[n]` markers. No network; `extractive` is true in its answers. Tools and rounds are ignored
/// (it never calls tools).
#[derive(Clone, Copy, Debug, Default)]
pub struct ExtractiveModel;

#[async_trait]
impl ChatModel for ExtractiveModel {
    fn name(&self) -> &str {
        EXTRACTIVE_MODEL_NAME
    }

    async fn complete(&self, req: &ChatRequest, on_delta: DeltaSink<'_>) -> Result<ChatAnswer, ChatError> {
        let text = extractive_answer(&req.passages);
        for piece in stream_pieces(&text) {
            on_delta(piece);
        }
        let usage =
            Usage { input_tokens: estimate_messages(&render_messages(req)), output_tokens: estimate_tokens(&text) };
        Ok(ChatAnswer {
            text,
            model: EXTRACTIVE_MODEL_NAME.to_string(),
            usage,
            finish_reason: Some("stop".to_string()),
            extractive: true,
            tool_calls: Vec::new(),
        })
    }
}

/// The passages worth quoting: best first, at most [`EXTRACTIVE_MAX_PASSAGES`], none scoring
/// below half the best (NaN scores rank last), none empty.
fn select_passages(passages: &[Passage]) -> Vec<&Passage> {
    let mut ranked: Vec<(f32, &Passage)> = passages
        .iter()
        .filter(|p| !p.text.trim().is_empty())
        .map(|p| (if p.score.is_nan() { f32::NEG_INFINITY } else { p.score }, p))
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let Some(&(best, _)) = ranked.first() else {
        return Vec::new();
    };
    // With a non-positive best score "half the best" is meaningless; only the best is then kept.
    let threshold = if best > 0.0 { best * EXTRACTIVE_RELATIVE_SCORE } else { best };
    ranked.into_iter().filter(|(score, _)| *score >= threshold).take(EXTRACTIVE_MAX_PASSAGES).map(|(_, p)| p).collect()
}

pub(super) fn extractive_answer(passages: &[Passage]) -> String {
    let selected = select_passages(passages);
    if selected.is_empty() {
        return EXTRACTIVE_NOTHING_FOUND.to_string();
    }
    let quotes: Vec<String> =
        selected.iter().map(|p| quote(&excerpt(&p.text, EXTRACTIVE_MAX_CHARS), p.number)).collect();
    format!("{EXTRACTIVE_INTRO}\n\n{}", quotes.join("\n\n"))
}

/// `text` trimmed, cut to about `max` characters: at a sentence end or line break in the second
/// half of the allowance if there is one, else at a word boundary, with "…" marking the cut.
pub(super) fn excerpt(text: &str, max: usize) -> String {
    let text = text.trim();
    let Some((cut, _)) = text.char_indices().nth(max) else {
        return text.to_string();
    };
    let min = text.char_indices().nth(max / 2).map_or(0, |(i, _)| i);
    let head = &text[..cut];
    let sentence_end = head
        .char_indices()
        .rev()
        .take_while(|(i, _)| *i >= min)
        .find(|&(i, c)| c == '\n' || (matches!(c, '.' | '!' | '?') && text[i + 1..].starts_with(char::is_whitespace)))
        .map(|(i, c)| i + c.len_utf8());
    if let Some(end) = sentence_end {
        return format!("{} …", head[..end].trim_end());
    }
    let word_end = head.char_indices().rev().take_while(|(i, _)| *i >= min).find(|(_, c)| c.is_whitespace());
    match word_end {
        Some((i, _)) => format!("{}…", head[..i].trim_end()),
        None => format!("{}…", head.trim_end()),
    }
}

/// A Markdown block quote of `text` ending with the ` [n]` citation.
fn quote(text: &str, number: usize) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let line = line.trim_end();
            if line.is_empty() {
                ">".to_string()
            } else {
                format!("> {line}")
            }
        })
        .collect();
    format!("{} [{number}]", lines.join("\n"))
}

/// `text` in streaming pieces, one per line or sentence; the pieces concatenate to `text`.
pub(super) fn stream_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut after_sentence_end = false;
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        if c == '\n' || (after_sentence_end && c == ' ') {
            pieces.push(&text[start..end]);
            start = end;
        }
        after_sentence_end = matches!(c, '.' | '!' | '?');
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}
