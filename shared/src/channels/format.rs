//! Turns the AI's Markdown into each channel's dialect and cuts it into parts the provider takes.
//!
//! Replies are CommonMark-ish (the model's habits, not the spec), so a small hand-written scanner
//! is enough: blocks line by line (headings, lists, quotes, fences), inline markup by pairing
//! delimiters. Whatever does not pair is emitted literally, escaped where the dialect needs it:
//! Telegram rejects the whole message over one stray `*`.

use std::collections::HashMap;

use super::ChannelKind;

/// How a channel renders text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `*bold*` `_italic_` `~strike~` ```` ```mono``` ````; links as "text (url)".
    WhatsApp,
    /// Slack mrkdwn: `*bold*` `_italic_` `~strike~` `` `code` `` `<url|text>`; `& < >` as `&amp; &lt; &gt;`.
    SlackMrkdwn,
    /// Telegram MarkdownV2: `*bold*` `_italic_` `` `code` `` `[text](url)`; every other occurrence
    /// of ``_ * [ ] ( ) ~ ` > # + - = | { } . ! \`` escaped with a backslash (inside code only the
    /// backtick and backslash; inside the `(url)` part only `)` and backslash).
    TelegramMarkdownV2,
    /// Teams renders Markdown: kept, with `\n\n` between paragraphs so line breaks survive.
    TeamsMarkdown,
    /// Messenger, Instagram, email: markers removed, links as "text (url)", headings as plain lines.
    Plain,
}

/// The most one message may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Chars(usize),
    Bytes(usize),
}

pub fn dialect(kind: ChannelKind) -> Dialect {
    match kind {
        ChannelKind::Whatsapp => Dialect::WhatsApp,
        ChannelKind::Slack => Dialect::SlackMrkdwn,
        ChannelKind::Telegram => Dialect::TelegramMarkdownV2,
        ChannelKind::Teams => Dialect::TeamsMarkdown,
        ChannelKind::Messenger | ChannelKind::Instagram | ChannelKind::Email => Dialect::Plain,
    }
}

pub fn limit(kind: ChannelKind) -> Limit {
    match kind {
        ChannelKind::Whatsapp | ChannelKind::Telegram => Limit::Chars(4096),
        ChannelKind::Messenger => Limit::Chars(2000),
        ChannelKind::Instagram => Limit::Bytes(1000),
        // Slack recommends at most 4,000 and truncates above 40,000; escapes (`&amp;`) count too.
        ChannelKind::Slack => Limit::Chars(3000),
        ChannelKind::Teams => Limit::Chars(28000),
        ChannelKind::Email => Limit::Chars(100_000),
    }
}

/// Converts then splits: the parts to send, in order.
pub fn prepare(kind: ChannelKind, markdown: &str) -> Vec<String> {
    split(&convert(markdown, dialect(kind)), limit(kind))
}

// ---------------------------------------------------------------------------------------------
// Blocks

#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Item,
    Code,
}

/// Converts Markdown to the dialect. Total: unbalanced markers come out literally (escaped for
/// Telegram), an unclosed fence is closed at the end.
pub fn convert(markdown: &str, dialect: Dialect) -> String {
    // `None` is a blank line.
    let mut blocks: Vec<Option<(Block, String)>> = Vec::new();
    let mut fence: Option<Fence> = None;
    for line in markdown.lines() {
        if let Some(open) = &mut fence {
            if !open.closed_by(line) {
                open.lines.push(line);
                continue;
            }
            if let Some(code) = fence.take().and_then(|f| f.render(dialect)) {
                blocks.push(Some((Block::Code, code)));
            }
            continue;
        }
        match Fence::open(line) {
            Some(new) => fence = Some(new),
            None => blocks.push(convert_line(line, dialect)),
        }
    }
    if let Some(code) = fence.and_then(|f| f.render(dialect)) {
        blocks.push(Some((Block::Code, code)));
    }
    join(&blocks, dialect)
}

