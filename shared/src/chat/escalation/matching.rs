//! Text matching: configured keywords on word boundaries ([`find_keyword`]) and explicit
//! requests for a human ([`detect_explicit_request`]).

/// A lowercase word (apostrophes removed: `don't` → `dont`) and its clause number; sentence
/// punctuation and line breaks start a new clause.
#[derive(Debug)]
struct Word {
    text: String,
    clause: u32,
}

fn words(text: &str) -> Vec<Word> {
    fn flush(current: &mut String, clause: u32, out: &mut Vec<Word>) {
        if !current.is_empty() {
            out.push(Word { text: std::mem::take(current), clause });
        }
    }
    let mut out = Vec::new();
    let mut clause = 0u32;
    let mut current = String::new();
    for ch in text.chars() {
        if ch.is_alphanumeric() {
            current.extend(ch.to_lowercase());
        } else if ch != '\'' && ch != '\u{2019}' {
            // Apostrophes are dropped (`don't` → `dont`); anything else ends the word.
            flush(&mut current, clause, &mut out);
            if matches!(ch, '.' | ',' | ';' | ':' | '!' | '?' | '\n' | '\r') {
                clause += 1;
            }
        }
    }
    flush(&mut current, clause, &mut out);
    out
}

/// The first of `keywords` (in their order) that occurs in `message`, ignoring case, on word
/// boundaries: "refund" matches "Refund!" and "a refund." but not "refunds" or "nonrefundable";
/// "charge back" matches "charge-back" and "CHARGE  BACK". A keyword without any letter or
/// digit (e.g. "!!!") matches as a plain case-insensitive substring.
pub fn find_keyword<'k>(message: &str, keywords: &'k [String]) -> Option<&'k str> {
    let message_words: Vec<String> = words(message).into_iter().map(|w| w.text).collect();
    let lowered = message.to_lowercase();
    keywords.iter().map(String::as_str).find(|keyword| {
        let wanted: Vec<String> = words(keyword).into_iter().map(|w| w.text).collect();
        if wanted.is_empty() {
            let k = keyword.trim().to_lowercase();
            return !k.is_empty() && lowered.contains(&k);
        }
        message_words.windows(wanted.len()).any(|window| window == wanted.as_slice())
    })
}

/// Nouns naming a person who can take over the conversation.
const PEOPLE: &[&str] = &[
    "human",
    "humans",
    "person",
    "persons",
    "people",
    "agent",
    "agents",
    "representative",
    "representatives",
    "rep",
    "reps",
    "operator",
    "operators",
    "supervisor",
    "supervisors",
    "manager",
    "managers",
    "staff",
    "employee",
    "employees",
    "advisor",
    "advisors",
    "adviser",
    "advisers",
    "specialist",
    "specialists",
];

/// Vaguer targets, accepted only after a verb of contact ("talk to someone", "connect me
/// with support").
const VAGUE_PEOPLE: &[&str] = &["someone", "somebody", "anyone", "anybody", "support", "service", "team", "department"];

/// Verbs of contact: a person (or a vague target) may follow after fillers, "the" included.
const CONTACT_CUES: &[&[&str]] = &[
    &["talk"],
    &["speak"],
    &["chat", "with"],
    &["chat", "to"],
    &["connect", "me"],
    &["transfer", "me"],
    &["put", "me", "through"],
    &["pass", "me"],
    &["forward", "me"],
    &["redirect", "me"],
    &["hand", "me", "over"],
];

/// Words of wanting: a person (not a vague target) may follow after fillers, "the" excluded
/// ("I want a human", but not "I need the agent to ...").
const REQUEST_CUES: &[&[&str]] = &[
    &["want"],
    &["wanna"],
    &["need"],
    &["id", "like"],
    &["i", "would", "like"],
    &["get"],
    &["give", "me"],
    &["find", "me"],
    &["bring", "me"],
    &["is", "there"],
    &["are", "there"],
    &["request"],
    &["requesting"],
    &["contact"],
    &["reach"],
];

/// Words allowed between a contact verb and its target.
const CONTACT_FILLERS: &[&str] = &[
    "to",
    "with",
    "a",
    "an",
    "the",
    "me",
    "real",
    "actual",
    "live",
    "human",
    "your",
    "some",
    "one",
    "of",
    "customer",
    "support",
    "service",
    "sales",
    "billing",
    "technical",
    "tech",
    "account",
    "please",
    "just",
    "another",
    "proper",
    "through",
    "over",
    "now",
];

