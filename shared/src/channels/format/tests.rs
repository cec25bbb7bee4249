//! Unit tests of `channels::format`.

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
