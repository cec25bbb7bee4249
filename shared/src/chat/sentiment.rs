//! Lexicon-based sentiment scoring of customer messages.
//!
//! The scorer follows the method of VADER (Hutto & Gilbert, 2014) with a small, self-contained
//! lexicon in the spirit of AFINN, tuned for customer-support conversations:
//!
//! 1. **Tokens.** The text is split into words (apostrophes kept inside words, then removed for
//!    lookup, so `don't` and `dont` are the same word), a few ASCII emoticons (`:)`, `:(`, ...)
//!    and emoji. Sentence punctuation (`. , ; : ! ?`) starts a new *clause*; negations and
//!    intensifiers never reach across a clause.
//! 2. **Valence.** Each word found in the lexicon gets its weight on VADER's scale, roughly
//!    -4 (worst) to +4 (best). A few multi-word expressions ("waste of time", "not working",
//!    "thank you") are matched before single words and weighted as one unit. Words that are
//!    routine in support chats ("problem", "refund", "cancel") carry only mild weights, so an
//!    ordinary request does not read as an angry one.
//! 3. **Modifiers**, within the three words before a sentiment word and the same clause:
//!    - an intensifier ("very", "extremely", "so", ...) adds 0.293 in the direction of the
//!      valence (a dampener such as "slightly" subtracts it), scaled by 1, 0.95 and 0.9 for the
//!      1st, 2nd and 3rd word back;
//!    - a negation ("not", "never", "no", any `n't` word, ...) multiplies the valence by
//!      -0.74, so "not good" turns mildly negative and "not bad" mildly positive;
//!    - a word in ALL CAPS, when the message also has words that are not, adds 0.733 in the
//!      direction of its valence (shouting emphasises; an all-caps message does not).
//! 4. **Contrast.** Before the first "but" valences count half, after it one and a half times
//!    ("thanks, but this is useless" is negative).
//! 5. **Punctuation.** Each `!` (at most four) adds 0.292 to the magnitude of the sum; two or
//!    more `?` add 0.18 each (0.96 from four on).
//! 6. **Normalisation.** The sum `s` is mapped into (-1, 1) with `s / sqrt(s² + 15)`, as VADER's
//!    compound score does.
//!
//! The lexicon is English only; other languages score near 0 (neutral). Sarcasm, elongated
//! words ("sooo") and slang beyond the list are not understood.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Added to an intensified word's magnitude (VADER's `B_INCR`).
const BOOST: f32 = 0.293;
/// Subtracted from a dampened word's magnitude (VADER's `B_DECR`).
const DAMPEN: f32 = -0.293;
/// Extra magnitude of an ALL-CAPS word in a mixed-case message (VADER's `C_INCR`).
const CAPS_BOOST: f32 = 0.733;
/// Multiplier of a negated valence (VADER's `N_SCALAR`).
const NEGATION: f32 = -0.74;
/// Weight of a modifier one, two and three words back.
const DISTANCE: [f32; 3] = [1.0, 0.95, 0.9];
/// Magnitude added per exclamation mark, at most [`MAX_EXCLAMATIONS`] of them.
const EXCLAMATION: f32 = 0.292;
const MAX_EXCLAMATIONS: usize = 4;
/// Normalisation constant of `s / sqrt(s² + ALPHA)`.
const ALPHA: f32 = 15.0;

/// The single-word lexicon, one `word<TAB>weight` line per word (see the file's header):
/// lowercase word without apostrophes, weight from about -4 to +4. Data, not code, so the list
/// reads and diffs as a table.
const LEXICON_TSV: &str = include_str!("sentiment_lexicon.tsv");