/// Words allowed between a request word and its target.
const REQUEST_FILLERS: &[&str] = &[
    "a", "an", "to", "me", "real", "actual", "live", "human", "proper", "please", "just", "some", "one", "of", "your",
];

/// Phrases that ask for a human wherever they occur (unless in a question about identity).
const PHRASES: &[&[&str]] = &[
    &["live", "agent"],
    &["live", "person"],
    &["live", "human"],
    &["live", "support"],
    &["live", "representative"],
    &["live", "operator"],
    &["human", "agent"],
    &["human", "representative"],
    &["human", "operator"],
    &["human", "support"],
    &["real", "person"],
    &["real", "human"],
    &["actual", "person"],
    &["actual", "human"],
    &["customer", "service", "representative"],
    &["customer", "service", "rep"],
    &["customer", "service", "agent"],
    &["customer", "support", "representative"],
    &["customer", "support", "agent"],
    &["customer", "care", "representative"],
    &["customer", "care", "agent"],
];

/// Words a very short message ("Operator!", "human please", "real agent now") may hold besides
/// a person.
const SHORT_FILLERS: &[&str] = &[
    "please",
    "pls",
    "plz",
    "a",
    "an",
    "the",
    "real",
    "live",
    "actual",
    "now",
    "asap",
    "just",
    "me",
    "i",
    "want",
    "need",
    "get",
    "give",
    "talk",
    "speak",
    "to",
    "with",
    "customer",
    "service",
    "support",
    "care",
    "any",
    "here",
    "there",
    "is",
    "urgently",
    "immediately",
];

const POLITE: &[&str] = &["please", "pls", "plz"];

/// Two-word openings of a question about who is answering ("are you a real person?").
const IDENTITY_QUESTIONS: &[[&str; 2]] = &[["are", "you"], ["r", "u"], ["is", "this"], ["is", "that"], ["am", "i"]];

fn is_person(w: &str) -> bool {
    PEOPLE.contains(&w)
}

fn starts_with(ws: &[Word], at: usize, seq: &[&str]) -> bool {
    let clause = ws[at].clause;
    ws.get(at..at + seq.len())
        .is_some_and(|window| window.iter().zip(seq).all(|(w, s)| w.clause == clause && w.text == *s))
}

fn phrase(ws: &[Word], from: usize, to: usize) -> String {
    ws[from..=to].iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ")
}

/// A negation ("don't", "not", "never", "no need") within the three words before `at`, same
/// clause. A negation followed by "you" is a reproach, not a refusal ("why won't you let me
/// talk to a human"), and "can't" is a complaint ("I can't reach a person"): neither counts.
fn negated_before(ws: &[Word], at: usize) -> bool {
    let clause = ws[at].clause;
    (at.saturating_sub(3)..at).any(|j| {
        let w = &ws[j];
        let next = ws.get(j + 1).map(|n| n.text.as_str());
        w.clause == clause
            && !matches!(next, Some("you" | "u"))
            && (matches!(
                w.text.as_str(),
                "not" | "dont" | "doesnt" | "didnt" | "never" | "wont" | "wouldnt" | "shouldnt"
            ) || (w.text == "no" && next == Some("need")))
    })
}

/// The clause before `at` opens a question about identity ("are you a human?").
fn identity_question_before(ws: &[Word], at: usize) -> bool {
    let clause = ws[at].clause;
    let start = (0..at).rev().take_while(|&j| ws[j].clause == clause).last().unwrap_or(at);
    (start..at).any(|j| IDENTITY_QUESTIONS.iter().any(|q| starts_with(ws, j, q)))
}

/// After a cue ending before `from`: the index of the target reached through at most four
/// fillers, within the clause.
fn target_after(ws: &[Word], from: usize, fillers: &[&str], vague_ok: bool) -> Option<usize> {
    let clause = ws.get(from)?.clause;
    for (j, w) in ws.iter().enumerate().skip(from).take(5) {
        if w.clause != clause {
            return None;
        }
        if is_person(&w.text) || (vague_ok && VAGUE_PEOPLE.contains(&w.text.as_str())) {
            return Some(j);
        }
        if !fillers.contains(&w.text.as_str()) {
            return None;
        }
    }
    None
}

