//! The whole life of an agent through the handlers (written below).