/// Multi-word expressions, matched (longest first) before single words and weighted as one.
/// Words are lowercase without apostrophes. A weight of 0 neutralises the words ("kind of").
const PHRASES: &[(&[&str], f32)] = &[
    (&["waste", "of", "time"], -2.6),
    (&["waste", "of", "money"], -2.6),
    (&["doesnt", "work"], -2.0),
    (&["does", "not", "work"], -2.0),
    (&["dont", "work"], -2.0),
    (&["do", "not", "work"], -2.0),
    (&["didnt", "work"], -1.8),
    (&["did", "not", "work"], -1.8),
    (&["wont", "work"], -1.8),
    (&["not", "working"], -2.0),
    (&["isnt", "working"], -2.0),
    (&["arent", "working"], -2.0),
    (&["stopped", "working"], -2.0),
    (&["rip", "off"], -2.8),
    (&["ripped", "off"], -2.9),
    (&["fed", "up"], -2.4),
    (&["sick", "of"], -2.2),
    (&["tired", "of"], -1.8),
    (&["no", "help"], -2.0),
    (&["no", "response"], -1.6),
    (&["no", "reply"], -1.6),
    (&["no", "answer"], -1.4),
    (&["still", "waiting"], -1.6),
    (&["no", "thanks"], 0.0),
    (&["no", "worries"], 1.2),
    (&["no", "problem"], 1.2),
    (&["thank", "you"], 2.0),
    (&["thank", "you", "so", "much"], 2.7),
    (&["thanks", "so", "much"], 2.5),
    (&["thanks", "a", "lot"], 2.3),
    (&["much", "appreciated"], 2.3),
    (&["well", "done"], 2.2),
    (&["kind", "of"], 0.0),
    (&["sort", "of"], 0.0),
];

/// ASCII emoticons, matched against a whole whitespace-separated chunk.
const EMOTICONS: &[(&str, f32)] = &[
    (":)", 2.0),
    (":-)", 2.0),
    ("(:", 2.0),
    (":]", 1.6),
    (":D", 2.3),
    (":-D", 2.3),
    (";)", 1.3),
    (";-)", 1.3),
    (":P", 1.0),
    (":p", 1.0),
    ("<3", 1.9),
    (":(", -1.9),
    (":-(", -1.9),
    ("):", -1.9),
    (":[", -1.6),
    (":'(", -2.2),
    (">:(", -2.6),
    (":/", -1.1),
    (":-/", -1.1),
    (":|", -0.5),
];

/// Valence of an emoji character.
fn emoji_valence(ch: char) -> Option<f32> {
    let v = match ch {
        '\u{1F60A}' | '\u{1F600}' | '\u{1F603}' | '\u{1F604}' | '\u{1F601}' => 2.0, // 😊 😀 😃 😄 😁
        '\u{1F642}' => 1.5,                                                         // 🙂
        '\u{1F60D}' | '\u{1F970}' => 2.5,                                           // 😍 🥰
        '\u{1F44D}' => 1.5,                                                         // 👍
        '\u{2764}' | '\u{1F496}' | '\u{1F499}' | '\u{1F49A}' => 2.0,                // ❤ 💖 💙 💚
        '\u{1F64F}' => 1.3,                                                         // 🙏
        '\u{1F389}' | '\u{1F973}' => 2.0,                                           // 🎉 🥳
        '\u{1F621}' | '\u{1F92C}' => -2.8,                                          // 😡 🤬
        '\u{1F620}' | '\u{1F624}' => -2.2,                                          // 😠 😤
        '\u{1F61E}' | '\u{1F622}' | '\u{1F629}' | '\u{1F62B}' => -2.0,              // 😞 😢 😩 😫
        '\u{1F62D}' => -2.2,                                                        // 😭
        '\u{1F641}' | '\u{2639}' => -1.5,                                           // 🙁 ☹
        '\u{1F612}' | '\u{1F644}' => -1.5,                                          // 😒 🙄
        '\u{1F44E}' => -1.8,                                                        // 👎
        '\u{1F4A9}' => -2.0,                                                        // 💩
        '\u{1F926}' => -1.5,                                                        // 🤦
        _ => return None,
    };
    Some(v)
}