/// For a contact cue at `cue` ending before `from` and followed only by fillers to the end of
/// its clause: a person (or vague target) up to four words before the cue, and the clause's
/// last word. "is there someone I can talk to?", "a real person to speak with".
fn target_before(ws: &[Word], cue: usize, from: usize) -> Option<(usize, usize)> {
    let clause = ws[cue].clause;
    let mut end = from - 1;
    for (j, w) in ws.iter().enumerate().skip(from) {
        if w.clause != clause {
            break;
        }
        if !matches!(w.text.as_str(), "to" | "with" | "please" | "now" | "asap") {
            return None;
        }
        end = j;
    }
    let start = (cue.saturating_sub(4)..cue)
        .rev()
        .find(|&j| ws[j].clause == clause && (is_person(&ws[j].text) || VAGUE_PEOPLE.contains(&ws[j].text.as_str())))?;
    Some((start, end))
}

/// Whether the customer explicitly asks for a human, and the words that say so.
///
/// English only. After lower-casing and splitting into words (punctuation ignored, so
/// "talk-to-a-HUMAN!!" reads as "talk to a human"), a request is:
///
/// 1. a contact verb ("talk", "speak", "chat with", "connect me", "transfer me", "put me
///    through", ...) followed, through at most four fillers ("to", "with", "a", "the", "real",
///    "live", "one of your", "customer service", ...), by a person ("human", "person", "agent",
///    "representative", "operator", "manager", ...) or a vaguer target ("someone", "support",
///    "team"): "talk to a human", "speak with a real person", "talk to someone", "connect me
///    with one of your agents"; or a contact verb ending its clause after a person named just
///    before it: "is there someone I can talk to?";
/// 2. a request word ("I want", "I need", "I'd like", "get", "give me", "is there", "contact",
///    ...) followed through fillers other than "the" by a person: "I want a human", "can I get
///    a real agent", "is there a human";
/// 3. "escalate", in any sentence;
/// 4. a phrase such as "live agent", "real person", "human agent", "customer service
///    representative", unless the clause asks about identity ("are you a real person?");
/// 5. a person followed by "please" at the end of a clause: "human please";
/// 6. a message of at most four words made of a person and fillers only: "Operator!",
///    "Agent?", "real person now", "customer service please".
///
/// 1–4 do not fire when negated within the three words before ("I don't want to talk to a
/// human", "no need to speak to an agent"), though "why won't you let me talk to a human" and
/// "I can't reach a person" do. Words merely containing a target do not fire
/// ("humane", "agency"), nor does a person mentioned without a request ("the agent said ...",
/// "your representative told me"), nor questions about who is answering ("am I talking to a
/// human?").
pub fn detect_explicit_request(message: &str) -> Option<String> {
    let ws = words(message);
    if ws.is_empty() {
        return None;
    }

    for (i, word) in ws.iter().enumerate() {
        for cue in CONTACT_CUES {
            if starts_with(&ws, i, cue) && !negated_before(&ws, i) {
                let from = i + cue.len();
                if let Some(t) = target_after(&ws, from, CONTACT_FILLERS, true) {
                    return Some(phrase(&ws, i, t));
                }
                if let Some((start, end)) = target_before(&ws, i, from) {
                    return Some(phrase(&ws, start, end));
                }
            }
        }
        for cue in REQUEST_CUES {
            if starts_with(&ws, i, cue) && !negated_before(&ws, i) {
                if let Some(t) = target_after(&ws, i + cue.len(), REQUEST_FILLERS, false) {
                    return Some(phrase(&ws, i, t));
                }
            }
        }
        if word.text == "escalate" && !negated_before(&ws, i) {
            return Some(word.text.clone());
        }
    }

    for (i, word) in ws.iter().enumerate() {
        for p in PHRASES {
            if starts_with(&ws, i, p) && !identity_question_before(&ws, i) && !negated_before(&ws, i) {
                return Some(phrase(&ws, i, i + p.len() - 1));
            }
        }
        if is_person(&word.text)
            && ws.get(i + 1).is_some_and(|n| n.clause == word.clause && POLITE.contains(&n.text.as_str()))
            && ws.get(i + 2).is_none_or(|after| after.clause != word.clause)
            && !identity_question_before(&ws, i)
        {
            return Some(phrase(&ws, i, i + 1));
        }
    }

    if ws.len() <= 4 {
        let has_person = ws.iter().enumerate().any(|(j, w)| {
            is_person(&w.text)
                || (matches!(w.text.as_str(), "service" | "support" | "care") && j > 0 && ws[j - 1].text == "customer")
        });
        let rest_filler = ws.iter().all(|w| is_person(&w.text) || SHORT_FILLERS.contains(&w.text.as_str()));
        if has_person && rest_filler {
            return Some(phrase(&ws, 0, ws.len() - 1));
        }
    }
    None
}