fn join(blocks: &[Option<(Block, String)>], d: Dialect) -> String {
    let mut out = String::new();
    let mut prev: Option<Block> = None;
    let mut gap = false;
    for block in blocks {
        let Some((kind, text)) = block.as_ref().filter(|(_, t)| !t.trim().is_empty()) else {
            gap = prev.is_some();
            continue;
        };
        if let Some(p) = prev {
            // Teams joins single-newline lines into one paragraph, so only list items stay tight.
            let tight = if d == Dialect::TeamsMarkdown { p == Block::Item && *kind == Block::Item } else { !gap };
            out.push_str(if tight { "\n" } else { "\n\n" });
        }
        out.push_str(text);
        prev = Some(*kind);
        gap = false;
    }
    out
}

struct Fence<'a> {
    marker: char,
    len: usize,
    lang: &'a str,
    lines: Vec<&'a str>,
}

impl<'a> Fence<'a> {
    fn open(line: &'a str) -> Option<Fence<'a>> {
        let t = line.trim_start();
        let marker = t.chars().next().filter(|&c| c == '`' || c == '~')?;
        let len = t.len() - t.trim_start_matches(marker).len();
        let info = t[len..].trim();
        // "```x``` inline" on one line is a code span, not a fence.
        if len < 3 || (marker == '`' && info.contains('`')) {
            return None;
        }
        Some(Fence { marker, len, lang: info.split_whitespace().next().unwrap_or(""), lines: Vec::new() })
    }

    fn closed_by(&self, line: &str) -> bool {
        let t = line.trim();
        let run = t.len() - t.trim_start_matches(self.marker).len();
        run >= self.len && run == t.len()
    }

    fn render(self, d: Dialect) -> Option<String> {
        let body = self.lines.join("\n");
        if body.trim().is_empty() {
            return None;
        }
        Some(match d {
            Dialect::WhatsApp => format!("```{body}```"),
            Dialect::SlackMrkdwn => format!("```\n{}\n```", slack_escape(&body)),
            Dialect::TelegramMarkdownV2 => {
                let lang = if self.lang.chars().all(|c| c.is_ascii_alphanumeric()) { self.lang } else { "" };
                format!("```{lang}\n{}\n```", telegram_code_escape(&body))
            }
            Dialect::TeamsMarkdown => format!("```{}\n{body}\n```", self.lang),
            Dialect::Plain => body,
        })
    }
}

fn convert_line(line: &str, d: Dialect) -> Option<(Block, String)> {
    let t = line.trim();
    if t.is_empty() {
        return None;
    }
    let plain = Ctx::default();
    if let Some((level, title)) = heading(t) {
        let title = match d {
            Dialect::TeamsMarkdown => format!("{} {}", "#".repeat(level), inline(title, d, plain)),
            Dialect::Plain => inline(title, d, plain),
            // No headings elsewhere: a bold line (its own `**` flattened into the outer bold).
            _ => format!("*{}*", inline(title, d, Ctx { bold: true, ..plain })),
        };
        return Some((Block::Text, title));
    }
    if is_rule(t) {
        return Some((Block::Text, if d == Dialect::TeamsMarkdown { "---" } else { "———" }.to_string()));
    }
    // Indentation is kept only on list items, where it means nesting.
    let indent = &line[..line.len() - line.trim_start().len()];
    if let Some(rest) = bullet(t) {
        let mark = if d == Dialect::TeamsMarkdown { "- " } else { "• " };
        return Some((Block::Item, format!("{indent}{mark}{}", inline(rest, d, plain))));
    }
    if let Some((number, rest)) = numbered(t) {
        return Some((Block::Item, format!("{indent}{} {}", escape(number, d), inline(rest, d, plain))));
    }
    if let Some(rest) = t.strip_prefix('>') {
        // Slack and Telegram quote with a bare `>` at the line start (so it is not escaped).
        let mark = if matches!(d, Dialect::SlackMrkdwn | Dialect::TelegramMarkdownV2) { ">" } else { "> " };
        return Some((Block::Text, format!("{mark}{}", inline(rest.trim_start(), d, plain))));
    }
    Some((Block::Text, inline(t, d, plain)))
}

/// `## Title` (a closing `##` dropped, but not the `#` of "C#").
fn heading(t: &str) -> Option<(usize, &str)> {
    let level = t.len() - t.trim_start_matches('#').len();
    let rest = &t[level..];
    if !(1..=6).contains(&level) || !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let rest = rest.trim();
    let stripped = rest.trim_end_matches('#');
    let title = if stripped.is_empty() || stripped.ends_with(' ') { stripped.trim_end() } else { rest };
    (!title.is_empty()).then_some((level, title))
}

fn is_rule(t: &str) -> bool {
    let marks: Vec<char> = t.chars().filter(|c| !c.is_whitespace()).collect();
    marks.len() >= 3 && ['-', '*', '_'].iter().any(|m| marks.iter().all(|c| c == m))
}

fn bullet(t: &str) -> Option<&str> {
    let mut chars = t.chars();
    let (mark, space) = (chars.next()?, chars.next()?);
    (matches!(mark, '-' | '*' | '+') && matches!(space, ' ' | '\t')).then(|| t[2..].trim_start())
}

/// `1. rest` or `1) rest`: the marker ("1.") and the rest.
fn numbered(t: &str) -> Option<(&str, &str)> {
    let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let rest = &t[digits..];
    let mut chars = rest.chars();
    let marked = matches!(chars.next(), Some('.' | ')')) && matches!(chars.next(), Some(' ' | '\t'));
    ((1..=9).contains(&digits) && marked).then(|| (&t[..=digits], rest[2..].trim_start()))
}

// ---------------------------------------------------------------------------------------------
// Inline markup

enum Node {
    Text(String),
    /// A character the source escaped with a backslash.
    Escaped(char),
    Code(String),
    Bold(Vec<Node>),
    Italic(Vec<Node>),
    Strike(Vec<Node>),
    Link(Vec<Node>, String),
}

/// Deeper nesting is left as text: keeps recursion bounded on hostile input.
const MAX_DEPTH: usize = 8;
/// How far a link's `]` or `)` is looked for (keeps `[[[[…` linear-ish).
const MAX_LINK: usize = 2048;

struct Scanner {
    chars: Vec<char>,
    /// At each backtick run that opens a code span: (index past the closing run, run length).
    spans: Vec<Option<(usize, usize)>>,
}

fn run_len(c: &[char], i: usize, end: usize, ch: char) -> usize {
    c[i..end].iter().take_while(|&&x| x == ch).count()
}

impl Scanner {
    fn new(text: &str) -> Scanner {
        let chars: Vec<char> = text.chars().collect();
        let mut runs = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '\\' && chars.get(i + 1).is_some_and(char::is_ascii_punctuation) {
                i += 2;
            } else if chars[i] == '`' {
                let len = run_len(&chars, i, chars.len(), '`');
                runs.push((i, len));
                i += len;
            } else {
                i += 1;
            }
        }
        // A code span runs to the next backtick run of the same length (precomputed: linear).
        let mut later: HashMap<usize, usize> = HashMap::new();
        let mut next_same = vec![None; runs.len()];
        for k in (0..runs.len()).rev() {
            next_same[k] = later.insert(runs[k].1, k);
        }
        let mut spans = vec![None; chars.len()];
        let mut k = 0;
        while k < runs.len() {
            match next_same[k] {
                Some(j) => {
                    spans[runs[k].0] = Some((runs[j].0 + runs[j].1, runs[k].1));
                    k = j + 1;
                }
                None => k += 1,
            }
        }
        Scanner { chars, spans }
    }

