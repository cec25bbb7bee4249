//! The system prompt: the retrieved passages and the instruction to answer only from them.

use super::{ChatMessage, ChatRequest, Passage, Role};

pub(super) const KNOWLEDGE_HEADING: &str = "## Knowledge";
const KNOWLEDGE_INSTRUCTIONS: &str = "Answer only from the numbered passages below; do not rely on other knowledge. \
Cite each passage you use with its number in square brackets, like [1]. \
If the passages do not contain the answer, say that you could not find it instead of guessing.";
const NO_KNOWLEDGE_INSTRUCTIONS: &str = "No passages from the knowledge base matched this message. \
If answering needs facts you do not have, say that you could not find them in the knowledge base \
instead of guessing.";

/// The "Knowledge" section appended to the system prompt.
fn knowledge_section(passages: &[Passage]) -> String {
    let mut section = format!("{KNOWLEDGE_HEADING}\n\n");
    if passages.is_empty() {
        section.push_str(NO_KNOWLEDGE_INSTRUCTIONS);
        return section;
    }
    section.push_str(KNOWLEDGE_INSTRUCTIONS);
    for passage in passages {
        let source = passage.source.trim();
        let text = passage.text.trim();
        if source.is_empty() {
            section.push_str(&format!("\n\n[{}] {text}", passage.number));
        } else {
            section.push_str(&format!("\n\n[{}] ({source}) {text}", passage.number));
        }
    }
    section
}

/// The request's messages with the passages (or a note that there are none) and the instruction
/// to answer only from them, citing `[n]`, appended to the first system message. A system
/// message is added at the front when the request has none.
pub fn render_messages(req: &ChatRequest) -> Vec<ChatMessage> {
    let knowledge = knowledge_section(&req.passages);
    let mut messages = req.messages.clone();
    match messages.iter_mut().find(|m| m.role == Role::System) {
        Some(system) => {
            let base = system.content.trim_end();
            system.content = if base.is_empty() { knowledge } else { format!("{base}\n\n{knowledge}") };
        }
        None => messages.insert(0, ChatMessage { role: Role::System, content: knowledge }),
    }
    messages
}