/// Intensifier (positive) or dampener (negative) weight of a word.
fn modifier_weight(word: &str) -> Option<f32> {
    match word {
        "very" | "extremely" | "so" | "really" | "totally" | "absolutely" | "completely" | "incredibly" | "super"
        | "utterly" | "highly" | "truly" | "too" | "especially" | "entirely" | "seriously" | "deeply" | "most"
        | "fully" | "extraordinarily" | "exceptionally" | "remarkably" | "insanely" | "terribly" | "awfully"
        | "hugely" | "massively" | "thoroughly" | "unbelievably" | "such" | "sooo" | "soooo" => Some(BOOST),
        "quite" => Some(BOOST / 2.0),
        "slightly" | "somewhat" | "kinda" | "sorta" | "barely" | "hardly" | "marginally" | "partly"
        | "occasionally" => Some(DAMPEN),
        "bit" | "little" => Some(DAMPEN * 0.7),
        _ => None,
    }
}

/// Words that negate the sentiment word up to three words after them (apostrophes removed;
/// any word written with `n't` negates too).
fn is_negation(word: &str) -> bool {
    matches!(
        word,
        "not"
            | "no"
            | "never"
            | "none"
            | "nobody"
            | "nothing"
            | "neither"
            | "nor"
            | "nowhere"
            | "nope"
            | "without"
            | "cannot"
            | "cant"
            | "dont"
            | "doesnt"
            | "didnt"
            | "isnt"
            | "arent"
            | "wasnt"
            | "werent"
            | "wont"
            | "wouldnt"
            | "couldnt"
            | "shouldnt"
            | "havent"
            | "hasnt"
            | "hadnt"
            | "aint"
            | "mustnt"
            | "neednt"
            | "rarely"
            | "seldom"
    )
}

/// The entries of [`LEXICON_TSV`], in file order.
///
/// Panics on a malformed line: the file is compiled in, so that is a bug the unit tests catch.
fn lexicon_entries() -> impl Iterator<Item = (&'static str, f32)> {
    LEXICON_TSV.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')).map(|line| {
        let (word, weight) = line.split_once('\t').unwrap_or_else(|| panic!("sentiment lexicon: no tab in {line:?}"));
        let weight =
            weight.trim().parse::<f32>().unwrap_or_else(|e| panic!("sentiment lexicon: bad weight in {line:?}: {e}"));
        (word.trim(), weight)
    })
}

/// The lexicon as a map, parsed once.
fn lexicon() -> &'static HashMap<&'static str, f32> {
    static MAP: OnceLock<HashMap<&'static str, f32>> = OnceLock::new();
    MAP.get_or_init(|| lexicon_entries().collect())
}

#[derive(Debug)]
struct Token {
    /// Lowercase, apostrophes removed; the emoticon itself for emoticons.
    norm: String,
    /// At least two letters, all upper case.
    caps: bool,
    /// At least two letters, not all upper case.
    lower: bool,
    negation: bool,
    clause: u32,
    emoticon: Option<f32>,
}

fn push_word(out: &mut Vec<Token>, word: &mut String, clause: u32) {
    let raw = word.trim_end_matches('\'');
    if !raw.is_empty() {
        let letters = raw.chars().filter(|c| c.is_alphabetic()).count();
        let upper = raw.chars().filter(|c| c.is_uppercase()).count();
        let lowered = raw.to_lowercase();
        let norm = lowered.replace('\'', "");
        out.push(Token {
            caps: letters >= 2 && upper == letters,
            lower: letters >= 2 && upper < letters,
            negation: lowered.ends_with("n't") || is_negation(&norm),
            norm,
            clause,
            emoticon: None,
        });
    }
    word.clear();
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut clause = 0u32;
    for chunk in text.split_whitespace() {
        let bare = chunk.trim_end_matches(['.', ',', '!', '?', ';']);
        if let Some(&(emoticon, v)) = EMOTICONS.iter().find(|(e, _)| *e == bare) {
            out.push(Token {
                norm: emoticon.to_string(),
                caps: false,
                lower: false,
                negation: false,
                clause,
                emoticon: Some(v),
            });
            if bare.len() != chunk.len() {
                clause += 1;
            }
            continue;
        }
        let mut word = String::new();
        for ch in chunk.chars() {
            if ch.is_alphanumeric() {
                word.push(ch);
            } else if (ch == '\'' || ch == '\u{2019}') && !word.is_empty() {
                word.push('\'');
            } else {
                push_word(&mut out, &mut word, clause);
                if let Some(v) = emoji_valence(ch) {
                    out.push(Token {
                        norm: ch.to_string(),
                        caps: false,
                        lower: false,
                        negation: false,
                        clause,
                        emoticon: Some(v),
                    });
                }
                if matches!(ch, '.' | ',' | ';' | ':' | '!' | '?') {
                    clause += 1;
                }
            }
        }
        push_word(&mut out, &mut word, clause);
    }
    out
}

