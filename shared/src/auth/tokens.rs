//! Opaque secrets: API keys, refresh tokens, invitation and session tokens. Only their
//! SHA-256 is stored; the secret is shown once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 256 random bits, URL-safe.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Constant-time equality for secrets and MACs.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// API keys look like `ck_<8 chars>_<secret>`; `ck_<8 chars>` is the stored, displayed prefix.
pub const API_KEY_MARK: &str = "ck_";

pub struct NewApiKey {
    pub full_key: String,
    pub prefix: String,
    pub hash: String,
}

pub fn new_api_key() -> NewApiKey {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    let id: String = (0..8).map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char).collect();
    let prefix = format!("{API_KEY_MARK}{id}");
    let full_key = format!("{prefix}_{}", random_secret());
    let hash = sha256_hex(&full_key);
    NewApiKey { full_key, prefix, hash }
}

/// The stored prefix of a presented key, if it has the key shape.
pub fn api_key_prefix(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(API_KEY_MARK)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 8 && !secret.is_empty()).then(|| &key[..API_KEY_MARK.len() + 8])
}

/// `hex(HMAC-SHA256(secret, message))`: what a site sends to prove who its visitor is.
pub fn hmac_sha256_hex(secret: &[u8], message: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length works");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_shape() {
        let k = new_api_key();
        assert_eq!(api_key_prefix(&k.full_key), Some(k.prefix.as_str()));
        assert_eq!(k.prefix.len(), 11);
        assert_eq!(k.hash, sha256_hex(&k.full_key));
        assert_eq!(api_key_prefix("ck_short_x"), None);
        assert_eq!(api_key_prefix("eyJhbGciOi.x.y"), None);
    }

    #[test]
    fn secrets_are_unique_and_long() {
        let a = random_secret();
        assert_ne!(a, random_secret());
        assert!(a.len() >= 43);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