    fn escaped(&self, i: usize, end: usize) -> bool {
        self.chars[i] == '\\' && i + 1 < end && self.chars[i + 1].is_ascii_punctuation()
    }

    fn span(&self, i: usize, end: usize) -> Option<(usize, usize)> {
        self.spans[i].filter(|&(e, _)| e <= end)
    }

    fn parse(&self, start: usize, end: usize, depth: usize) -> Vec<Node> {
        let c = &self.chars;
        let mut nodes = Vec::new();
        let mut text = String::new();
        // Per delimiter: a closer search from here on failed, so later openers cannot pair either.
        let mut failed = [usize::MAX; 5];
        let nest = depth < MAX_DEPTH;
        let mut i = start;
        while i < end {
            let ch = c[i];
            let found = if self.escaped(i, end) {
                Some((Node::Escaped(c[i + 1]), i + 2))
            } else if ch == '`' {
                self.code(i, end)
            } else if nest && matches!(ch, '*' | '_' | '~') {
                self.emphasis(i, end, depth, &mut failed)
            } else if nest && (ch == '[' || (ch == '!' && i + 1 < end && c[i + 1] == '[')) {
                self.link(if ch == '!' { i + 1 } else { i }, end, depth)
            } else if ch == '<' {
                self.autolink(i, end)
            } else if let Some(url_end) = self.bare_url(i, end) {
                text.extend(&c[i..url_end]);
                i = url_end;
                continue;
            } else {
                None
            };
            match found {
                Some((node, next)) => {
                    if !text.is_empty() {
                        nodes.push(Node::Text(std::mem::take(&mut text)));
                    }
                    nodes.push(node);
                    i = next;
                }
                None => {
                    // A backtick run stays whole, so its tail cannot open a span of its own.
                    let n = if ch == '`' { run_len(c, i, end, '`') } else { 1 };
                    text.extend(&c[i..i + n]);
                    i += n;
                }
            }
        }
        if !text.is_empty() {
            nodes.push(Node::Text(text));
        }
        nodes
    }

