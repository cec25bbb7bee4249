//! The running summary of a long conversation: what has fallen out of the model's history
//! window, one line per message, kept short. It is extractive (the first sentence of each
//! message, clipped), so it costs no model call, adds nothing to the turn's latency budget
//! worth measuring, and cannot invent what was said. The opening line (usually the
//! customer's original problem) is always kept; when the summary grows past its budget the
//! oldest lines after it give way.

/// Upper bound of the stored summary, in characters.
pub const MAX_SUMMARY_CHARS: usize = 1500;
/// Characters kept of one message.
const MAX_LINE_CHARS: usize = 200;
const ELIDED: &str = "…";

/// One message that left the history window.
pub struct Dropped<'a> {
    pub role: &'a str,
    pub content: &'a str,
}

/// The summary with `dropped` (oldest first) folded in after `previous`.
pub fn extend(previous: Option<&str>, dropped: &[Dropped<'_>]) -> String {
    let mut lines: Vec<String> =
        previous.map(|p| p.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()).unwrap_or_default();
    lines.extend(dropped.iter().filter_map(line));
    let total = |lines: &[String]| lines.iter().map(|l| l.chars().count() + 1).sum::<usize>();
    if total(&lines) > MAX_SUMMARY_CHARS && lines.len() > 2 {
        // Keep the opening line, mark the gap once, then the newest lines that fit.
        let first = lines[0].clone();
        let mut kept: Vec<String> = Vec::new();
        let mut budget = MAX_SUMMARY_CHARS.saturating_sub(first.chars().count() + ELIDED.len() + 2);
        for l in lines[1..].iter().rev().filter(|l| l.as_str() != ELIDED) {
            let n = l.chars().count() + 1;
            if n > budget {
                break;
            }
            budget -= n;
            kept.push(l.clone());
        }
        kept.reverse();
        lines = std::iter::once(first).chain(std::iter::once(ELIDED.to_string())).chain(kept).collect();
    }
    lines.join("\n")
}

fn line(m: &Dropped<'_>) -> Option<String> {
    let who = match m.role {
        "user" => "Customer",
        "assistant" => "Assistant",
        "human_agent" => "Support agent",
        _ => return None,
    };
    let text = m.content.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return None;
    }
    Some(format!("{who}: {}", clip(first_sentence(&text), MAX_LINE_CHARS)))
}

/// Up to and including the first sentence end followed by a space (or the whole text).
fn first_sentence(text: &str) -> &str {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if matches!(b, b'.' | b'?' | b'!') && bytes.get(i + 1) == Some(&b' ') && i >= 20 {
            return &text[..=i];
        }
    }
    text
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max - 1).collect();
    s.push_str(ELIDED);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d<'a>(role: &'a str, content: &'a str) -> Dropped<'a> {
        Dropped { role, content }
    }

    #[test]
    fn one_line_per_message_first_sentence_only() {
        let s = extend(
            None,
            &[
                d("user", "My parcel   never arrived. It was order 1234 and I need it by Friday."),
                d("assistant", "Sorry to hear that! Parcels usually arrive within five days."),
                d("system", "internal"),
            ],
        );
        assert_eq!(s, "Customer: My parcel never arrived.\nAssistant: Sorry to hear that! Parcels usually arrive within five days.");
    }

    #[test]
    fn appends_to_the_previous_summary() {
        let s = extend(Some("Customer: Hello there, I need help."), &[d("human_agent", "Happy to help you today.")]);
        assert_eq!(s, "Customer: Hello there, I need help.\nSupport agent: Happy to help you today.");
    }

    #[test]
    fn stays_within_budget_keeping_the_opening_and_the_newest() {
        let mut s = extend(None, &[d("user", "The original problem: my invoice shows the wrong VAT number.")]);
        for i in 0..100 {
            s = extend(
                Some(&s),
                &[d("assistant", &format!("Answer number {i} with some words to take up space here."))],
            );
        }
        assert!(s.chars().count() <= MAX_SUMMARY_CHARS, "{}", s.chars().count());
        let lines: Vec<&str> = s.lines().collect();
        assert!(lines[0].contains("wrong VAT number"));
        assert_eq!(lines[1], ELIDED);
        assert_eq!(lines.iter().filter(|l| **l == ELIDED).count(), 1, "one gap marker");
        assert!(lines.last().unwrap().contains("Answer number 99"));
    }

    #[test]
    fn long_messages_are_clipped() {
        let long = "word ".repeat(200);
        let s = extend(None, &[d("user", &long)]);
        assert!(s.chars().count() <= "Customer: ".len() + MAX_LINE_CHARS);
        assert!(s.ends_with(ELIDED));
    }
}
