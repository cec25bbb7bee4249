//! Widget sessions this process resolved recently. A widget sends every turn and every history
//! poll with its session token, and resolving the token is a database round trip of its own
//! before the turn's first one. The answer (which conversation, which company, which sites) is
//! kept for a short time, as API Gateway keeps an authorizer's answer: a company suspended or a
//! widget's allowed domains changed take effect here within that time. What the turn must see
//! at once it reads under its own lock anyway (the conversation's status, the subscription).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// Beyond this many sessions, expired ones are dropped, and then all if none had expired:
/// the cache only saves round trips, so forgetting is always safe.
const MAX_SESSIONS: usize = 10_000;

/// What a session token resolved to.
#[derive(Clone, Debug)]
pub(crate) struct ResolvedSession {
    pub conversation_id: Uuid,
    pub company_id: Uuid,
    pub agent_id: Uuid,
    pub allowed_domains: Arc<Vec<String>>,
}

pub(crate) struct SessionCache {
    ttl: Duration,
    /// Keyed by the token's SHA-256 (as stored), so no token is kept in memory.
    sessions: Mutex<HashMap<String, (ResolvedSession, Instant)>>,
}

impl SessionCache {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, sessions: Mutex::new(HashMap::new()) }
    }

    pub fn get(&self, token_hash: &str) -> Option<ResolvedSession> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        match sessions.get(token_hash) {
            Some((session, until)) if *until > Instant::now() => Some(session.clone()),
            Some(_) => {
                sessions.remove(token_hash);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, token_hash: String, session: ResolvedSession) {
        if self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, (_, until)| *until > now);
            if sessions.len() >= MAX_SESSIONS {
                sessions.clear();
            }
        }
        sessions.insert(token_hash, (session, now + self.ttl));
    }

    pub fn forget(&self, token_hash: &str) {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).remove(token_hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> ResolvedSession {
        ResolvedSession {
            conversation_id: Uuid::new_v4(),
            company_id: Uuid::new_v4(),
            agent_id: Uuid::new_v4(),
            allowed_domains: Arc::new(vec!["example.com".into()]),
        }
    }

    #[test]
    fn a_session_is_kept_for_its_time_only() {
        let cache = SessionCache::new(Duration::from_millis(50));
        let s = session();
        cache.put("h".into(), s.clone());
        assert_eq!(cache.get("h").map(|c| c.conversation_id), Some(s.conversation_id));
        assert!(cache.get("other").is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("h").is_none());
    }

    #[test]
    fn a_zero_time_keeps_nothing_and_forget_drops_at_once() {
        let off = SessionCache::new(Duration::ZERO);
        off.put("h".into(), session());
        assert!(off.get("h").is_none());
        let cache = SessionCache::new(Duration::from_secs(60));
        cache.put("h".into(), session());
        cache.forget("h");
        assert!(cache.get("h").is_none());
    }

    #[test]
    fn a_full_cache_makes_room() {
        let cache = SessionCache::new(Duration::from_secs(60));
        for i in 0..MAX_SESSIONS {
            cache.put(i.to_string(), session());
        }
        cache.put("new".into(), session());
        assert!(cache.get("new").is_some());
        assert!(cache.sessions.lock().unwrap().len() <= MAX_SESSIONS);
    }
}