    fn code(&self, i: usize, end: usize) -> Option<(Node, usize)> {
        let (close, len) = self.span(i, end)?;
        let inner: String = self.chars.get(i + len..close.checked_sub(len)?)?.iter().collect();
        // CommonMark drops one space on each side ("`` `x` ``" shows "`x`").
        let padded = inner.len() >= 2 && inner.starts_with(' ') && inner.ends_with(' ') && !inner.trim().is_empty();
        let inner = if padded { inner[1..inner.len() - 1].to_string() } else { inner };
        Some((Node::Code(inner), close))
    }

    fn emphasis(&self, i: usize, end: usize, depth: usize, failed: &mut [usize; 5]) -> Option<(Node, usize)> {
        let c = &self.chars;
        let ch = c[i];
        let want = if run_len(c, i, end, ch) >= 2 { 2 } else { 1 };
        let slot = match (ch, want) {
            ('*', 2) => 0,
            ('_', 2) => 1,
            ('*', _) => 2,
            ('_', _) => 3,
            ('~', 2) => 4,
            _ => return None, // a single `~` is just a tilde ("~5 min")
        };
        let body = i + want;
        // An opener touches its content; `_` inside a word (snake_case) is not markup.
        let opens = body < end && !c[body].is_whitespace() && !(ch == '_' && i > 0 && c[i - 1].is_alphanumeric());
        if !opens || body >= failed[slot] {
            return None;
        }
        let Some(close) = self.closer(ch, want, body, end) else {
            failed[slot] = body;
            return None;
        };
        let inner = self.parse(body, close, depth + 1);
        let node = match (ch, want) {
            ('~', _) => Node::Strike(inner),
            (_, 2) => Node::Bold(inner),
            _ => Node::Italic(inner),
        };
        Some((node, close + want))
    }

    /// Where the closing delimiter of `want` × `ch` starts, looking from `from`.
    fn closer(&self, ch: char, want: usize, from: usize, end: usize) -> Option<usize> {
        let c = &self.chars;
        let mut j = from;
        while j < end {
            if self.escaped(j, end) {
                j += 2;
                continue;
            }
            if let Some((e, _)) = self.span(j, end) {
                j = e;
                continue;
            }
            if c[j] != ch {
                j += 1;
                continue;
            }
            let run = run_len(c, j, end, ch);
            // A single marker skips `**` pairs (bold inside italic); `***` closes both.
            let fits = if want == 2 { run >= 2 } else { run != 2 };
            let left_ok = !c[j - 1].is_whitespace();
            let right_ok = ch != '_' || !c.get(j + run).is_some_and(|x| x.is_alphanumeric());
            if fits && left_ok && right_ok && j + run - want > from {
                return Some(j + run - want);
            }
            j += run;
        }
        None
    }

