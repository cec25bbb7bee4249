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

// ---------------------------------------------------------------------------------------------
// Splitting

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

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Dialect; 5] =
        [Dialect::WhatsApp, Dialect::SlackMrkdwn, Dialect::TelegramMarkdownV2, Dialect::TeamsMarkdown, Dialect::Plain];

    const SAMPLE: &str = "# Refunds\nYou can get a **full refund** within *30 days*.\nUse `refund-id` here.\n\n\
                          - Visit [our page](https://ex.com/r)\n- Call us\n1. Done!";

    #[test]
    fn converts_each_dialect() {
        let cases = [
            (
                Dialect::WhatsApp,
                "*Refunds*\nYou can get a *full refund* within _30 days_.\nUse ```refund-id``` here.\n\n\
                 • Visit our page (https://ex.com/r)\n• Call us\n1. Done!",
            ),
            (
                Dialect::SlackMrkdwn,
                "*Refunds*\nYou can get a *full refund* within _30 days_.\nUse `refund-id` here.\n\n\
                 • Visit <https://ex.com/r|our page>\n• Call us\n1. Done!",
            ),
            (
                Dialect::TelegramMarkdownV2,
                "*Refunds*\nYou can get a *full refund* within _30 days_\\.\nUse `refund-id` here\\.\n\n\
                 • Visit [our page](https://ex.com/r)\n• Call us\n1\\. Done\\!",
            ),
            (
                Dialect::TeamsMarkdown,
                "# Refunds\n\nYou can get a **full refund** within _30 days_.\n\nUse `refund-id` here.\n\n\
                 - Visit [our page](https://ex.com/r)\n- Call us\n1. Done!",
            ),
            (
                Dialect::Plain,
                "Refunds\nYou can get a full refund within 30 days.\nUse refund-id here.\n\n\
                 • Visit our page (https://ex.com/r)\n• Call us\n1. Done!",
            ),
        ];
        for (d, want) in cases {
            assert_eq!(convert(SAMPLE, d), want, "{d:?}");
        }
        assert_eq!(convert("## **Hours** ##", Dialect::WhatsApp), "*Hours*");
    }

    #[test]
    fn converts_fences() {
        let src = "Try:\n```rust\nlet x = a_b * 2;\n```\nDone.";
        let cases = [
            (Dialect::WhatsApp, "Try:\n```let x = a_b * 2;```\nDone."),
            (Dialect::SlackMrkdwn, "Try:\n```\nlet x = a_b * 2;\n```\nDone."),
            (Dialect::TelegramMarkdownV2, "Try:\n```rust\nlet x = a_b * 2;\n```\nDone\\."),
            (Dialect::TeamsMarkdown, "Try:\n\n```rust\nlet x = a_b * 2;\n```\n\nDone."),
            (Dialect::Plain, "Try:\nlet x = a_b * 2;\nDone."),
        ];
        for (d, want) in cases {
            assert_eq!(convert(src, d), want, "{d:?}");
        }
        // An unclosed fence is closed at the end rather than leaving Telegram an open entity.
        assert_eq!(convert("```\nx", Dialect::TelegramMarkdownV2), "```\nx\n```");
    }

    #[test]
    fn escapes_telegram_specials() {
        assert_eq!(
            convert("Price: 5.00 (incl. tax) - see #faq!", Dialect::TelegramMarkdownV2),
            "Price: 5\\.00 \\(incl\\. tax\\) \\- see \\#faq\\!"
        );
        // Inside code only ` and \ are escaped; inside the URL only ) and \.
        assert_eq!(
            convert("Run `a-b\\c` or [docs](https://x.com/a_(b))", Dialect::TelegramMarkdownV2),
            "Run `a-b\\\\c` or [docs](https://x.com/a_(b\\))"
        );
    }

    #[test]
    fn escapes_slack_control_chars() {
        assert_eq!(convert("<b> & co", Dialect::SlackMrkdwn), "&lt;b&gt; &amp; co");
    }

    #[test]
    fn unbalanced_markers_are_literal() {
        assert_eq!(convert("**bold", Dialect::TelegramMarkdownV2), "\\*\\*bold");
        assert_eq!(convert("**bold", Dialect::WhatsApp), "**bold");
        assert_eq!(convert("snake_case and 2 * 3", Dialect::SlackMrkdwn), "snake_case and 2 * 3");
        assert_eq!(convert("see [1] and [2]", Dialect::TelegramMarkdownV2), "see \\[1\\] and \\[2\\]");
    }

    /// Random marker soup: conversion never panics, and splitting keeps every part within the
    /// limit, trimmed and non-empty, losing nothing but whitespace.
    #[test]
    fn never_panics_and_splits_within_limits() {
        const PIECES: [&str; 24] = [
            "*", "_", "~", "`", "[", "]", "(", ")", "\\", "<", ">", "#", "-", " ", "\n", "a", "é", "😀", "!", ".",
            "https://", "1. ", "```", "\u{200D}",
        ];
        let fixed = ["***x***", "[a](", "<http://x", "**a*b**c", "[[[[x](u)](v)]", "_a_b_", "~~~~", "\\", "# "];
        let mut inputs: Vec<String> = fixed.iter().map(|s| s.to_string()).collect();
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize
        };
        for _ in 0..3000 {
            let len = next() % 40;
            inputs.push((0..len).map(|_| PIECES[next() % PIECES.len()]).collect());
        }
        let squeeze = |s: &str| s.split_whitespace().collect::<String>();
        for input in &inputs {
            for d in ALL {
                let out = convert(input, d);
                for limit in [Limit::Chars(7), Limit::Bytes(9)] {
                    let parts = split(&out, limit);
                    for p in &parts {
                        assert!(!p.is_empty() && p.trim() == p, "{input:?} {d:?}: {p:?}");
                        match limit {
                            Limit::Chars(n) => assert!(p.chars().count() <= n),
                            Limit::Bytes(n) => assert!(p.len() <= n),
                        }
                    }
                    assert_eq!(squeeze(&parts.concat()), squeeze(&out), "{input:?} {d:?}");
                }
            }
        }
    }

    #[test]
    fn splits_long_text_at_sentence_ends() {
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(223);
        let text = text.trim_end();
        assert!(text.chars().count() >= 10_000);
        let parts = split(text, Limit::Chars(4096));
        assert_eq!(parts.len(), 3);
        for p in &parts {
            assert!(p.chars().count() <= 4096);
            assert!(p.ends_with('.'), "{p}");
        }
        assert_eq!(parts.join(" "), text);
    }

    #[test]
    fn splits_multibyte_text_by_bytes() {
        let text = "Café très bien 😀 ".repeat(200);
        let parts = split(&text, Limit::Bytes(1000));
        assert!(parts.len() >= 5);
        assert!(parts.iter().all(|p| p.len() <= 1000 && std::str::from_utf8(p.as_bytes()).is_ok()));
        let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(words(&parts.join(" ")), words(&text));

        let dense = "é😀".repeat(500);
        let parts = split(&dense, Limit::Bytes(1000));
        assert!(parts.iter().all(|p| p.len() <= 1000));
        assert_eq!(parts.concat(), dense);
    }

    #[test]
    fn hard_cuts_text_without_spaces() {
        let parts = split(&"x".repeat(10_000), Limit::Chars(4096));
        assert_eq!(parts.iter().map(String::len).collect::<Vec<_>>(), vec![4096, 4096, 1808]);
    }

    #[test]
    fn never_ends_a_part_on_an_escaping_backslash() {
        let text = convert(&"a.".repeat(3000), Dialect::TelegramMarkdownV2);
        assert!(text.starts_with("a\\.a\\."));
        for n in 4090..4100 {
            let parts = split(&text, Limit::Chars(n));
            for p in &parts {
                assert!(p.chars().count() <= n);
                let trailing = p.chars().rev().take_while(|&c| c == '\\').count();
                assert_eq!(trailing % 2, 0, "a part of limit {n} ends with a lone backslash");
            }
            assert_eq!(parts.concat(), text);
        }
    }

    #[test]
    fn prefers_cutting_before_an_entity() {
        assert_eq!(split("aaaa bbbb *cccc dddd eeee*", Limit::Chars(20)), vec!["aaaa bbbb", "*cccc dddd eeee*"]);
        assert!(split(" \n\t ", Limit::Chars(10)).is_empty());
    }

    #[test]
    fn prepares_per_channel() {
        assert_eq!(dialect(ChannelKind::Instagram), Dialect::Plain);
        assert_eq!(limit(ChannelKind::Instagram), Limit::Bytes(1000));
        assert_eq!(prepare(ChannelKind::Telegram, SAMPLE), vec![convert(SAMPLE, Dialect::TelegramMarkdownV2)]);
        assert!(prepare(ChannelKind::Slack, " \n ").is_empty());
    }
}