/// The longest phrase starting at `i` (all its words in one clause): its length and weight.
fn phrase_at(tokens: &[Token], i: usize) -> Option<(usize, f32)> {
    let clause = tokens[i].clause;
    PHRASES
        .iter()
        .filter(|(words, _)| {
            tokens.get(i..i + words.len()).is_some_and(|window| {
                window.iter().zip(words.iter()).all(|(t, w)| t.clause == clause && t.emoticon.is_none() && t.norm == *w)
            })
        })
        .max_by_key(|(words, _)| words.len())
        .map(|(words, v)| (words.len(), *v))
}

/// Modifier weight of the token at `j`, "kind of"/"sort of" counting as a dampener.
fn modifier_at(tokens: &[Token], j: usize) -> Option<f32> {
    let t = &tokens[j];
    if t.emoticon.is_some() {
        return None;
    }
    if t.norm == "of" && j > 0 && matches!(tokens[j - 1].norm.as_str(), "kind" | "sort") {
        return Some(DAMPEN);
    }
    modifier_weight(&t.norm)
}

/// Apply emphasis, intensifiers and negation to the valence `v` of the word (or phrase) at `i`.
fn modified(tokens: &[Token], in_phrase: &[bool], i: usize, v: f32, mixed_case: bool) -> f32 {
    if v == 0.0 {
        return 0.0;
    }
    let sign = v.signum();
    let mut out = v;
    if mixed_case && tokens[i].caps {
        out += CAPS_BOOST * sign;
    }
    let clause = tokens[i].clause;
    let mut negated = false;
    for (k, weight) in DISTANCE.iter().enumerate() {
        let Some(j) = i.checked_sub(k + 1) else { break };
        let t = &tokens[j];
        if t.clause != clause {
            break;
        }
        if let Some(m) = modifier_at(tokens, j) {
            let mut m = m * sign;
            if mixed_case && t.caps && m * sign > 0.0 {
                m += CAPS_BOOST * sign;
            }
            out += m * weight;
        }
        // A negation already used inside a phrase ("not working") does not negate again.
        if t.negation && !in_phrase[j] {
            negated = true;
        }
    }
    if out.signum() != sign {
        // Dampeners reduce a valence towards 0 but never flip it.
        out = 0.0;
    }
    if negated {
        out *= NEGATION;
    }
    out
}