    fn link(&self, open: usize, end: usize, depth: usize) -> Option<(Node, usize)> {
        let c = &self.chars;
        let close = self.matching(open + 1, end.min(open + 1 + MAX_LINK), '[', ']')?;
        if close + 1 >= end || c[close + 1] != '(' {
            return None; // "[1]" citations stay text
        }
        let paren = self.matching(close + 2, end.min(close + 2 + MAX_LINK), '(', ')')?;
        let dest: String = c[close + 2..paren].iter().collect();
        // `[t](<url> "title")`: the URL is the first word, without angle brackets.
        let url = dest.split_whitespace().next().unwrap_or("").trim_start_matches('<').trim_end_matches('>');
        if url.is_empty() {
            return None;
        }
        Some((Node::Link(self.parse(open + 1, close, depth + 1), url.to_string()), paren + 1))
    }

    /// The index of the `close` that balances an already opened `open`, before `limit`.
    fn matching(&self, from: usize, limit: usize, open: char, close: char) -> Option<usize> {
        let mut nested = 0usize;
        let mut j = from;
        while j < limit {
            if self.escaped(j, limit) {
                j += 2;
                continue;
            }
            if let Some((e, _)) = self.span(j, limit) {
                j = e;
                continue;
            }
            let ch = self.chars[j];
            if ch == close {
                if nested == 0 {
                    return Some(j);
                }
                nested -= 1;
            } else if ch == open {
                nested += 1;
            }
            j += 1;
        }
        None
    }

    /// `<https://…>`
    fn autolink(&self, i: usize, end: usize) -> Option<(Node, usize)> {
        let c = &self.chars;
        let close = (i + 1..end.min(i + MAX_LINK)).find(|&k| c[k] == '>' || c[k] == '<' || c[k].is_whitespace())?;
        let url: String = c[i + 1..close].iter().collect();
        let lower = url.to_ascii_lowercase();
        if c[close] != '>' || !["http://", "https://", "mailto:"].iter().any(|p| lower.starts_with(p)) {
            return None;
        }
        Some((Node::Link(vec![Node::Text(url.clone())], url), close + 1))
    }

    /// A bare URL is kept verbatim so `_` or `*` inside it are not taken for markup; trailing
    /// punctuation belongs to the sentence (or closes markup around the URL).
    fn bare_url(&self, i: usize, end: usize) -> Option<usize> {
        let c = &self.chars;
        let starts = |p: &str| p.chars().enumerate().all(|(k, x)| i + k < end && c[i + k] == x);
        if c[i] != 'h' || (i > 0 && c[i - 1].is_alphanumeric()) || !(starts("http://") || starts("https://")) {
            return None;
        }
        let mut k = (i..end).find(|&k| c[k].is_whitespace()).unwrap_or(end);
        while k > i + 8 && matches!(c[k - 1], '.' | ',' | ';' | ':' | '!' | '?' | ')' | '*' | '_' | '~' | '\'' | '"') {
            k -= 1;
        }
        Some(k)
    }
}

/// What encloses a node: bold inside bold (a heading's own `**`) must not close the outer one.
#[derive(Clone, Copy, Default)]
struct Ctx {
    bold: bool,
    italic: bool,
    strike: bool,
    link: bool,
}

fn inline(text: &str, d: Dialect, ctx: Ctx) -> String {
    let scanner = Scanner::new(text);
    let nodes = scanner.parse(0, scanner.chars.len(), 0);
    let mut out = String::new();
    render(&nodes, d, ctx, &mut out);
    out
}

fn render(nodes: &[Node], d: Dialect, ctx: Ctx, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => push_escaped(out, t, d),
            Node::Escaped(ch) if d == Dialect::TeamsMarkdown => {
                out.push('\\');
                out.push(*ch);
            }
            Node::Escaped(ch) => push_escaped(out, ch.encode_utf8(&mut [0; 4]), d),
            Node::Code(code) => push_code(out, code, d),
            Node::Bold(inner) => {
                let mark = match d {
                    Dialect::TeamsMarkdown => "**",
                    Dialect::Plain => "",
                    _ => "*",
                };
                wrap(out, inner, d, Ctx { bold: true, ..ctx }, if ctx.bold { "" } else { mark });
            }
            Node::Italic(inner) => {
                let mark = if d == Dialect::Plain || ctx.italic { "" } else { "_" };
                wrap(out, inner, d, Ctx { italic: true, ..ctx }, mark);
            }
            Node::Strike(inner) => {
                let mark = match d {
                    Dialect::TeamsMarkdown => "~~",
                    Dialect::Plain => "",
                    _ => "~",
                };
                wrap(out, inner, d, Ctx { strike: true, ..ctx }, if ctx.strike { "" } else { mark });
            }
            Node::Link(label, url) => push_link(out, label, url, d, ctx),
        }
    }
}

fn wrap(out: &mut String, inner: &[Node], d: Dialect, ctx: Ctx, mark: &str) {
    out.push_str(mark);
    render(inner, d, ctx, out);
    out.push_str(mark);
}

const TELEGRAM_SPECIAL: &str = "_*[]()~`>#+-=|{}.!\\";

fn push_escaped(out: &mut String, text: &str, d: Dialect) {
    match d {
        Dialect::TelegramMarkdownV2 => {
            for ch in text.chars() {
                if TELEGRAM_SPECIAL.contains(ch) {
                    out.push('\\');
                }
                out.push(ch);
            }
        }
        Dialect::SlackMrkdwn => out.push_str(&slack_escape(text)),
        _ => out.push_str(text),
    }
}

fn escape(text: &str, d: Dialect) -> String {
    let mut out = String::new();
    push_escaped(&mut out, text, d);
    out
}

fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn telegram_code_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('`', "\\`")
}

fn push_code(out: &mut String, code: &str, d: Dialect) {
    let rendered = match d {
        Dialect::WhatsApp => format!("```{code}```"),
        Dialect::SlackMrkdwn => format!("`{}`", slack_escape(code)),
        Dialect::TelegramMarkdownV2 => format!("`{}`", telegram_code_escape(code)),
        Dialect::TeamsMarkdown if code.contains('`') => format!("`` {code} ``"),
        Dialect::TeamsMarkdown => format!("`{code}`"),
        Dialect::Plain => code.to_string(),
    };
    out.push_str(&rendered);
}

fn push_link(out: &mut String, label: &[Node], url: &str, d: Dialect, ctx: Ctx) {
    let text = plain_text(label);
    let bare = text.trim().is_empty() || text == url;
    let lower = url.to_ascii_lowercase();
    let absolute = ["http://", "https://", "mailto:", "tg://"].iter().any(|p| lower.starts_with(p));
    match d {
        Dialect::TeamsMarkdown => {
            out.push('[');
            if bare {
                out.push_str(url)
            } else {
                render(label, d, ctx, out)
            }
            out.push_str(&format!("]({url})"));
        }
        Dialect::SlackMrkdwn if absolute => {
            let target = slack_escape(&url.replace('|', "%7C"));
            if bare {
                out.push_str(&format!("<{target}>"));
            } else {
                out.push_str(&format!("<{target}|{}>", slack_escape(&text)));
            }
        }
        // Telegram cannot nest links, and rejects a relative one.
        Dialect::TelegramMarkdownV2 if absolute && !ctx.link => {
            out.push('[');
            if bare {
                push_escaped(out, url, d)
            } else {
                render(label, d, Ctx { link: true, ..ctx }, out)
            }
            out.push_str(&format!("]({})", url.replace('\\', "\\\\").replace(')', "\\)")));
        }
        _ if bare => push_escaped(out, url, d),
        _ => {
            render(label, d, ctx, out);
            push_escaped(out, &format!(" ({url})"), d);
        }
    }
}

fn plain_text(nodes: &[Node]) -> String {
    let mut out = String::new();
    for node in nodes {
        match node {
            Node::Text(t) | Node::Code(t) => out.push_str(t),
            Node::Escaped(ch) => out.push(*ch),
            Node::Bold(inner) | Node::Italic(inner) | Node::Strike(inner) => out.push_str(&plain_text(inner)),
            Node::Link(label, url) => {
                let t = plain_text(label);
                out.push_str(if t.trim().is_empty() { url } else { &t });
            }
        }
    }
    out
}

mod split;
pub use split::split;

#[cfg(test)]
mod tests;