/// Sentiment of `text` in [-1, 1]: below 0 negative, above 0 positive, 0 neutral or unknown.
///
/// See the [module documentation](self) for the method.
pub fn score(text: &str) -> f32 {
    let tokens = tokenize(text);
    if tokens.is_empty() {
        return 0.0;
    }
    let mixed_case = tokens.iter().any(|t| t.caps) && tokens.iter().any(|t| t.lower);
    let n = tokens.len();
    let mut valences = vec![0.0f32; n];
    let mut in_phrase = vec![false; n];
    let mut i = 0;
    while i < n {
        if let Some((len, v)) = phrase_at(&tokens, i) {
            for flag in in_phrase.iter_mut().skip(i).take(len) {
                *flag = true;
            }
            valences[i] = modified(&tokens, &in_phrase, i, v, mixed_case);
            i += len;
            continue;
        }
        let t = &tokens[i];
        if let Some(v) = t.emoticon.or_else(|| lexicon().get(t.norm.as_str()).copied()) {
            valences[i] = modified(&tokens, &in_phrase, i, v, mixed_case);
        }
        i += 1;
    }

    if let Some(but) = tokens.iter().zip(&in_phrase).position(|(t, &p)| t.norm == "but" && !p) {
        for (j, v) in valences.iter_mut().enumerate() {
            match j.cmp(&but) {
                Ordering::Less => *v *= 0.5,
                Ordering::Greater => *v *= 1.5,
                Ordering::Equal => {}
            }
        }
    }

    let mut sum: f32 = valences.iter().sum();
    if sum != 0.0 {
        let exclamations = text.chars().filter(|&c| c == '!').count().min(MAX_EXCLAMATIONS);
        let questions = text.chars().filter(|&c| c == '?').count();
        let mut emphasis = exclamations as f32 * EXCLAMATION;
        if questions > 1 {
            emphasis += if questions <= 3 { questions as f32 * 0.18 } else { 0.96 };
        }
        sum += emphasis * sum.signum();
    }
    let normalised = sum / (sum * sum + ALPHA).sqrt();
    if normalised.is_finite() {
        normalised.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

/// Mean of `prev_count` earlier scores averaging `prev_avg`, and the score `new`.
///
/// With no earlier average (or a count of 0) the result is `new`. A non-finite `new` leaves
/// the average unchanged. Computed in `f64` and clamped to [-1, 1].
pub fn running_average(prev_avg: Option<f32>, prev_count: u32, new: f32) -> f32 {
    let prev = prev_avg.filter(|p| p.is_finite());
    if !new.is_finite() {
        return prev.unwrap_or(0.0).clamp(-1.0, 1.0);
    }
    let new = new.clamp(-1.0, 1.0);
    match prev {
        Some(avg) if prev_count > 0 => {
            let n = f64::from(prev_count);
            let mean = (f64::from(avg) * n + f64::from(new)) / (n + 1.0);
            (mean as f32).clamp(-1.0, 1.0)
        }
        _ => new,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        let angry = score("This is the worst, totally useless service!!!");
        assert!(angry < -0.5, "{angry}");
        let happy = score("Thanks, that was really helpful");
        assert!(happy > 0.3, "{happy}");
        assert!(score("not bad") > score("bad"));
        assert!(score("not bad") > 0.0);
        assert!(score("bad") < 0.0);
    }

    #[test]
    fn neutral_and_empty() {
        assert!(score("").abs() < f32::EPSILON);
        assert!(score("   ").abs() < f32::EPSILON);
        assert!(score("What are your opening hours on Saturday?").abs() < f32::EPSILON);
        assert!(score("Wo ist meine Bestellung?").abs() < f32::EPSILON);
    }

    #[test]
    fn bounded() {
        let many = "terrible awful useless worst ".repeat(200);
        let s = score(&format!("{many}!!!!!!!!"));
        assert!((-1.0..=1.0).contains(&s) && s < -0.99, "{s}");
        let s = score(&"great perfect love ".repeat(200));
        assert!((-1.0..=1.0).contains(&s) && s > 0.99, "{s}");
    }

    #[test]
    fn negation() {
        assert!(score("This is good") > 0.0);
        assert!(score("This is not good") < 0.0);
        assert!(score("It isn't helpful") < 0.0);
        assert!(score("It isn’t helpful") < 0.0, "curly apostrophe");
        assert!(score("not really helpful at all") < 0.0);
        // Outside the 3-word window or across a clause break: no flip.
        assert!(score("No. That is great") > 0.0);
        assert!(score("not that I would say it is great") > 0.0);
    }

    #[test]
    fn intensifiers_and_dampeners() {
        assert!(score("very good") > score("good"));
        assert!(score("extremely bad") < score("bad"));
        assert!(score("so frustrated") < score("frustrated"));
        assert!(score("slightly annoying") > score("annoying"));
        assert!(score("slightly annoying") < 0.0);
        assert!(score("kind of slow") > score("slow"));
    }

    #[test]
    fn caps_and_exclamations() {
        assert!(score("This is TERRIBLE service") < score("This is terrible service"));
        // An all-caps message is not treated as emphasis of single words.
        assert!((score("THIS IS TERRIBLE") - score("this is terrible")).abs() < 1e-6);
        assert!(score("bad!!!") < score("bad"));
        assert!(score("great!!!") > score("great"));
        assert!((score("bad!!!!!!!!") - score("bad!!!!")).abs() < 1e-6, "capped at four");
        assert!(score("why is this broken??") < score("why is this broken"));
    }

    #[test]
    fn phrases_and_contrast() {
        assert!(score("It's not working") < 0.0);
        assert!(score("the export doesn't work") < 0.0);
        assert!(score("what a waste of time") < -0.4);
        assert!(score("No problem, thank you!") > 0.3);
        assert!(score("Thanks, but this is useless") < 0.0);
        assert!(score("The app is great but support is useless") < 0.0);
        assert!(score("I hate this app") < -0.4);
        assert!(score("I love this app") > 0.4);
    }

    #[test]
    fn emoticons_and_emoji() {
        assert!(score("ok :(") < 0.0);
        assert!(score("done :)") > 0.0);
        assert!(score("thanks 😊") > score("thanks"));
        assert!(score("still broken 😡") < score("still broken"));
    }

    #[test]
    fn support_words_are_mild() {
        let s = score("I would like a refund for order 1234");
        assert!(s < 0.0 && s > -0.3, "{s}");
        assert!(score("I was charged twice and nobody answers, this is a scam") < -0.5);
    }

    #[test]
    fn lexicon_is_well_formed() {
        let entries: Vec<(&str, f32)> = lexicon_entries().collect();
        assert_eq!(entries.len(), 431, "entries in sentiment_lexicon.tsv");
        assert_eq!(lexicon().len(), entries.len(), "duplicate lexicon entries");
        for (word, v) in &entries {
            assert!((-4.0..=4.0).contains(v) && *v != 0.0, "{word}");
            assert!(word.chars().all(|c| c.is_ascii_lowercase()), "{word}");
        }
        for (words, _) in PHRASES {
            assert!(words.len() >= 2);
            assert!(words.iter().all(|w| w.chars().all(|c| c.is_ascii_lowercase())), "{words:?}");
        }
    }

    #[test]
    fn lexicon_file_parses_to_the_known_weights() {
        let lexicon = lexicon();
        assert_eq!(lexicon.get("abandoned").copied(), Some(-1.8));
        assert_eq!(lexicon.get("angry").copied(), Some(-2.3));
        assert_eq!(lexicon.get("wonderful").copied(), Some(2.7));
        assert_eq!(lexicon.get("yay").copied(), Some(2.4));
        assert_eq!(lexicon.get("negative"), None, "section comments are not words");
    }

    #[test]
    fn running_average_math() {
        assert!((running_average(None, 0, 0.5) - 0.5).abs() < 1e-6);
        assert!((running_average(Some(0.9), 0, -0.5) + 0.5).abs() < 1e-6);
        assert!((running_average(Some(0.0), 1, 1.0) - 0.5).abs() < 1e-6);
        assert!((running_average(Some(-0.5), 3, 0.5) + 0.25).abs() < 1e-6);
        assert!((running_average(Some(0.2), 4, f32::NAN) - 0.2).abs() < 1e-6);
        assert!(running_average(None, 0, f32::NAN).abs() < 1e-6);
        assert!((running_average(Some(1.0), 1, 5.0) - 1.0).abs() < 1e-6, "clamped input");
        assert!((running_average(Some(0.1), u32::MAX, -1.0) - 0.1).abs() < 1e-6);
    }
}
